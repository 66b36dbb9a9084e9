//! ai-proxy with `type: vertex` against the mock host: Gemini and Claude paths and bodies,
//! the service-account token fetched by the root tick and shared by every worker, refreshed
//! ahead of expiry, fetched by a request on a cold start, and a failing token endpoint.

mod common;

use common::*;
use serde_json::{json, Value};
use switchyard_filter::host::CalloutResponse;
use switchyard_filter::mock::{MockHost, SharedStore};
use switchyard_filter::proxy::ProxyRoot;
use switchyard_filter::Action;

/// The mock host's clock (`MockHost::post`), in seconds.
const T0: u64 = 1_700_000_000;
const BASE: &str = "/v1/projects/proj/locations/us-east5/publishers";

fn key_json() -> String {
    let mut v: Value = json(&fixture("vertex/service_account.json"));
    v["token_uri"] = json!("http://vertex-auth.local/token");
    v.to_string()
}

fn config() -> Value {
    json!({"provider": {"type": "vertex", "vertexAuthKey": key_json(),
        "vertexRegion": "us-east5", "vertexProjectId": "proj",
        "vertexAuthServiceName": "vertex-auth", "vertexTokenRefreshAhead": 300,
        "modelMapping": {"sonnet": "claude-sonnet-4@20250514"}}})
}

fn at(host: MockHost, secs: u64) -> MockHost {
    host.now_ms.set(secs * 1000);
    host
}

/// A root-context host (no request) sharing `store`, at `secs`.
fn root_host(store: &SharedStore, secs: u64) -> MockHost {
    at(MockHost::default().with_shared(store), secs)
}

fn token_answer(token: &str, expires_in: u64) -> CalloutResponse {
    CalloutResponse {
        status: Some(200),
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"})
            .to_string()
            .into_bytes(),
    }
}

/// Check a token request and return its callout id.
#[allow(clippy::expect_used)]
fn assert_token_request(host: &MockHost) -> u32 {
    let call = host.callouts.last().expect("a token request");
    assert_eq!(call.cluster, "vertex-auth");
    assert_eq!(call.header(":method"), Some("POST"));
    assert_eq!(call.header(":path"), Some("/token"));
    assert_eq!(call.header(":authority"), Some("vertex-auth.local"));
    assert_eq!(
        call.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let body = String::from_utf8(call.body.clone().unwrap_or_default()).unwrap_or_default();
    assert!(
        body.starts_with(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=ey"
        ),
        "{body}"
    );
    call.id
}

/// The root's first tick fetches the token; its answer lands in `store`.
fn warm(root: &mut ProxyRoot, store: &SharedStore, token: &str) {
    let mut host = root_host(store, T0);
    root.on_tick(&mut host);
    let id = assert_token_request(&host);
    root.on_callout_done(&host, id, &token_answer(token, 3600));
}

fn request(store: &SharedStore, secs: u64, body: Value) -> MockHost {
    at(chat(body).with_shared(store), secs)
}

const GEMINI_ANSWER: &str = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Blue light scatters."}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":6,"candidatesTokenCount":3,"totalTokenCount":9}}"#;
const CLAUDE_ANSWER: &str = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4@20250514","content":[{"type":"text","text":"Rayleigh."}],"stop_reason":"end_turn","usage":{"input_tokens":7,"output_tokens":2}}"#;

#[test]
fn gemini_plain_and_streamed_with_the_shared_token() {
    on_both_stores(gemini_plain_and_streamed_with_the_shared_token_on);
}

// A scenario run by a test (on both stores): it fails as a test does.
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
fn gemini_plain_and_streamed_with_the_shared_token_on(store: SharedStore) {
    let mut root = proxy_root(config());
    warm(&mut root, &store, "ya29.first");
    // Plain.
    let mut host = request(
        &store,
        T0 + 1,
        json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "Why?"}]}),
    );
    let out = exchange(
        &root,
        &mut host,
        200,
        &[("content-type", "application/json")],
        GEMINI_ANSWER.as_bytes(),
    );
    assert_eq!(
        host.request_header_value(":path"),
        Some(format!("{BASE}/google/models/gemini-2.5-flash:generateContent").as_str())
    );
    assert_eq!(
        host.request_header_value(":authority"),
        Some("us-east5-aiplatform.googleapis.com")
    );
    assert_eq!(
        host.request_header_value("authorization"),
        Some("Bearer ya29.first")
    );
    assert!(host.callouts.is_empty(), "a warm request never fetches");
    assert!(host.request_json().get("contents").is_some());
    let v = json(&out);
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Blue light scatters."
    );
    assert_eq!(v["usage"]["total_tokens"], 9);
    // Streamed, from another worker sharing the store.
    let mut host = request(
        &store,
        T0 + 2,
        json!({"model": "gemini-2.5-flash", "stream": true, "messages": [{"role": "user", "content": "Why?"}]}),
    );
    let mut req = root.new_request();
    assert_eq!(send_request(&mut req, &mut host).0, Action::Continue);
    assert_eq!(
        host.request_header_value(":path"),
        Some(
            format!("{BASE}/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse").as_str()
        )
    );
    assert_eq!(
        host.request_header_value("authorization"),
        Some("Bearer ya29.first")
    );
    let sse = format!("data: {GEMINI_ANSWER}\r\n\r\n");
    let out = receive(
        &mut req,
        &mut host,
        200,
        &[("content-type", "text/event-stream")],
        &[sse.as_bytes()],
    );
    let data = sse_data(&out);
    assert_eq!(data.last(), Some(&Value::String("[DONE]".into())));
    assert_eq!(
        data[0]["choices"][0]["delta"]["content"],
        "Blue light scatters."
    );
    // The next tick finds the token fresh: no second token request.
    let mut host = root_host(&store, T0 + 3);
    root.on_tick(&mut host);
    assert!(host.callouts.is_empty());
}

#[test]
fn claude_plain_streamed_and_messages_clients() {
    on_both_stores(claude_plain_streamed_and_messages_clients_on);
}

// A scenario run by a test (on both stores): it fails as a test does.
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
fn claude_plain_streamed_and_messages_clients_on(store: SharedStore) {
    let mut root = proxy_root(config());
    warm(&mut root, &store, "ya29.first");
    // OpenAI chat, mapped to a Claude model: rawPredict with Vertex's body.
    let mut host = request(
        &store,
        T0 + 1,
        json!({"model": "sonnet", "max_tokens": 20, "messages": [{"role": "user", "content": "Why?"}]}),
    );
    let out = exchange(
        &root,
        &mut host,
        200,
        &[("content-type", "application/json")],
        CLAUDE_ANSWER.as_bytes(),
    );
    assert_eq!(
        host.request_header_value(":path"),
        Some(format!("{BASE}/anthropic/models/claude-sonnet-4@20250514:rawPredict").as_str())
    );
    assert_eq!(host.request_header_value("anthropic-version"), None);
    assert_eq!(host.request_header_value("content-length"), None);
    let sent = host.request_json();
    assert_eq!(sent["anthropic_version"], "vertex-2023-10-16");
    assert!(sent.get("model").is_none(), "{sent}");
    let v = json(&out);
    assert_eq!(v["choices"][0]["message"]["content"], "Rayleigh.");
    assert_eq!(v["usage"]["prompt_tokens"], 7);
    // Streamed.
    let mut host = request(
        &store,
        T0 + 1,
        json!({"model": "claude-sonnet-4@20250514", "stream": true, "max_tokens": 20, "messages": [{"role": "user", "content": "Why?"}]}),
    );
    let mut req = root.new_request();
    send_request(&mut req, &mut host);
    assert_eq!(
        host.request_header_value(":path"),
        Some(format!("{BASE}/anthropic/models/claude-sonnet-4@20250514:streamRawPredict").as_str())
    );
    let events = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4@20250514\",\"content\":[],\"usage\":{\"input_tokens\":7,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Rayleigh.\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let out = receive(
        &mut req,
        &mut host,
        200,
        &[("content-type", "text/event-stream")],
        &[events.as_bytes()],
    );
    let text: String = sse_data(&out)
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect();
    assert_eq!(text, "Rayleigh.");
    // Anthropic Messages client: the body keeps its shape, less `model`, plus the version.
    let body = json!({"model": "claude-sonnet-4@20250514", "max_tokens": 20, "messages": [{"role": "user", "content": "Why?"}]});
    let mut host = at(
        MockHost::post("/v1/messages", body.to_string().as_bytes())
            .with_facts(facts_of(&body))
            .with_shared(&store),
        T0 + 1,
    );
    let out = exchange(
        &root,
        &mut host,
        200,
        &[("content-type", "application/json")],
        CLAUDE_ANSWER.as_bytes(),
    );
    assert_eq!(
        host.request_header_value(":path"),
        Some(format!("{BASE}/anthropic/models/claude-sonnet-4@20250514:rawPredict").as_str())
    );
    let sent = host.request_json();
    assert_eq!(sent["anthropic_version"], "vertex-2023-10-16");
    assert_eq!(sent["messages"], body["messages"]);
    assert!(sent.get("model").is_none());
    assert_eq!(json(&out)["content"][0]["text"], "Rayleigh.");
}

#[test]
fn refreshed_ahead_of_expiry_in_the_background() {
    on_both_stores(refreshed_ahead_of_expiry_in_the_background_on);
}

// A scenario run by a test (on both stores): it fails as a test does.
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
fn refreshed_ahead_of_expiry_in_the_background_on(store: SharedStore) {
    let mut root = proxy_root(config());
    warm(&mut root, &store, "ya29.first");
    let body =
        json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "Hi"}]});
    // Before the refresh window: nothing to do.
    let mut host = root_host(&store, T0 + 3299);
    root.on_tick(&mut host);
    assert!(host.callouts.is_empty());
    // In the window (expiry - 300 s): one worker's tick claims the refresh...
    let mut worker1 = root_host(&store, T0 + 3301);
    root.on_tick(&mut worker1);
    let id = assert_token_request(&worker1);
    // ...another worker's tick (another root) does not send a second one...
    let mut other = proxy_root(config());
    let mut worker2 = root_host(&store, T0 + 3302);
    other.on_tick(&mut worker2);
    assert!(worker2.callouts.is_empty());
    // ...and requests meanwhile use the old token without waiting.
    let mut host = request(&store, T0 + 3302, body.clone());
    send_request(&mut root.new_request(), &mut host);
    assert_eq!(
        host.request_header_value("authorization"),
        Some("Bearer ya29.first")
    );
    assert!(host.callouts.is_empty());
    root.on_callout_done(
        &root_host(&store, T0 + 3303),
        id,
        &token_answer("ya29.second", 3600),
    );
    let mut host = request(&store, T0 + 3304, body);
    send_request(&mut root.new_request(), &mut host);
    assert_eq!(
        host.request_header_value("authorization"),
        Some("Bearer ya29.second")
    );
    assert!(host.callouts.is_empty());
}

#[test]
fn cold_start_request_fetches_and_waits() {
    on_both_stores(cold_start_request_fetches_and_waits_on);
}

// A scenario run by a test (on both stores): it fails as a test does.
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
fn cold_start_request_fetches_and_waits_on(store: SharedStore) {
    let root = proxy_root(config());
    let mut host = request(
        &store,
        T0,
        json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "Hi"}]}),
    );
    let mut req = root.new_request();
    // Held in the header phase while its token request is out.
    assert_eq!(req.on_request_headers(&mut host, false), Action::Pause);
    let id = assert_token_request(&host);
    assert_eq!(host.request_header_value("authorization"), None);
    req.on_callout_done(&mut host, id, token_answer("ya29.cold", 3600));
    assert_eq!(host.resumed_request, 1);
    assert_eq!(
        host.request_header_value("authorization"),
        Some("Bearer ya29.cold")
    );
    let size = host.request_body.len();
    assert_eq!(req.on_request_body(&mut host, size, true), Action::Continue);
    // Stored for everyone: the next request (and the root's tick) use it.
    let mut next = request(
        &store,
        T0 + 1,
        json!({"model": "gemini-2.5-flash", "messages": []}),
    );
    send_request(&mut root.new_request(), &mut next);
    assert_eq!(
        next.request_header_value("authorization"),
        Some("Bearer ya29.cold")
    );
    assert!(next.callouts.is_empty());
}

#[test]
fn native_hosts_wait_with_the_body_held() {
    on_both_stores(native_hosts_wait_with_the_body_held_on);
}

// A scenario run by a test (on both stores): it fails as a test does.
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
fn native_hosts_wait_with_the_body_held_on(store: SharedStore) {
    let root = proxy_root(config());
    let body = json!({"model": "sonnet", "max_tokens": 9, "messages": [{"role": "user", "content": "Hi"}]});
    let mut host = at(chat(body).with_shared(&store), T0);
    host.holds_headers_for_body = true;
    host.body_facts = Default::default();
    let mut req = root.new_request();
    assert_eq!(req.on_request_headers(&mut host, false), Action::Pause);
    let size = host.request_body.len();
    assert_eq!(req.on_request_body(&mut host, size, true), Action::Pause);
    let id = assert_token_request(&host);
    req.on_callout_done(&mut host, id, token_answer("ya29.native", 3600));
    assert_eq!(host.resumed_request, 1);
    assert_eq!(
        host.request_header_value("authorization"),
        Some("Bearer ya29.native")
    );
    assert_eq!(
        host.request_header_value(":path"),
        Some(format!("{BASE}/anthropic/models/claude-sonnet-4@20250514:rawPredict").as_str())
    );
    assert_eq!(
        host.request_json()["anthropic_version"],
        "vertex-2023-10-16"
    );
}

#[test]
fn failing_token_endpoint_is_a_503_with_retry_after_and_backs_off() {
    on_both_stores(failing_token_endpoint_is_a_503_with_retry_after_and_backs_off_on);
}

// A scenario run by a test (on both stores): it fails as a test does.
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
fn failing_token_endpoint_is_a_503_with_retry_after_and_backs_off_on(store: SharedStore) {
    let root = proxy_root(config());
    let body =
        json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "Hi"}]});
    let mut host = request(&store, T0, body.clone());
    let mut req = root.new_request();
    assert_eq!(req.on_request_headers(&mut host, false), Action::Pause);
    let id = assert_token_request(&host);
    let rejected = CalloutResponse {
        status: Some(400),
        headers: vec![],
        body: br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#.to_vec(),
    };
    req.on_callout_done(&mut host, id, rejected);
    let reply = host.local_reply.clone().expect("a local reply");
    assert_eq!(reply.status, 503);
    assert!(
        reply
            .headers
            .iter()
            .any(|(k, v)| k == "retry-after" && v == "5"),
        "{:?}",
        reply.headers
    );
    let v = reply.json();
    assert_eq!(v["error"]["code"], "vertex_token_unavailable");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("invalid_grant"));
    assert!(!String::from_utf8_lossy(&reply.body).contains("PRIVATE"));
    assert_eq!(host.resumed_request, 0);
    // Within the back-off: answered at once, no new token request.
    let mut host = request(&store, T0 + 2, body.clone());
    send_request(&mut root.new_request(), &mut host);
    let reply = host.local_reply.clone().expect("a local reply");
    assert_eq!(reply.status, 503);
    assert!(reply
        .headers
        .iter()
        .any(|(k, v)| k == "retry-after" && v == "3"));
    assert!(host.callouts.is_empty());
    // After it: tried again. No answer at all (timeout) is a failure too.
    let mut host = request(&store, T0 + 6, body);
    let mut req = root.new_request();
    assert_eq!(req.on_request_headers(&mut host, false), Action::Pause);
    let id = assert_token_request(&host);
    req.on_callout_done(&mut host, id, CalloutResponse::default());
    assert_eq!(host.local_reply.as_ref().map(|r| r.status), Some(503));
}

#[test]
fn static_access_tokens_and_config_errors() {
    let root = proxy_root(
        json!({"provider": {"type": "vertex", "apiTokens": ["ya29.static"],
        "vertexRegion": "global", "vertexProjectId": "proj"}}),
    );
    let mut host =
        chat(json!({"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "Hi"}]}));
    send_request(&mut root.new_request(), &mut host);
    assert_eq!(
        host.request_header_value(":authority"),
        Some("aiplatform.googleapis.com")
    );
    assert_eq!(
        host.request_header_value(":path"),
        Some("/v1/projects/proj/locations/global/publishers/google/models/gemini-2.5-pro:generateContent")
    );
    assert_eq!(
        host.request_header_value("authorization"),
        Some("Bearer ya29.static")
    );
    assert!(host.callouts.is_empty());
    let mut root = ProxyRoot::new(1);
    let bad = json!({"provider": {"type": "vertex", "vertexAuthKey": "{\"private_key\": \"SECRET",
        "vertexRegion": "us-east5", "vertexProjectId": "p", "vertexAuthServiceName": "a"}});
    let e = root.configure(bad.to_string().as_bytes()).unwrap_err();
    assert!(e.contains("vertexAuthKey") && !e.contains("SECRET"), "{e}");
    let e = root
        .configure(
            json!({"provider": {"type": "vertex", "apiTokens": ["t"], "vertexRegion": "us-east5"}})
                .to_string()
                .as_bytes(),
        )
        .unwrap_err();
    assert!(e.contains("vertexProjectId"), "{e}");
    // A key needs the tick; static tokens do not.
    assert_eq!(
        ProxyRoot::new(1)
            .configure(config().to_string().as_bytes())
            .unwrap(),
        Some(std::time::Duration::from_secs(1))
    );
}

#[test]
fn googles_errors_for_claude_reach_each_client_in_its_shape() {
    let root = proxy_root(
        json!({"provider": {"type": "vertex", "apiTokens": ["ya29.expired"],
        "vertexRegion": "us-east5", "vertexProjectId": "proj"}}),
    );
    let google = br#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#;
    let body = json!({"model": "claude-sonnet-4@20250514", "max_tokens": 9, "messages": [{"role": "user", "content": "Hi"}]});
    let mut host =
        MockHost::post("/v1/messages", body.to_string().as_bytes()).with_facts(facts_of(&body));
    let out = json(&exchange(
        &root,
        &mut host,
        401,
        &[("content-type", "application/json")],
        google,
    ));
    assert_eq!(out["type"], "error", "{out}");
    assert_eq!(out["error"]["type"], "authentication_error", "{out}");
    assert!(out["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("invalid authentication"));
    let mut host = chat(body.clone());
    let out = json(&exchange(
        &root,
        &mut host,
        401,
        &[("content-type", "application/json")],
        google,
    ));
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("invalid authentication"),
        "{out}"
    );
    // Claude's own errors pass through to Messages clients untouched.
    let anthropic =
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let mut host =
        MockHost::post("/v1/messages", body.to_string().as_bytes()).with_facts(facts_of(&body));
    let out = exchange(
        &root,
        &mut host,
        529,
        &[("content-type", "application/json")],
        anthropic,
    );
    assert_eq!(out, anthropic.to_vec());
}
