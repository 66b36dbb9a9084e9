//! Anthropic Messages API: wire types and translators to and from OpenAI chat completions.
