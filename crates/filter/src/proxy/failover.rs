//! Token failover, retries and health checks, shared by every worker.
//!
//! The per-token state (`switchyard_policy::failover::PoolState`) lives in the host's shared
//! state under a key derived from the provider id and its token list, so all workers see
//! the same failures, and a config reload that keeps the list keeps the state. Every change is
//! atomic (`Host::shared_update`: a compare-and-swap over Proxy-Wasm shared data, a change in
//! place under the key's lock in the native module). Requests pick among available tokens; their
//! response status counts as a success or failure of the token they used. A retryable status
//! on a request whose response has not reached the client yet is retried with another token
//! through an HTTP callout to the same cluster, and the client gets the retry's answer.
//! On the root tick, the instance holding a pool's lease (also in shared data) sends health checks
//! (a minimal chat request, translated for the vendor) with each down token.

use super::ProxyRequest;
use crate::host::{Action, Callout, CalloutResponse, Host, HttpHost};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use switchyard_policy::failover::{
    pool_fingerprint, token_tail, Change, Lease, Outcome, PoolState, Thresholds,
};
use switchyard_policy::proxy::{Provider, ProxyConfig};
use switchyard_policy::rules::RuleSet;
use switchyard_policy::stats;
use switchyard_policy::translation::{self, retry_count, retry_headers};
use switchyard_policy::vendor::Api;
use switchyard_protocol::responses::ResponsesUsageTap;
use switchyard_protocol::StreamConverter;

const KEY_PREFIX: &str = "switchyard.ai-proxy.failover.";
/// Header marking the gateway's own health-check requests (visible to vendors and mocks).
pub const HEALTH_CHECK_HEADER: &str = "x-switchyard-health-check";

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

    fn fresh(&self) -> PoolState {
        PoolState::new(self.fingerprint, self.tokens())
    }

    /// Look at the shared state (a fresh one when none is stored for this token list).
    fn view<R>(&self, host: &(impl Host + ?Sized), f: impl FnOnce(&PoolState) -> R) -> R {
        host.shared_view(&self.key, |state: Option<&PoolState>| {
            match state.filter(|s| s.belongs_to(self.fingerprint, self.tokens())) {
                Some(s) => f(s),
                None => f(&self.fresh()),
            }
        })
    }

    /// Apply `f` to the shared state atomically; a state that stays as it was is not
    /// written again (the common case: a success of a healthy token).
    fn update<R>(
        &self,
        host: &(impl Host + ?Sized),
        mut f: impl FnMut(&mut PoolState) -> R,
    ) -> Option<R> {
        host.shared_update(
            &self.key,
            || self.fresh(),
            |s: &mut PoolState| {
                if !s.belongs_to(self.fingerprint, self.tokens()) {
                    *s = self.fresh();
                }
                f(s)
            },
        )
    }

    /// Count a response of token `index` with `status` (and its `retry-after`).
    fn record(
        &self,
        host: &(impl Host + ?Sized),
        index: usize,
        status: u16,
        retry_after: Option<&str>,
        now: u64,
    ) {
        let outcome = Outcome::classify(status, retry_after, &self.provider.config.failover);
        if outcome.is_neutral() {
            return;
        }
        let th = self.thresholds;
        let change = self.update(host, |s| outcome.apply(s, index, now, &th));
        let rest = outcome.rest_ms;
        if let Some(ms) = rest {
            log::info!(
                "ai-proxy: provider `{}` token {} rests {ms} ms (429 retry-after)",
                self.name(),
                self.tail(index)
            );
        }
        self.log_change(host, index, change.unwrap_or(Change::None), status);
    }

    fn log_change(&self, host: &(impl Host + ?Sized), index: usize, change: Change, status: u16) {
        let id = self.name();
        let tail = self.tail(index);
        let state = match change {
            Change::WentDown => Some("unavailable"),
            Change::CameBack => Some("available"),
            Change::None => None,
        };
        if let Some(state) = state {
            host.count(
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
pub fn choose_token(host: &(impl Host + ?Sized), provider: &Provider, rand: u64) -> Option<usize> {
    let n = provider.config.api_tokens.len();
    if n == 0 {
        return None;
    }
    let Some(pool) = Pool::of(provider) else {
        return Some((rand % n as u64) as usize);
    };
    let now = host.now_ms();
    let choice = pool.view(host, |s| s.choose(now, &pool.thresholds, rand))?;
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

    /// Keep the upstream request headers after the header phase's rewrite (retries on).
    pub fn keep_headers(&mut self, headers: Vec<(String, String)>) {
        self.headers = Some(headers);
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

/// Response headers: count the status for the token used, and retry with another token when
/// the status is retryable. `Some(action)` ends the header phase here.
pub fn on_response_headers(req: &mut ProxyRequest, host: &mut impl HttpHost) -> Option<Action> {
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
    let status = host
        .response_header(":status")
        .and_then(|s| s.parse::<u16>().ok())?;
    let retry_after = host.response_header("retry-after");
    let plan = req.plan.as_ref()?;
    let pool = Pool::of(&plan.provider)?;
    let index = req.failover.token?;
    let now = host.now_ms();
    pool.record(&*host, index, status, retry_after.as_deref(), now);
    remember_cluster(host, &pool);
    if retry(req, host, status, now) {
        // Held until the retry answers; its response replaces this one.
        return Some(Action::Pause);
    }
    None
}

/// Start a retry when `status` calls for one and the budget allows. Returns whether one is
/// in flight.
fn retry(req: &mut ProxyRequest, host: &mut impl HttpHost, status: u16, now: u64) -> bool {
    let Some(plan) = req.plan.as_ref() else {
        return false;
    };
    let cfg = &plan.provider.config.retry_on_failure;
    let a = &req.failover;
    let Some(deadline) = cfg.deadline(status, a.retries, a.started_ms, now) else {
        return false;
    };
    let (Some(headers), Some(pool)) = (a.headers.as_ref(), Pool::of(&plan.provider)) else {
        return false;
    };
    let Some(cluster) = host.cluster_name() else {
        return false;
    };
    let rand = req.rng.next_u64();
    let next = pool.view(&*host, |s| {
        s.choose_retry(now, &pool.thresholds, rand, &a.tried)
    });
    let Some(next) = next else {
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
    let call = Callout {
        cluster: &cluster,
        headers: &out,
        body: (!body.is_empty()).then_some(body),
        timeout_ms: timeout,
    };
    match host.http_call(&call) {
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
            log::warn!("ai-proxy: retry callout to `{cluster}` failed: {e}");
            false
        }
    }
}

/// A retry answered: count it, retry again if allowed, else answer the client with it.
pub fn on_retry_response(
    req: &mut ProxyRequest,
    host: &mut impl HttpHost,
    response: CalloutResponse,
) {
    req.failover.pending = None;
    // No status: the callout failed (timeout, reset); Envoy would have said 503.
    let status = response.status.unwrap_or(503);
    let retry_after = response.header("retry-after").map(str::to_string);
    let content_type = response.header("content-type").map(str::to_string);
    let error_type = response.header("x-amzn-errortype").map(str::to_string);
    let now = host.now_ms();
    if let (Some(plan), Some(index)) = (req.plan.as_ref(), req.failover.token) {
        if let Some(pool) = Pool::of(&plan.provider) {
            pool.record(&*host, index, status, retry_after.as_deref(), now);
        }
    }
    if retry(req, host, status, now) {
        return;
    }
    let Some(plan) = req.plan.as_ref() else {
        return;
    };
    let model = plan.upstream_model.as_deref().unwrap_or_default();
    let (status, out, ct) = translation::whole_answer(
        &plan.answer(model),
        plan.want_base64,
        status,
        content_type.as_deref(),
        error_type.as_deref(),
        &response.body,
    );
    if let Some(obs) = req.obs.as_mut() {
        obs.status = Some(status);
        obs.usage = if plan.api == Api::Responses {
            // A Responses object, or a Responses stream read whole.
            let mut tap = ResponsesUsageTap::new();
            tap.push(&out);
            tap.finish();
            tap.usage()
                .or_else(|| switchyard_protocol::responses::usage_from_response_body(&out))
        } else {
            switchyard_protocol::usage::usage_from_body(&out)
        };
        if let Some(line) = obs.complete(None) {
            host.set_log_facts(&line);
        }
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
    host.send_response(status, &headers, &out);
}

/// Publish the provider's cluster (seen by requests) for the VM that runs health checks.
fn remember_cluster(host: &impl HttpHost, pool: &Pool<'_>) {
    if !pool.provider.config.failover.health_checks() {
        return;
    }
    let Some(cluster) = host.cluster_name() else {
        return;
    };
    let key = format!("{}.cluster", pool.key);
    let known = host.shared_view(&key, |c: Option<&String>| c == Some(&cluster));
    if !known {
        host.shared_update(&key, String::new, |c: &mut String| c.clone_from(&cluster));
    }
}

/// A health check in flight.
struct Check {
    provider: Arc<Provider>,
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
    pub fn tick(&mut self, host: &mut impl Host, rules: &RuleSet<ProxyConfig>) {
        let now = host.now_ms();
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
            let ttl = interval.saturating_mul(3);
            let me = self.me;
            let mine = host.shared_update(
                &format!("{}.lease", pool.key),
                || Lease {
                    owner: me,
                    until: 0,
                },
                |lease: &mut Lease| lease.claim_for(me, now, ttl),
            );
            if mine != Some(true) {
                continue;
            }
            self.last_round.insert(pool.key.clone(), now);
            let due = pool.view(&*host, |s| s.due_checks(now, &pool.thresholds));
            if due.is_empty() {
                continue;
            }
            let cluster = host
                .shared_view(&format!("{}.cluster", pool.key), |c: Option<&String>| {
                    c.cloned()
                });
            let Some(cluster) = cluster else {
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
                match send_check(host, provider, index, &cluster) {
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
    pub fn on_response(&mut self, host: &(impl Host + ?Sized), token: u32, status: u16) -> bool {
        let Some(check) = self.pending.remove(&token) else {
            return false;
        };
        let Some(pool) = Pool::of(&check.provider) else {
            return true;
        };
        let ok = (200..300).contains(&status);
        let now = host.now_ms();
        let th = pool.thresholds;
        let change = pool.update(host, |s| s.record_check(check.index, ok, now, &th));
        if !ok {
            log::info!(
                "ai-proxy: provider `{}`: health check of token {} failed (status {status})",
                pool.name(),
                pool.tail(check.index)
            );
        }
        pool.log_change(host, check.index, change.unwrap_or(Change::None), status);
        true
    }
}

/// Send one health check: a minimal chat request through the vendor's own conversion.
fn send_check(
    host: &mut impl Host,
    provider: &Provider,
    index: usize,
    cluster: &str,
) -> Result<u32, String> {
    let token = provider
        .config
        .api_tokens
        .get(index)
        .ok_or("no such token")?;
    let check = translation::health_check_request(provider).map_err(|e| e.to_string())?;
    let (auth_name, auth_value) = provider.auth_header(token);
    let length = check.body.len().to_string();
    let mut headers = vec![
        (":method", "POST"),
        (":path", check.path.as_str()),
        (":authority", provider.endpoint.host.as_str()),
        ("content-length", length.as_str()),
        (auth_name, auth_value.as_str()),
        (HEALTH_CHECK_HEADER, "1"),
    ];
    headers.extend(check.headers.iter().map(|(k, v)| (*k, v.as_str())));
    host.http_call(&Callout {
        cluster,
        headers: &headers,
        body: Some(&check.body),
        timeout_ms: provider.config.failover.health_check_timeout,
    })
}
