//! OpenAI chat-completions response and error bodies -> Anthropic Messages shapes.

use super::super::types::{anthropic_error_type, error_message, ChatCompletion};
use crate::error::{ErrorKind, GatewayError};
use crate::stream::Usage;
use serde_json::{json, Value};

/// Anthropic's `stop_reason` for OpenAI's `finish_reason`. Vendors that answer a tool call
/// with `stop` (several do) still get `tool_use`, which is what agent loops key on.
pub(crate) fn stop_reason(finish_reason: Option<&str>, has_tool_calls: bool) -> &'static str {
    match finish_reason {
        _ if has_tool_calls => "tool_use",
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic's usage object for OpenAI's usage: cached prompt tokens are reported apart, as
/// Anthropic's `input_tokens` excludes cache reads.
pub(crate) fn anthropic_usage(usage: &Usage) -> Value {
    let mut v = json!({
        "input_tokens": usage.prompt_tokens.saturating_sub(usage.cached_tokens),
        "output_tokens": usage.completion_tokens,
    });
    if usage.cached_tokens > 0 {
        v["cache_read_input_tokens"] = usage.cached_tokens.into();
    }
    v
}

/// Translate a `chat.completion` from an OpenAI-compatible vendor to an Anthropic Message.
///
/// Content blocks in order: `thinking` (from `reasoning_content`/`reasoning`, with an empty
/// signature), `text` (content, or the refusal), one `tool_use` per tool call with the
/// arguments parsed into `input`. Only the first choice is used. A body that is not a chat
/// completion, carries an error object, or has tool-call arguments that are not a JSON object
/// is a 502.
pub fn chat_response_to_messages(body: &[u8]) -> Result<Vec<u8>, GatewayError> {
    let resp: ChatCompletion = serde_json::from_slice(body).map_err(|e| {
        bad_gateway(format!(
            "the provider returned a response that is not a chat completion: {e}"
        ))
    })?;
    if let Some(err) = &resp.error {
        let message = error_message(&json!({ "error": err }))
            .unwrap_or("the provider returned an error")
            .to_owned();
        return Err(bad_gateway(message));
    }

    let choice = resp.choices.first();
    let message = choice.and_then(|c| c.message.as_ref());
    let mut content = Vec::new();
    let mut refused = false;
    if let Some(m) = message {
        if let Some(reasoning) = m.reasoning_text() {
            content.push(json!({ "type": "thinking", "thinking": reasoning, "signature": "" }));
        }
        let text = m.text();
        if !text.is_empty() {
            content.push(json!({ "type": "text", "text": text }));
        } else if let Some(refusal) = m.refusal.as_deref().filter(|r| !r.is_empty()) {
            refused = true;
            content.push(json!({ "type": "text", "text": refusal }));
        }
        for (i, call) in m.tool_calls.iter().flatten().enumerate() {
            let function = call.function.as_ref();
            let raw = function
                .and_then(|f| f.arguments.as_deref())
                .unwrap_or_default();
            let input: Value = if raw.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(raw).map_err(|e| {
                    bad_gateway(format!(
                        "the provider returned tool-call arguments that are not JSON: {e}"
                    ))
                })?
            };
            if !input.is_object() {
                return Err(bad_gateway(
                    "the provider returned tool-call arguments that are not a JSON object".into(),
                ));
            }
            content.push(json!({
                "type": "tool_use",
                "id": call.id.clone().unwrap_or_else(|| format!("toolu_{i}")),
                "name": function.and_then(|f| f.name.as_deref()).unwrap_or_default(),
                "input": input,
            }));
        }
    }
    let has_tools = content.iter().any(|b| b["type"] == "tool_use");
    let stop = if refused {
        "refusal"
    } else {
        stop_reason(choice.and_then(|c| c.finish_reason.as_deref()), has_tools)
    };
    let usage = resp
        .usage
        .as_ref()
        .and_then(Usage::from_openai_json)
        .unwrap_or_default();
    let out = json!({
        "id": message_id(resp.id.as_deref()),
        "type": "message",
        "role": "assistant",
        "model": resp.model.unwrap_or_default(),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": anthropic_usage(&usage),
    });
    Ok(out.to_string().into_bytes())
}

/// A Messages id (`msg_...`) for the vendor's completion id: Anthropic clients see the id
/// shape they know, and the vendor's id stays recognisable in it (`chatcmpl-abc` ->
/// `msg_abc`).
pub(crate) fn message_id(vendor_id: Option<&str>) -> String {
    let id = vendor_id.unwrap_or_default();
    if id.starts_with("msg_") {
        return id.to_owned();
    }
    let rest = id
        .strip_prefix("chatcmpl-")
        .or_else(|| id.strip_prefix("chatcmpl_"))
        .unwrap_or(id);
    if rest.is_empty() {
        return "msg_gateway".to_owned();
    }
    format!("msg_{rest}")
}

fn bad_gateway(message: String) -> GatewayError {
    GatewayError::new(ErrorKind::BadGateway, "invalid_upstream_response", message)
}

/// Translate an OpenAI-style error body to Anthropic's
/// `{"type":"error","error":{"type","message"}}`. The error type follows the HTTP status, as
/// Anthropic's SDKs expect; the message is kept (a generic one for non-JSON bodies).
///
/// Also the way to answer an Anthropic client with a [`GatewayError`]:
/// `openai_error_to_anthropic(err.status(), &err.body())`.
pub fn openai_error_to_anthropic(status: u16, body: &[u8]) -> Vec<u8> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(error_message)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("the provider returned HTTP {status}"));
    json!({
        "type": "error",
        "error": { "type": anthropic_error_type(status), "message": message },
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons() {
        let table = [
            (Some("stop"), false, "end_turn"),
            (None, false, "end_turn"),
            (Some("length"), false, "max_tokens"),
            (Some("tool_calls"), false, "tool_use"),
            (Some("function_call"), false, "tool_use"),
            (Some("content_filter"), false, "refusal"),
            (Some("stop"), true, "tool_use"),
            (Some("something_new"), false, "end_turn"),
        ];
        for (finish, tools, want) in table {
            assert_eq!(stop_reason(finish, tools), want, "{finish:?} {tools}");
        }
    }
}
