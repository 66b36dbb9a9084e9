//! Driving a filter through one whole exchange against the mock host.

#![allow(dead_code)]
// Test helpers: a failing helper should panic, as a failing test does.
#![allow(clippy::expect_used, clippy::panic)]

use serde_json::Value;
use switchyard_filter::balancer::{BalancerRequest, BalancerRoot};
use switchyard_filter::host::BodyFacts;
use switchyard_filter::mock::{MockHost, SharedStore};
use switchyard_filter::proxy::{ProxyRequest, ProxyRoot};
use switchyard_filter::Action;

pub fn proxy_root(config: Value) -> ProxyRoot {
    let mut root = ProxyRoot::new(7);
    root.configure(config.to_string().as_bytes())
        .expect("config accepted");
    root
}

pub fn balancer_root(config: Value) -> BalancerRoot {
    let mut root = BalancerRoot::new(7);
    root.configure(config.to_string().as_bytes())
        .expect("config accepted");
    root
}

/// The facts a full `json_to_metadata` rule set gives for `body`.
pub fn facts_of(body: &Value) -> BodyFacts {
    BodyFacts {
        model: body
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_string),
        stream: body.get("stream").and_then(Value::as_bool),
        include_usage: body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool),
        invalid_json: false,
        model_missing: body.get("model").is_none(),
    }
}

/// A chat request as an SDK posts it, with the metadata facts a full rule set would give.
pub fn chat(body: Value) -> MockHost {
    let facts = facts_of(&body);
    MockHost::post("/v1/chat/completions", body.to_string().as_bytes()).with_facts(facts)
}

/// The request phase: headers, then the whole body in one piece. Returns the actions.
pub fn send_request(req: &mut ProxyRequest, host: &mut MockHost) -> (Action, Option<Action>) {
    let headers = req.on_request_headers(host, false);
    if host.local_reply.is_some() || headers == Action::Pause {
        return (headers, None);
    }
    let size = host.request_body.len();
    (headers, Some(req.on_request_body(host, size, true)))
}

/// The response phase: the upstream answers `status`/`headers`, its body arrives in `chunks`.
/// Returns what the client receives (the concatenated rewritten chunks).
pub fn receive(
    req: &mut ProxyRequest,
    host: &mut MockHost,
    status: u16,
    headers: &[(&str, &str)],
    chunks: &[&[u8]],
) -> Vec<u8> {
    host.answer(status, headers, b"");
    let action = req.on_response_headers(host, chunks.is_empty());
    if let Some(reply) = &host.local_reply {
        return reply.body.clone();
    }
    assert_eq!(action, Action::Continue);
    let mut out = Vec::new();
    let mut held = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        // A paused body stays buffered in the host: the next call sees all of it.
        held.extend_from_slice(chunk);
        host.response_body = held.clone();
        let action = req.on_response_body(host, held.len(), last);
        if action == Action::Continue {
            out.extend_from_slice(&host.response_body);
            held.clear();
        }
    }
    req.on_log(host);
    assert_eq!(
        *host.undeclared.borrow(),
        Vec::<String>::new(),
        "metrics not in stats::METRICS"
    );
    out
}

/// One whole exchange with the body answered in one chunk.
pub fn exchange(
    root: &ProxyRoot,
    host: &mut MockHost,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut req = root.new_request();
    send_request(&mut req, host);
    if let Some(reply) = &host.local_reply {
        return reply.body.clone();
    }
    receive(&mut req, host, status, headers, &[body])
}

/// Balancer: the request phase, headers then the whole body.
pub fn balance(req: &mut BalancerRequest, host: &mut MockHost) -> Action {
    let a = req.on_request_headers(host, false);
    if host.local_reply.is_some() {
        return a;
    }
    let size = host.request_body.len();
    req.on_request_body(host, size, true)
}

pub fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// The `data:` payloads of an SSE stream, as JSON where they are JSON.
pub fn sse_data(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .map(|d| serde_json::from_str(d).unwrap_or(Value::String(d.to_string())))
        .collect()
}

pub fn fixture(path: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../protocol/testdata")
        .join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Run a scenario over shared state twice: on the byte store with compare-and-swap (the
/// `Host` trait's default methods, as on Proxy-Wasm) and on typed process memory (as in the
/// native module), checking that each kept its state where it should.
pub fn on_both_stores(scenario: impl Fn(SharedStore)) {
    eprintln!("--- shared state as bytes with CAS");
    let bytes = SharedStore::default();
    scenario(bytes.clone());
    assert!(bytes.byte_keys() > 0, "the scenario kept no shared state");
    eprintln!("--- shared state typed, in process memory");
    let typed = SharedStore::typed();
    scenario(typed.clone());
    assert_eq!(typed.byte_keys(), 0, "typed state went through bytes");
    assert!(typed.typed_keys() > 0, "the scenario kept no typed state");
}
