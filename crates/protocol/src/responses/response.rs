//! OpenAI chat completion -> Responses API response object.

use super::stream::logprobs_of;
use super::types::{
    IncompleteDetails, OutputContent, OutputItem, ResponseObject, ResponsesUsage, Status,
    SummaryText,
};
use super::{call_id, item_id, signature, RequestEcho};
use crate::anthropic::types::{error_message, ChatCompletion};
use crate::error::{ErrorKind, GatewayError};
use crate::stream::Usage;
use serde_json::json;

/// The response status for a chat `finish_reason`: `length` and `content_filter` end an
/// answer early (`incomplete`, with the reason Responses uses), anything else completes it.
pub(crate) fn status_for(finish_reason: Option<&str>) -> (Status, Option<IncompleteDetails>) {
    let reason = match finish_reason {
        Some("length") => "max_output_tokens",
        Some("content_filter") => "content_filter",
        _ => return (Status::Completed, None),
    };
    (Status::Incomplete, Some(IncompleteDetails { reason }))
}

/// A response object with no output yet.
pub(crate) fn response_object(
    id: &str,
    created_at: u64,
    model: &str,
    echo: &RequestEcho,
) -> ResponseObject {
    ResponseObject {
        id: id.to_owned(),
        object: "response",
        created_at,
        status: Status::InProgress,
        error: None,
        incomplete_details: None,
        model: model.to_owned(),
        output: Vec::new(),
        usage: None,
        echo: echo.fields(),
    }
}

/// Translate a `chat.completion` into a Responses API response object.
///
/// `id` (`resp_...`) and `created_at` (Unix seconds) are the gateway's; `echo` comes from
/// [`responses_request_to_chat`](super::responses_request_to_chat). Output items in order:
/// `reasoning` (from `reasoning_content`/`reasoning`, as one summary text), `message` (the
/// text as `output_text`, or the refusal), one `function_call` per tool call (`call_id` is
/// the vendor's tool-call id), a Gemini-signed call preceded by a reasoning item carrying
/// the signature (see `signature.rs`). `status` is `incomplete` with `incomplete_details.reason`
/// `max_output_tokens` or `content_filter` when the vendor stopped for that reason. Usage
/// keeps cached and reasoning tokens. Only the first choice is used.
///
/// A body that is not a chat completion, or carries an error object, is a 502.
pub fn chat_response_to_responses(
    body: &[u8],
    echo: &RequestEcho,
    id: &str,
    created_at: u64,
) -> Result<Vec<u8>, GatewayError> {
    chat_response_to_responses_with_usage(body, echo, id, created_at).map(|(out, _)| out)
}

/// [`chat_response_to_responses`] and the answer's usage, for the gateway's accounting.
pub fn chat_response_to_responses_with_usage(
    body: &[u8],
    echo: &RequestEcho,
    id: &str,
    created_at: u64,
) -> Result<(Vec<u8>, Option<Usage>), GatewayError> {
    let resp: ChatCompletion = serde_json::from_slice(body).map_err(|e| {
        bad_gateway(format!(
            "the provider returned a response that is not a chat completion: {e}"
        ))
    })?;
    if let Some(err) = &resp.error {
        let message = error_message(&json!({ "error": err }))
            .unwrap_or("the provider returned an error")
            .to_owned();
        return Err(bad_gateway(message));
    }
    let model = resp
        .model
        .as_deref()
        .filter(|m| !m.is_empty())
        .unwrap_or(&echo.model);
    let mut out = response_object(id, created_at, model, echo);

    let choice = resp.choices.iter().find(|c| c.index.unwrap_or(0) == 0);
    let (status, incomplete) = status_for(choice.and_then(|c| c.finish_reason.as_deref()));
    let item_status = if status == Status::Incomplete {
        Status::Incomplete
    } else {
        Status::Completed
    };
    if let Some(m) = choice.and_then(|c| c.message.as_ref()) {
        if let Some(reasoning) = m.reasoning_text() {
            out.output.push(OutputItem::Reasoning {
                id: item_id(id, "rs", out.output.len()),
                summary: vec![SummaryText::new(reasoning)],
                encrypted_content: None,
                status: Status::Completed,
            });
        }
        let text = m.text();
        let refusal = m.refusal.as_deref().filter(|r| !r.is_empty());
        let mut content = Vec::new();
        if !text.is_empty() {
            let logprobs = logprobs_of(choice.and_then(|c| c.logprobs.as_ref()));
            content.push(OutputContent::OutputText {
                text,
                annotations: Vec::new(),
                logprobs: logprobs.to_vec(),
            });
        }
        if let Some(r) = refusal {
            content.push(OutputContent::Refusal {
                refusal: r.to_owned(),
            });
        }
        if !content.is_empty() {
            out.output.push(OutputItem::Message {
                id: item_id(id, "msg", out.output.len()),
                status: item_status,
                role: "assistant",
                content,
            });
        }
        let signatures = std::str::from_utf8(body)
            .map(signature::of_tool_calls)
            .unwrap_or_default();
        for (pos, call) in m.tool_calls.iter().flatten().enumerate() {
            let function = call.function.as_ref();
            let signed = signatures.get(pos).and_then(Option::as_deref);
            let index = out.output.len() + usize::from(signed.is_some());
            let call_id = call_id(&out.output, call.id.as_deref(), id, index);
            if let Some(sig) = signed {
                out.output.push(OutputItem::Reasoning {
                    id: item_id(id, "rs", index - 1),
                    summary: Vec::new(),
                    encrypted_content: Some(signature::encode(&call_id, sig)),
                    status: Status::Completed,
                });
            }
            out.output.push(OutputItem::FunctionCall {
                id: item_id(id, "fc", index),
                call_id,
                name: function.and_then(|f| f.name.clone()).unwrap_or_default(),
                arguments: function
                    .and_then(|f| f.arguments.clone())
                    .unwrap_or_default(),
                status: item_status,
            });
        }
    }
    out.status = status;
    out.incomplete_details = incomplete;
    out.usage = resp
        .usage
        .as_ref()
        .and_then(ResponsesUsage::from_chat_usage);
    let usage = out.usage.map(|u| u.to_usage());
    let body = serde_json::to_vec(&out).map_err(|e| {
        GatewayError::new(
            ErrorKind::Internal,
            "internal",
            format!("writing the response: {e}"),
        )
    })?;
    Ok((body, usage))
}

fn bad_gateway(message: String) -> GatewayError {
    GatewayError::new(ErrorKind::BadGateway, "invalid_upstream_response", message)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(status_for(Some("stop")), (Status::Completed, None));
        assert_eq!(status_for(Some("tool_calls")).0, Status::Completed);
        assert_eq!(status_for(None).0, Status::Completed);
        assert_eq!(
            status_for(Some("length")),
            (
                Status::Incomplete,
                Some(IncompleteDetails {
                    reason: "max_output_tokens"
                })
            )
        );
        assert_eq!(
            status_for(Some("content_filter")).1.unwrap().reason,
            "content_filter"
        );
    }
}
