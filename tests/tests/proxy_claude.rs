//! ai-proxy in real Envoy with Anthropic on either side: OpenAI clients against `type: claude`
//! (request, answer, stream, tool calls, errors translated), Anthropic clients (`/v1/messages`)
//! against an OpenAI-compatible vendor (translated) and against Claude (native), and the
//! official `openai` and `anthropic` Python SDKs end to end.
//!
//! Build first: `cargo xtask build`; run with `cargo xtask test` (or set `ENVOY_BIN`).

use mock_provider::ScriptToolCall;
use serde_json::Value;
use switchyard_e2e::*;

const CHAT: &str = r#"{"model":"claude-sonnet-4-5","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there"}]}"#;

fn claude_gateway() -> (Gateway, MockServer) {
    provider_gateway(json!({"type": "claude", "apiTokens": ["sk-ant-1"]}))
}

fn stream_text(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect()
}

#[test]
fn claude_plain_chat_is_translated_both_ways() {
    let (gw, m) = claude_gateway();
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
    assert_eq!(up.path, "/v1/messages");
    assert_eq!(up.header("host"), Some("api.anthropic.com"));
    assert_eq!(up.header("x-api-key"), Some("sk-ant-1"));
    assert_eq!(up.header("anthropic-version"), Some("2023-06-01"));
    assert!(
        up.header("authorization").is_none(),
        "client credentials removed"
    );
    let body = up.json().unwrap();
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert!(body["max_tokens"].as_u64().is_some(), "{body}");
    assert_eq!(body["system"][0]["text"], "be brief", "{body}");
    assert_eq!(body["messages"][0]["role"], "user");
    let v = r.json();
    assert_eq!(v["object"], "chat.completion", "{v}");
    assert_eq!(v["model"], "claude-sonnet-4-5");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert!(v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .starts_with("Mock answer"));
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let u = &v["usage"];
    assert!(u["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        u["total_tokens"].as_u64(),
        Some(u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap())
    );
}

#[test]
fn claude_version_and_model_mapping_from_config() {
    let (gw, m) = provider_gateway(json!({
        "type": "claude", "apiTokens": ["sk-ant-1"], "claudeVersion": "2023-01-01",
        "modelMapping": {"gpt-4o": "claude-haiku-4-5"}
    }));
    let r = gw.post(
        "/v1/chat/completions",
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let up = &m.requests()[0];
    assert_eq!(up.header("anthropic-version"), Some("2023-01-01"));
    assert_eq!(up.json().unwrap()["model"], "claude-haiku-4-5");
    assert_eq!(r.json()["model"], "claude-haiku-4-5");
}

#[test]
fn claude_stream_without_and_with_include_usage() {
    let (gw, m) = claude_gateway();
    let body = r#"{"model":"claude-sonnet-4-5","stream":true,"messages":[{"role":"user","content":"hello there"}]}"#;
    let r = gw.post("/v1/chat/completions", body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/event-stream")));
    let plain = r.chunks();
    assert!(plain.len() >= 3, "{}", r.text());
    let id = plain[0]["id"].as_str().unwrap().to_string();
    assert!(plain.iter().all(|c| c["id"] == id.as_str()), "one id");
    assert!(plain.iter().all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(plain[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(
        plain
            .iter()
            .all(|c| c.get("usage").is_none_or(Value::is_null)),
        "no usage chunk unless asked: {}",
        r.text()
    );
    let finishes: Vec<&Value> = plain
        .iter()
        .filter_map(|c| c.pointer("/choices/0/finish_reason"))
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, vec![&json!("stop")]);
    let text = stream_text(&plain);
    assert!(text.starts_with("Mock answer"), "{text}");
    assert_eq!(m.requests()[0].json().unwrap()["stream"], true);

    let body = r#"{"model":"claude-sonnet-4-5","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello there"}]}"#;
    let r = gw.post("/v1/chat/completions", body);
    assert_eq!(r.status, 200, "{}", r.text());
    let with = r.chunks();
    let usage: Vec<&Value> = with
        .iter()
        .filter(|c| c.get("usage").is_some_and(|u| !u.is_null()))
        .collect();
    assert_eq!(usage.len(), 1, "exactly one usage chunk: {}", r.text());
    let last = with.last().unwrap();
    assert_eq!(usage[0], last, "the usage chunk is the last before [DONE]");
    assert_eq!(last["choices"], json!([]));
    let u = &last["usage"];
    assert!(u["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(u["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        u["total_tokens"].as_u64(),
        Some(u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap())
    );
    assert_eq!(stream_text(&with), text);
    // Upstream request never carries OpenAI's stream_options (Anthropic rejects unknown fields).
    assert!(m.requests()[1]
        .json()
        .unwrap()
        .get("stream_options")
        .is_none());
}

#[test]
fn claude_streaming_tool_calls_are_openai_deltas() {
    let (gw, m) = claude_gateway();
    m.push_script(Script {
        tool_calls: vec![ScriptToolCall::new("get_weather", r#"{"city":"Paris"}"#)],
        ..Default::default()
    });
    let body = r#"{"model":"claude-sonnet-4-5","stream":true,"messages":[{"role":"user","content":"weather in Paris?"}],
      "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}"#;
    let r = gw.post("/v1/chat/completions", body);
    assert_eq!(r.status, 200, "{}", r.text());
    let up = m.requests()[0].json().unwrap();
    assert_eq!(up["tools"][0]["name"], "get_weather", "{up}");
    assert!(up["tools"][0]["input_schema"].is_object());
    let all = r.chunks();
    let calls: Vec<&Value> = all
        .iter()
        .filter_map(|c| c.pointer("/choices/0/delta/tool_calls/0"))
        .collect();
    assert!(!calls.is_empty(), "{}", r.text());
    assert_eq!(calls[0]["index"], 0);
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert!(calls[0]["id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(calls.iter().all(|c| c["index"] == 0));
    assert!(calls[1..].iter().all(|c| c.get("id").is_none()));
    let args: String = calls
        .iter()
        .filter_map(|c| c.pointer("/function/arguments").and_then(Value::as_str))
        .collect();
    let args: Value = serde_json::from_str(&args).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    let finish: Vec<&Value> = all
        .iter()
        .filter_map(|c| c.pointer("/choices/0/finish_reason"))
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, vec![&json!("tool_calls")]);
}

#[test]
fn claude_vendor_error_becomes_openai_shaped_with_same_status() {
    let (gw, m) = claude_gateway();
    m.push_script(Script::error(429, "slow down please"));
    let r = gw.post("/v1/chat/completions", CHAT);
    assert_eq!(r.status, 429, "{}", r.text());
    let v = r.json();
    let err = &v["error"];
    assert!(err.is_object(), "{v}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("slow down please"),
        "{v}"
    );
    assert!(err["type"].is_string(), "{v}");
    assert!(v.get("type").is_none(), "not Anthropic's shape: {v}");
    // Streaming requests get the same.
    m.push_script(Script::error(429, "slow down please"));
    let r = gw.post(
        "/v1/chat/completions",
        r#"{"model":"claude-sonnet-4-5","stream":true,"messages":[{"role":"user","content":"x"}]}"#,
    );
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("slow down please"));
}

const MESSAGES: &str = r#"{"model":"claude-3-5-haiku","max_tokens":200,"system":"be brief","messages":[{"role":"user","content":"hello there"}]}"#;

/// `event:` names of an SSE body, in order.
fn event_names(r: &Response) -> Vec<String> {
    r.text()
        .lines()
        .filter_map(|l| l.strip_prefix("event:").map(|e| e.trim().to_string()))
        .collect()
}

#[test]
fn anthropic_client_against_deepseek_plain_and_streaming() {
    let (gw, m) = provider_gateway(json!({
        "type": "deepseek", "apiTokens": ["sk-ds"], "modelMapping": {"claude-*": "deepseek-chat"}
    }));
    let r = gw.request(
        "POST",
        "/v1/messages",
        &[
            ("x-api-key", "client-key"),
            ("anthropic-version", "2023-06-01"),
        ],
        &[MESSAGES.as_bytes()],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let got = m.requests();
    let up = &got[0];
    assert_eq!(up.path, "/chat/completions");
    assert_eq!(up.header("authorization"), Some("Bearer sk-ds"));
    assert!(up.header("x-api-key").is_none());
    let body = up.json().unwrap();
    assert_eq!(body["model"], "deepseek-chat");
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][0]["content"], "be brief");
    assert_eq!(body["messages"][1]["role"], "user");
    assert_eq!(body["max_tokens"], 200);
    let v = r.json();
    assert_eq!(v["type"], "message", "{v}");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["content"][0]["type"], "text");
    assert!(v["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("Mock answer"));
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(v["usage"]["output_tokens"].as_u64().unwrap() > 0);

    let body = MESSAGES.replacen('{', r#"{"stream":true,"#, 1);
    let r = gw.post("/v1/messages", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let up = m.requests()[1].json().unwrap();
    assert_eq!(up["stream"], true);
    assert_eq!(up["stream_options"]["include_usage"], true);
    let names = event_names(&r);
    assert_eq!(names.first().map(String::as_str), Some("message_start"));
    assert_eq!(names.last().map(String::as_str), Some("message_stop"));
    assert!(names.contains(&"content_block_start".to_string()));
    assert!(names.contains(&"content_block_delta".to_string()));
    assert!(names.contains(&"content_block_stop".to_string()));
    assert!(names.contains(&"message_delta".to_string()));
    let events: Vec<Value> = r
        .sse_data()
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(
        events.len(),
        names.len(),
        "every data line has its event line"
    );
    for (e, n) in events.iter().zip(&names) {
        assert_eq!(e["type"], n.as_str());
    }
    let text: String = events
        .iter()
        .filter_map(|e| e.pointer("/delta/text").and_then(Value::as_str))
        .collect();
    assert_eq!(text, v["content"][0]["text"].as_str().unwrap());
    let delta = events
        .iter()
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);
}

#[test]
fn anthropic_client_errors_come_back_in_anthropic_shape() {
    let (gw, m) = provider_gateway(json!({"type": "deepseek", "apiTokens": ["sk-ds"]}));
    m.push_script(Script::error(429, "too many"));
    let r = gw.post("/v1/messages", MESSAGES);
    assert_eq!(r.status, 429, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert!(v["error"]["message"].as_str().unwrap().contains("too many"));
    // An error of the gateway itself too.
    let r = gw.post("/v1/messages", r#"{"max_tokens":5,"messages":[]}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error");
}

#[test]
fn anthropic_client_against_claude_is_native() {
    let (gw, m) = claude_gateway();
    let r = gw.request(
        "POST",
        "/v1/messages",
        &[
            ("x-api-key", "client-key"),
            ("anthropic-version", "2023-06-01"),
        ],
        &[MESSAGES.as_bytes()],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let up = &m.requests()[0];
    assert_eq!(up.path, "/v1/messages");
    assert_eq!(up.header("x-api-key"), Some("sk-ant-1"));
    assert_eq!(up.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(up.body, MESSAGES.as_bytes(), "body untouched");
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    // Native streams and errors pass through as the vendor sent them.
    let body = MESSAGES.replacen('{', r#"{"stream":true,"#, 1);
    let r = gw.post("/v1/messages", &body);
    assert_eq!(r.status, 200);
    assert_eq!(
        event_names(&r).first().map(String::as_str),
        Some("message_start")
    );
    m.push_script(Script::error(429, "native limit"));
    let r = gw.post("/v1/messages", MESSAGES);
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["type"], "error");
}

#[test]
fn official_python_sdks_against_claude_and_deepseek() {
    let (claude, cm) = claude_gateway();
    let (deepseek, _dm) = provider_gateway(json!({"type": "deepseek", "apiTokens": ["sk-ds"]}));
    for _ in 0..2 {
        cm.push_script(Script {
            tool_calls: vec![ScriptToolCall::new("get_weather", r#"{"city":"Paris"}"#)],
            ..Default::default()
        });
    }
    let openai_script = r#"
import sys, json, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="client-key", max_retries=0)
tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
msgs = [{"role": "user", "content": "weather in Paris?"}]
with c.chat.completions.stream(model="claude-sonnet-4-5", messages=msgs, tools=tools) as s:
    final = s.get_final_completion()
calls = final.choices[0].message.tool_calls
assert len(calls) == 1, calls
assert calls[0].function.name == "get_weather"
assert json.loads(calls[0].function.arguments) == {"city": "Paris"}, calls[0].function.arguments
assert final.choices[0].finish_reason == "tool_calls", final
r = c.chat.completions.create(model="claude-sonnet-4-5", messages=msgs, tools=tools)
assert r.choices[0].message.tool_calls[0].function.name == "get_weather"
assert r.choices[0].finish_reason == "tool_calls"
chunks = list(c.chat.completions.create(model="claude-sonnet-4-5", messages=msgs, stream=True, stream_options={"include_usage": True}))
usage = [ch for ch in chunks if ch.usage is not None]
assert len(usage) == 1 and usage[0].choices == [], usage
text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
assert text.startswith("Mock answer"), text
print("ok")
"#;
    run_python(openai_script, &[format!("http://{}/v1", claude.addr())]);
    let anthropic_script = r#"
import sys, anthropic
for base in sys.argv[1:]:
    c = anthropic.Anthropic(base_url=base, api_key="client-key", max_retries=0)
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
    run_python(
        anthropic_script,
        &[
            format!("http://{}", deepseek.addr()),
            format!("http://{}", claude.addr()),
        ],
    );
}

#[test]
fn claude_without_body_metadata_reads_the_body() {
    let m = mock();
    let mut s = spec();
    s.body_metadata = false;
    s.filters.push(proxy_filter(
        json!({"provider": {"type": "claude", "apiTokens": ["sk-ant-1"]}}),
    ));
    add_provider(&mut s, "upstream", m.addr());
    s.default_cluster = Some("provider-upstream".into());
    let gw = Gateway::start(&s);
    let body = r#"{"model":"claude-sonnet-4-5","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello there"}]}"#;
    // Sent in pieces: the plugin buffers the whole body before translating it.
    let (a, b) = body.split_at(40);
    let r = gw.request(
        "POST",
        "/v1/chat/completions",
        &[],
        &[a.as_bytes(), b.as_bytes()],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(m.requests()[0].path, "/v1/messages");
    let all = r.chunks();
    assert!(stream_text(&all).starts_with("Mock answer"));
    assert_eq!(all.last().unwrap()["choices"], json!([]));
    assert!(
        all.last().unwrap()["usage"]["total_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    let r = gw.post("/v1/chat/completions", r#"{"messages":[]}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["param"], "model");
}

#[test]
fn claude_model_list_is_the_gateways_and_unreadable_answers_are_errors() {
    let (gw, m) = provider_gateway(json!({"type": "claude", "apiTokens": ["sk-ant-1"],
        "models": ["claude-sonnet-4-5"], "modelMapping": {"sonnet": "claude-sonnet-4-5"}}));
    let r = gw.request(
        "GET",
        "/v1/models",
        &[("authorization", "Bearer client")],
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "list", "{v}");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, ["claude-sonnet-4-5", "sonnet"], "{v}");
    assert_eq!(v["data"][0]["object"], "model");
    assert_eq!(v["data"][0]["owned_by"], "claude");
    assert!(m.requests().is_empty(), "answered by the gateway");

    // An unreadable answer: OpenAI's error shape (the 200 status already went out).
    m.push_script(Script {
        raw_body: Some("<html>oops</html>".into()),
        headers: vec![("content-type".into(), "application/json".into())],
        ..Default::default()
    });
    let r = gw.post("/v1/chat/completions", CHAT);
    assert_eq!(
        r.json()["error"]["code"],
        "invalid_upstream_response",
        "{}",
        r.text()
    );
    assert!(!gw.wasm_failed());
}
