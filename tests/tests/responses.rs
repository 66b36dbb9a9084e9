//! The OpenAI Responses API (`POST /v1/responses`) in real Envoy, through the official
//! `openai` Python SDK (`client.responses.create`, `client.responses.stream`, a function-call
//! round trip) to each vendor family: OpenAI (passed through), an OpenAI-compatible chat
//! vendor, Claude and Gemini (converted). Also behind the balancer, with a retry, in the token
//! metrics, and the gateway's own `GET /v1/models`.
//!
//! Build first: `cargo xtask build`; run with `cargo xtask test` (or set `ENVOY_BIN`).

use mock_provider::ScriptToolCall;
use std::time::{Duration, Instant};
use switchyard_e2e::*;

const TOKENS: &str = "gen_ai_client_token_usage";

/// Runs against a gateway whose mock has two tool-call scripts queued (the first two
/// requests answer with calls), then answers text.
const SDK_SCRIPT: &str = r#"
import sys, json, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="client-key", max_retries=0)
model = sys.argv[2]
tools = [{"type": "function", "name": n, "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "tz": {"type": "string"}}, "additionalProperties": False}} for n in ("get_weather", "get_time")]
ask = [{"role": "user", "content": [{"type": "input_text", "text": "weather and time in Paris?"}]}]

# 1. A plain answer with function calls.
r = c.responses.create(model=model, input=ask, tools=tools)
calls = [o for o in r.output if o.type == "function_call"]
assert [o.name for o in calls] == ["get_weather", "get_time"], r
assert json.loads(calls[0].arguments) == {"city": "Paris"}, calls
assert len({o.call_id for o in calls}) == 2, calls
assert r.id.startswith("resp_"), r.id

# 2. The same, streamed through the SDK's stream helper.
with c.responses.stream(model=model, input=ask, tools=tools) as s:
    names = [ev.type for ev in s]
    final = s.get_final_response()
assert "response.function_call_arguments.done" in names, names
scalls = [o for o in final.output if o.type == "function_call"]
assert [o.name for o in scalls] == ["get_weather", "get_time"], final
assert json.loads(scalls[1].arguments) == {"tz": "CET"}, scalls

# 3. The round trip: the calls and their outputs go back; the model answers in text.
items = ask + [{"type": "function_call", "call_id": o.call_id, "name": o.name, "arguments": o.arguments} for o in calls]
items += [{"type": "function_call_output", "call_id": o.call_id, "output": "sunny" if o.name == "get_weather" else "12:00"} for o in calls]
r = c.responses.create(model=model, input=items, tools=tools, instructions="be brief")
assert r.status == "completed", r
assert r.output_text.startswith("Mock answer"), r
assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0, r.usage
assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens, r.usage

# 4. Plain text, then the same streamed: same text, usage in `response.completed`.
r = c.responses.create(model=model, input="hi sdk", max_output_tokens=100)
assert r.output_text.startswith("Mock answer"), r
events = list(c.responses.create(model=model, input="hi sdk", max_output_tokens=100, stream=True))
assert [e.sequence_number for e in events] == list(range(len(events))), events
assert events[0].type == "response.created" and events[-1].type == "response.completed", events
text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
assert text == r.output_text, (text, r.output_text)
assert events[-1].response.usage.total_tokens == r.usage.total_tokens, (events[-1].response.usage, r.usage)
with c.responses.stream(model=model, input="hi sdk") as s:
    final = s.get_final_response()
assert final.output_text == text, final
print("ok")
"#;

fn queue_tool_calls(m: &MockServer) {
    for _ in 0..2 {
        m.push_script(Script {
            tool_calls: vec![
                ScriptToolCall::new("get_weather", r#"{"city":"Paris"}"#),
                ScriptToolCall::new("get_time", r#"{"tz":"CET"}"#),
            ],
            ..Default::default()
        });
    }
}

/// The SDK script against one provider, then the upstream paths it produced.
fn sdk_against(provider: serde_json::Value, model: &str) -> (Gateway, MockServer, Vec<String>) {
    let (gw, m) = provider_gateway(provider);
    queue_tool_calls(&m);
    run_python(
        SDK_SCRIPT,
        &[format!("http://{}/v1", gw.addr()), model.to_string()],
    );
    let paths = m.requests().iter().map(|r| r.path.clone()).collect();
    assert!(!gw.wasm_failed());
    (gw, m, paths)
}

/// Token usage reaches the metrics (emitted when the request's stream ends).
fn wait_for_tokens(gw: &Gateway, provider: &str) -> f64 {
    let start = Instant::now();
    loop {
        let n = gw.metric(
            TOKENS,
            &[
                ("gen_ai_provider_name", provider),
                ("gen_ai_token_type", "input"),
            ],
        );
        if n > 0.0 || start.elapsed() > Duration::from_secs(3) {
            return n;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn official_sdk_against_openai_passthrough() {
    let (gw, m, paths) = sdk_against(
        json!({"type": "openai", "apiTokens": ["sk-o"], "modelMapping": {"fast": "gpt-4o"}}),
        "fast",
    );
    assert!(paths.iter().all(|p| p == "/v1/responses"), "{paths:?}");
    for r in m.requests() {
        let body = r.json().unwrap();
        assert_eq!(body["model"], "gpt-4o");
        assert!(body.get("stream_options").is_none(), "{body}");
        assert!(body.get("input").is_some(), "{body}");
        assert_eq!(r.header("authorization"), Some("Bearer sk-o"));
    }
    assert!(wait_for_tokens(&gw, "openai") > 0.0, "{}", gw.prometheus());
}

#[test]
fn official_sdk_against_an_openai_compatible_vendor() {
    let (gw, m, paths) = sdk_against(
        json!({"type": "deepseek", "apiTokens": ["k"]}),
        "deepseek-chat",
    );
    assert!(paths.iter().all(|p| p == "/chat/completions"), "{paths:?}");
    let round_trip = m.requests()[2].json().unwrap();
    let roles: Vec<&str> = round_trip["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["role"].as_str())
        .collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "tool", "tool"],
        "{round_trip}"
    );
    assert!(
        wait_for_tokens(&gw, "deepseek") > 0.0,
        "{}",
        gw.prometheus()
    );
}

#[test]
fn official_sdk_against_claude() {
    let (gw, m, paths) = sdk_against(
        json!({"type": "claude", "apiTokens": ["sk-ant"]}),
        "claude-sonnet-4-5",
    );
    assert!(paths.iter().all(|p| p == "/v1/messages"), "{paths:?}");
    let round_trip = m.requests()[2].json().unwrap();
    assert_eq!(round_trip["system"][0]["text"], "be brief", "{round_trip}");
    assert!(
        round_trip.to_string().contains("tool_result"),
        "{round_trip}"
    );
    assert!(wait_for_tokens(&gw, "claude") > 0.0, "{}", gw.prometheus());
}

#[test]
fn official_sdk_against_gemini() {
    let (gw, _m, paths) = sdk_against(
        json!({"type": "gemini", "apiTokens": ["g"]}),
        "gemini-2.5-flash",
    );
    assert_eq!(
        paths.first().map(String::as_str),
        Some("/v1beta/models/gemini-2.5-flash:generateContent")
    );
    assert_eq!(
        paths.get(1).map(String::as_str),
        Some("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    );
    assert!(wait_for_tokens(&gw, "gemini") > 0.0, "{}", gw.prometheus());
}

#[test]
fn vendor_errors_reach_responses_clients_in_openai_shape() {
    let (gw, m) = provider_gateway(json!({"type": "claude", "apiTokens": ["sk-ant"]}));
    m.push_script(Script::error(429, "slow down"));
    let r = gw.post(
        "/v1/responses",
        r#"{"model":"claude-sonnet-4-5","input":"hi"}"#,
    );
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["error"]["message"], "slow down", "{}", r.text());
    // A feature only OpenAI serves is a 400 naming the field, before any upstream request.
    let before = m.requests().len();
    let r = gw.post(
        "/v1/responses",
        r#"{"model":"claude-sonnet-4-5","input":"hi","previous_response_id":"resp_1"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json()["error"]["param"],
        "previous_response_id",
        "{}",
        r.text()
    );
    assert_eq!(m.requests().len(), before);
}

#[test]
fn behind_the_balancer_with_models_listed_by_the_gateway() {
    let claude = mock();
    let deepseek = mock();
    let mut s = spec();
    s.filters.push(lb_filter(json!({
        "providers": [
            {"name": "claude", "key": "c", "model": "claude-sonnet-4-5", "models": ["claude-haiku-4-5"]},
            {"name": "deepseek", "key": "d", "model": "deepseek-chat"}
        ],
        "metrics": {"source": "static", "values": {"c": 10, "d": 90}}
    })));
    s.filters.push(proxy_filter(json!({
        "providers": [
            {"id": "claude", "type": "claude", "apiTokens": ["k-c"]},
            {"id": "deepseek", "type": "deepseek", "apiTokens": ["k-ds"]}
        ],
        "activeProviderId": "deepseek",
        "activeProviderHeader": "x-selected-provider"
    })));
    add_provider(&mut s, "claude", claude.addr());
    add_provider(&mut s, "deepseek", deepseek.addr());
    s.default_cluster = Some("provider-deepseek".into());
    let gw = Gateway::start(&s);
    for stream in [false, true] {
        let body = json!({"model": "auto", "input": "hi", "stream": stream}).to_string();
        let r = gw.post("/v1/responses", &body);
        assert_eq!(r.status, 200, "{}", r.text());
        if stream {
            assert!(
                r.text().contains("event: response.completed"),
                "{}",
                r.text()
            );
        } else {
            assert_eq!(r.json()["object"], "response", "{}", r.text());
            assert_eq!(r.json()["model"], "claude-sonnet-4-5", "{}", r.text());
        }
    }
    let ups = claude.requests();
    assert_eq!(ups.len(), 2);
    assert!(ups.iter().all(|u| u.path == "/v1/messages"));
    assert_eq!(ups[0].json().unwrap()["model"], "claude-sonnet-4-5");
    assert!(deepseek.requests().is_empty());

    let r = gw.request("GET", "/v1/models", &[], &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let ids: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        ids,
        [
            "auto",
            "claude-sonnet-4-5",
            "claude-haiku-4-5",
            "deepseek-chat"
        ]
    );
    assert_eq!(r.json()["object"], "list");
    assert!(claude.requests().len() == 2 && deepseek.requests().is_empty());
}

#[test]
fn a_retry_turns_a_failure_into_a_responses_answer() {
    const GOOD: &str = "sk-good-1111";
    const BAD: &str = "sk-bad-2222";
    let (s, m) = proxy_spec(
        json!({"provider": {"type": "claude", "apiTokens": [GOOD, BAD],
        "retryOnFailure": {"enabled": true, "maxRetries": 1}}}),
    );
    let gw = Gateway::start(&s);
    m.set_default_script(Script {
        only_for_token: Some(BAD.into()),
        ..Script::error(500, "bad token")
    });
    let mut retried = [false, false];
    for i in 0..60 {
        let stream = i % 2 == 1;
        let body =
            json!({"model": "claude-sonnet-4-5", "input": "hi", "stream": stream}).to_string();
        let r = gw.post("/v1/responses", &body);
        assert_eq!(r.status, 200, "{}", r.text());
        if stream {
            assert!(
                r.text().contains("event: response.completed"),
                "{}",
                r.text()
            );
        } else {
            assert_eq!(r.json()["object"], "response", "{}", r.text());
        }
        if r.header("x-switchyard-retries") == Some("1") {
            retried[usize::from(stream)] = true;
        }
        if retried == [true, true] {
            break;
        }
    }
    assert_eq!(
        retried,
        [true, true],
        "a plain and a streamed answer were retried"
    );
    assert!(!gw.wasm_failed());
}

#[test]
fn proxy_lists_configured_models_without_asking_upstream() {
    let (gw, m) = proxy_gateway(json!({"providers": [
        {"id": "ds", "type": "deepseek", "apiTokens": ["k"], "models": ["deepseek-chat"],
         "modelMapping": {"gpt-4o": "deepseek-chat", "gpt-*": "deepseek-reasoner"}},
        {"id": "gm", "type": "gemini", "apiTokens": ["g"], "models": ["gemini-2.5-flash"]}
    ], "activeProviderId": "ds"}));
    let r = gw.request("GET", "/v1/models", &[], &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let got: Vec<(String, String)> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap_or_default().to_string(),
                m["owned_by"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("deepseek-chat", "ds"),
        ("gpt-4o", "ds"),
        ("gemini-2.5-flash", "gm"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want);
    assert!(m.requests().is_empty());
    let script = r#"
import sys, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="client-key", max_retries=0)
ids = [m.id for m in c.models.list()]
assert ids == ["deepseek-chat", "gpt-4o", "gemini-2.5-flash"], ids
print("ok")
"#;
    run_python(script, &[format!("http://{}/v1", gw.addr())]);
}
