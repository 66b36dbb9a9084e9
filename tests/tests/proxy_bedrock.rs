//! ai-proxy in real Envoy against the mock provider's Bedrock endpoint (`type: bedrock`), with
//! the official `openai` and `anthropic` Python SDKs as clients: Converse and ConverseStream
//! (AWS event-stream frames) converted both ways, tool-call round trips, usage metrics and
//! Bedrock exceptions. Auth: a Bedrock API key (both runtimes), and SigV4, which the mock
//! recomputes with its own secret: signed on the native runtime, refused with a clear error on
//! Proxy-Wasm (a plugin cannot hold the headers until the body is final).
//!
//! Build first: `cargo xtask build`; run with `cargo xtask test` (or set `ENVOY_BIN`).

use mock_provider::ScriptToolCall;
use serde_json::Value;
use std::time::{Duration, Instant};
use switchyard_e2e::*;

const MODEL: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const ENCODED: &str = "anthropic.claude-3-5-sonnet-20240620-v1%3A0";
const KEY_ID: &str = "AKIDSWITCHYARDTEST";
const SECRET: &str = "mock/Secret+Key/for+SigV4";
const API_KEY: &str = "bedrock-api-key-e2e";

fn bedrock_gateway(provider: Value) -> (Gateway, MockServer) {
    let base = json!({"type": "bedrock", "awsRegion": "us-east-1",
        "modelMapping": {"gpt-4o": MODEL, "claude-sonnet-4-5": MODEL}});
    provider_gateway(merged(base, &provider))
}

fn sigv4(secret: &str) -> Value {
    json!({"awsAccessKey": KEY_ID, "awsSecretKey": secret, "awsSessionToken": "session-token-e2e"})
}

/// The openai SDK: chat plain, chat stream with usage, a tool-call round trip (stream helper,
/// then the tool result sent back), and the Responses API. Needs two tool-call scripts queued.
const OPENAI_SCRIPT: &str = r#"
import sys, json, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="client-key", max_retries=0)
r = c.chat.completions.create(model="gpt-4o", messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello bedrock"}])
assert r.choices[0].message.content.startswith("Mock answer"), r
assert r.choices[0].finish_reason == "stop", r
assert r.model == sys.argv[2], r.model
assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0, r.usage
chunks = list(c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello bedrock"}], stream=True, stream_options={"include_usage": True}))
usage = [ch for ch in chunks if ch.usage is not None]
assert len(usage) == 1 and usage[0].choices == [] and usage[0].usage.completion_tokens > 0, usage
text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
assert text == r.choices[0].message.content, (text, r.choices[0].message.content)
tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
msgs = [{"role": "user", "content": "weather in Paris?"}]
with c.chat.completions.stream(model="gpt-4o", messages=msgs, tools=tools) as s:
    final = s.get_final_completion()
calls = final.choices[0].message.tool_calls
assert len(calls) == 1, calls
assert calls[0].function.name == "get_weather"
assert json.loads(calls[0].function.arguments) == {"city": "Paris"}, calls[0].function.arguments
assert final.choices[0].finish_reason == "tool_calls", final
r = c.chat.completions.create(model="gpt-4o", messages=msgs, tools=tools)
call = r.choices[0].message.tool_calls[0]
assert call.function.name == "get_weather" and r.choices[0].finish_reason == "tool_calls", r
msgs += [r.choices[0].message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"}]
r = c.chat.completions.create(model="gpt-4o", messages=msgs, tools=tools)
assert r.choices[0].finish_reason == "stop", r
assert "sunny" in r.choices[0].message.content, r.choices[0].message.content
resp = c.responses.create(model="gpt-4o", input="hello responses", instructions="be brief")
assert resp.status == "completed" and resp.output_text.startswith("Mock answer"), resp
print("ok")
"#;

/// The anthropic SDK: messages plain and stream.
const ANTHROPIC_SCRIPT: &str = r#"
import sys, anthropic
c = anthropic.Anthropic(base_url=sys.argv[1], api_key="client-key", max_retries=0)
m = c.messages.create(model="claude-sonnet-4-5", max_tokens=100, system="be brief", messages=[{"role": "user", "content": "hello sdk"}])
assert m.type == "message" and m.role == "assistant", m
assert m.content[0].text.startswith("Mock answer"), m
assert m.stop_reason == "end_turn", m
assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0, m.usage
with c.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "hello sdk"}]) as s:
    text = "".join(s.text_stream)
    final = s.get_final_message()
assert text == m.content[0].text, (text, m.content[0].text)
assert final.stop_reason == "end_turn", final
assert final.usage.output_tokens > 0, final.usage
print("ok")
"#;

fn run_sdks(gw: &Gateway, m: &MockServer) {
    // Scripts are used in request order: plain and streamed chat answer text, the next two
    // (the tool requests) answer with a call, the rest with text again.
    m.push_script(Script::default());
    m.push_script(Script::default());
    for _ in 0..2 {
        m.push_script(Script {
            tool_calls: vec![ScriptToolCall::new("get_weather", r#"{"city":"Paris"}"#)],
            ..Default::default()
        });
    }
    run_python(
        OPENAI_SCRIPT,
        &[format!("http://{}/v1", gw.addr()), MODEL.to_string()],
    );
    run_python(ANTHROPIC_SCRIPT, &[format!("http://{}", gw.addr())]);
}

/// Every request the mock saw went to Converse, percent-encoded, on Bedrock's host, with a
/// Converse body and no client credential.
fn assert_converse_requests(m: &MockServer) -> Vec<RecordedRequest> {
    let got = m.requests();
    assert_eq!(got.len(), 8, "6 openai SDK requests, 2 anthropic ones");
    for up in &got {
        assert!(
            up.path == format!("/model/{ENCODED}/converse")
                || up.path == format!("/model/{ENCODED}/converse-stream"),
            "{}",
            up.path
        );
        assert_eq!(
            up.header("host"),
            Some("bedrock-runtime.us-east-1.amazonaws.com")
        );
        assert_eq!(up.header("content-type"), Some("application/json"));
        assert!(up.header("x-api-key").is_none());
        let body = up.json().unwrap();
        assert!(
            body.get("messages").is_some() && body.get("model").is_none(),
            "{body}"
        );
    }
    assert!(got.iter().any(|r| r.path.ends_with("/converse-stream")));
    got
}

fn wait_for_tokens(gw: &Gateway) -> f64 {
    let start = Instant::now();
    loop {
        let n = gw.metric(
            "gen_ai_client_token_usage",
            &[
                ("gen_ai_provider_name", "bedrock"),
                ("gen_ai_token_type", "output"),
            ],
        );
        if n > 0.0 || start.elapsed() > Duration::from_secs(3) {
            return n;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bedrock_api_key_with_the_official_sdks() {
    let (gw, m) = bedrock_gateway(json!({"apiTokens": [API_KEY]}));
    m.add_bedrock_api_key(API_KEY);
    run_sdks(&gw, &m);
    let got = assert_converse_requests(&m);
    for up in &got {
        assert_eq!(
            up.header("authorization"),
            Some(format!("Bearer {API_KEY}").as_str())
        );
    }
    // The tool result went back as a toolResult block of a user turn.
    assert!(got.iter().any(|r| {
        r.json().is_some_and(|b| {
            b["messages"]
                .as_array()
                .is_some_and(|ms| ms.iter().any(|m| m["content"][0]["toolResult"].is_object()))
        })
    }));
    assert!(wait_for_tokens(&gw) > 0.0);
}

#[test]
fn bedrock_exceptions_reach_clients_with_fitting_statuses() {
    let (gw, m) = bedrock_gateway(json!({"apiTokens": [API_KEY]}));
    let chat = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
    m.push_script(Script::error(429, "Too many requests, please wait."));
    let r = gw.post("/v1/chat/completions", chat);
    assert_eq!(r.status, 429, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["code"], "ThrottlingException", "{v}");
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert_eq!(v["error"]["message"], "Too many requests, please wait.");
    // A model error (424 at AWS) is the gateway's upstream failing: 502.
    m.push_script(Script::error(424, "the model failed"));
    let r = gw.post("/v1/chat/completions", chat);
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "ModelErrorException");
    // Messages clients get Anthropic's error shape.
    m.push_script(Script::error(400, "bad input"));
    let r = gw.post(
        "/v1/messages",
        r#"{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    // A wrong API key: the mock's 403 as an OpenAI error.
    let (gw2, m2) = bedrock_gateway(json!({"apiTokens": ["not-the-key"]}));
    m2.add_bedrock_api_key(API_KEY);
    let r = gw2.post("/v1/chat/completions", chat);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "UnrecognizedClientException");
    // A mid-stream exception ends the stream with an error event, never [DONE].
    m.push_script(Script {
        stream_exception: Some("throttlingException".into()),
        ..Default::default()
    });
    let r = gw.post(
        "/v1/chat/completions",
        r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(
        text.contains("\"error\"") && !text.contains("[DONE]"),
        "{text}"
    );
}

#[test]
fn bedrock_sigv4_is_signed_on_native_and_refused_on_wasm() {
    let (gw, m) = bedrock_gateway(sigv4(SECRET));
    m.add_aws_credentials(KEY_ID, SECRET);
    let chat = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
    if !native() {
        // Proxy-Wasm cannot hold the headers until the body is final: a clear refusal, and
        // nothing reaches the vendor.
        let r = gw.post("/v1/chat/completions", chat);
        assert_eq!(r.status, 500, "{}", r.text());
        let v = r.json();
        assert_eq!(v["error"]["code"], "sigv4_unsupported_runtime", "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains("apiTokens") && msg.contains("native"), "{msg}");
        assert!(!msg.contains(SECRET) && !gw.log().contains(SECRET));
        assert!(m.requests().is_empty());
        return;
    }
    run_sdks(&gw, &m);
    let got = assert_converse_requests(&m);
    for up in &got {
        let auth = up.header("authorization").unwrap();
        assert!(
            auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={KEY_ID}/")),
            "{auth}"
        );
        assert!(auth.contains("/us-east-1/bedrock/aws4_request"), "{auth}");
        assert!(up.header("x-amz-date").is_some());
        assert_eq!(up.header("x-amz-content-sha256").map(str::len), Some(64));
        assert_eq!(up.header("x-amz-security-token"), Some("session-token-e2e"));
    }
    assert!(wait_for_tokens(&gw) > 0.0);
    assert!(!gw.log().contains(SECRET));

    // A wrong secret: the mock's signature check fails, the client gets a clear 403.
    let (bad, bm) = bedrock_gateway(sigv4("not-the-secret"));
    bm.add_aws_credentials(KEY_ID, SECRET);
    let r = bad.post("/v1/chat/completions", chat);
    assert_eq!(r.status, 403, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["code"], "InvalidSignatureException", "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("signature"));
    assert!(!bad.log().contains("not-the-secret"));
    let r = bad.post(
        "/v1/messages",
        r#"{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error"]["type"], "permission_error");
}

/// The field table's Bedrock column, through the official SDKs: a field Converse cannot carry
/// is a 400 naming it that never reaches AWS (so is a `max_tokens` at or below the thinking
/// budget); Anthropic's `thinking` and `top_k` reach
/// Converse's `additionalModelRequestFields`, OpenAI's `service_tier` its `serviceTier`.
const FIELDS_SCRIPT: &str = r#"
import sys, openai, anthropic
c = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="client-key", max_retries=0)
msgs = [{"role": "user", "content": "hello"}]
for extra, param in [({"response_format": {"type": "json_object"}}, "response_format"), ({"seed": 7}, "seed"), ({"logprobs": True}, "logprobs")]:
    try:
        c.chat.completions.create(model="gpt-4o", messages=msgs, **extra)
        raise SystemExit(f"{param}: no error")
    except openai.BadRequestError as e:
        assert e.status_code == 400 and e.body["param"] == param, (param, e.body)
try:
    c.responses.create(model="gpt-4o", input="hello", text={"format": {"type": "json_object"}})
    raise SystemExit("text.format json_object: no error")
except openai.BadRequestError as e:
    assert e.body["param"] == "text", e.body
r = c.chat.completions.create(model="gpt-4o", messages=msgs, service_tier="flex")
assert r.choices[0].message.content.startswith("Mock answer"), r
a = anthropic.Anthropic(base_url=sys.argv[1], api_key="client-key", max_retries=0)
try:
    a.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=msgs, extra_body={"container": "c1"})
    raise SystemExit("container: no error")
except anthropic.BadRequestError as e:
    assert e.status_code == 400, e
try:
    a.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=msgs, thinking={"type": "enabled", "budget_tokens": 1024})
    raise SystemExit("max_tokens below the thinking budget: no error")
except anthropic.BadRequestError as e:
    assert e.status_code == 400 and "max_tokens (100) must be above the thinking budget" in e.body["error"]["message"], e.body
m = a.messages.create(model="claude-sonnet-4-5", max_tokens=2048, messages=msgs, thinking={"type": "enabled", "budget_tokens": 1024}, extra_body={"top_k": 5})
assert m.content[-1].text.startswith("Mock answer"), m
print("ok")
"#;

#[test]
fn bedrock_field_table_through_the_sdks() {
    let (gw, m) = bedrock_gateway(json!({"apiTokens": [API_KEY]}));
    m.add_bedrock_api_key(API_KEY);
    run_python(FIELDS_SCRIPT, &[format!("http://{}", gw.addr())]);
    let got = m.requests();
    assert_eq!(got.len(), 2, "only the two accepted requests reach Bedrock");
    let chat = got[0].json().unwrap();
    assert_eq!(chat["serviceTier"], json!({"type": "flex"}), "{chat}");
    let messages = got[1].json().unwrap();
    assert_eq!(
        messages["additionalModelRequestFields"],
        json!({"top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 1024}}),
        "{messages}"
    );
    assert_eq!(messages["inferenceConfig"]["maxTokens"], 2048, "{messages}");
}

/// `reasoning_effort` (OpenAI clients) and `thinking` (Anthropic clients) to an Amazon Nova
/// model go out as Nova's own `reasoningConfig`.
#[test]
fn reasoning_effort_reaches_nova_as_its_reasoning_config() {
    let (gw, m) = bedrock_gateway(json!({"apiTokens": [API_KEY],
        "modelMapping": {"nova": "us.amazon.nova-2-lite-v1:0"}}));
    m.add_bedrock_api_key(API_KEY);
    let r = gw.post(
        "/v1/chat/completions",
        r#"{"model":"nova","reasoning_effort":"medium","messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["object"], "chat.completion");
    let got = m.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/model/us.amazon.nova-2-lite-v1%3A0/converse");
    let sent = got[0].json().unwrap();
    assert_eq!(
        sent["additionalModelRequestFields"],
        json!({"reasoningConfig": {"type": "enabled", "maxReasoningEffort": "medium"}}),
        "{sent}"
    );

    // An Anthropic client's thinking budget, as the level it stands for.
    let r = gw.post(
        "/v1/messages",
        r#"{"model":"nova","max_tokens":100,"thinking":{"type":"enabled","budget_tokens":2048},"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["type"], "message");
    let got = m.requests();
    assert_eq!(got.len(), 2);
    let sent = got[1].json().unwrap();
    assert_eq!(
        sent["additionalModelRequestFields"],
        json!({"reasoningConfig": {"type": "enabled", "maxReasoningEffort": "low"}}),
        "{sent}"
    );
    assert_eq!(sent["inferenceConfig"]["maxTokens"], 100, "{sent}");

    // High effort: Bedrock (and the mock) refuse maxTokens, temperature and topP with it.
    // Named by an OpenAI client with no limits, it goes out as is, without inferenceConfig.
    let r = gw.post(
        "/v1/chat/completions",
        r#"{"model":"nova","reasoning_effort":"high","messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let got = m.requests();
    assert_eq!(got.len(), 3);
    let sent = got[2].json().unwrap();
    assert_eq!(
        sent["additionalModelRequestFields"]["reasoningConfig"]["maxReasoningEffort"], "high",
        "{sent}"
    );
    assert!(sent.get("inferenceConfig").is_none(), "{sent}");
    // Named with max_tokens: the gateway's 400 naming it; nothing goes upstream.
    let r = gw.post(
        "/v1/chat/completions",
        r#"{"model":"nova","reasoning_effort":"high","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["param"], "max_tokens", "{}", r.text());
    assert_eq!(m.requests().len(), 3);
    // An Anthropic client's budget that stands for high, with its max_tokens: medium.
    let r = gw.post(
        "/v1/messages",
        r#"{"model":"nova","max_tokens":30000,"thinking":{"type":"enabled","budget_tokens":20000},"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let got = m.requests();
    assert_eq!(got.len(), 4);
    let sent = got[3].json().unwrap();
    assert_eq!(
        sent["additionalModelRequestFields"]["reasoningConfig"]["maxReasoningEffort"], "medium",
        "{sent}"
    );
    assert_eq!(sent["inferenceConfig"]["maxTokens"], 30000, "{sent}");
}
