//! Anthropic Messages request -> OpenAI chat-completions request.

use super::super::input::{self, get, invalid, wrong_type, Json, Object};
use crate::error::GatewayError;
use crate::fields::{VendorFamily, MESSAGES_FIELDS};
use serde_json::{json, Map, Value};

/// The vendor a converted chat request is for: what becomes of the Anthropic-only fields
/// depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatTarget {
    /// An OpenAI-compatible vendor: `thinking` becomes `reasoning_effort`.
    OpenAiCompatible,
    /// The chat request is converted on to Gemini (`chat_request_to_gemini`), which reads the
    /// Anthropic-style `thinking` object itself, keeping the exact budget.
    Gemini,
    /// The chat request is converted on to Bedrock Converse (`chat_request_to_converse`),
    /// which also takes the Anthropic-style `thinking` object as is.
    Bedrock,
}

impl ChatTarget {
    fn family(self) -> VendorFamily {
        match self {
            ChatTarget::OpenAiCompatible => VendorFamily::OpenAi,
            ChatTarget::Gemini => VendorFamily::Gemini,
            ChatTarget::Bedrock => VendorFamily::Bedrock,
        }
    }
}

/// Translate an Anthropic Messages request body to an OpenAI chat-completions request body,
/// for a vendor that only speaks OpenAI's API.
///
/// - `system` (string or text blocks) becomes one leading system message, blocks joined by a
///   blank line.
/// - User turns: `tool_result` blocks become `tool` messages placed first (OpenAI wants them
///   right after the assistant's tool calls); images in tool results, which a `tool` message
///   cannot carry, move to the user message that follows. Text-only content is sent as one
///   string (text blocks joined by `\n`), since several OpenAI-compatible servers accept
///   only strings; otherwise as parts (`text`, `image_url`, `file` for PDFs).
/// - Assistant turns: text -> `content`, `tool_use` -> `tool_calls` (input serialized as the
///   `arguments` string); `thinking` blocks are left out (their signatures mean nothing to
///   another vendor). `search_result` blocks become text, a `tool_result`'s `is_error` an
///   `Error: ` prefix. Every content block type follows its nested rule in
///   [`MESSAGES_FIELDS`]: server-tool blocks and unknown types are 400s naming their path.
/// - `tools` with an `input_schema` become functions; Anthropic server tools (web search,
///   bash, …) have no OpenAI equivalent and are refused. `tool_choice` maps to
///   auto/required/none/named function, `disable_parallel_tool_use` to
///   `parallel_tool_calls: false`.
/// - `max_tokens`, `stop_sequences` -> `stop`, `temperature`, `top_p`, `top_k`,
///   `metadata.user_id` -> `user`; `stream: true` also asks for
///   `stream_options.include_usage` so the stream can report output tokens.
/// - `output_config.format` (and the deprecated `output_format`) -> `response_format`
///   `json_schema` (strict); `output_config.effort` -> `reasoning_effort`; `thinking` ->
///   `reasoning_effort` by budget (see [`ChatTarget`]); `service_tier` `standard_only` ->
///   `default`.
///
/// Every top-level field follows its rule in [`MESSAGES_FIELDS`] (OpenAI-compatible column):
/// Anthropic-only features (`container`, `mcp_servers`, server tools, …) and unknown fields
/// are 400s naming them. Errors are 400s naming the field.
pub fn messages_request_to_chat(body: &[u8]) -> Result<Vec<u8>, GatewayError> {
    messages_request_to_chat_for(body, ChatTarget::OpenAiCompatible)
}

/// [`messages_request_to_chat`] for a given target: for [`ChatTarget::Gemini`] the fields are
/// checked against the Gemini column and `thinking` stays an Anthropic-style object in the
/// chat body, for `chat_request_to_gemini` to map exactly.
pub fn messages_request_to_chat_for(
    body: &[u8],
    target: ChatTarget,
) -> Result<Vec<u8>, GatewayError> {
    let req = input::parse_object(body)?;
    MESSAGES_FIELDS.check(&req, target.family())?;
    crate::fields::check_messages_nested(&req, target.family())?;
    let mut out = Map::new();
    out.insert(
        "model".into(),
        Value::String(input::required_str(&req, "model")?.to_owned()),
    );

    let mut messages = Vec::new();
    if let Some(system) = system_text(&req)? {
        messages.push(json!({ "role": "system", "content": system }));
    }
    let family = target.family();
    for (i, msg) in input::messages(&req)?.iter().enumerate() {
        convert_message(msg, i, family, &mut messages)?;
    }
    out.insert("messages".into(), Value::Array(messages));

    if let Some(n) = input::opt_u32(&req, "max_tokens")? {
        out.insert("max_tokens".into(), n.into());
    }
    let stop = input::string_or_strings(&req, "stop_sequences")?;
    if !stop.is_empty() {
        out.insert("stop".into(), stop.into());
    }
    if let Some(t) = input::opt_f64(&req, "temperature")? {
        out.insert("temperature".into(), t.into());
    }
    if let Some(p) = input::opt_f64(&req, "top_p")? {
        out.insert("top_p".into(), p.into());
    }
    if let Some(k) = input::opt_u64(&req, "top_k")? {
        out.insert("top_k".into(), k.into());
    }
    reasoning_and_format(&req, target, &mut out)?;
    if let Some(tier) = input::opt_str(&req, "service_tier")? {
        // Gemini's column refuses other tiers and has no tier field: nothing to send.
        if target == ChatTarget::OpenAiCompatible {
            let mapped = match tier {
                "auto" => "auto",
                "standard_only" => "default",
                other => {
                    return Err(invalid(
                        "service_tier",
                        "invalid_value",
                        format!("service_tier must be auto or standard_only; got {other:?}"),
                    ))
                }
            };
            out.insert("service_tier".into(), mapped.into());
        }
    }
    if let Some(user) = get(&req, "metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Json::as_str)
    {
        out.insert("user".into(), user.into());
    }

    let tools = convert_tools(&req)?;
    if !tools.is_empty() {
        let (choice, parallel) = convert_tool_choice(&req)?;
        out.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = choice {
            out.insert("tool_choice".into(), choice);
        }
        if parallel == Some(false) {
            if target != ChatTarget::OpenAiCompatible {
                return Err(invalid(
                    "tool_choice",
                    "unsupported_value",
                    format!(
                        "tool_choice.disable_parallel_tool_use cannot be honoured by {} \
                         providers, which have no way to turn parallel tool calls off",
                        family.name()
                    ),
                ));
            }
            out.insert("parallel_tool_calls".into(), false.into());
        }
    }

    if input::opt_bool(&req, "stream")? == Some(true) {
        out.insert("stream".into(), true.into());
        out.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    Ok(Value::Object(out).to_string().into_bytes())
}

/// The `reasoning_effort` level a Claude thinking budget stands for, for vendors that take
/// levels rather than budgets: below 4096 `low`, below 16384 `medium`, else `high`.
pub(crate) fn effort_for_budget(budget: u64) -> &'static str {
    if budget < 4096 {
        "low"
    } else if budget < 16384 {
        "medium"
    } else {
        "high"
    }
}

/// `thinking`, `output_config` and `output_format` -> `reasoning_effort`, `response_format`
/// (and, for Gemini, `thinking` as is).
fn reasoning_and_format(
    req: &Object<'_>,
    target: ChatTarget,
    out: &mut Map<String, Value>,
) -> Result<(), GatewayError> {
    let mut effort = None;
    if let Some(thinking) = get(req, "thinking") {
        let kind = thinking.get("type").and_then(Json::as_str);
        let budget = thinking.get("budget_tokens").and_then(Json::as_u64);
        effort = match (kind, budget) {
            (Some("enabled"), Some(b)) => Some(effort_for_budget(b)),
            (Some("enabled"), None) => {
                return Err(wrong_type(
                    "thinking",
                    "thinking.budget_tokens",
                    "a non-negative integer",
                ))
            }
            // The vendor's default applies.
            (Some("disabled" | "adaptive"), _) => None,
            _ => {
                return Err(invalid(
                    "thinking",
                    "invalid_value",
                    "thinking.type must be enabled, disabled or adaptive".into(),
                ))
            }
        };
        if target != ChatTarget::OpenAiCompatible {
            out.insert("thinking".into(), thinking.to_value());
            effort = None;
        }
    }

    let mut format = get(req, "output_format");
    if let Some(config) = get(req, "output_config") {
        let config = config
            .as_object()
            .ok_or_else(|| wrong_type("output_config", "output_config", "an object"))?;
        for (key, value) in config {
            match key.as_ref() {
                _ if value.is_null() => {}
                "format" if format.is_some() => {
                    return Err(invalid(
                        "output_config",
                        "invalid_value",
                        "send output_config.format or the deprecated output_format, not both"
                            .into(),
                    ))
                }
                "format" => format = Some(value),
                "effort" => {
                    effort = Some(match value.as_str() {
                        Some(e @ ("low" | "medium" | "high" | "xhigh")) => e,
                        Some("max") => "xhigh",
                        _ => {
                            return Err(invalid(
                                "output_config",
                                "invalid_value",
                                "output_config.effort must be low, medium, high, xhigh or max"
                                    .into(),
                            ))
                        }
                    })
                }
                other => {
                    return Err(invalid(
                        "output_config",
                        "unsupported_parameter",
                        format!("output_config.{other} cannot be sent to this provider"),
                    ))
                }
            }
        }
    }
    if let Some(effort) = effort {
        out.insert("reasoning_effort".into(), effort.into());
    }
    if let Some(format) = format {
        let param = if get(req, "output_format").is_some() {
            "output_format"
        } else {
            "output_config"
        };
        let schema = match (
            format.get("type").and_then(Json::as_str),
            format.get("schema"),
        ) {
            (Some("json_schema"), Some(schema)) if schema.is_object() => schema.to_value(),
            _ => {
                return Err(invalid(
                    param,
                    "invalid_value",
                    format!(
                        "{param} format must be {{\"type\": \"json_schema\", \"schema\": {{...}}}}"
                    ),
                ))
            }
        };
        out.insert(
            "response_format".into(),
            json!({
                "type": "json_schema",
                "json_schema": { "name": "response", "schema": schema, "strict": true },
            }),
        );
    }
    Ok(())
}

fn system_text(req: &Object<'_>) -> Result<Option<String>, GatewayError> {
    let text = match get(req, "system") {
        None => return Ok(None),
        Some(Json::Str(s)) => s.to_string(),
        Some(Json::Array(blocks)) => {
            let mut texts = Vec::new();
            for (i, block) in blocks.iter().enumerate() {
                let path = format!("system[{i}]");
                if block.get("type").and_then(Json::as_str) != Some("text") {
                    return Err(invalid(
                        "system",
                        "invalid_value",
                        format!("{path}.type must be text"),
                    ));
                }
                texts.push(block_str(block, "text", "system", &path)?);
            }
            texts.join("\n\n")
        }
        Some(_) => {
            return Err(wrong_type(
                "system",
                "system",
                "a string or an array of text blocks",
            ))
        }
    };
    Ok((!text.is_empty()).then_some(text))
}

fn block_str<'a>(
    block: &'a Json<'_>,
    key: &str,
    param: &'static str,
    path: &str,
) -> Result<&'a str, GatewayError> {
    block
        .get(key)
        .and_then(Json::as_str)
        .ok_or_else(|| wrong_type(param, format_args!("{path}.{key}"), "a string"))
}

/// Append the OpenAI message(s) for Anthropic message `i` to `out`.
fn convert_message(
    msg: &Json<'_>,
    i: usize,
    family: VendorFamily,
    out: &mut Vec<Value>,
) -> Result<(), GatewayError> {
    let path = format!("messages[{i}]");
    let msg = msg
        .as_object()
        .ok_or_else(|| wrong_type("messages", &path, "an object"))?;
    let role = match get(msg, "role") {
        Some(Json::Str(r)) if r == "user" || r == "assistant" => r.as_ref(),
        Some(Json::Str(r)) => {
            return Err(invalid(
                "messages",
                "invalid_value",
                format!("{path}.role must be user or assistant; got {r:?}"),
            ))
        }
        Some(_) => {
            return Err(wrong_type(
                "messages",
                format_args!("{path}.role"),
                "a string",
            ))
        }
        None => {
            return Err(invalid(
                "messages",
                "missing_required_parameter",
                format!("{path}.role is required"),
            ))
        }
    };
    let cpath = format!("{path}.content");
    let blocks = match get(msg, "content") {
        Some(Json::Str(s)) => {
            out.push(json!({ "role": role, "content": s.as_ref() }));
            return Ok(());
        }
        Some(Json::Array(blocks)) => blocks,
        Some(_) => {
            return Err(wrong_type(
                "messages",
                &cpath,
                "a string or an array of content blocks",
            ))
        }
        None => {
            return Err(invalid(
                "messages",
                "missing_required_parameter",
                format!("{cpath} is required"),
            ))
        }
    };
    if role == "assistant" {
        out.extend(assistant_message(blocks, &cpath, family)?);
        return Ok(());
    }

    let mut parts = Vec::new();
    let mut tool_images = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let bpath = format!("{cpath}[{j}]");
        match block_type(block, &bpath)? {
            "tool_result" => {
                let id = block_str(block, "tool_use_id", "messages", &bpath)?;
                let mut content = tool_result_content(block, &bpath, family, &mut tool_images)?;
                if let Some(flag) = block.get("is_error").filter(|f| !f.is_null()) {
                    let at = format!("{bpath}.is_error");
                    let path = "messages[].content[].is_error";
                    let on = flag
                        .as_bool()
                        .ok_or_else(|| wrong_type("messages", &at, "a boolean"))?;
                    if on && MESSAGES_FIELDS.check_nested(path, &at, flag, family, "messages")? {
                        // Chat tool messages have no error flag: the text says it.
                        content = format!("Error: {content}");
                    }
                }
                out.push(json!({ "role": "tool", "tool_call_id": id, "content": content }));
            }
            _ => parts.extend(user_part(block, &bpath, family)?),
        }
    }
    tool_images.extend(parts);
    if let Some(content) = user_content(tool_images) {
        out.push(json!({ "role": "user", "content": content }));
    }
    Ok(())
}

fn block_type<'a>(block: &'a Json<'_>, path: &str) -> Result<&'a str, GatewayError> {
    block
        .get("type")
        .and_then(Json::as_str)
        .ok_or_else(|| wrong_type("messages", format_args!("{path}.type"), "a string"))
}

/// One user content block as OpenAI content parts (a document with `context` is two); none
/// for block types the field table ignores (others it does not convert are 400s).
fn user_part(
    block: &Json<'_>,
    path: &str,
    family: VendorFamily,
) -> Result<Vec<Value>, GatewayError> {
    let part = match block_type(block, path)? {
        "text" => json!({ "type": "text", "text": block_str(block, "text", "messages", path)? }),
        "image" => {
            let url = match source(block, path)? {
                Source::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
                Source::Url(url) => url.to_owned(),
                Source::Text(_) => {
                    return Err(invalid(
                        "messages",
                        "unsupported_value",
                        format!("{path}.source.type must be base64 or url for an image"),
                    ))
                }
            };
            json!({ "type": "image_url", "image_url": { "url": url } })
        }
        "document" => {
            check_citations(block, path, family)?;
            let document = match source(block, path)? {
                Source::Base64 { media_type, data } => json!({
                    "type": "file",
                    "file": {
                        "filename": document_filename(block, media_type),
                        "file_data": format!("data:{media_type};base64,{data}"),
                    },
                }),
                Source::Text(text) => match block.get("title").and_then(Json::as_str) {
                    Some(title) if !title.is_empty() => {
                        json!({ "type": "text", "text": format!("{title}\n\n{text}") })
                    }
                    _ => json!({ "type": "text", "text": text }),
                },
                Source::Url(_) => {
                    return Err(invalid(
                        "messages",
                        "unsupported_value",
                        format!(
                    "{path}: documents by URL cannot be sent to this provider; send them inline"
                ),
                    ))
                }
            };
            // Text the model reads beside the document: a text part after it.
            let context = match block.get("context") {
                None | Some(Json::Null) => None,
                Some(Json::Str(c)) => (!c.is_empty()).then(|| c.to_string()),
                Some(_) => {
                    return Err(wrong_type(
                        "messages",
                        format_args!("{path}.context"),
                        "a string",
                    ))
                }
            };
            if let Some(context) = context {
                return Ok(vec![document, json!({ "type": "text", "text": context })]);
            }
            document
        }
        "search_result" => {
            check_citations(block, path, family)?;
            json!({ "type": "text", "text": search_result_text(block, path)? })
        }
        other => return unconverted_block(block, other, path, "user", family).map(|()| Vec::new()),
    };
    Ok(vec![part])
}

/// A block type this turn does not convert: `Ok` where the field table ignores it, else a
/// 400 naming it (`messages[2].content[0].type: "server_tool_use"`).
fn unconverted_block(
    block: &Json<'_>,
    kind: &str,
    path: &str,
    role: &str,
    family: VendorFamily,
) -> Result<(), GatewayError> {
    let at = format!("{path}.type");
    let rule = format!("messages[].content[].type:{kind}");
    let value = block.get("type").unwrap_or(&Json::Null);
    if MESSAGES_FIELDS.check_nested(&rule, &at, value, family, "messages")? {
        // A type the gateway converts, in a turn where Anthropic does not accept it either.
        return Err(invalid(
            "messages",
            "invalid_value",
            format!("{at}: {kind:?} blocks are not accepted in {role} turns"),
        ));
    }
    Ok(())
}

/// `citations.enabled: true` on a document or search result asks for cited answers.
fn check_citations(block: &Json<'_>, path: &str, family: VendorFamily) -> Result<(), GatewayError> {
    if let Some(enabled) = block.get("citations").and_then(|c| c.get("enabled")) {
        let rule = "messages[].content[].citations.enabled";
        let at = format!("{path}.citations.enabled");
        MESSAGES_FIELDS.check_nested(rule, &at, enabled, family, "messages")?;
    }
    Ok(())
}

/// A search result as the text a chat model reads: title, source, then its text blocks.
fn search_result_text(block: &Json<'_>, path: &str) -> Result<String, GatewayError> {
    let title = block_str(block, "title", "messages", path)?;
    let source = block_str(block, "source", "messages", path)?;
    let cpath = format!("{path}.content");
    let items = block
        .get("content")
        .and_then(Json::as_array)
        .ok_or_else(|| wrong_type("messages", &cpath, "an array of text blocks"))?;
    let mut text = format!("{title}\n{source}\n");
    for (k, item) in items.iter().enumerate() {
        let ipath = format!("{cpath}[{k}]");
        if item.get("type").and_then(Json::as_str) != Some("text") {
            return Err(invalid(
                "messages",
                "invalid_value",
                format!("{ipath}.type must be text"),
            ));
        }
        text.push('\n');
        text.push_str(block_str(item, "text", "messages", &ipath)?);
    }
    // A blank line before what follows it in the same message.
    text.push('\n');
    Ok(text)
}

enum Source<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url(&'a str),
    Text(&'a str),
}

fn source<'a>(block: &'a Json<'_>, path: &str) -> Result<Source<'a>, GatewayError> {
    let spath = format!("{path}.source");
    let src = block
        .get("source")
        .filter(|s| s.is_object())
        .ok_or_else(|| wrong_type("messages", &spath, "an object"))?;
    match src.get("type").and_then(Json::as_str) {
        Some("base64") => Ok(Source::Base64 {
            media_type: block_str(src, "media_type", "messages", &spath)?,
            data: block_str(src, "data", "messages", &spath)?,
        }),
        Some("url") => Ok(Source::Url(block_str(src, "url", "messages", &spath)?)),
        Some("text") => Ok(Source::Text(block_str(src, "data", "messages", &spath)?)),
        _ => Err(invalid(
            "messages",
            "unsupported_value",
            format!("{spath}.type must be base64, url or text (file ids cannot be sent to this provider)"),
        )),
    }
}

fn document_filename(block: &Json<'_>, media_type: &str) -> String {
    match block.get("title").and_then(Json::as_str) {
        Some(title) if !title.is_empty() => title.to_owned(),
        _ if media_type == "application/pdf" => "document.pdf".into(),
        _ => "document".into(),
    }
}

/// A `tool_result`'s content as the `tool` message's string; its images go to `images`.
fn tool_result_content(
    block: &Json<'_>,
    path: &str,
    family: VendorFamily,
    images: &mut Vec<Value>,
) -> Result<String, GatewayError> {
    match block.get("content") {
        None | Some(Json::Null) => Ok(String::new()),
        Some(Json::Str(s)) => Ok(s.to_string()),
        Some(Json::Array(items)) => {
            let mut texts = Vec::new();
            for (k, item) in items.iter().enumerate() {
                for part in user_part(item, &format!("{path}.content[{k}]"), family)? {
                    if part["type"] == "text" {
                        texts.push(part["text"].as_str().unwrap_or_default().to_owned());
                    } else {
                        images.push(part);
                    }
                }
            }
            Ok(texts.join("\n"))
        }
        Some(_) => Err(wrong_type(
            "messages",
            format_args!("{path}.content"),
            "a string or an array of content blocks",
        )),
    }
}

/// User content parts as OpenAI content: one string when it is all text, else the parts.
fn user_content(parts: Vec<Value>) -> Option<Value> {
    if parts.is_empty() {
        return None;
    }
    if parts.iter().all(|p| p["type"] == "text") {
        let texts: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
        return Some(Value::String(texts.join("\n")));
    }
    Some(Value::Array(parts))
}

fn assistant_message(
    blocks: &[Json<'_>],
    path: &str,
    family: VendorFamily,
) -> Result<Option<Value>, GatewayError> {
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let bpath = format!("{path}[{j}]");
        match block_type(block, &bpath)? {
            "text" => texts.push(block_str(block, "text", "messages", &bpath)?),
            "tool_use" => {
                let id = block_str(block, "id", "messages", &bpath)?;
                let name = block_str(block, "name", "messages", &bpath)?;
                let arguments = match block.get("input") {
                    None | Some(Json::Null) => "{}".to_owned(),
                    Some(input) => input.to_json_string(),
                };
                calls.push(json!({
                    "id": id,
                    "type": "function",
                    "function": { "name": name, "arguments": arguments },
                }));
            }
            other => unconverted_block(block, other, &bpath, "assistant", family)?,
        }
    }
    if texts.is_empty() && calls.is_empty() {
        return Ok(None);
    }
    let mut msg = json!({
        "role": "assistant",
        "content": if texts.is_empty() { Value::Null } else { Value::String(texts.join("\n")) },
    });
    if !calls.is_empty() {
        msg["tool_calls"] = Value::Array(calls);
    }
    Ok(Some(msg))
}

fn convert_tools(req: &Object<'_>) -> Result<Vec<Value>, GatewayError> {
    let tools = match get(req, "tools") {
        None => return Ok(Vec::new()),
        Some(Json::Array(tools)) => tools,
        Some(_) => return Err(wrong_type("tools", "tools", "an array")),
    };
    let mut out = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let path = format!("tools[{i}]");
        let Some(schema) = tool.get("input_schema") else {
            // A server tool (web_search_*, code_execution_*, …): Anthropic runs it.
            let kind = tool.get("type").and_then(Json::as_str).unwrap_or("unknown");
            return Err(invalid(
                "tools",
                "unsupported_value",
                format!("{path}: server tool {kind:?} runs only at Anthropic and cannot be sent to this provider"),
            ));
        };
        let name = block_str(tool, "name", "tools", &path)?;
        let mut function = json!({ "name": name, "parameters": schema.to_value() });
        match tool.get("description") {
            None | Some(Json::Null) => {}
            Some(Json::Str(d)) => function["description"] = Value::String(d.to_string()),
            Some(_) => {
                return Err(wrong_type(
                    "tools",
                    format_args!("{path}.description"),
                    "a string",
                ))
            }
        }
        match tool.get("strict") {
            None | Some(Json::Null) => {}
            Some(Json::Bool(b)) => function["strict"] = Value::Bool(*b),
            Some(_) => {
                return Err(wrong_type(
                    "tools",
                    format_args!("{path}.strict"),
                    "a boolean",
                ))
            }
        }
        out.push(json!({ "type": "function", "function": function }));
    }
    Ok(out)
}

/// OpenAI's `tool_choice` and `parallel_tool_calls` for Anthropic's `tool_choice`.
fn convert_tool_choice(req: &Object<'_>) -> Result<(Option<Value>, Option<bool>), GatewayError> {
    let Some(choice) = get(req, "tool_choice") else {
        return Ok((None, None));
    };
    let parallel = choice
        .get("disable_parallel_tool_use")
        .and_then(Json::as_bool)
        .map(|disabled| !disabled);
    let mapped = match choice.get("type").and_then(Json::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = block_str(choice, "name", "tool_choice", "tool_choice")?;
            json!({ "type": "function", "function": { "name": name } })
        }
        _ => {
            return Err(invalid(
                "tool_choice",
                "invalid_value",
                "tool_choice.type must be auto, any, tool or none".into(),
            ))
        }
    };
    Ok((Some(mapped), parallel))
}
