//! Gemini `generateContent` answer -> OpenAI `chat.completion`, plus the pieces the stream
//! converter shares: finish reasons, usage, tool calls and errors.

use serde_json::{json, Value};

use super::types::{
    ApiError, FunctionCall, GenerateContentResponse, PromptFeedback, UsageMetadata,
};
use crate::error::{ErrorKind, GatewayError};
use crate::stream::Usage;

/// Convert a Gemini `generateContent` response body to an OpenAI `chat.completion` body.
///
/// `id` and `created` are the completion's id and timestamp (chosen by the caller); tool-call
/// ids are derived from `id` (`call_{id}_{n}`, `n` counting calls across the response).
/// A prompt Gemini blocked (`promptFeedback.blockReason`, no candidates) is a 400 with code
/// `content_filter`; a body that is not a Gemini response, or an `error` object, is an error
/// too.
pub fn gemini_response_to_chat(
    body: &[u8],
    model: &str,
    id: &str,
    created: u64,
) -> Result<Vec<u8>, GatewayError> {
    let resp: GenerateContentResponse = serde_json::from_slice(body).map_err(|e| {
        GatewayError::new(
            ErrorKind::BadGateway,
            "invalid_upstream_response",
            format!("Gemini returned an unreadable response: {e}"),
        )
    })?;
    if let Some(err) = &resp.error {
        return Err(upstream_error(err));
    }
    if resp.candidates.is_empty() {
        return Err(match resp.prompt_feedback.as_ref().and_then(blocked) {
            Some(e) => e,
            None => GatewayError::new(
                ErrorKind::BadGateway,
                "invalid_upstream_response",
                "Gemini returned no candidates",
            ),
        });
    }

    let mut calls_seen = 0usize;
    let mut choices = Vec::with_capacity(resp.candidates.len());
    for (pos, cand) in resp.candidates.iter().enumerate() {
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut tool_calls = Vec::new();
        for part in cand.content.iter().flat_map(|c| c.parts.iter()) {
            if let Some(call) = &part.function_call {
                let call_id = tool_call_id(id, calls_seen);
                calls_seen += 1;
                tool_calls.push(tool_call_json(
                    call,
                    &call_id,
                    part.thought_signature.as_deref(),
                ));
            } else if let Some(t) = &part.text {
                if part.thought == Some(true) {
                    reasoning.push_str(t);
                } else {
                    text.push_str(t);
                }
            }
        }
        let has_calls = !tool_calls.is_empty();
        let mut message = json!({
            "role": "assistant",
            "content": if text.is_empty() && has_calls { Value::Null } else { json!(text) },
        });
        if !reasoning.is_empty() {
            message["reasoning_content"] = json!(reasoning);
        }
        if has_calls {
            message["tool_calls"] = Value::Array(tool_calls);
        }
        let finish = finish_reason(cand.finish_reason.as_deref(), has_calls);
        choices.push(json!({
            "index": cand.index.map(u64::from).unwrap_or(pos as u64),
            "message": message,
            "logprobs": null,
            "finish_reason": finish,
        }));
    }

    let usage = resp.usage_metadata.unwrap_or_default();
    let out = json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": usage_json(&usage),
    });
    Ok(out.to_string().into_bytes())
}

/// `call_{id}_{n}`: deterministic, unique within one completion.
pub(crate) fn tool_call_id(id: &str, n: usize) -> String {
    format!("call_{id}_{n}")
}

/// An OpenAI tool call. Gemini's thought signature travels in
/// `extra_content.google.thought_signature` (where Google's OpenAI-compatible API puts it),
/// so a client that sends the message back unchanged lets the request converter restore it.
pub(crate) fn tool_call_json(call: &FunctionCall, call_id: &str, signature: Option<&str>) -> Value {
    let args = match &call.args {
        Some(v @ Value::Object(_)) => v.to_string(),
        _ => "{}".to_owned(),
    };
    let mut v = json!({
        "id": call_id,
        "type": "function",
        "function": { "name": call.name, "arguments": args },
    });
    if let Some(sig) = signature {
        v["extra_content"] = json!({ "google": { "thought_signature": sig } });
    }
    v
}

/// Gemini `finishReason` -> OpenAI `finish_reason`. `STOP` with function calls is
/// `tool_calls` (Gemini has no separate reason for it).
pub(crate) fn finish_reason(reason: Option<&str>, has_tool_calls: bool) -> &'static str {
    match reason {
        Some("MAX_TOKENS") => "length",
        Some(
            "SAFETY"
            | "RECITATION"
            | "BLOCKLIST"
            | "PROHIBITED_CONTENT"
            | "SPII"
            | "IMAGE_SAFETY"
            | "IMAGE_PROHIBITED_CONTENT"
            | "IMAGE_RECITATION",
        ) => "content_filter",
        _ if has_tool_calls => "tool_calls",
        _ => "stop",
    }
}

/// Usage in OpenAI's terms: thinking tokens count as completion tokens (they are billed as
/// output), tool-use prompt tokens as prompt tokens.
pub(crate) fn usage_from(meta: &UsageMetadata) -> Usage {
    let prompt = meta
        .prompt_token_count
        .unwrap_or(0)
        .saturating_add(meta.tool_use_prompt_token_count.unwrap_or(0));
    let completion = meta
        .candidates_token_count
        .unwrap_or(0)
        .saturating_add(meta.thoughts_token_count.unwrap_or(0));
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: meta
            .total_token_count
            .unwrap_or(prompt.saturating_add(completion)),
        cached_tokens: meta.cached_content_token_count.unwrap_or(0),
        cache_creation_tokens: 0,
    }
}

/// OpenAI's `usage` object, with `completion_tokens_details.reasoning_tokens` when Gemini
/// reported thinking tokens.
pub(crate) fn usage_json(meta: &UsageMetadata) -> Value {
    let mut v = usage_from(meta).to_openai_json();
    if let Some(thoughts) = meta.thoughts_token_count.filter(|n| *n > 0) {
        v["completion_tokens_details"] = json!({ "reasoning_tokens": thoughts });
    }
    v
}

/// The error for a prompt Gemini refused to answer, if `feedback` says it was blocked.
pub(crate) fn blocked(feedback: &PromptFeedback) -> Option<GatewayError> {
    let reason = feedback.block_reason.as_deref()?;
    let detail = feedback
        .block_reason_message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    Some(
        GatewayError::invalid(
            "content_filter",
            format!("Gemini blocked the prompt (blockReason {reason}){detail}"),
        )
        .with_param("messages"),
    )
}

/// HTTP status carried by a Gemini error object (`code`), if any.
pub(crate) fn error_status(err: &ApiError) -> Option<u16> {
    err.code
        .as_ref()
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c))
}

fn upstream_error(err: &ApiError) -> GatewayError {
    let kind = error_status(err).map_or(ErrorKind::BadGateway, ErrorKind::from_status);
    GatewayError::new(
        kind,
        "upstream_error",
        err.message
            .clone()
            .unwrap_or_else(|| "Gemini returned an error".to_owned()),
    )
}

/// Longest non-JSON error body quoted back to the client.
const MAX_QUOTED: usize = 1000;

/// Convert a Gemini error body (`{"error":{"code","message","status"}}`, also wrapped in a
/// JSON array as `streamGenerateContent` without `alt=sse` sends it) to OpenAI's error shape
/// for the same HTTP `status`: `type` from the status, `code` Gemini's `status` string (e.g.
/// `RESOURCE_EXHAUSTED`). A body that is not JSON is quoted (truncated) as the message.
pub fn error_to_openai(status: u16, body: &[u8]) -> Vec<u8> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let err = parsed
        .map(|v| match v {
            Value::Array(items) => items.into_iter().next().unwrap_or(Value::Null),
            other => other,
        })
        .and_then(|v| v.get("error").cloned())
        .and_then(|e| serde_json::from_value::<ApiError>(e).ok());
    let kind = ErrorKind::from_status(status);
    let (message, code) = match err {
        Some(e) => (
            e.message
                .unwrap_or_else(|| format!("Gemini returned HTTP {status}")),
            e.status.unwrap_or_else(|| status.to_string()),
        ),
        None => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let message = if text.is_empty() {
                format!("Gemini returned HTTP {status}")
            } else {
                let cut: String = text.chars().take(MAX_QUOTED).collect();
                cut
            };
            (message, status.to_string())
        }
    };
    json!({
        "error": { "message": message, "type": kind.type_name(), "param": null, "code": code }
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason(Some("STOP"), false), "stop");
        assert_eq!(finish_reason(Some("STOP"), true), "tool_calls");
        assert_eq!(finish_reason(None, true), "tool_calls");
        assert_eq!(finish_reason(Some("MAX_TOKENS"), true), "length");
        assert_eq!(finish_reason(Some("SPII"), false), "content_filter");
        assert_eq!(
            finish_reason(Some("PROHIBITED_CONTENT"), true),
            "content_filter"
        );
        assert_eq!(
            finish_reason(Some("MALFORMED_FUNCTION_CALL"), false),
            "stop"
        );
        assert_eq!(finish_reason(Some("OTHER"), false), "stop");
    }

    #[test]
    fn non_json_error_is_quoted() {
        let out = error_to_openai(502, b"<html>bad gateway</html>");
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"]["message"], "<html>bad gateway</html>");
        assert_eq!(v["error"]["type"], "api_error");
        assert_eq!(v["error"]["code"], "502");
        let out = error_to_openai(503, b"");
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"]["message"], "Gemini returned HTTP 503");
    }

    #[test]
    fn garbage_response_is_bad_gateway() {
        let e = gemini_response_to_chat(b"nope", "m", "id", 1).unwrap_err();
        assert_eq!(e.status(), 502);
        let e = gemini_response_to_chat(b"{}", "m", "id", 1).unwrap_err();
        assert_eq!(e.status(), 502);
        let e = gemini_response_to_chat(
            br#"{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}"#,
            "m",
            "id",
            1,
        )
        .unwrap_err();
        assert_eq!(e.status(), 429);
        assert_eq!(e.message, "slow down");
    }
}
