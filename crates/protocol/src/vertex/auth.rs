//! Google service-account auth for Vertex AI: the key JSON (Higress's `vertexAuthKey`), the
//! RS256-signed JWT assertion, the OAuth2 token request (JWT bearer grant) and its answer.
//!
//! Pure: the time is an input, the HTTP call is the filter's. Secrets (the private key, the
//! assertion, access tokens) never appear in `Debug` output or error messages.

use base64::Engine;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;
use std::fmt;

/// The OAuth2 scope for Vertex AI.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Google's token endpoint, used when a key has no `token_uri`.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The grant type of a JWT-bearer token request.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Longest assertion lifetime Google accepts (one hour).
pub const MAX_ASSERTION_LIFETIME: u64 = 3600;

/// Why a key, a token answer or a signature could not be used. Messages name fields, never
/// their (secret) values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the service-account key is not valid JSON ({0})")]
    KeyNotJson(String),
    #[error("the service-account key has no `{0}`")]
    KeyFieldMissing(&'static str),
    #[error("the service-account key's `private_key` is not an RSA key in PKCS#8 or PKCS#1 PEM")]
    KeyNotRsaPem,
    #[error("the service-account key's `token_uri` is not an http(s) URL")]
    BadTokenUri,
    #[error("RSA signing failed")]
    SigningFailed,
    #[error("the token endpoint answered HTTP {status}: {error}")]
    TokenRejected { status: u16, error: String },
    #[error("the token endpoint's answer has no usable `access_token`/`expires_in`")]
    BadTokenResponse,
}

/// The parts of a service-account key file that matter here.
#[derive(Clone)]
pub struct ServiceAccountKey {
    pub client_email: String,
    /// `private_key_id`, sent as the JWT's `kid` when present.
    pub private_key_id: Option<String>,
    pub project_id: Option<String>,
    pub token_uri: String,
    private_key: rsa::PrivateKey,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("project_id", &self.project_id)
            .field("token_uri", &self.token_uri)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

#[derive(Deserialize)]
struct KeyFile {
    client_email: Option<String>,
    private_key: Option<String>,
    private_key_id: Option<String>,
    project_id: Option<String>,
    token_uri: Option<String>,
}

/// Where to send the token request, split for an HTTP callout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEndpoint {
    /// `https` or `http`.
    pub scheme: String,
    /// `host[:port]`.
    pub authority: String,
    /// Path and query, at least `/`.
    pub path: String,
}

impl ServiceAccountKey {
    /// Parse a key file (the JSON Google hands out for a service account). Requires
    /// `client_email` and `private_key` (PKCS#8 `BEGIN PRIVATE KEY` as Google issues it,
    /// or PKCS#1 `BEGIN RSA PRIVATE KEY`); `token_uri` defaults to Google's endpoint.
    pub fn from_json(json: &str) -> Result<Self, AuthError> {
        let file: KeyFile = serde_json::from_str(json).map_err(|e| {
            // serde's message may quote a value; keep only where it failed.
            AuthError::KeyNotJson(format!("line {} column {}", e.line(), e.column()))
        })?;
        let client_email = file
            .client_email
            .filter(|s| !s.is_empty())
            .ok_or(AuthError::KeyFieldMissing("client_email"))?;
        let pem = file
            .private_key
            .filter(|s| !s.is_empty())
            .ok_or(AuthError::KeyFieldMissing("private_key"))?;
        let pem = pem.trim();
        let private_key = rsa::PrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| rsa::PrivateKey::from_pkcs1_pem(pem))
            .map_err(|_| AuthError::KeyNotRsaPem)?;
        let token_uri = file
            .token_uri
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned());
        let key = ServiceAccountKey {
            client_email,
            private_key_id: file.private_key_id.filter(|s| !s.is_empty()),
            project_id: file.project_id.filter(|s| !s.is_empty()),
            token_uri,
            private_key,
        };
        key.token_endpoint()?;
        Ok(key)
    }

    /// `token_uri` split into scheme, authority and path.
    pub fn token_endpoint(&self) -> Result<TokenEndpoint, AuthError> {
        let (scheme, rest) = self
            .token_uri
            .split_once("://")
            .ok_or(AuthError::BadTokenUri)?;
        if scheme != "https" && scheme != "http" {
            return Err(AuthError::BadTokenUri);
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        let bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '@' | '#' | '?');
        if authority.is_empty() || authority.contains(bad) || path.chars().any(char::is_control) {
            return Err(AuthError::BadTokenUri);
        }
        Ok(TokenEndpoint {
            scheme: scheme.to_owned(),
            authority: authority.to_owned(),
            path: path.to_owned(),
        })
    }

    /// The signed JWT assertion: header `{"alg":"RS256","typ":"JWT","kid":...}`, claims
    /// `iss` = `client_email`, `scope` = cloud-platform, `aud` = `token_uri`, `iat` = `now`,
    /// `exp` = `now + lifetime` (lifetime capped at one hour, as Google requires).
    pub fn jwt_assertion(&self, now: u64, lifetime: u64) -> Result<String, AuthError> {
        let mut header = json!({ "alg": "RS256", "typ": "JWT" });
        if let Some(kid) = &self.private_key_id {
            header["kid"] = json!(kid);
        }
        let claims = json!({
            "iss": self.client_email,
            "scope": CLOUD_PLATFORM_SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now.saturating_add(lifetime.min(MAX_ASSERTION_LIFETIME)),
        });
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let signing_input = format!(
            "{}.{}",
            b64.encode(header.to_string()),
            b64.encode(claims.to_string())
        );
        let signature = self
            .private_key
            .pkcs1v15_sign::<Sha256>(signing_input.as_bytes())
            .map_err(|_| AuthError::SigningFailed)?;
        Ok(format!("{signing_input}.{}", b64.encode(signature)))
    }

    /// The body of the token request (`application/x-www-form-urlencoded`) for `now`, with
    /// an assertion valid for one hour.
    pub fn token_request_body(&self, now: u64) -> Result<String, AuthError> {
        let assertion = self.jwt_assertion(now, MAX_ASSERTION_LIFETIME)?;
        Ok(token_request_body(&assertion))
    }
}

/// `grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=<jwt>` (the
/// JWT's characters need no escaping).
pub fn token_request_body(assertion: &str) -> String {
    format!(
        "grant_type={}&assertion={assertion}",
        crate::bedrock::sigv4::uri_encode(JWT_BEARER_GRANT.as_bytes())
    )
}

/// An access token and how long it lives.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token: String,
    /// Seconds from the answer's arrival.
    pub expires_in: u64,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Read the token endpoint's answer. A 2xx JSON with `access_token` and `expires_in` (a
/// number, or a numeric string) is a token; anything else an error carrying the endpoint's
/// `error`/`error_description` (which hold no secret) or the status.
pub fn parse_token_response(status: u16, body: &[u8]) -> Result<AccessToken, AuthError> {
    let answer: Option<TokenAnswer> = serde_json::from_slice(body).ok();
    if !(200..300).contains(&status) {
        let error = answer
            .map(|a| match (a.error, a.error_description) {
                (Some(e), Some(d)) => format!("{e}: {d}"),
                (Some(e), None) => e,
                (None, Some(d)) => d,
                (None, None) => "no error description".to_owned(),
            })
            .unwrap_or_else(|| "no error description".to_owned());
        return Err(AuthError::TokenRejected { status, error });
    }
    let answer = answer.ok_or(AuthError::BadTokenResponse)?;
    let token = answer
        .access_token
        .filter(|t| !t.is_empty() && !t.contains(|c: char| c.is_control() || c == ' '))
        .ok_or(AuthError::BadTokenResponse)?;
    let expires_in = match answer.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or(AuthError::BadTokenResponse)?;
    Ok(AccessToken { token, expires_in })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rsa::pkcs8::DecodePublicKey;

    fn testdata(name: &str) -> String {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata/vertex")
                .join(name),
        )
        .unwrap()
    }

    fn key() -> ServiceAccountKey {
        ServiceAccountKey::from_json(&testdata("service_account.json")).unwrap()
    }

    #[test]
    fn parses_a_key_file_without_showing_the_key() {
        let k = key();
        assert_eq!(
            k.client_email,
            "gateway@switchyard-test.iam.gserviceaccount.com"
        );
        assert_eq!(k.token_uri, "https://oauth2.googleapis.com/token");
        assert_eq!(k.project_id.as_deref(), Some("switchyard-test"));
        assert_eq!(
            k.token_endpoint().unwrap(),
            TokenEndpoint {
                scheme: "https".into(),
                authority: "oauth2.googleapis.com".into(),
                path: "/token".into()
            }
        );
        let debug = format!("{k:?}");
        assert!(
            debug.contains("<redacted>") && !debug.contains("PRIVATE"),
            "{debug}"
        );
    }

    #[test]
    fn pkcs1_pem_is_accepted_too() {
        let mut v: serde_json::Value =
            serde_json::from_str(&testdata("service_account.json")).unwrap();
        v["private_key"] = testdata("test_key.pkcs1.pem").into();
        v["token_uri"] = "http://127.0.0.1:8080/token".into();
        let k = ServiceAccountKey::from_json(&v.to_string()).unwrap();
        assert_eq!(k.token_endpoint().unwrap().authority, "127.0.0.1:8080");
    }

    #[test]
    fn key_errors_name_fields_not_values() {
        let mut v: serde_json::Value =
            serde_json::from_str(&testdata("service_account.json")).unwrap();
        let good = v.clone();
        v["private_key"] =
            "-----BEGIN PRIVATE KEY-----\nSECRETSTUFF\n-----END PRIVATE KEY-----\n".into();
        let e = ServiceAccountKey::from_json(&v.to_string()).unwrap_err();
        assert_eq!(e, AuthError::KeyNotRsaPem);
        assert!(!e.to_string().contains("SECRETSTUFF"));
        let mut v = good.clone();
        v.as_object_mut().unwrap().remove("client_email");
        assert_eq!(
            ServiceAccountKey::from_json(&v.to_string()).unwrap_err(),
            AuthError::KeyFieldMissing("client_email")
        );
        let mut v = good.clone();
        v["token_uri"] = "ftp://x/token".into();
        assert_eq!(
            ServiceAccountKey::from_json(&v.to_string()).unwrap_err(),
            AuthError::BadTokenUri
        );
        let e = ServiceAccountKey::from_json("{\"private_key\": \"SECRET").unwrap_err();
        assert!(matches!(e, AuthError::KeyNotJson(_)) && !e.to_string().contains("SECRET"));
    }

    #[test]
    fn jwt_assertion_verifies_with_the_public_key() {
        let k = key();
        let jwt = k.jwt_assertion(1_700_000_000, 7200).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header: serde_json::Value =
            serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            header,
            json!({"alg": "RS256", "typ": "JWT", "kid": "0123456789abcdef0123456789abcdef01234567"})
        );
        assert_eq!(
            claims,
            json!({
                "iss": "gateway@switchyard-test.iam.gserviceaccount.com",
                "scope": "https://www.googleapis.com/auth/cloud-platform",
                "aud": "https://oauth2.googleapis.com/token",
                "iat": 1_700_000_000u64,
                "exp": 1_700_003_600u64,
            })
        );
        let public = rsa::PublicKey::from_public_key_pem(&testdata("test_key.pub.pem")).unwrap();
        let signed = format!("{}.{}", parts[0], parts[1]);
        let sig = b64.decode(parts[2]).unwrap();
        public
            .pkcs1v15_verify::<Sha256>(signed.as_bytes(), &sig)
            .unwrap();
        assert!(public.pkcs1v15_verify::<Sha256>(b"tampered", &sig).is_err());
        // PKCS#1 v1.5 signatures are deterministic.
        assert_eq!(jwt, k.jwt_assertion(1_700_000_000, 3600).unwrap());
    }

    #[test]
    fn token_request_and_answer() {
        let body = token_request_body("aaa.bbb.ccc");
        assert_eq!(
            body,
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=aaa.bbb.ccc"
        );
        assert!(key()
            .token_request_body(1)
            .unwrap()
            .starts_with("grant_type=urn%3Aietf"));
        let t = parse_token_response(
            200,
            br#"{"access_token":"ya29.c.abc","expires_in":3599,"token_type":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!((t.token.as_str(), t.expires_in), ("ya29.c.abc", 3599));
        assert!(!format!("{t:?}").contains("ya29"));
        assert_eq!(
            parse_token_response(200, br#"{"access_token":"t","expires_in":"60"}"#)
                .unwrap()
                .expires_in,
            60
        );
        assert_eq!(
            parse_token_response(
                400,
                br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#
            ),
            Err(AuthError::TokenRejected {
                status: 400,
                error: "invalid_grant: Invalid JWT Signature.".into()
            })
        );
        for bad in [
            &b"{}"[..],
            b"{\"access_token\":\"\",\"expires_in\":1}",
            b"{\"access_token\":\"a\"}",
            b"x",
        ] {
            assert_eq!(
                parse_token_response(200, bad),
                Err(AuthError::BadTokenResponse)
            );
        }
    }
}
