//! ai-proxy in real Envoy against a Gemini-speaking mock (`type: gemini`): the model goes into
//! the upstream path (decided in the header phase from `json_to_metadata`), chat requests,
//! answers and streams (tool calls included) and embeddings are translated, and model names
//! that could steer the path are refused before anything reaches the vendor.
//!
//! Build first: `cargo xtask build`; run with `cargo xtask test` (or set `ENVOY_BIN`).

use mock_provider::ScriptToolCall;
use serde_json::Value;
use switchyard_e2e::*;

fn gemini_gateway(extra: Value, body_metadata: bool) -> (Gateway, MockServer) {
    let provider = merged(json!({"type": "gemini", "apiTokens": ["g-key-1"]}), &extra);
    let (mut s, m) = proxy_spec(json!({ "provider": provider }));
    s.body_metadata = body_metadata;
    (Gateway::start(&s), m)
}

const CHAT: &str = r#"{"model":"gemini-2.5-flash","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there"}]}"#;

#[test]
fn gemini_plain_chat() {
    let (gw, m) = gemini_gateway(
        json!({
            "geminiSafetySetting": {"HARM_CATEGORY_HARASSMENT": "BLOCK_NONE"},
            "geminiThinkingBudget": 0
        }),
        true,
    );
    let r = gw.request(
        "POST",
        "/v1/chat/completions",
        &[("authorization", "Bearer client-secret")],
        &[CHAT.as_bytes()],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let got = m.requests();
    assert_eq!(got.len(), 1);
    let up = &got[0];
    assert_eq!(up.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(up.header("host"), Some("generativelanguage.googleapis.com"));
    assert_eq!(up.header("x-goog-api-key"), Some("g-key-1"));
    assert!(up.header("authorization").is_none());
    let body = up.json().unwrap();
    assert_eq!(
        body["systemInstruction"]["parts"][0]["text"], "be brief",
        "{body}"
    );
    assert_eq!(body["contents"][0]["role"], "user");
    assert_eq!(
        body["safetySettings"],
        json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}])
    );
    assert_eq!(
        body["generationConfig"]["thinkingConfig"]["thinkingBudget"], 0,
        "{body}"
    );
    assert!(body.get("model").is_none() && body.get("messages").is_none());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion", "{v}");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(v["model"], "gemini-2.5-flash");
    assert!(v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .starts_with("Mock answer"));
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

#[test]
fn gemini_streaming_with_and_without_usage() {
    let (gw, m) = gemini_gateway(
        json!({"modelMapping": {"gpt-4o": "gemini-2.0-flash"}}),
        true,
    );
    let body = r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hello there my friend"}]}"#;
    let r = gw.post("/v1/chat/completions", body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        m.requests()[0].path,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    );
    let plain = r.chunks();
    let id = plain[0]["id"].as_str().unwrap().to_string();
    assert!(plain.iter().all(|c| c["id"] == id.as_str()));
    assert_eq!(plain[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(plain.iter().all(|c| c["model"] == "gemini-2.0-flash"));
    assert!(plain
        .iter()
        .all(|c| c.get("usage").is_none_or(Value::is_null)));
    let text: String = plain
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect();
    assert!(text.starts_with("Mock answer"), "{text}");

    let body = r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello there my friend"}]}"#;
    let r = gw.post("/v1/chat/completions", body);
    let with = r.chunks();
    let usage: Vec<&Value> = with
        .iter()
        .filter(|c| c.get("usage").is_some_and(|u| !u.is_null()))
        .collect();
    assert_eq!(usage.len(), 1, "{}", r.text());
    assert_eq!(usage[0], with.last().unwrap());
    assert_eq!(usage[0]["choices"], json!([]));
    assert!(usage[0]["usage"]["completion_tokens"].as_u64().unwrap() > 0);
}

#[test]
fn gemini_streaming_tool_calls() {
    let (gw, m) = gemini_gateway(json!({}), true);
    m.push_script(Script {
        tool_calls: vec![ScriptToolCall::new("get_weather", r#"{"city":"Paris"}"#)],
        ..Default::default()
    });
    let body = r#"{"model":"gemini-2.5-flash","stream":true,"messages":[{"role":"user","content":"weather in Paris?"}],
      "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}"#;
    let r = gw.post("/v1/chat/completions", body);
    assert_eq!(r.status, 200, "{}", r.text());
    let up = m.requests()[0].json().unwrap();
    assert_eq!(
        up["tools"][0]["functionDeclarations"][0]["name"], "get_weather",
        "{up}"
    );
    let all = r.chunks();
    let calls: Vec<&Value> = all
        .iter()
        .filter_map(|c| c.pointer("/choices/0/delta/tool_calls/0"))
        .collect();
    assert_eq!(calls.len(), 1, "Gemini sends calls whole: {}", r.text());
    assert_eq!(calls[0]["index"], 0);
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert!(calls[0]["id"].as_str().is_some_and(|s| !s.is_empty()));
    let args: Value =
        serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    let finish: Vec<&Value> = all
        .iter()
        .filter_map(|c| c.pointer("/choices/0/finish_reason"))
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, vec![&json!("tool_calls")]);
}

#[test]
fn gemini_embeddings_single_list_and_base64() {
    let (gw, m) = gemini_gateway(json!({}), true);
    let r = gw.post(
        "/v1/embeddings",
        r#"{"model":"text-embedding-004","input":["alpha","beta"]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let up = &m.requests()[0];
    assert_eq!(
        up.path,
        "/v1beta/models/text-embedding-004:batchEmbedContents"
    );
    assert_eq!(up.header("x-goog-api-key"), Some("g-key-1"));
    let ub = up.json().unwrap();
    assert_eq!(ub["requests"].as_array().map(Vec::len), Some(2));
    assert_eq!(ub["requests"][0]["model"], "models/text-embedding-004");
    let v = r.json();
    assert_eq!(v["object"], "list", "{v}");
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert!(data[0]["embedding"]
        .as_array()
        .is_some_and(|e| !e.is_empty()));
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);

    // One string: sent as a batch of one (the path is fixed before the body is read).
    let r = gw.post(
        "/v1/embeddings",
        r#"{"model":"text-embedding-004","input":"alpha"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let one = r.json();
    assert_eq!(one["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["data"][0]["embedding"], data[0]["embedding"]);

    let r = gw.post(
        "/v1/embeddings",
        r#"{"model":"text-embedding-004","input":"alpha","encoding_format":"base64"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let b64 = r.json();
    let s = b64["data"][0]["embedding"].as_str().unwrap();
    assert_eq!(
        s.len(),
        (4 * data[0]["embedding"].as_array().unwrap().len()).div_ceil(3) * 4,
        "base64 of little-endian f32s"
    );
}

#[test]
fn gemini_path_steering_model_names_are_refused_before_the_vendor() {
    let (gw, m) = gemini_gateway(json!({}), true);
    for model in [
        "../../admin",
        "gemini%2F..%2Fx",
        "a/b",
        "gemini-2.5-flash:streamGenerateContent?x=",
    ] {
        for api in ["/v1/chat/completions", "/v1/embeddings"] {
            let body = json!({"model": model, "input": "x", "messages": [{"role": "user", "content": "x"}]});
            let r = gw.post(api, &body.to_string());
            assert_eq!(r.status, 400, "{model} {api}: {}", r.text());
            let v = r.json();
            assert_eq!(v["error"]["param"], "model", "{v}");
        }
    }
    assert!(m.requests().is_empty(), "nothing reached the vendor");
    assert!(!gw.wasm_failed());
}

#[test]
fn gemini_without_body_metadata_is_a_clear_400() {
    let (gw, m) = gemini_gateway(json!({}), false);
    let r = gw.post("/v1/chat/completions", CHAT);
    if native() {
        // The native filters read the body before the headers go on: the model is known
        // without a metadata filter, and the request goes through.
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            m.requests()[0].path,
            "/v1beta/models/gemini-2.5-flash:generateContent"
        );
        return;
    }
    assert_eq!(r.status, 400, "{}", r.text());
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("json_to_metadata"), "{msg}");
    assert!(m.requests().is_empty());
}

#[test]
fn gemini_vendor_error_is_openai_shaped() {
    let (gw, m) = gemini_gateway(json!({}), true);
    m.push_script(Script::error(429, "quota exhausted"));
    let r = gw.post("/v1/chat/completions", CHAT);
    assert_eq!(r.status, 429, "{}", r.text());
    let v = r.json();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("quota exhausted"));
    assert!(v["error"]["type"].is_string(), "{v}");
}

#[test]
fn anthropic_client_against_gemini_plain_and_streaming() {
    let (gw, m) = gemini_gateway(
        json!({"modelMapping": {"claude-*": "gemini-2.5-flash"}}),
        true,
    );
    let body = r#"{"model":"claude-3-5-haiku","max_tokens":100,"system":"be brief","messages":[{"role":"user","content":"hello there"}]}"#;
    let r = gw.request(
        "POST",
        "/v1/messages",
        &[("x-api-key", "client-key")],
        &[body.as_bytes()],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let up = &m.requests()[0];
    assert_eq!(up.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(up.header("x-goog-api-key"), Some("g-key-1"));
    assert!(up.header("x-api-key").is_none());
    let ub = up.json().unwrap();
    assert_eq!(ub["systemInstruction"]["parts"][0]["text"], "be brief");
    let v = r.json();
    assert_eq!(v["type"], "message", "{v}");
    assert!(v["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("Mock answer"));
    assert_eq!(v["stop_reason"], "end_turn");

    let r = gw.post("/v1/messages", &body.replacen('{', r#"{"stream":true,"#, 1));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        m.requests()[1].path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    let names: Vec<String> = r
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix("event:").map(|e| e.trim().to_string()))
        .collect();
    assert_eq!(names.first().map(String::as_str), Some("message_start"));
    assert_eq!(names.last().map(String::as_str), Some("message_stop"));
    let events: Vec<Value> = r
        .sse_data()
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let text: String = events
        .iter()
        .filter_map(|e| e.pointer("/delta/text").and_then(Value::as_str))
        .collect();
    assert_eq!(text, v["content"][0]["text"].as_str().unwrap());
    let delta = events
        .iter()
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    assert!(
        delta["usage"]["output_tokens"].as_u64().unwrap() > 0,
        "{delta}"
    );

    m.push_script(Script::error(429, "quota exhausted"));
    let r = gw.post("/v1/messages", body);
    assert_eq!(r.status, 429, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "rate_limit_error");
}

#[test]
fn official_openai_sdk_against_gemini() {
    let (gw, m) = gemini_gateway(json!({}), true);
    // Streaming tool call, then the same plain; text answers afterwards.
    for _ in 0..2 {
        m.push_script(Script {
            tool_calls: vec![
                ScriptToolCall::new("get_weather", r#"{"city":"Paris"}"#),
                ScriptToolCall::new("get_time", r#"{"tz":"CET"}"#),
            ],
            ..Default::default()
        });
    }
    let script = r#"
import sys, json, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="client-key", max_retries=0)
tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "tz": {"type": "string"}}, "additionalProperties": False}}} for n in ("get_weather", "get_time")]
msgs = [{"role": "user", "content": "weather and time in Paris?"}]
with c.chat.completions.stream(model="gemini-2.5-flash", messages=msgs, tools=tools) as s:
    final = s.get_final_completion()
calls = final.choices[0].message.tool_calls
assert [t.function.name for t in calls] == ["get_weather", "get_time"], calls
assert json.loads(calls[0].function.arguments) == {"city": "Paris"}, calls
assert json.loads(calls[1].function.arguments) == {"tz": "CET"}, calls
assert len({t.id for t in calls}) == 2, calls
assert final.choices[0].finish_reason == "tool_calls", final
r = c.chat.completions.create(model="gemini-2.5-flash", messages=msgs, tools=tools)
assert [t.function.name for t in r.choices[0].message.tool_calls] == ["get_weather", "get_time"], r
assert r.choices[0].finish_reason == "tool_calls", r
r = c.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi sdk"}])
assert r.choices[0].message.content.startswith("Mock answer"), r
assert r.choices[0].finish_reason == "stop", r
assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0, r.usage
chunks = list(c.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi sdk"}], stream=True, stream_options={"include_usage": True}))
usage = [ch for ch in chunks if ch.usage is not None]
assert len(usage) == 1 and usage[0].choices == [], usage
text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
assert text == r.choices[0].message.content, (text, r.choices[0].message.content)
e = c.embeddings.create(model="text-embedding-004", input=["one", "two"])
assert len(e.data) == 2 and e.data[1].index == 1 and len(e.data[0].embedding) > 0, e
e = c.embeddings.create(model="text-embedding-004", input="just one")
assert len(e.data) == 1 and len(e.data[0].embedding) > 0, e
print("ok")
"#;
    run_python(script, &[format!("http://{}/v1", gw.addr())]);
    let paths: Vec<String> = m.requests().iter().map(|r| r.path.clone()).collect();
    assert!(
        paths.iter().any(|p| p.contains(":streamGenerateContent")),
        "{paths:?}"
    );
    assert!(
        paths
            .iter()
            .any(|p| p.contains("text-embedding-004:batchEmbedContents")),
        "{paths:?}"
    );
    assert!(!gw.wasm_failed());
}
