//! Faults through real Envoy: a vendor that resets mid-stream, stalls, or answers garbage or a
//! truncated body; a metrics source that is down or never answers; a context file that cannot
//! be fetched. The client always gets a bounded answer: an OpenAI-shaped error, or a stream
//! that ends (with an error event where the gateway can still write one), never a hang; and
//! the Wasm VMs never trap.

use serde_json::Value;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;
use switchyard_e2e::*;

const CHAT: &str =
    r#"{"model":"m-1","messages":[{"role":"user","content":"one two three four five six"}]}"#;
const STREAM: &str = r#"{"model":"m-1","stream":true,"messages":[{"role":"user","content":"one two three four five six"}]}"#;

/// The three provider types, each with a 1.5 s upstream timeout.
fn vendors() -> Vec<(&'static str, Gateway, MockServer)> {
    [
        ("openai", json!({"type": "deepseek", "apiTokens": ["k"], "timeout": 1500})),
        ("claude", json!({"type": "claude", "apiTokens": ["k"], "timeout": 1500})),
        (
            "gemini",
            json!({"type": "gemini", "apiTokens": ["k"], "timeout": 1500, "modelMapping": {"*": "gemini-2.5-flash"}}),
        ),
    ]
    .into_iter()
    .map(|(n, p)| {
        let (gw, m) = provider_gateway(p);
        (n, gw, m)
    })
    .collect()
}

/// A response read byte by byte: did the chunked body end with its terminator, or did the
/// connection just close?
struct Raw {
    status: u16,
    headers: String,
    body: Vec<u8>,
    clean_end: bool,
}

impl Raw {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn data(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter_map(|l| l.strip_prefix("data:").map(|d| d.trim().to_string()))
            .collect()
    }
}

/// POST and read the answer with the raw client, which tells a chunked body's terminator from
/// a cut connection; the 20 s read timeout turns a hang into a test failure.
fn post_raw(addr: SocketAddr, body: &str) -> Raw {
    let len = body.len().to_string();
    let head = raw_http::request_head(
        "POST",
        "/v1/chat/completions",
        &[
            ("host", "x"),
            ("content-type", "application/json"),
            ("content-length", &len),
            ("connection", "close"),
        ],
    );
    let r = raw_http::exchange(addr, Duration::from_secs(20), &head, body.as_bytes())
        .expect("status line (no hang)");
    assert!(!r.hung(), "stream hung: {}", r.text());
    let chunked = r
        .header("transfer-encoding")
        .is_some_and(|t| t.contains("chunked"));
    if let (Some(e), false) = (r.error, chunked) {
        panic!("reading the answer: {e} (a hang?)");
    }
    Raw {
        status: r.status,
        headers: r
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {}\r\n", v.to_ascii_lowercase()))
            .collect(),
        clean_end: r.complete,
        body: r.body,
    }
}

fn assert_openai_error(status: u16, body: &[u8], what: &str) -> Value {
    let v: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{what}: not JSON ({e}): {status} {}",
            String::from_utf8_lossy(body)
        )
    });
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {v}"
    );
    v
}

#[test]
fn vendor_reset_mid_stream_ends_the_client_stream() {
    for (name, gw, m) in vendors() {
        m.push_script(Script {
            drop_after_events: Some(3),
            chunk_delay_ms: 20,
            ..Default::default()
        });
        let r = post_raw(gw.addr(), STREAM);
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        let data = r.data();
        assert!(!data.is_empty(), "{name}: nothing before the reset");
        assert_ne!(
            data.last().map(String::as_str),
            Some("[DONE]"),
            "{name}: a cut stream must not look complete: {}",
            r.text()
        );
        // Either Envoy cuts the client's stream too (no chunked terminator), or the gateway
        // closed it with an error event: the client can always tell it is incomplete.
        let error_event = data.iter().any(|d| d.contains("\"error\""));
        assert!(
            !r.clean_end || error_event,
            "{name}: the stream ended cleanly without an error: {}",
            r.text()
        );
        // The next request is served normally.
        let ok = gw.post("/v1/chat/completions", CHAT);
        assert_eq!(ok.status, 200, "{name}: {}", ok.text());
        assert!(!gw.wasm_failed(), "{name}");
    }
}

#[test]
fn vendor_stall_is_a_504_in_openai_shape() {
    for (name, gw, m) in vendors() {
        for body in [CHAT, STREAM] {
            m.push_script(Script {
                ttfb_ms: 6000,
                ..Default::default()
            });
            let r = post_raw(gw.addr(), body);
            assert_eq!(r.status, 504, "{name}: {}", r.text());
            assert!(
                r.headers.contains("content-type: application/json"),
                "{name}: {}",
                r.headers
            );
            assert_openai_error(r.status, &r.body, name);
        }
        assert!(!gw.wasm_failed(), "{name}");
    }
}

#[test]
fn vendor_stall_mid_stream_ends_the_client_stream() {
    for (name, gw, m) in vendors() {
        m.push_script(Script {
            chunk_delay_ms: 4000,
            ..Default::default()
        });
        let r = post_raw(gw.addr(), STREAM);
        let data = r.data();
        assert_ne!(
            data.last().map(String::as_str),
            Some("[DONE]"),
            "{name}: a stalled stream must not look complete: {}",
            r.text()
        );
        if r.status == 200 {
            let error_event = data.iter().any(|d| d.contains("\"error\""));
            assert!(!r.clean_end || error_event, "{name}: {}", r.text());
        } else {
            assert_eq!(r.status, 504, "{name}: {}", r.text());
        }
        assert!(!gw.wasm_failed(), "{name}");
    }
}

#[test]
fn garbage_and_truncated_vendor_bodies() {
    let garbage = "<html>502 Bad Gateway</html>";
    let truncated_json =
        r#"{"id":"x","type":"message","role":"assistant","content":[{"type":"text","text":"hel"#;
    for (name, gw, m) in vendors() {
        for raw in [garbage, truncated_json, "", "\u{0}\u{1}\u{2}"] {
            m.push_script(Script {
                raw_body: Some(raw.into()),
                headers: vec![("content-type".into(), "application/json".into())],
                ..Default::default()
            });
            let r = post_raw(gw.addr(), CHAT);
            if name == "openai" {
                // Pass-through: the vendor's bytes go to the client as they are.
                assert_eq!(r.status, 200, "{name}");
                assert_eq!(r.body, raw.as_bytes(), "{name}");
            } else {
                // On stock Envoy the plugin cannot hold the response headers while it reads
                // the body, so a 2xx status has already gone out when the body turns out to be
                // unreadable: the body is then the OpenAI error (a 502 where the status is
                // still open).
                assert!(
                    r.status == 502 || r.status == 200,
                    "{name} {raw:?}: {} {}",
                    r.status,
                    r.text()
                );
                let v = assert_openai_error(r.status, &r.body, name);
                assert_eq!(v["error"]["code"], "invalid_upstream_response", "{v}");
            }
        }
        // Garbage in a stream: an error event, and the stream still ends.
        for raw in [
            "data: {not json\n\ndata: [DONE]\n\n",
            "event: message_start\ndata: {\"type\":\"message_start\"\n\n",
            "data: \u{ff}\u{fe}\n\n",
        ] {
            m.push_script(Script {
                raw_body: Some(raw.into()),
                headers: vec![("content-type".into(), "text/event-stream".into())],
                ..Default::default()
            });
            let r = post_raw(gw.addr(), STREAM);
            assert!(r.clean_end, "{name} {raw:?}: stream did not end");
            if name != "openai" {
                assert!(
                    r.data().iter().any(|d| d.contains("\"error\"")) || r.status >= 500,
                    "{name} {raw:?}: {} {}",
                    r.status,
                    r.text()
                );
            }
        }
        // A body cut by the connection closing.
        m.push_script(Script {
            raw_body: Some(format!("{truncated_json}\n\nmore")),
            headers: vec![("content-type".into(), "application/json".into())],
            drop_after_events: Some(1),
            ..Default::default()
        });
        let r = post_raw(gw.addr(), CHAT);
        assert!(
            r.status >= 500 || !r.clean_end,
            "{name}: a cut body was answered as complete: {} {}",
            r.status,
            r.text()
        );
        if r.status >= 500 && r.clean_end {
            assert_openai_error(r.status, &r.body, name);
        }
        let ok = gw.post("/v1/chat/completions", CHAT);
        assert_eq!(ok.status, 200, "{name}: {}", ok.text());
        assert!(!gw.wasm_failed(), "{name}");
    }
}

/// A server that accepts connections and never answers.
fn black_hole() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming().flatten() {
            held.push(c);
        }
    });
    addr
}

/// A loopback port with nothing listening.
fn dead_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

#[test]
fn metrics_source_down_or_silent_falls_back_and_serves() {
    for (what, metrics_addr) in [("down", dead_port()), ("silent", black_hole())] {
        let a = mock();
        let b = mock();
        let mut s = spec();
        s.filters.push(lb_filter(json!({
            "providers": [
                {"name": "a", "key": "a", "model": "m-a", "metrics_cluster": "metrics"},
                {"name": "b", "key": "b", "model": "m-b", "metrics_cluster": "metrics"}
            ],
            "metrics": {"source": "http", "refresh_ms": 100, "stale_after_ms": 500,
                        "http": {"format": "prometheus", "metric": "load"}}
        })));
        add_provider(&mut s, "a", a.addr());
        add_provider(&mut s, "b", b.addr());
        s.clusters
            .push(envoy::Cluster::plain("metrics", metrics_addr));
        s.default_cluster = Some("provider-a".into());
        let gw = Gateway::start(&s);
        for _ in 0..6 {
            let r = gw.post(
                "/v1/chat/completions",
                r#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#,
            );
            assert_eq!(r.status, 200, "metrics {what}: {}", r.text());
            std::thread::sleep(Duration::from_millis(150));
        }
        assert_eq!(a.requests().len() + b.requests().len(), 6);
        assert!(!gw.wasm_failed(), "metrics {what}");
    }
}

#[test]
fn redis_down_or_silent_falls_back_and_serves() {
    // Redis reached through Webdis (stock Envoy): the Webdis cluster is dead or never answers.
    for (what, webdis) in [("down", dead_port()), ("silent", black_hole())] {
        let a = mock();
        let b = mock();
        let mut s = spec();
        s.filters.push(lb_filter(json!({
            "providers": [
                {"name": "a", "key": "a", "model": "m-a"},
                {"name": "b", "key": "b", "model": "m-b"}
            ],
            "redis": {"service_name": "redis-svc", "webdis_cluster": "webdis", "timeout": 300},
            "metrics": {"refresh_ms": 100, "stale_after_ms": 500}
        })));
        add_provider(&mut s, "a", a.addr());
        add_provider(&mut s, "b", b.addr());
        s.clusters.push(envoy::Cluster::plain("webdis", webdis));
        s.default_cluster = Some("provider-a".into());
        let gw = Gateway::start(&s);
        for _ in 0..6 {
            let r = gw.post(
                "/v1/chat/completions",
                r#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#,
            );
            assert_eq!(r.status, 200, "redis {what}: {}", r.text());
            std::thread::sleep(Duration::from_millis(150));
        }
        assert!(!gw.wasm_failed(), "redis {what}");
    }
}

#[test]
fn context_file_unreachable_or_silent_is_an_openai_error() {
    for (what, files) in [("down", dead_port()), ("silent", black_hole())] {
        let (s, m) = context_spec(files);
        let gw = Gateway::start(&s);
        for _ in 0..2 {
            let r = post_raw(gw.addr(), CHAT);
            assert!(r.status >= 500, "context {what}: {} {}", r.status, r.text());
            let v = assert_openai_error(r.status, &r.body, what);
            assert_eq!(v["error"]["code"], "context_unavailable", "{v}");
        }
        assert!(
            m.requests().is_empty(),
            "context {what}: request went on without it"
        );
        assert!(!gw.wasm_failed(), "context {what}");
    }
}
