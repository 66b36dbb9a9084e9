//! The two filters as dynamic-module filters: adapters from the module's hooks to
//! `switchyard_filter`, over [`crate::host`]. A filter config's periodic work (token health
//! checks, metric polling) runs on Envoy's main thread, woken by a thread the module owns
//! ([`Ticker`]); workers never wait for it.

use crate::host::{callout_response, install_logger, seed, ConfigHost, PendingMetrics, StreamHost};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use switchyard_envoy_module::{
    BodyStatus, CalloutOutcome, CalloutResponse, ConfigContext, EnvoyFilter, FilterFactory,
    HeadersStatus, HttpFilter,
};
use switchyard_filter::balancer::{BalancerRequest, BalancerRoot};
use switchyard_filter::proxy::{ProxyRequest, ProxyRoot};
use switchyard_filter::Action;
use switchyard_policy::stats::{Kind, METRICS};

/// The scheduler event of a tick.
const TICK: u64 = 1;

/// Wakes a config's `on_scheduled` on the main thread every period until dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn start_ticker(ctx: &mut ConfigContext, period: Duration) -> Option<Ticker> {
    if ctx.is_validation_mode() {
        return None;
    }
    let scheduler = ctx.scheduler()?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let spawned = std::thread::Builder::new()
        .name("switchyard-tick".into())
        .spawn(move || loop {
            std::thread::sleep(period);
            if stopped.load(Ordering::Acquire) {
                break;
            }
            scheduler.commit(TICK);
        });
    match spawned {
        Ok(_) => Some(Ticker { stop }),
        Err(e) => {
            log::error!("switchyard: no tick thread ({e}): periodic work will not run");
            None
        }
    }
}

/// Declare every metric the filters emit (dynamic modules define metrics up front).
fn define_metrics(ctx: &mut ConfigContext) -> Result<(), String> {
    for (name, kind, labels) in METRICS {
        match kind {
            Kind::Counter => ctx.define_counter(name, labels)?,
            Kind::Histogram => ctx.define_histogram(name, labels)?,
        }
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding it (caught at the hook) leaves config data that is still sound.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn headers_status(a: Action) -> HeadersStatus {
    match a {
        Action::Continue => HeadersStatus::Continue,
        // Request headers: held while the body phase decides (body hooks keep running).
        Action::Pause => HeadersStatus::StopIteration,
    }
}

fn body_status(a: Action) -> BodyStatus {
    match a {
        Action::Continue => BodyStatus::Continue,
        Action::Pause => BodyStatus::StopIterationAndBuffer,
    }
}

/// The filters this module serves by `filter_name`, or `None`.
pub fn new_config(
    ctx: &mut ConfigContext,
    filter_name: &str,
    config: &[u8],
) -> Option<Result<Box<dyn FilterFactory>, String>> {
    install_logger();
    let made = match filter_name {
        "ai-proxy" => ProxyFactory::new(ctx, config).map(|f| Box::new(f) as Box<dyn FilterFactory>),
        "ai-load-balancer" => {
            BalancerFactory::new(ctx, config).map(|f| Box::new(f) as Box<dyn FilterFactory>)
        }
        _ => return None,
    };
    Some(made)
}

struct ProxyFactory {
    root: Mutex<ProxyRoot>,
    pending: Arc<PendingMetrics>,
    _ticker: Option<Ticker>,
}

impl ProxyFactory {
    fn new(ctx: &mut ConfigContext, config: &[u8]) -> Result<Self, String> {
        let mut root = ProxyRoot::new(seed());
        let tick = root
            .configure(config)
            .map_err(|e| format!("ai-proxy: config refused: {e}"))?;
        define_metrics(ctx)?;
        let ticker = tick.and_then(|period| start_ticker(ctx, period));
        Ok(ProxyFactory {
            root: Mutex::new(root),
            pending: Arc::default(),
            _ticker: ticker,
        })
    }
}

impl FilterFactory for ProxyFactory {
    fn new_filter(&self, _f: &mut EnvoyFilter) -> Box<dyn HttpFilter> {
        Box::new(ProxyStream {
            req: lock(&self.root).new_request(),
            pending: self.pending.clone(),
        })
    }

    fn on_scheduled(&self, ctx: &mut ConfigContext, _event_id: u64) {
        lock(&self.root).on_tick(&mut ConfigHost::new(ctx, &self.pending));
    }

    fn on_callout_done(
        &self,
        ctx: &mut ConfigContext,
        callout_id: u64,
        outcome: CalloutOutcome,
        response: &CalloutResponse,
    ) {
        let Ok(id) = u32::try_from(callout_id) else {
            return;
        };
        let response = callout_response(outcome, response);
        lock(&self.root).on_callout_done(&ConfigHost::new(ctx, &self.pending), id, &response);
    }
}

struct ProxyStream {
    req: ProxyRequest,
    /// The config's samples taken outside any stream, emitted here.
    pending: Arc<PendingMetrics>,
}

impl HttpFilter for ProxyStream {
    fn on_request_headers(&mut self, f: &mut EnvoyFilter, end_of_stream: bool) -> HeadersStatus {
        let mut host = StreamHost::new(f);
        self.pending.flush(&host);
        headers_status(self.req.on_request_headers(&mut host, end_of_stream))
    }

    fn on_request_body(&mut self, f: &mut EnvoyFilter, end_of_stream: bool) -> BodyStatus {
        let size = f.body_len(switchyard_envoy_module::Side::Request);
        body_status(
            self.req
                .on_request_body(&mut StreamHost::new(f), size, end_of_stream),
        )
    }

    fn on_response_headers(&mut self, f: &mut EnvoyFilter, end_of_stream: bool) -> HeadersStatus {
        match self
            .req
            .on_response_headers(&mut StreamHost::new(f), end_of_stream)
        {
            Action::Continue => HeadersStatus::Continue,
            // A retry is in flight (or a local reply went out): hold the answer whole.
            Action::Pause => HeadersStatus::StopAllIterationAndBuffer,
        }
    }

    fn on_response_body(&mut self, f: &mut EnvoyFilter, end_of_stream: bool) -> BodyStatus {
        let size = f.body_len(switchyard_envoy_module::Side::Response);
        body_status(
            self.req
                .on_response_body(&mut StreamHost::new(f), size, end_of_stream),
        )
    }

    fn on_stream_complete(&mut self, f: &mut EnvoyFilter) {
        self.req.on_log(&mut StreamHost::new(f));
    }

    fn on_callout_done(
        &mut self,
        f: &mut EnvoyFilter,
        callout_id: u64,
        outcome: CalloutOutcome,
        response: &CalloutResponse,
    ) {
        let Ok(id) = u32::try_from(callout_id) else {
            return;
        };
        let response = callout_response(outcome, response);
        self.req
            .on_callout_done(&mut StreamHost::new(f), id, response);
    }
}

struct BalancerFactory {
    root: Mutex<BalancerRoot>,
    pending: PendingMetrics,
    _ticker: Option<Ticker>,
    _redis: Option<crate::redis::Poller>,
}

impl BalancerFactory {
    fn new(ctx: &mut ConfigContext, config: &[u8]) -> Result<Self, String> {
        let mut root = BalancerRoot::new(seed());
        let tick = root
            .configure(config)
            .map_err(|e| format!("ai-load-balancer: config refused: {e}"))?;
        define_metrics(ctx)?;
        // Redis is read directly by a module thread; HTTP metrics through config callouts.
        let redis = if ctx.is_validation_mode() {
            None
        } else {
            root.rules().and_then(crate::redis::Poller::start)
        };
        let ticker = tick.and_then(|period| start_ticker(ctx, period));
        Ok(BalancerFactory {
            root: Mutex::new(root),
            pending: PendingMetrics::default(),
            _ticker: ticker,
            _redis: redis,
        })
    }
}

impl FilterFactory for BalancerFactory {
    fn new_filter(&self, _f: &mut EnvoyFilter) -> Box<dyn HttpFilter> {
        Box::new(BalancerStream(lock(&self.root).new_request()))
    }

    fn on_scheduled(&self, ctx: &mut ConfigContext, _event_id: u64) {
        // The balancer's config-level work emits no metrics.
        lock(&self.root).on_tick(&mut ConfigHost::new(ctx, &self.pending));
    }

    fn on_callout_done(
        &self,
        ctx: &mut ConfigContext,
        callout_id: u64,
        outcome: CalloutOutcome,
        response: &CalloutResponse,
    ) {
        let Ok(id) = u32::try_from(callout_id) else {
            return;
        };
        let response = callout_response(outcome, response);
        lock(&self.root).on_callout_done(&ConfigHost::new(ctx, &self.pending), id, &response);
    }
}

struct BalancerStream(BalancerRequest);

impl HttpFilter for BalancerStream {
    fn on_request_headers(&mut self, f: &mut EnvoyFilter, end_of_stream: bool) -> HeadersStatus {
        headers_status(
            self.0
                .on_request_headers(&mut StreamHost::new(f), end_of_stream),
        )
    }

    fn on_request_body(&mut self, f: &mut EnvoyFilter, end_of_stream: bool) -> BodyStatus {
        let size = f.body_len(switchyard_envoy_module::Side::Request);
        body_status(
            self.0
                .on_request_body(&mut StreamHost::new(f), size, end_of_stream),
        )
    }

    fn on_stream_complete(&mut self, f: &mut EnvoyFilter) {
        self.0.on_log(&mut StreamHost::new(f));
    }
}
