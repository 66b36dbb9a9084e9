//! ai-proxy in real Envoy against the mock provider: OpenAI-compatible vendors, header and
//! body rewriting, token rotation, usage handling, context files, rule overrides, chaining
//! with the balancer, bad input.

use std::io::{Read, Write};
use std::net::TcpListener;
use switchyard_e2e::*;

const CHAT: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hello there"}]}"#;

/// Envoy with only ai-proxy in front of one mock, reached through the catch-all route.
#[test]
fn deepseek_path_host_auth_and_model_mapping() {
    let (gw, m) = proxy_gateway(json!({
        "provider": {"type": "deepseek", "apiTokens": ["sk-ds-1"], "modelMapping": {"gpt-4*": "deepseek-chat"}}
    }));
    let r = gw.request(
        "POST",
        "/v1/chat/completions",
        &[
            ("authorization", "Bearer client-secret"),
            ("accept-encoding", "gzip"),
        ],
        &[CHAT.as_bytes()],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let got = m.requests();
    assert_eq!(got.len(), 1);
    let up = &got[0];
    assert_eq!(up.path, "/chat/completions");
    assert_eq!(up.header("host"), Some("api.deepseek.com"));
    assert_eq!(
        up.header("authorization"),
        Some("Bearer sk-ds-1"),
        "client credentials replaced"
    );
    assert!(up.header("accept-encoding").is_none());
    assert_eq!(up.json().unwrap()["model"], "deepseek-chat");
    // The vendor's answer comes back unchanged.
    let direct = request(m.addr(), "POST", "/chat/completions", &[], &[&up.body]);
    let (mut a, mut b) = (r.json(), direct.json());
    for v in [&mut a, &mut b] {
        v.as_object_mut().unwrap().remove("created");
        v.as_object_mut().unwrap().remove("id");
    }
    assert_eq!(a, b);
    assert_eq!(a["model"], "deepseek-chat");
}

#[test]
fn vendors_plain_and_streaming() {
    let cases = [
        (
            json!({"type": "deepseek", "apiTokens": ["k"]}),
            "/chat/completions",
            "api.deepseek.com",
            ("authorization", "Bearer k"),
        ),
        (
            json!({"type": "qwen", "apiTokens": ["k"]}),
            "/compatible-mode/v1/chat/completions",
            "dashscope.aliyuncs.com",
            ("authorization", "Bearer k"),
        ),
        (
            json!({"type": "azure", "apiTokens": ["k"], "azureServiceUrl": "https://res.openai.azure.com/openai/deployments/gpt4/chat/completions?api-version=2024-06-01"}),
            "/openai/deployments/gpt4/chat/completions?api-version=2024-06-01",
            "res.openai.azure.com",
            ("api-key", "k"),
        ),
        (
            json!({"type": "ollama", "ollamaServerHost": "ollama.local", "ollamaServerPort": 11434}),
            "/v1/chat/completions",
            "ollama.local:11434",
            ("authorization", ""),
        ),
        (
            json!({"type": "generic", "genericHost": "llm.internal", "apiTokens": ["k"]}),
            "/v1/chat/completions",
            "llm.internal",
            ("authorization", "Bearer k"),
        ),
    ];
    for (provider, path, host, (auth_name, auth_value)) in cases {
        let (gw, m) = proxy_gateway(json!({ "provider": provider }));
        let r = gw.post("/v1/chat/completions", CHAT);
        assert_eq!(r.status, 200, "{provider}: {}", r.text());
        assert_eq!(r.json()["object"], "chat.completion");
        let stream =
            r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"one two"}]}"#;
        let r = gw.post("/v1/chat/completions", stream);
        assert_eq!(r.status, 200);
        let data = r.sse_data();
        assert_eq!(
            data.last().map(String::as_str),
            Some("[DONE]"),
            "{provider}"
        );
        assert!(data.len() > 2);
        for up in m.requests() {
            assert_eq!(up.path, path, "{provider}");
            assert_eq!(up.header("host"), Some(host), "{provider}");
            assert_eq!(up.header(auth_name).unwrap_or(""), auth_value, "{provider}");
        }
    }
}

#[test]
fn usage_is_requested_upstream_and_stripped_unless_asked() {
    let (gw, m) = proxy_gateway(json!({"provider": {"type": "deepseek", "apiTokens": ["k"]}}));
    let r = gw.post(
        "/v1/chat/completions",
        r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"a b c"}]}"#,
    );
    assert_eq!(r.status, 200);
    let up = m.requests().pop().unwrap().json().unwrap();
    assert_eq!(
        up["stream_options"]["include_usage"], true,
        "the gateway asks the vendor for usage"
    );
    assert!(
        r.sse_data().iter().all(|d| !d.contains("\"usage\"")),
        "{}",
        r.text()
    );
    // The client asked: exactly one usage chunk, with no choices, right before [DONE].
    let r = gw.post("/v1/chat/completions", r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a b c"}]}"#);
    let data = r.sse_data();
    let usage: Vec<&String> = data.iter().filter(|d| d.contains("\"usage\"")).collect();
    assert_eq!(usage.len(), 1, "{}", r.text());
    let chunk: serde_json::Value = serde_json::from_str(usage[0]).unwrap();
    assert_eq!(chunk["choices"], json!([]));
    assert_eq!(data[data.len() - 2], *usage[0]);
}

#[test]
fn tokens_rotate_across_the_pool() {
    let (gw, m) =
        proxy_gateway(json!({"provider": {"type": "openai", "apiTokens": ["t-a", "t-b", "t-c"]}}));
    for _ in 0..40 {
        assert_eq!(gw.post("/v1/chat/completions", CHAT).status, 200);
    }
    let mut seen: Vec<String> = m
        .requests()
        .iter()
        .filter_map(|r| r.header("authorization").map(str::to_string))
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, ["Bearer t-a", "Bearer t-b", "Bearer t-c"]);
}

#[test]
fn bad_input_gets_openai_errors_and_never_reaches_the_vendor() {
    let (gw, m) = proxy_gateway(
        json!({"provider": {"type": "deepseek", "apiTokens": ["k"]}, "maxRequestBodyBytes": 1000}),
    );
    let cases: [(&str, String, u16, &str); 5] = [
        (
            "/v1/chat/completions",
            "{not json".into(),
            400,
            "invalid_json",
        ),
        (
            "/v1/chat/completions",
            r#"{"messages":[]}"#.into(),
            400,
            "missing_model",
        ),
        (
            "/v1/embeddings",
            r#"{"model":"m","input":"x"}"#.into(),
            404,
            "unsupported_api",
        ),
        (
            "/v1/images/generations",
            r#"{"model":"m"}"#.into(),
            404,
            "unsupported_api",
        ),
        (
            "/v1/chat/completions",
            format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}]}}"#,
                "x".repeat(2000)
            ),
            413,
            "request_too_large",
        ),
    ];
    for (path, body, status, code) in cases {
        let r = gw.post(path, &body);
        assert_eq!(r.status, status, "{path} {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v = r.json();
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|s| !s.is_empty()));
    }
    assert!(m.requests().is_empty(), "nothing reached the vendor");
    assert!(!gw.wasm_failed());
}

#[test]
fn vendor_errors_keep_status_in_openai_shape() {
    let (gw, m) = proxy_gateway(json!({"provider": {"type": "deepseek", "apiTokens": ["k"]}}));
    m.push_script(Script {
        status: Some(503),
        raw_body: Some("upstream overloaded".into()),
        ..Default::default()
    });
    let r = gw.post("/v1/chat/completions", CHAT);
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["message"], "upstream overloaded");
    m.push_script(Script::error(429, "slow down"));
    let r = gw.post("/v1/chat/completions", CHAT);
    assert_eq!(r.status, 429);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("slow down"));
}

/// A one-file HTTP server for the context option.
fn file_server(status: u16, body: &'static str) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = write!(
                c,
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

fn context_gateway(status: u16) -> (Gateway, MockServer) {
    let files = file_server(status, "Switchyard facts: the gateway is fast.");
    let (s, m) = context_spec(files);
    (Gateway::start(&s), m)
}

#[test]
fn context_file_is_inserted_as_system_message() {
    let (gw, m) = context_gateway(200);
    for _ in 0..2 {
        let r = gw.post("/v1/chat/completions", CHAT);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    for up in m.requests() {
        let v = up.json().unwrap();
        assert_eq!(
            v["messages"][0],
            json!({"role": "system", "content": "Switchyard facts: the gateway is fast."})
        );
        assert_eq!(v["messages"][1]["content"], "hello there");
    }
}

#[test]
fn context_fetch_failure_is_a_500_naming_the_context() {
    let (gw, m) = context_gateway(404);
    let r = gw.post("/v1/chat/completions", CHAT);
    assert_eq!(r.status, 500, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["code"], "context_unavailable");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("context.md"));
    assert!(m.requests().is_empty());
}

#[test]
fn rule_by_route_name_picks_another_vendor() {
    let a = mock();
    let b = mock();
    let mut s = spec();
    s.filters.push(proxy_filter(json!({
        "providers": [
            {"id": "ds", "type": "deepseek", "apiTokens": ["k-ds"]},
            {"id": "qw", "type": "qwen", "apiTokens": ["k-qw"]}
        ],
        "activeProviderId": "ds",
        "_rules_": [{"_match_route_": ["provider-b"], "activeProviderId": "qw"}]
    })));
    add_provider(&mut s, "a", a.addr());
    add_provider(&mut s, "b", b.addr());
    s.default_cluster = Some("provider-a".into());
    let gw = Gateway::start(&s);
    assert_eq!(gw.post("/v1/chat/completions", CHAT).status, 200);
    let r = gw.request(
        "POST",
        "/v1/chat/completions",
        &[("x-selected-provider", "b")],
        &[CHAT.as_bytes()],
    );
    assert_eq!(r.status, 200);
    assert_eq!(a.requests()[0].path, "/chat/completions");
    assert_eq!(b.requests()[0].path, "/compatible-mode/v1/chat/completions");
    assert_eq!(b.requests()[0].header("authorization"), Some("Bearer k-qw"));
}

#[test]
fn balancer_and_proxy_chained_with_two_vendor_types() {
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
            {"id": "qianwen", "type": "qwen", "apiTokens": ["k-qw"]},
            {"id": "deepseek", "type": "deepseek", "apiTokens": ["k-ds"]}
        ],
        "activeProviderId": "deepseek",
        "activeProviderHeader": "x-selected-provider"
    })));
    add_provider(&mut s, "qianwen", qianwen.addr());
    add_provider(&mut s, "deepseek", deepseek.addr());
    s.default_cluster = Some("provider-deepseek".into());
    let gw = Gateway::start(&s);
    let r = gw.request(
        "POST",
        "/v1/chat/completions",
        &[("authorization", "Bearer client")],
        &[br#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "qwen3-max-preview");
    let up = &qianwen.requests()[0];
    assert_eq!(up.path, "/compatible-mode/v1/chat/completions");
    assert_eq!(up.header("authorization"), Some("Bearer k-qw"));
    assert_eq!(up.header("host"), Some("dashscope.aliyuncs.com"));
    // A non-alias model stays with the proxy's active provider.
    let r = gw.post(
        "/v1/chat/completions",
        r#"{"model":"deepseek-chat","messages":[]}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        deepseek.requests()[0].header("authorization"),
        Some("Bearer k-ds")
    );
}

#[test]
fn official_openai_sdk_plain_and_streaming_with_usage() {
    let (gw, _m) = proxy_gateway(json!({"provider": {"type": "deepseek", "apiTokens": ["k"]}}));
    let script = r#"
import sys, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="client-key", max_retries=0)
r = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi sdk"}])
assert r.choices[0].message.content.startswith("Mock answer"), r
assert r.usage.total_tokens > 0
chunks = list(c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi sdk"}], stream=True, stream_options={"include_usage": True}))
usage = [ch for ch in chunks if ch.usage is not None]
assert len(usage) == 1 and usage[0].choices == [], usage
text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
assert text == r.choices[0].message.content, (text, r.choices[0].message.content)
assert usage[0].usage.total_tokens == r.usage.total_tokens
with c.chat.completions.stream(model="m", messages=[{"role": "user", "content": "hi sdk"}]) as s:
    final = s.get_final_completion()
assert final.choices[0].message.content == text
print("ok")
"#;
    run_python(script, &[format!("http://{}/v1", gw.addr())]);
}

#[test]
fn embeddings_and_legacy_completions_are_routed_and_models_answered_by_the_gateway() {
    let (gw, m) = proxy_gateway(json!({"provider": {"type": "openai", "apiTokens": ["k"],
        "models": ["gpt-4o-mini"], "modelMapping": {"emb": "text-embedding-3-small", "*": "text-embedding-3-small"}}}));
    let r = gw.post("/v1/embeddings", r#"{"model":"emb","input":["a","b"]}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"].as_array().map(Vec::len), Some(2));
    // The gateway's own list (configured models, exact mapping keys), not the upstream's.
    let r = gw.request("GET", "/v1/models", &[], &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"object": "list", "data": [
            {"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "openai"},
            {"id": "emb", "object": "model", "created": 0, "owned_by": "openai"}
        ]})
    );
    let r = gw.post("/v1/completions", r#"{"model":"m","prompt":"say hi"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let paths: Vec<String> = m.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/v1/embeddings", "/v1/completions"]);
    assert_eq!(
        m.requests()[0].json().unwrap()["model"],
        "text-embedding-3-small"
    );
}
