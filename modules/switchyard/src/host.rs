//! `Host` over Envoy's dynamic-module ABI: [`StreamHost`] for one stream's hooks, [`ConfigHost`]
//! for a filter config's main-thread work (ticks, background callouts). Shared state lives in
//! process memory ([`SHARED`], a [`SharedMemory`]): every worker thread of this Envoy sees
//! it, each key's value kept as itself behind a lock of its own, never encoded.

use std::cell::RefCell;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};
use switchyard_envoy_module::{
    log as envoy_log, CalloutError, CalloutOutcome, CalloutResponse as EnvoyCallout, ConfigContext,
    EnvoyFilter, Side,
};
use switchyard_filter::host::{
    BodyFacts, Callout, CalloutResponse, Host, HttpHost, RouteKeys, SharedError,
};
use switchyard_filter::shared::{SharedMemory, SharedValue};
use switchyard_policy::stats;

/// Filter-state key of the access-log facts: the same name the Wasm build's facts have
/// (`%FILTER_STATE(wasm.switchyard:PLAIN)%`), so one access-log format serves both runtimes.
pub const LOG_FACTS_KEY: &str = "wasm.switchyard";

/// State shared by every worker.
static SHARED: OnceLock<SharedMemory> = OnceLock::new();

fn shared() -> &'static SharedMemory {
    SHARED.get_or_init(SharedMemory::new)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A seed from the clock's nanoseconds.
pub fn seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64)
}

/// The clock, the seed and the process-wide shared state: the same for every host here.
macro_rules! process_state {
    () => {
        fn now_ms(&self) -> u64 {
            now_ms()
        }

        fn random_seed(&self) -> u64 {
            seed()
        }

        fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
            shared().get_bytes(key)
        }

        fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SharedError> {
            shared().set_bytes(key, value, cas)
        }

        /// The value itself, under its key's lock: nothing decoded or copied.
        fn shared_view<T: SharedValue, R>(
            &self,
            key: &str,
            view: impl FnOnce(Option<&T>) -> R,
        ) -> R {
            shared().view(key, view)
        }

        /// Changed in place under its key's lock: always lands.
        fn shared_update<T: SharedValue, R>(
            &self,
            key: &str,
            init: impl Fn() -> T,
            update: impl FnMut(&mut T) -> R,
        ) -> Option<R> {
            Some(shared().update(key, init, update))
        }
    };
}

/// Start `call` through `start(cluster, headers, body, timeout)`, with the headers as the ABI
/// takes them (`:authority` goes as `host`) and the id as the filters keep it.
fn start_callout(
    call: &Callout<'_>,
    start: impl FnOnce(&str, &[(&str, &[u8])], &[u8], u64) -> Result<u64, CalloutError>,
) -> Result<u32, String> {
    let headers: Vec<(&str, &[u8])> = call
        .headers
        .iter()
        .map(|(k, v)| {
            let k = if *k == ":authority" { "host" } else { *k };
            (k, v.as_bytes())
        })
        .collect();
    let id = start(
        call.cluster,
        &headers,
        call.body.unwrap_or_default(),
        call.timeout_ms,
    )
    .map_err(|e| e.to_string())?;
    u32::try_from(id).map_err(|_| format!("callout id {id} out of range"))
}

/// A finished callout as the filters read it (`status: None` when it got no answer).
pub fn callout_response(outcome: CalloutOutcome, response: &EnvoyCallout<'_>) -> CalloutResponse {
    if outcome != CalloutOutcome::Success {
        return CalloutResponse::default();
    }
    CalloutResponse {
        status: response.status(),
        headers: response
            .headers()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect(),
        body: response.body(),
    }
}

/// Label values as the Wasm build's names carry them.
/// Call `f` with `labels` whose values are sanitised as the Wasm build names them. Up to eight
/// labels (every family of the filters) are handled on the stack; a value that needs no
/// change is not copied.
fn with_labels<T>(labels: &[(&str, &str)], f: impl FnOnce(&[(&str, &str)]) -> T) -> T {
    const MAX: usize = 8;
    let mut owned: [std::borrow::Cow<'_, str>; MAX] = Default::default();
    if labels.len() > MAX {
        let owned: Vec<_> = labels.iter().map(|(_, v)| stats::label_value(v)).collect();
        let l: Vec<(&str, &str)> = labels
            .iter()
            .zip(&owned)
            .map(|((k, _), v)| (*k, v.as_ref()))
            .collect();
        return f(&l);
    }
    for (slot, (_, v)) in owned.iter_mut().zip(labels) {
        *slot = stats::label_value(v);
    }
    let mut l = [("", ""); MAX];
    for ((slot, (k, _)), v) in l.iter_mut().zip(labels).zip(&owned) {
        *slot = (k, v.as_ref());
    }
    f(l.get(..labels.len()).unwrap_or_default())
}

/// The host of one stream, for the duration of one hook.
pub struct StreamHost<'h, 'e> {
    f: RefCell<&'h mut EnvoyFilter<'e>>,
}

impl<'h, 'e> StreamHost<'h, 'e> {
    pub fn new(f: &'h mut EnvoyFilter<'e>) -> Self {
        StreamHost { f: RefCell::new(f) }
    }

    fn string(bytes: Option<&[u8]>) -> Option<String> {
        bytes.map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

impl Host for StreamHost<'_, '_> {
    process_state!();

    fn http_call(&mut self, call: &Callout<'_>) -> Result<u32, String> {
        let f = self.f.get_mut();
        start_callout(call, |c, h, b, t| f.http_callout(c, h, b, t))
    }

    fn count(&self, metric: &str, l: &[(&str, &str)], n: u64) {
        if let Ok(mut f) = self.f.try_borrow_mut() {
            // Summed here and handed over in batches (crate::counters, which sanitises the
            // label values when it hands them over); directly if not.
            if !crate::counters::add(f.worker_index(), metric, l, n) {
                with_labels(l, |l| f.counter_add(metric, l, n));
            }
        }
    }

    fn record(&self, metric: &str, l: &[(&str, &str)], value: u64) {
        if let Ok(mut f) = self.f.try_borrow_mut() {
            with_labels(l, |l| f.histogram_record(metric, l, value));
        }
    }
}

impl HttpHost for StreamHost<'_, '_> {
    fn request_header(&self, name: &str) -> Option<String> {
        Self::string(self.f.borrow().request_header(name))
    }

    fn request_headers(&self) -> Vec<(String, String)> {
        self.f
            .borrow()
            .request_headers()
            .into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    fn set_request_header(&mut self, name: &str, value: Option<&str>) {
        let f = self.f.get_mut();
        match value {
            Some(v) => f.set_request_header(name, v.as_bytes()),
            None => f.remove_request_header(name),
        };
    }

    /// One call reads the header names; removals of absent headers are skipped (most edits
    /// remove client credentials that are not there).
    fn edit_request_headers(&mut self, edits: &[(&str, Option<String>)]) {
        let f = self.f.get_mut();
        let mut absent = 0u64;
        {
            let present = f.request_headers();
            for (i, (name, value)) in edits.iter().enumerate().take(64) {
                if value.is_none()
                    && !present
                        .iter()
                        .any(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
                {
                    absent |= 1 << i;
                }
            }
        }
        for (i, (name, value)) in edits.iter().enumerate() {
            match value {
                Some(v) => {
                    f.set_request_header(name, v.as_bytes());
                }
                None if i < 64 && absent & (1 << i) != 0 => {}
                None => {
                    f.remove_request_header(name);
                }
            }
        }
    }

    fn response_header(&self, name: &str) -> Option<String> {
        Self::string(self.f.borrow().response_header(name))
    }

    fn set_response_header(&mut self, name: &str, value: Option<&str>) {
        let f = self.f.get_mut();
        match value {
            Some(v) => f.set_response_header(name, v.as_bytes()),
            None => f.remove_response_header(name),
        };
    }

    fn request_body(&self, _size: usize) -> Option<Vec<u8>> {
        Some(self.f.borrow().body(Side::Request))
    }

    fn set_request_body(&mut self, _size: usize, body: &[u8]) {
        self.f.get_mut().replace_body(Side::Request, body);
    }

    fn response_body(&self, _size: usize) -> Option<Vec<u8>> {
        Some(self.f.borrow().body(Side::Response))
    }

    fn set_response_body(&mut self, _size: usize, body: &[u8]) {
        self.f.get_mut().replace_body(Side::Response, body);
    }

    fn send_response(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let headers: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        self.f
            .get_mut()
            .send_local_reply(u32::from(status), &headers, body, "switchyard");
    }

    fn resume_request(&mut self) {
        self.f.get_mut().continue_decoding();
    }

    fn resume_response(&mut self) {
        self.f.get_mut().continue_encoding();
    }

    fn clear_route_cache(&mut self) {
        self.f.get_mut().clear_route_cache();
    }

    fn route_keys(&self) -> RouteKeys {
        let f = self.f.borrow();
        RouteKeys {
            route: f.route_name().map(str::to_string),
            host: Self::string(f.request_header(":authority")),
            cluster: f.cluster_name().map(str::to_string),
        }
    }

    fn cluster_name(&self) -> Option<String> {
        self.f.borrow().cluster_name().map(str::to_string)
    }

    /// No metadata filter runs before native filters: they decide from the body itself.
    fn body_facts(&self) -> BodyFacts {
        BodyFacts::default()
    }

    fn final_status(&self) -> Option<u16> {
        self.f
            .borrow()
            .response_code()
            .and_then(|c| u16::try_from(c).ok())
    }

    fn final_status_details(&self) -> Option<String> {
        self.f.borrow().response_code_details().map(str::to_string)
    }

    fn set_log_facts(&mut self, facts: &str) {
        self.f
            .get_mut()
            .set_filter_state(LOG_FACTS_KEY, facts.as_bytes());
    }

    fn holds_headers_for_body(&self) -> bool {
        true
    }
}

/// The host of a filter config's main-thread work (ticks, background callouts).
pub struct ConfigHost<'h, 'c> {
    ctx: RefCell<&'h mut ConfigContext<'c>>,
}

impl<'h, 'c> ConfigHost<'h, 'c> {
    pub fn new(ctx: &'h mut ConfigContext<'c>) -> Self {
        ConfigHost {
            ctx: RefCell::new(ctx),
        }
    }
}

impl Host for ConfigHost<'_, '_> {
    process_state!();

    fn http_call(&mut self, call: &Callout<'_>) -> Result<u32, String> {
        let ctx = self.ctx.get_mut();
        start_callout(call, |c, h, b, t| ctx.http_callout(c, h, b, t))
    }

    /// Straight to Envoy through the config-level call (main thread).
    fn count(&self, metric: &str, l: &[(&str, &str)], n: u64) {
        if let Ok(mut ctx) = self.ctx.try_borrow_mut() {
            with_labels(l, |l| ctx.counter_add(metric, l, n));
        }
    }

    fn record(&self, metric: &str, l: &[(&str, &str)], value: u64) {
        if let Ok(mut ctx) = self.ctx.try_borrow_mut() {
            with_labels(l, |l| ctx.histogram_record(metric, l, value));
        }
    }
}

/// Hosts with only shared state and a clock: a thread the module owns (Redis polling).
pub struct ThreadHost;

impl Host for ThreadHost {
    process_state!();

    fn http_call(&mut self, _call: &Callout<'_>) -> Result<u32, String> {
        Err("no callouts from a module thread".into())
    }

    fn count(&self, _metric: &str, _labels: &[(&str, &str)], _n: u64) {}

    fn record(&self, _metric: &str, _labels: &[(&str, &str)], _value: u64) {}
}

/// Routes the `log` facade (which the filters use) to Envoy's log.
struct EnvoyLogger;

impl log::Log for EnvoyLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        envoy_log::enabled(level(metadata.level()))
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = level(record.level());
        if envoy_log::enabled(level) {
            envoy_log::log(level, &record.args().to_string());
        }
    }

    fn flush(&self) {}
}

fn level(l: log::Level) -> envoy_log::Level {
    match l {
        log::Level::Error => envoy_log::Level::Error,
        log::Level::Warn => envoy_log::Level::Warn,
        log::Level::Info => envoy_log::Level::Info,
        log::Level::Debug => envoy_log::Level::Debug,
        log::Level::Trace => envoy_log::Level::Trace,
    }
}

static LOGGER: EnvoyLogger = EnvoyLogger;

/// Install the logger (once per process; later calls do nothing).
pub fn install_logger() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
}
