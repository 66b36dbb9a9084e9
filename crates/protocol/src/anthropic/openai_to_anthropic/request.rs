//! OpenAI chat-completions request -> Anthropic Messages request.

use super::super::input::{self, get, invalid, wrong_type, Json, Object, Path};
use super::super::types::{
    InputSchema, Message, MessagesRequest, Metadata, RequestBlock, Role, Source, Thinking, Tool,
    ToolChoice, ToolResultContent,
};
use super::claude_output_format;
use crate::error::GatewayError;
use crate::fields::{VendorFamily, CHAT_FIELDS};
use std::borrow::Cow;

/// How OpenAI-only request fields are mapped onto Claude.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaudeOptions {
    /// `max_tokens` when the client sent neither `max_tokens` nor `max_completion_tokens`
    /// (Anthropic requires it, OpenAI does not).
    pub default_max_tokens: u32,
    /// Thinking budget for `reasoning_effort: "minimal"` and `"low"`.
    pub thinking_budget_low: u32,
    /// Thinking budget for `reasoning_effort: "medium"`.
    pub thinking_budget_medium: u32,
    /// Thinking budget for `reasoning_effort: "high"` and `"xhigh"`.
    pub thinking_budget_high: u32,
}

impl Default for ClaudeOptions {
    fn default() -> Self {
        ClaudeOptions {
            default_max_tokens: 4096,
            thinking_budget_low: 1024,
            thinking_budget_medium: 4096,
            thinking_budget_high: 16384,
        }
    }
}

/// Anthropic's smallest accepted `thinking.budget_tokens`.
const MIN_THINKING_BUDGET: u32 = 1024;

/// Translate an OpenAI chat-completions request body to an Anthropic Messages request body.
///
/// Every top-level field follows its rule in [`CHAT_FIELDS`](crate::fields::CHAT_FIELDS)
/// (Claude column): fields without an equivalent (`seed`, `logprobs: true`, penalties, …) and
/// fields the table does not know are 400s naming them, never dropped; only hints that cannot
/// change the answer (`metadata`, `prompt_cache_key`) are not sent. Notable mappings:
/// - `system`/`developer` messages, wherever they are, become the top-level `system` blocks;
/// - consecutive turns of one role are merged, `tool` messages become `tool_result` blocks of
///   the user turn after the assistant turn, and tool results come first in that turn;
/// - `temperature` is clamped to Anthropic's 0..=1; current Claude models reject
///   `temperature` and `top_p` together, so `top_p` with `temperature` is a 400 unless it is
///   1 (no truncation, not sent);
/// - `response_format` `json_schema` becomes `output_config.format` (structured outputs, see
///   [`claude_output_format`](super::claude_output_format)); `json_object` is a 400;
/// - `reasoning_effort` enables thinking with a budget from [`ClaudeOptions`]; a client's
///   `max_tokens` at or below the budget is then a 400, a missing one is raised above the
///   budget (budget + [`ClaudeOptions::default_max_tokens`]), and
///   `temperature` (other than 1), `top_p` below 0.95 and `top_k` are 400s (thinking rejects
///   them). A forced `tool_choice` (`required` or a named function) wins over
///   `reasoning_effort`: Anthropic rejects thinking with forced tool use. So does a request
///   that answers tool calls: Anthropic would want the signed thinking block of the calling
///   turn, which OpenAI clients drop.
///
/// Errors are 400s naming the field: invalid JSON, missing or empty `messages`, wrong types,
/// unknown roles, unparsable tool-call arguments, unsupported content parts, refused fields.
pub fn chat_request_to_messages(
    body: &[u8],
    opts: &ClaudeOptions,
) -> Result<Vec<u8>, GatewayError> {
    chat_request_to_messages_as(body, opts, None)
}

/// [`chat_request_to_messages`] sending `model` instead of the body's (which must still be
/// there): a mapped model costs no extra pass over the body.
pub fn chat_request_to_messages_as(
    body: &[u8],
    opts: &ClaudeOptions,
    model: Option<&str>,
) -> Result<Vec<u8>, GatewayError> {
    let req = input::parse_object(body)?;
    object_to_messages(&req, body.len(), opts, model)
}

/// [`chat_request_to_messages_as`] from a body already parsed (the facts of the request were
/// read from the same tree).
pub fn parsed_chat_request_to_messages_as(
    parsed: &crate::openai_edit::ParsedRequest<'_>,
    opts: &ClaudeOptions,
    model: Option<&str>,
) -> Result<Vec<u8>, GatewayError> {
    object_to_messages(&parsed.object, parsed.body_len, opts, model)
}

/// The translation of a parsed request object (`body_len`: the body's size, for the output
/// buffer).
fn object_to_messages(
    req: &Object<'_>,
    body_len: usize,
    opts: &ClaudeOptions,
    model: Option<&str>,
) -> Result<Vec<u8>, GatewayError> {
    crate::openai::check_request_fields_of(req)?;
    CHAT_FIELDS.check(req, VendorFamily::Claude)?;
    crate::fields::check_chat_nested(req, VendorFamily::Claude)?;
    let body_model = input::required_str(req, "model")?;
    let model = model.unwrap_or(body_model);

    let (system, messages) = convert_messages(input::messages(req)?)?;
    if messages.is_empty() {
        return Err(invalid(
            "messages",
            "invalid_value",
            "messages must contain at least one user or assistant message with content".into(),
        ));
    }

    let requested_max = match input::opt_u32(req, "max_completion_tokens")? {
        Some(n) => Some(n),
        None => input::opt_u32(req, "max_tokens")?,
    };
    let mut max_tokens = requested_max.unwrap_or(opts.default_max_tokens);

    let mut temperature = input::opt_f64(req, "temperature")?.map(|t| t.clamp(0.0, 1.0));
    // `top_p: 1` truncates nothing: with `temperature` it is left out rather than refused.
    let mut top_p = input::opt_f64(req, "top_p")?.filter(|p| temperature.is_none() || *p != 1.0);
    if temperature.is_some() && top_p.is_some() {
        return Err(invalid(
            "top_p",
            "unsupported_value",
            "Claude accepts temperature or top_p, not both; drop one of them".into(),
        ));
    }
    // Not an OpenAI field, but vLLM-style clients send it and Anthropic knows it.
    let mut top_k = input::opt_u64(req, "top_k")?;

    let mut stop_sequences = input::string_or_strings(req, "stop")?;
    stop_sequences.retain(|s| !s.trim().is_empty());

    let mut tools = convert_tools(req)?;
    let allowed = match get(req, "tool_choice") {
        Some(choice @ Json::Object(_)) => crate::openai::allowed_tools(&choice.to_value())?,
        _ => None,
    };
    let mut tool_choice = match allowed {
        // Claude has no allowed-tools choice: only the allowed functions are sent.
        Some((required, names)) => {
            if let Some(missing) = names.iter().find(|n| !tools.iter().any(|t| t.name == *n)) {
                return Err(invalid(
                    "tool_choice",
                    "invalid_value",
                    format!("tool_choice.allowed_tools names {missing:?}, which is not in tools"),
                ));
            }
            tools.retain(|t| names.iter().any(|n| n == t.name));
            Some(if required {
                ToolChoice::Any {
                    disable_parallel_tool_use: None,
                }
            } else {
                ToolChoice::Auto {
                    disable_parallel_tool_use: None,
                }
            })
        }
        None if tools.is_empty() => None,
        None => convert_tool_choice(req)?,
    };
    if !tools.is_empty() && input::opt_bool(req, "parallel_tool_calls")? == Some(false) {
        let choice = tool_choice.get_or_insert(ToolChoice::Auto {
            disable_parallel_tool_use: None,
        });
        match choice {
            ToolChoice::Auto {
                disable_parallel_tool_use,
            }
            | ToolChoice::Any {
                disable_parallel_tool_use,
            }
            | ToolChoice::Tool {
                disable_parallel_tool_use,
                ..
            } => *disable_parallel_tool_use = Some(true),
            ToolChoice::None => {}
        }
    }

    let forced = tool_choice
        .as_ref()
        .is_some_and(ToolChoice::forces_tool_use);
    let thinking = match thinking_budget(req, opts)? {
        Some(_) if forced || continues_tool_loop(&messages) => None,
        other => other,
    };
    if let Some(thinking) = thinking {
        if let Thinking::Enabled { budget_tokens } = thinking {
            max_tokens = max_tokens_with_thinking(req, requested_max, budget_tokens, opts)?;
        }
        // Thinking accepts only the default sampling; a neutral value is left out.
        let refuse = |param: &'static str| {
            invalid(
                param,
                "unsupported_value",
                format!("{param} cannot be combined with thinking (reasoning_effort) for Claude"),
            )
        };
        if temperature.take().is_some_and(|t| t != 1.0) {
            return Err(refuse("temperature"));
        }
        // Anthropic accepts 0.95..=1 with thinking; 1 truncates nothing and is left out.
        match top_p {
            Some(p) if p < 0.95 => return Err(refuse("top_p")),
            Some(p) if p >= 1.0 => top_p = None,
            _ => {}
        }
        if top_k.take().is_some() {
            return Err(refuse("top_k"));
        }
    }

    let user = match input::opt_str(req, "user")? {
        Some(user) => Some(user),
        None => input::opt_str(req, "safety_identifier")?,
    };
    let metadata = user.map(|user_id| Metadata { user_id });

    let output_config = match get(req, "response_format") {
        None => None,
        Some(format) => claude_output_format(&format.to_value(), "response_format")?
            .map(|format| serde_json::json!({ "format": format })),
    };

    let out = MessagesRequest {
        model,
        max_tokens,
        messages,
        system,
        stop_sequences,
        temperature,
        top_p,
        top_k,
        metadata,
        tools,
        tool_choice,
        thinking,
        output_config,
        stream: input::opt_bool(req, "stream")?,
    };
    // The request is about as long as the body: one buffer, rarely grown.
    let mut buf = Vec::with_capacity(body_len.saturating_add(body_len / 8).saturating_add(256));
    out.write(&mut buf);
    Ok(buf)
}

/// `max_tokens` with thinking on: Anthropic wants it above `budget_tokens` (the thinking
/// counts against it). A client's value at or below the budget is a 400 naming the field it
/// came from (raising it silently would let the answer run longer than asked); a missing one
/// is the default answer size, or budget + that size when the default would not exceed it.
fn max_tokens_with_thinking(
    req: &Object<'_>,
    requested: Option<u32>,
    budget: u32,
    opts: &ClaudeOptions,
) -> Result<u32, GatewayError> {
    match requested {
        Some(n) if n <= budget => {
            let param = if get(req, "max_completion_tokens").is_some() {
                "max_completion_tokens"
            } else {
                "max_tokens"
            };
            Err(thinking_budget_exceeds(param, n, budget))
        }
        Some(n) => Ok(n),
        None if opts.default_max_tokens > budget => Ok(opts.default_max_tokens),
        None => Ok(budget.saturating_add(opts.default_max_tokens.max(1))),
    }
}

/// The 400 for a token limit that leaves no room for an answer after the thinking budget.
pub(crate) fn thinking_budget_exceeds(param: &'static str, n: u32, budget: u32) -> GatewayError {
    invalid(
        param,
        "invalid_value",
        format!(
            "{param} ({n}) must be above the thinking budget ({budget} tokens, from thinking or \
             reasoning_effort): the thinking counts against it; raise {param} or lower the effort"
        ),
    )
}

/// Whether the request answers tool calls (its last turn holds tool results). With thinking
/// enabled, Anthropic requires the assistant turn that made those calls to start with its
/// signed thinking block, which an OpenAI client never has; so such a request goes without
/// thinking.
fn continues_tool_loop(turns: &[Message<'_>]) -> bool {
    turns
        .last()
        .is_some_and(|t| t.role == Role::User && t.content.iter().any(RequestBlock::is_tool_result))
}

/// The thinking asked for by `reasoning_effort`, or by an Anthropic-style `thinking` object
/// (`{"type": "enabled", "budget_tokens": N}`, `{"type": "adaptive"}`, `{"type":
/// "disabled"}`) that some clients pass through; the object wins over `reasoning_effort`.
fn thinking_budget(
    req: &Object<'_>,
    opts: &ClaudeOptions,
) -> Result<Option<Thinking>, GatewayError> {
    if let Some(thinking) = get(req, "thinking") {
        let budget = thinking.get("budget_tokens").and_then(Json::as_u64);
        return match (thinking.get("type").and_then(Json::as_str), budget) {
            (Some("enabled"), Some(b)) => Ok(Some(Thinking::Enabled {
                budget_tokens: u32::try_from(b)
                    .unwrap_or(u32::MAX)
                    .max(MIN_THINKING_BUDGET),
            })),
            (Some("enabled"), None) => Err(invalid(
                "thinking",
                "invalid_value",
                "thinking.budget_tokens must be a non-negative integer".into(),
            )),
            (Some("adaptive"), _) => Ok(Some(Thinking::Adaptive)),
            (Some("disabled"), _) => Ok(None),
            _ => Err(invalid(
                "thinking",
                "invalid_value",
                "thinking.type must be enabled, adaptive or disabled".into(),
            )),
        };
    }
    let budget = match input::opt_str(req, "reasoning_effort")? {
        None | Some("none") => return Ok(None),
        Some("minimal" | "low") => opts.thinking_budget_low,
        Some("medium") => opts.thinking_budget_medium,
        Some("high" | "xhigh") => opts.thinking_budget_high,
        Some(other) => {
            return Err(invalid(
                "reasoning_effort",
                "invalid_value",
                format!(
                    "reasoning_effort must be one of none, minimal, low, medium, high, xhigh; got {other:?}"
                ),
            ))
        }
    };
    Ok(Some(Thinking::Enabled {
        budget_tokens: budget.max(MIN_THINKING_BUDGET),
    }))
}

/// System blocks and the merged user/assistant turns.
type Converted<'a> = (Vec<RequestBlock<'a>>, Vec<Message<'a>>);

fn convert_messages<'a>(messages: &'a [Json<'a>]) -> Result<Converted<'a>, GatewayError> {
    let mut system = Vec::new();
    let mut turns: Vec<Message<'a>> = Vec::new();
    let root = Path::Root("messages");
    for (i, msg) in messages.iter().enumerate() {
        let path = root.at(i);
        let msg = msg
            .as_object()
            .ok_or_else(|| wrong_type("messages", path, "an object"))?;
        let role = match get(msg, "role") {
            Some(Json::Str(r)) => r.as_ref(),
            Some(_) => return Err(wrong_type("messages", path.field("role"), "a string")),
            None => {
                return Err(invalid(
                    "messages",
                    "missing_required_parameter",
                    format!("{path}.role is required"),
                ))
            }
        };
        let content = get(msg, "content");
        let cpath = path.field("content");
        let (role, blocks) = match role {
            "system" | "developer" => {
                text_parts(content, cpath, &mut system)?;
                continue;
            }
            "user" => (Role::User, user_parts(content, cpath)?),
            "assistant" => (Role::Assistant, assistant_blocks(msg, path)?),
            "tool" => (Role::User, vec![tool_result(msg, path)?]),
            "function" => {
                return Err(invalid(
                    "messages",
                    "unsupported_value",
                    format!("{path}.role: the legacy function role is not supported; send tool messages"),
                ))
            }
            other => {
                return Err(invalid(
                    "messages",
                    "invalid_value",
                    format!("{path}.role must be one of system, developer, user, assistant, tool; got {other:?}"),
                ))
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => turns.push(Message {
                role,
                content: blocks,
            }),
        }
    }
    // Anthropic wants a turn's tool results before anything else in it.
    for turn in &mut turns {
        let misplaced = turn.role == Role::User
            && turn
                .content
                .iter()
                .skip_while(|b| b.is_tool_result())
                .any(RequestBlock::is_tool_result);
        if misplaced {
            let (mut results, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut turn.content)
                .into_iter()
                .partition(RequestBlock::is_tool_result);
            results.extend(rest);
            turn.content = results;
        }
    }
    Ok((system, turns))
}

fn text_block<'a>(text: &'a str, cache_control: Option<&'a Json<'a>>) -> Option<RequestBlock<'a>> {
    // Anthropic rejects empty and whitespace-only text blocks.
    (!text.trim().is_empty()).then(|| RequestBlock::Text {
        text,
        cache_control: cache_control.filter(|c| c.is_object()),
    })
}

/// Content that may only hold text: a string or an array of `text` parts, appended to `out`.
fn text_parts<'a>(
    content: Option<&'a Json<'a>>,
    path: Path<'_>,
    out: &mut Vec<RequestBlock<'a>>,
) -> Result<(), GatewayError> {
    match content {
        None => Ok(()),
        Some(Json::Str(s)) => {
            out.extend(text_block(s, None));
            Ok(())
        }
        Some(Json::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                let ppath = path.at(j);
                match part_type(part, ppath)? {
                    "text" => out.extend(text_block(
                        part_str(part, "text", ppath)?,
                        part.get("cache_control"),
                    )),
                    other => {
                        return Err(invalid(
                            "messages",
                            "unsupported_value",
                            format!("{ppath}.type must be text here; got {other:?}"),
                        ))
                    }
                }
            }
            Ok(())
        }
        Some(_) => Err(wrong_type(
            "messages",
            path,
            "a string or an array of parts",
        )),
    }
}

/// User content: text, images (`image_url`) and PDF files (`file` with `file_data`).
fn user_parts<'a>(
    content: Option<&'a Json<'a>>,
    path: Path<'_>,
) -> Result<Vec<RequestBlock<'a>>, GatewayError> {
    let mut out = Vec::new();
    let parts = match content {
        Some(Json::Array(parts)) => parts,
        other => {
            text_parts(other, path, &mut out)?;
            return Ok(out);
        }
    };
    for (j, part) in parts.iter().enumerate() {
        let ppath = path.at(j);
        match part_type(part, ppath)? {
            "text" => out.extend(text_block(
                part_str(part, "text", ppath)?,
                part.get("cache_control"),
            )),
            "image_url" => {
                let upath = ppath.field("image_url");
                let url = match part.get("image_url") {
                    Some(Json::Str(u)) => u.as_ref(),
                    Some(obj) => obj.get("url").and_then(Json::as_str).ok_or_else(|| {
                        wrong_type("messages", upath.field("url"), "a string")
                    })?,
                    None => {
                        return Err(invalid(
                            "messages",
                            "missing_required_parameter",
                            format!("{upath} is required"),
                        ))
                    }
                };
                out.push(RequestBlock::Image {
                    source: image_source(url, upath.field("url"))?,
                });
            }
            "file" => {
                let fpath = ppath.field("file");
                let fpath = fpath.field("file_data");
                let data = part
                    .get("file")
                    .and_then(|f| f.get("file_data"))
                    .and_then(Json::as_str)
                    .ok_or_else(|| {
                        invalid(
                            "messages",
                            "unsupported_value",
                            format!("{fpath} is required: only inline files (data URLs) can be sent to Claude, not file ids"),
                        )
                    })?;
                let (media_type, data) = input::parse_data_url(data).ok_or_else(|| {
                    invalid(
                        "messages",
                        "invalid_value",
                        format!("{fpath} must be a base64 data URL"),
                    )
                })?;
                let title = part
                    .get("file")
                    .and_then(|f| f.get("filename"))
                    .and_then(Json::as_str)
                    .filter(|t| !t.is_empty());
                out.push(RequestBlock::Document {
                    source: Source::Base64 { media_type, data },
                    title,
                });
            }
            other => {
                return Err(invalid(
                    "messages",
                    "unsupported_value",
                    format!("{ppath}.type {other:?} is not supported by Claude (text, image_url and file are)"),
                ))
            }
        }
    }
    Ok(out)
}

fn image_source<'a>(url: &'a str, path: Path<'_>) -> Result<Source<'a>, GatewayError> {
    if url.starts_with("data:") {
        let (media_type, data) = input::parse_data_url(url).ok_or_else(|| {
            invalid(
                "messages",
                "invalid_value",
                format!("{path} must be a base64 data URL (data:<type>;base64,...)"),
            )
        })?;
        return Ok(Source::Base64 { media_type, data });
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(Source::Url { url });
    }
    Err(invalid(
        "messages",
        "invalid_value",
        format!("{path} must be an http(s) URL or a data URL"),
    ))
}

fn part_type<'a>(part: &'a Json<'_>, path: Path<'_>) -> Result<&'a str, GatewayError> {
    part.get("type")
        .and_then(Json::as_str)
        .ok_or_else(|| wrong_type("messages", path.field("type"), "a string"))
}

fn part_str<'a>(part: &'a Json<'_>, key: &str, path: Path<'_>) -> Result<&'a str, GatewayError> {
    part.get(key)
        .and_then(Json::as_str)
        .ok_or_else(|| wrong_type("messages", path.field(key), "a string"))
}

/// An assistant message: its text (refusals included) and its tool calls as `tool_use`.
fn assistant_blocks<'a>(
    msg: &'a Object<'a>,
    path: Path<'_>,
) -> Result<Vec<RequestBlock<'a>>, GatewayError> {
    let cpath = path.field("content");
    let mut out = Vec::new();
    match get(msg, "content") {
        Some(Json::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                let ppath = cpath.at(j);
                let key = match part_type(part, ppath)? {
                    "text" => "text",
                    "refusal" => "refusal",
                    other => {
                        return Err(invalid(
                            "messages",
                            "unsupported_value",
                            format!("{ppath}.type must be text or refusal in an assistant message; got {other:?}"),
                        ))
                    }
                };
                out.extend(text_block(
                    part_str(part, key, ppath)?,
                    part.get("cache_control"),
                ));
            }
        }
        other => text_parts(other, cpath, &mut out)?,
    }
    // An earlier refusal is what the assistant said (OpenAI sends it instead of content).
    match get(msg, "refusal") {
        None => {}
        Some(Json::Str(r)) => {
            let said = |b: &RequestBlock<'_>| matches!(b, RequestBlock::Text { text, .. } if *text == r.as_ref());
            if !out.iter().any(said) {
                out.extend(text_block(r, None));
            }
        }
        Some(_) => return Err(wrong_type("messages", path.field("refusal"), "a string")),
    }
    let calls = match get(msg, "tool_calls") {
        None => return Ok(out),
        Some(Json::Array(calls)) => calls,
        Some(_) => return Err(wrong_type("messages", path.field("tool_calls"), "an array")),
    };
    let calls_path = path.field("tool_calls");
    for (k, call) in calls.iter().enumerate() {
        let tpath = calls_path.at(k);
        if let Some(t) = call.get("type").and_then(Json::as_str) {
            if t != "function" {
                return Err(invalid(
                    "messages",
                    "unsupported_value",
                    format!("{tpath}.type must be function; got {t:?}"),
                ));
            }
        }
        let id = call
            .get("id")
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| wrong_type("messages", tpath.field("id"), "a non-empty string"))?;
        let function = call.get("function");
        let fpath = tpath.field("function");
        let name = function
            .and_then(|f| f.get("name"))
            .and_then(Json::as_str)
            .ok_or_else(|| wrong_type("messages", fpath.field("name"), "a string"))?;
        let apath = fpath.field("arguments");
        let input = match function.and_then(|f| f.get("arguments")) {
            None | Some(Json::Null) => Json::Object(Vec::new()),
            Some(Json::Str(s)) if s.trim().is_empty() => Json::Object(Vec::new()),
            Some(Json::Str(s)) => Json::from_slice(s.as_bytes()).map_err(|e| {
                invalid(
                    "messages",
                    "invalid_value",
                    format!("{apath} is not valid JSON: {e}"),
                )
            })?,
            Some(_) => return Err(wrong_type("messages", apath, "a JSON string")),
        };
        if !input.is_object() {
            return Err(invalid(
                "messages",
                "invalid_value",
                format!("{apath} must encode a JSON object"),
            ));
        }
        out.push(RequestBlock::ToolUse {
            id: tool_id(id),
            name,
            input,
        });
    }
    Ok(out)
}

/// A `tool` message as a `tool_result` block.
fn tool_result<'a>(msg: &'a Object<'a>, path: Path<'_>) -> Result<RequestBlock<'a>, GatewayError> {
    let id = match get(msg, "tool_call_id") {
        Some(Json::Str(s)) if !s.is_empty() => s,
        _ => {
            return Err(wrong_type(
                "messages",
                path.field("tool_call_id"),
                "a non-empty string",
            ))
        }
    };
    let cpath = path.field("content");
    let content = match get(msg, "content") {
        None => ToolResultContent::Text(""),
        Some(Json::Str(s)) => ToolResultContent::Text(s),
        Some(array @ Json::Array(_)) => ToolResultContent::Blocks(user_parts(Some(array), cpath)?),
        Some(_) => {
            return Err(wrong_type(
                "messages",
                cpath,
                "a string or an array of parts",
            ))
        }
    };
    Ok(RequestBlock::ToolResult {
        tool_use_id: tool_id(id),
        content,
    })
}

/// Anthropic accepts tool ids matching `^[a-zA-Z0-9_-]+$`; ids minted by other vendors may
/// not. Applied to `tool_use` and `tool_result` alike, so pairs still match.
fn tool_id(id: &str) -> Cow<'_, str> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if id.chars().all(allowed) {
        return Cow::Borrowed(id);
    }
    Cow::Owned(
        id.chars()
            .map(|c| if allowed(c) { c } else { '_' })
            .collect(),
    )
}

fn convert_tools<'a>(req: &'a Object<'a>) -> Result<Vec<Tool<'a>>, GatewayError> {
    let tools = match get(req, "tools") {
        None => return Ok(Vec::new()),
        Some(Json::Array(tools)) => tools,
        Some(_) => return Err(wrong_type("tools", "tools", "an array")),
    };
    let mut out = Vec::with_capacity(tools.len());
    let root = Path::Root("tools");
    for (i, tool) in tools.iter().enumerate() {
        let path = root.at(i);
        match tool.get("type").and_then(Json::as_str) {
            Some("function") | None => {}
            Some(other) => {
                return Err(invalid(
                    "tools",
                    "unsupported_value",
                    format!("{path}.type must be function; got {other:?}"),
                ))
            }
        }
        let function = tool.get("function");
        let fpath = path.field("function");
        let name = function
            .and_then(|f| f.get("name"))
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| wrong_type("tools", fpath.field("name"), "a non-empty string"))?;
        let description = match function.and_then(|f| f.get("description")) {
            None | Some(Json::Null) => None,
            Some(Json::Str(s)) => Some(s.as_ref()),
            Some(_) => return Err(wrong_type("tools", fpath.field("description"), "a string")),
        };
        let input_schema = match function.and_then(|f| f.get("parameters")) {
            None | Some(Json::Null) => InputSchema::no_parameters(),
            Some(Json::Object(schema)) => InputSchema(schema),
            Some(_) => {
                return Err(wrong_type(
                    "tools",
                    fpath.field("parameters"),
                    "a JSON schema object",
                ))
            }
        };
        let strict = match function.and_then(|f| f.get("strict")) {
            None | Some(Json::Null) => None,
            Some(Json::Bool(b)) => Some(*b),
            Some(_) => return Err(wrong_type("tools", fpath.field("strict"), "a boolean")),
        };
        out.push(Tool {
            name,
            description,
            input_schema,
            strict,
        });
    }
    Ok(out)
}

fn convert_tool_choice<'a>(req: &'a Object<'a>) -> Result<Option<ToolChoice<'a>>, GatewayError> {
    let choice = match get(req, "tool_choice") {
        None => return Ok(None),
        Some(c) => c,
    };
    let parsed = match choice {
        Json::Str(s) => match s.as_ref() {
            "auto" => ToolChoice::Auto {
                disable_parallel_tool_use: None,
            },
            "none" => ToolChoice::None,
            "required" => ToolChoice::Any {
                disable_parallel_tool_use: None,
            },
            other => {
                return Err(invalid(
                    "tool_choice",
                    "invalid_value",
                    format!(
                        "tool_choice must be auto, none, required or a function; got {other:?}"
                    ),
                ))
            }
        },
        Json::Object(_) => {
            let name = choice
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Json::as_str)
                .ok_or_else(|| {
                    wrong_type("tool_choice", "tool_choice.function.name", "a string")
                })?;
            ToolChoice::Tool {
                name,
                disable_parallel_tool_use: None,
            }
        }
        _ => {
            return Err(wrong_type(
                "tool_choice",
                "tool_choice",
                "a string or an object",
            ))
        }
    };
    Ok(Some(parsed))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn error(body: &[u8]) -> GatewayError {
        chat_request_to_messages(body, &ClaudeOptions::default()).unwrap_err()
    }

    /// Deep nesting stops at serde_json's recursion limit (128) with a 400, wherever it is:
    /// the body, a value inside it, or a tool call's arguments string.
    #[test]
    fn deep_nesting_is_a_400_not_a_crash() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let e = error(deep(10_000).as_bytes());
        assert_eq!((e.status(), e.code, e.param), (400, "invalid_json", None));
        assert_eq!(
            e.message,
            "request body is not valid JSON: recursion limit exceeded at line 1 column 128"
        );

        let body = format!(r#"{{"model":"m","messages":{}}}"#, deep(10_000));
        let e = error(body.as_bytes());
        assert_eq!(
            e.message,
            "request body is not valid JSON: recursion limit exceeded at line 1 column 151"
        );

        let body = format!(
            r#"{{"model":"m","messages":[{{"role":"assistant","tool_calls":[{{"id":"a","function":{{"name":"f","arguments":"{}"}}}}]}}]}}"#,
            deep(10_000)
        );
        let e = error(body.as_bytes());
        assert_eq!(
            (e.status(), e.code, e.param),
            (400, "invalid_value", Some("messages"))
        );
        assert_eq!(
            e.message,
            "messages[0].tool_calls[0].function.arguments is not valid JSON: recursion limit exceeded at line 1 column 128"
        );
    }

    /// Key order and duplicates of passed-through objects are written as a JSON map holds
    /// them (sorted, last duplicate wins), as before the request was read borrowed.
    #[test]
    fn passed_through_objects_keep_their_encoding() {
        let body = br#"{"model":"m","model":"claude","messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral","ttl":"5m","type":"x"}}]},
            {"role":"assistant","tool_calls":[{"id":"call.1","function":{"name":"f","arguments":"{\"b\":1.0,\"a\":[2e1,-0],\"b\":\"\\u00e9\"}"}}]},
            {"role":"tool","tool_call_id":"call.1","content":"ok"}],
            "tools":[{"type":"function","function":{"name":"f","parameters":{"properties":{"q":{"type":"string"}},"additionalProperties":false}}},{"function":{"name":"g"}}]}"#;
        let out = chat_request_to_messages(body, &ClaudeOptions::default()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"{"model":"claude","max_tokens":4096,"messages":["#,
                r#"{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"ttl":"5m","type":"x"}}]},"#,
                r#"{"role":"assistant","content":[{"type":"tool_use","id":"call_1","name":"f","input":{"a":[20.0,-0.0],"b":"é"}}]},"#,
                r#"{"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":"ok"}]}],"#,
                r#""tools":[{"name":"f","input_schema":{"additionalProperties":false,"properties":{"q":{"type":"string"}},"type":"object"}},"#,
                r#"{"name":"g","input_schema":{"properties":{},"type":"object"}}]}"#
            )
        );
    }
}
