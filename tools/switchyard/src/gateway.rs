//! `gateway.yaml`: one human-first file from which both plugin configs, the Envoy bootstrap
//! and (later) the Higress manifests are generated, so provider names and routing-header
//! values can never drift apart.

use crate::envoy::{BootstrapSpec, Cluster, HeaderRoute, WasmFilter};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default = "default_header")]
    pub routing_header: String,
    pub providers: Vec<ProviderEntry>,
    #[serde(default)]
    pub balancer: BalancerEntry,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 10000))
}
fn default_header() -> String {
    "x-selected-provider".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderEntry {
    /// Routing name (routing-header value, proxy provider id).
    pub name: String,
    /// Vendor type (`qwen`, `deepseek`, `claude`, …).
    #[serde(rename = "type")]
    pub vendor: String,
    /// The real model `auto` becomes.
    pub model: String,
    /// `http(s)://host:port` of the upstream; default: the vendor's own host over TLS.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// API tokens; `${VAR}` is replaced from the environment.
    #[serde(default)]
    pub api_tokens: Vec<String>,
    #[serde(default)]
    pub metric_key: Option<String>,
    #[serde(default)]
    pub weight: Option<f64>,
    #[serde(default)]
    pub model_mapping: BTreeMap<String, String>,
    /// Extra ai-proxy provider fields (Higress names), passed through.
    #[serde(default)]
    pub options: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalancerEntry {
    #[serde(default)]
    pub strategy: Option<String>,
    #[serde(default)]
    pub aliases: Option<Vec<String>>,
    #[serde(default)]
    pub metrics: Option<Value>,
}

/// A config error naming the file and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct GatewayError {
    pub file: String,
    pub message: String,
}

impl GatewayConfig {
    pub fn load(path: &Path) -> Result<GatewayConfig, GatewayError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| GatewayError {
            file: file.clone(),
            message: e.to_string(),
        })?;
        Self::parse(&text).map_err(|message| GatewayError { file, message })
    }

    pub fn parse(text: &str) -> Result<GatewayConfig, String> {
        let cfg: GatewayConfig = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        if cfg.providers.is_empty() {
            return Err("providers: at least one provider is required".into());
        }
        for (i, p) in cfg.providers.iter().enumerate() {
            if p.name.is_empty()
                || !p
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!(
                    "providers[{i}].name: use letters, digits, '-' or '_'"
                ));
            }
            if cfg.providers[..i].iter().any(|q| q.name == p.name) {
                return Err(format!("providers[{i}].name: duplicate name `{}`", p.name));
            }
        }
        Ok(cfg)
    }
}

impl ProviderEntry {
    pub fn cluster_name(&self) -> String {
        format!("provider-{}", self.name)
    }

    /// Tokens with `${VAR}` resolved; `None` when a referenced variable is unset.
    pub fn resolved_tokens(&self, env: &dyn Fn(&str) -> Option<String>) -> Option<Vec<String>> {
        self.api_tokens
            .iter()
            .map(|t| resolve_env(t, env))
            .collect()
    }
}

fn resolve_env(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        out.push_str(&env(&after[..end])?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Where each provider's traffic goes, decided by the caller (e.g. a local mock).
pub struct Upstreams {
    pub by_provider: BTreeMap<String, (Cluster, Vec<String>)>,
}

/// Parse `http(s)://host[:port]` into a cluster.
pub fn endpoint_cluster(name: &str, url: &str) -> Option<Cluster> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        (false, url.strip_prefix("http://")?)
    };
    let hostport = rest.split('/').next()?;
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (hostport, if tls { 443 } else { 80 }),
    };
    Some(Cluster {
        name: name.into(),
        address: host.into(),
        port,
        tls,
    })
}

/// Plugin configs and the bootstrap for `cfg`, with upstream clusters and tokens decided.
pub fn render(
    cfg: &GatewayConfig,
    upstreams: &Upstreams,
    wasm_dir: &Path,
    admin: SocketAddr,
) -> BootstrapSpec {
    let header = cfg.routing_header.to_ascii_lowercase();
    let lb_providers: Vec<Value> = cfg
        .providers
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "key": p.metric_key.clone().unwrap_or_else(|| p.name.clone()),
                "model": p.model,
                "weight": p.weight.unwrap_or(1.0),
            })
        })
        .collect();
    let mut lb = json!({ "providers": lb_providers, "target_header": header });
    if let Some(s) = &cfg.balancer.strategy {
        lb["strategy"] = json!(s);
    }
    if let Some(a) = &cfg.balancer.aliases {
        lb["aliases"] = json!(a);
    }
    if let Some(m) = &cfg.balancer.metrics {
        lb["metrics"] = m.clone();
    }
    let proxy_providers: Vec<Value> = cfg
        .providers
        .iter()
        .map(|p| {
            let mut v = Map::new();
            v.insert("id".into(), json!(p.name));
            v.insert("type".into(), json!(p.vendor));
            let tokens = upstreams
                .by_provider
                .get(&p.name)
                .map(|u| u.1.clone())
                .unwrap_or_default();
            v.insert("apiTokens".into(), json!(tokens));
            if !p.model_mapping.is_empty() {
                v.insert("modelMapping".into(), json!(p.model_mapping));
            }
            for (k, val) in &p.options {
                v.insert(k.clone(), val.clone());
            }
            Value::Object(v)
        })
        .collect();
    let proxy = json!({
        "providers": proxy_providers,
        "activeProviderId": cfg.providers.first().map(|p| p.name.clone()),
        "activeProviderHeader": header,
    });
    let mut spec = BootstrapSpec::new(cfg.listen, admin);
    spec.filters = vec![
        WasmFilter {
            name: "ai-load-balancer".into(),
            wasm_path: wasm_dir.join("ai_load_balancer.wasm"),
            config: lb,
        },
        WasmFilter {
            name: "ai-proxy".into(),
            wasm_path: wasm_dir.join("ai_proxy.wasm"),
            config: proxy,
        },
    ];
    for p in &cfg.providers {
        spec.header_routes.push(HeaderRoute {
            name: p.cluster_name(),
            header: header.clone(),
            value: p.name.clone(),
            cluster: p.cluster_name(),
        });
        if let Some((cluster, _)) = upstreams.by_provider.get(&p.name) {
            spec.clusters.push(cluster.clone());
        }
    }
    spec.default_cluster = cfg.providers.first().map(ProviderEntry::cluster_name);
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_references_resolve() {
        let env = |k: &str| (k == "A").then(|| "x".to_string());
        assert_eq!(resolve_env("k-${A}-y", &env).as_deref(), Some("k-x-y"));
        assert_eq!(resolve_env("${B}", &env), None);
        assert_eq!(resolve_env("plain", &env).as_deref(), Some("plain"));
    }

    #[test]
    fn parses_quickstart() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/quickstart/gateway.yaml"
        ))
        .unwrap();
        let cfg = GatewayConfig::parse(&text).unwrap();
        assert!(cfg.providers.len() >= 2);
        assert!(GatewayConfig::parse("providers: []").is_err());
        assert!(
            GatewayConfig::parse("providers: [{name: a, type: qwen, model: m, bogus: 1}]").is_err()
        );
    }

    #[test]
    fn endpoints() {
        let c = endpoint_cluster("c", "https://api.x.ai").unwrap();
        assert_eq!((c.address.as_str(), c.port, c.tls), ("api.x.ai", 443, true));
        let c = endpoint_cluster("c", "http://127.0.0.1:18001/v1").unwrap();
        assert_eq!(
            (c.address.as_str(), c.port, c.tls),
            ("127.0.0.1", 18001, false)
        );
        assert!(endpoint_cluster("c", "ftp://x").is_none());
    }
}
