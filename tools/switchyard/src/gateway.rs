//! `gateway.yaml`: one human-first file from which both plugin configs, the Envoy bootstrap
//! and the Higress manifests are generated, so provider names and routing-header values can
//! never drift apart.
//!
//! Loading keeps the line of every field that validation may complain about, so each problem
//! is reported as `file:line: field: message`.

use crate::envoy::{BootstrapSpec, Cluster, HeaderRoute, WasmFilter};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use switchyard_policy::balancer::BalancerConfig;
use switchyard_policy::proxy::ProxyConfig;

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
    /// Extra ai-proxy provider fields (Higress names, e.g. `claudeVersion`), passed through.
    #[serde(default)]
    pub options: Map<String, Value>,
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

/// One problem found in a config, at a line (0: no line, e.g. a missing section).
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub line: u64,
    pub field: String,
    pub message: String,
}

impl Diagnostic {
    pub fn new(line: u64, field: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            line,
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Problems in one file; displays as one `file:line: field: message` per problem.
#[derive(Debug, Clone, thiserror::Error)]
pub struct GatewayError {
    pub file: String,
    pub problems: Vec<Diagnostic>,
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if d.line > 0 {
                write!(f, "{}:{}: ", self.file, d.line)?;
            } else {
                write!(f, "{}: ", self.file)?;
            }
            if d.field.is_empty() {
                write!(f, "{}", d.message)?;
            } else {
                write!(f, "{}: {}", d.field, d.message)?;
            }
        }
        Ok(())
    }
}

pub const DEFAULT_HEADER: &str = "x-selected-provider";
pub const STRATEGIES: [&str; 3] = ["least", "p2c", "weighted"];

/// The environment lookup used to resolve `${VAR}`: unset and empty variables are missing.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl GatewayConfig {
    /// Read, parse and validate `path`.
    pub fn load(path: &Path) -> Result<GatewayConfig, GatewayError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| GatewayError {
            file: file.clone(),
            problems: vec![Diagnostic::new(0, "", e.to_string())],
        })?;
        Self::parse(&text).map_err(|problems| GatewayError { file, problems })
    }

    /// Parse and validate; every problem found is returned.
    pub fn parse(text: &str) -> Result<GatewayConfig, Vec<Diagnostic>> {
        let cfg: GatewayConfig =
            serde_saphyr::from_str(text).map_err(|e| vec![yaml_error(&e, text)])?;
        let problems = cfg.validate();
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(problems)
        }
    }

    /// Structural checks (names, vendor types, addresses, endpoints, strategy, references).
    pub fn validate(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        if self.providers.is_empty() {
            out.push(Diagnostic::new(
                0,
                "providers",
                "at least one provider is required",
            ));
        }
        if let Some(l) = &self.listen {
            if !self.listeners.is_empty() {
                out.push(Diagnostic::new(
                    l.line,
                    "listen",
                    "use either `listen` or `listeners`, not both",
                ));
            }
        }
        for (field, line, addr) in self.listener_fields() {
            if addr.parse::<SocketAddr>().is_err() {
                out.push(Diagnostic::new(
                    line,
                    field,
                    format!("`{addr}` is not an ip:port address"),
                ));
            }
        }
        let addrs: Vec<&str> = self.listener_fields().map(|(_, _, a)| a).collect();
        for (i, (field, line, a)) in self.listener_fields().enumerate() {
            if addrs[..i].contains(&a) {
                out.push(Diagnostic::new(
                    line,
                    field,
                    format!("duplicate address `{a}`"),
                ));
            }
        }
        if let Some(a) = &self.admin {
            if a.parse::<SocketAddr>().is_err() {
                out.push(Diagnostic::new(
                    a.line,
                    "admin",
                    format!("`{}` is not an ip:port address", a.value),
                ));
            }
        }
        if let Some(h) = &self.routing_header {
            if !is_token(&h.value) {
                out.push(Diagnostic::new(
                    h.line,
                    "routing_header",
                    "must be a header name (letters, digits, '-', '_')",
                ));
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            let p = &r.path;
            if !p.starts_with('/') || p.contains(char::is_whitespace) {
                out.push(Diagnostic::new(
                    p.line,
                    format!("routes[{i}].path"),
                    "must be a path prefix starting with '/'",
                ));
            }
        }
        for (i, p) in self.providers.iter().enumerate() {
            out.extend(p.validate(i));
            let dup = self.providers[..i]
                .iter()
                .find(|q| q.name.value == p.name.value);
            if let Some(first) = dup {
                out.push(Diagnostic::new(
                    p.name.line,
                    format!("providers[{i}].name"),
                    format!(
                        "duplicate provider name `{}` (first on line {})",
                        p.name.value, first.name.line
                    ),
                ));
            }
        }
        if let Some(s) = &self.balancer.strategy {
            if !STRATEGIES.contains(&s.as_str()) {
                out.push(Diagnostic::new(
                    s.line,
                    "balancer.strategy",
                    format!(
                        "unknown strategy `{}` (use {})",
                        s.value,
                        STRATEGIES.join(", ")
                    ),
                ));
            }
        }
        if let Some(m) = &self.balancer.metrics {
            if !m.is_object() {
                out.push(Diagnostic::new(m.line, "balancer.metrics", "must be a map"));
            }
        }
        if let Some(m) = &self.limits.max_request_bytes {
            if m.value == 0 || m.value > u64::from(u32::MAX) {
                out.push(Diagnostic::new(
                    m.line,
                    "limits.max_request_bytes",
                    "must be between 1 and 4294967295",
                ));
            }
        }
        if out.is_empty() {
            // The plugins' own validation of what we would hand them (e.g. a metric source
            // missing its settings); placeholder tokens stand in for unresolved secrets.
            let tokens = self
                .providers
                .iter()
                .map(|p| {
                    let t = vec!["placeholder".to_string(); p.api_tokens.len()];
                    (p.name.value.clone(), t)
                })
                .collect();
            if let Err(e) = BalancerConfig::from_json(&self.balancer_config()) {
                let line = self.balancer.metrics.as_ref().map_or(0, |m| m.line);
                out.push(Diagnostic::new(
                    line,
                    format!("balancer ({})", e.field),
                    e.message,
                ));
            }
            if let Err(e) = ProxyConfig::from_json(&self.proxy_config(&tokens)) {
                let line = provider_line_of_field(self, &e.field);
                out.push(Diagnostic::new(
                    line,
                    format!("ai-proxy ({})", e.field),
                    e.message,
                ));
            }
        }
        out
    }

    fn listener_fields(&self) -> impl Iterator<Item = (String, u64, &str)> {
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

/// Best effort: the line of the provider a plugin error path (`providers[2].type`) points at.
fn provider_line_of_field(cfg: &GatewayConfig, field: &str) -> u64 {
    field
        .strip_prefix("providers[")
        .and_then(|r| r.split(']').next())
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| cfg.providers.get(i))
        .map_or(0, |p| p.line)
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// serde-saphyr's message without its location prefix and source snippet; the field is the
/// key written on that line when the message does not name one itself.
fn yaml_error(e: &serde_saphyr::Error, text: &str) -> Diagnostic {
    let shown = e.to_string();
    let mut msg = shown.lines().next().unwrap_or_default().trim();
    msg = msg.strip_prefix("error: ").unwrap_or(msg);
    if let Some(rest) = msg.strip_prefix("line ") {
        if let Some((_, after)) = rest.split_once(": ") {
            msg = after;
        }
    }
    let line = e.location().map(|l| l.line()).unwrap_or(0);
    let field = if msg.contains('`') {
        String::new()
    } else {
        line_key(text, line).unwrap_or_default()
    };
    Diagnostic::new(line, field, msg)
}

/// The mapping key on a (1-based) line, e.g. `weight` in `    weight: abc`.
fn line_key(text: &str, line: u64) -> Option<String> {
    let l = text
        .lines()
        .nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let l = l.trim_start().trim_start_matches(['-', ' ', '{']);
    let (key, _) = l.split_once(':')?;
    let key = key.trim();
    (!key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
    .then(|| key.to_string())
}

impl ProviderEntry {
    pub fn cluster_name(&self) -> String {
        format!("provider-{}", self.name.value)
    }

    pub fn metric_key(&self) -> String {
        self.metric_key
            .clone()
            .unwrap_or_else(|| self.name.value.clone())
    }

    fn validate(&self, i: usize) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let at = |f: &str| format!("providers[{i}].{f}");
        if !is_token(&self.name) {
            out.push(Diagnostic::new(
                self.name.line,
                at("name"),
                "use letters, digits, '-' or '_'",
            ));
        }
        if switchyard_policy::vendor::vendor(&self.vendor).is_none() {
            let known: Vec<&str> = switchyard_policy::vendor::VENDORS
                .iter()
                .map(|v| v.name)
                .collect();
            out.push(Diagnostic::new(
                self.vendor.line,
                at("type"),
                format!(
                    "unknown vendor type `{}` (known: {})",
                    self.vendor.value,
                    known.join(", ")
                ),
            ));
        } else if self.upstream_url().is_none() {
            out.push(Diagnostic::new(
                self.vendor.line,
                at("endpoint"),
                format!(
                    "vendor type `{}` has no default host: set `endpoint`",
                    self.vendor.value
                ),
            ));
        }
        if self.model.is_empty() {
            out.push(Diagnostic::new(
                self.model.line,
                at("model"),
                "must not be empty",
            ));
        }
        if let Some(e) = &self.endpoint {
            if endpoint_cluster("x", e).is_none() {
                out.push(Diagnostic::new(
                    e.line,
                    at("endpoint"),
                    format!("`{}` is not an http(s)://host[:port] URL", e.value),
                ));
            }
        }
        for (j, t) in self.api_tokens.iter().enumerate() {
            if let Err(m) = env_refs(t) {
                out.push(Diagnostic::new(t.line, at(&format!("api_tokens[{j}]")), m));
            }
        }
        if let Some(w) = &self.weight {
            if !(w.is_finite() && w.value >= 0.0) {
                out.push(Diagnostic::new(
                    w.line,
                    at("weight"),
                    "must be a number >= 0",
                ));
            }
        }
        out
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
        let spec = switchyard_policy::vendor::vendor(&self.vendor)?;
        (!spec.host.is_empty()).then(|| format!("https://{}", spec.host))
    }

    /// Variables the tokens reference that `env` does not have.
    pub fn missing_token_vars(&self, env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
        self.api_tokens
            .iter()
            .flat_map(|t| env_refs(t).unwrap_or_default())
            .filter(|v| env(v).is_none())
            .collect()
    }

    /// Tokens with `${VAR}` resolved; `None` when a referenced variable is missing.
    pub fn resolved_tokens(&self, env: &dyn Fn(&str) -> Option<String>) -> Option<Vec<String>> {
        self.api_tokens
            .iter()
            .map(|t| resolve_env(t, env))
            .collect()
    }

    /// This provider in ai-proxy's schema.
    pub fn proxy_provider(&self, tokens: Vec<String>) -> Value {
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
        for (k, val) in &self.options {
            v.insert(k.clone(), val.clone());
        }
        Value::Object(v)
    }
}

/// Names of the `${VAR}` references in `s`; an error for an unclosed or empty reference.
pub fn env_refs(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in `{}`", redact(s)))?;
        let name = &after[..end];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("`${{{name}}}` is not a variable name"));
        }
        out.push(name.to_string());
        rest = &after[end + 1..];
    }
    Ok(out)
}

/// A token for messages: only its first characters.
fn redact(s: &str) -> String {
    let head: String = s.chars().take(4).collect();
    format!("{head}…")
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

/// Where each provider's traffic goes and with which tokens, decided by the caller (the
/// configured upstreams, or local mocks for `up`).
#[derive(Debug, Clone, Default)]
pub struct Upstreams {
    pub by_provider: BTreeMap<String, (Cluster, Vec<String>)>,
}

impl Upstreams {
    /// Each provider's configured upstream with tokens resolved from `env`; every provider
    /// whose tokens reference a missing variable is reported.
    pub fn configured(
        cfg: &GatewayConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Upstreams, Vec<Diagnostic>> {
        let mut by_provider = BTreeMap::new();
        let mut problems = Vec::new();
        for (i, p) in cfg.providers.iter().enumerate() {
            let missing = p.missing_token_vars(env);
            if !missing.is_empty() {
                problems.push(missing_vars_problem(i, p, &missing));
                continue;
            }
            let tokens = p.resolved_tokens(env).unwrap_or_default();
            match p
                .upstream_url()
                .and_then(|u| endpoint_cluster(&p.cluster_name(), &u))
            {
                Some(c) => {
                    by_provider.insert(p.name.value.clone(), (c, tokens));
                }
                None => problems.push(Diagnostic::new(
                    p.line,
                    format!("providers[{i}].endpoint"),
                    "no usable upstream URL",
                )),
            }
        }
        if problems.is_empty() {
            Ok(Upstreams { by_provider })
        } else {
            Err(problems)
        }
    }

    /// Resolved tokens per provider name.
    pub fn tokens(&self) -> BTreeMap<String, Vec<String>> {
        self.by_provider
            .iter()
            .map(|(k, (_, t))| (k.clone(), t.clone()))
            .collect()
    }
}

/// The problem reported for a provider whose token variables are not set.
pub fn missing_vars_problem(i: usize, p: &ProviderEntry, missing: &[String]) -> Diagnostic {
    let line = p.api_tokens.first().map_or(p.name.line, |t| t.line);
    Diagnostic::new(
        line,
        format!("providers[{i}].api_tokens"),
        format!(
            "provider `{}`: environment variable{} {} not set",
            p.name.value,
            if missing.len() > 1 { "s" } else { "" },
            missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
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

/// The Envoy bootstrap spec for `cfg`, with upstream clusters and tokens decided.
pub fn render(
    cfg: &GatewayConfig,
    upstreams: &Upstreams,
    wasm_dir: &Path,
    admin: SocketAddr,
) -> BootstrapSpec {
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
    }
    spec.default_cluster = cfg.providers.first().map(|p| p.cluster_name());
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
        assert_eq!(env_refs("a${X}b${Y_2}").unwrap(), ["X", "Y_2"]);
        assert!(env_refs("${X").is_err());
        assert!(env_refs("${}").is_err());
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
    }

    fn problems(text: &str) -> Vec<Diagnostic> {
        GatewayConfig::parse(text).err().unwrap_or_default()
    }

    #[test]
    fn problems_name_line_and_field() {
        let text = "\
providers:
  - name: a
    type: qwen
    model: m
  - name: a
    type: nosuchvendor
    model: m
    weight: -1
    api_tokens: [\"${UNCLOSED\"]
balancer:
  strategy: fastest
";
        let p = problems(text);
        let find = |field: &str| p.iter().find(|d| d.field == field).cloned();
        let dup = find("providers[1].name").unwrap();
        assert_eq!(dup.line, 5);
        assert!(dup.message.contains("duplicate") && dup.message.contains("line 2"));
        let vendor = find("providers[1].type").unwrap();
        assert_eq!(vendor.line, 6);
        assert!(vendor.message.contains("nosuchvendor"));
        assert_eq!(find("providers[1].weight").unwrap().line, 8);
        assert_eq!(find("providers[1].api_tokens[0]").unwrap().line, 9);
        assert_eq!(find("balancer.strategy").unwrap().line, 11);
        let shown = GatewayError {
            file: "g.yaml".into(),
            problems: p,
        }
        .to_string();
        assert!(
            shown.contains("g.yaml:6: providers[1].type: unknown vendor type"),
            "{shown}"
        );
    }

    #[test]
    fn yaml_errors_carry_the_line() {
        let p = problems("providers:\n  - name: a\n    type: qwen\n    model: m\n    bogus: 1\n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 5, "{p:?}");
        assert!(p[0].message.starts_with("unknown field `bogus`"), "{p:?}");
        let p =
            problems("providers:\n  - name: a\n    type: qwen\n    model: m\n    weight: abc\n");
        assert_eq!((p[0].line, p[0].field.as_str()), (5, "weight"), "{p:?}");
    }

    #[test]
    fn vendors_without_a_host_need_an_endpoint() {
        let p = problems("providers: [{name: a, type: generic, model: m}]");
        assert_eq!(p[0].field, "providers[0].endpoint");
        assert!(problems(
            "providers: [{name: a, type: generic, model: m, endpoint: 'http://10.0.0.1:8000'}]"
        )
        .is_empty());
        assert!(problems(
            "providers: [{name: a, type: ollama, model: m, options: {ollamaServerHost: o.svc}}]"
        )
        .is_empty());
    }

    #[test]
    fn plugin_validation_is_reported() {
        // `redis` source without a redis block: the balancer refuses it.
        let p = problems(
            "providers: [{name: a, type: qwen, model: m}]\nbalancer:\n  metrics: {source: redis}\n",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].field.starts_with("balancer"), "{p:?}");
        assert_eq!(p[0].line, 3);
    }

    #[test]
    fn missing_token_variables() {
        let cfg = GatewayConfig::parse(
            "providers:\n  - {name: a, type: qwen, model: m, api_tokens: ['${K1}', '${K2}']}\n  - {name: b, type: deepseek, model: m}\n",
        )
        .unwrap();
        let env = |k: &str| (k == "K1").then(|| "v".to_string());
        let err = Upstreams::configured(&cfg, &env).unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(err[0].message.contains("`K2`") && !err[0].message.contains("`K1`"));
        let env = |_: &str| Some("v".to_string());
        let up = Upstreams::configured(&cfg, &env).unwrap();
        assert_eq!(up.by_provider["a"].1, ["v", "v"]);
        assert_eq!(up.by_provider["b"].0.address, "api.deepseek.com");
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
        assert!(endpoint_cluster("c", "http://a b").is_none());
    }
}
