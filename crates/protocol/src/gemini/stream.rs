//! Gemini `streamGenerateContent` -> OpenAI `chat.completion.chunk` stream.
//!
//! Each Gemini chunk is a whole `GenerateContentResponse` holding the next piece of text,
//! thought summary, or complete function calls. The plugin requests `alt=sse`
//! (`data: {...}\r\n\r\n` events), but a JSON-array stream (`[{...},\r\n{...}]`, what Gemini
//! sends without `alt=sse`) is accepted too: the framing is chosen by the first non-blank
//! byte (`[` or `{` -> JSON, anything else -> SSE).
//!
//! State, all explicit below: the OpenAI tool-call `index` counts calls across the whole
//! stream (Gemini has no per-call index); `finished` is set by the first chunk with a
//! `finishReason`, which emits the finish chunk (`tool_calls` if any call was streamed);
//! `usage` keeps the latest `usageMetadata` (several chunks may carry partial counts, the last
//! is the total) and is reported once, at the end, as the `choices: []` chunk when the client
//! asked for `include_usage`. An error object or a blocked prompt mid-stream becomes an
//! OpenAI error event (`data: {"error":{...}}`), after which upstream data is ignored.

use serde_json::{json, Value};

use super::response::{
    blocked, error_status, finish_reason, tool_call_id, tool_call_json, usage_from, usage_json,
};
use super::types::{GenerateContentResponse, UsageMetadata};
use crate::error::ErrorKind;
use crate::openai::{stream_error, ChunkWriter, DONE};
use crate::sse::{write_event, SseParser};
use crate::stream::{StreamConverter, Usage};

/// Converts one Gemini response stream to an OpenAI chat-completions stream.
#[derive(Debug)]
pub struct GeminiStreamToChat {
    framing: Framing,
    writer: ChunkWriter,
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    /// Tool calls streamed so far; the next call's OpenAI `index`.
    tool_calls: usize,
    /// The finish chunk was sent; later content is ignored (usage is still read).
    finished: bool,
    /// An error event was sent; everything after it is ignored.
    failed: bool,
    /// `finish` ran; further calls return nothing.
    closed: bool,
    /// Latest `usageMetadata` seen.
    usage: Option<UsageMetadata>,
}

#[derive(Debug)]
enum Framing {
    /// Nothing but blanks seen yet.
    Unknown,
    Sse(SseParser),
    Json(JsonObjects),
}

impl GeminiStreamToChat {
    /// `id`, `model` and `created` are written into every chunk (`model` is the name the
    /// client asked for); `include_usage` is the client's `stream_options.include_usage`.
    pub fn new(model: &str, id: &str, created: u64, include_usage: bool) -> Self {
        GeminiStreamToChat {
            framing: Framing::Unknown,
            writer: ChunkWriter::new(id, model, created),
            id: id.to_owned(),
            model: model.to_owned(),
            created,
            include_usage,
            tool_calls: 0,
            finished: false,
            failed: false,
            closed: false,
            usage: None,
        }
    }

    /// Handle one Gemini chunk; `last` marks an unterminated event dispatched at the end of
    /// the stream, which is incomplete rather than corrupt when it does not parse.
    fn handle_event(&mut self, data: &[u8], last: bool, out: &mut Vec<u8>) {
        if self.failed {
            return;
        }
        let trimmed = data.trim_ascii();
        if trimmed.is_empty() || trimmed == b"[DONE]" {
            return;
        }
        let resp: GenerateContentResponse = match serde_json::from_slice(trimmed) {
            Ok(r) => r,
            Err(_) if last => {
                self.fail(
                    out,
                    "Gemini stream ended in the middle of an event",
                    ErrorKind::BadGateway.type_name(),
                    "incomplete_stream",
                );
                return;
            }
            Err(_) => {
                self.fail(
                    out,
                    "Gemini sent an unreadable stream event",
                    ErrorKind::BadGateway.type_name(),
                    "invalid_upstream_response",
                );
                return;
            }
        };
        if let Some(err) = &resp.error {
            let kind = error_status(err).map_or(ErrorKind::BadGateway, ErrorKind::from_status);
            let message = err.message.as_deref().unwrap_or("Gemini returned an error");
            let code = err.status.as_deref().unwrap_or("upstream_error");
            self.fail(out, message, kind.type_name(), code);
            return;
        }
        if let Some(u) = resp.usage_metadata {
            self.usage = Some(u);
        }
        if resp.candidates.is_empty() {
            if let Some(e) = resp.prompt_feedback.as_ref().and_then(blocked) {
                self.fail(out, &e.message, e.kind.type_name(), e.code);
            }
            return;
        }
        if self.finished {
            return;
        }
        // Only the first candidate streams (the request converter refuses `n > 1` with
        // `stream`, and OpenAI's chunk writer speaks for choice 0).
        let Some(cand) = resp.candidates.iter().find(|c| c.index.unwrap_or(0) == 0) else {
            return;
        };
        let mut pending = Pending::default();
        for part in cand.content.iter().flat_map(|c| c.parts.iter()) {
            if let Some(call) = &part.function_call {
                pending.flush(&mut self.writer, out);
                let call_id = tool_call_id(&self.id, self.tool_calls);
                let mut tc = tool_call_json(call, &call_id, part.thought_signature.as_deref());
                tc["index"] = json!(self.tool_calls);
                self.tool_calls += 1;
                self.writer.delta(out, json!({ "tool_calls": [tc] }), None);
            } else if let Some(text) = part.text.as_deref().filter(|t| !t.is_empty()) {
                let key = if part.thought == Some(true) {
                    "reasoning_content"
                } else {
                    "content"
                };
                pending.push(key, text, &mut self.writer, out);
            }
        }
        pending.flush(&mut self.writer, out);
        if let Some(reason) = cand.finish_reason.as_deref() {
            let finish = finish_reason(Some(reason), self.tool_calls > 0);
            self.writer.delta(out, json!({}), Some(finish));
            self.finished = true;
        }
    }

    fn fail(&mut self, out: &mut Vec<u8>, message: &str, error_type: &str, code: &str) {
        stream_error(out, message, error_type, Some(code));
        self.failed = true;
    }

    fn usage_chunk(&self, out: &mut Vec<u8>) {
        let meta = self.usage.unwrap_or_default();
        let chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage_json(&meta),
        });
        write_event(out, None, &chunk.to_string());
    }

    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let mut chunk = chunk;
        if let Framing::Unknown = self.framing {
            let Some(start) = chunk.iter().position(|b| !b.is_ascii_whitespace()) else {
                return;
            };
            chunk = chunk.get(start..).unwrap_or_default();
            self.framing = match chunk.first() {
                Some(b'[' | b'{') => Framing::Json(JsonObjects::default()),
                _ => Framing::Sse(SseParser::new()),
            };
        }
        let events: Vec<Vec<u8>> = match &mut self.framing {
            Framing::Unknown => Vec::new(),
            Framing::Sse(p) => p
                .push(chunk)
                .into_iter()
                .map(|e| e.data.into_bytes())
                .collect(),
            Framing::Json(j) => j.push(chunk),
        };
        for e in events {
            self.handle_event(&e, false, out);
        }
        if let Framing::Json(j) = &self.framing {
            if j.overflowed {
                self.fail(
                    out,
                    "Gemini stream event exceeds the size limit",
                    ErrorKind::BadGateway.type_name(),
                    "invalid_upstream_response",
                );
            }
        }
    }
}

/// Consecutive text of one kind (`content` or `reasoning_content`) within a Gemini chunk,
/// sent as one delta.
#[derive(Default)]
struct Pending {
    key: &'static str,
    text: String,
}

impl Pending {
    fn push(&mut self, key: &'static str, text: &str, w: &mut ChunkWriter, out: &mut Vec<u8>) {
        if self.key != key {
            self.flush(w, out);
            self.key = key;
        }
        self.text.push_str(text);
    }

    fn flush(&mut self, w: &mut ChunkWriter, out: &mut Vec<u8>) {
        if !self.text.is_empty() {
            let mut delta = serde_json::Map::new();
            delta.insert(
                self.key.into(),
                Value::String(std::mem::take(&mut self.text)),
            );
            w.delta(out, Value::Object(delta), None);
        }
    }
}

impl StreamConverter for GeminiStreamToChat {
    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.closed {
            self.feed(chunk, &mut out);
        }
        out
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.closed {
            return out;
        }
        self.closed = true;
        if let Framing::Sse(p) = &mut self.framing {
            if let Some(e) = p.finish() {
                self.handle_event(e.data.as_bytes(), true, &mut out);
            }
        }
        if !self.failed && !self.finished {
            self.fail(
                &mut out,
                "Gemini stream ended before a finish reason",
                ErrorKind::BadGateway.type_name(),
                "incomplete_stream",
            );
        }
        if self.include_usage && !self.failed {
            self.usage_chunk(&mut out);
        }
        out.extend_from_slice(DONE);
        out
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(usage_from)
    }
}

/// Largest single JSON object buffered from a JSON-array stream.
const MAX_OBJECT: usize = 16 * 1024 * 1024;

/// Splits a stream of JSON objects (a top-level array of objects, or bare objects) into the
/// objects' bytes, incrementally: tracks nesting depth and string/escape state only, so a
/// split anywhere (inside a string, an escape or a UTF-8 sequence) is harmless.
#[derive(Debug, Default)]
struct JsonObjects {
    buf: Vec<u8>,
    depth: usize,
    in_string: bool,
    escape: bool,
    overflowed: bool,
}

impl JsonObjects {
    fn push(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for &b in chunk {
            if self.depth == 0 {
                // Between objects: `[`, `,`, `]` and blanks.
                if b == b'{' {
                    self.buf.clear();
                    self.buf.push(b);
                    self.depth = 1;
                }
                continue;
            }
            self.buf.push(b);
            if self.in_string {
                if self.escape {
                    self.escape = false;
                } else if b == b'\\' {
                    self.escape = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
            } else {
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            out.push(std::mem::take(&mut self.buf));
                        }
                    }
                    _ => {}
                }
            }
            if self.buf.len() > MAX_OBJECT {
                self.buf = Vec::new();
                self.depth = 0;
                self.in_string = false;
                self.escape = false;
                self.overflowed = true;
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn json_objects_split_anywhere() {
        let input = br#"[{"a":"x}\"{["},
{"b":[1,{"c":2}]}
]"#;
        let whole = JsonObjects::default().push(input);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0], br#"{"a":"x}\"{["}"#.to_vec());
        for i in 0..=input.len() {
            let mut j = JsonObjects::default();
            let mut got = j.push(&input[..i]);
            got.extend(j.push(&input[i..]));
            assert_eq!(got, whole, "split at {i}");
        }
    }

    #[test]
    fn finish_is_idempotent_and_push_after_finish_is_ignored() {
        let mut c = GeminiStreamToChat::new("m", "id", 1, false);
        let first = c.finish();
        assert!(first.ends_with(DONE));
        assert!(c.finish().is_empty());
        assert!(c.push(b"data: {}\n\n").is_empty());
    }
}
