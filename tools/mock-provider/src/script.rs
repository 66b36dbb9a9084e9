//! What the next response looks like: [`Script`] and how a request's credential selects it.

use std::collections::BTreeMap;

use hyper::HeaderMap;
use serde::{Deserialize, Deserializer, Serialize};

/// How to answer one request (when queued) or every request (when set as default).
///
/// `Script::default()` is a normal, immediate answer. In JSON every field is optional, `headers`
/// may be a list of pairs or an object, and a tool call's `arguments` may be a string or any
/// JSON value (serialized to a string).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Script {
    /// Response status. `>= 400` answers with a vendor-shaped error body (shaped by the API of
    /// the request); below that it replaces the `200` of a normal answer.
    pub status: Option<u16>,
    /// Message of the scripted error (default: `"mock error <status>"`).
    pub error_message: Option<String>,
    /// Extra response headers (e.g. `retry-after`); they replace a default header of the same
    /// name such as `content-type`.
    #[serde(deserialize_with = "headers_from_pairs_or_object")]
    pub headers: Vec<(String, String)>,
    /// Delay before the response headers, in milliseconds.
    pub ttfb_ms: u64,
    /// Delay between stream events, in milliseconds.
    pub chunk_delay_ms: u64,
    /// Write the stream (or raw body) in pieces of this many bytes (at least 1), each flushed
    /// separately: pieces cut through events, lines, JSON strings and UTF-8 characters.
    pub split_bytes: Option<usize>,
    /// For streams and raw bodies: close the connection abruptly after this many events (every
    /// SSE event counts, e.g. the role chunk, `ping` and `[DONE]`; a Gemini JSON-array stream
    /// counts its elements and the closing `]`), without the chunked-encoding terminator. A
    /// stream with fewer events is sent whole and then cut the same way.
    pub drop_after_events: Option<usize>,
    /// Answer text instead of `"Mock answer to: ..."`. With `tool_calls` it is sent as text
    /// before the calls.
    pub reply_text: Option<String>,
    /// Answer with these tool calls (finish reason `tool_calls` / `tool_use`).
    pub tool_calls: Vec<ScriptToolCall>,
    /// Apply this script only to requests whose credential (`Authorization: Bearer`,
    /// `x-api-key`, `api-key`, `x-goog-api-key` or the `key=` query parameter) equals this value;
    /// other requests get a normal answer and do not consume it. Set as default, it stays in
    /// force for every matching request.
    pub only_for_token: Option<String>,
    /// Number of content chunks in a stream (default: one per word of the answer). The text
    /// is cut evenly by characters; chunks may be empty when there are more chunks than
    /// characters.
    pub events: Option<usize>,
    /// Respond with exactly this body and `status` (default 200). Split into events after each
    /// blank line, so `chunk_delay_ms`, `split_bytes` and `drop_after_events` apply.
    pub raw_body: Option<String>,
    /// Bedrock ConverseStream only: after the first content event, send an exception frame of
    /// this type (e.g. `throttlingException`, message from `error_message`) and end the stream.
    pub stream_exception: Option<String>,
    /// Gemini (and Vertex AI) only: a thought summary (a part with `thought: true`, as sent
    /// when the request sets `thinkingConfig.includeThoughts`) before the answer; streamed as
    /// its own chunk. Its words are reported as `usageMetadata.thoughtsTokenCount`.
    pub thought_text: Option<String>,
}

/// A tool call the mock answers with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScriptToolCall {
    /// Function name.
    pub name: String,
    /// Arguments as a JSON text, e.g. `{"city":"Paris"}`.
    #[serde(default = "empty_object", deserialize_with = "string_or_json_text")]
    pub arguments: String,
}

impl ScriptToolCall {
    /// A tool call of `name` with `arguments` (a JSON text).
    pub fn new(name: impl Into<String>, arguments: impl Into<String>) -> Self {
        ScriptToolCall {
            name: name.into(),
            arguments: arguments.into(),
        }
    }
}

impl Script {
    /// A vendor-shaped error with this status and message.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Script {
            status: Some(status),
            error_message: Some(message.into()),
            ..Script::default()
        }
    }

    /// A normal answer with this text.
    pub fn text(reply: impl Into<String>) -> Self {
        Script {
            reply_text: Some(reply.into()),
            ..Script::default()
        }
    }

    /// Whether this script applies to a request with these headers and query string.
    pub(crate) fn applies_to(&self, headers: &HeaderMap, query: Option<&str>) -> bool {
        match &self.only_for_token {
            None => true,
            Some(token) => credential_matches(headers, query, token),
        }
    }
}

/// Whether any credential carried by the request equals `token`.
fn credential_matches(headers: &HeaderMap, query: Option<&str>, token: &str) -> bool {
    let header_is = |name: &str, strip_bearer: bool| {
        headers.get_all(name).iter().any(|v| {
            let Ok(v) = v.to_str() else { return false };
            let v = v.trim();
            let v = if strip_bearer { without_bearer(v) } else { v };
            v == token
        })
    };
    if header_is("authorization", true)
        || header_is("x-api-key", false)
        || header_is("api-key", false)
        || header_is("x-goog-api-key", false)
    {
        return true;
    }
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .any(|pair| pair.strip_prefix("key=") == Some(token))
}

/// `Bearer x` -> `x` (scheme case-insensitive); anything else unchanged.
fn without_bearer(v: &str) -> &str {
    match (v.get(..7), v.get(7..)) {
        (Some(scheme), Some(rest)) if scheme.eq_ignore_ascii_case("bearer ") => rest.trim(),
        _ => v,
    }
}

fn empty_object() -> String {
    "{}".to_owned()
}

fn string_or_json_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    })
}

fn headers_from_pairs_or_object<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<(String, String)>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Pairs(Vec<(String, String)>),
        Object(BTreeMap<String, serde_json::Value>),
    }
    Ok(match Repr::deserialize(d)? {
        Repr::Pairs(pairs) => pairs,
        Repr::Object(map) => map
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn json_accepts_partial_and_flexible_fields() {
        let s: Script = serde_json::from_str(
            r#"{"status":429,"headers":{"retry-after":2},
                "tool_calls":[{"name":"f","arguments":{"a":1}},{"name":"g"}]}"#,
        )
        .unwrap_or_default();
        assert_eq!(s.status, Some(429));
        assert_eq!(s.headers, vec![("retry-after".into(), "2".into())]);
        assert_eq!(s.tool_calls[0].arguments, r#"{"a":1}"#);
        assert_eq!(s.tool_calls[1].arguments, "{}");
        let pairs: Script = serde_json::from_str(r#"{"headers":[["a","b"]]}"#).unwrap_or_default();
        assert_eq!(pairs.headers, vec![("a".into(), "b".into())]);
    }

    #[test]
    fn credential_sources() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer sk-1"));
        assert!(credential_matches(&h, None, "sk-1"));
        assert!(!credential_matches(&h, None, "sk-2"));
        let mut h = HeaderMap::new();
        h.insert("x-goog-api-key", HeaderValue::from_static("g"));
        assert!(credential_matches(&h, None, "g"));
        assert!(credential_matches(
            &HeaderMap::new(),
            Some("alt=sse&key=k"),
            "k"
        ));
        assert!(!credential_matches(&HeaderMap::new(), Some("alt=sse"), "k"));
    }
}
