//! ai-proxy configuration, compatible with Higress ai-proxy's JSON schema.

use crate::bedrock::Secret;
use crate::config_error::from_value;
use crate::failover::Thresholds;
use crate::model_map::ModelMapping;
use crate::models::ListedModel;
use crate::vendor::{self, split_url, Api, Auth, Family, VendorSpec};
use crate::ConfigError;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use switchyard_protocol::{ErrorKind, GatewayError};

/// Default upstream timeout (Higress's default), milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 120_000;
/// Default request body limit: larger bodies are answered with 413.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 32 * 1024 * 1024;

/// `protocol`: what the client speaks. `original` passes the body through untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Openai,
    Original,
}

/// `context`: a file fetched once and inserted as a system message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextConfig {
    pub file_url: String,
    /// Envoy cluster (Higress: service FQDN) that serves the file.
    pub service_name: String,
    #[serde(default)]
    pub service_port: u16,
    /// `:authority` of the fetch; defaults to the URL's host.
    #[serde(default)]
    pub service_host: Option<String>,
}

/// One provider entry as written in config.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfig {
    #[serde(default)]
    pub id: String,
    #[serde(rename = "type")]
    pub vendor: String,
    #[serde(default)]
    pub api_tokens: Vec<String>,
    #[serde(default)]
    pub model_mapping: ModelMapping,
    #[serde(default)]
    pub protocol: Protocol,
    #[serde(default)]
    pub context: Option<ContextConfig>,
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Take failing tokens out of rotation (Higress `failover`).
    #[serde(default)]
    pub failover: FailoverConfig,
    /// Resend failed requests with another token (Higress `retryOnFailure`).
    #[serde(default)]
    pub retry_on_failure: RetryConfig,
    #[serde(default)]
    pub azure_service_url: Option<String>,
    #[serde(default)]
    pub qwen_enable_compatible: Option<bool>,
    #[serde(default)]
    pub ollama_server_host: Option<String>,
    #[serde(default)]
    pub ollama_server_port: Option<u16>,
    #[serde(default)]
    pub openai_custom_url: Option<String>,
    #[serde(default)]
    pub vllm_server_host: Option<String>,
    #[serde(default)]
    pub vllm_custom_url: Option<String>,
    #[serde(default)]
    pub generic_host: Option<String>,
    #[serde(default)]
    pub claude_version: Option<String>,
    #[serde(default)]
    pub gemini_safety_setting: Option<Value>,
    #[serde(default)]
    pub gemini_thinking_budget: Option<i64>,
    /// Vertex AI (`type: vertex`, see [`crate::vertex`]): the service-account key JSON.
    #[serde(default)]
    pub vertex_auth_key: Option<String>,
    #[serde(default)]
    pub vertex_region: Option<String>,
    #[serde(default)]
    pub vertex_project_id: Option<String>,
    /// The cluster (Higress: service) that reaches the key's `token_uri`.
    #[serde(default)]
    pub vertex_auth_service_name: Option<String>,
    /// Seconds before expiry from which the access token is refreshed.
    #[serde(default)]
    pub vertex_token_refresh_ahead: Option<u64>,
    /// Bedrock (Higress names): region, SigV4 key pair, and fields merged into Converse's
    /// `additionalModelRequestFields`.
    #[serde(default)]
    pub aws_region: Option<String>,
    #[serde(default)]
    pub aws_access_key: Option<String>,
    #[serde(default)]
    pub aws_secret_key: Option<Secret>,
    /// Switchyard extension: the session token of temporary AWS credentials.
    #[serde(default)]
    pub aws_session_token: Option<Secret>,
    #[serde(default)]
    pub bedrock_additional_fields: Option<serde_json::Map<String, Value>>,
    /// Switchyard extension: models this provider serves. Metric labels keep these (and the
    /// models `modelMapping` names); any other model is labelled `other`.
    #[serde(default)]
    pub models: Vec<String>,
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}

impl ProviderConfig {
    /// Whether `model` may appear as a metric label (bounded cardinality).
    pub fn labels_model(&self, model: &str) -> bool {
        self.models.iter().any(|m| m == model) || self.model_mapping.names(model)
    }
}

/// Where a provider's requests go: host, path layout and auth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub base: String,
    /// Full chat path (with query) when it is not `base + /chat/completions`.
    pub chat_path: Option<String>,
    /// Query appended to every path (Azure's `api-version`).
    pub query: Option<String>,
    /// Keep the client's path (the `generic` type without a base path).
    pub keep_path: bool,
}

/// A validated provider: config plus resolved vendor and endpoint.
#[derive(Debug, Clone)]
pub struct Provider {
    pub config: ProviderConfig,
    pub spec: &'static VendorSpec,
    pub endpoint: Endpoint,
    /// `type: vertex`: project, region and auth.
    pub vertex: Option<Arc<crate::vertex::VertexSettings>>,
}

impl Provider {
    pub fn new(config: ProviderConfig) -> Result<Provider, ConfigError> {
        let spec = vendor::vendor(&config.vendor).ok_or_else(|| {
            ConfigError::new("type", format!("unknown provider type `{}`", config.vendor))
        })?;
        for (i, t) in config.api_tokens.iter().enumerate() {
            if t.is_empty() || t.bytes().any(|b| b < 0x20 || b == 0x7f) {
                return Err(ConfigError::new(
                    format!("apiTokens[{i}]"),
                    "must be non-empty and free of control characters",
                ));
            }
        }
        let vertex = match spec.family {
            Family::Vertex => Some(Arc::new(crate::vertex::settings(&config)?)),
            _ => None,
        };
        let endpoint = resolve_endpoint(spec, &config, vertex.as_deref())?;
        config.failover.validate()?;
        Ok(Provider {
            config,
            spec,
            endpoint,
            vertex,
        })
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    pub fn family(&self) -> Family {
        self.spec.family
    }

    /// Whether this vendor offers `api` (possibly through translation).
    pub fn supports(&self, api: Api) -> bool {
        match api {
            Api::ChatCompletions => true,
            Api::Completions => self.spec.completions,
            Api::Embeddings => self.spec.embeddings,
            // Answered by the gateway from its config.
            Api::Models => true,
            Api::Messages | Api::Responses => true,
        }
    }

    /// The upstream path (with query) for an OpenAI-family request of `api`. `model` is the
    /// mapped model (Azure without a deployment in its URL puts it in the path).
    pub fn openai_path(
        &self,
        api: Api,
        model: Option<&str>,
        client_path: &str,
    ) -> Result<String, GatewayError> {
        let e = &self.endpoint;
        if e.keep_path {
            return Ok(client_path.to_string());
        }
        let api = if api == Api::Messages {
            Api::ChatCompletions
        } else {
            api
        };
        let mut path = match (&e.chat_path, api) {
            (Some(chat), Api::ChatCompletions) => chat.clone(),
            (Some(chat), _) if self.spec.name == "azure" => {
                // An Azure deployment URL names the chat path; siblings replace its last part.
                let stem = chat.split('?').next().unwrap_or(chat);
                let stem = stem.strip_suffix("/chat/completions").unwrap_or(stem);
                format!("{stem}{}", api.openai_suffix())
            }
            _ if self.spec.name == "azure" => {
                let model = model.filter(|m| is_safe_path_segment(m)).ok_or_else(|| {
                    GatewayError::invalid(
                        "invalid_model",
                        "a model name usable as an Azure deployment is required",
                    )
                    .with_param("model")
                })?;
                format!(
                    "{}/openai/deployments/{model}{}",
                    e.base,
                    api.openai_suffix()
                )
            }
            _ => {
                let suffix = api.openai_suffix();
                let mut path = String::with_capacity(e.base.len() + suffix.len());
                path.push_str(&e.base);
                path.push_str(suffix);
                path
            }
        };
        if let Some(q) = &e.query {
            if !path.contains('?') {
                path.push('?');
                path.push_str(q);
            }
        }
        Ok(path)
    }

    /// Header name and value carrying `token` upstream.
    pub fn auth_header(&self, token: &str) -> (&'static str, String) {
        match self.spec.auth {
            Auth::Bearer => {
                let mut value = String::with_capacity(7 + token.len());
                value.push_str("Bearer ");
                value.push_str(token);
                ("authorization", value)
            }
            Auth::Header(name) => (name, token.to_string()),
        }
    }

    /// The token at `index` modulo the pool (the caller passes a random number).
    pub fn token(&self, index: usize) -> Option<&str> {
        let n = self.config.api_tokens.len();
        if n == 0 {
            return None;
        }
        self.config.api_tokens.get(index % n).map(String::as_str)
    }

    /// Error for an API this vendor lacks.
    pub fn unsupported(&self, api: Api) -> GatewayError {
        GatewayError::new(
            ErrorKind::NotFound,
            "unsupported_api",
            format!(
                "provider type `{}` does not support the {} API",
                self.spec.name,
                api.name()
            ),
        )
    }
}

/// Model names that can be placed in a URL path segment as they are.
pub fn is_safe_path_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':' | b'@'))
}

fn resolve_endpoint(
    spec: &VendorSpec,
    c: &ProviderConfig,
    vertex: Option<&crate::vertex::VertexSettings>,
) -> Result<Endpoint, ConfigError> {
    let mut e = Endpoint {
        host: spec.host.to_string(),
        base: spec.base.to_string(),
        chat_path: spec.chat_path.map(str::to_string),
        query: None,
        keep_path: false,
    };
    let url_field = match spec.name {
        "azure" => Some(("azureServiceUrl", c.azure_service_url.as_deref(), true)),
        "openai" => Some(("openaiCustomUrl", c.openai_custom_url.as_deref(), false)),
        "vllm" => Some(("vllmCustomUrl", c.vllm_custom_url.as_deref(), false)),
        _ => None,
    };
    if let Some((field, url, required)) = url_field {
        match url {
            Some(url) => {
                let (host, path) = split_url(url).ok_or_else(|| {
                    ConfigError::new(field, "must be a URL like https://host/path")
                })?;
                e.host = host;
                let (p, q) = match path.split_once('?') {
                    Some((p, q)) => (p.to_string(), Some(q.to_string())),
                    None => (path.clone(), None),
                };
                e.query = q;
                if spec.name == "azure" && p.contains("/deployments/") {
                    e.chat_path = Some(p);
                    e.base = String::new();
                } else if let Some(base) = p.strip_suffix("/chat/completions") {
                    e.base = base.to_string();
                } else {
                    e.base = p.trim_end_matches('/').to_string();
                }
                if spec.name == "azure" && e.query.is_none() {
                    return Err(ConfigError::new(field, "must carry ?api-version=..."));
                }
            }
            None if required => return Err(ConfigError::new(field, "is required for this type")),
            None => {}
        }
    }
    match spec.name {
        "ollama" => {
            let host = c.ollama_server_host.as_deref().ok_or_else(|| {
                ConfigError::new("ollamaServerHost", "is required for type ollama")
            })?;
            e.host = format!("{host}:{}", c.ollama_server_port.unwrap_or(11434));
        }
        "vllm" if c.vllm_custom_url.is_none() => {
            e.host = c.vllm_server_host.clone().ok_or_else(|| {
                ConfigError::new(
                    "vllmServerHost",
                    "is required for type vllm (or vllmCustomUrl)",
                )
            })?;
        }
        "generic" => {
            e.host = c
                .generic_host
                .clone()
                .ok_or_else(|| ConfigError::new("genericHost", "is required for type generic"))?;
            e.keep_path = true;
        }
        "bedrock" => e.host = crate::bedrock::validate(c)?,
        _ => {}
    }
    if let Some(v) = vertex {
        // Validated by `vertex::settings`.
        e.host = switchyard_protocol::vertex::host(&v.region).unwrap_or_default();
    }
    if e.host.is_empty() || e.host.bytes().any(|b| b <= b' ' || b == b'/' || b == 0x7f) {
        return Err(ConfigError::new(
            "host",
            format!("no usable upstream host for type `{}`", spec.name),
        ));
    }
    Ok(e)
}

/// Upstream statuses as anchored regexes over the three digits, e.g. `4.*`, `5.*`, `429`.
#[derive(Debug, Clone)]
pub struct StatusPatterns(Vec<regex_lite::Regex>);

impl StatusPatterns {
    fn compile(patterns: &[&str]) -> Result<Self, String> {
        patterns
            .iter()
            .map(|p| {
                regex_lite::Regex::new(&format!("^(?:{p})$"))
                    .map_err(|e| format!("`{p}` is not a regex: {e}"))
            })
            .collect::<Result<_, _>>()
            .map(StatusPatterns)
    }

    /// `4.*` and `5.*`: Higress's default for both `failoverOnStatus` and `retryOnStatus`.
    fn default_errors() -> Self {
        Self::compile(&["4.*", "5.*"]).unwrap_or(StatusPatterns(Vec::new()))
    }

    /// Whether the whole status code matches one of the patterns.
    pub fn matches(&self, status: u16) -> bool {
        let s = status.to_string();
        self.0.iter().any(|r| r.is_match(&s))
    }
}

impl<'de> Deserialize<'de> for StatusPatterns {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = Vec::<String>::deserialize(d)?;
        let refs: Vec<&str> = list.iter().map(String::as_str).collect();
        Self::compile(&refs).map_err(serde::de::Error::custom)
    }
}

/// `failover`: per-token failure counting, health checks and (ours) a cooldown.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FailoverConfig {
    pub enabled: bool,
    /// Consecutive failures that take a token out of rotation.
    pub failure_threshold: u32,
    /// Successful health checks that bring it back.
    pub success_threshold: u32,
    /// Milliseconds between health-check rounds.
    pub health_check_interval: u64,
    /// Milliseconds a health check may take.
    pub health_check_timeout: u64,
    /// Model of the health-check chat request (mapped like a client's model).
    pub health_check_model: Option<String>,
    /// Upstream statuses that count as a token failure.
    pub failover_on_status: StatusPatterns,
    /// Milliseconds after which a failed token is used again without health checks (none:
    /// health checks bring tokens back).
    pub cooldown_duration: Option<u64>,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        FailoverConfig {
            enabled: false,
            failure_threshold: 3,
            success_threshold: 1,
            health_check_interval: 5_000,
            health_check_timeout: 5_000,
            health_check_model: None,
            failover_on_status: StatusPatterns::default_errors(),
            cooldown_duration: None,
        }
    }
}

impl FailoverConfig {
    /// The thresholds of the pure state machine.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            failure_threshold: self.failure_threshold,
            success_threshold: self.success_threshold,
            cooldown_ms: self.cooldown_duration,
        }
    }

    /// Whether tokens come back through health-check requests (no cooldown configured).
    pub fn health_checks(&self) -> bool {
        self.enabled && self.cooldown_duration.is_none()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        let at_least_one = [
            ("failureThreshold", u64::from(self.failure_threshold)),
            ("successThreshold", u64::from(self.success_threshold)),
            ("healthCheckInterval", self.health_check_interval),
            ("healthCheckTimeout", self.health_check_timeout),
            ("cooldownDuration", self.cooldown_duration.unwrap_or(1)),
        ];
        for (field, v) in at_least_one {
            if v == 0 {
                return Err(ConfigError::new(
                    format!("failover.{field}"),
                    "must be at least 1",
                ));
            }
        }
        match &self.health_check_model {
            Some(m) if m.is_empty() => Err(ConfigError::new(
                "failover.healthCheckModel",
                "must not be empty",
            )),
            None if self.cooldown_duration.is_none() => Err(ConfigError::new(
                "failover.healthCheckModel",
                "is required when failover is enabled without cooldownDuration",
            )),
            _ => Ok(()),
        }
    }
}

/// `retryOnFailure`: resend a failed request with another token.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RetryConfig {
    pub enabled: bool,
    /// Retries per request (beyond the first attempt).
    pub max_retries: u32,
    /// Milliseconds from the first response within which retries may start.
    pub retry_timeout: u64,
    /// Upstream statuses that are retried.
    pub retry_on_status: StatusPatterns,
}

impl RetryConfig {
    /// Whether an answer with `status` may be retried, `retries` retries into a request that
    /// started at `started_ms`: the deadline of the retry when it may.
    pub fn deadline(&self, status: u16, retries: u32, started_ms: u64, now: u64) -> Option<u64> {
        if !self.enabled || !self.retry_on_status.matches(status) || retries >= self.max_retries {
            return None;
        }
        let deadline = started_ms.saturating_add(self.retry_timeout);
        (now < deadline).then_some(deadline)
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            enabled: false,
            max_retries: 1,
            retry_timeout: 30_000,
            retry_on_status: StatusPatterns::default_errors(),
        }
    }
}

/// The whole ai-proxy config of one scope (global or one `_rules_` entry).
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Shared, so a request holds its provider without copying the config.
    pub providers: Vec<Arc<Provider>>,
    /// Index into `providers` of the default provider.
    pub active: Option<usize>,
    /// Request header naming the provider id to use (the balancer's routing header).
    pub active_provider_header: Option<String>,
    /// Bodies larger than this are answered with 413.
    pub max_request_body_bytes: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProxyConfig {
    #[serde(default)]
    provider: Option<Value>,
    #[serde(default)]
    providers: Option<Vec<Value>>,
    #[serde(default)]
    active_provider_id: Option<String>,
    #[serde(default)]
    active_provider_header: Option<String>,
    #[serde(default)]
    max_request_body_bytes: Option<u64>,
}

impl ProxyConfig {
    /// Parse one scope's JSON object.
    pub fn from_json(v: &Value) -> Result<ProxyConfig, ConfigError> {
        let raw: RawProxyConfig = from_value(v)?;
        let mut providers = Vec::new();
        if let Some(p) = &raw.provider {
            providers.push(Arc::new(
                parse_provider(p).map_err(|e| e.within("provider"))?,
            ));
        }
        for (i, p) in raw.providers.iter().flatten().enumerate() {
            let provider = parse_provider(p).map_err(|e| e.within(&format!("providers[{i}]")))?;
            if providers.iter().any(|q| q.id() == provider.id()) {
                return Err(ConfigError::new(
                    format!("providers[{i}].id"),
                    format!("duplicate provider id `{}`", provider.id()),
                ));
            }
            providers.push(Arc::new(provider));
        }
        if providers.is_empty() {
            return Err(ConfigError::new(
                "provider",
                "a `provider` or `providers` entry is required",
            ));
        }
        let active = match &raw.active_provider_id {
            Some(id) => Some(providers.iter().position(|p| p.id() == id).ok_or_else(|| {
                ConfigError::new("activeProviderId", format!("no provider has id `{id}`"))
            })?),
            None if raw.provider.is_some() || providers.len() == 1 => Some(0),
            None => None,
        };
        if let Some(h) = &raw.active_provider_header {
            if h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(ConfigError::new(
                    "activeProviderHeader",
                    "must be a header name",
                ));
            }
        }
        Ok(ProxyConfig {
            providers,
            active,
            active_provider_header: raw.active_provider_header.map(|h| h.to_ascii_lowercase()),
            max_request_body_bytes: raw.max_request_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
        })
    }

    /// The models this scope serves, for `GET /v1/models`: each provider's `models`, then the
    /// exact keys of its `modelMapping` (prefix, regex and `*` patterns name no model), in
    /// config order, each once; owned by the provider's id (its type when it has none).
    pub fn listed_models(&self) -> Vec<ListedModel<'_>> {
        let mut out = Vec::new();
        for p in &self.providers {
            let owner = if p.config.id.is_empty() {
                p.config.vendor.as_str()
            } else {
                p.config.id.as_str()
            };
            let names = p
                .config
                .models
                .iter()
                .map(String::as_str)
                .chain(p.config.model_mapping.exact_names());
            for id in names {
                crate::models::push_unique(&mut out, id, owner);
            }
        }
        out
    }

    /// The provider for a request: the one whose id equals the routing header's value, else
    /// the active one.
    pub fn provider_for(&self, header_value: Option<&str>) -> Option<&Arc<Provider>> {
        if let Some(v) = header_value {
            if let Some(p) = self.providers.iter().find(|p| p.id() == v) {
                return Some(p);
            }
        }
        self.active.and_then(|i| self.providers.get(i))
    }
}

fn parse_provider(v: &Value) -> Result<Provider, ConfigError> {
    let config: ProviderConfig = from_value(v)?;
    Provider::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{RequestKeys, RuleSet};
    use serde_json::json;

    fn provider(v: Value) -> Provider {
        parse_provider(&v).unwrap()
    }

    #[test]
    fn higress_single_provider_example() {
        let cfg = ProxyConfig::from_json(&json!({
            "provider": {"type": "qwen", "apiTokens": ["sk-1"], "modelMapping": {"gpt-3": "qwen-turbo", "*": "qwen-max"}, "unknownField": true}
        }))
        .unwrap();
        let p = cfg.provider_for(None).unwrap();
        assert_eq!(p.endpoint.host, "dashscope.aliyuncs.com");
        assert_eq!(
            p.openai_path(Api::ChatCompletions, None, "/v1/chat/completions")
                .unwrap(),
            "/compatible-mode/v1/chat/completions"
        );
        assert_eq!(p.config.model_mapping.map("gpt-3"), "qwen-turbo");
        assert_eq!(
            p.auth_header("sk-1"),
            ("authorization", "Bearer sk-1".to_string())
        );
        assert_eq!(p.config.timeout, DEFAULT_TIMEOUT_MS);
    }

    #[test]
    fn header_rewrite_per_vendor() {
        let cases = [
            (
                json!({"type": "openai"}),
                "api.openai.com",
                "/v1/chat/completions",
                "authorization",
            ),
            (
                json!({"type": "deepseek"}),
                "api.deepseek.com",
                "/chat/completions",
                "authorization",
            ),
            (
                json!({"type": "moonshot"}),
                "api.moonshot.cn",
                "/v1/chat/completions",
                "authorization",
            ),
            (
                json!({"type": "zhipuai"}),
                "open.bigmodel.cn",
                "/api/paas/v4/chat/completions",
                "authorization",
            ),
            (
                json!({"type": "minimax"}),
                "api.minimax.chat",
                "/v1/text/chatcompletion_v2",
                "authorization",
            ),
            (
                json!({"type": "groq"}),
                "api.groq.com",
                "/openai/v1/chat/completions",
                "authorization",
            ),
            (
                json!({"type": "openrouter"}),
                "openrouter.ai",
                "/api/v1/chat/completions",
                "authorization",
            ),
            (
                json!({"type": "fireworks"}),
                "api.fireworks.ai",
                "/inference/v1/chat/completions",
                "authorization",
            ),
            (
                json!({"type": "ollama", "ollamaServerHost": "127.0.0.1", "ollamaServerPort": 8000}),
                "127.0.0.1:8000",
                "/v1/chat/completions",
                "authorization",
            ),
            (
                json!({"type": "vllm", "vllmServerHost": "vllm:8000"}),
                "vllm:8000",
                "/v1/chat/completions",
                "authorization",
            ),
            (
                json!({"type": "generic", "genericHost": "llm.local"}),
                "llm.local",
                "/custom/v1/chat/completions",
                "authorization",
            ),
            (
                json!({"type": "azure", "azureServiceUrl": "https://r.openai.azure.com/openai/deployments/gpt/chat/completions?api-version=2024-06-01"}),
                "r.openai.azure.com",
                "/openai/deployments/gpt/chat/completions?api-version=2024-06-01",
                "api-key",
            ),
            (
                json!({"type": "claude"}),
                "api.anthropic.com",
                "/v1/chat/completions",
                "x-api-key",
            ),
        ];
        for (cfg, host, path, auth) in cases {
            let p = provider(cfg.clone());
            assert_eq!(p.endpoint.host, host, "{cfg}");
            assert_eq!(
                p.openai_path(
                    Api::ChatCompletions,
                    Some("m"),
                    "/custom/v1/chat/completions"
                )
                .unwrap(),
                path,
                "{cfg}"
            );
            assert_eq!(p.auth_header("t").0, auth, "{cfg}");
        }
    }

    #[test]
    fn azure_paths() {
        let p = provider(
            json!({"type": "azure", "azureServiceUrl": "https://r.openai.azure.com/openai/deployments/gpt/chat/completions?api-version=v1"}),
        );
        assert_eq!(
            p.openai_path(Api::Embeddings, None, "").unwrap(),
            "/openai/deployments/gpt/embeddings?api-version=v1"
        );
        let p = provider(
            json!({"type": "azure", "azureServiceUrl": "https://r.openai.azure.com?api-version=v2"}),
        );
        assert_eq!(
            p.openai_path(Api::ChatCompletions, Some("gpt-4o"), "")
                .unwrap(),
            "/openai/deployments/gpt-4o/chat/completions?api-version=v2"
        );
        assert!(p
            .openai_path(Api::ChatCompletions, Some("../x"), "")
            .is_err());
        let err = parse_provider(&json!({"type": "azure"})).unwrap_err();
        assert_eq!(err.field, "azureServiceUrl");
    }

    #[test]
    fn wrong_types_name_the_field() {
        let err = ProxyConfig::from_json(
            &json!({"providers": [{"id": "a", "type": "openai", "apiTokens": ["x", 5]}]}),
        )
        .unwrap_err();
        assert_eq!(err.field, "providers[0].apiTokens[1]", "{err}");
        let err = ProxyConfig::from_json(&json!({"provider": {"type": "nope"}})).unwrap_err();
        assert_eq!(err.field, "provider.type");
        let err = ProxyConfig::from_json(&json!({"provider": {"type": "openai", "timeout": "x"}}))
            .unwrap_err();
        assert_eq!(err.field, "provider.timeout");
        let err = ProxyConfig::from_json(
            &json!({"providers": [{"id": "a", "type": "openai"}], "activeProviderId": "b"}),
        )
        .unwrap_err();
        assert_eq!(err.field, "activeProviderId");
        let err = ProxyConfig::from_json(
            &json!({"providers": [{"id": "a", "type": "openai"}, {"id": "a", "type": "qwen"}]}),
        )
        .unwrap_err();
        assert_eq!(err.field, "providers[1].id");
    }

    #[test]
    fn follows_the_routing_header_and_rules_override_active_provider() {
        let cfg = json!({
            "providers": [
                {"id": "qianwen", "type": "qwen", "apiTokens": ["a"]},
                {"id": "deepseek", "type": "deepseek", "apiTokens": ["b"]}
            ],
            "activeProviderId": "deepseek",
            "activeProviderHeader": "X-Selected-Provider",
            "_rules_": [{"_match_route_": ["qwen-route"], "activeProviderId": "qianwen"}]
        });
        let set = RuleSet::parse(&cfg, ProxyConfig::from_json).unwrap();
        let global = set.select(RequestKeys::default()).unwrap();
        assert_eq!(
            global.active_provider_header.as_deref(),
            Some("x-selected-provider")
        );
        assert_eq!(
            global.provider_for(Some("qianwen")).unwrap().id(),
            "qianwen"
        );
        assert_eq!(
            global.provider_for(Some("unknown")).unwrap().id(),
            "deepseek"
        );
        assert_eq!(global.provider_for(None).unwrap().id(), "deepseek");
        let rule = set
            .select(RequestKeys {
                route: Some("qwen-route"),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(rule.provider_for(None).unwrap().id(), "qianwen");
    }

    #[test]
    fn tokens_rotate_by_index() {
        let p = provider(json!({"type": "openai", "apiTokens": ["a", "b", "c"]}));
        let picked: Vec<_> = (0..6).map(|i| p.token(i).unwrap()).collect();
        assert_eq!(picked, ["a", "b", "c", "a", "b", "c"]);
        assert!(provider(json!({"type": "openai"})).token(3).is_none());
        assert!(parse_provider(&json!({"type": "openai", "apiTokens": ["a\nb"]})).is_err());
    }

    #[test]
    fn failover_and_retry_config() {
        let p = provider(json!({"type": "openai", "apiTokens": ["a", "b"]}));
        assert!(!p.config.failover.enabled && !p.config.retry_on_failure.enabled);
        let p = provider(json!({"type": "openai", "apiTokens": ["a", "b"],
            "failover": {"enabled": true, "healthCheckModel": "gpt-4o-mini"},
            "retryOnFailure": {"enabled": true}}));
        let f = &p.config.failover;
        assert_eq!(
            f.thresholds(),
            Thresholds {
                failure_threshold: 3,
                success_threshold: 1,
                cooldown_ms: None
            }
        );
        assert_eq!(
            (f.health_check_interval, f.health_check_timeout),
            (5_000, 5_000)
        );
        assert!(f.health_checks());
        for (status, hit) in [
            (400, true),
            (429, true),
            (503, true),
            (200, false),
            (204, false),
            (302, false),
        ] {
            assert_eq!(f.failover_on_status.matches(status), hit, "{status}");
            assert_eq!(
                p.config.retry_on_failure.retry_on_status.matches(status),
                hit,
                "{status}"
            );
        }
        let r = &p.config.retry_on_failure;
        assert_eq!((r.max_retries, r.retry_timeout), (1, 30_000));
        let p = provider(json!({"type": "openai", "apiTokens": ["a"],
            "failover": {"enabled": true, "failureThreshold": 1, "successThreshold": 2, "cooldownDuration": 800,
                         "failoverOnStatus": ["429", "50[23]"]},
            "retryOnFailure": {"enabled": true, "maxRetries": 2, "retryTimeout": 100, "retryOnStatus": ["5.*"]}}));
        let f = &p.config.failover;
        assert_eq!(f.thresholds().cooldown_ms, Some(800));
        assert!(!f.health_checks(), "a cooldown replaces health checks");
        assert!(f.failover_on_status.matches(502) && !f.failover_on_status.matches(500));
        assert!(!f.failover_on_status.matches(4290));
        assert!(!p.config.retry_on_failure.retry_on_status.matches(429));
    }

    #[test]
    fn bad_failover_config_names_the_field() {
        let cases = [
            (
                json!({"failover": {"enabled": "yes"}}),
                "provider.failover.enabled",
            ),
            (
                json!({"failover": {"failureThreshold": -1}}),
                "provider.failover.failureThreshold",
            ),
            (
                json!({"failover": {"failoverOnStatus": "5.*"}}),
                "provider.failover.failoverOnStatus",
            ),
            (
                json!({"failover": {"failoverOnStatus": ["5(.*"]}}),
                "provider.failover.failoverOnStatus",
            ),
            (
                json!({"failover": {"enabled": true}}),
                "provider.failover.healthCheckModel",
            ),
            (
                json!({"failover": {"enabled": true, "healthCheckModel": "m", "failureThreshold": 0}}),
                "provider.failover.failureThreshold",
            ),
            (
                json!({"failover": {"enabled": true, "cooldownDuration": 0}}),
                "provider.failover.cooldownDuration",
            ),
            (
                json!({"retryOnFailure": {"maxRetries": "2"}}),
                "provider.retryOnFailure.maxRetries",
            ),
            (
                json!({"retryOnFailure": {"retryOnStatus": [5]}}),
                "provider.retryOnFailure.retryOnStatus[0]",
            ),
        ];
        for (extra, field) in cases {
            let mut p = json!({"type": "openai", "apiTokens": ["a"]});
            for (k, v) in extra.as_object().unwrap() {
                p[k] = v.clone();
            }
            let err = ProxyConfig::from_json(&json!({ "provider": p })).unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
    }
}
