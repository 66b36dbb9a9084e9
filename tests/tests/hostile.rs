//! Hostile input through real Envoy: every malformed, oversized or path-steering request is
//! answered by the gateway with an OpenAI-style 4xx (`{"error":{"message","type","code"}}`),
//! nothing unsafe reaches the vendor, and the Wasm VMs never trap (no panic in the log, no VM
//! restart in Envoy's stats, and a normal request still works afterwards).
//!
//! Covered for the OpenAI-compatible (`deepseek`), `claude` and `gemini` provider types and for
//! the load balancer chained in front of the proxy.

use serde_json::Value;
use switchyard_e2e::*;

const OK_CHAT: &str = r#"{"model":"m-1","messages":[{"role":"user","content":"hello"}]}"#;
/// The proxy's own body limit in these gateways.
const PROXY_LIMIT: usize = 64 * 1024;
/// Envoy's buffer limit (bounds what `json_to_metadata` buffers) in these gateways.
const ENVOY_LIMIT: u32 = 512 * 1024;

struct Target {
    name: &'static str,
    gw: Gateway,
    mocks: Vec<MockServer>,
}

impl Target {
    fn upstream_requests(&self) -> Vec<RecordedRequest> {
        self.mocks.iter().flat_map(|m| m.requests()).collect()
    }
    fn clear(&self) {
        for m in &self.mocks {
            m.clear_requests();
        }
    }
}

fn proxy_target(name: &'static str, provider: Value) -> Target {
    let (mut s, m) = proxy_spec(json!({
        "provider": provider,
        "maxRequestBodyBytes": PROXY_LIMIT,
    }));
    s.buffer_limit_bytes = ENVOY_LIMIT;
    Target {
        name,
        gw: Gateway::start(&s),
        mocks: vec![m],
    }
}

/// Balancer (alias `auto`) in front of the proxy with a Gemini and a Claude provider.
fn balanced_target() -> Target {
    let g = mock();
    let c = mock();
    let mut s = spec();
    s.buffer_limit_bytes = ENVOY_LIMIT;
    s.filters.push(lb_filter(json!({
        "providers": [
            {"name": "gem", "key": "g", "model": "gemini-2.5-flash"},
            {"name": "cla", "key": "c", "model": "claude-sonnet-4"}
        ],
        "metrics": {"source": "static", "values": {"g": 10, "c": 90}}
    })));
    s.filters.push(proxy_filter(json!({
        "providers": [
            {"id": "gem", "type": "gemini", "apiTokens": ["g-key"]},
            {"id": "cla", "type": "claude", "apiTokens": ["c-key"]}
        ],
        "activeProviderId": "cla",
        "activeProviderHeader": "x-selected-provider",
        "maxRequestBodyBytes": PROXY_LIMIT,
    })));
    add_provider(&mut s, "gem", g.addr());
    add_provider(&mut s, "cla", c.addr());
    s.default_cluster = Some("provider-cla".into());
    Target {
        name: "balancer+proxy",
        gw: Gateway::start(&s),
        mocks: vec![g, c],
    }
}

fn targets() -> Vec<Target> {
    vec![
        proxy_target("openai", json!({"type": "deepseek", "apiTokens": ["k-ds"]})),
        proxy_target("claude", json!({"type": "claude", "apiTokens": ["k-ant"]})),
        proxy_target(
            "gemini",
            json!({"type": "gemini", "apiTokens": ["k-gem"], "modelMapping": {"m-1": "gemini-2.5-flash"}}),
        ),
        balanced_target(),
    ]
}

/// A gateway-made error: 4xx, JSON, OpenAI's shape with a non-empty message.
fn assert_openai_error(r: &Response, what: &str) -> Value {
    assert!(
        (400..500).contains(&r.status),
        "{what}: want a 4xx, got {} {}",
        r.status,
        r.text()
    );
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}: content-type {:?}",
        r.header("content-type")
    );
    let v: Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("{what}: error body is not JSON ({e}): {}", r.text()));
    let e = &v["error"];
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {v}"
    );
    assert!(e["type"].is_string(), "{what}: {v}");
    assert!(
        e.get("code").is_some(),
        "{what}: error has no code field: {v}"
    );
    v
}

/// No trap in the log, no VM restart in the stats, and the gateway still serves.
fn assert_healthy(t: &Target) {
    assert!(!t.gw.wasm_failed(), "{}: {}", t.name, t.gw.envoy.log());
    let stats =
        t.gw.envoy
            .admin_get("/stats?filter=wasm")
            .map(|(_, b)| b)
            .unwrap_or_default();
    for line in stats.lines() {
        // Envoy's own Wasm counters (`wasm.*`), not the plugins' metrics (`wasmcustom.*`).
        let Some((k, v)) = line
            .split_once(": ")
            .filter(|(k, _)| k.starts_with("wasm."))
        else {
            continue;
        };
        let v: u64 = v.trim().parse().unwrap_or(0);
        // A trap makes Envoy reload the VM (`wasm.<plugin>.vm_reload*`).
        if k.contains("vm_reload") || k.contains("fail") {
            assert_eq!(v, 0, "{}: {k} = {v}\n{stats}", t.name);
        }
    }
    let body = if t.name == "balancer+proxy" {
        r#"{"model":"auto","messages":[{"role":"user","content":"still alive?"}]}"#
    } else {
        OK_CHAT
    };
    let r = t.gw.post("/v1/chat/completions", body);
    assert_eq!(r.status, 200, "{}: {}", t.name, r.text());
}

/// Cases an OpenAI-compatible vendor receives untouched (`json_to_metadata` finds a model in
/// them and the plugin does not re-parse pass-through bodies): the vendor refuses them.
const PASSED_TO_OPENAI_VENDORS: &[&str] = &["nested 200 deep"];

fn what_case(what: &str) -> &str {
    what.split_once(" / ").map_or(what, |(_, c)| c)
}

/// Send each body; every answer must be a gateway 4xx and nothing may reach the vendor.
fn refused_everywhere(cases: &[(&str, Vec<u8>)]) {
    for t in targets() {
        for (what, body) in cases {
            let what = format!("{} / {what}", t.name);
            let r = t.gw.request("POST", "/v1/chat/completions", &[], &[body]);
            assert_openai_error(&r, &what);
            // Still an OpenAI-shaped 4xx (above) when the vendor refused it.
            if !(t.name == "openai" && PASSED_TO_OPENAI_VENDORS.contains(&what_case(&what))) {
                assert!(
                    t.upstream_requests().is_empty(),
                    "{what}: reached the vendor"
                );
            }
            t.clear();
        }
        assert_healthy(&t);
    }
}

#[test]
fn malformed_json_and_bytes_are_refused() {
    let nested = |depth: usize| {
        let mut b = br#"{"model":"m-1","messages":[{"role":"user","content":"hi"}],"x":"#.to_vec();
        b.extend(std::iter::repeat_n(b'[', depth));
        b.extend(std::iter::repeat_n(b']', depth));
        b.push(b'}');
        b
    };
    let deep_messages = {
        let mut b = br#"{"model":"m-1","messages":"#.to_vec();
        b.extend(std::iter::repeat_n(b'[', 5000));
        b.extend(std::iter::repeat_n(b']', 5000));
        b.push(b'}');
        b
    };
    let cases: Vec<(&str, Vec<u8>)> =
        vec![
        ("not json", b"{not json".to_vec()),
        ("truncated", br#"{"model":"m-1","messages":[{"role":"us"#.to_vec()),
        ("empty body", Vec::new()),
        ("array body", b"[1,2,3]".to_vec()),
        ("string body", br#""model""#.to_vec()),
        ("null body", b"null".to_vec()),
        (
            "invalid utf-8 in a string",
            b"{\"model\":\"m-1\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\xc3\"}]}"
                .to_vec(),
        ),
        (
            "invalid utf-8 in the model",
            b"{\"model\":\"m\xc3\x28\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
                .to_vec(),
        ),
        (
            "lone surrogate escape",
            br#"{"model":"m-1","messages":[{"role":"user","content":"\ud800"}]}"#.to_vec(),
        ),
        ("nested 200 deep", nested(200)),
        ("nested 100000 deep", nested(100_000)),
        ("nested messages", deep_messages),
        ("trailing garbage", format!("{OK_CHAT} trailing").into_bytes()),
        ("duplicate-free NUL", b"{\"model\":\"m-1\"\0}".to_vec()),
    ];
    refused_everywhere(&cases);
}

#[test]
fn empty_and_missing_fields_are_refused() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "no model",
            br#"{"messages":[{"role":"user","content":"hi"}]}"#.to_vec(),
        ),
        (
            "empty model",
            br#"{"model":"","messages":[{"role":"user","content":"hi"}]}"#.to_vec(),
        ),
        ("empty object", b"{}".to_vec()),
    ];
    refused_everywhere(&cases);
    // Empty `messages`: the translating vendors refuse it in the gateway (an
    // OpenAI-compatible vendor is sent the request and answers for itself).
    for t in targets().into_iter().skip(1) {
        for body in [
            r#"{"model":"m-1","messages":[]}"#,
            r#"{"model":"auto","messages":[]}"#,
            r#"{"model":"m-1"}"#,
        ] {
            if t.name != "balancer+proxy" && body.contains("auto") {
                continue;
            }
            let r = t.gw.post("/v1/chat/completions", body);
            let v = assert_openai_error(&r, &format!("{}: {body}", t.name));
            assert_eq!(r.status, 400, "{}: {v}", t.name);
            assert!(t.upstream_requests().is_empty(), "{}: {body}", t.name);
        }
        assert_healthy(&t);
    }
}

/// Every field of a chat request with a value of the wrong type.
fn wrong_type_bodies() -> Vec<(String, String)> {
    let base = json!({
        "model": "m-1",
        "messages": [{"role": "user", "content": "hi"}],
    });
    let fields: Vec<(&str, Vec<Value>)> = vec![
        (
            "model",
            vec![
                json!(5),
                json!(["m-1"]),
                json!({"name": "m-1"}),
                json!(true),
            ],
        ),
        (
            "messages",
            vec![
                json!("hi"),
                json!({"role": "user"}),
                json!(3),
                json!([1, 2]),
                json!(["hi"]),
                json!([null]),
            ],
        ),
        ("stream", vec![json!("yes"), json!(1), json!({})]),
        ("stream_options", vec![json!("usage"), json!([true])]),
        ("temperature", vec![json!("hot"), json!([1])]),
        ("top_p", vec![json!("high")]),
        ("max_tokens", vec![json!("many"), json!(-5), json!(1.5)]),
        ("max_completion_tokens", vec![json!("many")]),
        ("n", vec![json!("two")]),
        ("stop", vec![json!(5), json!([1, 2])]),
        (
            "tools",
            vec![
                json!("search"),
                json!([1]),
                json!([{"type": "function"}]),
                json!([{"type": "function", "function": {"name": 5}}]),
            ],
        ),
        ("tool_choice", vec![json!(5), json!({"type": "function"})]),
        ("response_format", vec![json!("json"), json!({"type": 5})]),
        ("user", vec![json!(5)]),
        ("seed", vec![json!("x")]),
    ];
    let mut out = Vec::new();
    for (field, values) in fields {
        for v in values {
            let mut b = base.clone();
            b[field] = v.clone();
            out.push((format!("{field} = {v}"), b.to_string()));
        }
    }
    let message_cases = [
        ("role number", json!([{"role": 1, "content": "hi"}])),
        ("role missing", json!([{"content": "hi"}])),
        ("unknown role", json!([{"role": "wizard", "content": "hi"}])),
        ("content number", json!([{"role": "user", "content": 42}])),
        (
            "content object",
            json!([{"role": "user", "content": {"text": "hi"}}]),
        ),
        (
            "unknown content part",
            json!([{"role": "user", "content": [{"type": "hologram", "data": "x"}]}]),
        ),
        (
            "text part with number",
            json!([{"role": "user", "content": [{"type": "text", "text": 5}]}]),
        ),
        (
            "image_url not object",
            json!([{"role": "user", "content": [{"type": "image_url", "image_url": 5}]}]),
        ),
        (
            "tool_calls not list",
            json!([{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": "x"}]),
        ),
        (
            "tool message without id",
            json!([{"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}]),
        ),
    ];
    for (what, messages) in message_cases {
        let mut b = base.clone();
        b["messages"] = messages;
        out.push((format!("messages: {what}"), b.to_string()));
    }
    out
}

#[test]
fn wrong_types_are_refused_by_translating_vendors() {
    for t in targets().into_iter().skip(1) {
        for (what, body) in wrong_type_bodies() {
            let body = if t.name == "balancer+proxy" {
                body.replacen(r#""model":"m-1""#, r#""model":"auto""#, 1)
            } else {
                body
            };
            let what = format!("{} / {what}", t.name);
            let r = t.gw.post("/v1/chat/completions", &body);
            assert_openai_error(&r, &what);
            assert!(
                t.upstream_requests().is_empty(),
                "{what}: reached the vendor"
            );
        }
        assert_healthy(&t);
    }
}

#[test]
fn wrong_types_for_an_openai_compatible_vendor_never_trap() {
    // The body goes to an OpenAI-compatible vendor as the client wrote it (the gateway does not
    // buffer and re-parse it), so the vendor judges most fields; whatever answers, it is never
    // a gateway 5xx, and a gateway refusal is OpenAI-shaped.
    let t = targets().remove(0);
    for (what, body) in wrong_type_bodies() {
        let r = t.gw.post("/v1/chat/completions", &body);
        assert!(r.status < 500, "{what}: {} {}", r.status, r.text());
        if r.status >= 400 && t.upstream_requests().is_empty() {
            assert_openai_error(&r, &what);
        }
        t.clear();
    }
    assert_healthy(&t);
}

#[test]
fn model_names_that_would_steer_the_upstream_path_are_refused() {
    let evil = [
        "../../v1/admin",
        "gemini-2.5-flash/../../secrets",
        "gemini?key=stolen",
        "gemini#frag",
        "gemini%2F..%2Fadmin",
        "gemini%0d%0ax-injected: 1",
        "gemini\r\nx-injected: 1",
        "gemini\nx",
        "gemini flash",
        "gémini",
        "models/../tunedModels/x",
        "",
    ];
    let gemini = proxy_target("gemini", json!({"type": "gemini", "apiTokens": ["k-gem"]}));
    for model in evil {
        let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
        for stream in [false, true] {
            let mut b = body.clone();
            b["stream"] = json!(stream);
            let r = gemini.gw.post("/v1/chat/completions", &b.to_string());
            let v = assert_openai_error(&r, &format!("gemini model {model:?}"));
            assert_eq!(r.status, 400, "{v}");
        }
        let emb = json!({"model": model, "input": "hi"}).to_string();
        let r = gemini.gw.post("/v1/embeddings", &emb);
        assert_openai_error(&r, &format!("gemini embeddings model {model:?}"));
    }
    assert!(gemini.upstream_requests().is_empty());
    // A mapping target is checked the same way: a config cannot be tricked by a client model.
    let mapped = proxy_target(
        "gemini",
        json!({"type": "gemini", "apiTokens": ["k-gem"], "modelMapping": {"*": "gemini-2.5-flash"}}),
    );
    for model in evil.iter().filter(|m| !m.is_empty()) {
        let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
        let r = mapped.gw.post("/v1/chat/completions", &body.to_string());
        assert_eq!(r.status, 200, "{model:?} is mapped: {}", r.text());
    }
    for up in mapped.upstream_requests() {
        assert_eq!(up.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    }
    assert_healthy(&gemini);
    assert_healthy(&mapped);
    // The other vendors carry the model in the body only: the path and headers upstream are
    // the gateway's, whatever the model says.
    for t in targets().into_iter().take(2) {
        for model in evil.iter().filter(|m| !m.is_empty()) {
            let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
            let r = t.gw.post("/v1/chat/completions", &body.to_string());
            assert!(r.status < 500, "{} {model:?}: {}", t.name, r.text());
        }
        for up in t.upstream_requests() {
            assert!(
                up.path == "/chat/completions" || up.path == "/v1/messages",
                "{}: {}",
                t.name,
                up.path
            );
            assert!(up.header("x-injected").is_none());
        }
        assert_healthy(&t);
    }
}

#[test]
fn header_values_with_control_or_non_ascii_bytes_never_reach_the_vendor_raw() {
    let t = balanced_target();
    // A bare CR inside a header value: Envoy's codec refuses it (or, if it let it through,
    // the check below would catch it reaching the vendor).
    let r = t.gw.request(
        "POST",
        "/v1/chat/completions",
        &[("x-selected-provider", "gem\rx-injected: 1")],
        &[OK_CHAT.as_bytes()],
    );
    assert!(r.status < 500, "{} {}", r.status, r.text());
    // Non-ASCII routing header and an `auto` model: the balancer's pick replaces it.
    let r = t.gw.request(
        "POST",
        "/v1/chat/completions",
        &[("x-selected-provider", "g\u{e9}m")],
        &[br#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Values the gateway copies into headers (path with the model, anthropic-version,
    // authority, credentials) are all from config or checked: nothing upstream carries a
    // control character or a client-injected header.
    for up in t.upstream_requests() {
        assert!(up.header("x-injected").is_none());
        for (k, v) in &up.headers {
            assert!(
                !v.bytes().any(|b| b.is_ascii_control() && b != b'\t'),
                "{k}: {v:?}"
            );
        }
        assert!(up.path.is_ascii(), "{}", up.path);
    }
    assert_healthy(&t);
}

#[test]
fn bodies_over_the_limits_get_openai_413s() {
    let big = |n: usize| {
        format!(
            r#"{{"model":"m-1","messages":[{{"role":"user","content":"{}"}}]}}"#,
            "x".repeat(n)
        )
    };
    for t in targets() {
        let model_fix = |b: String| {
            if t.name == "balancer+proxy" {
                b.replacen(r#""model":"m-1""#, r#""model":"auto""#, 1)
            } else {
                b
            }
        };
        // Over the proxy's limit (content-length known, and chunked).
        let body = model_fix(big(PROXY_LIMIT + 10));
        let r = t.gw.post("/v1/chat/completions", &body);
        let v = assert_openai_error(&r, &format!("{} over proxy limit", t.name));
        assert_eq!(r.status, 413, "{v}");
        let half = body.len() / 2;
        let r = t.gw.request(
            "POST",
            "/v1/chat/completions",
            &[],
            &[&body.as_bytes()[..half], &body.as_bytes()[half..]],
        );
        let v = assert_openai_error(&r, &format!("{} chunked over proxy limit", t.name));
        assert_eq!(r.status, 413, "{v}");
        // Over Envoy's buffer limit: Envoy's own 413, in OpenAI's shape too.
        let body = model_fix(big(ENVOY_LIMIT as usize * 2));
        let r = t.gw.post("/v1/chat/completions", &body);
        let v = assert_openai_error(&r, &format!("{} over envoy limit", t.name));
        assert_eq!(r.status, 413, "{v}");
        assert!(t.upstream_requests().is_empty(), "{}", t.name);
        // Just under the limit goes through.
        let r =
            t.gw.post("/v1/chat/completions", &model_fix(big(PROXY_LIMIT - 200)));
        assert_eq!(r.status, 200, "{}: {}", t.name, r.text());
        assert_healthy(&t);
    }
}

#[test]
fn unknown_methods_and_paths_are_openai_errors() {
    for t in targets() {
        for (method, path) in [
            ("POST", "/v1/chat/completions/../../admin"),
            ("POST", "/v1/unknown"),
            ("DELETE", "/v1/chat/completions"),
        ] {
            let r = t.gw.request(method, path, &[], &[OK_CHAT.as_bytes()]);
            assert!(
                r.status < 500,
                "{} {method} {path}: {} {}",
                t.name,
                r.status,
                r.text()
            );
            if r.status >= 400 && t.upstream_requests().is_empty() {
                assert_openai_error(&r, &format!("{} {method} {path}", t.name));
            }
            t.clear();
        }
        assert_healthy(&t);
    }
}
