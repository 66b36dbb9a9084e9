//! ai-load-balancer configuration: the seed's schema verbatim plus documented extensions.

use crate::config_error::from_value;
use crate::select::Strategy;
use crate::ConfigError;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

/// One provider the balancer may pick.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct BalancerProvider {
    /// Routing name: the value written to the routing header.
    pub name: String,
    /// Metric key (Redis key without prefix, or the metric's key in other sources).
    #[serde(default)]
    pub key: String,
    /// The real model an alias is rewritten to.
    pub model: String,
    /// Relative weight for `weighted` and the fallback (default 1).
    #[serde(default = "one")]
    pub weight: f64,
    /// Cluster whose `metrics.http.path` is polled for this provider (`source: http`),
    /// e.g. the provider's own vLLM `/metrics`; defaults to `metrics.http.cluster`.
    #[serde(default)]
    pub metrics_cluster: Option<String>,
    /// More models this provider serves besides `model`; with `other_models: route` a
    /// request naming one of them goes to a provider that declares it.
    #[serde(default)]
    pub models: Vec<String>,
}

impl BalancerProvider {
    /// Whether this provider declares `model` (its `model` or one of `models`).
    pub fn serves(&self, model: &str) -> bool {
        self.model == model || self.models.iter().any(|m| m == model)
    }
}

/// What happens to a request whose model is not an alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtherModels {
    /// Untouched: no routing header is set (the seed's behaviour).
    #[default]
    Passthrough,
    /// Sent to a provider declaring the model (picked among those by the strategy), model
    /// unchanged; models no provider declares pass through.
    Route,
}

fn one() -> f64 {
    1.0
}

/// The seed's `redis` block.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct RedisConfig {
    pub service_name: String,
    #[serde(default = "redis_port")]
    pub service_port: u16,
    /// Milliseconds.
    #[serde(default = "redis_timeout")]
    pub timeout: u64,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub database: Option<u32>,
    /// Extension: an Envoy cluster serving Webdis (Redis over HTTP) in front of this Redis,
    /// so stock Envoy can read it with an HTTP callout.
    #[serde(default)]
    pub webdis_cluster: Option<String>,
    /// Extension (Higress build): the Redis cluster name as Higress knows it, e.g.
    /// `outbound|6379||redis-svc.dns`; defaults to that form built from `service_name`/`port`.
    #[serde(default)]
    pub cluster: Option<String>,
}

impl RedisConfig {
    /// The cluster name Higress's Redis host call expects.
    pub fn higress_cluster(&self) -> String {
        match &self.cluster {
            Some(c) => c.clone(),
            None => format!("outbound|{}||{}", self.service_port, self.service_name),
        }
    }
}

fn redis_port() -> u16 {
    6379
}
fn redis_timeout() -> u64 {
    1000
}

/// Where load metrics come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricSource {
    /// Fixed values from config (`metrics.values`); for demos and tests.
    Static,
    /// What the gateway itself observes.
    Local,
    Redis,
    Http,
}

/// `metrics` block (extension).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct MetricsConfig {
    pub source: Option<MetricSource>,
    #[serde(default = "refresh_ms")]
    pub refresh_ms: u64,
    #[serde(default = "stale_after_ms")]
    pub stale_after_ms: u64,
    /// Static metric values by provider key (`source: static`).
    #[serde(default)]
    pub values: HashMap<String, f64>,
    /// Where `source: http` polls.
    #[serde(default)]
    pub http: Option<HttpMetricsConfig>,
    /// Which observation `source: local` compares.
    #[serde(default)]
    pub local_signal: crate::local::LocalSignal,
}

/// Reply format of an HTTP metrics endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpFormat {
    /// Prometheus text; the provider's value is the sum of `metric`'s series (only those whose
    /// `label` equals the provider key when `label` is set).
    #[default]
    Prometheus,
    /// A flat JSON object keyed by provider key.
    Json,
}

/// `metrics.http` (extension).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct HttpMetricsConfig {
    /// Default cluster to poll; a provider's `metrics_cluster` overrides it.
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default = "metrics_path")]
    pub path: String,
    #[serde(default)]
    pub format: HttpFormat,
    /// Prometheus metric name, e.g. `vllm:num_requests_running`.
    #[serde(default)]
    pub metric: Option<String>,
    /// Prometheus label whose value names the provider (one endpoint for all providers).
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default = "http_timeout")]
    pub timeout_ms: u64,
}

fn metrics_path() -> String {
    "/metrics".into()
}
fn http_timeout() -> u64 {
    1000
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            source: None,
            refresh_ms: refresh_ms(),
            stale_after_ms: stale_after_ms(),
            values: HashMap::new(),
            http: None,
            local_signal: crate::local::LocalSignal::default(),
        }
    }
}

fn refresh_ms() -> u64 {
    1000
}
fn stale_after_ms() -> u64 {
    5000
}

#[derive(Deserialize)]
struct RawBalancerConfig {
    providers: Vec<BalancerProvider>,
    #[serde(default)]
    redis: Option<RedisConfig>,
    #[serde(default = "default_prefix")]
    redis_key_prefix: String,
    #[serde(default = "default_header")]
    target_header: String,
    #[serde(default)]
    metrics: MetricsConfig,
    #[serde(default)]
    strategy: Strategy,
    #[serde(default = "default_aliases")]
    aliases: Vec<String>,
    #[serde(default)]
    allow_client_choice: bool,
    #[serde(default)]
    other_models: OtherModels,
}

fn default_prefix() -> String {
    "ai_metric:".into()
}
fn default_header() -> String {
    "x-selected-provider".into()
}
fn default_aliases() -> Vec<String> {
    vec!["auto".into()]
}

/// A validated balancer config.
#[derive(Debug, Clone, PartialEq)]
pub struct BalancerConfig {
    pub providers: Vec<BalancerProvider>,
    pub redis: Option<RedisConfig>,
    pub redis_key_prefix: String,
    /// Lower-cased routing header name.
    pub target_header: String,
    pub metrics: MetricsConfig,
    /// The effective metric source (`local` unless configured or implied by `redis`).
    pub source: MetricSource,
    pub strategy: Strategy,
    /// Request models that are rewritten (default `["auto"]`).
    pub aliases: Vec<String>,
    /// Honour a routing header sent by the client when it names a configured provider.
    pub allow_client_choice: bool,
    /// What happens to requests whose model is not an alias.
    pub other_models: OtherModels,
}

impl BalancerConfig {
    pub fn from_json(v: &Value) -> Result<BalancerConfig, ConfigError> {
        let raw: RawBalancerConfig = from_value(v)?;
        if raw.providers.is_empty() {
            return Err(ConfigError::new(
                "providers",
                "at least one provider is required",
            ));
        }
        for (i, p) in raw.providers.iter().enumerate() {
            if !is_header_value(&p.name) {
                return Err(ConfigError::new(
                    format!("providers[{i}].name"),
                    "must be a non-empty token",
                ));
            }
            if raw.providers[..i].iter().any(|q| q.name == p.name) {
                return Err(ConfigError::new(
                    format!("providers[{i}].name"),
                    format!("duplicate name `{}`", p.name),
                ));
            }
            if p.model.is_empty() {
                return Err(ConfigError::new(
                    format!("providers[{i}].model"),
                    "must not be empty",
                ));
            }
            if !(p.weight.is_finite() && p.weight >= 0.0) {
                return Err(ConfigError::new(
                    format!("providers[{i}].weight"),
                    "must be a number >= 0",
                ));
            }
        }
        let header = raw.target_header.to_ascii_lowercase();
        if header.is_empty()
            || !header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::new("target_header", "must be a header name"));
        }
        let source = match raw.metrics.source {
            Some(s) => s,
            None if raw.redis.is_some() => MetricSource::Redis,
            None => MetricSource::Local,
        };
        if source == MetricSource::Redis && raw.redis.is_none() {
            return Err(ConfigError::new(
                "redis",
                "is required when metrics.source is redis",
            ));
        }
        if source == MetricSource::Http {
            let Some(http) = &raw.metrics.http else {
                return Err(ConfigError::new(
                    "metrics.http",
                    "is required when metrics.source is http",
                ));
            };
            if http.format == HttpFormat::Prometheus
                && http.metric.as_deref().is_none_or(str::is_empty)
            {
                return Err(ConfigError::new(
                    "metrics.http.metric",
                    "is required for the prometheus format",
                ));
            }
            if let Some(i) = raw
                .providers
                .iter()
                .position(|p| p.metrics_cluster.is_none() && http.cluster.is_none())
            {
                return Err(ConfigError::new(
                    format!("providers[{i}].metrics_cluster"),
                    "is required when metrics.http.cluster is not set",
                ));
            }
        }
        if raw.metrics.refresh_ms == 0 {
            return Err(ConfigError::new("metrics.refresh_ms", "must be > 0"));
        }
        Ok(BalancerConfig {
            providers: raw.providers,
            redis: raw.redis,
            redis_key_prefix: raw.redis_key_prefix,
            target_header: header,
            metrics: raw.metrics,
            source,
            strategy: raw.strategy,
            aliases: raw.aliases,
            allow_client_choice: raw.allow_client_choice,
            other_models: raw.other_models,
        })
    }

    /// The models this balancer answers `GET /v1/models` with: its aliases (owned by
    /// `switchyard`), then each provider's `model` and `models` (owned by the provider), each
    /// once.
    pub fn listed_models(&self) -> Vec<crate::models::ListedModel<'_>> {
        let mut out = Vec::new();
        for a in &self.aliases {
            crate::models::push_unique(&mut out, a, crate::models::GATEWAY_OWNER);
        }
        for p in &self.providers {
            for m in std::iter::once(&p.model).chain(&p.models) {
                crate::models::push_unique(&mut out, m, &p.name);
            }
        }
        out
    }

    pub fn is_alias(&self, model: &str) -> bool {
        self.aliases.iter().any(|a| a == model)
    }

    /// Indices of the providers that declare `model` (for `other_models: route`).
    pub fn declaring(&self, model: &str) -> Vec<usize> {
        if self.other_models != OtherModels::Route {
            return Vec::new();
        }
        (0..self.providers.len())
            .filter(|&i| self.providers[i].serves(model))
            .collect()
    }

    pub fn provider(&self, name: &str) -> Option<&BalancerProvider> {
        self.providers.iter().find(|p| p.name == name)
    }
}

fn is_header_value(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seed_config_verbatim() {
        let cfg = BalancerConfig::from_json(&json!({
            "providers": [
                {"name": "minmax", "key": "minimax_1", "model": "MiniMax-M2.1"},
                {"name": "qianwen", "key": "qwen_1", "model": "qwen3-max-preview"}
            ],
            "redis": {"service_name": "redis-svc", "service_port": 6379, "timeout": 2000},
            "redis_key_prefix": "ai_metric:",
            "target_header": "x-selected-provider"
        }))
        .unwrap();
        assert_eq!(cfg.source, MetricSource::Redis);
        assert_eq!(cfg.redis.as_ref().unwrap().timeout, 2000);
        assert_eq!(cfg.strategy, Strategy::Least);
        assert!(cfg.is_alias("auto"));
        assert_eq!(cfg.provider("qianwen").unwrap().model, "qwen3-max-preview");
    }

    #[test]
    fn other_models_route_to_declaring_providers() {
        let v = json!({
            "providers": [
                {"name": "a", "model": "m1", "models": ["shared", "only-a"]},
                {"name": "b", "model": "m2", "models": ["shared"]}
            ],
            "other_models": "route",
            "metrics": {"local_signal": "cost"}
        });
        let cfg = BalancerConfig::from_json(&v).unwrap();
        assert_eq!(cfg.declaring("shared"), vec![0, 1]);
        assert_eq!(cfg.declaring("only-a"), vec![0]);
        assert_eq!(cfg.declaring("m2"), vec![1]);
        assert!(cfg.declaring("nobody").is_empty());
        assert_eq!(cfg.metrics.local_signal, crate::local::LocalSignal::Cost);
        let mut passthrough = v.clone();
        passthrough["other_models"] = json!("passthrough");
        let cfg = BalancerConfig::from_json(&passthrough).unwrap();
        assert!(cfg.declaring("shared").is_empty());
        let mut bad = v;
        bad["other_models"] = json!("elsewhere");
        assert_eq!(
            BalancerConfig::from_json(&bad).unwrap_err().field,
            "other_models"
        );
    }

    #[test]
    fn refusals_name_the_field() {
        let err = BalancerConfig::from_json(&json!({"providers": [{"name": "a", "model": 1}]}))
            .unwrap_err();
        assert_eq!(err.field, "providers[0].model");
        let err = BalancerConfig::from_json(&json!({"providers": []})).unwrap_err();
        assert_eq!(err.field, "providers");
        let err = BalancerConfig::from_json(
            &json!({"providers": [{"name": "a", "model": "m"}, {"name": "a", "model": "n"}]}),
        )
        .unwrap_err();
        assert_eq!(err.field, "providers[1].name");
        let err = BalancerConfig::from_json(
            &json!({"providers": [{"name": "a", "model": "m"}], "metrics": {"source": "redis"}}),
        )
        .unwrap_err();
        assert_eq!(err.field, "redis");
        let err = BalancerConfig::from_json(
            &json!({"providers": [{"name": "a", "model": "m"}], "metrics": {"source": "http"}}),
        )
        .unwrap_err();
        assert_eq!(err.field, "metrics.http");
        let err = BalancerConfig::from_json(&json!({"providers": [{"name": "a", "model": "m"}],
            "metrics": {"source": "http", "http": {"cluster": "c"}}}))
        .unwrap_err();
        assert_eq!(err.field, "metrics.http.metric");
        let err = BalancerConfig::from_json(&json!({"providers": [{"name": "a", "model": "m"}],
            "metrics": {"source": "http", "http": {"format": "json"}}}))
        .unwrap_err();
        assert_eq!(err.field, "providers[0].metrics_cluster");
    }
}
