//! `switchyard up`: run the gateway locally and keep it in step with `gateway.yaml`.
//!
//! Envoy starts from a bootstrap whose listeners and clusters come from `lds.json` and
//! `cds.json` in a directory Envoy watches. A changed `gateway.yaml` is validated, rendered,
//! and written clusters first, then listeners, each file replaced by rename, so Envoy applies
//! it in place: same process, open connections drain on the old filter chain. A bad edit
//! (ours or Envoy's refusal) is reported and the running config stays.

use crate::envoy::{
    clusters, discovery_response, listeners, native_runtime, render_dynamic, Runtime, CDS_FILE,
    CLUSTER_TYPE, LDS_FILE, LISTENER_TYPE,
};
use crate::gateway::{self, GatewayConfig, GatewayError, Upstreams};
use crate::local::LocalMocks;
use crate::run::{write_atomic, EnvoyProcess, RunError, DYNAMIC_MODULES_SEARCH_PATH};
use serde_json::Value;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How to run.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub config: PathBuf,
    pub envoy: PathBuf,
    /// Directory with `ai_load_balancer.wasm` and `ai_proxy.wasm`.
    pub wasm_dir: PathBuf,
    /// Where the filters run (default: the native module).
    pub runtime: Runtime,
    /// Directory with `libswitchyard.so` (the native runtime).
    pub native_dir: PathBuf,
    /// Bootstrap, resources and log go here.
    pub workdir: PathBuf,
    pub concurrency: u32,
    /// How often `gateway.yaml` is looked at.
    pub poll_interval: Duration,
}

impl UpOptions {
    pub fn new(config: PathBuf, envoy: PathBuf, wasm_dir: PathBuf, workdir: PathBuf) -> Self {
        UpOptions {
            config,
            envoy,
            native_dir: wasm_dir.with_file_name("native"),
            wasm_dir,
            runtime: Runtime::Native,
            workdir,
            concurrency: 1,
            poll_interval: Duration::from_millis(200),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error("{0}")]
    Config(#[from] GatewayError),
    #[error("{0}")]
    Run(#[from] RunError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("envoy refused the config: {0}")]
    Refused(String),
}

/// What a look at `gateway.yaml` led to.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The new config is in force (listeners warmed).
    Applied {
        version: u64,
        providers: Vec<String>,
    },
    /// The edit was refused; the previous config keeps running.
    Rejected { message: String },
}

/// A running gateway.
pub struct Up {
    pub envoy: EnvoyProcess,
    opts: UpOptions,
    mocks: LocalMocks,
    dir: PathBuf,
    version: u64,
    last_text: String,
    good: (Value, Value),
    /// Listener addresses with port 0 replaced by the port picked at start.
    listen: Vec<SocketAddr>,
    pub upstreams: Upstreams,
}

fn free_port(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    // Bind, read the port, release: Envoy binds it right after (a tiny race on loopback).
    let l = TcpListener::bind(addr)?;
    l.local_addr()
}

impl Up {
    /// Load the config, start mocks and Envoy, and wait until it serves.
    pub fn start(opts: UpOptions) -> Result<Up, UpError> {
        let text = std::fs::read_to_string(&opts.config).map_err(|e| GatewayError {
            file: opts.config.display().to_string(),
            problems: vec![gateway::Diagnostic::new(0, "", e.to_string())],
        })?;
        let cfg = parse(&opts.config, &text)?;
        let listen = cfg
            .listen_addrs()
            .into_iter()
            .map(free_port)
            .collect::<Result<Vec<_>, _>>()?;
        let dir = opts.workdir.join("xds");
        for f in [CDS_FILE, LDS_FILE] {
            if let Some(d) = dir.join(f).parent() {
                std::fs::create_dir_all(d)?;
            }
        }
        let mut mocks = LocalMocks::default();
        let upstreams = mocks.plan(&cfg)?;
        resolved_ok(&opts.config, &cfg, &upstreams)?;
        let (cds, lds) = resources(&cfg, &upstreams, &opts, &listen, 1);
        write_atomic(&dir.join(CDS_FILE), cds.to_string().as_bytes())?;
        write_atomic(&dir.join(LDS_FILE), lds.to_string().as_bytes())?;
        let admin = match &cfg.admin {
            Some(_) => cfg.admin_addr(),
            None => SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let mut bootstrap = render_dynamic(admin, &dir);
        let mut env = Vec::new();
        if opts.runtime == Runtime::Native {
            bootstrap["layered_runtime"] = native_runtime();
            env.push((DYNAMIC_MODULES_SEARCH_PATH, opts.native_dir.clone()));
        }
        // Envoy appends to its log: start a fresh one so reports only show this run.
        let _ = std::fs::remove_file(opts.workdir.join("envoy.log"));
        let envoy = EnvoyProcess::start_bootstrap_env(
            &opts.envoy,
            &bootstrap,
            &opts.workdir,
            opts.concurrency,
            listen[0],
            admin,
            &env,
        )
        .map_err(|e| match e {
            // The usual cause is a refused first config: say why instead of the whole log.
            RunError::NotReady(log) => {
                let why: Vec<&str> = log
                    .lines()
                    .filter(|l| l.contains("rejected") || l.contains("critical"))
                    .map(|l| l.rsplit("] ").next().unwrap_or(l))
                    .collect();
                if why.is_empty() {
                    UpError::Run(RunError::NotReady(log))
                } else {
                    UpError::Refused(why.join("\n"))
                }
            }
            other => UpError::Run(other),
        })?;
        Ok(Up {
            envoy,
            opts,
            mocks,
            dir,
            version: 1,
            last_text: text,
            good: (cds, lds),
            listen,
            upstreams,
        })
    }

    /// The first listener's address.
    pub fn listen(&self) -> SocketAddr {
        self.envoy.listen
    }

    pub fn pid(&self) -> u32 {
        self.envoy.pid()
    }

    /// Providers currently served by a local mock.
    pub fn mocked(&self) -> Vec<String> {
        self.mocks.mocked()
    }

    /// Look at `gateway.yaml`; apply it when its content changed.
    fn poll(&mut self) -> Option<Event> {
        let mut text = std::fs::read_to_string(&self.opts.config).ok()?;
        if text == self.last_text {
            return None;
        }
        // Wait until the file stops changing: editors and `>` truncate before they write.
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(50));
            match std::fs::read_to_string(&self.opts.config) {
                Ok(now) if now == text => break,
                Ok(now) => text = now,
                Err(_) => return None,
            }
        }
        self.last_text = text.clone();
        Some(match self.apply(&text) {
            Ok(providers) => Event::Applied {
                version: self.version,
                providers,
            },
            Err(e) => Event::Rejected {
                message: e.to_string(),
            },
        })
    }

    /// Watch until `stop` is set or Envoy exits, reporting each event.
    pub fn watch(&mut self, stop: &AtomicBool, on_event: &mut dyn FnMut(&Up, &Event)) {
        while !stop.load(Ordering::SeqCst) && self.envoy.running() {
            if let Some(ev) = self.poll() {
                on_event(self, &ev);
            }
            std::thread::sleep(self.opts.poll_interval);
        }
    }

    fn apply(&mut self, text: &str) -> Result<Vec<String>, UpError> {
        let cfg = parse(&self.opts.config, text)?;
        let listen: Vec<SocketAddr> = cfg
            .listen_addrs()
            .into_iter()
            .enumerate()
            .map(|(i, a)| match self.listen.get(i) {
                Some(old) if a.port() == 0 && old.ip() == a.ip() => Ok(*old),
                _ => free_port(a),
            })
            .collect::<Result<_, std::io::Error>>()?;
        let upstreams = self.mocks.plan(&cfg)?;
        resolved_ok(&self.opts.config, &cfg, &upstreams)?;
        let version = self.version + 1;
        let (cds, lds) = resources(&cfg, &upstreams, &self.opts, &listen, version);
        // Clusters first, so the new routes never point at a cluster Envoy lacks.
        if let Err(e) = self.push(CDS_FILE, &cds, "cluster_manager.cds") {
            self.version = version;
            return Err(e);
        }
        if let Err(e) = self.push(LDS_FILE, &lds, "listener_manager.lds") {
            // Put the clusters the running listeners use back.
            let mut old = self.good.0.clone();
            old["version_info"] = Value::String(format!("{}", version + 1));
            let _ = self.push(CDS_FILE, &old, "cluster_manager.cds");
            self.version = version + 1;
            return Err(e);
        }
        self.wait_warm();
        self.mocks.release_retired();
        self.version = version;
        self.good = (cds, lds);
        self.listen = listen;
        self.upstreams = upstreams;
        Ok(cfg.providers.iter().map(|p| p.name.value.clone()).collect())
    }

    /// Replace one resource file and wait until Envoy took or refused it.
    fn push(&mut self, file: &str, content: &Value, stats: &str) -> Result<(), UpError> {
        let before = self.counters(stats);
        let log_len = self.envoy.log().len();
        write_atomic(&self.dir.join(file), content.to_string().as_bytes())?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now = self.counters(stats);
            if now.1 > before.1 {
                return Err(UpError::Refused(self.refusal(log_len, file)));
            }
            if now.0 > before.0 {
                return Ok(());
            }
            if Instant::now() > deadline || !self.envoy.running() {
                return Err(UpError::Refused(format!(
                    "no answer to {file} from envoy (see {})",
                    self.envoy.log_path.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Why Envoy refused an update: the newest listener `error_state` of the config dump,
    /// else its log lines since `log_len` that say so.
    fn refusal(&self, log_len: usize, file: &str) -> String {
        if file == LDS_FILE {
            if let Some(d) = self.listener_error() {
                return d;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let log = self.envoy.log();
            let lines: Vec<String> = log
                .get(log_len..)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("rejected"))
                .map(|l| l.rsplit("] ").next().unwrap_or(l).to_string())
                .collect();
            if let Some(last) = lines.last() {
                return last.clone();
            }
            if Instant::now() > deadline {
                return format!("{file} rejected (see {})", self.envoy.log_path.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn listener_error(&self) -> Option<String> {
        let (_, body) = self
            .envoy
            .admin_get("/config_dump?resource=dynamic_listeners")
            .ok()?;
        let v: Value = serde_json::from_str(&body).ok()?;
        v.get("configs")?
            .as_array()?
            .iter()
            .filter_map(|c| c.get("error_state"))
            .filter_map(|e| {
                let at = e.get("last_update_attempt")?.as_str()?.to_string();
                Some((at, e.get("details")?.as_str()?.to_string()))
            })
            .max()
            .map(|(_, d)| d)
    }

    /// `(update_success, update_rejected)` of an xDS subscription.
    fn counters(&self, prefix: &str) -> (u64, u64) {
        let body = self
            .envoy
            .admin_get(&format!("/stats?filter=^{prefix}\\.update_"))
            .map(|(_, b)| b)
            .unwrap_or_default();
        let get = |name: &str| {
            body.lines()
                .find_map(|l| {
                    l.split_once(": ")
                        .filter(|(k, _)| *k == format!("{prefix}.{name}"))
                        .and_then(|(_, v)| v.trim().parse().ok())
                })
                .unwrap_or(0)
        };
        (get("update_success"), get("update_rejected"))
    }

    /// Wait until no listener is warming (the new filter chain serves).
    fn wait_warm(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let warming = self
                .envoy
                .admin_get("/stats?filter=^listener_manager\\.total_listeners_warming$")
                .ok()
                .and_then(|(_, b)| {
                    b.lines().find_map(|l| {
                        l.split_once(": ")
                            .and_then(|(_, v)| v.trim().parse::<u64>().ok())
                    })
                });
            if warming == Some(0) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn parse(path: &Path, text: &str) -> Result<GatewayConfig, GatewayError> {
    GatewayConfig::parse(text).map_err(|problems| GatewayError {
        file: path.display().to_string(),
        problems,
    })
}

/// What ai-proxy says about the config with resolved (or mock) tokens and options.
fn resolved_ok(path: &Path, cfg: &GatewayConfig, ups: &Upstreams) -> Result<(), GatewayError> {
    let problems = ups.validate(cfg);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(GatewayError {
            file: path.display().to_string(),
            problems,
        })
    }
}

/// The CDS and LDS file contents for `cfg`.
fn resources(
    cfg: &GatewayConfig,
    upstreams: &Upstreams,
    opts: &UpOptions,
    listen: &[SocketAddr],
    version: u64,
) -> (Value, Value) {
    let mut spec = gateway::render(
        cfg,
        upstreams,
        &opts.wasm_dir,
        SocketAddr::from(([127, 0, 0, 1], 0)),
    );
    spec.runtime = opts.runtime;
    if let Some((first, rest)) = listen.split_first() {
        spec.listen = *first;
        spec.extra_listeners = rest.to_vec();
    }
    (
        discovery_response(version, CLUSTER_TYPE, clusters(&spec)),
        discovery_response(version, LISTENER_TYPE, listeners(&spec)),
    )
}

/// Start, print where things are, then apply edits until Envoy exits or `stop` is set (then
/// Envoy and the mocks are stopped).
pub fn run_foreground(opts: UpOptions, stop: &AtomicBool) -> Result<(), String> {
    let config = opts.config.display().to_string();
    let mut gw = Up::start(opts).map_err(|e| e.to_string())?;
    print_banner(&gw, &config);
    gw.watch(stop, &mut |gw, ev| match ev {
        Event::Applied { version, providers } => {
            println!(
                "{config}: applied (version {version}): providers {}",
                providers.join(", ")
            );
            print_upstreams(gw);
        }
        Event::Rejected { message } => {
            eprintln!("{config}: edit refused, the running config is kept:\n{message}");
        }
    });
    if stop.load(Ordering::SeqCst) {
        println!("stopped");
        return Ok(());
    }
    Err(format!(
        "envoy exited (log: {})",
        gw.envoy.log_path.display()
    ))
}

fn print_banner(gw: &Up, config: &str) {
    let l = gw.listen();
    println!(
        "\nSwitchyard gateway on http://{l} (config {config}, Envoy pid {}, admin http://{}, log {})",
        gw.pid(),
        gw.envoy.admin,
        gw.envoy.log_path.display()
    );
    print_upstreams(gw);
    println!("\nTry:\n  curl -s http://{l}/v1/chat/completions -d '{{\"model\":\"auto\",\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}]}}'");
    println!("  curl -sN http://{l}/v1/chat/completions -d '{{\"model\":\"auto\",\"stream\":true,\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}]}}'");
    println!("\nEdits to {config} apply within a second. Ctrl-C stops everything.");
}

fn print_upstreams(gw: &Up) {
    let mocked = gw.mocked();
    for (name, (cluster, _)) in &gw.upstreams.by_provider {
        let how = if mocked.contains(name) {
            " (mock: a token or option variable is unset)"
        } else if cluster.tls {
            " (TLS)"
        } else {
            ""
        };
        println!(
            "  provider {name:<10} -> {}:{}{how}",
            cluster.address, cluster.port
        );
    }
}

/// Set by SIGINT/SIGTERM/SIGHUP once [`stop_on_signals`] ran.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Turn SIGINT/SIGTERM/SIGHUP into a stop flag for [`run_foreground`], so Envoy and the mocks
/// are stopped before the process exits.
pub fn stop_on_signals() -> &'static AtomicBool {
    let handler: extern "C" fn(libc::c_int) = on_signal;
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(sig, handler as libc::sighandler_t);
        }
    }
    &STOP
}
