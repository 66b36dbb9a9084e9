//! Which protocol translation a request needs, and the glue from that choice to the pure
//! translators in `switchyard_protocol` (request bodies, plain responses, streams, errors).

use switchyard_policy::proxy::{Protocol, Provider};
use switchyard_policy::vendor::{Api, Family};
use switchyard_protocol::anthropic::{self, ClaudeOptions};
use switchyard_protocol::error::vendor_error_body;
use switchyard_protocol::gemini::{self, GeminiOptions};
use switchyard_protocol::openai_edit::{self, RequestEdits, UsageFilter};
use switchyard_protocol::{ErrorKind, GatewayError, StreamConverter, Usage};

/// `anthropic-version` sent to Claude when the config names none.
pub const DEFAULT_CLAUDE_VERSION: &str = "2023-06-01";

/// How one request's body and response are converted between client and vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Translation {
    /// Client and vendor speak OpenAI: byte-level edits only (model, usage, context).
    Edit,
    /// OpenAI chat client, Claude vendor (Messages API).
    ChatToClaude,
    /// OpenAI chat client, Gemini vendor (`generateContent`).
    ChatToGemini,
    /// OpenAI embeddings client, Gemini vendor (`batchEmbedContents`, always: the upstream
    /// path is fixed in the header phase, before the body says whether the input is a list).
    EmbeddingsToGemini,
    /// Anthropic Messages client, OpenAI-compatible vendor (chat completions).
    MessagesToChat,
    /// Anthropic Messages client, Claude vendor: passed through natively.
    MessagesNative,
    /// Anthropic Messages client, Gemini vendor: through OpenAI chat in both directions.
    MessagesToGemini,
    /// OpenAI models-list client, Claude vendor (`GET /v1/models`, answer converted).
    ModelsFromClaude,
}

/// Everything a translator needs besides the bytes.
pub struct Ids<'a> {
    /// Model to name in converted responses and to send upstream.
    pub model: &'a str,
    /// Completion id for vendors that do not give one.
    pub id: &'a str,
    /// Unix seconds.
    pub created: u64,
}

impl Translation {
    /// The translation for a client API against a vendor, or a 404 when there is none.
    pub fn choose(provider: &Provider, api: Api) -> Result<Translation, GatewayError> {
        let t = match (provider.family(), api) {
            (Family::OpenAi, Api::Messages) => Translation::MessagesToChat,
            (Family::OpenAi, _) => Translation::Edit,
            (Family::Claude, Api::ChatCompletions) => Translation::ChatToClaude,
            (Family::Claude, Api::Messages) => Translation::MessagesNative,
            (Family::Claude, Api::Models) => Translation::ModelsFromClaude,
            (Family::Gemini, Api::ChatCompletions) => Translation::ChatToGemini,
            (Family::Gemini, Api::Embeddings) => Translation::EmbeddingsToGemini,
            (Family::Gemini, Api::Messages) => Translation::MessagesToGemini,
            _ => {
                return Err(GatewayError::new(
                    ErrorKind::NotFound,
                    "unsupported_api",
                    format!(
                        "provider type `{}` is not supported for the {} API",
                        provider.spec.name,
                        api.name()
                    ),
                ))
            }
        };
        Ok(t)
    }

    /// Whether the client speaks Anthropic's Messages API (errors go back in its shape).
    pub fn anthropic_client(self) -> bool {
        matches!(
            self,
            Translation::MessagesToChat
                | Translation::MessagesNative
                | Translation::MessagesToGemini
        )
    }

    /// Whether the body is always rewritten (so `content-length` must go in the header phase).
    pub fn rewrites_body(self) -> bool {
        !matches!(
            self,
            Translation::Edit | Translation::MessagesNative | Translation::ModelsFromClaude
        )
    }

    /// The upstream path. `model` is the mapped model; Gemini needs it (it is in the path).
    pub fn upstream_path(
        self,
        provider: &Provider,
        api: Api,
        model: Option<&str>,
        streaming: bool,
        client_path: &str,
    ) -> Result<String, GatewayError> {
        match self {
            Translation::Edit | Translation::MessagesToChat => {
                provider.openai_path(api, model, client_path)
            }
            Translation::ChatToClaude | Translation::MessagesNative => {
                if provider.endpoint.keep_path {
                    Ok(client_path.to_string())
                } else {
                    Ok(format!("{}/messages", provider.endpoint.base))
                }
            }
            Translation::ModelsFromClaude => Ok(format!("{}/models", provider.endpoint.base)),
            Translation::ChatToGemini | Translation::MessagesToGemini => {
                gemini::model_path(gemini_model(model)?, streaming)
            }
            Translation::EmbeddingsToGemini => gemini::embed_path(gemini_model(model)?, true),
        }
    }

    /// Translate (and edit) the client's request body into the vendor's.
    pub fn request_body(
        self,
        provider: &Provider,
        body: &[u8],
        edits: &RequestEdits<'_>,
        model: &str,
    ) -> Result<Option<Vec<u8>>, GatewayError> {
        let edited = |body: &[u8], edits: &RequestEdits<'_>| -> Result<Vec<u8>, GatewayError> {
            Ok(openai_edit::apply(body, edits)?.unwrap_or_else(|| body.to_vec()))
        };
        match self {
            Translation::Edit => openai_edit::apply(body, edits),
            Translation::ModelsFromClaude => Ok(None),
            Translation::MessagesNative => openai_edit::apply(
                body,
                &RequestEdits {
                    model: edits.model,
                    model_spans: edits.model_spans,
                    ..RequestEdits::default()
                },
            ),
            Translation::ChatToClaude if edits.context.is_none() => {
                // The translator writes the mapped model itself: no splice pass first.
                let opts = ClaudeOptions::default();
                anthropic::chat_request_to_messages_as(body, &opts, edits.model).map(Some)
            }
            Translation::ChatToClaude => {
                let chat = edited(body, &no_usage(edits))?;
                anthropic::chat_request_to_messages(&chat, &ClaudeOptions::default()).map(Some)
            }
            Translation::ChatToGemini => {
                let chat = edited(body, &no_usage(edits))?;
                gemini::chat_request_to_gemini(&chat, &gemini_options(provider)).map(Some)
            }
            Translation::MessagesToGemini => {
                let chat = anthropic::messages_request_to_chat(body)?;
                let chat = edited(&chat, &converted(edits))?;
                gemini::chat_request_to_gemini(&chat, &gemini_options(provider)).map(Some)
            }
            Translation::EmbeddingsToGemini => {
                let (batch, out) = gemini::embeddings_request_to_gemini(body, model)?;
                if batch {
                    return Ok(Some(out));
                }
                // One input: wrap it as a batch of one, matching the path chosen earlier.
                let one: serde_json::Value = serde_json::from_slice(&out).map_err(|e| {
                    GatewayError::new(ErrorKind::Internal, "internal", e.to_string())
                })?;
                Ok(Some(
                    serde_json::json!({ "requests": [one] })
                        .to_string()
                        .into_bytes(),
                ))
            }
            Translation::MessagesToChat => {
                let chat = anthropic::messages_request_to_chat(body)?;
                // The translator already asks for usage when streaming.
                Ok(Some(edited(&chat, &converted(edits))?))
            }
        }
    }

    /// A converter for a streamed answer, or `None` when the stream passes through.
    pub fn stream_converter(
        self,
        ids: &Ids<'_>,
        client_wants_usage: bool,
    ) -> Option<Box<dyn StreamConverter>> {
        match self {
            Translation::Edit => Some(Box::new(UsageFilter::new(client_wants_usage))),
            Translation::ChatToClaude => Some(Box::new(anthropic::MessagesStreamToChat::new(
                client_wants_usage,
                ids.created,
            ))),
            Translation::ChatToGemini => Some(Box::new(gemini::GeminiStreamToChat::new(
                ids.model,
                ids.id,
                ids.created,
                client_wants_usage,
            ))),
            Translation::MessagesToChat => Some(Box::new(anthropic::ChatStreamToMessages::new())),
            Translation::MessagesToGemini => Some(Box::new(Chain {
                first: gemini::GeminiStreamToChat::new(ids.model, ids.id, ids.created, true),
                second: anthropic::ChatStreamToMessages::new(),
            })),
            Translation::EmbeddingsToGemini
            | Translation::MessagesNative
            | Translation::ModelsFromClaude => None,
        }
    }

    /// Whether a whole (non-streamed) successful answer must be converted.
    pub fn converts_plain_response(self) -> bool {
        self.rewrites_body() || self == Translation::ModelsFromClaude
    }

    /// Convert a whole successful answer.
    pub fn response_body(
        self,
        body: &[u8],
        ids: &Ids<'_>,
        want_base64: bool,
    ) -> Result<Vec<u8>, GatewayError> {
        self.response_body_usage(body, ids, want_base64)
            .map(|(out, _)| out)
    }

    /// [`Self::response_body`] and, where the converter knows it, the answer's usage.
    pub fn response_body_usage(
        self,
        body: &[u8],
        ids: &Ids<'_>,
        want_base64: bool,
    ) -> Result<(Vec<u8>, Option<Usage>), GatewayError> {
        let out = match self {
            Translation::ChatToClaude => {
                let (out, usage) =
                    anthropic::messages_response_to_chat_with_usage(body, ids.id, ids.created)?;
                return Ok((out, Some(usage)));
            }
            Translation::ChatToGemini => {
                gemini::gemini_response_to_chat(body, ids.model, ids.id, ids.created)
            }
            Translation::EmbeddingsToGemini => {
                gemini::gemini_embeddings_to_openai_encoded(body, ids.model, true, want_base64)
            }
            Translation::MessagesToChat => anthropic::chat_response_to_messages(body),
            Translation::MessagesToGemini => {
                let chat = gemini::gemini_response_to_chat(body, ids.model, ids.id, ids.created)?;
                anthropic::chat_response_to_messages(&chat)
            }
            Translation::ModelsFromClaude => anthropic::models_response_to_openai(body),
            Translation::Edit | Translation::MessagesNative => Ok(body.to_vec()),
        }?;
        Ok((out, None))
    }

    /// The client-shaped error body for a vendor error, or `None` to pass it through.
    pub fn error_body(self, status: u16, body: &[u8]) -> Option<Vec<u8>> {
        match self {
            Translation::Edit => {
                if is_openai_error(body) {
                    return None;
                }
                let message = String::from_utf8_lossy(body);
                let message = if message.trim().is_empty() {
                    "upstream error".into()
                } else {
                    message
                };
                Some(vendor_error_body(status, None, &message))
            }
            Translation::ChatToClaude | Translation::ModelsFromClaude => {
                Some(anthropic::error_to_openai(status, body))
            }
            Translation::ChatToGemini | Translation::EmbeddingsToGemini => {
                Some(gemini::error_to_openai(status, body))
            }
            Translation::MessagesToChat => Some(anthropic::openai_error_to_anthropic(status, body)),
            Translation::MessagesToGemini => Some(anthropic::openai_error_to_anthropic(
                status,
                &gemini::error_to_openai(status, body),
            )),
            Translation::MessagesNative => None,
        }
    }
}

/// Whether the request is translated at all (`protocol: original` never is).
pub fn translated(provider: &Provider) -> bool {
    provider.config.protocol != Protocol::Original
}

/// The `anthropic-version` for Claude: the configured one when it is a sane header value.
pub fn claude_version(provider: &Provider) -> &str {
    provider
        .config
        .claude_version
        .as_deref()
        .filter(|v| !v.is_empty() && v.bytes().all(|b| (0x20..0x7f).contains(&b)))
        .unwrap_or(DEFAULT_CLAUDE_VERSION)
}

fn gemini_options(provider: &Provider) -> GeminiOptions {
    GeminiOptions {
        safety_settings: provider.config.gemini_safety_setting.clone(),
        thinking_budget: provider.config.gemini_thinking_budget,
    }
}

/// Two stream converters in a row (vendor -> OpenAI chunks -> client protocol).
struct Chain<A, B> {
    first: A,
    second: B,
}

impl<A: StreamConverter, B: StreamConverter> StreamConverter for Chain<A, B> {
    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mid = self.first.push(chunk);
        self.second.push(&mid)
    }

    fn finish(&mut self) -> Vec<u8> {
        let mid = self.first.finish();
        let mut out = self.second.push(&mid);
        out.extend(self.second.finish());
        out
    }

    fn usage(&self) -> Option<switchyard_protocol::Usage> {
        self.first.usage()
    }
}

fn no_usage<'a>(edits: &RequestEdits<'a>) -> RequestEdits<'a> {
    RequestEdits {
        request_usage: false,
        ..edits.clone()
    }
}

/// [`no_usage`] for a body converted from the client's: the client body's `model` positions
/// do not apply to it.
fn converted<'a>(edits: &RequestEdits<'a>) -> RequestEdits<'a> {
    RequestEdits {
        model_spans: None,
        ..no_usage(edits)
    }
}

fn gemini_model(model: Option<&str>) -> Result<&str, GatewayError> {
    model.ok_or_else(|| {
        GatewayError::invalid(
            "model_unknown",
            "the Gemini provider puts the model in the upstream URL, so the gateway must know \
             it before the body arrives: run Envoy's json_to_metadata filter (namespace \
             `switchyard`, key `model`) before ai-proxy, as `switchyard` renders it",
        )
        .with_param("model")
    })
}

fn is_openai_error(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").map(|e| e.is_object()))
        .unwrap_or(false)
}
