//! ai-proxy driven callback by callback against the mock host.

mod common;

use common::*;
use serde_json::json;
use switchyard_filter::host::BodyFacts;
use switchyard_filter::mock::{MockHost, SharedStore};
use switchyard_filter::Action;

const COMPLETION: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"deepseek-chat","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#;

fn deepseek() -> serde_json::Value {
    json!({"provider": {"type": "deepseek", "apiTokens": ["sk-d"]}})
}

#[test]
fn passthrough_rewrites_target_and_credentials_only() {
    let root = proxy_root(deepseek());
    let body = json!({"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]});
    let mut host = chat(body.clone()).with_cluster("provider-upstream");
    let mut req = root.new_request();
    let (h, b) = send_request(&mut req, &mut host);
    assert_eq!((h, b), (Action::Continue, Some(Action::Continue)));
    assert_eq!(
        host.request_header_value(":authority"),
        Some("api.deepseek.com")
    );
    assert_eq!(
        host.request_header_value(":path"),
        Some("/chat/completions")
    );
    assert_eq!(
        host.request_header_value("authorization"),
        Some("Bearer sk-d")
    );
    assert_eq!(host.request_header_value("accept-encoding"), None);
    // Nothing to change: the body is untouched and its length stays.
    assert_eq!(host.request_json(), body);
    assert_eq!(host.calls_of("set_request_body"), 0);
    let out = receive(
        &mut req,
        &mut host,
        200,
        &[("content-type", "application/json")],
        &[COMPLETION.as_bytes()],
    );
    assert_eq!(out, COMPLETION.as_bytes());
    let facts = host.log_facts.clone().unwrap_or_default();
    assert!(facts.contains("input_tokens=5 output_tokens=2"), "{facts}");
    let requests =
        host.counters.borrow().keys().any(|k| {
            k.starts_with("gen_ai_client_requests{") && k.contains("status_class=\"2xx\"")
        });
    assert!(requests, "{:?}", host.counters.borrow());
}

#[test]
fn client_credentials_never_reach_the_vendor() {
    let root = proxy_root(deepseek());
    let mut host = chat(json!({"model": "m", "messages": []}));
    host.request_headers
        .push(("x-api-key".into(), "client-key".into()));
    host.request_headers
        .push(("x-goog-api-key".into(), "client-key".into()));
    send_request(&mut root.new_request(), &mut host);
    let leaked: Vec<_> = host
        .request_headers
        .iter()
        .filter(|(_, v)| v.contains("client"))
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");
}

#[test]
fn model_mapping_rewrites_the_body() {
    let root = proxy_root(
        json!({"provider": {"type": "deepseek", "apiTokens": ["sk-d"],
        "modelMapping": {"gpt-4o": "deepseek-chat", "*": "deepseek-reasoner"}}}),
    );
    let mut host = chat(json!({"model": "gpt-4o", "messages": [], "temperature": 0.5}));
    send_request(&mut root.new_request(), &mut host);
    assert_eq!(host.request_json()["model"], "deepseek-chat");
    assert_eq!(host.request_json()["temperature"], 0.5);
    assert_eq!(host.request_header_value("content-length"), None);

    // Unknown model in the header phase (no metadata filter): mapped in the body phase.
    let body = json!({"model": "other", "messages": []});
    let mut host = MockHost::post("/v1/chat/completions", body.to_string().as_bytes());
    send_request(&mut root.new_request(), &mut host);
    assert_eq!(host.request_json()["model"], "deepseek-reasoner");
}

#[test]
fn bad_input_gets_openai_errors() {
    let root = proxy_root(deepseek());
    let cases: Vec<(MockHost, u16, &str)> = vec![
        (
            MockHost::post("/v1/chat/completions", b"{not json"),
            400,
            "invalid_json",
        ),
        (
            MockHost::post("/v1/chat/completions", br#"{"messages":[]}"#),
            400,
            "missing_model",
        ),
        (
            MockHost::post("/v1/chat/completions", b"[1,2]"),
            400,
            "invalid_body",
        ),
        (MockHost::post("/v1/nope", b"{}"), 404, "unsupported_api"),
        (
            MockHost::post("/v1/chat/completions", b"{}").with_facts(BodyFacts {
                invalid_json: true,
                ..BodyFacts::default()
            }),
            400,
            "invalid_json",
        ),
    ];
    for (mut host, status, code) in cases {
        let mut req = root.new_request();
        let (h, b) = send_request(&mut req, &mut host);
        let reply = host
            .local_reply
            .clone()
            .unwrap_or_else(|| panic!("no reply for {code}"));
        assert_eq!(reply.status, status, "{code}");
        assert_eq!(reply.json()["error"]["code"], code, "{:?}", reply.json());
        assert!(h == Action::Pause || b == Some(Action::Pause));
    }
    // An empty body never reaches the body phase: the header phase answers.
    let mut host = MockHost::post("/v1/chat/completions", b"");
    let a = root.new_request().on_request_headers(&mut host, true);
    assert_eq!(a, Action::Pause);
    assert_eq!(host.local_reply.map(|r| r.status), Some(400));
}

#[test]
fn too_large_bodies_are_refused() {
    let root = proxy_root(
        json!({"provider": {"type": "deepseek", "apiTokens": ["k"]}, "maxRequestBodyBytes": 64}),
    );
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "x".repeat(100)}]});
    let mut host = chat(body);
    send_request(&mut root.new_request(), &mut host);
    assert_eq!(host.local_reply.map(|r| r.status), Some(413));

    // Hosts that hold the headers for the body (native): the limit comes before the body is
    // parsed, so an oversized body is a 413 whatever it holds, for a translated vendor too.
    let claude = proxy_root(
        json!({"provider": {"type": "claude", "apiTokens": ["k"]}, "maxRequestBodyBytes": 64}),
    );
    let valid = json!({"model": "m", "max_tokens": 8,
        "messages": [{"role": "user", "content": "x".repeat(100)}]})
    .to_string();
    let invalid = format!("{{\"model\": \"m\", {}", "x".repeat(100));
    for (root, body) in [
        (&root, &valid),
        (&root, &invalid),
        (&claude, &valid),
        (&claude, &invalid),
    ] {
        let mut host = MockHost::post("/v1/chat/completions", body.as_bytes());
        host.holds_headers_for_body = true;
        let mut req = root.new_request();
        assert_eq!(req.on_request_headers(&mut host, false), Action::Pause);
        let size = host.request_body.len();
        assert_eq!(req.on_request_body(&mut host, size, true), Action::Pause);
        let reply = host.local_reply.expect("a local reply");
        assert_eq!(reply.status, 413, "{body}");
        assert_eq!(reply.json()["error"]["code"], "request_too_large");
    }
}

#[test]
fn messages_clients_get_anthropic_shaped_errors() {
    let root = proxy_root(deepseek());
    let mut host = MockHost::post("/v1/messages", b"{oops");
    send_request(&mut root.new_request(), &mut host);
    let reply = host.local_reply.expect("reply");
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["type"], "error");
    assert_eq!(reply.json()["error"]["type"], "invalid_request_error");
}

#[test]
fn chat_to_claude_plain() {
    let root = proxy_root(json!({"provider": {"type": "claude", "apiTokens": ["sk-ant"]}}));
    let mut host = chat(json!({"model": "claude-sonnet-4-5", "max_tokens": 64,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}));
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
    assert_eq!(sent["messages"][0]["role"], "user");
    let answer = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"hello"}],"stop_reason":"end_turn","usage":{"input_tokens":9,"output_tokens":3}}"#;
    let out = receive(
        &mut req,
        &mut host,
        200,
        &[("content-type", "application/json")],
        &[answer],
    );
    let out = json(&out);
    assert_eq!(out["object"], "chat.completion");
    assert_eq!(out["choices"][0]["message"]["content"], "hello");
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
    assert_eq!(out["usage"]["prompt_tokens"], 9);
}

#[test]
fn vendor_errors_are_converted() {
    let root = proxy_root(json!({"provider": {"type": "claude", "apiTokens": ["sk-ant"]}}));
    let mut host = chat(
        json!({"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
    );
    let err = br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
    let out = exchange(
        &root,
        &mut host,
        429,
        &[("content-type", "application/json")],
        err,
    );
    let out = json(&out);
    assert_eq!(out["error"]["message"], "slow down");
    assert_eq!(host.response_header_value("content-length"), None);
}

/// The stream with its completion ids (random per request; `chatcmpl-<hex>`, or `msg_<hex>`
/// for Anthropic clients) made equal.
fn same_ids(out: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(out).into_owned();
    for prefix in ["chatcmpl-", "msg_"] {
        let mut rest = text.as_str();
        let mut norm = String::new();
        while let Some(at) = rest.find(prefix) {
            let end = at + prefix.len();
            norm.push_str(&rest[..end]);
            rest = rest[end..].trim_start_matches(|c: char| c.is_ascii_hexdigit());
            norm.push_str("ID");
        }
        norm.push_str(rest);
        text = norm;
    }
    text
}

/// Every split of `stream` into two chunks gives the client the same bytes as one chunk.
fn every_split_matches(
    root: &switchyard_filter::proxy::ProxyRoot,
    make: impl Fn() -> MockHost,
    stream: &[u8],
    ct: &str,
) -> Vec<u8> {
    let mut whole_host = make();
    let mut req = root.new_request();
    send_request(&mut req, &mut whole_host);
    let whole = receive(
        &mut req,
        &mut whole_host,
        200,
        &[("content-type", ct)],
        &[stream],
    );
    for cut in 0..=stream.len() {
        let (a, b) = stream.split_at(cut);
        let mut host = make();
        let mut req = root.new_request();
        send_request(&mut req, &mut host);
        let out = receive(&mut req, &mut host, 200, &[("content-type", ct)], &[a, b]);
        assert_eq!(same_ids(&out), same_ids(&whole), "split at {cut}");
    }
    whole
}

#[test]
fn chat_to_claude_streamed_at_every_split() {
    let root = proxy_root(json!({"provider": {"type": "claude", "apiTokens": ["sk-ant"]}}));
    let stream = fixture("anthropic/openai_to_anthropic/stream/text_usage.in.sse");
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": true,
        "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "hi"}]});
    let out = every_split_matches(&root, || chat(body.clone()), &stream, "text/event-stream");
    let events = sse_data(&out);
    assert_eq!(events.last(), Some(&json!("[DONE]")));
    let usage: Vec<_> = events
        .iter()
        .filter(|e| e.get("usage").is_some_and(|u| !u.is_null()))
        .collect();
    assert_eq!(usage.len(), 1, "{events:?}");
    assert_eq!(usage[0]["choices"], json!([]));
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
}

#[test]
fn chat_to_gemini_streamed_at_every_split() {
    let root = proxy_root(json!({"provider": {"type": "gemini", "apiTokens": ["g"]}}));
    let stream = fixture("gemini/stream/text.in.sse");
    let body = json!({"model": "gemini-2.5-flash", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let mut host = chat(body.clone());
    send_request(&mut root.new_request(), &mut host);
    assert_eq!(
        host.request_header_value(":path"),
        Some("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    );
    assert_eq!(host.request_header_value("x-goog-api-key"), Some("g"));
    assert!(host.request_json().get("contents").is_some());
    let out = every_split_matches(&root, || chat(body.clone()), &stream, "text/event-stream");
    let events = sse_data(&out);
    assert_eq!(events.last(), Some(&json!("[DONE]")));
    // The client did not ask for usage: no usage-only chunk.
    assert!(
        !events.iter().any(|e| e.get("choices") == Some(&json!([]))),
        "{events:?}"
    );
    let text: String = events
        .iter()
        .filter_map(|e| {
            e.pointer("/choices/0/delta/content")?
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert!(text.starts_with("Hello"), "{text}");
}

#[test]
fn messages_to_chat_streamed_at_every_split() {
    let root = proxy_root(deepseek());
    let stream = fixture("anthropic/anthropic_to_openai/stream/text_usage.in.sse");
    let body = json!({"model": "deepseek-chat", "max_tokens": 64, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let make =
        || MockHost::post("/v1/messages", body.to_string().as_bytes()).with_facts(facts_of(&body));
    let mut host = make();
    send_request(&mut root.new_request(), &mut host);
    assert_eq!(
        host.request_header_value(":path"),
        Some("/chat/completions")
    );
    assert_eq!(host.request_json()["stream_options"]["include_usage"], true);
    let out = every_split_matches(&root, make, &stream, "text/event-stream");
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("event: message_start"), "{text}");
    assert!(text.contains("event: message_stop"), "{text}");
}

#[test]
fn messages_to_gemini_streamed_at_every_split() {
    let root = proxy_root(json!({"provider": {"type": "gemini", "apiTokens": ["g"]}}));
    let stream = fixture("gemini/stream/text.in.sse");
    let body = json!({"model": "gemini-2.5-flash", "max_tokens": 64, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let make =
        || MockHost::post("/v1/messages", body.to_string().as_bytes()).with_facts(facts_of(&body));
    let out = every_split_matches(&root, make, &stream, "text/event-stream");
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("event: content_block_delta"), "{text}");
    assert!(text.contains("Hello"), "{text}");
}

/// The bug of issue 16: a metadata filter that lifts only `model` and `stream` left
/// `include_usage` unknown, the filter took it for false and dropped the usage chunk the
/// client asked for.
#[test]
fn usage_chunk_survives_minimal_metadata() {
    let usage_stream = concat!(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"hi\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\n",
        "data: [DONE]\n\n"
    );
    let root = proxy_root(deepseek());
    for asked in [true, false] {
        let body = json!({"model": "deepseek-chat", "stream": true,
            "stream_options": {"include_usage": asked}, "messages": [{"role": "user", "content": "hi"}]});
        let minimal = BodyFacts {
            model: Some("deepseek-chat".into()),
            stream: Some(true),
            ..BodyFacts::default()
        };
        let mut host =
            MockHost::post("/v1/chat/completions", body.to_string().as_bytes()).with_facts(minimal);
        let mut req = root.new_request();
        send_request(&mut req, &mut host);
        // The vendor is always asked for usage (the gateway counts tokens).
        assert_eq!(host.request_json()["stream_options"]["include_usage"], true);
        let out = receive(
            &mut req,
            &mut host,
            200,
            &[("content-type", "text/event-stream")],
            &[usage_stream.as_bytes()],
        );
        let has_usage = sse_data(&out)
            .iter()
            .any(|e| e.get("choices") == Some(&json!([])));
        assert_eq!(
            has_usage,
            asked,
            "include_usage {asked}: {}",
            String::from_utf8_lossy(&out)
        );
        assert!(host
            .log_facts
            .clone()
            .unwrap_or_default()
            .contains("input_tokens=3"));
    }
}

fn failover_config() -> serde_json::Value {
    json!({"provider": {"type": "deepseek", "apiTokens": ["sk-1", "sk-2"],
        "failover": {"enabled": true, "failureThreshold": 2, "successThreshold": 1,
                     "healthCheckInterval": 1000, "healthCheckModel": "deepseek-chat",
                     "failoverOnStatus": ["5.*"]},
        "retryOnFailure": {"enabled": true, "maxRetries": 1, "retryTimeout": 30000, "retryOnStatus": ["5.*"]}}})
}

#[test]
fn retry_goes_out_with_the_other_token() {
    on_both_stores(retry_goes_out_with_the_other_token_on);
}

// A scenario run by a test (on both stores): it fails as a test does.
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
fn retry_goes_out_with_the_other_token_on(store: SharedStore) {
    let root = proxy_root(failover_config());
    let mut host = chat(json!({"model": "deepseek-chat", "messages": []}))
        .with_shared(&store)
        .with_cluster("provider-upstream");
    let mut req = root.new_request();
    send_request(&mut req, &mut host);
    let first = host
        .request_header_value("authorization")
        .map(str::to_string)
        .expect("auth");
    host.answer(503, &[("content-type", "application/json")], b"{}");
    assert_eq!(req.on_response_headers(&mut host, false), Action::Pause);
    let retry = host.callouts.last().cloned().expect("retry callout");
    assert_eq!(retry.cluster, "provider-upstream");
    let second = retry.header("authorization").expect("auth").to_string();
    assert_ne!(first, second);
    assert_eq!(retry.header(":path"), Some("/chat/completions"));
    assert_eq!(
        retry.body.as_deref().map(json),
        Some(json!({"model": "deepseek-chat", "messages": []}))
    );
    // The retry answers: the client gets its answer.
    let answer = switchyard_filter::CalloutResponse {
        status: Some(200),
        headers: vec![
            (":status".into(), "200".into()),
            ("content-type".into(), "application/json".into()),
        ],
        body: COMPLETION.as_bytes().to_vec(),
    };
    req.on_callout_done(&mut host, retry.id, answer);
    let reply = host.local_reply.clone().expect("answered with the retry");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, COMPLETION.as_bytes());
    assert!(reply
        .headers
        .contains(&("x-switchyard-retries".into(), "1".into())));
    // The original response is then let through untouched (it is not sent).
    assert_eq!(req.on_response_headers(&mut host, false), Action::Continue);
}

#[test]
fn failing_token_leaves_rotation_and_comes_back_after_a_health_check() {
    on_both_stores(failing_token_leaves_rotation_and_comes_back_after_a_health_check_on);
}

// A scenario run by a test (on both stores): it fails as a test does.
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
fn failing_token_leaves_rotation_and_comes_back_after_a_health_check_on(store: SharedStore) {
    let mut root = proxy_root(
        json!({"provider": {"type": "deepseek", "apiTokens": ["sk-1", "sk-2"],
        "failover": {"enabled": true, "failureThreshold": 2, "successThreshold": 1,
                     "healthCheckInterval": 1000, "healthCheckModel": "deepseek-chat"}}}),
    );
    let now = 1_700_000_000_000u64;
    fn send_on(
        root: &switchyard_filter::proxy::ProxyRoot,
        store: &SharedStore,
        now: u64,
        expect_token: Option<&str>,
        status: u16,
    ) -> String {
        let mut host = chat(json!({"model": "deepseek-chat", "messages": []}))
            .with_shared(store)
            .with_cluster("provider-upstream");
        host.now_ms.set(now);
        let mut req = root.new_request();
        send_request(&mut req, &mut host);
        let token = host
            .request_header_value("authorization")
            .unwrap_or_default()
            .to_string();
        if let Some(t) = expect_token {
            assert_eq!(token, t);
        }
        receive(
            &mut req,
            &mut host,
            status,
            &[("content-type", "application/json")],
            &[b"{}"],
        );
        token
    }
    let send = |t: Option<&str>, status: u16| send_on(&root, &store, now, t, status);
    // Fail whichever token is drawn until one is out (threshold 2).
    let mut fails: std::collections::HashMap<String, u32> = Default::default();
    let down = loop {
        let t = send(None, 500);
        let n = fails.entry(t.clone()).or_default();
        *n += 1;
        if *n == 2 {
            break t;
        }
    };
    let up = if down == "Bearer sk-1" {
        "Bearer sk-2"
    } else {
        "Bearer sk-1"
    };
    for _ in 0..20 {
        send(Some(up), 200);
    }
    // The tick sends a health check with the failed token; success brings it back.
    let mut tick_host = MockHost::default().with_shared(&store);
    tick_host.now_ms.set(now + 5_000);
    root.on_tick(&mut tick_host);
    let check = tick_host
        .callouts
        .last()
        .cloned()
        .expect("health check sent");
    assert_eq!(check.header("authorization"), Some(down.as_str()));
    assert_eq!(check.header("x-switchyard-health-check"), Some("1"));
    let ok = switchyard_filter::CalloutResponse {
        status: Some(200),
        ..Default::default()
    };
    root.on_callout_done(&tick_host, check.id, &ok);
    let back = (0..40).any(|_| send_on(&root, &store, now + 5_000, None, 200) == down);
    assert!(back, "{down} did not come back");
}

#[test]
fn context_file_is_fetched_once_and_inserted() {
    let root = proxy_root(json!({"provider": {"type": "deepseek", "apiTokens": ["k"],
        "context": {"fileUrl": "http://files.local/ctx.md", "serviceName": "files", "servicePort": 80}}}));
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "q"}]});
    let mut host = chat(body.clone());
    let mut req = root.new_request();
    assert_eq!(req.on_request_headers(&mut host, false), Action::Pause);
    let call = host.callouts.last().cloned().expect("fetch");
    assert_eq!(call.cluster, "files");
    assert_eq!(call.header(":path"), Some("/ctx.md"));
    let file = switchyard_filter::CalloutResponse {
        status: Some(200),
        headers: vec![],
        body: b"You are helpful.".to_vec(),
    };
    req.on_callout_done(&mut host, call.id, file);
    assert_eq!(host.resumed_request, 1);
    let size = host.request_body.len();
    req.on_request_body(&mut host, size, true);
    let sent = host.request_json();
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "You are helpful."})
    );
    // Cached: the next request does not fetch.
    let mut host = chat(body);
    let mut req = root.new_request();
    assert_eq!(req.on_request_headers(&mut host, false), Action::Continue);
    assert!(host.callouts.is_empty());

    // A failed fetch answers 500 with an OpenAI error.
    let root = proxy_root(json!({"provider": {"type": "deepseek", "apiTokens": ["k"],
        "context": {"fileUrl": "http://files.local/missing.md", "serviceName": "files", "servicePort": 80}}}));
    let mut host = chat(json!({"model": "m", "messages": []}));
    let mut req = root.new_request();
    req.on_request_headers(&mut host, false);
    let id = host.callouts.last().map(|c| c.id).unwrap_or_default();
    req.on_callout_done(
        &mut host,
        id,
        switchyard_filter::CalloutResponse {
            status: Some(404),
            ..Default::default()
        },
    );
    let reply = host.local_reply.expect("reply");
    assert_eq!(reply.json()["error"]["code"], "context_unavailable");
}

#[test]
fn provider_follows_the_routing_header() {
    let root = proxy_root(json!({"providers": [
        {"id": "qianwen", "type": "qwen", "apiTokens": ["sk-q"]},
        {"id": "deepseek", "type": "deepseek", "apiTokens": ["sk-d"]}],
        "activeProviderId": "qianwen", "activeProviderHeader": "x-selected-provider"}));
    let mut host = chat(json!({"model": "m", "messages": []}));
    host.request_headers
        .push(("x-selected-provider".into(), "deepseek".into()));
    send_request(&mut root.new_request(), &mut host);
    assert_eq!(
        host.request_header_value(":authority"),
        Some("api.deepseek.com")
    );
    let mut host = chat(json!({"model": "m", "messages": []}));
    send_request(&mut root.new_request(), &mut host);
    assert_eq!(
        host.request_header_value(":authority"),
        Some("dashscope.aliyuncs.com")
    );
}

#[test]
fn empty_vendor_answer_to_a_conversion_is_a_502() {
    let root = proxy_root(json!({"provider": {"type": "claude", "apiTokens": ["k"]}}));
    let mut host = chat(
        json!({"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
    );
    let out = exchange(
        &root,
        &mut host,
        200,
        &[("content-type", "application/json")],
        b"",
    );
    let _ = out;
    let mut host = chat(
        json!({"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
    );
    let mut req = root.new_request();
    send_request(&mut req, &mut host);
    host.answer(200, &[], b"");
    assert_eq!(req.on_response_headers(&mut host, true), Action::Pause);
    assert_eq!(host.local_reply.map(|r| r.status), Some(502));
}

#[test]
fn chat_to_gemini_plain() {
    let root = proxy_root(json!({"provider": {"type": "gemini", "apiTokens": ["g"]}}));
    let mut host = chat(json!({"model": "gemini-2.5-flash", "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "2+2?"}]}));
    let mut req = root.new_request();
    send_request(&mut req, &mut host);
    assert_eq!(
        host.request_header_value(":path"),
        Some("/v1beta/models/gemini-2.5-flash:generateContent")
    );
    let sent = host.request_json();
    assert_eq!(sent["systemInstruction"]["parts"][0]["text"], "be brief");
    assert_eq!(sent["contents"][0]["role"], "user");
    let answer = fixture("gemini/response/text.in.json");
    let out = json(&receive(
        &mut req,
        &mut host,
        200,
        &[("content-type", "application/json")],
        &[&answer],
    ));
    assert_eq!(out["object"], "chat.completion");
    assert_eq!(out["choices"][0]["message"]["content"], "2 + 2 = 4.");
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
    assert_eq!(out["usage"]["prompt_tokens"], 9);
    assert_eq!(out["usage"]["completion_tokens"], 7);
}

#[test]
fn messages_to_chat_and_to_gemini_plain() {
    let body = json!({"model": "m", "max_tokens": 64, "system": "be brief",
        "messages": [{"role": "user", "content": "2+2?"}]});
    let make =
        || MockHost::post("/v1/messages", body.to_string().as_bytes()).with_facts(facts_of(&body));

    // To an OpenAI-compatible vendor: chat completions and back to a Messages answer.
    let root = proxy_root(deepseek());
    let mut host = make();
    let mut req = root.new_request();
    send_request(&mut req, &mut host);
    assert_eq!(
        host.request_header_value(":path"),
        Some("/chat/completions")
    );
    assert_eq!(
        host.request_json()["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    let out = json(&receive(
        &mut req,
        &mut host,
        200,
        &[("content-type", "application/json")],
        &[COMPLETION.as_bytes()],
    ));
    assert_eq!(out["type"], "message");
    assert_eq!(out["content"][0], json!({"type": "text", "text": "hi"}));
    assert_eq!(out["stop_reason"], "end_turn");
    assert_eq!(out["usage"]["input_tokens"], 5);

    // To Gemini: through chat in both directions.
    let root = proxy_root(json!({"provider": {"type": "gemini", "apiTokens": ["g"]}}));
    let mut host = make();
    let mut req = root.new_request();
    send_request(&mut req, &mut host);
    assert_eq!(
        host.request_header_value(":path"),
        Some("/v1beta/models/m:generateContent")
    );
    assert_eq!(
        host.request_json()["systemInstruction"]["parts"][0]["text"],
        "be brief"
    );
    let answer = fixture("gemini/response/text.in.json");
    let out = json(&receive(
        &mut req,
        &mut host,
        200,
        &[("content-type", "application/json")],
        &[&answer],
    ));
    assert_eq!(out["type"], "message");
    assert_eq!(out["content"][0]["text"], "2 + 2 = 4.");
    assert_eq!(out["usage"]["output_tokens"], 7);
    // A vendor error comes back in Anthropic's shape.
    let mut host = make();
    let err = br#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}"#;
    let out = json(&exchange(
        &root,
        &mut host,
        429,
        &[("content-type", "application/json")],
        err,
    ));
    assert_eq!(out["type"], "error");
    assert_eq!(out["error"]["type"], "rate_limit_error");
}
