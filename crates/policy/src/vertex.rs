//! `type: vertex` (Google Vertex AI): the provider's settings from Higress's field names
//! (`vertexAuthKey`, `vertexRegion`, `vertexProjectId`, `vertexAuthServiceName`,
//! `vertexTokenRefreshAhead`), which publisher serves a model, and where the shared access
//! token lives. The translators are Gemini's and Claude's (`switchyard_protocol::vertex`).
//!
//! Two ways to authenticate:
//! - a service-account key (`vertexAuthKey`, the JSON Google hands out): the filter signs an
//!   RS256 JWT and trades it for an access token at the key's `token_uri`, through the Envoy
//!   cluster `vertexAuthServiceName`, shared by every worker and refreshed ahead of expiry;
//! - static OAuth2 access tokens in `apiTokens` (no key): sent as `Authorization: Bearer`.

use crate::failover::pool_fingerprint;
use crate::proxy::ProviderConfig;
use crate::ConfigError;
use std::fmt;
use std::sync::Arc;
use switchyard_protocol::vertex::{self, Publisher, ServiceAccountKey, TokenEndpoint};

/// `vertexTokenRefreshAhead` when the config names none (seconds before expiry).
pub const DEFAULT_REFRESH_AHEAD: u64 = 300;
/// Prefix of the shared-data key of a key's token cache.
pub const TOKEN_KEY_PREFIX: &str = "switchyard.ai-proxy.vertex-token.";

/// A validated Vertex AI provider's settings.
#[derive(Clone)]
pub struct VertexSettings {
    pub project: String,
    pub region: String,
    /// The service-account key and where its tokens come from; `None`: static `apiTokens`.
    pub auth: Option<Arc<KeyAuth>>,
}

/// Service-account auth: the key, its token endpoint and the cluster that reaches it.
pub struct KeyAuth {
    pub key: ServiceAccountKey,
    pub endpoint: TokenEndpoint,
    /// The Envoy cluster of the token endpoint.
    pub cluster: String,
    /// Seconds before expiry from which the token is refreshed.
    pub refresh_ahead: u64,
    /// Shared-data key of this key's token cache (same key, same cache, across configs).
    pub shared_key: String,
}

impl fmt::Debug for VertexSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VertexSettings")
            .field("project", &self.project)
            .field("region", &self.region)
            .field("auth", &self.auth)
            .finish()
    }
}

impl fmt::Debug for KeyAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `ServiceAccountKey`'s Debug already redacts the private key.
        f.debug_struct("KeyAuth")
            .field("key", &self.key)
            .field("cluster", &self.cluster)
            .field("refresh_ahead", &self.refresh_ahead)
            .finish()
    }
}

/// The Envoy cluster named by `vertexAuthServiceName`: on Higress a service FQDN (the
/// plugin's DNS cluster `outbound|443||{name}.dns`), on stock Envoy the cluster name itself
/// (no dot) or a full `outbound|…` name.
pub fn auth_cluster_name(service: &str) -> String {
    if service.contains('|') || !service.contains('.') {
        service.to_string()
    } else if service.ends_with(".dns") {
        format!("outbound|443||{service}")
    } else {
        format!("outbound|443||{service}.dns")
    }
}

/// Read and check the Vertex fields of a provider entry. Errors name the field, never a
/// secret value.
pub fn settings(c: &ProviderConfig) -> Result<VertexSettings, ConfigError> {
    let key = match c
        .vertex_auth_key
        .as_deref()
        .filter(|k| !k.trim().is_empty())
    {
        Some(json) => Some(
            ServiceAccountKey::from_json(json)
                .map_err(|e| ConfigError::new("vertexAuthKey", e.to_string()))?,
        ),
        None => None,
    };
    if key.is_none() && c.api_tokens.is_empty() {
        return Err(ConfigError::new(
            "vertexAuthKey",
            "is required for type vertex (a service-account key JSON), unless apiTokens \
             holds static access tokens",
        ));
    }
    let project = c
        .vertex_project_id
        .clone()
        .filter(|p| !p.is_empty())
        .or_else(|| key.as_ref().and_then(|k| k.project_id.clone()))
        .ok_or_else(|| {
            ConfigError::new(
                "vertexProjectId",
                "is required for type vertex (or a key with project_id)",
            )
        })?;
    let region = c
        .vertex_region
        .clone()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            ConfigError::new(
                "vertexRegion",
                "is required for type vertex (e.g. us-central1, or global)",
            )
        })?;
    vertex::host(&region).map_err(|_| {
        ConfigError::new(
            "vertexRegion",
            "must be a Google Cloud location: lower-case letters, digits and '-'",
        )
    })?;
    vertex::model_path(&project, &region, Publisher::Google, "m", false).map_err(|_| {
        ConfigError::new(
            "vertexProjectId",
            "must be a Google Cloud project id: lower-case letters, digits, '-', '.', ':'",
        )
    })?;
    let auth = match key {
        None => None,
        Some(key) => {
            let endpoint = key
                .token_endpoint()
                .map_err(|e| ConfigError::new("vertexAuthKey", e.to_string()))?;
            let service = c
                .vertex_auth_service_name
                .as_deref()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    ConfigError::new(
                        "vertexAuthServiceName",
                        "is required with vertexAuthKey: the cluster that reaches the key's \
                         token_uri",
                    )
                })?;
            if service.bytes().any(|b| b <= b' ' || b == 0x7f) {
                return Err(ConfigError::new(
                    "vertexAuthServiceName",
                    "must be a cluster or service name",
                ));
            }
            let refresh_ahead = c
                .vertex_token_refresh_ahead
                .unwrap_or(DEFAULT_REFRESH_AHEAD);
            let fingerprint = pool_fingerprint(
                "vertex",
                &[
                    key.client_email.clone(),
                    key.private_key_id.clone().unwrap_or_default(),
                    key.token_uri.clone(),
                    refresh_ahead.to_string(),
                ],
            );
            Some(Arc::new(KeyAuth {
                endpoint,
                cluster: auth_cluster_name(service),
                refresh_ahead,
                shared_key: format!("{TOKEN_KEY_PREFIX}{fingerprint:016x}"),
                key,
            }))
        }
    };
    Ok(VertexSettings {
        project,
        region,
        auth,
    })
}

/// Which publisher serves `model` (the mapped model): Anthropic's for `claude-*`, Google's
/// otherwise. A `publishers/…/models/` prefix is ignored.
pub fn publisher(model: &str) -> Publisher {
    let name = model.rsplit_once("models/").map_or(model, |(_, m)| m);
    if name.to_ascii_lowercase().starts_with("claude") {
        Publisher::Anthropic
    } else {
        Publisher::Google
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The protocol crate's test service account (a throwaway key), with `token_uri`.
    fn key_json(token_uri: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(include_str!(
            "../../protocol/testdata/vertex/service_account.json"
        ))
        .unwrap();
        v["token_uri"] = json!(token_uri);
        v["project_id"] = json!("key-project");
        v.to_string()
    }

    fn config(v: serde_json::Value) -> ProviderConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn key_settings() {
        let c = config(
            json!({"type": "vertex", "vertexAuthKey": key_json("https://oauth2.googleapis.com/token"),
            "vertexRegion": "us-central1", "vertexProjectId": "p1", "vertexAuthServiceName": "vertex-auth",
            "vertexTokenRefreshAhead": 120}),
        );
        let s = settings(&c).unwrap();
        assert_eq!(
            (s.project.as_str(), s.region.as_str()),
            ("p1", "us-central1")
        );
        let a = s.auth.unwrap();
        assert_eq!(a.cluster, "vertex-auth");
        assert_eq!(a.refresh_ahead, 120);
        assert_eq!(a.endpoint.authority, "oauth2.googleapis.com");
        assert!(a.shared_key.starts_with(TOKEN_KEY_PREFIX));
        assert!(!format!("{a:?}").contains("PRIVATE KEY"));
        // The key's project is the default.
        let c = config(
            json!({"type": "vertex", "vertexAuthKey": key_json("https://o/token"),
            "vertexRegion": "global", "vertexAuthServiceName": "a"}),
        );
        assert_eq!(settings(&c).unwrap().project, "key-project");
    }

    #[test]
    fn static_tokens_need_no_key() {
        let c = config(json!({"type": "vertex", "apiTokens": ["ya29.static"],
            "vertexRegion": "europe-west4", "vertexProjectId": "p"}));
        assert!(settings(&c).unwrap().auth.is_none());
    }

    #[test]
    fn errors_name_the_field() {
        let good = json!({"type": "vertex", "vertexAuthKey": key_json("https://o/token"),
            "vertexRegion": "us-east5", "vertexProjectId": "p", "vertexAuthServiceName": "a"});
        let cases = [
            (json!({"vertexAuthKey": "{not json"}), "vertexAuthKey"),
            (
                json!({"vertexAuthKey": "{\"client_email\":\"x\",\"private_key\":\"SECRET\"}"}),
                "vertexAuthKey",
            ),
            (json!({"vertexAuthKey": ""}), "vertexAuthKey"),
            (json!({"vertexRegion": ""}), "vertexRegion"),
            (json!({"vertexRegion": "evil.com/x"}), "vertexRegion"),
            (json!({"vertexProjectId": "a/../b"}), "vertexProjectId"),
            (
                json!({"vertexAuthServiceName": ""}),
                "vertexAuthServiceName",
            ),
        ];
        for (patch, field) in cases {
            let mut v = good.clone();
            for (k, val) in patch.as_object().unwrap() {
                v[k] = val.clone();
            }
            let e = settings(&config(v)).unwrap_err();
            assert_eq!(e.field, field, "{e}");
            assert!(!e.to_string().contains("SECRET"), "{e}");
        }
        let mut v = good.clone();
        v.as_object_mut().unwrap().remove("vertexRegion");
        assert_eq!(settings(&config(v)).unwrap_err().field, "vertexRegion");
    }

    #[test]
    fn publishers_and_clusters() {
        assert_eq!(publisher("claude-sonnet-4@20250514"), Publisher::Anthropic);
        assert_eq!(
            publisher("publishers/anthropic/models/claude-3-5-haiku@20241022"),
            Publisher::Anthropic
        );
        assert_eq!(publisher("gemini-2.5-flash"), Publisher::Google);
        assert_eq!(auth_cluster_name("vertex-auth"), "vertex-auth");
        assert_eq!(
            auth_cluster_name("vertex-auth.internal"),
            "outbound|443||vertex-auth.internal.dns"
        );
        assert_eq!(
            auth_cluster_name("outbound|443||x.dns"),
            "outbound|443||x.dns"
        );
    }
}
