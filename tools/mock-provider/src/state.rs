//! State shared by the connections of one server and its [`crate::MockServer`] handle.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hyper::HeaderMap;

use crate::metrics::Gauges;
use crate::record::RecordedRequest;
use crate::script::Script;

/// Recorded requests, scripts, gauges and the response id counter.
pub(crate) struct Shared {
    recorded: Mutex<Recorded>,
    scripts: Mutex<Scripts>,
    gauges: Mutex<Gauges>,
    /// `Script::default()`, shared so that selecting it does not allocate.
    normal: Arc<Script>,
    next_id: AtomicU64,
    clouds: Mutex<Clouds>,
}

/// Cloud credentials the mock checks: AWS key pairs (SigV4 on Bedrock paths) and the Vertex
/// AI token issuer (bearer tokens on `/v1/projects/...` paths). Unset = not checked.
#[derive(Default)]
pub(crate) struct Clouds {
    pub aws: Vec<(String, String)>,
    /// Bedrock API keys accepted as `Authorization: Bearer <key>`.
    pub bedrock_api_keys: Vec<String>,
    pub vertex: Option<crate::vertex::Issuer>,
}

struct Recorded {
    list: VecDeque<RecordedRequest>,
    limit: usize,
}

struct Scripts {
    queue: VecDeque<Arc<Script>>,
    default: Arc<Script>,
}

/// Lock a mutex, ignoring poisoning: every critical section leaves the data consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(record_limit: usize) -> Self {
        let normal = Arc::new(Script::default());
        Shared {
            recorded: Mutex::new(Recorded {
                list: VecDeque::new(),
                limit: record_limit,
            }),
            scripts: Mutex::new(Scripts {
                queue: VecDeque::new(),
                default: Arc::clone(&normal),
            }),
            gauges: Mutex::new(Gauges::default()),
            normal,
            next_id: AtomicU64::new(1),
            clouds: Mutex::new(Clouds::default()),
        }
    }

    /// A fresh number for response ids.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Record a request unless recording is off (limit 0); drops the oldest beyond the limit.
    pub(crate) fn record(&self, parts: &hyper::http::request::Parts, body: &[u8]) {
        let mut rec = lock(&self.recorded);
        if rec.limit == 0 {
            return;
        }
        rec.list.push_back(RecordedRequest::from_parts(parts, body));
        while rec.list.len() > rec.limit {
            rec.list.pop_front();
        }
    }

    pub(crate) fn set_record_limit(&self, limit: usize) {
        let mut rec = lock(&self.recorded);
        rec.limit = limit;
        while rec.list.len() > limit {
            rec.list.pop_front();
        }
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.recorded).list.iter().cloned().collect()
    }

    /// Run `f` over the recorded requests without copying them.
    pub(crate) fn with_requests<R>(&self, f: impl FnOnce(&VecDeque<RecordedRequest>) -> R) -> R {
        f(&lock(&self.recorded).list)
    }

    pub(crate) fn clear_requests(&self) {
        lock(&self.recorded).list.clear();
    }

    pub(crate) fn push_script(&self, s: Script) {
        lock(&self.scripts).queue.push_back(Arc::new(s));
    }

    pub(crate) fn set_default_script(&self, s: Script) {
        lock(&self.scripts).default = Arc::new(s);
    }

    /// The script for a request: the first queued one that applies to it (consumed), else the
    /// default if it applies, else a normal answer.
    pub(crate) fn select_script(&self, headers: &HeaderMap, query: Option<&str>) -> Arc<Script> {
        let mut scripts = lock(&self.scripts);
        if let Some(pos) = scripts
            .queue
            .iter()
            .position(|s| s.applies_to(headers, query))
        {
            if let Some(s) = scripts.queue.remove(pos) {
                return s;
            }
        }
        if scripts.default.applies_to(headers, query) {
            Arc::clone(&scripts.default)
        } else {
            Arc::clone(&self.normal)
        }
    }

    pub(crate) fn set_gauge(&self, name: &str, value: f64) {
        lock(&self.gauges).set(name, value);
    }

    pub(crate) fn render_gauges(&self) -> String {
        lock(&self.gauges).render()
    }

    /// Run `f` over the cloud credentials.
    pub(crate) fn with_clouds<R>(&self, f: impl FnOnce(&mut Clouds) -> R) -> R {
        f(&mut lock(&self.clouds))
    }

    /// Forget requests, queued scripts, the default script, gauges and cloud credentials.
    pub(crate) fn reset(&self) {
        *lock(&self.clouds) = Clouds::default();
        self.clear_requests();
        {
            let mut scripts = lock(&self.scripts);
            scripts.queue.clear();
            scripts.default = Arc::clone(&self.normal);
        }
        lock(&self.gauges).clear();
    }
}
