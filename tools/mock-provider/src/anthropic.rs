//! Anthropic Messages API: `POST /v1/messages`, plain and streamed (named SSE events).

use hyper::Response;
use serde_json::{json, Value};

use crate::answer::{argument_fragments, Answer, Finish, Prompt};
use crate::body::MockBody;
use crate::reply::{self, ok_status, EVENT_STREAM};
use crate::router::Ctx;
use crate::sse::{to_json, Events};

/// `GET /v1/models` in Anthropic's shape (`data`, `has_more`, `first_id`, `last_id`).
pub(crate) fn models(ctx: &Ctx<'_>) -> Response<MockBody> {
    let data = vec![
        json!({"type": "model", "id": "claude-sonnet-4-5", "display_name": "Claude Sonnet 4.5",
               "created_at": "2025-09-29T00:00:00Z"}),
        json!({"type": "model", "id": "claude-haiku-4-5", "display_name": "Claude Haiku 4.5",
               "created_at": "2025-10-15T12:30:00Z"}),
    ];
    let out = json!({
        "data": data,
        "has_more": false,
        "first_id": "claude-sonnet-4-5",
        "last_id": "claude-haiku-4-5",
    });
    reply::json(ok_status(ctx.script), &ctx.script.headers, to_json(&out))
}

/// `POST .../messages`.
pub(crate) fn messages(ctx: &Ctx<'_>, body: &Value) -> Response<MockBody> {
    let Some(max_tokens) = body.get("max_tokens").and_then(Value::as_u64) else {
        return error(400, "max_tokens: Field required", &ctx.script.headers);
    };
    if let Some(message) = invalid_messages(body) {
        return error(400, &message, &ctx.script.headers);
    }
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock-model");
    let answer = Answer::new(&prompt(body), ctx.script, Some(max_tokens));
    let id = format!("msg_mock{:08}", ctx.id);
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if stream {
        return messages_stream(ctx, &id, model, &answer);
    }
    let mut content = Vec::new();
    if !answer.text.is_empty() || answer.tool_calls.is_empty() {
        content.push(json!({"type": "text", "text": answer.text}));
    }
    for (i, call) in answer.tool_calls.iter().enumerate() {
        content.push(json!({
            "type": "tool_use",
            "id": tool_use_id(ctx.id, i),
            "name": call.name,
            "input": tool_input(&call.arguments),
        }));
    }
    let out = json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(answer.finish),
        "stop_sequence": null,
        "usage": {"input_tokens": answer.prompt_tokens, "output_tokens": answer.completion_tokens},
    });
    reply::json(ok_status(ctx.script), &ctx.script.headers, to_json(&out))
}

/// `message_start`, per block `content_block_start` / deltas / `content_block_stop` (with a
/// `ping` after the first block start), `message_delta`, `message_stop`.
fn messages_stream(
    ctx: &Ctx<'_>,
    id: &str,
    model: &str,
    answer: &Answer<'_>,
) -> Response<MockBody> {
    let mut events = Events::sse();
    events.named(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": {"input_tokens": answer.prompt_tokens, "output_tokens": 1},
        }}),
    );
    let mut index = 0;
    let mut pinged = false;
    let mut ping = |events: &mut Events| {
        if !pinged {
            events.named("ping", &json!({"type": "ping"}));
            pinged = true;
        }
    };
    if !answer.text.is_empty() || answer.tool_calls.is_empty() {
        events.named(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "text", "text": ""}}),
        );
        ping(&mut events);
        for piece in answer.text_chunks(ctx.script.events) {
            events.named(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": "text_delta", "text": piece}}),
            );
        }
        events.named(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        );
        index += 1;
    }
    for (i, call) in answer.tool_calls.iter().enumerate() {
        events.named(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": tool_use_id(ctx.id, i), "name": call.name, "input": {},
            }}),
        );
        ping(&mut events);
        for fragment in argument_fragments(&call.arguments) {
            events.named(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": fragment}}),
            );
        }
        events.named(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        );
        index += 1;
    }
    events.named(
        "message_delta",
        &json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason(answer.finish), "stop_sequence": null},
                "usage": {"output_tokens": answer.completion_tokens}}),
    );
    events.named("message_stop", &json!({"type": "message_stop"}));
    reply::stream(ok_status(ctx.script), EVENT_STREAM, ctx.script, events)
}

/// An Anthropic-shaped error: `{"type":"error","error":{"type","message"}}`.
pub(crate) fn error(status: u16, message: &str, extra: &[(String, String)]) -> Response<MockBody> {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    };
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    reply::json(status, extra, to_json(&body))
}

/// What the real API rejects and a translating gateway may get wrong: `messages` missing, or
/// a role other than `user` / `assistant` (system prompts go to the top-level `system`).
fn invalid_messages(body: &Value) -> Option<String> {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Some("messages: Field required".to_owned());
    };
    messages
        .iter()
        .enumerate()
        .find_map(|(i, m)| match m.get("role").and_then(Value::as_str) {
            Some("user" | "assistant") => None,
            Some(role) => Some(format!(
                "messages.{i}.role: Input should be 'user' or 'assistant' (got '{role}')"
            )),
            None => Some(format!("messages.{i}.role: Field required")),
        })
}

fn tool_use_id(response: u64, index: usize) -> String {
    format!("toolu_mock{response}x{index}")
}

/// Tool arguments as the `input` object (`{}` when they are not a JSON object).
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

/// Words of `system` and all messages; text of the last user turn (its text blocks, else the
/// text of its tool results).
fn prompt(body: &Value) -> Prompt {
    let mut prompt = Prompt::default();
    prompt.count(&blocks_text(body.get("system"), false));
    let messages = body.get("messages").and_then(Value::as_array);
    for message in messages.into_iter().flatten() {
        let content = message.get("content");
        let text = blocks_text(content, false);
        prompt.count(&text);
        if message.get("role").and_then(Value::as_str) == Some("user") {
            prompt.last_user = if text.is_empty() {
                blocks_text(content, true)
            } else {
                text
            };
        }
    }
    prompt
}

/// Text of a string or of `text` blocks (or, with `tool_results`, of `tool_result` blocks).
fn blocks_text(content: Option<&Value>, tool_results: bool) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| match b.get("type").and_then(Value::as_str) {
                Some("text") if !tool_results => {
                    b.get("text").and_then(Value::as_str).map(str::to_owned)
                }
                Some("tool_result") if tool_results => Some(blocks_text(b.get("content"), false)),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}
