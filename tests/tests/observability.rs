//! Metrics and access-log facts in real Envoy: after scripted traffic (plain, streaming,
//! errors; OpenAI-compatible, Claude, Gemini and Anthropic clients) `/stats/prometheus` holds
//! exact request and token counts, labelled by provider and bounded model names, and the
//! access log shows provider, models, tokens and time to first token per request.
//!
//! Build first: `cargo xtask build`; run with `cargo xtask test` (or set `ENVOY_BIN`).

use serde_json::Value;
use std::time::{Duration, Instant};
use switchyard_e2e::*;

const TOKENS: &str = "gen_ai_client_token_usage";
const REQUESTS: &str = "gen_ai_client_requests";

fn chat(model: &str, stream: bool) -> String {
    json!({
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": "count these five words"}]
    })
    .to_string()
}

/// ai-proxy in front of one mock with `provider`, and an access log.
fn gateway(provider: Value) -> (Gateway, MockServer, std::path::PathBuf) {
    let (mut s, m) = proxy_spec(json!({ "provider": provider }));
    let log = root().join(format!(
        "target/e2e/access-{}-{}.log",
        std::process::id(),
        m.addr().port()
    ));
    let _ = std::fs::remove_file(&log);
    s.access_log = Some(log.clone());
    (Gateway::start(&s), m, log)
}

/// Metrics are flushed to the admin endpoint as they are recorded, but `on_log` runs after
/// the client saw the last byte: poll briefly until `want` holds.
fn eventually(gw: &Gateway, what: &str, want: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(12);
    loop {
        let scrape = gw.prometheus();
        if want(&scrape) {
            return scrape;
        }
        assert!(Instant::now() < deadline, "{what}:\n{scrape}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tokens(scrape: &str, provider: &str, kind: &str) -> f64 {
    prometheus_sum(
        scrape,
        TOKENS,
        &[
            ("gen_ai_provider_name", provider),
            ("gen_ai_token_type", kind),
        ],
    )
}

fn usage_of(v: &Value) -> (f64, f64) {
    (
        v["usage"]["prompt_tokens"].as_f64().unwrap(),
        v["usage"]["completion_tokens"].as_f64().unwrap(),
    )
}

/// The final usage chunk of an OpenAI stream.
fn stream_usage(r: &Response) -> (f64, f64) {
    let data = r.sse_data();
    let last = data
        .iter()
        .rev()
        .filter(|d| d.as_str() != "[DONE]")
        .find_map(|d| {
            serde_json::from_str::<Value>(d)
                .ok()
                .filter(|v| v["usage"].is_object())
        })
        .unwrap_or_else(|| panic!("no usage chunk: {}", r.text()));
    usage_of(&last)
}

#[test]
fn openai_compatible_plain_stream_and_errors_are_counted_exactly() {
    let (gw, m, log) = gateway(json!({
        "id": "qwen-main",
        "type": "qwen",
        "apiTokens": ["sk-test-1"],
        "modelMapping": {"gpt-4o": "qwen-max"},
    }));
    m.set_default_script(Script::text("one two three four five six seven"));

    // Plain: the vendor's usage goes to the client untouched and is counted.
    let r = gw.post("/v1/chat/completions", &chat("gpt-4o", false));
    assert_eq!(r.status, 200, "{}", r.text());
    let (p1, c1) = usage_of(&r.json());
    assert!(p1 > 0.0 && c1 == 7.0, "{}", r.text());

    // Stream without include_usage: the gateway asks the vendor for usage, hides it from the
    // client and still counts it, once.
    let r = gw.post("/v1/chat/completions", &chat("gpt-4o", true));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        !r.text().contains("\"usage\""),
        "usage hidden: {}",
        r.text()
    );
    // Stream with include_usage: same count, visible.
    let body = json!({
        "model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "count these five words"}]
    });
    let r = gw.post("/v1/chat/completions", &body.to_string());
    assert_eq!(stream_usage(&r), (p1, c1));

    // A model outside the config is labelled `other`, not by its name.
    let r = gw.post("/v1/chat/completions", &chat("made-up-model-42", false));
    assert_eq!(r.status, 200, "{}", r.text());

    // A vendor error.
    m.push_script(Script::error(503, "overloaded"));
    let r = gw.post("/v1/chat/completions", &chat("gpt-4o", false));
    assert_eq!(r.status, 503);

    let scrape = eventually(&gw, "five requests counted", |s| {
        prometheus_sum(s, REQUESTS, &[("gen_ai_provider_name", "qwen-main")]) >= 5.0
    });
    let req = |labels: &[(&str, &str)]| prometheus_sum(&scrape, REQUESTS, labels);
    assert_eq!(
        req(&[("gen_ai_provider_name", "qwen-main")]),
        5.0,
        "{scrape}"
    );
    assert_eq!(
        req(&[
            ("gen_ai_request_model", "gpt-4o"),
            ("gen_ai_response_model", "qwen-max"),
            ("status_class", "2xx"),
            ("gen_ai_operation_name", "chat"),
        ]),
        3.0,
        "{scrape}"
    );
    assert_eq!(
        req(&[
            ("gen_ai_request_model", "other"),
            ("gen_ai_response_model", "other")
        ]),
        1.0
    );
    assert!(
        !scrape.contains("made-up-model-42"),
        "unbounded label leaked"
    );
    assert_eq!(req(&[("status_class", "5xx")]), 1.0, "{scrape}");
    // Four answers with usage: three for gpt-4o, one for the unknown model.
    assert_eq!(tokens(&scrape, "qwen-main", "input"), 4.0 * p1, "{scrape}");
    assert_eq!(tokens(&scrape, "qwen-main", "output"), 4.0 * c1, "{scrape}");
    assert_eq!(
        prometheus_sum(
            &scrape,
            "switchyard_upstream_errors",
            &[
                ("gen_ai_provider_name", "qwen-main"),
                ("error_type", "http_5xx")
            ]
        ),
        1.0
    );
    // Streams have a time-to-first-token histogram, every request a duration. Envoy
    // publishes histograms at its stats flush (every 5 s by default).
    let scrape = eventually(&gw, "histograms flushed", |s| {
        prometheus_sum(s, "gen_ai_client_operation_duration_ms_count", &[]) >= 5.0
    });
    assert_eq!(
        prometheus_sum(&scrape, "gen_ai_server_time_to_first_token_ms_count", &[]),
        2.0,
        "{scrape}"
    );
    assert_eq!(
        prometheus_sum(&scrape, "gen_ai_client_operation_duration_ms_count", &[]),
        5.0
    );

    // The access log has the per-request facts.
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() >= 5 || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    let first = lines[0];
    assert!(first.contains("provider=qwen-main"), "{first}");
    assert!(
        first.contains("model=gpt-4o upstream_model=qwen-max"),
        "{first}"
    );
    assert!(
        first.contains(&format!("input_tokens={p1} output_tokens={c1}")),
        "{first}"
    );
    assert!(
        first.contains("ttft_ms=-"),
        "plain answers have no TTFT: {first}"
    );
    assert!(
        lines[1].contains(&format!("output_tokens={c1}")),
        "{}",
        lines[1]
    );
    let ttft = lines[1]
        .split("ttft_ms=")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|t| t.parse::<u64>().ok());
    assert!(ttft.is_some(), "stream TTFT logged: {}", lines[1]);
    assert!(!text.contains("sk-test-1"), "no secret in the access log");
    assert!(!gw.wasm_failed());
}

#[test]
fn claude_and_gemini_usage_counted_once_across_stream_shapes() {
    // Claude: OpenAI client, plain and streamed (usage split over message_start and
    // message_delta), and an Anthropic client passed through natively.
    let (gw, m, _log) = gateway(json!({
        "id": "claude-1", "type": "claude", "apiTokens": ["sk-ant-1"],
        "models": ["claude-sonnet-4-5"],
    }));
    m.set_default_script(Script::text("alpha beta gamma delta"));
    let r = gw.post("/v1/chat/completions", &chat("claude-sonnet-4-5", false));
    assert_eq!(r.status, 200, "{}", r.text());
    let (p, c) = usage_of(&r.json());
    assert_eq!(c, 4.0);
    let r = gw.post("/v1/chat/completions", &chat("claude-sonnet-4-5", true));
    assert_eq!(r.status, 200);
    let messages = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 100, "stream": true,
        "messages": [{"role": "user", "content": "count these five words"}]
    });
    let r = gw.post("/v1/messages", &messages.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let scrape = eventually(&gw, "three Claude requests", |s| {
        prometheus_sum(s, REQUESTS, &[("gen_ai_provider_name", "claude-1")]) >= 3.0
    });
    assert_eq!(tokens(&scrape, "claude-1", "input"), 3.0 * p, "{scrape}");
    assert_eq!(tokens(&scrape, "claude-1", "output"), 3.0 * c, "{scrape}");
    assert_eq!(
        prometheus_sum(
            &scrape,
            REQUESTS,
            &[
                ("gen_ai_request_model", "claude-sonnet-4-5"),
                ("status_class", "2xx")
            ]
        ),
        3.0
    );
    drop(gw);

    // Gemini: usageMetadata in the last stream chunk, and in plain answers.
    let (gw, m, _log) = gateway(json!({
        "id": "gem", "type": "gemini", "apiTokens": ["g-key-1"],
        "modelMapping": {"*": "gemini-2.5-flash"},
    }));
    m.set_default_script(Script::text("uno dos tres"));
    let r = gw.post("/v1/chat/completions", &chat("gpt-4o", false));
    assert_eq!(r.status, 200, "{}", r.text());
    let (p, c) = usage_of(&r.json());
    assert_eq!(c, 3.0);
    let r = gw.post("/v1/chat/completions", &chat("gpt-4o", true));
    assert_eq!(r.status, 200, "{}", r.text());
    let scrape = eventually(&gw, "two Gemini requests", |s| {
        prometheus_sum(s, REQUESTS, &[("gen_ai_provider_name", "gem")]) >= 2.0
    });
    assert_eq!(tokens(&scrape, "gem", "input"), 2.0 * p, "{scrape}");
    assert_eq!(tokens(&scrape, "gem", "output"), 2.0 * c, "{scrape}");
    // `gpt-4o` is not named by this provider's config; the `*` target is.
    assert_eq!(
        prometheus_sum(
            &scrape,
            REQUESTS,
            &[
                ("gen_ai_request_model", "other"),
                ("gen_ai_response_model", "gemini-2.5-flash")
            ]
        ),
        2.0,
        "{scrape}"
    );
    assert!(!gw.wasm_failed());
}
