//! What the filters need from the host, and nothing else. Each host (Proxy-Wasm on Envoy or
//! Higress, Envoy's dynamic modules, the in-memory [`crate::mock::MockHost`]) implements these
//! traits once; the filters never name a host.
//!
//! [`Host`] is what every context has (clock, shared state, callouts, metrics); [`HttpHost`]
//! adds what only a request has (its headers, bodies, local replies, properties). Logging goes
//! through the `log` facade, which each host routes to its own log.

pub use crate::shared::SharedValue;
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

    /// Look at the `T` under `key` in state shared by every worker (`None`: absent or
    /// unreadable). By default decoded from [`Host::shared_get`]'s bytes; a host sharing
    /// memory with every worker lends the value itself ([`crate::shared::SharedMemory`]).
    fn shared_view<T: SharedValue, R>(&self, key: &str, view: impl FnOnce(Option<&T>) -> R) -> R {
        view_bytes(self, key, view)
    }

    /// Change the `T` under `key` atomically: `update` gets the current value (`init()` when
    /// there is none) and changes it in place; its answer is returned, or `None` when the
    /// change could not be stored. By default a compare-and-swap over the byte API
    /// ([`update_bytes`]), where `update` may run again on a fresh read; a host sharing memory
    /// with every worker changes the value in place under its lock.
    fn shared_update<T: SharedValue, R>(
        &self,
        key: &str,
        init: impl Fn() -> T,
        update: impl FnMut(&mut T) -> R,
    ) -> Option<R> {
        update_bytes(self, key, init, update)
    }

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

/// [`Host::shared_view`] over the byte API: read the bytes and decode them.
pub fn view_bytes<T: SharedValue, R>(
    host: &(impl Host + ?Sized),
    key: &str,
    view: impl FnOnce(Option<&T>) -> R,
) -> R {
    let value = host.shared_get(key).0.and_then(|b| T::decode(&b));
    view(value.as_ref())
}

/// [`Host::shared_update`] over the byte API: read the bytes and their CAS token, decode
/// (`init()` when absent or unreadable), apply `update`, and write the new encoding with the
/// token. A concurrent writer makes it start over on a fresh read (a few times, then give up:
/// the next change writes again). An encoding that did not change is not written (the common
/// case, e.g. a success of a healthy token, costs no write).
pub fn update_bytes<T: SharedValue, R>(
    host: &(impl Host + ?Sized),
    key: &str,
    init: impl Fn() -> T,
    mut update: impl FnMut(&mut T) -> R,
) -> Option<R> {
    for _ in 0..4 {
        let (current, cas) = host.shared_get(key);
        let mut value = current.as_deref().and_then(T::decode).unwrap_or_else(&init);
        let answer = update(&mut value);
        let next = value.encode();
        if current.as_deref() == Some(next.as_slice()) {
            return Some(answer);
        }
        match host.shared_set(key, &next, cas) {
            Ok(()) => return Some(answer),
            Err(SharedError::CasMismatch) => continue,
            Err(SharedError::Failed(e)) => {
                log::warn!("shared state {key}: {e}");
                return None;
            }
        }
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::{MockHost, SharedStore};

    /// A counter as a shared value (decimal text).
    #[derive(Debug, Clone, PartialEq)]
    struct Count(u64);

    impl SharedValue for Count {
        fn encode(&self) -> Vec<u8> {
            self.0.to_string().into_bytes()
        }

        fn decode(bytes: &[u8]) -> Option<Self> {
            std::str::from_utf8(bytes).ok()?.parse().ok().map(Count)
        }
    }

    fn count(host: &MockHost) -> Option<u64> {
        host.shared_view("n", |c: Option<&Count>| c.map(|c| c.0))
    }

    #[test]
    fn bytes_are_decoded_changed_and_written_with_their_cas_token() {
        let host = MockHost::default();
        assert_eq!(count(&host), None);
        let r = host.shared_update(
            "n",
            || Count(10),
            |c: &mut Count| {
                c.0 += 1;
                c.0
            },
        );
        assert_eq!(r, Some(11));
        assert_eq!(host.shared_get("n").0.as_deref(), Some(&b"11"[..]));
        // Garbage reads as absent; an update starts over from `init`.
        host.shared_set("n", b"junk", None).ok();
        assert_eq!(count(&host), None);
        host.shared_update("n", || Count(0), |c: &mut Count| c.0 += 1);
        assert_eq!(count(&host), Some(1));
    }

    #[test]
    fn an_unchanged_value_is_not_written_again() {
        let host = MockHost::default();
        host.shared_update("n", || Count(5), |_: &mut Count| ());
        let writes = host.calls_of("shared_set");
        assert_eq!(writes, 1, "absent: written");
        let (_, cas) = host.shared_get("n");
        host.shared_update("n", || Count(0), |_: &mut Count| ());
        assert_eq!(host.calls_of("shared_set"), writes);
        assert_eq!(host.shared_get("n").1, cas);
    }

    #[test]
    fn a_concurrent_write_makes_the_update_start_over_on_fresh_state() {
        let store = SharedStore::default();
        let host = MockHost::default().with_shared(&store);
        let other = MockHost::default().with_shared(&store);
        host.shared_update("n", || Count(0), |_: &mut Count| ());
        let mut runs = 0;
        let r = host.shared_update(
            "n",
            || Count(0),
            |c: &mut Count| {
                runs += 1;
                if runs == 1 {
                    // Another worker adds 100 between this read and its write.
                    other.shared_update("n", || Count(0), |c: &mut Count| c.0 += 100);
                }
                c.0 += 1;
                c.0
            },
        );
        assert_eq!(runs, 2);
        assert_eq!(r, Some(101), "neither change is lost");
        assert_eq!(count(&host), Some(101));
    }

    #[test]
    fn gives_up_after_a_few_lost_races() {
        let store = SharedStore::default();
        let host = MockHost::default().with_shared(&store);
        let other = MockHost::default().with_shared(&store);
        // Stored first: a key nobody wrote has no CAS token to lose a race with.
        host.shared_update("n", || Count(0), |_: &mut Count| ());
        let mut runs = 0;
        let r = host.shared_update(
            "n",
            || Count(0),
            |c: &mut Count| {
                runs += 1;
                other.shared_update("n", || Count(0), |c: &mut Count| c.0 += 100);
                c.0 += 1;
            },
        );
        assert_eq!(r, None);
        assert_eq!(runs, 4);
        assert_eq!(
            count(&host),
            Some(400),
            "only the other worker's changes landed"
        );
    }

    #[test]
    fn typed_store_changes_values_in_place_without_bytes() {
        let store = SharedStore::typed();
        let host = MockHost::default().with_shared(&store);
        let other = MockHost::default().with_shared(&store);
        for _ in 0..3 {
            host.shared_update("n", || Count(0), |c: &mut Count| c.0 += 1);
        }
        assert_eq!(count(&other), Some(3));
        assert_eq!(host.calls_of("shared_get") + host.calls_of("shared_set"), 0);
        assert_eq!(store.byte_keys(), 0);
        assert_eq!(store.typed_keys(), 1);
    }
}
