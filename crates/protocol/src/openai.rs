//! OpenAI chat-completions pieces shared by every translator: writing `chat.completion.chunk`
//! streams the way OpenAI's SDKs expect them.

use crate::sse::write_event;
use crate::stream::Usage;
use serde_json::{json, Value};

/// The terminator of every OpenAI stream.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// Writes one completion's chunks: shared `id`/`model`/`created`, `role` on the first delta.
///
/// Chunks are written straight into the output buffer (the shared head is serialised once),
/// not built as a JSON tree per chunk: this runs for every streamed event.
#[derive(Debug, Clone)]
pub struct ChunkWriter {
    id: String,
    model: String,
    created: u64,
    role_sent: bool,
    /// `{"id":..,"object":"chat.completion.chunk","created":..,"model":..,`
    head: String,
}

/// A JSON string literal (quoted and escaped).
fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// `s` as a JSON string literal, escaped as serde_json escapes it (plain runs copied whole,
/// not byte by byte: this writes every streamed text delta).
fn write_json_string(out: &mut Vec<u8>, s: &str) {
    crate::borrowed_json::write_str(out, s);
}

fn chunk_head(id: &str, model: &str, created: u64) -> String {
    format!(
        "{{\"id\":{},\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":{},",
        json_string(id),
        json_string(model)
    )
}

impl ChunkWriter {
    pub fn new(id: impl Into<String>, model: impl Into<String>, created: u64) -> Self {
        let (id, model) = (id.into(), model.into());
        ChunkWriter {
            head: chunk_head(&id, &model, created),
            id,
            model,
            created,
            role_sent: false,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn set_model(&mut self, model: impl Into<String>) {
        self.model = model.into();
        self.head = chunk_head(&self.id, &self.model, self.created);
    }

    /// Whether any chunk has been written yet.
    pub fn started(&self) -> bool {
        self.role_sent
    }

    /// A chunk with one choice (index 0) carrying `delta` and an optional finish reason. The
    /// first chunk of the completion also carries `role: "assistant"`.
    pub fn delta(&mut self, out: &mut Vec<u8>, mut delta: Value, finish_reason: Option<&str>) {
        if !self.role_sent {
            if let Some(obj) = delta.as_object_mut() {
                obj.insert("role".into(), json!("assistant"));
            }
            self.role_sent = true;
        }
        self.chunk(out, finish_reason, |out| {
            // Serialising a `Value` into a Vec cannot fail; an empty object keeps the JSON
            // valid if it ever did.
            if serde_json::to_writer(&mut *out, &delta).is_err() {
                out.extend_from_slice(b"{}");
            }
        });
    }

    /// [`Self::delta`] with `{key: text}` and no finish reason, written without building a
    /// `Value` once the first chunk (which adds `role`) is out: the same bytes either way.
    pub fn text_delta(&mut self, out: &mut Vec<u8>, key: &str, text: &str) {
        if !self.role_sent {
            let mut delta = serde_json::Map::new();
            delta.insert(key.into(), Value::String(text.into()));
            return self.delta(out, Value::Object(delta), None);
        }
        self.chunk(out, None, |out| {
            out.push(b'{');
            write_json_string(out, key);
            out.push(b':');
            write_json_string(out, text);
            out.push(b'}');
        });
    }

    /// One chunk event with one choice (index 0) whose delta `write_delta` writes.
    fn chunk(
        &self,
        out: &mut Vec<u8>,
        finish_reason: Option<&str>,
        write_delta: impl FnOnce(&mut Vec<u8>),
    ) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(self.head.as_bytes());
        out.extend_from_slice(br#""choices":[{"index":0,"delta":"#);
        write_delta(out);
        out.extend_from_slice(br#","logprobs":null,"finish_reason":"#);
        match finish_reason {
            Some(f) => write_json_string(out, f),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b"}]}\n\n");
    }

    /// The usage-only last chunk (`choices: []`) sent when the client asked for
    /// `stream_options.include_usage`.
    pub fn usage(&self, out: &mut Vec<u8>, usage: &Usage) {
        let chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage.to_openai_json(),
        });
        write_event(out, None, &chunk.to_string());
    }
}

/// A mid-stream error as OpenAI's SDKs understand it: a `data:` object with a top-level `error`.
pub fn stream_error(out: &mut Vec<u8>, message: &str, error_type: &str, code: Option<&str>) {
    let v =
        json!({ "error": { "message": message, "type": error_type, "param": null, "code": code } });
    write_event(out, None, &v.to_string());
}

/// Whether a chat request asked for the usage chunk (`stream_options.include_usage: true`).
pub fn wants_usage(request: &Value) -> bool {
    request
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// `tool_choice: {"type": "allowed_tools", "allowed_tools": {"mode", "tools"}}`: whether a
/// call is required (`mode: "required"`; `auto` otherwise) and the names of the allowed
/// functions; `None` for any other choice. For vendors without such a choice the gateway
/// sends only the allowed functions. A list without a function name is a 400.
pub(crate) fn allowed_tools(
    choice: &Value,
) -> Result<Option<(bool, Vec<String>)>, crate::error::GatewayError> {
    if choice.get("type").and_then(Value::as_str) != Some("allowed_tools") {
        return Ok(None);
    }
    let bad = |message: &str| {
        crate::error::GatewayError::invalid("invalid_value", message).with_param("tool_choice")
    };
    let allowed = choice.get("allowed_tools");
    let required = match allowed.and_then(|a| a.get("mode")) {
        None | Some(Value::Null) => false,
        Some(m) => match m.as_str() {
            Some("auto") => false,
            Some("required") => true,
            _ => {
                return Err(bad(
                    "tool_choice.allowed_tools.mode must be auto or required",
                ))
            }
        },
    };
    let names: Option<Vec<String>> = allowed
        .and_then(|a| a.get("tools"))
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .map(|t| {
                    t.pointer("/function/name")
                        .or_else(|| t.get("name"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .collect()
        })
        .and_then(|names: Option<Vec<String>>| names.filter(|n| !n.is_empty()));
    match names {
        Some(names) => Ok(Some((required, names))),
        None => Err(bad(
            "tool_choice.allowed_tools.tools must list functions by name",
        )),
    }
}

/// Check the types of the chat-request fields that translators read only in passing or
/// drop (`model`, `stream`, `stream_options`, `user`, `seed`, `response_format`,
/// `tool_choice`), so a malformed request is a 400 naming the field instead of being
/// silently reinterpreted for another vendor.
pub fn check_request_fields(
    obj: &serde_json::Map<String, Value>,
) -> Result<(), crate::error::GatewayError> {
    check_fields(|key| obj.get(key).map(Field::Value))
}

/// [`check_request_fields`] over a request parsed into a borrowed tree.
pub(crate) fn check_request_fields_of(
    obj: &crate::borrowed_json::Object<'_>,
) -> Result<(), crate::error::GatewayError> {
    check_fields(|key| crate::borrowed_json::lookup(obj, key).map(Field::Json))
}

/// A value [`check_fields`] reads, from a `Value` or a borrowed tree (one copy of the checks
/// for both, not one per type).
#[derive(Clone, Copy)]
enum Field<'v> {
    Value(&'v Value),
    Json(&'v crate::borrowed_json::Json<'v>),
}

impl<'v> Field<'v> {
    fn member(self, key: &str) -> Option<Field<'v>> {
        match self {
            Field::Value(v) => v.get(key).map(Field::Value),
            Field::Json(j) => j.get(key).map(Field::Json),
        }
    }
    fn text(self) -> Option<&'v str> {
        match self {
            Field::Value(v) => v.as_str(),
            Field::Json(j) => j.as_str(),
        }
    }
    fn is_string(self) -> bool {
        self.text().is_some()
    }
    fn is_null(self) -> bool {
        match self {
            Field::Value(v) => v.is_null(),
            Field::Json(j) => j.is_null(),
        }
    }
    fn is_boolean(self) -> bool {
        match self {
            Field::Value(v) => v.is_boolean(),
            Field::Json(j) => j.is_boolean(),
        }
    }
    fn is_integer(self) -> bool {
        match self {
            Field::Value(v) => v.is_i64() || v.is_u64(),
            Field::Json(j) => j.is_integer(),
        }
    }
    fn is_object(self) -> bool {
        match self {
            Field::Value(v) => v.is_object(),
            Field::Json(j) => j.is_object(),
        }
    }
}

fn check_fields<'v>(
    field: impl Fn(&str) -> Option<Field<'v>>,
) -> Result<(), crate::error::GatewayError> {
    check_present(&|key| field(key).filter(|v| !v.is_null()))
}

fn check_present<'v>(
    present: &dyn Fn(&str) -> Option<Field<'v>>,
) -> Result<(), crate::error::GatewayError> {
    use crate::error::GatewayError;
    let wrong = |param: &'static str, expected: &str| {
        GatewayError::invalid("invalid_type", format!("`{param}` must be {expected}"))
            .with_param(param)
    };
    if present("model").is_some_and(|v| !v.is_string()) {
        return Err(wrong("model", "a string"));
    }
    if present("stream").is_some_and(|v| !v.is_boolean()) {
        return Err(wrong("stream", "a boolean"));
    }
    if let Some(o) = present("stream_options") {
        let ok = o.is_object()
            && o.member("include_usage")
                .is_none_or(|u| u.is_boolean() || u.is_null());
        if !ok {
            return Err(wrong(
                "stream_options",
                "an object with a boolean `include_usage`",
            ));
        }
    }
    if present("user").is_some_and(|v| !v.is_string()) {
        return Err(wrong("user", "a string"));
    }
    if present("seed").is_some_and(|v| !v.is_integer()) {
        return Err(wrong("seed", "an integer"));
    }
    if let Some(f) = present("response_format") {
        if !f.member("type").is_some_and(Field::is_string) {
            return Err(wrong("response_format", "an object with a string `type`"));
        }
    }
    if let Some(c) = present("tool_choice") {
        let ok = if c.is_string() {
            true
        } else if c.is_object() {
            match c.member("type").and_then(Field::text) {
                Some("function") => c
                    .member("function")
                    .and_then(|f| f.member("name"))
                    .is_some_and(Field::is_string),
                Some(_) => true,
                // Legacy `{"name": ...}`.
                None => c.member("name").is_some_and(Field::is_string),
            }
        } else {
            false
        };
        if !ok {
            return Err(wrong(
                "tool_choice",
                "a string or an object naming a function (`{\"type\":\"function\",\"function\":{\"name\":...}}`)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::SseParser;

    #[test]
    fn request_field_types_are_checked() {
        let check = |v: Value| check_request_fields(v.as_object().unwrap());
        let ok = json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
            "user": "u", "seed": 3, "response_format": {"type": "json_object"},
            "tool_choice": {"type": "function", "function": {"name": "f"}}});
        assert!(check(ok).is_ok());
        assert!(
            check(json!({"tool_choice": "auto", "stream": null, "response_format": null})).is_ok()
        );
        assert!(check(json!({"tool_choice": {"name": "f"}})).is_ok());
        for (bad, param) in [
            (json!({"model": 5}), "model"),
            (json!({"stream": "yes"}), "stream"),
            (json!({"stream_options": "usage"}), "stream_options"),
            (
                json!({"stream_options": {"include_usage": "yes"}}),
                "stream_options",
            ),
            (json!({"user": 5}), "user"),
            (json!({"seed": "x"}), "seed"),
            (json!({"seed": 1.5}), "seed"),
            (json!({"response_format": "json"}), "response_format"),
            (json!({"response_format": {"type": 5}}), "response_format"),
            (json!({"tool_choice": 5}), "tool_choice"),
            (json!({"tool_choice": {"type": "function"}}), "tool_choice"),
        ] {
            let e = check(bad.clone()).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}");
            assert_eq!(e.to_json()["error"]["param"], param, "{bad}");
        }
    }

    #[test]
    fn role_on_first_delta_only_and_shared_id() {
        let mut w = ChunkWriter::new("chatcmpl-1", "m", 7);
        let mut out = Vec::new();
        w.delta(&mut out, json!({"content": "a"}), None);
        w.delta(&mut out, json!({"content": "b"}), Some("stop"));
        w.usage(
            &mut out,
            &Usage {
                prompt_tokens: 1,
                completion_tokens: 2,
                total_tokens: 3,
                ..Default::default()
            },
        );
        out.extend_from_slice(DONE);
        let events = SseParser::new().push(&out);
        let chunks: Vec<Value> = events[..3]
            .iter()
            .map(|e| serde_json::from_str(&e.data).unwrap())
            .collect();
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"content": "a", "role": "assistant"})
        );
        assert_eq!(chunks[1]["choices"][0]["delta"], json!({"content": "b"}));
        assert_eq!(chunks[1]["choices"][0]["finish_reason"], "stop");
        assert_eq!(chunks[2]["choices"], json!([]));
        assert_eq!(chunks[2]["usage"]["total_tokens"], 3);
        assert!(chunks.iter().all(|c| c["id"] == "chatcmpl-1"));
        assert_eq!(events[3].data, "[DONE]");
    }
}
