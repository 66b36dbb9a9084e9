//! Higress's per-route/domain/service overrides: `{"_rules_": [{"_match_route_": [..], ..}]}`.
//!
//! A rule's config starts as a copy of the global config with the rule's own fields laid over
//! it; the first matching rule wins and the global config is the fallback.

use crate::ConfigError;
use serde_json::{Map, Value};

/// What a request is matched on: Envoy's `xds.route_name`, the `:authority` and
/// `xds.cluster_name`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestKeys<'a> {
    pub route: Option<&'a str>,
    pub host: Option<&'a str>,
    pub cluster: Option<&'a str>,
}

#[derive(Debug)]
struct Rule<T> {
    routes: Vec<String>,
    domains: Vec<String>,
    services: Vec<String>,
    config: T,
}

/// A global config plus ordered overrides.
#[derive(Debug)]
pub struct RuleSet<T> {
    global: Option<T>,
    rules: Vec<Rule<T>>,
}

impl<T> RuleSet<T> {
    /// Parse a plugin config; `parse` builds one `T` from a (merged) JSON object. A global
    /// config with no fields besides `_rules_` yields no global fallback.
    pub fn parse(
        root: &Value,
        parse: impl Fn(&Value) -> Result<T, ConfigError>,
    ) -> Result<Self, ConfigError> {
        let Some(obj) = root.as_object() else {
            return Err(ConfigError::new("", "config must be a JSON object"));
        };
        let mut global_obj: Map<String, Value> = obj.clone();
        let rules_v = global_obj.remove("_rules_");
        let global = if global_obj.is_empty() && rules_v.is_some() {
            None
        } else {
            Some(parse(&Value::Object(global_obj.clone()))?)
        };
        let mut rules = Vec::new();
        if let Some(rules_v) = rules_v {
            let Some(list) = rules_v.as_array() else {
                return Err(ConfigError::new("_rules_", "must be a list"));
            };
            for (i, r) in list.iter().enumerate() {
                let at = format!("_rules_[{i}]");
                let Some(r) = r.as_object() else {
                    return Err(ConfigError::new(at, "must be an object"));
                };
                let mut merged = global_obj.clone();
                let mut rule = Rule {
                    routes: Vec::new(),
                    domains: Vec::new(),
                    services: Vec::new(),
                    config: (),
                };
                for (k, v) in r {
                    let target = match k.as_str() {
                        "_match_route_" => &mut rule.routes,
                        "_match_domain_" => &mut rule.domains,
                        "_match_service_" => &mut rule.services,
                        _ => {
                            merged.insert(k.clone(), v.clone());
                            continue;
                        }
                    };
                    *target = string_list(v).ok_or_else(|| {
                        ConfigError::new(format!("{at}.{k}"), "must be a list of strings")
                    })?;
                }
                if rule.routes.is_empty() && rule.domains.is_empty() && rule.services.is_empty() {
                    return Err(ConfigError::new(
                        at,
                        "a rule needs _match_route_, _match_domain_ or _match_service_",
                    ));
                }
                let config = parse(&Value::Object(merged)).map_err(|e| e.within(&at))?;
                rules.push(Rule {
                    routes: rule.routes,
                    domains: rule.domains,
                    services: rule.services,
                    config,
                });
            }
        }
        Ok(RuleSet { global, rules })
    }

    /// The config for a request: the first matching rule's, else the global one.
    pub fn select(&self, keys: RequestKeys<'_>) -> Option<&T> {
        self.rules
            .iter()
            .find(|r| r.matches(keys))
            .map(|r| &r.config)
            .or(self.global.as_ref())
    }

    /// Whether any `_rules_` entry exists (without one, request keys need not be read).
    pub fn has_rules(&self) -> bool {
        !self.rules.is_empty()
    }

    pub fn global(&self) -> Option<&T> {
        self.global.as_ref()
    }

    /// Every config (global first), e.g. to start per-config background work.
    pub fn all(&self) -> impl Iterator<Item = &T> {
        self.global
            .iter()
            .chain(self.rules.iter().map(|r| &r.config))
    }
}

impl<T> Rule<T> {
    fn matches(&self, keys: RequestKeys<'_>) -> bool {
        if let Some(route) = keys.route {
            if self.routes.iter().any(|r| r == route) {
                return true;
            }
        }
        if let Some(host) = keys.host {
            let host = strip_port(host);
            if self.domains.iter().any(|d| domain_matches(d, host)) {
                return true;
            }
        }
        if let Some(cluster) = keys.cluster {
            if self.services.iter().any(|s| service_matches(s, cluster)) {
                return true;
            }
        }
        false
    }
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_str().map(str::to_string))
        .collect()
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split(']')
            .next()
            .map_or(host, |h| h.trim_start_matches('['));
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// `*.example.com` (suffix), `api*` (prefix) or an exact name, case-insensitive.
fn domain_matches(pattern: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let pattern = pattern.to_ascii_lowercase();
    if let Some(suffix) = pattern.strip_prefix('*') {
        host.ends_with(suffix)
    } else if let Some(prefix) = pattern.strip_suffix('*') {
        host.starts_with(prefix)
    } else {
        host == pattern
    }
}

/// `fqdn[:port]` against a cluster name: Higress's `outbound|PORT||FQDN` or a plain name.
fn service_matches(service: &str, cluster: &str) -> bool {
    let (fqdn, port) = match service.rsplit_once(':') {
        Some((f, p)) if p.bytes().all(|b| b.is_ascii_digit()) => (f, Some(p)),
        _ => (service, None),
    };
    let parts: Vec<&str> = cluster.split('|').collect();
    if let [_, cluster_port, _, cluster_fqdn] = parts.as_slice() {
        return *cluster_fqdn == fqdn && port.is_none_or(|p| p == *cluster_port);
    }
    cluster == service || (port.is_none() && cluster == fqdn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_name(v: &Value) -> Result<String, ConfigError> {
        v.get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ConfigError::new("name", "missing"))
    }

    #[test]
    fn first_match_wins_and_rules_copy_global() {
        let cfg = json!({
            "name": "global", "other": 1,
            "_rules_": [
                {"_match_route_": ["ns/a"], "name": "route-a"},
                {"_match_domain_": ["*.example.com", "api*"]},
                {"_match_service_": ["llm.internal.dns:443"], "name": "svc"}
            ]
        });
        let set = RuleSet::parse(&cfg, |v| Ok((parse_name(v)?, v.get("other").cloned()))).unwrap();
        let pick = |route, host, cluster| {
            set.select(RequestKeys {
                route,
                host,
                cluster,
            })
            .map(|c| c.0.clone())
        };
        assert_eq!(
            pick(Some("ns/a"), Some("x.example.com"), None).unwrap(),
            "route-a"
        );
        assert_eq!(
            pick(Some("ns/b"), Some("x.example.com:8080"), None).unwrap(),
            "global"
        );
        assert_eq!(pick(None, Some("api.local"), None).unwrap(), "global");
        assert_eq!(
            pick(None, None, Some("outbound|443||llm.internal.dns")).unwrap(),
            "svc"
        );
        assert_eq!(
            pick(None, None, Some("outbound|80||llm.internal.dns")).unwrap(),
            "global"
        );
        // The rule config inherited the global `other` field.
        let rule = set
            .select(RequestKeys {
                route: Some("ns/a"),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(rule.1, Some(json!(1)));
    }

    #[test]
    fn rules_only_config_has_no_global() {
        let cfg = json!({"_rules_": [{"_match_route_": ["r"], "name": "x"}]});
        let set = RuleSet::parse(&cfg, parse_name).unwrap();
        assert!(set.global().is_none());
        assert!(set.select(RequestKeys::default()).is_none());
    }

    #[test]
    fn errors_name_the_rule() {
        let cfg = json!({"name": "g", "_rules_": [{"_match_route_": ["r"], "name": 5}]});
        let err = RuleSet::parse(&cfg, parse_name).unwrap_err();
        assert_eq!(err.field, "_rules_[0].name");
        let err = RuleSet::parse(&json!({"_rules_": [{"name": "x"}]}), parse_name).unwrap_err();
        assert_eq!(err.field, "_rules_[0]");
        let err =
            RuleSet::parse(&json!({"_rules_": [{"_match_route_": "r"}]}), parse_name).unwrap_err();
        assert_eq!(err.field, "_rules_[0]._match_route_");
    }
}
