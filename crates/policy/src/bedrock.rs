//! AWS Bedrock providers (`type: bedrock`): config checks, the regional host, the options the
//! Converse translator takes, and the SigV4 headers of a final upstream request.
//!
//! Two ways to authenticate, as in Higress ai-proxy:
//! - a Bedrock API key in `apiTokens`, sent as `Authorization: Bearer <key>` (rotation,
//!   failover and retries work as for every vendor);
//! - `awsAccessKey` + `awsSecretKey` (+ `awsSessionToken`, ours, for temporary
//!   credentials): every request is signed with SigV4 once its body is final. Only hosts that
//!   hold the request headers while reading the body can do that (the native module); on
//!   Proxy-Wasm the request is refused with [`sigv4_needs_native`].

use crate::proxy::{Provider, ProviderConfig};
use crate::ConfigError;
use serde::Deserialize;
use std::fmt;
use switchyard_protocol::bedrock::sigv4::{self, Credentials, Request, Scope};
use switchyard_protocol::bedrock::{runtime_host, BedrockOptions};
use switchyard_protocol::{ErrorKind, GatewayError};

/// A config string that must never reach a log: `Debug` shows only that it is set.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// `bedrock-runtime.{region}.amazonaws.com`, for a valid region name.
pub fn region_host(region: &str) -> Option<String> {
    runtime_host(region).ok()
}

/// How a Bedrock provider authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BedrockAuth {
    /// Bedrock API keys from `apiTokens`, as bearer tokens.
    ApiKey,
    /// SigV4 with `awsAccessKey`/`awsSecretKey` (and `awsSessionToken`).
    SigV4,
}

fn plain(field: &str, v: &str) -> Result<(), ConfigError> {
    if v.is_empty() || v.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(ConfigError::new(
            field,
            "must be non-empty, without spaces or control characters",
        ));
    }
    Ok(())
}

/// Check a `type: bedrock` provider's fields and return its upstream host
/// (`bedrock-runtime.{awsRegion}.amazonaws.com`). Errors name the field, never a secret.
pub fn validate(c: &ProviderConfig) -> Result<String, ConfigError> {
    let region = c.aws_region.as_deref().ok_or_else(|| {
        ConfigError::new(
            "awsRegion",
            "is required for type bedrock (e.g. \"us-east-1\")",
        )
    })?;
    let host = runtime_host(region).map_err(|_| {
        ConfigError::new(
            "awsRegion",
            "must be an AWS region name like \"us-east-1\" (lowercase letters, digits, '-')",
        )
    })?;
    let keys = (&c.aws_access_key, &c.aws_secret_key);
    match keys {
        (Some(id), Some(secret)) => {
            plain("awsAccessKey", id)?;
            plain("awsSecretKey", secret.expose())?;
            if !c.api_tokens.is_empty() {
                return Err(ConfigError::new(
                    "apiTokens",
                    "a bedrock provider authenticates with either apiTokens (Bedrock API keys) \
                     or awsAccessKey/awsSecretKey (SigV4), not both",
                ));
            }
        }
        (Some(_), None) => {
            return Err(ConfigError::new(
                "awsSecretKey",
                "is required with awsAccessKey",
            ))
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "awsAccessKey",
                "is required with awsSecretKey",
            ))
        }
        (None, None) if c.api_tokens.is_empty() => {
            return Err(ConfigError::new(
                "apiTokens",
                "type bedrock needs credentials: apiTokens (Bedrock API keys, sent as bearer \
                 tokens) or awsAccessKey and awsSecretKey (SigV4, native runtime only)",
            ))
        }
        (None, None) => {}
    }
    match &c.aws_session_token {
        Some(_) if c.aws_access_key.is_none() => Err(ConfigError::new(
            "awsSessionToken",
            "is only used with awsAccessKey and awsSecretKey",
        )),
        Some(t) => plain("awsSessionToken", t.expose()).map(|()| host),
        None => Ok(host),
    }
}

/// The provider's auth, for a `type: bedrock` provider.
pub fn auth(c: &ProviderConfig) -> BedrockAuth {
    if c.aws_access_key.is_some() && c.aws_secret_key.is_some() {
        BedrockAuth::SigV4
    } else {
        BedrockAuth::ApiKey
    }
}

/// Whether requests to `provider` must be SigV4-signed after their body is final.
pub fn signs(provider: &Provider) -> bool {
    provider.spec.name == "bedrock" && auth(&provider.config) == BedrockAuth::SigV4
}

/// The options of the Converse translator (`bedrockAdditionalFields`).
pub fn options(c: &ProviderConfig) -> BedrockOptions {
    BedrockOptions {
        additional_fields: c.bedrock_additional_fields.clone(),
        default_max_tokens: None,
    }
}

/// The gateway's answer when a SigV4 provider is used on a host that cannot hold the request
/// headers until the body is final (Proxy-Wasm on stock Envoy or Higress).
pub fn sigv4_needs_native() -> GatewayError {
    GatewayError::new(
        ErrorKind::Internal,
        "sigv4_unsupported_runtime",
        "this bedrock provider signs requests with SigV4 (awsAccessKey/awsSecretKey), which \
         needs the final body before the headers leave; the Proxy-Wasm plugin cannot hold the \
         headers that long. Use a Bedrock API key in apiTokens, or run ai-proxy as the native \
         module (libswitchyard.so)",
    )
}

/// The final upstream request, as the signer needs it.
pub struct SignTarget<'a> {
    pub method: &'a str,
    /// `:authority` as sent (the `host` header).
    pub host: &'a str,
    /// `:path` as sent, query included.
    pub path: &'a str,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// The SigV4 headers (`authorization`, `x-amz-date`, `x-amz-content-sha256`, and
/// `x-amz-security-token` with a session token) for `req` at `unix_seconds`. `None` when the
/// provider does not sign.
pub fn sigv4_headers(
    provider: &Provider,
    req: &SignTarget<'_>,
    unix_seconds: u64,
) -> Option<Vec<(&'static str, String)>> {
    let c = &provider.config;
    let (Some(id), Some(secret), Some(region)) =
        (&c.aws_access_key, &c.aws_secret_key, &c.aws_region)
    else {
        return None;
    };
    let creds = Credentials {
        access_key_id: id,
        secret_access_key: secret.expose(),
        session_token: c.aws_session_token.as_ref().map(Secret::expose),
    };
    let (path, query) = req.path.split_once('?').unwrap_or((req.path, ""));
    let extra: Vec<(&str, &str)> = req
        .content_type
        .map(|ct| ("content-type", ct))
        .into_iter()
        .collect();
    let signed = sigv4::sign(
        &Request {
            method: req.method,
            host: req.host,
            path,
            query,
            headers: &extra,
            body: req.body,
        },
        &creds,
        &Scope::bedrock(region, unix_seconds),
    );
    Some(
        signed
            .headers()
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::ProxyConfig;
    use serde_json::{json, Value};

    fn parse(provider: Value) -> Result<ProxyConfig, ConfigError> {
        ProxyConfig::from_json(&json!({ "provider": provider }))
    }

    #[test]
    fn api_key_and_sigv4_configs() {
        let cfg =
            parse(json!({"type": "bedrock", "awsRegion": "us-west-2", "apiTokens": ["bk-1"]}))
                .unwrap();
        let p = cfg.provider_for(None).unwrap();
        assert_eq!(p.endpoint.host, "bedrock-runtime.us-west-2.amazonaws.com");
        assert!(!signs(p));
        assert_eq!(
            p.auth_header("bk-1"),
            ("authorization", "Bearer bk-1".to_string())
        );
        let cfg = parse(json!({"type": "bedrock", "awsRegion": "eu-central-1",
            "awsAccessKey": "AKIDEXAMPLE", "awsSecretKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "awsSessionToken": "tok", "bedrockAdditionalFields": {"top_k": 5}}))
        .unwrap();
        let p = cfg.provider_for(None).unwrap();
        assert!(signs(p));
        assert_eq!(
            options(&p.config).additional_fields,
            json!({"top_k": 5}).as_object().cloned()
        );
        // Secrets never show in Debug output (config dumps, error logs).
        let dump = format!("{:?}", p.config);
        assert!(
            !dump.contains("wJalrXUtnFEMI") && !dump.contains("\"tok\""),
            "{dump}"
        );
    }

    #[test]
    fn config_errors_name_the_field() {
        let cases = [
            (json!({"apiTokens": ["k"]}), "provider.awsRegion"),
            (
                json!({"awsRegion": "US East", "apiTokens": ["k"]}),
                "provider.awsRegion",
            ),
            (json!({"awsRegion": "us-east-1"}), "provider.apiTokens"),
            (
                json!({"awsRegion": "us-east-1", "awsAccessKey": "AK"}),
                "provider.awsSecretKey",
            ),
            (
                json!({"awsRegion": "us-east-1", "awsSecretKey": "s"}),
                "provider.awsAccessKey",
            ),
            (
                json!({"awsRegion": "us-east-1", "awsAccessKey": "AK", "awsSecretKey": "s", "apiTokens": ["k"]}),
                "provider.apiTokens",
            ),
            (
                json!({"awsRegion": "us-east-1", "apiTokens": ["k"], "awsSessionToken": "t"}),
                "provider.awsSessionToken",
            ),
            (
                json!({"awsRegion": "us-east-1", "awsAccessKey": "A K", "awsSecretKey": "s"}),
                "provider.awsAccessKey",
            ),
            (
                json!({"awsRegion": "us-east-1", "apiTokens": ["k"], "bedrockAdditionalFields": [1]}),
                "provider.bedrockAdditionalFields",
            ),
        ];
        for (extra, field) in cases {
            let mut p = json!({"type": "bedrock"});
            for (k, v) in extra.as_object().unwrap() {
                p[k] = v.clone();
            }
            let err = parse(p).unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert!(!err.to_string().contains("\"s\""));
        }
    }

    #[test]
    fn signs_the_final_request_as_aws_checks_it() {
        let cfg = parse(json!({"type": "bedrock", "awsRegion": "us-east-1",
            "awsAccessKey": "AKIDEXAMPLE", "awsSecretKey": "secret", "awsSessionToken": "session"}))
        .unwrap();
        let p = cfg.provider_for(None).unwrap();
        let req = SignTarget {
            method: "POST",
            host: "bedrock-runtime.us-east-1.amazonaws.com",
            path: "/model/anthropic.claude-v2%3A1/converse",
            content_type: Some("application/json"),
            body: b"{}",
        };
        let h = sigv4_headers(p, &req, 1_700_000_000).unwrap();
        let get = |name: &str| {
            h.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.as_str())
                .unwrap()
        };
        let auth = get("authorization");
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/bedrock/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature="
            ),
            "{auth}"
        );
        assert_eq!(get("x-amz-date"), "20231114T221320Z");
        assert_eq!(
            get("x-amz-content-sha256"),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(get("x-amz-security-token"), "session");
        // Same request, same second: same signature; another body: another one.
        let again = sigv4_headers(p, &req, 1_700_000_000).unwrap();
        assert_eq!(h, again);
        let other = sigv4_headers(
            p,
            &SignTarget {
                body: b"{\"a\":1}",
                ..req
            },
            1_700_000_000,
        )
        .unwrap();
        assert_ne!(h[0], other[0]);
        let key = parse(json!({"type": "bedrock", "awsRegion": "us-east-1", "apiTokens": ["k"]}))
            .unwrap();
        assert!(sigv4_headers(key.provider_for(None).unwrap(), &req, 1).is_none());
    }
}
