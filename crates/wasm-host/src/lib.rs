//! The only crate that talks to the Proxy-Wasm host: [`WasmHost`] implements the filter
//! core's `Host` traits over Proxy-Wasm host calls, plus metrics with cached ids, and
//! (feature `higress`) Higress's Redis host calls. The plugins are adapters from the SDK's
//! contexts to the filters in `switchyard_filter`.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, Status};
use std::time::Duration;
use switchyard_filter::host::{
    BodyFacts, Callout, CalloutResponse, Host, HttpHost, RouteKeys, SharedError,
};

/// Dynamic-metadata namespace that Envoy's `json_to_metadata` filter fills for the plugins.
pub const METADATA_NAMESPACE: &str = "switchyard";

/// Filter state key of the per-request facts (`%FILTER_STATE(wasm.switchyard:PLAIN)%`).
pub const FILTER_STATE_KEY: &str = "switchyard";

/// The Proxy-Wasm host, for whichever context is current (host calls act on it).
#[derive(Debug, Default, Clone, Copy)]
pub struct WasmHost;

impl Host for WasmHost {
    fn now_ms(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn random_seed(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64)
    }

    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        match hostcalls::get_shared_data(key) {
            Ok(x) => x,
            Err(e) => {
                log::debug!("get_shared_data({key}): {e:?}");
                (None, None)
            }
        }
    }

    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SharedError> {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(SharedError::CasMismatch),
            Err(e) => Err(SharedError::Failed(format!("{e:?}"))),
        }
    }

    fn http_call(&mut self, call: &Callout<'_>) -> Result<u32, String> {
        hostcalls::dispatch_http_call(
            call.cluster,
            call.headers.to_vec(),
            call.body,
            vec![],
            Duration::from_millis(call.timeout_ms),
        )
        .map_err(|e| format!("{e:?}"))
    }

    fn count(&self, metric: &str, labels: &[(&str, &str)], n: u64) {
        metrics::count(metric, labels, n);
    }

    fn record(&self, metric: &str, labels: &[(&str, &str)], value: u64) {
        metrics::record(metric, labels, value);
    }
}

fn header(map: MapType, name: &str) -> Option<String> {
    hostcalls::get_map_value(map, name).ok().flatten()
}

fn set_header(map: MapType, name: &str, value: Option<&str>) {
    if let Err(e) = hostcalls::set_map_value(map, name, value) {
        log::debug!("set {name}: {e:?}");
    }
}

fn set_body(buffer: BufferType, size: usize, body: &[u8]) {
    if let Err(e) = hostcalls::set_buffer(buffer, 0, size, body) {
        log::warn!("set_buffer({buffer:?}): {e:?}");
    }
}

impl HttpHost for WasmHost {
    fn request_header(&self, name: &str) -> Option<String> {
        header(MapType::HttpRequestHeaders, name)
    }

    fn request_headers(&self) -> Vec<(String, String)> {
        hostcalls::get_map(MapType::HttpRequestHeaders).unwrap_or_default()
    }

    fn set_request_header(&mut self, name: &str, value: Option<&str>) {
        set_header(MapType::HttpRequestHeaders, name, value);
    }

    fn response_header(&self, name: &str) -> Option<String> {
        header(MapType::HttpResponseHeaders, name)
    }

    fn set_response_header(&mut self, name: &str, value: Option<&str>) {
        set_header(MapType::HttpResponseHeaders, name, value);
    }

    fn request_body(&self, size: usize) -> Option<Vec<u8>> {
        hostcalls::get_buffer(BufferType::HttpRequestBody, 0, size)
            .ok()
            .flatten()
    }

    fn set_request_body(&mut self, size: usize, body: &[u8]) {
        set_body(BufferType::HttpRequestBody, size, body);
    }

    fn response_body(&self, size: usize) -> Option<Vec<u8>> {
        hostcalls::get_buffer(BufferType::HttpResponseBody, 0, size)
            .ok()
            .flatten()
    }

    fn set_response_body(&mut self, size: usize, body: &[u8]) {
        set_body(BufferType::HttpResponseBody, size, body);
    }

    fn send_response(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        if let Err(e) =
            hostcalls::send_http_response(u32::from(status), headers.to_vec(), Some(body))
        {
            log::warn!("send_http_response failed: {e:?}");
            // The stream must not stay held (a retry's answer that could not be sent).
            let _ = hostcalls::resume_http_response();
        }
    }

    fn resume_request(&mut self) {
        let _ = hostcalls::resume_http_request();
    }

    fn resume_response(&mut self) {
        let _ = hostcalls::resume_http_response();
    }

    /// ABI 0.2.1 plugins on Envoy >= 1.33 already get this on header change; the foreign
    /// function makes it explicit and is absent on some hosts, which is fine.
    fn clear_route_cache(&mut self) {
        match hostcalls::call_foreign_function("clear_route_cache", None::<&[u8]>) {
            Ok(_) | Err(Status::NotFound) => {}
            Err(e) => log::debug!("clear_route_cache: {e:?}"),
        }
    }

    fn route_keys(&self) -> RouteKeys {
        RouteKeys {
            route: property_string(&["xds", "route_name"]),
            host: header(MapType::HttpRequestHeaders, ":authority"),
            cluster: property_string(&["xds", "cluster_name"]),
        }
    }

    fn cluster_name(&self) -> Option<String> {
        property_string(&["xds", "cluster_name"])
    }

    /// One host call for the whole namespace (each call that returns data costs a trip back
    /// into the VM for the allocation, so one read beats one per key).
    fn body_facts(&self) -> BodyFacts {
        property(&["metadata", "filter_metadata", METADATA_NAMESPACE])
            .map(|b| body_facts_from_pairs(&b))
            .unwrap_or_default()
    }

    fn final_status(&self) -> Option<u16> {
        property(&["response", "code"])
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(u64::from_le_bytes)
            .and_then(|c| u16::try_from(c).ok())
    }

    fn final_status_details(&self) -> Option<String> {
        property_string(&["response", "code_details"])
    }

    fn set_log_facts(&mut self, facts: &str) {
        if let Err(e) = hostcalls::set_property(vec![FILTER_STATE_KEY], Some(facts.as_bytes())) {
            log::debug!("set_property({FILTER_STATE_KEY}): {e:?}");
        }
    }
}

/// The SDK's action for a filter's.
pub fn action(a: switchyard_filter::Action) -> proxy_wasm::types::Action {
    match a {
        switchyard_filter::Action::Continue => proxy_wasm::types::Action::Continue,
        switchyard_filter::Action::Pause => proxy_wasm::types::Action::Pause,
    }
}

/// The answer to the callout that just completed (`on_http_call_response`), read whole.
pub fn callout_response(num_headers: usize, body_size: usize) -> CalloutResponse {
    let headers = if num_headers > 0 {
        hostcalls::get_map(MapType::HttpCallResponseHeaders).unwrap_or_default()
    } else {
        Vec::new()
    };
    let status = headers
        .iter()
        .find(|(k, _)| k == ":status")
        .and_then(|(_, v)| v.parse::<u16>().ok());
    let body = if body_size > 0 {
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    CalloutResponse {
        status,
        headers,
        body,
    }
}

/// The facts from Envoy's serialisation of the metadata namespace's `Struct`: Proxy-Wasm
/// pairs (`u32` count, `u32` key and value sizes, then each key and value NUL-terminated),
/// where a string is its bytes and a bool one byte. A `Value` given as a literal in the
/// filter's config (`on_missing`/`on_error`) arrives as nested pairs, e.g. `bool_value` -> 1.
pub fn body_facts_from_pairs(bytes: &[u8]) -> BodyFacts {
    let mut facts = BodyFacts::default();
    for (key, value) in pairs(bytes) {
        match key {
            b"model" => facts.model = String::from_utf8(value.to_vec()).ok(),
            b"stream" => facts.stream = bool_value(value),
            b"include_usage" => facts.include_usage = bool_value(value),
            b"invalid_json" => facts.invalid_json = bool_value(value) == Some(true),
            b"model_missing" => facts.model_missing = bool_value(value) == Some(true),
            _ => {}
        }
    }
    facts
}

/// A bool as Envoy serialises it (one byte), as a string, or as a nested `bool_value` pair.
fn bool_value(value: &[u8]) -> Option<bool> {
    match value {
        [0] | b"false" => Some(false),
        [1] | b"true" => Some(true),
        _ => pairs(value)
            .find(|(k, _)| *k == b"bool_value")
            .and_then(|(_, v)| match v {
                [0] => Some(false),
                [1] => Some(true),
                _ => None,
            }),
    }
}

/// Iterate a Proxy-Wasm pairs buffer; stops at the first malformed entry.
fn pairs(bytes: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let u32_at = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes(<[u8; 4]>::try_from(b).ok()?) as usize)
    };
    let count = u32_at(0).unwrap_or(0);
    let mut data = 4usize.saturating_add(count.saturating_mul(8));
    (0..count).map_while(move |i| {
        let entry = i.checked_mul(8)?.checked_add(4)?;
        let key_len = u32_at(entry)?;
        let value_len = u32_at(entry.checked_add(4)?)?;
        let key = bytes.get(data..data.checked_add(key_len)?)?;
        let value_at = data.checked_add(key_len)?.checked_add(1)?;
        let value = bytes.get(value_at..value_at.checked_add(value_len)?)?;
        data = value_at.checked_add(value_len)?.checked_add(1)?;
        Some((key, value))
    })
}

/// A property as raw bytes.
fn property(path: &[&str]) -> Option<Vec<u8>> {
    hostcalls::get_property(path.to_vec()).ok().flatten()
}

/// A string property (e.g. `xds.route_name`).
fn property_string(path: &[&str]) -> Option<String> {
    property(path).and_then(|b| String::from_utf8(b).ok())
}

/// Host metrics (Envoy stats), labelled as `switchyard_policy::stats` encodes them. Metric ids
/// are defined once per VM and cached; a host error drops the sample (metrics never fail a
/// request).
pub mod metrics {
    use proxy_wasm::hostcalls;
    use proxy_wasm::types::MetricType;
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::hash::{BuildHasherDefault, Hasher};
    use switchyard_policy::stats::write_stat_name;

    /// A multiply-rotate hash taking eight bytes per step (as rustc's FxHasher does): metric
    /// names are short and looked up several times per request, where SipHash's flood
    /// resistance buys little (at most [`MAX_METRICS`] names are ever stored) and a byte-wise
    /// hash spends a multiply per byte.
    #[derive(Default)]
    struct Fx(u64);

    impl Fx {
        const K: u64 = 0x517c_c1b7_2722_0a95;

        fn add(&mut self, word: u64) {
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
        }
    }

    impl Hasher for Fx {
        fn finish(&self) -> u64 {
            self.0
        }

        fn write(&mut self, bytes: &[u8]) {
            let mut chunks = bytes.chunks_exact(8);
            for c in &mut chunks {
                let mut w = [0u8; 8];
                w.copy_from_slice(c);
                self.add(u64::from_le_bytes(w));
            }
            let rest = chunks.remainder();
            if !rest.is_empty() {
                let mut w = [0u8; 8];
                for (d, s) in w.iter_mut().zip(rest) {
                    *d = *s;
                }
                self.add(u64::from_le_bytes(w));
            }
        }

        fn write_u8(&mut self, i: u8) {
            self.add(u64::from(i));
        }
    }

    struct Ids {
        ids: HashMap<String, u32, BuildHasherDefault<Fx>>,
        /// The name being looked up, built in place (no allocation once warm).
        name: String,
    }

    thread_local! {
        static IDS: RefCell<Ids> = RefCell::new(Ids { ids: HashMap::default(), name: String::new() });
    }

    /// Bound on distinct metric names per VM: labels are bounded by config, this guards
    /// against a bug turning them into unbounded cardinality.
    const MAX_METRICS: usize = 4096;

    fn id(kind: MetricType, metric: &str, labels: &[(&str, &str)]) -> Option<u32> {
        IDS.with(|ids| {
            let mut ids = ids.borrow_mut();
            let Ids { ids, name } = &mut *ids;
            write_stat_name(name, metric, labels);
            if let Some(id) = ids.get(name.as_str()) {
                return Some(*id);
            }
            if ids.len() >= MAX_METRICS {
                return None;
            }
            match hostcalls::define_metric(kind, name) {
                Ok(id) => {
                    ids.insert(name.clone(), id);
                    Some(id)
                }
                Err(e) => {
                    log::debug!("define_metric({name}): {e:?}");
                    None
                }
            }
        })
    }

    /// Add `n` to a counter.
    pub fn count(metric: &str, labels: &[(&str, &str)], n: u64) {
        if n == 0 {
            return;
        }
        if let Some(id) = id(MetricType::Counter, metric, labels) {
            let _ = hostcalls::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Record one sample of a histogram.
    pub fn record(metric: &str, labels: &[(&str, &str)], value: u64) {
        if let Some(id) = id(MetricType::Histogram, metric, labels) {
            let _ = hostcalls::record_metric(id, value);
        }
    }
}

/// Higress's Redis host calls (absent on stock Envoy: a module importing them fails to load
/// there, hence the feature). The reply arrives through the exported
/// `proxy_on_redis_call_response`, which hands it to the handler set with [`redis::on_reply`].
#[cfg(feature = "higress")]
pub mod redis {
    use std::cell::RefCell;

    #[allow(clashing_extern_declarations)]
    extern "C" {
        fn proxy_redis_init(
            cluster_ptr: *const u8,
            cluster_len: usize,
            user_ptr: *const u8,
            user_len: usize,
            pass_ptr: *const u8,
            pass_len: usize,
            timeout_ms: u32,
        ) -> u32;
        fn proxy_redis_call(
            cluster_ptr: *const u8,
            cluster_len: usize,
            query_ptr: *const u8,
            query_len: usize,
            callout_id: *mut u32,
        ) -> u32;
        fn proxy_get_buffer_bytes(
            buffer_type: u32,
            start: usize,
            max_size: usize,
            return_buffer_data: *mut *mut u8,
            return_buffer_size: *mut usize,
        ) -> u32;
    }

    /// Buffer type of a Redis reply in Higress's host.
    const REDIS_CALL_RESPONSE: u32 = 9;

    type Handler = Box<dyn FnMut(u32, u32, Vec<u8>)>;

    thread_local! {
        static HANDLER: RefCell<Option<Handler>> = const { RefCell::new(None) };
    }

    /// Connect the host to a Redis cluster (`outbound|6379||redis-svc.dns`, may carry `?db=N`).
    pub fn init(cluster: &str, user: &str, pass: &str, timeout_ms: u32) -> Result<(), u32> {
        // SAFETY: pointers and lengths come from live slices.
        let status = unsafe {
            proxy_redis_init(
                cluster.as_ptr(),
                cluster.len(),
                user.as_ptr(),
                user.len(),
                pass.as_ptr(),
                pass.len(),
                timeout_ms,
            )
        };
        if status == 0 {
            Ok(())
        } else {
            Err(status)
        }
    }

    /// Send a RESP-encoded command; returns the callout id.
    pub fn call(cluster: &str, query: &[u8]) -> Result<u32, u32> {
        let mut id = 0u32;
        // SAFETY: pointers and lengths come from live slices; `id` outlives the call.
        let status = unsafe {
            proxy_redis_call(
                cluster.as_ptr(),
                cluster.len(),
                query.as_ptr(),
                query.len(),
                &mut id,
            )
        };
        if status == 0 {
            Ok(id)
        } else {
            Err(status)
        }
    }

    /// Set the function that receives `(callout_id, status, reply bytes)`.
    pub fn on_reply(handler: impl FnMut(u32, u32, Vec<u8>) + 'static) {
        HANDLER.with(|h| *h.borrow_mut() = Some(Box::new(handler)));
    }

    fn reply_bytes(size: usize) -> Vec<u8> {
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut len: usize = 0;
        // SAFETY: the host allocates the buffer through the SDK's `proxy_on_memory_allocate`
        // (a Vec allocation) and hands ownership to us.
        unsafe {
            let status = proxy_get_buffer_bytes(REDIS_CALL_RESPONSE, 0, size, &mut data, &mut len);
            if status != 0 || data.is_null() {
                return Vec::new();
            }
            Vec::from_raw_parts(data, len, len)
        }
    }

    /// Called by Higress's host when a Redis reply arrives.
    #[no_mangle]
    pub extern "C" fn proxy_on_redis_call_response(
        _context_id: u32,
        callout_id: u32,
        status: u32,
        response_size: usize,
    ) {
        let body = reply_bytes(response_size);
        HANDLER.with(|h| {
            if let Ok(mut h) = h.try_borrow_mut() {
                if let Some(f) = h.as_mut() {
                    f(callout_id, status, body);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (k, v) in pairs {
            out.extend((k.len() as u32).to_le_bytes());
            out.extend((v.len() as u32).to_le_bytes());
        }
        for (k, v) in pairs {
            out.extend_from_slice(k);
            out.push(0);
            out.extend_from_slice(v);
            out.push(0);
        }
        out
    }

    #[test]
    fn body_facts_from_envoy_pairs() {
        // As Envoy 1.40 serialised `metadata.filter_metadata.switchyard` for a streaming body.
        let seen = b"\x03\x00\x00\x00\x06\x00\x00\x00\x01\x00\x00\x00\r\x00\x00\x00\x01\x00\x00\x00\x05\x00\x00\x00\x06\x00\x00\x00stream\x00\x01\x00include_usage\x00\x01\x00model\x00gpt-4o\x00";
        let facts = body_facts_from_pairs(seen);
        assert_eq!(facts.model.as_deref(), Some("gpt-4o"));
        assert_eq!(
            (facts.stream, facts.include_usage),
            (Some(true), Some(true))
        );
        assert!(facts.known() && !facts.invalid_json && !facts.model_missing);

        // A configured `Value` literal arrives as nested pairs.
        let missing = b"\x01\x00\x00\x00\r\x00\x00\x00\x19\x00\x00\x00model_missing\x00\x01\x00\x00\x00\n\x00\x00\x00\x01\x00\x00\x00bool_value\x00\x01\x00\x00";
        let facts = body_facts_from_pairs(missing);
        assert!(facts.model_missing && facts.known() && facts.model.is_none());

        let facts =
            body_facts_from_pairs(&encode(&[(b"stream", b"\x00"), (b"invalid_json", b"true")]));
        assert_eq!(facts.stream, Some(false));
        assert!(facts.invalid_json);
    }

    #[test]
    fn malformed_pairs_never_panic() {
        let good = encode(&[(b"model", b"m"), (b"stream", b"\x01")]);
        for cut in 0..good.len() {
            let _ = body_facts_from_pairs(&good[..cut]);
        }
        for bytes in [
            &b"\xff\xff\xff\xff"[..],
            b"\x02\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff",
            b"",
        ] {
            assert_eq!(body_facts_from_pairs(bytes), BodyFacts::default());
        }
    }
}
