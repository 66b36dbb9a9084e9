//! The two filters as dynamic-module filters: adapters from the module's hooks to
//! `switchyard_filter`, over [`crate::host`]. A filter config's periodic work (token health
//! checks, metric polling) runs on Envoy's main thread, woken by a thread the module owns
//! ([`Ticker`]); workers never wait for it.

use crate::counters;
use crate::host::{callout_response, install_logger, seed, ConfigHost, StreamHost};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use switchyard_envoy_module::{
    BodyStatus, CalloutOutcome, CalloutResponse, ConfigContext, EnvoyFilter, FilterFactory,
    HeadersStatus, HttpFilter,
};
use switchyard_filter::balancer::{BalancerRequest, BalancerRoot};
use switchyard_filter::host::CalloutResponse as SwitchyardCallout;
use switchyard_filter::proxy::{ProxyRequest, ProxyRoot};
use switchyard_filter::Action;
use switchyard_policy::stats::{Kind, METRICS};

/// Scheduler events: the root's periodic work, and handing summed counters to Envoy.
const TICK: u64 = 1;
const FLUSH: u64 = 2;

/// Wakes a config's `on_scheduled` on the main thread until dropped: [`FLUSH`] every
/// [`counters::FLUSH_PERIOD`], and [`TICK`] every `period` when the root has periodic work.
struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn start_ticker(ctx: &mut ConfigContext, period: Option<Duration>) -> Option<Ticker> {
    if ctx.is_validation_mode() {
        return None;
    }
    let scheduler = ctx.scheduler()?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let step = period.map_or(counters::FLUSH_PERIOD, |p| p.min(counters::FLUSH_PERIOD));
    let spawned = std::thread::Builder::new()
        .name("switchyard-tick".into())
        .spawn(move || {
            let (mut since_flush, mut since_tick) = (Duration::ZERO, Duration::ZERO);
            loop {
                std::thread::sleep(step);
                if stopped.load(Ordering::Acquire) {
                    break;
                }
                since_flush += step;
                since_tick += step;
                if since_flush >= counters::FLUSH_PERIOD {
                    since_flush = Duration::ZERO;
                    scheduler.commit(FLUSH);
                }
                if period.is_some_and(|p| since_tick >= p) {
                    since_tick = Duration::ZERO;
                    scheduler.commit(TICK);
                }
            }
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
    let made =
        match filter_name {
            "ai-proxy" => Factory::<ProxyRoot>::new(ctx, config)
                .map(|f| Box::new(f) as Box<dyn FilterFactory>),
            "ai-load-balancer" => Factory::<BalancerRoot>::new(ctx, config)
                .map(|f| Box::new(f) as Box<dyn FilterFactory>),
            _ => return None,
        };
    Some(made)
}

/// A filter's per-config side, as [`Factory`] drives it.
trait Root: Send + Sized + 'static {
    type Stream: HttpFilter + 'static;
    const NAME: &'static str;

    fn new(seed: u64) -> Self;
    /// Take the config; the period of the root's periodic work, if any.
    fn configure(&mut self, config: &[u8]) -> Result<Option<Duration>, String>;
    fn new_stream(&self) -> Self::Stream;
    fn on_tick(&mut self, host: &mut ConfigHost);
    fn on_callout_done(&mut self, host: &ConfigHost, id: u32, response: &SwitchyardCallout);
    /// Background work the config owns besides the ticker (dropped with the config).
    fn background(&self, _ctx: &mut ConfigContext) -> Option<Box<dyn Send + Sync>> {
        None
    }
}

/// One filter config: the root behind a lock (main-thread work and new streams), the ticker
/// and whatever background work the root started.
struct Factory<R: Root> {
    root: Mutex<R>,
    _ticker: Option<Ticker>,
    _background: Option<Box<dyn Send + Sync>>,
}

impl<R: Root> Factory<R> {
    fn new(ctx: &mut ConfigContext, config: &[u8]) -> Result<Self, String> {
        let mut root = R::new(seed());
        let tick = root
            .configure(config)
            .map_err(|e| format!("{}: config refused: {e}", R::NAME))?;
        define_metrics(ctx)?;
        let background = if ctx.is_validation_mode() {
            None
        } else {
            root.background(ctx)
        };
        Ok(Factory {
            root: Mutex::new(root),
            _ticker: start_ticker(ctx, tick),
            _background: background,
        })
    }
}

impl<R: Root> FilterFactory for Factory<R> {
    fn new_filter(&self, _f: &mut EnvoyFilter) -> Box<dyn HttpFilter> {
        Box::new(lock(&self.root).new_stream())
    }

    fn on_scheduled(&self, ctx: &mut ConfigContext, event_id: u64) {
        match event_id {
            FLUSH => counters::flush(|metric, labels, n| {
                ctx.counter_add(metric, labels, n);
            }),
            _ => lock(&self.root).on_tick(&mut ConfigHost::new(ctx)),
        }
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
        lock(&self.root).on_callout_done(&ConfigHost::new(ctx), id, &response);
    }
}

impl Root for ProxyRoot {
    type Stream = ProxyStream;
    const NAME: &'static str = "ai-proxy";

    fn new(seed: u64) -> Self {
        ProxyRoot::new(seed)
    }
    fn configure(&mut self, config: &[u8]) -> Result<Option<Duration>, String> {
        ProxyRoot::configure(self, config)
    }
    fn new_stream(&self) -> ProxyStream {
        ProxyStream(self.new_request())
    }
    fn on_tick(&mut self, host: &mut ConfigHost) {
        ProxyRoot::on_tick(self, host)
    }
    fn on_callout_done(&mut self, host: &ConfigHost, id: u32, response: &SwitchyardCallout) {
        ProxyRoot::on_callout_done(self, host, id, response)
    }
}

struct ProxyStream(ProxyRequest);

impl HttpFilter for ProxyStream {
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

    fn on_response_headers(&mut self, f: &mut EnvoyFilter, end_of_stream: bool) -> HeadersStatus {
        match self
            .0
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
            self.0
                .on_response_body(&mut StreamHost::new(f), size, end_of_stream),
        )
    }

    fn on_stream_complete(&mut self, f: &mut EnvoyFilter) {
        self.0.on_log(&mut StreamHost::new(f));
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
        self.0
            .on_callout_done(&mut StreamHost::new(f), id, response);
    }
}

impl Root for BalancerRoot {
    type Stream = BalancerStream;
    const NAME: &'static str = "ai-load-balancer";

    fn new(seed: u64) -> Self {
        BalancerRoot::new(seed)
    }
    fn configure(&mut self, config: &[u8]) -> Result<Option<Duration>, String> {
        BalancerRoot::configure(self, config)
    }
    fn new_stream(&self) -> BalancerStream {
        BalancerStream(self.new_request())
    }
    fn on_tick(&mut self, host: &mut ConfigHost) {
        BalancerRoot::on_tick(self, host);
    }
    fn on_callout_done(&mut self, host: &ConfigHost, id: u32, response: &SwitchyardCallout) {
        BalancerRoot::on_callout_done(self, host, id, response)
    }
    /// Redis is read directly by a module thread; HTTP metrics through config callouts.
    fn background(&self, _ctx: &mut ConfigContext) -> Option<Box<dyn Send + Sync>> {
        let poller = self.rules().and_then(crate::redis::Poller::start)?;
        Some(Box::new(poller))
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
