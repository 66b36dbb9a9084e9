//! Typed, borrowing forms of the chat completion responses: the hot path of benchmarks, so no
//! JSON maps are built per chunk. Field order follows OpenAI's.

use serde::Serialize;

/// A `chat.completion`.
#[derive(Serialize)]
pub(crate) struct Completion<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: [Choice<'a>; 1],
    pub usage: Usage,
    pub system_fingerprint: Option<()>,
}

#[derive(Serialize)]
pub(crate) struct Choice<'a> {
    pub index: u32,
    pub message: Message<'a>,
    pub logprobs: Option<()>,
    pub finish_reason: &'static str,
}

#[derive(Serialize)]
pub(crate) struct Message<'a> {
    pub role: &'static str,
    pub content: Option<&'a str>,
    pub refusal: Option<()>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall<'a>>,
}

#[derive(Serialize)]
pub(crate) struct ToolCall<'a> {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: Function<'a>,
}

#[derive(Serialize)]
pub(crate) struct Function<'a> {
    pub name: &'a str,
    pub arguments: &'a str,
}

/// Token usage, as in responses and the usage-only stream chunk.
#[derive(Clone, Copy, Serialize)]
pub(crate) struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// A `chat.completion.chunk`; `choices` is empty in the usage-only chunk.
#[derive(Serialize)]
pub(crate) struct Chunk<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub system_fingerprint: Option<()>,
    pub choices: &'a [ChunkChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Serialize)]
pub(crate) struct ChunkChoice<'a> {
    pub index: u32,
    pub delta: Delta<'a>,
    pub logprobs: Option<()>,
    pub finish_reason: Option<&'static str>,
}

/// A stream delta; absent fields are left out.
#[derive(Default, Serialize)]
pub(crate) struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// `Some(None)` serializes as `"content": null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<[ToolCallDelta<'a>; 1]>,
}

/// One tool call's delta: the first carries `id`, `type` and `function.name`.
#[derive(Serialize)]
pub(crate) struct ToolCallDelta<'a> {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub function: FunctionDelta<'a>,
}

#[derive(Serialize)]
pub(crate) struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    pub arguments: &'a str,
}
