//! `cargo xtask soak [--minutes N] [--rate R] [--workers W]`: mixed traffic through Envoy with
//! both plugins (balancer in front of the proxy) at a steady rate, then a report.
//!
//! Traffic, chosen per request from a fixed rotation: plain and streaming chat through an
//! OpenAI-compatible, a Claude and a Gemini vendor (the balancer picks among them by in-flight
//! counts), tool-call answers (half of each translated vendor's tokens are scripted to answer
//! with tool calls), scripted vendor errors (a provider whose mock answers 429 or 503, chosen
//! by the client), Anthropic-style clients, and clients that disconnect mid-stream.
//!
//! Reported: requests by outcome, unexpected 5xx (must be 0: only the scripted vendor errors
//! may be 5xx), Wasm VM failures and restarts (Envoy's stats and log; must be 0), and Envoy's
//! RSS at the start and end of the steady phase (after a warm-up; growth must stay under 5%).
//! The report is printed and written to `<target>/soak/report.json`.

use mock_provider::{MockServer, Script, ScriptToolCall};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchyard::envoy::{BootstrapSpec, WasmFilter};
use switchyard::run::EnvoyProcess;

struct Options {
    minutes: f64,
    rate: f64,
    workers: usize,
}

fn parse(args: &[String]) -> crate::Result<Options> {
    let mut o = Options {
        minutes: 30.0,
        rate: 20.0,
        workers: 8,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> crate::Result<f64> {
            it.next()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| *v > 0.0)
                .ok_or_else(|| format!("{name} needs a positive number"))
        };
        match a.as_str() {
            "--minutes" => o.minutes = num("--minutes")?,
            "--rate" => o.rate = num("--rate")?,
            "--workers" => o.workers = num("--workers")? as usize,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(o)
}

/// The kinds of request in the rotation.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Plain,
    Stream,
    Tools,
    StreamTools,
    AnthropicClient,
    VendorError,
    Disconnect,
}

const ROTATION: &[Kind] = &[
    Kind::Plain,
    Kind::Stream,
    Kind::Plain,
    Kind::Tools,
    Kind::Stream,
    Kind::StreamTools,
    Kind::AnthropicClient,
    Kind::Plain,
    Kind::Stream,
    Kind::VendorError,
    Kind::Disconnect,
    Kind::Stream,
];

struct Vendors {
    openai: MockServer,
    claude: MockServer,
    gemini: MockServer,
}

fn start_mocks() -> crate::Result<Vendors> {
    let any: SocketAddr = "127.0.0.1:0".parse().map_err(|_| "addr")?;
    let start = || MockServer::start_with_threads(any, 2).map_err(|e| e.to_string());
    let v = Vendors {
        openai: start()?,
        claude: start()?,
        gemini: start()?,
    };
    for m in [&v.openai, &v.claude, &v.gemini] {
        m.set_record_limit(16);
    }
    let tools = |token: &str| Script {
        tool_calls: vec![ScriptToolCall::new("get_weather", r#"{"city":"Paris"}"#)],
        only_for_token: Some(token.into()),
        ..Default::default()
    };
    v.claude.set_default_script(tools("cl-tools"));
    v.gemini.set_default_script(tools("ge-tools"));
    // One of the OpenAI-compatible vendor's four tokens gets a scripted 503.
    v.openai.set_default_script(Script {
        only_for_token: Some("oa-err".into()),
        ..Script::error(503, "scripted overload")
    });
    Ok(v)
}

fn spec(v: &Vendors, wasm: &std::path::Path) -> crate::Result<BootstrapSpec> {
    let any: SocketAddr = "127.0.0.1:0".parse().map_err(|_| "addr")?;
    let mut s = BootstrapSpec::new(any, any);
    s.filters.push(WasmFilter {
        name: "ai-load-balancer".into(),
        wasm_path: wasm.join("ai_load_balancer.wasm"),
        config: json!({
            "providers": [
                {"name": "oa", "key": "oa", "model": "deepseek-chat"},
                {"name": "cl", "key": "cl", "model": "claude-sonnet-4"},
                {"name": "ge", "key": "ge", "model": "gemini-2.5-flash"}
            ],
            "allow_client_choice": true,
            "metrics": {"source": "local"}
        }),
    });
    s.filters.push(WasmFilter {
        name: "ai-proxy".into(),
        wasm_path: wasm.join("ai_proxy.wasm"),
        config: json!({
            "providers": [
                {"id": "oa", "type": "deepseek", "apiTokens": ["oa-1", "oa-2", "oa-3", "oa-err"]},
                {"id": "cl", "type": "claude", "apiTokens": ["cl-plain", "cl-tools"]},
                {"id": "ge", "type": "gemini", "apiTokens": ["ge-plain", "ge-tools"]}
            ],
            "activeProviderId": "oa",
            "activeProviderHeader": "x-selected-provider"
        }),
    });
    crate::bench::add_provider(&mut s, "oa", v.openai.addr());
    crate::bench::add_provider(&mut s, "cl", v.claude.addr());
    crate::bench::add_provider(&mut s, "ge", v.gemini.addr());
    s.default_cluster = Some("provider-oa".into());
    Ok(s)
}

/// What came back, as far as the soak cares.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

fn send(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
    disconnect_after: Option<usize>,
) -> std::io::Result<Answer> {
    let len = body.len().to_string();
    let mut all = vec![
        ("host", "soak"),
        ("content-type", "application/json"),
        ("content-length", len.as_str()),
        ("connection", "close"),
    ];
    all.extend_from_slice(headers);
    let mut c = raw_http::Conn::connect(addr, Duration::from_secs(30))?;
    c.send(&raw_http::request_head("POST", path, &all), body.as_bytes())?;
    let mut r = c.head()?;
    if let Some(n) = disconnect_after {
        // Hang up after the first bytes of the answer.
        let body = c.some_bytes(n)?;
        return Ok(Answer {
            status: r.status,
            body,
        });
    }
    c.body(&mut r);
    match r.error {
        Some(e) => Err(e.into()),
        None if !r.complete => Err(std::io::ErrorKind::UnexpectedEof.into()),
        None => Ok(Answer {
            status: r.status,
            body: r.body,
        }),
    }
}

const TOOLS: &str = r#"[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]"#;

/// One request of `kind`; returns the outcome label.
fn one(addr: SocketAddr, kind: Kind, n: u64) -> String {
    // Tool answers are scripted on the translated vendors.
    let vendor = ["cl", "ge"][(n % 2) as usize];
    let words = "one two three four five six seven eight";
    let chat = |stream: bool, tools: bool| {
        let mut v = json!({"model": "auto", "stream": stream,
            "messages": [{"role": "user", "content": format!("request {n}: {words}")}]});
        if tools {
            v["tools"] = serde_json::from_str(TOOLS).unwrap_or(Value::Null);
        }
        v.to_string()
    };
    let pick = [("x-selected-provider", vendor)];
    let (path, headers, body, disconnect): (&str, Vec<(&str, &str)>, String, Option<usize>) =
        match kind {
            // Plain and stream: the balancer chooses.
            Kind::Plain => ("/v1/chat/completions", vec![], chat(false, false), None),
            Kind::Stream => ("/v1/chat/completions", vec![], chat(true, false), None),
            Kind::Tools => (
                "/v1/chat/completions",
                pick.to_vec(),
                chat(false, true),
                None,
            ),
            Kind::StreamTools => (
                "/v1/chat/completions",
                pick.to_vec(),
                chat(true, true),
                None,
            ),
            Kind::AnthropicClient => (
                "/v1/messages",
                vec![("anthropic-version", "2023-06-01")],
                json!({"model": "auto", "max_tokens": 64, "stream": n.is_multiple_of(2),
                    "messages": [{"role": "user", "content": words}]})
                .to_string(),
                None,
            ),
            Kind::VendorError => (
                "/v1/chat/completions",
                vec![("x-selected-provider", "oa")],
                chat(n.is_multiple_of(2), false),
                None,
            ),
            Kind::Disconnect => (
                "/v1/chat/completions",
                pick.to_vec(),
                chat(true, false),
                Some(40),
            ),
        };
    let answer = match send(addr, path, &headers, &body, disconnect) {
        Ok(a) => a,
        Err(e) => return format!("transport_error ({})", e.kind()),
    };
    let text = String::from_utf8_lossy(&answer.body);
    let label = match kind {
        Kind::Plain => "plain",
        Kind::Stream => "stream",
        Kind::Tools => "tools",
        Kind::StreamTools => "stream_tools",
        Kind::AnthropicClient => "anthropic_client",
        Kind::VendorError => "scripted_vendor_error",
        Kind::Disconnect => "client_disconnect",
    };
    match (kind, answer.status) {
        // Any request that reached the OpenAI-compatible vendor with its `oa-err` token.
        (_, 503) if text.contains("scripted overload") => "scripted_vendor_error".to_string(),
        (Kind::VendorError, 200) => "vendor_error_probe (good token) ok".to_string(),
        (Kind::Disconnect, 200) => label.to_string(),
        (_, 200) => {
            let complete = if matches!(kind, Kind::Stream | Kind::StreamTools) {
                text.contains("data: [DONE]")
            } else if matches!(kind, Kind::AnthropicClient) {
                text.contains("message_stop") || text.contains("\"type\":\"message\"")
            } else {
                serde_json::from_slice::<Value>(&answer.body).is_ok_and(|v| v["choices"].is_array())
            };
            if complete {
                format!("{label} ok")
            } else {
                format!("{label} INCOMPLETE")
            }
        }
        (_, s) if s >= 500 => format!("UNEXPECTED {s} ({label})"),
        (_, s) => format!("unexpected {s} ({label})"),
    }
}

/// Sum of the Wasm VM counters that matter: (created, failures).
fn vm_stats(envoy: &EnvoyProcess) -> (u64, u64, String) {
    let body = envoy
        .admin_get("/stats?filter=wasm")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let mut created = 0;
    let mut failed = 0;
    for line in body.lines() {
        // Envoy's own Wasm counters (`wasm.*`), not the plugins' metrics (`wasmcustom.*`).
        let Some((k, v)) = line
            .split_once(": ")
            .filter(|(k, _)| k.starts_with("wasm."))
        else {
            continue;
        };
        let v: u64 = v.trim().parse().unwrap_or(0);
        if k.ends_with(".created") {
            created += v;
        }
        if k.ends_with("vm_reload") || k.ends_with("vm_reload_failure") {
            failed += v;
        }
    }
    (created, failed, body)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

pub fn run(args: &[String]) -> crate::Result {
    let opts = parse(args)?;
    crate::setup()?;
    crate::build()?;
    let root = crate::root();
    let envoy_bin = switchyard::run::find_envoy(&root).ok_or("envoy not found after setup")?;
    let vendors = start_mocks()?;
    let spec = spec(&vendors, &crate::wasm_dir())?;
    let workdir = crate::target_dir().join("soak");
    let envoy = EnvoyProcess::start(&envoy_bin, &spec, &workdir.join("envoy"), 2)
        .map_err(|e| e.to_string())?;
    let addr = envoy.listen;
    let total = Duration::from_secs_f64(opts.minutes * 60.0);
    let warmup = (total / 10).min(Duration::from_secs(120));
    println!(
        "soak: {:.1} min at {} req/s with {} workers through Envoy {addr} (warm-up {} s)",
        opts.minutes,
        opts.rate,
        opts.workers,
        warmup.as_secs()
    );
    let outcomes: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let seq = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / opts.rate);
    let mut workers = Vec::new();
    for _ in 0..opts.workers {
        let (outcomes, seq, stop) = (outcomes.clone(), seq.clone(), stop.clone());
        workers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // A global schedule: request n starts at n * interval.
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let due = started + interval.mul_f64(n as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let kind = ROTATION[(n as usize) % ROTATION.len()];
                let label = one(addr, kind, n);
                if let Ok(mut o) = outcomes.lock() {
                    *o.entry(label).or_default() += 1;
                }
            }
        }));
    }
    std::thread::sleep(warmup);
    let pid = envoy.pid();
    let rss_start = rss_kib(pid);
    let (created_start, failed_start, _) = vm_stats(&envoy);
    let steady_start = Instant::now();
    let mut samples = vec![json!({"t_s": 0, "rss_kib": rss_start})];
    while steady_start.elapsed() < total.saturating_sub(warmup) {
        std::thread::sleep(Duration::from_secs(30).min(total.saturating_sub(warmup)));
        let t = steady_start.elapsed().as_secs();
        let rss = rss_kib(pid);
        let done: u64 = outcomes.lock().map(|o| o.values().sum()).unwrap_or(0);
        println!("  t+{t:>5} s  rss {rss} KiB  requests {done}");
        samples.push(json!({"t_s": t, "rss_kib": rss}));
    }
    let rss_end = rss_kib(pid);
    let (created_end, failed_end, stats) = vm_stats(&envoy);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let log = envoy.log();
    let traps = log.matches("panicked at").count() + log.matches("wasm trap").count();
    let outcomes = outcomes.lock().map(|o| o.clone()).unwrap_or_default();
    let requests: u64 = outcomes.values().sum();
    let unexpected_5xx: u64 = outcomes
        .iter()
        .filter(|(k, _)| k.starts_with("UNEXPECTED"))
        .map(|(_, v)| v)
        .sum();
    let bad: u64 = outcomes
        .iter()
        .filter(|(k, _)| {
            k.starts_with("UNEXPECTED")
                || k.starts_with("unexpected")
                || k.contains("INCOMPLETE")
                || k.starts_with("transport_error")
        })
        .map(|(_, v)| v)
        .sum();
    let growth = if rss_start > 0 {
        (rss_end as f64 - rss_start as f64) / rss_start as f64 * 100.0
    } else {
        f64::NAN
    };
    let vm_restarts = created_end.saturating_sub(created_start);
    let vm_failures = failed_end.saturating_sub(failed_start) + traps as u64;
    let report = json!({
        "minutes": opts.minutes,
        "rate_per_s": opts.rate,
        "workers": opts.workers,
        "warmup_s": warmup.as_secs(),
        "requests": requests,
        "achieved_rate_per_s": requests as f64 / started.elapsed().as_secs_f64(),
        "outcomes": outcomes,
        "unexpected_5xx": unexpected_5xx,
        "other_bad": bad - unexpected_5xx,
        "wasm_vm_created_during_steady_phase": vm_restarts,
        "wasm_failures": vm_failures,
        "rss_kib_start": rss_start,
        "rss_kib_end": rss_end,
        "rss_growth_pct": growth,
        "rss_samples": samples,
    });
    let _ = std::fs::create_dir_all(&workdir);
    let _ = std::fs::write(
        workdir.join("report.json"),
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    );
    let _ = std::fs::write(workdir.join("wasm-stats.txt"), stats);
    println!("\nrequests by outcome:");
    for (k, v) in &outcomes {
        println!("  {k:<40} {v:>8}");
    }
    println!(
        "\nrequests {requests} ({:.1}/s)  unexpected 5xx {unexpected_5xx}  other bad {}  VM restarts {vm_restarts}  VM failures {vm_failures}",
        report["achieved_rate_per_s"].as_f64().unwrap_or(0.0),
        bad - unexpected_5xx
    );
    println!("Envoy RSS: {rss_start} KiB -> {rss_end} KiB ({growth:+.2}%)");
    println!("report: {}", workdir.join("report.json").display());
    let mut problems = Vec::new();
    if unexpected_5xx > 0 {
        problems.push(format!("{unexpected_5xx} unexpected 5xx"));
    }
    if bad > unexpected_5xx {
        problems.push(format!("{} other failed requests", bad - unexpected_5xx));
    }
    if vm_restarts > 0 || vm_failures > 0 {
        problems.push(format!(
            "{vm_restarts} VM restarts, {vm_failures} VM failures"
        ));
    }
    if growth.is_nan() || growth >= 5.0 {
        problems.push(format!("RSS grew {growth:.2}%"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
