//! A safe Rust binding to Envoy's dynamic-module ABI for HTTP filters (Envoy 1.40).
//!
//! - [`abi`]: our own `extern "C"` declarations (the only `unsafe` surface besides the hooks).
//! - [`EnvoyFilter`]: one stream's filter in Envoy, lent to filter code for one event hook.
//! - [`ConfigContext`]: one filter config in Envoy (metric definitions, config-owned callouts,
//!   main-thread scheduler).
//! - [`HttpFilter`] / [`FilterFactory`]: what a module implements; [`declare_module!`] names the
//!   function that turns `(filter_name, filter_config)` into a factory.
//!
//! `filter_config` arrives as the bytes of the `google.protobuf.StringValue`'s `value` (the raw
//! JSON text, not a serialized `Any`); Envoy 1.40 unwraps the wrapper before calling us.
//!
//! Every exported hook runs module code under `catch_unwind` (see `hooks.rs`): a panic is
//! logged, counted in [`PANICS_METRIC`], answered with a 500 OpenAI-style error when the response
//! has not started (the stream is reset otherwise), and the stream's filter is dropped; Envoy
//! keeps serving. This needs `panic = "unwind"`: build with `--profile native`.

pub mod abi;
mod config;
mod filter;
mod hooks;
pub mod log;
mod metrics;

pub use config::{ConfigContext, ConfigScheduler, PANICS_METRIC};
pub use filter::{
    Attribute, BodyStatus, CalloutError, CalloutOutcome, CalloutResponse, EnvoyFilter,
    FilterScheduler, HeadersStatus, Side, TrailersStatus,
};
pub use metrics::MetricKind;

/// The filter of one HTTP stream. Every hook has a pass-through default.
pub trait HttpFilter {
    fn on_request_headers(&mut self, _f: &mut EnvoyFilter, _end_of_stream: bool) -> HeadersStatus {
        HeadersStatus::Continue
    }
    fn on_request_body(&mut self, _f: &mut EnvoyFilter, _end_of_stream: bool) -> BodyStatus {
        BodyStatus::Continue
    }
    fn on_request_trailers(&mut self, _f: &mut EnvoyFilter) -> TrailersStatus {
        TrailersStatus::Continue
    }
    fn on_response_headers(&mut self, _f: &mut EnvoyFilter, _end_of_stream: bool) -> HeadersStatus {
        HeadersStatus::Continue
    }
    fn on_response_body(&mut self, _f: &mut EnvoyFilter, _end_of_stream: bool) -> BodyStatus {
        BodyStatus::Continue
    }
    fn on_response_trailers(&mut self, _f: &mut EnvoyFilter) -> TrailersStatus {
        TrailersStatus::Continue
    }
    /// The stream is over (before access logs are written); last chance for metrics.
    fn on_stream_complete(&mut self, _f: &mut EnvoyFilter) {}
    /// A callout started with [`EnvoyFilter::http_callout`] finished.
    fn on_callout_done(
        &mut self,
        _f: &mut EnvoyFilter,
        _callout_id: u64,
        _outcome: CalloutOutcome,
        _response: &CalloutResponse,
    ) {
    }
    /// An event posted through a [`FilterScheduler`] of this stream.
    fn on_scheduled(&mut self, _f: &mut EnvoyFilter, _event_id: u64) {}
}

/// Made once per filter config (main thread); makes one [`HttpFilter`] per stream (workers).
pub trait FilterFactory: Send + Sync {
    fn new_filter(&self, f: &mut EnvoyFilter) -> Box<dyn HttpFilter>;
    /// An event posted through a [`ConfigScheduler`] (main thread).
    fn on_scheduled(&self, _ctx: &mut ConfigContext, _event_id: u64) {}
    /// A callout started with [`ConfigContext::http_callout`] finished (main thread).
    fn on_callout_done(
        &self,
        _ctx: &mut ConfigContext,
        _callout_id: u64,
        _outcome: CalloutOutcome,
        _response: &CalloutResponse,
    ) {
    }
}

/// Turns `(filter_name, filter_config bytes)` into a factory; may define metrics on the
/// context. An `Err` rejects the config (Envoy logs it and refuses the listener).
pub type NewConfig = fn(&mut ConfigContext, &str, &[u8]) -> Result<Box<dyn FilterFactory>, String>;

/// Exports `envoy_dynamic_module_on_program_init` from the module's cdylib, registering
/// `$new_config` (a [`NewConfig`]). The other hooks are exported by this crate.
#[macro_export]
macro_rules! declare_module {
    ($new_config:path) => {
        /// Called once by Envoy when it loads the module: returns the ABI version.
        #[no_mangle]
        pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const ::std::ffi::c_char {
            $crate::__program_init($new_config)
        }
    };
}

#[doc(hidden)]
pub fn __program_init(new_config: NewConfig) -> *const std::ffi::c_char {
    hooks::program_init(new_config)
}
