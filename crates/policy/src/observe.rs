//! Per-request observation: which provider and models served a request, its status, token
//! usage, time to first byte and duration; the metric labels it is emitted with when the
//! request ends ([`crate::stats`] names them) and the access-log facts. Pure: the filter hands
//! the samples to its host.
//!
//! Filter state `wasm.switchyard` (read in an access log with
//! `%FILTER_STATE(wasm.switchyard:PLAIN)%`) holds them as one logfmt line:
//! `provider=… model=… upstream_model=… input_tokens=… output_tokens=… ttft_ms=…`.

use crate::proxy::Provider;
use crate::stats::{self, model_label, status_class, Kind};
use crate::vendor::Api;
use switchyard_protocol::responses::{usage_from_response_body, ResponsesUsageTap};
use switchyard_protocol::usage::{usage_from_tail, BodyTail, MessagesUsageTap};
use switchyard_protocol::{StreamConverter, Usage};

/// Longest value written into the access-log facts; longer ones are cut.
const MAX_LOG_VALUE: usize = 128;

/// A value for the logfmt facts: `-` when unknown or empty; anything that could break the
/// line (whitespace, quotes, `=`, control characters) becomes `_`, so a client-chosen model
/// name cannot forge log fields or lines.
fn push_log_value(line: &mut String, value: Option<&str>) {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        line.push('-');
        return;
    };
    // Most values (provider and model names) are short, printable ASCII: copied as they are.
    let plain = |b: &u8| b.is_ascii_graphic() && !matches!(b, b'"' | b'=' | b'\\');
    if value.len() <= MAX_LOG_VALUE && value.bytes().all(|b| plain(&b)) {
        line.push_str(value);
        return;
    }
    let mut len = 0;
    for c in value.chars() {
        len += c.len_utf8();
        if len > MAX_LOG_VALUE {
            break;
        }
        let bad = c.is_whitespace() || c.is_control() || matches!(c, '"' | '=' | '\\');
        line.push(if bad { '_' } else { c });
    }
}

/// Passed-through bodies up to this size are kept whole to read their usage; beyond it only
/// the tail is.
pub const KEEP_WHOLE: usize = 256 * 1024;
pub const KEEP_TAIL: usize = 8 * 1024;

/// How token usage of a passed-through answer is read.
pub enum Tap {
    None,
    /// Chosen from the first bytes of the body (a JSON object, or an SSE stream), which saves
    /// reading `content-type` on every request.
    Sniff,
    Body(BodyTail),
    Messages(MessagesUsageTap),
    /// [`Tap::Sniff`] for a Responses API answer (passed through from OpenAI).
    SniffResponses,
    /// A whole Responses object (its usage counts are named as in Responses).
    ResponsesBody(BodyTail),
    ResponsesStream(ResponsesUsageTap),
}

pub struct Observation {
    pub provider: String,
    pub operation: &'static str,
    pub request_model: String,
    pub response_model: String,
    pub started_ms: u64,
    pub streaming: bool,
    pub first_byte_ms: Option<u64>,
    /// Status the upstream (or the gateway) answered.
    pub status: Option<u16>,
    pub usage: Option<Usage>,
    pub tap: Tap,
    published: bool,
    /// Bounded label values, fixed once the provider is known.
    request_label_owned: String,
    response_label_owned: String,
}

/// OpenTelemetry's `gen_ai.operation.name` for an API.
pub fn operation(api: Api) -> &'static str {
    match api {
        // No OpenTelemetry value names the Responses API; it is chat generation.
        Api::ChatCompletions | Api::Messages | Api::Responses => "chat",
        Api::Completions => "text_completion",
        Api::Embeddings => "embeddings",
        Api::Models => "models",
    }
}

/// The provider's label: its configured `id`, else its vendor type.
pub fn provider_label(p: &Provider) -> String {
    if p.config.id.is_empty() {
        p.config.vendor.clone()
    } else {
        p.config.id.clone()
    }
}

impl Observation {
    pub fn new(provider: &Provider, api: Api, started_ms: u64) -> Self {
        Observation {
            provider: provider_label(provider),
            operation: operation(api),
            request_model: String::new(),
            response_model: String::new(),
            started_ms,
            streaming: false,
            first_byte_ms: None,
            status: None,
            usage: None,
            tap: Tap::None,
            published: false,
            request_label_owned: String::new(),
            response_label_owned: String::new(),
        }
    }

    /// Record the models (the client's and the one sent upstream), bounding their labels by
    /// what the provider's config names.
    pub fn set_models(
        &mut self,
        provider: &Provider,
        client: Option<&str>,
        upstream: Option<&str>,
    ) {
        let known = |m: &str| provider.config.labels_model(m);
        self.request_model = client.unwrap_or_default().to_string();
        self.response_model = upstream.or(client).unwrap_or_default().to_string();
        self.request_label_owned = model_label(client, known).to_string();
        self.response_label_owned = model_label(upstream.or(client), known).to_string();
    }

    /// Whether the answer went through the body phase to its end (its status is then the one
    /// recorded from the response headers).
    pub fn completed(&self) -> bool {
        self.published && self.status.is_some()
    }

    /// Whether a passed-through body is read for its usage (or time to first byte).
    pub fn tapping(&self) -> bool {
        self.streaming || !matches!(self.tap, Tap::None)
    }

    /// Whether the time of the first byte is still to be taken; only streams report it, so
    /// only they read the clock.
    pub fn wants_first_byte(&self) -> bool {
        self.streaming && self.first_byte_ms.is_none()
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if matches!(self.tap, Tap::Sniff | Tap::SniffResponses) {
            let responses = matches!(self.tap, Tap::SniffResponses);
            let body = || BodyTail::new(KEEP_WHOLE, KEEP_TAIL);
            self.tap = match (chunk.trim_ascii_start().first(), responses) {
                (None, _) => return,
                (Some(b'{'), false) => Tap::Body(body()),
                (Some(_), false) => Tap::Messages(MessagesUsageTap::new()),
                (Some(b'{'), true) => Tap::ResponsesBody(body()),
                (Some(_), true) => Tap::ResponsesStream(ResponsesUsageTap::new()),
            };
        }
        match &mut self.tap {
            Tap::None | Tap::Sniff | Tap::SniffResponses => {}
            Tap::Body(t) | Tap::ResponsesBody(t) => t.push(chunk),
            Tap::Messages(t) => t.push(chunk),
            Tap::ResponsesStream(t) => t.observe(chunk),
        }
    }

    /// The answer is complete: settle usage; returns the per-request facts to publish as
    /// filter state (before access logs run), the first time only.
    pub fn complete(&mut self, converter_usage: Option<Usage>) -> Option<String> {
        if self.usage.is_none() {
            self.usage = converter_usage.or_else(|| match &mut self.tap {
                Tap::None | Tap::Sniff | Tap::SniffResponses => None,
                Tap::Body(t) => t.usage(),
                Tap::Messages(t) => t.usage(),
                Tap::ResponsesBody(t) => {
                    let kept = t.kept();
                    usage_from_response_body(kept).or_else(|| usage_from_tail(kept))
                }
                Tap::ResponsesStream(t) => {
                    t.finish();
                    StreamConverter::usage(t)
                }
            });
        }
        self.publish()
    }

    /// The access-log facts, the first time they are asked for (`None` after).
    pub fn publish(&mut self) -> Option<String> {
        if self.published {
            return None;
        }
        self.published = true;
        Some(self.log_facts())
    }

    /// The request's facts as one logfmt line (one host call, where a key per fact cost six).
    pub fn log_facts(&self) -> String {
        let ttft = self
            .first_byte_ms
            .filter(|_| self.streaming)
            .map(|t| t.saturating_sub(self.started_ms));
        let mut line = String::with_capacity(160);
        let mut field = |key: &str, value: Option<&str>| {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(key);
            line.push('=');
            push_log_value(&mut line, value);
        };
        let num = |n: Option<u64>| n.map(|n| n.to_string());
        field("provider", Some(&self.provider));
        field("model", Some(&self.request_model));
        field("upstream_model", Some(&self.response_model));
        field(
            "input_tokens",
            num(self.usage.map(|u| u.prompt_tokens)).as_deref(),
        );
        field(
            "output_tokens",
            num(self.usage.map(|u| u.completion_tokens)).as_deref(),
        );
        field("ttft_ms", num(ttft).as_deref());
        line
    }

    /// The request is over (`on_log`): its metric samples, handed to `sample(kind, metric,
    /// labels, value)`. `final_status` is what the client got.
    pub fn emit(
        &self,
        final_status: Option<u16>,
        code_details: Option<&str>,
        now: u64,
        mut sample: impl FnMut(Kind, &str, &[(&str, &str)], u64),
    ) {
        let status = final_status.or(self.status).unwrap_or(0);
        let provider = self.provider.as_str();
        let req = self.request_label_owned.as_str();
        let resp = self.response_label_owned.as_str();
        let req = if req.is_empty() { "unknown" } else { req };
        let resp = if resp.is_empty() { "unknown" } else { resp };
        sample(
            Kind::Counter,
            stats::REQUESTS,
            &[
                (stats::PROVIDER, provider),
                (stats::REQUEST_MODEL, req),
                (stats::RESPONSE_MODEL, resp),
                (stats::OPERATION, self.operation),
                (stats::STATUS_CLASS, status_class(status)),
            ],
            1,
        );
        if let Some(u) = self.usage {
            let uncached = u
                .prompt_tokens
                .saturating_sub(u.cached_tokens)
                .saturating_sub(u.cache_creation_tokens);
            for (kind, n) in [
                ("input", uncached),
                ("output", u.completion_tokens),
                ("cache_read", u.cached_tokens),
                ("cache_creation", u.cache_creation_tokens),
            ] {
                sample(
                    Kind::Counter,
                    stats::TOKEN_USAGE,
                    &[
                        (stats::PROVIDER, provider),
                        (stats::REQUEST_MODEL, req),
                        (stats::RESPONSE_MODEL, resp),
                        (stats::TOKEN_TYPE, kind),
                    ],
                    n,
                );
            }
        }
        sample(
            Kind::Histogram,
            stats::OPERATION_DURATION,
            &[
                (stats::PROVIDER, provider),
                (stats::RESPONSE_MODEL, resp),
                (stats::OPERATION, self.operation),
            ],
            now.saturating_sub(self.started_ms),
        );
        if self.streaming && status < 400 {
            if let Some(first) = self.first_byte_ms {
                sample(
                    Kind::Histogram,
                    stats::TIME_TO_FIRST_TOKEN,
                    &[(stats::PROVIDER, provider), (stats::RESPONSE_MODEL, resp)],
                    first.saturating_sub(self.started_ms),
                );
            }
        }
        if let Some(kind) = error_type(self.status, code_details) {
            sample(
                Kind::Counter,
                stats::UPSTREAM_ERRORS,
                &[(stats::PROVIDER, provider), (stats::ERROR_TYPE, kind)],
                1,
            );
        }
    }
}

/// What kind of upstream failure ended the request, if any: Envoy's response code details
/// name timeouts and resets; otherwise the vendor's own error status.
pub fn error_type(
    upstream_status: Option<u16>,
    code_details: Option<&str>,
) -> Option<&'static str> {
    let details = code_details.unwrap_or_default();
    if details.contains("timeout") {
        return Some("timeout");
    }
    if details.contains("reset") || details.contains("connection_termination") {
        return Some("reset");
    }
    match upstream_status {
        Some(400..=499) => Some("http_4xx"),
        Some(500..=599) => Some("http_5xx"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_facts_are_one_safe_line() {
        let mut o = Observation {
            provider: "qwen-main".into(),
            operation: "chat",
            request_model: "gpt 4o\ninjected=1".into(),
            response_model: "qwen-max".into(),
            started_ms: 1000,
            streaming: true,
            first_byte_ms: Some(1042),
            status: Some(200),
            usage: None,
            tap: Tap::None,
            published: false,
            request_label_owned: String::new(),
            response_label_owned: String::new(),
        };
        assert_eq!(
            o.log_facts(),
            "provider=qwen-main model=gpt_4o_injected_1 upstream_model=qwen-max \
             input_tokens=- output_tokens=- ttft_ms=42"
        );
        o.streaming = false;
        o.request_model = "m".repeat(500);
        let line = o.log_facts();
        assert!(line.ends_with("ttft_ms=-") && line.len() < 300, "{line}");
    }

    #[test]
    fn error_kinds() {
        assert_eq!(error_type(Some(200), Some("via_upstream")), None);
        assert_eq!(
            error_type(Some(429), Some("via_upstream")),
            Some("http_4xx")
        );
        assert_eq!(error_type(Some(503), None), Some("http_5xx"));
        assert_eq!(
            error_type(None, Some("upstream_response_timeout")),
            Some("timeout")
        );
        assert_eq!(
            error_type(
                None,
                Some("upstream_reset_before_response_started{remote_reset}")
            ),
            Some("reset")
        );
        assert_eq!(error_type(None, None), None);
        assert_eq!(operation(Api::Messages), "chat");
        assert_eq!(operation(Api::Embeddings), "embeddings");
    }
}
