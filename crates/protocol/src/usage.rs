//! Reading token usage from answers the gateway passes through without translating: whole
//! bodies (OpenAI or Anthropic shape, possibly only the tail of a large body) and Anthropic
//! Messages streams. Translated answers report usage through their converters.

use crate::anthropic::types::AnthropicUsage;
use crate::sse::{SseEvent, SseParser};
use crate::stream::Usage;
use serde_json::value::RawValue;
use serde_json::Value;

/// Usage in a `usage` object of either shape: OpenAI (`prompt_tokens`, `completion_tokens`,
/// `prompt_tokens_details.cached_tokens`) or Anthropic (`input_tokens`, `output_tokens`,
/// `cache_read_input_tokens`, `cache_creation_input_tokens`).
pub fn usage_from_object(usage: &Value) -> Option<Usage> {
    let obj = usage.as_object()?;
    if obj.contains_key("input_tokens") || obj.contains_key("output_tokens") {
        let a: AnthropicUsage = serde_json::from_value(usage.clone()).ok()?;
        return Some(a.to_usage());
    }
    Usage::from_openai_json(usage)
}

/// Usage of a whole JSON answer (`None` when it has none or is not JSON). Only the `usage`
/// object is built; the rest of the answer is skipped without allocating.
pub fn usage_from_body(body: &[u8]) -> Option<Usage> {
    #[derive(serde::Deserialize)]
    struct UsageOnly<'a> {
        #[serde(borrow)]
        usage: Option<&'a RawValue>,
    }
    // A derived struct also reads from an array; answers are objects.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let whole: UsageOnly<'_> = serde_json::from_slice(body).ok()?;
    let usage: Value = serde_json::from_str(whole.usage?.get()).ok()?;
    usage_from_object(&usage)
}

/// Usage from the last bytes of a JSON answer too large to keep whole: the object after the
/// last `"usage":` key. Vendors put `usage` at the end of their answers.
pub fn usage_from_tail(tail: &[u8]) -> Option<Usage> {
    const KEY: &[u8] = b"\"usage\"";
    let at = tail.windows(KEY.len()).rposition(|w| w == KEY)?;
    let rest = tail.get(at + KEY.len()..)?;
    let colon = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    if rest.get(colon) != Some(&b':') {
        return None;
    }
    let value = rest.get(colon + 1..)?;
    let v = serde_json::Deserializer::from_slice(value)
        .into_iter::<Value>()
        .next()?
        .ok()?;
    usage_from_object(&v)
}

/// Keeps what is needed to read usage from a passed-through body of any size: the whole body
/// up to `keep_whole` bytes, then only the last `tail` bytes.
#[derive(Debug)]
pub struct BodyTail {
    buf: Vec<u8>,
    keep_whole: usize,
    tail: usize,
    truncated: bool,
}

impl BodyTail {
    pub fn new(keep_whole: usize, tail: usize) -> Self {
        BodyTail {
            buf: Vec::new(),
            keep_whole,
            tail: tail.min(keep_whole),
            truncated: false,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
        if self.buf.len() > self.keep_whole {
            let cut = self.buf.len() - self.tail;
            self.buf.drain(..cut);
            self.truncated = true;
        }
    }

    pub fn usage(&self) -> Option<Usage> {
        if self.truncated {
            usage_from_tail(&self.buf)
        } else {
            usage_from_body(&self.buf).or_else(|| usage_from_tail(&self.buf))
        }
    }
}

/// Watches an Anthropic Messages stream that passes through untouched and keeps its usage:
/// input tokens from `message_start`, cumulative output tokens from `message_delta`.
#[derive(Debug, Default)]
pub struct MessagesUsageTap {
    parser: SseParser,
    events: Vec<SseEvent>,
    usage: Option<AnthropicUsage>,
}

impl MessagesUsageTap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.parser.push_into(chunk, &mut self.events);
        for ev in std::mem::take(&mut self.events) {
            // Only `message_start` and `message_delta` carry usage; skip parsing the rest.
            if !ev.data.contains("\"usage\"") {
                continue;
            }
            let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
                continue;
            };
            let found = match v.get("type").and_then(Value::as_str) {
                Some("message_start") => v.pointer("/message/usage"),
                Some("message_delta") => v.get("usage"),
                _ => None,
            };
            let Some(found) =
                found.and_then(|u| serde_json::from_value::<AnthropicUsage>(u.clone()).ok())
            else {
                continue;
            };
            self.usage
                .get_or_insert_with(AnthropicUsage::default)
                .update(&found);
        }
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage.map(AnthropicUsage::to_usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_usage_only_from_an_object_with_a_usage_object() {
        let usage = r#"{"prompt_tokens":3,"completion_tokens":2}"#;
        for body in [
            format!("[{usage}]"),
            r#"{"usage":null}"#.to_string(),
            r#"{"usage":7}"#.to_string(),
            format!(r#"{{"usage":{usage}"#),
            format!(r#"{{"usage":{usage}}} trailing"#),
            r#"{"choices":[{"message":{"usage":{"prompt_tokens":1}}}]}"#.to_string(),
        ] {
            assert_eq!(usage_from_body(body.as_bytes()), None, "{body}");
        }
        let nested_first = format!(
            r#"{{"choices":[{{"message":{{"content":"\"usage\": 1","usage":{{}}}}}}],"usage":{usage}}}"#
        );
        let u = usage_from_body(nested_first.as_bytes()).unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (3, 2, 5)
        );
    }

    #[test]
    fn both_shapes_and_cache_tokens() {
        let openai = br#"{"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":4}}}"#;
        let u = usage_from_body(openai).unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.cached_tokens),
            (12, 5, 4)
        );
        let anthropic = br#"{"type":"message","usage":{"input_tokens":10,"output_tokens":7,"cache_read_input_tokens":100,"cache_creation_input_tokens":20}}"#;
        let u = usage_from_body(anthropic).unwrap();
        assert_eq!(u.prompt_tokens, 130);
        assert_eq!(u.completion_tokens, 7);
        assert_eq!(u.cached_tokens, 100);
        assert_eq!(u.cache_creation_tokens, 20);
        let embeddings = br#"{"data":[],"usage":{"prompt_tokens":8,"total_tokens":8}}"#;
        assert_eq!(usage_from_body(embeddings).unwrap().prompt_tokens, 8);
        assert_eq!(usage_from_body(b"{\"choices\":[]}"), None);
        assert_eq!(usage_from_body(b"not json"), None);
    }

    #[test]
    fn tail_of_a_large_body() {
        let mut big = br#"{"choices":[{"message":{"content":""#.to_vec();
        big.extend(std::iter::repeat_n(b'a', 100_000));
        big.extend(br#"  \"usage\": fake"}}],"usage" : {"prompt_tokens":3,"completion_tokens":9,"total_tokens":12}}"#);
        let mut tail = BodyTail::new(4096, 1024);
        for piece in big.chunks(777) {
            tail.push(piece);
        }
        let u = tail.usage().unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (3, 9));
        let mut small = BodyTail::new(4096, 1024);
        small.push(br#"{"usage":{"prompt_tokens":1,"#);
        small.push(br#""completion_tokens":2}}"#);
        assert_eq!(small.usage().unwrap().total_tokens, 3);
        assert_eq!(usage_from_tail(br#"{"usage": [1,2"#), None);
        assert_eq!(usage_from_tail(b"\"usage\""), None);
    }

    #[test]
    fn anthropic_stream_usage_counted_once_at_any_split() {
        let stream = concat!(
            "event: message_start\n",
            "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
            "event: content_block_delta\n",
            "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"usage\"}}\n\n",
            "event: message_delta\n",
            "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n",
            "event: message_stop\n",
            "data: {\"type\":\"message_stop\"}\n\n",
        )
        .as_bytes();
        for at in 0..stream.len() {
            let mut tap = MessagesUsageTap::new();
            tap.push(&stream[..at]);
            tap.push(&stream[at..]);
            let u = tap.usage().unwrap();
            assert_eq!(
                (u.prompt_tokens, u.completion_tokens),
                (25, 15),
                "split at {at}"
            );
        }
        assert_eq!(MessagesUsageTap::new().usage(), None);
    }
}
