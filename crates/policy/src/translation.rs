//! Which protocol translation a request needs, and the glue from that choice to the pure
//! translators in `switchyard_protocol` (request bodies, plain responses, streams, errors);
//! and how an answer reaches the client ([`ResponseMode`]), for the first answer and for a
//! retry's alike.

use crate::proxy::{Protocol, Provider};
use crate::vendor::{Api, Family};
use switchyard_protocol::anthropic::{self, ClaudeOptions};
use switchyard_protocol::bedrock;
use switchyard_protocol::error::vendor_error_body;
use switchyard_protocol::fields::VendorFamily;
use switchyard_protocol::gemini::{self, GeminiOptions};
use switchyard_protocol::openai_edit::{self, ParsedRequest, RequestEdits, UsageFilter};
use switchyard_protocol::responses::{self, ChatStreamToResponses, RequestEcho};
use switchyard_protocol::vertex;
use switchyard_protocol::{Chain, ErrorKind, GatewayError, StreamConverter, Usage};

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
    /// OpenAI Responses client, vendor that serves Responses itself ([`VendorSpec::responses`]):
    /// passed through (model mapping, context), usage read on the way.
    ///
    /// [`VendorSpec::responses`]: crate::vendor::VendorSpec::responses
    ResponsesNative,
    /// OpenAI Responses client, OpenAI-compatible chat vendor: through chat completions.
    ResponsesToChat,
    /// OpenAI Responses client, Claude vendor: through chat, then the Messages API.
    ResponsesToClaude,
    /// OpenAI Responses client, Gemini vendor: through chat, then `generateContent`.
    ResponsesToGemini,
    /// OpenAI chat client, Bedrock vendor (Converse / ConverseStream).
    ChatToBedrock,
    /// Anthropic Messages client, Bedrock vendor: through OpenAI chat in both directions.
    MessagesToBedrock,
    /// OpenAI Responses client, Bedrock vendor: through chat, then Converse.
    ResponsesToBedrock,
}

/// Everything a translator needs besides the bytes.
pub struct Ids<'a> {
    /// Model to name in converted responses and to send upstream.
    pub model: &'a str,
    /// Completion id for vendors that do not give one.
    pub id: &'a str,
    /// Unix seconds.
    pub created: u64,
    /// Responses clients: what the answer echoes of the request (`None`: the model only).
    pub echo: Option<&'a RequestEcho>,
}

impl Ids<'_> {
    fn echo(&self) -> RequestEcho {
        self.echo
            .cloned()
            .unwrap_or_else(|| RequestEcho::for_model(self.model))
    }
}

impl Translation {
    /// The translation for a client API against a vendor, or a 404 when there is none.
    pub fn choose(provider: &Provider, api: Api) -> Result<Translation, GatewayError> {
        let t = match (provider.family(), api) {
            (Family::OpenAi, Api::Messages) => Translation::MessagesToChat,
            (Family::OpenAi, Api::Responses) if provider.spec.responses => {
                Translation::ResponsesNative
            }
            (Family::OpenAi, Api::Responses) => Translation::ResponsesToChat,
            (Family::OpenAi, _) => Translation::Edit,
            (Family::Claude, Api::ChatCompletions) => Translation::ChatToClaude,
            (Family::Claude, Api::Messages) => Translation::MessagesNative,
            (Family::Claude, Api::Responses) => Translation::ResponsesToClaude,
            (Family::Gemini, Api::ChatCompletions) => Translation::ChatToGemini,
            (Family::Gemini, Api::Responses) => Translation::ResponsesToGemini,
            (Family::Gemini, Api::Embeddings) => Translation::EmbeddingsToGemini,
            (Family::Gemini, Api::Messages) => Translation::MessagesToGemini,
            (Family::Bedrock, Api::ChatCompletions) => Translation::ChatToBedrock,
            (Family::Bedrock, Api::Messages) => Translation::MessagesToBedrock,
            (Family::Bedrock, Api::Responses) => Translation::ResponsesToBedrock,
            _ => return Err(provider.unsupported(api)),
        };
        Ok(t)
    }

    /// [`Self::choose`], knowing the (mapped) model when the vendor's protocol depends on it:
    /// Vertex AI serves `claude-*` models as Claude (`rawPredict`) and the rest as Gemini.
    /// An unknown model on Vertex picks Gemini's translations; the upstream path then asks
    /// for the model.
    pub fn choose_for(
        provider: &Provider,
        api: Api,
        model: Option<&str>,
    ) -> Result<Translation, GatewayError> {
        if provider.family() != Family::Vertex {
            return Self::choose(provider, api);
        }
        let claude =
            model.is_some_and(|m| crate::vertex::publisher(m) == vertex::Publisher::Anthropic);
        let t = match (claude, api) {
            (true, Api::ChatCompletions) => Translation::ChatToClaude,
            (true, Api::Messages) => Translation::MessagesNative,
            (true, Api::Responses) => Translation::ResponsesToClaude,
            (false, Api::ChatCompletions) => Translation::ChatToGemini,
            (false, Api::Messages) => Translation::MessagesToGemini,
            (false, Api::Responses) => Translation::ResponsesToGemini,
            _ => return Err(provider.unsupported(api)),
        };
        Ok(t)
    }

    /// Whether this translation talks to Claude (Messages API bodies and answers).
    fn to_claude(self) -> bool {
        matches!(
            self,
            Translation::ChatToClaude
                | Translation::MessagesNative
                | Translation::ResponsesToClaude
        )
    }

    /// Whether the client speaks Anthropic's Messages API (errors go back in its shape).
    pub fn anthropic_client(self) -> bool {
        matches!(
            self,
            Translation::MessagesToChat
                | Translation::MessagesNative
                | Translation::MessagesToGemini
                | Translation::MessagesToBedrock
        )
    }

    /// Whether the client speaks OpenAI's Responses API.
    pub fn responses_client(self) -> bool {
        matches!(
            self,
            Translation::ResponsesNative
                | Translation::ResponsesToChat
                | Translation::ResponsesToClaude
                | Translation::ResponsesToGemini
                | Translation::ResponsesToBedrock
        )
    }

    /// Whether the vendor is Bedrock (event-stream answers, `x-amzn-errortype` errors).
    pub fn bedrock(self) -> bool {
        matches!(
            self,
            Translation::ChatToBedrock
                | Translation::MessagesToBedrock
                | Translation::ResponsesToBedrock
        )
    }

    /// Whether the body is always rewritten (so `content-length` must go in the header phase).
    pub fn rewrites_body(self) -> bool {
        !matches!(
            self,
            Translation::Edit | Translation::MessagesNative | Translation::ResponsesNative
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
        if let Some(v) = &provider.vertex {
            let publisher = if self.to_claude() {
                vertex::Publisher::Anthropic
            } else {
                vertex::Publisher::Google
            };
            return vertex::model_path(
                &v.project,
                &v.region,
                publisher,
                vertex_model(model)?,
                streaming,
            );
        }
        match self {
            Translation::Edit | Translation::MessagesToChat | Translation::ResponsesNative => {
                provider.openai_path(api, model, client_path)
            }
            Translation::ResponsesToChat if provider.endpoint.keep_path => {
                // The client's layout, with chat completions in place of responses.
                let (path, query) = match client_path.find('?') {
                    Some(i) => client_path.split_at(i),
                    None => (client_path, ""),
                };
                let stem = path.trim_end_matches('/');
                let stem = stem.strip_suffix("/responses").unwrap_or(stem);
                Ok(format!("{stem}/chat/completions{query}"))
            }
            Translation::ResponsesToChat => {
                provider.openai_path(Api::ChatCompletions, model, client_path)
            }
            Translation::ChatToClaude
            | Translation::MessagesNative
            | Translation::ResponsesToClaude => {
                if provider.endpoint.keep_path {
                    Ok(client_path.to_string())
                } else {
                    Ok(format!("{}/messages", provider.endpoint.base))
                }
            }
            Translation::ChatToGemini
            | Translation::MessagesToGemini
            | Translation::ResponsesToGemini => gemini::model_path(gemini_model(model)?, streaming),
            Translation::EmbeddingsToGemini => gemini::embed_path(gemini_model(model)?, true),
            Translation::ChatToBedrock
            | Translation::MessagesToBedrock
            | Translation::ResponsesToBedrock => {
                bedrock::converse_path(bedrock_model(model)?, streaming)
            }
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
        if self.responses_client() {
            return self
                .responses_request_body(provider, body, edits, model)
                .map(|(out, _)| out);
        }
        let out = self.vendor_request_body(provider, body, edits, model)?;
        self.for_vertex(provider, body, out)
    }

    /// Whether a body for `provider` and `api` is translated from its whole JSON tree with no
    /// edit first (OpenAI chat -> Claude, no context file): the caller can then parse it once
    /// ([`ParsedRequest`]), read its facts from the tree and hand the tree to
    /// [`Self::request_body_parsed`], instead of a facts scan and a second parse.
    pub fn translates_parsed_body(provider: &Provider, api: Api) -> bool {
        provider.config.protocol != Protocol::Original
            && provider.config.context.is_none()
            && Self::choose(provider, api).is_ok_and(|t| t.reads_tree(provider))
    }

    /// The translations that read a parsed tree ([`Self::request_body_parsed`]): OpenAI chat
    /// to Claude, not on Vertex AI.
    fn reads_tree(self, provider: &Provider) -> bool {
        self == Translation::ChatToClaude && provider.vertex.is_none()
    }

    /// [`Self::request_body`] with the body already parsed (`parsed`, from `body`): the
    /// translation [`Self::translates_parsed_body`] names reads the tree; any other case
    /// reads `body` as [`Self::request_body`] does.
    pub fn request_body_parsed(
        self,
        provider: &Provider,
        body: &[u8],
        parsed: Option<&ParsedRequest<'_>>,
        edits: &RequestEdits<'_>,
        model: &str,
    ) -> Result<Option<Vec<u8>>, GatewayError> {
        match parsed {
            Some(parsed) if self.reads_tree(provider) && edits.context.is_none() => {
                let opts = ClaudeOptions::default();
                anthropic::parsed_chat_request_to_messages_as(parsed, &opts, edits.model).map(Some)
            }
            _ => self.request_body(provider, body, edits, model),
        }
    }

    /// Claude on Vertex AI: the Messages body without `model`, with Vertex's
    /// `anthropic_version` (`out`: the translated body, `None` when it is `body` unchanged).
    fn for_vertex(
        self,
        provider: &Provider,
        body: &[u8],
        out: Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, GatewayError> {
        if provider.vertex.is_none() || !self.to_claude() {
            return Ok(out);
        }
        vertex::messages_body_for_vertex(out.as_deref().unwrap_or(body)).map(Some)
    }

    fn vendor_request_body(
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
            Translation::ResponsesNative
            | Translation::ResponsesToChat
            | Translation::ResponsesToClaude
            | Translation::ResponsesToGemini
            | Translation::ResponsesToBedrock => self
                .responses_request_body(provider, body, edits, model)
                .map(|(out, _)| out),
            Translation::ChatToBedrock => {
                let chat = edited(body, &no_usage(edits))?;
                let opts = crate::bedrock::options(&provider.config);
                bedrock::chat_request_to_converse(&chat, &opts).map(Some)
            }
            Translation::MessagesToBedrock => {
                // The Messages field table's Bedrock column first; the chat body keeps
                // `thinking` for Converse's `additionalModelRequestFields`.
                let chat =
                    anthropic::messages_request_to_chat_for(body, anthropic::ChatTarget::Bedrock)?;
                let chat = edited(&chat, &converted(edits))?;
                let opts = crate::bedrock::options(&provider.config);
                bedrock::chat_request_to_converse(&chat, &opts).map(Some)
            }
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
                // Gemini reads Anthropic's `thinking` itself (exact budget, `disabled`).
                let chat =
                    anthropic::messages_request_to_chat_for(body, anthropic::ChatTarget::Gemini)?;
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

    /// [`Self::request_body`] for a Responses client, with what the answer must echo of the
    /// request (`None` when it passes through unconverted). `edits.context` goes in as a
    /// system message (Responses bodies have no `messages` for the chat edit).
    pub fn responses_request_body(
        self,
        provider: &Provider,
        body: &[u8],
        edits: &RequestEdits<'_>,
        model: &str,
    ) -> Result<(Option<Vec<u8>>, Option<RequestEcho>), GatewayError> {
        if self == Translation::ResponsesNative {
            // Never `stream_options`: not a Responses parameter.
            let mapped = openai_edit::apply(
                body,
                &RequestEdits {
                    model: edits.model,
                    model_spans: edits.model_spans,
                    ..RequestEdits::default()
                },
            )?;
            let Some(text) = edits.context else {
                return Ok((mapped, None));
            };
            let out = responses::insert_context(mapped.as_deref().unwrap_or(body), text)?;
            return Ok((Some(out), None));
        }
        // Claude, Gemini and Bedrock: the Responses field table first (a field they cannot honour is a
        // 400 naming it); chat vendors take what chat can carry.
        let chat = match self {
            Translation::ResponsesToClaude => {
                responses::responses_request_to_chat_for(body, VendorFamily::Claude)?
            }
            Translation::ResponsesToGemini => {
                responses::responses_request_to_chat_for(body, VendorFamily::Gemini)?
            }
            Translation::ResponsesToBedrock => {
                responses::responses_request_to_chat_for(body, VendorFamily::Bedrock)?
            }
            _ => responses::responses_request_to_chat(body)?,
        };
        let mut echo = chat.echo;
        if !model.is_empty() {
            echo.model = model.to_string();
        }
        // The translator already asks for usage when streaming.
        let body = openai_edit::apply(&chat.body, &converted(edits))?.unwrap_or(chat.body);
        let out = match self {
            Translation::ResponsesToClaude => {
                anthropic::chat_request_to_messages(&body, &ClaudeOptions::default())
                    .map_err(responses_names)?
            }
            Translation::ResponsesToGemini => {
                gemini::chat_request_to_gemini(&body, &gemini_options(provider))?
            }
            Translation::ResponsesToBedrock => {
                bedrock::chat_request_to_converse(&body, &crate::bedrock::options(&provider.config))
                    .map_err(responses_names)?
            }
            _ => body,
        };
        let out = self.for_vertex(provider, &[], Some(out))?;
        Ok((out, Some(echo)))
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
            Translation::MessagesToGemini => Some(Box::new(Chain::new(
                gemini::GeminiStreamToChat::new(ids.model, ids.id, ids.created, true),
                anthropic::ChatStreamToMessages::new(),
            ))),
            Translation::ResponsesToChat => Some(Box::new(ChatStreamToResponses::new(
                &ids.echo(),
                ids.id,
                ids.created,
            ))),
            Translation::ResponsesToClaude => Some(Box::new(Chain::new(
                anthropic::MessagesStreamToChat::new(true, ids.created),
                ChatStreamToResponses::new(&ids.echo(), ids.id, ids.created),
            ))),
            Translation::ResponsesToGemini => Some(Box::new(Chain::new(
                gemini::GeminiStreamToChat::new(ids.model, ids.id, ids.created, true),
                ChatStreamToResponses::new(&ids.echo(), ids.id, ids.created),
            ))),
            Translation::ChatToBedrock => Some(Box::new(bedrock::ConverseStreamToChat::new(
                ids.model,
                ids.id,
                ids.created,
                client_wants_usage,
            ))),
            Translation::MessagesToBedrock => Some(Box::new(
                bedrock::ConverseStreamToMessages::new(ids.model, ids.id, ids.created),
            )),
            Translation::ResponsesToBedrock => Some(Box::new(Chain::new(
                bedrock::ConverseStreamToChat::new(ids.model, ids.id, ids.created, true),
                ChatStreamToResponses::new(&ids.echo(), ids.id, ids.created),
            ))),
            // Passed through; the filter reads its usage (`ResponsesUsageTap`).
            Translation::ResponsesNative
            | Translation::EmbeddingsToGemini
            | Translation::MessagesNative => None,
        }
    }

    /// Whether a whole (non-streamed) successful answer must be converted.
    pub fn converts_plain_response(self) -> bool {
        self.rewrites_body()
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
            Translation::ResponsesToChat => {
                return responses::chat_response_to_responses_with_usage(
                    body,
                    &ids.echo(),
                    ids.id,
                    ids.created,
                );
            }
            Translation::ResponsesToClaude => {
                let chat = anthropic::messages_response_to_chat(body, ids.id, ids.created)?;
                return responses::chat_response_to_responses_with_usage(
                    &chat,
                    &ids.echo(),
                    ids.id,
                    ids.created,
                );
            }
            Translation::ResponsesToGemini => {
                let chat = gemini::gemini_response_to_chat(body, ids.model, ids.id, ids.created)?;
                return responses::chat_response_to_responses_with_usage(
                    &chat,
                    &ids.echo(),
                    ids.id,
                    ids.created,
                );
            }
            Translation::ChatToBedrock => {
                let (out, usage) =
                    bedrock::converse_response_to_chat(body, ids.model, ids.id, ids.created)?;
                return Ok((out, Some(usage)));
            }
            Translation::MessagesToBedrock => {
                let (out, usage) =
                    bedrock::converse_response_to_messages(body, ids.model, ids.id, ids.created)?;
                return Ok((out, Some(usage)));
            }
            Translation::ResponsesToBedrock => {
                let (chat, _) =
                    bedrock::converse_response_to_chat(body, ids.model, ids.id, ids.created)?;
                return responses::chat_response_to_responses_with_usage(
                    &chat,
                    &ids.echo(),
                    ids.id,
                    ids.created,
                );
            }
            Translation::ResponsesNative => {
                return Ok((body.to_vec(), responses::usage_from_response_body(body)));
            }
            Translation::Edit | Translation::MessagesNative => Ok(body.to_vec()),
        }?;
        Ok((out, None))
    }

    /// The client-shaped error body for a vendor error, or `None` to pass it through.
    pub fn error_body(self, status: u16, body: &[u8]) -> Option<Vec<u8>> {
        self.error_body_typed(status, None, body)
    }

    /// The status the client gets for a vendor error: Bedrock's exception (from
    /// `x-amzn-errortype`) decides it (`ServiceQuotaExceededException` 400 -> 429,
    /// `ModelErrorException` 424 -> 502); other vendors keep theirs.
    pub fn error_status(self, status: u16, error_type: Option<&str>) -> u16 {
        if !self.bedrock() {
            return status;
        }
        error_type
            .map(bedrock::exception_name)
            .and_then(bedrock::exception_status)
            .unwrap_or(status)
    }

    /// [`Self::error_body`] with the vendor's error type header (Bedrock's
    /// `x-amzn-errortype`), when it has one.
    pub fn error_body_typed(
        self,
        status: u16,
        error_type: Option<&str>,
        body: &[u8],
    ) -> Option<Vec<u8>> {
        match self {
            Translation::ChatToBedrock | Translation::ResponsesToBedrock => {
                Some(bedrock::error_to_openai(status, error_type, body).1)
            }
            Translation::MessagesToBedrock => {
                Some(bedrock::error_to_anthropic(status, error_type, body).1)
            }
            Translation::Edit | Translation::ResponsesNative | Translation::ResponsesToChat => {
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
            // Claude on Vertex AI: Google's front end answers some errors (401, 403, 429
            // quota) in Google's shape.
            Translation::ChatToClaude | Translation::ResponsesToClaude if is_google_error(body) => {
                Some(gemini::error_to_openai(status, body))
            }
            Translation::ChatToClaude | Translation::ResponsesToClaude => {
                Some(anthropic::error_to_openai(status, body))
            }
            Translation::MessagesNative if is_google_error(body) => {
                Some(anthropic::openai_error_to_anthropic(
                    status,
                    &gemini::error_to_openai(status, body),
                ))
            }
            Translation::ChatToGemini
            | Translation::EmbeddingsToGemini
            | Translation::ResponsesToGemini => Some(gemini::error_to_openai(status, body)),
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

/// An error of the chat translator under the Responses client's name for the field: the
/// token limit a thinking budget must stay under is the client's `max_output_tokens`.
fn responses_names(mut e: GatewayError) -> GatewayError {
    if e.param == Some("max_tokens") {
        e.param = Some("max_output_tokens");
        e.message = e.message.replace("max_tokens", "max_output_tokens");
    }
    e
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

fn vertex_model(model: Option<&str>) -> Result<&str, GatewayError> {
    model.ok_or_else(|| {
        GatewayError::invalid(
            "model_unknown",
            "the Vertex AI provider puts the model in the upstream URL, so the gateway must \
             know it before the body arrives: run Envoy's json_to_metadata filter (namespace \
             `switchyard`, key `model`) before ai-proxy, as `switchyard` renders it",
        )
        .with_param("model")
    })
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

/// Google's error shape: `{"error":{"code":401,"message":...,"status":"UNAUTHENTICATED"}}`.
fn is_google_error(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .is_some_and(|v| {
            v.get("type").is_none() && v.pointer("/error/code").is_some_and(|c| c.is_u64())
        })
}

fn bedrock_model(model: Option<&str>) -> Result<&str, GatewayError> {
    model.ok_or_else(|| {
        GatewayError::invalid(
            "model_unknown",
            "the Bedrock provider puts the model in the upstream URL, so the gateway must know \
             it before the body arrives: run Envoy's json_to_metadata filter (namespace \
             `switchyard`, key `model`) before ai-proxy, as `switchyard` renders it, or use \
             the native module",
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

/// Headers through which clients send their own credentials; none of them may reach a vendor.
pub const CLIENT_CREDENTIAL_HEADERS: [&str; 4] =
    ["authorization", "x-api-key", "api-key", "x-goog-api-key"];

/// One request-header edit: set (`Some`) or remove (`None`).
pub type HeaderEdit = (&'static str, Option<String>);

/// What the upstream request's headers depend on.
pub struct UpstreamTarget<'a> {
    pub provider: &'a Provider,
    pub translation: Translation,
    pub api: Api,
    /// The model sent upstream, when known (Gemini puts it in the path).
    pub model: Option<&'a str>,
    pub streaming: bool,
    pub client_path: &'a str,
    /// The token this attempt uses.
    pub token: Option<&'a str>,
    /// The body will change length (`content-length` must go).
    pub body_changes: bool,
}

/// The request plan as data: every header edit that points the request at the vendor (path,
/// host, version headers, credentials, timeouts), in the order to apply them. `client_sent_
/// version` is asked only for Claude-native Messages requests (whether the client sent its own
/// `anthropic-version`, which then stays).
pub fn upstream_headers(
    t: &UpstreamTarget<'_>,
    client_sent_version: impl FnOnce() -> bool,
) -> Result<Vec<HeaderEdit>, GatewayError> {
    let provider = t.provider;
    let mut edits: Vec<HeaderEdit> = Vec::with_capacity(12);
    if translated(provider) {
        let path =
            t.translation
                .upstream_path(provider, t.api, t.model, t.streaming, t.client_path)?;
        // A path the vendor shares with the client (e.g. `/v1/chat/completions`) stays as is.
        if path != t.client_path {
            edits.push((":path", Some(path)));
        }
    }
    let version = || Some(claude_version(provider).to_string());
    match t.translation {
        // Claude on Vertex AI: the version is in the body.
        _ if provider.vertex.is_some() => edits.push(("anthropic-version", None)),
        Translation::ChatToClaude | Translation::ResponsesToClaude => {
            edits.push(("anthropic-version", version()));
        }
        Translation::MessagesNative if !client_sent_version() => {
            edits.push(("anthropic-version", version()));
        }
        Translation::MessagesToChat => {
            edits.push(("anthropic-version", None));
            edits.push(("anthropic-beta", None));
        }
        Translation::MessagesToBedrock => {
            edits.push(("anthropic-version", None));
            edits.push(("anthropic-beta", None));
        }
        _ => {}
    }
    if t.translation.bedrock() {
        edits.push(("content-type", Some("application/json".into())));
        // Signing headers are the gateway's own (SigV4 adds them in the body phase).
        for h in ["x-amz-date", "x-amz-content-sha256", "x-amz-security-token"] {
            edits.push((h, None));
        }
    }
    edits.push((":authority", Some(provider.endpoint.host.clone())));
    // The client's credentials never go upstream; the one the token sets is replaced anyway.
    let auth = t.token.map(|token| provider.auth_header(token));
    let replaced = auth.as_ref().map(|(name, _)| *name);
    edits.extend(
        CLIENT_CREDENTIAL_HEADERS
            .iter()
            .filter(|h| Some(**h) != replaced)
            .map(|h| (*h, None)),
    );
    if let Some((name, value)) = auth {
        edits.push((name, Some(value)));
    }
    // Responses must be readable (and convertible) by the filter.
    edits.push(("accept-encoding", None));
    edits.push((
        "x-envoy-upstream-rq-timeout-ms",
        Some(provider.config.timeout.to_string()),
    ));
    if t.body_changes {
        edits.push(("content-length", None));
    }
    Ok(edits)
}

/// How one answer reaches the client: chosen once from the plan and the answer's status, for
/// the first answer and for a retry's alike.
pub enum ResponseMode {
    /// Passed through as the vendor sent it; `tap`: its token usage is read on the way
    /// (successful answers only).
    Passthrough { tap: bool },
    /// A stream converted event by event.
    Stream(Box<dyn StreamConverter>),
    /// A whole successful answer, buffered and converted.
    WholeBody,
    /// A vendor error with this status, buffered and converted to the client's shape.
    VendorError(u16),
}

/// What [`ResponseMode::choose`] needs to know of the request.
pub struct AnswerPlan<'a> {
    /// `None`: `protocol: original`, never converted.
    pub translation: Option<Translation>,
    pub api: Api,
    pub streaming: bool,
    pub client_wants_usage: bool,
    pub ids: Ids<'a>,
}

impl ResponseMode {
    /// The mode for an answer with `status`. `is_sse` is asked only when it matters (a stream
    /// request to a vendor whose converter cannot read both framings), so the content type is
    /// read only then.
    pub fn choose(plan: &AnswerPlan<'_>, status: u16, is_sse: impl FnOnce() -> bool) -> Self {
        let Some(t) = plan.translation else {
            return ResponseMode::Passthrough { tap: status < 400 };
        };
        if status >= 400 {
            // Buffered and converted in `error_body` (which leaves Claude's own errors to
            // Messages clients as they are).
            return ResponseMode::VendorError(status);
        }
        // Gemini may frame a stream as a JSON array; its converter reads both framings.
        let streamed_api = matches!(
            plan.api,
            Api::ChatCompletions | Api::Messages | Api::Responses
        );
        let gemini = matches!(
            t,
            Translation::ChatToGemini
                | Translation::MessagesToGemini
                | Translation::ResponsesToGemini
        );
        // Bedrock streams are AWS event-stream frames, never SSE.
        if plan.streaming && streamed_api && (gemini || t.bedrock() || is_sse()) {
            return match t.stream_converter(&plan.ids, plan.client_wants_usage) {
                Some(conv) => ResponseMode::Stream(conv),
                None => ResponseMode::Passthrough { tap: true },
            };
        }
        if t.converts_plain_response() {
            ResponseMode::WholeBody
        } else {
            ResponseMode::Passthrough { tap: true }
        }
    }

    /// Whether the body is rewritten (so the response's `content-length` must go).
    pub fn rewrites_body(&self) -> bool {
        !matches!(self, ResponseMode::Passthrough { .. })
    }
}

/// The client-facing status, body and content type of a whole answer (a retry's, read at
/// once), converted as the streaming path would have converted it. `error_type`: the vendor's
/// error type header (Bedrock's `x-amzn-errortype`), which may decide an error's status.
pub fn whole_answer(
    plan: &AnswerPlan<'_>,
    want_base64: bool,
    status: u16,
    content_type: Option<&str>,
    error_type: Option<&str>,
    body: &[u8],
) -> (u16, Vec<u8>, Option<String>) {
    let t = plan.translation.unwrap_or(Translation::Edit);
    let client_status = match plan.translation {
        Some(t) if status >= 400 => t.error_status(status, error_type),
        _ => status,
    };
    let (out, ct) = whole_body(plan, t, want_base64, status, content_type, error_type, body);
    (client_status, out, ct)
}

fn whole_body(
    plan: &AnswerPlan<'_>,
    t: Translation,
    want_base64: bool,
    status: u16,
    content_type: Option<&str>,
    error_type: Option<&str>,
    body: &[u8],
) -> (Vec<u8>, Option<String>) {
    let passthrough = || (body.to_vec(), content_type.map(str::to_string));
    let is_sse = || content_type.is_some_and(|c| c.starts_with("text/event-stream"));
    match ResponseMode::choose(plan, status, is_sse) {
        ResponseMode::Passthrough { .. } => passthrough(),
        ResponseMode::VendorError(status) => match t.error_body_typed(status, error_type, body) {
            Some(b) => (b, Some("application/json".into())),
            None => passthrough(),
        },
        ResponseMode::Stream(mut conv) => {
            let mut out = conv.push(body);
            out.extend(conv.finish());
            (out, Some("text/event-stream".into()))
        }
        ResponseMode::WholeBody => {
            let out = match t.response_body(body, &plan.ids, want_base64) {
                Ok(out) => out,
                Err(e) => client_error(t, &e),
            };
            (out, Some("application/json".into()))
        }
    }
}

/// A gateway error in the client's shape (Anthropic's for Messages clients).
pub fn client_error(t: Translation, e: &GatewayError) -> Vec<u8> {
    if t.anthropic_client() {
        anthropic::openai_error_to_anthropic(e.status(), &e.body())
    } else {
        e.body()
    }
}

/// A health check's upstream request, less its credential.
pub struct HealthCheckRequest {
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// The upstream request for a health check of one of `provider`'s tokens: a minimal chat
/// request through the vendor's own conversion and model mapping.
pub fn health_check_request(provider: &Provider) -> Result<HealthCheckRequest, GatewayError> {
    let failover = &provider.config.failover;
    let client_model = failover.health_check_model.as_deref().unwrap_or_default();
    let model = provider.config.model_mapping.map(client_model);
    let api = Api::ChatCompletions;
    let translation = Translation::choose_for(provider, api, Some(&model))?;
    let body = serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "ping"}],
        "max_tokens": 1,
    })
    .to_string()
    .into_bytes();
    let body = translation
        .request_body(provider, &body, &RequestEdits::default(), &model)?
        .unwrap_or(body);
    let client_path = "/v1/chat/completions";
    let path = if translated(provider) {
        translation.upstream_path(provider, api, Some(&model), false, client_path)?
    } else {
        provider.openai_path(api, Some(&model), client_path)?
    };
    let mut headers = vec![("content-type", "application/json".to_string())];
    if translation == Translation::ChatToClaude && provider.vertex.is_none() {
        headers.push(("anthropic-version", claude_version(provider).to_string()));
    }
    Ok(HealthCheckRequest {
        path,
        headers,
        body,
    })
}

/// Request headers not copied into a retry (hop-by-hop, recomputed or router-only).
const NOT_RETRIED: [&str; 7] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "upgrade",
    "expect",
];

/// The retry's request headers: the first attempt's upstream headers with the new
/// credential, without hop-by-hop, length and router-only headers.
pub fn retry_headers<'a>(
    first: &'a [(String, String)],
    auth_name: &'a str,
    auth_value: &'a str,
    length: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&str, &str)> = first
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .filter(|(k, _)| {
            !NOT_RETRIED.contains(k)
                && !k.eq_ignore_ascii_case(auth_name)
                && !k.starts_with("x-envoy-")
                && (!k.starts_with(':') || matches!(*k, ":method" | ":path" | ":authority"))
        })
        .collect();
    out.push((auth_name, auth_value));
    if length != "0" {
        out.push(("content-length", length));
    }
    out
}

/// The `x-switchyard-retries` value (bounded).
pub fn retry_count(n: u32) -> &'static str {
    match n {
        0 => "0",
        1 => "1",
        2 => "2",
        3 => "3",
        _ => "4+",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(v: serde_json::Value) -> Provider {
        Provider::new(serde_json::from_value(v).unwrap()).unwrap()
    }

    #[test]
    fn responses_translation_per_vendor_and_its_upstream_path() {
        let cases = [
            (
                serde_json::json!({"type": "openai"}),
                Translation::ResponsesNative,
                "/v1/responses",
            ),
            (
                serde_json::json!({"type": "deepseek"}),
                Translation::ResponsesToChat,
                "/chat/completions",
            ),
            (
                serde_json::json!({"type": "generic", "genericHost": "h"}),
                Translation::ResponsesToChat,
                "/gw/v1/chat/completions?x=1",
            ),
            (
                serde_json::json!({"type": "claude"}),
                Translation::ResponsesToClaude,
                "/v1/messages",
            ),
            (
                serde_json::json!({"type": "gemini"}),
                Translation::ResponsesToGemini,
                "/v1beta/models/m:streamGenerateContent?alt=sse",
            ),
            (
                serde_json::json!({"type": "bedrock", "awsRegion": "us-east-1", "apiTokens": ["k"]}),
                Translation::ResponsesToBedrock,
                "/model/m/converse-stream",
            ),
        ];
        for (cfg, want, path) in cases {
            let p = provider(cfg);
            let t = Translation::choose(&p, Api::Responses).unwrap();
            assert_eq!(t, want, "{}", p.spec.name);
            let got = t
                .upstream_path(&p, Api::Responses, Some("m"), true, "/gw/v1/responses?x=1")
                .unwrap();
            assert_eq!(got, path, "{}", p.spec.name);
            assert_eq!(t.rewrites_body(), t != Translation::ResponsesNative);
            assert!(t.responses_client() && !t.anthropic_client());
        }
    }

    fn vertex_provider() -> Provider {
        provider(
            serde_json::json!({"type": "vertex", "apiTokens": ["ya29.static"],
            "vertexRegion": "us-east5", "vertexProjectId": "proj",
            "modelMapping": {"sonnet": "claude-sonnet-4@20250514", "*": "gemini-2.5-flash"}}),
        )
    }

    #[test]
    fn vertex_chooses_the_publisher_by_mapped_model() {
        let p = vertex_provider();
        assert_eq!(p.endpoint.host, "us-east5-aiplatform.googleapis.com");
        let base = "/v1/projects/proj/locations/us-east5/publishers";
        let cases = [
            (
                Api::ChatCompletions,
                "claude-sonnet-4@20250514",
                false,
                Translation::ChatToClaude,
                format!("{base}/anthropic/models/claude-sonnet-4@20250514:rawPredict"),
            ),
            (
                Api::ChatCompletions,
                "claude-sonnet-4@20250514",
                true,
                Translation::ChatToClaude,
                format!("{base}/anthropic/models/claude-sonnet-4@20250514:streamRawPredict"),
            ),
            (
                Api::Messages,
                "claude-x",
                true,
                Translation::MessagesNative,
                format!("{base}/anthropic/models/claude-x:streamRawPredict"),
            ),
            (
                Api::Responses,
                "claude-x",
                false,
                Translation::ResponsesToClaude,
                format!("{base}/anthropic/models/claude-x:rawPredict"),
            ),
            (
                Api::ChatCompletions,
                "gemini-2.5-flash",
                false,
                Translation::ChatToGemini,
                format!("{base}/google/models/gemini-2.5-flash:generateContent"),
            ),
            (
                Api::ChatCompletions,
                "gemini-2.5-flash",
                true,
                Translation::ChatToGemini,
                format!("{base}/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"),
            ),
            (
                Api::Messages,
                "gemini-2.5-pro",
                false,
                Translation::MessagesToGemini,
                format!("{base}/google/models/gemini-2.5-pro:generateContent"),
            ),
            (
                Api::Responses,
                "gemini-2.5-pro",
                true,
                Translation::ResponsesToGemini,
                format!("{base}/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"),
            ),
        ];
        for (api, model, stream, want, path) in cases {
            let t = Translation::choose_for(&p, api, Some(model)).unwrap();
            assert_eq!(t, want, "{model}");
            assert_eq!(
                t.upstream_path(&p, api, Some(model), stream, "/v1/x")
                    .unwrap(),
                path
            );
        }
        assert!(Translation::choose_for(&p, Api::Embeddings, Some("m")).is_err());
        let t = Translation::choose_for(&p, Api::ChatCompletions, None).unwrap();
        let e = t
            .upstream_path(&p, Api::ChatCompletions, None, false, "/")
            .unwrap_err();
        assert_eq!(e.param, Some("model"));
        let e = t
            .upstream_path(&p, Api::ChatCompletions, Some("../x"), false, "/")
            .unwrap_err();
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn vertex_claude_bodies_carry_the_version_and_no_model() {
        let p = vertex_provider();
        let edits = RequestEdits {
            model: Some("claude-x"),
            ..RequestEdits::default()
        };
        let check = |out: Vec<u8>| {
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["anthropic_version"], "vertex-2023-10-16", "{v}");
            assert!(v.get("model").is_none(), "{v}");
            v
        };
        let chat =
            br#"{"model":"sonnet","messages":[{"role":"user","content":"Hi"}],"max_tokens":9}"#;
        let v = check(
            Translation::ChatToClaude
                .request_body(&p, chat, &edits, "claude-x")
                .unwrap()
                .unwrap(),
        );
        assert_eq!(v["max_tokens"], 9);
        let msgs =
            br#"{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"Hi"}]}"#;
        let none = RequestEdits::default();
        check(
            Translation::MessagesNative
                .request_body(&p, msgs, &none, "claude-x")
                .unwrap()
                .unwrap(),
        );
        let resp = br#"{"model":"sonnet","input":"Hi"}"#;
        check(
            Translation::ResponsesToClaude
                .request_body(&p, resp, &edits, "claude-x")
                .unwrap()
                .unwrap(),
        );
        // Gemini bodies are Gemini's own.
        let out = Translation::ChatToGemini
            .request_body(&p, chat, &none, "gemini-2.5-flash")
            .unwrap()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(v.get("contents").is_some() && v.get("anthropic_version").is_none());
        // No `anthropic-version` header: the version is in the body.
        let target = UpstreamTarget {
            provider: &p,
            translation: Translation::ChatToClaude,
            api: Api::ChatCompletions,
            model: Some("claude-x"),
            streaming: false,
            client_path: "/v1/chat/completions",
            token: Some("ya29.static"),
            body_changes: true,
        };
        let h = upstream_headers(&target, || false).unwrap();
        assert!(h.contains(&("anthropic-version", None)));
        assert!(h.contains(&("authorization", Some("Bearer ya29.static".into()))));
        assert!(h.contains(&(
            ":authority",
            Some("us-east5-aiplatform.googleapis.com".into())
        )));
    }

    /// Each client API reaches Bedrock through its field table's Bedrock column: what
    /// Converse cannot carry is a 400 naming the client's field, what it can is mapped.
    #[test]
    fn bedrock_requests_follow_the_bedrock_column() {
        let p = provider(
            serde_json::json!({"type": "bedrock", "awsRegion": "eu-west-1", "apiTokens": ["bk"],
                "bedrockAdditionalFields": {"top_k": 5}}),
        );
        let body = |t: Translation, b: &str| {
            t.request_body(&p, b.as_bytes(), &RequestEdits::default(), "m")
                .map(|out| serde_json::from_slice::<serde_json::Value>(&out.unwrap()).unwrap())
        };
        let refused = [
            (
                Translation::ChatToBedrock,
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"seed":1}"#,
                "seed",
            ),
            (
                Translation::ChatToBedrock,
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}}"#,
                "response_format",
            ),
            (
                Translation::MessagesToBedrock,
                r#"{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"hi"}],"container":"c"}"#,
                "container",
            ),
            (
                Translation::MessagesToBedrock,
                r#"{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"hi"}],
                    "tools":[{"name":"f","input_schema":{"type":"object"}}],
                    "tool_choice":{"type":"auto","disable_parallel_tool_use":true}}"#,
                "tool_choice",
            ),
            (
                Translation::ResponsesToBedrock,
                r#"{"model":"m","input":"hi","text":{"format":{"type":"json_object"}}}"#,
                "text",
            ),
            (
                Translation::ResponsesToBedrock,
                r#"{"model":"m","input":"hi","top_logprobs":2}"#,
                "top_logprobs",
            ),
        ];
        for (t, b, param) in refused {
            let e = body(t, b).unwrap_err();
            assert_eq!((e.status(), e.param), (400, Some(param)), "{b}: {e:?}");
        }
        // Anthropic's thinking reaches a Claude model as is, the client's top_k over the
        // config's; max_tokens must leave room above the budget.
        let v = body(
            Translation::MessagesToBedrock,
            r#"{"model":"us.anthropic.claude-sonnet-4-5-20250929-v1:0","max_tokens":4096,
                "messages":[{"role":"user","content":"hi"}],
                "thinking":{"type":"enabled","budget_tokens":2048},"top_k":3}"#,
        )
        .unwrap();
        assert_eq!(
            v["additionalModelRequestFields"],
            serde_json::json!({"top_k": 3, "thinking": {"type": "enabled", "budget_tokens": 2048}})
        );
        assert_eq!(v["inferenceConfig"]["maxTokens"], 4096);
        let thinking = |model: &str, max: u32| {
            let b = format!(
                r#"{{"model":"{model}","max_tokens":{max},"messages":[{{"role":"user","content":"hi"}}],
                    "thinking":{{"type":"enabled","budget_tokens":2048}}}}"#
            );
            body(Translation::MessagesToBedrock, &b)
        };
        let e = thinking("us.anthropic.claude-sonnet-4-5-20250929-v1:0", 2048).unwrap_err();
        assert_eq!((e.status(), e.param), (400, Some("max_tokens")), "{e:?}");
        let e = thinking("mistral.mistral-large-2407-v1:0", 4096).unwrap_err();
        assert_eq!((e.status(), e.param), (400, Some("thinking")), "{e:?}");
        // Amazon Nova reasons by level: the budget as the level it stands for, and no budget
        // rule on max_tokens.
        let v = thinking("amazon.nova-pro-v1:0", 1000).unwrap();
        assert_eq!(
            v["additionalModelRequestFields"]["reasoningConfig"],
            serde_json::json!({"type": "enabled", "maxReasoningEffort": "low"}),
            "{v}"
        );
        assert_eq!(v["inferenceConfig"]["maxTokens"], 1000, "{v}");
        let v = body(
            Translation::ResponsesToBedrock,
            r#"{"model":"anthropic.claude-3-7-sonnet-20250219-v1:0","input":"hi","service_tier":"priority","reasoning":{"effort":"low"}}"#,
        )
        .unwrap();
        assert_eq!(v["serviceTier"], serde_json::json!({"type": "priority"}));
        assert_eq!(
            v["additionalModelRequestFields"]["thinking"],
            serde_json::json!({"type": "enabled", "budget_tokens": 1024})
        );
        // Token-limit refusals reach a Responses client under its own field name.
        let refused_limit = |model: &str, effort: &str, message_start: &str| {
            let request = serde_json::json!({"model": model, "input": "hi",
                "max_output_tokens": 1000, "reasoning": {"effort": effort}});
            let e = body(Translation::ResponsesToBedrock, &request.to_string()).unwrap_err();
            assert_eq!(
                (e.status(), e.param),
                (400, Some("max_output_tokens")),
                "{e:?}"
            );
            assert!(e.message.starts_with(message_start), "{}", e.message);
        };
        // At or below the thinking budget (Claude).
        refused_limit(
            "anthropic.claude-3-7-sonnet-20250219-v1:0",
            "medium",
            "max_output_tokens (1000)",
        );
        // With Nova's high level, which takes no token limit.
        refused_limit("us.amazon.nova-2-lite-v1:0", "high", "`max_output_tokens`");
    }

    #[test]
    fn bedrock_plan_path_headers_and_errors() {
        let p = provider(
            serde_json::json!({"type": "bedrock", "awsRegion": "eu-west-1", "apiTokens": ["bk"]}),
        );
        let cases = [
            (Api::ChatCompletions, Translation::ChatToBedrock),
            (Api::Messages, Translation::MessagesToBedrock),
            (Api::Responses, Translation::ResponsesToBedrock),
        ];
        for (api, want) in cases {
            assert_eq!(Translation::choose(&p, api).unwrap(), want);
        }
        assert!(Translation::choose(&p, Api::Embeddings).is_err());
        let target = UpstreamTarget {
            provider: &p,
            translation: Translation::MessagesToBedrock,
            api: Api::Messages,
            model: Some("arn:aws:bedrock:eu-west-1:1:inference-profile/eu.anthropic.claude-x:0"),
            streaming: false,
            client_path: "/v1/messages",
            token: Some("bk"),
            body_changes: true,
        };
        let edits = upstream_headers(&target, || false).unwrap();
        // The last edit of a header wins.
        let get = |name: &str| {
            edits
                .iter()
                .rev()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            get(":path"),
            Some(Some(
                "/model/arn%3Aaws%3Abedrock%3Aeu-west-1%3A1%3Ainference-profile%2Feu.anthropic.claude-x%3A0/converse".into()
            ))
        );
        assert_eq!(
            get(":authority"),
            Some(Some("bedrock-runtime.eu-west-1.amazonaws.com".into()))
        );
        assert_eq!(get("authorization"), Some(Some("Bearer bk".into())));
        assert_eq!(get("anthropic-version"), Some(None));
        assert_eq!(get("content-type"), Some(Some("application/json".into())));
        assert_eq!(get("content-length"), Some(None));
        // Without the model (no metadata on Wasm) the path cannot be built.
        let err = UpstreamTarget {
            model: None,
            ..target
        };
        assert_eq!(upstream_headers(&err, || false).unwrap_err().status(), 400);

        let t = Translation::ChatToBedrock;
        let typed = Some("ServiceQuotaExceededException:http://internal.amazon.com/");
        assert_eq!(t.error_status(400, typed), 429);
        assert_eq!(t.error_status(424, Some("ModelErrorException")), 502);
        assert_eq!(t.error_status(500, None), 500);
        assert_eq!(Translation::ChatToClaude.error_status(424, typed), 424);
        let body = t
            .error_body_typed(
                429,
                Some("ThrottlingException"),
                br#"{"message":"slow down"}"#,
            )
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "ThrottlingException");
        assert_eq!(v["error"]["message"], "slow down");
        let body = Translation::MessagesToBedrock
            .error_body_typed(400, Some("ValidationException"), br#"{"message":"bad"}"#)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }

    #[test]
    fn retry_headers_swap_the_credential_and_drop_hop_by_hop() {
        let first: Vec<(String, String)> = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/v1/chat/completions"),
            (":authority", "api.deepseek.com"),
            ("authorization", "Bearer old"),
            ("content-type", "application/json"),
            ("content-length", "99"),
            ("transfer-encoding", "chunked"),
            ("x-envoy-upstream-rq-timeout-ms", "120000"),
            ("x-selected-provider", "deepseek"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let out = retry_headers(&first, "authorization", "Bearer new", "12");
        assert_eq!(
            out,
            vec![
                (":method", "POST"),
                (":path", "/v1/chat/completions"),
                (":authority", "api.deepseek.com"),
                ("content-type", "application/json"),
                ("x-selected-provider", "deepseek"),
                ("authorization", "Bearer new"),
                ("content-length", "12"),
            ]
        );
        let no_body = retry_headers(&first, "x-api-key", "k", "0");
        assert!(!no_body.iter().any(|(k, _)| *k == "content-length"));
        assert_eq!(no_body.last(), Some(&("x-api-key", "k")));
    }
}
