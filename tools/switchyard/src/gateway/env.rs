//! `${VAR}` references in tokens and in the strings of provider `options`: finding,
//! resolving and reporting missing ones; and each provider's upstream with its resolved tokens
//! and options.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use switchyard_policy::proxy::ProxyConfig;

use super::diagnostics::Diagnostic;
use super::render::endpoint_cluster;
use super::schema::{GatewayConfig, ProviderEntry};
use super::validate::proxy_error;
use crate::envoy::Cluster;

/// A lookup of environment variables (`None`: missing).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The environment lookup used to resolve `${VAR}`: unset and empty variables are missing.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Option keys that hold vendor credentials. A provider `up` serves with a mock leaves them
/// out and gets a mock API token instead (Bedrock API key, Vertex static access token).
pub const CREDENTIAL_OPTIONS: &[&str] = &[
    "awsAccessKey",
    "awsSecretKey",
    "awsSessionToken",
    "vertexAuthKey",
];

impl ProviderEntry {
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

    /// Per option key, the variables its strings reference that `env` does not have.
    pub fn missing_option_vars(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<(String, Vec<String>)> {
        self.options
            .iter()
            .filter_map(|(k, v)| {
                let missing: Vec<String> = value_refs(v)
                    .into_iter()
                    .filter(|n| env(n).is_none())
                    .collect();
                (!missing.is_empty()).then(|| (k.clone(), missing))
            })
            .collect()
    }

    /// Options with `${VAR}` resolved in every string (nested ones too); `None` when a
    /// referenced variable is missing.
    pub fn resolved_options(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Map<String, Value>> {
        self.options
            .iter()
            .map(|(k, v)| Some((k.clone(), resolve_value(v, env)?)))
            .collect()
    }

    /// Every missing variable of this provider (`providers[i]`), tokens first, then one
    /// problem per option.
    pub fn missing_vars_problems(
        &self,
        i: usize,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let missing = self.missing_token_vars(env);
        if !missing.is_empty() {
            out.push(missing_vars_problem(i, self, &missing));
        }
        for (key, missing) in self.missing_option_vars(env) {
            out.push(Diagnostic::new(
                self.options.line(&key),
                format!("providers[{i}].options.{key}"),
                not_set(&self.name.value, &missing),
            ));
        }
        out
    }

    /// This provider with `options` in place of its own (lines kept).
    pub fn with_options(&self, options: Map<String, Value>) -> ProviderEntry {
        let mut p = self.clone();
        p.options.map = options;
        p
    }
}

/// Every `${VAR}` syntax error in the strings of `v` (nested ones too).
pub fn value_ref_errors(v: &Value) -> Vec<String> {
    let mut all = Vec::new();
    strings(v, &mut all);
    all.into_iter().filter_map(|s| env_refs(s).err()).collect()
}

/// The variables the strings of `v` reference (malformed references are left to validation).
pub fn value_refs(v: &Value) -> Vec<String> {
    let mut all = Vec::new();
    strings(v, &mut all);
    all.into_iter()
        .flat_map(|s| env_refs(s).unwrap_or_default())
        .collect()
}

fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// `v` with `${VAR}` resolved in every string; `None` when a variable is missing.
pub fn resolve_value(v: &Value, env: &dyn Fn(&str) -> Option<String>) -> Option<Value> {
    Some(match v {
        Value::String(s) => Value::String(resolve_env(s, env)?),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| resolve_value(x, env))
                .collect::<Option<_>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Some((k.clone(), resolve_value(x, env)?)))
                .collect::<Option<_>>()?,
        ),
        other => other.clone(),
    })
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
            return Err(format!("`${{{}}}` is not a variable name", redact(name)));
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

/// Where each provider's traffic goes, with which tokens and options, decided by the caller
/// (the configured upstreams, or local mocks for `up`).
#[derive(Debug, Clone, Default)]
pub struct Upstreams {
    pub by_provider: BTreeMap<String, (Cluster, Vec<String>)>,
    /// Each provider's options as rendered: `${VAR}` resolved (a mocked provider's without
    /// its credentials). A provider not listed keeps its options as written.
    pub options: BTreeMap<String, Map<String, Value>>,
}

impl Upstreams {
    /// Each provider's configured upstream with tokens and options resolved from `env`;
    /// every missing variable is reported, and then what ai-proxy says about the resolved
    /// config (its messages name fields, never values).
    pub fn configured(
        cfg: &GatewayConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Upstreams, Vec<Diagnostic>> {
        let mut ups = Upstreams::default();
        let mut problems = Vec::new();
        for (i, p) in cfg.providers.iter().enumerate() {
            let missing = p.missing_vars_problems(i, env);
            if !missing.is_empty() {
                problems.extend(missing);
                continue;
            }
            let (Some(tokens), Some(options)) = (p.resolved_tokens(env), p.resolved_options(env))
            else {
                continue;
            };
            let resolved = p.with_options(options.clone());
            match resolved
                .upstream_url()
                .and_then(|u| endpoint_cluster(&p.cluster_name(), &u))
            {
                Some(c) => {
                    ups.by_provider.insert(p.name.value.clone(), (c, tokens));
                    ups.options.insert(p.name.value.clone(), options);
                }
                None => problems.push(Diagnostic::new(
                    p.line,
                    format!("providers[{i}].endpoint"),
                    "no usable upstream URL",
                )),
            }
        }
        if problems.is_empty() {
            problems.extend(ups.validate(cfg));
        }
        if problems.is_empty() {
            Ok(ups)
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

    /// `cfg` with each provider's options as these upstreams render them.
    pub fn apply(&self, cfg: &GatewayConfig) -> GatewayConfig {
        let mut out = cfg.clone();
        for p in &mut out.providers {
            if let Some(o) = self.options.get(&p.name.value) {
                p.value.options.map = o.clone();
            }
        }
        out
    }

    /// What ai-proxy's own validation says about the config rendered from `cfg` with these
    /// tokens and options (empty: accepted).
    pub fn validate(&self, cfg: &GatewayConfig) -> Vec<Diagnostic> {
        let resolved = self.apply(cfg);
        match ProxyConfig::from_json(&resolved.proxy_config(&self.tokens())) {
            Ok(_) => Vec::new(),
            Err(e) => vec![proxy_error(cfg, &e.field, &e.message)],
        }
    }
}

/// The problem reported for a provider whose token variables are not set.
pub fn missing_vars_problem(i: usize, p: &ProviderEntry, missing: &[String]) -> Diagnostic {
    let line = p.api_tokens.first().map_or(p.name.line, |t| t.line);
    Diagnostic::new(
        line,
        format!("providers[{i}].api_tokens"),
        not_set(&p.name.value, missing),
    )
}

fn not_set(provider: &str, missing: &[String]) -> String {
    format!(
        "provider `{provider}`: environment variable{} {} not set",
        if missing.len() > 1 { "s" } else { "" },
        missing
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
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

    const BEDROCK: &str = "providers:\n  - name: aws\n    type: bedrock\n    model: m\n    options:\n      awsRegion: ${REGION}\n      awsAccessKey: AKIDEXAMPLE\n      awsSecretKey: \"${AWS_SECRET}\"\n      bedrockAdditionalFields: {top_k: 5, note: \"n-${NOTE}\"}\n";

    #[test]
    fn option_references_resolve_top_level_and_nested() {
        let cfg = GatewayConfig::parse(BEDROCK).unwrap();
        let env = |k: &str| match k {
            "REGION" => Some("eu-west-3".to_string()),
            "AWS_SECRET" => Some("s3cr3t-value".to_string()),
            "NOTE" => Some("x".to_string()),
            _ => None,
        };
        let up = Upstreams::configured(&cfg, &env).unwrap();
        let o = &up.options["aws"];
        assert_eq!(o["awsSecretKey"], "s3cr3t-value");
        assert_eq!(o["awsAccessKey"], "AKIDEXAMPLE");
        assert_eq!(o["bedrockAdditionalFields"]["note"], "n-x");
        assert_eq!(o["bedrockAdditionalFields"]["top_k"], 5);
        // The region option decides the host.
        assert_eq!(
            up.by_provider["aws"].0.address,
            "bedrock-runtime.eu-west-3.amazonaws.com"
        );
        let spec = super::super::render(
            &cfg,
            &up,
            std::path::Path::new("/w"),
            "127.0.0.1:0".parse().unwrap(),
        );
        let p = &spec.filters[1].config["providers"][0];
        assert_eq!(p["awsSecretKey"], "s3cr3t-value");
        assert_eq!(p["awsRegion"], "eu-west-3");
        // The file itself keeps the references.
        assert_eq!(cfg.providers[0].options["awsSecretKey"], "${AWS_SECRET}");
    }

    #[test]
    fn missing_option_variables_are_reported_per_option_with_line() {
        let cfg = GatewayConfig::parse(BEDROCK).unwrap();
        let env = |k: &str| (k == "REGION").then(|| "us-east-1".to_string());
        let err = Upstreams::configured(&cfg, &env).unwrap_err();
        let fields: Vec<&str> = err.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "providers[0].options.awsSecretKey",
                "providers[0].options.bedrockAdditionalFields"
            ]
        );
        assert_eq!((err[0].line, err[1].line), (8, 9));
        assert_eq!(
            err[0].message,
            "provider `aws`: environment variable `AWS_SECRET` not set"
        );
        assert!(err[1].message.contains("`NOTE`"));
        // Tokens and options of one provider are both reported.
        let text = "providers:\n  - {name: c, type: claude, model: m, api_tokens: ['${TOK}'], options: {claudeVersion: '${V}'}}\n";
        let cfg = GatewayConfig::parse(text).unwrap();
        let err = Upstreams::configured(&cfg, &env).unwrap_err();
        let fields: Vec<&str> = err.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "providers[0].api_tokens",
                "providers[0].options.claudeVersion"
            ]
        );
    }

    #[test]
    fn reference_errors_never_show_the_value() {
        let e = env_refs("sk-live-0123456789${").unwrap_err();
        assert!(!e.contains("0123456789"), "{e}");
        let e = env_refs("${sk-live-0123456789}").unwrap_err();
        assert!(!e.contains("0123456789"), "{e}");
        // The same checks run on options at load, at the option's line.
        let text = "providers:\n  - name: aws\n    type: bedrock\n    model: m\n    options:\n      awsRegion: us-east-1\n      awsAccessKey: AK\n      awsSecretKey: \"wJalrXUtnFEMI${\"\n";
        let err = GatewayConfig::parse(text).unwrap_err();
        assert_eq!(err.len(), 1, "{err:?}");
        assert_eq!(
            (err[0].line, err[0].field.as_str()),
            (8, "providers[0].options.awsSecretKey")
        );
        assert!(!err[0].message.contains("XUtnFEMI"), "{err:?}");
    }

    #[test]
    fn resolved_options_are_checked_by_ai_proxy_without_echoing_them() {
        // At load a referenced Vertex key is a placeholder: no error before its value is known.
        let text = "providers:\n  - name: vx\n    type: vertex\n    model: gemini-2.5-flash\n    options:\n      vertexRegion: us-central1\n      vertexProjectId: p\n      vertexAuthKey: ${VERTEX_KEY}\n";
        let cfg = GatewayConfig::parse(text).unwrap();
        let env = |_: &str| Some("not-json-secret-material".to_string());
        let err = Upstreams::configured(&cfg, &env).unwrap_err();
        assert_eq!(err.len(), 1, "{err:?}");
        assert_eq!(err[0].field, "ai-proxy (providers[0].vertexAuthKey)");
        assert_eq!(err[0].line, 8);
        assert!(!err[0].message.contains("secret-material"), "{err:?}");
        // A real key: resolved, and its token endpoint gets a cluster.
        let key = include_str!("../../../../crates/protocol/testdata/vertex/service_account.json");
        let key: Value = serde_json::from_str(key).unwrap();
        let key = key.to_string();
        let env = |_: &str| Some(key.clone());
        let up = Upstreams::configured(&cfg, &env).unwrap();
        let spec = super::super::render(
            &cfg,
            &up,
            std::path::Path::new("/w"),
            "127.0.0.1:0".parse().unwrap(),
        );
        assert!(spec.clusters.iter().any(|c| c.name == "vertex-auth-vx"));
        assert_eq!(spec.filters[1].config["providers"][0]["vertexAuthKey"], key);
    }
}
