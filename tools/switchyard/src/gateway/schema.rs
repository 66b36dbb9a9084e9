//! The shape of `gateway.yaml`, every field with the line it was written on, and what the
//! file says once defaults apply.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// A value with the line (1-based; 0 when unknown) it was written on.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub line: u64,
}

impl<T> Located<T> {
    pub fn new(value: T) -> Self {
        Located { value, line: 0 }
    }
}

impl<T> std::ops::Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Located {
            value: s.value,
            line: s.referenced.line(),
        })
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Shorthand for a single listener (`listen: 127.0.0.1:10000`).
    #[serde(default)]
    pub listen: Option<Located<String>>,
    /// Addresses the gateway serves on (default `127.0.0.1:10000`).
    #[serde(default)]
    pub listeners: Vec<Located<ListenerEntry>>,
    /// Envoy admin address (default `127.0.0.1:9901`; `up` uses a free port).
    #[serde(default)]
    pub admin: Option<Located<String>>,
    /// Header the balancer writes and the provider routes match (default `x-selected-provider`).
    #[serde(default)]
    pub routing_header: Option<Located<String>>,
    /// Path prefixes the gateway serves (default `/`); other paths get a 404 in OpenAI's shape.
    #[serde(default)]
    pub routes: Vec<Located<RouteEntry>>,
    #[serde(default)]
    pub providers: Vec<Located<ProviderEntry>>,
    #[serde(default)]
    pub balancer: BalancerEntry,
    #[serde(default)]
    pub limits: LimitsEntry,
    #[serde(default)]
    pub higress: HigressEntry,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerEntry {
    pub address: Located<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteEntry {
    /// Path prefix, e.g. `/v1` or the seed's `/masgod`.
    pub path: Located<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderEntry {
    /// Routing name: routing-header value, balancer provider name and proxy provider id.
    pub name: Located<String>,
    /// Vendor type (`qwen`, `deepseek`, `claude`, …; the ai-proxy vendor table).
    #[serde(rename = "type")]
    pub vendor: Located<String>,
    /// The real model an alias (`auto`) becomes.
    pub model: Located<String>,
    /// Client model name -> vendor model (ai-proxy `modelMapping`: exact, `prefix*`, `~regex`, `*`).
    #[serde(default, alias = "model_mapping")]
    pub models: BTreeMap<String, String>,
    /// `http(s)://host[:port]` of the upstream; default: the vendor's own host over TLS.
    #[serde(default)]
    pub endpoint: Option<Located<String>>,
    /// API tokens; `${VAR}` is replaced from the environment when rendering.
    #[serde(default)]
    pub api_tokens: Vec<Located<String>>,
    /// Metric key of this provider (default: its name).
    #[serde(default)]
    pub metric_key: Option<String>,
    /// Relative weight for `weighted` and the no-metrics fallback (default 1).
    #[serde(default)]
    pub weight: Option<Located<f64>>,
    /// Cluster the `http` metric source polls for this provider.
    #[serde(default)]
    pub metrics_cluster: Option<String>,
    /// Extra ai-proxy provider fields (Higress names, e.g. `claudeVersion`), passed through;
    /// `${VAR}` in their strings is replaced from the environment when rendering.
    #[serde(default)]
    pub options: Options,
}

/// A provider's `options`: the map, and the line each key was written on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    pub map: Map<String, Value>,
    pub lines: BTreeMap<String, u64>,
}

impl Options {
    /// The line `key` was written on (0 when unknown).
    pub fn line(&self, key: &str) -> u64 {
        self.lines.get(key).copied().unwrap_or(0)
    }
}

impl std::ops::Deref for Options {
    type Target = Map<String, Value>;
    fn deref(&self) -> &Map<String, Value> {
        &self.map
    }
}

impl<'de> Deserialize<'de> for Options {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let located = BTreeMap::<String, Located<Value>>::deserialize(d)?;
        let mut out = Options::default();
        for (k, v) in located {
            out.lines.insert(k.clone(), v.line);
            out.map.insert(k, v.value);
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalancerEntry {
    /// `least` (default), `p2c` or `weighted`.
    #[serde(default)]
    pub strategy: Option<Located<String>>,
    /// Request models that are rewritten (default `[auto]`).
    #[serde(default)]
    pub aliases: Option<Vec<String>>,
    /// Metric source block (`source: static|local|redis|http`, …), passed to the balancer.
    #[serde(default)]
    pub metrics: Option<Located<Value>>,
    /// The seed's `redis` block (Higress Redis or Webdis on stock Envoy).
    #[serde(default)]
    pub redis: Option<Value>,
    #[serde(default)]
    pub redis_key_prefix: Option<String>,
    #[serde(default)]
    pub allow_client_choice: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsEntry {
    /// Largest request body (ai-proxy answers 413 above it; Envoy buffers up to it).
    #[serde(default)]
    pub max_request_bytes: Option<Located<u64>>,
    /// Upstream timeout per request, in seconds (0 disables).
    #[serde(default)]
    pub timeout_s: Option<u64>,
}

/// Settings used only by `render higress`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HigressEntry {
    /// Namespace of the Ingresses (default `default`).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Host the Ingresses match (default: any).
    #[serde(default)]
    pub host: Option<String>,
    /// Prefix of generated resource names (default `switchyard`).
    #[serde(default)]
    pub name: Option<String>,
}

/// The routing header when `routing_header` is not set.
pub const DEFAULT_HEADER: &str = "x-selected-provider";
/// The balancer strategies `balancer.strategy` accepts.
pub const STRATEGIES: [&str; 3] = ["least", "p2c", "weighted"];

impl GatewayConfig {
    pub(super) fn listener_fields(&self) -> impl Iterator<Item = (String, u64, &str)> {
        let short = self
            .listen
            .iter()
            .map(|l| ("listen".to_string(), l.line, l.as_str()));
        let list = self.listeners.iter().enumerate().map(|(i, l)| {
            (
                format!("listeners[{i}].address"),
                l.address.line,
                l.address.as_str(),
            )
        });
        short.chain(list)
    }

    /// Listener addresses (default `127.0.0.1:10000`); invalid ones were refused by `validate`.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        let v: Vec<SocketAddr> = self
            .listener_fields()
            .filter_map(|(_, _, a)| a.parse().ok())
            .collect();
        if v.is_empty() {
            vec![SocketAddr::from(([127, 0, 0, 1], 10000))]
        } else {
            v
        }
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .as_ref()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9901)))
    }

    /// The routing header, lower-cased.
    pub fn header(&self) -> String {
        self.routing_header
            .as_ref()
            .map_or(DEFAULT_HEADER.to_string(), |h| h.to_ascii_lowercase())
    }

    /// Path prefixes served (default `/`).
    pub fn paths(&self) -> Vec<String> {
        if self.routes.is_empty() {
            vec!["/".into()]
        } else {
            self.routes.iter().map(|r| r.path.value.clone()).collect()
        }
    }

    pub fn provider(&self, name: &str) -> Option<&ProviderEntry> {
        self.providers
            .iter()
            .map(|p| &p.value)
            .find(|p| p.name.value == name)
    }
}

impl ProviderEntry {
    pub fn cluster_name(&self) -> String {
        format!("provider-{}", self.name.value)
    }

    /// `type: vertex` with a service-account key: the cluster of the key's token endpoint
    /// (`vertexAuthServiceName`, default `vertex-auth-<name>`) and the `token_uri` it
    /// reaches. `None` for other providers, static tokens, or a key without a usable URI
    /// (ai-proxy's own validation reports that).
    pub fn vertex_auth(&self) -> Option<(String, String)> {
        if self.vendor.value != "vertex" {
            return None;
        }
        let key = self.options.get("vertexAuthKey").and_then(Value::as_str)?;
        let key: Value = serde_json::from_str(key).ok()?;
        let uri = key
            .get("token_uri")
            .and_then(Value::as_str)
            .unwrap_or(switchyard_protocol::vertex::auth::DEFAULT_TOKEN_URI);
        let name = self
            .options
            .get("vertexAuthServiceName")
            .and_then(Value::as_str)
            .map_or_else(
                || format!("vertex-auth-{}", self.name.value),
                str::to_string,
            );
        Some((name, uri.to_string()))
    }

    pub fn metric_key(&self) -> String {
        self.metric_key
            .clone()
            .unwrap_or_else(|| self.name.value.clone())
    }
    /// Where the upstream lives: `endpoint`, else a URL the vendor options name, else the
    /// vendor's default host over TLS.
    pub fn upstream_url(&self) -> Option<String> {
        if let Some(e) = &self.endpoint {
            return Some(e.value.clone());
        }
        let opt = |k: &str| self.options.get(k).and_then(Value::as_str);
        for k in ["azureServiceUrl", "openaiCustomUrl", "vllmCustomUrl"] {
            if let Some(u) = opt(k) {
                return Some(u.to_string());
            }
        }
        if let Some(h) = opt("ollamaServerHost") {
            let port = self
                .options
                .get("ollamaServerPort")
                .and_then(Value::as_u64)
                .unwrap_or(11434);
            return Some(format!("http://{h}:{port}"));
        }
        if let Some(h) = opt("vllmServerHost") {
            return Some(format!("http://{h}"));
        }
        if let Some(h) = opt("genericHost") {
            return Some(format!("https://{h}"));
        }
        if self.vendor.value == "vertex" {
            let host = switchyard_protocol::vertex::host(opt("vertexRegion")?).ok()?;
            return Some(format!("https://{host}"));
        }
        if self.vendor.value == "bedrock" {
            // Bedrock's host is regional; a bad region is reported by ai-proxy's validation.
            let region = opt("awsRegion")?;
            return switchyard_policy::bedrock::region_host(region).map(|h| format!("https://{h}"));
        }
        let spec = switchyard_policy::vendor::vendor(&self.vendor)?;
        (!spec.host.is_empty()).then(|| format!("https://{}", spec.host))
    }
}
