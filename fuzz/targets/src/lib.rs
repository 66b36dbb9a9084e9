//! Bodies of Switchyard's fuzz targets, as plain functions of the fuzzer's bytes.
//!
//! `fuzz/fuzz_targets/*.rs` (cargo-fuzz, nightly) call these; the stable test in
//! `tests/corpus.rs` replays the committed seed corpus (`fuzz/seeds/<target>/`) through every
//! one of them, so `cargo test` catches a regression without a nightly toolchain. Besides "no
//! panic", each target checks properties that must hold for any input: translators emit JSON
//! or an OpenAI-shaped error with a fitting status, and stream parsers give the same output
//! however the bytes are cut into chunks.

#![allow(clippy::panic)] // A property violation must crash the fuzzer.

use serde_json::Value;
use switchyard_policy::{balancer::BalancerConfig, model_map::ModelMapping, proxy::ProxyConfig};
use switchyard_policy::{metrics, resp, rules::RuleSet};
use switchyard_protocol::anthropic::{self, ClaudeOptions};
use switchyard_protocol::bedrock::eventstream::{EventStreamDecoder, HeaderValue, Message};
use switchyard_protocol::bedrock::{self, BedrockOptions};
use switchyard_protocol::gemini::{self, GeminiOptions};
use switchyard_protocol::responses::{self, RequestEcho};
use switchyard_protocol::sse::{SseEvent, SseParser};
use switchyard_protocol::{json_field, openai_edit, GatewayError, StreamConverter};

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// Every target by name, in the order `cargo xtask fuzz` runs them.
pub const TARGETS: &[(&str, Target)] = &[
    ("sse", sse),
    ("openai_edit", openai_edit),
    ("openai_stream", openai_stream),
    ("json_field", json_field),
    ("claude_request", claude_request),
    ("claude_response", claude_response),
    ("claude_stream", claude_stream),
    ("anthropic_client_request", anthropic_client_request),
    ("anthropic_client_response", anthropic_client_response),
    ("anthropic_client_stream", anthropic_client_stream),
    ("gemini_request", gemini_request),
    ("gemini_response", gemini_response),
    ("gemini_stream", gemini_stream),
    ("bedrock_eventstream", bedrock_eventstream),
    ("bedrock_stream", bedrock_stream),
    ("bedrock_request", bedrock_request),
    ("bedrock_response", bedrock_response),
    ("responses_request", responses_request),
    ("responses_response", responses_response),
    ("responses_stream", responses_stream),
    ("responses_usage", responses_usage),
    ("proxy_config", proxy_config),
    ("balancer_config", balancer_config),
    ("model_mapping", model_mapping),
    ("resp", resp_reply),
    ("metrics", metric_replies),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Split the fuzzer's bytes into a chunking seed (first two bytes) and the payload, and cut
/// the payload into pieces whose lengths follow from the seed (1 to 64 bytes each).
fn chunked(data: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let (seed, payload) = match data {
        [a, b, rest @ ..] => (u32::from(*a) << 8 | u32::from(*b), rest),
        _ => (0, data),
    };
    let max = (seed & 0x3f) as usize + 1;
    let mut state = seed.wrapping_mul(2_654_435_761) | 1;
    let mut pieces = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state as usize % max + 1).min(rest.len());
        let (piece, tail) = rest.split_at(n);
        pieces.push(piece);
        rest = tail;
    }
    (pieces, payload)
}

/// A gateway error for client input must be a 4xx with an OpenAI-shaped JSON body.
fn check_client_error(e: &GatewayError) {
    let status = e.status();
    assert!(
        (400..500).contains(&status),
        "client input gave status {status}: {e:?}"
    );
    check_openai_error_body(&e.body());
}

fn check_openai_error_body(body: &[u8]) {
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|err| panic!("error body is not JSON ({err}): {body:?}"));
    assert!(
        v["error"]["message"].is_string(),
        "error body without a message: {v}"
    );
}

fn check_json(out: &[u8], what: &str) -> Value {
    serde_json::from_slice(out).unwrap_or_else(|e| {
        panic!(
            "{what} produced invalid JSON ({e}): {}",
            String::from_utf8_lossy(out)
        )
    })
}

fn parse_all(pieces: &[&[u8]]) -> Vec<SseEvent> {
    let mut p = SseParser::new();
    let mut out = Vec::new();
    for piece in pieces {
        p.push_into(piece, &mut out);
    }
    out.extend(p.finish());
    out
}

/// SSE parser: arbitrary bytes in arbitrary pieces give the same events as in one piece.
pub fn sse(data: &[u8]) {
    let (pieces, payload) = chunked(data);
    let whole = parse_all(&[payload]);
    let cut = parse_all(&pieces);
    assert_eq!(whole, cut, "chunking changed the events");
}

/// Feed a converter the pieces; return all it wrote.
fn drive(mut c: impl StreamConverter, pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in pieces {
        out.extend(c.push(piece));
    }
    out.extend(c.finish());
    let _ = c.usage();
    out
}

/// Run a stream converter over the whole payload and over the pieces: same bytes out.
fn stream_both<C: StreamConverter>(data: &[u8], make: impl Fn() -> C) {
    let (pieces, payload) = chunked(data);
    let whole = drive(make(), &[payload]);
    let cut = drive(make(), &pieces);
    assert!(
        whole == cut,
        "chunking changed the converted stream:\nwhole: {}\ncut:   {}",
        String::from_utf8_lossy(&whole),
        String::from_utf8_lossy(&cut)
    );
}

/// OpenAI request checks and edits (model, usage request, context injection).
pub fn openai_edit(data: &[u8]) {
    let (flags, body) = data.split_first().unwrap_or((&0, data));
    match openai_edit::validate(body, flags & 1 == 1) {
        Ok(_) => {}
        Err(e) => check_client_error(&e),
    }
    let edits = openai_edit::RequestEdits {
        model: (flags & 2 == 2).then_some("mapped-model"),
        model_spans: None,
        request_usage: flags & 4 == 4,
        context: (flags & 8 == 8).then_some("context \"text\"\n"),
    };
    // The model positions found by the facts pass splice exactly what a fresh parse would.
    if let Ok(facts) = openai_edit::request_facts(body, false) {
        let with_spans = openai_edit::RequestEdits {
            model_spans: Some(&facts.model_spans),
            ..edits.clone()
        };
        let a = openai_edit::apply(body, &with_spans).map_err(|e| e.code);
        let b = openai_edit::apply(body, &edits).map_err(|e| e.code);
        assert_eq!(a, b, "model spans from request_facts");
    }
    match openai_edit::apply(body, &edits) {
        Ok(Some(out)) => {
            if serde_json::from_slice::<Value>(body).is_ok_and(|v| v.is_object()) {
                check_json(&out, "openai_edit::apply");
            }
        }
        Ok(None) => {}
        Err(e) => check_client_error(&e),
    }
}

/// OpenAI stream pass-through with the usage filter.
pub fn openai_stream(data: &[u8]) {
    let wants = data.first().is_some_and(|b| b & 1 == 1);
    stream_both(data, || openai_edit::UsageFilter::new(wants));
}

/// Byte-exact top-level field edits (the balancer's model rewrite).
pub fn json_field(data: &[u8]) {
    let _ = json_field::top_level_value_spans(data, "model");
    let _ = json_field::top_level_string(data, "model");
    if let Some(out) = json_field::replace_top_level_string(data, "model", "new\"model\u{e9}") {
        let parsed = serde_json::from_slice::<Value>(data);
        if parsed.is_ok() {
            let v = check_json(&out, "replace_top_level_string");
            assert_eq!(v["model"], "new\"model\u{e9}", "{v}");
        }
        assert_eq!(
            json_field::top_level_string(&out, "model").as_deref(),
            Some("new\"model\u{e9}")
        );
    }
}

fn claude_options(flag: u8) -> ClaudeOptions {
    let mut o = ClaudeOptions::default();
    if flag & 1 == 1 {
        o.default_max_tokens = 1;
        o.thinking_budget_high = u32::MAX;
    }
    o
}

/// OpenAI chat request -> Anthropic Messages request.
pub fn claude_request(data: &[u8]) {
    let (flag, body) = data.split_first().unwrap_or((&0, data));
    match anthropic::chat_request_to_messages(body, &claude_options(*flag)) {
        Ok(out) => {
            check_json(&out, "chat_request_to_messages");
        }
        Err(e) => check_client_error(&e),
    }
}

/// Anthropic Messages response (and error) -> OpenAI.
pub fn claude_response(data: &[u8]) {
    if let Ok(out) = anthropic::messages_response_to_chat(data, "chatcmpl-x", 1) {
        check_json(&out, "messages_response_to_chat");
    }
    for status in [400, 429, 500, 529] {
        check_openai_error_body(&anthropic::error_to_openai(status, data));
    }
}

/// Anthropic Messages stream -> OpenAI chunks.
pub fn claude_stream(data: &[u8]) {
    let usage = data.get(2).is_some_and(|b| b & 1 == 1);
    stream_both(data, || anthropic::MessagesStreamToChat::new(usage, 1));
}

/// Anthropic client request -> OpenAI chat request.
pub fn anthropic_client_request(data: &[u8]) {
    match anthropic::messages_request_to_chat(data) {
        Ok(out) => {
            check_json(&out, "messages_request_to_chat");
        }
        Err(e) => check_client_error(&e),
    }
}

/// OpenAI chat response (and error) -> Anthropic client.
pub fn anthropic_client_response(data: &[u8]) {
    if let Ok(out) = anthropic::chat_response_to_messages(data) {
        check_json(&out, "chat_response_to_messages");
    }
    for status in [400, 404, 500] {
        let out = anthropic::openai_error_to_anthropic(status, data);
        let v = check_json(&out, "openai_error_to_anthropic");
        assert!(v["error"]["message"].is_string(), "{v}");
    }
}

/// OpenAI chunks -> Anthropic Messages stream.
pub fn anthropic_client_stream(data: &[u8]) {
    stream_both(data, anthropic::ChatStreamToMessages::new);
}

/// OpenAI chat and embeddings requests -> Gemini, and the model in the path.
pub fn gemini_request(data: &[u8]) {
    let (flag, body) = data.split_first().unwrap_or((&0, data));
    let opts = GeminiOptions {
        safety_settings: (flag & 1 == 1)
            .then(|| serde_json::json!({"HARM_CATEGORY_HARASSMENT": "BLOCK_NONE"})),
        thinking_budget: (flag & 2 == 2).then_some(-1),
    };
    match gemini::chat_request_to_gemini(body, &opts) {
        Ok(out) => {
            check_json(&out, "chat_request_to_gemini");
        }
        Err(e) => check_client_error(&e),
    }
    match gemini::embeddings_request_to_gemini(body, "text-embedding-004") {
        Ok((_, out)) => {
            check_json(&out, "embeddings_request_to_gemini");
        }
        Err(e) => check_client_error(&e),
    }
    // Whatever the model name, an accepted one cannot change the path's structure.
    let model = String::from_utf8_lossy(body);
    for stream in [false, true] {
        match gemini::model_path(&model, stream) {
            Ok(path) => {
                let rest = path
                    .strip_prefix("/v1beta/")
                    .unwrap_or_else(|| panic!("{path}"));
                let (resource, method) = rest.split_once(':').unwrap_or_else(|| panic!("{path}"));
                assert!(
                    resource
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"-._/".contains(&c)),
                    "{path}"
                );
                assert!(!resource.contains(".."), "{path}");
                assert!(resource.matches('/').count() == 1, "{path}");
                assert!(
                    method.starts_with("generateContent")
                        || method.starts_with("streamGenerateContent"),
                    "{path}"
                );
            }
            Err(e) => check_client_error(&e),
        }
    }
    if let Err(e) = gemini::embed_path(&model, true) {
        check_client_error(&e);
    }
}

/// Gemini responses, embeddings and errors -> OpenAI.
pub fn gemini_response(data: &[u8]) {
    if let Ok(out) = gemini::gemini_response_to_chat(data, "gemini-2.5-flash", "chatcmpl-x", 1) {
        check_json(&out, "gemini_response_to_chat");
    }
    for (batch, b64) in [(false, false), (true, true)] {
        if let Ok(out) = gemini::gemini_embeddings_to_openai_encoded(data, "m", batch, b64) {
            check_json(&out, "gemini_embeddings_to_openai");
        }
    }
    for status in [400, 403, 429, 500] {
        check_openai_error_body(&gemini::error_to_openai(status, data));
    }
}

/// Gemini stream (SSE or JSON array) -> OpenAI chunks.
pub fn gemini_stream(data: &[u8]) {
    let usage = data.get(2).is_some_and(|b| b & 1 == 1);
    stream_both(data, || {
        gemini::GeminiStreamToChat::new("gemini-2.5-flash", "chatcmpl-x", 1, usage)
    });
}

/// AWS event-stream decoding: the same messages (and the same failure) however the bytes
/// are cut, and the decoded messages re-encode to exactly the bytes they came from.
pub fn bedrock_eventstream(data: &[u8]) {
    let (pieces, payload) = chunked(data);
    let decode = |pieces: &[&[u8]]| {
        let mut d = EventStreamDecoder::with_max_message_len(1 << 16);
        let mut out = Vec::new();
        let mut failed = false;
        for p in pieces {
            if d.push_into(p, &mut out).is_err() {
                failed = true;
                break;
            }
        }
        let failed = failed || d.finish().is_err();
        (out, failed)
    };
    let (whole, whole_failed) = decode(&[payload]);
    let (cut, cut_failed) = decode(&pieces);
    assert!(whole == cut, "chunking changed the decoded messages");
    assert_eq!(
        whole_failed, cut_failed,
        "chunking changed whether decoding failed"
    );
    let mut again = Vec::new();
    for m in &whole {
        again.extend(
            m.encode()
                .unwrap_or_else(|| panic!("decoded message does not re-encode")),
        );
    }
    assert!(
        payload.starts_with(&again),
        "decoded messages re-encode to other bytes"
    );
}

/// Bedrock ConverseStream -> OpenAI chunks and Anthropic events. The bytes are fed as they
/// are (mostly CRC failures), and also read as lines `<event-type> <json payload>` (`!type`
/// for an exception) framed with valid CRCs, so mutations reach the converters' logic.
pub fn bedrock_stream(data: &[u8]) {
    let usage = data.get(2).is_some_and(|b| b & 1 == 1);
    let run = |data: &[u8]| {
        stream_both(data, || {
            bedrock::ConverseStreamToChat::new("anthropic.claude-v2:1", "chatcmpl-x", 1, usage)
        });
        stream_both(data, || {
            bedrock::ConverseStreamToMessages::new("m", "msg_x", 1)
        });
    };
    run(data);
    let (prefix, payload) = data.split_at(data.len().min(2));
    let mut framed = prefix.to_vec();
    for line in payload.split(|b| *b == b'\n') {
        let text = String::from_utf8_lossy(line);
        let (kind, json) = text.split_once(' ').unwrap_or((&text, "{}"));
        let s = |v: &str| HeaderValue::String(v.to_owned());
        let headers = match kind.strip_prefix('!') {
            Some(exception) => vec![
                (":exception-type".to_owned(), s(exception)),
                (":message-type".to_owned(), s("exception")),
            ],
            None => vec![
                (":event-type".to_owned(), s(kind)),
                (":message-type".to_owned(), s("event")),
            ],
        };
        let message = Message {
            headers,
            payload: json.as_bytes().to_vec(),
        };
        if let Some(bytes) = message.encode() {
            framed.extend(bytes);
        }
    }
    run(&framed);
}

/// OpenAI chat request -> Converse request, and the model in the path.
pub fn bedrock_request(data: &[u8]) {
    let (flag, body) = data.split_first().unwrap_or((&0, data));
    let opts = BedrockOptions {
        additional_fields: (flag & 1 == 1)
            .then(|| serde_json::Map::from_iter([("top_k".to_owned(), Value::from(5))])),
        default_max_tokens: (flag & 2 == 2).then_some(1024),
    };
    match bedrock::chat_request_to_converse(body, &opts) {
        Ok(out) => {
            check_json(&out, "chat_request_to_converse");
        }
        Err(e) => check_client_error(&e),
    }
    match bedrock::messages_request_to_converse(body, &opts) {
        Ok(out) => {
            check_json(&out, "messages_request_to_converse");
        }
        Err(e) => check_client_error(&e),
    }
    // Whatever the model id, an accepted one is one encoded path segment.
    let model = String::from_utf8_lossy(body);
    for stream in [false, true] {
        match bedrock::converse_path(&model, stream) {
            Ok(path) => {
                let rest = path
                    .strip_prefix("/model/")
                    .unwrap_or_else(|| panic!("{path}"));
                let (segment, method) = rest.rsplit_once('/').unwrap_or_else(|| panic!("{path}"));
                assert!(
                    method == "converse" || method == "converse-stream",
                    "{path}"
                );
                assert!(
                    segment
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"-._~%".contains(&c)),
                    "{path}"
                );
            }
            Err(e) => check_client_error(&e),
        }
    }
}

/// Converse response and Bedrock errors -> OpenAI (and Anthropic) shapes.
pub fn bedrock_response(data: &[u8]) {
    match bedrock::converse_response_to_chat(data, "m", "chatcmpl-x", 1) {
        Ok((out, _)) => {
            check_json(&out, "converse_response_to_chat");
        }
        Err(e) => assert_eq!(e.status(), 502, "{e:?}"),
    }
    let text = String::from_utf8_lossy(data);
    for (status, error_type) in [
        (400, None),
        (429, Some("ThrottlingException:x")),
        (500, Some(text.as_ref())),
    ] {
        let (status, out) = bedrock::error_to_openai(status, error_type, data);
        assert!(status >= 400, "status {status}");
        let v = check_json(&out, "bedrock::error_to_openai");
        assert!(v["error"]["message"].is_string(), "{v}");
    }
}

/// Responses request -> chat request, and on through the Claude and Gemini chat translators:
/// whatever the Responses translator accepts, the next step answers with a request or a 4xx.
pub fn responses_request(data: &[u8]) {
    responses_context(data);
    match responses::responses_request_to_chat(data) {
        Ok(converted) => {
            check_json(&converted.body, "responses_request_to_chat");
            if let Err(e) = anthropic::chat_request_to_messages(&converted.body, &claude_options(0))
            {
                check_client_error(&e);
            }
            if let Err(e) =
                gemini::chat_request_to_gemini(&converted.body, &GeminiOptions::default())
            {
                check_client_error(&e);
            }
            let echo = converted.echo;
            let answer =
                br#"{"choices":[{"index":0,"message":{"content":"x"},"finish_reason":"stop"}]}"#;
            match responses::chat_response_to_responses(answer, &echo, "resp_x", 1) {
                Ok(out) => {
                    check_json(&out, "chat_response_to_responses with the request's echo");
                }
                Err(e) => panic!("a plain answer failed with the request's echo: {e:?}"),
            }
        }
        Err(e) => {
            check_client_error(&e);
            assert_eq!(
                responses::check_convertible(data).map_err(|e| e.code),
                Err(e.code),
                "check_convertible disagrees with the converter"
            );
        }
    }
}

/// Context injection into a Responses request passed through to OpenAI.
fn responses_context(data: &[u8]) {
    match responses::insert_context(data, "context \"text\"\n") {
        Ok(out) => {
            let v = check_json(&out, "insert_context");
            assert_eq!(v["input"][0]["role"], "system", "{v}");
        }
        Err(e) => check_client_error(&e),
    }
}

/// Chat completion -> Responses object; Responses body usage reader.
pub fn responses_response(data: &[u8]) {
    let echo = RequestEcho::for_model("m");
    if let Ok((out, usage)) =
        responses::chat_response_to_responses_with_usage(data, &echo, "resp_x", 1)
    {
        let v = check_json(&out, "chat_response_to_responses");
        assert_eq!(v["object"], "response", "{v}");
        assert_eq!(responses::usage_from_response_body(&out), usage, "{v}");
    }
    let _ = responses::usage_from_response_body(data);
}

/// Chat chunks -> Responses events: the same bytes however the input is cut, and a stream
/// the SDKs accept: named events, sequence numbers 0, 1, 2, ..., `response.created` first and
/// one terminal event, last.
pub fn responses_stream(data: &[u8]) {
    let echo = RequestEcho::for_model("m");
    stream_both(data, || {
        responses::ChatStreamToResponses::new(&echo, "resp_x", 1)
    });
    let (_, payload) = chunked(data);
    let out = drive(
        responses::ChatStreamToResponses::new(&echo, "resp_x", 1),
        &[payload],
    );
    let events = parse_all(&[&out]);
    for (i, e) in events.iter().enumerate() {
        let v = check_json(e.data.as_bytes(), "responses event");
        assert_eq!(
            e.event.as_deref(),
            v["type"].as_str(),
            "event name vs type: {v}"
        );
        assert_eq!(v["sequence_number"], i, "sequence number: {v}");
    }
    let terminal = |e: &SseEvent| {
        matches!(
            e.event.as_deref(),
            Some("response.completed" | "response.incomplete" | "response.failed")
        )
    };
    assert_eq!(
        events.first().and_then(|e| e.event.as_deref()),
        Some("response.created")
    );
    assert_eq!(
        events.iter().filter(|e| terminal(e)).count(),
        1,
        "terminal events"
    );
    assert!(
        events.last().is_some_and(terminal),
        "terminal event not last"
    );
}

/// Pass-through Responses stream: bytes unchanged, usage the same however the input is cut.
pub fn responses_usage(data: &[u8]) {
    let (pieces, payload) = chunked(data);
    let mut whole = responses::ResponsesUsageTap::new();
    let out = drive_ref(&mut whole, &[payload]);
    assert_eq!(out, payload, "the usage tap changed the stream");
    let mut cut = responses::ResponsesUsageTap::new();
    let _ = drive_ref(&mut cut, &pieces);
    assert_eq!(whole.usage(), cut.usage(), "chunking changed the usage");
}

/// [`drive`] keeping the converter, to ask it for usage afterwards.
fn drive_ref(c: &mut impl StreamConverter, pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in pieces {
        out.extend(c.push(piece));
    }
    out.extend(c.finish());
    out
}

/// ai-proxy plugin config with `_rules_`.
pub fn proxy_config(data: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        if let Ok(set) = RuleSet::parse(&v, ProxyConfig::from_json) {
            for cfg in set.all() {
                for id in [None, Some("a"), Some("")] {
                    if let Some(p) = cfg.provider_for(id) {
                        let _ = p.token(usize::MAX);
                        let _ = p.token(0);
                        if let Some(t) = p.token(1) {
                            let _ = p.auth_header(t);
                        }
                        let _ = p.config.model_mapping.map("gpt-4o");
                    }
                }
            }
        }
    }
}

/// ai-load-balancer plugin config with `_rules_`, and the metric fetches it plans.
pub fn balancer_config(data: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        if let Ok(set) = RuleSet::parse(&v, BalancerConfig::from_json) {
            for cfg in set.all() {
                let _ = cfg.is_alias("auto");
                for fetch in metrics::fetch_plan(cfg) {
                    let _ = fetch.parser.parse(b"# nothing\n");
                }
                for i in 0..4 {
                    let _ = metrics::cache_key(cfg, i);
                }
            }
        }
    }
}

/// Model mapping: `pattern=target` lines, then lookups of each line's text.
pub fn model_mapping(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let pairs: Vec<(String, String)> = text
        .lines()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect();
    if let Ok(m) = ModelMapping::from_pairs(pairs.clone()) {
        for (k, _) in &pairs {
            let _ = m.map(k);
            let _ = m.names(k);
        }
        let _ = m.map("gpt-4o");
        let _ = m.map("");
    }
}

/// RESP replies (Higress Redis host calls).
pub fn resp_reply(data: &[u8]) {
    if let Some((_, used)) = resp::decode(data) {
        assert!(
            used > 0 && used <= data.len(),
            "consumed {used} of {}",
            data.len()
        );
    }
    let _ = resp::decode_mget(data);
}

/// Metric replies: Prometheus text, Webdis MGET, JSON maps, shared-state entries.
pub fn metric_replies(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = metrics::parse_prometheus(&text, "vllm:num_requests_running", None);
    let _ = metrics::parse_prometheus(&text, "load", Some(("provider", "a")));
    let _ = metrics::parse_webdis_mget(data);
    let _ = metrics::parse_json_map(data, "a");
    if let Some((v, t)) = metrics::decode_entry(data) {
        let again = metrics::decode_entry(&metrics::encode_entry(v, t));
        assert_eq!(again, Some((v, t)), "metric entry does not round-trip");
        assert_eq!(metrics::fresh_entry(data, t, 0), Some(v));
    }
}

/// One input of the seed corpus.
#[derive(Debug, Clone)]
pub struct Seed {
    pub target: &'static str,
    /// Where it came from, for messages and file names.
    pub name: String,
    pub data: Vec<u8>,
}

/// Which fixtures of `crates/protocol/testdata` seed which targets, and the prefix bytes
/// (flags, chunking seed) the target reads before the payload.
type SeedUses = &'static [(&'static str, &'static [u8])];
const FIXTURE_SEEDS: &[(&str, &str, SeedUses)] = &[
    (
        "bedrock/request",
        ".in.json",
        &[("bedrock_request", &[0]), ("bedrock_request", &[3])],
    ),
    ("bedrock/response", ".in.json", &[("bedrock_response", &[])]),
    ("bedrock/errors", ".json", &[("bedrock_response", &[])]),
    (
        "gemini/request",
        ".in.json",
        &[
            ("gemini_request", &[3]),
            ("openai_edit", &[15]),
            ("claude_request", &[0]),
            ("json_field", &[]),
        ],
    ),
    (
        "anthropic/openai_to_anthropic/request",
        ".in.json",
        &[
            ("claude_request", &[1]),
            ("openai_edit", &[7]),
            ("gemini_request", &[0]),
        ],
    ),
    (
        "anthropic/openai_to_anthropic/response",
        ".in.json",
        &[("claude_response", &[])],
    ),
    (
        "anthropic/openai_to_anthropic/error",
        ".json",
        &[("claude_response", &[])],
    ),
    (
        "anthropic/openai_to_anthropic/stream",
        ".in.sse",
        &[
            ("claude_stream", &[0, 7]),
            ("claude_stream", &[1, 0]),
            ("sse", &[0, 3]),
        ],
    ),
    (
        "anthropic/anthropic_to_openai/request",
        ".in.json",
        &[("anthropic_client_request", &[]), ("json_field", &[])],
    ),
    (
        "anthropic/anthropic_to_openai/response",
        ".in.json",
        &[("anthropic_client_response", &[])],
    ),
    (
        "anthropic/anthropic_to_openai/error",
        ".json",
        &[("anthropic_client_response", &[])],
    ),
    (
        "anthropic/anthropic_to_openai/stream",
        ".in.sse",
        &[
            ("anthropic_client_stream", &[0, 5]),
            ("openai_stream", &[1, 9]),
            ("sse", &[1, 1]),
        ],
    ),
    ("gemini/response", ".in.json", &[("gemini_response", &[])]),
    ("gemini/errors", ".json", &[("gemini_response", &[])]),
    (
        "gemini/embeddings",
        ".upstream.json",
        &[("gemini_response", &[])],
    ),
    (
        "gemini/embeddings",
        ".client.json",
        &[("gemini_request", &[0])],
    ),
    (
        "gemini/stream",
        ".in.sse",
        &[
            ("gemini_stream", &[0, 11]),
            ("gemini_stream", &[1, 1]),
            ("sse", &[2, 63]),
        ],
    ),
    (
        "responses/request",
        ".in.json",
        &[("responses_request", &[]), ("json_field", &[])],
    ),
    (
        "responses/response",
        ".in.json",
        &[
            ("responses_response", &[]),
            ("anthropic_client_response", &[]),
        ],
    ),
    (
        "responses/response",
        ".out.json",
        &[("responses_response", &[])],
    ),
    (
        "responses/stream",
        ".in.sse",
        &[
            ("responses_stream", &[0, 9]),
            ("responses_stream", &[1, 1]),
            ("anthropic_client_stream", &[2, 3]),
        ],
    ),
    (
        "responses/stream",
        ".out.sse",
        &[("responses_usage", &[0, 17]), ("sse", &[3, 5])],
    ),
    (
        "responses/from_claude",
        ".out.sse",
        &[("responses_usage", &[1, 2])],
    ),
];

/// Error fixtures wrap the vendor body: `{"status", "body": "...", "expected"}` (or a list
/// of them); the body is the interesting input.
fn fixture_payloads(bytes: Vec<u8>) -> Vec<Vec<u8>> {
    let body_of = |v: &Value| {
        v.get("body")
            .and_then(Value::as_str)
            .map(|s| s.as_bytes().to_vec())
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Array(items)) if items.iter().all(|i| i.get("body").is_some()) => {
            items.iter().filter_map(body_of).collect()
        }
        Ok(v) if v.get("body").is_some() && v.get("expected").is_some() => {
            body_of(&v).into_iter().collect()
        }
        _ => vec![bytes],
    }
}

/// The seed corpus: protocol fixtures (mapped by [`FIXTURE_SEEDS`]), hand-written seeds in
/// `fuzz/seeds/<target>/` and crash regressions in `fuzz/regressions/<target>/`.
pub fn seed_corpus(repo_root: &std::path::Path) -> std::io::Result<Vec<Seed>> {
    let mut seeds = Vec::new();
    let testdata = repo_root.join("crates/protocol/testdata");
    for (dir, suffix, uses) in FIXTURE_SEEDS {
        let mut files: Vec<_> = std::fs::read_dir(testdata.join(dir))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .collect();
        files.sort();
        for path in files {
            let file = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for (i, payload) in fixture_payloads(std::fs::read(&path)?)
                .into_iter()
                .enumerate()
            {
                for (target, prefix) in *uses {
                    let mut data = prefix.to_vec();
                    data.extend_from_slice(&payload);
                    seeds.push(Seed {
                        target,
                        name: format!("{}-{}-{i}-{}", dir.replace('/', "_"), file, prefix.len()),
                        data,
                    });
                }
            }
        }
    }
    for sub in ["fuzz/seeds", "fuzz/regressions"] {
        for (target, _) in TARGETS {
            let dir = repo_root.join(sub).join(target);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
            files.sort();
            for path in files {
                seeds.push(Seed {
                    target,
                    name: format!(
                        "{sub}/{target}/{}",
                        path.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    ),
                    data: std::fs::read(&path)?,
                });
            }
        }
    }
    Ok(seeds)
}
