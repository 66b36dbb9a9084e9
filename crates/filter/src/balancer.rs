//! ai-load-balancer: picks a provider per request from load metrics, writes the routing header
//! so Envoy re-selects the route, and rewrites an alias model (`"model":"auto"`) to the chosen
//! provider's real model. Sequencing only: decisions live in `switchyard_policy`.
//!
//! Metrics never block a request. `redis` (through Webdis as an HTTP callout; a host with its
//! own Redis client, such as Higress, reads it itself and hands the values to
//! [`store_metrics`]) and `http` sources are refreshed by the root on its tick
//! (`metrics.refresh_ms`); every worker stores what it fetched in shared state, one entry per
//! metric stamped with the time its callout was sent, and requests read those entries.
//! `local` counts in-flight requests per provider in shared state (taken at pick, released in
//! `on_log`). Fallback: a provider whose metric is missing or older than
//! `metrics.stale_after_ms` is left out of the metric-based pick; when no provider has a fresh
//! metric the pick is weighted random by `weight`. Switching between the two is logged once
//! per instance, never per request, and never turns into an error reply.

use crate::host::{
    select_config, Action, BodyFacts, Callout, CalloutResponse, Host, HttpHost, Rng,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switchyard_policy::balancer::{BalancerConfig, BalancerProvider, MetricSource};
use switchyard_policy::config_error::parse_json;
use switchyard_policy::failover::Lease;
use switchyard_policy::local::{is_failure, LocalBoard};
use switchyard_policy::metrics::{cache_key, fetch_plan, MetricEntry, ReplyParser};
use switchyard_policy::models::list_body;
use switchyard_policy::rules::RuleSet;
use switchyard_policy::select::{select, weighted_random, Candidate};
use switchyard_policy::stats;
use switchyard_policy::vendor::Api;
use switchyard_protocol::json_field::{splice_string, string_at, top_level_value_spans};
use switchyard_protocol::openai_edit::{self, RequestFacts};
use switchyard_protocol::{ErrorKind, GatewayError};

type Rules = Arc<RuleSet<BalancerConfig>>;

/// Shared-state key of one cached metric ([`MetricEntry`]); all workers read and refresh the
/// same entries.
fn metric_key(cache_key: &str) -> String {
    format!("switchyard.ai-load-balancer.metric.{cache_key}")
}

/// Shared-state key of the local board (`metrics.source: local`): every provider's requests in
/// flight and moving averages, in one entry.
const LOCAL_BOARD_KEY: &str = "switchyard.ai-load-balancer.local";

/// Shared-state key of the lease that lets one instance poll metric sources for all of them.
const POLL_LEASE_KEY: &str = "switchyard.ai-load-balancer.poll-lease";

/// Whether requests currently pick by metrics or by the weighted-random fallback; kept so the
/// change is logged once, not per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum MetricState {
    Unknown = 0,
    Fresh = 1,
    Fallback = 2,
}

/// The plugin instance: its config, the metric refresh it drives on its tick, and what all
/// its requests share.
pub struct BalancerRoot {
    rules: Option<Rules>,
    /// This instance's identity for the polling lease.
    id: u64,
    /// Tick period in ms (the lease lasts a few of them).
    period_ms: u64,
    rng: Arc<Rng>,
    /// Last [`MetricState`] seen by a request.
    state: Arc<AtomicU8>,
    /// Metric callouts in flight: id -> (fetch identity, how to read the reply, sent at).
    pending: HashMap<u32, (String, ReplyParser, u64)>,
}

/// Store measurements in shared state (atomically; the newest measurement wins).
/// `measured_ms` is when the callout was sent, so a slow reply carrying older state never
/// replaces a reply to a later callout from another worker.
pub fn store_metrics(host: &(impl Host + ?Sized), values: &[(String, f64)], measured_ms: u64) {
    for (k, v) in values {
        let newer = MetricEntry {
            value: *v,
            measured_ms,
        };
        host.shared_update(
            &metric_key(k),
            || newer,
            |e: &mut MetricEntry| e.keep_newest(newer),
        );
    }
}

impl BalancerRoot {
    pub fn new(seed: u64) -> Self {
        let rng = Rng::new(seed);
        BalancerRoot {
            rules: None,
            id: rng.next_u64(),
            period_ms: 1000,
            rng: Arc::new(rng),
            state: Arc::new(AtomicU8::new(MetricState::Unknown as u8)),
            pending: HashMap::new(),
        }
    }

    /// Take a new config (JSON; the seed's shape). On success returns the tick period the
    /// metric sources need, if any; on error the previous config stays (Envoy keeps the old
    /// config, or does not start the listener).
    pub fn configure(&mut self, config: &[u8]) -> Result<Option<Duration>, String> {
        let rules = parse_json(config)
            .and_then(|v| RuleSet::parse(&v, BalancerConfig::from_json))
            .map_err(|e| e.to_string())?;
        // Refresh as often as the most eager config asks; static/local need no tick.
        let period = rules
            .all()
            .filter(|c| matches!(c.source, MetricSource::Redis | MetricSource::Http))
            .map(|c| c.metrics.refresh_ms)
            .min();
        self.rules = Some(Arc::new(rules));
        self.pending.clear();
        Ok(period.map(|ms| {
            self.period_ms = ms.max(10);
            Duration::from_millis(self.period_ms)
        }))
    }

    /// The config in force (for hosts that read Redis themselves).
    pub fn rules(&self) -> Option<&RuleSet<BalancerConfig>> {
        self.rules.as_deref()
    }

    pub fn new_request(&self) -> BalancerRequest {
        BalancerRequest {
            rules: self.rules.clone(),
            rng: self.rng.clone(),
            state: self.state.clone(),
            rewrite_to: None,
            local: None,
            slot_taken: false,
            deferred: false,
        }
    }

    /// The tick: start the callouts that refresh every config's metrics (never on the request
    /// path), when this instance holds the polling lease. Returns whether it does, so a host
    /// that reads Redis itself polls only then too. A callout still in flight is not
    /// repeated.
    pub fn on_tick(&mut self, host: &mut impl Host) -> bool {
        let Some(rules) = self.rules.clone() else {
            return false;
        };
        if !self.hold_poll_lease(&*host) {
            return false;
        }
        let mut started: Vec<String> = Vec::new();
        for cfg in rules.all() {
            for fetch in fetch_plan(cfg) {
                let id = format!("{}|{}", fetch.cluster, fetch.path);
                if started.contains(&id) || self.pending.values().any(|(p, _, _)| *p == id) {
                    continue;
                }
                let headers = [
                    (":method", "GET"),
                    (":path", fetch.path.as_str()),
                    (":authority", fetch.cluster.as_str()),
                    ("accept", "*/*"),
                ];
                let call = Callout {
                    cluster: &fetch.cluster,
                    headers: &headers,
                    body: None,
                    timeout_ms: fetch.timeout_ms.max(1),
                };
                match host.http_call(&call) {
                    Ok(token) => {
                        started.push(id.clone());
                        self.pending
                            .insert(token, (id, fetch.parser, host.now_ms()));
                    }
                    Err(e) => log::debug!(
                        "ai-load-balancer: metrics callout to {} failed: {e}",
                        fetch.cluster
                    ),
                }
            }
        }
        true
    }

    /// A metrics callout answered.
    pub fn on_callout_done(&mut self, host: &impl Host, id: u32, response: &CalloutResponse) {
        let Some((fetch, parser, sent)) = self.pending.remove(&id) else {
            return;
        };
        if response.status != Some(200) {
            log::debug!(
                "ai-load-balancer: metrics from {fetch}: status {:?}",
                response.status
            );
            return;
        }
        store_metrics(host, &parser.parse(&response.body), sent);
    }

    /// Claim or renew the lease that makes this instance the one polling metric sources (so N
    /// workers do not multiply the load on Redis or metrics endpoints). It lasts three tick
    /// periods: when its holder stops, another takes over within that.
    fn hold_poll_lease(&self, host: &impl Host) -> bool {
        let now = host.now_ms();
        let ttl = self.period_ms.saturating_mul(3);
        let me = self.id;
        let mine = host.shared_update(
            POLL_LEASE_KEY,
            || Lease {
                owner: me,
                until: 0,
            },
            |lease: &mut Lease| lease.claim_for(me, now, ttl),
        );
        mine == Some(true)
    }
}

/// One request through the balancer.
pub struct BalancerRequest {
    rules: Option<Rules>,
    rng: Arc<Rng>,
    state: Arc<AtomicU8>,
    /// The model the body's alias becomes, once a provider is picked.
    rewrite_to: Option<String>,
    /// The provider this request went to and when it was picked (`source: local`): its
    /// in-flight slot is released and its averages updated when the request ends.
    local: Option<(String, u64)>,
    /// `pick` took the in-flight slot of the provider it picked (`source: local`).
    slot_taken: bool,
    /// The host holds the headers until the body is complete: decide in the body phase.
    deferred: bool,
}

/// `switchyard_balancer_picks{gen_ai_provider_name, reason}`.
fn count_pick(host: &impl Host, provider: &str, reason: &str) {
    host.count(
        stats::BALANCER_PICKS,
        &[(stats::PROVIDER, provider), (stats::REASON, reason)],
        1,
    );
}

/// Change the local board atomically.
fn update_board<R>(host: &impl Host, change: impl FnMut(&mut LocalBoard) -> R) -> Option<R> {
    host.shared_update(LOCAL_BOARD_KEY, LocalBoard::default, change)
}

impl BalancerRequest {
    /// Pick a provider for `cfg` from its metric source; also says whether metrics decided
    /// (`metrics`) or the weighted-random fallback did (`fallback`).
    fn pick<'c>(
        &mut self,
        host: &impl Host,
        cfg: &'c BalancerConfig,
        among: Option<&[usize]>,
    ) -> Option<(&'c BalancerProvider, &'static str)> {
        let metrics: Vec<Option<f64>> = match cfg.source {
            MetricSource::Static => cfg
                .providers
                .iter()
                .map(|p| cfg.metrics.values.get(&p.key).copied())
                .collect(),
            MetricSource::Local => {
                // Pick from the board and take the pick's in-flight slot in one atomic change.
                let mut picked = None;
                let taken = update_board(host, |board| {
                    let metrics: Vec<Option<f64>> = cfg
                        .providers
                        .iter()
                        .map(|p| {
                            let (n, stats) = board.get(&p.name);
                            Some(stats.metric(cfg.metrics.local_signal, n as f64))
                        })
                        .collect();
                    picked = self.choose(cfg, among, &metrics);
                    if let Some((p, _)) = picked {
                        board.start(&p.name);
                    }
                    picked.is_some()
                });
                // Not stored (the host refused the write): the pick stands, and the slot is
                // taken again when the request is sent on.
                self.slot_taken = taken == Some(true);
                return picked;
            }
            // Cached by the root tick; stale or missing entries are unknown.
            MetricSource::Redis | MetricSource::Http => {
                let now = host.now_ms();
                let stale_after = cfg.metrics.stale_after_ms;
                (0..cfg.providers.len())
                    .map(|i| {
                        let k = cache_key(cfg, i)?;
                        host.shared_view(&metric_key(&k), |e: Option<&MetricEntry>| {
                            e?.fresh(now, stale_after)
                        })
                    })
                    .collect()
            }
        };
        self.choose(cfg, among, &metrics)
    }

    /// Pick among the providers `among` (all when `None`) by `metrics` (one per provider of
    /// `cfg`; unknown ones are left out), or weighted random when none is known.
    fn choose<'c>(
        &self,
        cfg: &'c BalancerConfig,
        among: Option<&[usize]>,
        metrics: &[Option<f64>],
    ) -> Option<(&'c BalancerProvider, &'static str)> {
        // The providers this request may go to (all, or those declaring its model).
        let all: Vec<usize> = (0..cfg.providers.len()).collect();
        let among = among.unwrap_or(&all);
        let candidates: Vec<Candidate> = among
            .iter()
            .filter_map(|&i| {
                Some(Candidate {
                    weight: cfg.providers.get(i)?.weight,
                    metric: metrics.get(i).copied().flatten(),
                })
            })
            .collect();
        let fresh = candidates.iter().any(|c| c.metric.is_some());
        self.note_state(fresh);
        let rng = &self.rng;
        let mut rand = || rng.next_f64();
        // `select` falls back to weighted random itself when no candidate has a metric.
        let k = select(cfg.strategy, &candidates, &mut rand)
            .or_else(|| weighted_random(&candidates, |c| c.weight, &mut rand))?;
        let reason = if fresh { "metrics" } else { "fallback" };
        Some((cfg.providers.get(*among.get(k)?)?, reason))
    }

    /// Log when picking switches between metrics and the weighted-random fallback.
    fn note_state(&self, fresh: bool) {
        let next = if fresh {
            MetricState::Fresh
        } else {
            MetricState::Fallback
        };
        if self.state.swap(next as u8, Ordering::Relaxed) == next as u8 {
            return;
        }
        match next {
            MetricState::Fallback => log::warn!(
                "ai-load-balancer: no fresh metrics (missing or older than stale_after_ms); \
                 picking providers by weighted random until metrics return"
            ),
            _ => log::info!("ai-load-balancer: fresh metrics available; picking by metrics"),
        }
    }
}

/// `GET /v1/models` is answered here, from the balancer's config (its aliases and every
/// provider's models): the route would otherwise forward it to one provider, whose list is
/// neither complete nor in terms the client may send.
fn answer_models(host: &mut impl HttpHost, rules: &RuleSet<BalancerConfig>) -> Option<Action> {
    let path = host.request_header(":path")?;
    if Api::from_path(&path) != Some(Api::Models) {
        return None;
    }
    let cfg = select_config(host, rules)?;
    let body = list_body(&cfg.listed_models());
    crate::proxy::send_list(host, &body);
    Some(Action::Pause)
}

/// What the balancer's scan of a held body found: its facts, or (for a body
/// [`openai_edit::request_facts`] refuses) only where its `model` values are.
enum Read {
    Facts(RequestFacts),
    Spans(Option<Vec<std::ops::Range<usize>>>),
}

/// The facts of a body after every top-level `model` value was replaced by the JSON string
/// `model`: the same flags, the new model, the spans moved by the change in length.
fn rewritten_facts(facts: RequestFacts, model: &str) -> Option<RequestFacts> {
    let encoded = serde_json::to_string(model).ok()?.len();
    let mut shift: isize = 0;
    let mut spans = Vec::with_capacity(facts.model_spans.len());
    for span in &facts.model_spans {
        let start = span.start.checked_add_signed(shift)?;
        spans.push(start..start + encoded);
        shift += encoded as isize - span.len() as isize;
    }
    Some(RequestFacts {
        model: Some(model.to_string()),
        model_spans: spans,
        ..facts
    })
}

impl BalancerRequest {
    pub fn on_request_headers(&mut self, host: &mut impl HttpHost, end_of_stream: bool) -> Action {
        let Some(rules) = self.rules.clone() else {
            return Action::Continue;
        };
        // A model list request has no body (which spares chat requests a `:path` read).
        if end_of_stream {
            if let Some(action) = answer_models(host, &rules) {
                return action;
            }
        }
        if host.holds_headers_for_body() && !end_of_stream {
            // Decide once the body is here: its model is then known without a metadata
            // filter, and the route is chosen before the headers go on.
            self.deferred = true;
            return Action::Pause;
        }
        let facts = host.body_facts();
        self.decide(host, facts)
    }

    /// Pick the provider for a request whose body says `facts`: set the routing header (or
    /// remove a client's), and note the model the body's alias becomes.
    fn decide(&mut self, host: &mut impl HttpHost, facts: BodyFacts) -> Action {
        let Some(rules) = self.rules.clone() else {
            return Action::Continue;
        };
        let Some(cfg) = select_config(host, &rules) else {
            return Action::Continue;
        };
        let header = cfg.target_header.as_str();
        let client_choice = host.request_header(header);
        let honoured = client_choice
            .as_deref()
            .filter(|_| cfg.allow_client_choice)
            .and_then(|name| cfg.provider(name));

        let chosen = match facts.model.as_deref() {
            Some(model) if cfg.is_alias(model) => match honoured {
                Some(p) => {
                    count_pick(&*host, &p.name, "client_choice");
                    Some(p)
                }
                None => match self.pick(&*host, cfg, None) {
                    Some((p, reason)) => {
                        count_pick(&*host, &p.name, reason);
                        Some(p)
                    }
                    None => {
                        let err = GatewayError::new(
                            ErrorKind::Unavailable,
                            "no_provider",
                            "no provider is available for this request",
                        );
                        crate::proxy::send_json(host, err.status(), &err.body());
                        return Action::Pause;
                    }
                },
            },
            Some(model) if honoured.is_none() => {
                let declaring = cfg.declaring(model);
                if declaring.is_empty() {
                    None
                } else {
                    self.pick(&*host, cfg, Some(&declaring)).map(|(p, reason)| {
                        count_pick(&*host, &p.name, reason);
                        p
                    })
                }
            }
            _ => honoured,
        };

        match chosen {
            Some(p) => {
                if cfg.source == MetricSource::Local && self.local.is_none() {
                    // A pick from the board took the slot already; a client's choice did not.
                    if !std::mem::take(&mut self.slot_taken) {
                        update_board(&*host, |b| b.start(&p.name));
                    }
                    self.local = Some((p.name.clone(), host.now_ms()));
                }
                if client_choice.as_deref() != Some(p.name.as_str()) {
                    host.set_request_header(header, Some(&p.name));
                    host.clear_route_cache();
                }
                if facts.model.as_deref().is_some_and(|m| cfg.is_alias(m))
                    && facts.model.as_deref() != Some(&p.model)
                {
                    self.rewrite_to = Some(p.model.clone());
                    // The body changes length.
                    host.set_request_header("content-length", None);
                }
            }
            None if client_choice.is_some() => {
                // A client must not pick a provider by sending the routing header itself.
                host.set_request_header(header, None);
                host.clear_route_cache();
            }
            None => {}
        }
        Action::Continue
    }

    pub fn on_request_body(
        &mut self,
        host: &mut impl HttpHost,
        body_size: usize,
        end_of_stream: bool,
    ) -> Action {
        if self.deferred {
            if !end_of_stream {
                return Action::Pause;
            }
            self.deferred = false;
            let body = host.request_body(body_size).unwrap_or_default();
            // One scan finds the model, where to rewrite it, and the facts ai-proxy needs of
            // the rewritten body (`body_memo`); bodies it refuses are read as before.
            let read = match openai_edit::request_facts(&body, false) {
                Ok(facts) => Read::Facts(facts),
                Err(_) => Read::Spans(top_level_value_spans(&body, "model")),
            };
            let model = match &read {
                Read::Facts(f) => f.model.clone(),
                Read::Spans(spans) => spans.as_deref().and_then(|s| string_at(&body, s)),
            };
            let facts = BodyFacts {
                model,
                ..BodyFacts::default()
            };
            if self.decide(host, facts) == Action::Pause {
                return Action::Pause;
            }
            return self.rewrite(host, &body, body_size, Some(read));
        }
        if self.rewrite_to.is_none() {
            return Action::Continue;
        }
        if !end_of_stream {
            // Buffer the whole body; Envoy hands it over complete at end of stream.
            return Action::Pause;
        }
        let Some(body) = host.request_body(body_size) else {
            return Action::Continue;
        };
        self.rewrite(host, &body, body_size, None)
    }

    /// Rewrite the body's alias to the chosen provider's model. `read`: what a scan of the
    /// body already found, if one did.
    fn rewrite(
        &mut self,
        host: &mut impl HttpHost,
        body: &[u8],
        body_size: usize,
        read: Option<Read>,
    ) -> Action {
        let Some(target) = &self.rewrite_to else {
            return Action::Continue;
        };
        let (spans, facts) = match read {
            Some(Read::Facts(f)) => (Some(f.model_spans.clone()), Some(f)),
            Some(Read::Spans(s)) => (s, None),
            None => (top_level_value_spans(body, "model"), None),
        };
        let Some(spans) = spans else {
            return Action::Continue;
        };
        if let Some(new_body) = splice_string(body, &spans, target) {
            host.set_request_body(body_size, &new_body);
            if let Some(facts) = facts.and_then(|f| rewritten_facts(f, target)) {
                crate::body_memo::keep(new_body, facts);
            }
        }
        Action::Continue
    }

    pub fn on_log(&mut self, host: &mut impl HttpHost) {
        // The stream is over: release the in-flight slot taken at pick time and fold the
        // request's duration and outcome into the provider's averages.
        let Some((provider, started)) = self.local.take() else {
            return;
        };
        let status = host.final_status().unwrap_or(0);
        let took = host.now_ms().saturating_sub(started) as f64;
        update_board(&*host, |b| b.finish(&provider, took, is_failure(status)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The facts derived for a rewritten body are the ones a scan of it finds.
    #[test]
    fn rewritten_facts_match_a_scan_of_the_new_body() {
        let bodies: [&[u8]; 5] = [
            br#"{"model":"auto","messages":[]}"#,
            br#"{"stream":true,"model":"auto","stream_options":{"include_usage":true}}"#,
            br#"{"model":"a","x":1,"model":"auto"}"#,
            br#"{ "model" : "auto" , "messages":[{"role":"user","content":"model"}]}"#,
            br#"{"model":"\u0061uto"}"#,
        ];
        for body in bodies {
            let read = openai_edit::request_facts(body, false);
            assert!(read.is_ok(), "{}", String::from_utf8_lossy(body));
            let facts = read.unwrap_or_default();
            for target in ["deepseek-chat", "q", "mödel \"quoted\""] {
                let new_body = splice_string(body, &facts.model_spans, target).unwrap_or_default();
                let derived = rewritten_facts(facts.clone(), target);
                let scanned = openai_edit::request_facts(&new_body, true).ok();
                assert_eq!(derived, scanned, "{}", String::from_utf8_lossy(&new_body));
            }
        }
    }
}
