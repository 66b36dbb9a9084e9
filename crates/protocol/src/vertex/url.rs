//! Vertex AI endpoints: host by location, and the model paths for Gemini (Google's
//! publisher) and Claude (Anthropic's). Every segment is validated, never escaped: a value
//! outside the safe charset is an error, so neither the config nor a client's model name
//! can steer the request to another path.

use crate::error::GatewayError;

/// Longest project, location or model segment accepted.
const MAX_SEGMENT_LEN: usize = 128;

/// Which publisher's models, and so which methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publisher {
    /// `publishers/google`: `:generateContent`, `:streamGenerateContent?alt=sse`.
    Google,
    /// `publishers/anthropic`: `:rawPredict`, `:streamRawPredict`.
    Anthropic,
}

/// `aiplatform.googleapis.com` for location `global`, `{location}-aiplatform.googleapis.com`
/// otherwise. A location outside `[a-z0-9-]` is an error.
pub fn host(location: &str) -> Result<String, GatewayError> {
    check_segment(location, "location", |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'
    })?;
    Ok(if location == "global" {
        "aiplatform.googleapis.com".to_owned()
    } else {
        format!("{location}-aiplatform.googleapis.com")
    })
}

/// `/v1/projects/{project}/locations/{location}/publishers/{google|anthropic}/models/{model}:{method}`
/// with the method for `publisher` and `stream` (Gemini streams ask for `alt=sse`).
///
/// Allowed: project `[a-z0-9-.:]` (`.`/`:` for domain-scoped projects), location
/// `[a-z0-9-]`, model `[A-Za-z0-9-._@]` (Claude ids carry `@date`), each 1..=128 bytes, not
/// starting with `.`. The model may be given as `publishers/.../models/{model}` or
/// `models/{model}`; the last segment is used. A bad model is a 400 naming `model`; a bad
/// project or location (config) is a 500 that names the field but not its value.
pub fn model_path(
    project: &str,
    location: &str,
    publisher: Publisher,
    model: &str,
    stream: bool,
) -> Result<String, GatewayError> {
    check_segment(project, "project", |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'.' | b':')
    })?;
    check_segment(location, "location", |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'
    })?;
    let model = model.rsplit_once("models/").map_or(model, |(_, m)| m);
    let ok = !model.is_empty()
        && model.len() <= MAX_SEGMENT_LEN
        && !model.starts_with('.')
        && !model.contains("..")
        && model
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'@'));
    if !ok {
        return Err(GatewayError::invalid(
            "invalid_model",
            "model must be a Vertex AI model id: letters, digits, '-', '.', '_', '@'",
        )
        .with_param("model"));
    }
    let (publisher, method) = match (publisher, stream) {
        (Publisher::Google, false) => ("google", "generateContent"),
        (Publisher::Google, true) => ("google", "streamGenerateContent?alt=sse"),
        (Publisher::Anthropic, false) => ("anthropic", "rawPredict"),
        (Publisher::Anthropic, true) => ("anthropic", "streamRawPredict"),
    };
    Ok(format!(
        "/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method}"
    ))
}

fn check_segment(
    value: &str,
    what: &'static str,
    ok: impl Fn(u8) -> bool,
) -> Result<(), GatewayError> {
    let valid = !value.is_empty()
        && value.len() <= MAX_SEGMENT_LEN
        && !value.starts_with('.')
        && !value.contains("..")
        && value.bytes().all(ok);
    if valid {
        return Ok(());
    }
    Err(GatewayError::new(
        crate::ErrorKind::Internal,
        "invalid_provider_config",
        format!("the Vertex AI {what} in the provider config is not a valid path segment"),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(host("global").unwrap(), "aiplatform.googleapis.com");
        assert_eq!(
            host("us-central1").unwrap(),
            "us-central1-aiplatform.googleapis.com"
        );
        assert_eq!(
            host("europe-west4").unwrap(),
            "europe-west4-aiplatform.googleapis.com"
        );
        for bad in ["", "US-EAST1", "a.b", "evil.com/x", "a b", "x\r\n"] {
            assert!(host(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths() {
        assert_eq!(
            model_path("my-project", "us-central1", Publisher::Google, "gemini-2.5-flash", false).unwrap(),
            "/v1/projects/my-project/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            model_path("my-project", "global", Publisher::Google, "models/gemini-2.5-pro", true).unwrap(),
            "/v1/projects/my-project/locations/global/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            model_path("p", "us-east5", Publisher::Anthropic, "claude-sonnet-4@20250514", false).unwrap(),
            "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:rawPredict"
        );
        assert_eq!(
            model_path("example.com:proj", "us-east5", Publisher::Anthropic, "claude-3-5-haiku@20241022", true).unwrap(),
            "/v1/projects/example.com:proj/locations/us-east5/publishers/anthropic/models/claude-3-5-haiku@20241022:streamRawPredict"
        );
        for bad in [
            "", "../x", "a/b", "a:b", "a?b", "a#b", "a%2f", "a b", "é", ".x", "a..b",
        ] {
            let e = model_path("p", "global", Publisher::Google, bad, false).unwrap_err();
            assert_eq!((e.status(), e.param), (400, Some("model")), "{bad:?}");
        }
        let e = model_path("P/../x", "global", Publisher::Google, "m", false).unwrap_err();
        assert_eq!(e.status(), 500);
        assert!(!e.message.contains("P/../x"));
    }
}
