//! OpenAI `chat.completion.chunk` stream -> Responses API event stream.

use super::response::{response_object, status_for};
use super::types::{
    OutputContent, OutputItem, ResponseError, ResponseObject, ResponsesUsage, Status, StreamEvent,
    SummaryText,
};
use super::{call_id, item_id, signature, RequestEcho};
use crate::anthropic::types::{error_message, ChatCompletion, ChatMessage};
use crate::sse::{SseEvent, SseParser};
use crate::stream::{StreamConverter, Usage};
use serde_json::Value;

/// The reasoning or message item being written (function calls are tracked apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    /// A reasoning item at this output index.
    Reasoning(usize),
    /// A message at this output index; its open content part, if any, is the last one.
    Message {
        index: usize,
        part_open: bool,
    },
}

/// A chat tool call and the `function_call` item it became.
#[derive(Debug)]
struct ToolCall {
    /// The chat `tool_calls[].index`.
    chat_index: u64,
    /// The chat tool-call id, if the vendor sent one.
    id: Option<String>,
    output_index: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing sent yet.
    New,
    Open,
    Done,
    Failed,
}

/// Converts an OpenAI-compatible chunk stream (or the chunks another converter produced from
/// Claude's or Gemini's stream) into the Responses API's event stream.
///
/// The first upstream event opens the response: `response.created` then
/// `response.in_progress`. Content becomes output items, one reasoning or message item open at
/// a time:
/// - reasoning (`reasoning_content`/`reasoning`) -> a `reasoning` item with one summary part
///   (`response.reasoning_summary_part.added`, `response.reasoning_summary_text.delta`, ...);
/// - `content` -> a `message` item with an `output_text` part (`response.content_part.added`,
///   `response.output_text.delta`, `.done`, `response.content_part.done`), `refusal` -> a
///   `refusal` part (`response.refusal.delta`, `.done`);
/// - each tool call (per chat `index`; a new `id` at a known index starts a new call, as some
///   servers number every call 0) -> a `function_call` item
///   (`response.function_call_arguments.delta`, `.done`). Function calls stay open until the
///   answer ends, so fragments of interleaved calls still land on their own item. A call
///   Gemini signed is preceded by a whole reasoning item carrying the signature (see
///   `signature.rs`).
///
/// An item ends with `response.output_item.done` when another reasoning or message item
/// starts, or when the answer ends. The answer ends at `data: [DONE]`, or at the end of the
/// upstream once a `finish_reason` was seen: `response.completed`, or `response.incomplete`
/// when the vendor stopped for length or content filtering, carrying the whole response with
/// usage (the request asks for `include_usage`). A mid-stream error object, or an upstream
/// that ends before any `finish_reason`, sends an `error` event and `response.failed`.
///
/// Every event has its `event:` line and an increasing `sequence_number` from 0. The output
/// does not depend on how the upstream bytes are split.
#[derive(Debug)]
pub struct ChatStreamToResponses {
    parser: SseParser,
    events: Vec<SseEvent>,
    response: ResponseObject,
    model_from_vendor: bool,
    next_sequence: u64,
    open: Open,
    tools: Vec<ToolCall>,
    finish_reason: Option<String>,
    usage: Option<ResponsesUsage>,
    state: State,
}

impl ChatStreamToResponses {
    /// A converter for one answer. `id` (`resp_...`) and `created_at` (Unix seconds) are the
    /// gateway's; `echo` comes from
    /// [`responses_request_to_chat`](super::responses_request_to_chat) (its model is used
    /// until the vendor names one).
    pub fn new(echo: &RequestEcho, id: &str, created_at: u64) -> Self {
        ChatStreamToResponses {
            parser: SseParser::new(),
            events: Vec::new(),
            response: response_object(id, created_at, &echo.model, echo),
            model_from_vendor: false,
            next_sequence: 0,
            open: Open::None,
            tools: Vec::new(),
            finish_reason: None,
            usage: None,
            state: State::New,
        }
    }

    fn seq(&mut self) -> u64 {
        let n = self.next_sequence;
        self.next_sequence = self.next_sequence.saturating_add(1);
        n
    }

    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<u8>) {
        if matches!(self.state, State::Done | State::Failed) {
            return;
        }
        if event.data.trim() == "[DONE]" {
            self.start(out);
            self.close(out);
            return;
        }
        let Ok(chunk) = serde_json::from_str::<ChatCompletion>(&event.data) else {
            return;
        };
        if !self.model_from_vendor && self.state == State::New {
            if let Some(model) = chunk.model.as_deref().filter(|m| !m.is_empty()) {
                self.response.model = model.to_owned();
                self.model_from_vendor = true;
            }
        }
        self.start(out);
        if let Some(err) = &chunk.error {
            self.fail_with(err, out);
            return;
        }
        if let Some(usage) = chunk
            .usage
            .as_ref()
            .and_then(ResponsesUsage::from_chat_usage)
        {
            self.usage = Some(usage);
        }
        // A Responses answer has one output list; only choice 0 is sent.
        let Some(choice) = chunk.choices.iter().find(|c| c.index.unwrap_or(0) == 0) else {
            return;
        };
        if let Some(delta) = &choice.delta {
            let signatures = signature::of_tool_calls(&event.data);
            let logprobs = logprobs_of(choice.logprobs.as_ref());
            self.delta(delta, &signatures, logprobs, out);
        }
        if let Some(reason) = choice.finish_reason.as_deref().filter(|r| !r.is_empty()) {
            self.finish_reason = Some(reason.to_owned());
        }
    }

    /// `response.created` and `response.in_progress`, once.
    fn start(&mut self, out: &mut Vec<u8>) {
        if self.state != State::New {
            return;
        }
        self.state = State::Open;
        let seq = self.seq();
        StreamEvent::Created {
            sequence_number: seq,
            response: &self.response,
        }
        .write(out);
        let seq = self.seq();
        StreamEvent::InProgress {
            sequence_number: seq,
            response: &self.response,
        }
        .write(out);
    }

    /// `signatures`: Gemini thought signatures of the delta's tool calls, by position.
    /// `logprobs`: the log probabilities of the delta's text tokens.
    fn delta(
        &mut self,
        delta: &ChatMessage,
        signatures: &[Option<String>],
        logprobs: &[Value],
        out: &mut Vec<u8>,
    ) {
        if let Some(reasoning) = delta.reasoning_text() {
            self.reasoning_delta(reasoning, out);
        }
        let text = delta.text();
        if !text.is_empty() {
            self.content_delta(&text, false, logprobs, out);
        }
        if let Some(refusal) = delta.refusal.as_deref().filter(|r| !r.is_empty()) {
            self.content_delta(refusal, true, &[], out);
        }
        for (pos, call) in delta.tool_calls.iter().flatten().enumerate() {
            let chat_index = call.index.unwrap_or(pos as u64);
            let known = self.tools.iter().rev().find(|t| t.chat_index == chat_index);
            let same_call = known.filter(|t| match (&call.id, &t.id) {
                (Some(new), Some(old)) => new == old,
                _ => true,
            });
            let name = call.function.as_ref().and_then(|f| f.name.as_deref());
            let output_index = match same_call {
                Some(t) => t.output_index,
                None => {
                    self.close_open(out);
                    let signed = signatures.get(pos).and_then(Option::as_deref);
                    let output_index = self.response.output.len() + usize::from(signed.is_some());
                    let call_id = call_id(
                        &self.response.output,
                        call.id.as_deref(),
                        &self.response.id,
                        output_index,
                    );
                    if let Some(sig) = signed {
                        let i = output_index - 1;
                        self.response.output.push(OutputItem::Reasoning {
                            id: item_id(&self.response.id, "rs", i),
                            summary: Vec::new(),
                            encrypted_content: Some(signature::encode(&call_id, sig)),
                            status: Status::Completed,
                        });
                        self.item_added(i, out);
                        self.item_done(i, Status::Completed, out);
                    }
                    self.response.output.push(OutputItem::FunctionCall {
                        id: item_id(&self.response.id, "fc", output_index),
                        call_id,
                        name: name.unwrap_or_default().to_owned(),
                        arguments: String::new(),
                        status: Status::InProgress,
                    });
                    self.tools.push(ToolCall {
                        chat_index,
                        id: call.id.clone(),
                        output_index,
                    });
                    self.item_added(output_index, out);
                    output_index
                }
            };
            let fragment = call
                .function
                .as_ref()
                .and_then(|f| f.arguments.as_deref())
                .unwrap_or_default();
            let seq = self.next_sequence;
            if let Some(OutputItem::FunctionCall {
                id,
                name: item_name,
                arguments,
                ..
            }) = self.response.output.get_mut(output_index)
            {
                if item_name.is_empty() {
                    if let Some(n) = name {
                        n.clone_into(item_name);
                    }
                }
                if fragment.is_empty() {
                    continue;
                }
                self.next_sequence = seq.saturating_add(1);
                arguments.push_str(fragment);
                StreamEvent::FunctionCallArgumentsDelta {
                    sequence_number: seq,
                    item_id: id,
                    output_index,
                    delta: fragment,
                }
                .write(out);
            }
        }
    }

    fn reasoning_delta(&mut self, text: &str, out: &mut Vec<u8>) {
        let index = match self.open {
            Open::Reasoning(i) => i,
            _ => {
                self.close_open(out);
                let i = self.response.output.len();
                self.response.output.push(OutputItem::Reasoning {
                    id: item_id(&self.response.id, "rs", i),
                    summary: Vec::new(),
                    encrypted_content: None,
                    status: Status::InProgress,
                });
                self.item_added(i, out);
                let seq = self.seq();
                if let Some(OutputItem::Reasoning { id, summary, .. }) =
                    self.response.output.get_mut(i)
                {
                    summary.push(SummaryText::new(""));
                    StreamEvent::ReasoningSummaryPartAdded {
                        sequence_number: seq,
                        item_id: id,
                        output_index: i,
                        summary_index: 0,
                        part: &SummaryText::new(""),
                    }
                    .write(out);
                }
                self.open = Open::Reasoning(i);
                i
            }
        };
        let seq = self.seq();
        if let Some(OutputItem::Reasoning { id, summary, .. }) = self.response.output.get_mut(index)
        {
            if let Some(part) = summary.last_mut() {
                part.text.push_str(text);
            }
            StreamEvent::ReasoningSummaryTextDelta {
                sequence_number: seq,
                item_id: id,
                output_index: index,
                summary_index: 0,
                delta: text,
            }
            .write(out);
        }
    }

    /// Text (or, with `refusal`, refusal text) for the open message, opening the message and
    /// a part of the right kind as needed.
    fn content_delta(&mut self, text: &str, refusal: bool, logprobs: &[Value], out: &mut Vec<u8>) {
        let (index, part_open) = match self.open {
            Open::Message { index, part_open } => (index, part_open),
            _ => {
                self.close_open(out);
                let i = self.response.output.len();
                self.response.output.push(OutputItem::Message {
                    id: item_id(&self.response.id, "msg", i),
                    status: Status::InProgress,
                    role: "assistant",
                    content: Vec::new(),
                });
                self.item_added(i, out);
                (i, false)
            }
        };
        let same_kind = |c: &OutputContent| matches!(c, OutputContent::Refusal { .. }) == refusal;
        let current_fits = part_open
            && match self.response.output.get(index) {
                Some(OutputItem::Message { content, .. }) => content.last().is_some_and(same_kind),
                _ => false,
            };
        if !current_fits {
            if part_open {
                self.close_part(index, out);
            }
            let seq = self.seq();
            if let Some(OutputItem::Message { id, content, .. }) =
                self.response.output.get_mut(index)
            {
                let part = if refusal {
                    OutputContent::Refusal {
                        refusal: String::new(),
                    }
                } else {
                    OutputContent::text("")
                };
                StreamEvent::ContentPartAdded {
                    sequence_number: seq,
                    item_id: id,
                    output_index: index,
                    content_index: content.len(),
                    part: &part,
                }
                .write(out);
                content.push(part);
            }
        }
        self.open = Open::Message {
            index,
            part_open: true,
        };
        let seq = self.seq();
        if let Some(OutputItem::Message { id, content, .. }) = self.response.output.get_mut(index) {
            let content_index = content.len().saturating_sub(1);
            match content.last_mut() {
                Some(OutputContent::OutputText {
                    text: t,
                    logprobs: all,
                    ..
                }) => {
                    t.push_str(text);
                    all.extend_from_slice(logprobs);
                    StreamEvent::OutputTextDelta {
                        sequence_number: seq,
                        item_id: id,
                        output_index: index,
                        content_index,
                        delta: text,
                        logprobs,
                    }
                    .write(out);
                }
                Some(OutputContent::Refusal { refusal: r }) => {
                    r.push_str(text);
                    StreamEvent::RefusalDelta {
                        sequence_number: seq,
                        item_id: id,
                        output_index: index,
                        content_index,
                        delta: text,
                    }
                    .write(out);
                }
                None => {}
            }
        }
    }

    fn item_added(&mut self, output_index: usize, out: &mut Vec<u8>) {
        let seq = self.seq();
        if let Some(item) = self.response.output.get(output_index) {
            StreamEvent::OutputItemAdded {
                sequence_number: seq,
                output_index,
                item,
            }
            .write(out);
        }
    }

    fn item_done(&mut self, output_index: usize, status: Status, out: &mut Vec<u8>) {
        let seq = self.seq();
        if let Some(item) = self.response.output.get_mut(output_index) {
            item.set_status(status);
            StreamEvent::OutputItemDone {
                sequence_number: seq,
                output_index,
                item,
            }
            .write(out);
        }
    }

    /// `.done` of the message's last content part, then `response.content_part.done`.
    fn close_part(&mut self, index: usize, out: &mut Vec<u8>) {
        let seq = self.seq();
        let seq2 = self.seq();
        let Some(OutputItem::Message { id, content, .. }) = self.response.output.get(index) else {
            return;
        };
        let content_index = content.len().saturating_sub(1);
        let Some(part) = content.last() else {
            return;
        };
        match part {
            OutputContent::OutputText { text, logprobs, .. } => StreamEvent::OutputTextDone {
                sequence_number: seq,
                item_id: id,
                output_index: index,
                content_index,
                text,
                logprobs,
            },
            OutputContent::Refusal { refusal } => StreamEvent::RefusalDone {
                sequence_number: seq,
                item_id: id,
                output_index: index,
                content_index,
                refusal,
            },
        }
        .write(out);
        StreamEvent::ContentPartDone {
            sequence_number: seq2,
            item_id: id,
            output_index: index,
            content_index,
            part,
        }
        .write(out);
    }

    /// Close the open reasoning or message item (function calls stay open).
    fn close_open(&mut self, out: &mut Vec<u8>) {
        self.close_open_as(Status::Completed, out);
    }

    fn close_open_as(&mut self, status: Status, out: &mut Vec<u8>) {
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => {}
            Open::Reasoning(i) => {
                let seq = self.seq();
                let seq2 = self.seq();
                if let Some(OutputItem::Reasoning { id, summary, .. }) = self.response.output.get(i)
                {
                    if let Some(part) = summary.last() {
                        StreamEvent::ReasoningSummaryTextDone {
                            sequence_number: seq,
                            item_id: id,
                            output_index: i,
                            summary_index: 0,
                            text: &part.text,
                        }
                        .write(out);
                        StreamEvent::ReasoningSummaryPartDone {
                            sequence_number: seq2,
                            item_id: id,
                            output_index: i,
                            summary_index: 0,
                            part,
                        }
                        .write(out);
                    }
                }
                // A reasoning item is whole even when the answer is cut short.
                self.item_done(i, Status::Completed, out);
            }
            Open::Message { index, part_open } => {
                if part_open {
                    self.close_part(index, out);
                }
                self.item_done(index, status, out);
            }
        }
    }

    /// End the answer: close every item, then `response.completed` (or `.incomplete`).
    fn close(&mut self, out: &mut Vec<u8>) {
        let (status, incomplete) = status_for(self.finish_reason.as_deref());
        let item_status = if status == Status::Incomplete {
            Status::Incomplete
        } else {
            Status::Completed
        };
        self.close_open_as(item_status, out);
        for t in std::mem::take(&mut self.tools) {
            let seq = self.seq();
            if let Some(OutputItem::FunctionCall {
                id,
                name,
                arguments,
                ..
            }) = self.response.output.get(t.output_index)
            {
                StreamEvent::FunctionCallArgumentsDone {
                    sequence_number: seq,
                    item_id: id,
                    output_index: t.output_index,
                    name,
                    arguments,
                }
                .write(out);
            }
            self.item_done(t.output_index, item_status, out);
        }
        self.response.status = status;
        self.response.incomplete_details = incomplete;
        self.response.usage = self.usage;
        let seq = self.seq();
        let response = &self.response;
        match status {
            Status::Incomplete => StreamEvent::Incomplete {
                sequence_number: seq,
                response,
            },
            _ => StreamEvent::Completed {
                sequence_number: seq,
                response,
            },
        }
        .write(out);
        self.state = State::Done;
    }

    /// A vendor error object mid-stream.
    fn fail_with(&mut self, err: &Value, out: &mut Vec<u8>) {
        let wrapped = serde_json::json!({ "error": err });
        let message = error_message(&wrapped)
            .unwrap_or("the provider reported an error mid-stream")
            .to_owned();
        let code = failure_code(err);
        let vendor_code = err
            .get("code")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .unwrap_or(code);
        let vendor_code = vendor_code.to_owned();
        self.fail(&message, &vendor_code, code, out);
    }

    /// An `error` event, then `response.failed` with the output so far.
    fn fail(&mut self, message: &str, event_code: &str, code: &str, out: &mut Vec<u8>) {
        self.start(out);
        let seq = self.seq();
        StreamEvent::Error {
            sequence_number: seq,
            code: Some(event_code),
            message,
            param: None,
        }
        .write(out);
        self.response.status = Status::Failed;
        self.response.error = Some(ResponseError {
            code: code.to_owned(),
            message: message.to_owned(),
        });
        self.response.usage = self.usage;
        let seq = self.seq();
        StreamEvent::Failed {
            sequence_number: seq,
            response: &self.response,
        }
        .write(out);
        self.state = State::Failed;
    }
}

/// The Responses `error.code` for a vendor's error object: `rate_limit_exceeded`,
/// `invalid_prompt` for a request the vendor refused, else `server_error`.
fn failure_code(err: &Value) -> &'static str {
    let status = ["code", "status"]
        .iter()
        .filter_map(|k| err.get(*k))
        .find_map(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        });
    match status {
        Some(429) => return "rate_limit_exceeded",
        Some(400 | 422) => return "invalid_prompt",
        Some(_) => return "server_error",
        None => {}
    }
    let words: String = ["type", "code", "status"]
        .iter()
        .filter_map(|k| err.get(*k).and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    if words.contains("rate_limit") || words.contains("resource_exhausted") {
        "rate_limit_exceeded"
    } else if words.contains("invalid_request") || words.contains("invalid_argument") {
        "invalid_prompt"
    } else {
        "server_error"
    }
}

impl StreamConverter for ChatStreamToResponses {
    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.parser.push_into(chunk, &mut self.events);
        for event in std::mem::take(&mut self.events) {
            self.on_event(&event, &mut out);
        }
        out
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(event) = self.parser.finish() {
            self.on_event(&event, &mut out);
        }
        match self.state {
            State::Done | State::Failed => {}
            _ if self.finish_reason.is_some() => self.close(&mut out),
            _ => self.fail(
                "the provider's stream ended before the answer was complete",
                "incomplete_stream",
                "server_error",
                &mut out,
            ),
        }
        out
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.map(|u| u.to_usage())
    }
}

/// The token entries of a chat choice's `logprobs` (`{"content": [...]}`): Responses'
/// `output_text.logprobs` entries have the same shape (`token`, `logprob`, `bytes`,
/// `top_logprobs`).
pub(crate) fn logprobs_of(logprobs: Option<&Value>) -> &[Value] {
    logprobs
        .and_then(|l| l.get("content"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn failure_codes() {
        assert_eq!(failure_code(&json!({"code": 429})), "rate_limit_exceeded");
        assert_eq!(
            failure_code(&json!({"type": "rate_limit_error"})),
            "rate_limit_exceeded"
        );
        assert_eq!(
            failure_code(
                &json!({"type": "invalid_request_error", "code": "context_length_exceeded"})
            ),
            "invalid_prompt"
        );
        assert_eq!(failure_code(&json!({"code": "500"})), "server_error");
        assert_eq!(failure_code(&json!("text")), "server_error");
    }
}
