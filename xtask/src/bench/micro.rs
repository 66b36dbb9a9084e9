//! `--micro`: the criterion benchmarks of `crates/protocol`, read back from criterion's files.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Opts;
use crate::Result;

pub(super) fn micro(opts: &Opts) -> Result<Value> {
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
