//! `${VAR}` references in tokens: finding, resolving and reporting missing ones; and each
//! provider's upstream with its resolved tokens.

use std::collections::BTreeMap;

use super::diagnostics::Diagnostic;
use super::render::endpoint_cluster;
use super::schema::{GatewayConfig, ProviderEntry};
use crate::envoy::Cluster;

/// The environment lookup used to resolve `${VAR}`: unset and empty variables are missing.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

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
}
