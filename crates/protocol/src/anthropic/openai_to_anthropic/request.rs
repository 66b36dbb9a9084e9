//! OpenAI chat-completions request -> Anthropic Messages request.

use super::super::input::{self, get, invalid, wrong_type, Object};
use super::super::types::{
    Message, MessagesRequest, Metadata, RequestBlock, Role, Source, Tool, ToolChoice,
    ToolResultContent,
};
use crate::error::{ErrorKind, GatewayError};
use serde_json::{json, Value};

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
/// Only fields Anthropic knows are written (it rejects unknown top-level fields); OpenAI-only
/// fields without an equivalent (`seed`, `logprobs`, penalties, `response_format`, …) are
/// dropped. Notable mappings:
/// - `system`/`developer` messages, wherever they are, become the top-level `system` blocks;
/// - consecutive turns of one role are merged, `tool` messages become `tool_result` blocks of
///   the user turn after the assistant turn, and tool results come first in that turn;
/// - `temperature` is clamped to Anthropic's 0..=1; if both `temperature` and `top_p` are set
///   only `temperature` is sent (current Claude models reject both together);
/// - `reasoning_effort` enables thinking with a budget from [`ClaudeOptions`]; `max_tokens` is
///   then raised to budget + requested tokens when it would not exceed the budget, and
///   `temperature`/`top_p` are dropped (thinking rejects them). A forced `tool_choice`
///   (`required` or a named function) wins over `reasoning_effort`: Anthropic rejects
///   thinking with forced tool use. So does a request that answers tool calls: Anthropic
///   would want the signed thinking block of the calling turn, which OpenAI clients drop.
///
/// Errors are 400s naming the field: invalid JSON, missing or empty `messages`, wrong types,
/// unknown roles, unparsable tool-call arguments, unsupported content parts, `n` > 1.
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
    crate::openai::check_request_fields(&req)?;
    let body_model = input::required_str(&req, "model")?;
    let model = model.unwrap_or(body_model).to_owned();

    if let Some(n) = input::opt_u64(&req, "n")? {
        if n != 1 {
            return Err(invalid(
                "n",
                "unsupported_value",
                "n must be 1: Claude returns one choice per request".into(),
            ));
        }
    }

    let (system, messages) = convert_messages(input::messages(&req)?)?;
    if messages.is_empty() {
        return Err(invalid(
            "messages",
            "invalid_value",
            "messages must contain at least one user or assistant message with content".into(),
        ));
    }

    let requested_max = match input::opt_u32(&req, "max_completion_tokens")? {
        Some(n) => Some(n),
        None => input::opt_u32(&req, "max_tokens")?,
    };
    let mut max_tokens = requested_max.unwrap_or(opts.default_max_tokens);

    let mut temperature = input::opt_f64(&req, "temperature")?.map(|t| t.clamp(0.0, 1.0));
    let mut top_p = input::opt_f64(&req, "top_p")?;
    if temperature.is_some() {
        top_p = None;
    }
    // Not an OpenAI field, but vLLM-style clients send it and Anthropic knows it.
    let mut top_k = input::opt_u64(&req, "top_k")?;

    let stop_sequences = input::string_or_strings(&req, "stop")?
        .into_iter()
        .filter(|s| !s.trim().is_empty())
        .collect();

    let tools = convert_tools(&req)?;
    let mut tool_choice = if tools.is_empty() {
        None
    } else {
        convert_tool_choice(&req)?
    };
    if !tools.is_empty() && input::opt_bool(&req, "parallel_tool_calls")? == Some(false) {
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
    let budget = match thinking_budget(&req, opts)? {
        Some(_) if forced || continues_tool_loop(&messages) => None,
        other => other,
    };
    let thinking = budget.map(|budget| {
        if max_tokens <= budget {
            max_tokens = budget.saturating_add(max_tokens.max(1));
        }
        temperature = None;
        top_p = None;
        top_k = None;
        json!({ "type": "enabled", "budget_tokens": budget })
    });

    let metadata = input::opt_str(&req, "user")?.map(|u| Metadata {
        user_id: u.to_owned(),
    });

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
        stream: input::opt_bool(&req, "stream")?,
    };
    serde_json::to_vec(&out).map_err(|e| {
        GatewayError::new(
            ErrorKind::Internal,
            "serialization_failed",
            format!("could not encode the Anthropic request: {e}"),
        )
    })
}

/// Whether the request answers tool calls (its last turn holds tool results). With thinking
/// enabled, Anthropic requires the assistant turn that made those calls to start with its
/// signed thinking block, which an OpenAI client never has; so such a request goes without
/// thinking.
fn continues_tool_loop(turns: &[Message]) -> bool {
    turns
        .last()
        .is_some_and(|t| t.role == Role::User && t.content.iter().any(RequestBlock::is_tool_result))
}

/// The thinking budget asked for by `reasoning_effort`, or by an Anthropic-style `thinking`
/// object (`{"type": "enabled", "budget_tokens": N}`) that some clients pass through.
fn thinking_budget(req: &Object, opts: &ClaudeOptions) -> Result<Option<u32>, GatewayError> {
    if let Some(thinking) = get(req, "thinking") {
        let enabled = thinking.get("type").and_then(Value::as_str) == Some("enabled");
        let budget = thinking.get("budget_tokens").and_then(Value::as_u64);
        return match (enabled, budget) {
            (true, Some(b)) => Ok(Some(
                u32::try_from(b)
                    .unwrap_or(u32::MAX)
                    .max(MIN_THINKING_BUDGET),
            )),
            (true, None) => Err(invalid(
                "thinking",
                "invalid_value",
                "thinking.budget_tokens must be a non-negative integer".into(),
            )),
            (false, _) => Ok(None),
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
    Ok(Some(budget.max(MIN_THINKING_BUDGET)))
}

/// System blocks and the merged user/assistant turns.
fn convert_messages(messages: &[Value]) -> Result<(Vec<RequestBlock>, Vec<Message>), GatewayError> {
    let mut system = Vec::new();
    let mut turns: Vec<Message> = Vec::new();
    for (i, msg) in messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        let msg = msg
            .as_object()
            .ok_or_else(|| wrong_type("messages", &path, "an object"))?;
        let role = match get(msg, "role") {
            Some(Value::String(r)) => r.as_str(),
            Some(_) => return Err(wrong_type("messages", &format!("{path}.role"), "a string")),
            None => {
                return Err(invalid(
                    "messages",
                    "missing_required_parameter",
                    format!("{path}.role is required"),
                ))
            }
        };
        let content = get(msg, "content");
        let cpath = format!("{path}.content");
        let (role, blocks) = match role {
            "system" | "developer" => {
                system.extend(text_parts(content, &cpath)?);
                continue;
            }
            "user" => (Role::User, user_parts(content, &cpath)?),
            "assistant" => (Role::Assistant, assistant_blocks(msg, &path)?),
            "tool" => (Role::User, vec![tool_result(msg, &path)?]),
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
        if turn.role == Role::User {
            let (mut results, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut turn.content)
                .into_iter()
                .partition(RequestBlock::is_tool_result);
            results.extend(rest);
            turn.content = results;
        }
    }
    Ok((system, turns))
}

fn text_block(text: &str, cache_control: Option<&Value>) -> Option<RequestBlock> {
    // Anthropic rejects empty and whitespace-only text blocks.
    (!text.trim().is_empty()).then(|| RequestBlock::Text {
        text: text.to_owned(),
        cache_control: cache_control.filter(|c| c.is_object()).cloned(),
    })
}

/// Content that may only hold text: a string or an array of `text` parts.
fn text_parts(content: Option<&Value>, path: &str) -> Result<Vec<RequestBlock>, GatewayError> {
    match content {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(text_block(s, None).into_iter().collect()),
        Some(Value::Array(parts)) => {
            let mut out = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let ppath = format!("{path}[{j}]");
                match part_type(part, &ppath)? {
                    "text" => out.extend(text_block(
                        part_str(part, "text", &ppath)?,
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
            Ok(out)
        }
        Some(_) => Err(wrong_type(
            "messages",
            path,
            "a string or an array of parts",
        )),
    }
}

/// User content: text, images (`image_url`) and PDF files (`file` with `file_data`).
fn user_parts(content: Option<&Value>, path: &str) -> Result<Vec<RequestBlock>, GatewayError> {
    let parts = match content {
        Some(Value::Array(parts)) => parts,
        other => return text_parts(other, path),
    };
    let mut out = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let ppath = format!("{path}[{j}]");
        match part_type(part, &ppath)? {
            "text" => out.extend(text_block(
                part_str(part, "text", &ppath)?,
                part.get("cache_control"),
            )),
            "image_url" => {
                let url = match part.get("image_url") {
                    Some(Value::String(u)) => u.as_str(),
                    Some(obj) => obj.get("url").and_then(Value::as_str).ok_or_else(|| {
                        wrong_type("messages", &format!("{ppath}.image_url.url"), "a string")
                    })?,
                    None => {
                        return Err(invalid(
                            "messages",
                            "missing_required_parameter",
                            format!("{ppath}.image_url is required"),
                        ))
                    }
                };
                out.push(RequestBlock::Image {
                    source: image_source(url, &format!("{ppath}.image_url.url"))?,
                });
            }
            "file" => {
                let fpath = format!("{ppath}.file.file_data");
                let data = part
                    .pointer("/file/file_data")
                    .and_then(Value::as_str)
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
                out.push(RequestBlock::Document {
                    source: Source::Base64 {
                        media_type: media_type.to_owned(),
                        data: data.to_owned(),
                    },
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

fn image_source(url: &str, path: &str) -> Result<Source, GatewayError> {
    if url.starts_with("data:") {
        let (media_type, data) = input::parse_data_url(url).ok_or_else(|| {
            invalid(
                "messages",
                "invalid_value",
                format!("{path} must be a base64 data URL (data:<type>;base64,...)"),
            )
        })?;
        return Ok(Source::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        });
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(Source::Url {
            url: url.to_owned(),
        });
    }
    Err(invalid(
        "messages",
        "invalid_value",
        format!("{path} must be an http(s) URL or a data URL"),
    ))
}

fn part_type<'a>(part: &'a Value, path: &str) -> Result<&'a str, GatewayError> {
    part.get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| wrong_type("messages", &format!("{path}.type"), "a string"))
}

fn part_str<'a>(part: &'a Value, key: &str, path: &str) -> Result<&'a str, GatewayError> {
    part.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| wrong_type("messages", &format!("{path}.{key}"), "a string"))
}

/// An assistant message: its text (refusals included) and its tool calls as `tool_use`.
fn assistant_blocks(msg: &Object, path: &str) -> Result<Vec<RequestBlock>, GatewayError> {
    let cpath = format!("{path}.content");
    let mut out = match get(msg, "content") {
        Some(Value::Array(parts)) => {
            let mut out = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let ppath = format!("{cpath}[{j}]");
                let key = match part_type(part, &ppath)? {
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
                    part_str(part, key, &ppath)?,
                    part.get("cache_control"),
                ));
            }
            out
        }
        other => text_parts(other, &cpath)?,
    };
    let calls = match get(msg, "tool_calls") {
        None => return Ok(out),
        Some(Value::Array(calls)) => calls,
        Some(_) => {
            return Err(wrong_type(
                "messages",
                &format!("{path}.tool_calls"),
                "an array",
            ))
        }
    };
    for (k, call) in calls.iter().enumerate() {
        let tpath = format!("{path}.tool_calls[{k}]");
        if let Some(t) = call.get("type").and_then(Value::as_str) {
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
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| wrong_type("messages", &format!("{tpath}.id"), "a non-empty string"))?;
        let name = call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .ok_or_else(|| wrong_type("messages", &format!("{tpath}.function.name"), "a string"))?;
        let apath = format!("{tpath}.function.arguments");
        let input = match call.pointer("/function/arguments") {
            None | Some(Value::Null) => json!({}),
            Some(Value::String(s)) if s.trim().is_empty() => json!({}),
            Some(Value::String(s)) => serde_json::from_str::<Value>(s).map_err(|e| {
                invalid(
                    "messages",
                    "invalid_value",
                    format!("{apath} is not valid JSON: {e}"),
                )
            })?,
            Some(_) => return Err(wrong_type("messages", &apath, "a JSON string")),
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
            name: name.to_owned(),
            input,
        });
    }
    Ok(out)
}

/// A `tool` message as a `tool_result` block.
fn tool_result(msg: &Object, path: &str) -> Result<RequestBlock, GatewayError> {
    let id = match get(msg, "tool_call_id") {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => {
            return Err(wrong_type(
                "messages",
                &format!("{path}.tool_call_id"),
                "a non-empty string",
            ))
        }
    };
    let cpath = format!("{path}.content");
    let content = match get(msg, "content") {
        None => ToolResultContent::Text(String::new()),
        Some(Value::String(s)) => ToolResultContent::Text(s.clone()),
        Some(array @ Value::Array(_)) => {
            ToolResultContent::Blocks(user_parts(Some(array), &cpath)?)
        }
        Some(_) => {
            return Err(wrong_type(
                "messages",
                &cpath,
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
fn tool_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn convert_tools(req: &Object) -> Result<Vec<Tool>, GatewayError> {
    let tools = match get(req, "tools") {
        None => return Ok(Vec::new()),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(wrong_type("tools", "tools", "an array")),
    };
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let path = format!("tools[{i}]");
        match tool.get("type").and_then(Value::as_str) {
            Some("function") | None => {}
            Some(other) => {
                return Err(invalid(
                    "tools",
                    "unsupported_value",
                    format!("{path}.type must be function; got {other:?}"),
                ))
            }
        }
        let name = tool
            .pointer("/function/name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                wrong_type(
                    "tools",
                    &format!("{path}.function.name"),
                    "a non-empty string",
                )
            })?;
        let description = match tool.pointer("/function/description") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(wrong_type(
                    "tools",
                    &format!("{path}.function.description"),
                    "a string",
                ))
            }
        };
        let input_schema = match tool.pointer("/function/parameters") {
            None | Some(Value::Null) => json!({ "type": "object", "properties": {} }),
            Some(Value::Object(schema)) => {
                let mut schema = schema.clone();
                // Anthropic requires `type: object`; `{}` is a common way to say "no arguments".
                schema
                    .entry("type")
                    .or_insert_with(|| Value::String("object".into()));
                Value::Object(schema)
            }
            Some(_) => {
                return Err(wrong_type(
                    "tools",
                    &format!("{path}.function.parameters"),
                    "a JSON schema object",
                ))
            }
        };
        out.push(Tool {
            name: name.to_owned(),
            description,
            input_schema,
        });
    }
    Ok(out)
}

fn convert_tool_choice(req: &Object) -> Result<Option<ToolChoice>, GatewayError> {
    let choice = match get(req, "tool_choice") {
        None => return Ok(None),
        Some(c) => c,
    };
    let parsed = match choice {
        Value::String(s) => match s.as_str() {
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
        Value::Object(_) => {
            let name = choice
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    wrong_type("tool_choice", "tool_choice.function.name", "a string")
                })?;
            ToolChoice::Tool {
                name: name.to_owned(),
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
