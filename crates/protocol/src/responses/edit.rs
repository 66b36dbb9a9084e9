//! Edits of a Responses request that passes through to OpenAI unconverted.

use crate::error::GatewayError;
use serde_json::{json, Value};

/// Insert `text` as a leading `system` message of `input` (the Responses counterpart of the
/// chat context injection, which prepends a system message to `messages`). A string `input`
/// becomes a user message after it. The rest of the body is kept as is.
///
/// A converted request needs no such edit: inject into the chat body it was converted to.
pub fn insert_context(body: &[u8], text: &str) -> Result<Vec<u8>, GatewayError> {
    let mut v: Value = serde_json::from_slice(body).map_err(|e| {
        GatewayError::invalid(
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    let Some(obj) = v.as_object_mut() else {
        return Err(GatewayError::invalid(
            "invalid_type",
            "request body must be a JSON object",
        ));
    };
    let context = json!({ "type": "message", "role": "system", "content": text });
    let input = match obj.remove("input") {
        None | Some(Value::Null) => vec![context],
        Some(Value::String(s)) => {
            vec![
                context,
                json!({ "type": "message", "role": "user", "content": s }),
            ]
        }
        Some(Value::Array(mut items)) => {
            items.insert(0, context);
            items
        }
        Some(_) => {
            return Err(GatewayError::invalid(
                "invalid_type",
                "input must be a string or an array of input items",
            )
            .with_param("input"))
        }
    };
    obj.insert("input".into(), Value::Array(input));
    Ok(v.to_string().into_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn context_leads_the_input() {
        let out = insert_context(br#"{"model":"m","input":"hi","store":false}"#, "ctx").unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["input"],
            json!([
                {"type": "message", "role": "system", "content": "ctx"},
                {"type": "message", "role": "user", "content": "hi"}
            ])
        );
        assert_eq!(v["store"], false);
        let out = insert_context(
            br#"{"model":"m","input":[{"type":"function_call_output","call_id":"c","output":"1"}]}"#,
            "ctx",
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["input"][0]["role"], "system");
        assert_eq!(v["input"][1]["type"], "function_call_output");
        let out = insert_context(br#"{"model":"m","previous_response_id":"r"}"#, "ctx").unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["input"][0]["content"], "ctx");
        assert_eq!(
            insert_context(br#"{"input":5}"#, "c").unwrap_err().param,
            Some("input")
        );
        assert!(insert_context(b"[]", "c").is_err());
        assert!(insert_context(b"{", "c").is_err());
    }
}
