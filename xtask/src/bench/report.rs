//! The report as markdown (the JSON copy is the report itself), and the facts that head it.

use serde_json::{json, Value};
use std::process::Command;

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

pub(super) fn markdown(r: &Value) -> String {
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
            "| scenario | req/s (min-max) | vs S0 | vs S0w | p50 c=1 µs | p99 c=1 µs | p50 vs S0w µs | Envoy CPU µs/req | CPU vs S0w µs | CPU vs S0 µs | RSS MiB | RSS vs S0w MiB | RSS vs S0 MiB |\n",
        );
        s.push_str(
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        );
        for row in e["scenarios"].as_array().into_iter().flatten() {
            s.push_str(&format!(
                "| {} {} | {} ({}-{}) | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
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
                signed(&row["cpu_added_s0_us"], 1),
                f(&row["rss_mib"], 1),
                signed(&row["rss_added_mib"], 1),
                signed(&row["rss_added_s0_mib"], 1),
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
            if st["native_cpu_added_us_per_event"].is_number() {
                s.push_str(&format!(
                    "S3n (native module): {} µs of Envoy CPU per event over S0's per-request cost.\n\n",
                    f(&st["native_cpu_added_us_per_event"], 2)
                ));
            }
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
                 each worker runs its own VM per plugin in the Wasm rows):\n\n\
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
        s.push_str(
            "Targets (issue #10 for the Wasm plugins, issue #17 for the native module):\n\n",
        );
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

pub(super) fn timestamp() -> String {
    crate::output(Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs().to_string())
                .unwrap_or_default()
        })
}

pub(super) fn machine() -> Value {
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

pub(super) fn commit() -> String {
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
