//! Anthropic client -> OpenAI-compatible vendor.
