//! Anthropic Messages response and error bodies -> OpenAI chat-completions shapes.

use super::super::types::{error_message, MessagesResponse, ResponseBlock};
use crate::error::{vendor_error_body, ErrorKind, GatewayError};
use crate::stream::Usage;
use serde::Serialize;
use serde_json::{json, Value};

/// OpenAI's `finish_reason` for Anthropic's `stop_reason`.
pub(crate) fn finish_reason(stop_reason: Option<&str>, has_tool_calls: bool) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        Some("end_turn" | "stop_sequence" | "pause_turn") => "stop",
        _ if has_tool_calls => "tool_calls",
        _ => "stop",
    }
}

/// Translate a non-streaming Anthropic Messages response to a `chat.completion`.
///
/// Text blocks are concatenated into `content` (null when the answer is only tool calls),
/// `thinking` blocks into `reasoning_content`, `tool_use` blocks become `tool_calls` with the
/// input as a JSON string; other block types are skipped. `id` and `model` come from the
/// response (`id_fallback` if it has none). Usage counts cache reads and writes in
/// `prompt_tokens`, as OpenAI does, with cache reads also in
/// `prompt_tokens_details.cached_tokens`.
///
/// A body that is not a Messages response is a 502; an error body sent with a 2xx status
/// keeps the vendor's message.
pub fn messages_response_to_chat(
    body: &[u8],
    id_fallback: &str,
    created: u64,
) -> Result<Vec<u8>, GatewayError> {
    messages_response_to_chat_with_usage(body, id_fallback, created).map(|(out, _)| out)
}

/// [`messages_response_to_chat`], also returning the usage it wrote (so nobody re-reads it).
pub fn messages_response_to_chat_with_usage(
    body: &[u8],
    id_fallback: &str,
    created: u64,
) -> Result<(Vec<u8>, Usage), GatewayError> {
    let resp = MessagesResponse::from_body(body).map_err(|e| {
        GatewayError::new(
            ErrorKind::BadGateway,
            "invalid_upstream_response",
            format!("Anthropic returned a response that is not a Messages object: {e}"),
        )
    })?;
    if resp.kind.as_deref() == Some("error") || resp.error.is_some() {
        let message = resp
            .error
            .and_then(|e| e.message)
            .unwrap_or_else(|| "Anthropic returned an error".into());
        return Err(GatewayError::new(
            ErrorKind::BadGateway,
            "upstream_error",
            message,
        ));
    }

    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    for block in &resp.content {
        match block {
            ResponseBlock::Text { text: t } => text.get_or_insert_with(String::new).push_str(t),
            ResponseBlock::Thinking { thinking } => {
                reasoning.get_or_insert_with(String::new).push_str(thinking)
            }
            ResponseBlock::ToolUse { id, name, input } => tool_calls.push(json!({
                "id": id,
                "type": "function",
                "function": { "name": name, "arguments": arguments_string(input) },
            })),
            ResponseBlock::Other => {}
        }
    }

    let finish = finish_reason(resp.stop_reason.as_deref(), !tool_calls.is_empty());
    let content = match &text {
        Some(t) => Some(t.as_str()),
        None if tool_calls.is_empty() => Some(""),
        None => None,
    };
    let usage = resp.usage.unwrap_or_default().to_usage();
    // Serialised straight from borrowed parts: no intermediate `Value` tree.
    let out = Completion {
        id: resp.id.as_deref().unwrap_or(id_fallback),
        object: "chat.completion",
        created,
        model: resp.model.as_deref().unwrap_or_default(),
        choices: [Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content,
                reasoning_content: reasoning.as_deref(),
                tool_calls,
            },
            logprobs: (),
            finish_reason: finish,
        }],
        usage: usage.to_openai_json(),
    };
    let bytes = serde_json::to_vec(&out).map_err(|e| {
        GatewayError::new(
            ErrorKind::Internal,
            "encoding_failed",
            format!("could not encode the chat completion: {e}"),
        )
    })?;
    Ok((bytes, usage))
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    usage: Value,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    logprobs: (),
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<Value>,
}

/// A tool input as OpenAI's `arguments` string; a missing input is `{}`.
pub(crate) fn arguments_string(input: &Value) -> String {
    match input {
        Value::Null => "{}".into(),
        other => other.to_string(),
    }
}

/// Translate an Anthropic error body (`{"type":"error","error":{"type","message"}}`) to
/// OpenAI's error shape, keeping the message and Anthropic's error type. A body that is not
/// JSON gets a generic message naming the status.
pub fn error_to_openai(status: u16, body: &[u8]) -> Vec<u8> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed.as_ref().and_then(error_message);
    let vendor_type = parsed
        .as_ref()
        .and_then(|v| v.pointer("/error/type"))
        .and_then(Value::as_str);
    match message {
        Some(m) => vendor_error_body(status, vendor_type, m),
        None => vendor_error_body(
            status,
            vendor_type,
            &format!("Anthropic returned HTTP {status}"),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn finish_reasons() {
        let table = [
            (Some("end_turn"), false, "stop"),
            (Some("stop_sequence"), false, "stop"),
            (Some("pause_turn"), false, "stop"),
            (Some("max_tokens"), false, "length"),
            (Some("model_context_window_exceeded"), false, "length"),
            (Some("tool_use"), true, "tool_calls"),
            (Some("refusal"), false, "content_filter"),
            (None, true, "tool_calls"),
            (None, false, "stop"),
            (Some("something_new"), false, "stop"),
        ];
        for (stop, tools, want) in table {
            assert_eq!(finish_reason(stop, tools), want, "{stop:?} {tools}");
        }
    }
}
