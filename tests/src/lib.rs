//! End-to-end harness: real Envoy (from `.venv`, see `cargo xtask setup`) loading the built
//! `.wasm` plugins (`cargo xtask build` puts them in `target/wasm/`), mock providers standing in
//! for vendors' clouds, all on loopback. Run through `cargo xtask test`.
//!
//! Every `Gateway` stops its Envoy on drop and prints Envoy's log when the test failed.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
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

/// Path of a built plugin, e.g. `wasm("ai_proxy")`.
pub fn wasm(name: &str) -> PathBuf {
    let dir = std::env::var_os("SWITCHYARD_WASM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/wasm"));
    let p = dir.join(format!("{name}.wasm"));
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

    pub fn post(&self, path: &str, body: &str) -> Response {
        self.request("POST", path, &[], &[body.as_bytes()])
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

    /// Counter or gauge value from Envoy's stats.
    pub fn stat(&self, name: &str) -> Option<u64> {
        let (_, body) = self
            .envoy
            .admin_get(&format!("/stats?filter=^{name}$"))
            .ok()?;
        body.lines().find_map(|l| {
            l.split_once(": ")
                .and_then(|(k, v)| (k == name).then(|| v.trim().parse().ok()).flatten())
        })
    }

    /// Envoy's Prometheus scrape (`/stats/prometheus`).
    pub fn prometheus(&self) -> String {
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

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// `data:` payloads of an SSE body, in order.
    pub fn sse_data(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter_map(|l| {
                l.strip_prefix("data: ")
                    .or_else(|| l.strip_prefix("data:"))
                    .map(str::to_string)
            })
            .collect()
    }

    /// The JSON chunks of a complete OpenAI stream: it must end with `data: [DONE]`.
    pub fn chunks(&self) -> Vec<Value> {
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

/// Minimal HTTP/1.1 client with full control over how the body is sent.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[&[u8]],
) -> Response {
    let mut s = TcpStream::connect(addr).expect("connect to envoy");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    let has_ct = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    if !has_ct && !body.is_empty() {
        head.push_str("content-type: application/json\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let chunked = body.len() > 1;
    if chunked {
        head.push_str("transfer-encoding: chunked\r\n\r\n");
        s.write_all(head.as_bytes()).expect("write");
        for piece in body {
            s.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                .expect("write");
            s.write_all(piece).expect("write");
            s.write_all(b"\r\n").expect("write");
            s.flush().expect("flush");
            std::thread::sleep(Duration::from_millis(20));
        }
        s.write_all(b"0\r\n\r\n").expect("write");
    } else {
        let b = body.first().copied().unwrap_or_default();
        if method != "GET" || !b.is_empty() {
            head.push_str(&format!("content-length: {}\r\n", b.len()));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).expect("write");
        s.write_all(b).expect("write");
    }
    read_response(s)
}

fn read_response(s: TcpStream) -> Response {
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.trim_end().split_once(':') {
            headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            let n = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n];
            if r.read_exact(&mut chunk).is_err() {
                break;
            }
            body.extend(chunk);
            line.clear();
            let _ = r.read_line(&mut line);
        }
    } else if let Some(n) = get("content-length").and_then(|n| n.parse::<usize>().ok()) {
        body.resize(n, 0);
        r.read_exact(&mut body).expect("body");
    } else {
        let _ = r.read_to_end(&mut body);
    }
    Response {
        status,
        headers,
        body,
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
pub fn python() -> String {
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

    pub fn post(&self, path: &str, body: &str) -> Response {
        request(self.listen, "POST", path, &[], &[body.as_bytes()])
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    BootstrapSpec::new(
        SocketAddr::from(([127, 0, 0, 1], port)),
        "127.0.0.1:0".parse().expect("addr"),
    )
}
