//! Gemini API: `models/{model}:generateContent`, `:streamGenerateContent` (JSON array, or SSE
//! with `alt=sse`), `:countTokens`, `:embedContent`, `:batchEmbedContents`.

use hyper::Response;
use serde_json::{json, Value};

use crate::answer::{count_words, embedding, Answer, Finish, Prompt};
use crate::body::MockBody;
use crate::reply::{self, ok_status, EVENT_STREAM, JSON};
use crate::router::Ctx;
use crate::sse::{to_json, write_json, Events};

/// Embedding length when the request does not set `outputDimensionality`.
const EMBEDDING_DIMS: usize = 8;

/// The method after the colon in `models/{model}:{method}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Generate,
    StreamGenerate,
    CountTokens,
    Embed,
    BatchEmbed,
}

impl Method {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "generateContent" => Method::Generate,
            "streamGenerateContent" => Method::StreamGenerate,
            "countTokens" => Method::CountTokens,
            "embedContent" => Method::Embed,
            "batchEmbedContents" => Method::BatchEmbed,
            _ => return None,
        })
    }
}

/// `(model, method)` of a path like `/v1beta/models/gemini-2.0-flash:generateContent` (also
/// Vertex AI's `/v1/projects/p/locations/l/publishers/google/models/m:generateContent`).
pub(crate) fn parse_path(path: &str) -> Option<(&str, Method)> {
    let idx = path.rfind("/models/")?;
    let rest = path.get(idx + "/models/".len()..)?;
    let (model, method) = rest.rsplit_once(':')?;
    if model.is_empty() || model.contains('/') {
        return None;
    }
    Some((model, Method::parse(method)?))
}

/// Answer one Gemini request for `model` (from the path).
pub(crate) fn handle(
    ctx: &Ctx<'_>,
    model: &str,
    method: Method,
    query: Option<&str>,
    body: &Value,
) -> Response<MockBody> {
    match method {
        Method::Generate | Method::StreamGenerate => {
            if let Some(message) = invalid_role(body) {
                return error(400, &message, &ctx.script.headers);
            }
            let max_tokens = body
                .pointer("/generationConfig/maxOutputTokens")
                .and_then(Value::as_u64);
            let answer = Answer::new(&prompt(body), ctx.script, max_tokens);
            if method == Method::Generate {
                let out = chunk(ctx, model, &answer, parts_all(ctx, &answer), true);
                reply::json(ok_status(ctx.script), &ctx.script.headers, to_json(&out))
            } else {
                stream(ctx, model, &answer, is_sse(query))
            }
        }
        Method::CountTokens => {
            let tokens = prompt(body).words.max(1);
            reply::json(
                ok_status(ctx.script),
                &ctx.script.headers,
                to_json(&json!({"totalTokens": tokens})),
            )
        }
        Method::Embed => {
            let values = embed_one(body);
            reply::json(
                ok_status(ctx.script),
                &ctx.script.headers,
                to_json(&json!({"embedding": {"values": values}})),
            )
        }
        Method::BatchEmbed => {
            let Some(requests) = body.get("requests").and_then(Value::as_array) else {
                return error(400, "'requests' must be an array", &ctx.script.headers);
            };
            let embeddings: Vec<Value> = requests
                .iter()
                .map(|r| json!({"values": embed_one(r)}))
                .collect();
            reply::json(
                ok_status(ctx.script),
                &ctx.script.headers,
                to_json(&json!({"embeddings": embeddings})),
            )
        }
    }
}

/// Roles the real API rejects and a translating gateway may send: `system` (belongs in
/// `systemInstruction`) and `assistant` (Gemini says `model`).
fn invalid_role(body: &Value) -> Option<String> {
    let contents = body.get("contents").and_then(Value::as_array)?;
    contents
        .iter()
        .find_map(|c| match c.get("role").and_then(Value::as_str) {
            Some(role @ ("system" | "assistant")) => Some(format!(
                "Please use a valid role: user, model. (got '{role}')"
            )),
            _ => None,
        })
}

fn is_sse(query: Option<&str>) -> bool {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .any(|p| p == "alt=sse")
}

/// Stream chunks: the thought summary (if scripted), one per text piece, then one with all function calls; the last carries
/// `finishReason` and the full `usageMetadata`, earlier ones a partial one.
fn stream(ctx: &Ctx<'_>, model: &str, answer: &Answer<'_>, sse: bool) -> Response<MockBody> {
    let mut chunks: Vec<Vec<Value>> = thought_part(ctx).into_iter().map(|p| vec![p]).collect();
    chunks.extend(
        answer
            .text_chunks(ctx.script.events)
            .into_iter()
            .map(|t| vec![json!({"text": t})]),
    );
    if !answer.tool_calls.is_empty() {
        chunks.push(function_calls(answer));
    }
    if chunks.is_empty() {
        chunks.push(vec![json!({"text": ""})]);
    }
    let last = chunks.len() - 1;
    let mut events = if sse {
        Events::sse_crlf()
    } else {
        Events::new()
    };
    for (i, parts) in chunks.into_iter().enumerate() {
        let value = chunk(ctx, model, answer, parts, i == last);
        if sse {
            events.data(&value);
        } else {
            events.raw(|buf| {
                buf.extend_from_slice(if i == 0 { b"[" } else { b",\r\n" });
                write_json(buf, &value);
            });
        }
    }
    if sse {
        reply::stream(ok_status(ctx.script), EVENT_STREAM, ctx.script, events)
    } else {
        events.raw(|buf| buf.extend_from_slice(b"]"));
        reply::stream(ok_status(ctx.script), JSON, ctx.script, events)
    }
}

/// One `GenerateContentResponse`; `last` adds `finishReason` and the full usage.
fn chunk(ctx: &Ctx<'_>, model: &str, answer: &Answer<'_>, parts: Vec<Value>, last: bool) -> Value {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    let usage = if last {
        candidate["finishReason"] = Value::from(match answer.finish {
            Finish::Length => "MAX_TOKENS",
            Finish::Stop | Finish::ToolCalls => "STOP",
        });
        let thoughts = ctx.script.thought_text.as_deref().map(count_words);
        let mut usage = json!({
            "promptTokenCount": answer.prompt_tokens,
            "candidatesTokenCount": answer.completion_tokens,
            "totalTokenCount": answer.total_tokens() + thoughts.unwrap_or(0),
        });
        if let Some(n) = thoughts {
            usage["thoughtsTokenCount"] = Value::from(n);
        }
        usage
    } else {
        json!({
            "promptTokenCount": answer.prompt_tokens,
            "totalTokenCount": answer.prompt_tokens,
        })
    };
    json!({
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": format!("mock{:08}", ctx.id),
    })
}

/// The scripted thought summary as a part, if any.
fn thought_part(ctx: &Ctx<'_>) -> Option<Value> {
    let text = ctx.script.thought_text.as_deref()?;
    Some(json!({"text": text, "thought": true}))
}

/// All parts of a plain answer: the thought summary (if scripted), the text (unless only
/// function calls), then function calls.
fn parts_all(ctx: &Ctx<'_>, answer: &Answer<'_>) -> Vec<Value> {
    let mut parts: Vec<Value> = thought_part(ctx).into_iter().collect();
    if !answer.text.is_empty() || answer.tool_calls.is_empty() {
        parts.push(json!({"text": answer.text}));
    }
    parts.extend(function_calls(answer));
    parts
}

fn function_calls(answer: &Answer<'_>) -> Vec<Value> {
    answer
        .tool_calls
        .iter()
        .map(|c| {
            let args = match serde_json::from_str::<Value>(&c.arguments) {
                Ok(v @ Value::Object(_)) => v,
                _ => json!({}),
            };
            json!({"functionCall": {"name": c.name, "args": args}})
        })
        .collect()
}

/// A Gemini-shaped error: `{"error":{"code","message","status"}}`.
pub(crate) fn error(status: u16, message: &str, extra: &[(String, String)]) -> Response<MockBody> {
    let name = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        s if s >= 500 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    };
    let body = json!({"error": {"code": status, "message": message, "status": name}});
    reply::json(status, extra, to_json(&body))
}

/// Words of `systemInstruction` and all contents; text of the last user turn.
fn prompt(body: &Value) -> Prompt {
    let mut prompt = Prompt::default();
    prompt.count(&parts_text(body.get("systemInstruction")));
    let contents = body.get("contents").and_then(Value::as_array);
    for content in contents.into_iter().flatten() {
        let text = parts_text(Some(content));
        prompt.count(&text);
        let role = content.get("role").and_then(Value::as_str);
        if matches!(role, None | Some("user")) {
            prompt.last_user = text;
        }
    }
    prompt
}

/// Text of a `Content`'s parts joined by spaces.
fn parts_text(content: Option<&Value>) -> String {
    content
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The vector of one `EmbedContentRequest`.
fn embed_one(request: &Value) -> Vec<f32> {
    let dims = request
        .get("outputDimensionality")
        .and_then(Value::as_u64)
        .map_or(EMBEDDING_DIMS, |d| d.clamp(1, 4096) as usize);
    let text = parts_text(request.get("content"));
    embedding(text.as_bytes(), dims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("/v1beta/models/gemini-2.0-flash:streamGenerateContent"),
            Some(("gemini-2.0-flash", Method::StreamGenerate))
        );
        assert_eq!(
            parse_path("/v1/projects/p/locations/l/publishers/google/models/m:generateContent"),
            Some(("m", Method::Generate))
        );
        assert_eq!(parse_path("/v1beta/models/x:explode"), None);
        assert_eq!(parse_path("/v1beta/models/:generateContent"), None);
    }
}
