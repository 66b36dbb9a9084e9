//! OpenAI API: chat completions (plain and SSE), legacy completions, embeddings, models,
//! responses.

use hyper::Response;
use serde_json::{json, Value};

use crate::answer::{argument_fragments, count_words, embedding, Answer, Finish, Prompt};
use crate::body::MockBody;
use crate::reply::{self, ok_status, EVENT_STREAM};
use crate::router::Ctx;
use crate::sse::{to_json, Events};

mod responses;
mod wire;

pub(crate) use responses::responses;

/// Models listed by `GET /v1/models`.
const MODELS: &[&str] = &[
    "mock-model",
    "gpt-4o-mini",
    "gpt-4o",
    "text-embedding-3-small",
];

/// Default embedding length.
const EMBEDDING_DIMS: usize = 8;

/// `POST .../chat/completions`.
pub(crate) fn chat(ctx: &Ctx<'_>, body: &Value) -> Response<MockBody> {
    let model = model_of(body);
    let max_tokens = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .and_then(Value::as_u64);
    let answer = Answer::new(&chat_prompt(body), ctx.script, max_tokens);
    let id = format!("chatcmpl-mock{:08}", ctx.id);
    if is_stream(body) {
        return chat_stream(ctx, &id, model, &answer, include_usage(body));
    }
    let tool_calls: Vec<wire::ToolCall<'_>> = answer
        .tool_calls
        .iter()
        .enumerate()
        .map(|(i, c)| wire::ToolCall {
            id: tool_call_id(ctx.id, i),
            kind: "function",
            function: wire::Function {
                name: &c.name,
                arguments: &c.arguments,
            },
        })
        .collect();
    let content = if answer.text.is_empty() && !tool_calls.is_empty() {
        None
    } else {
        Some(answer.text.as_str())
    };
    let out = wire::Completion {
        id: &id,
        object: "chat.completion",
        created: ctx.created,
        model,
        choices: [wire::Choice {
            index: 0,
            message: wire::Message {
                role: "assistant",
                content,
                refusal: None,
                tool_calls,
            },
            logprobs: None,
            finish_reason: finish_reason(answer.finish),
        }],
        usage: usage(&answer),
        system_fingerprint: None,
    };
    reply::json(ok_status(ctx.script), &ctx.script.headers, to_json(&out))
}

/// Role chunk, content chunks, tool-call chunks, finish chunk, optional usage-only chunk,
/// `[DONE]`.
fn chat_stream(
    ctx: &Ctx<'_>,
    id: &str,
    model: &str,
    answer: &Answer<'_>,
    include_usage: bool,
) -> Response<MockBody> {
    let mut events = Events::sse();
    let mut send = |delta: wire::Delta<'_>, finish_reason: Option<&'static str>| {
        let choice = wire::ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason,
        };
        events.data(&wire::Chunk {
            id,
            object: "chat.completion.chunk",
            created: ctx.created,
            model,
            system_fingerprint: None,
            choices: std::slice::from_ref(&choice),
            usage: None,
        });
    };
    let only_tools = answer.text.is_empty() && !answer.tool_calls.is_empty();
    send(
        wire::Delta {
            role: Some("assistant"),
            content: Some(if only_tools { None } else { Some("") }),
            ..wire::Delta::default()
        },
        None,
    );
    for piece in answer.text_chunks(ctx.script.events) {
        send(
            wire::Delta {
                content: Some(Some(piece)),
                ..wire::Delta::default()
            },
            None,
        );
    }
    for (i, call) in answer.tool_calls.iter().enumerate() {
        let call_id = tool_call_id(ctx.id, i);
        send(
            wire::Delta {
                tool_calls: Some([wire::ToolCallDelta {
                    index: i,
                    id: Some(&call_id),
                    kind: Some("function"),
                    function: wire::FunctionDelta {
                        name: Some(&call.name),
                        arguments: "",
                    },
                }]),
                ..wire::Delta::default()
            },
            None,
        );
        for fragment in argument_fragments(&call.arguments) {
            send(
                wire::Delta {
                    tool_calls: Some([wire::ToolCallDelta {
                        index: i,
                        id: None,
                        kind: None,
                        function: wire::FunctionDelta {
                            name: None,
                            arguments: fragment,
                        },
                    }]),
                    ..wire::Delta::default()
                },
                None,
            );
        }
    }
    send(wire::Delta::default(), Some(finish_reason(answer.finish)));
    if include_usage {
        events.data(&wire::Chunk {
            id,
            object: "chat.completion.chunk",
            created: ctx.created,
            model,
            system_fingerprint: None,
            choices: &[],
            usage: Some(usage(answer)),
        });
    }
    events.data_text("[DONE]");
    reply::stream(ok_status(ctx.script), EVENT_STREAM, ctx.script, events)
}

/// `POST .../completions` (legacy `text_completion`).
pub(crate) fn completions(ctx: &Ctx<'_>, body: &Value) -> Response<MockBody> {
    let model = model_of(body);
    let mut prompt = Prompt::default();
    match body.get("prompt") {
        Some(Value::String(s)) => {
            prompt.count(s);
            prompt.last_user.clone_from(s);
        }
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(s) => {
                        prompt.count(s);
                        prompt.last_user.clone_from(s);
                    }
                    _ => prompt.words += 1,
                }
            }
        }
        _ => {}
    }
    let answer = Answer::new(
        &prompt,
        ctx.script,
        body.get("max_tokens").and_then(Value::as_u64),
    );
    let id = format!("cmpl-mock{:08}", ctx.id);
    let chunk = |text: &str, finish: Value| {
        json!({
            "id": id,
            "object": "text_completion",
            "created": ctx.created,
            "model": model,
            "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}],
        })
    };
    if is_stream(body) {
        let mut events = Events::sse();
        for piece in answer.text_chunks(ctx.script.events) {
            events.data(&chunk(piece, Value::Null));
        }
        events.data(&chunk("", text_finish_reason(answer.finish).into()));
        if include_usage(body) {
            events.data(&json!({
                "id": id,
                "object": "text_completion",
                "created": ctx.created,
                "model": model,
                "choices": [],
                "usage": usage(&answer),
            }));
        }
        events.data_text("[DONE]");
        reply::stream(ok_status(ctx.script), EVENT_STREAM, ctx.script, events)
    } else {
        let mut out = chunk(&answer.text, text_finish_reason(answer.finish).into());
        out["usage"] = json!(usage(&answer));
        reply::json(ok_status(ctx.script), &ctx.script.headers, to_json(&out))
    }
}

/// `POST .../embeddings`: deterministic vectors derived from each input.
pub(crate) fn embeddings(ctx: &Ctx<'_>, body: &Value) -> Response<MockBody> {
    let dims = body
        .get("dimensions")
        .and_then(Value::as_u64)
        .map_or(EMBEDDING_DIMS, |d| d.clamp(1, 4096) as usize);
    // (bytes the vector is derived from, token count) per input.
    let inputs: Vec<(Vec<u8>, u64)> = match body.get("input") {
        Some(Value::String(s)) => vec![(s.as_bytes().to_vec(), count_words(s))],
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_number) => {
            vec![(to_json(items), items.len() as u64)]
        }
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                Value::String(s) => (s.as_bytes().to_vec(), count_words(s)),
                Value::Array(tokens) => (to_json(item), tokens.len() as u64),
                other => (to_json(other), 1),
            })
            .collect(),
        _ => {
            return error(
                400,
                "'input' must be a non-empty string or array",
                &ctx.script.headers,
            )
        }
    };
    let tokens: u64 = inputs.iter().map(|(_, t)| t).sum::<u64>().max(1);
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, (seed, _))| {
            json!({"object": "embedding", "index": i, "embedding": embedding(seed, dims)})
        })
        .collect();
    let out = json!({
        "object": "list",
        "data": data,
        "model": model_of(body),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    reply::json(ok_status(ctx.script), &ctx.script.headers, to_json(&out))
}

/// `GET .../models`.
pub(crate) fn models(ctx: &Ctx<'_>) -> Response<MockBody> {
    let data: Vec<Value> = MODELS
        .iter()
        .map(|m| json!({"id": m, "object": "model", "created": 0, "owned_by": "mock-provider"}))
        .collect();
    reply::json(
        ok_status(ctx.script),
        &ctx.script.headers,
        to_json(&json!({"object": "list", "data": data})),
    )
}

/// An OpenAI-shaped error: `{"error":{"message","type","param","code"}}`.
pub(crate) fn error(status: u16, message: &str, extra: &[(String, String)]) -> Response<MockBody> {
    let (kind, code) = match status {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        403 => ("permission_error", None),
        404 => ("invalid_request_error", Some("not_found")),
        429 => ("requests", Some("rate_limit_exceeded")),
        s if s >= 500 => ("server_error", None),
        _ => ("invalid_request_error", None),
    };
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    reply::json(status, extra, to_json(&body))
}

fn model_of(body: &Value) -> &str {
    body.get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock-model")
}

fn is_stream(body: &Value) -> bool {
    body.get("stream").and_then(Value::as_bool).unwrap_or(false)
}

fn include_usage(body: &Value) -> bool {
    body.pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn tool_call_id(response: u64, index: usize) -> String {
    format!("call_mock{response}x{index}")
}

fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::ToolCalls => "tool_calls",
    }
}

fn text_finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Length => "length",
        _ => "stop",
    }
}

fn usage(answer: &Answer<'_>) -> wire::Usage {
    wire::Usage {
        prompt_tokens: answer.prompt_tokens,
        completion_tokens: answer.completion_tokens,
        total_tokens: answer.total_tokens(),
    }
}

/// Prompt of a chat request: words of every message, text of the last user message.
fn chat_prompt(body: &Value) -> Prompt {
    let mut prompt = Prompt::default();
    let messages = body.get("messages").and_then(Value::as_array);
    for message in messages.into_iter().flatten() {
        let text = content_text(message.get("content"));
        prompt.count(&text);
        if message.get("role").and_then(Value::as_str) == Some("user") {
            prompt.last_user = text;
        }
    }
    prompt
}

/// Text of an OpenAI `content`: a string, or the `text` of its parts joined by spaces.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.as_str().or_else(|| p.get("text").and_then(Value::as_str)))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}
