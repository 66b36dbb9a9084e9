//! ai-proxy token failover in real Envoy with two worker threads (two Wasm VMs sharing
//! state): a token the mock fails is taken out of rotation on both workers, retries turn
//! failures into answers, health checks and cooldowns bring the token back, and a `429` with
//! `retry-after` rests the token.

use std::time::Duration;
use switchyard_e2e::*;

const CHAT: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hello there"}]}"#;
const GOOD: &str = "sk-good-1111";
const BAD: &str = "sk-bad-2222";
const HEALTH: &str = "x-switchyard-health-check";

/// Envoy (two workers) with ai-proxy in front of one mock; `extra` is merged into the
/// provider (`failover`, `retryOnFailure`).
fn gateway(extra: serde_json::Value) -> (Gateway, MockServer) {
    let provider = merged(
        json!({"type": "deepseek", "apiTokens": [GOOD, BAD]}),
        &extra,
    );
    let (s, m) = proxy_spec(json!({ "provider": provider }));
    (Gateway::start_with(&s, 2), m)
}

/// The mock fails every request made with `token` with `status` (and `headers`).
fn fail_token(m: &MockServer, token: &str, status: u16, headers: &[(&str, &str)]) {
    m.set_default_script(Script {
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        only_for_token: Some(token.into()),
        ..Script::error(status, "token failing")
    });
}

fn uses(r: &RecordedRequest, token: &str) -> bool {
    r.header("authorization") == Some(&format!("Bearer {token}"))
        || r.header("x-api-key") == Some(token)
}

/// Client requests (not health checks) the mock received with `token`.
fn client_hits(m: &MockServer, token: &str) -> usize {
    m.requests()
        .iter()
        .filter(|r| uses(r, token) && r.header(HEALTH).is_none())
        .count()
}

fn health_checks(m: &MockServer, token: &str) -> Vec<RecordedRequest> {
    m.requests()
        .into_iter()
        .filter(|r| uses(r, token) && r.header(HEALTH).is_some())
        .collect()
}

/// Send chats until `done` holds (at most `max` requests); returns the statuses seen.
fn chat_until(gw: &Gateway, max: usize, mut done: impl FnMut() -> bool) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..max {
        if done() {
            break;
        }
        statuses.push(gw.post("/v1/chat/completions", CHAT).status);
    }
    statuses
}

#[test]
fn failing_token_gets_no_traffic_on_either_worker_after_the_threshold() {
    let (gw, m) = gateway(json!({
        "failover": {"enabled": true, "failureThreshold": 3, "healthCheckModel": "gpt-4o-mini",
                     "healthCheckInterval": 600000}
    }));
    fail_token(&m, BAD, 500, &[]);
    let statuses = chat_until(&gw, 300, || client_hits(&m, BAD) >= 3);
    assert_eq!(
        client_hits(&m, BAD),
        3,
        "the failing token was picked 3 times"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 500).count(), 3);
    // Each request is a new connection, spread over both workers: the failures were counted
    // in shared state, so neither worker uses the token again.
    for _ in 0..30 {
        let r = gw.post("/v1/chat/completions", CHAT);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(client_hits(&m, BAD), 3, "no traffic after the threshold");
    assert!(client_hits(&m, GOOD) >= 30);
    assert!(health_checks(&m, BAD).is_empty(), "interval not reached");
    assert!(!gw.wasm_failed());
}

#[test]
fn a_retry_with_another_token_turns_a_500_into_a_200() {
    let (gw, m) = gateway(json!({"retryOnFailure": {"enabled": true, "maxRetries": 1}}));
    fail_token(&m, BAD, 500, &[]);
    let mut retried = 0;
    for _ in 0..40 {
        let r = gw.post("/v1/chat/completions", CHAT);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["object"], "chat.completion");
        if r.header("x-switchyard-retries") == Some("1") {
            retried += 1;
        }
    }
    let hits = client_hits(&m, BAD);
    assert!(hits >= 1, "the failing token was picked at least once");
    assert_eq!(retried, hits, "every failure was retried");
    // The retry resends the same upstream request with the other token.
    let rec = m.requests();
    let i = rec.iter().position(|r| uses(r, BAD)).expect("a failure");
    let retry = &rec[i + 1];
    assert!(uses(retry, GOOD));
    assert_eq!(retry.path, rec[i].path);
    assert_eq!(retry.body, rec[i].body);
    assert_eq!(retry.header("host"), Some("api.deepseek.com"));

    // Streams too, while nothing has reached the client yet.
    let stream = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"one two"}]}"#;
    let mut stream_retried = false;
    for _ in 0..40 {
        let r = gw.post("/v1/chat/completions", stream);
        assert_eq!(r.status, 200, "{}", r.text());
        let chunks = r.chunks();
        assert!(
            chunks.iter().all(|c| c.get("usage").is_none()),
            "usage chunk removed as usual: {}",
            r.text()
        );
        if r.header("x-switchyard-retries").is_some() {
            stream_retried = true;
            break;
        }
    }
    assert!(stream_retried);

    // Both tokens failing: the client gets the last failure, converted as usual.
    fail_token(&m, GOOD, 503, &[]);
    m.push_script(Script {
        only_for_token: Some(BAD.into()),
        ..Script::error(500, "bad too")
    });
    let r = gw.post("/v1/chat/completions", CHAT);
    assert!(r.status == 500 || r.status == 503, "{}", r.status);
    assert!(r.json()["error"]["message"].is_string(), "{}", r.text());
    assert!(!gw.wasm_failed());
}

#[test]
fn a_health_check_brings_the_token_back_after_the_mock_heals() {
    let (gw, m) = gateway(json!({
        "modelMapping": {"gpt-4o-mini": "deepseek-chat"},
        "failover": {"enabled": true, "failureThreshold": 1, "successThreshold": 1,
                     "healthCheckModel": "gpt-4o-mini", "healthCheckInterval": 300},
        "retryOnFailure": {"enabled": true}
    }));
    fail_token(&m, BAD, 500, &[]);
    let statuses = chat_until(&gw, 60, || client_hits(&m, BAD) >= 1);
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(client_hits(&m, BAD), 1);
    // Down: health checks probe it (and fail), clients do not get it.
    assert!(
        wait_until(Duration::from_secs(15), Duration::from_millis(100), || {
            !health_checks(&m, BAD).is_empty()
        }),
        "a health check was sent"
    );
    for _ in 0..10 {
        assert_eq!(gw.post("/v1/chat/completions", CHAT).status, 200);
    }
    assert_eq!(client_hits(&m, BAD), 1);
    let check = &health_checks(&m, BAD)[0];
    assert_eq!(check.path, "/chat/completions");
    assert_eq!(check.header("host"), Some("api.deepseek.com"));
    let body = check.json().expect("JSON health check");
    assert_eq!(
        body["model"], "deepseek-chat",
        "mapped like a client's model"
    );
    assert!(
        health_checks(&m, GOOD).is_empty(),
        "only down tokens are probed"
    );

    m.set_default_script(Script::default());
    let back = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
        gw.post("/v1/chat/completions", CHAT);
        client_hits(&m, BAD) > 1
    });
    assert!(back, "the healed token gets traffic again");
    // Both state changes are counted (the token-pool metric).
    let changes = |state: &str| {
        gw.metric(
            "switchyard_token_pool_changes",
            &[("gen_ai_provider_name", "deepseek"), ("state", state)],
        )
    };
    assert_eq!(changes("unavailable"), 1.0, "{}", gw.prometheus());
    assert_eq!(changes("available"), 1.0);
    assert!(!gw.wasm_failed());
}

#[test]
fn cooldown_brings_the_token_back_without_health_checks() {
    let (gw, m) = gateway(json!({
        "failover": {"enabled": true, "failureThreshold": 1, "cooldownDuration": 5000},
        "retryOnFailure": {"enabled": true}
    }));
    fail_token(&m, BAD, 502, &[]);
    let statuses = chat_until(&gw, 60, || client_hits(&m, BAD) >= 1);
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    for _ in 0..5 {
        assert_eq!(gw.post("/v1/chat/completions", CHAT).status, 200);
    }
    assert_eq!(
        client_hits(&m, BAD),
        1,
        "out of rotation during the cooldown"
    );
    m.set_default_script(Script::default());
    let back = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
        assert_eq!(gw.post("/v1/chat/completions", CHAT).status, 200);
        client_hits(&m, BAD) > 1
    });
    assert!(back, "the token is used again after the cooldown");
    assert!(health_checks(&m, BAD).is_empty() && health_checks(&m, GOOD).is_empty());
    assert!(!gw.wasm_failed());
}

#[test]
fn a_429_with_retry_after_rests_the_token_on_both_workers() {
    let (gw, m) = gateway(json!({"retryOnFailure": {"enabled": true}}));
    fail_token(&m, BAD, 429, &[("retry-after", "60")]);
    let statuses = chat_until(&gw, 60, || client_hits(&m, BAD) >= 1);
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(client_hits(&m, BAD), 1);
    for _ in 0..30 {
        assert_eq!(gw.post("/v1/chat/completions", CHAT).status, 200);
    }
    assert_eq!(client_hits(&m, BAD), 1, "resting for 60 s on every worker");

    // The other token rate-limited too: nothing to retry with, the 429 and its retry-after
    // reach the client.
    fail_token(&m, GOOD, 429, &[("retry-after", "7")]);
    let r = gw.post("/v1/chat/completions", CHAT);
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("7"));
    assert!(r.json()["error"]["message"].is_string(), "{}", r.text());
    assert!(!gw.wasm_failed());
}

#[test]
fn after_the_balancer_rerouted_retries_and_health_checks_reach_the_chosen_provider() {
    let qianwen = mock();
    let deepseek = mock();
    let mut s = spec();
    s.filters.push(lb_filter(json!({
        "providers": [
            {"name": "qianwen", "key": "q", "model": "qwen3-max-preview"},
            {"name": "deepseek", "key": "d", "model": "deepseek-chat"}
        ],
        "metrics": {"source": "static", "values": {"q": 10, "d": 90}}
    })));
    s.filters.push(proxy_filter(json!({
        "providers": [
            {"id": "qianwen", "type": "qwen", "apiTokens": [GOOD, BAD],
             "failover": {"enabled": true, "failureThreshold": 1, "healthCheckModel": "qwen-turbo",
                          "healthCheckInterval": 300},
             "retryOnFailure": {"enabled": true}},
            {"id": "deepseek", "type": "deepseek", "apiTokens": ["k-ds"]}
        ],
        "activeProviderId": "deepseek",
        "activeProviderHeader": "x-selected-provider"
    })));
    add_provider(&mut s, "qianwen", qianwen.addr());
    add_provider(&mut s, "deepseek", deepseek.addr());
    // The route chosen before the balancer's header points at deepseek.
    s.default_cluster = Some("provider-deepseek".into());
    let gw = Gateway::start_with(&s, 2);
    fail_token(&qianwen, BAD, 500, &[]);
    let auto = r#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#;
    for _ in 0..60 {
        if client_hits(&qianwen, BAD) >= 1 {
            break;
        }
        let r = gw.post("/v1/chat/completions", auto);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["model"], "qwen3-max-preview");
    }
    assert_eq!(client_hits(&qianwen, BAD), 1);
    assert!(
        wait_until(Duration::from_secs(15), Duration::from_millis(100), || {
            !health_checks(&qianwen, BAD).is_empty()
        }),
        "the health check reached qianwen's cluster"
    );
    assert!(
        deepseek.requests().is_empty(),
        "nothing went to the first route's cluster"
    );
    let check = &health_checks(&qianwen, BAD)[0];
    assert_eq!(check.path, "/compatible-mode/v1/chat/completions");
    assert!(!gw.wasm_failed());
}

#[test]
fn claude_retries_are_translated_and_health_checks_speak_messages() {
    let (gw, m) = gateway(json!({
        "type": "claude",
        "modelMapping": {"*": "claude-sonnet-4"},
        "failover": {"enabled": true, "failureThreshold": 1, "healthCheckModel": "small",
                     "healthCheckInterval": 300},
        "retryOnFailure": {"enabled": true}
    }));
    fail_token(&m, BAD, 529, &[]);
    let mut retried = None;
    for _ in 0..60 {
        let r = gw.post("/v1/chat/completions", CHAT);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["object"], "chat.completion", "{}", r.text());
        if client_hits(&m, BAD) >= 1 {
            retried = Some(r);
            break;
        }
    }
    // The retry's answer (a Messages response) reached the client as an OpenAI completion.
    let r = retried.expect("the failing token was picked");
    assert_eq!(r.header("x-switchyard-retries"), Some("1"));
    assert!(
        r.json()["choices"][0]["message"]["content"].is_string(),
        "{}",
        r.text()
    );
    assert_eq!(client_hits(&m, BAD), 1);
    assert!(
        wait_until(Duration::from_secs(15), Duration::from_millis(100), || {
            !health_checks(&m, BAD).is_empty()
        }),
        "a health check was sent"
    );
    let check = &health_checks(&m, BAD)[0];
    assert_eq!(check.path, "/v1/messages");
    assert_eq!(check.header("x-api-key"), Some(BAD));
    assert!(check.header("anthropic-version").is_some());
    let body = check.json().expect("JSON health check");
    assert_eq!(body["model"], "claude-sonnet-4");
    assert_eq!(body["messages"][0]["role"], "user");
    assert!(body["max_tokens"].is_u64(), "{body}");
    assert!(!gw.wasm_failed());
}

#[test]
fn retries_stop_after_max_retries_with_the_last_answer() {
    let (gw, m) = gateway(json!({"retryOnFailure": {"enabled": true, "maxRetries": 3}}));
    m.set_default_script(Script::error(503, "everything down"));
    let r = gw.post("/v1/chat/completions", CHAT);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("x-switchyard-retries"), Some("3"));
    assert_eq!(
        r.json()["error"]["message"],
        "everything down",
        "{}",
        r.text()
    );
    let rec = m.requests();
    assert_eq!(rec.len(), 4, "first attempt and three retries");
    // The first retry takes the other token; later ones any available token.
    assert!(uses(&rec[0], GOOD) != uses(&rec[1], GOOD));
    assert!(!gw.wasm_failed());
}

#[test]
fn token_state_survives_a_config_reload_with_the_same_tokens() {
    let m = mock();
    let provider = |timeout: u64, tokens: &[&str]| {
        json!({"provider": {
            "type": "deepseek", "apiTokens": tokens, "timeout": timeout,
            "failover": {"enabled": true, "failureThreshold": 2,
                         "healthCheckModel": "gpt-4o-mini", "healthCheckInterval": 600000}
        }})
    };
    let mut s = fixed_port_spec();
    s.filters.push(proxy_filter(provider(30000, &[GOOD, BAD])));
    add_provider(&mut s, "upstream", m.addr());
    s.default_cluster = Some("provider-upstream".into());
    let mut gw = DynamicGateway::start(&s, 2);
    fail_token(&m, BAD, 500, &[]);
    for _ in 0..300 {
        if client_hits(&m, BAD) >= 2 {
            break;
        }
        gw.post("/v1/chat/completions", CHAT);
    }
    assert_eq!(client_hits(&m, BAD), 2, "taken out after the threshold");

    // Reload with another timeout and the same tokens: new plugin instances, same pool.
    s.filters[0] = proxy_filter(provider(29000, &[GOOD, BAD]));
    gw.apply(&s);
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            gw.envoy
                .admin_get("/stats?filter=listener_manager.listener_modified")
                .is_ok_and(|(_, b)| b.contains("listener_modified: 1"))
        }),
        "the listener was updated"
    );
    for _ in 0..20 {
        let r = gw.post("/v1/chat/completions", CHAT);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(
        client_hits(&m, BAD),
        2,
        "still out of rotation after the reload"
    );

    // A different token list is a new pool: the token is tried again.
    const OTHER: &str = "sk-other-3333";
    s.filters[0] = proxy_filter(provider(29000, &[OTHER, BAD]));
    gw.apply(&s);
    assert!(
        wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
            gw.post("/v1/chat/completions", CHAT);
            client_hits(&m, BAD) > 2
        }),
        "a changed token list starts from a fresh state"
    );
}
