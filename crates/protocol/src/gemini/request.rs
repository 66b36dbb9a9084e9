//! OpenAI chat-completions request -> Gemini `generateContent` request body.
//!
//! Roles: `system`/`developer` -> `systemInstruction`; `user` -> `user`; `assistant` ->
//! `model`; `tool` (and legacy `function`) -> `functionResponse` parts in a `user` turn.
//! Consecutive turns of one role are merged, so parallel tool results land in one turn.
//! Every top-level field follows its rule in [`CHAT_FIELDS`] (Gemini column): fields without
//! an equivalent (`logprobs: true`, `store: true`, `parallel_tool_calls: false`, ...) and
//! fields the table does not know are 400s naming them; only hints that cannot change the
//! answer (`user`, `metadata`, `prompt_cache_key`) are not sent. Nested rules too: a
//! participant `name` is a 400 naming `messages[i].name`; a `strict` function tool turns
//! function calling to `VALIDATED` (schema-constrained) where it would be `AUTO`. A field with
//! a wrong type is a 400 naming it.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::schema::{function_parameters, to_gemini_schema};
use super::types::{
    Blob, Content, FileData, FunctionCall, FunctionCallingConfig, FunctionDeclaration,
    FunctionResponse, GenerateContentRequest, GenerationConfig, Part, SafetySetting,
    ThinkingConfig, Tool, ToolConfig,
};
use super::GeminiOptions;
use crate::borrowed_json::{lookup, Json, Object};
use crate::error::{ErrorKind, GatewayError};
use crate::fields::{VendorFamily, CHAT_FIELDS};

/// Google's documented placeholder for a function call whose thought signature is unknown
/// (history from another model, or a client that dropped `extra_content`). Gemini 3 rejects a
/// model turn whose first function call has no signature at all.
pub(crate) const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

/// Convert an OpenAI chat-completions request body to a Gemini `generateContent` body.
///
/// The model and `stream` flag are not part of the body (they select the URL, see
/// [`super::model_path`]). `opts` carries the provider config: safety settings, and a
/// default thinking budget used when the request has no `reasoning_effort`.
pub fn chat_request_to_gemini(body: &[u8], opts: &GeminiOptions) -> Result<Vec<u8>, GatewayError> {
    let req = Json::from_slice(body).map_err(|e| {
        GatewayError::invalid(
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    let obj = req.as_object().ok_or_else(|| {
        GatewayError::invalid("invalid_json", "request body must be a JSON object")
    })?;
    crate::openai::check_request_fields_of(obj)?;
    CHAT_FIELDS.check(obj, VendorFamily::Gemini)?;
    crate::fields::check_chat_nested(obj, VendorFamily::Gemini)?;

    let (system_instruction, contents) = convert_messages(obj)?;
    let (tools, tool_config) = convert_tools(obj)?;
    let generation_config = generation_config(obj, opts)?;
    let out = GenerateContentRequest {
        contents,
        system_instruction,
        tools,
        tool_config,
        safety_settings: safety_settings(opts)?,
        generation_config: (!generation_config.is_empty()).then_some(generation_config),
    };
    serde_json::to_vec(&out).map_err(|e| {
        GatewayError::new(
            ErrorKind::Internal,
            "serialization_failed",
            format!("could not serialize the Gemini request: {e}"),
        )
    })
}

fn bad(param: &'static str, message: impl Into<String>) -> GatewayError {
    GatewayError::invalid("invalid_value", message).with_param(param)
}

fn is_absent(v: Option<&Json<'_>>) -> bool {
    matches!(v, None | Some(Json::Null))
}

// ---------------------------------------------------------------------------------------------
// messages

fn convert_messages(obj: &Object<'_>) -> Result<(Option<Content>, Vec<Content>), GatewayError> {
    let messages = lookup(obj, "messages")
        .and_then(Json::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            GatewayError::invalid(
                "missing_required_parameter",
                "messages must be a non-empty array",
            )
            .with_param("messages")
        })?;

    // Gemini's functionResponse needs the function name; OpenAI's tool message only has the
    // call id, so collect id -> name from every assistant turn first.
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    for m in messages {
        if let Some(calls) = m.get("tool_calls").and_then(Json::as_array) {
            for c in calls {
                if let (Some(id), Some(name)) = (
                    c.get("id").and_then(Json::as_str),
                    c.get("function")
                        .and_then(|f| f.get("name"))
                        .and_then(Json::as_str),
                ) {
                    call_names.insert(id, name);
                }
            }
        }
    }

    let mut system: Vec<Part> = Vec::new();
    let mut contents: Vec<Content> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m
            .get("role")
            .and_then(Json::as_str)
            .ok_or_else(|| bad("messages", format!("messages[{i}].role must be a string")))?;
        match role {
            "system" | "developer" => system.extend(text_only(m.get("content"), i)?),
            "user" => push_turn(&mut contents, "user", user_parts(m.get("content"), i)?),
            "assistant" => push_turn(&mut contents, "model", assistant_parts(m, i)?),
            "tool" => {
                let part = tool_result(m, i, &call_names)?;
                push_turn(&mut contents, "user", vec![part]);
            }
            "function" => {
                let name = m.get("name").and_then(Json::as_str).ok_or_else(|| {
                    bad(
                        "messages",
                        format!("messages[{i}].name is required for role 'function'"),
                    )
                })?;
                let part = function_response(name, m.get("content"), i)?;
                push_turn(&mut contents, "user", vec![part]);
            }
            other => {
                return Err(bad(
                    "messages",
                    format!("messages[{i}].role '{other}' is not supported"),
                ))
            }
        }
    }

    for turn in contents
        .iter_mut()
        .filter(|c| c.role.as_deref() == Some("model"))
    {
        let signed = turn
            .parts
            .iter()
            .any(|p| p.function_call.is_some() && p.thought_signature.is_some());
        if !signed {
            if let Some(first) = turn.parts.iter_mut().find(|p| p.function_call.is_some()) {
                first.thought_signature = Some(SKIP_SIGNATURE.to_owned());
            }
        }
    }

    let system = (!system.is_empty()).then_some(Content {
        role: None,
        parts: system,
    });
    if contents.is_empty() {
        // Gemini requires at least one turn; a request with only instructions sends them as
        // the user's turn.
        return match system {
            Some(s) => Ok((
                None,
                vec![Content {
                    role: Some("user".into()),
                    parts: s.parts,
                }],
            )),
            None => Err(bad(
                "messages",
                "messages must contain at least one non-empty user or assistant message",
            )),
        };
    }
    Ok((system, contents))
}

/// Append `parts` as a turn of `role`, merging with the previous turn of the same role
/// (Gemini expects turns to alternate). Empty turns are dropped.
fn push_turn(contents: &mut Vec<Content>, role: &str, parts: Vec<Part>) {
    if parts.is_empty() {
        return;
    }
    match contents.last_mut() {
        Some(last) if last.role.as_deref() == Some(role) => last.parts.extend(parts),
        _ => contents.push(Content {
            role: Some(role.to_owned()),
            parts,
        }),
    }
}

/// Text of a message content: a string, or an array of `text` (or `refusal`) parts.
fn content_text(content: Option<&Json<'_>>, i: usize) -> Result<Vec<String>, GatewayError> {
    match content {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Str(s)) => Ok(vec![s.to_string()]),
        Some(Json::Array(parts)) => {
            let mut out = Vec::new();
            for (k, p) in parts.iter().enumerate() {
                let kind = p.get("type").and_then(Json::as_str).unwrap_or("text");
                let text = match kind {
                    "text" => p.get("text"),
                    "refusal" => p.get("refusal"),
                    other => {
                        return Err(bad(
                            "messages",
                            format!(
                            "messages[{i}].content[{k}]: part type '{other}' is not allowed here"
                        ),
                        ))
                    }
                };
                let text = text.and_then(Json::as_str).ok_or_else(|| {
                    bad(
                        "messages",
                        format!("messages[{i}].content[{k}].{kind} must be a string"),
                    )
                })?;
                out.push(text.to_owned());
            }
            Ok(out)
        }
        Some(_) => Err(bad(
            "messages",
            format!("messages[{i}].content must be a string or an array of parts"),
        )),
    }
}

fn text_only(content: Option<&Json<'_>>, i: usize) -> Result<Vec<Part>, GatewayError> {
    Ok(content_text(content, i)?
        .into_iter()
        .filter(|t| !t.is_empty())
        .map(Part::text)
        .collect())
}

fn user_parts(content: Option<&Json<'_>>, i: usize) -> Result<Vec<Part>, GatewayError> {
    let Some(Json::Array(parts)) = content else {
        return text_only(content, i);
    };
    let mut out = Vec::new();
    for (k, p) in parts.iter().enumerate() {
        let at = || format!("messages[{i}].content[{k}]");
        let kind = p.get("type").and_then(Json::as_str).unwrap_or("text");
        match kind {
            "text" => {
                let t = p
                    .get("text")
                    .and_then(Json::as_str)
                    .ok_or_else(|| bad("messages", format!("{}.text must be a string", at())))?;
                if !t.is_empty() {
                    out.push(Part::text(t));
                }
            }
            "image_url" => {
                let url = p
                    .get("image_url")
                    .and_then(|u| u.get("url").or(Some(u)))
                    .and_then(Json::as_str)
                    .ok_or_else(|| {
                        bad(
                            "messages",
                            format!("{}.image_url.url must be a string", at()),
                        )
                    })?;
                out.push(media_part(url, "image/jpeg", &at)?);
            }
            "input_audio" => {
                let audio = p.get("input_audio");
                let data = audio.and_then(|a| a.get("data")).and_then(Json::as_str);
                let format = audio.and_then(|a| a.get("format")).and_then(Json::as_str);
                let (Some(data), Some(format)) = (data, format) else {
                    return Err(bad(
                        "messages",
                        format!("{}.input_audio needs string data and format", at()),
                    ));
                };
                out.push(Part {
                    inline_data: Some(Blob {
                        mime_type: format!("audio/{}", format.to_ascii_lowercase()),
                        data: data.to_owned(),
                    }),
                    ..Part::default()
                });
            }
            "file" => {
                // Inline data has no name: the model reads it just before the file.
                let name = p
                    .get("file")
                    .and_then(|f| f.get("filename"))
                    .and_then(Json::as_str)
                    .filter(|n| !n.is_empty());
                out.extend(name.map(Part::text));
                out.push(file_part(p.get("file"), &at)?);
            }
            other => {
                return Err(bad(
                    "messages",
                    format!("{}: part type '{other}' is not supported by Gemini", at()),
                ))
            }
        }
    }
    Ok(out)
}

/// An image or file by URL: a `data:` URL becomes `inlineData`, an `http(s)://` or `gs://`
/// URL becomes `fileData` with a MIME type guessed from the extension.
fn media_part(
    url: &str,
    default_mime: &str,
    at: &dyn Fn() -> String,
) -> Result<Part, GatewayError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (mime_type, data) = parse_data_url(rest).ok_or_else(|| {
            bad(
                "messages",
                format!(
                    "{}: data URL must look like data:<mime>;base64,<data>",
                    at()
                ),
            )
        })?;
        return Ok(Part {
            inline_data: Some(Blob { mime_type, data }),
            ..Part::default()
        });
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if !(lower.starts_with("http://")
        || lower.starts_with("https://")
        || lower.starts_with("gs://"))
    {
        return Err(bad(
            "messages",
            format!("{}: URL must be a data:, http(s):// or gs:// URL", at()),
        ));
    }
    Ok(Part {
        file_data: Some(FileData {
            mime_type: Some(mime_from_path(url).unwrap_or(default_mime).to_owned()),
            file_uri: url.to_owned(),
        }),
        ..Part::default()
    })
}

/// `<mime>[;param]*;base64,<data>` (the text after `data:`) -> (mime, data).
fn parse_data_url(rest: &str) -> Option<(String, String)> {
    let (meta, data) = rest.split_once(',')?;
    let mut fields = meta.split(';');
    let mime = fields.next()?.trim();
    if mime.is_empty() || !fields.any(|f| f.eq_ignore_ascii_case("base64")) || data.is_empty() {
        return None;
    }
    Some((mime.to_ascii_lowercase(), data.to_owned()))
}

fn file_part(file: Option<&Json<'_>>, at: &dyn Fn() -> String) -> Result<Part, GatewayError> {
    let get = |k: &str| file.and_then(|f| f.get(k)).and_then(Json::as_str);
    let guessed = get("filename")
        .and_then(mime_from_path)
        .unwrap_or("application/pdf");
    if let Some(data) = get("file_data") {
        if data.starts_with("data:") {
            return media_part(data, guessed, at);
        }
        return Ok(Part {
            inline_data: Some(Blob {
                mime_type: guessed.to_owned(),
                data: data.to_owned(),
            }),
            ..Part::default()
        });
    }
    if let Some(id) = get("file_id").filter(|id| id.contains("://")) {
        return media_part(id, guessed, at);
    }
    Err(bad(
        "messages",
        format!(
            "{}: file needs file_data, or a file_id that is a Gemini file URI",
            at()
        ),
    ))
}

/// MIME type from a URL's or file name's extension (query and fragment ignored).
fn mime_from_path(path: &str) -> Option<&'static str> {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let name = path.rsplit('/').next().unwrap_or(path);
    let (_, ext) = name.rsplit_once('.')?;
    Some(match ext.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "md" => "text/md",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "xml" => "text/xml",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "aac" => "audio/aac",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        "aiff" => "audio/aiff",
        "mp4" => "video/mp4",
        "mpeg" | "mpg" => "video/mpeg",
        "mov" => "video/mov",
        "avi" => "video/avi",
        "webm" => "video/webm",
        "wmv" => "video/wmv",
        "3gp" | "3gpp" => "video/3gpp",
        "flv" => "video/x-flv",
        _ => return None,
    })
}

fn assistant_parts(m: &Json<'_>, i: usize) -> Result<Vec<Part>, GatewayError> {
    let mut parts = text_only(m.get("content"), i)?;
    // An earlier refusal is what the model said (OpenAI sends it instead of content).
    match m.get("refusal") {
        None | Some(Json::Null) => {}
        Some(Json::Str(r)) => {
            if !r.is_empty() && !parts.iter().any(|p| p.text.as_deref() == Some(r.as_ref())) {
                parts.push(Part::text(r.as_ref()));
            }
        }
        Some(_) => {
            return Err(bad(
                "messages",
                format!("messages[{i}].refusal must be a string"),
            ))
        }
    }
    match m.get("tool_calls") {
        None | Some(Json::Null) => {}
        Some(Json::Array(calls)) => {
            for (j, c) in calls.iter().enumerate() {
                parts.push(tool_call_part(c, i, j)?);
            }
        }
        Some(_) => {
            return Err(bad(
                "messages",
                format!("messages[{i}].tool_calls must be an array"),
            ))
        }
    }
    // Legacy `function_call` on an assistant message.
    if let Some(fc) = m.get("function_call").filter(|v| !v.is_null()) {
        let name = fc.get("name").and_then(Json::as_str).ok_or_else(|| {
            bad(
                "messages",
                format!("messages[{i}].function_call.name must be a string"),
            )
        })?;
        let args = call_arguments(fc.get("arguments"), || {
            format!("messages[{i}].function_call.arguments")
        })?;
        parts.push(Part {
            function_call: Some(FunctionCall {
                id: None,
                name: name.to_owned(),
                args: Some(args),
            }),
            ..Part::default()
        });
    }
    Ok(parts)
}

fn tool_call_part(c: &Json<'_>, i: usize, j: usize) -> Result<Part, GatewayError> {
    let at = format!("messages[{i}].tool_calls[{j}]");
    let kind = c.get("type").and_then(Json::as_str).unwrap_or("function");
    if kind != "function" {
        return Err(bad(
            "messages",
            format!("{at}.type '{kind}' is not supported by Gemini"),
        ));
    }
    let function = c.get("function");
    let name = function
        .and_then(|f| f.get("name"))
        .and_then(Json::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("messages", format!("{at}.function.name must be a string")))?;
    let args = call_arguments(function.and_then(|f| f.get("arguments")), || {
        format!("{at}.function.arguments")
    })?;
    // Where the response converter put Gemini's signature (Google's own OpenAI-compatible
    // API uses the same place).
    let signature = c
        .get("extra_content")
        .and_then(|e| e.get("google"))
        .and_then(|g| g.get("thought_signature"))
        .and_then(Json::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Ok(Part {
        thought_signature: signature,
        function_call: Some(FunctionCall {
            id: None,
            name: name.to_owned(),
            args: Some(args),
        }),
        ..Part::default()
    })
}

/// OpenAI's `arguments` is a JSON string; Gemini's `args` is an object.
fn call_arguments(args: Option<&Json<'_>>, at: impl Fn() -> String) -> Result<Value, GatewayError> {
    let parsed = match args {
        None | Some(Json::Null) => return Ok(json!({})),
        Some(Json::Str(s)) if s.trim().is_empty() => return Ok(json!({})),
        Some(Json::Str(s)) => serde_json::from_str::<Value>(s)
            .map_err(|_| bad("messages", format!("{} is not valid JSON", at())))?,
        Some(other) => other.to_value(),
    };
    if parsed.is_object() {
        Ok(parsed)
    } else {
        Err(bad("messages", format!("{} must be a JSON object", at())))
    }
}

fn tool_result(
    m: &Json<'_>,
    i: usize,
    call_names: &HashMap<&str, &str>,
) -> Result<Part, GatewayError> {
    let id = m.get("tool_call_id").and_then(Json::as_str);
    let name = id
        .and_then(|id| call_names.get(id).copied())
        .or_else(|| m.get("name").and_then(Json::as_str))
        .ok_or_else(|| {
            bad(
                "messages",
                format!(
                    "messages[{i}].tool_call_id does not match any assistant tool call \
                     (Gemini needs the function name)"
                ),
            )
        })?;
    function_response(name, m.get("content"), i)
}

/// A tool result: a JSON object is passed as is, anything else as `{"result": text}`
/// (Gemini's `response` must be an object).
fn function_response(
    name: &str,
    content: Option<&Json<'_>>,
    i: usize,
) -> Result<Part, GatewayError> {
    let text = content_text(content, i)?.concat();
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "result": text }),
    };
    Ok(Part {
        function_response: Some(FunctionResponse {
            name: name.to_owned(),
            response,
        }),
        ..Part::default()
    })
}

// ---------------------------------------------------------------------------------------------
// tools

fn convert_tools(obj: &Object<'_>) -> Result<(Vec<Tool>, Option<ToolConfig>), GatewayError> {
    let mut decls: Vec<FunctionDeclaration> = Vec::new();
    let mut strict = false;
    // The deprecated forms are read only alone: with the current ones they would be dropped.
    for (legacy, current) in [("functions", "tools"), ("function_call", "tool_choice")] {
        if !is_absent(lookup(obj, legacy)) && !is_absent(lookup(obj, current)) {
            return Err(bad(
                legacy,
                format!("{legacy} is the deprecated form of {current}; send one of them"),
            ));
        }
    }
    let legacy = is_absent(lookup(obj, "tools"));
    let (list, param) = if legacy {
        (lookup(obj, "functions"), "functions")
    } else {
        (lookup(obj, "tools"), "tools")
    };
    match list {
        None | Some(Json::Null) => {}
        Some(Json::Array(items)) => {
            for (j, t) in items.iter().enumerate() {
                let f = if legacy {
                    Some(t)
                } else {
                    let kind = t.get("type").and_then(Json::as_str).unwrap_or("function");
                    if kind != "function" {
                        return Err(bad(
                            param,
                            format!("tools[{j}].type '{kind}' is not supported by Gemini"),
                        ));
                    }
                    t.get("function")
                };
                if let Some(flag) = f.and_then(|f| f.get("strict")).filter(|v| !v.is_null()) {
                    strict |= flag.as_bool().ok_or_else(|| {
                        bad(param, format!("{param}[{j}].strict must be a boolean"))
                    })?;
                }
                decls.push(declaration(f, param, j)?);
            }
        }
        Some(_) => return Err(bad(param, format!("{param} must be an array"))),
    }

    let (choice, choice_param) = if is_absent(lookup(obj, "tool_choice")) {
        (lookup(obj, "function_call"), "function_call")
    } else {
        (lookup(obj, "tool_choice"), "tool_choice")
    };
    let config = match choice {
        None | Some(Json::Null) => None,
        Some(Json::Str(mode)) => Some(match mode.as_ref() {
            "auto" => calling_config("AUTO", None),
            "none" => calling_config("NONE", None),
            "required" | "any" => calling_config("ANY", None),
            other => {
                return Err(bad(
                    choice_param,
                    format!("{choice_param} '{other}' is not supported"),
                ))
            }
        }),
        Some(Json::Object(c)) => Some(named_choice(c, choice_param, &mut decls)?),
        Some(_) => {
            return Err(bad(
                choice_param,
                format!("{choice_param} must be a string or an object"),
            ))
        }
    };

    if decls.is_empty() {
        return Ok((Vec::new(), None));
    }
    // `strict: true` asks for calls that follow the schema: Gemini's VALIDATED mode decodes
    // them against it (ANY already does, and NONE makes no calls).
    let config = match config {
        Some(c) if strict && c.function_calling_config.mode == "AUTO" => Some(ToolConfig {
            function_calling_config: FunctionCallingConfig {
                mode: "VALIDATED",
                ..c.function_calling_config
            },
        }),
        None if strict => Some(calling_config("VALIDATED", None)),
        other => other,
    };
    Ok((
        vec![Tool {
            function_declarations: decls,
        }],
        config,
    ))
}

fn declaration(
    f: Option<&Json<'_>>,
    param: &'static str,
    j: usize,
) -> Result<FunctionDeclaration, GatewayError> {
    let f = f
        .filter(|f| f.is_object())
        .ok_or_else(|| bad(param, format!("{param}[{j}] must have a function object")))?;
    let name = f
        .get("name")
        .and_then(Json::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            bad(
                param,
                format!("{param}[{j}].name must be a non-empty string"),
            )
        })?;
    let description = f
        .get("description")
        .and_then(Json::as_str)
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    let parameters = match f.get("parameters") {
        None | Some(Json::Null) => None,
        Some(p) => function_parameters(&p.to_value()).map_err(|_| {
            bad(
                param,
                format!("{param}[{j}].parameters is too large or too deeply nested"),
            )
        })?,
    };
    Ok(FunctionDeclaration {
        name: name.to_owned(),
        description,
        parameters,
    })
}

fn calling_config(mode: &'static str, names: Option<Vec<String>>) -> ToolConfig {
    ToolConfig {
        function_calling_config: FunctionCallingConfig {
            mode,
            allowed_function_names: names,
        },
    }
}

/// `{"type":"function","function":{"name"}}` (or legacy `{"name"}`) forces one function;
/// `{"type":"allowed_tools","allowed_tools":{"mode","tools"}}` restricts the set.
fn named_choice(
    c: &Object<'_>,
    param: &'static str,
    decls: &mut Vec<FunctionDeclaration>,
) -> Result<ToolConfig, GatewayError> {
    let declared = |decls: &[FunctionDeclaration], n: &str| decls.iter().any(|d| d.name == n);
    if lookup(c, "type").and_then(Json::as_str) == Some("allowed_tools") {
        let allowed = lookup(c, "allowed_tools");
        let mode = allowed
            .and_then(|a| a.get("mode"))
            .and_then(Json::as_str)
            .unwrap_or("auto");
        let names: Vec<String> = allowed
            .and_then(|a| a.get("tools"))
            .and_then(Json::as_array)
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| {
                        t.get("function")
                            .and_then(|f| f.get("name"))
                            .or_else(|| t.get("name"))
                    })
                    .filter_map(Json::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if names.is_empty() || names.iter().any(|n| !declared(decls, n)) {
            return Err(bad(
                param,
                "tool_choice.allowed_tools.tools must name declared functions",
            ));
        }
        return match mode {
            "required" => Ok(calling_config("ANY", Some(names))),
            "auto" => {
                // Gemini restricts names only in ANY mode; in AUTO, declare only the allowed.
                decls.retain(|d| names.contains(&d.name));
                Ok(calling_config("AUTO", None))
            }
            other => Err(bad(
                param,
                format!("tool_choice.allowed_tools.mode '{other}' is not supported"),
            )),
        };
    }
    let name = lookup(c, "function")
        .and_then(|f| f.get("name"))
        .or_else(|| lookup(c, "name"))
        .and_then(Json::as_str)
        .ok_or_else(|| bad(param, format!("{param}.function.name must be a string")))?;
    if !declared(decls, name) {
        return Err(bad(
            param,
            format!("{param} names function '{name}', which is not declared"),
        ));
    }
    Ok(calling_config("ANY", Some(vec![name.to_owned()])))
}

// ---------------------------------------------------------------------------------------------
// generation config

fn opt_f64(obj: &Object<'_>, key: &'static str) -> Result<Option<f64>, GatewayError> {
    match lookup(obj, key) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| bad(key, format!("{key} must be a number"))),
    }
}

fn opt_u64(obj: &Object<'_>, key: &'static str) -> Result<Option<u64>, GatewayError> {
    match lookup(obj, key) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(key, format!("{key} must be a non-negative integer"))),
    }
}

fn generation_config(
    obj: &Object<'_>,
    opts: &GeminiOptions,
) -> Result<GenerationConfig, GatewayError> {
    let mut g = GenerationConfig {
        temperature: opt_f64(obj, "temperature")?,
        top_p: opt_f64(obj, "top_p")?,
        top_k: opt_u64(obj, "top_k")?,
        ..GenerationConfig::default()
    };
    g.max_output_tokens = match opt_u64(obj, "max_completion_tokens")? {
        Some(n) => Some(n),
        None => opt_u64(obj, "max_tokens")?,
    };
    if let Some(n) = opt_u64(obj, "n")? {
        if n == 0 {
            return Err(bad("n", "n must be at least 1"));
        }
        let stream = lookup(obj, "stream").and_then(Json::as_bool) == Some(true);
        if n > 1 && stream {
            return Err(bad("n", "n > 1 is not supported with stream for Gemini"));
        }
        g.candidate_count = Some(n);
    }
    g.stop_sequences = match lookup(obj, "stop") {
        None | Some(Json::Null) => None,
        Some(Json::Str(s)) => Some(vec![s.to_string()]),
        Some(Json::Array(a)) => Some(
            a.iter()
                .map(|s| s.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad("stop", "stop must be a string or an array of strings"))?,
        )
        .filter(|v| !v.is_empty()),
        Some(_) => return Err(bad("stop", "stop must be a string or an array of strings")),
    };
    g.seed = match lookup(obj, "seed") {
        None | Some(Json::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| bad("seed", "seed must be an integer"))?,
        ),
    };
    // Several Gemini models reject penalties outright; a zero penalty (which many clients send
    // by default) means "off" anyway, so only non-zero values are forwarded.
    g.presence_penalty = opt_f64(obj, "presence_penalty")?.filter(|p| *p != 0.0);
    g.frequency_penalty = opt_f64(obj, "frequency_penalty")?.filter(|p| *p != 0.0);

    if let Some(rf) = lookup(obj, "response_format").filter(|v| !v.is_null()) {
        let kind = rf
            .get("type")
            .and_then(Json::as_str)
            .ok_or_else(|| bad("response_format", "response_format.type must be a string"))?;
        match kind {
            "text" => {}
            "json_object" => g.response_mime_type = Some("application/json"),
            "json_schema" => {
                g.response_mime_type = Some("application/json");
                let schema = rf.get("json_schema").and_then(|j| j.get("schema"));
                if let Some(schema) = schema.filter(|s| s.is_object()) {
                    let mut schema = schema.to_value();
                    // The format's description goes to the schema root, unless it has one.
                    let description = rf
                        .get("json_schema")
                        .and_then(|j| j.get("description"))
                        .and_then(Json::as_str)
                        .filter(|d| !d.is_empty());
                    if let (Some(d), Some(root)) = (description, schema.as_object_mut()) {
                        root.entry("description").or_insert_with(|| json!(d));
                    }
                    let converted = to_gemini_schema(&schema).map_err(|_| {
                        bad(
                            "response_format",
                            "response_format.json_schema.schema is too large or too deeply nested",
                        )
                    })?;
                    // An OBJECT without properties is rejected; JSON mode alone is the same.
                    let empty_object = converted.get("type") == Some(&json!("OBJECT"))
                        && converted.get("properties").is_none();
                    if !empty_object && converted.as_object().is_some_and(|o| !o.is_empty()) {
                        g.response_schema = Some(converted);
                    }
                }
            }
            other => {
                return Err(bad(
                    "response_format",
                    format!("response_format.type '{other}' is not supported"),
                ))
            }
        }
    }

    let budget = match (lookup(obj, "thinking"), lookup(obj, "reasoning_effort")) {
        (Some(thinking), _) if !thinking.is_null() => Some(thinking_object_budget(thinking)?),
        (_, None | Some(Json::Null)) => opts.thinking_budget,
        (_, Some(Json::Str(effort))) => Some(effort_budget(effort)?),
        (_, Some(_)) => return Err(bad("reasoning_effort", "reasoning_effort must be a string")),
    };
    if let Some(b) = budget {
        g.thinking_config = Some(ThinkingConfig {
            // Thought summaries become `reasoning_content`; no thinking, nothing to include.
            include_thoughts: (b != 0).then_some(true),
            thinking_budget: Some(b),
        });
    }
    Ok(g)
}

/// An Anthropic-style `thinking` object (sent by Anthropic clients, through the Messages ->
/// chat conversion) -> `thinkingBudget`: the budget as given, 0 for `disabled`, -1 (the model
/// decides) for `adaptive`. It wins over `reasoning_effort`.
fn thinking_object_budget(thinking: &Json<'_>) -> Result<i64, GatewayError> {
    match thinking.get("type").and_then(Json::as_str) {
        Some("enabled") => thinking
            .get("budget_tokens")
            .and_then(Json::as_u64)
            .map(|b| i64::try_from(b).unwrap_or(i64::MAX))
            .ok_or_else(|| {
                bad(
                    "thinking",
                    "thinking.budget_tokens must be a non-negative integer",
                )
            }),
        Some("disabled") => Ok(0),
        Some("adaptive") => Ok(-1),
        _ => Err(bad(
            "thinking",
            "thinking.type must be enabled, adaptive or disabled",
        )),
    }
}

/// `reasoning_effort` -> `thinkingBudget`, as Google's OpenAI-compatible endpoint maps it
/// (budgets are accepted by Gemini 2.5 and, for compatibility, Gemini 3).
fn effort_budget(effort: &str) -> Result<i64, GatewayError> {
    Ok(match effort {
        "none" => 0,
        "minimal" | "low" => 1024,
        "medium" => 8192,
        "high" | "xhigh" => 24576,
        other => {
            return Err(bad(
                "reasoning_effort",
                format!("reasoning_effort '{other}' is not supported"),
            ))
        }
    })
}

/// `geminiSafetySetting` from the provider config: a map category -> threshold (Higress's
/// form), or already a list of `{category, threshold}`.
fn safety_settings(opts: &GeminiOptions) -> Result<Vec<SafetySetting>, GatewayError> {
    let invalid = || {
        GatewayError::new(
            ErrorKind::Internal,
            "invalid_config",
            "geminiSafetySetting must map harm categories to threshold strings",
        )
    };
    match &opts.safety_settings {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(category, threshold)| {
                Some(SafetySetting {
                    category: category.clone(),
                    threshold: threshold.as_str()?.to_owned(),
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(invalid),
        Some(list @ Value::Array(_)) => {
            serde_json::from_value::<Vec<SafetySetting>>(list.clone()).map_err(|_| invalid())
        }
        Some(_) => Err(invalid()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn data_urls() {
        assert_eq!(
            parse_data_url("image/PNG;base64,AAAA"),
            Some(("image/png".into(), "AAAA".into()))
        );
        assert_eq!(
            parse_data_url("image/png;name=x.png;base64,QQ=="),
            Some(("image/png".into(), "QQ==".into()))
        );
        assert_eq!(parse_data_url("image/png,AAAA"), None);
        assert_eq!(parse_data_url(";base64,AAAA"), None);
        assert_eq!(parse_data_url("image/png;base64,"), None);
        assert_eq!(parse_data_url("image/png;base64"), None);
    }

    #[test]
    fn mime_guess() {
        assert_eq!(mime_from_path("https://x/a.PNG?s=1#f"), Some("image/png"));
        assert_eq!(mime_from_path("https://x/a.jpeg"), Some("image/jpeg"));
        assert_eq!(mime_from_path("https://x.y/a"), None);
        assert_eq!(mime_from_path("https://x.y/"), None);
        assert_eq!(mime_from_path("report.pdf"), Some("application/pdf"));
    }

    #[test]
    fn effort_and_default_budget() {
        let opts = GeminiOptions {
            safety_settings: None,
            thinking_budget: Some(-1),
        };
        let out = chat_request_to_gemini(
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
            &opts,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": -1, "includeThoughts": true})
        );
        let out = chat_request_to_gemini(
            br#"{"messages":[{"role":"user","content":"hi"}],"reasoning_effort":"none"}"#,
            &opts,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 0})
        );
    }

    #[test]
    fn deep_nesting_is_a_400_not_a_crash() {
        let opts = GeminiOptions {
            safety_settings: None,
            thinking_budget: None,
        };
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let body = format!(r#"{{"messages":[{{"role":"user","content":{deep}}}]}}"#);
        let e = chat_request_to_gemini(body.as_bytes(), &opts).unwrap_err();
        assert_eq!((e.status(), e.code), (400, "invalid_json"));
        assert_eq!(
            e.message,
            "request body is not valid JSON: recursion limit exceeded at line 1 column 163"
        );
    }

    #[test]
    fn bad_safety_config_is_an_internal_error() {
        let opts = GeminiOptions {
            safety_settings: Some(json!({"HARM_CATEGORY_HARASSMENT": 3})),
            thinking_budget: None,
        };
        let e = chat_request_to_gemini(br#"{"messages":[{"role":"user","content":"x"}]}"#, &opts)
            .unwrap_err();
        assert_eq!(e.status(), 500);
    }
}
