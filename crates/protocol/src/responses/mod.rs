//! OpenAI Responses API (`POST /v1/responses`): wire types, and the translators that serve it
//! from any vendor through OpenAI chat completions.
//!
//! A Responses client in front of a vendor that is not OpenAI goes through chat completions,
//! so every vendor family reuses its chat translators:
//!
//! ```text
//! request:  Responses --responses_request_to_chat--> chat --(Claude/Gemini translator)--> vendor
//! answer:   vendor --(to chat)--> chat --chat_response_to_responses--> Responses
//! stream:   vendor --(StreamConverter to chat)--> chunks --ChatStreamToResponses--> events
//! ```
//!
//! Chat carries all a Responses answer needs: reasoning travels as `reasoning_content` (the
//! Claude and Gemini converters write it) and becomes a `reasoning` output item, reasoning
//! tokens as `completion_tokens_details.reasoning_tokens`.
//!
//! In front of OpenAI itself the request passes through unchanged (hosted tools and stored
//! state work there; [`insert_context`] is the Responses form of the context injection);
//! [`ResponsesUsageTap`] and [`usage_from_response_body`] read the usage of such answers.
//!
//! Wiring, per vendor family (`echo`, `id`, `created` from the request phase):
//!
//! | family | request | whole answer | stream |
//! |---|---|---|---|
//! | OpenAI | unchanged | unchanged, [`usage_from_response_body`] | [`ResponsesUsageTap`] |
//! | OpenAI-compatible | [`responses_request_to_chat`] | [`chat_response_to_responses_with_usage`] | [`ChatStreamToResponses`] |
//! | Claude | [`responses_request_to_chat_for`], then `anthropic::chat_request_to_messages` | `anthropic::messages_response_to_chat`, then as above | `Chain(anthropic::MessagesStreamToChat::new(true, ..), ChatStreamToResponses)` |
//! | Gemini | [`responses_request_to_chat_for`], then `gemini::chat_request_to_gemini` | `gemini::gemini_response_to_chat`, then as above | `Chain(gemini::GeminiStreamToChat::new(.., true), ChatStreamToResponses)` |
//!
//! The first converter of a chain is asked for the usage chunk (`include_usage: true`), so the
//! Responses answer carries usage. Errors use the same `{"error": {...}}` shape as chat completions, so the
//! chat error converters (`anthropic::error_to_openai`, `gemini::error_to_openai`,
//! [`vendor_error_body`](crate::error::vendor_error_body)) already answer Responses clients.
//!
//! What becomes of each request field per family is [`RESPONSES_FIELDS`](crate::fields::RESPONSES_FIELDS)
//! (the README's field table); `responses_request_to_chat_for` applies it.
//!
//! Everything is pure: ids and timestamps are passed in, and nothing panics on any input.

mod edit;
mod request;
mod response;
mod signature;
mod stream;
pub mod types;
mod usage;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod fixture_tests;

pub use edit::insert_context;
pub use request::{
    check_convertible, check_convertible_for, responses_request_to_chat,
    responses_request_to_chat_for, ChatRequest,
};
pub use response::{chat_response_to_responses, chat_response_to_responses_with_usage};
pub use stream::ChatStreamToResponses;
pub use usage::{usage_from_response_body, ResponsesUsageTap};

use crate::anthropic::input::{get, Json, Object};
use serde_json::{json, Map, Value};

/// What a converted answer repeats from the client's request: the requested `model` (used
/// when the vendor names none) and the parameters a response object echoes (`instructions`,
/// `tools`, `tool_choice`, `temperature`, `top_p`, `max_output_tokens`, `metadata`, `text`,
/// `reasoning`, `parallel_tool_calls`, `user`). Made by [`responses_request_to_chat`]; keep
/// it with the request and hand it to the response converters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestEcho {
    /// The model the client asked for (after the gateway's mapping, if the caller sets it).
    pub model: String,
    fields: Map<String, Value>,
}

impl RequestEcho {
    /// An echo for a request the caller knows only by its model (every parameter at its
    /// default).
    pub fn for_model(model: impl Into<String>) -> Self {
        RequestEcho {
            model: model.into(),
            fields: defaults(),
        }
    }

    pub(crate) fn from_request(req: &Object<'_>, model: &str, metadata: Option<Value>) -> Self {
        let mut fields = defaults();
        let copy = |key: &str, fields: &mut Map<String, Value>| {
            if let Some(v) = get(req, key) {
                fields.insert(key.to_owned(), v.to_value());
            }
        };
        for key in [
            "instructions",
            "max_output_tokens",
            "parallel_tool_calls",
            "temperature",
            "tool_choice",
            "tools",
            "top_p",
            "user",
        ] {
            copy(key, &mut fields);
        }
        if let Some(m) = metadata {
            fields.insert("metadata".into(), m);
        }
        if let Some(Json::Object(text)) = get(req, "text") {
            if let Some(format @ Json::Object(_)) = get(text, "format") {
                fields.insert("text".into(), json!({ "format": format.to_value() }));
            }
        }
        if let Some(Json::Object(r)) = get(req, "reasoning") {
            let pick = |k: &str| get(r, k).map_or(Value::Null, Json::to_value);
            fields.insert(
                "reasoning".into(),
                json!({ "effort": pick("effort"), "summary": pick("summary") }),
            );
        }
        RequestEcho {
            model: model.to_owned(),
            fields,
        }
    }

    pub(crate) fn fields(&self) -> Map<String, Value> {
        if self.fields.is_empty() {
            return defaults();
        }
        self.fields.clone()
    }
}

/// The echoed parameters of a request that set none of them.
fn defaults() -> Map<String, Value> {
    let v = json!({
        "background": false,
        "instructions": null,
        "max_output_tokens": null,
        "metadata": {},
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": { "effort": null, "summary": null },
        // Nothing is stored by a converting gateway, whatever the request said.
        "store": false,
        "temperature": null,
        "text": { "format": { "type": "text" } },
        "tool_choice": "auto",
        "tools": [],
        "top_p": null,
        "truncation": "disabled",
        "user": null,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Item ids derived from the response id: `msg_<suffix>_<n>`, `fc_...`, `rs_...`, where `n`
/// is the item's output index (unique within the response, stable across byte splits).
pub(crate) fn item_id(response_id: &str, prefix: &str, output_index: usize) -> String {
    let suffix = response_id.strip_prefix("resp_").unwrap_or(response_id);
    format!("{prefix}_{suffix}_{output_index}")
}

/// The `call_id` of a new function-call item: the vendor's tool-call id, unless it is missing
/// or an earlier call of the same answer has it (clients match outputs to calls by `call_id`,
/// and the Python SDK rejects a stream whose calls share one); then one derived from the
/// response id.
pub(crate) fn call_id(
    output: &[types::OutputItem],
    vendor_id: Option<&str>,
    response_id: &str,
    output_index: usize,
) -> String {
    let taken = |id: &str| {
        output.iter().any(
            |item| matches!(item, types::OutputItem::FunctionCall { call_id, .. } if call_id == id),
        )
    };
    match vendor_id.filter(|id| !id.is_empty() && !taken(id)) {
        Some(id) => id.to_owned(),
        None => item_id(response_id, "call", output_index),
    }
}
