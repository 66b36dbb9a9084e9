//! The nested fields of a chat request against [`CHAT_FIELDS`]' nested rules: one walk over
//! the request, run by every chat translator (Claude, Gemini, Bedrock) before it converts.
//!
//! The walk meets every documented nested field and content type and asks the table: a
//! refused one (and a type no rule lists) is a 400 naming its place
//! (`messages[1].content[0].type: "input_audio"`); mapped and passed ones are the
//! translator's to convert; ignored ones it leaves out. Malformed values are not judged here:
//! the translators report them with their own messages.

use super::{NestedCheck as Check, VendorFamily, CHAT_FIELDS};
use crate::borrowed_json::{Json, Object};
use crate::error::GatewayError;
use std::borrow::Cow;

/// Check the nested fields of chat request `req` for `family`.
///
/// Runs for every converted request, and nearly every field passes: the walk reads each
/// object's members in one pass (the last of duplicated keys, as a look-up would) and writes
/// the table paths it asks about on the stack; a field's place (`messages[2].name`) is
/// written only for a refusal.
pub(crate) fn check_chat_nested(
    req: &Object<'_>,
    family: VendorFamily,
) -> Result<(), GatewayError> {
    let check = CHAT_FIELDS.nested_checker(family);
    let [messages, tools, tool_choice, response_format, stream_options] = members(
        req,
        [
            "messages",
            "tools",
            "tool_choice",
            "response_format",
            "stream_options",
        ],
    );
    let mut buf = PathBuf::new();
    if let Some(messages) = messages.and_then(Json::as_array) {
        for (i, msg) in messages.iter().enumerate() {
            check_message(msg, i, family, &check)?;
        }
    }
    if let Some(tools) = tools.and_then(Json::as_array) {
        for (j, tool) in tools.iter().enumerate() {
            if let Some(kind) = tool.get("type") {
                check(
                    &buf.typed("tools[].type", kind),
                    &|| format!("tools[{j}].type"),
                    kind,
                    "tools",
                )?;
            }
            if let Some(strict) = tool.get("function").and_then(|f| f.get("strict")) {
                check(
                    "tools[].function.strict",
                    &|| format!("tools[{j}].function.strict"),
                    strict,
                    "tools",
                )?;
            }
        }
    }
    if let Some(kind) = tool_choice.and_then(|c| c.get("type")) {
        check(
            &buf.typed("tool_choice.type", kind),
            &|| "tool_choice.type".to_owned(),
            kind,
            "tool_choice",
        )?;
    }
    if let Some(spec) = response_format.and_then(|f| f.get("json_schema")) {
        for (key, path) in [
            ("description", "response_format.json_schema.description"),
            ("name", "response_format.json_schema.name"),
            ("strict", "response_format.json_schema.strict"),
        ] {
            if let Some(v) = spec.get(key) {
                check(path, &|| path.to_owned(), v, "response_format")?;
            }
        }
    }
    if let Some(Json::Object(options)) = stream_options {
        for (key, v) in options {
            let path = buf.joined("stream_options", b'.', key);
            check(&path, &|| path.to_string(), v, "stream_options")?;
        }
    }
    Ok(())
}

/// The values of `keys` in `obj`, read in one pass: of duplicated keys the last, as
/// [`crate::borrowed_json::lookup`] has it.
fn members<'b, 'a, const N: usize>(
    obj: &'b Object<'a>,
    keys: [&str; N],
) -> [Option<&'b Json<'a>>; N] {
    let mut found = [None; N];
    for (k, v) in obj {
        if let Some(slot) = keys
            .iter()
            .position(|key| *key == k.as_ref())
            .and_then(|i| found.get_mut(i))
        {
            *slot = Some(v);
        }
    }
    found
}

/// A table path written on the stack (`messages[].role:user`): the walk asks the table about
/// one per field it meets, and a `format!` each was most of its cost.
struct PathBuf {
    bytes: [u8; PathBuf::CAPACITY],
}

impl PathBuf {
    /// Longer than every path of the table; a longer one is written on the heap.
    const CAPACITY: usize = 96;

    fn new() -> Self {
        PathBuf {
            bytes: [0; Self::CAPACITY],
        }
    }

    /// `prefix:kind` for a string `kind` (the rule of that type), `prefix` alone otherwise
    /// (the translator reports the wrong type).
    fn typed<'b>(&'b mut self, prefix: &'static str, kind: &Json<'_>) -> Cow<'b, str> {
        match kind.as_str() {
            Some(k) => self.joined(prefix, b':', k),
            None => Cow::Borrowed(prefix),
        }
    }

    /// `head`, `sep` and `tail` written one after the other.
    fn joined<'b>(&'b mut self, head: &str, sep: u8, tail: &str) -> Cow<'b, str> {
        let len = head.len() + 1 + tail.len();
        if let Some(slot) = self.bytes.get_mut(..len) {
            let (h, rest) = slot.split_at_mut(head.len());
            h.copy_from_slice(head.as_bytes());
            if let Some((s, t)) = rest.split_first_mut() {
                *s = sep;
                t.copy_from_slice(tail.as_bytes());
            }
            // Two strings and an ASCII byte: always UTF-8.
            if let Ok(text) = std::str::from_utf8(slot) {
                return Cow::Borrowed(text);
            }
        }
        let mut text = String::with_capacity(len);
        text.push_str(head);
        text.push(char::from(sep));
        text.push_str(tail);
        Cow::Owned(text)
    }
}

/// The members of a message the walk reads.
const MESSAGE_KEYS: [&str; 8] = [
    "role",
    "audio",
    "function_call",
    "name",
    "reasoning_content",
    "refusal",
    "content",
    "tool_calls",
];

fn check_message(
    msg: &Json<'_>,
    i: usize,
    family: VendorFamily,
    check: &Check<'_>,
) -> Result<(), GatewayError> {
    let Some(obj) = msg.as_object() else {
        return Ok(());
    };
    let [role, audio, function_call, name, reasoning_content, refusal, content, tool_calls] =
        members(obj, MESSAGE_KEYS);
    let Some(role) = role else {
        return Ok(());
    };
    let Some(role_name) = role.as_str() else {
        return Ok(());
    };
    let mut buf = PathBuf::new();
    // A role OpenAI does not have is the translator's 400 (an invalid value, not a field).
    let role_path = buf.typed("messages[].role", role);
    if let Some(rule) = CHAT_FIELDS.nested(&role_path) {
        CHAT_FIELDS.check_nested_rule(
            Some(rule),
            &role_path,
            &|| format!("messages[{i}].role"),
            role,
            family,
            "messages",
        )?;
    }
    // A `tool` message's name repeats what its call id says; a `function` message's is the
    // function's.
    let name = match role_name {
        "tool" | "function" => None,
        _ => name,
    };
    for (key, path, value) in [
        ("audio", "messages[].audio", audio),
        ("function_call", "messages[].function_call", function_call),
        ("name", "messages[].name", name),
        (
            "reasoning_content",
            "messages[].reasoning_content",
            reasoning_content,
        ),
        ("refusal", "messages[].refusal", refusal),
    ] {
        if let Some(v) = value {
            check(path, &|| format!("messages[{i}].{key}"), v, "messages")?;
        }
    }
    if let Some(parts) = content.and_then(Json::as_array) {
        for (j, part) in parts.iter().enumerate() {
            check_part(part, i, j, &mut buf, check)?;
        }
    }
    if let Some(calls) = tool_calls.and_then(Json::as_array) {
        for (k, call) in calls.iter().enumerate() {
            let Some(call) = call.as_object() else {
                continue;
            };
            let [kind, extra] = members(call, ["type", "extra_content"]);
            if let Some(kind) = kind {
                check(
                    &buf.typed("messages[].tool_calls[].type", kind),
                    &|| format!("messages[{i}].tool_calls[{k}].type"),
                    kind,
                    "messages",
                )?;
            }
            if let Some(extra) = extra {
                check(
                    "messages[].tool_calls[].extra_content",
                    &|| format!("messages[{i}].tool_calls[{k}].extra_content"),
                    extra,
                    "messages",
                )?;
            }
        }
    }
    Ok(())
}

fn check_part(
    part: &Json<'_>,
    i: usize,
    j: usize,
    buf: &mut PathBuf,
    check: &Check<'_>,
) -> Result<(), GatewayError> {
    let at = |rest: &str| format!("messages[{i}].content[{j}].{rest}");
    let Some(obj) = part.as_object() else {
        return Ok(());
    };
    let [kind, cache_control, image_url, file] =
        members(obj, ["type", "cache_control", "image_url", "file"]);
    let Some(kind) = kind else {
        return Ok(());
    };
    check(
        &buf.typed("messages[].content[].type", kind),
        &|| at("type"),
        kind,
        "messages",
    )?;
    if let Some(c) = cache_control {
        check(
            "messages[].content[].cache_control",
            &|| at("cache_control"),
            c,
            "messages",
        )?;
    }
    match kind.as_str() {
        Some("image_url") => {
            if let Some(detail) = image_url.and_then(|u| u.get("detail")) {
                check(
                    "messages[].content[].image_url.detail",
                    &|| at("image_url.detail"),
                    detail,
                    "messages",
                )?;
            }
        }
        Some("file") => {
            for (key, path) in [
                ("file_id", "messages[].content[].file.file_id"),
                ("filename", "messages[].content[].file.filename"),
            ] {
                if let Some(v) = file.and_then(|f| f.get(key)) {
                    check(path, &|| at(&format!("file.{key}")), v, "messages")?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::borrowed_json::Json;

    fn walk(body: &str) -> Result<(), String> {
        let tree = Json::from_slice(body.as_bytes()).unwrap();
        check_chat_nested(tree.as_object().unwrap(), VendorFamily::Claude).map_err(|e| e.message)
    }

    /// The one-pass member reading sees what look-ups saw: the last of duplicated keys, and
    /// the fields in the walk's order whatever the document's.
    #[test]
    fn duplicates_and_order_are_read_as_look_ups_read_them() {
        let named = r#"{"messages":[{"role":"user","name":"","name":"bob","content":"hi"}]}"#;
        assert!(walk(named)
            .unwrap_err()
            .starts_with("messages[0].name: \"bob\""));
        let unnamed = r#"{"messages":[{"role":"user","name":"bob","name":"","content":"hi"}]}"#;
        assert_eq!(walk(unnamed), Ok(()));
        let both = r#"{"messages":[{"role":"system","content":"s"},
            {"name":"bob","audio":{"id":"a"},"role":"user","content":"hi"}]}"#;
        assert!(walk(both)
            .unwrap_err()
            .starts_with("messages[1].audio cannot be sent"));
        let tool = r#"{"messages":[{"role":"tool","name":"f","tool_call_id":"c","content":"x"}]}"#;
        assert_eq!(walk(tool), Ok(()));
    }

    /// Typed paths written on the stack, and on the heap when longer, name the same rules.
    #[test]
    fn typed_paths_find_their_rules() {
        let audio = r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a"},
            {"type":"input_audio","input_audio":{}}]}]}"#;
        assert!(walk(audio)
            .unwrap_err()
            .starts_with("messages[0].content[1].type: \"input_audio\" cannot be sent"));
        let long = format!(
            r#"{{"messages":[{{"role":"user","content":[{{"type":"{}"}}]}}]}}"#,
            "x".repeat(200)
        );
        let err = walk(&long).unwrap_err();
        assert!(
            err.starts_with("messages[0].content[0].type: \"xxx"),
            "{err}"
        );
        assert!(err.contains("the gateway does not know it"), "{err}");
        let custom = r#"{"messages":[{"role":"user","content":"a"}],"tools":[{"type":"custom"}]}"#;
        assert!(walk(custom)
            .unwrap_err()
            .starts_with("tools[0].type: \"custom\""));
        let choice = r#"{"messages":[],"tool_choice":{"type":"custom"}}"#;
        assert!(walk(choice)
            .unwrap_err()
            .starts_with("tool_choice.type: \"custom\""));
        let options = r#"{"messages":[],"stream_options":{"include_usage":true,"zz":1}}"#;
        assert!(walk(options)
            .unwrap_err()
            .starts_with("stream_options.zz cannot be sent"));
        let role = r#"{"messages":[{"role":"function","name":"f","content":"x"}]}"#;
        assert!(walk(role)
            .unwrap_err()
            .starts_with("messages[0].role: \"function\""));
        let unknown_role = r#"{"messages":[{"role":"robot","content":"x"}]}"#;
        assert_eq!(walk(unknown_role), Ok(()));
    }
}
