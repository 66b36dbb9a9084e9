use mock_provider::{Script, ScriptToolCall};
use serde_json::{json, Value};

use crate::client::{post, post_with, ReplyExt};
use crate::server;

fn request(stream: bool) -> Value {
    json!({
        "model": "claude-x",
        "max_tokens": 100,
        "stream": stream,
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [
            {"role": "user", "content": "What is up?"},
            {"role": "assistant", "content": [{"type": "text", "text": "Not much."}]},
            {"role": "user", "content": [{"type": "text", "text": "Tell me more"}]},
        ],
    })
}

#[test]
fn plain_message() {
    let s = server();
    let v = post(s.addr(), "/v1/messages", &request(false)).json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "claude-x");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "Mock answer to: Tell me more"}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    // Be brief. (2) + What is up? (3) + Not much. (2) + Tell me more (3)
    assert_eq!(v["usage"], json!({"input_tokens": 10, "output_tokens": 6}));
}

#[test]
fn stream_events() {
    let s = server();
    let r = post(s.addr(), "/v1/messages", &request(true));
    assert!(r.complete);
    let events = r.events();
    for (name, data) in &events {
        let v: Value = serde_json::from_str(data).unwrap();
        assert_eq!(Some(v["type"].as_str().unwrap()), name.as_deref());
    }
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    assert_eq!(names[0], "message_start");
    assert_eq!(names[1], "content_block_start");
    assert!(names.contains(&"ping"));
    assert_eq!(
        &names[names.len() - 3..],
        &["content_block_stop", "message_delta", "message_stop"]
    );
    let data: Vec<Value> = events
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(
        data[0]["message"]["usage"],
        json!({"input_tokens": 10, "output_tokens": 1})
    );
    let text: String = data
        .iter()
        .filter(|d| d["type"] == "content_block_delta")
        .map(|d| {
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, "Mock answer to: Tell me more");
    let delta = &data[data.len() - 2];
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 6);
}

#[test]
fn tool_use_stream_and_plain() {
    let s = server();
    let script = Script {
        tool_calls: vec![ScriptToolCall::new("lookup", r#"{"query":"rust async"}"#)],
        ..Script::default()
    };
    s.push_script(script.clone());
    let r = post(s.addr(), "/v1/messages", &request(true));
    let data: Vec<Value> = r
        .events()
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    let start = data
        .iter()
        .find(|d| d["type"] == "content_block_start")
        .unwrap();
    assert_eq!(start["content_block"]["type"], "tool_use");
    assert_eq!(start["content_block"]["name"], "lookup");
    assert_eq!(start["content_block"]["input"], json!({}));
    let pieces: Vec<&str> = data
        .iter()
        .filter(|d| d["type"] == "content_block_delta")
        .map(|d| {
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap()
        })
        .collect();
    assert!(pieces.len() > 1);
    assert_eq!(pieces.concat(), r#"{"query":"rust async"}"#);
    assert_eq!(data[data.len() - 2]["delta"]["stop_reason"], "tool_use");

    s.push_script(script);
    let v = post(s.addr(), "/v1/messages", &request(false)).json();
    assert_eq!(v["content"][0]["type"], "tool_use");
    assert_eq!(v["content"][0]["input"], json!({"query": "rust async"}));
    assert_eq!(v["stop_reason"], "tool_use");
}

#[test]
fn max_tokens_is_required_and_applied() {
    let s = server();
    let mut req = request(false);
    req.as_object_mut().unwrap().remove("max_tokens");
    let r = post(s.addr(), "/v1/messages", &req);
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");

    req["max_tokens"] = json!(3);
    let mut with_system_role = req.clone();
    with_system_role["messages"][0]["role"] = json!("system");
    let r = post(s.addr(), "/v1/messages", &with_system_role);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");

    let v = post(s.addr(), "/v1/messages", &req).json();
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["usage"]["output_tokens"], 3);
}

#[test]
fn scripted_error_shape() {
    let s = server();
    s.push_script(Script::error(529, "Overloaded"));
    let r = post_with(
        s.addr(),
        "/v1/messages",
        &[("x-api-key", "k"), ("anthropic-version", "2023-06-01")],
        &request(true),
    );
    assert_eq!(r.status, 529);
    assert_eq!(
        r.json(),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
}
