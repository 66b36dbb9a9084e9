//! Table tests over the fixtures in `testdata/anthropic/`.
//!
//! Layout, per direction (`openai_to_anthropic/`, `anthropic_to_openai/`):
//! - `request/<case>.in.json` -> `<case>.out.json` (the upstream request) or
//!   `<case>.error.json` (`{"status", "code", "param", "message_contains"}`);
//! - `response/<case>.in.json` -> `<case>.out.json` or `<case>.error.json`;
//! - `error/<case>.json`: `{"status", "body": "<raw upstream bytes>", "expected": {...}}`;
//! - `stream/<case>.in.sse` -> `<case>.out.sse`, with an optional `<case>.meta.json`
//!   (`include_usage`, expected `usage`).
//!
//! JSON is compared as values (key order is irrelevant); streams as parsed event sequences
//! (event name + JSON data). `SWITCHYARD_BLESS=1 cargo test` writes missing or changed
//! expected files; review every one before committing.

use super::*;
use crate::error::GatewayError;
use crate::sse::SseParser;
use crate::stream::{StreamConverter, Usage};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

const CREATED: u64 = 1_700_000_000;
const ID_FALLBACK: &str = "chatcmpl-gateway";

fn dir(parts: &[&str]) -> PathBuf {
    let mut p = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/anthropic");
    for part in parts {
        p.push(part);
    }
    p
}

fn bless() -> bool {
    std::env::var_os("SWITCHYARD_BLESS").is_some()
}

/// Case names in `dir`: file names up to the first `.`.
fn cases(dir: &Path) -> BTreeSet<String> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            Some(name.split('.').next()?.to_owned())
        })
        .collect()
}

fn read(path: &Path) -> Option<Vec<u8>> {
    fs::read(path).ok()
}

fn json(bytes: &[u8], what: &str) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "{what} is not JSON ({e}): {}",
            String::from_utf8_lossy(bytes)
        )
    })
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

/// Compare `got` with `<case>.out.json`, or write it when blessing.
fn check_json(case_dir: &Path, case: &str, got: &Value) {
    let path = case_dir.join(format!("{case}.out.json"));
    match read(&path) {
        Some(expected) if json(&expected, "expected") == *got => {}
        _ if bless() => fs::write(&path, pretty(got)).unwrap(),
        Some(expected) => panic!(
            "{}: mismatch\n--- expected\n{}--- got\n{}",
            path.display(),
            pretty(&json(&expected, "expected")),
            pretty(got)
        ),
        None => panic!("{}: missing expected file", path.display()),
    }
}

fn check_error(case_dir: &Path, case: &str, err: &GatewayError) {
    let path = case_dir.join(format!("{case}.error.json"));
    let got = serde_json::json!({
        "status": err.status(),
        "code": err.code,
        "param": err.param,
        "message_contains": err.message,
    });
    let Some(expected) = read(&path) else {
        if bless() {
            fs::write(&path, pretty(&got)).unwrap();
            return;
        }
        panic!("{}: unexpected error {err:?}", path.display());
    };
    let expected = json(&expected, "expected error");
    assert_eq!(expected["status"], got["status"], "{case}: status");
    assert_eq!(expected["code"], got["code"], "{case}: code");
    assert_eq!(expected["param"], got["param"], "{case}: param");
    let needle = expected["message_contains"].as_str().unwrap_or_default();
    assert!(
        err.message.contains(needle),
        "{case}: message {:?} does not contain {needle:?}",
        err.message
    );
    // The body a client gets is OpenAI's error shape.
    let body = json(&err.body(), "error body");
    assert_eq!(body["error"]["message"], err.message.as_str());
}

/// Run a bytes -> Result<bytes> translator over every `<case>.in.json` in `case_dir`.
fn run_json_cases(
    case_dir: &Path,
    min_cases: usize,
    translate: impl Fn(&[u8]) -> Result<Vec<u8>, GatewayError>,
) {
    let names = cases(case_dir);
    assert!(
        names.len() >= min_cases,
        "{}: too few cases",
        case_dir.display()
    );
    for case in names {
        let input = read(&case_dir.join(format!("{case}.in.json")))
            .unwrap_or_else(|| panic!("{case}: missing .in.json"));
        match translate(&input) {
            Ok(out) => {
                assert!(
                    !case_dir.join(format!("{case}.error.json")).exists(),
                    "{case}: expected an error, got {}",
                    String::from_utf8_lossy(&out)
                );
                check_json(case_dir, &case, &json(&out, "translator output"));
            }
            Err(err) => check_error(case_dir, &case, &err),
        }
        // Truncated input never panics, and is an error rather than garbage.
        for cut in [1, input.len() / 2, input.len().saturating_sub(2)] {
            if let Some(prefix) = input.get(..cut) {
                assert!(translate(prefix).is_err(), "{case}: prefix {cut} accepted");
            }
        }
    }
}

fn run_error_cases(case_dir: &Path, min_cases: usize, translate: impl Fn(u16, &[u8]) -> Vec<u8>) {
    let names = cases(case_dir);
    assert!(
        names.len() >= min_cases,
        "{}: too few cases",
        case_dir.display()
    );
    for case in names {
        let case_file = case_dir.join(format!("{case}.json"));
        let spec = json(&read(&case_file).unwrap(), "error case");
        let status = spec["status"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .unwrap();
        let body = spec["body"].as_str().unwrap();
        let got = json(&translate(status, body.as_bytes()), "error output");
        assert_eq!(got, spec["expected"], "{case}");
    }
}

// ------------------------------------------------------------------------------------------
// Streams
// ------------------------------------------------------------------------------------------

/// A stream as (event name, data) pairs; data parsed as JSON where it is JSON.
fn events(bytes: &[u8]) -> Vec<(Option<String>, Value)> {
    let mut parser = SseParser::new();
    let mut events = parser.push(bytes);
    events.extend(parser.finish());
    events
        .into_iter()
        .map(|e| {
            let data =
                serde_json::from_str(&e.data).unwrap_or_else(|_| Value::String(e.data.clone()));
            (e.event, data)
        })
        .collect()
}

fn render(events: &[(Option<String>, Value)]) -> String {
    events
        .iter()
        .map(|(name, data)| format!("{name:?} {data}\n"))
        .collect()
}

fn convert(mut conv: Box<dyn StreamConverter>, pieces: &[&[u8]]) -> (Vec<u8>, Option<Usage>) {
    let mut out = Vec::new();
    for piece in pieces {
        out.extend(conv.push(piece));
    }
    out.extend(conv.finish());
    (out, conv.usage())
}

struct StreamCase {
    name: String,
    input: Vec<u8>,
    meta: Value,
}

fn stream_cases(case_dir: &Path, min_cases: usize) -> Vec<StreamCase> {
    let names = cases(case_dir);
    assert!(
        names.len() >= min_cases,
        "{}: too few cases",
        case_dir.display()
    );
    names
        .into_iter()
        .map(|name| {
            let meta = read(&case_dir.join(format!("{name}.meta.json")))
                .map(|m| json(&m, "meta"))
                .unwrap_or(Value::Null);
            let input_name = meta["input"].as_str().unwrap_or(&name).to_owned();
            let input = read(&case_dir.join(format!("{input_name}.in.sse")))
                .unwrap_or_else(|| panic!("{name}: missing {input_name}.in.sse"));
            StreamCase { name, input, meta }
        })
        .collect()
}

fn run_stream_cases(
    case_dir: &Path,
    min_cases: usize,
    make: impl Fn(&Value) -> Box<dyn StreamConverter>,
    ends_well: impl Fn(&[u8]) -> bool,
) {
    for case in stream_cases(case_dir, min_cases) {
        let name = &case.name;
        let (out, usage) = convert(make(&case.meta), &[&case.input]);
        let got = events(&out);
        let path = case_dir.join(format!("{name}.out.sse"));
        match read(&path) {
            Some(expected) if events(&expected) == got => {}
            _ if bless() => fs::write(&path, &out).unwrap(),
            Some(expected) => panic!(
                "{}: mismatch\n--- expected\n{}--- got\n{}",
                path.display(),
                render(&events(&expected)),
                render(&got)
            ),
            None => panic!("{}: missing expected file", path.display()),
        }
        if let Some(expected_usage) = case.meta.get("usage") {
            let got_usage = serde_json::to_value(usage).unwrap();
            assert_eq!(&got_usage, expected_usage, "{name}: usage()");
        }

        // Same bytes whatever the pieces: split at every offset, and byte by byte.
        for at in 0..=case.input.len() {
            let (a, b) = case.input.split_at(at);
            let (split, _) = convert(make(&case.meta), &[a, b]);
            assert_eq!(split, out, "{name}: split at {at}");
        }
        let bytes: Vec<&[u8]> = case.input.chunks(1).collect();
        assert_eq!(
            convert(make(&case.meta), &bytes).0,
            out,
            "{name}: byte by byte"
        );

        // An upstream cut anywhere still gives the client a well-ended stream.
        for at in 0..case.input.len() {
            let (cut, _) = convert(make(&case.meta), &[&case.input[..at]]);
            assert!(ends_well(&cut), "{name}: cut at {at} ends badly");
        }
    }
}

fn openai_stream_ends_well(out: &[u8]) -> bool {
    let evs = events(out);
    let Some((_, last)) = evs.last() else {
        return false;
    };
    let done_count = evs.iter().filter(|(_, d)| d == "[DONE]").count();
    (last == "[DONE]" && done_count == 1) || (last.get("error").is_some() && done_count == 0)
}

fn anthropic_stream_ends_well(out: &[u8]) -> bool {
    let evs = events(out);
    let named = evs
        .iter()
        .all(|(name, data)| name.as_deref().is_some() && name.as_deref() == data["type"].as_str());
    let last = evs.last().and_then(|(n, _)| n.as_deref());
    named && matches!(last, Some("message_stop" | "error"))
}

// ------------------------------------------------------------------------------------------
// OpenAI client -> Anthropic vendor
// ------------------------------------------------------------------------------------------

#[test]
fn openai_to_anthropic_requests() {
    let opts = ClaudeOptions::default();
    run_json_cases(&dir(&["openai_to_anthropic", "request"]), 20, |b| {
        chat_request_to_messages(b, &opts)
    });
}

/// The same cases translated from a body parsed first (as the native filter does when it read
/// the request's facts from the same tree); bodies the strict scanner leaves go the usual way.
#[test]
fn openai_to_anthropic_requests_from_a_parsed_body() {
    let opts = ClaudeOptions::default();
    let parsed = std::cell::Cell::new(0);
    run_json_cases(&dir(&["openai_to_anthropic", "request"]), 20, |b| {
        match crate::openai_edit::ParsedRequest::parse(b) {
            Some(p) => {
                parsed.set(parsed.get() + 1);
                parsed_chat_request_to_messages_as(&p, &opts, None)
            }
            None => chat_request_to_messages(b, &opts),
        }
    });
    assert!(parsed.get() >= 15, "{} parsed", parsed.get());
}

#[test]
fn openai_to_anthropic_responses() {
    run_json_cases(&dir(&["openai_to_anthropic", "response"]), 6, |b| {
        messages_response_to_chat(b, ID_FALLBACK, CREATED)
    });
}

#[test]
fn openai_to_anthropic_errors() {
    run_error_cases(&dir(&["openai_to_anthropic", "error"]), 4, error_to_openai);
}

#[test]
fn openai_to_anthropic_streams() {
    run_stream_cases(
        &dir(&["openai_to_anthropic", "stream"]),
        7,
        |meta| {
            let include_usage = meta["include_usage"].as_bool().unwrap_or(false);
            Box::new(MessagesStreamToChat::new(include_usage, CREATED))
        },
        openai_stream_ends_well,
    );
}

// ------------------------------------------------------------------------------------------
// Anthropic client -> OpenAI-compatible vendor
// ------------------------------------------------------------------------------------------

#[test]
fn anthropic_to_openai_requests() {
    run_json_cases(
        &dir(&["anthropic_to_openai", "request"]),
        10,
        messages_request_to_chat,
    );
}

#[test]
fn anthropic_to_openai_responses() {
    run_json_cases(
        &dir(&["anthropic_to_openai", "response"]),
        6,
        chat_response_to_messages,
    );
}

#[test]
fn anthropic_to_openai_errors() {
    run_error_cases(
        &dir(&["anthropic_to_openai", "error"]),
        4,
        openai_error_to_anthropic,
    );
}

#[test]
fn anthropic_to_openai_streams() {
    run_stream_cases(
        &dir(&["anthropic_to_openai", "stream"]),
        6,
        |_| Box::new(ChatStreamToMessages::new()),
        anthropic_stream_ends_well,
    );
}
