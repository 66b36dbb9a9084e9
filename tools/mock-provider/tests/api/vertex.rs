//! Vertex AI: the token endpoint (JWT verified with the public half of a key pair generated
//! here), expiring tokens required on `/v1/projects/...`, Gemini and Claude paths. The JWTs
//! are built by the gateway's own code (`switchyard_protocol::vertex`).

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mock_provider::MockServer;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::Generate;
use serde_json::{json, Value};
use switchyard_protocol::vertex::{self, ServiceAccountKey, TokenAction, TokenCache};

use crate::client::{Conn, Reply, ReplyExt};
use crate::server;

const GEMINI: &str = "/v1/projects/my-proj/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent";
const CLAUDE: &str = "/v1/projects/my-proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:rawPredict";
const CLAUDE_STREAM: &str = "/v1/projects/my-proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict";

/// One RSA key pair for the whole test binary: (private PKCS#8 PEM, public SPKI PEM).
fn key_pair() -> &'static (String, String) {
    static PAIR: OnceLock<(String, String)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let private = rsa::PrivateKey::generate();
        let private_pem = private.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        (private_pem, public_pem)
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A service-account key whose `token_uri` is the mock's token endpoint.
fn account(s: &MockServer, private_pem: &str) -> ServiceAccountKey {
    let json = json!({
        "type": "service_account",
        "project_id": "my-proj",
        "private_key_id": "k1",
        "private_key": private_pem,
        "client_email": "gw@my-proj.iam.gserviceaccount.com",
        "token_uri": format!("http://{}/token", s.addr()),
    });
    ServiceAccountKey::from_json(&json.to_string()).unwrap()
}

fn fetch_token(s: &MockServer, key: &ServiceAccountKey, at: u64) -> Reply {
    let body = key.token_request_body(at).unwrap();
    Conn::connect(s.addr()).send(
        "POST",
        &key.token_endpoint().unwrap().path,
        &[("content-type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    )
}

fn post(s: &MockServer, path: &str, token: Option<&str>, body: &Value) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("authorization", a));
    }
    Conn::connect(s.addr()).send("POST", path, &headers, body.to_string().as_bytes())
}

fn gemini_request() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "Why is the sky blue?"}]}]})
}

fn claude_request() -> Value {
    json!({"anthropic_version": "vertex-2023-10-16", "max_tokens": 50,
           "messages": [{"role": "user", "content": "Why is the sky blue?"}]})
}

#[test]
fn tokens_are_issued_for_valid_jwts_and_required_on_vertex_paths() {
    let s = server();
    let (private_pem, public_pem) = key_pair();
    s.set_vertex_auth(public_pem, Duration::from_secs(3600))
        .unwrap();
    let key = account(&s, private_pem);

    let r = post(&s, GEMINI, None, &gemini_request());
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["status"], "UNAUTHENTICATED");

    let t = fetch_token(&s, &key, now());
    assert_eq!(t.status, 200, "{}", t.text());
    let answer = vertex::parse_token_response(t.status, &t.body).unwrap();
    assert_eq!(answer.expires_in, 3600);

    let r = post(&s, GEMINI, Some(&answer.token), &gemini_request());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["candidates"][0]["content"]["parts"][0]["text"],
        "Mock answer to: Why is the sky blue?"
    );
    assert_eq!(
        post(&s, GEMINI, Some("ya29.forged"), &gemini_request()).status,
        401
    );

    // Expired tokens are refused; a refresh gives a working one.
    s.expire_vertex_tokens();
    assert_eq!(
        post(&s, GEMINI, Some(&answer.token), &gemini_request()).status,
        401
    );
    let fresh = vertex::parse_token_response(200, &fetch_token(&s, &key, now()).body).unwrap();
    assert_ne!(fresh.token, answer.token);
    assert_eq!(
        post(&s, GEMINI, Some(&fresh.token), &gemini_request()).status,
        200
    );
}

#[test]
fn bad_assertions_are_refused_like_google() {
    let s = server();
    let (private_pem, public_pem) = key_pair();
    s.set_vertex_auth(public_pem, Duration::from_secs(60))
        .unwrap();
    let key = account(&s, private_pem);

    // Signed by another key.
    let other = rsa::PrivateKey::generate()
        .to_pkcs8_pem(LineEnding::LF)
        .unwrap()
        .to_string();
    let r = fetch_token(&s, &account(&s, &other), now());
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
    );
    assert!(matches!(
        vertex::parse_token_response(r.status, &r.body),
        Err(vertex::AuthError::TokenRejected { status: 400, .. })
    ));

    // Issued two hours ago: expired.
    let r = fetch_token(&s, &key, now() - 7200);
    assert_eq!(r.status, 400);
    assert!(r.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("iat and exp"));

    // Wrong grant type, and a tampered claim.
    let r = Conn::connect(s.addr()).send("POST", "/token", &[], b"grant_type=password&assertion=x");
    assert_eq!(r.json()["error"], "unsupported_grant_type");
    let jwt = key.jwt_assertion(now(), 3600).unwrap();
    let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].chars().rev().collect();
    let body = vertex::auth::token_request_body(&parts.join("."));
    let r = Conn::connect(s.addr()).send("POST", "/token", &[], body.as_bytes());
    assert_eq!(r.status, 400);
}

#[test]
fn token_cache_refreshes_against_the_mock() {
    let s = server();
    let (private_pem, public_pem) = key_pair();
    s.set_vertex_auth(public_pem, Duration::from_secs(400))
        .unwrap();
    let key = account(&s, private_pem);
    let mut cache = TokenCache::new(300);
    let t0 = now();
    assert_eq!(cache.poll(t0), TokenAction::FetchAndWait);
    let answer = vertex::parse_token_response(200, &fetch_token(&s, &key, t0).body).unwrap();
    cache.refreshed(t0, answer);
    let TokenAction::Use {
        token,
        refresh: false,
    } = cache.poll(t0)
    else {
        panic!("no token")
    };
    let first = token.to_owned();
    assert_eq!(
        post(&s, GEMINI, Some(&first), &gemini_request()).status,
        200
    );
    // 100 s later the token is inside the refresh window: the old one still serves while
    // one refresh is started.
    let TokenAction::Use {
        token,
        refresh: true,
    } = cache.poll(t0 + 100)
    else {
        panic!("no refresh")
    };
    assert_eq!(token, first);
    let answer = vertex::parse_token_response(200, &fetch_token(&s, &key, now()).body).unwrap();
    cache.refreshed(t0 + 101, answer);
    let TokenAction::Use {
        token,
        refresh: false,
    } = cache.poll(t0 + 102)
    else {
        panic!("no token")
    };
    assert_ne!(token, first);
    assert_eq!(post(&s, GEMINI, Some(token), &gemini_request()).status, 200);
}

#[test]
fn claude_on_vertex() {
    let s = server();
    let r = post(&s, CLAUDE, None, &claude_request());
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["model"], "claude-sonnet-4@20250514");
    assert_eq!(
        v["content"][0]["text"],
        "Mock answer to: Why is the sky blue?"
    );

    let r = post(&s, CLAUDE_STREAM, None, &claude_request());
    let events = r.events();
    assert_eq!(events.first().unwrap().0.as_deref(), Some("message_start"));
    assert_eq!(events.last().unwrap().0.as_deref(), Some("message_stop"));

    let mut with_model = claude_request();
    with_model["model"] = json!("claude-sonnet-4@20250514");
    let r = post(&s, CLAUDE, None, &with_model);
    assert_eq!(r.status, 400);
    let mut no_version = claude_request();
    no_version
        .as_object_mut()
        .unwrap()
        .remove("anthropic_version");
    let r = post(&s, CLAUDE, None, &no_version);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");

    // The gateway's translation is accepted as is.
    let body = vertex::chat_request_to_vertex_claude(
        br#"{"model":"claude-sonnet-4@20250514","messages":[{"role":"user","content":"Why is the sky blue?"}]}"#,
        &Default::default(),
    )
    .unwrap();
    let r = Conn::connect(s.addr()).send("POST", CLAUDE, &[], &body);
    assert_eq!(r.status, 200, "{}", r.text());
}
