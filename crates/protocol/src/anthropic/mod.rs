//! Anthropic Messages API: wire types and translators to and from OpenAI chat completions.
//!
//! Two directions, one module each:
//! - [`openai_to_anthropic`]: an OpenAI client talks to Claude. Request, response, errors and
//!   the SSE stream are translated; see [`chat_request_to_messages`],
//!   [`messages_response_to_chat`], [`error_to_openai`] and [`MessagesStreamToChat`].
//! - [`anthropic_to_openai`]: an Anthropic client (Claude Code, the `anthropic` SDKs) talks to
//!   an OpenAI-compatible vendor; see [`messages_request_to_chat`],
//!   [`chat_response_to_messages`], [`openai_error_to_anthropic`] and
//!   [`ChatStreamToMessages`]. A [`GatewayError`](crate::GatewayError) returned to such a
//!   client is put in Anthropic's shape with
//!   `openai_error_to_anthropic(err.status(), &err.body())`.
//!
//! Everything is pure: ids and timestamps are passed in, nothing panics on any input, and
//! unknown block, delta and event types from a vendor are skipped.

pub mod anthropic_to_openai;
pub(crate) mod input;
pub mod openai_to_anthropic;
pub(crate) mod types;

pub use anthropic_to_openai::{
    chat_response_to_messages, messages_request_to_chat, messages_request_to_chat_for,
    openai_error_to_anthropic, ChatStreamToMessages, ChatTarget,
};
pub use openai_to_anthropic::{
    chat_request_to_messages, chat_request_to_messages_as, claude_output_format, error_to_openai,
    messages_response_to_chat, messages_response_to_chat_with_usage,
    parsed_chat_request_to_messages_as, ClaudeOptions, MessagesStreamToChat,
};

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod fixture_tests;

/// The Anthropic answers of the response fixtures (`*.in.json`), as `(path, bytes)`: the
/// inputs the readers and writers of Claude answers are checked against serde on.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn response_fixture_bodies() -> Vec<(String, Vec<u8>)> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/anthropic/openai_to_anthropic/response"
    );
    let bodies: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".in.json"))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    assert!(bodies.len() >= 8, "fixtures not found in {dir}");
    bodies
}
