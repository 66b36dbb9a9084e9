//! `cargo xtask bench [--micro|--e2e|--host-calls|--instructions] [--duration S] [--latency-duration S] [--reps N]
//! [--connections N] [--quick] [--wasm-dir DIR] [--only S1,...]`: what the plugins cost, measured against bare Envoy and an
//! empty Rust Wasm filter (issue #10). Not part of `cargo xtask test`.
//!
//! End to end (`--e2e`), all on loopback: one Envoy per scenario (`--concurrency 1`, pinned to
//! CPU 0 with `taskset`), the release `mock-provider` and the load generator `wrk` (Debian's
//! package; installed with apt-get when missing and running as root) pinned to CPU 1. Clients
//! keep connections alive and send 1 KiB chat bodies. Every Envoy gets a warm-up run first;
//! then each scenario runs `--reps` times (default 3), saturated (`--connections`, default 32)
//! and at one connection for latency, the scenarios interleaved so machine noise spreads over
//! all of them; medians are reported. Envoy's CPU comes from `/proc/<pid>/stat` (utime +
//! stime of the Envoy process only), RSS from `/proc/<pid>/status` after all runs.
//!
//! Scenarios: S0 Envoy alone; S0w Envoy + an empty Rust Wasm filter (`plugins/noop-filter`),
//! the floor; S0j S0w + Envoy's native `json_to_metadata` filter, which the balancer needs in
//! front of it (it must know the body's model before the headers go upstream); S1 ai-proxy
//! OpenAI -> OpenAI-compatible vendor (model mapping); S1j the same behind json_to_metadata,
//! as the CLI's chain runs it; S2 ai-proxy OpenAI -> Claude (translation both ways); S3 the
//! same, streaming 50 text events per response; S4 the chain the CLI renders: json_to_metadata,
//! ai-load-balancer (`metrics: local`) and ai-proxy. S1-S3 run ai-proxy alone, as deployed for
//! vendors whose upstream path does not name the model: it reads the body in the body phase.
//!
//! Micro (`--micro`): the criterion benchmarks in `crates/protocol/benches/translate.rs`.
//!
//! Results: a markdown table on stdout, written with a JSON copy to
//! `<target>/bench/<timestamp>.{md,json}` and `<target>/bench/latest.{md,json}`.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use switchyard::envoy::{BootstrapSpec, Cluster, HeaderRoute, WasmFilter};
use switchyard::run::EnvoyProcess;

use crate::Result;

/// Request body size of every scenario.
const BODY_BYTES: usize = 1024;
/// Text events per streamed response in S3.
const STREAM_EVENTS: usize = 50;

#[derive(Debug, Clone)]
struct Opts {
    micro: bool,
    e2e: bool,
    /// Seconds of each saturated run.
    duration: u64,
    /// Seconds of each one-connection latency run.
    latency_duration: u64,
    warmup: u64,
    reps: usize,
    connections: u32,
    /// Shorter criterion runs.
    quick: bool,
    /// Use the `.wasm` files in this directory instead of building the plugins (to compare
    /// builds of other commits).
    wasm_dir: Option<PathBuf>,
    /// Run only these scenarios (S0 and S0w always run: the others are compared to them).
    only: Option<Vec<String>>,
    /// Only print the herding simulation.
    herding_only: bool,
    /// Only measure what each host call costs (callgrind; see `hostcalls.rs`).
    host_calls: bool,
    /// Only count instructions per request of each scenario (callgrind).
    instructions: bool,
}

impl Opts {
    fn parse(args: &[String]) -> Result<Opts> {
        let mut o = Opts {
            micro: false,
            e2e: false,
            duration: 5,
            latency_duration: 3,
            warmup: 2,
            reps: 3,
            connections: 32,
            quick: false,
            wasm_dir: None,
            only: None,
            herding_only: false,
            host_calls: false,
            instructions: false,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut num = |name: &str| -> Result<u64> {
                it.next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&v| v > 0)
                    .ok_or_else(|| format!("{name} needs a positive number"))
            };
            match a.as_str() {
                "--micro" => o.micro = true,
                // Only the (instant) herding simulation, no measurements.
                "--herding" => o.herding_only = true,
                "--e2e" => o.e2e = true,
                "--host-calls" => o.host_calls = true,
                "--instructions" => o.instructions = true,
                "--duration" => o.duration = num(a)?,
                "--latency-duration" => o.latency_duration = num(a)?,
                "--warmup" => o.warmup = num(a)?,
                "--reps" => o.reps = usize::try_from(num(a)?).map_err(|e| e.to_string())?,
                "--connections" => {
                    o.connections = u32::try_from(num(a)?).map_err(|e| e.to_string())?
                }
                "--wasm-dir" => {
                    o.wasm_dir = Some(PathBuf::from(it.next().ok_or("--wasm-dir needs a path")?))
                }
                "--only" => {
                    let list = it.next().ok_or("--only needs a list like S1,S2")?;
                    o.only = Some(list.split(',').map(|k| k.trim().to_string()).collect());
                }
                "--quick" => {
                    o.quick = true;
                    o.duration = 1;
                    o.latency_duration = 1;
                    o.warmup = 1;
                    o.reps = 1;
                }
                other => {
                    return Err(format!(
                        "unknown argument {other:?}; usage: cargo xtask bench [--micro|--e2e|--herding|--host-calls|--instructions] \
                         [--duration S] [--latency-duration S] [--warmup S] [--reps N] \
                         [--connections N] [--quick] [--wasm-dir DIR] [--only S1,S2,...]"
                    ))
                }
            }
        }
        if !o.micro && !o.e2e && !o.herding_only && !o.host_calls && !o.instructions {
            o.micro = true;
            o.e2e = true;
        }
        Ok(o)
    }
}

pub fn run(args: &[String]) -> Result {
    let opts = Opts::parse(args)?;
    if opts.host_calls {
        return host_calls();
    }
    if opts.instructions {
        return instructions(&opts);
    }
    let started = std::time::Instant::now();
    let mut report = json!({
        "timestamp": timestamp(),
        "machine": machine(),
        "commit": commit(),
        "options": {
            "duration_s": opts.duration,
            "latency_duration_s": opts.latency_duration,
            "warmup_s": opts.warmup,
            "reps": opts.reps,
            "connections": opts.connections,
            "body_bytes": BODY_BYTES,
        },
    });
    // Micro first: the end-to-end part pins this process (and what it starts later) to one CPU.
    if opts.micro {
        report["micro"] = micro(&opts)?;
    }
    if opts.e2e {
        report["e2e"] = e2e(&opts)?;
    }
    report["herding"] = herding();
    report["targets"] = targets(&report);
    report["elapsed_s"] = json!(started.elapsed().as_secs());
    let md = markdown(&report);
    println!("\n{md}");
    let dir = crate::target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let stamp = report["timestamp"]
        .as_str()
        .unwrap_or("run")
        .replace(':', "-");
    let pretty = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    for (name, text) in [
        (format!("{stamp}.md"), &md),
        (format!("{stamp}.json"), &pretty),
        ("latest.md".to_string(), &md),
        ("latest.json".to_string(), &pretty),
    ] {
        std::fs::write(dir.join(&name), text).map_err(|e| format!("{name}: {e}"))?;
    }
    println!(
        "written to {} ({stamp}.md/.json, latest.md/.json)",
        dir.display()
    );
    Ok(())
}

/// `--host-calls`: the probe under callgrind; written to `<target>/bench/host-calls.{md,json}`.
fn host_calls() -> Result {
    let mock_bin = build_all(false)?;
    let mock = start_mock(&mock_bin, 1, None)?;
    let upstream = *mock.addrs.first().ok_or("mock-provider listener missing")?;
    let envoy = switchyard::run::find_envoy(&crate::root()).ok_or("envoy not found after setup")?;
    let body = chat_body("gpt-4o", false);
    let result = crate::hostcalls::run(&envoy, &crate::wasm_dir(), upstream, &body)?;
    let md = crate::hostcalls::markdown(&result);
    println!("\n{md}");
    let dir = crate::target_dir().join("bench");
    let pretty = serde_json::to_string_pretty(&result).map_err(|e| e.to_string())?;
    for (name, text) in [("host-calls.md", &md), ("host-calls.json", &pretty)] {
        std::fs::write(dir.join(name), text).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

/// `--instructions`: every scenario under callgrind; written to
/// `<target>/bench/instructions.{md,json}`.
fn instructions(opts: &Opts) -> Result {
    let mock_bin = build_all(opts.wasm_dir.is_some())?;
    let wasm = opts.wasm_dir.clone().unwrap_or_else(crate::wasm_dir);
    let mock = start_mock(&mock_bin, 3, None)?;
    script_stream(&mock)?;
    let envoy = switchyard::run::find_envoy(&crate::root()).ok_or("envoy not found after setup")?;
    let list = scenario_specs(&mock, &wasm)?
        .into_iter()
        .filter(|(key, ..)| {
            *key == "S0w"
                || opts
                    .only
                    .as_ref()
                    .is_none_or(|o| o.iter().any(|k| k == key))
        })
        .map(|(key, title, spec, body, _)| (key, title, spec, body))
        .collect();
    let result = crate::hostcalls::scenarios(&envoy, list)?;
    let md = crate::hostcalls::scenarios_markdown(&result);
    println!("\n{md}");
    let dir = crate::target_dir().join("bench");
    let pretty = serde_json::to_string_pretty(&result).map_err(|e| e.to_string())?;
    for (name, text) in [("instructions.md", &md), ("instructions.json", &pretty)] {
        std::fs::write(dir.join(name), text).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

/// Make the mock's third listener answer every request with S3's stream.
fn script_stream(mock: &Mock) -> Result {
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

// ---------------------------------------------------------------------------------------------
// Micro-benchmarks

fn micro(opts: &Opts) -> Result<Value> {
    let root = crate::root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let home = crate::target_dir().join("criterion");
    // Old results of renamed benchmarks must not leak into this report.
    let _ = std::fs::remove_dir_all(&home);
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&root)
        .args([
            "bench",
            "-p",
            "switchyard-protocol",
            "--bench",
            "translate",
            "--",
        ])
        .env("CRITERION_HOME", &home);
    if opts.quick {
        cmd.args(["--warm-up-time", "0.3", "--measurement-time", "1"]);
    }
    crate::run(&mut cmd)?;
    let mut rows = Vec::new();
    for group in read_dirs(&home) {
        for bench in read_dirs(&group) {
            let new = bench.join("new");
            let (Some(meta), Some(est)) = (
                read_json(&new.join("benchmark.json")),
                read_json(&new.join("estimates.json")),
            ) else {
                continue;
            };
            let per_iter_ns = est
                .pointer("/median/point_estimate")
                .and_then(Value::as_f64)
                .unwrap_or(f64::NAN);
            let elements = meta
                .pointer("/throughput/Elements")
                .and_then(Value::as_f64)
                .unwrap_or(1.0);
            let group_id = meta["group_id"].as_str().unwrap_or("?").to_string();
            let unit = match group_id.as_str() {
                "request" => "1 KiB request",
                "response" => "response",
                "stream_event" => "stream event",
                _ => "iteration",
            };
            rows.push(json!({
                "group": group_id,
                "name": meta["function_id"].as_str().unwrap_or("?"),
                "unit": unit,
                "elements_per_iteration": elements,
                "us_per_unit": per_iter_ns / elements / 1000.0,
            }));
        }
    }
    if rows.is_empty() {
        return Err(format!("no criterion results under {}", home.display()));
    }
    Ok(Value::Array(rows))
}

fn read_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

// ---------------------------------------------------------------------------------------------
// End to end

/// A scenario: its Envoy and what one request looks like.
struct Scenario {
    key: &'static str,
    title: &'static str,
    body: String,
    /// Check of one response through the gateway (status 200 is checked before).
    check: fn(&str) -> bool,
    envoy: EnvoyProcess,
    runs: Vec<Value>,
}

/// The mock provider process (killed on drop).
struct Mock {
    child: Child,
    addrs: Vec<SocketAddr>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPUs for Envoy and for the load (mock + wrk); `None` on a one-CPU machine.
fn cpus() -> Option<(u32, u32)> {
    let n = crate::output(&mut Command::new("nproc"))
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(1);
    (n >= 2).then_some((0, 1))
}

fn pin(pid: u32, cpu: u32) -> Result {
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
fn ensure_tools() -> Result {
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
fn build_all(prebuilt: bool) -> Result<PathBuf> {
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

fn start_mock(bin: &Path, listeners: usize, cpu: Option<u32>) -> Result<Mock> {
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

/// An OpenAI chat request of exactly [`BODY_BYTES`] bytes.
fn chat_body(model: &str, stream: bool) -> String {
    let build = |pad: usize| {
        format!(
            concat!(
                r#"{{"model":"{}","stream":{},"temperature":0.7,"max_tokens":512,"messages":["#,
                r#"{{"role":"system","content":"You are a concise assistant for a platform team. Answer in plain English."}},"#,
                r#"{{"role":"user","content":"What does an AI gateway do?"}},"#,
                r#"{{"role":"assistant","content":"It routes requests to model vendors, translates protocols and enforces quotas."}},"#,
                r#"{{"role":"user","content":"Explain how it picks a provider when several serve the same model. {}"}}]}}"#
            ),
            model,
            stream,
            "x".repeat(pad)
        )
    };
    let base = build(0).len();
    build(BODY_BYTES.saturating_sub(base))
}

fn wasm_filter(dir: &Path, name: &str, file: &str, config: Value) -> WasmFilter {
    WasmFilter {
        name: name.into(),
        wasm_path: dir.join(file),
        config,
    }
}

/// A provider cluster and the route that the routing header `x-selected-provider: <name>`
/// selects (the shape the CLI renders).
pub(crate) fn add_provider(spec: &mut BootstrapSpec, name: &str, addr: SocketAddr) {
    let cluster = format!("provider-{name}");
    spec.header_routes.push(HeaderRoute {
        name: cluster.clone(),
        header: "x-selected-provider".into(),
        value: name.into(),
        cluster: cluster.clone(),
    });
    spec.clusters.push(Cluster::plain(&cluster, addr));
}

pub(crate) fn base_spec(upstream: SocketAddr) -> Result<BootstrapSpec> {
    let any: SocketAddr = "127.0.0.1:0".parse().map_err(|_| "addr")?;
    let mut s = BootstrapSpec::new(any, any);
    add_provider(&mut s, "upstream", upstream);
    s.default_cluster = Some("provider-upstream".into());
    Ok(s)
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}

fn check_plain(body: &str) -> bool {
    json_of(body)["object"] == "chat.completion"
}

fn check_s1(body: &str) -> bool {
    let v = json_of(body);
    v["object"] == "chat.completion" && v["model"] == "deepseek-chat"
}

fn check_s2(body: &str) -> bool {
    let v = json_of(body);
    v["object"] == "chat.completion"
        && v["model"] == "claude-sonnet-4-5"
        && v.pointer("/choices/0/message/content")
            .is_some_and(Value::is_string)
}

fn check_s3(body: &str) -> bool {
    body.contains("chat.completion.chunk") && body.trim_end().ends_with("data: [DONE]")
}

fn check_s4(body: &str) -> bool {
    let v = json_of(body);
    v["object"] == "chat.completion" && (v["model"] == "deepseek-chat" || v["model"] == "qwen-max")
}

/// The stream every S3 response carries: 50 text events of one word each.
fn stream_script() -> Value {
    let words: Vec<String> = (0..STREAM_EVENTS).map(|i| format!("word{i}")).collect();
    json!({ "events": STREAM_EVENTS, "reply_text": words.join(" ") })
}

/// One scenario's definition: key, title, Envoy spec, request body, answer check.
type Row = (
    &'static str,
    &'static str,
    BootstrapSpec,
    String,
    fn(&str) -> bool,
);

fn scenarios(
    mock: &Mock,
    envoy_bin: &Path,
    cpu: Option<u32>,
    wasm: &Path,
    only: Option<&[String]>,
) -> Result<Vec<Scenario>> {
    let workdir = crate::target_dir().join("bench/envoy");
    let mut out = Vec::new();
    for (key, title, spec, body, check) in scenario_specs(mock, wasm)? {
        let wanted = only.is_none_or(|o| o.iter().any(|k| k == key));
        if !(wanted || key == "S0" || key == "S0w") {
            continue;
        }
        let envoy = EnvoyProcess::start(envoy_bin, &spec, &workdir.join(key), 1)
            .map_err(|e| format!("{key}: {e}"))?;
        if let Some(c) = cpu {
            pin(envoy.pid(), c)?;
        }
        out.push(Scenario {
            key,
            title,
            body,
            check,
            envoy,
            runs: Vec::new(),
        });
    }
    Ok(out)
}

/// The scenarios' Envoy specs, against `mock`'s three listeners (plain, second, streaming).
fn scenario_specs(mock: &Mock, wasm: &Path) -> Result<Vec<Row>> {
    let [plain, second, streaming] = [0, 1, 2].map(|i| mock.addrs.get(i).copied());
    let (Some(plain), Some(second), Some(streaming)) = (plain, second, streaming) else {
        return Err("mock-provider listeners missing".into());
    };
    let noop = || wasm_filter(wasm, "noop", "noop_filter.wasm", json!({}));
    let proxy = |config: Value| wasm_filter(wasm, "ai-proxy", "ai_proxy.wasm", config);
    let claude = json!({"provider": {
        "type": "claude", "apiTokens": ["sk-ant-bench"],
        "modelMapping": {"gpt-4o": "claude-sonnet-4-5"}
    }});

    let mut s0 = base_spec(plain)?;
    s0.body_metadata = false;
    let mut s0w = s0.clone();
    s0w.filters.push(noop());
    let mut s0j = base_spec(plain)?;
    s0j.filters.push(noop());
    let deepseek = json!({"provider": {
        "type": "deepseek", "apiTokens": ["sk-bench"],
        "modelMapping": {"gpt-4o": "deepseek-chat"}
    }});
    let mut s1j = base_spec(plain)?;
    s1j.filters.push(proxy(deepseek.clone()));
    let mut s1 = s1j.clone();
    s1.body_metadata = false;
    let mut s2 = base_spec(plain)?;
    s2.body_metadata = false;
    s2.filters.push(proxy(claude.clone()));
    let mut s3 = base_spec(streaming)?;
    s3.body_metadata = false;
    s3.filters.push(proxy(claude));
    let any: SocketAddr = "127.0.0.1:0".parse().map_err(|_| "addr")?;
    let mut s4 = BootstrapSpec::new(any, any);
    s4.filters.push(wasm_filter(
        wasm,
        "ai-load-balancer",
        "ai_load_balancer.wasm",
        json!({
            "providers": [
                {"name": "alpha", "key": "alpha_load", "model": "deepseek-chat"},
                {"name": "beta", "key": "beta_load", "model": "qwen-max"}
            ],
            "metrics": {"source": "local"}
        }),
    ));
    s4.filters.push(proxy(json!({
        "providers": [
            {"id": "alpha", "type": "deepseek", "apiTokens": ["sk-a"]},
            {"id": "beta", "type": "qwen", "apiTokens": ["sk-b"]}
        ],
        "activeProviderId": "alpha",
        "activeProviderHeader": "x-selected-provider"
    })));
    add_provider(&mut s4, "alpha", plain);
    add_provider(&mut s4, "beta", second);
    s4.default_cluster = Some("provider-alpha".into());

    let plain_body = chat_body("gpt-4o", false);
    Ok(vec![
        ("S0", "Envoy, no Wasm", s0, plain_body.clone(), check_plain),
        (
            "S0w",
            "empty Rust Wasm filter",
            s0w,
            plain_body.clone(),
            check_plain,
        ),
        (
            "S0j",
            "S0w + json_to_metadata",
            s0j,
            plain_body.clone(),
            check_plain,
        ),
        (
            "S1",
            "ai-proxy OpenAI -> OpenAI-compatible",
            s1,
            plain_body.clone(),
            check_s1,
        ),
        (
            "S1j",
            "S1 behind json_to_metadata",
            s1j,
            plain_body.clone(),
            check_s1,
        ),
        ("S2", "ai-proxy OpenAI -> Claude", s2, plain_body, check_s2),
        (
            "S3",
            "ai-proxy OpenAI -> Claude, stream",
            s3,
            chat_body("gpt-4o", true),
            check_s3,
        ),
        (
            "S4",
            "ai-load-balancer + ai-proxy",
            s4,
            chat_body("auto", false),
            check_s4,
        ),
    ])
}

/// One HTTP/1.1 request on a fresh connection; (status, decoded body).
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("{addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\n\
         authorization: Bearer client-secret\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    Ok(switchyard::run::parse_http_response(&raw))
}

/// `wrk`'s Lua script: POST the body with keep-alive, print the summary as one JSON line.
fn wrk_script(dir: &Path, key: &str, body: &str) -> Result<PathBuf> {
    let path = dir.join(format!("{key}.lua"));
    let script = format!(
        r#"wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer client-secret"
wrk.body = [==[{body}]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {{"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,"p50_us":%.0f,"p99_us":%.0f,"mean_us":%.1f,"non2xx":%.0f,"socket_errors":%.0f}}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
    latency.mean, e.status, e.connect + e.read + e.write + e.timeout))
end
"#
    );
    std::fs::write(&path, script).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Envoy's CPU time so far (utime + stime), in microseconds.
fn cpu_us(pid: u32, ticks_per_s: f64) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("unreadable /proc stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    Ok((get(11) + get(12)) / ticks_per_s * 1e6)
}

fn rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(f64::NAN)
}

/// One `wrk` run; returns its summary plus Envoy's CPU during the run.
fn wrk(
    sc: &Scenario,
    script: &Path,
    connections: u32,
    seconds: u64,
    cpu: Option<u32>,
    ticks: f64,
) -> Result<Value> {
    let url = format!("http://{}/v1/chat/completions", sc.envoy.listen);
    let mut cmd = match cpu {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", &c.to_string(), "wrk"]);
            cmd
        }
        None => Command::new("wrk"),
    };
    cmd.args([
        "-t1",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--timeout",
        "10s",
        "-s",
    ])
    .arg(script)
    .arg(&url);
    let pid = sc.envoy.pid();
    let before = cpu_us(pid, ticks)?;
    let out = cmd.output().map_err(|e| format!("wrk: {e}"))?;
    let after = cpu_us(pid, ticks)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut v = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH "))
        .and_then(|j| serde_json::from_str::<Value>(j).ok())
        .ok_or_else(|| {
            format!(
                "{}: wrk gave no summary: {stdout}{}",
                sc.key,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let n = v["requests"].as_f64().unwrap_or(0.0);
    let non2xx = v["non2xx"].as_f64().unwrap_or(0.0);
    let errors = v["socket_errors"].as_f64().unwrap_or(0.0);
    if n == 0.0 || non2xx > 0.0 || errors > 0.0 {
        return Err(format!(
            "{}: {n} requests, {non2xx} non-2xx, {errors} socket errors: refusing to report \
             a broken run (Envoy log: {})",
            sc.key,
            sc.envoy.log_path.display()
        ));
    }
    let secs = v["duration_us"].as_f64().unwrap_or(1.0) / 1e6;
    v["rps"] = json!(n / secs);
    v["envoy_cpu_us"] = json!(after - before);
    v["cpu_us_per_req"] = json!((after - before) / n);
    v["connections"] = json!(connections);
    Ok(v)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v.get(m).copied().unwrap_or(f64::NAN)
    } else {
        (v.get(m - 1).copied().unwrap_or(f64::NAN) + v.get(m).copied().unwrap_or(f64::NAN)) / 2.0
    }
}

fn e2e(opts: &Opts) -> Result<Value> {
    ensure_tools()?;
    let mock_bin = build_all(opts.wasm_dir.is_some())?;
    let wasm = opts.wasm_dir.clone().unwrap_or_else(crate::wasm_dir);
    let wasm_dir = wasm.clone();
    for f in ["noop_filter.wasm", "ai_proxy.wasm", "ai_load_balancer.wasm"] {
        if !wasm.join(f).is_file() {
            return Err(format!("{} missing", wasm.join(f).display()));
        }
    }
    let root = crate::root();
    let envoy_bin = switchyard::run::find_envoy(&root).ok_or("envoy not found after setup")?;
    let cpu = cpus();
    let (envoy_cpu, load_cpu) = match cpu {
        Some((e, l)) => (Some(e), Some(l)),
        None => {
            eprintln!("bench: one CPU only; nothing is pinned, numbers are not comparable");
            (None, None)
        }
    };
    // This process only waits, but keep it off Envoy's CPU too.
    if let Some(c) = load_cpu {
        pin(std::process::id(), c)?;
    }
    let ticks = crate::output(Command::new("getconf").arg("CLK_TCK"))
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    let mock = start_mock(&mock_bin, 3, load_cpu)?;
    script_stream(&mock)?;
    println!("bench: starting Envoy for each scenario");
    let mut scs = scenarios(&mock, &envoy_bin, envoy_cpu, &wasm, opts.only.as_deref())?;

    // Every scenario answers correctly before it is measured.
    let mut stream_info = json!({});
    for sc in &scs {
        let (status, body) = http(sc.envoy.listen, "POST", "/v1/chat/completions", &sc.body)?;
        if status != 200 || !(sc.check)(&body) {
            return Err(format!(
                "{}: unexpected answer {status}: {}\n(Envoy log: {})",
                sc.key,
                body.chars().take(600).collect::<String>(),
                sc.envoy.log_path.display()
            ));
        }
        if sc.key == "S3" {
            let chunks = body
                .lines()
                .filter(|l| l.starts_with("data:") && !l.contains("[DONE]"))
                .count();
            stream_info["client_chunks_per_response"] = json!(chunks);
        }
    }
    // Events the upstream (Claude) sends per S3 response.
    let claude_req = r#"{"model":"claude-sonnet-4-5","max_tokens":512,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let (_, upstream) = http(
        mock.addrs.get(2).copied().ok_or("mock")?,
        "POST",
        "/v1/messages",
        claude_req,
    )?;
    let upstream_events = upstream.lines().filter(|l| l.starts_with("event:")).count();
    stream_info["upstream_events_per_response"] = json!(upstream_events);

    let scripts = crate::target_dir().join("bench/wrk");
    std::fs::create_dir_all(&scripts).map_err(|e| e.to_string())?;
    let paths: Vec<PathBuf> = scs
        .iter()
        .map(|sc| wrk_script(&scripts, sc.key, &sc.body))
        .collect::<Result<_>>()?;

    println!(
        "bench: wrk warm-up {}s per scenario, then {} rounds of {}s at c={} and {}s at c=1",
        opts.warmup, opts.reps, opts.duration, opts.connections, opts.latency_duration
    );
    for (sc, script) in scs.iter().zip(&paths) {
        wrk(sc, script, opts.connections, opts.warmup, load_cpu, ticks)?;
    }
    for rep in 0..opts.reps {
        for (sc, script) in scs.iter_mut().zip(&paths) {
            let sat = wrk(sc, script, opts.connections, opts.duration, load_cpu, ticks)?;
            let lat = wrk(sc, script, 1, opts.latency_duration, load_cpu, ticks)?;
            println!(
                "  round {} {:<4} {:>8.0} req/s  {:>6.1} us CPU/req  p50 {:>5} us  p99 {:>5} us (c=1)",
                rep + 1,
                sc.key,
                sat["rps"].as_f64().unwrap_or(0.0),
                sat["cpu_us_per_req"].as_f64().unwrap_or(0.0),
                lat["p50_us"],
                lat["p99_us"]
            );
            sc.runs.push(json!({ "saturated": sat, "c1": lat }));
        }
    }

    let mut rows = Vec::new();
    for sc in &scs {
        let pick = |run: &str, field: &str| -> Vec<f64> {
            sc.runs
                .iter()
                .filter_map(|r| r[run][field].as_f64())
                .collect()
        };
        let rps = pick("saturated", "rps");
        rows.push(json!({
            "key": sc.key,
            "title": sc.title,
            "rps": median(rps.clone()),
            "rps_min": rps.iter().copied().fold(f64::INFINITY, f64::min),
            "rps_max": rps.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            "cpu_us_per_req": median(pick("saturated", "cpu_us_per_req")),
            "p50_us": median(pick("c1", "p50_us")),
            "p99_us": median(pick("c1", "p99_us")),
            "rss_mib": rss_kib(sc.envoy.pid()) / 1024.0,
            "runs": sc.runs,
        }));
    }
    // Comparisons pair the measurements of one round (taken seconds apart, so a change in
    // the machine's background load hits both sides), then take the median over rounds.
    let series = |key: &str, run: &str, field: &str| -> Vec<f64> {
        scs.iter()
            .find(|sc| sc.key == key)
            .map(|sc| {
                sc.runs
                    .iter()
                    .map(|r| r[run][field].as_f64().unwrap_or(f64::NAN))
                    .collect()
            })
            .unwrap_or_default()
    };
    let paired = |a: &[f64], b: &[f64], op: fn(f64, f64) -> f64| -> f64 {
        median(a.iter().zip(b).map(|(x, y)| op(*x, *y)).collect())
    };
    let ratio = |x: f64, y: f64| x / y;
    let diff = |x: f64, y: f64| x - y;
    let s0_rps = series("S0", "saturated", "rps");
    let s0w_rps = series("S0w", "saturated", "rps");
    let s0w_cpu = series("S0w", "saturated", "cpu_us_per_req");
    let s0w_p50 = series("S0w", "c1", "p50_us");
    let s0w_p99 = series("S0w", "c1", "p99_us");
    let s0w_rss = rows
        .iter()
        .find(|r| r["key"] == "S0w")
        .and_then(|r| r["rss_mib"].as_f64())
        .unwrap_or(f64::NAN);
    for r in &mut rows {
        let key = r["key"].as_str().unwrap_or_default().to_string();
        let rps = series(&key, "saturated", "rps");
        let cpu = series(&key, "saturated", "cpu_us_per_req");
        r["vs_s0"] = json!(paired(&rps, &s0_rps, ratio));
        r["vs_s0w"] = json!(paired(&rps, &s0w_rps, ratio));
        r["cpu_added_us"] = json!(paired(&cpu, &s0w_cpu, diff));
        r["p50_added_us"] = json!(paired(&series(&key, "c1", "p50_us"), &s0w_p50, diff));
        r["p99_added_us"] = json!(paired(&series(&key, "c1", "p99_us"), &s0w_p99, diff));
        let rss = r["rss_mib"].as_f64().unwrap_or(f64::NAN);
        r["rss_added_mib"] = json!(rss - s0w_rss);
    }
    if let Some(s3) = rows.iter().find(|r| r["key"] == "S3") {
        let events = upstream_events as f64;
        let rps = s3["rps"].as_f64().unwrap_or(f64::NAN);
        let cpu = s3["cpu_us_per_req"].as_f64().unwrap_or(f64::NAN);
        stream_info["events_per_s"] = json!(rps * events);
        stream_info["cpu_us_per_event"] = json!(cpu / events);
        let added = s3["cpu_added_us"].as_f64().unwrap_or(f64::NAN);
        stream_info["cpu_added_us_per_event"] = json!(added / events);
    }
    let wasm: Vec<Value> = [
        "noop_filter.wasm",
        "ai_proxy.wasm",
        "ai_load_balancer.wasm",
        "ai_load_balancer_higress.wasm",
    ]
    .iter()
    .map(|f| {
        // Missing (e.g. a --wasm-dir without the Higress build): null, not a size of 0.
        let bytes = std::fs::metadata(wasm.join(f)).ok().map(|m| m.len());
        json!({ "file": f, "bytes": bytes })
    })
    .collect();
    let envoy_version = crate::output(Command::new(&envoy_bin).arg("--version"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let wrk_version = Command::new("wrk")
        .arg("-v")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default();
    drop(scs);
    let idle = idle_memory(&mock, &envoy_bin, &wasm_dir, opts.only.as_deref())?;
    drop(mock);
    Ok(json!({
        "envoy": envoy_version,
        "load_generator": wrk_version,
        "pinned": cpu.map(|(e, l)| json!({"envoy_cpu": e, "load_cpu": l})),
        "scenarios": rows,
        "stream": stream_info,
        "wasm": wasm,
        "idle_memory": idle,
    }))
}

/// Workers of the second start in [`idle_memory`].
const IDLE_WORKERS: u32 = 4;

/// RSS of each scenario's Envoy at rest, started with one worker and with [`IDLE_WORKERS`]
/// (one request answered, then a second to settle): what loading the plugins costs once and
/// what each further worker thread (with its own VM per plugin) adds.
fn idle_memory(
    mock: &Mock,
    envoy_bin: &Path,
    wasm: &Path,
    only: Option<&[String]>,
) -> Result<Value> {
    let workdir = crate::target_dir().join("bench/idle");
    let mut rows = Vec::new();
    for (key, title, spec, body, _) in scenario_specs(mock, wasm)? {
        let wanted = only.is_none_or(|o| o.iter().any(|k| k == key));
        if !(wanted || key == "S0" || key == "S0w") || !matches!(key, "S0" | "S0w" | "S1" | "S4") {
            continue;
        }
        let mut rss = Vec::new();
        for workers in [1, IDLE_WORKERS] {
            let envoy = EnvoyProcess::start(envoy_bin, &spec, &workdir.join(key), workers)
                .map_err(|e| format!("{key}: {e}"))?;
            let (status, _) = http(envoy.listen, "POST", "/v1/chat/completions", &body)?;
            if status != 200 {
                return Err(format!("{key} (idle memory): status {status}"));
            }
            std::thread::sleep(Duration::from_secs(1));
            rss.push(rss_kib(envoy.pid()) / 1024.0);
        }
        let (one, many) = (rss.first().copied(), rss.get(1).copied());
        let (one, many) = (one.unwrap_or(f64::NAN), many.unwrap_or(f64::NAN));
        rows.push(json!({
            "key": key,
            "title": title,
            "rss_mib_1_worker": one,
            "rss_mib_n_workers": many,
            "per_extra_worker_mib": (many - one) / f64::from(IDLE_WORKERS - 1),
        }));
    }
    Ok(json!({ "workers": IDLE_WORKERS, "rows": rows }))
}

// ---------------------------------------------------------------------------------------------
// Targets and report

fn targets(report: &Value) -> Value {
    let row = |key: &str, field: &str| {
        report["e2e"]["scenarios"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["key"] == key))
            .and_then(|r| r[field].as_f64())
    };
    let micro = |group: &str, name: &str| {
        report["micro"].as_array().and_then(|rows| {
            rows.iter()
                .find(|r| r["group"] == group && r["name"] == name)
                .and_then(|r| r["us_per_unit"].as_f64())
        })
    };
    let wasm = |file: &str| {
        report["e2e"]["wasm"].as_array().and_then(|w| {
            w.iter()
                .find(|x| x["file"] == file)
                .and_then(|x| x["bytes"].as_f64())
                .map(|b| b / 1024.0 / 1024.0)
        })
    };
    // (what, measured, limit, higher is better, unit)
    let list: Vec<(&str, Option<f64>, f64, bool, &str)> = vec![
        ("S1 throughput / S0w", row("S1", "vs_s0w"), 0.90, true, "x"),
        ("S2 throughput / S0w", row("S2", "vs_s0w"), 0.75, true, "x"),
        ("S4 throughput / S0w", row("S4", "vs_s0w"), 0.75, true, "x"),
        (
            "S1 Envoy CPU added over S0w",
            row("S1", "cpu_added_us"),
            15.0,
            false,
            "us/req",
        ),
        (
            "S2 Envoy CPU added over S0w",
            row("S2", "cpu_added_us"),
            40.0,
            false,
            "us/req",
        ),
        (
            "Claude stream translation (native)",
            micro("stream_event", "claude_to_openai"),
            3.0,
            false,
            "us/event",
        ),
        (
            "Gemini stream translation (native)",
            micro("stream_event", "gemini_to_openai"),
            3.0,
            false,
            "us/event",
        ),
        (
            "RSS with both plugins (S4) minus S0w",
            row("S4", "rss_added_mib"),
            8.0,
            false,
            "MiB",
        ),
        (
            "ai_proxy.wasm size",
            wasm("ai_proxy.wasm"),
            1.5,
            false,
            "MiB",
        ),
        (
            "ai_load_balancer.wasm size",
            wasm("ai_load_balancer.wasm"),
            1.5,
            false,
            "MiB",
        ),
        (
            "ai_load_balancer_higress.wasm size",
            wasm("ai_load_balancer_higress.wasm"),
            1.5,
            false,
            "MiB",
        ),
    ];
    Value::Array(
        list.into_iter()
            .filter_map(|(what, v, limit, higher, unit)| {
                let v = v.filter(|v| v.is_finite())?;
                let met = if higher { v >= limit } else { v <= limit };
                Some(json!({
                    "target": what,
                    "measured": v,
                    "limit": limit,
                    "higher_is_better": higher,
                    "unit": unit,
                    "met": met,
                }))
            })
            .collect(),
    )
}

fn f(v: &Value, digits: usize) -> String {
    match v.as_f64() {
        Some(x) if x.is_finite() => format!("{x:.digits$}"),
        _ => "-".into(),
    }
}

fn signed(v: &Value, digits: usize) -> String {
    match v.as_f64() {
        Some(x) if x.is_finite() => format!("{x:+.digits$}"),
        _ => "-".into(),
    }
}

fn pct(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.is_finite() => format!("{:.0}%", x * 100.0),
        _ => "-".into(),
    }
}

/// The balancer's herding simulation (`switchyard_policy::herding`): how unevenly each
/// strategy loads providers when metrics are stale (busiest provider / mean; 1.0 is even).
fn herding() -> Value {
    use switchyard_policy::herding::{simulate, STANDARD};
    use switchyard_policy::select::Strategy;
    let s = STANDARD;
    let spread = |st| simulate(st, s).peak_to_mean;
    json!({
        "scenario": format!(
            "{} replicas, {} providers, metrics refreshed every {} ticks, requests last {}",
            s.replicas, s.providers, s.refresh_ticks, s.service_ticks
        ),
        "least": spread(Strategy::Least),
        "p2c": spread(Strategy::P2c),
        "weighted": spread(Strategy::Weighted),
    })
}

fn markdown(r: &Value) -> String {
    let mut s = String::new();
    let m = &r["machine"];
    let o = &r["options"];
    s.push_str(&format!(
        "### Switchyard benchmark, {} (commit {})\n\n",
        r["timestamp"].as_str().unwrap_or("?"),
        r["commit"].as_str().unwrap_or("?")
    ));
    s.push_str(&format!(
        "Machine: {} CPUs, {}, {}. ",
        m["nproc"],
        m["cpu_model"].as_str().unwrap_or("?"),
        m["kernel"].as_str().unwrap_or("?")
    ));
    let e = &r["e2e"];
    if !e.is_object() {
        s.push_str("\n\n");
    }
    if e.is_object() {
        s.push_str(&format!(
            "Envoy {} with `--concurrency 1`{}; load generator {}; keep-alive, {}-byte chat \
             bodies; warm-up {}s; {} rounds, medians; saturated runs {}s at c={}, latency \
             runs {}s at c=1. Envoy CPU from /proc (Envoy process only). Comparisons with S0/S0w \
             are medians of per-round ratios and differences.\n\n",
            e["envoy"]
                .as_str()
                .and_then(|v| v.split_whitespace().nth(2))
                .unwrap_or("?"),
            match e["pinned"].as_object() {
                Some(p) => format!(
                    " pinned to CPU {}, mock provider and wrk on CPU {}",
                    p.get("envoy_cpu").unwrap_or(&Value::Null),
                    p.get("load_cpu").unwrap_or(&Value::Null)
                ),
                None => ", unpinned (one CPU)".into(),
            },
            e["load_generator"]
                .as_str()
                .and_then(|v| v.split(" Copyright").next())
                .unwrap_or("wrk"),
            o["body_bytes"],
            o["warmup_s"],
            o["reps"],
            o["duration_s"],
            o["connections"],
            o["latency_duration_s"],
        ));
        s.push_str(
            "| scenario | req/s (min-max) | vs S0 | vs S0w | p50 c=1 µs | p99 c=1 µs | p50 vs S0w µs | Envoy CPU µs/req | CPU vs S0w µs | RSS MiB | RSS vs S0w MiB |\n",
        );
        s.push_str("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
        for row in e["scenarios"].as_array().into_iter().flatten() {
            s.push_str(&format!(
                "| {} {} | {} ({}-{}) | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                row["key"].as_str().unwrap_or("?"),
                row["title"].as_str().unwrap_or(""),
                f(&row["rps"], 0),
                f(&row["rps_min"], 0),
                f(&row["rps_max"], 0),
                pct(&row["vs_s0"]),
                pct(&row["vs_s0w"]),
                f(&row["p50_us"], 0),
                f(&row["p99_us"], 0),
                signed(&row["p50_added_us"], 0),
                f(&row["cpu_us_per_req"], 1),
                signed(&row["cpu_added_us"], 1),
                f(&row["rss_mib"], 1),
                signed(&row["rss_added_mib"], 1),
            ));
        }
        let st = &e["stream"];
        if st["events_per_s"].is_number() {
            s.push_str(&format!(
                "\nS3 streaming: {} Claude events per response upstream ({} OpenAI chunks to the \
             client), {} events/s, Envoy CPU {} µs per event ({} µs per event over S0w's \
             per-request cost).\n\n",
                st["upstream_events_per_response"],
                st["client_chunks_per_response"],
                f(&st["events_per_s"], 0),
                f(&st["cpu_us_per_event"], 2),
                f(&st["cpu_added_us_per_event"], 2),
            ));
        } else {
            s.push('\n');
        }
        s.push_str("| .wasm | KiB |\n| --- | --- |\n");
        for w in e["wasm"].as_array().into_iter().flatten() {
            s.push_str(&format!(
                "| {} | {} |\n",
                w["file"].as_str().unwrap_or("?"),
                w["bytes"]
                    .as_f64()
                    .map(|b| b / 1024.0)
                    .map_or("-".into(), |k| format!("{k:.0}"))
            ));
        }
        s.push('\n');
        let idle = &e["idle_memory"];
        if let Some(rows) = idle["rows"].as_array() {
            s.push_str(&format!(
                "Idle memory (RSS after one request; Envoy started with 1 worker, then with {}; \
                 each worker runs its own VM per plugin):\n\n\
                 | scenario | RSS MiB, 1 worker | RSS MiB, {} workers | MiB per extra worker |\n\
                 | --- | --- | --- | --- |\n",
                idle["workers"], idle["workers"]
            ));
            for row in rows {
                s.push_str(&format!(
                    "| {} {} | {} | {} | {} |\n",
                    row["key"].as_str().unwrap_or("?"),
                    row["title"].as_str().unwrap_or(""),
                    f(&row["rss_mib_1_worker"], 1),
                    f(&row["rss_mib_n_workers"], 1),
                    f(&row["per_extra_worker_mib"], 2),
                ));
            }
            s.push('\n');
        }
    }
    if let Some(rows) = r["micro"].as_array() {
        s.push_str("Native micro-benchmarks (criterion, median; `crates/protocol/benches/translate.rs`):\n\n");
        s.push_str("| benchmark | µs per unit | unit |\n| --- | --- | --- |\n");
        for row in rows {
            s.push_str(&format!(
                "| {}/{} | {} | {} |\n",
                row["group"].as_str().unwrap_or("?"),
                row["name"].as_str().unwrap_or("?"),
                f(&row["us_per_unit"], 2),
                row["unit"].as_str().unwrap_or("?"),
            ));
        }
        s.push('\n');
    }
    if let Some(rows) = r["targets"].as_array().filter(|t| !t.is_empty()) {
        s.push_str("Targets (issue #10):\n\n");
        s.push_str("| target | measured | limit | met |\n| --- | --- | --- | --- |\n");
        for t in rows {
            let higher = t["higher_is_better"].as_bool().unwrap_or(false);
            let unit = t["unit"].as_str().unwrap_or("");
            let (measured, limit) = if unit == "x" {
                (pct(&t["measured"]), format!(">= {}", pct(&t["limit"])))
            } else {
                (
                    format!("{} {unit}", f(&t["measured"], 2)),
                    format!(
                        "{} {} {unit}",
                        if higher { ">=" } else { "<=" },
                        f(&t["limit"], 1)
                    ),
                )
            };
            s.push_str(&format!(
                "| {} | {measured} | {limit} | {} |\n",
                t["target"].as_str().unwrap_or("?"),
                if t["met"].as_bool() == Some(true) {
                    "yes"
                } else {
                    "**no**"
                }
            ));
        }
    }
    let h = &r["herding"];
    if h.is_object() {
        let f = |k: &str| h[k].as_f64().map_or("?".into(), |v| format!("{v:.2}"));
        s.push_str(&format!(
            "\nBalancer herding (simulation; {}): busiest provider / mean load: least {}, p2c {}, weighted {}.\n",
            h["scenario"].as_str().unwrap_or("?"),
            f("least"),
            f("p2c"),
            f("weighted")
        ));
    }
    s
}

fn timestamp() -> String {
    crate::output(Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs().to_string())
                .unwrap_or_default()
        })
}

fn machine() -> Value {
    let cpu_model = crate::output(&mut Command::new("lscpu"))
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Model name:"))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_default();
    json!({
        "nproc": crate::output(&mut Command::new("nproc")).and_then(|s| s.trim().parse::<u64>().ok()),
        "cpu_model": cpu_model,
        "kernel": crate::output(Command::new("uname").arg("-sr")).map(|s| s.trim().to_string()),
        "load_average": std::fs::read_to_string("/proc/loadavg").ok().map(|s| s.trim().to_string()),
    })
}

fn commit() -> String {
    let root = crate::root();
    let head = crate::output(Command::new("git").current_dir(&root).args([
        "rev-parse",
        "--short",
        "HEAD",
    ]))
    .map(|s| s.trim().to_string())
    .unwrap_or_else(|| "unknown".into());
    let dirty = crate::output(Command::new("git").current_dir(&root).args([
        "status",
        "--porcelain",
        "--untracked-files=no",
    ]))
    .is_some_and(|s| !s.trim().is_empty());
    if dirty {
        format!("{head}, uncommitted changes")
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_one_kib_of_valid_chat_json() {
        for (model, stream) in [("gpt-4o", false), ("gpt-4o", true), ("auto", false)] {
            let b = chat_body(model, stream);
            assert_eq!(b.len(), BODY_BYTES);
            let v: Value = serde_json::from_str(&b).unwrap();
            assert_eq!(v["model"], model);
            assert_eq!(v["stream"], stream);
            assert_eq!(v["messages"].as_array().map(Vec::len), Some(4));
        }
    }

    #[test]
    fn median_of_odd_even_and_nan() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![f64::NAN, 5.0]), 5.0);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn dechunks_bodies() {
        assert_eq!(
            switchyard::run::dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
        assert_eq!(switchyard::run::dechunk("zz\r\n"), "");
    }

    #[test]
    fn targets_compare_in_the_right_direction() {
        let report = json!({
            "e2e": {
                "scenarios": [
                    {"key": "S1", "vs_s0w": 0.95, "cpu_added_us": 20.0},
                    {"key": "S2", "vs_s0w": 0.5, "cpu_added_us": 10.0},
                ],
                "wasm": [{"file": "ai_proxy.wasm", "bytes": 2_000_000}, {"file": "ai_load_balancer.wasm", "bytes": null}],
            },
            "micro": [{"group": "stream_event", "name": "claude_to_openai", "us_per_unit": 2.0}],
        });
        let t = targets(&report);
        let met = |name: &str| {
            t.as_array()
                .and_then(|a| a.iter().find(|x| x["target"] == name))
                .map(|x| x["met"].clone())
        };
        assert_eq!(met("S1 throughput / S0w"), Some(json!(true)));
        assert_eq!(met("S2 throughput / S0w"), Some(json!(false)));
        assert_eq!(met("S1 Envoy CPU added over S0w"), Some(json!(false)));
        assert_eq!(met("S2 Envoy CPU added over S0w"), Some(json!(true)));
        assert_eq!(met("Claude stream translation (native)"), Some(json!(true)));
        assert_eq!(met("ai_proxy.wasm size"), Some(json!(false)));
        // Missing measurements are left out, not counted as met.
        assert_eq!(met("ai_load_balancer.wasm size"), None);
        assert_eq!(met("S4 throughput / S0w"), None);
    }
}
