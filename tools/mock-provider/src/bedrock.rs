//! Bedrock Runtime Converse API: `POST /model/{modelId}/converse` and `/converse-stream`
//! (AWS event-stream frames with CRCs), errors with `x-amzn-errortype`.

use hyper::Response;
use serde_json::{json, Value};

use crate::answer::{argument_fragments, Answer, Finish, Prompt};
use crate::body::MockBody;
use crate::eventstream;
use crate::reply::{self, ok_status};
use crate::router::Ctx;
use crate::sse::{to_json, Events};

/// Content type of ConverseStream answers.
pub(crate) const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

/// `(model id, stream)` of `/model/{id}/converse` or `/model/{id}/converse-stream`; the id
/// percent-decoded (`anthropic.claude-v2%3A1` -> `anthropic.claude-v2:1`).
pub(crate) fn parse_path(path: &str) -> Option<(String, bool)> {
    let rest = path.strip_prefix("/model/")?;
    let (id, method) = rest.rsplit_once('/')?;
    let stream = match method {
        "converse" => false,
        "converse-stream" => true,
        _ => return None,
    };
    if id.is_empty() || id.contains('/') {
        return None;
    }
    Some((
        String::from_utf8_lossy(&percent_decode(id)).into_owned(),
        stream,
    ))
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = |j: usize| b.get(j).and_then(|c| char::from(*c).to_digit(16));
        match (c, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Answer a Converse or ConverseStream request for `model`.
pub(crate) fn handle(ctx: &Ctx<'_>, model: &str, stream: bool, body: &Value) -> Response<MockBody> {
    if let Some(message) = invalid_request(body).or_else(|| nova_high_effort_conflict(model, body))
    {
        return error(400, &message, &ctx.script.headers);
    }
    let max_tokens = body
        .pointer("/inferenceConfig/maxTokens")
        .and_then(Value::as_u64);
    let answer = Answer::new(&prompt(body), ctx.script, max_tokens);
    if stream {
        return converse_stream(ctx, &answer);
    }
    let mut content = Vec::new();
    if !answer.text.is_empty() || answer.tool_calls.is_empty() {
        content.push(json!({"text": answer.text}));
    }
    for (i, call) in answer.tool_calls.iter().enumerate() {
        content.push(json!({"toolUse": {
            "toolUseId": tool_use_id(ctx.id, i),
            "name": call.name,
            "input": tool_input(&call.arguments),
        }}));
    }
    let out = json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason(answer.finish),
        "usage": usage(&answer),
        "metrics": {"latencyMs": 1},
    });
    reply::json(ok_status(ctx.script), &ctx.script.headers, to_json(&out))
}

/// `messageStart`, the text block's deltas, each tool block (start, input fragments, stop),
/// `messageStop`, `metadata` — one event-stream frame each.
fn converse_stream(ctx: &Ctx<'_>, answer: &Answer<'_>) -> Response<MockBody> {
    let mut events = Events::new();
    let mut sent = 0usize;
    let exception = ctx.script.stream_exception.as_deref();
    let mut push = |kind: &str, payload: Value| {
        // A scripted exception replaces everything after the first content event.
        if sent == usize::MAX {
            return;
        }
        events.raw(|buf| buf.extend(eventstream::event(kind, &payload)));
        sent += 1;
        if let (Some(name), 2) = (exception, sent) {
            let message = ctx
                .script
                .error_message
                .as_deref()
                .unwrap_or("mock stream exception");
            events.raw(|buf| buf.extend(eventstream::exception(name, message)));
            sent = usize::MAX;
        }
    };
    push(
        "messageStart",
        json!({"p": "abcdefgh", "role": "assistant"}),
    );
    let mut index = 0;
    if !answer.text.is_empty() || answer.tool_calls.is_empty() {
        for piece in answer.text_chunks(ctx.script.events) {
            push(
                "contentBlockDelta",
                json!({"contentBlockIndex": index, "delta": {"text": piece}, "p": "abc"}),
            );
        }
        push("contentBlockStop", json!({"contentBlockIndex": index}));
        index += 1;
    }
    for (i, call) in answer.tool_calls.iter().enumerate() {
        push(
            "contentBlockStart",
            json!({"contentBlockIndex": index, "start": {"toolUse": {
                "toolUseId": tool_use_id(ctx.id, i), "name": call.name}}}),
        );
        for fragment in argument_fragments(&call.arguments) {
            push(
                "contentBlockDelta",
                json!({"contentBlockIndex": index, "delta": {"toolUse": {"input": fragment}}}),
            );
        }
        push("contentBlockStop", json!({"contentBlockIndex": index}));
        index += 1;
    }
    push(
        "messageStop",
        json!({"stopReason": stop_reason(answer.finish)}),
    );
    push(
        "metadata",
        json!({"usage": usage(answer), "metrics": {"latencyMs": 1}}),
    );
    reply::stream(ok_status(ctx.script), EVENT_STREAM, ctx.script, events)
}

fn usage(answer: &Answer<'_>) -> Value {
    json!({
        "inputTokens": answer.prompt_tokens,
        "outputTokens": answer.completion_tokens,
        "totalTokens": answer.total_tokens(),
    })
}

/// A Bedrock-shaped error: `{"message"}` with the exception in `x-amzn-errortype`.
pub(crate) fn error(status: u16, message: &str, extra: &[(String, String)]) -> Response<MockBody> {
    let exception = match status {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalServerException",
    };
    exception_reply(status, exception, message, extra)
}

/// An error with this exception name.
pub(crate) fn exception_reply(
    status: u16,
    exception: &str,
    message: &str,
    extra: &[(String, String)],
) -> Response<MockBody> {
    let mut headers = vec![(
        "x-amzn-errortype".to_owned(),
        format!("{exception}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
    )];
    headers.extend(extra.iter().cloned());
    reply::json(status, &headers, to_json(&json!({ "message": message })))
}

/// What Converse rejects and a translating gateway may get wrong: roles other than
/// user/assistant, a first turn that is not the user's, two turns of one role in a row,
/// blank text, tool blocks without `toolConfig`, a `model` or OpenAI fields in the body.
/// Amazon Nova at the high reasoning level sets its own output length: like Bedrock, a
/// request that also carries `maxTokens`, `temperature` or `topP` is refused (the wording is
/// the mock's own).
fn nova_high_effort_conflict(model: &str, body: &Value) -> Option<String> {
    let high = body
        .pointer("/additionalModelRequestFields/reasoningConfig/maxReasoningEffort")
        .and_then(Value::as_str)
        == Some("high");
    if !model.contains("amazon.nova") || !high {
        return None;
    }
    let set = ["maxTokens", "temperature", "topP"]
        .into_iter()
        .find(|k| body.get("inferenceConfig").and_then(|c| c.get(k)).is_some())?;
    Some(format!(
        "The model returned the following errors: inferenceConfig.{set} must not be set when \
         reasoningConfig.maxReasoningEffort is high"
    ))
}

fn invalid_request(body: &Value) -> Option<String> {
    for key in ["model", "max_tokens", "temperature", "tools", "stream"] {
        if body.get(key).is_some() {
            return Some(format!(
                "Malformed input request: extraneous key [{key}] is not permitted, please reformat your input and try again."
            ));
        }
    }
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Some("1 validation error detected: Value null at 'messages' failed to satisfy constraint: Member must not be null".into());
    };
    let mut previous = None;
    let mut tool_blocks = false;
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str);
        match role {
            Some("user" | "assistant") => {}
            _ => return Some(format!("Value at 'messages.{}.member.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]", i + 1)),
        }
        if i == 0 && role != Some("user") {
            return Some("A conversation must start with a user message. Try again with a conversation that starts with a user message.".into());
        }
        if previous == role {
            return Some("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.".into());
        }
        previous = role;
        let blocks = m.get("content").and_then(Value::as_array);
        if blocks.is_none_or(|b| b.is_empty()) {
            return Some(format!("The content field in the Message object at messages.{i} is empty. Add a ContentBlock object to the content field and try again."));
        }
        for b in blocks.into_iter().flatten() {
            if b.get("text")
                .and_then(Value::as_str)
                .is_some_and(|t| t.trim().is_empty())
            {
                return Some(format!("The text field in the ContentBlock object at messages.{i}.content is blank. Add text to the text field, and try again."));
            }
            tool_blocks |= b.get("toolUse").is_some() || b.get("toolResult").is_some();
        }
    }
    if tool_blocks && body.get("toolConfig").is_none() {
        return Some("The toolConfig field must be defined when using toolUse and toolResult content blocks.".into());
    }
    None
}

/// Words of `system` and all messages; text of the last user turn (its text blocks, else the
/// text of its tool results).
fn prompt(body: &Value) -> Prompt {
    let mut prompt = Prompt::default();
    prompt.count(&texts(body.get("system")));
    for m in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let content = m.get("content");
        let text = texts(content);
        prompt.count(&text);
        if m.get("role").and_then(Value::as_str) == Some("user") {
            prompt.last_user = if text.is_empty() {
                content
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|b| b.pointer("/toolResult/content"))
                    .map(|c| texts(Some(c)))
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                text
            };
        }
    }
    prompt
}

/// Text of the `{"text": ...}` blocks of a list, joined by spaces.
fn texts(blocks: Option<&Value>) -> String {
    blocks
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

fn tool_use_id(response: u64, index: usize) -> String {
    format!("tooluse_mock{response}x{index}")
}

fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({}),
    }
}

fn stop_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ToolCalls => "tool_use",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nova_high_effort_refuses_sampling_limits() {
        let body = |inference: Value, level: &str| {
            json!({"messages": [], "inferenceConfig": inference,
                "additionalModelRequestFields": {"reasoningConfig":
                    {"type": "enabled", "maxReasoningEffort": level}}})
        };
        let nova = "us.amazon.nova-2-lite-v1:0";
        for key in ["maxTokens", "temperature", "topP"] {
            let b = body(json!({ key: 1 }), "high");
            let message = nova_high_effort_conflict(nova, &b).unwrap();
            assert!(message.contains(key), "{message}");
            assert!(nova_high_effort_conflict(nova, &body(json!({ key: 1 }), "medium")).is_none());
            assert!(nova_high_effort_conflict("anthropic.claude-v2", &b).is_none());
        }
        let stops = body(json!({"stopSequences": ["x"]}), "high");
        assert!(nova_high_effort_conflict(nova, &stops).is_none());
    }

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"),
            Some(("anthropic.claude-3-5-sonnet-20240620-v1:0".into(), false))
        );
        assert_eq!(
            parse_path("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/converse-stream"),
            Some(("arn:aws:bedrock:us-east-1:1:inference-profile/x".into(), true))
        );
        assert_eq!(parse_path("/model/a/b/converse"), None);
        assert_eq!(parse_path("/model/a/invoke"), None);
    }
}
