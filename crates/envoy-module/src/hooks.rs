//! The event hooks Envoy calls (`envoy_dynamic_module_on_*`), exported with the signatures of
//! abi.h (v0.1.0). Each one only converts pointers and dispatches to the module's
//! [`FilterFactory`]/[`HttpFilter`]; each runs that code under `catch_unwind`, so a panic never
//! unwinds into Envoy.
//!
//! Pointer ownership: the config-module pointer is a leaked `Box<Arc<ConfigState>>` (freed in
//! `..._config_destroy`), the filter-module pointer a leaked `Box<FilterSlot>` (freed in
//! `..._filter_destroy`). Envoy calls one stream's hooks on one worker thread, one at a time,
//! so turning the filter pointer into `&mut FilterSlot` for the duration of a hook is unique.

use crate::abi::{self, EnvoyBuffer, EnvoyHttpHeader};
use crate::config::{ConfigContext, ConfigState, PANICS_METRIC};
use crate::filter::{CalloutOutcome, CalloutResponse, EnvoyFilter};
use crate::metrics::Metrics;
use crate::{log, HttpFilter, NewConfig};
use std::cell::RefCell;
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};

static NEW_CONFIG: OnceLock<NewConfig> = OnceLock::new();

thread_local! {
    /// Message and location of the last panic on this thread (set by our panic hook).
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

pub(crate) fn program_init(new_config: NewConfig) -> *const c_char {
    let _ = NEW_CONFIG.set(new_config);
    // Record panics instead of printing them to Envoy's stderr; the hook that catches the
    // unwind logs the message through Envoy's log.
    std::panic::set_hook(Box::new(|info| {
        let msg = format!("{info}");
        let _ = LAST_PANIC.try_with(|p| {
            if let Ok(mut p) = p.try_borrow_mut() {
                *p = Some(msg);
            }
        });
    }));
    abi::ABI_VERSION.as_ptr().cast()
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let recorded = LAST_PANIC
        .try_with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.take()))
        .ok()
        .flatten();
    recorded.unwrap_or_else(|| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic with a non-string payload".into())
    })
}

/// Run `f`; if it panics, log and return `fallback`. The last line of defence of every hook.
fn shield<R>(hook: &str, fallback: R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = panic_message(payload.as_ref());
            let _ = catch_unwind(|| log::error(&format!("switchyard: panic in {hook}: {msg}")));
            fallback
        }
    }
}

/// # Safety
/// `b` must be null or valid for `length` bytes until the hook returns.
unsafe fn envoy_bytes<'a>(b: EnvoyBuffer) -> &'a [u8] {
    if b.ptr.is_null() || b.length == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(b.ptr, b.length)
    }
}

// ----------------------------------------------------------------------------- config hooks

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    config_envoy: abi::ConfigEnvoyPtr,
    name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> abi::ConfigModulePtr {
    shield("config_new", std::ptr::null(), || {
        // SAFETY: Envoy's buffers are valid for this hook.
        let (name, config) = unsafe { (envoy_bytes(name), envoy_bytes(config)) };
        let name = String::from_utf8_lossy(name).into_owned();
        let Some(new_config) = NEW_CONFIG.get() else {
            log::error("switchyard: module not initialised (no declare_module!)");
            return std::ptr::null();
        };
        let mut metrics = Metrics::default();
        let mut ctx = ConfigContext::creating(config_envoy, &mut metrics);
        if let Err(e) = ctx.define_counter(PANICS_METRIC, &["filter"]) {
            log::warn(&format!("switchyard: {e}"));
        }
        match new_config(&mut ctx, &name, config) {
            Ok(factory) => {
                let state = ConfigState {
                    filter_name: name,
                    metrics,
                    factory: Some(factory),
                };
                Box::into_raw(Box::new(Arc::new(state))) as abi::ConfigModulePtr
            }
            Err(e) => {
                log::error(&format!(
                    "switchyard: filter {name:?} rejected its config: {e}"
                ));
                std::ptr::null()
            }
        }
    })
}

/// # Safety
/// `p` must be a pointer returned by `config_new` and not yet destroyed.
unsafe fn config_ref<'a>(p: abi::ConfigModulePtr) -> Option<&'a Arc<ConfigState>> {
    (p as *const Arc<ConfigState>).as_ref()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: abi::ConfigModulePtr) {
    shield("config_destroy", (), || {
        if !config.is_null() {
            // SAFETY: created by Box::into_raw in config_new; Envoy destroys it once.
            drop(unsafe { Box::from_raw(config as *mut Arc<ConfigState>) });
        }
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_new(
    name: EnvoyBuffer,
    _config: EnvoyBuffer,
) -> abi::PerRouteConfigModulePtr {
    shield("per_route_config_new", std::ptr::null(), || {
        // SAFETY: Envoy's buffer is valid for this hook.
        let name = String::from_utf8_lossy(unsafe { envoy_bytes(name) }).into_owned();
        log::error(&format!(
            "switchyard: per-route config for {name:?} is not supported"
        ));
        std::ptr::null()
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_destroy(
    _config: abi::PerRouteConfigModulePtr,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(
    config_envoy: abi::ConfigEnvoyPtr,
    config: abi::ConfigModulePtr,
    event_id: u64,
) {
    shield("config_scheduled", (), || {
        // SAFETY: Envoy passes the live pointer from config_new.
        let Some(state) = (unsafe { config_ref(config) }) else {
            return;
        };
        if let Some(factory) = &state.factory {
            factory.on_scheduled(
                &mut ConfigContext::created(config_envoy, &state.metrics),
                event_id,
            );
        }
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_callout_done(
    config_envoy: abi::ConfigEnvoyPtr,
    config: abi::ConfigModulePtr,
    callout_id: u64,
    result: abi::CalloutResult,
    headers: *mut EnvoyHttpHeader,
    headers_size: usize,
    body: *mut EnvoyBuffer,
    body_size: usize,
) {
    shield("config_http_callout_done", (), || {
        // SAFETY: Envoy passes the live pointer from config_new.
        let Some(state) = (unsafe { config_ref(config) }) else {
            return;
        };
        // SAFETY: Envoy's arrays are valid (or null) until this hook returns.
        let response = unsafe { CalloutResponse::new(headers, headers_size, body, body_size) };
        if let Some(factory) = &state.factory {
            factory.on_callout_done(
                &mut ConfigContext::created(config_envoy, &state.metrics),
                callout_id,
                CalloutOutcome::from_raw(result),
                &response,
            );
        }
    })
}

// Streamed config callouts are not used: the hooks exist because Envoy may look them up.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_headers(
    _ce: abi::ConfigEnvoyPtr,
    _cm: abi::ConfigModulePtr,
    _stream_id: u64,
    _headers: *mut EnvoyHttpHeader,
    _headers_size: usize,
    _end_stream: bool,
) {
}
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_data(
    _ce: abi::ConfigEnvoyPtr,
    _cm: abi::ConfigModulePtr,
    _stream_id: u64,
    _data: *const EnvoyBuffer,
    _data_count: usize,
    _end_stream: bool,
) {
}
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_trailers(
    _ce: abi::ConfigEnvoyPtr,
    _cm: abi::ConfigModulePtr,
    _stream_id: u64,
    _trailers: *mut EnvoyHttpHeader,
    _trailers_size: usize,
) {
}
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_complete(
    _ce: abi::ConfigEnvoyPtr,
    _cm: abi::ConfigModulePtr,
    _stream_id: u64,
) {
}
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_reset(
    _ce: abi::ConfigEnvoyPtr,
    _cm: abi::ConfigModulePtr,
    _stream_id: u64,
    _reason: u32,
) {
}

// ----------------------------------------------------------------------------- stream hooks

/// One stream's module-side state.
struct FilterSlot {
    config: Arc<ConfigState>,
    /// `None` once the filter panicked (or failed to be created): later hooks pass through.
    filter: Option<Box<dyn HttpFilter>>,
    /// The factory panicked: answer the request with the 500 at its first hook.
    failed_to_create: bool,
}

/// # Safety
/// `p` must be a pointer returned by `filter_new` and not yet destroyed, used by one thread.
unsafe fn slot<'a>(p: abi::FilterModulePtr) -> Option<&'a mut FilterSlot> {
    (p as *mut FilterSlot).as_mut()
}

const PANIC_REPLY: &[u8] = br#"{"error":{"message":"internal error in the gateway","type":"server_error","code":"internal_error"}}"#;

/// After a panic in module code: log it, count it, and answer 500 (Envoy sends the local reply
/// when no response has gone downstream yet and resets the stream otherwise).
fn contain_panic(envoy: abi::FilterEnvoyPtr, config: &ConfigState, hook: &str, msg: &str) {
    log::error(&format!(
        "switchyard: filter {:?} panicked in {hook}: {msg}",
        config.filter_name
    ));
    let mut f = EnvoyFilter::new(envoy, config);
    f.counter_add(PANICS_METRIC, &[("filter", &config.filter_name)], 1);
    f.send_local_reply(
        500,
        &[("content-type", b"application/json")],
        PANIC_REPLY,
        "switchyard_module_panic",
    );
}

/// Run one stream hook: `passthrough` when the filter is gone, `stopped` after a panic.
fn run<R>(
    envoy: abi::FilterEnvoyPtr,
    module: abi::FilterModulePtr,
    hook: &'static str,
    passthrough: R,
    stopped: R,
    call: impl FnOnce(&mut dyn HttpFilter, &mut EnvoyFilter) -> R,
) -> R {
    // SAFETY: Envoy passes the live pointer from filter_new, on the stream's thread.
    let Some(slot) = (unsafe { slot(module) }) else {
        return passthrough;
    };
    if slot.failed_to_create {
        slot.failed_to_create = false;
        contain_panic(
            envoy,
            &slot.config,
            "filter creation",
            "see the earlier panic",
        );
        return stopped;
    }
    let Some(filter) = slot.filter.as_mut() else {
        return passthrough;
    };
    let mut f = EnvoyFilter::new(envoy, &slot.config);
    match catch_unwind(AssertUnwindSafe(|| call(filter.as_mut(), &mut f))) {
        Ok(r) => r,
        Err(payload) => {
            let msg = panic_message(payload.as_ref());
            // Drop the filter now (its state may be half-updated); a panic in its Drop is
            // caught too.
            let dead = slot.filter.take();
            let _ = catch_unwind(AssertUnwindSafe(move || drop(dead)));
            let _ = catch_unwind(AssertUnwindSafe(|| {
                contain_panic(envoy, &slot.config, hook, &msg)
            }));
            stopped
        }
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config: abi::ConfigModulePtr,
    envoy: abi::FilterEnvoyPtr,
) -> abi::FilterModulePtr {
    shield("filter_new", std::ptr::null(), || {
        // SAFETY: Envoy passes the live pointer from config_new.
        let Some(state) = (unsafe { config_ref(config) }) else {
            return std::ptr::null();
        };
        let state = Arc::clone(state);
        let made = catch_unwind(AssertUnwindSafe(|| {
            let mut f = EnvoyFilter::new(envoy, &state);
            state
                .factory
                .as_ref()
                .map(|factory| factory.new_filter(&mut f))
        }));
        let (filter, failed_to_create) = match made {
            Ok(filter) => (filter, false),
            Err(payload) => {
                let msg = panic_message(payload.as_ref());
                log::error(&format!(
                    "switchyard: filter {:?} panicked while creating a stream filter: {msg}",
                    state.filter_name
                ));
                (None, true)
            }
        };
        let slot = FilterSlot {
            config: state,
            filter,
            failed_to_create,
        };
        Box::into_raw(Box::new(slot)) as abi::FilterModulePtr
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(module: abi::FilterModulePtr) {
    shield("filter_destroy", (), || {
        if !module.is_null() {
            // SAFETY: created by Box::into_raw in filter_new; Envoy destroys it once.
            drop(unsafe { Box::from_raw(module as *mut FilterSlot) });
        }
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    envoy: abi::FilterEnvoyPtr,
    module: abi::FilterModulePtr,
    end_of_stream: bool,
) -> abi::Status {
    shield("request_headers", abi::HEADERS_CONTINUE, || {
        run(
            envoy,
            module,
            "request_headers",
            abi::HEADERS_CONTINUE,
            abi::HEADERS_STOP_ITERATION,
            |h, f| h.on_request_headers(f, end_of_stream).raw(),
        )
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    envoy: abi::FilterEnvoyPtr,
    module: abi::FilterModulePtr,
    end_of_stream: bool,
) -> abi::Status {
    shield("request_body", abi::BODY_CONTINUE, || {
        run(
            envoy,
            module,
            "request_body",
            abi::BODY_CONTINUE,
            abi::BODY_STOP_NO_BUFFER,
            |h, f| h.on_request_body(f, end_of_stream).raw(),
        )
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    envoy: abi::FilterEnvoyPtr,
    module: abi::FilterModulePtr,
) -> abi::Status {
    shield("request_trailers", abi::TRAILERS_CONTINUE, || {
        run(
            envoy,
            module,
            "request_trailers",
            abi::TRAILERS_CONTINUE,
            abi::TRAILERS_STOP,
            |h, f| h.on_request_trailers(f).raw(),
        )
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    envoy: abi::FilterEnvoyPtr,
    module: abi::FilterModulePtr,
    end_of_stream: bool,
) -> abi::Status {
    shield("response_headers", abi::HEADERS_CONTINUE, || {
        run(
            envoy,
            module,
            "response_headers",
            abi::HEADERS_CONTINUE,
            abi::HEADERS_STOP_ITERATION,
            |h, f| h.on_response_headers(f, end_of_stream).raw(),
        )
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    envoy: abi::FilterEnvoyPtr,
    module: abi::FilterModulePtr,
    end_of_stream: bool,
) -> abi::Status {
    shield("response_body", abi::BODY_CONTINUE, || {
        run(
            envoy,
            module,
            "response_body",
            abi::BODY_CONTINUE,
            abi::BODY_STOP_NO_BUFFER,
            |h, f| h.on_response_body(f, end_of_stream).raw(),
        )
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    envoy: abi::FilterEnvoyPtr,
    module: abi::FilterModulePtr,
) -> abi::Status {
    shield("response_trailers", abi::TRAILERS_CONTINUE, || {
        run(
            envoy,
            module,
            "response_trailers",
            abi::TRAILERS_CONTINUE,
            abi::TRAILERS_STOP,
            |h, f| h.on_response_trailers(f).raw(),
        )
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    envoy: abi::FilterEnvoyPtr,
    module: abi::FilterModulePtr,
) {
    shield("stream_complete", (), || {
        // No reply is possible any more: a panic here is logged and counted only.
        // SAFETY: Envoy passes the live pointer from filter_new, on the stream's thread.
        let Some(slot) = (unsafe { slot(module) }) else {
            return;
        };
        let Some(filter) = slot.filter.as_mut() else {
            return;
        };
        let mut f = EnvoyFilter::new(envoy, &slot.config);
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| filter.on_stream_complete(&mut f))) {
            let msg = panic_message(payload.as_ref());
            slot.filter = None;
            log::error(&format!(
                "switchyard: filter {:?} panicked in stream_complete: {msg}",
                slot.config.filter_name
            ));
            let mut f = EnvoyFilter::new(envoy, &slot.config);
            f.counter_add(PANICS_METRIC, &[("filter", &slot.config.filter_name)], 1);
        }
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    envoy: abi::FilterEnvoyPtr,
    module: abi::FilterModulePtr,
    callout_id: u64,
    result: abi::CalloutResult,
    headers: *mut EnvoyHttpHeader,
    headers_size: usize,
    body: *mut EnvoyBuffer,
    body_size: usize,
) {
    shield("http_callout_done", (), || {
        // SAFETY: Envoy's arrays are valid (or null) until this hook returns.
        let response = unsafe { CalloutResponse::new(headers, headers_size, body, body_size) };
        let outcome = CalloutOutcome::from_raw(result);
        run(envoy, module, "http_callout_done", (), (), |h, f| {
            h.on_callout_done(f, callout_id, outcome, &response)
        })
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    envoy: abi::FilterEnvoyPtr,
    module: abi::FilterModulePtr,
    event_id: u64,
) {
    shield("scheduled", (), || {
        run(envoy, module, "scheduled", (), (), |h, f| {
            h.on_scheduled(f, event_id)
        })
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_local_reply(
    _envoy: abi::FilterEnvoyPtr,
    _module: abi::FilterModulePtr,
    _response_code: u32,
    _details: EnvoyBuffer,
    _reset_imminent: bool,
) -> abi::Status {
    abi::LOCAL_REPLY_CONTINUE
}

// Streamed per-stream callouts and watermarks are not used.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _envoy: abi::FilterEnvoyPtr,
    _module: abi::FilterModulePtr,
    _stream_id: u64,
    _headers: *mut EnvoyHttpHeader,
    _headers_size: usize,
    _end_stream: bool,
) {
}
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _envoy: abi::FilterEnvoyPtr,
    _module: abi::FilterModulePtr,
    _stream_id: u64,
    _data: *const EnvoyBuffer,
    _data_count: usize,
    _end_stream: bool,
) {
}
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _envoy: abi::FilterEnvoyPtr,
    _module: abi::FilterModulePtr,
    _stream_id: u64,
    _trailers: *mut EnvoyHttpHeader,
    _trailers_size: usize,
) {
}
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    _envoy: abi::FilterEnvoyPtr,
    _module: abi::FilterModulePtr,
    _stream_id: u64,
) {
}
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _envoy: abi::FilterEnvoyPtr,
    _module: abi::FilterModulePtr,
    _stream_id: u64,
    _reason: u32,
) {
}
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _envoy: abi::FilterEnvoyPtr,
    _module: abi::FilterModulePtr,
) {
}
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _envoy: abi::FilterEnvoyPtr,
    _module: abi::FilterModulePtr,
) {
}
