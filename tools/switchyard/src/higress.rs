//! Higress manifests from `gateway.yaml`: a `McpBridge` registry per provider upstream, the
//! main Ingress, one Ingress per provider that matches the routing header exactly and sends
//! to that provider's service, and `WasmPlugin`s for both plugins bound to those Ingresses.
//!
//! Header routing in Higress is two annotations on one Ingress:
//! `higress.io/exact-match-header-<header>: <value>` and `higress.io/destination: <service>`,
//! where a DNS registry `<name>` of the McpBridge is the service `<name>.dns`.

use crate::gateway::{endpoint_cluster, GatewayConfig, ProviderEntry};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const DESTINATION: &str = "higress.io/destination";
pub const EXACT_HEADER_PREFIX: &str = "higress.io/exact-match-header-";
const INGRESS_CLASS: &str = "higress";
const HIGRESS_NAMESPACE: &str = "higress-system";

/// Where the plugins' `.wasm` come from (`oci://…` or `file://…`).
#[derive(Debug, Clone)]
pub struct HigressOptions {
    pub balancer_url: String,
    pub proxy_url: String,
}

impl Default for HigressOptions {
    fn default() -> Self {
        HigressOptions {
            balancer_url: "file:///opt/plugins/ai_load_balancer_higress.wasm".into(),
            proxy_url: "file:///opt/plugins/ai_proxy.wasm".into(),
        }
    }
}

/// How Higress reaches one provider.
struct Upstream {
    registry: Value,
    /// `service:port` for `higress.io/destination`.
    destination: String,
    /// SNI for TLS upstreams.
    tls_host: Option<String>,
}

fn upstream(p: &ProviderEntry) -> Option<Upstream> {
    let url = p.upstream_url()?;
    let c = endpoint_cluster(&p.cluster_name(), &url)?;
    let name = format!("llm-{}", p.name.value);
    let is_ip = c.address.parse::<std::net::IpAddr>().is_ok();
    let protocol = if c.tls { "https" } else { "http" };
    let (registry, destination) = if is_ip {
        // Static registries are served on port 80 whatever the endpoint's port.
        (
            json!({ "name": name, "type": "static", "domain": format!("{}:{}", c.address, c.port), "protocol": protocol }),
            format!("{name}.static:80"),
        )
    } else {
        let mut r = json!({ "name": name, "type": "dns", "domain": c.address, "port": c.port, "protocol": protocol });
        if c.tls {
            r["sni"] = json!(c.address);
        }
        (r, format!("{name}.dns:{}", c.port))
    };
    Some(Upstream {
        registry,
        destination,
        tls_host: c.tls.then(|| c.address.clone()),
    })
}

fn names(cfg: &GatewayConfig) -> (String, String) {
    let ns = cfg
        .higress
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let prefix = cfg
        .higress
        .name
        .clone()
        .unwrap_or_else(|| "switchyard".into());
    (ns, prefix)
}

/// Name of the Ingress that serves `provider` (`None`: the main one).
fn ingress_name(cfg: &GatewayConfig, provider: Option<&str>) -> String {
    let (_, prefix) = names(cfg);
    match provider {
        Some(p) => format!("{prefix}-{p}"),
        None => format!("{prefix}-main"),
    }
}

fn ingress(
    cfg: &GatewayConfig,
    name: &str,
    mut annotations: BTreeMap<String, String>,
    up: &Upstream,
) -> Value {
    let (ns, _) = names(cfg);
    annotations.insert(DESTINATION.into(), up.destination.clone());
    if let Some(host) = &up.tls_host {
        annotations.insert("higress.io/backend-protocol".into(), "HTTPS".into());
        annotations.insert("higress.io/proxy-ssl-name".into(), host.clone());
        annotations.insert("higress.io/proxy-ssl-server-name".into(), "on".into());
    }
    let paths: Vec<Value> = cfg
        .paths()
        .iter()
        .map(|p| {
            json!({
                "path": p,
                "pathType": "Prefix",
                "backend": { "resource": { "apiGroup": "networking.higress.io", "kind": "McpBridge", "name": "default" } },
            })
        })
        .collect();
    let mut rule = json!({ "http": { "paths": paths } });
    if let Some(h) = &cfg.higress.host {
        rule["host"] = json!(h);
    }
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": { "app.kubernetes.io/managed-by": "switchyard" },
            "annotations": annotations,
        },
        "spec": { "ingressClassName": INGRESS_CLASS, "rules": [rule] },
    })
}

fn wasm_plugin(name: &str, url: &str, priority: u32, rules: Vec<Value>) -> Value {
    json!({
        "apiVersion": "extensions.higress.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": { "name": name, "namespace": HIGRESS_NAMESPACE },
        "spec": {
            "url": url,
            "phase": "UNSPECIFIED_PHASE",
            "priority": priority,
            "defaultConfigDisable": true,
            "matchRules": rules,
        },
    })
}

/// The manifests, in apply order. `tokens` are the resolved API tokens per provider name.
pub fn render(
    cfg: &GatewayConfig,
    tokens: &BTreeMap<String, Vec<String>>,
    opts: &HigressOptions,
) -> Vec<Value> {
    let (ns, prefix) = names(cfg);
    let header = cfg.header();
    let ups: Vec<(&ProviderEntry, Upstream)> = cfg
        .providers
        .iter()
        .filter_map(|p| upstream(p).map(|u| (&p.value, u)))
        .collect();
    let mut docs = vec![json!({
        "apiVersion": "networking.higress.io/v1",
        "kind": "McpBridge",
        "metadata": { "name": "default", "namespace": HIGRESS_NAMESPACE },
        "spec": { "registries": ups.iter().map(|(_, u)| u.registry.clone()).collect::<Vec<_>>() },
    })];
    let main = ingress_name(cfg, None);
    if let Some((_, first)) = ups.first() {
        docs.push(ingress(cfg, &main, BTreeMap::new(), first));
    }
    let mut bound = vec![format!("{ns}/{main}")];
    let mut proxy_rules = Vec::new();
    let proxy = cfg.proxy_config(tokens);
    proxy_rules.push(json!({ "ingress": [format!("{ns}/{main}")], "config": proxy }));
    for (p, u) in &ups {
        let name = ingress_name(cfg, Some(&p.name.value));
        let mut ann = BTreeMap::new();
        ann.insert(
            format!("{EXACT_HEADER_PREFIX}{header}"),
            p.name.value.clone(),
        );
        docs.push(ingress(cfg, &name, ann, u));
        bound.push(format!("{ns}/{name}"));
        let mut c = proxy.clone();
        c["activeProviderId"] = json!(p.name.value);
        proxy_rules.push(json!({ "ingress": [format!("{ns}/{name}")], "config": c }));
    }
    // The balancer runs on every Ingress: also on a provider's, which a client-sent routing
    // header would select, so that header is replaced or removed.
    docs.push(wasm_plugin(
        &format!("{prefix}-ai-load-balancer"),
        &opts.balancer_url,
        200,
        vec![json!({ "ingress": bound, "config": cfg.balancer_config() })],
    ));
    docs.push(wasm_plugin(
        &format!("{prefix}-ai-proxy"),
        &opts.proxy_url,
        100,
        proxy_rules,
    ));
    docs
}

/// Multi-document YAML.
pub fn to_yaml(docs: &[Value]) -> Result<String, serde_saphyr::SerializeError> {
    let mut out =
        String::from("# Generated by `switchyard render higress`; edit gateway.yaml instead.\n");
    for d in docs {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(d)?);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}
