//! The interface every response-stream translator implements, and token usage.

use serde::{Deserialize, Serialize};

/// Token usage of one completion, in OpenAI's terms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// Prompt tokens served from the vendor's cache, where reported.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cached_tokens: u64,
    /// Prompt tokens written to the vendor's cache, where reported (Anthropic).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_creation_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    /// OpenAI's `usage` object.
    pub fn to_openai_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        });
        if self.cached_tokens > 0 {
            v["prompt_tokens_details"] = serde_json::json!({ "cached_tokens": self.cached_tokens });
        }
        v
    }

    /// Read OpenAI's `usage` object.
    pub fn from_openai_json(v: &serde_json::Value) -> Option<Usage> {
        let obj = v.as_object()?;
        let get = |k: &str| obj.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
        let prompt = get("prompt_tokens");
        let completion = get("completion_tokens");
        Some(Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: obj
                .get("total_tokens")
                .and_then(|x| x.as_u64())
                .unwrap_or(prompt.saturating_add(completion)),
            cached_tokens: v
                .pointer("/prompt_tokens_details/cached_tokens")
                .and_then(|x| x.as_u64())
                .unwrap_or(0),
            cache_creation_tokens: 0,
        })
    }
}

/// Converts a vendor's response stream to the client's protocol, piece by piece.
///
/// `push` takes the bytes of one body callback, which may hold part of an event or several
/// events, and returns the bytes to send to the client now (possibly empty). `finish` is
/// called once when the upstream stream ends and returns whatever must close the client's
/// stream (e.g. `data: [DONE]`). Implementations never panic on any input.
pub trait StreamConverter {
    fn push(&mut self, chunk: &[u8]) -> Vec<u8>;
    fn finish(&mut self) -> Vec<u8>;
    /// Usage seen so far (complete once the stream finished), counted once.
    fn usage(&self) -> Option<Usage>;
}
