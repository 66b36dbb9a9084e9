//! ai-proxy serving the OpenAI Responses API (`POST /v1/responses`) to each vendor family,
//! and the gateway's own `GET /v1/models`, driven callback by callback against the mock host.

mod common;

use common::*;
use serde_json::{json, Value};
use switchyard_filter::mock::MockHost;
use switchyard_filter::Action;

fn responses(body: &Value) -> MockHost {
    MockHost::post("/v1/responses", body.to_string().as_bytes()).with_facts(facts_of(body))
}

/// The client's bytes with this request's response id (random per request, and part of
/// every item id) made equal.
fn same_ids(out: &[u8]) -> String {
    let text = String::from_utf8_lossy(out).into_owned();
    let Some(at) = text.find("\"resp_") else {
        return text;
    };
    let hex: String = text[at + 6..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    if hex.is_empty() {
        return text;
    }
    text.replace(&hex, "ID")
}

/// Every split of `stream` into two chunks gives the client the same bytes as one chunk.
fn every_split_matches(
    root: &switchyard_filter::proxy::ProxyRoot,
    body: &Value,
    stream: &[u8],
) -> (Vec<u8>, String) {
    let ct = [("content-type", "text/event-stream")];
    let mut whole_host = responses(body);
    let mut req = root.new_request();
    send_request(&mut req, &mut whole_host);
    let whole = receive(&mut req, &mut whole_host, 200, &ct, &[stream]);
    for cut in 0..=stream.len() {
        let (a, b) = stream.split_at(cut);
        let mut host = responses(body);
        let mut req = root.new_request();
        send_request(&mut req, &mut host);
        let out = receive(&mut req, &mut host, 200, &ct, &[a, b]);
        assert_eq!(same_ids(&out), same_ids(&whole), "split at {cut}");
    }
    let facts = whole_host.log_facts.clone().unwrap_or_default();
    (whole, facts)
}

/// The SSE events as `(event name, data)`.
fn events(out: &[u8]) -> Vec<(String, Value)> {
    let text = String::from_utf8_lossy(out);
    let mut found = Vec::new();
    let mut name = String::new();
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("event:") {
            name = n.trim().to_string();
        } else if let Some(d) = line.strip_prefix("data:") {
            found.push((name.clone(), json(d.trim().as_bytes())));
        }
    }
    found
}

/// Checks every Responses stream must pass: named events, increasing sequence numbers, one
/// terminal event; returns the terminal event's response object.
fn check_grammar(out: &[u8]) -> Value {
    let evs = events(out);
    assert!(!evs.is_empty(), "{}", String::from_utf8_lossy(out));
    assert_eq!(evs[0].0, "response.created");
    for (i, (name, data)) in evs.iter().enumerate() {
        assert_eq!(data["type"], name.as_str());
        assert_eq!(data["sequence_number"], i);
    }
    let (last, data) = evs.last().cloned().unwrap_or_default();
    assert_eq!(last, "response.completed", "{evs:?}");
    data["response"].clone()
}

fn text_of(response: &Value) -> String {
    response["output"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["text"].as_str().map(str::to_string))
        .collect()
}

const CHAT_COMPLETION: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"deepseek-chat","choices":[{"index":0,"message":{"role":"assistant","content":"hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#;

#[test]
fn openai_compatible_plain_goes_through_chat() {
    let root = proxy_root(
        json!({"provider": {"type": "deepseek", "apiTokens": ["sk-d"],
        "modelMapping": {"gpt-4o": "deepseek-chat"}}}),
    );
    let body = json!({"model": "gpt-4o", "instructions": "be brief", "input": "hi",
        "max_output_tokens": 50, "metadata": {"k": "v"}});
    let mut host = responses(&body);
    let mut req = root.new_request();
    let (h, b) = send_request(&mut req, &mut host);
    assert_eq!((h, b), (Action::Continue, Some(Action::Continue)));
    assert_eq!(
        host.request_header_value(":path"),
        Some("/chat/completions")
    );
    assert_eq!(
        host.request_header_value("authorization"),
        Some("Bearer sk-d")
    );
    assert_eq!(host.request_header_value("content-length"), None);
    let sent = host.request_json();
    assert_eq!(sent["model"], "deepseek-chat");
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(sent["messages"][1]["role"], "user");
    assert_eq!(sent["max_tokens"], 50);
    let out = receive(
        &mut req,
        &mut host,
        200,
        &[("content-type", "application/json")],
        &[CHAT_COMPLETION.as_bytes()],
    );
    let out = json(&out);
    assert_eq!(out["object"], "response");
    assert!(
        out["id"].as_str().is_some_and(|i| i.starts_with("resp_")),
        "{out}"
    );
    assert_eq!(out["status"], "completed");
    assert_eq!(out["metadata"], json!({"k": "v"}));
    assert_eq!(text_of(&out), "hi there");
    assert_eq!(out["usage"]["input_tokens"], 5);
    assert_eq!(out["usage"]["output_tokens"], 2);
    let facts = host.log_facts.clone().unwrap_or_default();
    assert!(facts.contains("input_tokens=5 output_tokens=2"), "{facts}");
    let chat_op = host
        .counters
        .borrow()
        .keys()
        .any(|k| k.contains("gen_ai_operation_name=\"chat\""));
    assert!(chat_op, "{:?}", host.counters.borrow());
}

#[test]
fn openai_compatible_stream_at_every_split() {
    let root = proxy_root(json!({"provider": {"type": "deepseek", "apiTokens": ["sk-d"]}}));
    let body = json!({"model": "deepseek-chat", "input": "hi", "stream": true});
    let mut host = responses(&body);
    send_request(&mut root.new_request(), &mut host);
    let sent = host.request_json();
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["stream_options"]["include_usage"], true);
    let stream = fixture("responses/stream/text_usage.in.sse");
    let (out, facts) = every_split_matches(&root, &body, &stream);
    let done = check_grammar(&out);
    assert_eq!(text_of(&done), "Hello, wörld 👋");
    assert!(done["usage"]["input_tokens"].as_u64().is_some(), "{done}");
    let expected = format!(
        "input_tokens={}",
        done["usage"]["input_tokens"].as_u64().unwrap_or_default()
    );
    assert!(facts.contains(&expected), "{facts}");
}

#[test]
fn openai_compatible_stream_with_tool_calls() {
    let root = proxy_root(json!({"provider": {"type": "vllm", "apiTokens": ["k"],
        "vllmServerHost": "vllm:8000"}}));
    let body = json!({"model": "local-model", "input": "call", "stream": true,
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}]});
    let stream = fixture("responses/stream/tools_parallel.in.sse");
    let (out, _) = every_split_matches(&root, &body, &stream);
    let done = check_grammar(&out);
    let calls: Vec<&Value> = done["output"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["type"] == "function_call")
        .collect();
    assert!(!calls.is_empty(), "{done}");
    assert!(calls.iter().all(|c| c["call_id"].is_string()), "{done}");
    assert!(events(&out)
        .iter()
        .any(|(n, _)| n == "response.function_call_arguments.done"));
}

#[test]
fn claude_plain_and_errors() {
    let root = proxy_root(json!({"provider": {"type": "claude", "apiTokens": ["sk-ant"]}}));
    let body = json!({"model": "claude-sonnet-4-5", "instructions": "be brief",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]});
    let mut host = responses(&body);
    let mut req = root.new_request();
    send_request(&mut req, &mut host);
    assert_eq!(host.request_header_value(":path"), Some("/v1/messages"));
    assert_eq!(host.request_header_value("x-api-key"), Some("sk-ant"));
    assert_eq!(
        host.request_header_value("anthropic-version"),
        Some("2023-06-01")
    );
    let sent = host.request_json();
    assert_eq!(sent["system"][0]["text"], "be brief");
    assert!(sent["max_tokens"].as_u64().is_some(), "{sent}");
    let answer = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"hello"}],"stop_reason":"end_turn","usage":{"input_tokens":9,"output_tokens":3}}"#;
    let out = receive(
        &mut req,
        &mut host,
        200,
        &[("content-type", "application/json")],
        &[answer],
    );
    let out = json(&out);
    assert_eq!(out["object"], "response");
    assert_eq!(text_of(&out), "hello");
    assert_eq!(out["usage"]["input_tokens"], 9);
    assert_eq!(out["usage"]["output_tokens"], 3);
    let facts = host.log_facts.clone().unwrap_or_default();
    assert!(facts.contains("input_tokens=9 output_tokens=3"), "{facts}");

    // A vendor error comes back in the OpenAI error shape Responses clients read.
    let mut host = responses(&body);
    let err = br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
    let out = exchange(
        &root,
        &mut host,
        429,
        &[("content-type", "application/json")],
        err,
    );
    assert_eq!(json(&out)["error"]["message"], "slow down");
}

#[test]
fn claude_stream_at_every_split() {
    let root = proxy_root(json!({"provider": {"type": "claude", "apiTokens": ["sk-ant"]}}));
    let body = json!({"model": "claude-sonnet-4-5", "input": "hi", "stream": true});
    let mut host = responses(&body);
    send_request(&mut root.new_request(), &mut host);
    assert_eq!(host.request_json()["stream"], true);
    let stream = fixture("responses/from_claude/text_usage.in.sse");
    let (out, facts) = every_split_matches(&root, &body, &stream);
    let done = check_grammar(&out);
    assert_eq!(text_of(&done), "Hello, wörld 👋");
    assert_eq!(done["usage"]["output_tokens"], 15);
    assert!(facts.contains("output_tokens=15"), "{facts}");
}

#[test]
fn claude_stream_with_tool_calls() {
    let root = proxy_root(json!({"provider": {"type": "claude", "apiTokens": ["sk-ant"]}}));
    let body = json!({"model": "claude-sonnet-4-5", "input": "call", "stream": true,
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]});
    let stream = fixture("responses/from_claude/tools_parallel.in.sse");
    let (out, _) = every_split_matches(&root, &body, &stream);
    let done = check_grammar(&out);
    assert!(
        done["output"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|i| i["type"] == "function_call"),
        "{done}"
    );
}

#[test]
fn gemini_plain() {
    let root = proxy_root(json!({"provider": {"type": "gemini", "apiTokens": ["g"]}}));
    let body = json!({"model": "gemini-2.5-flash", "input": "hi"});
    let mut host = responses(&body);
    let mut req = root.new_request();
    send_request(&mut req, &mut host);
    assert_eq!(
        host.request_header_value(":path"),
        Some("/v1beta/models/gemini-2.5-flash:generateContent")
    );
    assert_eq!(host.request_header_value("x-goog-api-key"), Some("g"));
    assert!(host.request_json().get("contents").is_some());
    let answer = br#"{"candidates":[{"content":{"role":"model","parts":[{"text":"hello"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":2,"totalTokenCount":6},"modelVersion":"gemini-2.5-flash"}"#;
    let out = receive(
        &mut req,
        &mut host,
        200,
        &[("content-type", "application/json")],
        &[answer],
    );
    let out = json(&out);
    assert_eq!(text_of(&out), "hello");
    assert_eq!(out["usage"]["input_tokens"], 4);
    let facts = host.log_facts.clone().unwrap_or_default();
    assert!(facts.contains("input_tokens=4 output_tokens=2"), "{facts}");
}

#[test]
fn gemini_stream_at_every_split() {
    let root = proxy_root(json!({"provider": {"type": "gemini", "apiTokens": ["g"]}}));
    let body = json!({"model": "gemini-2.5-flash", "input": "hi", "stream": true});
    let mut host = responses(&body);
    send_request(&mut root.new_request(), &mut host);
    assert_eq!(
        host.request_header_value(":path"),
        Some("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    );
    let stream = fixture("responses/from_gemini/text.in.sse");
    let (out, facts) = every_split_matches(&root, &body, &stream);
    let done = check_grammar(&out);
    assert!(text_of(&done).starts_with("Hello"), "{done}");
    assert!(facts.contains("input_tokens="), "{facts}");
    assert!(!facts.contains("input_tokens=-"), "{facts}");
}

#[test]
fn gemini_stream_with_tool_calls() {
    let root = proxy_root(json!({"provider": {"type": "gemini", "apiTokens": ["g"]}}));
    let body = json!({"model": "gemini-2.5-flash", "input": "call", "stream": true,
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]});
    let stream = fixture("responses/from_gemini/tools_parallel.in.sse");
    let (out, _) = every_split_matches(&root, &body, &stream);
    let done = check_grammar(&out);
    assert!(
        done["output"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|i| i["type"] == "function_call"),
        "{done}"
    );
}

const OPENAI_RESPONSE: &str = r#"{"id":"resp_up","object":"response","created_at":1,"status":"completed","model":"gpt-4o-2024-08-06","output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"hi","annotations":[]}]}],"usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":4},"output_tokens":3,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":15}}"#;

#[test]
fn openai_plain_passes_through_with_usage() {
    let root = proxy_root(json!({"provider": {"type": "openai", "apiTokens": ["sk-o"],
        "modelMapping": {"fast": "gpt-4o"}}}));
    let body = json!({"model": "fast", "input": "hi", "tools": [{"type": "web_search"}],
        "previous_response_id": "resp_prev"});
    let mut host = responses(&body);
    let mut req = root.new_request();
    send_request(&mut req, &mut host);
    assert_eq!(host.request_header_value(":path"), Some("/v1/responses"));
    assert_eq!(
        host.request_header_value("authorization"),
        Some("Bearer sk-o")
    );
    // Mapped, otherwise as sent: hosted tools and stored state are OpenAI's to serve.
    let mut expected = body.clone();
    expected["model"] = json!("gpt-4o");
    assert_eq!(host.request_json(), expected);
    let out = receive(
        &mut req,
        &mut host,
        200,
        &[("content-type", "application/json")],
        &[OPENAI_RESPONSE.as_bytes()],
    );
    assert_eq!(out, OPENAI_RESPONSE.as_bytes());
    let facts = host.log_facts.clone().unwrap_or_default();
    assert!(facts.contains("input_tokens=12 output_tokens=3"), "{facts}");
}

#[test]
fn openai_stream_passes_through_untouched_with_usage() {
    let root = proxy_root(json!({"provider": {"type": "openai", "apiTokens": ["sk-o"]}}));
    let body = json!({"model": "gpt-4o", "input": "hi", "stream": true});
    let mut host = responses(&body);
    let mut req = root.new_request();
    send_request(&mut req, &mut host);
    // Nothing to change: no `stream_options` (not a Responses parameter), no rewrite.
    assert_eq!(host.request_json(), body);
    assert_eq!(host.calls_of("set_request_body"), 0);
    let stream = fixture("responses/stream/text_usage.out.sse");
    let mid = stream.len() / 2;
    let out = receive(
        &mut req,
        &mut host,
        200,
        &[("content-type", "text/event-stream")],
        &[&stream[..mid], &stream[mid..]],
    );
    assert_eq!(out, stream);
    let done = check_grammar(&out);
    let facts = host.log_facts.clone().unwrap_or_default();
    let expected = format!(
        "input_tokens={} output_tokens={}",
        done["usage"]["input_tokens"], done["usage"]["output_tokens"]
    );
    assert!(facts.contains(&expected), "{facts} vs {expected}");
}

#[test]
fn openai_context_file_goes_into_a_responses_body() {
    // Converted bodies get the context as a chat system message; OpenAI's own Responses
    // body gets it through `insert_context`.
    let root = proxy_root(json!({"provider": {"type": "openai", "apiTokens": ["sk-o"],
        "context": {"fileUrl": "http://files.example/ctx.md", "serviceName": "files", "servicePort": 80}}}));
    let body = json!({"model": "gpt-4o", "input": "hi"});
    let mut host = responses(&body);
    let mut req = root.new_request();
    assert_eq!(req.on_request_headers(&mut host, false), Action::Pause);
    let Some(call) = host.callouts.last().cloned() else {
        panic!("no context fetch");
    };
    let file = switchyard_filter::CalloutResponse {
        status: Some(200),
        headers: vec![],
        body: b"House rules.".to_vec(),
    };
    req.on_callout_done(&mut host, call.id, file);
    let size = host.request_body.len();
    req.on_request_body(&mut host, size, true);
    let sent = host.request_json();
    assert!(sent.to_string().contains("House rules."), "{sent}");
    assert_eq!(sent["model"], "gpt-4o");
}

#[test]
fn gateway_lists_its_models() {
    let root = proxy_root(json!({"providers": [
        {"id": "ds", "type": "deepseek", "apiTokens": ["k"], "models": ["deepseek-chat"],
         "modelMapping": {"gpt-4o": "deepseek-chat", "gpt-*": "deepseek-reasoner", "*": "x"}},
        {"id": "cl", "type": "claude", "apiTokens": ["k"], "modelMapping": {"sonnet": "claude-sonnet-4-5"}}
    ], "activeProviderId": "ds"}));
    let mut host = MockHost::request(&[(":method", "GET"), (":path", "/v1/models")], 0);
    let mut req = root.new_request();
    assert_eq!(req.on_request_headers(&mut host, true), Action::Pause);
    let Some(reply) = host.local_reply.clone() else {
        panic!("not answered locally");
    };
    assert_eq!(reply.status, 200);
    let ids: Vec<(String, String)> = reply.json()["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            assert_eq!(m["object"], "model");
            (
                m["id"].as_str().unwrap_or_default().to_string(),
                m["owned_by"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let want = [("deepseek-chat", "ds"), ("gpt-4o", "ds"), ("sonnet", "cl")];
    assert_eq!(
        ids,
        want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
    );
    assert_eq!(reply.json()["object"], "list");
}

#[test]
fn balancer_lists_aliases_and_provider_models() {
    let root = balancer_root(json!({
        "providers": [
            {"name": "qianwen", "model": "qwen-max", "models": ["qwen-turbo"]},
            {"name": "deepseek", "model": "deepseek-chat"}
        ],
        "metrics": {"source": "local"}
    }));
    let mut host = MockHost::request(&[(":method", "GET"), (":path", "/v1/models")], 0);
    let mut req = root.new_request();
    assert_eq!(req.on_request_headers(&mut host, true), Action::Pause);
    let Some(reply) = host.local_reply.clone() else {
        panic!("not answered locally");
    };
    let ids: Vec<String> = reply.json()["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(ids, ["auto", "qwen-max", "qwen-turbo", "deepseek-chat"]);
}

#[test]
fn balancer_rewrites_the_alias_of_a_responses_body() {
    let root = balancer_root(json!({
        "providers": [{"name": "deepseek", "model": "deepseek-chat"}],
        "metrics": {"source": "local"}
    }));
    let body = json!({"model": "auto", "input": "hi"});
    let mut host = responses(&body);
    let mut req = root.new_request();
    assert_eq!(balance(&mut req, &mut host), Action::Continue);
    assert_eq!(
        host.request_header_value("x-selected-provider"),
        Some("deepseek")
    );
    assert_eq!(host.request_json()["model"], "deepseek-chat");
    assert_eq!(host.request_json()["input"], "hi");
}
