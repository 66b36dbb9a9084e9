//! Wire types of the LLM vendor APIs and the translators between them.
//!
//! Everything here is pure: bytes and state in, bytes out. No proxy-wasm, no I/O, so every
//! conversion is tested natively with fixtures. Nothing in this crate may panic on input.

pub mod anthropic;
pub mod bedrock;
mod borrowed_json;
pub mod error;
pub mod fields;
pub mod gemini;
pub mod json_field;
pub mod json_scan;
pub mod openai;
pub mod openai_edit;
pub mod responses;
pub mod sse;
pub mod stream;
pub mod stream_chain;
pub mod usage;
pub mod vertex;

pub use error::{ErrorKind, GatewayError};
pub use stream::{StreamConverter, Usage};
pub use stream_chain::Chain;
