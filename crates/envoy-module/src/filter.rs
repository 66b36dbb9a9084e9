//! [`EnvoyFilter`]: safe access to one HTTP stream's Envoy filter, lent to filter code for the
//! duration of one event hook.
//!
//! Borrowed values (`&[u8]` headers, attributes, filter state) point into Envoy's memory. Envoy
//! keeps them valid until the hook returns or until a setter changes the map they live in; the
//! signatures enforce both: they borrow `&self`, setters take `&mut self`, and an `EnvoyFilter`
//! cannot outlive the hook it was lent to.

use crate::abi;
use crate::config::ConfigState;
use crate::metrics::MetricKind;

/// Which side of the stream a header or body call is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Request,
    Response,
}

/// What to do after `on_request_headers` / `on_response_headers`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadersStatus {
    Continue,
    /// Hold the headers; body hooks keep being called (return `Continue` from one of them, or
    /// call `continue_decoding`/`continue_encoding`, to release them).
    StopIteration,
    /// Hold headers and buffer the body until `continue_*`.
    StopAllIterationAndBuffer,
}

/// What to do after a body hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyStatus {
    Continue,
    /// Keep this chunk in Envoy's buffer (read it later as the buffered body).
    StopIterationAndBuffer,
    /// Hold without buffering (e.g. after a local reply).
    StopIterationNoBuffer,
}

/// What to do after a trailers hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrailersStatus {
    Continue,
    StopIteration,
}

impl HeadersStatus {
    pub(crate) fn raw(self) -> abi::Status {
        match self {
            HeadersStatus::Continue => abi::HEADERS_CONTINUE,
            HeadersStatus::StopIteration => abi::HEADERS_STOP_ITERATION,
            HeadersStatus::StopAllIterationAndBuffer => abi::HEADERS_STOP_ALL_AND_BUFFER,
        }
    }
}

impl BodyStatus {
    pub(crate) fn raw(self) -> abi::Status {
        match self {
            BodyStatus::Continue => abi::BODY_CONTINUE,
            BodyStatus::StopIterationAndBuffer => abi::BODY_STOP_AND_BUFFER,
            BodyStatus::StopIterationNoBuffer => abi::BODY_STOP_NO_BUFFER,
        }
    }
}

impl TrailersStatus {
    pub(crate) fn raw(self) -> abi::Status {
        match self {
            TrailersStatus::Continue => abi::TRAILERS_CONTINUE,
            TrailersStatus::StopIteration => abi::TRAILERS_STOP,
        }
    }
}

/// Stream attributes we read (Envoy's attribute names in the comments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attribute {
    /// `request.path`
    RequestPath,
    /// `request.host`
    RequestHost,
    /// `request.method`
    RequestMethod,
    /// `request.id`
    RequestId,
    /// `response.code` (int)
    ResponseCode,
    /// `response.code_details`
    ResponseCodeDetails,
    /// `xds.cluster_name`
    ClusterName,
    /// `xds.route_name`
    RouteName,
}

impl Attribute {
    fn raw(self) -> abi::AttributeId {
        match self {
            Attribute::RequestPath => abi::ATTR_REQUEST_PATH,
            Attribute::RequestHost => abi::ATTR_REQUEST_HOST,
            Attribute::RequestMethod => abi::ATTR_REQUEST_METHOD,
            Attribute::RequestId => abi::ATTR_REQUEST_ID,
            Attribute::ResponseCode => abi::ATTR_RESPONSE_CODE,
            Attribute::ResponseCodeDetails => abi::ATTR_RESPONSE_CODE_DETAILS,
            Attribute::ClusterName => abi::ATTR_XDS_CLUSTER_NAME,
            Attribute::RouteName => abi::ATTR_XDS_ROUTE_NAME,
        }
    }
}

/// Why Envoy refused to start a callout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalloutError {
    /// `:method`, `:path` or `host` missing.
    MissingRequiredHeaders,
    ClusterNotFound,
    DuplicateCalloutId,
    /// E.g. no healthy host in the cluster.
    CannotCreateRequest,
    Other(u32),
}

impl std::fmt::Display for CalloutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CalloutError::MissingRequiredHeaders => {
                f.write_str("callout lacks :method, :path or host")
            }
            CalloutError::ClusterNotFound => f.write_str("callout cluster not found"),
            CalloutError::DuplicateCalloutId => f.write_str("duplicate callout id"),
            CalloutError::CannotCreateRequest => f.write_str("callout request cannot be created"),
            CalloutError::Other(n) => write!(f, "callout failed to start ({n})"),
        }
    }
}

pub(crate) fn callout_result(raw: abi::CalloutInitResult, id: u64) -> Result<u64, CalloutError> {
    match raw {
        abi::CALLOUT_INIT_SUCCESS => Ok(id),
        abi::CALLOUT_INIT_MISSING_REQUIRED_HEADERS => Err(CalloutError::MissingRequiredHeaders),
        abi::CALLOUT_INIT_CLUSTER_NOT_FOUND => Err(CalloutError::ClusterNotFound),
        abi::CALLOUT_INIT_DUPLICATE_CALLOUT_ID => Err(CalloutError::DuplicateCalloutId),
        abi::CALLOUT_INIT_CANNOT_CREATE_REQUEST => Err(CalloutError::CannotCreateRequest),
        n => Err(CalloutError::Other(n)),
    }
}

/// How a callout ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalloutOutcome {
    Success,
    Reset,
    ExceedResponseBufferLimit,
    Other(u32),
}

impl CalloutOutcome {
    pub(crate) fn from_raw(raw: abi::CalloutResult) -> CalloutOutcome {
        match raw {
            abi::CALLOUT_SUCCESS => CalloutOutcome::Success,
            abi::CALLOUT_RESET => CalloutOutcome::Reset,
            abi::CALLOUT_EXCEED_RESPONSE_BUFFER_LIMIT => CalloutOutcome::ExceedResponseBufferLimit,
            n => CalloutOutcome::Other(n),
        }
    }
}

/// A callout's response, borrowed from Envoy for the duration of the callout-done hook.
pub struct CalloutResponse<'a> {
    headers: &'a [abi::EnvoyHttpHeader],
    body: &'a [abi::EnvoyBuffer],
}

impl<'a> CalloutResponse<'a> {
    /// # Safety
    /// The pointers must be null or valid for `len` elements for `'a` (Envoy guarantees this
    /// until the callout-done hook returns).
    pub(crate) unsafe fn new(
        headers: *const abi::EnvoyHttpHeader,
        headers_len: usize,
        body: *const abi::EnvoyBuffer,
        body_len: usize,
    ) -> CalloutResponse<'a> {
        CalloutResponse {
            headers: slice_or_empty(headers, headers_len),
            body: slice_or_empty(body, body_len),
        }
    }

    /// Every response header, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + '_ {
        self.headers.iter().map(|h| {
            // SAFETY: Envoy-owned header bytes, valid for 'a (see `new`).
            unsafe {
                (
                    bytes(h.key_ptr, h.key_length),
                    bytes(h.value_ptr, h.value_length),
                )
            }
        })
    }

    /// First value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The `:status` as a number.
    pub fn status(&self) -> Option<u16> {
        std::str::from_utf8(self.header(":status")?)
            .ok()?
            .parse()
            .ok()
    }

    /// The whole body, copied into one buffer.
    pub fn body(&self) -> Vec<u8> {
        // SAFETY: Envoy-owned chunks, valid for 'a.
        concat(self.body.iter().map(|b| unsafe { bytes(b.ptr, b.length) }))
    }
}

/// # Safety
/// `ptr` must be null or valid for reads of `len` elements for `'a`.
unsafe fn slice_or_empty<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(ptr, len)
    }
}

/// # Safety
/// `ptr` must be null or valid for reads of `len` bytes for `'a`.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    slice_or_empty(ptr, len)
}

fn concat<'a>(parts: impl Iterator<Item = &'a [u8]> + Clone) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.clone().map(<[u8]>::len).sum());
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// Body chunk descriptors kept inline (a body usually arrives in a few chunks).
const INLINE_CHUNKS: usize = 8;

/// Descriptors of Envoy-owned body chunks: inline up to [`INLINE_CHUNKS`], else one
/// allocation. `'f` is the borrow of the filter that read them: the bytes stay valid until a
/// body setter (`&mut EnvoyFilter`) or the hook's end, which that borrow rules out.
struct Chunks<'f> {
    list: ChunkList,
    _filter: std::marker::PhantomData<&'f ()>,
}

enum ChunkList {
    Inline([abi::EnvoyBuffer; INLINE_CHUNKS], usize),
    Heap(Vec<abi::EnvoyBuffer>),
}

impl<'f> Chunks<'f> {
    fn with_len(n: usize) -> Self {
        let list = if n <= INLINE_CHUNKS {
            ChunkList::Inline([abi::EnvoyBuffer::NULL; INLINE_CHUNKS], n)
        } else {
            ChunkList::Heap(vec![abi::EnvoyBuffer::NULL; n])
        };
        Chunks {
            list,
            _filter: std::marker::PhantomData,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [abi::EnvoyBuffer] {
        match &mut self.list {
            ChunkList::Inline(a, n) => a.get_mut(..*n).unwrap_or_default(),
            ChunkList::Heap(v) => v,
        }
    }

    fn as_slice(&self) -> &[abi::EnvoyBuffer] {
        match &self.list {
            ChunkList::Inline(a, n) => a.get(..*n).unwrap_or_default(),
            ChunkList::Heap(v) => v,
        }
    }

    fn iter(&self) -> impl Iterator<Item = &'f [u8]> + '_ {
        // SAFETY: Envoy-owned chunks, valid for the filter borrow `'f` (see the type's doc).
        self.as_slice()
            .iter()
            .map(|b| unsafe { bytes(b.ptr, b.length) })
    }

    /// Total bytes.
    fn len(&self) -> usize {
        self.as_slice().iter().map(|b| b.length).sum()
    }
}

fn module_headers(headers: &[(&str, &[u8])]) -> Vec<abi::ModuleHttpHeader> {
    headers
        .iter()
        .map(|(k, v)| abi::ModuleHttpHeader {
            key_ptr: k.as_ptr(),
            key_length: k.len(),
            value_ptr: v.as_ptr(),
            value_length: v.len(),
        })
        .collect()
}

/// One HTTP stream's filter in Envoy, for the duration of one event hook.
pub struct EnvoyFilter<'a> {
    ptr: abi::FilterEnvoyPtr,
    config: &'a ConfigState,
}

impl<'a> EnvoyFilter<'a> {
    pub(crate) fn new(ptr: abi::FilterEnvoyPtr, config: &'a ConfigState) -> EnvoyFilter<'a> {
        EnvoyFilter { ptr, config }
    }

    /// The `filter_name` this filter was configured with.
    pub fn filter_name(&self) -> &str {
        &self.config.filter_name
    }

    // ------------------------------------------------------------------ headers

    fn header(&self, kind: abi::HeaderType, name: &str) -> Option<&[u8]> {
        let mut out = abi::EnvoyBuffer::NULL;
        // SAFETY: `name` is borrowed for the call; `out` is a valid out-pointer; the count
        // pointer may be null.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_get_header(
                self.ptr,
                kind,
                abi::ModuleBuffer::of(name.as_bytes()),
                &mut out,
                0,
                std::ptr::null_mut(),
            )
        };
        // SAFETY: Envoy-owned value, valid until a setter runs (needs `&mut self`) or the hook
        // returns (`self` cannot outlive it).
        (ok && !out.ptr.is_null()).then(|| unsafe { bytes(out.ptr, out.length) })
    }

    fn header_values(&self, kind: abi::HeaderType, name: &str) -> Vec<&[u8]> {
        let mut values = Vec::new();
        let mut count = 1usize;
        let mut i = 0usize;
        while i < count {
            let mut out = abi::EnvoyBuffer::NULL;
            // SAFETY: as in `header`; `count` is a valid out-pointer.
            let ok = unsafe {
                abi::envoy_dynamic_module_callback_http_get_header(
                    self.ptr,
                    kind,
                    abi::ModuleBuffer::of(name.as_bytes()),
                    &mut out,
                    i,
                    &mut count,
                )
            };
            if !ok || out.ptr.is_null() {
                break;
            }
            // SAFETY: Envoy-owned value, valid as in `header`.
            values.push(unsafe { bytes(out.ptr, out.length) });
            i += 1;
        }
        values
    }

    fn headers(&self, kind: abi::HeaderType) -> Vec<(&[u8], &[u8])> {
        // SAFETY: plain call on a valid filter pointer.
        let n = unsafe { abi::envoy_dynamic_module_callback_http_get_headers_size(self.ptr, kind) };
        if n == 0 {
            return Vec::new();
        }
        let mut raw = vec![abi::EnvoyHttpHeader::NULL; n];
        // SAFETY: `raw` has room for the `n` entries Envoy reported.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_get_headers(self.ptr, kind, raw.as_mut_ptr())
        };
        if !ok {
            return Vec::new();
        }
        raw.iter()
            // SAFETY: Envoy-owned bytes, valid as in `header`.
            .map(|h| unsafe {
                (
                    bytes(h.key_ptr, h.key_length),
                    bytes(h.value_ptr, h.value_length),
                )
            })
            .collect()
    }

    fn set_header(&mut self, kind: abi::HeaderType, name: &str, value: Option<&[u8]>) -> bool {
        let value = value.map_or(abi::ModuleBuffer::NULL, abi::ModuleBuffer::of);
        // SAFETY: both buffers are borrowed for the call; Envoy copies them.
        unsafe {
            abi::envoy_dynamic_module_callback_http_set_header(
                self.ptr,
                kind,
                abi::ModuleBuffer::of(name.as_bytes()),
                value,
            )
        }
    }

    fn add_header(&mut self, kind: abi::HeaderType, name: &str, value: &[u8]) -> bool {
        // SAFETY: both buffers are borrowed for the call; Envoy copies them.
        unsafe {
            abi::envoy_dynamic_module_callback_http_add_header(
                self.ptr,
                kind,
                abi::ModuleBuffer::of(name.as_bytes()),
                abi::ModuleBuffer::of(value),
            )
        }
    }

    /// First value of request header `name` (lower case; pseudo-headers like `:path` work).
    pub fn request_header(&self, name: &str) -> Option<&[u8]> {
        self.header(abi::HEADER_REQUEST, name)
    }
    /// [`Self::request_header`] when it is UTF-8.
    pub fn request_header_str(&self, name: &str) -> Option<&str> {
        self.request_header(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }
    /// Every value of request header `name`, in order.
    pub fn request_header_values(&self, name: &str) -> Vec<&[u8]> {
        self.header_values(abi::HEADER_REQUEST, name)
    }
    /// Every request header, in order (repeated names appear repeatedly).
    pub fn request_headers(&self) -> Vec<(&[u8], &[u8])> {
        self.headers(abi::HEADER_REQUEST)
    }
    /// Replace every value of request header `name`.
    pub fn set_request_header(&mut self, name: &str, value: &[u8]) -> bool {
        self.set_header(abi::HEADER_REQUEST, name, Some(value))
    }
    /// Add one more value of request header `name`.
    pub fn add_request_header(&mut self, name: &str, value: &[u8]) -> bool {
        self.add_header(abi::HEADER_REQUEST, name, value)
    }
    pub fn remove_request_header(&mut self, name: &str) -> bool {
        self.set_header(abi::HEADER_REQUEST, name, None)
    }

    pub fn response_header(&self, name: &str) -> Option<&[u8]> {
        self.header(abi::HEADER_RESPONSE, name)
    }
    pub fn response_header_str(&self, name: &str) -> Option<&str> {
        self.response_header(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }
    pub fn response_header_values(&self, name: &str) -> Vec<&[u8]> {
        self.header_values(abi::HEADER_RESPONSE, name)
    }
    pub fn response_headers(&self) -> Vec<(&[u8], &[u8])> {
        self.headers(abi::HEADER_RESPONSE)
    }
    pub fn set_response_header(&mut self, name: &str, value: &[u8]) -> bool {
        self.set_header(abi::HEADER_RESPONSE, name, Some(value))
    }
    pub fn add_response_header(&mut self, name: &str, value: &[u8]) -> bool {
        self.add_header(abi::HEADER_RESPONSE, name, value)
    }
    pub fn remove_response_header(&mut self, name: &str) -> bool {
        self.set_header(abi::HEADER_RESPONSE, name, None)
    }

    pub fn request_trailers(&self) -> Vec<(&[u8], &[u8])> {
        self.headers(abi::HEADER_REQUEST_TRAILER)
    }
    pub fn response_trailers(&self) -> Vec<(&[u8], &[u8])> {
        self.headers(abi::HEADER_RESPONSE_TRAILER)
    }

    // --------------------------------------------------------------------- body

    /// The chunk descriptors of body `kind`, in order (empty when there is none).
    fn chunks(&self, kind: abi::BodyType) -> Chunks<'_> {
        // SAFETY: plain call on a valid filter pointer.
        let n =
            unsafe { abi::envoy_dynamic_module_callback_http_get_body_chunks_size(self.ptr, kind) };
        let mut chunks = Chunks::with_len(n);
        if n > 0 {
            // SAFETY: `chunks` has room for the `n` chunks Envoy reported.
            let ok = unsafe {
                abi::envoy_dynamic_module_callback_http_get_body_chunks(
                    self.ptr,
                    kind,
                    chunks.as_mut_slice().as_mut_ptr(),
                )
            };
            if !ok {
                return Chunks::with_len(0);
            }
        }
        chunks
    }

    fn kinds(side: Side) -> (abi::BodyType, abi::BodyType) {
        match side {
            Side::Request => (abi::BODY_RECEIVED_REQUEST, abi::BODY_BUFFERED_REQUEST),
            Side::Response => (abi::BODY_RECEIVED_RESPONSE, abi::BODY_BUFFERED_RESPONSE),
        }
    }

    /// Whether the chunk of the current body hook *is* the buffer (a filter before us held the
    /// body and now passes it on whole).
    fn received_is_buffered(&self, side: Side) -> bool {
        // SAFETY: plain calls on a valid filter pointer.
        unsafe {
            match side {
                Side::Request => {
                    abi::envoy_dynamic_module_callback_http_received_buffered_request_body(self.ptr)
                }
                Side::Response => {
                    abi::envoy_dynamic_module_callback_http_received_buffered_response_body(
                        self.ptr,
                    )
                }
            }
        }
    }

    /// The whole body seen so far: the buffered chunks plus the chunk of the current hook
    /// (Envoy adds that chunk to the buffer only after the hook returns). Call it at
    /// `end_of_stream` after returning `StopIterationAndBuffer` for the earlier chunks.
    /// One allocation of the right size, one copy.
    pub fn body(&self, side: Side) -> Vec<u8> {
        let (received, buffered) = Self::kinds(side);
        let received = if self.received_is_buffered(side) {
            Chunks::with_len(0)
        } else {
            self.chunks(received)
        };
        let buffered = self.chunks(buffered);
        let mut out = Vec::with_capacity(buffered.len() + received.len());
        for c in buffered.iter().chain(received.iter()) {
            out.extend_from_slice(c);
        }
        out
    }

    /// Replace the whole body (buffered and current chunk) with `data`. In a body hook the new
    /// bytes go into the current chunk, which Envoy then sends on (merged into its buffer when
    /// earlier chunks were buffered). Remove `content-length` while the headers are still held.
    pub fn replace_body(&mut self, side: Side, data: &[u8]) -> bool {
        let (received, buffered) = Self::kinds(side);
        // SAFETY: plain calls on a valid filter pointer; draining an absent body is a no-op.
        unsafe {
            abi::envoy_dynamic_module_callback_http_drain_body(self.ptr, buffered, usize::MAX);
            abi::envoy_dynamic_module_callback_http_drain_body(self.ptr, received, usize::MAX);
        }
        self.append_body(side, data)
    }

    /// Append `data` to the current chunk (in a body hook) or else to the buffered body.
    pub fn append_body(&mut self, side: Side, data: &[u8]) -> bool {
        let (received, buffered) = Self::kinds(side);
        // SAFETY: `data` is borrowed for the call; Envoy copies it.
        unsafe {
            abi::envoy_dynamic_module_callback_http_append_body(
                self.ptr,
                received,
                abi::ModuleBuffer::of(data),
            ) || abi::envoy_dynamic_module_callback_http_append_body(
                self.ptr,
                buffered,
                abi::ModuleBuffer::of(data),
            )
        }
    }

    /// Bytes of [`Self::body`] (the buffered body plus the current chunk), without copying.
    pub fn body_len(&self, side: Side) -> usize {
        let buffered = self.buffered_body_len(side);
        if self.received_is_buffered(side) {
            return buffered;
        }
        // SAFETY: plain call on a valid filter pointer (the received chunk's length, read
        // without describing its slices).
        let received = unsafe {
            abi::envoy_dynamic_module_callback_http_get_body_size(self.ptr, Self::kinds(side).0)
        };
        buffered + received
    }

    /// Total bytes of the buffered body.
    pub fn buffered_body_len(&self, side: Side) -> usize {
        // SAFETY: plain call on a valid filter pointer.
        unsafe {
            abi::envoy_dynamic_module_callback_http_get_body_size(self.ptr, Self::kinds(side).1)
        }
    }

    // ------------------------------------------------------------ flow control

    /// Answer the request locally (headers are `(name, value)`; add `content-type` yourself).
    /// After this, return `StopIteration`/`StopIterationNoBuffer` from the current hook.
    pub fn send_local_reply(
        &mut self,
        status: u32,
        headers: &[(&str, &[u8])],
        body: &[u8],
        details: &str,
    ) {
        let mut raw = module_headers(headers);
        // SAFETY: `raw` and the buffers it points into outlive the call; Envoy copies them.
        unsafe {
            abi::envoy_dynamic_module_callback_http_send_response(
                self.ptr,
                status,
                raw.as_mut_ptr(),
                raw.len(),
                abi::ModuleBuffer::of(body),
                abi::ModuleBuffer::of(details.as_bytes()),
            )
        }
    }

    /// Resume a request held by an earlier `Stop*` status (e.g. after a callout).
    pub fn continue_decoding(&mut self) {
        // SAFETY: plain call on a valid filter pointer.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_continue_decoding(self.ptr) }
    }

    /// Resume a response held by an earlier `Stop*` status.
    pub fn continue_encoding(&mut self) {
        // SAFETY: plain call on a valid filter pointer.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_continue_encoding(self.ptr) }
    }

    /// Make the router resolve the route again (after changing a header routes match on).
    pub fn clear_route_cache(&mut self) {
        // SAFETY: plain call on a valid filter pointer.
        unsafe { abi::envoy_dynamic_module_callback_http_clear_route_cache(self.ptr) }
    }

    /// Reset the stream (when a reply can no longer be sent, e.g. mid-response).
    pub fn reset_stream(&mut self, details: &str) {
        // SAFETY: `details` is borrowed for the call.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_reset_stream(
                self.ptr,
                abi::RESET_LOCAL,
                abi::ModuleBuffer::of(details.as_bytes()),
            )
        }
    }

    /// Index of the worker thread running this stream.
    pub fn worker_index(&self) -> u32 {
        // SAFETY: plain call on a valid filter pointer.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_get_worker_index(self.ptr) }
    }

    // -------------------------------------------------- metadata, filter state

    /// Set dynamic metadata `namespace.key` to a string (readable by later filters, access
    /// logs, `%DYNAMIC_METADATA(namespace:key)%`).
    pub fn set_metadata(&mut self, namespace: &str, key: &str, value: &str) {
        // SAFETY: buffers borrowed for the call; Envoy copies them.
        unsafe {
            abi::envoy_dynamic_module_callback_http_set_dynamic_metadata_string(
                self.ptr,
                abi::ModuleBuffer::of(namespace.as_bytes()),
                abi::ModuleBuffer::of(key.as_bytes()),
                abi::ModuleBuffer::of(value.as_bytes()),
            )
        }
    }

    /// String dynamic metadata `namespace.key`.
    pub fn metadata(&self, namespace: &str, key: &str) -> Option<&[u8]> {
        let mut out = abi::EnvoyBuffer::NULL;
        // SAFETY: buffers borrowed for the call; `out` is a valid out-pointer.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_get_metadata_string(
                self.ptr,
                abi::METADATA_DYNAMIC,
                abi::ModuleBuffer::of(namespace.as_bytes()),
                abi::ModuleBuffer::of(key.as_bytes()),
                &mut out,
            )
        };
        // SAFETY: Envoy-owned, valid until a setter (`&mut self`) or hook end.
        ok.then(|| unsafe { bytes(out.ptr, out.length) })
    }

    /// Set filter state `key` (bytes; `%FILTER_STATE(key:PLAIN)%` in access logs). Fails when
    /// the key exists read-only.
    pub fn set_filter_state(&mut self, key: &str, value: &[u8]) -> bool {
        // SAFETY: buffers borrowed for the call; Envoy copies them.
        unsafe {
            abi::envoy_dynamic_module_callback_http_set_filter_state_bytes(
                self.ptr,
                abi::ModuleBuffer::of(key.as_bytes()),
                abi::ModuleBuffer::of(value),
            )
        }
    }

    pub fn filter_state(&self, key: &str) -> Option<&[u8]> {
        let mut out = abi::EnvoyBuffer::NULL;
        // SAFETY: as in `metadata`.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_get_filter_state_bytes(
                self.ptr,
                abi::ModuleBuffer::of(key.as_bytes()),
                &mut out,
            )
        };
        // SAFETY: Envoy-owned, valid until a setter or hook end.
        ok.then(|| unsafe { bytes(out.ptr, out.length) })
    }

    // -------------------------------------------------------------- attributes

    /// A string attribute (`None` when unset or not a string).
    pub fn attribute(&self, attr: Attribute) -> Option<&[u8]> {
        let mut out = abi::EnvoyBuffer::NULL;
        // SAFETY: `out` is a valid out-pointer.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_get_attribute_string(
                self.ptr,
                attr.raw(),
                &mut out,
            )
        };
        // SAFETY: Envoy-owned, valid until the hook returns.
        (ok && !out.ptr.is_null()).then(|| unsafe { bytes(out.ptr, out.length) })
    }

    pub fn attribute_str(&self, attr: Attribute) -> Option<&str> {
        self.attribute(attr)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// An integer attribute (e.g. [`Attribute::ResponseCode`]).
    pub fn attribute_int(&self, attr: Attribute) -> Option<u64> {
        let mut out = 0u64;
        // SAFETY: `out` is a valid out-pointer.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_get_attribute_int(
                self.ptr,
                attr.raw(),
                &mut out,
            )
        };
        ok.then_some(out)
    }

    /// `xds.route_name` of the route Envoy selected for this stream.
    pub fn route_name(&self) -> Option<&str> {
        self.attribute_str(Attribute::RouteName)
    }
    /// `xds.cluster_name` of the selected route's cluster.
    pub fn cluster_name(&self) -> Option<&str> {
        self.attribute_str(Attribute::ClusterName)
    }
    pub fn response_code(&self) -> Option<u64> {
        self.attribute_int(Attribute::ResponseCode)
    }
    pub fn response_code_details(&self) -> Option<&str> {
        self.attribute_str(Attribute::ResponseCodeDetails)
    }

    // ----------------------------------------------------------------- callouts

    /// Start an HTTP request to `cluster` (headers must include `:method`, `:path`, `host`).
    /// The answer arrives in [`crate::HttpFilter::on_callout_done`] with the returned id.
    pub fn http_callout(
        &mut self,
        cluster: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<u64, CalloutError> {
        let mut raw = module_headers(headers);
        let mut id = 0u64;
        // SAFETY: everything borrowed outlives the call; `id` is a valid out-pointer.
        let r = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_http_callout(
                self.ptr,
                &mut id,
                abi::ModuleBuffer::of(cluster.as_bytes()),
                raw.as_mut_ptr(),
                raw.len(),
                abi::ModuleBuffer::of(body),
                timeout_ms,
            )
        };
        callout_result(r, id)
    }

    // ------------------------------------------------------------------ metrics

    fn metric(
        &mut self,
        kind: MetricKind,
        name: &str,
        labels: &[(&str, &str)],
        value: u64,
        op: MetricOp,
    ) -> bool {
        let filter = self.ptr;
        self.config
            .metrics
            .update(name, kind, labels, |id, ptr, len| {
                // SAFETY: the buffers outlive the call; the id came from this filter's config;
                // the value count equals the defined label count.
                unsafe {
                    match op {
                        MetricOp::Add => {
                            abi::envoy_dynamic_module_callback_http_filter_increment_counter(
                                filter, id, ptr, len, value,
                            )
                        }
                        MetricOp::GaugeAdd => {
                            abi::envoy_dynamic_module_callback_http_filter_increment_gauge(
                                filter, id, ptr, len, value,
                            )
                        }
                        MetricOp::GaugeSub => {
                            abi::envoy_dynamic_module_callback_http_filter_decrement_gauge(
                                filter, id, ptr, len, value,
                            )
                        }
                        MetricOp::GaugeSet => {
                            abi::envoy_dynamic_module_callback_http_filter_set_gauge(
                                filter, id, ptr, len, value,
                            )
                        }
                        MetricOp::Record => {
                            abi::envoy_dynamic_module_callback_http_filter_record_histogram_value(
                                filter, id, ptr, len, value,
                            )
                        }
                    }
                }
            })
    }

    /// Add `value` to counter `name{labels}` (defined at config time with
    /// [`crate::ConfigContext::define_counter`]; labels in any order, missing ones empty).
    pub fn counter_add(&mut self, name: &str, labels: &[(&str, &str)], value: u64) -> bool {
        self.metric(MetricKind::Counter, name, labels, value, MetricOp::Add)
    }
    /// Record `value` in histogram `name{labels}`.
    pub fn histogram_record(&mut self, name: &str, labels: &[(&str, &str)], value: u64) -> bool {
        self.metric(MetricKind::Histogram, name, labels, value, MetricOp::Record)
    }
    pub fn gauge_set(&mut self, name: &str, labels: &[(&str, &str)], value: u64) -> bool {
        self.metric(MetricKind::Gauge, name, labels, value, MetricOp::GaugeSet)
    }
    pub fn gauge_add(&mut self, name: &str, labels: &[(&str, &str)], value: u64) -> bool {
        self.metric(MetricKind::Gauge, name, labels, value, MetricOp::GaugeAdd)
    }
    pub fn gauge_sub(&mut self, name: &str, labels: &[(&str, &str)], value: u64) -> bool {
        self.metric(MetricKind::Gauge, name, labels, value, MetricOp::GaugeSub)
    }

    // ---------------------------------------------------------------- scheduler

    /// A handle that wakes this stream on its worker thread from any thread
    /// ([`crate::HttpFilter::on_scheduled`]). Events for a finished stream are dropped by Envoy.
    pub fn scheduler(&mut self) -> Option<FilterScheduler> {
        // SAFETY: plain call on a valid filter pointer; we own the result (freed on drop).
        let p = unsafe { abi::envoy_dynamic_module_callback_http_filter_scheduler_new(self.ptr) };
        (!p.is_null()).then_some(FilterScheduler(p))
    }
}

#[derive(Clone, Copy)]
enum MetricOp {
    Add,
    GaugeAdd,
    GaugeSub,
    GaugeSet,
    Record,
}

/// Posts events to one stream's worker thread; movable to any thread.
pub struct FilterScheduler(abi::FilterSchedulerPtr);

// SAFETY: the ABI documents the scheduler as usable from any thread (it posts onto the
// worker's dispatcher); we never share it without `&mut`/ownership.
unsafe impl Send for FilterScheduler {}

impl FilterScheduler {
    /// Call the stream's `on_scheduled(event_id)` on its worker thread.
    pub fn commit(&self, event_id: u64) {
        // SAFETY: the pointer came from `scheduler_new` and is freed only in `drop`.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_scheduler_commit(self.0, event_id) }
    }
}

impl Drop for FilterScheduler {
    fn drop(&mut self) {
        // SAFETY: freed exactly once, here.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_scheduler_delete(self.0) }
    }
}
