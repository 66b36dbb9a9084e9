//! ai-load-balancer in real Envoy: metric-driven pick, route re-selection by header, byte-exact
//! model rewrite, spoofed routing headers, chunked and non-JSON bodies.

use switchyard_e2e::*;

/// The seed's scenario with static metrics: qianwen (10) is less loaded than minmax (90).
fn seed_gateway(extra: serde_json::Value) -> (Gateway, MockServer, MockServer) {
    let minmax = mock();
    let qianwen = mock();
    let mut s = spec();
    let cfg = merged(
        json!({
            "providers": [
                {"name": "minmax", "key": "minimax_1", "model": "MiniMax-M2.1"},
                {"name": "qianwen", "key": "qwen_1", "model": "qwen3-max-preview"}
            ],
            "redis_key_prefix": "ai_metric:",
            "target_header": "x-selected-provider",
            "metrics": {"source": "static", "values": {"minimax_1": 90, "qwen_1": 10}}
        }),
        &extra,
    );
    s.filters.push(lb_filter(cfg));
    add_provider(&mut s, "minmax", minmax.addr());
    add_provider(&mut s, "qianwen", qianwen.addr());
    s.default_cluster = Some("provider-minmax".into());
    (Gateway::start(&s), minmax, qianwen)
}

#[test]
fn auto_goes_to_least_loaded_provider_with_only_model_rewritten() {
    let (gw, minmax, qianwen) = seed_gateway(json!({}));
    let body = r#"{ "model" : "auto", "messages":[{"role":"user","content":"你好 \"auto\""}], "temperature":0.70, "model_note":"auto" }"#;
    let r = gw.post("/masgod/v1/chat/completions", body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "qwen3-max-preview");
    assert!(minmax.requests().is_empty());
    let got = qianwen.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("x-selected-provider"), Some("qianwen"));
    let expected = body.replacen(r#""auto""#, r#""qwen3-max-preview""#, 1);
    assert_eq!(
        String::from_utf8_lossy(&got[0].body),
        expected,
        "only the model value may change"
    );
    assert!(got[0]
        .header("content-length")
        .is_none_or(|l| l == expected.len().to_string()));
}

#[test]
fn spoofed_routing_header_is_replaced() {
    let (gw, minmax, qianwen) = seed_gateway(json!({}));
    // Alias: the balancer's pick wins over the client's header.
    let r = gw.request(
        "POST",
        "/v1/chat/completions",
        &[("x-selected-provider", "minmax")],
        &[br#"{"model":"auto","messages":[]}"#],
    );
    assert_eq!(r.status, 200);
    assert_eq!(qianwen.requests().len(), 1);
    assert!(minmax.requests().is_empty());
    // Not an alias: the client's header is removed, the default route serves it.
    let r = gw.request(
        "POST",
        "/v1/chat/completions",
        &[("x-selected-provider", "qianwen")],
        &[br#"{"model":"gpt-4","messages":[]}"#],
    );
    assert_eq!(r.status, 200);
    let got = minmax.requests();
    assert_eq!(
        got.len(),
        1,
        "went to the default route, not the spoofed one"
    );
    assert!(got[0].header("x-selected-provider").is_none());
    assert_eq!(got[0].json().unwrap()["model"], "gpt-4");
}

#[test]
fn client_choice_only_when_allowed_and_configured() {
    let (gw, minmax, qianwen) = seed_gateway(json!({"allow_client_choice": true}));
    let r = gw.request(
        "POST",
        "/v1/chat/completions",
        &[("x-selected-provider", "minmax")],
        &[br#"{"model":"auto","messages":[]}"#],
    );
    assert_eq!(r.status, 200);
    assert_eq!(minmax.requests().len(), 1);
    assert_eq!(
        minmax.requests()[0].json().unwrap()["model"],
        "MiniMax-M2.1"
    );
    // An unknown name is not honoured.
    let r = gw.request(
        "POST",
        "/v1/chat/completions",
        &[("x-selected-provider", "evil")],
        &[br#"{"model":"auto","messages":[]}"#],
    );
    assert_eq!(r.status, 200);
    assert_eq!(qianwen.requests().len(), 1);
}

#[test]
fn body_in_several_chunks_is_rewritten() {
    let (gw, _minmax, qianwen) = seed_gateway(json!({}));
    let pieces: [&[u8]; 4] = [
        b"{\"messages\":[{\"role\":\"user\",",
        b"\"content\":\"hi\"}],\"mo",
        b"del\":\"au",
        b"to\",\"stream\":false}",
    ];
    let r = gw.request("POST", "/v1/chat/completions", &[], &pieces);
    assert_eq!(r.status, 200, "{}", r.text());
    let got = qianwen.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(
        String::from_utf8_lossy(&got[0].body),
        r#"{"messages":[{"role":"user","content":"hi"}],"model":"qwen3-max-preview","stream":false}"#
    );
}

#[test]
fn non_json_body_passes_untouched_and_vm_survives() {
    let (gw, minmax, qianwen) = seed_gateway(json!({}));
    let r = gw.request(
        "POST",
        "/v1/chat/completions",
        &[("content-type", "text/plain")],
        &[b"model=auto&not json \xff"],
    );
    // The mock answers 400 to a non-JSON body; what matters is that it arrived unchanged.
    assert_eq!(r.status, 400);
    let got = minmax.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, b"model=auto&not json \xff");
    // The plugin did not trap: the next request is balanced as usual.
    let r = gw.post("/v1/chat/completions", r#"{"model":"auto","messages":[]}"#);
    assert_eq!(r.status, 200);
    assert_eq!(qianwen.requests().len(), 1);
    assert!(!gw.wasm_failed(), "{}", gw.envoy.log());
}

#[test]
fn other_models_go_to_a_provider_declaring_them() {
    let (gw, minmax, qianwen) = seed_gateway(json!({
        "other_models": "route",
        "providers": [
            {"name": "minmax", "key": "minimax_1", "model": "MiniMax-M2.1", "models": ["shared-model", "minimax-only"]},
            {"name": "qianwen", "key": "qwen_1", "model": "qwen3-max-preview", "models": ["shared-model"]}
        ]
    }));
    let ask = |model: &str| {
        let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
        let r = gw.request(
            "POST",
            "/v1/chat/completions",
            &[("x-selected-provider", "qianwen")],
            &[body.to_string().as_bytes()],
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["model"].as_str().unwrap_or_default().to_string()
    };
    // Declared by both: the less loaded one (qianwen, 10 < 90), model untouched.
    assert_eq!(ask("shared-model"), "shared-model");
    assert_eq!(qianwen.requests().len(), 1);
    // Declared by minmax only: it goes there although it is busier, and the client's routing
    // header does not override that.
    assert_eq!(ask("minimax-only"), "minimax-only");
    assert_eq!(minmax.requests().len(), 1);
    assert_eq!(
        minmax.requests()[0].header("x-selected-provider"),
        Some("minmax")
    );
    // A provider's main model counts as declared too.
    assert_eq!(ask("qwen3-max-preview"), "qwen3-max-preview");
    assert_eq!(qianwen.requests().len(), 2);
    // Nobody declares it: passes through on the default route with the spoofed header removed.
    assert_eq!(ask("unknown-model"), "unknown-model");
    let last = minmax.requests();
    assert_eq!(last.len(), 2);
    assert_eq!(last[1].header("x-selected-provider"), None);
}

#[test]
fn many_mib_body_in_many_chunks_only_model_changes() {
    let (gw, _minmax, qianwen) = seed_gateway(json!({}));
    // ~6 MiB of conversation, sent in 64 KiB chunks.
    let filler = "x".repeat(6 * 1024 * 1024);
    let body = format!(
        r#"{{"model":"auto","messages":[{{"role":"user","content":"{filler}"}}],"user":"auto"}}"#
    );
    let pieces: Vec<&[u8]> = body.as_bytes().chunks(64 * 1024).collect();
    let r = gw.request("POST", "/v1/chat/completions", &[], &pieces);
    assert_eq!(r.status, 200, "{}", r.text());
    let got = qianwen.requests();
    assert_eq!(got.len(), 1);
    let expected = body.replacen(r#""auto""#, r#""qwen3-max-preview""#, 1);
    assert_eq!(got[0].body.len(), expected.len());
    assert!(
        got[0].body == expected.as_bytes(),
        "only the model value may change"
    );
    assert!(!gw.wasm_failed());
}
