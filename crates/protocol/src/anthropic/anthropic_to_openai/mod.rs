//! Anthropic client -> OpenAI-compatible vendor: an Anthropic client (Claude Code, the
//! `anthropic` SDKs) pointed at the gateway, in front of a vendor without a Messages API.

mod request;
mod response;
mod stream;

pub(crate) use request::effort_for_budget;
pub use request::{messages_request_to_chat, messages_request_to_chat_for, ChatTarget};
pub use response::{chat_response_to_messages, openai_error_to_anthropic};
pub use stream::ChatStreamToMessages;
