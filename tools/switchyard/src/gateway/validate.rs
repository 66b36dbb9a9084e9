//! Loading and checking `gateway.yaml`: structure, names, vendor types, addresses, and what
//! the plugins' own validation says about the configs the file renders to.

use std::net::SocketAddr;
use std::path::Path;
use switchyard_policy::balancer::BalancerConfig;
use switchyard_policy::proxy::ProxyConfig;

use super::diagnostics::{yaml_error, Diagnostic, GatewayError};
use super::env::{env_refs, resolve_value, value_ref_errors, value_refs};
use super::render::endpoint_cluster;
use super::schema::{GatewayConfig, Located, ProviderEntry, STRATEGIES};

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
            // Option strings with `${VAR}` get a placeholder too; what ai-proxy says about such
            // an option waits for its value (`Upstreams::configured` checks the resolved config).
            let shaped = self.with_placeholder_options();
            if let Err(e) = ProxyConfig::from_json(&shaped.proxy_config(&tokens)) {
                if !self.field_has_refs(&e.field) {
                    out.push(proxy_error(self, &e.field, &e.message));
                }
            }
        }
        out
    }

    /// This config with every `${VAR}` in provider options replaced by a placeholder.
    fn with_placeholder_options(&self) -> GatewayConfig {
        let mut out = self.clone();
        for p in &mut out.providers {
            let shaped = p.placeholder_options();
            p.value.options.map = shaped;
        }
        out
    }

    /// Whether an ai-proxy error path (`providers[2].vertexAuthKey`) names an option whose
    /// value references a variable.
    fn field_has_refs(&self, field: &str) -> bool {
        provider_of_field(self, field).is_some_and(|(p, key)| {
            p.options
                .get(key)
                .is_some_and(|v| !value_refs(v).is_empty())
        })
    }
}

/// The provider an ai-proxy error path (`providers[2].type`) points at, and the field
/// (the path's next segment).
fn provider_of_field<'a, 'f>(
    cfg: &'a GatewayConfig,
    field: &'f str,
) -> Option<(&'a Located<ProviderEntry>, &'f str)> {
    let rest = field.strip_prefix("providers[")?;
    let (i, rest) = rest.split_once(']')?;
    let p = cfg.providers.get(i.parse::<usize>().ok()?)?;
    let key = rest
        .trim_start_matches('.')
        .split(['.', '['])
        .next()
        .unwrap_or_default();
    Some((p, key))
}

/// An ai-proxy validation error as a diagnostic, at the line of the option it names, else of
/// its provider (0 for a top-level field).
pub(super) fn proxy_error(cfg: &GatewayConfig, field: &str, message: &str) -> Diagnostic {
    let line = provider_of_field(cfg, field).map_or(0, |(p, key)| match p.options.line(key) {
        0 => p.line,
        l => l,
    });
    Diagnostic::new(line, format!("ai-proxy ({field})"), message)
}

impl ProviderEntry {
    /// Options with every `${VAR}` replaced by a placeholder (for checks before resolution).
    fn placeholder_options(&self) -> serde_json::Map<String, serde_json::Value> {
        let placeholder = |_: &str| Some("placeholder".to_string());
        self.options
            .iter()
            .map(|(k, v)| {
                let shaped = resolve_value(v, &placeholder).unwrap_or_else(|| v.clone());
                (k.clone(), shaped)
            })
            .collect()
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl ProviderEntry {
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
        } else if self
            .with_options(self.placeholder_options())
            .upstream_url()
            .is_none()
        {
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
        for (k, v) in self.options.iter() {
            for m in value_ref_errors(v) {
                out.push(Diagnostic::new(
                    self.options.line(k),
                    at(&format!("options.{k}")),
                    m,
                ));
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn bedrock_is_served_from_its_region() {
        let text = "providers:\n  - name: aws\n    type: bedrock\n    model: anthropic.claude-3-5-sonnet-20240620-v1:0\n    api_tokens: [k]\n    options: {awsRegion: eu-west-3}\n";
        assert!(problems(text).is_empty(), "{:?}", problems(text));
        let cfg = GatewayConfig::parse(text).unwrap();
        assert_eq!(
            cfg.providers[0].value.upstream_url().as_deref(),
            Some("https://bedrock-runtime.eu-west-3.amazonaws.com")
        );
        let sigv4 = "providers:\n  - name: aws\n    type: bedrock\n    model: m\n    options: {awsRegion: us-east-1, awsAccessKey: AK, awsSecretKey: s}\n";
        assert!(problems(sigv4).is_empty(), "{:?}", problems(sigv4));
        // No region: no host, and ai-proxy would refuse the provider.
        let p = problems("providers: [{name: aws, type: bedrock, model: m, api_tokens: [k]}]");
        assert_eq!(p[0].field, "providers[0].endpoint", "{p:?}");
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
}
