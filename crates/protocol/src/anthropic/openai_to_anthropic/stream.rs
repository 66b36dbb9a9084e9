//! Anthropic Messages stream -> OpenAI `chat.completion.chunk` stream.

use super::super::types::{AnthropicUsage, BlockDelta, ResponseBlock, StreamEvent};
use super::response::{arguments_string, finish_reason};
use crate::openai::{stream_error, ChunkWriter, DONE};
use crate::sse::{SseEvent, SseParser};
use crate::stream::{StreamConverter, Usage};
use serde_json::json;
use std::borrow::Cow;

/// What an Anthropic content block (by its stream index) turned into on the OpenAI side.
#[derive(Debug)]
enum Block {
    Text,
    Thinking,
    /// A `tool_use` block, sent as the OpenAI tool call `index` (counting tool calls 0, 1, 2,
    /// never Anthropic's block index). `pending_input` holds an input that came whole in
    /// `content_block_start`, sent at `content_block_stop` if no `input_json_delta` came.
    Tool {
        index: u32,
        pending_input: Option<String>,
    },
    /// Skipped: `redacted_thinking`, server tools, unknown types.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// `message_stop` (or the end of the upstream) was translated; `[DONE]` was sent.
    Done,
    /// An `error` event was translated; nothing follows it.
    Failed,
}

/// Converts an Anthropic Messages SSE stream into OpenAI chat-completion chunks.
///
/// - `message_start` gives the shared chunk `id` and `model` and the input usage; it is sent
///   on as the first chunk (`role: "assistant"`, `content: ""`).
/// - `text_delta` -> `content`, `thinking_delta` -> `reasoning_content`; `signature_delta`,
///   `ping` and unknown event, block and delta types are skipped.
/// - A `tool_use` block opens a tool call (`index`, `id`, `type`, `function.name`,
///   `arguments: ""`); its `input_json_delta`s follow as argument fragments with only `index`.
/// - `message_delta` gives the finish chunk and the cumulative `output_tokens` (it replaces
///   the provisional count of `message_start`, so nothing is counted twice).
/// - `message_stop` -> the usage chunk (`choices: []`, only with `include_usage`), then
///   `data: [DONE]`.
/// - An `error` event -> `data: {"error": {...}}` (OpenAI's SDKs raise on it) and the stream
///   ends there, **without** `[DONE]`: `[DONE]` means "complete", and a client that does not
///   look for error objects must still be able to tell a broken answer from a finished one.
/// - An upstream that ends without `message_stop` is closed cleanly by
///   [`finish`](StreamConverter::finish): finish chunk if none was sent, usage chunk if
///   asked for, `[DONE]`.
#[derive(Debug)]
pub struct MessagesStreamToChat {
    parser: SseParser,
    include_usage: bool,
    created: u64,
    writer: ChunkWriter,
    /// Anthropic block index -> what it became; a handful of entries, so a list.
    blocks: Vec<(u64, Block)>,
    tool_calls: u32,
    usage: Option<AnthropicUsage>,
    finish_sent: bool,
    state: State,
    /// The events of one `push`, kept between calls (its buffer is reused).
    events: Vec<SseEvent>,
}

impl MessagesStreamToChat {
    /// `include_usage` is the client's `stream_options.include_usage`; `created` the
    /// timestamp every chunk carries.
    pub fn new(include_usage: bool, created: u64) -> Self {
        MessagesStreamToChat {
            parser: SseParser::new(),
            include_usage,
            created,
            writer: ChunkWriter::new("", "", created),
            blocks: Vec::new(),
            tool_calls: 0,
            usage: None,
            finish_sent: false,
            state: State::Open,
            events: Vec::new(),
        }
    }

    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<u8>) {
        if self.state != State::Open {
            return;
        }
        // Most events of an answer are text deltas: read those from a borrowed tree rather
        // than through serde's buffering of a tagged enum.
        let parsed = match fast_event(&event.data) {
            Some(Fast::Delta(index, delta)) => {
                self.block_delta(index, delta, out);
                return;
            }
            Some(Fast::Plain(e)) => e,
            None => match serde_json::from_str::<StreamEvent>(&event.data) {
                Ok(e) => e,
                Err(_) => return,
            },
        };
        match parsed {
            StreamEvent::MessageStart { message } => {
                if !self.writer.started() {
                    self.writer = ChunkWriter::new(
                        message.id.unwrap_or_default(),
                        message.model.unwrap_or_default(),
                        self.created,
                    );
                }
                if let Some(u) = &message.usage {
                    self.usage.get_or_insert_with(Default::default).update(u);
                }
                if !self.writer.started() {
                    self.writer.delta(out, json!({ "content": "" }), None);
                }
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => self.block_start(index, content_block, out),
            StreamEvent::ContentBlockDelta { index, delta } => self.block_delta(index, delta, out),
            StreamEvent::ContentBlockStop { index } => {
                if let Some(Block::Tool {
                    index: call,
                    pending_input,
                }) = find_block(&mut self.blocks, index)
                {
                    if let Some(arguments) = pending_input.take() {
                        let call =
                            json!({ "index": *call, "function": { "arguments": arguments } });
                        tool_delta(&mut self.writer, out, call);
                    }
                }
            }
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(u) = &usage {
                    self.usage.get_or_insert_with(Default::default).update(u);
                }
                if let Some(reason) = delta.stop_reason.as_deref() {
                    let finish = finish_reason(Some(reason), self.tool_calls > 0);
                    self.send_finish(out, finish);
                }
            }
            StreamEvent::MessageStop => self.close(out),
            StreamEvent::Error { error } => {
                stream_error(
                    out,
                    error
                        .message
                        .as_deref()
                        .unwrap_or("Anthropic reported an error mid-stream"),
                    error.kind.as_deref().unwrap_or("api_error"),
                    None,
                );
                self.state = State::Failed;
            }
            StreamEvent::Ping | StreamEvent::Other => {}
        }
    }

    fn block_start(&mut self, index: u64, block: ResponseBlock, out: &mut Vec<u8>) {
        let kind = match block {
            ResponseBlock::Text { text } => {
                if !text.is_empty() {
                    self.writer.delta(out, json!({ "content": text }), None);
                }
                Block::Text
            }
            ResponseBlock::Thinking { thinking } => {
                if !thinking.is_empty() {
                    self.writer
                        .delta(out, json!({ "reasoning_content": thinking }), None);
                }
                Block::Thinking
            }
            ResponseBlock::ToolUse { id, name, input } => {
                let call = self.tool_calls;
                self.tool_calls = self.tool_calls.saturating_add(1);
                tool_delta(
                    &mut self.writer,
                    out,
                    json!({
                        "index": call,
                        "id": id,
                        "type": "function",
                        "function": { "name": name, "arguments": "" },
                    }),
                );
                let has_input = input.as_object().is_some_and(|o| !o.is_empty());
                Block::Tool {
                    index: call,
                    pending_input: has_input.then(|| arguments_string(&input)),
                }
            }
            ResponseBlock::Other => Block::Other,
        };
        match find_block(&mut self.blocks, index) {
            Some(existing) => *existing = kind,
            None => self.blocks.push((index, kind)),
        }
    }

    fn block_delta(&mut self, index: u64, delta: BlockDelta<'_>, out: &mut Vec<u8>) {
        let Some(block) = find_block(&mut self.blocks, index) else {
            return;
        };
        match (block, delta) {
            (Block::Text, BlockDelta::TextDelta { text }) if !text.is_empty() => {
                self.writer.text_delta(out, "content", &text);
            }
            (Block::Thinking, BlockDelta::ThinkingDelta { thinking }) if !thinking.is_empty() => {
                self.writer.text_delta(out, "reasoning_content", &thinking);
            }
            (
                Block::Tool {
                    index: call,
                    pending_input,
                },
                BlockDelta::InputJsonDelta { partial_json },
            ) if !partial_json.is_empty() => {
                *pending_input = None;
                let call = json!({ "index": *call, "function": { "arguments": partial_json } });
                tool_delta(&mut self.writer, out, call);
            }
            _ => {}
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
}

/// A `content_block_delta` event read as serde would read it into
/// [`StreamEvent::ContentBlockDelta`]; `None` for every other event and for any shape serde
/// might read differently (duplicate, escaped or mistyped members), which then takes serde's
/// path. One allocation-free pass over the event, and one over its `delta`.
fn fast_event(data: &str) -> Option<Fast<'_>> {
    use crate::json_scan::{scan_members_nested, Member};
    let raw = |m: &Member| m.span.clone().and_then(|r| data.get(r));
    // One pass reads the event and its `delta` object (spans are ranges of `data`).
    let ([kind, index, delta], [delta_kind, text, thinking, partial]) = scan_members_nested(
        data.as_bytes(),
        ["type", "index", "delta"],
        2,
        ["type", "text", "thinking", "partial_json"],
    )?;
    if kind.count != 1 {
        return None;
    }
    // A plain index, as serde reads it into a `u64`.
    let plain_index = |m: &Member| -> Option<u64> {
        let index = raw(m).filter(|_| m.count == 1)?;
        if index.len() > 19 || !index.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        index.parse::<u64>().ok()
    };
    // Events without content: serde ignores members other than those it reads.
    match raw(&kind)? {
        "\"content_block_delta\"" => {}
        "\"ping\"" => return Some(Fast::Plain(StreamEvent::Ping)),
        "\"message_stop\"" => return Some(Fast::Plain(StreamEvent::MessageStop)),
        "\"content_block_stop\"" => {
            let index = plain_index(&index)?;
            return Some(Fast::Plain(StreamEvent::ContentBlockStop { index }));
        }
        _ => return None,
    }
    if delta.count != 1 {
        return None;
    }
    let index = plain_index(&index)?;
    let kind = delta_kind;
    if [&kind, &text, &thinking, &partial]
        .iter()
        .any(|m| m.count > 1)
        || kind.count != 1
    {
        return None;
    }
    // A member serde reads as a `String`: absent is empty (`#[serde(default)]`); a string
    // without escapes is its text; anything else (escapes, other types) is serde's to read.
    let string = |m: &Member| -> Option<Cow<'_, str>> {
        let Some(span) = m.span.clone() else {
            return Some(Cow::Borrowed(""));
        };
        let quoted = data.get(span)?;
        let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
        if inner.contains('\\') {
            return serde_json::from_str::<String>(quoted).ok().map(Cow::Owned);
        }
        Some(Cow::Borrowed(inner))
    };
    let delta = match data.get(kind.span?)? {
        "\"text_delta\"" => BlockDelta::TextDelta {
            text: string(&text)?,
        },
        "\"thinking_delta\"" => BlockDelta::ThinkingDelta {
            thinking: string(&thinking)?,
        },
        "\"input_json_delta\"" => BlockDelta::InputJsonDelta {
            partial_json: string(&partial)?,
        },
        // Any other string is `Other` for serde too; an escaped or non-string `type` is not
        // judged here.
        t if t.starts_with('"') && !t.contains('\\') => BlockDelta::Other,
        _ => return None,
    };
    Some(Fast::Delta(index, delta))
}

/// An event [`fast_event`] read without serde.
enum Fast<'a> {
    /// A `content_block_delta` (most events of an answer).
    Delta(u64, BlockDelta<'a>),
    /// An event without content (`ping`, `message_stop`, `content_block_stop`).
    Plain(StreamEvent<'a>),
}

fn find_block(blocks: &mut [(u64, Block)], index: u64) -> Option<&mut Block> {
    blocks.iter_mut().find(|(i, _)| *i == index).map(|(_, b)| b)
}

fn tool_delta(writer: &mut ChunkWriter, out: &mut Vec<u8>, call: serde_json::Value) {
    writer.delta(out, json!({ "tool_calls": [call] }), None);
}

impl StreamConverter for MessagesStreamToChat {
    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        // A chunk is about as long as the event it comes from plus its shared head: one
        // buffer, rarely grown (growing it from empty was most of the cost of a text delta).
        let mut out = Vec::with_capacity(chunk.len().saturating_mul(2).saturating_add(256));
        let mut events = std::mem::take(&mut self.events);
        self.parser.push_into(chunk, &mut events);
        for event in &events {
            self.on_event(event, &mut out);
        }
        self.parser.recycle(&mut events);
        self.events = events;
        out
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(event) = self.parser.finish() {
            self.on_event(&event, &mut out);
        }
        if self.state == State::Open && !self.writer.started() {
            // Not one readable `message_start`: garbage or an empty body, not an answer.
            stream_error(
                &mut out,
                "Anthropic's stream ended without a readable message",
                "api_error",
                Some("invalid_upstream_response"),
            );
            self.state = State::Failed;
        }
        if self.state == State::Open {
            self.close(&mut out);
        }
        out
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.map(AnthropicUsage::to_usage)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The fast reading of `content_block_delta` events answers exactly what serde reads, or
    /// leaves the event to serde.
    #[test]
    fn block_delta_fast_path_reads_what_serde_reads() {
        let events = [
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi \"there\" \u00e9"}}"#,
            r#"{"index":3,"delta":{"text":"x","type":"text_delta"},"type":"content_block_delta"}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#,
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"abc"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":5}}"#,
            r#"{"type":"content_block_delta","index":-1,"delta":{"type":"text_delta","text":"a"}}"#,
            r#"{"type":"content_block_delta","index":1.0,"delta":{"type":"text_delta","text":"a"}}"#,
            r#"{"type":"content_block_delta","index":0,"index":1,"delta":{"type":"text_delta","text":"a"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a","text":"b"}}"#,
            r#"{"type":"content_block_delta","index":0}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"text":"a"}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"ping"}"#,
            r#"[1]"#,
            r#" { "type" : "content_block_delta" , "index" : 7 , "extra" : [1, {"a": null}], "delta" : { "type" : "text_delta" , "text" : "spaced" } } "#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x","x":1,"x":2}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{"a":1}}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":5}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":"text"}"#,
            r#"{"type":"content_block_delta","index":01,"delta":{"type":"text_delta","text":"a"}}"#,
            // Escaped names: serde's to read (the fast path declines them).
            r#"{"type":"content\u005fblock_delta","index":0,"delta":{"type":"text_delta","text":"a"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text\u005fdelta","text":"a"}}"#,
            // Events without content.
            r#"{"type":"ping","extra":{"a":[1]}}"#,
            r#"{"type":"message_stop"}"#,
            r#"{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":3}}"#,
            r#"{"type":"content_block_stop","index":12,"x":null}"#,
            r#"{"type":"content_block_stop"}"#,
            r#"{"type":"content_block_stop","index":"1"}"#,
            r#"{"type":"content_block_stop","index":1,"index":2}"#,
            r#"{"type":"content_block_stop","index":-1}"#,
            r#"{"type":"ping","type":"ping"}"#,
            r#"{"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":3}}}"#,
        ];
        for data in events {
            let serde = serde_json::from_str::<StreamEvent>(data).ok();
            // Declining (`None`) is always safe: serde reads the event as it always did.
            match fast_event(data) {
                Some(Fast::Delta(index, delta)) => assert_eq!(
                    format!(
                        "{:?}",
                        Some(StreamEvent::ContentBlockDelta { index, delta })
                    ),
                    format!("{serde:?}"),
                    "{data}"
                ),
                Some(Fast::Plain(e)) => {
                    assert_eq!(format!("{:?}", Some(e)), format!("{serde:?}"), "{data}")
                }
                None => {}
            }
        }
        // The shapes vendors send are taken by the fast path.
        let taken = events.iter().take(5).chain(events.get(16)).chain(
            events
                .iter()
                .filter(|e| e.contains("\"ping\",\"extra") || e.contains("message_stop")),
        );
        for data in taken.chain([&r#"{"type":"content_block_stop","index":12,"x":null}"#]) {
            assert!(fast_event(data).is_some(), "declined {data}");
        }
    }

    #[test]
    fn text_delta_writes_what_delta_writes() {
        for text in ["plain", "quote \" and \\ and \n and é 😀", ""] {
            let (mut a, mut b) = (
                ChunkWriter::new("id1", "m", 7),
                ChunkWriter::new("id1", "m", 7),
            );
            let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
            // The first chunk (with `role`) and a later one.
            for _ in 0..2 {
                a.text_delta(&mut out_a, "content", text);
                b.delta(&mut out_b, json!({ "content": text }), None);
            }
            assert_eq!(
                String::from_utf8_lossy(&out_a),
                String::from_utf8_lossy(&out_b)
            );
        }
    }

    #[test]
    fn stream_without_a_readable_message_is_an_error_without_done() {
        for garbage in [
            "data: {not json\n\n",
            "event: message_start\ndata: {\"type\":\"message_start\"}\n\n",
            "data: \u{fffd}\n\n",
            "",
        ] {
            let mut c = MessagesStreamToChat::new(false, 1);
            let mut out = c.push(garbage.as_bytes());
            out.extend(c.finish());
            let text = String::from_utf8(out).unwrap();
            assert!(
                text.contains("invalid_upstream_response"),
                "{garbage:?}: {text}"
            );
            assert!(!text.contains("[DONE]"), "{garbage:?}: {text}");
        }
        // Junk between readable events is still skipped, and so is an unknown event type.
        let mut c = MessagesStreamToChat::new(false, 1);
        let out = c.push(b"event: future\ndata: {\"type\":\"future_event\",\"x\":1}\n\n");
        assert!(out.is_empty());
    }
}
