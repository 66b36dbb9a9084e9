//! A filter run natively against the in-memory host the tests use
//! (`switchyard_filter::mock::MockHost`): requests go through every callback, so the request
//! path can be profiled with symbols (`perf`, `valgrind --tool=callgrind`) and its host calls
//! counted by kind. The same filter code runs under Proxy-Wasm and the native module; what
//! a host call costs there is measured by `cargo xtask bench --host-calls`.
//!
//! ```sh
//! cargo run --release -p hostsim --bin hostsim-proxy -- config.json [options]
//! ```
//!
//! Options: `--body FILE` (default: the bench's 1 KiB chat body), `--response FILE` (default:
//! a small OpenAI completion), `--model M` (the metadata `json_to_metadata` would set; default
//! the body's `gpt-4o`), `--no-metadata` (as without `json_to_metadata`), `--requests N`
//! (default 20000). Prints host calls per request by kind and native ns per request.

use std::process::ExitCode;
use std::time::Instant;
use switchyard_filter::balancer::BalancerRoot;
use switchyard_filter::host::BodyFacts;
use switchyard_filter::mock::{MockHost, SharedStore};
use switchyard_filter::proxy::ProxyRoot;

/// Which filter to run.
#[derive(Debug, Clone, Copy)]
pub enum Filter {
    Proxy,
    Balancer,
}

/// The bench's 1 KiB chat body shape.
const DEFAULT_BODY: &str = r#"{"model":"gpt-4o","stream":false,"temperature":0.7,"max_tokens":512,"messages":[{"role":"system","content":"You are a concise assistant for a platform team. Answer in plain English."},{"role":"user","content":"What does an AI gateway do?"},{"role":"assistant","content":"It routes requests to model vendors, translates protocols and enforces quotas."},{"role":"user","content":"Explain how it picks a provider when several serve the same model."}]}"#;
const DEFAULT_RESPONSE: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1795329446,"model":"deepseek-chat","choices":[{"index":0,"message":{"role":"assistant","content":"An AI gateway routes requests to model vendors.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":210,"completion_tokens":9,"total_tokens":219}}"#;

struct Args {
    config: Vec<u8>,
    body: Vec<u8>,
    response: Vec<u8>,
    model: Option<String>,
    metadata: bool,
    requests: u32,
}

fn args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let config = it.next().ok_or("usage: hostsim-<filter> CONFIG.json [--body FILE] [--response FILE] [--model M] [--no-metadata] [--requests N]")?;
    let read = |p: &str| std::fs::read(p).map_err(|e| format!("{p}: {e}"));
    let mut a = Args {
        config: read(&config)?,
        body: DEFAULT_BODY.as_bytes().to_vec(),
        response: DEFAULT_RESPONSE.as_bytes().to_vec(),
        model: None,
        metadata: true,
        requests: 20_000,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--body" => a.body = read(&value()?)?,
            "--response" => a.response = read(&value()?)?,
            "--model" => a.model = Some(value()?),
            "--no-metadata" => a.metadata = false,
            "--requests" => {
                a.requests = value()?.parse().map_err(|_| "--requests needs a number")?
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(a)
}

/// The filter under test, configured.
enum Running {
    Proxy(ProxyRoot),
    Balancer(BalancerRoot),
}

/// One request through every callback, with fresh headers and bodies; returns its host.
fn request(filter: &Running, a: &Args, facts: &BodyFacts, store: &SharedStore) -> MockHost {
    let mut host = MockHost::request(
        &[
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            (":authority", "gateway"),
            (":scheme", "http"),
            ("content-type", "application/json"),
            ("authorization", "Bearer client-secret"),
            ("user-agent", "hostsim"),
            ("content-length", &a.body.len().to_string()),
        ],
        1_700_000_000_000,
    )
    .with_shared(store)
    .with_facts(facts.clone())
    .with_cluster("provider-upstream");
    host.request_body = a.body.clone();
    host.final_status = Some(200);
    host.final_status_details = Some("via_upstream".into());
    let length = a.response.len().to_string();
    match filter {
        Running::Proxy(root) => {
            let mut req = root.new_request();
            req.on_request_headers(&mut host, false);
            req.on_request_body(&mut host, a.body.len(), true);
            host.answer(
                200,
                &[
                    ("content-type", "application/json"),
                    ("content-length", &length),
                ],
                &a.response,
            );
            req.on_response_headers(&mut host, false);
            req.on_response_body(&mut host, a.response.len(), true);
            req.on_log(&mut host);
        }
        Running::Balancer(root) => {
            let mut req = root.new_request();
            req.on_request_headers(&mut host, false);
            req.on_request_body(&mut host, a.body.len(), true);
            req.on_log(&mut host);
        }
    }
    host
}

pub fn main(filter: Filter) -> ExitCode {
    match run(filter) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hostsim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(filter: Filter) -> Result<(), String> {
    let a = args()?;
    let model = a.model.clone().or_else(|| body_model(&a.body));
    let facts = if a.metadata {
        BodyFacts {
            model,
            stream: Some(false),
            ..BodyFacts::default()
        }
    } else {
        BodyFacts::default()
    };
    let running = match filter {
        Filter::Proxy => {
            let mut root = ProxyRoot::new(1);
            root.configure(&a.config)
                .map_err(|e| format!("config refused: {e}"))?;
            Running::Proxy(root)
        }
        Filter::Balancer => {
            let mut root = BalancerRoot::new(1);
            root.configure(&a.config)
                .map_err(|e| format!("config refused: {e}"))?;
            Running::Balancer(root)
        }
    };
    let store = SharedStore::default();
    for _ in 0..1000 {
        request(&running, &a, &facts, &store);
    }
    let sample = request(&running, &a, &facts, &store);
    if let Some(reply) = &sample.local_reply {
        eprintln!(
            "hostsim: the filter answered locally ({}): {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
    }
    let started = Instant::now();
    for _ in 0..a.requests {
        request(&running, &a, &facts, &store);
    }
    let ns = started.elapsed().as_nanos() / u128::from(a.requests.max(1));
    println!("host calls per request: {}", sample.total_calls());
    for (kind, n) in sample.calls.borrow().iter() {
        println!("  {kind}: {n}");
    }
    println!("native time per request (filter + in-memory host): {ns} ns");
    Ok(())
}

/// The body's `model` (the first `"model":"…"`; good enough for the default metadata, pass
/// `--model` otherwise).
fn body_model(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let (_, rest) = text.split_once("\"model\":\"")?;
    rest.split_once('"').map(|(m, _)| m.to_string())
}
