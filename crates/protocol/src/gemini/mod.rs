//! Google Gemini API (`generativelanguage.googleapis.com/v1beta`): wire types and the
//! translators from OpenAI chat completions and embeddings.
//!
//! One file per concern: [`path`](model_path) builds and guards the upstream URL (the model is
//! part of it), `request` converts chat requests, `response` converts answers and errors,
//! `stream` converts `streamGenerateContent` streams, `embeddings` both directions of
//! embeddings, `schema` rewrites JSON Schema into Gemini's OpenAPI subset.
//!
//! The plugin always asks for `alt=sse` when streaming ([`model_path`]); the stream converter
//! also accepts the JSON-array framing Gemini uses without it.

mod embeddings;
mod path;
mod request;
mod response;
mod schema;
mod stream;
pub mod types;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod fixtures;

pub use embeddings::{
    embeddings_request_to_gemini, embeddings_want_base64, gemini_embeddings_to_openai,
    gemini_embeddings_to_openai_encoded,
};
pub use path::{embed_path, model_path};
pub use request::chat_request_to_gemini;
pub use response::{error_to_openai, gemini_response_to_chat};
pub use stream::GeminiStreamToChat;

/// Per-provider Gemini settings from the plugin config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeminiOptions {
    /// `geminiSafetySetting`: a map harm category -> threshold (e.g.
    /// `{"HARM_CATEGORY_HARASSMENT": "BLOCK_NONE"}`), sent as `safetySettings`. A list of
    /// `{category, threshold}` objects is accepted too.
    pub safety_settings: Option<serde_json::Value>,
    /// `geminiThinkingBudget`: `thinkingConfig.thinkingBudget` for requests without
    /// `reasoning_effort` (0 disables thinking, -1 lets the model decide). A request's
    /// Anthropic-style `thinking` object or `reasoning_effort` takes precedence.
    pub thinking_budget: Option<i64>,
}
