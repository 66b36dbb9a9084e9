//! What the benchmark starts besides Envoy: tools, builds, the mock provider, CPU pinning, and
//! one-off requests to check answers.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::scenarios::stream_script;
use crate::Result;

/// Make the mock's third listener answer every request with S3's stream.
pub(super) fn script_stream(mock: &Mock) -> Result {
    let (status, _) = http(
        mock.addrs.get(2).copied().ok_or("mock")?,
        "POST",
        "/__mock/default",
        &stream_script().to_string(),
    )?;
    if status != 200 {
        return Err(format!(
            "mock-provider refused the stream script ({status})"
        ));
    }
    Ok(())
}

/// The mock provider process (killed on drop).
pub(super) struct Mock {
    child: Child,
    pub(super) addrs: Vec<SocketAddr>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPUs for Envoy and for the load (mock + wrk); `None` on a one-CPU machine.
pub(super) fn cpus() -> Option<(u32, u32)> {
    let n = crate::output(&mut Command::new("nproc"))
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(1);
    (n >= 2).then_some((0, 1))
}

pub(super) fn pin(pid: u32, cpu: u32) -> Result {
    let out = Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("taskset: {e}"))?;
    if out.success() {
        Ok(())
    } else {
        Err(format!("taskset could not pin {pid} to CPU {cpu}"))
    }
}

/// `wrk` (Debian package `wrk`), installed when missing and running as root.
pub(super) fn ensure_tools() -> Result {
    for (bin, pkg) in [("wrk", "wrk"), ("taskset", "util-linux")] {
        if crate::on_path(bin) {
            continue;
        }
        if crate::is_root() {
            crate::run(Command::new("apt-get").args(["update", "-qq"]))?;
            crate::run(
                Command::new("apt-get")
                    .args(["install", "-y", "-qq", pkg])
                    .env("DEBIAN_FRONTEND", "noninteractive"),
            )?;
        } else {
            return Err(format!(
                "{bin} is missing: install it (Debian: sudo apt-get install {pkg})"
            ));
        }
    }
    Ok(())
}

/// Build the plugins, the empty filter and the release mock provider.
pub(super) fn build_all(prebuilt: bool) -> Result<PathBuf> {
    let root = crate::root();
    let installed = crate::output(Command::new("rustup").args(["target", "list", "--installed"]))
        .unwrap_or_default();
    if switchyard::run::find_envoy(&root).is_none()
        || !installed.lines().any(|l| l.trim() == crate::WASM_TARGET)
    {
        crate::setup()?;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    if !prebuilt {
        crate::build()?;
        crate::build_wasm_package("noop-filter", "noop_filter.wasm", &crate::wasm_dir())?;
    }
    // The mock only has to outrun one Envoy worker by far (it serves ~40k req/s on one core);
    // skipping LTO keeps a fresh clone's build short.
    crate::run(
        Command::new(&cargo)
            .current_dir(&root)
            .args(["build", "--release", "-p", "mock-provider"])
            .env("CARGO_PROFILE_RELEASE_LTO", "off")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16"),
    )?;
    Ok(crate::target_dir().join("release/mock-provider"))
}

pub(super) fn start_mock(bin: &Path, listeners: usize, cpu: Option<u32>) -> Result<Mock> {
    let mut cmd = match cpu {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", &c.to_string()]).arg(bin);
            cmd
        }
        None => Command::new(bin),
    };
    for _ in 0..listeners {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    let mut child = cmd
        .args(["--threads", "1", "--record-limit", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let mut addrs = Vec::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
            if let Some(a) = line
                .strip_prefix("mock-provider listening on ")
                .and_then(|a| a.trim().parse().ok())
            {
                addrs.push(a);
                if addrs.len() == listeners {
                    break;
                }
            }
        }
    }
    let mock = Mock { child, addrs };
    if mock.addrs.len() != listeners {
        return Err("mock-provider did not report its listeners".into());
    }
    Ok(mock)
}

/// One request with the client's headers the scenarios expect; (status, decoded body).
pub(super) fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections(0)
        .timeout_connect(Some(Duration::from_secs(5)))
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .header("authorization", "Bearer client-secret")
        .body(body.to_string())
        .map_err(|e| e.to_string())?;
    let mut resp = agent.run(req).map_err(|e| format!("{addr}: {e}"))?;
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("{addr}: {e}"))?;
    Ok((resp.status().as_u16(), text))
}
