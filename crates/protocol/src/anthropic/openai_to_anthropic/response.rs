//! Anthropic Messages response and error bodies -> OpenAI chat-completions shapes.

use super::super::types::{error_message, MessagesResponse, ResponseBlock};
use crate::borrowed_json::{write_list, write_str, write_u64};
use crate::error::{vendor_error_body, ErrorKind, GatewayError};
use crate::stream::Usage;
use serde_json::Value;
use std::borrow::Cow;

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

    let (text, reasoning, tool_calls) = answer_parts(resp.content);
    let finish = finish_reason(resp.stop_reason.as_deref(), !tool_calls.is_empty());
    let content = match &text {
        Some(t) => Some(t.as_ref()),
        None if tool_calls.is_empty() => Some(""),
        None => None,
    };
    let usage = resp.usage.unwrap_or_default().to_usage();
    let completion = Completion {
        id: resp.id.as_deref().unwrap_or(id_fallback),
        created,
        model: resp.model.as_deref().unwrap_or_default(),
        content,
        reasoning_content: reasoning.as_deref(),
        tool_calls: &tool_calls,
        finish_reason: finish,
        usage: &usage,
    };
    // Written straight into one buffer: about the answer's size plus the fixed members.
    let mut out = Vec::with_capacity(body.len().saturating_add(256));
    completion.write(&mut out);
    Ok((out, usage))
}

/// A `tool_use` block as an OpenAI tool call: id, function name, arguments (JSON text).
type ToolCall<'a> = (Cow<'a, str>, Cow<'a, str>, String);

/// The answer's text (text blocks joined; `None` when there are none), its reasoning
/// (thinking blocks joined) and its tool calls; other blocks are skipped.
fn answer_parts(
    blocks: Vec<ResponseBlock<'_>>,
) -> (
    Option<Cow<'_, str>>,
    Option<Cow<'_, str>>,
    Vec<ToolCall<'_>>,
) {
    fn join<'a>(acc: &mut Option<Cow<'a, str>>, piece: Cow<'a, str>) {
        match acc {
            Some(acc) => acc.to_mut().push_str(&piece),
            None => *acc = Some(piece),
        }
    }
    let mut text = None;
    let mut reasoning = None;
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block {
            ResponseBlock::Text { text: t } => join(&mut text, t),
            ResponseBlock::Thinking { thinking } => join(&mut reasoning, thinking),
            ResponseBlock::ToolUse { id, name, input } => {
                tool_calls.push((id, name, arguments_string(&input)))
            }
            ResponseBlock::Other => {}
        }
    }
    (text, reasoning, tool_calls)
}

/// A `chat.completion` with one choice, written by hand: the bytes serde gave for it
/// (members in this order; `reasoning_content` and `tool_calls` only when there are some;
/// each tool call's and the usage's members in a JSON map's sorted order).
struct Completion<'c> {
    id: &'c str,
    created: u64,
    model: &'c str,
    content: Option<&'c str>,
    reasoning_content: Option<&'c str>,
    tool_calls: &'c [ToolCall<'c>],
    finish_reason: &'static str,
    usage: &'c Usage,
}

impl Completion<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":");
        write_str(out, self.id);
        out.extend_from_slice(b",\"object\":\"chat.completion\",\"created\":");
        write_u64(out, self.created);
        out.extend_from_slice(b",\"model\":");
        write_str(out, self.model);
        out.extend_from_slice(
            b",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":",
        );
        match self.content {
            Some(c) => write_str(out, c),
            None => out.extend_from_slice(b"null"),
        }
        if let Some(r) = self.reasoning_content {
            out.extend_from_slice(b",\"reasoning_content\":");
            write_str(out, r);
        }
        if !self.tool_calls.is_empty() {
            out.extend_from_slice(b",\"tool_calls\":");
            write_list(out, self.tool_calls, |(id, name, arguments), out| {
                out.extend_from_slice(b"{\"function\":{\"arguments\":");
                write_str(out, arguments);
                out.extend_from_slice(b",\"name\":");
                write_str(out, name);
                out.extend_from_slice(b"},\"id\":");
                write_str(out, id);
                out.extend_from_slice(b",\"type\":\"function\"}");
            });
        }
        out.extend_from_slice(b"},\"logprobs\":null,\"finish_reason\":");
        write_str(out, self.finish_reason);
        out.extend_from_slice(b"}],\"usage\":");
        write_usage(out, self.usage);
        out.push(b'}');
    }
}

/// OpenAI's `usage` object as [`Usage::to_openai_json`] gives it, written without building
/// it: `prompt_tokens_details` only when some tokens were read from the cache.
pub(crate) fn write_usage(out: &mut Vec<u8>, usage: &Usage) {
    out.extend_from_slice(b"{\"completion_tokens\":");
    write_u64(out, usage.completion_tokens);
    out.extend_from_slice(b",\"prompt_tokens\":");
    write_u64(out, usage.prompt_tokens);
    if usage.cached_tokens > 0 {
        out.extend_from_slice(b",\"prompt_tokens_details\":{\"cached_tokens\":");
        write_u64(out, usage.cached_tokens);
        out.push(b'}');
    }
    out.extend_from_slice(b",\"total_tokens\":");
    write_u64(out, usage.total_tokens);
    out.push(b'}');
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
    use serde::Serialize;
    use serde_json::json;

    /// The serde writer the hand-written one replaced, kept as its reference.
    fn serde_reference(body: &[u8], id_fallback: &str, created: u64) -> Option<Vec<u8>> {
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
        let resp: MessagesResponse = serde_json::from_slice(body).ok()?;
        if resp.kind.as_deref() == Some("error") || resp.error.is_some() {
            return None;
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
        serde_json::to_vec(&out).ok()
    }

    /// The hand-written completion is byte for byte what serde wrote, on every response
    /// fixture and on shapes the fixtures lack (escapes, several text and thinking blocks,
    /// nested tool inputs, big counts, no usage).
    #[test]
    fn completion_writer_matches_serde_on_every_fixture() {
        let mut bodies = crate::anthropic::response_fixture_bodies();
        for odd in [
            r#"{"id":"m\u00e9\"x","model":"c\\1","content":[{"type":"text","text":"a\n\u0001\t"},{"type":"text","text":"b"},{"type":"thinking","thinking":"t1"},{"type":"thinking","thinking":""}],"stop_reason":"max_tokens","usage":{"input_tokens":18446744073709551615,"output_tokens":0,"cache_read_input_tokens":7}}"#,
            r#"{"content":[{"type":"tool_use","id":"t\"1","name":"f","input":{"z":[1,2.5,-3,{"b":null,"a":"\u2028"}],"a":true}},{"type":"tool_use","id":"t2","name":"g"}]}"#,
            r#"{"content":[{"type":"text","text":""}],"usage":null,"stop_reason":"refusal"}"#,
            r#"{"content":[],"id":null}"#,
            r#"{"content":[{"type":"redacted_thinking","data":"x"}],"usage":{"cache_creation_input_tokens":5}}"#,
            r#"{"content":[{"type":"text","text":"a","text":"b"}]}"#,
        ] {
            bodies.push((odd.to_string(), odd.as_bytes().to_vec()));
        }
        let mut compared = 0;
        for (name, body) in &bodies {
            let new = messages_response_to_chat(body, "chatcmpl-fallback", 1_700_000_000);
            match serde_reference(body, "chatcmpl-fallback", 1_700_000_000) {
                Some(want) => {
                    assert_eq!(
                        String::from_utf8(new.unwrap()).unwrap(),
                        String::from_utf8(want).unwrap(),
                        "{name}"
                    );
                    compared += 1;
                }
                None => assert!(new.is_err(), "{name}"),
            }
        }
        assert!(compared >= 12, "{compared}");
    }

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
