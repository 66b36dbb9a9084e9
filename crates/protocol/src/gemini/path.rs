//! Upstream paths. Gemini puts the model in the URL path, so the name is validated here and
//! never percent-decoded or escaped: anything outside a safe charset is refused.

use crate::error::GatewayError;

/// Longest model name accepted (Gemini's own ids are far shorter).
const MAX_MODEL_LEN: usize = 200;

/// The resource a model name denotes: `models/{name}` or `tunedModels/{name}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ModelResource<'a> {
    pub collection: &'static str,
    pub name: &'a str,
}

impl ModelResource<'_> {
    /// `models/gemini-2.5-flash`, as the `model` field of embedding requests wants it.
    pub fn resource_name(&self) -> String {
        format!("{}/{}", self.collection, self.name)
    }
}

/// Validate a model name. Accepted: `NAME`, `models/NAME` and `tunedModels/NAME`, where `NAME`
/// is 1..=200 of ASCII letters, digits, `-`, `.`, `_`, does not start with `.` and has no
/// `..`. Everything else (`/`, `?`, `#`, `%`, spaces, CR/LF, non-ASCII) is a 400 naming
/// `model`, so a client cannot steer the request to another upstream path.
pub(crate) fn parse_model(model: &str) -> Result<ModelResource<'_>, GatewayError> {
    let (collection, name) = if let Some(rest) = model.strip_prefix("models/") {
        ("models", rest)
    } else if let Some(rest) = model.strip_prefix("tunedModels/") {
        ("tunedModels", rest)
    } else {
        ("models", model)
    };
    let safe = !name.is_empty()
        && name.len() <= MAX_MODEL_LEN
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'));
    if !safe {
        return Err(GatewayError::invalid(
            "invalid_model",
            "model must be a Gemini model name: letters, digits, '-', '.', '_' \
             (optionally prefixed by 'models/' or 'tunedModels/')",
        )
        .with_param("model"));
    }
    Ok(ModelResource { collection, name })
}

/// `/v1beta/models/{model}:generateContent`, or `:streamGenerateContent?alt=sse` when
/// streaming (SSE framing; without `alt=sse` Gemini streams one JSON array).
pub fn model_path(model: &str, stream: bool) -> Result<String, GatewayError> {
    let m = parse_model(model)?;
    let method = if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    Ok(format!("/v1beta/{}:{method}", m.resource_name()))
}

/// `/v1beta/models/{model}:embedContent`, or `:batchEmbedContents` for several inputs.
pub fn embed_path(model: &str, batch: bool) -> Result<String, GatewayError> {
    let m = parse_model(model)?;
    let method = if batch {
        "batchEmbedContents"
    } else {
        "embedContent"
    };
    Ok(format!("/v1beta/{}:{method}", m.resource_name()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn builds_paths() {
        assert_eq!(
            model_path("gemini-2.5-flash", false).unwrap(),
            "/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            model_path("models/gemini-2.5-pro", true).unwrap(),
            "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            model_path("tunedModels/my_model-1", false).unwrap(),
            "/v1beta/tunedModels/my_model-1:generateContent"
        );
        assert_eq!(
            embed_path("gemini-embedding-001", false).unwrap(),
            "/v1beta/models/gemini-embedding-001:embedContent"
        );
        assert_eq!(
            embed_path("text-embedding-004", true).unwrap(),
            "/v1beta/models/text-embedding-004:batchEmbedContents"
        );
    }

    #[test]
    fn refuses_unsafe_names() {
        let bad = [
            "",
            "../x",
            "..",
            ".hidden",
            "a..b",
            "a/b",
            "models/",
            "models/a/b",
            "models/../x",
            "a?b",
            "a#b",
            "a%2Fb",
            "a\r\nb",
            "a\nb",
            "a b",
            "a:b",
            "a\\b",
            "gemini\u{e9}",
            "tunedModels/",
            "other/x",
        ];
        for m in bad {
            for stream in [false, true] {
                let e = model_path(m, stream).unwrap_err();
                assert_eq!(e.status(), 400, "{m:?}");
                assert_eq!(e.param, Some("model"), "{m:?}");
            }
            assert!(embed_path(m, true).is_err(), "{m:?}");
        }
        assert!(model_path(&"a".repeat(MAX_MODEL_LEN + 1), false).is_err());
        assert!(model_path(&"a".repeat(MAX_MODEL_LEN), false).is_ok());
    }
}
