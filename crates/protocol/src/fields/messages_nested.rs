//! The nested fields of an Anthropic Messages request against [`MESSAGES_FIELDS`]' nested
//! rules: one walk over the request, run by the Messages -> chat translator (for
//! OpenAI-compatible, Gemini and Bedrock providers) before it converts.
//!
//! Every content block's type and every member of a block or a custom tool is met: members
//! the block's type is made of (`text`, `source`, `id`, ...) are the type's rule; the others
//! have rules of their own (`cache_control`, `citations`, `title`, ...), and one no rule lists
//! is refused, as Anthropic itself refuses members it does not know. Malformed values are not
//! judged here: the translator reports them with its own messages.

use super::{NestedCheck as Check, VendorFamily, MESSAGES_FIELDS};
use crate::borrowed_json::{lookup, Json, Object};
use crate::error::GatewayError;

/// Check the nested fields of Messages request `req` for `family`.
pub(crate) fn check_messages_nested(
    req: &Object<'_>,
    family: VendorFamily,
) -> Result<(), GatewayError> {
    let check = MESSAGES_FIELDS.nested_checker(family);
    if let Some(messages) = lookup(req, "messages").and_then(Json::as_array) {
        for (i, msg) in messages.iter().enumerate() {
            let Some(blocks) = msg.get("content").and_then(Json::as_array) else {
                continue;
            };
            for (j, block) in blocks.iter().enumerate() {
                let at = |rest: &str| format!("messages[{i}].content[{j}]{rest}");
                check_block(block, "messages[].content[]", &at, &check)?;
                if block.get("type").and_then(Json::as_str) != Some("tool_result") {
                    continue;
                }
                let Some(items) = block.get("content").and_then(Json::as_array) else {
                    continue;
                };
                for (k, item) in items.iter().enumerate() {
                    let at = |rest: &str| format!("messages[{i}].content[{j}].content[{k}]{rest}");
                    check_block(item, "messages[].content[].content[]", &at, &check)?;
                }
            }
        }
    }
    if let Some(blocks) = lookup(req, "system").and_then(Json::as_array) {
        for (j, block) in blocks.iter().enumerate() {
            let Some(members) = block.as_object() else {
                continue;
            };
            for (key, value) in members {
                if key == "type" || key == "text" {
                    continue;
                }
                check(
                    &format!("system[].{key}"),
                    &|| format!("system[{j}].{key}"),
                    value,
                    "system",
                )?;
            }
        }
    }
    if let Some(tools) = lookup(req, "tools").and_then(Json::as_array) {
        for (j, tool) in tools.iter().enumerate() {
            check_tool(tool, j, &check)?;
        }
    }
    Ok(())
}

/// The members each converted block type is made of (covered by the type's own rule).
fn own_members(kind: &str) -> &'static [&'static str] {
    match kind {
        "text" => &["text"],
        "image" => &["source"],
        "document" => &["source"],
        "search_result" => &["content", "source", "title"],
        "tool_use" => &["id", "input", "name"],
        "tool_result" => &["content", "tool_use_id"],
        "thinking" => &["signature", "thinking"],
        "redacted_thinking" => &["data"],
        // A type the table refuses or does not know: its members do not matter.
        _ => &[],
    }
}

fn check_block(
    block: &Json<'_>,
    prefix: &str,
    at: &dyn Fn(&str) -> String,
    check: &Check<'_>,
) -> Result<(), GatewayError> {
    let Some(kind) = block.get("type") else {
        return Ok(());
    };
    let Some(kind_name) = kind.as_str() else {
        return Ok(());
    };
    check(
        &format!("{prefix}.type:{kind_name}"),
        &|| at(".type"),
        kind,
        "messages",
    )?;
    let own = own_members(kind_name);
    if own.is_empty() {
        return Ok(());
    }
    if matches!(kind_name, "image" | "document") {
        if let Some(source_kind) = block.get("source").and_then(|s| s.get("type")) {
            if let Some(name) = source_kind.as_str() {
                check(
                    &format!("messages[].content[].source.type:{name}"),
                    &|| at(".source.type"),
                    source_kind,
                    "messages",
                )?;
            }
        }
    }
    let Some(members) = block.as_object() else {
        return Ok(());
    };
    for (key, value) in members {
        if key == "type" || own.contains(&key.as_ref()) {
            continue;
        }
        // `citations` is a list of an earlier answer's citations on a text block, and the
        // request for cited answers (`{"enabled": ...}`) on a document or search result.
        if key == "citations" && value.is_object() {
            if let Some(enabled) = value.get("enabled") {
                check(
                    "messages[].content[].citations.enabled",
                    &|| at(".citations.enabled"),
                    enabled,
                    "messages",
                )?;
            }
            continue;
        }
        check(
            &format!("messages[].content[].{key}"),
            &|| at(&format!(".{key}")),
            value,
            "messages",
        )?;
    }
    Ok(())
}

fn check_tool(tool: &Json<'_>, j: usize, check: &Check<'_>) -> Result<(), GatewayError> {
    let kind = tool.get("type").filter(|t| !t.is_null());
    match kind.and_then(Json::as_str) {
        // A custom tool (the type may be left out).
        None | Some("custom") => {}
        // Server tools are versioned (`web_search_20250305`): one rule for them all.
        Some(_) => {
            let kind = kind.unwrap_or(&Json::Null);
            return check(
                "tools[].type:server",
                &|| format!("tools[{j}].type"),
                kind,
                "tools",
            );
        }
    }
    if let Some(kind) = kind {
        check(
            "tools[].type:custom",
            &|| format!("tools[{j}].type"),
            kind,
            "tools",
        )?;
    }
    let Some(members) = tool.as_object() else {
        return Ok(());
    };
    for (key, value) in members {
        if key == "type" {
            continue;
        }
        check(
            &format!("tools[].{key}"),
            &|| format!("tools[{j}].{key}"),
            value,
            "tools",
        )?;
    }
    Ok(())
}
