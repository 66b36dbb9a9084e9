//! Vertex AI: the OAuth2 token endpoint (`POST /token`, JWT-bearer grant, RS256 assertions
//! verified with a configured public key), bearer-token checks on `/v1/projects/...` paths,
//! and Claude's `publishers/anthropic/models/{m}:rawPredict` / `:streamRawPredict`.
//! Gemini's `publishers/google` paths are served by [`crate::gemini`].

use std::collections::HashMap;

use base64::Engine;
use hyper::{HeaderMap, Response};
use rsa::pkcs8::DecodePublicKey;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::body::MockBody;
use crate::router::Ctx;
use crate::sse::to_json;
use crate::{anthropic, gemini, reply};

/// The `anthropic_version` Vertex AI wants in Claude bodies.
pub(crate) const ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

/// Who may get tokens, and the tokens handed out.
pub(crate) struct Issuer {
    public_key: rsa::PublicKey,
    lifetime_secs: u64,
    /// Token -> Unix second it expires at.
    tokens: HashMap<String, u64>,
    issued: u64,
}

impl Issuer {
    /// An issuer trusting JWTs signed by the key in `public_key_pem` (SPKI `BEGIN PUBLIC
    /// KEY`), handing out tokens valid for `lifetime_secs`.
    pub(crate) fn new(public_key_pem: &str, lifetime_secs: u64) -> Result<Issuer, String> {
        let public_key = rsa::PublicKey::from_public_key_pem(public_key_pem.trim())
            .map_err(|e| format!("not an RSA public key in PEM: {e}"))?;
        Ok(Issuer {
            public_key,
            lifetime_secs,
            tokens: HashMap::new(),
            issued: 0,
        })
    }

    /// Make every token handed out so far expired.
    pub(crate) fn expire_all(&mut self) {
        for exp in self.tokens.values_mut() {
            *exp = 0;
        }
    }

    /// `POST /token` with a form body, at `now` (Unix seconds).
    pub(crate) fn token(&mut self, body: &[u8], now: u64) -> Response<MockBody> {
        let form = parse_form(body);
        let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if field("grant_type") != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
            return oauth_error(
                "unsupported_grant_type",
                "Invalid grant_type: expected urn:ietf:params:oauth:grant-type:jwt-bearer",
            );
        }
        let Some(assertion) = field("assertion") else {
            return oauth_error("invalid_request", "Missing required parameter: assertion");
        };
        if let Err(why) = self.check_assertion(assertion, now) {
            return oauth_error(why.0, why.1);
        }
        self.issued += 1;
        let token = format!("ya29.mock-{}-{}", self.issued, now);
        self.tokens
            .insert(token.clone(), now.saturating_add(self.lifetime_secs));
        reply::json(
            200,
            &[],
            to_json(
                &json!({"access_token": token, "expires_in": self.lifetime_secs, "token_type": "Bearer"}),
            ),
        )
    }

    fn check_assertion(&self, jwt: &str, now: u64) -> Result<(), (&'static str, &'static str)> {
        const BAD: (&str, &str) = ("invalid_grant", "Invalid JWT Signature.");
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut parts = jwt.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(("invalid_grant", "Invalid JWT: not a compact JWS."));
        };
        let decode_json =
            |p: &str| -> Option<Value> { serde_json::from_slice(&b64.decode(p).ok()?).ok() };
        let (Some(header), Some(claims), Ok(sig)) = (decode_json(h), decode_json(c), b64.decode(s))
        else {
            return Err(("invalid_grant", "Invalid JWT: not base64url JSON."));
        };
        if header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err(BAD);
        }
        let signed = format!("{h}.{c}");
        if self
            .public_key
            .pkcs1v15_verify::<Sha256>(signed.as_bytes(), &sig)
            .is_err()
        {
            return Err(BAD);
        }
        let text = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default();
        if text("iss").is_empty() || !text("aud").ends_with("/token") {
            return Err((
                "invalid_grant",
                "Invalid JWT: iss and aud are required, aud must be the token URI.",
            ));
        }
        if !text("scope")
            .split(' ')
            .any(|s| s == "https://www.googleapis.com/auth/cloud-platform")
        {
            return Err((
                "invalid_scope",
                "Invalid OAuth scope or ID token audience provided.",
            ));
        }
        let iat = claims.get("iat").and_then(Value::as_u64);
        let exp = claims.get("exp").and_then(Value::as_u64);
        let timely = matches!((iat, exp), (Some(iat), Some(exp))
            if iat <= now + 60 && exp > now && exp > iat && exp - iat <= 3600);
        if !timely {
            return Err(("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."));
        }
        Ok(())
    }

    /// Check `Authorization: Bearer <token>` at `now`: `None` if valid, else the refusal.
    pub(crate) fn check_bearer(&self, headers: &HeaderMap, now: u64) -> Option<Response<MockBody>> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let Some(token) = token else {
            return Some(gemini::error(401, "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.", &[]));
        };
        match self.tokens.get(token.trim()) {
            Some(&exp) if exp > now => None,
            _ => Some(gemini::error(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.", &[])),
        }
    }
}

fn oauth_error(error: &str, description: &str) -> Response<MockBody> {
    reply::json(
        400,
        &[],
        to_json(&json!({"error": error, "error_description": description})),
    )
}

/// `application/x-www-form-urlencoded` pairs, decoded (`+` is a space).
fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = |j: usize| b.get(j).and_then(|c| char::from(*c).to_digit(16));
        match (c, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `(model, stream)` of `.../publishers/anthropic/models/{model}:rawPredict` or
/// `:streamRawPredict`.
pub(crate) fn parse_claude_path(path: &str) -> Option<(&str, bool)> {
    let idx = path.rfind("/publishers/anthropic/models/")?;
    let rest = path.get(idx + "/publishers/anthropic/models/".len()..)?;
    let (model, method) = rest.rsplit_once(':')?;
    let stream = match method {
        "rawPredict" => false,
        "streamRawPredict" => true,
        _ => return None,
    };
    (!model.is_empty() && !model.contains('/')).then_some((model, stream))
}

/// Claude on Vertex: the body must carry `anthropic_version: vertex-2023-10-16` and no
/// `model`; the answer is Anthropic's, with the model from the path.
pub(crate) fn claude(ctx: &Ctx<'_>, model: &str, stream: bool, body: &Value) -> Response<MockBody> {
    let headers = &ctx.script.headers;
    match body.get("anthropic_version").and_then(Value::as_str) {
        Some(ANTHROPIC_VERSION) => {}
        Some(other) => {
            return anthropic::error(
                400,
                &format!(
                    "anthropic_version: Input should be '{ANTHROPIC_VERSION}' (got '{other}')"
                ),
                headers,
            )
        }
        None => return anthropic::error(400, "anthropic_version: Field required", headers),
    }
    if body.get("model").is_some() {
        return anthropic::error(400, "model: Extra inputs are not permitted", headers);
    }
    let mut body = body.clone();
    if let Some(obj) = body.as_object_mut() {
        obj.remove("anthropic_version");
        obj.insert("model".into(), json!(model));
        if stream {
            obj.insert("stream".into(), json!(true));
        }
    }
    anthropic::messages(ctx, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_paths() {
        assert_eq!(
            parse_claude_path("/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict"),
            Some(("claude-sonnet-4@20250514", true))
        );
        assert_eq!(
            parse_claude_path("/v1/projects/p/locations/l/publishers/anthropic/models/m:predict"),
            None
        );
    }

    #[test]
    fn forms() {
        assert_eq!(
            parse_form(b"grant_type=urn%3Aietf%3Aparams&assertion=a.b.c&x=1+2"),
            vec![
                ("grant_type".into(), "urn:ietf:params".into()),
                ("assertion".into(), "a.b.c".into()),
                ("x".into(), "1 2".into())
            ]
        );
    }
}
