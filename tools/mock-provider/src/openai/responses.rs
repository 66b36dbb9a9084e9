//! OpenAI Responses API (`POST /v1/responses`), plain and streamed: enough of it for a
//! gateway that passes Responses requests through to OpenAI (a message with `output_text`,
//! scripted tool calls as `function_call` items, usage).

use hyper::Response;
use serde_json::{json, Value};

use crate::answer::{argument_fragments, Answer, Finish, Prompt};
use crate::body::MockBody;
use crate::reply::{self, ok_status, EVENT_STREAM};
use crate::router::Ctx;
use crate::sse::{to_json, Events};

/// `POST .../responses`.
pub(crate) fn responses(ctx: &Ctx<'_>, body: &Value) -> Response<MockBody> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock-model");
    let max_tokens = body.get("max_output_tokens").and_then(Value::as_u64);
    let answer = Answer::new(&prompt(body), ctx.script, max_tokens);
    let id = format!("resp_mock{:08}", ctx.id);
    let items = output(ctx, &id, &answer);
    let done = response(ctx, &id, model, &answer, items.clone(), true);
    if !body.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        return reply::json(ok_status(ctx.script), &ctx.script.headers, to_json(&done));
    }
    let mut events = Events::sse();
    let mut seq = 0u64;
    let mut send = |events: &mut Events, mut event: Value| {
        let name = event["type"].as_str().unwrap_or_default().to_string();
        event["sequence_number"] = json!(seq);
        seq += 1;
        events.named(&name, &event);
    };
    let started = response(ctx, &id, model, &answer, Vec::new(), false);
    send(
        &mut events,
        json!({"type": "response.created", "response": started}),
    );
    send(
        &mut events,
        json!({"type": "response.in_progress", "response": started}),
    );
    for (index, item) in items.iter().enumerate() {
        let item_id = item["id"].clone();
        let mut added = item.clone();
        added["status"] = json!("in_progress");
        if item["type"] == "message" {
            added["content"] = json!([]);
            send(
                &mut events,
                json!({"type": "response.output_item.added", "output_index": index, "item": added}),
            );
            let part = json!({"type": "output_text", "text": "", "annotations": []});
            send(
                &mut events,
                json!({"type": "response.content_part.added", "item_id": item_id,
                    "output_index": index, "content_index": 0, "part": part}),
            );
            for piece in answer.text_chunks(ctx.script.events) {
                send(
                    &mut events,
                    json!({"type": "response.output_text.delta", "item_id": item_id,
                        "output_index": index, "content_index": 0, "delta": piece}),
                );
            }
            send(
                &mut events,
                json!({"type": "response.output_text.done", "item_id": item_id,
                    "output_index": index, "content_index": 0, "text": answer.text}),
            );
            send(
                &mut events,
                json!({"type": "response.content_part.done", "item_id": item_id,
                    "output_index": index, "content_index": 0, "part": item["content"][0]}),
            );
        } else {
            added["arguments"] = json!("");
            send(
                &mut events,
                json!({"type": "response.output_item.added", "output_index": index, "item": added}),
            );
            let arguments = item["arguments"].as_str().unwrap_or_default();
            for fragment in argument_fragments(arguments) {
                send(
                    &mut events,
                    json!({"type": "response.function_call_arguments.delta", "item_id": item_id,
                        "output_index": index, "delta": fragment}),
                );
            }
            send(
                &mut events,
                json!({"type": "response.function_call_arguments.done", "item_id": item_id,
                    "output_index": index, "arguments": arguments}),
            );
        }
        send(
            &mut events,
            json!({"type": "response.output_item.done", "output_index": index, "item": item}),
        );
    }
    let last = if done["status"] == "completed" {
        "response.completed"
    } else {
        "response.incomplete"
    };
    send(&mut events, json!({"type": last, "response": done}));
    reply::stream(ok_status(ctx.script), EVENT_STREAM, ctx.script, events)
}

/// The output items: the message (unless the answer is only tool calls), then the calls.
fn output(ctx: &Ctx<'_>, id: &str, answer: &Answer<'_>) -> Vec<Value> {
    let mut items = Vec::new();
    if !answer.text.is_empty() || answer.tool_calls.is_empty() {
        items.push(json!({
            "type": "message",
            "id": format!("msg_{id}"),
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": answer.text, "annotations": []}],
        }));
    }
    for (i, call) in answer.tool_calls.iter().enumerate() {
        items.push(json!({
            "type": "function_call",
            "id": format!("fc_{id}_{i}"),
            "call_id": format!("call_mock{}x{i}", ctx.id),
            "name": call.name,
            "arguments": call.arguments,
            "status": "completed",
        }));
    }
    items
}

/// A response object; `usage` only once it is done.
fn response(
    ctx: &Ctx<'_>,
    id: &str,
    model: &str,
    answer: &Answer<'_>,
    output: Vec<Value>,
    done: bool,
) -> Value {
    let (status, incomplete) = match (done, answer.finish) {
        (false, _) => ("in_progress", Value::Null),
        (true, Finish::Length) => ("incomplete", json!({"reason": "max_output_tokens"})),
        (true, _) => ("completed", Value::Null),
    };
    let usage = done.then(|| {
        json!({
            "input_tokens": answer.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": answer.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": answer.total_tokens(),
        })
    });
    json!({
        "id": id,
        "object": "response",
        "created_at": ctx.created,
        "status": status,
        "error": null,
        "incomplete_details": incomplete,
        "model": model,
        "output": output,
        "parallel_tool_calls": true,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    })
}

/// Words of `instructions` and every input text; the last user text.
fn prompt(body: &Value) -> Prompt {
    let mut prompt = Prompt::default();
    if let Some(s) = body.get("instructions").and_then(Value::as_str) {
        prompt.count(s);
    }
    match body.get("input") {
        Some(Value::String(s)) => {
            prompt.count(s);
            prompt.last_user.clone_from(s);
        }
        Some(Value::Array(items)) => {
            for item in items {
                let text = match item.get("content") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(parts)) => parts
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join(" "),
                    _ => item
                        .get("output")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                };
                prompt.count(&text);
                if item.get("role").and_then(Value::as_str) == Some("user") {
                    prompt.last_user = text;
                }
            }
        }
        _ => {}
    }
    prompt
}
