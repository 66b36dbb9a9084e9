//! ai-load-balancer driven callback by callback against the mock host.

mod common;

use common::*;
use serde_json::json;
use switchyard_filter::mock::{MockHost, SharedStore};
use switchyard_filter::{Action, CalloutResponse};

const PICKS: &str = "switchyard_balancer_picks";

fn providers() -> serde_json::Value {
    json!([
        {"name": "minmax", "key": "minimax_1", "model": "MiniMax-M2.1"},
        {"name": "qianwen", "key": "qwen_1", "model": "qwen3-max-preview"}
    ])
}

fn auto_request() -> MockHost {
    chat(json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}))
}

#[test]
fn picks_the_least_loaded_sets_the_header_and_rewrites_the_alias() {
    let root = balancer_root(
        json!({"providers": providers(), "target_header": "x-selected-provider",
        "metrics": {"source": "static", "values": {"minimax_1": 7.0, "qwen_1": 2.0}}}),
    );
    let mut host = auto_request();
    let mut req = root.new_request();
    assert_eq!(balance(&mut req, &mut host), Action::Continue);
    assert_eq!(
        host.request_header_value("x-selected-provider"),
        Some("qianwen")
    );
    assert_eq!(host.route_cache_clears, 1);
    assert_eq!(host.request_header_value("content-length"), None);
    let sent = host.request_json();
    assert_eq!(sent["model"], "qwen3-max-preview");
    assert_eq!(sent["messages"][0]["content"], "hi");
    assert_eq!(
        host.counter(
            PICKS,
            &[("gen_ai_provider_name", "qianwen"), ("reason", "metrics")]
        ),
        1
    );
}

#[test]
fn a_client_cannot_pick_the_provider_with_the_routing_header() {
    let root = balancer_root(json!({"providers": providers(),
        "metrics": {"source": "static", "values": {"minimax_1": 7.0, "qwen_1": 2.0}}}));
    // Alias: the balancer's pick replaces the client's value.
    let mut host = auto_request();
    host.request_headers
        .push(("x-selected-provider".into(), "minmax".into()));
    balance(&mut root.new_request(), &mut host);
    assert_eq!(
        host.request_header_value("x-selected-provider"),
        Some("qianwen")
    );
    // Not an alias and not a model any provider declares: the client's header is removed.
    let mut host = chat(json!({"model": "gpt-4o", "messages": []}));
    host.request_headers
        .push(("x-selected-provider".into(), "minmax".into()));
    balance(&mut root.new_request(), &mut host);
    assert_eq!(host.request_header_value("x-selected-provider"), None);
    assert_eq!(host.route_cache_clears, 1);
    assert_eq!(host.request_json()["model"], "gpt-4o");

    // With `allow_client_choice`, a configured provider named by the client is honoured.
    let root = balancer_root(
        json!({"providers": providers(), "allow_client_choice": true,
        "metrics": {"source": "static", "values": {"minimax_1": 7.0, "qwen_1": 2.0}}}),
    );
    let mut host = auto_request();
    host.request_headers
        .push(("x-selected-provider".into(), "minmax".into()));
    balance(&mut root.new_request(), &mut host);
    assert_eq!(
        host.request_header_value("x-selected-provider"),
        Some("minmax")
    );
    assert_eq!(host.request_json()["model"], "MiniMax-M2.1");
}

#[test]
fn redis_metrics_through_webdis_with_fallback_when_stale() {
    on_both_stores(redis_metrics_through_webdis_with_fallback_when_stale_on);
}

// A scenario run by a test (on both stores): it fails as a test does.
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
fn redis_metrics_through_webdis_with_fallback_when_stale_on(store: SharedStore) {
    let mut root = balancer_root(json!({"providers": providers(),
        "redis": {"service_name": "redis-svc", "service_port": 6379, "timeout": 500, "webdis_cluster": "webdis"},
        "redis_key_prefix": "ai_metric:",
        "metrics": {"source": "redis", "refresh_ms": 1000, "stale_after_ms": 5000}}));
    let t0 = 1_700_000_000_000u64;
    // No metrics yet: weighted random, counted as a fallback, never an error.
    let mut host = auto_request().with_shared(&store);
    host.now_ms.set(t0);
    assert_eq!(
        balance(&mut root.new_request(), &mut host),
        Action::Continue
    );
    assert!(host.local_reply.is_none());
    let fallback: u64 = ["minmax", "qianwen"]
        .iter()
        .map(|p| {
            host.counter(
                PICKS,
                &[("gen_ai_provider_name", p), ("reason", "fallback")],
            )
        })
        .sum();
    assert_eq!(fallback, 1);

    // The tick polls Webdis; its answer is stored for every worker.
    let mut tick = MockHost::default().with_shared(&store);
    tick.now_ms.set(t0);
    assert!(root.on_tick(&mut tick));
    let call = tick.callouts.last().cloned().expect("metrics callout");
    assert_eq!(call.cluster, "webdis");
    assert_eq!(
        call.header(":path"),
        Some("/MGET/ai_metric:minimax_1/ai_metric:qwen_1")
    );
    let reply = CalloutResponse {
        status: Some(200),
        headers: vec![],
        body: br#"{"MGET":["9","1"]}"#.to_vec(),
    };
    root.on_callout_done(&tick, call.id, &reply);
    for _ in 0..10 {
        let mut host = auto_request().with_shared(&store);
        host.now_ms.set(t0 + 1000);
        balance(&mut root.new_request(), &mut host);
        assert_eq!(
            host.request_header_value("x-selected-provider"),
            Some("qianwen")
        );
    }
    // A second instance's tick does not poll while the lease is held.
    let mut other = switchyard_filter::balancer::BalancerRoot::new(99);
    other.configure(br#"{"providers":[{"name":"a","key":"a","model":"m"}],"redis":{"service_name":"r","webdis_cluster":"webdis"},"metrics":{"source":"redis"}}"#).expect("config");
    let mut tick2 = MockHost::default().with_shared(&store);
    tick2.now_ms.set(t0 + 100);
    assert!(!other.on_tick(&mut tick2));
    assert!(tick2.callouts.is_empty());

    // Older than stale_after_ms: back to the fallback.
    let mut host = auto_request().with_shared(&store);
    host.now_ms.set(t0 + 10_000);
    balance(&mut root.new_request(), &mut host);
    let fallback: u64 = ["minmax", "qianwen"]
        .iter()
        .map(|p| {
            host.counter(
                PICKS,
                &[("gen_ai_provider_name", p), ("reason", "fallback")],
            )
        })
        .sum();
    assert_eq!(fallback, 1);
    // A failed poll stores nothing.
    root.on_tick(&mut tick);
    let id = tick.callouts.last().map(|c| c.id).unwrap_or_default();
    root.on_callout_done(
        &tick,
        id,
        &CalloutResponse {
            status: Some(503),
            ..Default::default()
        },
    );
}

#[test]
fn local_source_counts_requests_in_flight() {
    on_both_stores(local_source_counts_requests_in_flight_on);
}

// A scenario run by a test (on both stores): it fails as a test does.
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
fn local_source_counts_requests_in_flight_on(store: SharedStore) {
    let root = balancer_root(json!({"providers": providers(), "metrics": {"source": "local"}}));
    let mut first = auto_request().with_shared(&store);
    let mut req1 = root.new_request();
    balance(&mut req1, &mut first);
    let p1 = first
        .request_header_value("x-selected-provider")
        .map(str::to_string);
    // The second request goes to the other provider: the first one is still in flight.
    let mut second = auto_request().with_shared(&store);
    let mut req2 = root.new_request();
    balance(&mut req2, &mut second);
    let p2 = second
        .request_header_value("x-selected-provider")
        .map(str::to_string);
    assert_ne!(p1, p2);
    // Released at the end of the first: the third goes where it went.
    first.final_status = Some(200);
    req1.on_log(&mut first);
    let mut third = auto_request().with_shared(&store);
    balance(&mut root.new_request(), &mut third);
    assert_eq!(
        third
            .request_header_value("x-selected-provider")
            .map(str::to_string),
        p1
    );
}

#[test]
fn requests_without_a_config_pass() {
    let root = switchyard_filter::balancer::BalancerRoot::new(1);
    let mut host = auto_request();
    assert_eq!(
        balance(&mut root.new_request(), &mut host),
        Action::Continue
    );
    assert_eq!(host.total_calls(), 0);
    let mut bad = switchyard_filter::balancer::BalancerRoot::new(1);
    assert!(bad.configure(b"{\"providers\": 3}").is_err());
}

/// Hosts that hold the headers while the body arrives (Envoy's native filters): the balancer
/// and then ai-proxy decide in the body phase, from the body, with no metadata filter.
#[test]
fn native_chain_decides_in_the_body_phase() {
    let lb = balancer_root(json!({"providers": providers(),
        "metrics": {"source": "static", "values": {"minimax_1": 7.0, "qwen_1": 2.0}}}));
    let proxy = proxy_root(json!({"providers": [
        {"id": "minmax", "type": "minimax", "apiTokens": ["k-mm"]},
        {"id": "qianwen", "type": "qwen", "apiTokens": ["k-qw"]}],
        "activeProviderId": "minmax", "activeProviderHeader": "x-selected-provider"}));
    let body = json!({"model": "auto", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "hi"}]});
    let mut host = MockHost::post("/v1/chat/completions", body.to_string().as_bytes());
    host.holds_headers_for_body = true;
    host.request_headers
        .push(("x-selected-provider".into(), "minmax".into()));
    let size = host.request_body.len();

    let mut b = lb.new_request();
    assert_eq!(b.on_request_headers(&mut host, false), Action::Pause);
    assert_eq!(
        host.request_header_value("x-selected-provider"),
        Some("minmax")
    );
    assert_eq!(b.on_request_body(&mut host, size / 2, false), Action::Pause);
    assert_eq!(b.on_request_body(&mut host, size, true), Action::Continue);
    assert_eq!(
        host.request_header_value("x-selected-provider"),
        Some("qianwen")
    );
    assert_eq!(host.route_cache_clears, 1);
    assert_eq!(host.request_json()["model"], "qwen3-max-preview");

    // ai-proxy after it follows the new provider.
    let mut p = proxy.new_request();
    let size = host.request_body.len();
    assert_eq!(p.on_request_headers(&mut host, false), Action::Pause);
    assert_eq!(
        host.request_header_value(":authority"),
        Some("gateway.local")
    );
    assert_eq!(p.on_request_body(&mut host, size, true), Action::Continue);
    assert_eq!(
        host.request_header_value(":authority"),
        Some("dashscope.aliyuncs.com")
    );
    assert_eq!(
        host.request_header_value("authorization"),
        Some("Bearer k-qw")
    );
    assert_eq!(host.request_json()["model"], "qwen3-max-preview");

    // Bad input is still answered in the body phase.
    let mut host = MockHost::post("/v1/chat/completions", b"{nope");
    host.holds_headers_for_body = true;
    let mut p = proxy.new_request();
    assert_eq!(p.on_request_headers(&mut host, false), Action::Pause);
    assert_eq!(p.on_request_body(&mut host, 5, true), Action::Pause);
    assert_eq!(host.local_reply.map(|r| r.status), Some(400));
}
