use mock_provider::{Script, ScriptToolCall};
use serde_json::{json, Value};

use crate::client::{get, post, post_raw, post_with, ReplyExt};
use crate::{normalized, server};

fn chat_request(stream: bool) -> Value {
    json!({
        "model": "gpt-x",
        "stream": stream,
        "messages": [
            {"role": "system", "content": "be nice"},
            {"role": "user", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}]},
        ],
    })
}

#[test]
fn chat_plain() {
    let s = server();
    let r = post(s.addr(), "/v1/chat/completions", &chat_request(false));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("content-length").is_some());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-x");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Mock answer to: Hello there"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9})
    );
}

#[test]
fn chat_stream_without_usage() {
    let s = server();
    let r = post(s.addr(), "/v1/chat/completions", &chat_request(true));
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(r.complete);
    let events = r.events();
    assert_eq!(events.last().unwrap().1, "[DONE]");
    assert!(r.text().ends_with("data: [DONE]\n\n"));
    let chunks = r.data();
    assert_eq!(chunks.len(), 1 + 5 + 1, "role, one per word, finish");
    let id = &chunks[0]["id"];
    assert!(chunks.iter().all(|c| &c["id"] == id));
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert!(chunks.iter().all(|c| c["model"] == "gpt-x"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Mock answer to: Hello there");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
}

#[test]
fn chat_stream_with_usage_matches_plain() {
    let s = server();
    let mut req = chat_request(true);
    req["stream_options"] = json!({"include_usage": true});
    let r = post(s.addr(), "/v1/chat/completions", &req);
    let chunks = r.data();
    let with_usage: Vec<&Value> = chunks.iter().filter(|c| c.get("usage").is_some()).collect();
    assert_eq!(with_usage.len(), 1);
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    let plain = post(s.addr(), "/v1/chat/completions", &chat_request(false)).json();
    assert_eq!(usage_chunk["usage"], plain["usage"]);
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );
}

#[test]
fn max_tokens_finishes_with_length() {
    let s = server();
    let mut req = chat_request(false);
    req["max_tokens"] = json!(2);
    let v = post(s.addr(), "/v1/chat/completions", &req).json();
    assert_eq!(v["choices"][0]["message"]["content"], "Mock answer");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 2);
    req["stream"] = json!(true);
    let chunks = post(s.addr(), "/v1/chat/completions", &req).data();
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "length"
    );
}

fn two_calls() -> Script {
    Script {
        tool_calls: vec![
            ScriptToolCall::new("get_weather", r#"{"city":"Paris","unit":"celsius"}"#),
            ScriptToolCall::new("get_time", r#"{"tz":"Europe/Paris"}"#),
        ],
        ..Script::default()
    }
}

#[test]
fn tool_calls_stream() {
    let s = server();
    s.push_script(two_calls());
    let chunks = post(s.addr(), "/v1/chat/completions", &chat_request(true)).data();
    let deltas: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
        .map(|t| &t[0])
        .collect();
    for (index, (name, args)) in [
        ("get_weather", r#"{"city":"Paris","unit":"celsius"}"#),
        ("get_time", r#"{"tz":"Europe/Paris"}"#),
    ]
    .into_iter()
    .enumerate()
    {
        let mine: Vec<&&Value> = deltas.iter().filter(|d| d["index"] == index).collect();
        assert!(mine.len() >= 3, "first delta plus several fragments");
        assert_eq!(mine[0]["type"], "function");
        assert!(mine[0]["id"].as_str().unwrap().starts_with("call_"));
        assert_eq!(mine[0]["function"]["name"], name);
        assert_eq!(mine[0]["function"]["arguments"], "");
        assert!(mine[1..].iter().all(|d| d.get("id").is_none()));
        let joined: String = mine
            .iter()
            .map(|d| d["function"]["arguments"].as_str().unwrap())
            .collect();
        assert_eq!(joined, args);
    }
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
    // The queued script was used once: the next answer is text again.
    let v = post(s.addr(), "/v1/chat/completions", &chat_request(false)).json();
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}

#[test]
fn tool_calls_plain() {
    let s = server();
    s.push_script(two_calls());
    let v = post(s.addr(), "/v1/chat/completions", &chat_request(false)).json();
    let message = &v["choices"][0]["message"];
    assert_eq!(message["content"], Value::Null);
    assert_eq!(message["tool_calls"][1]["function"]["name"], "get_time");
    assert_eq!(message["tool_calls"][1]["type"], "function");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
}

#[test]
fn other_paths_and_recording() {
    let s = server();
    let path = "/openai/deployments/gpt4/chat/completions?api-version=2024-10-21";
    let r = post_with(
        s.addr(),
        path,
        &[("api-key", "azure-key")],
        &chat_request(false),
    );
    assert_eq!(r.status, 200);
    let r2 = post(
        s.addr(),
        "/compatible-mode/v1/chat/completions",
        &chat_request(false),
    );
    assert_eq!(r2.status, 200);
    let reqs = s.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, path);
    assert_eq!(reqs[0].header("API-Key"), Some("azure-key"));
    assert_eq!(reqs[0].json().unwrap()["model"], "gpt-x");
    assert_eq!(reqs[1].path, "/compatible-mode/v1/chat/completions");
    assert!(reqs[0].headers.iter().all(|(n, _)| n == &n.to_lowercase()));
}

#[test]
fn legacy_completions() {
    let s = server();
    let req =
        json!({"model": "davinci", "prompt": "Say hi", "stream_options": {"include_usage": true}});
    let v = post(s.addr(), "/v1/completions", &req).json();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["text"], "Mock answer to: Say hi");
    assert_eq!(v["usage"]["total_tokens"], 2 + 5);
    let mut req = req;
    req["stream"] = json!(true);
    let chunks = post(s.addr(), "/v1/completions", &req).data();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "Mock answer to: Say hi");
    assert_eq!(chunks.last().unwrap()["usage"], v["usage"]);
}

#[test]
fn embeddings_are_deterministic() {
    let s = server();
    let one = post(
        s.addr(),
        "/v1/embeddings",
        &json!({"model": "e", "input": "hello world"}),
    )
    .json();
    let again = post(
        s.addr(),
        "/v1/embeddings",
        &json!({"model": "e", "input": "hello world"}),
    )
    .json();
    assert_eq!(one["data"], again["data"]);
    assert_eq!(one["object"], "list");
    assert_eq!(one["model"], "e");
    assert_eq!(one["data"][0]["embedding"].as_array().unwrap().len(), 8);
    assert_eq!(one["usage"], json!({"prompt_tokens": 2, "total_tokens": 2}));
    let many = post(
        s.addr(),
        "/v1/embeddings",
        &json!({"model": "e", "input": ["hello world", "other"], "dimensions": 4}),
    )
    .json();
    let data = many["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["embedding"].as_array().unwrap().len(), 4);
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);
}

#[test]
fn models_list() {
    let s = server();
    let v = get(s.addr(), "/v1/models").json();
    assert_eq!(v["object"], "list");
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == "mock-model"));
}

#[test]
fn invalid_json_and_unknown_path() {
    let s = server();
    let r = post_raw(s.addr(), "/v1/chat/completions", b"{not json");
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("invalid JSON"));
    let r = post_raw(s.addr(), "/v2/unknown", b"{}");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"]["message"].is_string());
}

#[test]
fn same_request_same_answer() {
    let s = server();
    let a = post(s.addr(), "/v1/chat/completions", &chat_request(true)).data();
    let b = post(s.addr(), "/v1/chat/completions", &chat_request(true)).data();
    assert_ne!(a[0]["id"], b[0]["id"]);
    let a: Vec<Value> = a.into_iter().map(normalized).collect();
    let b: Vec<Value> = b.into_iter().map(normalized).collect();
    assert_eq!(a, b);
}
