//! `type: vertex` in real Envoy: the official SDKs talk to Gemini and Claude models on
//! Vertex AI (the mock), through a service-account key generated here. The mock's token
//! endpoint verifies each JWT with the key's public half and hands out expiring tokens; every
//! Vertex request must carry a live one.

use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::Generate;
use std::sync::OnceLock;
use std::time::Duration;
use switchyard::envoy::Cluster;
use switchyard_e2e::*;

/// One key pair for the test binary: (private PKCS#8 PEM, public SPKI PEM).
fn key_pair() -> &'static (String, String) {
    static PAIR: OnceLock<(String, String)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let private = rsa::PrivateKey::generate();
        let private_pem = private
            .to_pkcs8_pem(LineEnding::LF)
            .expect("pkcs8")
            .to_string();
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("spki");
        (private_pem, public_pem)
    })
}

/// ai-proxy with a Vertex provider whose key's `token_uri` is the mock's, the token endpoint
/// reached through cluster `vertex-auth`; tokens live `lifetime` seconds.
fn vertex_gateway(lifetime: u64, refresh_ahead: u64) -> (Gateway, MockServer) {
    vertex_gateway_trusting(&key_pair().1, lifetime, refresh_ahead)
}

/// [`vertex_gateway`] whose token endpoint trusts the key `public_pem`.
fn vertex_gateway_trusting(
    public_pem: &str,
    lifetime: u64,
    refresh_ahead: u64,
) -> (Gateway, MockServer) {
    let private_pem = &key_pair().0;
    let m = mock();
    m.set_vertex_auth(public_pem, Duration::from_secs(lifetime))
        .expect("vertex auth");
    let key = json!({
        "type": "service_account",
        "project_id": "e2e-proj",
        "private_key_id": "e2e",
        "private_key": private_pem,
        "client_email": "gateway@e2e-proj.iam.gserviceaccount.com",
        "token_uri": format!("http://{}/token", m.addr()),
    });
    let config = json!({"provider": {
        "type": "vertex",
        "vertexAuthKey": key.to_string(),
        "vertexRegion": "us-east5",
        "vertexProjectId": "e2e-proj",
        "vertexAuthServiceName": "vertex-auth",
        "vertexTokenRefreshAhead": refresh_ahead,
        "modelMapping": {"sonnet": "claude-sonnet-4@20250514"},
    }});
    let mut s = spec();
    s.filters.push(proxy_filter(config));
    add_provider(&mut s, "upstream", m.addr());
    s.clusters.push(Cluster::plain("vertex-auth", m.addr()));
    s.default_cluster = Some("provider-upstream".into());
    (Gateway::start(&s), m)
}

fn token_requests(m: &MockServer) -> usize {
    m.requests().iter().filter(|r| r.path == "/token").count()
}

/// Wait for the gateway's background fetch of its first token (the root tick sends it right
/// after configuration), then for its answer to be stored. A request that finds no usable
/// token while someone else's fetch is in flight sends a token request of its own (no
/// cross-worker wake-up exists to make it wait), so a test that counts token requests starts
/// after the first one has landed.
fn wait_for_first_token(m: &MockServer) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while token_requests(m) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the gateway sent no token request within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The mock answers at once; the gateway stores the token when the answer arrives.
    std::thread::sleep(Duration::from_millis(500));
}

fn vertex_requests(m: &MockServer) -> Vec<RecordedRequest> {
    m.requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/v1/projects/"))
        .collect()
}

#[test]
fn openai_and_anthropic_sdks_reach_gemini_and_claude_on_vertex() {
    let (gw, m) = vertex_gateway(3600, 300);
    wait_for_first_token(&m);
    let openai_script = r#"
import sys, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="client-key", max_retries=0)
for model in ["gemini-2.5-flash", "sonnet"]:
    r = c.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello vertex"}], max_tokens=50)
    assert r.choices[0].message.content.startswith("Mock answer"), r
    assert r.choices[0].finish_reason == "stop", r
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0, r.usage
    chunks = list(c.chat.completions.create(model=model, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "hello vertex"}], max_tokens=50))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text.startswith("Mock answer"), (model, text)
    usage = [ch for ch in chunks if ch.usage]
    assert len(usage) == 1 and usage[0].choices == [], usage
print("ok")
"#;
    run_python(openai_script, &[format!("http://{}/v1", gw.addr())]);
    let anthropic_script = r#"
import sys, anthropic
c = anthropic.Anthropic(base_url=sys.argv[1], api_key="client-key", max_retries=0)
m = c.messages.create(model="claude-sonnet-4@20250514", max_tokens=100, system="be brief",
    messages=[{"role": "user", "content": "hello vertex"}])
assert m.type == "message" and m.content[0].text.startswith("Mock answer"), m
assert m.stop_reason == "end_turn" and m.usage.output_tokens > 0, m
with c.messages.stream(model="claude-sonnet-4@20250514", max_tokens=100,
        messages=[{"role": "user", "content": "hello vertex"}]) as s:
    text = "".join(s.text_stream)
assert text == m.content[0].text, (text, m.content[0].text)
print("ok")
"#;
    run_python(anthropic_script, &[format!("http://{}", gw.addr())]);
    let sent = vertex_requests(&m);
    let paths: Vec<&str> = sent.iter().map(|r| r.path.as_str()).collect();
    let base = "/v1/projects/e2e-proj/locations/us-east5/publishers";
    assert_eq!(
        paths,
        [
            format!("{base}/google/models/gemini-2.5-flash:generateContent"),
            format!("{base}/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"),
            format!("{base}/anthropic/models/claude-sonnet-4@20250514:rawPredict"),
            format!("{base}/anthropic/models/claude-sonnet-4@20250514:streamRawPredict"),
            format!("{base}/anthropic/models/claude-sonnet-4@20250514:rawPredict"),
            format!("{base}/anthropic/models/claude-sonnet-4@20250514:streamRawPredict"),
        ],
        "{paths:?}"
    );
    for r in &sent {
        let auth = r.header("authorization").unwrap_or_default();
        assert!(auth.starts_with("Bearer ya29.mock-"), "{auth}");
        assert_eq!(r.header("x-api-key"), None);
    }
    // One token for all of them: fetched once, shared.
    assert_eq!(token_requests(&m), 1);
    let claude = sent
        .iter()
        .find(|r| r.path.contains(":rawPredict"))
        .expect("claude");
    let body = claude.json().expect("json body");
    assert_eq!(body["anthropic_version"], "vertex-2023-10-16");
    assert!(body.get("model").is_none(), "{body}");
    assert!(
        !gw.log().contains("ya29.mock"),
        "a token reached Envoy's log"
    );
}

#[test]
fn the_token_is_refreshed_before_it_expires() {
    // Tokens live 25 s; refreshed from 20 s before expiry: the first one is due 5 s in.
    let (gw, m) = vertex_gateway(25, 20);
    let body = r#"{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}]}"#;
    let r = gw.post("/v1/chat/completions", body);
    assert_eq!(r.status, 200, "{}", r.text());
    let first = vertex_requests(&m)
        .last()
        .and_then(|r| r.header("authorization").map(str::to_string))
        .expect("first token");
    // The background refresh, with no request waiting on it.
    assert!(
        wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
            token_requests(&m) >= 2
        }),
        "no refresh: {} token requests",
        token_requests(&m)
    );
    std::thread::sleep(Duration::from_millis(300));
    let before = token_requests(&m);
    let r = gw.post("/v1/chat/completions", body);
    assert_eq!(r.status, 200, "{}", r.text());
    let second = vertex_requests(&m)
        .last()
        .and_then(|r| r.header("authorization").map(str::to_string))
        .expect("second token");
    assert_ne!(
        first, second,
        "the later request still used the first token"
    );
    assert_eq!(
        token_requests(&m),
        before,
        "the request fetched its own token"
    );
}

#[test]
fn a_rejected_key_is_a_503_with_retry_after() {
    // The token endpoint trusts another key: every JWT the gateway signs is refused.
    let other = rsa::PrivateKey::generate()
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("spki");
    let (gw, m) = vertex_gateway_trusting(&other, 3600, 300);
    let body = r#"{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}]}"#;
    let r = gw.post("/v1/chat/completions", body);
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("retry-after")),
        "{:?}",
        r.headers
    );
    let v = r.json();
    assert_eq!(v["error"]["code"], "vertex_token_unavailable", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("invalid_grant"),
        "{v}"
    );
    assert!(
        vertex_requests(&m).is_empty(),
        "a request went upstream without a token"
    );
    assert!(token_requests(&m) >= 1);
}
