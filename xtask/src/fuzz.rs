//! `cargo xtask fuzz [--minutes N] [--jobs J] [TARGET...]`: run every cargo-fuzz target (or
//! the named ones) for N minutes each (default 1), then print executions, time and crashes
//! per target. Needs a nightly toolchain; installs cargo-fuzz when it is missing.
//!
//! The corpus of each target starts from the seed corpus (protocol fixtures, `fuzz/seeds/`,
//! `fuzz/regressions/`, written by `write-seeds`) and grows in `fuzz/corpus/` between runs.
//! Crash inputs land in `fuzz/artifacts/<target>/`; copy them to `fuzz/regressions/<target>/`
//! so the stable replay test (`fuzz/targets/tests/corpus.rs`) keeps them fixed.
//! Fuzzing runs at `nice -n 19`: it is meant for a shared machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every target, in `fuzz/Cargo.toml` order.
const TARGETS: &[&str] = &[
    "sse",
    "openai_edit",
    "openai_stream",
    "json_field",
    "claude_request",
    "claude_response",
    "claude_stream",
    "anthropic_client_request",
    "anthropic_client_response",
    "anthropic_client_stream",
    "gemini_request",
    "gemini_response",
    "gemini_stream",
    "proxy_config",
    "balancer_config",
    "model_mapping",
    "resp",
    "metrics",
    "responses_request",
    "responses_response",
    "responses_stream",
    "responses_usage",
];

struct Options {
    minutes: f64,
    jobs: usize,
    targets: Vec<String>,
}

fn parse(args: &[String]) -> crate::Result<Options> {
    let mut o = Options {
        minutes: 1.0,
        jobs: 1,
        targets: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--minutes" => {
                o.minutes = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|m: &f64| *m > 0.0)
                    .ok_or("--minutes needs a positive number")?;
            }
            "--jobs" => {
                o.jobs = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|j| *j > 0)
                    .ok_or("--jobs needs a positive integer")?;
            }
            t if TARGETS.contains(&t) => o.targets.push(t.to_string()),
            other => {
                return Err(format!(
                    "unknown argument {other:?}; targets: {}",
                    TARGETS.join(" ")
                ))
            }
        }
    }
    if o.targets.is_empty() {
        o.targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    Ok(o)
}

/// What one run printed (libFuzzer's `-print_final_stats=1`).
#[derive(Debug, Default)]
struct Outcome {
    target: String,
    executions: u64,
    seconds: u64,
    corpus: u64,
    crashes: Vec<PathBuf>,
    ok: bool,
}

pub fn run(args: &[String]) -> crate::Result {
    let opts = parse(args)?;
    let root = crate::root();
    let fuzz = root.join("fuzz");
    ensure_tools()?;
    let target_dir = crate::target_dir().join("fuzz");
    println!(
        "building {} fuzz targets (nightly, release)",
        opts.targets.len()
    );
    crate::run(
        Command::new("nice")
            .args(["-n", "19", "cargo", "+nightly", "fuzz", "build", "-O"])
            .current_dir(&fuzz)
            .env("CARGO_TARGET_DIR", &target_dir),
    )?;
    let corpus = fuzz.join("corpus");
    crate::run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "run",
                "--quiet",
                "-p",
                "switchyard-fuzz-targets",
                "--bin",
                "write-seeds",
                "--",
            ])
            .arg(&root)
            .arg(&corpus)
            .current_dir(&root),
    )?;
    let secs = (opts.minutes * 60.0).round().max(1.0) as u64;
    let logs = fuzz.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    let mut outcomes = Vec::new();
    for batch in opts.targets.chunks(opts.jobs) {
        let running: Vec<_> = batch
            .iter()
            .map(|t| start(&fuzz, &target_dir, t, secs, &logs))
            .collect::<crate::Result<_>>()?;
        for (t, mut child) in running {
            let status = child.wait().map_err(|e| e.to_string())?;
            let mut o = read_outcome(&fuzz, &logs, &t);
            o.ok = status.success() && o.crashes.is_empty();
            println!(
                "{t:<26} {:>12} execs {:>6} s {:>6} corpus  {}",
                o.executions,
                o.seconds,
                o.corpus,
                if o.ok { "ok" } else { "CRASH" }
            );
            outcomes.push(o);
        }
    }
    println!("\ntarget                       executions  seconds  exec/s  crashes");
    for o in &outcomes {
        println!(
            "{:<26} {:>12} {:>8} {:>7} {:>8}",
            o.target,
            o.executions,
            o.seconds,
            o.executions / o.seconds.max(1),
            o.crashes.len()
        );
    }
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.ok).collect();
    if failed.is_empty() {
        Ok(())
    } else {
        for o in &failed {
            eprintln!(
                "{}: see {} and {:?}",
                o.target,
                logs.join(format!("{}.log", o.target)).display(),
                o.crashes
            );
        }
        Err(format!(
            "{} target(s) crashed: reproduce with `cargo +nightly fuzz run <target> <file>` in fuzz/, then add the file to fuzz/regressions/<target>/",
            failed.len()
        ))
    }
}

fn ensure_tools() -> crate::Result {
    if crate::output(Command::new("cargo").args(["+nightly", "--version"])).is_none() {
        return Err("a nightly toolchain is needed: rustup toolchain install nightly".into());
    }
    if crate::output(Command::new("cargo").args(["fuzz", "--version"])).is_none() {
        crate::run(Command::new("cargo").args(["install", "--locked", "cargo-fuzz"]))?;
    }
    Ok(())
}

fn start(
    fuzz: &Path,
    target_dir: &Path,
    target: &str,
    secs: u64,
    logs: &Path,
) -> crate::Result<(String, std::process::Child)> {
    let log =
        std::fs::File::create(logs.join(format!("{target}.log"))).map_err(|e| e.to_string())?;
    let corpus = fuzz.join("corpus").join(target);
    let artifacts = fuzz.join("artifacts").join(target);
    std::fs::create_dir_all(&artifacts).map_err(|e| e.to_string())?;
    let child = Command::new("nice")
        .args(["-n", "19", "cargo", "+nightly", "fuzz", "run", "-O", target])
        .arg(&corpus)
        .arg("--")
        .arg(format!("-max_total_time={secs}"))
        .args(["-print_final_stats=1", "-rss_limit_mb=2048", "-timeout=10"])
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .current_dir(fuzz)
        .env("CARGO_TARGET_DIR", target_dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cargo fuzz run {target}: {e}"))?;
    Ok((target.to_string(), child))
}

fn read_outcome(fuzz: &Path, logs: &Path, target: &str) -> Outcome {
    let log = std::fs::read_to_string(logs.join(format!("{target}.log"))).unwrap_or_default();
    let stat = |name: &str| {
        log.lines()
            .rev()
            .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let seconds = log
        .lines()
        .rev()
        .find_map(|l| {
            let rest = l.strip_prefix("Done ")?;
            let (_, after) = rest.split_once(" runs in ")?;
            after.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| stat("total_time"));
    let crashes = std::fs::read_dir(fuzz.join("artifacts").join(target))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name().is_some_and(|n| {
                        let n = n.to_string_lossy();
                        n.starts_with("crash-")
                            || n.starts_with("oom-")
                            || n.starts_with("timeout-")
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Outcome {
        target: target.to_string(),
        executions: stat("number_of_executed_units"),
        seconds,
        corpus: std::fs::read_dir(fuzz.join("corpus").join(target))
            .map(|d| d.count() as u64)
            .unwrap_or(0),
        crashes,
        ok: false,
    }
}
