//! Bedrock Converse response and error bodies -> OpenAI chat-completions shapes.

use crate::error::{ErrorKind, GatewayError};
use crate::stream::Usage;
use serde::Deserialize;
use serde_json::{json, Value};

/// OpenAI's `finish_reason` for Converse's `stopReason`.
pub(crate) fn finish_reason(stop_reason: Option<&str>, has_tool_calls: bool) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("content_filtered" | "guardrail_intervened") => "content_filter",
        Some("end_turn" | "stop_sequence") => "stop",
        _ if has_tool_calls => "tool_calls",
        _ => "stop",
    }
}

/// Converse's `usage` object (also the `metadata` event's).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConverseUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_input_tokens: u64,
    #[serde(default)]
    pub cache_write_input_tokens: u64,
}

impl ConverseUsage {
    /// In OpenAI's terms: cache reads and writes count as prompt tokens (Bedrock's
    /// `inputTokens` leaves them out), cache reads also as `cached_tokens`.
    pub fn to_usage(self) -> Usage {
        let prompt = self
            .input_tokens
            .saturating_add(self.cache_read_input_tokens)
            .saturating_add(self.cache_write_input_tokens);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: self.output_tokens,
            total_tokens: prompt.saturating_add(self.output_tokens),
            cached_tokens: self.cache_read_input_tokens,
            cache_creation_tokens: self.cache_write_input_tokens,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseResponse {
    output: Option<Output>,
    stop_reason: Option<String>,
    usage: Option<ConverseUsage>,
    /// Present when an error body came with a 2xx status.
    #[serde(alias = "Message")]
    message: Option<String>,
}

#[derive(Deserialize)]
struct Output {
    message: Option<OutputMessage>,
}

#[derive(Deserialize)]
struct OutputMessage {
    #[serde(default)]
    content: Vec<Value>,
}

/// Translate a Converse response body to a `chat.completion`, returning the usage too.
///
/// Converse answers carry no id and no model, so both are passed in. `text` blocks are
/// concatenated into `content` (null when the answer is only tool calls),
/// `reasoningContent.reasoningText.text` into `reasoning_content`, `toolUse` blocks become
/// `tool_calls` (input as a JSON string); other blocks are skipped. A body that is not a
/// Converse response is a 502.
pub fn converse_response_to_chat(
    body: &[u8],
    model: &str,
    id: &str,
    created: u64,
) -> Result<(Vec<u8>, Usage), GatewayError> {
    let resp: ConverseResponse = serde_json::from_slice(body).map_err(|e| {
        GatewayError::new(
            ErrorKind::BadGateway,
            "invalid_upstream_response",
            format!("Bedrock returned a response that is not a Converse object: {e}"),
        )
    })?;
    let Some(message) = resp.output.and_then(|o| o.message) else {
        let text = resp
            .message
            .unwrap_or_else(|| "Bedrock returned a response without output.message".into());
        return Err(GatewayError::new(
            ErrorKind::BadGateway,
            "invalid_upstream_response",
            text,
        ));
    };
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    for block in &message.content {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            text.get_or_insert_with(String::new).push_str(t);
        } else if let Some(t) = block
            .pointer("/reasoningContent/reasoningText/text")
            .and_then(Value::as_str)
        {
            reasoning.get_or_insert_with(String::new).push_str(t);
        } else if let Some(tool) = block.get("toolUse") {
            let input = tool.get("input").cloned().unwrap_or(Value::Null);
            tool_calls.push(json!({
                "id": tool.get("toolUseId").and_then(Value::as_str).unwrap_or_default(),
                "type": "function",
                "function": {
                    "name": tool.get("name").and_then(Value::as_str).unwrap_or_default(),
                    "arguments": arguments_string(&input),
                },
            }));
        }
    }
    let finish = finish_reason(resp.stop_reason.as_deref(), !tool_calls.is_empty());
    let content = match text {
        Some(t) => Value::String(t),
        None if tool_calls.is_empty() => Value::String(String::new()),
        None => Value::Null,
    };
    let mut msg = json!({ "role": "assistant", "content": content });
    if let Some(r) = reasoning {
        msg["reasoning_content"] = Value::String(r);
    }
    if !tool_calls.is_empty() {
        msg["tool_calls"] = Value::Array(tool_calls);
    }
    let usage = resp.usage.unwrap_or_default().to_usage();
    let out = json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{ "index": 0, "message": msg, "logprobs": null, "finish_reason": finish }],
        "usage": usage.to_openai_json(),
    });
    Ok((out.to_string().into_bytes(), usage))
}

/// A tool input as OpenAI's `arguments` string; a missing input is `{}`.
pub(crate) fn arguments_string(input: &Value) -> String {
    match input {
        Value::Null => "{}".into(),
        other => other.to_string(),
    }
}

/// The status an OpenAI client gets for a Bedrock exception, and whether it is known.
///
/// AWS's documented statuses are kept where an OpenAI client reads them the same way; the
/// exceptions that mean "retry later" are 429 whatever AWS sends (`ServiceQuotaExceeded` is
/// documented as 400, `ModelNotReady` as 429), and `ModelErrorException` (424) is a 502.
pub fn exception_status(exception: &str) -> Option<u16> {
    // Event-stream exceptions are camelCase (`throttlingException`); HTTP ones PascalCase.
    let known: &[(&str, u16)] = &[
        ("ValidationException", 400),
        ("AccessDeniedException", 403),
        ("UnrecognizedClientException", 403),
        ("InvalidSignatureException", 403),
        ("ExpiredTokenException", 403),
        ("IncompleteSignatureException", 403),
        ("MissingAuthenticationTokenException", 403),
        ("ResourceNotFoundException", 404),
        ("ModelTimeoutException", 408),
        ("ConflictException", 409),
        ("ThrottlingException", 429),
        ("TooManyRequestsException", 429),
        ("ServiceQuotaExceededException", 429),
        ("ModelNotReadyException", 429),
        ("InternalServerException", 500),
        ("ModelErrorException", 502),
        ("ModelStreamErrorException", 502),
        ("ServiceUnavailableException", 503),
    ];
    known
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(exception))
        .map(|(_, status)| *status)
}

/// The exception name in an `x-amzn-errortype` value or a `__type` field:
/// `ValidationException:http://internal.amazon.com/...` and
/// `com.amazonaws.bedrock#ValidationException` both give `ValidationException`.
pub fn exception_name(raw: &str) -> &str {
    let name = raw.split(':').next().unwrap_or(raw);
    let name = name.rsplit('#').next().unwrap_or(name);
    name.trim()
}

/// Translate a Bedrock error to OpenAI's shape: `(status, body)`.
///
/// The exception comes from the `x-amzn-errortype` response header when given, else from
/// the body's `__type`/`code`; the message from the body's `message` (or `Message`). The
/// status follows [`exception_status`], else the upstream status. The body is
/// `{"error":{"message","type","param":null,"code":<exception>}}` with OpenAI's `type` for
/// the status. A body that is not JSON gets a generic message naming the status (the raw
/// body is not echoed).
pub fn error_to_openai(status: u16, error_type: Option<&str>, body: &[u8]) -> (u16, Vec<u8>) {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let from_body = parsed
        .as_ref()
        .and_then(|v| v.get("__type").or_else(|| v.get("code")))
        .and_then(Value::as_str);
    let exception = error_type.or(from_body).map(exception_name);
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message").or_else(|| v.get("Message")))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("Bedrock returned HTTP {status}"));
    let status = exception
        .and_then(exception_status)
        .unwrap_or(if status >= 400 { status } else { 502 });
    (status, error_body(status, exception, &message))
}

/// `{"error":{...}}` for a Bedrock exception with this client status.
pub(crate) fn error_body(status: u16, exception: Option<&str>, message: &str) -> Vec<u8> {
    error_json(status, exception, message)
        .to_string()
        .into_bytes()
}

pub(crate) fn error_json(status: u16, exception: Option<&str>, message: &str) -> Value {
    let kind = ErrorKind::from_status(status);
    let type_name = match status {
        408 => "timeout_error",
        _ => kind.type_name(),
    };
    json!({
        "error": {
            "message": message,
            "type": type_name,
            "param": null,
            "code": exception.map_or_else(|| Value::String(status.to_string()), |e| Value::String(e.to_owned())),
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn finish_reasons() {
        for (stop, tools, want) in [
            (Some("end_turn"), false, "stop"),
            (Some("stop_sequence"), false, "stop"),
            (Some("max_tokens"), false, "length"),
            (Some("tool_use"), true, "tool_calls"),
            (Some("content_filtered"), false, "content_filter"),
            (Some("guardrail_intervened"), false, "content_filter"),
            (None, true, "tool_calls"),
            (Some("new_reason"), false, "stop"),
        ] {
            assert_eq!(finish_reason(stop, tools), want, "{stop:?}");
        }
    }

    #[test]
    fn exception_names() {
        assert_eq!(
            exception_name(
                "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"
            ),
            "ValidationException"
        );
        assert_eq!(
            exception_name("com.amazonaws.bedrock#ThrottlingException"),
            "ThrottlingException"
        );
        assert_eq!(exception_status("throttlingException"), Some(429));
        assert_eq!(exception_status("NoSuchThing"), None);
    }
}
