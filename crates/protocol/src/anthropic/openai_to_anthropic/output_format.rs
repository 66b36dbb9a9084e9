//! OpenAI's structured-output request (`response_format`, Responses' `text.format`) ->
//! Claude's `output_config.format`.
//!
//! Anthropic's structured outputs are generally available: `output_config: {"format":
//! {"type": "json_schema", "schema": {...}}}`, no beta header (the earlier beta's top-level
//! `output_format` and `anthropic-beta: structured-outputs-2025-11-13` still work for a
//! transition period). Claude always decodes against the schema, so OpenAI's `strict` (true
//! or false) needs nothing more. Claude has no schema-less JSON mode, and assistant prefill
//! (the old way to force JSON) is rejected by current models, so `json_object` is refused.

use crate::error::GatewayError;
use serde_json::{json, Value};

/// Claude's `output_config.format` for an OpenAI format object, or `None` for plain text.
///
/// Accepts both shapes: chat's `response_format` (`{"type": "json_schema", "json_schema":
/// {"name", "schema", "strict"}}`) and Responses' `text.format` (`{"type": "json_schema",
/// "name", "schema", "strict"}`). `param` names the field in errors (`response_format`,
/// `text.format`). Errors are 400s: `json_object`, an unknown `type`, a missing or non-object
/// schema.
pub fn claude_output_format(
    format: &Value,
    param: &'static str,
) -> Result<Option<Value>, GatewayError> {
    let bad = |code: &'static str, message: String| {
        Err(GatewayError::invalid(code, message).with_param(param))
    };
    let Some(kind) = format.get("type").and_then(Value::as_str) else {
        return bad("invalid_type", format!("{param}.type must be a string"));
    };
    match kind {
        "text" => Ok(None),
        "json_schema" => {
            let holder = format.get("json_schema").unwrap_or(format);
            match holder.get("schema") {
                Some(Value::Object(schema)) => {
                    let mut schema = schema.clone();
                    // The format's description tells the model what the answer is for; the
                    // schema's own place for it is its root `description`.
                    if let Some(d) = holder.get("description").and_then(Value::as_str) {
                        if !d.is_empty() && !schema.contains_key("description") {
                            schema.insert("description".into(), json!(d));
                        }
                    }
                    Ok(Some(json!({ "type": "json_schema", "schema": schema })))
                }
                Some(_) => bad(
                    "invalid_type",
                    format!("{param} schema must be a JSON Schema object"),
                ),
                None => bad(
                    "missing_required_parameter",
                    format!("{param} with type json_schema needs a schema"),
                ),
            }
        }
        "json_object" => bad(
            "unsupported_value",
            format!(
                "{param} type json_object is not supported by Claude, which has no schema-less \
                 JSON mode; send type json_schema with a schema"
            ),
        ),
        other => bad(
            "unsupported_value",
            format!("{param}.type {other:?} is not supported (text, json_schema)"),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn chat_and_responses_shapes() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let want = Some(json!({"type": "json_schema", "schema": schema}));
        let chat = json!({"type": "json_schema", "json_schema": {"name": "x", "strict": true, "schema": schema}});
        assert_eq!(
            claude_output_format(&chat, "response_format").unwrap(),
            want
        );
        let responses =
            json!({"type": "json_schema", "name": "x", "strict": false, "schema": schema});
        assert_eq!(
            claude_output_format(&responses, "text.format").unwrap(),
            want
        );
        assert_eq!(
            claude_output_format(&json!({"type": "text"}), "text.format").unwrap(),
            None
        );
    }

    #[test]
    fn refusals_name_the_field() {
        for (format, code) in [
            (json!({"type": "json_object"}), "unsupported_value"),
            (json!({"type": "grammar"}), "unsupported_value"),
            (
                json!({"type": "json_schema", "json_schema": {"name": "x"}}),
                "missing_required_parameter",
            ),
            (
                json!({"type": "json_schema", "schema": true}),
                "invalid_type",
            ),
            (json!({"kind": "text"}), "invalid_type"),
        ] {
            let e = claude_output_format(&format, "text.format").unwrap_err();
            assert_eq!(
                (e.status(), e.code, e.param),
                (400, code, Some("text.format")),
                "{format}"
            );
        }
    }
}
