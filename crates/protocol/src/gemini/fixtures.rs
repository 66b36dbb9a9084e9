//! Table tests driven by the files under `testdata/gemini/` (layout in its README.md).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;
use crate::sse::SseParser;
use crate::stream::StreamConverter;
use crate::GatewayError;

const MODEL: &str = "gemini-2.5-flash";
const ID: &str = "chatcmpl-test";
const CREATED: u64 = 1_700_000_000;

fn dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/gemini")
        .join(sub)
}

/// Case names in `sub`: every `<case>.in.*` file (sorted).
fn cases(sub: &str, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir(sub))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(suffix).map(str::to_owned))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no fixtures in {sub}");
    names
}

fn read(sub: &str, file: &str) -> Option<Vec<u8>> {
    fs::read(dir(sub).join(file)).ok()
}

fn read_json(sub: &str, file: &str) -> Option<Value> {
    read(sub, file)
        .map(|b| serde_json::from_slice(&b).unwrap_or_else(|e| panic!("{sub}/{file}: {e}")))
}

/// JSON equality where numbers compare by value (`1` == `1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn assert_json(case: &str, got: &Value, want: &Value) {
    assert!(
        json_eq(got, want),
        "{case}:\n got: {}\nwant: {}",
        serde_json::to_string_pretty(got).unwrap(),
        serde_json::to_string_pretty(want).unwrap()
    );
}

/// `<case>.error.json`: `{"status", "code", "param"?, "message_contains"?}`.
fn assert_error(case: &str, err: &GatewayError, want: &Value) {
    assert_eq!(
        Some(u64::from(err.status())),
        want["status"].as_u64(),
        "{case}: {err:?}"
    );
    if let Some(code) = want.get("code").and_then(Value::as_str) {
        assert_eq!(err.code, code, "{case}: {err:?}");
    }
    if let Some(param) = want.get("param") {
        assert_eq!(
            err.param.map(Value::from).unwrap_or(Value::Null),
            *param,
            "{case}: {err:?}"
        );
    }
    if let Some(text) = want.get("message_contains").and_then(Value::as_str) {
        assert!(err.message.contains(text), "{case}: {err:?}");
    }
}

fn options(v: Option<Value>) -> GeminiOptions {
    let v = v.unwrap_or(Value::Null);
    GeminiOptions {
        safety_settings: v.get("safety_settings").cloned(),
        thinking_budget: v.get("thinking_budget").and_then(Value::as_i64),
    }
}

#[test]
fn chat_requests() {
    for case in cases("request", ".in.json") {
        let input = read("request", &format!("{case}.in.json")).unwrap();
        let opts = options(read_json("request", &format!("{case}.opts.json")));
        let got = chat_request_to_gemini(&input, &opts);
        if let Some(want) = read_json("request", &format!("{case}.error.json")) {
            assert_error(&case, &got.expect_err(&case), &want);
        } else {
            let want = read_json("request", &format!("{case}.out.json"))
                .unwrap_or_else(|| panic!("{case}: no .out.json or .error.json"));
            let got: Value = serde_json::from_slice(&got.unwrap()).unwrap();
            assert_json(&case, &got, &want);
        }
    }
}

#[test]
fn chat_responses() {
    for case in cases("response", ".in.json") {
        let input = read("response", &format!("{case}.in.json")).unwrap();
        let got = gemini_response_to_chat(&input, MODEL, ID, CREATED);
        if let Some(want) = read_json("response", &format!("{case}.error.json")) {
            assert_error(&case, &got.expect_err(&case), &want);
        } else {
            let want = read_json("response", &format!("{case}.out.json"))
                .unwrap_or_else(|| panic!("{case}: no .out.json or .error.json"));
            let got: Value = serde_json::from_slice(&got.unwrap()).unwrap();
            assert_json(&case, &got, &want);
        }
    }
}

#[test]
fn errors() {
    let table = read_json("errors", "cases.json").unwrap();
    for c in table.as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let status = u16::try_from(c["status"].as_u64().unwrap()).unwrap();
        let body = c["body"].as_str().unwrap();
        let got: Value = serde_json::from_slice(&error_to_openai(status, body.as_bytes())).unwrap();
        assert_json(name, &got, &c["expected"]);
    }
}

#[test]
fn model_paths() {
    let table = read_json("", "model_paths.json").unwrap();
    for c in table.as_array().unwrap() {
        let model = c["model"].as_str().unwrap();
        let stream = c["stream"].as_bool().unwrap_or(false);
        let got = if c["embed"].as_bool().unwrap_or(false) {
            embed_path(model, stream)
        } else {
            model_path(model, stream)
        };
        match c.get("path").and_then(Value::as_str) {
            Some(path) => assert_eq!(got.as_deref().ok(), Some(path), "{model:?}"),
            None => {
                let e = got.expect_err(model);
                assert_eq!((e.status(), e.param), (400, Some("model")), "{model:?}");
            }
        }
    }
}

#[test]
fn embeddings() {
    for case in cases("embeddings", ".request.json") {
        let input = read("embeddings", &format!("{case}.request.json")).unwrap();
        let got = embeddings_request_to_gemini(&input, "gemini-embedding-001");
        if let Some(want) = read_json("embeddings", &format!("{case}.error.json")) {
            assert_error(&case, &got.expect_err(&case), &want);
            continue;
        }
        let (batch, body) = got.unwrap();
        let want = read_json("embeddings", &format!("{case}.upstream.json")).unwrap();
        assert_eq!(Some(batch), want["batch"].as_bool(), "{case}");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_json(&case, &body, &want["body"]);

        let answer = read("embeddings", &format!("{case}.answer.json")).unwrap();
        let base64 = embeddings_want_base64(&input);
        let out =
            gemini_embeddings_to_openai_encoded(&answer, "gemini-embedding-001", batch, base64)
                .unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        let want = read_json("embeddings", &format!("{case}.client.json")).unwrap();
        assert_json(&case, &out, &want);
    }
}

// ---------------------------------------------------------------------------------------------
// streams

struct StreamCase {
    name: String,
    input: Vec<u8>,
    include_usage: bool,
    expected: Vec<u8>,
}

/// Every `stream/<case>.out.sse`; input `<case>.in.sse` unless `<case>.opts.json` names
/// another (`"input"`), `include_usage` from the opts (default false).
fn stream_cases() -> Vec<StreamCase> {
    cases("stream", ".out.sse")
        .into_iter()
        .map(|name| {
            let opts = read_json("stream", &format!("{name}.opts.json")).unwrap_or(Value::Null);
            let input_file = opts
                .get("input")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{name}.in.sse"));
            StreamCase {
                input: read("stream", &input_file)
                    .unwrap_or_else(|| panic!("{name}: missing {input_file}")),
                include_usage: opts["include_usage"].as_bool().unwrap_or(false),
                expected: read("stream", &format!("{name}.out.sse")).unwrap(),
                name,
            }
        })
        .collect()
}

fn run(case: &StreamCase, pieces: &[&[u8]]) -> (Vec<u8>, Option<crate::Usage>) {
    let mut c = GeminiStreamToChat::new(MODEL, ID, CREATED, case.include_usage);
    let mut out = Vec::new();
    for p in pieces {
        out.extend(c.push(p));
    }
    out.extend(c.finish());
    (out, c.usage())
}

fn events(bytes: &[u8]) -> Vec<(Option<String>, Value)> {
    let mut p = SseParser::new();
    let mut evs = p.push(bytes);
    evs.extend(p.finish());
    evs.into_iter()
        .map(|e| {
            let data = serde_json::from_str(&e.data).unwrap_or(Value::String(e.data));
            (e.event, data)
        })
        .collect()
}

#[test]
fn streams_match_expected_events() {
    for case in stream_cases() {
        let (got, _) = run(&case, &[&case.input]);
        let got_events = events(&got);
        let want_events = events(&case.expected);
        let show = |evs: &[(Option<String>, Value)]| {
            evs.iter()
                .map(|(_, d)| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert!(
            got_events.len() == want_events.len()
                && got_events
                    .iter()
                    .zip(&want_events)
                    .all(|(g, w)| g.0 == w.0 && json_eq(&g.1, &w.1)),
            "{}:\n got:\n{}\nwant:\n{}",
            case.name,
            show(&got_events),
            show(&want_events)
        );
        // Every data line is JSON or the terminator, and the stream ends with [DONE].
        assert!(got.ends_with(crate::openai::DONE), "{}", case.name);
    }
}

#[test]
fn streams_are_split_invariant() {
    for case in stream_cases() {
        let input = &case.input;
        let (whole, usage) = run(&case, &[input]);
        for i in 0..=input.len() {
            let (got, u) = run(&case, &[&input[..i], &input[i..]]);
            assert!(got == whole, "{}: split at {i}", case.name);
            assert_eq!(u, usage, "{}: split at {i}", case.name);
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert!(run(&case, &bytes).0 == whole, "{}: byte by byte", case.name);
        // A few irregular multi-way splits (deterministic LCG).
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20 {
            let mut pieces = Vec::new();
            let mut at = 0;
            while at < input.len() {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let len = 1 + (seed >> 33) as usize % 17;
                let end = (at + len).min(input.len());
                pieces.push(&input[at..end]);
                at = end;
            }
            assert!(
                run(&case, &pieces).0 == whole,
                "{}: random split",
                case.name
            );
        }
    }
}

#[test]
fn stream_usage_is_reported_once_from_the_last_chunk() {
    for case in stream_cases() {
        let (out, usage) = run(&case, &[&case.input]);
        let usage_chunks: Vec<Value> = events(&out)
            .into_iter()
            .map(|(_, d)| d)
            .filter(|d| d.get("usage").is_some())
            .collect();
        if case.include_usage && usage.is_some() && !case.name.contains("error") {
            assert_eq!(usage_chunks.len(), 1, "{}", case.name);
            assert_eq!(
                usage_chunks[0]["choices"],
                serde_json::json!([]),
                "{}",
                case.name
            );
        } else if !case.include_usage {
            assert!(usage_chunks.is_empty(), "{}", case.name);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// robustness: no input makes a converter panic

/// Prefixes, and copies with one byte flipped, of `input`.
fn mangled(input: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = (0..input.len()).map(|i| input[..i].to_vec()).collect();
    for i in (0..input.len()).step_by(7) {
        for b in [b'"', b'{', b']', b'\\', 0xff, b'\n'] {
            let mut m = input.to_vec();
            m[i] = b;
            out.push(m);
        }
    }
    out
}

#[test]
fn converters_survive_mangled_input() {
    let opts = GeminiOptions::default();
    for case in cases("request", ".in.json") {
        let input = read("request", &format!("{case}.in.json")).unwrap();
        for m in mangled(&input) {
            let _ = chat_request_to_gemini(&m, &opts);
        }
    }
    for case in cases("response", ".in.json") {
        let input = read("response", &format!("{case}.in.json")).unwrap();
        for m in mangled(&input) {
            let _ = gemini_response_to_chat(&m, MODEL, ID, CREATED);
            let _ = error_to_openai(500, &m);
        }
    }
    for case in cases("embeddings", ".request.json") {
        let input = read("embeddings", &format!("{case}.request.json")).unwrap();
        for m in mangled(&input) {
            let _ = embeddings_request_to_gemini(&m, "m");
        }
        if let Some(answer) = read("embeddings", &format!("{case}.answer.json")) {
            for m in mangled(&answer) {
                let _ = gemini_embeddings_to_openai_encoded(&m, "m", true, true);
                let _ = gemini_embeddings_to_openai_encoded(&m, "m", false, false);
            }
        }
    }
    for case in stream_cases() {
        for m in mangled(&case.input) {
            let (out, _) = run(&case, &[&m]);
            assert!(out.ends_with(crate::openai::DONE), "{}", case.name);
        }
    }
}
