//! Names of the metrics both plugins define through the host, and how their labels travel.
//!
//! Proxy-Wasm metrics have a name and no labels. Labels are therefore encoded into the name as
//! `metric;key=value;key=value` and the Envoy bootstrap (`switchyard render envoy`) carries one
//! `stats_tags` regex per key ([`tag_regexes`]) that moves each `;key=value` into a real tag.
//! Envoy prefixes Wasm metrics with the `wasmcustom` namespace, which its Prometheus output
//! strips, so a scrape shows `gen_ai_client_token_usage{gen_ai_token_type="input",...}`.
//!
//! Names follow the OpenTelemetry GenAI semantic conventions where one exists (dots become
//! underscores in Prometheus). Label values are sanitised (no `;`, `=`, control characters,
//! at most [`MAX_VALUE_LEN`] bytes) and model labels are bounded by the caller: only configured
//! models keep their name, everything else is [`OTHER`].

/// Tokens used, by `gen_ai_token_type` (`input`, `output`, `cache_read`, `cache_creation`):
/// a counter (exact totals; OpenTelemetry's `gen_ai.client.token.usage` is a histogram of the
/// same quantity).
pub const TOKEN_USAGE: &str = "gen_ai_client_token_usage";
/// Requests answered, by provider, models and status class.
pub const REQUESTS: &str = "gen_ai_client_requests";
/// Time from the request to the last response byte, in milliseconds (histogram).
pub const OPERATION_DURATION: &str = "gen_ai_client_operation_duration_ms";
/// Time to first token of streamed answers, in milliseconds (histogram).
pub const TIME_TO_FIRST_TOKEN: &str = "gen_ai_server_time_to_first_token_ms";
/// Upstream failures by `error_type` (`http_4xx`, `http_5xx`, `timeout`, `reset`,
/// `conversion`).
pub const UPSTREAM_ERRORS: &str = "switchyard_upstream_errors";
/// Balancer decisions by provider and `reason` (`metrics`, `fallback`, `client_choice`).
pub const BALANCER_PICKS: &str = "switchyard_balancer_picks";
/// Token-pool state changes by provider and `state` (`unavailable`, `available`).
pub const TOKEN_POOL_CHANGES: &str = "switchyard_token_pool_changes";

/// Label keys, in the order they are written into names.
pub const PROVIDER: &str = "gen_ai_provider_name";
pub const REQUEST_MODEL: &str = "gen_ai_request_model";
pub const RESPONSE_MODEL: &str = "gen_ai_response_model";
pub const TOKEN_TYPE: &str = "gen_ai_token_type";
pub const OPERATION: &str = "gen_ai_operation_name";
pub const STATUS_CLASS: &str = "status_class";
pub const ERROR_TYPE: &str = "error_type";
pub const REASON: &str = "reason";
pub const STATE: &str = "state";

/// Every label key, for the bootstrap's `stats_tags`.
pub const TAG_KEYS: &[&str] = &[
    PROVIDER,
    REQUEST_MODEL,
    RESPONSE_MODEL,
    TOKEN_TYPE,
    OPERATION,
    STATUS_CLASS,
    ERROR_TYPE,
    REASON,
    STATE,
];

/// Whether a metric counts or samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Histogram,
}

/// Every metric the filters emit, with its label keys in the order they are passed: hosts
/// whose metrics must be declared up front (Envoy's dynamic modules) declare these.
pub const METRICS: &[(&str, Kind, &[&str])] = &[
    (
        TOKEN_USAGE,
        Kind::Counter,
        &[PROVIDER, REQUEST_MODEL, RESPONSE_MODEL, TOKEN_TYPE],
    ),
    (
        REQUESTS,
        Kind::Counter,
        &[
            PROVIDER,
            REQUEST_MODEL,
            RESPONSE_MODEL,
            OPERATION,
            STATUS_CLASS,
        ],
    ),
    (
        OPERATION_DURATION,
        Kind::Histogram,
        &[PROVIDER, RESPONSE_MODEL, OPERATION],
    ),
    (
        TIME_TO_FIRST_TOKEN,
        Kind::Histogram,
        &[PROVIDER, RESPONSE_MODEL],
    ),
    (UPSTREAM_ERRORS, Kind::Counter, &[PROVIDER, ERROR_TYPE]),
    (BALANCER_PICKS, Kind::Counter, &[PROVIDER, REASON]),
    (TOKEN_POOL_CHANGES, Kind::Counter, &[PROVIDER, STATE]),
];

/// A label value as the Wasm build's names carry it (sanitised, bounded, `unknown` when
/// empty), for hosts with real labels.
pub fn label_value(value: &str) -> std::borrow::Cow<'_, str> {
    let plain = |b: u8| b != b';' && b != b'=' && !b.is_ascii_control() && b < 0x80;
    if !value.is_empty() && value.len() <= MAX_VALUE_LEN && value.bytes().all(plain) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = String::new();
    push_sanitised(&mut out, value);
    std::borrow::Cow::Owned(out)
}

/// The label value of models outside the configured set.
pub const OTHER: &str = "other";
/// Longest label value kept (longer values are cut at a character boundary).
pub const MAX_VALUE_LEN: usize = 64;

/// The host metric name for `metric` with `labels`.
pub fn stat_name(metric: &str, labels: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(metric.len() + 24 * labels.len());
    write_stat_name(&mut out, metric, labels);
    out
}

/// [`stat_name`] into a reused buffer (cleared first): the per-request path allocates nothing.
pub fn write_stat_name(out: &mut String, metric: &str, labels: &[(&str, &str)]) {
    out.clear();
    out.push_str(metric);
    for (k, v) in labels {
        out.push(';');
        out.push_str(k);
        out.push('=');
        push_sanitised(out, v);
    }
}

fn push_sanitised(out: &mut String, value: &str) {
    let plain = |b: &u8| *b != b';' && *b != b'=' && !b.is_ascii_control() && *b < 0x80;
    if !value.is_empty() && value.len() <= MAX_VALUE_LEN && value.bytes().all(|b| plain(&b)) {
        out.push_str(value);
        return;
    }
    let mut len = 0;
    for c in value.chars() {
        if len + c.len_utf8() > MAX_VALUE_LEN {
            break;
        }
        len += c.len_utf8();
        out.push(if c == ';' || c == '=' || c.is_control() {
            '_'
        } else {
            c
        });
    }
    if value.is_empty() {
        out.push_str("unknown");
    }
}

/// `(tag name, regex)` pairs for Envoy's `stats_config.stats_tags`: the first capture group is
/// cut from the name, the second is the tag's value.
pub fn tag_regexes() -> Vec<(String, String)> {
    TAG_KEYS
        .iter()
        .map(|k| (k.to_string(), format!("(;{k}=([^;]*))")))
        .collect()
}

/// `2xx`, `4xx`, `5xx`, ... of an HTTP status.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

/// Bounded model label: the model itself when `known`, [`OTHER`] otherwise.
pub fn model_label(model: Option<&str>, known: impl Fn(&str) -> bool) -> &str {
    match model {
        Some(m) if !m.is_empty() && known(m) => m,
        Some(_) => OTHER,
        None => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_lite::Regex;

    /// What Envoy's tag extraction does with our regexes: every match's first group is cut and
    /// its second group becomes the tag value.
    fn extract(name: &str) -> (String, Vec<(String, String)>) {
        let mut cut: Vec<(usize, usize)> = Vec::new();
        let mut tags = Vec::new();
        for (k, re) in tag_regexes() {
            let re = Regex::new(&re).unwrap();
            if let Some(c) = re.captures(name) {
                let whole = c.get(1).unwrap();
                cut.push((whole.start(), whole.end()));
                tags.push((k, c.get(2).unwrap().as_str().to_string()));
            }
        }
        cut.sort();
        let mut rest = String::new();
        let mut at = 0;
        for (s, e) in cut {
            rest.push_str(&name[at..s]);
            at = e;
        }
        rest.push_str(&name[at..]);
        (rest, tags)
    }

    #[test]
    fn labels_round_trip_through_tag_extraction() {
        let name = stat_name(
            TOKEN_USAGE,
            &[
                (PROVIDER, "qwen"),
                (REQUEST_MODEL, "gpt-4.1"),
                (RESPONSE_MODEL, "qwen3.5-max"),
                (TOKEN_TYPE, "input"),
            ],
        );
        assert_eq!(
            name,
            "gen_ai_client_token_usage;gen_ai_provider_name=qwen;gen_ai_request_model=gpt-4.1;\
             gen_ai_response_model=qwen3.5-max;gen_ai_token_type=input"
        );
        let (rest, mut tags) = extract(&format!("wasmcustom.{name}"));
        assert_eq!(rest, "wasmcustom.gen_ai_client_token_usage");
        tags.sort();
        assert_eq!(
            tags,
            vec![
                (PROVIDER.to_string(), "qwen".to_string()),
                (REQUEST_MODEL.to_string(), "gpt-4.1".to_string()),
                (RESPONSE_MODEL.to_string(), "qwen3.5-max".to_string()),
                (TOKEN_TYPE.to_string(), "input".to_string()),
            ]
        );
    }

    #[test]
    fn hostile_values_cannot_forge_labels() {
        let name = stat_name(REQUESTS, &[(PROVIDER, "a;reason=x\n"), (REASON, "")]);
        assert_eq!(
            name,
            "gen_ai_client_requests;gen_ai_provider_name=a_reason_x_;reason=unknown"
        );
        let long = "m".repeat(200) + "é";
        let name = stat_name(REQUESTS, &[(REQUEST_MODEL, &long)]);
        assert_eq!(
            name.len(),
            REQUESTS.len() + REQUEST_MODEL.len() + 2 + MAX_VALUE_LEN
        );
        let cut = "é".repeat(40);
        let name = stat_name(REQUESTS, &[(REQUEST_MODEL, &cut)]);
        assert!(name.ends_with(&"é".repeat(32)));
    }

    #[test]
    fn model_labels_are_bounded() {
        let known = |m: &str| m == "gpt-4o";
        assert_eq!(model_label(Some("gpt-4o"), known), "gpt-4o");
        assert_eq!(model_label(Some("made-up-123"), known), OTHER);
        assert_eq!(model_label(None, known), "unknown");
        assert_eq!(status_class(200), "2xx");
        assert_eq!(status_class(429), "4xx");
        assert_eq!(status_class(503), "5xx");
        assert_eq!(status_class(0), "other");
    }
}
