//! Token failover, retries and health checks, shared by every worker VM.
//!
//! The per-token state (`switchyard_policy::failover::PoolState`) lives in Proxy-Wasm shared
//! data under a key derived from the provider id and its token list, so all worker VMs see
//! the same failures, and a config reload that keeps the list keeps the state. Every change is
//! a compare-and-swap (`host::shared::update`). Requests pick among available tokens; their
//! response status counts as a success or failure of the token they used. A retryable status
//! on a request whose response has not reached the client yet is retried with another token
//! through `dispatch_http_call` to the same cluster, and the client gets the retry's answer.
//! On the root tick, the VM holding a pool's lease (also in shared data) sends health checks
//! (a minimal chat request, translated for the vendor) with each down token.

use crate::translate::{self, Ids, Translation};
use crate::{Plan, ProxyRequest};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::Context;
use proxy_wasm::types::{Action, MapType};
use std::collections::HashMap;
use std::time::Duration;
use switchyard_policy::failover::{
    pool_fingerprint, retry_after_ms, token_tail, Change, Lease, PoolState, Thresholds,
};
use switchyard_policy::proxy::{Protocol, Provider, ProxyConfig};
use switchyard_policy::rules::RuleSet;
use switchyard_policy::stats;
use switchyard_policy::vendor::Api;
use switchyard_protocol::openai_edit::RequestEdits;
use switchyard_wasm_host as host;

const KEY_PREFIX: &str = "switchyard.ai-proxy.failover.";
/// Header marking the gateway's own health-check requests (visible to vendors and mocks).
pub const HEALTH_CHECK_HEADER: &str = "x-switchyard-health-check";
/// Request headers not copied into a retry (hop-by-hop, recomputed or router-only).
const NOT_RETRIED: [&str; 7] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "upgrade",
    "expect",
];

/// Where one provider's token state lives and how it is judged.
struct Pool<'a> {
    provider: &'a Provider,
    key: String,
    fingerprint: u64,
    thresholds: Thresholds,
}

impl<'a> Pool<'a> {
    /// The pool of a provider that keeps shared token state (failover or retries on).
    fn of(provider: &'a Provider) -> Option<Pool<'a>> {
        let c = &provider.config;
        if !(c.failover.enabled || c.retry_on_failure.enabled) || c.api_tokens.is_empty() {
            return None;
        }
        let fingerprint = pool_fingerprint(provider.id(), &c.api_tokens);
        let mut thresholds = c.failover.thresholds();
        if !c.failover.enabled {
            // Retries alone: only `retry-after` rests take tokens out, failures never do.
            thresholds.failure_threshold = u32::MAX;
        }
        Some(Pool {
            provider,
            key: format!("{KEY_PREFIX}{fingerprint:016x}"),
            fingerprint,
            thresholds,
        })
    }

    /// The provider's id, or its type when it has none (a single `provider`).
    fn name(&self) -> &str {
        match self.provider.id() {
            "" => self.provider.spec.name,
            id => id,
        }
    }

    fn tokens(&self) -> usize {
        self.provider.config.api_tokens.len()
    }

    fn load(&self) -> PoolState {
        let bytes = host::shared::get(&self.key);
        PoolState::load(bytes.as_deref(), self.fingerprint, self.tokens())
    }

    /// Apply `f` to the shared state with compare-and-swap; skips the write when nothing
    /// changes (the common case: a success of a healthy token).
    fn update<R>(&self, mut f: impl FnMut(&mut PoolState) -> R) -> Option<R> {
        let current = host::shared::get(&self.key);
        let mut state = PoolState::load(current.as_deref(), self.fingerprint, self.tokens());
        let r = f(&mut state);
        if current.as_deref() == Some(state.encode().as_slice()) {
            return Some(r);
        }
        let mut out = None;
        let landed = host::shared::update(&self.key, |cur| {
            let mut s = PoolState::load(cur, self.fingerprint, self.tokens());
            out = Some(f(&mut s));
            s.encode()
        });
        if landed {
            out
        } else {
            None
        }
    }

    /// Count a response of token `index` with `status` (and its `retry-after`).
    fn record(&self, index: usize, status: u16, retry_after: Option<&str>, now: u64) {
        let failover = &self.provider.config.failover;
        let failed = failover.enabled && failover.failover_on_status.matches(status);
        let success = (200..300).contains(&status);
        let rest = (status == 429)
            .then(|| retry_after.and_then(retry_after_ms))
            .flatten();
        if !failed && !success && rest.is_none() {
            return;
        }
        let th = self.thresholds;
        let change = self.update(|s| {
            if let Some(ms) = rest {
                s.record_rest(index, now, now.saturating_add(ms));
            }
            if failed {
                s.record_failure(index, now, &th)
            } else if success {
                s.record_success(index, now, &th)
            } else {
                Change::None
            }
        });
        if let Some(ms) = rest {
            log::info!(
                "ai-proxy: provider `{}` token {} rests {ms} ms (429 retry-after)",
                self.name(),
                self.tail(index)
            );
        }
        self.log_change(index, change.unwrap_or(Change::None), status);
    }

    fn log_change(&self, index: usize, change: Change, status: u16) {
        let id = self.name();
        let tail = self.tail(index);
        let state = match change {
            Change::WentDown => Some("unavailable"),
            Change::CameBack => Some("available"),
            Change::None => None,
        };
        if let Some(state) = state {
            host::metrics::count(
                stats::TOKEN_POOL_CHANGES,
                &[(stats::PROVIDER, id), (stats::STATE, state)],
                1,
            );
        }
        match change {
            Change::WentDown => log::warn!(
                "ai-proxy: provider `{id}` token {tail} taken out of rotation (status {status})"
            ),
            Change::CameBack => {
                log::info!("ai-proxy: provider `{id}` token {tail} back in rotation")
            }
            Change::None => {}
        }
    }

    fn tail(&self, index: usize) -> String {
        self.provider
            .config
            .api_tokens
            .get(index)
            .map_or_else(|| "?".into(), |t| token_tail(t))
    }
}

/// The token index for a new request: random among the available ones, or the least recently
/// failed one when none is (logged); plain random without failover or retries.
pub fn choose_token(provider: &Provider, rand: u64) -> Option<usize> {
    let n = provider.config.api_tokens.len();
    if n == 0 {
        return None;
    }
    let Some(pool) = Pool::of(provider) else {
        return Some((rand % n as u64) as usize);
    };
    let choice = pool.load().choose(host::now_ms(), &pool.thresholds, rand)?;
    if choice.fallback {
        log::warn!(
            "ai-proxy: provider `{}` has no available token; using the least recently failed one, {}",
            pool.name(),
            pool.tail(choice.index)
        );
    }
    Some(choice.index)
}

/// One request's attempts: the token in use, the tokens tried, and what a retry resends.
#[derive(Default)]
pub struct Attempts {
    /// Index of the token the current attempt uses.
    pub token: Option<usize>,
    tried: Vec<usize>,
    retries: u32,
    started_ms: u64,
    /// Upstream request headers after the header phase's rewrite (retries on only).
    headers: Option<Vec<(String, String)>>,
    /// Upstream request body after translation.
    body: Option<Vec<u8>>,
    /// Callout id of the retry in flight.
    pending: Option<u32>,
    /// The client was answered with a retry's response.
    pub replied: bool,
}

impl Attempts {
    /// Remember the token the first attempt uses and when the request started.
    pub fn start(&mut self, token: Option<usize>, now_ms: u64) {
        self.token = token;
        self.tried = token.into_iter().collect();
        self.started_ms = now_ms;
    }

    /// Whether the upstream body must be kept for retries.
    pub fn wants_body(&self) -> bool {
        self.headers.is_some()
    }

    /// Keep the upstream body (as sent) for retries.
    pub fn keep_body(&mut self, body: &[u8]) {
        if self.wants_body() {
            self.body = Some(body.to_vec());
        }
    }

    /// Whether `token` is the id of this request's retry callout.
    pub fn owns(&self, token: u32) -> bool {
        self.pending == Some(token)
    }
}

/// Header phase, after the rewrite: keep the upstream headers when retries are on.
pub fn capture_request(req: &mut ProxyRequest) {
    let retry = req
        .plan
        .as_ref()
        .is_some_and(|p| p.provider.config.retry_on_failure.enabled);
    if !retry {
        return;
    }
    let headers = hostcalls::get_map(MapType::HttpRequestHeaders).unwrap_or_default();
    req.failover.headers = Some(headers);
}

/// Response headers: count the status for the token used, and retry with another token when
/// the status is retryable. `Some(action)` ends the header phase here.
pub fn on_response_headers(req: &mut ProxyRequest) -> Option<Action> {
    if req.failover.replied {
        return Some(Action::Continue);
    }
    // Providers without failover or retries: no host calls here.
    if !req.plan.as_ref().is_some_and(|p| {
        let c = &p.provider.config;
        (c.failover.enabled || c.retry_on_failure.enabled) && !c.api_tokens.is_empty()
    }) {
        return None;
    }
    let status = hostcalls::get_map_value(MapType::HttpResponseHeaders, ":status")
        .ok()
        .flatten()
        .and_then(|s| s.parse::<u16>().ok())?;
    let retry_after = hostcalls::get_map_value(MapType::HttpResponseHeaders, "retry-after")
        .ok()
        .flatten();
    let plan = req.plan.as_ref()?;
    let pool = Pool::of(&plan.provider)?;
    let index = req.failover.token?;
    let now = host::now_ms();
    pool.record(index, status, retry_after.as_deref(), now);
    remember_cluster(&pool);
    if retry(req, status, now) {
        // Held until the retry answers; its response replaces this one.
        return Some(Action::Pause);
    }
    None
}

/// Start a retry when `status` calls for one and the budget allows. Returns whether one is
/// in flight.
fn retry(req: &mut ProxyRequest, status: u16, now: u64) -> bool {
    let Some(plan) = req.plan.as_ref() else {
        return false;
    };
    let cfg = &plan.provider.config.retry_on_failure;
    let a = &req.failover;
    if !cfg.enabled || !cfg.retry_on_status.matches(status) || a.retries >= cfg.max_retries {
        return false;
    }
    let (Some(headers), Some(pool)) = (a.headers.as_ref(), Pool::of(&plan.provider)) else {
        return false;
    };
    let deadline = a.started_ms.saturating_add(cfg.retry_timeout);
    if now >= deadline {
        return false;
    }
    let Some(cluster) = host::property_string(&["xds", "cluster_name"]) else {
        return false;
    };
    let rand = req.rng.borrow_mut().next_u64();
    let state = pool.load();
    let Some(next) = state.choose_retry(now, &pool.thresholds, rand, &a.tried) else {
        log::info!(
            "ai-proxy: provider `{}`: status {status}, no token available to retry with",
            pool.name()
        );
        return false;
    };
    let Some(token) = plan.provider.config.api_tokens.get(next) else {
        return false;
    };
    let (auth_name, auth_value) = plan.provider.auth_header(token);
    let body = a.body.as_deref().unwrap_or_default();
    let length = body.len().to_string();
    let out = retry_headers(headers, auth_name, &auth_value, &length);
    let timeout = deadline
        .saturating_sub(now)
        .min(plan.provider.config.timeout)
        .max(1);
    let body = (!body.is_empty()).then_some(body);
    match req.dispatch_http_call(&cluster, out, body, vec![], Duration::from_millis(timeout)) {
        Ok(id) => {
            log::info!(
                "ai-proxy: provider `{}`: status {status} with token {}, retrying with {}",
                pool.name(),
                pool.tail(req.failover.token.unwrap_or(usize::MAX)),
                pool.tail(next)
            );
            let a = &mut req.failover;
            a.pending = Some(id);
            a.retries += 1;
            a.token = Some(next);
            a.tried.push(next);
            true
        }
        Err(e) => {
            log::warn!("ai-proxy: retry callout to `{cluster}` failed: {e:?}");
            false
        }
    }
}

/// A retry answered: count it, retry again if allowed, else answer the client with it.
pub fn on_retry_response(req: &mut ProxyRequest, body_size: usize) {
    req.failover.pending = None;
    let header = |name: &str| {
        hostcalls::get_map_value(MapType::HttpCallResponseHeaders, name)
            .ok()
            .flatten()
    };
    // No status: the callout failed (timeout, reset); Envoy would have said 503.
    let status = header(":status")
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(503);
    let retry_after = header("retry-after");
    let content_type = header("content-type");
    let body = hostcalls::get_buffer(
        proxy_wasm::types::BufferType::HttpCallResponseBody,
        0,
        body_size,
    )
    .ok()
    .flatten()
    .unwrap_or_default();
    let now = host::now_ms();
    if let (Some(plan), Some(index)) = (req.plan.as_ref(), req.failover.token) {
        if let Some(pool) = Pool::of(&plan.provider) {
            pool.record(index, status, retry_after.as_deref(), now);
        }
    }
    if retry(req, status, now) {
        return;
    }
    let Some(plan) = req.plan.as_ref() else {
        return;
    };
    let (out, ct) = client_body(plan, status, content_type.as_deref(), &body);
    if let Some(obs) = req.obs.as_mut() {
        obs.status = Some(status);
        obs.usage = switchyard_protocol::usage::usage_from_body(&out);
        obs.complete(None);
    }
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(ct) = ct.as_deref() {
        headers.push(("content-type", ct));
    }
    if let Some(ra) = retry_after.as_deref() {
        headers.push(("retry-after", ra));
    }
    headers.push(("x-switchyard-retries", retry_count(req.failover.retries)));
    req.failover.replied = true;
    if let Err(e) = hostcalls::send_http_response(u32::from(status), headers, Some(&out)) {
        log::warn!("ai-proxy: could not answer with the retry's response: {e:?}");
        let _ = hostcalls::resume_http_response();
    }
}

/// The retry's request headers: the first attempt's upstream headers with the new
/// credential, without hop-by-hop, length and router-only headers.
fn retry_headers<'a>(
    first: &'a [(String, String)],
    auth_name: &'a str,
    auth_value: &'a str,
    length: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&str, &str)> = first
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .filter(|(k, _)| {
            !NOT_RETRIED.contains(k)
                && !k.eq_ignore_ascii_case(auth_name)
                && !k.starts_with("x-envoy-")
                && (!k.starts_with(':') || matches!(*k, ":method" | ":path" | ":authority"))
        })
        .collect();
    out.push((auth_name, auth_value));
    if length != "0" {
        out.push(("content-length", length));
    }
    out
}

fn retry_count(n: u32) -> &'static str {
    match n {
        0 => "0",
        1 => "1",
        2 => "2",
        3 => "3",
        _ => "4+",
    }
}

/// The client-facing body (and content type) of a retry's whole response, converted as the
/// streaming path would have converted it.
fn client_body(
    plan: &Plan,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> (Vec<u8>, Option<String>) {
    let passthrough = (body.to_vec(), content_type.map(str::to_string));
    if plan.provider.config.protocol == Protocol::Original {
        return passthrough;
    }
    let t = plan.translation;
    if status >= 400 {
        return match t.error_body(status, body) {
            Some(b) => (b, Some("application/json".into())),
            None => passthrough,
        };
    }
    let model = plan.upstream_model.clone().unwrap_or_default();
    let ids = Ids {
        model: &model,
        id: &plan.id,
        created: plan.created,
    };
    let is_sse = content_type.is_some_and(|c| c.starts_with("text/event-stream"));
    let stream_framed =
        is_sse || matches!(t, Translation::ChatToGemini | Translation::MessagesToGemini);
    if plan.streaming && stream_framed && matches!(plan.api, Api::ChatCompletions | Api::Messages) {
        return match t.stream_converter(&ids, plan.client_wants_usage) {
            Some(mut conv) => {
                let mut out = conv.push(body);
                out.extend(conv.finish());
                (out, Some("text/event-stream".into()))
            }
            None => passthrough,
        };
    }
    if !t.converts_plain_response() {
        return passthrough;
    }
    let out = match t.response_body(body, &ids, plan.want_base64) {
        Ok(out) => out,
        Err(e) if t.anthropic_client() => {
            switchyard_protocol::anthropic::openai_error_to_anthropic(e.status(), &e.body())
        }
        Err(e) => e.body(),
    };
    (out, Some("application/json".into()))
}

/// Publish the provider's cluster (seen by requests) for the VM that runs health checks.
fn remember_cluster(pool: &Pool<'_>) {
    if !pool.provider.config.failover.health_checks() {
        return;
    }
    let Some(cluster) = host::property_string(&["xds", "cluster_name"]) else {
        return;
    };
    let key = format!("{}.cluster", pool.key);
    if host::shared::get(&key).as_deref() != Some(cluster.as_bytes()) {
        host::shared::update(&key, |_| cluster.clone().into_bytes());
    }
}

/// A health check in flight.
struct Check {
    provider: std::sync::Arc<Provider>,
    key: String,
    index: usize,
}

/// The root context's health-check scheduler (one per VM and plugin config).
pub struct HealthChecks {
    /// This root context's lease identity.
    me: u64,
    /// When each pool was last checked by this VM.
    last_round: HashMap<String, u64>,
    pending: HashMap<u32, Check>,
}

impl HealthChecks {
    pub fn new(me: u64) -> Self {
        HealthChecks {
            me,
            last_round: HashMap::new(),
            pending: HashMap::new(),
        }
    }

    /// The tick period the config needs: the shortest health-check interval, if any.
    pub fn tick_period(rules: &RuleSet<ProxyConfig>) -> Option<Duration> {
        rules
            .all()
            .flat_map(|c| c.providers.iter())
            .filter(|p| p.config.failover.health_checks() && !p.config.api_tokens.is_empty())
            .map(|p| p.config.failover.health_check_interval)
            .min()
            .map(|ms| Duration::from_millis(ms.max(100)))
    }

    /// Forget schedules (a reload); checks in flight still report into the shared state.
    pub fn reconfigure(&mut self) {
        self.last_round.clear();
    }

    /// One tick: for each pool due a round whose lease this VM holds, check its down tokens.
    pub fn tick(&mut self, root: &dyn Context, rules: &RuleSet<ProxyConfig>) {
        let now = host::now_ms();
        let mut seen = Vec::new();
        for provider in rules.all().flat_map(|c| c.providers.iter()) {
            let failover = &provider.config.failover;
            if !failover.health_checks() {
                continue;
            }
            let Some(pool) = Pool::of(provider) else {
                continue;
            };
            if seen.contains(&pool.key) {
                continue;
            }
            seen.push(pool.key.clone());
            let interval = failover.health_check_interval;
            let last = self.last_round.get(&pool.key).copied().unwrap_or(0);
            if now < last.saturating_add(interval) {
                continue;
            }
            let mut mine = false;
            let ttl = interval.saturating_mul(3);
            host::shared::update(&format!("{}.lease", pool.key), |cur| {
                let (bytes, held) = Lease::claim(cur, self.me, now, ttl);
                mine = held;
                bytes
            });
            if !mine {
                continue;
            }
            self.last_round.insert(pool.key.clone(), now);
            let due = pool.load().due_checks(now, &pool.thresholds);
            if due.is_empty() {
                continue;
            }
            let Some(cluster) = host::shared::get(&format!("{}.cluster", pool.key))
                .and_then(|b| String::from_utf8(b).ok())
            else {
                log::debug!(
                    "ai-proxy: provider `{}`: no request seen yet, health checks wait",
                    pool.name()
                );
                continue;
            };
            for index in due {
                let busy = self
                    .pending
                    .values()
                    .any(|c| c.index == index && c.key == pool.key);
                if busy {
                    continue;
                }
                match send_check(root, provider, index, &cluster) {
                    Ok(id) => {
                        self.pending.insert(
                            id,
                            Check {
                                provider: provider.clone(),
                                key: pool.key.clone(),
                                index,
                            },
                        );
                    }
                    Err(e) => log::warn!(
                        "ai-proxy: provider `{}`: health check of token {} not sent: {e}",
                        pool.name(),
                        pool.tail(index)
                    ),
                }
            }
        }
    }

    /// A health check answered (`status` 0: no answer). Returns whether the callout was one.
    pub fn on_response(&mut self, token: u32, status: u16) -> bool {
        let Some(check) = self.pending.remove(&token) else {
            return false;
        };
        let Some(pool) = Pool::of(&check.provider) else {
            return true;
        };
        let ok = (200..300).contains(&status);
        let now = host::now_ms();
        let th = pool.thresholds;
        let change = pool.update(|s| s.record_check(check.index, ok, now, &th));
        if !ok {
            log::info!(
                "ai-proxy: provider `{}`: health check of token {} failed (status {status})",
                pool.name(),
                pool.tail(check.index)
            );
        }
        pool.log_change(check.index, change.unwrap_or(Change::None), status);
        true
    }
}

/// Send one health check: a minimal chat request through the vendor's own conversion.
fn send_check(
    root: &dyn Context,
    provider: &Provider,
    index: usize,
    cluster: &str,
) -> Result<u32, String> {
    let failover = &provider.config.failover;
    let client_model = failover.health_check_model.as_deref().unwrap_or_default();
    let model = provider.config.model_mapping.map(client_model);
    let token = provider
        .config
        .api_tokens
        .get(index)
        .ok_or("no such token")?;
    let api = Api::ChatCompletions;
    let translation = Translation::choose(provider, api).map_err(|e| e.to_string())?;
    let body = serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "ping"}],
        "max_tokens": 1,
    })
    .to_string()
    .into_bytes();
    let edits = RequestEdits::default();
    let body = translation
        .request_body(provider, &body, &edits, &model)
        .map_err(|e| e.to_string())?
        .unwrap_or(body);
    let client_path = "/v1/chat/completions";
    let path = if translate::translated(provider) {
        translation
            .upstream_path(provider, api, Some(&model), false, client_path)
            .map_err(|e| e.to_string())?
    } else {
        provider
            .openai_path(api, Some(&model), client_path)
            .map_err(|e| e.to_string())?
    };
    let (auth_name, auth_value) = provider.auth_header(token);
    let length = body.len().to_string();
    let mut headers = vec![
        (":method", "POST"),
        (":path", path.as_str()),
        (":authority", provider.endpoint.host.as_str()),
        ("content-type", "application/json"),
        ("content-length", length.as_str()),
        (auth_name, auth_value.as_str()),
        (HEALTH_CHECK_HEADER, "1"),
    ];
    if translation == Translation::ChatToClaude {
        headers.push(("anthropic-version", translate::claude_version(provider)));
    }
    root.dispatch_http_call(
        cluster,
        headers,
        Some(&body),
        vec![],
        Duration::from_millis(failover.health_check_timeout),
    )
    .map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_headers_swap_the_credential_and_drop_hop_by_hop() {
        let first: Vec<(String, String)> = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/v1/chat/completions"),
            (":authority", "api.deepseek.com"),
            ("authorization", "Bearer old"),
            ("content-type", "application/json"),
            ("content-length", "99"),
            ("transfer-encoding", "chunked"),
            ("x-envoy-upstream-rq-timeout-ms", "120000"),
            ("x-selected-provider", "deepseek"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let out = retry_headers(&first, "authorization", "Bearer new", "12");
        assert_eq!(
            out,
            vec![
                (":method", "POST"),
                (":path", "/v1/chat/completions"),
                (":authority", "api.deepseek.com"),
                ("content-type", "application/json"),
                ("x-selected-provider", "deepseek"),
                ("authorization", "Bearer new"),
                ("content-length", "12"),
            ]
        );
        let no_body = retry_headers(&first, "x-api-key", "k", "0");
        assert!(!no_body.iter().any(|(k, _)| *k == "content-length"));
        assert_eq!(no_body.last(), Some(&("x-api-key", "k")));
    }
}
