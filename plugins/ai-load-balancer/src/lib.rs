//! ai-load-balancer: picks a provider per request from load metrics, writes the routing header
//! so Envoy re-selects the route, and rewrites an alias model (`"model":"auto"`) to the chosen
//! provider's real model. Glue only: decisions live in `switchyard_policy`.
//!
//! Metrics never block a request. `redis` (through Webdis on stock Envoy, the host's Redis
//! calls in the `higress` build) and `http` sources are refreshed by the root context on its
//! tick (`metrics.refresh_ms`); every VM stores what it fetched in shared data, one entry per
//! metric stamped with the time its callout was sent, and requests read those entries.
//! `local` counts in-flight requests per provider in shared data (taken at pick, released in
//! `on_log`). Fallback: a provider whose metric is missing or older than
//! `metrics.stale_after_ms` is left out of the metric-based pick; when no provider has a fresh
//! metric the pick is weighted random by `weight`. Switching between the two is logged once
//! per VM, never per request, and never turns into an error reply.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;
use switchyard_policy::balancer::{BalancerConfig, MetricSource};
use switchyard_policy::config_error::parse_json;
use switchyard_policy::failover::Lease;
use switchyard_policy::local::{is_failure, LocalBoard};
use switchyard_policy::metrics::{
    cache_key, decode_entry, fetch_plan, newer_entry, MetricCache, ReplyParser,
};
use switchyard_policy::rules::RuleSet;
use switchyard_policy::select::{select, weighted_random, Candidate};
use switchyard_policy::stats;
use switchyard_protocol::json_field::replace_top_level_string;
use switchyard_protocol::{ErrorKind, GatewayError};
use switchyard_wasm_host as host;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(BalancerRoot::default()) });
}}

type Rules = Rc<RuleSet<BalancerConfig>>;

/// Shared-data key of one cached metric (see `switchyard_policy::metrics::encode_entry`);
/// all worker VMs read and refresh the same entries.
fn metric_key(cache_key: &str) -> String {
    format!("switchyard.ai-load-balancer.metric.{cache_key}")
}

/// Shared-data key of the local board (`metrics.source: local`): every provider's requests in
/// flight and moving averages, in one entry.
const LOCAL_BOARD_KEY: &str = "switchyard.ai-load-balancer.local";

/// Shared-data key of the lease that lets one VM poll metric sources for all of them.
const POLL_LEASE_KEY: &str = "switchyard.ai-load-balancer.poll-lease";

/// Whether requests currently pick by metrics or by the weighted-random fallback; kept so the
/// change is logged once, not per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetricState {
    Unknown,
    Fresh,
    Fallback,
}

struct BalancerRoot {
    rules: Option<Rules>,
    /// This VM's identity for the polling lease.
    vm_id: u64,
    /// Tick period in ms (the lease lasts a few of them).
    period_ms: u64,
    rng: Rc<RefCell<host::Rng>>,
    state: Rc<Cell<MetricState>>,
    /// Metric callouts in flight: token -> (fetch identity, how to read the reply, sent at).
    pending: HashMap<u32, (String, ReplyParser, u64)>,
    /// Higress Redis callouts in flight: callout id -> (how to read the reply, sent at).
    #[cfg(feature = "higress")]
    redis_pending: Rc<RefCell<HashMap<u32, (ReplyParser, u64)>>>,
}

impl Default for BalancerRoot {
    fn default() -> Self {
        let mut rng = host::Rng::from_clock();
        BalancerRoot {
            rules: None,
            vm_id: rng.next_u64(),
            period_ms: 1000,
            rng: Rc::new(RefCell::new(rng)),
            state: Rc::new(Cell::new(MetricState::Unknown)),
            pending: HashMap::new(),
            #[cfg(feature = "higress")]
            redis_pending: Rc::new(RefCell::new(HashMap::new())),
        }
    }
}

/// Store measurements in shared data (compare-and-swap; the newest measurement wins).
/// `measured_ms` is when the callout was sent, so a slow reply carrying older state never
/// replaces a reply to a later callout from another VM.
fn store_metrics(values: &[(String, f64)], measured_ms: u64) {
    for (k, v) in values {
        host::shared::update(&metric_key(k), |current| {
            newer_entry(current, *v, measured_ms)
        });
    }
}

impl BalancerRoot {
    /// Start the callouts that refresh every config's metrics. Runs on the root tick, never on
    /// the request path; a callout still in flight is not repeated.
    fn refresh(&mut self) {
        let Some(rules) = self.rules.clone() else {
            return;
        };
        if !self.hold_poll_lease() {
            return;
        }
        let mut started: Vec<String> = Vec::new();
        for cfg in rules.all() {
            #[cfg(feature = "higress")]
            self.refresh_redis(cfg);
            for fetch in fetch_plan(cfg) {
                let id = format!("{}|{}", fetch.cluster, fetch.path);
                if started.contains(&id) || self.pending.values().any(|(p, _, _)| *p == id) {
                    continue;
                }
                let headers = vec![
                    (":method", "GET"),
                    (":path", fetch.path.as_str()),
                    (":authority", fetch.cluster.as_str()),
                    ("accept", "*/*"),
                ];
                match self.dispatch_http_call(
                    &fetch.cluster,
                    headers,
                    None,
                    vec![],
                    Duration::from_millis(fetch.timeout_ms.max(1)),
                ) {
                    Ok(token) => {
                        started.push(id.clone());
                        self.pending
                            .insert(token, (id, fetch.parser, host::now_ms()));
                    }
                    Err(e) => log::debug!(
                        "ai-load-balancer: metrics callout to {} failed: {e:?}",
                        fetch.cluster
                    ),
                }
            }
        }
    }

    /// Claim or renew the lease that makes this VM the one polling metric sources (so N
    /// workers do not multiply the load on Redis or metrics endpoints). It lasts three tick
    /// periods: when its holder stops, another VM takes over within that.
    fn hold_poll_lease(&self) -> bool {
        let now = host::now_ms();
        let ttl = self.period_ms.saturating_mul(3);
        let current = host::shared::get_with_cas(POLL_LEASE_KEY);
        let (bytes, mine) = Lease::claim(current.0.as_deref(), self.vm_id, now, ttl);
        mine && host::shared::set_with_cas(POLL_LEASE_KEY, &bytes, current.1)
    }

    /// Higress build: read Redis directly with the host's Redis calls (`MGET`), unless a
    /// Webdis cluster is configured.
    #[cfg(feature = "higress")]
    fn refresh_redis(&mut self, cfg: &BalancerConfig) {
        use switchyard_policy::resp;
        let Some(redis) = cfg.redis.as_ref().filter(|r| r.webdis_cluster.is_none()) else {
            return;
        };
        if cfg.source != MetricSource::Redis {
            return;
        }
        // A reply the host never delivered must not block refreshes forever.
        let now = host::now_ms();
        let give_up = redis.timeout.saturating_mul(2).max(1000);
        self.redis_pending
            .borrow_mut()
            .retain(|_, (_, sent)| now.saturating_sub(*sent) < give_up);
        if !self.redis_pending.borrow().is_empty() {
            return;
        }
        let redis_keys: Vec<String> = cfg
            .providers
            .iter()
            .map(|p| format!("{}{}", cfg.redis_key_prefix, p.key))
            .collect();
        let keys: Vec<String> = (0..cfg.providers.len())
            .filter_map(|i| cache_key(cfg, i))
            .collect();
        match host::redis::call(&redis_cluster(redis), &resp::mget(&redis_keys)) {
            Ok(id) => {
                self.redis_pending
                    .borrow_mut()
                    .insert(id, (ReplyParser::RespMget { keys }, host::now_ms()));
            }
            Err(e) => log::debug!("ai-load-balancer: redis call failed: {e}"),
        }
    }

    /// Higress build: connect the host's Redis client for every Redis config.
    #[cfg(feature = "higress")]
    fn init_redis(&self, rules: &RuleSet<BalancerConfig>) {
        let pending = self.redis_pending.clone();
        host::redis::on_reply(move |id, status, body| {
            let Some((parser, sent)) = pending.borrow_mut().remove(&id) else {
                return;
            };
            if status != 0 {
                log::debug!("ai-load-balancer: redis reply status {status}");
                return;
            }
            store_metrics(&parser.parse(&body), sent);
        });
        for cfg in rules.all() {
            let Some(redis) = cfg.redis.as_ref().filter(|r| r.webdis_cluster.is_none()) else {
                continue;
            };
            let user = redis.username.as_deref().unwrap_or("");
            let pass = redis.password.as_deref().unwrap_or("");
            let timeout = u32::try_from(redis.timeout).unwrap_or(u32::MAX);
            if let Err(e) = host::redis::init(&redis_cluster(redis), user, pass, timeout) {
                log::warn!(
                    "ai-load-balancer: redis init for {} failed: {e}",
                    redis.service_name
                );
            }
        }
    }
}

/// Higress cluster string, with `?db=N` when a database is configured.
#[cfg(feature = "higress")]
fn redis_cluster(redis: &switchyard_policy::balancer::RedisConfig) -> String {
    match redis.database {
        Some(db) => format!("{}?db={db}", redis.higress_cluster()),
        None => redis.higress_cluster(),
    }
}

impl Context for BalancerRoot {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _t: usize) {
        let Some((id, parser, sent)) = self.pending.remove(&token) else {
            return;
        };
        let status = self.get_http_call_response_header(":status");
        if status.as_deref() != Some("200") {
            log::debug!("ai-load-balancer: metrics from {id}: status {status:?}");
            return;
        }
        let body = self
            .get_http_call_response_body(0, body_size)
            .unwrap_or_default();
        store_metrics(&parser.parse(&body), sent);
    }
}

impl RootContext for BalancerRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let parsed = parse_json(&bytes).and_then(|v| RuleSet::parse(&v, BalancerConfig::from_json));
        match parsed {
            Ok(rules) => {
                // Refresh as often as the most eager config asks; static/local need no tick.
                let period = rules
                    .all()
                    .filter(|c| matches!(c.source, MetricSource::Redis | MetricSource::Http))
                    .map(|c| c.metrics.refresh_ms)
                    .min();
                #[cfg(feature = "higress")]
                self.init_redis(&rules);
                self.rules = Some(Rc::new(rules));
                self.pending.clear();
                if let Some(ms) = period {
                    self.period_ms = ms.max(10);
                    self.set_tick_period(Duration::from_millis(self.period_ms));
                }
                true
            }
            Err(e) => {
                // Refusing makes Envoy keep the previous config (or not start the listener).
                log::error!("ai-load-balancer: config refused: {e}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        self.refresh();
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(BalancerRequest {
            rules: self.rules.clone(),
            rng: self.rng.clone(),
            state: self.state.clone(),
            rewrite_to: None,
            local: None,
            seen_board: RefCell::new(None),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct BalancerRequest {
    rules: Option<Rules>,
    rng: Rc<RefCell<host::Rng>>,
    state: Rc<Cell<MetricState>>,
    /// The model the body's alias becomes, once a provider is picked.
    rewrite_to: Option<String>,
    /// The provider this request went to and when it was picked (`source: local`): its
    /// in-flight slot is released and its averages updated when the request ends.
    local: Option<(String, u64)>,
    /// The local board as `pick` read it, with its CAS token: the pick's in-flight slot is
    /// then taken with one write instead of another read.
    seen_board: RefCell<Option<(LocalBoard, Option<u32>)>>,
}

impl Context for BalancerRequest {}

/// `switchyard_balancer_picks{gen_ai_provider_name, reason}`.
fn count_pick(provider: &str, reason: &str) {
    host::metrics::count(
        stats::BALANCER_PICKS,
        &[(stats::PROVIDER, provider), (stats::REASON, reason)],
        1,
    );
}

/// Change the local board with compare-and-swap (re-read on a concurrent write).
fn update_board(change: impl Fn(&mut LocalBoard)) {
    host::shared::update(LOCAL_BOARD_KEY, |current| {
        let mut board = current.map(LocalBoard::decode).unwrap_or_default();
        change(&mut board);
        board.encode()
    });
}

impl BalancerRequest {
    /// Pick a provider for `cfg` from its metric source; also says whether metrics decided
    /// (`metrics`) or the weighted-random fallback did (`fallback`).
    fn pick<'c>(
        &self,
        cfg: &'c BalancerConfig,
        among: Option<&[usize]>,
    ) -> Option<(
        &'c switchyard_policy::balancer::BalancerProvider,
        &'static str,
    )> {
        let metrics: Vec<Option<f64>> = match cfg.source {
            MetricSource::Static => cfg
                .providers
                .iter()
                .map(|p| cfg.metrics.values.get(&p.key).copied())
                .collect(),
            MetricSource::Local => {
                let (bytes, cas) = host::shared::get_with_cas(LOCAL_BOARD_KEY);
                let board = bytes.map(|b| LocalBoard::decode(&b)).unwrap_or_default();
                let metrics = cfg
                    .providers
                    .iter()
                    .map(|p| {
                        let (n, stats) = board.get(&p.name);
                        Some(stats.metric(cfg.metrics.local_signal, n as f64))
                    })
                    .collect();
                *self.seen_board.borrow_mut() = Some((board, cas));
                metrics
            }
            // Cached by the root tick; stale or missing entries are unknown.
            MetricSource::Redis | MetricSource::Http => {
                let now = host::now_ms();
                (0..cfg.providers.len())
                    .map(|i| {
                        let k = cache_key(cfg, i)?;
                        let mut cache = MetricCache::default();
                        let (v, t) = decode_entry(&host::shared::get(&metric_key(&k))?)?;
                        cache.record(&k, v, t);
                        cache.fresh(&k, now, cfg.metrics.stale_after_ms)
                    })
                    .collect()
            }
        };
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
        let mut rng = self.rng.borrow_mut();
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
        if self.state.replace(next) == next {
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

impl HttpContext for BalancerRequest {
    fn on_http_request_headers(&mut self, _n: usize, _end_of_stream: bool) -> Action {
        let Some(rules) = self.rules.clone() else {
            return Action::Continue;
        };
        let Some(cfg) = host::select_config(&rules) else {
            return Action::Continue;
        };
        let header = cfg.target_header.as_str();
        let client_choice = self.get_http_request_header(header);
        let facts = host::body_facts();
        let honoured = client_choice
            .as_deref()
            .filter(|_| cfg.allow_client_choice)
            .and_then(|name| cfg.provider(name));

        let chosen = match facts.model.as_deref() {
            Some(model) if cfg.is_alias(model) => match honoured {
                Some(p) => {
                    count_pick(&p.name, "client_choice");
                    Some(p)
                }
                None => match self.pick(cfg, None) {
                    Some((p, reason)) => {
                        count_pick(&p.name, reason);
                        Some(p)
                    }
                    None => {
                        host::send_error(&GatewayError::new(
                            ErrorKind::Unavailable,
                            "no_provider",
                            "no provider is available for this request",
                        ));
                        return Action::Pause;
                    }
                },
            },
            Some(model) if honoured.is_none() => {
                let declaring = cfg.declaring(model);
                if declaring.is_empty() {
                    None
                } else {
                    self.pick(cfg, Some(&declaring)).map(|(p, reason)| {
                        count_pick(&p.name, reason);
                        p
                    })
                }
            }
            _ => honoured,
        };

        match chosen {
            Some(p) => {
                if cfg.source == MetricSource::Local && self.local.is_none() {
                    let written = self.seen_board.take().is_some_and(|(mut board, cas)| {
                        board.start(&p.name);
                        host::shared::set_with_cas(LOCAL_BOARD_KEY, &board.encode(), cas)
                    });
                    if !written {
                        update_board(|b| b.start(&p.name));
                    }
                    self.local = Some((p.name.clone(), host::now_ms()));
                }
                if client_choice.as_deref() != Some(p.name.as_str()) {
                    self.set_http_request_header(header, Some(&p.name));
                    host::clear_route_cache();
                }
                if facts.model.as_deref().is_some_and(|m| cfg.is_alias(m))
                    && facts.model.as_deref() != Some(&p.model)
                {
                    self.rewrite_to = Some(p.model.clone());
                    // The body changes length.
                    self.set_http_request_header("content-length", None);
                }
            }
            None if client_choice.is_some() => {
                // A client must not pick a provider by sending the routing header itself.
                self.set_http_request_header(header, None);
                host::clear_route_cache();
            }
            None => {}
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(target) = &self.rewrite_to else {
            return Action::Continue;
        };
        if !end_of_stream {
            // Buffer the whole body; Envoy hands it over complete at end of stream.
            return Action::Pause;
        }
        let Some(body) = self.get_http_request_body(0, body_size) else {
            return Action::Continue;
        };
        if let Some(new_body) = replace_top_level_string(&body, "model", target) {
            self.set_http_request_body(0, body_size, &new_body);
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        // The stream is over: release the in-flight slot taken at pick time and fold the
        // request's duration and outcome into the provider's averages.
        let Some((provider, started)) = self.local.take() else {
            return;
        };
        let status = host::property(&["response", "code"])
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(u64::from_le_bytes)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(0);
        let took = host::now_ms().saturating_sub(started) as f64;
        update_board(|b| b.finish(&provider, took, is_failure(status)));
    }
}
