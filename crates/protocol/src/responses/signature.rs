//! Gemini thought signatures through a Responses conversation.
//!
//! Gemini signs the function calls of a thinking model and wants each signature back with
//! its call in the next request (Gemini 3 rejects a current-turn call without one; the chat
//! translator then sends Google's documented skip placeholder, which loses the model's
//! reasoning context). Chat completions carry the signature in
//! `tool_calls[].extra_content.google.thought_signature` (Google's OpenAI-compatible API
//! does the same). A Responses function call has no such field, but a reasoning item has
//! `encrypted_content`, which clients return untouched (the Python SDK's `input +=
//! response.output`, the Agents SDK, Codex with `include: ["reasoning.encrypted_content"]`).
//! So a signed call is preceded by a reasoning item with an empty summary whose
//! `encrypted_content` names the call and holds the signature; the request translator puts it
//! back on the call.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Marks the gateway's own `encrypted_content` (anything else is another vendor's, ignored).
const FORMAT: &str = "switchyard.gemini-thought-signature.v1";

#[derive(Debug, Serialize, Deserialize)]
struct Carried {
    format: String,
    call_id: String,
    thought_signature: String,
}

/// The `encrypted_content` carrying `signature` for the call `call_id`.
pub(crate) fn encode(call_id: &str, signature: &str) -> String {
    json!({ "format": FORMAT, "call_id": call_id, "thought_signature": signature }).to_string()
}

/// `(call_id, signature)` from an `encrypted_content` written by [`encode`].
pub(crate) fn decode(encrypted_content: &str) -> Option<(String, String)> {
    if !encrypted_content.contains(FORMAT) {
        return None;
    }
    let c: Carried = serde_json::from_str(encrypted_content).ok()?;
    (c.format == FORMAT && !c.thought_signature.is_empty())
        .then_some((c.call_id, c.thought_signature))
}

/// The signatures of a chat completion's (or chunk's) first-choice tool calls, by position
/// in `tool_calls`, read only when the body mentions one.
pub(crate) fn of_tool_calls(chat: &str) -> Vec<Option<String>> {
    if !chat.contains("thought_signature") {
        return Vec::new();
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Chunk {
        choices: Vec<Choice>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Choice {
        index: Option<u64>,
        message: Option<Message>,
        delta: Option<Message>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Message {
        tool_calls: Option<Vec<Call>>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Call {
        extra_content: Option<Value>,
    }
    let Ok(chunk) = serde_json::from_str::<Chunk>(chat) else {
        return Vec::new();
    };
    let Some(choice) = chunk
        .choices
        .into_iter()
        .find(|c| c.index.unwrap_or(0) == 0)
    else {
        return Vec::new();
    };
    choice
        .message
        .or(choice.delta)
        .and_then(|m| m.tool_calls)
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            c.extra_content
                .as_ref()
                .and_then(|e| e.pointer("/google/thought_signature"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_foreign_content() {
        let e = encode("call_1", "c2ln");
        assert_eq!(decode(&e), Some(("call_1".into(), "c2ln".into())));
        assert_eq!(decode("gAAAAABo-openai-encrypted"), None);
        assert_eq!(decode(&format!("{{\"format\":\"{FORMAT}\"}}")), None);
        let chunk = r#"{"choices":[{"index":0,"delta":{"tool_calls":[
            {"index":0,"id":"a","extra_content":{"google":{"thought_signature":"s1"}}},
            {"index":1,"id":"b"}]}}]}"#;
        assert_eq!(of_tool_calls(chunk), vec![Some("s1".into()), None]);
        assert!(of_tool_calls(r#"{"choices":[]}"#).is_empty());
    }
}
