//! Vendors as data: where each one lives, how it authenticates and which APIs it has.
//!
//! Adding an OpenAI-compatible vendor is one entry of [`VENDORS`]. Vendors with their own
//! protocol (Claude, Gemini) are a [`Family`] whose translators live in `switchyard-protocol`.

/// The client-facing API a request is for, detected from the request path's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    ChatCompletions,
    Completions,
    Embeddings,
    Models,
    /// Anthropic's Messages API (`/v1/messages`).
    Messages,
    /// OpenAI's Responses API (`/v1/responses`).
    Responses,
}

impl Api {
    /// Detect from a request path (query ignored); prefixes such as `/masgod` are allowed.
    pub fn from_path(path: &str) -> Option<Api> {
        let path = path
            .split(['?', '#'])
            .next()
            .unwrap_or(path)
            .trim_end_matches('/');
        const SUFFIXES: [(&str, Api); 6] = [
            ("/chat/completions", Api::ChatCompletions),
            ("/completions", Api::Completions),
            ("/embeddings", Api::Embeddings),
            ("/models", Api::Models),
            ("/messages", Api::Messages),
            ("/responses", Api::Responses),
        ];
        SUFFIXES
            .iter()
            .find(|(s, _)| path.ends_with(s))
            .map(|(_, api)| *api)
    }

    /// The path suffix of this API in OpenAI's layout (below the vendor's base path).
    pub fn openai_suffix(self) -> &'static str {
        match self {
            Api::ChatCompletions => "/chat/completions",
            Api::Completions => "/completions",
            Api::Embeddings => "/embeddings",
            Api::Models => "/models",
            Api::Messages => "/messages",
            Api::Responses => "/responses",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Api::ChatCompletions => "chat completions",
            Api::Completions => "completions",
            Api::Embeddings => "embeddings",
            Api::Models => "models",
            Api::Messages => "messages",
            Api::Responses => "responses",
        }
    }
}

/// The wire protocol a vendor speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    OpenAi,
    Claude,
    Gemini,
    /// Google Vertex AI: Gemini or Claude by model ([`crate::vertex::publisher`]).
    Vertex,
    /// AWS Bedrock's Converse API (see [`crate::bedrock`]).
    Bedrock,
}

/// How the API token is presented upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// The token alone in the named header (`api-key`, `x-api-key`, `x-goog-api-key`).
    Header(&'static str),
}

/// One vendor's defaults.
#[derive(Debug, Clone, Copy)]
pub struct VendorSpec {
    /// The `type` in config.
    pub name: &'static str,
    pub family: Family,
    /// Default upstream host; empty when the config must say it.
    pub host: &'static str,
    /// Base path the OpenAI suffixes go under (e.g. `/v1`).
    pub base: &'static str,
    /// Chat path when it is not `base + /chat/completions`.
    pub chat_path: Option<&'static str>,
    pub auth: Auth,
    /// APIs besides chat completions.
    pub completions: bool,
    pub embeddings: bool,
    /// Serves the Responses API (`/v1/responses`) itself: requests pass through. Every other
    /// vendor gets Responses requests converted to its chat API.
    pub responses: bool,
}

const fn openai_compatible(
    name: &'static str,
    host: &'static str,
    base: &'static str,
) -> VendorSpec {
    VendorSpec {
        name,
        family: Family::OpenAi,
        host,
        base,
        chat_path: None,
        auth: Auth::Bearer,
        completions: false,
        embeddings: false,
        responses: false,
    }
}

const fn with_apis(mut v: VendorSpec, completions: bool, embeddings: bool) -> VendorSpec {
    v.completions = completions;
    v.embeddings = embeddings;
    v
}

const fn with_responses(mut v: VendorSpec) -> VendorSpec {
    v.responses = true;
    v
}

const fn with_chat_path(mut v: VendorSpec, path: &'static str) -> VendorSpec {
    v.chat_path = Some(path);
    v
}

/// Every vendor type this proxy knows.
pub const VENDORS: &[VendorSpec] = &[
    with_responses(with_apis(
        openai_compatible("openai", "api.openai.com", "/v1"),
        true,
        true,
    )),
    with_apis(
        VendorSpec {
            auth: Auth::Header("api-key"),
            ..openai_compatible("azure", "", "")
        },
        true,
        true,
    ),
    with_apis(
        openai_compatible("deepseek", "api.deepseek.com", ""),
        false,
        false,
    ),
    with_apis(
        openai_compatible("qwen", "dashscope.aliyuncs.com", "/compatible-mode/v1"),
        true,
        true,
    ),
    with_chat_path(
        openai_compatible("minimax", "api.minimax.chat", "/v1"),
        "/v1/text/chatcompletion_v2",
    ),
    with_apis(
        openai_compatible("moonshot", "api.moonshot.cn", "/v1"),
        false,
        false,
    ),
    with_apis(
        openai_compatible("zhipuai", "open.bigmodel.cn", "/api/paas/v4"),
        false,
        true,
    ),
    with_apis(
        openai_compatible("baichuan", "api.baichuan-ai.com", "/v1"),
        false,
        true,
    ),
    openai_compatible("yi", "api.lingyiwanwu.com", "/v1"),
    openai_compatible("stepfun", "api.stepfun.com", "/v1"),
    openai_compatible("groq", "api.groq.com", "/openai/v1"),
    with_apis(
        openai_compatible("mistral", "api.mistral.ai", "/v1"),
        false,
        true,
    ),
    with_apis(
        openai_compatible("together-ai", "api.together.xyz", "/v1"),
        true,
        true,
    ),
    with_apis(
        openai_compatible("openrouter", "openrouter.ai", "/api/v1"),
        true,
        true,
    ),
    with_apis(
        openai_compatible("fireworks", "api.fireworks.ai", "/inference/v1"),
        true,
        true,
    ),
    openai_compatible("grok", "api.x.ai", "/v1"),
    with_apis(
        openai_compatible("github", "models.github.ai", "/inference"),
        false,
        true,
    ),
    with_apis(openai_compatible("ollama", "", "/v1"), true, true),
    with_apis(openai_compatible("vllm", "", "/v1"), true, true),
    with_apis(openai_compatible("generic", "", ""), true, true),
    VendorSpec {
        name: "claude",
        family: Family::Claude,
        host: "api.anthropic.com",
        base: "/v1",
        chat_path: None,
        auth: Auth::Header("x-api-key"),
        completions: false,
        embeddings: false,
        responses: false,
    },
    VendorSpec {
        name: "gemini",
        family: Family::Gemini,
        host: "generativelanguage.googleapis.com",
        base: "/v1beta",
        chat_path: None,
        auth: Auth::Header("x-goog-api-key"),
        completions: false,
        embeddings: true,
        responses: false,
    },
    VendorSpec {
        name: "vertex",
        family: Family::Vertex,
        // From `vertexRegion` ([`switchyard_protocol::vertex::host`]).
        host: "",
        base: "/v1",
        chat_path: None,
        auth: Auth::Bearer,
        completions: false,
        embeddings: false,
        responses: false,
    },
    // The host is regional (`awsRegion`); the model goes into the path.
    VendorSpec {
        name: "bedrock",
        family: Family::Bedrock,
        host: "",
        base: "",
        chat_path: None,
        auth: Auth::Bearer,
        completions: false,
        embeddings: false,
        responses: false,
    },
];

pub fn vendor(name: &str) -> Option<&'static VendorSpec> {
    VENDORS.iter().find(|v| v.name == name)
}

/// Split `https://host[:port]/path?query` into `(host[:port], path?query)`.
pub fn split_url(url: &str) -> Option<(String, String)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    let (host, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if host.is_empty() || host.contains(['@', ' ', '\r', '\n']) {
        return None;
    }
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Some((host.to_string(), path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_from_path() {
        assert_eq!(
            Api::from_path("/v1/chat/completions"),
            Some(Api::ChatCompletions)
        );
        assert_eq!(
            Api::from_path("/masgod/v1/chat/completions?x=1"),
            Some(Api::ChatCompletions)
        );
        assert_eq!(Api::from_path("/v1/completions"), Some(Api::Completions));
        assert_eq!(Api::from_path("/v1/embeddings/"), Some(Api::Embeddings));
        assert_eq!(Api::from_path("/v1/models"), Some(Api::Models));
        assert_eq!(Api::from_path("/v1/messages"), Some(Api::Messages));
        assert_eq!(Api::from_path("/v1/responses"), Some(Api::Responses));
        assert_eq!(Api::from_path("/v1/images/generations"), None);
    }

    #[test]
    fn vendor_names_are_unique() {
        for (i, v) in VENDORS.iter().enumerate() {
            assert!(
                VENDORS[i + 1..].iter().all(|w| w.name != v.name),
                "{}",
                v.name
            );
        }
        assert!(vendor("deepseek").is_some());
        assert!(vendor("nope").is_none());
    }

    #[test]
    fn urls_split() {
        assert_eq!(
            split_url(
                "https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=1"
            ),
            Some((
                "r.openai.azure.com".into(),
                "/openai/deployments/d/chat/completions?api-version=1".into()
            ))
        );
        assert_eq!(
            split_url("http://h:8080"),
            Some(("h:8080".into(), "".into()))
        );
        assert_eq!(
            split_url("https://h?x=1"),
            Some(("h".into(), "/?x=1".into()))
        );
        assert_eq!(split_url("https://"), None);
    }
}
