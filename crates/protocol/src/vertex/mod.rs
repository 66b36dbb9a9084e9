//! Google Vertex AI: Gemini models (`publishers/google`, the [`crate::gemini`] translators
//! unchanged) and Claude models (`publishers/anthropic`, the [`crate::anthropic`]
//! translators plus [`messages_body_for_vertex`]), reached with a service-account key.
//!
//! - `url`: the host for a location and the model paths ([`host`], [`model_path`]);
//! - `claude`: the `rawPredict` body (`anthropic_version: vertex-2023-10-16`, no `model`);
//! - [`auth`]: the key JSON, the RS256 JWT assertion, the token request and answer;
//! - [`token_cache`]: when to refresh the access token (pure state machine).
//!
//! Requests carry `Authorization: Bearer <access token>`; a static access token from the
//! config skips `auth` and `token_cache` entirely.

pub mod auth;
mod claude;
pub mod token_cache;
mod url;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod fixtures;

pub use auth::{parse_token_response, AccessToken, AuthError, ServiceAccountKey, TokenEndpoint};
pub use claude::{
    chat_request_to_vertex_claude, messages_body_for_vertex, VERTEX_ANTHROPIC_VERSION,
};
pub use token_cache::{TokenAction, TokenCache};
pub use url::{host, model_path, Publisher};
