//! AWS Bedrock Runtime's Converse API (`/model/{modelId}/converse`, `/converse-stream`):
//! wire translation from and to OpenAI chat completions, the event-stream framing of its
//! streams, its errors, and SigV4 request signing.
//!
//! One file per concern: `request` (chat -> Converse, the upstream path), `response`
//! (Converse answer and errors -> chat), `stream` (ConverseStream -> chat chunks),
//! [`eventstream`] (the binary framing), [`sigv4`] (signing). Anthropic Messages clients are
//! served by chaining through chat with the translators of [`crate::anthropic`]:
//! [`messages_request_to_converse`], [`converse_response_to_messages`] and
//! [`ConverseStreamToMessages`].
//!
//! Auth is either SigV4 ([`sigv4::sign`], service `bedrock`, after the body is final) or a
//! Bedrock API key sent as `Authorization: Bearer <key>`.

pub mod eventstream;
mod request;
mod response;
pub mod sigv4;
mod stream;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod fixtures;

pub use request::{chat_request_to_converse, converse_path, runtime_host, BedrockOptions};
pub use response::{converse_response_to_chat, error_to_openai, exception_name, exception_status};
pub use stream::ConverseStreamToChat;

use crate::anthropic::{
    chat_response_to_messages, messages_request_to_chat_for, ChatStreamToMessages, ChatTarget,
};
use crate::error::GatewayError;
use crate::stream::{StreamConverter, Usage};

/// Content type of ConverseStream answers (the client gets `text/event-stream` instead).
pub const EVENT_STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// An Anthropic Messages request -> Converse request (through OpenAI chat, checked against
/// [`MESSAGES_FIELDS`](crate::fields::MESSAGES_FIELDS)' Bedrock column).
pub fn messages_request_to_converse(
    body: &[u8],
    opts: &BedrockOptions,
) -> Result<Vec<u8>, GatewayError> {
    let chat = messages_request_to_chat_for(body, ChatTarget::Bedrock)?;
    chat_request_to_converse(&chat, opts)
}

/// A Converse response -> Anthropic Messages response (through OpenAI chat), with usage.
pub fn converse_response_to_messages(
    body: &[u8],
    model: &str,
    id: &str,
    created: u64,
) -> Result<(Vec<u8>, Usage), GatewayError> {
    let (chat, usage) = converse_response_to_chat(body, model, id, created)?;
    Ok((chat_response_to_messages(&chat)?, usage))
}

/// A Bedrock error -> Anthropic's error shape (through OpenAI's): `(status, body)`.
pub fn error_to_anthropic(status: u16, error_type: Option<&str>, body: &[u8]) -> (u16, Vec<u8>) {
    let (status, openai) = error_to_openai(status, error_type, body);
    (
        status,
        crate::anthropic::openai_error_to_anthropic(status, &openai),
    )
}

/// ConverseStream -> Anthropic Messages SSE events: [`ConverseStreamToChat`] feeding
/// [`ChatStreamToMessages`].
#[derive(Debug)]
pub struct ConverseStreamToMessages {
    inner: ConverseStreamToChat,
    outer: ChatStreamToMessages,
}

impl ConverseStreamToMessages {
    /// `model` and `id` are the message's (Converse streams carry neither).
    pub fn new(model: &str, id: &str, created: u64) -> Self {
        ConverseStreamToMessages {
            // Usage must reach the Messages side, which reads it from the usage chunk.
            inner: ConverseStreamToChat::new(model, id, created, true),
            outer: ChatStreamToMessages::new(),
        }
    }
}

impl StreamConverter for ConverseStreamToMessages {
    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let chat = self.inner.push(chunk);
        self.outer.push(&chat)
    }

    fn finish(&mut self) -> Vec<u8> {
        let chat = self.inner.finish();
        let mut out = self.outer.push(&chat);
        out.extend(self.outer.finish());
        out
    }

    fn usage(&self) -> Option<Usage> {
        self.inner.usage()
    }
}
