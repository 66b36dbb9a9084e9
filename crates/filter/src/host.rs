//! What the filters need from the host, and nothing else. Each host (Proxy-Wasm on Envoy or
//! Higress, Envoy's dynamic modules, the in-memory [`crate::mock::MockHost`]) implements these
//! traits once; the filters never name a host.
//!
//! [`Host`] is what every context has (clock, shared state, callouts, metrics); [`HttpHost`]
//! adds what only a request has (its headers, bodies, local replies, properties). Logging goes
//! through the `log` facade, which each host routes to its own log.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a filter callback tells the host to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Let the headers or body continue to the next filter.
    Continue,
    /// Hold them: in a body callback, until the end of the stream is buffered; in a header
    /// callback, until the filter resumes the stream itself (after a callout, or — on hosts
    /// where [`HttpHost::holds_headers_for_body`] — until the body phase decided).
    Pause,
}

/// Why a shared-state write did not land.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedError {
    /// Someone wrote the key since the CAS token was read: read again and retry.
    CasMismatch,
    /// The host refused the write (reason for the log).
    Failed(String),
}

/// The answer to an HTTP callout, read whole by the host adapter before the filter sees it.
#[derive(Debug, Clone, Default)]
pub struct CalloutResponse {
    /// `None`: no answer at all (timeout, reset, no healthy upstream).
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl CalloutResponse {
    /// A header of the answer (first value, name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP callout: where it goes and what it sends.
#[derive(Debug, Clone, Copy)]
pub struct Callout<'a> {
    /// The host's name of the upstream (an Envoy cluster).
    pub cluster: &'a str,
    /// Request headers, pseudo-headers (`:method`, `:path`, `:authority`) included.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: Option<&'a [u8]>,
    pub timeout_ms: u64,
}

/// Host services every context has: requests and the per-plugin root alike.
pub trait Host {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// A seed for the filter's pseudo-random generator (not for secrets).
    fn random_seed(&self) -> u64;

    /// Bytes and CAS token stored under `key` in state shared by every worker.
    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);

    /// Store `value` under `key` if nobody wrote it since `cas` was read (`None`: always).
    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SharedError>;

    /// Start an HTTP callout; its answer arrives as a `callout done` event with the returned
    /// id, on the context that started it.
    fn http_call(&mut self, call: &Callout<'_>) -> Result<u32, String>;

    /// Add `n` to the counter `metric{labels}`.
    fn count(&self, metric: &str, labels: &[(&str, &str)], n: u64);

    /// Record one sample of the histogram `metric{labels}`.
    fn record(&self, metric: &str, labels: &[(&str, &str)], value: u64);
}

/// Host services of one HTTP request.
pub trait HttpHost: Host {
    /// A request header (first value).
    fn request_header(&self, name: &str) -> Option<String>;
    /// Every request header, pseudo-headers included.
    fn request_headers(&self) -> Vec<(String, String)>;
    /// Set (`Some`) or remove (`None`) a request header.
    fn set_request_header(&mut self, name: &str, value: Option<&str>);
    /// Apply request-header edits in order. A host that sees all headers in one call may skip
    /// removing headers that are not there.
    fn edit_request_headers(&mut self, edits: &[(&str, Option<String>)]) {
        for (name, value) in edits {
            self.set_request_header(name, value.as_deref());
        }
    }
    fn response_header(&self, name: &str) -> Option<String>;
    fn set_response_header(&mut self, name: &str, value: Option<&str>);

    /// The first `size` bytes of the request body the host holds (the whole body once the
    /// body phase paused until end of stream).
    fn request_body(&self, size: usize) -> Option<Vec<u8>>;
    /// Replace the first `size` bytes of the held request body with `body`.
    fn set_request_body(&mut self, size: usize, body: &[u8]);
    fn response_body(&self, size: usize) -> Option<Vec<u8>>;
    fn set_response_body(&mut self, size: usize, body: &[u8]);

    /// Answer the client locally; the request goes no further.
    fn send_response(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]);
    /// Resume a request held in its header phase.
    fn resume_request(&mut self);
    /// Resume a response held in its header phase.
    fn resume_response(&mut self);

    /// Make the host select the route again after a request header changed.
    fn clear_route_cache(&mut self);

    /// The route, `:authority` and cluster of the request, for `_rules_` matching.
    fn route_keys(&self) -> RouteKeys;
    /// The upstream cluster the request is routed to.
    fn cluster_name(&self) -> Option<String>;
    /// What the metadata filter (`json_to_metadata`) learned of the body before the header
    /// phase; all unknown where no such filter ran or the host has none.
    fn body_facts(&self) -> BodyFacts;
    /// The status the client got (`response.code`), read at the end of the stream.
    fn final_status(&self) -> Option<u16>;
    /// The host's reason for that status (`response.code_details`: timeouts, resets).
    fn final_status_details(&self) -> Option<String>;
    /// Publish per-request facts for access logs (filter state).
    fn set_log_facts(&mut self, facts: &str);

    /// Whether the host can hold the request headers while it reads the body (Envoy's native
    /// filters can; a Proxy-Wasm plugin on stock Envoy cannot, see DESIGN.md).
    fn holds_headers_for_body(&self) -> bool {
        false
    }
}

/// Owned `_rules_` match keys.
#[derive(Debug, Clone, Default)]
pub struct RouteKeys {
    pub route: Option<String>,
    pub host: Option<String>,
    pub cluster: Option<String>,
}

impl RouteKeys {
    pub fn keys(&self) -> switchyard_policy::rules::RequestKeys<'_> {
        switchyard_policy::rules::RequestKeys {
            route: self.route.as_deref(),
            host: self.host.as_deref(),
            cluster: self.cluster.as_deref(),
        }
    }
}

/// The config for this request: the first `_rules_` entry matching its route, domain or
/// service, else the global one. Request keys are read only when rules exist.
pub fn select_config<'r, T>(
    host: &impl HttpHost,
    rules: &'r switchyard_policy::rules::RuleSet<T>,
) -> Option<&'r T> {
    if !rules.has_rules() {
        return rules.global();
    }
    let keys = host.route_keys();
    rules.select(keys.keys())
}

/// What is known of the request body's fields before its bytes arrive. `None` is *unknown*,
/// never false: a fact the metadata filter did not provide is read from the body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyFacts {
    /// The body's top-level `model`, when it is a string.
    pub model: Option<String>,
    /// The body's `stream` flag.
    pub stream: Option<bool>,
    /// `stream_options.include_usage`.
    pub include_usage: Option<bool>,
    /// The metadata filter saw a body it could not parse as JSON.
    pub invalid_json: bool,
    /// The metadata filter parsed the body and it had no `model`.
    pub model_missing: bool,
}

impl BodyFacts {
    /// Whether the metadata filter ran on this request at all.
    pub fn known(&self) -> bool {
        self.model.is_some() || self.invalid_json || self.model_missing
    }

    /// Whether every fact the proxy's header phase relies on is known: the model, and for a
    /// stream whether the client asked for usage (an SDK sends `include_usage` while the
    /// metadata filter may lift only `model` and `stream`).
    pub fn complete(&self) -> bool {
        self.known() && (self.stream != Some(true) || self.include_usage.is_some())
    }
}

/// Read-modify-write `key` with compare-and-swap: `update` gets the current bytes and returns
/// the new ones; a concurrent writer makes it retry (a few times, then give up: the next
/// refresh writes again). Returns whether the write landed.
pub fn shared_update(
    host: &(impl Host + ?Sized),
    key: &str,
    mut update: impl FnMut(Option<&[u8]>) -> Vec<u8>,
) -> bool {
    for _ in 0..4 {
        let (current, cas) = host.shared_get(key);
        let next = update(current.as_deref());
        match host.shared_set(key, &next, cas) {
            Ok(()) => return true,
            Err(SharedError::CasMismatch) => continue,
            Err(SharedError::Failed(e)) => {
                log::warn!("shared state {key}: {e}");
                return false;
            }
        }
    }
    false
}

/// A pseudo-random generator shared by every request of a plugin instance (splitmix64 over
/// an atomic counter, so any thread may draw from it); for token and provider picks, not for
/// secrets.
#[derive(Debug, Default)]
pub struct Rng(AtomicU64);

impl Rng {
    const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

    pub fn new(seed: u64) -> Self {
        Rng(AtomicU64::new(seed))
    }

    pub fn next_u64(&self) -> u64 {
        let mut z = self
            .0
            .fetch_add(Self::GAMMA, Ordering::Relaxed)
            .wrapping_add(Self::GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SharedError::CasMismatch => f.write_str("CAS mismatch"),
            SharedError::Failed(e) => f.write_str(e),
        }
    }
}
