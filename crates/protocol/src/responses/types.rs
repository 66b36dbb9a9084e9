//! Wire types of the Responses API that the gateway writes: the response object, its output
//! items and usage, and the streaming events.
//!
//! Shapes follow OpenAI's API reference and the official SDKs' types. The request is read
//! field by field (see `request.rs`) so each error can name the field at fault; only what
//! the gateway writes is typed here.

use serde::Serialize;
use serde_json::{Map, Value};

/// `status` of a response or of an output item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    InProgress,
    Completed,
    Incomplete,
    Failed,
}

/// The response object (`"object": "response"`), as returned by `POST /v1/responses` and
/// carried by the lifecycle events of a stream.
#[derive(Debug, Clone, Serialize)]
pub struct ResponseObject {
    pub id: String,
    pub object: &'static str,
    pub created_at: u64,
    pub status: Status,
    pub error: Option<ResponseError>,
    pub incomplete_details: Option<IncompleteDetails>,
    pub model: String,
    pub output: Vec<OutputItem>,
    pub usage: Option<ResponsesUsage>,
    /// Request parameters echoed back (`instructions`, `tools`, `temperature`, ...): see
    /// [`RequestEcho`](super::RequestEcho).
    #[serde(flatten)]
    pub echo: Map<String, Value>,
}

/// `error` of a failed response: `{"code", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResponseError {
    pub code: String,
    pub message: String,
}

/// Why a response is `incomplete`: `max_output_tokens` or `content_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IncompleteDetails {
    pub reason: &'static str,
}

/// One item of `output`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem {
    /// An assistant message: `output_text` and `refusal` parts.
    Message {
        id: String,
        status: Status,
        role: &'static str,
        content: Vec<OutputContent>,
    },
    /// A call of a function tool; the client answers with a `function_call_output` item
    /// carrying the same `call_id`.
    FunctionCall {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        status: Status,
    },
    /// The model's reasoning, as the vendor reported it (Claude's thinking, Gemini's thought
    /// summaries, DeepSeek/Qwen/vLLM's `reasoning_content`), as summary text; or, with an
    /// empty summary, the carrier of a Gemini thought signature.
    Reasoning {
        id: String,
        summary: Vec<SummaryText>,
        /// Opaque vendor state the client sends back with the item: Gemini's thought
        /// signature of the function call that follows (see `signature.rs`).
        #[serde(skip_serializing_if = "Option::is_none")]
        encrypted_content: Option<String>,
        status: Status,
    },
}

impl OutputItem {
    pub fn id(&self) -> &str {
        match self {
            OutputItem::Message { id, .. }
            | OutputItem::FunctionCall { id, .. }
            | OutputItem::Reasoning { id, .. } => id,
        }
    }

    pub(crate) fn set_status(&mut self, new: Status) {
        match self {
            OutputItem::Message { status, .. }
            | OutputItem::FunctionCall { status, .. }
            | OutputItem::Reasoning { status, .. } => *status = new,
        }
    }
}

/// A content part of an output message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputContent {
    OutputText {
        text: String,
        annotations: Vec<Value>,
        logprobs: Vec<Value>,
    },
    Refusal {
        refusal: String,
    },
}

impl OutputContent {
    pub(crate) fn text(text: impl Into<String>) -> Self {
        OutputContent::OutputText {
            text: text.into(),
            annotations: Vec::new(),
            logprobs: Vec::new(),
        }
    }
}

/// `{"type": "summary_text", "text"}` in a reasoning item's `summary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SummaryText {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
}

impl SummaryText {
    pub(crate) fn new(text: impl Into<String>) -> Self {
        SummaryText {
            kind: "summary_text",
            text: text.into(),
        }
    }
}

/// The Responses API's `usage`. `input_tokens` includes the cached ones, `output_tokens` the
/// reasoning ones, as in OpenAI's own accounting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ResponsesUsage {
    pub input_tokens: u64,
    pub input_tokens_details: InputTokensDetails,
    pub output_tokens: u64,
    pub output_tokens_details: OutputTokensDetails,
    pub total_tokens: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InputTokensDetails {
    pub cached_tokens: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutputTokensDetails {
    pub reasoning_tokens: u64,
}

impl ResponsesUsage {
    /// The gateway's usage in OpenAI chat terms (what metrics and token accounting use).
    pub fn to_usage(&self) -> crate::Usage {
        crate::Usage {
            prompt_tokens: self.input_tokens,
            completion_tokens: self.output_tokens,
            total_tokens: self.total_tokens,
            cached_tokens: self.input_tokens_details.cached_tokens,
            cache_creation_tokens: 0,
        }
    }

    /// From a chat-completions `usage` object (`prompt_tokens`, `completion_tokens`,
    /// `prompt_tokens_details.cached_tokens`, `completion_tokens_details.reasoning_tokens`).
    /// `None` unless it is an object.
    pub fn from_chat_usage(usage: &Value) -> Option<ResponsesUsage> {
        let u = crate::Usage::from_openai_json(usage)?;
        let reasoning = usage
            .pointer("/completion_tokens_details/reasoning_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        Some(ResponsesUsage {
            input_tokens: u.prompt_tokens,
            input_tokens_details: InputTokensDetails {
                cached_tokens: u.cached_tokens,
            },
            output_tokens: u.completion_tokens,
            output_tokens_details: OutputTokensDetails {
                reasoning_tokens: reasoning,
            },
            total_tokens: u.total_tokens,
        })
    }
}

/// One event of a Responses stream; written as `event: <type>` plus `data: {"type": ...,
/// "sequence_number": n, ...}`.
#[derive(Debug, Serialize)]
#[serde(tag = "type")]
pub enum StreamEvent<'a> {
    #[serde(rename = "response.created")]
    Created {
        sequence_number: u64,
        response: &'a ResponseObject,
    },
    #[serde(rename = "response.in_progress")]
    InProgress {
        sequence_number: u64,
        response: &'a ResponseObject,
    },
    #[serde(rename = "response.completed")]
    Completed {
        sequence_number: u64,
        response: &'a ResponseObject,
    },
    #[serde(rename = "response.incomplete")]
    Incomplete {
        sequence_number: u64,
        response: &'a ResponseObject,
    },
    #[serde(rename = "response.failed")]
    Failed {
        sequence_number: u64,
        response: &'a ResponseObject,
    },
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded {
        sequence_number: u64,
        output_index: usize,
        item: &'a OutputItem,
    },
    #[serde(rename = "response.output_item.done")]
    OutputItemDone {
        sequence_number: u64,
        output_index: usize,
        item: &'a OutputItem,
    },
    #[serde(rename = "response.content_part.added")]
    ContentPartAdded {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        part: &'a OutputContent,
    },
    #[serde(rename = "response.content_part.done")]
    ContentPartDone {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        part: &'a OutputContent,
    },
    #[serde(rename = "response.output_text.delta")]
    OutputTextDelta {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        delta: &'a str,
        logprobs: &'a [Value],
    },
    #[serde(rename = "response.output_text.done")]
    OutputTextDone {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        text: &'a str,
        logprobs: &'a [Value],
    },
    #[serde(rename = "response.refusal.delta")]
    RefusalDelta {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        delta: &'a str,
    },
    #[serde(rename = "response.refusal.done")]
    RefusalDone {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        refusal: &'a str,
    },
    #[serde(rename = "response.function_call_arguments.delta")]
    FunctionCallArgumentsDelta {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        delta: &'a str,
    },
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCallArgumentsDone {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        name: &'a str,
        arguments: &'a str,
    },
    #[serde(rename = "response.reasoning_summary_part.added")]
    ReasoningSummaryPartAdded {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        summary_index: usize,
        part: &'a SummaryText,
    },
    #[serde(rename = "response.reasoning_summary_part.done")]
    ReasoningSummaryPartDone {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        summary_index: usize,
        part: &'a SummaryText,
    },
    #[serde(rename = "response.reasoning_summary_text.delta")]
    ReasoningSummaryTextDelta {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        summary_index: usize,
        delta: &'a str,
    },
    #[serde(rename = "response.reasoning_summary_text.done")]
    ReasoningSummaryTextDone {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        summary_index: usize,
        text: &'a str,
    },
    /// A stream-level error (`{"type":"error","code","message","param"}`); the gateway sends
    /// it right before `response.failed`.
    #[serde(rename = "error")]
    Error {
        sequence_number: u64,
        code: Option<&'a str>,
        message: &'a str,
        param: Option<&'a str>,
    },
}

impl StreamEvent<'_> {
    /// The event's `type`, also its SSE `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            StreamEvent::Created { .. } => "response.created",
            StreamEvent::InProgress { .. } => "response.in_progress",
            StreamEvent::Completed { .. } => "response.completed",
            StreamEvent::Incomplete { .. } => "response.incomplete",
            StreamEvent::Failed { .. } => "response.failed",
            StreamEvent::OutputItemAdded { .. } => "response.output_item.added",
            StreamEvent::OutputItemDone { .. } => "response.output_item.done",
            StreamEvent::ContentPartAdded { .. } => "response.content_part.added",
            StreamEvent::ContentPartDone { .. } => "response.content_part.done",
            StreamEvent::OutputTextDelta { .. } => "response.output_text.delta",
            StreamEvent::OutputTextDone { .. } => "response.output_text.done",
            StreamEvent::RefusalDelta { .. } => "response.refusal.delta",
            StreamEvent::RefusalDone { .. } => "response.refusal.done",
            StreamEvent::FunctionCallArgumentsDelta { .. } => {
                "response.function_call_arguments.delta"
            }
            StreamEvent::FunctionCallArgumentsDone { .. } => {
                "response.function_call_arguments.done"
            }
            StreamEvent::ReasoningSummaryPartAdded { .. } => {
                "response.reasoning_summary_part.added"
            }
            StreamEvent::ReasoningSummaryPartDone { .. } => "response.reasoning_summary_part.done",
            StreamEvent::ReasoningSummaryTextDelta { .. } => {
                "response.reasoning_summary_text.delta"
            }
            StreamEvent::ReasoningSummaryTextDone { .. } => "response.reasoning_summary_text.done",
            StreamEvent::Error { .. } => "error",
        }
    }

    /// Append the event in SSE wire form.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(self.name().as_bytes());
        out.extend_from_slice(b"\ndata: ");
        // Serialising these types into a Vec cannot fail; keep the event well-formed anyway.
        if serde_json::to_writer(&mut *out, self).is_err() {
            out.extend_from_slice(b"{}");
        }
        out.extend_from_slice(b"\n\n");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_are_tagged_and_named_alike() {
        let item = OutputItem::FunctionCall {
            id: "fc_1".into(),
            call_id: "call_1".into(),
            name: "f".into(),
            arguments: String::new(),
            status: Status::InProgress,
        };
        let ev = StreamEvent::OutputItemAdded {
            sequence_number: 3,
            output_index: 0,
            item: &item,
        };
        let mut out = Vec::new();
        ev.write(&mut out);
        let text = String::from_utf8(out).unwrap();
        let (head, data) = text.split_once("\ndata: ").unwrap();
        assert_eq!(head, "event: response.output_item.added");
        let v: Value = serde_json::from_str(data.trim_end()).unwrap();
        assert_eq!(
            v,
            json!({"type": "response.output_item.added", "sequence_number": 3, "output_index": 0,
                "item": {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f",
                    "arguments": "", "status": "in_progress"}})
        );
        let d = StreamEvent::OutputTextDelta {
            sequence_number: 1,
            item_id: "m",
            output_index: 0,
            content_index: 0,
            delta: "x",
            logprobs: &[],
        };
        assert_eq!(serde_json::to_value(&d).unwrap()["logprobs"], json!([]));
    }

    #[test]
    fn usage_from_chat_keeps_cached_and_reasoning_tokens() {
        let u = ResponsesUsage::from_chat_usage(&json!({
            "prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 5}
        }))
        .unwrap();
        assert_eq!(
            serde_json::to_value(u).unwrap(),
            json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4},
                "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 5},
                "total_tokens": 17})
        );
        assert_eq!(u.to_usage().cached_tokens, 4);
        assert_eq!(ResponsesUsage::from_chat_usage(&json!(null)), None);
    }
}
