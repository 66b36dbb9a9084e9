//! Table tests driven by the files under `testdata/bedrock/` (layout in its README.md).

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{json, Map, Value};

use super::eventstream::{EventStreamDecoder, HeaderValue, Message};
use super::*;
use crate::sse::SseParser;
use crate::stream::StreamConverter;
use crate::GatewayError;

const MODEL: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const ID: &str = "chatcmpl-test";
const CREATED: u64 = 1_700_000_000;

fn dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/bedrock")
        .join(sub)
}

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

fn options(v: Option<Value>) -> BedrockOptions {
    let v = v.unwrap_or(Value::Null);
    BedrockOptions {
        additional_fields: v
            .get("additional_fields")
            .and_then(Value::as_object)
            .cloned(),
        default_max_tokens: v
            .get("default_max_tokens")
            .and_then(Value::as_u64)
            .map(|n| u32::try_from(n).unwrap()),
    }
}

#[test]
fn chat_requests() {
    for case in cases("request", ".in.json") {
        let input = read("request", &format!("{case}.in.json")).unwrap();
        let opts = options(read_json("request", &format!("{case}.opts.json")));
        let got = chat_request_to_converse(&input, &opts);
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
        let got = converse_response_to_chat(&input, MODEL, ID, CREATED);
        if let Some(want) = read_json("response", &format!("{case}.error.json")) {
            assert_error(&case, &got.expect_err(&case), &want);
        } else {
            let want = read_json("response", &format!("{case}.out.json"))
                .unwrap_or_else(|| panic!("{case}: no .out.json or .error.json"));
            let (body, usage) = got.unwrap();
            let got: Value = serde_json::from_slice(&body).unwrap();
            assert_json(&case, &got, &want);
            assert_eq!(usage.to_openai_json(), got["usage"], "{case}");
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
        let error_type = c.get("errortype").and_then(Value::as_str);
        let (got_status, got) = error_to_openai(status, error_type, body.as_bytes());
        assert_eq!(
            u64::from(got_status),
            c["expected_status"].as_u64().unwrap(),
            "{name}"
        );
        let got: Value = serde_json::from_slice(&got).unwrap();
        assert_json(name, &got, &c["expected"]);
    }
}

#[test]
fn model_paths() {
    let table = read_json("", "model_paths.json").unwrap();
    for c in table.as_array().unwrap() {
        let model = c["model"].as_str().unwrap();
        let stream = c["stream"].as_bool().unwrap_or(false);
        match c.get("path").and_then(Value::as_str) {
            Some(path) => assert_eq!(converse_path(model, stream).unwrap(), path, "{model:?}"),
            None => assert!(converse_path(model, stream).is_err(), "{model:?}"),
        }
    }
}

/// AWS's event-stream codec test vectors (smithy eventstream-codec `test_vectors`, also in
/// aws-c-event-stream): decoded whole and at every split; the corrupted ones are refused.
#[test]
fn aws_event_stream_vectors() {
    let vectors = read_json("", "eventstream_vectors.json").unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    for (name, v) in vectors.as_object().unwrap() {
        if name.starts_with('_') {
            continue;
        }
        let bytes = b64.decode(v["base64"].as_str().unwrap()).unwrap();
        let (msgs, err) = EventStreamDecoder::new().push(&bytes);
        match v.get("error").and_then(Value::as_str) {
            Some(kind) => {
                let err = err.unwrap_or_else(|| panic!("{name}: accepted"));
                assert!(format!("{err:?}").starts_with(kind), "{name}: {err:?}");
                assert!(msgs.is_empty(), "{name}");
            }
            None => {
                assert_eq!(err, None, "{name}");
                assert_eq!(msgs.len(), 1, "{name}");
                let m = &msgs[0];
                assert_eq!(
                    String::from_utf8_lossy(&m.payload),
                    v["payload"].as_str().unwrap(),
                    "{name}"
                );
                let headers: Map<String, Value> = m
                    .headers
                    .iter()
                    .map(|(n, h)| (n.clone(), header_json(h)))
                    .collect();
                assert_json(name, &Value::Object(headers), &v["headers"]);
                // Our encoder writes the same bytes.
                assert_eq!(m.encode().unwrap(), bytes, "{name}: re-encoded");
                for split in 0..bytes.len() {
                    let mut d = EventStreamDecoder::new();
                    let (mut a, e1) = d.push(&bytes[..split]);
                    let (b, e2) = d.push(&bytes[split..]);
                    a.extend(b);
                    assert_eq!((e1, e2), (None, None), "{name} split {split}");
                    assert_eq!(a, msgs, "{name} split {split}");
                }
            }
        }
    }
}

fn header_json(h: &HeaderValue) -> Value {
    match h {
        HeaderValue::Bool(b) => json!(b),
        HeaderValue::Byte(n) => json!(n),
        HeaderValue::Short(n) => json!(n),
        HeaderValue::Integer(n) => json!(n),
        HeaderValue::Long(n) => json!(n),
        HeaderValue::Timestamp(n) => json!({ "timestamp": n }),
        HeaderValue::Bytes(b) => json!({ "bytes": String::from_utf8_lossy(b) }),
        HeaderValue::String(s) => json!(s),
        HeaderValue::Uuid(u) => json!({ "uuid": u.to_vec() }),
    }
}

// ---------------------------------------------------------------------------------------------
// streams: `<case>.in.json` lists messages, encoded here into event-stream frames.

/// Encode a stream description: `[{"event": type, "payload": {...}}, {"exception": type,
/// "payload": {...}}, {"raw": "<base64>"}]` into event-stream bytes.
pub(super) fn encode_stream(desc: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    for item in desc.as_array().unwrap() {
        if let Some(raw) = item.get("raw").and_then(Value::as_str) {
            out.extend(
                base64::engine::general_purpose::STANDARD
                    .decode(raw)
                    .unwrap(),
            );
            continue;
        }
        let payload = item["payload"].to_string().into_bytes();
        let s = |v: &str| HeaderValue::String(v.into());
        let headers = if let Some(kind) = item.get("event").and_then(Value::as_str) {
            vec![
                (":event-type".into(), s(kind)),
                (":content-type".into(), s("application/json")),
                (":message-type".into(), s("event")),
            ]
        } else {
            let kind = item["exception"].as_str().unwrap();
            vec![
                (":exception-type".into(), s(kind)),
                (":content-type".into(), s("application/json")),
                (":message-type".into(), s("exception")),
            ]
        };
        out.extend(Message { headers, payload }.encode().unwrap());
    }
    out
}

struct StreamCase {
    name: String,
    input: Vec<u8>,
    include_usage: bool,
    anthropic: bool,
    expected: Vec<u8>,
}

fn stream_cases() -> Vec<StreamCase> {
    cases("stream", ".out.sse")
        .into_iter()
        .map(|name| {
            let opts = read_json("stream", &format!("{name}.opts.json")).unwrap_or(Value::Null);
            let input_file = opts
                .get("input")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{name}.in.json"));
            let desc = read_json("stream", &input_file)
                .unwrap_or_else(|| panic!("{name}: missing {input_file}"));
            let mut input = encode_stream(&desc);
            if let Some(cut) = opts.get("truncate").and_then(Value::as_u64) {
                input.truncate(input.len() - usize::try_from(cut).unwrap());
            }
            StreamCase {
                input,
                include_usage: opts["include_usage"].as_bool().unwrap_or(false),
                anthropic: opts["anthropic"].as_bool().unwrap_or(false),
                expected: read("stream", &format!("{name}.out.sse")).unwrap(),
                name,
            }
        })
        .collect()
}

fn converter(case: &StreamCase) -> Box<dyn StreamConverter> {
    if case.anthropic {
        Box::new(ConverseStreamToMessages::new(MODEL, "msg_test", CREATED))
    } else {
        Box::new(ConverseStreamToChat::new(
            MODEL,
            ID,
            CREATED,
            case.include_usage,
        ))
    }
}

fn run(case: &StreamCase, pieces: &[&[u8]]) -> (Vec<u8>, Option<crate::Usage>) {
    let mut c = converter(case);
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
        if std::env::var_os("BLESS").is_some() {
            fs::write(dir("stream").join(format!("{}.out.sse", case.name)), &got).unwrap();
            continue;
        }
        let got_events = events(&got);
        let want_events = events(&case.expected);
        let show = |evs: &[(Option<String>, Value)]| {
            evs.iter()
                .map(|(e, d)| format!("{} {d}", e.as_deref().unwrap_or("-")))
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
    }
}

#[test]
fn stream_usage_chunk_is_sent_once_and_only_when_asked() {
    for case in stream_cases().into_iter().filter(|c| !c.anthropic) {
        let (out, _) = run(&case, &[&case.input]);
        let usage_chunks: Vec<Value> = events(&out)
            .into_iter()
            .map(|(_, d)| d)
            .filter(|d| d.get("usage").is_some())
            .collect();
        let done = out.ends_with(crate::openai::DONE);
        if case.include_usage && done {
            assert_eq!(usage_chunks.len(), 1, "{}", case.name);
            assert_eq!(usage_chunks[0]["choices"], json!([]), "{}", case.name);
        } else if !case.include_usage {
            assert!(usage_chunks.is_empty(), "{}", case.name);
        }
    }
}

/// Prefixes, and copies with one byte flipped, of `input` (a sample of positions: the fuzz
/// targets `bedrock_*` cover the rest).
fn mangled(input: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = (0..input.len())
        .step_by(3)
        .map(|i| input[..i].to_vec())
        .collect();
    for i in (0..input.len()).step_by(11) {
        for b in [b'"', b'{', 0x00, 0xff, b'\n'] {
            let mut m = input.to_vec();
            m[i] = b;
            out.push(m);
        }
    }
    out
}

#[test]
fn converters_survive_mangled_input() {
    let opts = BedrockOptions::default();
    for case in cases("request", ".in.json") {
        let input = read("request", &format!("{case}.in.json")).unwrap();
        for m in mangled(&input) {
            let _ = chat_request_to_converse(&m, &opts);
        }
    }
    for case in cases("response", ".in.json") {
        let input = read("response", &format!("{case}.in.json")).unwrap();
        for m in mangled(&input) {
            let _ = converse_response_to_chat(&m, MODEL, ID, CREATED);
            let _ = error_to_openai(400, None, &m);
        }
    }
    for case in stream_cases() {
        for m in mangled(&case.input) {
            let (out, _) = run(&case, &[&m]);
            // Whatever came in, the client gets complete SSE events.
            assert!(out.is_empty() || out.ends_with(b"\n\n"), "{}", case.name);
        }
    }
}

#[test]
fn anthropic_clients_chain_through_chat() {
    let body = br#"{"model":"claude","max_tokens":100,"system":"Be brief",
        "messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}]}"#;
    let got: Value = serde_json::from_slice(
        &messages_request_to_converse(body, &BedrockOptions::default()).unwrap(),
    )
    .unwrap();
    assert_json(
        "messages request",
        &got,
        &json!({"messages":[{"role":"user","content":[{"text":"Hi"}]}],
                "system":[{"text":"Be brief"}],"inferenceConfig":{"maxTokens":100}}),
    );
    let answer = read("response", "text.in.json").unwrap();
    let (msg, usage) = converse_response_to_messages(&answer, MODEL, "msg_1", CREATED).unwrap();
    let msg: Value = serde_json::from_slice(&msg).unwrap();
    assert_eq!(msg["type"], "message");
    assert_eq!(msg["stop_reason"], "end_turn");
    assert_eq!(msg["content"][0]["type"], "text");
    assert_eq!(msg["usage"]["input_tokens"], usage.prompt_tokens);
    let (status, err) = error_to_anthropic(
        400,
        Some("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
        br#"{"message":"Too many requests, please wait before trying again."}"#,
    );
    let err: Value = serde_json::from_slice(&err).unwrap();
    assert_eq!(status, 429);
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["type"], "rate_limit_error");
}
