//! An in-memory host: the filters run natively against it, callback by callback, in the tests
//! and in `tools/hostsim`. It keeps headers, bodies and shared state, records what the filter
//! asked of it (local replies, callouts, metrics, route-cache clears) and counts every call by
//! kind. It answers what the filters ask; it does not emulate Envoy beyond that.

use crate::host::{
    update_bytes, view_bytes, BodyFacts, Callout, Host, HttpHost, RouteKeys, SharedError,
};
use crate::shared::{SharedMemory, SharedValue};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use switchyard_policy::stats::{Kind, METRICS};

/// `key -> (bytes, version)`; the version is the CAS token.
type ByteStore = HashMap<String, (Vec<u8>, u32)>;

/// Shared state as every worker of one plugin sees it; clone it into several hosts to model
/// several requests (or workers) at once.
///
/// [`SharedStore::default`] keeps bytes with CAS tokens, and typed values go through the
/// `Host` trait's default methods (encoded, compare-and-swap), as on Proxy-Wasm.
/// [`SharedStore::typed`] keeps typed values as themselves in a [`SharedMemory`], as the
/// native module does.
#[derive(Debug, Clone, Default)]
pub struct SharedStore {
    bytes: Rc<RefCell<ByteStore>>,
    memory: Option<Arc<SharedMemory>>,
}

impl SharedStore {
    /// A store whose typed values live in process memory (the native module's way).
    pub fn typed() -> Self {
        SharedStore {
            memory: Some(Arc::new(SharedMemory::new())),
            ..SharedStore::default()
        }
    }

    /// Whether typed values live in process memory rather than as bytes.
    pub fn is_typed(&self) -> bool {
        self.memory.is_some()
    }

    /// How many keys hold bytes.
    pub fn byte_keys(&self) -> usize {
        self.bytes.borrow().len()
    }

    /// How many keys hold typed values in process memory.
    pub fn typed_keys(&self) -> usize {
        self.memory.as_ref().map_or(0, |m| m.len())
    }
}

/// A callout the filter started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentCallout {
    pub id: u32,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout_ms: u64,
}

impl SentCallout {
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }
}

/// A local reply the filter sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl LocalReply {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

#[derive(Debug, Default)]
pub struct MockHost {
    pub now_ms: Cell<u64>,
    pub request_headers: Vec<(String, String)>,
    pub response_headers: Vec<(String, String)>,
    /// The request body the host holds (what `request_body` returns).
    pub request_body: Vec<u8>,
    pub response_body: Vec<u8>,
    pub body_facts: BodyFacts,
    pub route_keys: RouteKeys,
    pub cluster: Option<String>,
    pub final_status: Option<u16>,
    pub final_status_details: Option<String>,
    pub shared: SharedStore,
    pub holds_headers_for_body: bool,
    /// What the filter did.
    pub local_reply: Option<LocalReply>,
    pub callouts: Vec<SentCallout>,
    pub log_facts: Option<String>,
    pub route_cache_clears: u32,
    pub resumed_request: u32,
    pub resumed_response: u32,
    /// Counter totals and histogram samples by `metric{labels}` name.
    pub counters: RefCell<BTreeMap<String, u64>>,
    pub histograms: RefCell<BTreeMap<String, Vec<u64>>>,
    /// Metrics emitted with a name or label keys `stats::METRICS` does not declare (hosts
    /// that declare metrics up front would drop them).
    pub undeclared: RefCell<Vec<String>>,
    /// Calls by kind (`request_header`, `shared_get`, ...).
    pub calls: RefCell<BTreeMap<&'static str, u64>>,
    /// A callout fails to start when this is set (the error text).
    pub refuse_callouts: Option<String>,
    next_callout: Cell<u32>,
}

fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn set(headers: &mut Vec<(String, String)>, name: &str, value: Option<&str>) {
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    if let Some(v) = value {
        headers.push((name.to_string(), v.to_string()));
    }
}

/// A metric's name with its labels, as Prometheus would show it: `m{k="v",...}`.
pub fn metric_name(metric: &str, labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return metric.to_string();
    }
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{metric}{{{}}}", labels.join(","))
}

impl MockHost {
    /// A request with these headers (pseudo-headers included) at time `now_ms`.
    pub fn request(headers: &[(&str, &str)], now_ms: u64) -> MockHost {
        let host = MockHost {
            request_headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..MockHost::default()
        };
        host.now_ms.set(now_ms);
        host
    }

    /// A `POST` of a JSON body to `path`, as an SDK sends it.
    pub fn post(path: &str, body: &[u8]) -> MockHost {
        let mut host = MockHost::request(
            &[
                (":method", "POST"),
                (":path", path),
                (":authority", "gateway.local"),
                ("content-type", "application/json"),
                ("authorization", "Bearer client-secret"),
            ],
            1_700_000_000_000,
        );
        host.request_body = body.to_vec();
        host
    }

    /// Share `store` (another request's or worker's shared state).
    pub fn with_shared(mut self, store: &SharedStore) -> Self {
        self.shared = store.clone();
        self
    }

    pub fn with_facts(mut self, facts: BodyFacts) -> Self {
        self.body_facts = facts;
        self
    }

    pub fn with_cluster(mut self, cluster: &str) -> Self {
        self.cluster = Some(cluster.to_string());
        self
    }

    /// The upstream answers: status, headers and body (the filter reads them next).
    pub fn answer(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        self.response_headers = vec![(":status".into(), status.to_string())];
        self.response_headers
            .extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.response_body = body.to_vec();
    }

    pub fn request_header_value(&self, name: &str) -> Option<&str> {
        find(&self.request_headers, name)
    }

    pub fn response_header_value(&self, name: &str) -> Option<&str> {
        find(&self.response_headers, name)
    }

    /// The current request body as JSON (`Null` when it is not JSON).
    pub fn request_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.request_body).unwrap_or_default()
    }

    pub fn counter(&self, metric: &str, labels: &[(&str, &str)]) -> u64 {
        let name = metric_name(metric, labels);
        self.counters.borrow().get(&name).copied().unwrap_or(0)
    }

    /// How many calls of `kind` the filter made.
    pub fn calls_of(&self, kind: &str) -> u64 {
        self.calls.borrow().get(kind).copied().unwrap_or(0)
    }

    /// Every call, all kinds together.
    pub fn total_calls(&self) -> u64 {
        self.calls.borrow().values().sum()
    }

    fn check_declared(&self, metric: &str, kind: Kind, labels: &[(&str, &str)]) {
        let declared = METRICS.iter().any(|(name, k, keys)| {
            *name == metric && *k == kind && keys.iter().copied().eq(labels.iter().map(|(k, _)| *k))
        });
        if !declared {
            self.undeclared
                .borrow_mut()
                .push(metric_name(metric, labels));
        }
    }

    fn note(&self, kind: &'static str) {
        *self.calls.borrow_mut().entry(kind).or_default() += 1;
    }
}

impl Host for MockHost {
    fn now_ms(&self) -> u64 {
        self.note("now_ms");
        self.now_ms.get()
    }

    fn random_seed(&self) -> u64 {
        0x5eed
    }

    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.note("shared_get");
        match self.shared.bytes.borrow().get(key) {
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        }
    }

    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SharedError> {
        self.note("shared_set");
        let mut store = self.shared.bytes.borrow_mut();
        let current = store.get(key).map(|(_, c)| *c);
        if let (Some(want), Some(have)) = (cas, current) {
            if want != have {
                return Err(SharedError::CasMismatch);
            }
        }
        let next = current.unwrap_or(0).wrapping_add(1);
        store.insert(key.to_string(), (value.to_vec(), next));
        Ok(())
    }

    fn shared_view<T: SharedValue, R>(&self, key: &str, view: impl FnOnce(Option<&T>) -> R) -> R {
        match &self.shared.memory {
            Some(memory) => {
                self.note("shared_view");
                memory.view(key, view)
            }
            None => view_bytes(self, key, view),
        }
    }

    fn shared_update<T: SharedValue, R>(
        &self,
        key: &str,
        init: impl Fn() -> T,
        update: impl FnMut(&mut T) -> R,
    ) -> Option<R> {
        match &self.shared.memory {
            Some(memory) => {
                self.note("shared_update");
                Some(memory.update(key, init, update))
            }
            None => update_bytes(self, key, init, update),
        }
    }

    fn http_call(&mut self, call: &Callout<'_>) -> Result<u32, String> {
        self.note("http_call");
        if let Some(e) = &self.refuse_callouts {
            return Err(e.clone());
        }
        let id = self.next_callout.get().wrapping_add(1);
        self.next_callout.set(id);
        self.callouts.push(SentCallout {
            id,
            cluster: call.cluster.to_string(),
            headers: call
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: call.body.map(<[u8]>::to_vec),
            timeout_ms: call.timeout_ms,
        });
        Ok(id)
    }

    fn count(&self, metric: &str, labels: &[(&str, &str)], n: u64) {
        self.note("count");
        self.check_declared(metric, Kind::Counter, labels);
        *self
            .counters
            .borrow_mut()
            .entry(metric_name(metric, labels))
            .or_default() += n;
    }

    fn record(&self, metric: &str, labels: &[(&str, &str)], value: u64) {
        self.note("record");
        self.check_declared(metric, Kind::Histogram, labels);
        self.histograms
            .borrow_mut()
            .entry(metric_name(metric, labels))
            .or_default()
            .push(value);
    }
}

impl HttpHost for MockHost {
    fn request_header(&self, name: &str) -> Option<String> {
        self.note("request_header");
        find(&self.request_headers, name).map(str::to_string)
    }

    fn request_headers(&self) -> Vec<(String, String)> {
        self.note("request_headers");
        self.request_headers.clone()
    }

    fn set_request_header(&mut self, name: &str, value: Option<&str>) {
        self.note("set_request_header");
        set(&mut self.request_headers, name, value);
    }

    fn response_header(&self, name: &str) -> Option<String> {
        self.note("response_header");
        find(&self.response_headers, name).map(str::to_string)
    }

    fn set_response_header(&mut self, name: &str, value: Option<&str>) {
        self.note("set_response_header");
        set(&mut self.response_headers, name, value);
    }

    fn request_body(&self, size: usize) -> Option<Vec<u8>> {
        self.note("request_body");
        self.request_body.get(..size).map(<[u8]>::to_vec)
    }

    fn set_request_body(&mut self, size: usize, body: &[u8]) {
        self.note("set_request_body");
        let rest = self.request_body.get(size..).unwrap_or_default().to_vec();
        self.request_body = [body, &rest].concat();
    }

    fn response_body(&self, size: usize) -> Option<Vec<u8>> {
        self.note("response_body");
        self.response_body.get(..size).map(<[u8]>::to_vec)
    }

    fn set_response_body(&mut self, size: usize, body: &[u8]) {
        self.note("set_response_body");
        let rest = self.response_body.get(size..).unwrap_or_default().to_vec();
        self.response_body = [body, &rest].concat();
    }

    fn send_response(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        self.note("send_response");
        self.local_reply = Some(LocalReply {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_vec(),
        });
    }

    fn resume_request(&mut self) {
        self.note("resume_request");
        self.resumed_request += 1;
    }

    fn resume_response(&mut self) {
        self.note("resume_response");
        self.resumed_response += 1;
    }

    fn clear_route_cache(&mut self) {
        self.note("clear_route_cache");
        self.route_cache_clears += 1;
    }

    fn route_keys(&self) -> RouteKeys {
        self.note("route_keys");
        let mut keys = self.route_keys.clone();
        keys.host = keys
            .host
            .or_else(|| find(&self.request_headers, ":authority").map(str::to_string));
        keys
    }

    fn cluster_name(&self) -> Option<String> {
        self.note("cluster_name");
        self.cluster.clone()
    }

    fn body_facts(&self) -> BodyFacts {
        self.note("body_facts");
        self.body_facts.clone()
    }

    fn final_status(&self) -> Option<u16> {
        self.note("final_status");
        self.final_status
    }

    fn final_status_details(&self) -> Option<String> {
        self.note("final_status_details");
        self.final_status_details.clone()
    }

    fn set_log_facts(&mut self, facts: &str) {
        self.note("set_log_facts");
        self.log_facts = Some(facts.to_string());
    }

    fn holds_headers_for_body(&self) -> bool {
        self.holds_headers_for_body
    }
}
