//! Token usage of Responses answers the gateway passes through unconverted (OpenAI itself):
//! a whole response object, or a stream whose terminal event carries the response.

use super::types::{InputTokensDetails, OutputTokensDetails, ResponsesUsage};
use crate::sse::{SseEvent, SseParser};
use crate::stream::{StreamConverter, Usage};
use serde::Deserialize;

/// `usage` as OpenAI writes it in a response object; missing counts are 0.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    total_tokens: Option<u64>,
    input_tokens_details: Option<WireInputDetails>,
    output_tokens_details: Option<WireOutputDetails>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireInputDetails {
    cached_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireOutputDetails {
    reasoning_tokens: Option<u64>,
}

impl WireUsage {
    fn read(&self) -> ResponsesUsage {
        let input = self.input_tokens.unwrap_or(0);
        let output = self.output_tokens.unwrap_or(0);
        ResponsesUsage {
            input_tokens: input,
            input_tokens_details: InputTokensDetails {
                cached_tokens: self
                    .input_tokens_details
                    .as_ref()
                    .and_then(|d| d.cached_tokens)
                    .unwrap_or(0),
            },
            output_tokens: output,
            output_tokens_details: OutputTokensDetails {
                reasoning_tokens: self
                    .output_tokens_details
                    .as_ref()
                    .and_then(|d| d.reasoning_tokens)
                    .unwrap_or(0),
            },
            total_tokens: self.total_tokens.unwrap_or(input.saturating_add(output)),
        }
    }
}

/// A response object, read for its `usage` only (everything else is skipped unparsed).
#[derive(Debug, Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// A stream event, read for `response.usage` only.
#[derive(Debug, Deserialize)]
struct EventWithResponse {
    #[serde(default)]
    response: Option<WithUsage>,
}

/// Usage of a whole Responses API answer (`POST /v1/responses` without streaming), in the
/// gateway's terms: `prompt_tokens` = `input_tokens` (cached ones included, as OpenAI counts
/// them), `cached_tokens` from `input_tokens_details`. `None` without a usage object.
pub fn usage_from_response_body(body: &[u8]) -> Option<Usage> {
    let top: WithUsage = serde_json::from_slice(body).ok()?;
    Some(top.usage?.read().to_usage())
}

/// Watches a Responses stream that passes through unconverted and keeps the usage of its
/// terminal event (`response.completed`, `response.incomplete` or `response.failed`, each
/// carrying the whole response). As a [`StreamConverter`] it passes every byte through
/// unchanged.
#[derive(Debug, Default)]
pub struct ResponsesUsageTap {
    parser: SseParser,
    events: Vec<SseEvent>,
    usage: Option<ResponsesUsage>,
}

impl ResponsesUsageTap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Read a piece of the stream.
    pub fn observe(&mut self, chunk: &[u8]) {
        self.parser.push_into(chunk, &mut self.events);
        for event in std::mem::take(&mut self.events) {
            self.on_event(&event);
        }
    }

    fn on_event(&mut self, event: &SseEvent) {
        // Only the terminal events carry usage; deltas are not parsed.
        let terminal = |t: &str| {
            matches!(
                t,
                "response.completed" | "response.incomplete" | "response.failed"
            )
        };
        let named = event.event.as_deref().is_some_and(terminal);
        let unnamed_terminal = event.event.is_none()
            && [
                "response.completed",
                "response.incomplete",
                "response.failed",
            ]
            .iter()
            .any(|t| event.data.contains(t));
        if !(named || unnamed_terminal) || !event.data.contains("\"usage\"") {
            return;
        }
        let Ok(ev) = serde_json::from_str::<EventWithResponse>(&event.data) else {
            return;
        };
        if let Some(u) = ev.response.and_then(|r| r.usage) {
            self.usage = Some(u.read());
        }
    }

    /// The Responses usage seen, with its details.
    pub fn responses_usage(&self) -> Option<ResponsesUsage> {
        self.usage
    }
}

impl StreamConverter for ResponsesUsageTap {
    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.observe(chunk);
        chunk.to_vec()
    }

    fn finish(&mut self) -> Vec<u8> {
        if let Some(event) = self.parser.finish() {
            self.on_event(&event);
        }
        Vec::new()
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.map(|u| u.to_usage())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"id":"resp_1","object":"response","output":[{"type":"message","content":[{"type":"output_text","text":"\"usage\": 1"}]}],"usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":12},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":64},"total_tokens":123}}"#;

    #[test]
    fn body_usage_keeps_cached_tokens() {
        let u = usage_from_response_body(BODY.as_bytes()).unwrap();
        assert_eq!(
            (
                u.prompt_tokens,
                u.completion_tokens,
                u.total_tokens,
                u.cached_tokens
            ),
            (36, 87, 123, 12)
        );
        assert_eq!(usage_from_response_body(br#"{"usage":null}"#), None);
        assert_eq!(usage_from_response_body(br#"{"output":[]}"#), None);
        assert_eq!(usage_from_response_body(b"[1]"), None);
        assert_eq!(usage_from_response_body(b"{"), None);
        let partial = usage_from_response_body(br#"{"usage":{"input_tokens":3}}"#).unwrap();
        assert_eq!(partial.total_tokens, 3);
    }

    #[test]
    fn stream_usage_from_the_terminal_event_at_any_split() {
        let stream = format!(
            "event: response.created\ndata: {{\"type\":\"response.created\",\"sequence_number\":0,\"response\":{{\"usage\":null}}}}\n\n\
             event: response.output_text.delta\ndata: {{\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"delta\":\"\\\"usage\\\"\"}}\n\n\
             event: response.completed\ndata: {{\"type\":\"response.completed\",\"sequence_number\":2,\"response\":{BODY}}}\n\n"
        );
        let bytes = stream.as_bytes();
        for at in 0..=bytes.len() {
            let mut tap = ResponsesUsageTap::new();
            let mut out = tap.push(&bytes[..at]);
            out.extend(tap.push(&bytes[at..]));
            out.extend(tap.finish());
            assert_eq!(out, bytes, "pass-through at {at}");
            let u = tap.usage().unwrap();
            assert_eq!((u.prompt_tokens, u.completion_tokens), (36, 87), "at {at}");
            assert_eq!(
                tap.responses_usage()
                    .unwrap()
                    .output_tokens_details
                    .reasoning_tokens,
                64
            );
        }
        assert_eq!(ResponsesUsageTap::new().usage(), None);
    }
}
