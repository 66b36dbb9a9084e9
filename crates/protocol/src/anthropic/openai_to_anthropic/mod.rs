//! OpenAI client -> Anthropic vendor: the client's chat-completions request becomes a
//! Messages request, Claude's answer (whole or streamed) and errors become OpenAI's shapes.

mod output_format;
mod request;
mod response;
mod stream;

pub use output_format::claude_output_format;
pub(crate) use request::thinking_budget_exceeds;
pub use request::{
    chat_request_to_messages, chat_request_to_messages_as, parsed_chat_request_to_messages_as,
    ClaudeOptions,
};
pub use response::{
    error_to_openai, messages_response_to_chat, messages_response_to_chat_with_usage,
};
pub use stream::MessagesStreamToChat;
