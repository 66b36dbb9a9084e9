use std::time::{Duration, Instant};

use mock_provider::Script;
use serde_json::{json, Value};

use crate::client::{post, post_with, Conn, ReplyExt};
use crate::{normalized, server};

fn chat(stream: bool) -> Value {
    json!({
        "model": "m",
        "stream": stream,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Grüße aus Köln, wie geht's?"}],
    })
}

#[test]
fn error_script_with_headers_then_queue_runs_dry() {
    let s = server();
    s.push_script(Script {
        headers: vec![("retry-after".into(), "7".into())],
        ..Script::error(429, "slow down")
    });
    s.push_script(Script::error(503, "down"));
    let r = post(s.addr(), "/v1/chat/completions", &chat(true));
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["error"]["message"], "slow down");
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    let r = post(s.addr(), "/v1/chat/completions", &chat(false));
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["type"], "server_error");
    let r = post(s.addr(), "/v1/chat/completions", &chat(false));
    assert_eq!(r.status, 200);
}

#[test]
fn split_bytes_reassembles_to_the_same_events() {
    let s = server();
    let whole = post(s.addr(), "/v1/chat/completions", &chat(true));
    for n in [1, 2, 7] {
        s.push_script(Script {
            split_bytes: Some(n),
            ..Script::default()
        });
        let split = post(s.addr(), "/v1/chat/completions", &chat(true));
        assert!(split.complete);
        assert_eq!(split.body.len(), whole.body.len());
        let last = split.chunks.len() - 1;
        assert!(
            split.chunks[..last].iter().all(|&c| c == n),
            "{n}: {:?}",
            split.chunks
        );
        assert!(split.chunks[last] <= n);
        let events = |r: &crate::client::Reply| -> Vec<(Option<String>, Value)> {
            r.events()
                .into_iter()
                .map(|(name, d)| {
                    let v = serde_json::from_str(&d).unwrap_or(Value::String(d));
                    (name, normalized(v))
                })
                .collect()
        };
        assert_eq!(events(&split), events(&whole));
    }
    // Without splitting, an unpaced stream goes out as one chunk.
    assert_eq!(whole.chunks.len(), 1);
}

#[test]
fn split_bytes_applies_to_anthropic_and_gemini_too() {
    let s = server();
    s.push_script(Script {
        split_bytes: Some(3),
        ..Script::default()
    });
    let r = post(
        s.addr(),
        "/v1/messages",
        &json!({"model": "c", "max_tokens": 10, "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert!(r.chunks.iter().all(|&c| c <= 3) && r.chunks.len() > 10);
    assert_eq!(
        r.events().last().unwrap().0.as_deref(),
        Some("message_stop")
    );
    s.push_script(Script {
        split_bytes: Some(1),
        ..Script::default()
    });
    let r = post(
        s.addr(),
        "/v1beta/models/g:streamGenerateContent?alt=sse",
        &json!({"contents": [{"parts": [{"text": "hi"}]}]}),
    );
    assert!(r.chunks.iter().all(|&c| c == 1));
    assert_eq!(r.data().len(), 4);
}

#[test]
fn drop_after_events_cuts_the_connection() {
    let s = server();
    s.push_script(Script {
        drop_after_events: Some(3),
        ..Script::default()
    });
    let r = post(s.addr(), "/v1/chat/completions", &chat(true));
    assert_eq!(r.status, 200);
    assert!(!r.complete, "no chunked terminator");
    let events = r.events();
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|(_, d)| d != "[DONE]"));
    // Split and dropped: the same three events arrive byte by byte.
    s.push_script(Script {
        drop_after_events: Some(3),
        split_bytes: Some(1),
        ..Script::default()
    });
    let r2 = post(s.addr(), "/v1/chat/completions", &chat(true));
    assert!(!r2.complete);
    assert_eq!(r2.events().len(), 3);
    assert!(r2.chunks.iter().all(|&c| c == 1));
}

#[test]
fn only_for_token_default_stays_in_force() {
    let s = server();
    s.set_default_script(Script {
        only_for_token: Some("sk-bad".into()),
        ..Script::error(401, "bad key")
    });
    for _ in 0..3 {
        let r = post_with(
            s.addr(),
            "/v1/chat/completions",
            &[("authorization", "Bearer sk-bad")],
            &chat(false),
        );
        assert_eq!(r.status, 401);
        assert_eq!(r.json()["error"]["code"], "invalid_api_key");
        let r = post_with(
            s.addr(),
            "/v1/chat/completions",
            &[("authorization", "Bearer sk-good")],
            &chat(false),
        );
        assert_eq!(r.status, 200);
    }
    let r = post_with(
        s.addr(),
        "/v1/messages",
        &[("x-api-key", "sk-bad")],
        &json!({"model": "c", "max_tokens": 5, "messages": []}),
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["type"], "authentication_error");
}

#[test]
fn only_for_token_queued_waits_for_its_token() {
    let s = server();
    s.push_script(Script {
        only_for_token: Some("t1".into()),
        ..Script::error(500, "boom")
    });
    let other = post_with(
        s.addr(),
        "/v1/chat/completions",
        &[("api-key", "t2")],
        &chat(false),
    );
    assert_eq!(other.status, 200);
    let hit = post_with(
        s.addr(),
        "/v1/chat/completions",
        &[("api-key", "t1")],
        &chat(false),
    );
    assert_eq!(hit.status, 500);
    let again = post_with(
        s.addr(),
        "/v1/chat/completions",
        &[("api-key", "t1")],
        &chat(false),
    );
    assert_eq!(again.status, 200, "a queued script is used once");
}

#[test]
fn delays_are_applied() {
    let s = server();
    s.push_script(Script {
        ttfb_ms: 100,
        chunk_delay_ms: 20,
        ..Script::default()
    });
    let t = Instant::now();
    let r = post(s.addr(), "/v1/chat/completions", &chat(true));
    let elapsed = t.elapsed();
    // ttfb + 11 gaps between 12 events (role, 8 words, finish, usage, [DONE]).
    assert_eq!(r.events().len(), 12);
    assert!(
        elapsed >= Duration::from_millis(100 + 11 * 20),
        "{elapsed:?}"
    );
    assert_eq!(r.chunks.len(), 12, "one chunk per event when paced");
}

#[test]
fn events_sets_the_number_of_content_chunks() {
    let s = server();
    s.push_script(Script {
        events: Some(20),
        reply_text: Some("short".into()),
        ..Script::default()
    });
    let chunks = post(s.addr(), "/v1/chat/completions", &chat(true)).data();
    let contents: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0))
        .filter_map(|c| c["delta"]["content"].as_str())
        .collect();
    assert_eq!(contents.len(), 1 + 20, "role chunk's empty content plus 20");
    assert_eq!(contents.concat(), "short");
}

#[test]
fn raw_body_is_sent_verbatim() {
    let s = server();
    let raw = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: {\"trunc";
    s.push_script(Script {
        raw_body: Some(raw.into()),
        ..Script::default()
    });
    let r = post(s.addr(), "/v1/chat/completions", &chat(true));
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    assert_eq!(r.text(), raw);
    assert!(r.complete);
    s.push_script(Script {
        raw_body: Some("{\"garbage\": ".into()),
        status: Some(502),
        ..Script::default()
    });
    let r = post(s.addr(), "/v1/messages", &json!({}));
    assert_eq!(r.status, 502);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text(), "{\"garbage\": ");
    s.push_script(Script {
        raw_body: Some(raw.into()),
        drop_after_events: Some(1),
        ..Script::default()
    });
    let r = post(s.addr(), "/v1/chat/completions", &chat(true));
    assert!(!r.complete);
    assert_eq!(r.events().len(), 1);
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let s = server();
    let mut conn = Conn::connect(s.addr());
    for i in 0..5 {
        let body = chat(i % 2 == 0).to_string();
        let r = conn.send("POST", "/v1/chat/completions", &[], body.as_bytes());
        assert_eq!(r.status, 200);
        assert!(r.complete);
    }
    assert_eq!(conn.send("GET", "/health", &[], b"").status, 200);
    assert_eq!(s.requests().len(), 5, "health checks are not recorded");
}
