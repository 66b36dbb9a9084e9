//! `--e2e`: every scenario's Envoy checked, warmed up and measured in interleaved rounds, then
//! compared with S0/S0w; idle memory last.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use switchyard::run::EnvoyProcess;

use super::load::{wrk, wrk_script};
use super::measure::{median, rss_kib};
use super::processes::{build_all, cpus, ensure_tools, http, pin, script_stream, start_mock, Mock};
use super::scenarios::{scenario_specs, scenarios};
use super::Opts;
use crate::Result;

pub(super) fn e2e(opts: &Opts) -> Result<Value> {
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
    let s0_cpu = series("S0", "saturated", "cpu_us_per_req");
    let s0_rss = rows
        .iter()
        .find(|r| r["key"] == "S0")
        .and_then(|r| r["rss_mib"].as_f64())
        .unwrap_or(f64::NAN);
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
        // Native rows are compared with Envoy alone (they need no Wasm VM).
        r["cpu_added_s0_us"] = json!(paired(&cpu, &s0_cpu, diff));
        r["p50_added_us"] = json!(paired(&series(&key, "c1", "p50_us"), &s0w_p50, diff));
        r["p99_added_us"] = json!(paired(&series(&key, "c1", "p99_us"), &s0w_p99, diff));
        let rss = r["rss_mib"].as_f64().unwrap_or(f64::NAN);
        r["rss_added_mib"] = json!(rss - s0w_rss);
        r["rss_added_s0_mib"] = json!(rss - s0_rss);
    }
    if let Some(s3n) = rows.iter().find(|r| r["key"] == "S3n") {
        let added = s3n["cpu_added_s0_us"].as_f64().unwrap_or(f64::NAN);
        stream_info["native_cpu_added_us_per_event"] = json!(added / upstream_events as f64);
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
/// what each further worker thread (with its own VM per plugin, or the native module's
/// per-worker state) adds.
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
        if !(wanted || key == "S0" || key == "S0w")
            || !matches!(key, "S0" | "S0w" | "S1" | "S4" | "S1n" | "S4n")
        {
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
