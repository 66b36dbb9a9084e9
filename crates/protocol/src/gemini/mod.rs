//! Google Gemini API: wire types and translators from OpenAI chat completions and embeddings.
