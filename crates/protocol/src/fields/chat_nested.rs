//! The nested fields of a chat request against [`CHAT_FIELDS`]' nested rules: one walk over
//! the request, run by every chat translator (Claude, Gemini, Bedrock) before it converts.
//!
//! The walk meets every documented nested field and content type and asks the table: a
//! refused one (and a type no rule lists) is a 400 naming its place
//! (`messages[1].content[0].type: "input_audio"`); mapped and passed ones are the
//! translator's to convert; ignored ones it leaves out. Malformed values are not judged here:
//! the translators report them with their own messages.

use super::{NestedCheck as Check, VendorFamily, CHAT_FIELDS};
use crate::borrowed_json::{lookup, Json, Object};
use crate::error::GatewayError;

/// Check the nested fields of chat request `req` for `family`.
pub(crate) fn check_chat_nested(
    req: &Object<'_>,
    family: VendorFamily,
) -> Result<(), GatewayError> {
    let check = CHAT_FIELDS.nested_checker(family);
    if let Some(messages) = lookup(req, "messages").and_then(Json::as_array) {
        for (i, msg) in messages.iter().enumerate() {
            check_message(msg, i, &check)?;
        }
    }
    if let Some(tools) = lookup(req, "tools").and_then(Json::as_array) {
        for (j, tool) in tools.iter().enumerate() {
            if let Some(kind) = tool.get("type") {
                check(
                    &typed("tools[].type", kind),
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
    if let Some(kind) = lookup(req, "tool_choice").and_then(|c| c.get("type")) {
        check(
            &typed("tool_choice.type", kind),
            &|| "tool_choice.type".to_owned(),
            kind,
            "tool_choice",
        )?;
    }
    if let Some(spec) = lookup(req, "response_format").and_then(|f| f.get("json_schema")) {
        for key in ["description", "name", "strict"] {
            if let Some(v) = spec.get(key) {
                check(
                    &format!("response_format.json_schema.{key}"),
                    &|| format!("response_format.json_schema.{key}"),
                    v,
                    "response_format",
                )?;
            }
        }
    }
    if let Some(Json::Object(options)) = lookup(req, "stream_options") {
        for (key, v) in options {
            check(
                &format!("stream_options.{key}"),
                &|| format!("stream_options.{key}"),
                v,
                "stream_options",
            )?;
        }
    }
    Ok(())
}

/// `prefix:kind` for a string `kind` (the rule of that type), `prefix` alone otherwise (the
/// translator reports the wrong type).
fn typed(prefix: &str, kind: &Json<'_>) -> String {
    match kind.as_str() {
        Some(k) => format!("{prefix}:{k}"),
        None => prefix.to_owned(),
    }
}

fn check_message(msg: &Json<'_>, i: usize, check: &Check<'_>) -> Result<(), GatewayError> {
    let Some(role) = msg.get("role") else {
        return Ok(());
    };
    let Some(role_name) = role.as_str() else {
        return Ok(());
    };
    // A role OpenAI does not have is the translator's 400 (an invalid value, not a field).
    let role_path = typed("messages[].role", role);
    if CHAT_FIELDS.nested(&role_path).is_some() {
        check(
            &role_path,
            &|| format!("messages[{i}].role"),
            role,
            "messages",
        )?;
    }
    // A `tool` message's name repeats what its call id says; a `function` message's is the
    // function's.
    let keys: &[&str] = match role_name {
        "tool" | "function" => &["audio", "function_call", "reasoning_content", "refusal"],
        _ => &[
            "audio",
            "function_call",
            "name",
            "reasoning_content",
            "refusal",
        ],
    };
    for key in keys {
        if let Some(v) = msg.get(key) {
            check(
                &format!("messages[].{key}"),
                &|| format!("messages[{i}].{key}"),
                v,
                "messages",
            )?;
        }
    }
    if let Some(parts) = msg.get("content").and_then(Json::as_array) {
        for (j, part) in parts.iter().enumerate() {
            check_part(part, i, j, check)?;
        }
    }
    if let Some(calls) = msg.get("tool_calls").and_then(Json::as_array) {
        for (k, call) in calls.iter().enumerate() {
            if let Some(kind) = call.get("type") {
                check(
                    &typed("messages[].tool_calls[].type", kind),
                    &|| format!("messages[{i}].tool_calls[{k}].type"),
                    kind,
                    "messages",
                )?;
            }
            if let Some(extra) = call.get("extra_content") {
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

fn check_part(part: &Json<'_>, i: usize, j: usize, check: &Check<'_>) -> Result<(), GatewayError> {
    let at = |rest: &str| format!("messages[{i}].content[{j}].{rest}");
    let Some(kind) = part.get("type") else {
        return Ok(());
    };
    check(
        &typed("messages[].content[].type", kind),
        &|| at("type"),
        kind,
        "messages",
    )?;
    if let Some(c) = part.get("cache_control") {
        check(
            "messages[].content[].cache_control",
            &|| at("cache_control"),
            c,
            "messages",
        )?;
    }
    match kind.as_str() {
        Some("image_url") => {
            if let Some(detail) = part.get("image_url").and_then(|u| u.get("detail")) {
                check(
                    "messages[].content[].image_url.detail",
                    &|| at("image_url.detail"),
                    detail,
                    "messages",
                )?;
            }
        }
        Some("file") => {
            for key in ["file_id", "filename"] {
                if let Some(v) = part.get("file").and_then(|f| f.get(key)) {
                    check(
                        &format!("messages[].content[].file.{key}"),
                        &|| at(&format!("file.{key}")),
                        v,
                        "messages",
                    )?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}
