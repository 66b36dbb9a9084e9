//! Claude on Vertex AI: the Messages body with `anthropic_version: "vertex-2023-10-16"` and
//! without `model` (the model is in the path). Answers and streams are Anthropic's own, so
//! [`crate::anthropic`]'s response translators apply unchanged.

use crate::anthropic::{chat_request_to_messages_as, ClaudeOptions};
use crate::error::{ErrorKind, GatewayError};
use serde_json::{Map, Value};

/// The `anthropic_version` Vertex AI expects in the body.
pub const VERTEX_ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

/// An Anthropic Messages request body made fit for Vertex AI's `rawPredict`: `model`
/// removed, `anthropic_version` set (replacing any the client sent). Other fields are kept
/// in their order. Errors: not a JSON object (400).
pub fn messages_body_for_vertex(body: &[u8]) -> Result<Vec<u8>, GatewayError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        GatewayError::invalid(
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(obj) = value else {
        return Err(GatewayError::invalid(
            "invalid_type",
            "request body must be a JSON object",
        ));
    };
    let mut out = Map::with_capacity(obj.len() + 1);
    out.insert(
        "anthropic_version".into(),
        Value::String(VERTEX_ANTHROPIC_VERSION.into()),
    );
    for (k, v) in obj {
        if k != "model" && k != "anthropic_version" {
            out.insert(k, v);
        }
    }
    serde_json::to_vec(&Value::Object(out)).map_err(|e| {
        GatewayError::new(
            ErrorKind::Internal,
            "encoding_failed",
            format!("could not encode the Vertex AI request: {e}"),
        )
    })
}

/// An OpenAI chat request -> the body of a Claude `rawPredict` / `streamRawPredict` call:
/// [`chat_request_to_messages_as`], then [`messages_body_for_vertex`].
pub fn chat_request_to_vertex_claude(
    body: &[u8],
    opts: &ClaudeOptions,
) -> Result<Vec<u8>, GatewayError> {
    let messages = chat_request_to_messages_as(body, opts, None)?;
    messages_body_for_vertex(&messages)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn model_goes_and_version_comes() {
        let out = messages_body_for_vertex(
            br#"{"model":"claude-sonnet-4@20250514","anthropic_version":"2023-06-01","max_tokens":5,"messages":[],"stream":true}"#,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({"anthropic_version": "vertex-2023-10-16", "max_tokens": 5, "messages": [], "stream": true})
        );
        assert_eq!(messages_body_for_vertex(b"[]").unwrap_err().status(), 400);
        assert_eq!(
            messages_body_for_vertex(b"{").unwrap_err().code,
            "invalid_json"
        );
    }

    #[test]
    fn from_openai_chat() {
        let out = chat_request_to_vertex_claude(
            br#"{"model":"claude-sonnet-4@20250514","messages":[{"role":"system","content":"Be brief"},{"role":"user","content":"Hi"}],"max_tokens":20,"stream":true}"#,
            &ClaudeOptions::default(),
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["anthropic_version"], "vertex-2023-10-16");
        assert!(v.get("model").is_none());
        assert_eq!(v["max_tokens"], 20);
        assert_eq!(v["stream"], true);
        assert_eq!(v["system"][0]["text"], "Be brief");
        assert_eq!(
            v["messages"],
            json!([{"role":"user","content":[{"type":"text","text":"Hi"}]}])
        );
    }
}
