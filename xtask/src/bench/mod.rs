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

mod e2e;
pub(crate) mod hostcalls;
mod load;
mod measure;
mod micro;
mod processes;
mod report;
mod scenarios;
mod targets;

use serde_json::json;
use std::path::PathBuf;

use crate::Result;
use processes::{build_all, script_stream, start_mock};
use report::{commit, machine, markdown, timestamp};
use scenarios::{chat_body, scenario_specs, BODY_BYTES};
use targets::{herding, targets};

pub(crate) use scenarios::{add_provider, base_spec};

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
        report["micro"] = micro::micro(&opts)?;
    }
    if opts.e2e {
        report["e2e"] = e2e::e2e(&opts)?;
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
    let result = hostcalls::run(&envoy, &crate::wasm_dir(), upstream, &body)?;
    let md = hostcalls::markdown(&result);
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
                || *key == "S0"
                || opts
                    .only
                    .as_ref()
                    .is_none_or(|o| o.iter().any(|k| k == key))
        })
        .map(|(key, title, spec, body, _)| (key, title, spec, body))
        .collect();
    let result = hostcalls::scenarios(&envoy, list)?;
    let md = hostcalls::scenarios_markdown(&result);
    println!("\n{md}");
    let dir = crate::target_dir().join("bench");
    let pretty = serde_json::to_string_pretty(&result).map_err(|e| e.to_string())?;
    for (name, text) in [("instructions.md", &md), ("instructions.json", &pretty)] {
        std::fs::write(dir.join(name), text).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}
