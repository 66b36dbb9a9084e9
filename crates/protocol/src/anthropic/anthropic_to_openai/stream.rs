//! OpenAI `chat.completion.chunk` stream -> Anthropic Messages stream.

use super::super::types::{anthropic_error_type, error_message, ChatCompletion, ChatMessage};
use super::response::{anthropic_usage, message_id, stop_reason};
use crate::sse::{write_event, SseEvent, SseParser};
use crate::stream::{StreamConverter, Usage};
use serde_json::{json, Value};

/// The content block currently open on the Anthropic side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Text(u32),
    Thinking(u32),
    Tool(u32),
}

/// An OpenAI tool call and the Anthropic block it became.
#[derive(Debug)]
struct ToolCall {
    /// OpenAI's `tool_calls[].index`.
    index: u64,
    id: Option<String>,
    block: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Done,
    Failed,
}

/// Converts an OpenAI-compatible vendor's chunk stream into an Anthropic Messages stream.
///
/// The first chunk opens the message (`message_start` with the chunk's `id` and `model`).
/// Content is sent as blocks with increasing indices, one open at a time: reasoning
/// (`reasoning_content`/`reasoning`) as a `thinking` block, `content` as a `text` block, and
/// one `tool_use` block per OpenAI tool-call `index` (argument fragments as
/// `input_json_delta`; a delta with a known `index` but a new `id` starts a new call, as
/// some servers number every call 0). A block is closed (`content_block_stop`) when another one starts or
/// the message ends. Should a vendor interleave fragments of an earlier tool call after a
/// later one started, they are sent with the earlier call's block index (the SDKs accumulate
/// by index).
///
/// `finish_reason` and the usage chunk (the request asks for `include_usage`) are held until
/// `data: [DONE]` or the end of the upstream, then sent as `message_delta` (stop reason,
/// input and output tokens) and `message_stop`. A mid-stream error object becomes an
/// `event: error` and ends the stream. Every event has its `event:` line.
#[derive(Debug)]
pub struct ChatStreamToMessages {
    parser: SseParser,
    started: bool,
    next_block: u32,
    open: Open,
    /// The tool calls seen, in order.
    tools: Vec<ToolCall>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    state: State,
}

impl Default for ChatStreamToMessages {
    fn default() -> Self {
        Self::new()
    }
}

impl ChatStreamToMessages {
    /// A converter for one response stream; ids and model come from the vendor's chunks.
    pub fn new() -> Self {
        ChatStreamToMessages {
            parser: SseParser::new(),
            started: false,
            next_block: 0,
            open: Open::None,
            tools: Vec::new(),
            finish_reason: None,
            usage: None,
            state: State::Open,
        }
    }

    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<u8>) {
        if self.state != State::Open {
            return;
        }
        if event.data.trim() == "[DONE]" {
            self.close(out);
            return;
        }
        let Ok(chunk) = serde_json::from_str::<ChatCompletion>(&event.data) else {
            return;
        };
        if let Some(err) = &chunk.error {
            self.fail(err, out);
            return;
        }
        if let Some(usage) = chunk.usage.as_ref().and_then(Usage::from_openai_json) {
            self.usage = Some(usage);
        }
        self.start(chunk.id.as_deref(), chunk.model.as_deref(), out);
        // n > 1 is not something an Anthropic client can ask for; only choice 0 is sent.
        let Some(choice) = chunk.choices.iter().find(|c| c.index.unwrap_or(0) == 0) else {
            return;
        };
        if let Some(delta) = &choice.delta {
            self.delta(delta, out);
        }
        if let Some(reason) = choice.finish_reason.as_deref().filter(|r| !r.is_empty()) {
            self.finish_reason = Some(reason.to_owned());
        }
    }

    fn start(&mut self, id: Option<&str>, model: Option<&str>, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let usage = anthropic_usage(&self.usage.unwrap_or_default());
        emit(
            out,
            "message_start",
            json!({
                "type": "message_start",
                "message": {
                    "id": message_id(id),
                    "type": "message",
                    "role": "assistant",
                    "model": model.unwrap_or_default(),
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": usage,
                },
            }),
        );
    }

    fn delta(&mut self, delta: &ChatMessage, out: &mut Vec<u8>) {
        if let Some(reasoning) = delta.reasoning_text() {
            let index = match self.open {
                Open::Thinking(i) => i,
                _ => {
                    let i = self.open_block(
                        out,
                        json!({ "type": "thinking", "thinking": "", "signature": "" }),
                    );
                    self.open = Open::Thinking(i);
                    i
                }
            };
            block_delta(
                out,
                index,
                json!({ "type": "thinking_delta", "thinking": reasoning }),
            );
        }
        let mut text = delta.text();
        if text.is_empty() {
            text = delta.refusal.clone().unwrap_or_default();
        }
        if !text.is_empty() {
            let index = match self.open {
                Open::Text(i) => i,
                _ => {
                    let i = self.open_block(out, json!({ "type": "text", "text": "" }));
                    self.open = Open::Text(i);
                    i
                }
            };
            block_delta(out, index, json!({ "type": "text_delta", "text": text }));
        }
        for (pos, call) in delta.tool_calls.iter().flatten().enumerate() {
            let call_index = call.index.unwrap_or(pos as u64);
            let known = self.tools.iter().rev().find(|t| t.index == call_index);
            let same_call = known.filter(|t| match (&call.id, &t.id) {
                (Some(new), Some(old)) => new == old,
                _ => true,
            });
            let block = match same_call {
                Some(t) => t.block,
                None => {
                    let name = call
                        .function
                        .as_ref()
                        .and_then(|f| f.name.as_deref())
                        .unwrap_or_default();
                    let id = call
                        .id
                        .clone()
                        .unwrap_or_else(|| format!("toolu_{}", self.next_block));
                    let block = self.open_block(
                        out,
                        json!({ "type": "tool_use", "id": id, "name": name, "input": {} }),
                    );
                    self.open = Open::Tool(block);
                    self.tools.push(ToolCall {
                        index: call_index,
                        id: call.id.clone(),
                        block,
                    });
                    block
                }
            };
            let fragment = call
                .function
                .as_ref()
                .and_then(|f| f.arguments.as_deref())
                .unwrap_or_default();
            if !fragment.is_empty() {
                block_delta(
                    out,
                    block,
                    json!({ "type": "input_json_delta", "partial_json": fragment }),
                );
            }
        }
    }

    /// Close the open block and start a new one; returns its index.
    fn open_block(&mut self, out: &mut Vec<u8>, content_block: Value) -> u32 {
        self.close_block(out);
        let index = self.next_block;
        self.next_block = self.next_block.saturating_add(1);
        emit(
            out,
            "content_block_start",
            json!({ "type": "content_block_start", "index": index, "content_block": content_block }),
        );
        index
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
        let index = match self.open {
            Open::None => return,
            Open::Text(i) | Open::Thinking(i) | Open::Tool(i) => i,
        };
        self.open = Open::None;
        emit(
            out,
            "content_block_stop",
            json!({ "type": "content_block_stop", "index": index }),
        );
    }

    /// Close the open block, then `message_delta` and `message_stop`.
    fn close(&mut self, out: &mut Vec<u8>) {
        self.start(None, None, out);
        self.close_block(out);
        let stop = stop_reason(self.finish_reason.as_deref(), !self.tools.is_empty());
        let usage = anthropic_usage(&self.usage.unwrap_or_default());
        emit(
            out,
            "message_delta",
            json!({
                "type": "message_delta",
                "delta": { "stop_reason": stop, "stop_sequence": null },
                "usage": usage,
            }),
        );
        emit(out, "message_stop", json!({ "type": "message_stop" }));
        self.state = State::Done;
    }

    fn fail(&mut self, err: &Value, out: &mut Vec<u8>) {
        let wrapped = json!({ "error": err });
        let message =
            error_message(&wrapped).unwrap_or("the provider reported an error mid-stream");
        emit(
            out,
            "error",
            json!({ "type": "error", "error": { "type": error_type(err), "message": message } }),
        );
        self.state = State::Failed;
    }
}

/// Anthropic's error type for an OpenAI-style mid-stream error object: from an HTTP status
/// in `code`/`status` if there is one, else from the words in `type`/`code`.
fn error_type(err: &Value) -> &'static str {
    let status = ["code", "status"]
        .iter()
        .filter_map(|k| err.get(*k))
        .find_map(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| (400..600).contains(n));
    if let Some(status) = status {
        return anthropic_error_type(status);
    }
    let words: String = ["type", "code"]
        .iter()
        .filter_map(|k| err.get(*k).and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    const BY_WORD: [(&str, &str); 7] = [
        ("rate_limit", "rate_limit_error"),
        ("overloaded", "overloaded_error"),
        ("authentication", "authentication_error"),
        ("permission", "permission_error"),
        ("not_found", "not_found_error"),
        ("timeout", "timeout_error"),
        ("invalid_request", "invalid_request_error"),
    ];
    BY_WORD
        .iter()
        .find(|(word, _)| words.contains(word))
        .map_or("api_error", |(_, t)| t)
}

fn emit(out: &mut Vec<u8>, name: &str, data: Value) {
    write_event(out, Some(name), &data.to_string());
}

fn block_delta(out: &mut Vec<u8>, index: u32, delta: Value) {
    emit(
        out,
        "content_block_delta",
        json!({ "type": "content_block_delta", "index": index, "delta": delta }),
    );
}

impl StreamConverter for ChatStreamToMessages {
    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for event in self.parser.push(chunk) {
            self.on_event(&event, &mut out);
        }
        out
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(event) = self.parser.finish() {
            self.on_event(&event, &mut out);
        }
        if self.state == State::Open {
            self.close(&mut out);
        }
        out
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn error_types_from_status_or_words() {
        assert_eq!(error_type(&json!({ "code": 429 })), "rate_limit_error");
        assert_eq!(error_type(&json!({ "code": "529" })), "overloaded_error");
        assert_eq!(
            error_type(&json!({ "status": 401 })),
            "authentication_error"
        );
        assert_eq!(
            error_type(
                &json!({ "type": "invalid_request_error", "code": "context_length_exceeded" })
            ),
            "invalid_request_error"
        );
        assert_eq!(
            error_type(&json!({ "type": "server_error", "code": null })),
            "api_error"
        );
        assert_eq!(error_type(&json!("just a string")), "api_error");
    }
}
