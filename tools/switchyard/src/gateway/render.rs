//! What `gateway.yaml` renders to: the two plugin configs and the Envoy bootstrap spec.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use super::env::Upstreams;
use super::schema::{GatewayConfig, ProviderEntry};
use crate::envoy::{BootstrapSpec, Cluster, HeaderRoute, WasmFilter};

impl GatewayConfig {
    /// The ai-load-balancer config (the seed's schema plus extensions).
    pub fn balancer_config(&self) -> Value {
        let providers: Vec<Value> = self
            .providers
            .iter()
            .map(|p| {
                let mut v = json!({
                    "name": p.name.value,
                    "key": p.metric_key(),
                    "model": p.model.value,
                    "weight": p.weight.as_ref().map_or(1.0, |w| w.value),
                });
                if let Some(c) = &p.metrics_cluster {
                    v["metrics_cluster"] = json!(c);
                }
                v
            })
            .collect();
        let mut lb = json!({ "providers": providers, "target_header": self.header() });
        let b = &self.balancer;
        if let Some(s) = &b.strategy {
            lb["strategy"] = json!(s.value);
        }
        if let Some(a) = &b.aliases {
            lb["aliases"] = json!(a);
        }
        if let Some(m) = &b.metrics {
            lb["metrics"] = m.value.clone();
        }
        if let Some(r) = &b.redis {
            lb["redis"] = r.clone();
        }
        if let Some(p) = &b.redis_key_prefix {
            lb["redis_key_prefix"] = json!(p);
        }
        if let Some(c) = b.allow_client_choice {
            lb["allow_client_choice"] = json!(c);
        }
        lb
    }

    /// The ai-proxy config: every provider, chosen by the routing header, with `tokens` per
    /// provider name (already resolved).
    pub fn proxy_config(&self, tokens: &BTreeMap<String, Vec<String>>) -> Value {
        let providers: Vec<Value> = self
            .providers
            .iter()
            .map(|p| p.proxy_provider(tokens.get(&p.name.value).cloned().unwrap_or_default()))
            .collect();
        let mut v = json!({
            "providers": providers,
            "activeProviderId": self.providers.first().map(|p| p.name.value.clone()),
            "activeProviderHeader": self.header(),
        });
        if let Some(m) = &self.limits.max_request_bytes {
            v["maxRequestBodyBytes"] = json!(m.value);
        }
        v
    }
}

impl ProviderEntry {
    /// This provider in ai-proxy's schema.
    fn proxy_provider(&self, tokens: Vec<String>) -> Value {
        let mut v = Map::new();
        v.insert("id".into(), json!(self.name.value));
        v.insert("type".into(), json!(self.vendor.value));
        v.insert("apiTokens".into(), json!(tokens));
        // The provider's own model keeps its name in metric labels (others become `other`).
        v.insert("models".into(), json!([self.model.value]));
        if !self.models.is_empty() {
            v.insert("modelMapping".into(), json!(self.models));
        }
        // Vendors without a fixed host learn it from `endpoint` in their own option.
        if let Some(e) = self
            .endpoint
            .as_ref()
            .and_then(|e| endpoint_cluster("", e).map(|c| (e, c)))
        {
            let (url, c) = e;
            let hostport = format!("{}:{}", c.address, c.port);
            match self.vendor.as_str() {
                "generic" => {
                    v.insert("genericHost".into(), json!(hostport));
                }
                "vllm" => {
                    v.insert("vllmCustomUrl".into(), json!(url.value));
                }
                "ollama" => {
                    v.insert("ollamaServerHost".into(), json!(c.address));
                    v.insert("ollamaServerPort".into(), json!(c.port));
                }
                _ => {}
            }
        }
        if let Some((cluster, _)) = self.vertex_auth() {
            v.insert("vertexAuthServiceName".into(), json!(cluster));
        }
        for (k, val) in self.options.iter() {
            v.insert(k.clone(), val.clone());
        }
        Value::Object(v)
    }
}

/// Parse `http(s)://host[:port][/path]` into a cluster (TLS with SNI for https).
pub fn endpoint_cluster(name: &str, url: &str) -> Option<Cluster> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        (false, url.strip_prefix("http://")?)
    };
    let hostport = rest.split(['/', '?']).next()?;
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (hostport, if tls { 443 } else { 80 }),
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return None;
    }
    Some(Cluster {
        name: name.into(),
        address: host.into(),
        port,
        tls,
    })
}

/// The Envoy bootstrap spec for `cfg`, with upstream clusters, tokens and options decided.
pub fn render(
    cfg: &GatewayConfig,
    upstreams: &Upstreams,
    wasm_dir: &Path,
    admin: SocketAddr,
) -> BootstrapSpec {
    let cfg = &upstreams.apply(cfg);
    let header = cfg.header();
    let addrs = cfg.listen_addrs();
    let mut spec = BootstrapSpec::new(addrs[0], admin);
    spec.extra_listeners = addrs[1..].to_vec();
    spec.paths = cfg.paths();
    if let Some(m) = &cfg.limits.max_request_bytes {
        // Envoy buffers the body for json_to_metadata and the plugins: a little above the
        // limit, so ai-proxy (not Envoy) answers the 413 in OpenAI's shape.
        spec.buffer_limit_bytes =
            u32::try_from(m.value.saturating_add(64 * 1024)).unwrap_or(u32::MAX);
    }
    if let Some(t) = cfg.limits.timeout_s {
        spec.route_timeout_s = t;
    }
    spec.filters = vec![
        WasmFilter {
            name: "ai-load-balancer".into(),
            wasm_path: wasm_dir.join("ai_load_balancer.wasm"),
            config: cfg.balancer_config(),
        },
        WasmFilter {
            name: "ai-proxy".into(),
            wasm_path: wasm_dir.join("ai_proxy.wasm"),
            config: cfg.proxy_config(&upstreams.tokens()),
        },
    ];
    for p in &cfg.providers {
        spec.header_routes.push(HeaderRoute {
            name: p.cluster_name(),
            header: header.clone(),
            value: p.name.value.clone(),
            cluster: p.cluster_name(),
        });
        if let Some((cluster, _)) = upstreams.by_provider.get(&p.name.value) {
            spec.clusters.push(cluster.clone());
        }
        // Vertex AI: the token endpoint the key names, for ai-proxy's token requests.
        if let Some(c) = p
            .vertex_auth()
            .and_then(|(name, uri)| endpoint_cluster(&name, &uri))
        {
            if !spec.clusters.iter().any(|x| x.name == c.name) {
                spec.clusters.push(c);
            }
        }
    }
    spec.default_cluster = cfg.providers.first().map(|p| p.cluster_name());
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(endpoint_cluster("c", "http://a b").is_none());
    }

    #[test]
    fn vertex_provider_renders_its_host_and_token_endpoint() {
        let key: serde_json::Value = serde_json::from_str(include_str!(
            "../../../../crates/protocol/testdata/vertex/service_account.json"
        ))
        .unwrap();
        let key = key.to_string();
        let yaml = format!(
            "providers:\n  - name: vx\n    type: vertex\n    model: gemini-2.5-flash\n    options:\n      vertexRegion: us-central1\n      vertexProjectId: p\n      vertexAuthKey: '{key}'\n"
        );
        let cfg = GatewayConfig::parse(&yaml).unwrap();
        let up = Upstreams::configured(&cfg, &|_| None).unwrap();
        let c = &up.by_provider["vx"].0;
        assert_eq!(
            (c.address.as_str(), c.port, c.tls),
            ("us-central1-aiplatform.googleapis.com", 443, true)
        );
        let spec = render(&cfg, &up, Path::new("/w"), "127.0.0.1:0".parse().unwrap());
        let auth = spec
            .clusters
            .iter()
            .find(|c| c.name == "vertex-auth-vx")
            .unwrap();
        assert_eq!(
            (auth.address.as_str(), auth.port, auth.tls),
            ("oauth2.googleapis.com", 443, true)
        );
        let proxy = &spec.filters[1].config["providers"][0];
        assert_eq!(proxy["vertexAuthServiceName"], "vertex-auth-vx");
    }
}
