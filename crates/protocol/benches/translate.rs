//! Native micro-benchmarks of the pure translators and the SSE parser (issue #10).
//!
//! `cargo bench -p switchyard-protocol --bench translate` (or `cargo xtask bench --micro`,
//! which also turns the results into a table). Every benchmark declares its unit through
//! criterion's throughput: `Elements(n)` = n requests, responses or stream events per
//! iteration, so time per unit = time per iteration / n.
//!
//! Inputs are built here, not read from fixtures: a 1 KiB OpenAI chat request (system prompt,
//! a short history, a user question), a ~60-word answer, and streams of 50 content events
//! delivered one event per `push` (as Envoy hands them over when the vendor flushes each).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use switchyard_protocol::anthropic::{
    chat_request_to_messages, messages_response_to_chat, ClaudeOptions, MessagesStreamToChat,
};
use switchyard_protocol::gemini::{
    chat_request_to_gemini, gemini_response_to_chat, GeminiOptions, GeminiStreamToChat,
};
use switchyard_protocol::openai_edit::{self, RequestEdits};
use switchyard_protocol::sse::SseParser;
use switchyard_protocol::StreamConverter;

/// Size of the benchmark request body, as in the end-to-end scenarios.
const REQUEST_BYTES: usize = 1024;
/// Content events per benchmark stream.
const STREAM_EVENTS: usize = 50;

/// An OpenAI chat request of exactly [`REQUEST_BYTES`] bytes.
fn chat_request(model: &str) -> Vec<u8> {
    let build = |pad: usize| {
        format!(
            concat!(
                r#"{{"model":"{}","temperature":0.7,"max_tokens":512,"messages":["#,
                r#"{{"role":"system","content":"You are a concise assistant for a platform team. Answer in plain English."}},"#,
                r#"{{"role":"user","content":"What does an AI gateway do?"}},"#,
                r#"{{"role":"assistant","content":"It routes requests to model vendors, translates protocols and enforces quotas."}},"#,
                r#"{{"role":"user","content":"Explain how it picks a provider when several serve the same model. {}"}}]}}"#
            ),
            model,
            "x".repeat(pad)
        )
    };
    let base = build(0).len();
    build(REQUEST_BYTES.saturating_sub(base)).into_bytes()
}

/// The answer text: 60 words.
fn answer_words() -> Vec<String> {
    (0..60).map(|i| format!("word{i}")).collect()
}

fn claude_response() -> Vec<u8> {
    let text = answer_words().join(" ");
    format!(
        r#"{{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{{"type":"text","text":"{text}"}}],"stop_reason":"end_turn","stop_sequence":null,"usage":{{"input_tokens":240,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":60}}}}"#
    )
    .into_bytes()
}

fn gemini_response() -> Vec<u8> {
    let text = answer_words().join(" ");
    format!(
        r#"{{"candidates":[{{"index":0,"content":{{"role":"model","parts":[{{"text":"{text}"}}]}},"finishReason":"STOP"}}],"usageMetadata":{{"promptTokenCount":240,"candidatesTokenCount":60,"totalTokenCount":300}},"modelVersion":"gemini-2.5-flash","responseId":"r1"}}"#
    )
    .into_bytes()
}

/// A Claude Messages stream: start events, [`STREAM_EVENTS`] text deltas, end events; one
/// event per element.
fn claude_stream() -> Vec<Vec<u8>> {
    let ev = |name: &str, data: String| format!("event: {name}\ndata: {data}\n\n").into_bytes();
    let mut out = vec![
        ev("message_start", r#"{"type":"message_start","message":{"id":"msg_01SSE","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":240,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}"#.into()),
        ev("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#.into()),
        ev("ping", r#"{"type": "ping"}"#.into()),
    ];
    for w in answer_words().iter().take(STREAM_EVENTS) {
        out.push(ev(
            "content_block_delta",
            format!(r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"{w} "}}}}"#),
        ));
    }
    out.push(ev(
        "content_block_stop",
        r#"{"type":"content_block_stop","index":0}"#.into(),
    ));
    out.push(ev("message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":50}}"#.into()));
    out.push(ev("message_stop", r#"{"type":"message_stop"}"#.into()));
    out
}

/// A Gemini `alt=sse` stream of [`STREAM_EVENTS`] events, the last with the finish reason.
fn gemini_stream() -> Vec<Vec<u8>> {
    let words = answer_words();
    (0..STREAM_EVENTS)
        .map(|i| {
            let w = words.get(i).map(String::as_str).unwrap_or("x");
            let finish = if i + 1 == STREAM_EVENTS { r#","finishReason":"STOP""# } else { "" };
            format!(
                r#"data: {{"candidates":[{{"index":0,"content":{{"role":"model","parts":[{{"text":"{w} "}}]}}{finish}}}],"usageMetadata":{{"promptTokenCount":240,"candidatesTokenCount":{},"totalTokenCount":{}}},"modelVersion":"gemini-2.5-flash","responseId":"r1"}}"#,
                i + 1,
                241 + i
            )
            .into_bytes()
            .into_iter()
            .chain(*b"\n\n")
            .collect()
        })
        .collect()
}

fn requests(c: &mut Criterion) {
    let mut g = c.benchmark_group("request");
    g.throughput(Throughput::Elements(1));
    let openai = chat_request("gpt-4o");
    assert_eq!(openai.len(), REQUEST_BYTES);
    // What ai-proxy does for an OpenAI-compatible vendor: validate, then splice the model.
    g.bench_function("openai_model_mapping", |b| {
        b.iter(|| {
            let body = black_box(&openai[..]);
            let model = openai_edit::validate(body, true);
            let edits = RequestEdits {
                model: Some("deepseek-chat"),
                ..RequestEdits::default()
            };
            (
                model.is_ok(),
                openai_edit::apply(body, &edits).ok().flatten(),
            )
        })
    });
    let claude_opts = ClaudeOptions::default();
    assert!(chat_request_to_messages(&openai, &claude_opts).is_ok());
    g.bench_function("openai_to_claude", |b| {
        b.iter(|| chat_request_to_messages(black_box(&openai), &claude_opts))
    });
    let gemini_opts = GeminiOptions::default();
    assert!(chat_request_to_gemini(&openai, &gemini_opts).is_ok());
    g.bench_function("openai_to_gemini", |b| {
        b.iter(|| chat_request_to_gemini(black_box(&openai), &gemini_opts))
    });
    g.finish();
}

fn responses(c: &mut Criterion) {
    let mut g = c.benchmark_group("response");
    g.throughput(Throughput::Elements(1));
    let claude = claude_response();
    assert!(messages_response_to_chat(&claude, "chatcmpl-1", 1_700_000_000).is_ok());
    g.bench_function("claude_to_openai", |b| {
        b.iter(|| messages_response_to_chat(black_box(&claude), "chatcmpl-1", 1_700_000_000))
    });
    let gemini = gemini_response();
    assert!(gemini_response_to_chat(&gemini, "gemini-2.5-flash", "chatcmpl-1", 1).is_ok());
    g.bench_function("gemini_to_openai", |b| {
        b.iter(|| gemini_response_to_chat(black_box(&gemini), "gemini-2.5-flash", "chatcmpl-1", 1))
    });
    g.finish();
}

/// Push every event, then finish; returns the output size so nothing is optimised away.
fn run_stream(conv: &mut dyn StreamConverter, events: &[Vec<u8>]) -> usize {
    let mut n = 0;
    for e in events {
        n += conv.push(black_box(e)).len();
    }
    n + conv.finish().len()
}

fn streams(c: &mut Criterion) {
    let mut g = c.benchmark_group("stream_event");
    let claude = claude_stream();
    let mut probe = MessagesStreamToChat::new(true, 1);
    let out = run_stream(&mut probe, &claude);
    assert!(out > 0 && probe.usage().is_some(), "Claude stream converts");
    g.throughput(Throughput::Elements(claude.len() as u64));
    g.bench_function("claude_to_openai", |b| {
        b.iter(|| run_stream(&mut MessagesStreamToChat::new(true, 1), &claude))
    });
    let gemini = gemini_stream();
    let mut probe = GeminiStreamToChat::new("gemini-2.5-flash", "chatcmpl-1", 1, true);
    let out = run_stream(&mut probe, &gemini);
    assert!(out > 0 && probe.usage().is_some(), "Gemini stream converts");
    g.throughput(Throughput::Elements(gemini.len() as u64));
    g.bench_function("gemini_to_openai", |b| {
        b.iter(|| {
            run_stream(
                &mut GeminiStreamToChat::new("gemini-2.5-flash", "chatcmpl-1", 1, true),
                &gemini,
            )
        })
    });
    // The SSE parser alone, on the Claude stream.
    g.throughput(Throughput::Elements(claude.len() as u64));
    g.bench_function("sse_parse", |b| {
        let mut out = Vec::with_capacity(4);
        b.iter(|| {
            let mut p = SseParser::new();
            let mut n = 0;
            for e in &claude {
                out.clear();
                p.push_into(black_box(e), &mut out);
                n += out.len();
            }
            n
        })
    });
    g.finish();
}

fn config() -> Criterion {
    // Short runs: `cargo xtask bench` must finish in minutes; the spread is still reported.
    Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = requests, responses, streams
}
criterion_main!(benches);
