//! `switchyard check`: the seed's "symmetry" problems found before they reach production.
//!
//! On Higress manifests: each balancer provider must have an Ingress matching
//! `<routing header> == <name>` and every such condition must name a provider; names and ids
//! must be unique; ai-proxy vendor types must exist; providers need API tokens; plugins must
//! be bound to Ingresses that exist. On a `gateway.yaml`: its validation, missing token
//! variables, and, with manifests too, drift between the file and what is deployed.

use crate::gateway::{EnvLookup, GatewayConfig, GatewayError, Upstreams};
use crate::higress::{DESTINATION, EXACT_HEADER_PREFIX};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;

/// What kind of problem a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A provider no destination condition routes to.
    NoDestination,
    /// A destination condition on the routing header that names no provider.
    UnknownDestination,
    Duplicate,
    UnknownVendor,
    MissingToken,
    /// Balancer and ai-proxy disagree on the provider list.
    Mismatch,
    /// A WasmPlugin bound to an Ingress that is not in the manifests.
    Unbound,
    /// The input could not be read or is not valid.
    Invalid,
}

/// One problem, located by file and line or by Kubernetes resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub kind: Kind,
    pub at: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

fn finding(kind: Kind, at: impl Into<String>, message: impl Into<String>) -> Finding {
    Finding {
        kind,
        at: at.into(),
        message: message.into(),
    }
}

/// A header condition an Ingress routes on.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// `namespace/name` of the Ingress.
    pub ingress: String,
    pub header: String,
    pub value: String,
    pub destination: String,
}

/// What the manifests say about routing and the plugins.
#[derive(Debug, Default)]
pub struct Manifests {
    pub ingresses: BTreeSet<String>,
    pub conditions: Vec<Condition>,
    /// `(resource, config)` of every balancer config found.
    pub balancers: Vec<(String, Value)>,
    pub proxies: Vec<(String, Value)>,
    /// `(plugin, ns/ingress)` bindings of every matchRule.
    pub bindings: Vec<(String, String)>,
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

/// Header conditions of one Ingress: Higress's exact-match annotations (with the destination
/// annotation) and the seed's `service:port if header == value` destination lines.
fn conditions(ingress: &str, annotations: &serde_json::Map<String, Value>) -> Vec<Condition> {
    let destination = annotations
        .get(DESTINATION)
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut out = Vec::new();
    for (k, v) in annotations {
        if let (Some(h), Some(val)) = (k.strip_prefix(EXACT_HEADER_PREFIX), v.as_str()) {
            out.push(Condition {
                ingress: ingress.into(),
                header: h.to_ascii_lowercase(),
                value: val.trim().into(),
                destination: destination.trim().into(),
            });
        }
    }
    for line in destination.lines() {
        if let Some((dest, cond)) = line.split_once(" if ") {
            if let Some((h, val)) = cond.split_once("==") {
                out.push(Condition {
                    ingress: ingress.into(),
                    header: h.trim().to_ascii_lowercase(),
                    value: val.trim().trim_matches(['"', '\'']).into(),
                    destination: dest.trim().into(),
                });
            }
        }
    }
    out
}

/// Whether a plugin config is the balancer's (providers with `name`) or ai-proxy's.
fn classify(config: &Value) -> Option<bool> {
    let first = config.pointer("/providers/0");
    if first.and_then(|p| p.get("name")).is_some() || config.get("target_header").is_some() {
        Some(true)
    } else if first.and_then(|p| p.get("type")).is_some() || config.get("provider").is_some() {
        Some(false)
    } else {
        None
    }
}

impl Manifests {
    /// Parse multi-document Kubernetes YAML.
    pub fn parse(text: &str) -> Result<Manifests, String> {
        let docs: Vec<Value> = serde_saphyr::from_multiple(text)
            .map_err(|e| e.to_string().lines().next().unwrap_or_default().to_string())?;
        let mut m = Manifests::default();
        for d in docs.iter().flat_map(|d| match d.get("items") {
            Some(Value::Array(items)) => items.iter().collect::<Vec<_>>(),
            _ => vec![d],
        }) {
            let kind = str_at(d, "/kind");
            let ns = match str_at(d, "/metadata/namespace") {
                "" => "default",
                n => n,
            };
            let name = format!("{ns}/{}", str_at(d, "/metadata/name"));
            match kind {
                "Ingress" => {
                    m.ingresses.insert(name.clone());
                    if let Some(a) = d
                        .pointer("/metadata/annotations")
                        .and_then(Value::as_object)
                    {
                        m.conditions.extend(conditions(&name, a));
                    }
                }
                "WasmPlugin" => {
                    let res = format!("WasmPlugin {name}");
                    let mut configs = Vec::new();
                    if let Some(c) = d.pointer("/spec/defaultConfig") {
                        configs.push(c.clone());
                    }
                    for r in d
                        .pointer("/spec/matchRules")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        for i in r
                            .get("ingress")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                        {
                            m.bindings.push((res.clone(), i.to_string()));
                        }
                        if let Some(c) = r.get("config") {
                            configs.push(c.clone());
                        }
                    }
                    for c in configs {
                        match classify(&c) {
                            Some(true) => m.balancers.push((res.clone(), c)),
                            Some(false) => m.proxies.push((res.clone(), c)),
                            None => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(m)
    }
}

fn duplicates<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = BTreeSet::new();
    let mut dups = Vec::new();
    for n in names {
        if !seen.insert(n) && !dups.contains(&n) {
            dups.push(n);
        }
    }
    dups
}

/// Vendor types that work without API tokens (self-hosted servers).
const TOKENLESS: [&str; 3] = ["ollama", "vllm", "generic"];

/// Check deployed (or rendered) manifests. `expected` are the provider names of a gateway.yaml
/// to compare with, when one was given.
pub fn check_manifests(m: &Manifests, expected: Option<(&str, &[String], &str)>) -> Vec<Finding> {
    let mut out = Vec::new();
    if m.balancers.is_empty() && expected.is_none() {
        out.push(finding(
            Kind::Invalid,
            "manifests",
            "no ai-load-balancer config found (a WasmPlugin matchRule with `providers[].name`)",
        ));
    }
    // Provider names and routing header per balancer config, or from gateway.yaml.
    let mut sources: Vec<(String, Vec<String>, String)> = Vec::new();
    for (res, c) in &m.balancers {
        let names: Vec<String> = c
            .get("providers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| str_at(p, "/name").to_string())
            .collect();
        for d in duplicates(names.iter().map(String::as_str)) {
            out.push(finding(
                Kind::Duplicate,
                res.clone(),
                format!("balancer provider name `{d}` appears more than once"),
            ));
        }
        let header = match str_at(c, "/target_header") {
            "" => crate::gateway::DEFAULT_HEADER.to_string(),
            h => h.to_ascii_lowercase(),
        };
        sources.push((res.clone(), names, header));
    }
    if let Some((file, names, header)) = expected {
        sources.push((file.to_string(), names.to_vec(), header.to_string()));
    }
    let mut headers = BTreeSet::new();
    let mut all_names = BTreeSet::new();
    for (res, names, header) in &sources {
        headers.insert(header.clone());
        for n in names {
            all_names.insert(n.clone());
            let routed = m
                .conditions
                .iter()
                .any(|c| &c.header == header && &c.value == n);
            if !routed {
                out.push(finding(
                    Kind::NoDestination,
                    res.clone(),
                    format!(
                        "provider `{n}` has no Ingress with a destination for `{header} == {n}`"
                    ),
                ));
            }
        }
    }
    for c in &m.conditions {
        if headers.contains(&c.header) && !all_names.contains(&c.value) {
            out.push(finding(
                Kind::UnknownDestination,
                format!("Ingress {}", c.ingress),
                format!(
                    "destination `{}` for `{} == {}` names no provider",
                    c.destination, c.header, c.value
                ),
            ));
        }
        if c.destination.is_empty() {
            out.push(finding(
                Kind::NoDestination,
                format!("Ingress {}", c.ingress),
                format!(
                    "matches `{} == {}` but has no {DESTINATION} annotation",
                    c.header, c.value
                ),
            ));
        }
    }
    let keyed: Vec<String> = m
        .conditions
        .iter()
        .map(|c| format!("{} == {}", c.header, c.value))
        .collect();
    for d in duplicates(keyed.iter().map(String::as_str)) {
        let where_: Vec<&str> = m
            .conditions
            .iter()
            .zip(&keyed)
            .filter(|(_, k)| k.as_str() == d)
            .map(|(c, _)| c.ingress.as_str())
            .collect();
        out.push(finding(
            Kind::Duplicate,
            "Ingresses",
            format!(
                "`{d}` is routed by more than one Ingress: {}",
                where_.join(", ")
            ),
        ));
    }
    for (res, c) in &m.proxies {
        out.extend(check_proxy(res, c, &all_names));
    }
    for (plugin, ingress) in &m.bindings {
        if !m.ingresses.contains(ingress) {
            out.push(finding(
                Kind::Unbound,
                plugin.clone(),
                format!("matchRules name Ingress `{ingress}`, which is not in the manifests"),
            ));
        }
    }
    dedup(out)
}

fn dedup(v: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for f in v {
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

fn check_proxy(res: &str, c: &Value, balancer_names: &BTreeSet<String>) -> Vec<Finding> {
    let mut out = Vec::new();
    let providers: Vec<&Value> = c
        .get("provider")
        .into_iter()
        .chain(
            c.get("providers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .collect();
    let ids: Vec<&str> = providers.iter().map(|p| str_at(p, "/id")).collect();
    for d in duplicates(ids.iter().copied().filter(|i| !i.is_empty())) {
        out.push(finding(
            Kind::Duplicate,
            res,
            format!("ai-proxy provider id `{d}` appears more than once"),
        ));
    }
    for p in &providers {
        let ty = str_at(p, "/type");
        let id = match str_at(p, "/id") {
            "" => ty,
            i => i,
        };
        if switchyard_policy::vendor::vendor(ty).is_none() {
            out.push(finding(
                Kind::UnknownVendor,
                res,
                format!("ai-proxy provider `{id}` has unknown vendor type `{ty}`"),
            ));
        }
        let tokens: Vec<&str> = p
            .get("apiTokens")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        // Bedrock with SigV4 credentials has no tokens.
        let sigv4 = ty == "bedrock" && p.get("awsAccessKey").is_some();
        if tokens.is_empty() && !TOKENLESS.contains(&ty) && !sigv4 {
            out.push(finding(
                Kind::MissingToken,
                res,
                format!("ai-proxy provider `{id}` has no apiTokens"),
            ));
        }
        // Options rendered with `--keep-token-refs` keep their `${VAR}` too.
        for (k, v) in p.as_object().into_iter().flatten() {
            if k == "apiTokens" || k == "id" || k == "type" {
                continue;
            }
            let vars = crate::gateway::value_refs(v);
            if !vars.is_empty() {
                out.push(finding(
                    Kind::MissingToken,
                    res,
                    format!(
                        "ai-proxy provider `{id}` has an unresolved variable `{}` in `{k}`",
                        vars.join("`, `")
                    ),
                ));
            }
        }
        for t in tokens {
            if let Ok(vars) = crate::gateway::env_refs(t) {
                if !vars.is_empty() {
                    out.push(finding(
                        Kind::MissingToken,
                        res,
                        format!(
                            "ai-proxy provider `{id}` has an unresolved token variable `{}`",
                            vars.join("`, `")
                        ),
                    ));
                }
            }
        }
    }
    // With a provider list chosen by the routing header, every balancer name needs an id.
    if c.get("providers").is_some() && !balancer_names.is_empty() {
        for n in balancer_names {
            if !ids.contains(&n.as_str()) {
                out.push(finding(
                    Kind::Mismatch,
                    res,
                    format!("balancer provider `{n}` has no ai-proxy provider with id `{n}`"),
                ));
            }
        }
    }
    out
}

/// Check a gateway.yaml: validation problems, variables of tokens and options missing from
/// `env` and then what ai-proxy says about the resolved config (both skipped when `env` is
/// `None`), and, when `manifests` are given, drift between them.
pub fn check_gateway(
    file: &str,
    text: &str,
    env: Option<EnvLookup<'_>>,
    manifests: Option<&Manifests>,
) -> Vec<Finding> {
    let cfg = match GatewayConfig::parse(text) {
        Ok(c) => c,
        Err(problems) => {
            let e = GatewayError {
                file: file.into(),
                problems,
            };
            return e
                .to_string()
                .lines()
                .zip(&e.problems)
                .map(|(line, d)| {
                    let kind = if d.message.contains("duplicate") {
                        Kind::Duplicate
                    } else if d.message.contains("unknown vendor type") {
                        Kind::UnknownVendor
                    } else {
                        Kind::Invalid
                    };
                    let (at, msg) = line.split_at(line.find(": ").unwrap_or(0));
                    finding(kind, at, msg.trim_start_matches(": "))
                })
                .collect();
        }
    };
    let mut out = Vec::new();
    if let Some(env) = env {
        if let Err(problems) = Upstreams::configured(&cfg, env) {
            for d in problems {
                let kind = if d.message.contains("environment variable") {
                    Kind::MissingToken
                } else {
                    Kind::Invalid
                };
                let at = match d.line {
                    0 => file.to_string(),
                    l => format!("{file}:{l}"),
                };
                out.push(finding(kind, at, format!("{}: {}", d.field, d.message)));
            }
        }
    }
    if let Some(m) = manifests {
        let names: Vec<String> = cfg.providers.iter().map(|p| p.name.value.clone()).collect();
        out.extend(check_manifests(m, Some((file, &names, &cfg.header()))));
    }
    out
}
