//! Instruction counts inside Envoy under callgrind, which do not depend on machine load:
//!
//! `cargo xtask bench --host-calls`: what each kind of Proxy-Wasm host call costs.
//!
//! One Envoy (`--concurrency 1`) runs under `valgrind --tool=callgrind` with Envoy's
//! `json_to_metadata` filter and `plugins/hostcall-probe`, which repeats the host call named by
//! the request header `x-op` `x-n` times. For each call: 20 warm-up requests, counters zeroed,
//! [`REQUESTS`] requests, counters dumped; the call's cost is the extra instructions per
//! request over the `none` baseline, divided by the repetitions. Needs valgrind (installed
//! with apt-get when missing and running as root). Takes a few minutes: Envoy compiles the
//! Wasm module under valgrind first.
//!
//! `cargo xtask bench --instructions`: instructions per request of each benchmark scenario
//! (same specs as the end-to-end runs), two Envoys at a time; the regression measure to
//! compare commits with (`--wasm-dir`), since wall-clock CPU varies by tens of percent on a
//! shared machine.

use serde_json::{json, Value};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;

/// Calls per request for every operation but the baseline.
const REPEAT: usize = 10;
/// Measured requests per operation.
const REQUESTS: usize = 100;

/// The operations the probe knows, with what one repetition does.
pub const OPS: &[(&str, &str)] = &[
    (
        "get_header",
        "read a request header that is present (`:path`)",
    ),
    ("get_header_missing", "read a request header that is absent"),
    (
        "get_headers",
        "read the whole request header map (~12 headers)",
    ),
    ("add_header", "add a request header"),
    ("replace_header", "replace a request header"),
    ("remove_header", "remove an absent request header"),
    (
        "get_property",
        "read a string property (`metadata...switchyard.model`)",
    ),
    ("get_property_missing", "read an absent property"),
    (
        "get_property_map",
        "read a metadata namespace (a map, as pairs)",
    ),
    ("set_property", "set a filter-state property"),
    ("time", "read the clock"),
    ("counter", "increment a counter"),
    ("histogram", "record a histogram sample"),
    (
        "clear_route_cache",
        "call the `clear_route_cache` foreign function",
    ),
    ("get_body", "read the 1 KiB request body"),
    ("set_body", "replace the 1 KiB request body"),
];

/// Envoy under callgrind (killed on drop).
struct Profiled {
    child: Child,
    out: PathBuf,
}

impl Drop for Profiled {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ensure_valgrind() -> Result {
    if crate::on_path("valgrind") && crate::on_path("callgrind_control") {
        return Ok(());
    }
    if !crate::is_root() {
        return Err(
            "valgrind is missing: install it (Debian: sudo apt-get install valgrind)".into(),
        );
    }
    crate::run(Command::new("apt-get").args(["update", "-qq"]))?;
    crate::run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "valgrind"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn free_port() -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map_err(|e| e.to_string())
}

/// POST a chat body on a fresh connection with `extra` header lines; the status. The raw
/// client, so that every request is the same bytes as in the counts recorded so far.
fn post(addr: SocketAddr, extra: &str, body: &str) -> Result<u16> {
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\
         content-type: application/json\r\n{extra}content-length: {}\r\n\r\n",
        body.len()
    );
    let answer = || -> std::io::Result<u16> {
        let mut c = raw_http::Conn::connect(addr, Duration::from_secs(60))?;
        c.send(&head, body.as_bytes())?;
        let status = c.response(false)?.status;
        // Envoy closes (`connection: close`), as in every count recorded so far.
        c.drain();
        Ok(status)
    };
    answer().map_err(|e| format!("{addr}: {e}"))
}

/// Instructions in callgrind's newest dump.
fn last_dump_instructions(out: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(last_dump(out)?).map_err(|e| e.to_string())?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .ok_or_else(|| "callgrind dump without totals".into())
}

/// Instructions inside the native module's stream hooks (`envoy_dynamic_module_on_http_filter_*`,
/// inclusive: the module's own work and the Envoy calls it makes), in the last dump of `out`.
/// The config-level hooks are left out: the main thread's counter flush runs every 100 ms of
/// wall time, so its share per request depends on how slowly callgrind ran. `None` without
/// `callgrind_annotate` or hooks.
fn module_hook_instructions(out: &Path) -> Option<u64> {
    let dump = last_dump(out).ok()?;
    let text = crate::output(
        Command::new("callgrind_annotate")
            .args(["--auto=no", "--inclusive=yes", "--threshold=100"])
            .arg(&dump),
    )?;
    let sum: u64 = text
        .lines()
        .filter(|l| is_stream_hook_total(l))
        .filter_map(|l| {
            l.split_whitespace()
                .next()?
                .replace(',', "")
                .parse::<u64>()
                .ok()
        })
        .sum();
    (sum > 0).then_some(sum)
}

/// Whether an inclusive line of `callgrind_annotate` is a stream hook's own total: the function
/// followed by its object (`[…/libswitchyard.so]`). Inlined pieces carry no object, and with
/// sources found the same function may be listed once more under another spelling of its file
/// path, also without one.
fn is_stream_hook_total(line: &str) -> bool {
    let Some(hook) = line
        .find("envoy_dynamic_module_on_http_filter_")
        .and_then(|at| line.get(at..))
    else {
        return false;
    };
    !hook.contains("_config_")
        && hook
            .split_once(' ')
            .is_some_and(|(_, object)| object.starts_with('['))
}

/// The newest dump callgrind wrote next to `out`.
fn last_dump(out: &Path) -> Result<PathBuf> {
    let dir = out.parent().ok_or("callgrind output has no directory")?;
    let stem = out
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("callgrind output name")?;
    let newest = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{stem}."))
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .ok_or("callgrind wrote no dump")?;
    Ok(newest.path())
}

fn callgrind_control(flag: &str, pid: u32) -> Result {
    let ok = Command::new("callgrind_control")
        .args([flag, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("callgrind_control: {e}"))?
        .success();
    if ok {
        Ok(())
    } else {
        Err(format!("callgrind_control {flag} failed"))
    }
}

/// Instructions per request of `op` repeated `n` times.
fn measure(envoy: &Profiled, addr: SocketAddr, op: &str, n: usize, body: &str) -> Result<f64> {
    let extra = format!("x-op: {op}\r\nx-n: {n}\r\n");
    measure_requests(envoy, addr, &extra, body).map_err(|e| format!("{op}: {e}"))
}

/// Instructions per request: 20 warm-up requests, then [`REQUESTS`] counted ones.
fn measure_requests(envoy: &Profiled, addr: SocketAddr, extra: &str, body: &str) -> Result<f64> {
    for _ in 0..20 {
        post(addr, extra, body)?;
    }
    let pid = envoy.child.id();
    callgrind_control("-z", pid)?;
    for _ in 0..REQUESTS {
        let status = post(addr, extra, body)?;
        if status != 200 {
            return Err(format!("status {status}"));
        }
    }
    callgrind_control("-d", pid)?;
    // callgrind writes the dump asynchronously.
    std::thread::sleep(Duration::from_millis(500));
    Ok(last_dump_instructions(&envoy.out)? as f64 / REQUESTS as f64)
}

/// Run the measurement; rows of `{op, what, instructions}` plus the baseline.
pub fn run(envoy_bin: &Path, wasm_dir: &Path, upstream: SocketAddr, body: &str) -> Result<Value> {
    ensure_valgrind()?;
    crate::build_wasm_package("hostcall-probe", "hostcall_probe.wasm", wasm_dir)?;
    let probe = wasm_dir.join("hostcall_probe.wasm");

    // The bench's plain spec (ports are replaced when Envoy starts).
    let mut spec = crate::bench::base_spec(upstream)?;
    spec.filters.push(switchyard::envoy::WasmFilter {
        name: "hostcall-probe".into(),
        wasm_path: probe,
        config: json!({}),
    });
    let dir = crate::target_dir().join("bench/host-calls");
    eprintln!("host calls: starting Envoy under callgrind (compiling Wasm takes a while)...");
    let (envoy, listen) = start_profiled(envoy_bin, spec, &dir, body)?;
    let base = measure(&envoy, listen, "none", 0, body)?;
    let mut rows = Vec::new();
    for (op, what) in OPS {
        let total = measure(&envoy, listen, op, REPEAT, body)?;
        let per_call = (total - base) / REPEAT as f64;
        eprintln!("host calls: {op}: {per_call:.0} instructions per call");
        rows.push(json!({"op": op, "what": what, "instructions": per_call.round()}));
    }
    Ok(json!({
        "baseline_instructions_per_request": base.round(),
        "repeat": REPEAT,
        "requests": REQUESTS,
        "rows": rows,
    }))
}

/// Start Envoy for `spec` (its ports replaced by free ones) under callgrind in `dir`; returns
/// once it answers `body`.
fn start_profiled(
    envoy_bin: &Path,
    mut spec: switchyard::envoy::BootstrapSpec,
    dir: &Path,
    body: &str,
) -> Result<(Profiled, SocketAddr)> {
    let listen = free_port()?;
    spec.listen = listen;
    spec.admin = free_port()?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let bootstrap = dir.join("envoy.json");
    std::fs::write(&bootstrap, switchyard::envoy::render(&spec).to_string())
        .map_err(|e| e.to_string())?;
    let out = dir.join("callgrind.out");
    let log = std::fs::File::create(dir.join("valgrind.log")).map_err(|e| e.to_string())?;
    let mut valgrind = Command::new("valgrind");
    if let Some(dir) = &spec.native_module_dir {
        valgrind.env(switchyard::run::DYNAMIC_MODULES_SEARCH_PATH, dir);
    }
    let child = valgrind
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(envoy_bin)
        .arg("-c")
        .arg(&bootstrap)
        .args(["--concurrency", "1", "--disable-hot-restart", "-l", "error"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("valgrind: {e}"))?;
    let mut envoy = Profiled { child, out };
    let deadline = Instant::now() + Duration::from_secs(900);
    while post(listen, "", body).is_err() {
        if let Ok(Some(status)) = envoy.child.try_wait() {
            return Err(format!(
                "Envoy under callgrind exited ({status}) before answering (see {})",
                dir.join("valgrind.log").display()
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "Envoy under callgrind did not answer in 15 minutes (see {})",
                dir.join("valgrind.log").display()
            ));
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    Ok((envoy, listen))
}

/// One scenario's key, title, instructions per request and, for native rows, those inside the
/// module's stream hooks.
type Measured = (String, String, f64, Option<f64>);

/// Instructions per request of each scenario `(key, title, spec, body)`, two at a time.
pub fn scenarios(
    envoy_bin: &Path,
    list: Vec<(
        &'static str,
        &'static str,
        switchyard::envoy::BootstrapSpec,
        String,
    )>,
) -> Result<Value> {
    ensure_valgrind()?;
    let root = crate::target_dir().join("bench/instructions");
    let mut rows = Vec::new();
    let mut pending = list.into_iter();
    loop {
        let batch: Vec<_> = pending.by_ref().take(2).collect();
        if batch.is_empty() {
            break;
        }
        let results: Vec<Result<Measured>> = std::thread::scope(|scope| {
            let handles: Vec<_> = batch
                .into_iter()
                .map(|(key, title, spec, body)| {
                    let dir = root.join(key);
                    scope.spawn(move || {
                        eprintln!("instructions: {key} starting under callgrind...");
                        let (envoy, addr) = start_profiled(envoy_bin, spec, &dir, &body)?;
                        let n = measure_requests(&envoy, addr, "", &body)
                            .map_err(|e| format!("{key}: {e}"))?;
                        let hooks = module_hook_instructions(&envoy.out)
                            .map(|h| h as f64 / REQUESTS as f64);
                        eprintln!("instructions: {key}: {n:.0} per request");
                        Ok((key.to_string(), title.to_string(), n, hooks))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("measuring thread panicked".into()))
                })
                .collect()
        });
        for r in results {
            let (key, title, n, hooks) = r?;
            rows.push(json!({
                "key": key,
                "title": title,
                "instructions": n.round(),
                "module_hooks": hooks.map(f64::round),
            }));
        }
    }
    let base = |key: &str| {
        rows.iter()
            .find(|r| r["key"] == key)
            .and_then(|r| r["instructions"].as_f64())
    };
    let (s0, s0w) = (base("S0"), base("S0w"));
    for r in &mut rows {
        if let (Some(b), Some(n)) = (s0w, r["instructions"].as_f64()) {
            r["vs_s0w"] = json!(n - b);
        }
        if let (Some(b), Some(n)) = (s0, r["instructions"].as_f64()) {
            r["vs_s0"] = json!(n - b);
        }
    }
    Ok(json!({"requests": REQUESTS, "rows": rows}))
}

/// The markdown table of a `scenarios` result.
pub fn scenarios_markdown(v: &Value) -> String {
    let mut md = format!(
        "Instructions per request inside Envoy (callgrind; {} requests per scenario on fresh \
         connections, after 20 warm-up requests). \"In the module's hooks\": native rows only, \
         inclusive instructions under the module's stream hooks (its own work and the Envoy \
         calls it makes; the main thread's counter flush left out), the stable column to \
         compare builds by:\n\n\
         | scenario | instructions/request | over S0w | over S0 | in the module's hooks |\n\
         | --- | --- | --- | --- | --- |\n",
        v["requests"]
    );
    for r in v["rows"].as_array().into_iter().flatten() {
        let hooks = r["module_hooks"]
            .as_f64()
            .map_or_else(|| "".to_string(), |h| format!("{h:.0}"));
        md.push_str(&format!(
            "| {} {} | {:.0} | {:+.0} | {:+.0} | {} |\n",
            r["key"].as_str().unwrap_or_default(),
            r["title"].as_str().unwrap_or_default(),
            r["instructions"].as_f64().unwrap_or_default(),
            r["vs_s0w"].as_f64().unwrap_or_default(),
            r["vs_s0"].as_f64().unwrap_or_default(),
            hooks
        ));
    }
    md
}

/// The markdown table of a `run` result.
pub fn markdown(v: &Value) -> String {
    let mut md = format!(
        "Host-call costs (instructions per call inside Envoy, callgrind; {} requests x {} calls each; \
         one request through Envoy + json_to_metadata + the probe without calls, on a fresh connection: {:.0} instructions):\n\n\
         | call | instructions |\n| --- | --- |\n",
        v["requests"],
        v["repeat"],
        v["baseline_instructions_per_request"].as_f64().unwrap_or_default()
    );
    for r in v["rows"].as_array().into_iter().flatten() {
        md.push_str(&format!(
            "| {} | {:.0} |\n",
            r["what"].as_str().unwrap_or_default(),
            r["instructions"].as_f64().unwrap_or_default()
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::is_stream_hook_total;

    #[test]
    fn only_each_hooks_own_total_counts() {
        let so = "[/w/target/native/libswitchyard.so]";
        for (line, counted) in [
            (format!(" 3,089,738 (10.29%)  ???:envoy_dynamic_module_on_http_filter_request_body {so}"), true),
            (format!("   944,251 ( 2.87%)  crates/envoy-module/src/hooks.rs:envoy_dynamic_module_on_http_filter_stream_complete {so}"), true),
            ("   945,351 ( 2.87%)  /w/crates/envoy-module/src/hooks.rs:envoy_dynamic_module_on_http_filter_stream_complete".to_string(), false),
            ("       600 ( 0.00%)  /rustc/x/library/core/src/option.rs:envoy_dynamic_module_on_http_filter_request_body".to_string(), false),
            (format!("   239,236 ( 0.73%)  ???:envoy_dynamic_module_on_http_filter_config_scheduled {so}"), false),
            (format!(" 1,000 ( 0.1%)  ???:0x0000000004d3a030 {so}"), false),
        ] {
            assert_eq!(is_stream_hook_total(&line), counted, "{line}");
        }
    }
}
