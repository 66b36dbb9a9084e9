//! Bedrock ConverseStream (AWS event-stream frames) -> OpenAI `chat.completion.chunk` stream.

use super::eventstream::{EventStreamDecoder, Message};
use super::response::{exception_name, exception_status, finish_reason, ConverseUsage};
use crate::error::ErrorKind;
use crate::openai::{stream_error, ChunkWriter, DONE};
use crate::stream::{StreamConverter, Usage};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// `[DONE]` was sent.
    Done,
    /// An error chunk was sent; nothing follows it (no `[DONE]`: the answer is incomplete).
    Failed,
}

/// Converts a ConverseStream body into OpenAI chat-completion chunks.
///
/// - `messageStart` -> the first chunk (`role: "assistant"`, `content: ""`);
/// - `contentBlockDelta` `text` -> `content`, `reasoningContent.text` -> `reasoning_content`
///   (signatures and redacted reasoning are skipped);
/// - `contentBlockStart` with `toolUse` opens a tool call (`index`, `id`, `type`,
///   `function.name`, `arguments: ""`); its `toolUse.input` deltas follow as argument
///   fragments. `index` counts tool calls 0, 1, 2, never Converse's `contentBlockIndex`;
/// - `messageStop` -> the finish chunk (`stopReason` mapped as for whole answers);
/// - `metadata` (sent after `messageStop`) -> usage; then the usage-only chunk
///   (`choices: []`, only with `include_usage`) and `data: [DONE]`;
/// - an exception message (`:message-type: exception` or `error`) -> `data: {"error":...}`
///   and the stream ends there, without `[DONE]`; so does a framing or CRC error;
/// - an upstream that ends after `messageStop` without `metadata` is closed by
///   [`finish`](StreamConverter::finish) (usage chunk with what is known, `[DONE]`); one that
///   ends earlier gets a finish chunk too, unless nothing readable arrived at all (an error).
///
/// Unknown event types and unknown fields are skipped.
#[derive(Debug)]
pub struct ConverseStreamToChat {
    decoder: EventStreamDecoder,
    messages: Vec<Message>,
    include_usage: bool,
    writer: ChunkWriter,
    /// Converse `contentBlockIndex` -> OpenAI tool-call index, for tool-use blocks.
    tools: Vec<(u64, u32)>,
    tool_calls: u32,
    usage: Option<ConverseUsage>,
    finish_sent: bool,
    state: State,
}

impl ConverseStreamToChat {
    /// `model` and `id` go into every chunk (Converse streams carry neither); `created` is the
    /// chunk timestamp; `include_usage` the client's `stream_options.include_usage`.
    pub fn new(model: &str, id: &str, created: u64, include_usage: bool) -> Self {
        ConverseStreamToChat {
            decoder: EventStreamDecoder::new(),
            messages: Vec::new(),
            include_usage,
            writer: ChunkWriter::new(id, model, created),
            tools: Vec::new(),
            tool_calls: 0,
            usage: None,
            finish_sent: false,
            state: State::Open,
        }
    }

    fn on_message(&mut self, m: &Message, out: &mut Vec<u8>) {
        if self.state != State::Open {
            return;
        }
        match m.header_str(":message-type") {
            Some("event") => {}
            Some("exception") => {
                let name = m.header_str(":exception-type").unwrap_or("exception");
                let message = payload_message(&m.payload)
                    .unwrap_or_else(|| format!("Bedrock reported {name} mid-stream"));
                self.fail(out, Some(name), &message);
                return;
            }
            Some("error") => {
                let code = m.header_str(":error-code").unwrap_or("error");
                let message = m
                    .header_str(":error-message")
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("Bedrock reported {code} mid-stream"));
                self.fail(out, Some(code), &message);
                return;
            }
            _ => return,
        }
        let Some(kind) = m.header_str(":event-type") else {
            return;
        };
        let Ok(payload) = serde_json::from_slice::<Value>(&m.payload) else {
            return;
        };
        match kind {
            "messageStart" => self.start(out),
            "contentBlockStart" => {
                let Some(tool) = payload.pointer("/start/toolUse") else {
                    return;
                };
                self.start(out);
                let block = payload
                    .get("contentBlockIndex")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let call = self.tool_calls;
                self.tool_calls = self.tool_calls.saturating_add(1);
                self.tools.retain(|(b, _)| *b != block);
                self.tools.push((block, call));
                let delta = json!({
                    "index": call,
                    "id": tool.get("toolUseId").and_then(Value::as_str).unwrap_or_default(),
                    "type": "function",
                    "function": {
                        "name": tool.get("name").and_then(Value::as_str).unwrap_or_default(),
                        "arguments": "",
                    },
                });
                self.writer
                    .delta(out, json!({ "tool_calls": [delta] }), None);
            }
            "contentBlockDelta" => {
                let Some(delta) = payload.get("delta") else {
                    return;
                };
                let block = payload
                    .get("contentBlockIndex")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if let Some(text) = delta.get("text").and_then(Value::as_str) {
                    self.start(out);
                    if !text.is_empty() {
                        self.writer.delta(out, json!({ "content": text }), None);
                    }
                } else if let Some(text) = delta
                    .pointer("/reasoningContent/text")
                    .and_then(Value::as_str)
                {
                    self.start(out);
                    if !text.is_empty() {
                        self.writer
                            .delta(out, json!({ "reasoning_content": text }), None);
                    }
                } else if let Some(input) = delta.pointer("/toolUse/input").and_then(Value::as_str)
                {
                    let Some(&(_, call)) = self.tools.iter().find(|(b, _)| *b == block) else {
                        return;
                    };
                    if !input.is_empty() {
                        let call = json!({ "index": call, "function": { "arguments": input } });
                        self.writer
                            .delta(out, json!({ "tool_calls": [call] }), None);
                    }
                }
            }
            "messageStop" => {
                self.start(out);
                let reason = payload.get("stopReason").and_then(Value::as_str);
                let finish = finish_reason(reason, self.tool_calls > 0);
                self.send_finish(out, finish);
            }
            "metadata" => {
                if let Some(u) = payload.get("usage") {
                    if let Ok(u) = serde_json::from_value::<ConverseUsage>(u.clone()) {
                        self.usage = Some(u);
                    }
                }
                if self.finish_sent {
                    self.close(out);
                }
            }
            _ => {}
        }
    }

    /// The first chunk, if not sent yet.
    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.writer.started() {
            self.writer.delta(out, json!({ "content": "" }), None);
        }
    }

    fn send_finish(&mut self, out: &mut Vec<u8>, reason: &str) {
        if !self.finish_sent {
            self.finish_sent = true;
            self.writer.delta(out, json!({}), Some(reason));
        }
    }

    /// Finish chunk (if not sent yet), usage chunk (if asked for), `[DONE]`.
    fn close(&mut self, out: &mut Vec<u8>) {
        let reason = if self.tool_calls > 0 {
            "tool_calls"
        } else {
            "stop"
        };
        self.send_finish(out, reason);
        if self.include_usage {
            let usage = self.usage().unwrap_or_default();
            self.writer.usage(out, &usage);
        }
        out.extend_from_slice(DONE);
        self.state = State::Done;
    }

    fn fail(&mut self, out: &mut Vec<u8>, exception: Option<&str>, message: &str) {
        let status = exception
            .map(exception_name)
            .and_then(exception_status)
            .unwrap_or(502);
        let type_name = match status {
            408 => "timeout_error",
            s => ErrorKind::from_status(s).type_name(),
        };
        stream_error(out, message, type_name, exception);
        self.state = State::Failed;
    }
}

/// `message` (or `Message`) of an exception payload.
fn payload_message(payload: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    v.get("message")
        .or_else(|| v.get("Message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

impl StreamConverter for ConverseStreamToChat {
    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.state != State::Open {
            return out;
        }
        let mut messages = std::mem::take(&mut self.messages);
        let result = self.decoder.push_into(chunk, &mut messages);
        for m in messages.drain(..) {
            self.on_message(&m, &mut out);
        }
        self.messages = messages;
        if let Err(e) = result {
            if self.state == State::Open {
                self.fail(
                    &mut out,
                    None,
                    &format!("Bedrock sent an unreadable stream: {e}"),
                );
            }
        }
        out
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.state != State::Open {
            return out;
        }
        if let Err(e) = self.decoder.finish() {
            if self.writer.started() && !self.finish_sent {
                self.fail(&mut out, None, &format!("Bedrock's stream broke off: {e}"));
                return out;
            }
        }
        if !self.writer.started() {
            self.fail(
                &mut out,
                None,
                "Bedrock's stream ended without a readable message",
            );
            return out;
        }
        self.close(&mut out);
        out
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.map(ConverseUsage::to_usage)
    }
}
