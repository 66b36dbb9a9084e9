//! Responses API request -> OpenAI chat-completions request.

use super::{signature, RequestEcho};
use crate::anthropic::input::{self, get, invalid, wrong_type, Json, Object};
use crate::error::GatewayError;
use crate::fields::{Disposition, VendorFamily, RESPONSES_FIELDS};
use serde_json::{json, Map, Value};

/// A Responses request converted to chat completions: the upstream body, and what the answer
/// must echo back to the client.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// The chat-completions request body.
    pub body: Vec<u8>,
    /// Request parameters the converted answer repeats (pass to the response converters).
    pub echo: RequestEcho,
    /// Whether the client asked for a stream.
    pub stream: bool,
}

/// Tool types that only OpenAI runs (hosted tools); a gateway cannot convert them.
const HOSTED_TOOLS: &str = "web_search, file_search, computer use, code_interpreter, mcp, \
    image_generation, local_shell and custom tools";

/// Translate a Responses API request (`POST /v1/responses`) to a chat-completions request, for
/// any vendor reached through chat completions (OpenAI-compatible vendors directly; Claude and
/// Gemini through their chat translators).
///
/// - `instructions` becomes a leading `system` message; `input` (a string, or items) becomes
///   the messages: `message` items (roles `user`, `assistant`, `system`, `developer` ->
///   `system`, adjacent system text joined into one message; parts `input_text`,
///   `input_image`, `input_file`, `output_text`, `refusal`), `function_call` items ->
///   `tool_calls` of an assistant message (consecutive calls, and an assistant message right
///   before them, form one message), `function_call_output` -> `tool` messages (images in an
///   output follow as a user message). `reasoning` items are dropped (another vendor cannot
///   use them), except that a Gemini thought signature the gateway put in one goes back on
///   its call as `extra_content.google.thought_signature`.
/// - `tools` (function tools) -> chat functions; `tool_choice` (`auto`/`none`/`required`, a
///   named function; `allowed_tools` as its mode over only the allowed functions, since few
///   chat vendors know chat's own `allowed_tools`), `parallel_tool_calls`,
///   `max_output_tokens` -> `max_tokens`, `temperature`, `top_p`, `user` (else
///   `safety_identifier`), `text.format` (`json_schema`, `json_object`, `text`) ->
///   `response_format`, `text.verbosity` -> `verbosity`, `reasoning.effort` ->
///   `reasoning_effort`; `stream: true` also asks for `stream_options.include_usage`.
/// - Only OpenAI can honour hosted tools (web search, file search, computer use, code
///   interpreter, MCP, image generation, local shell, custom tools), server-side state
///   (`previous_response_id`, `conversation`, `item_reference` items, stored `prompt`s) and
///   `background`: those are 400s naming the field, and so are `store: true` (nothing is
///   stored; the answer says `"store": false`) and `truncation: "auto"`.
/// - `top_logprobs` and `include: ["message.output_text.logprobs"]` -> chat `logprobs` (+
///   `top_logprobs`); `service_tier`, `prompt_cache_key`, `prompt_cache_retention` pass as the
///   chat fields of the same name. Other `include` values, `metadata` (echoed in the answer),
///   `max_tool_calls`, `stream_options` and `reasoning.summary` are not sent.
/// - Every top-level field follows [`RESPONSES_FIELDS`]' OpenAI-compatible column: fields the
///   table does not list are 400s naming them.
///
/// This is the conversion for an OpenAI-compatible chat vendor; for Claude, Gemini and
/// Bedrock use [`responses_request_to_chat_for`].
///
/// Errors are 400s naming the field at fault.
pub fn responses_request_to_chat(body: &[u8]) -> Result<ChatRequest, GatewayError> {
    responses_request_to_chat_for(body, VendorFamily::OpenAi)
}

/// [`responses_request_to_chat`] for a chat body that goes on to `family`'s chat translator
/// (`anthropic::chat_request_to_messages`, `gemini::chat_request_to_gemini`,
/// `bedrock::chat_request_to_converse`): every top-level field first follows its rule in
/// [`RESPONSES_FIELDS`] for that family (refused fields and fields the table does not list are
/// 400s naming them), and the values Claude, Gemini or Bedrock cannot honour are refused under
/// the Responses name of the field (`text.format` `json_object` for Claude and Bedrock,
/// `text.verbosity` other than `medium`). `VendorFamily::OpenAi` is
/// an OpenAI-compatible chat vendor ([`responses_request_to_chat`]).
pub fn responses_request_to_chat_for(
    body: &[u8],
    family: VendorFamily,
) -> Result<ChatRequest, GatewayError> {
    let req = input::parse_object(body)?;
    check_stateless(&req)?;
    RESPONSES_FIELDS.check(&req, family)?;
    let model = input::required_str(&req, "model")?;
    let mut out = Map::new();
    out.insert("model".into(), model.into());

    let mut messages = Vec::new();
    let instructions = input::opt_str(&req, "instructions")?;
    if let Some(text) = instructions.filter(|t| !t.is_empty()) {
        messages.push(json!({ "role": "system", "content": text }));
    }
    convert_input(&req, &mut messages)?;
    if messages.is_empty() {
        return Err(invalid(
            "input",
            "missing_required_parameter",
            "input is required".into(),
        ));
    }
    out.insert("messages".into(), Value::Array(messages));

    let mut tools = convert_tools(&req)?;
    let choice = match convert_tool_choice(&req)? {
        Some(ToolChoice::Allowed { mode, names }) => {
            if let Some(missing) = names.iter().find(|n| !tools.iter().any(|t| declares(t, n))) {
                return Err(invalid(
                    "tool_choice",
                    "invalid_value",
                    format!("tool_choice.tools names {missing:?}, which is not in tools"),
                ));
            }
            tools.retain(|t| names.iter().any(|n| declares(t, n)));
            Some(mode)
        }
        Some(ToolChoice::Chat(c)) => Some(c),
        None => None,
    };
    let has_tools = !tools.is_empty();
    if has_tools {
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = choice {
        if has_tools {
            out.insert("tool_choice".into(), choice);
        } else if choice != "none" && choice != "auto" {
            return Err(invalid(
                "tool_choice",
                "invalid_value",
                "tool_choice requires tools".into(),
            ));
        }
    }
    if let Some(parallel) = input::opt_bool(&req, "parallel_tool_calls")? {
        if has_tools {
            out.insert("parallel_tool_calls".into(), parallel.into());
        }
    }
    let max_output_tokens = input::opt_u32(&req, "max_output_tokens")?;
    if let Some(n) = max_output_tokens {
        out.insert("max_tokens".into(), n.into());
    }
    let temperature = input::opt_f64(&req, "temperature")?;
    if let Some(t) = temperature {
        out.insert("temperature".into(), t.into());
    }
    let top_p = input::opt_f64(&req, "top_p")?;
    if let Some(p) = top_p {
        out.insert("top_p".into(), p.into());
    }
    // `safety_identifier` is what OpenAI now asks for instead of `user`; chat vendors know
    // only `user`.
    let safety_identifier = input::opt_str(&req, "safety_identifier")?;
    if let Some(user) = input::opt_str(&req, "user")?.or(safety_identifier) {
        out.insert("user".into(), user.into());
    }
    if let Some(format) = convert_text_format(&req)? {
        let no_json_mode = matches!(family, VendorFamily::Claude | VendorFamily::Bedrock);
        if no_json_mode && format["type"] == "json_object" {
            return Err(invalid(
                "text",
                "unsupported_value",
                format!(
                    "text.format json_object cannot be sent to {} providers: they have no \
                     schema-less JSON mode; send a json_schema format",
                    family.name()
                ),
            ));
        }
        out.insert("response_format".into(), format);
    }
    if let Some(verbosity) = text_verbosity(&req)? {
        match family {
            VendorFamily::OpenAi | VendorFamily::OpenAiResponses => {
                out.insert("verbosity".into(), verbosity.into());
            }
            // The vendor's own length is `medium`: nothing to send.
            VendorFamily::Claude | VendorFamily::Gemini | VendorFamily::Bedrock
                if verbosity == "medium" => {}
            VendorFamily::Claude | VendorFamily::Gemini | VendorFamily::Bedrock => {
                return Err(invalid(
                    "text",
                    "unsupported_parameter",
                    format!(
                        "text.verbosity {verbosity:?} cannot be sent to {} providers (only \
                         medium is accepted): it has no equivalent there",
                        family.name()
                    ),
                ));
            }
        }
    }
    if let Some(effort) = reasoning_effort(&req)? {
        out.insert("reasoning_effort".into(), effort.into());
    }
    // Log probabilities (only chat vendors reach here with them: the table refuses them for
    // Claude, Gemini and Bedrock). Chat wants `logprobs: true` beside `top_logprobs`.
    let top_logprobs = input::opt_u32(&req, "top_logprobs")?.filter(|n| *n > 0);
    if check_include(&req)? || top_logprobs.is_some() {
        out.insert("logprobs".into(), true.into());
    }
    if let Some(n) = top_logprobs {
        out.insert("top_logprobs".into(), n.into());
    }
    // Chat fields of the same name and meaning, for the vendors whose column passes them (or,
    // for Bedrock's `service_tier`, maps them: the chat translator does).
    for key in ["prompt_cache_key", "prompt_cache_retention", "service_tier"] {
        match get(&req, key) {
            Some(v @ Json::Str(_)) => {
                if matches!(
                    RESPONSES_FIELDS.disposition(key, family),
                    Disposition::Passed | Disposition::Mapped
                ) {
                    out.insert(key.into(), v.to_value());
                }
            }
            None | Some(Json::Null) => {}
            Some(_) => return Err(wrong_type(key, key, "a string")),
        }
    }
    let stream = input::opt_bool(&req, "stream")? == Some(true);
    if stream {
        out.insert("stream".into(), true.into());
        out.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    let metadata = match get(&req, "metadata") {
        None => None,
        Some(m @ Json::Object(_)) => Some(m.to_value()),
        Some(_) => return Err(wrong_type("metadata", "metadata", "an object")),
    };
    input::opt_bool(&req, "store")?;

    let echo = RequestEcho::from_request(&req, model, metadata);
    Ok(ChatRequest {
        body: Value::Object(out).to_string().into_bytes(),
        echo,
        stream,
    })
}

/// Whether a Responses request can be served by converting it (for any vendor but OpenAI):
/// `Err` is the 400 [`responses_request_to_chat`] would answer. The same checks run inside
/// the converter; this is for a caller that wants the verdict without the body.
pub fn check_convertible(body: &[u8]) -> Result<(), GatewayError> {
    responses_request_to_chat(body).map(|_| ())
}

/// [`check_convertible`] for `family`: the 400 [`responses_request_to_chat_for`] would
/// answer (the chat translator of the family may still refuse a chat field).
pub fn check_convertible_for(body: &[u8], family: VendorFamily) -> Result<(), GatewayError> {
    responses_request_to_chat_for(body, family).map(|_| ())
}

/// `include` is a list of output extras; whether it asks for log probabilities (the one that
/// changes what the client reads; the field table refuses it where there are none).
fn check_include(req: &Object<'_>) -> Result<bool, GatewayError> {
    let items = match get(req, "include") {
        None | Some(Json::Null) => return Ok(false),
        Some(Json::Array(items)) => items,
        Some(_) => return Err(wrong_type("include", "include", "an array of strings")),
    };
    let mut logprobs = false;
    for (i, item) in items.iter().enumerate() {
        match item.as_str() {
            Some("message.output_text.logprobs") => logprobs = true,
            Some(_) => {}
            None => {
                return Err(wrong_type(
                    "include",
                    format_args!("include[{i}]"),
                    "a string",
                ))
            }
        }
    }
    Ok(logprobs)
}

/// Server-side state that only OpenAI keeps: a clear 400 naming the field.
fn check_stateless(req: &Object<'_>) -> Result<(), GatewayError> {
    const STATEFUL: [(&str, &str); 3] = [
        (
            "previous_response_id",
            "previous_response_id needs responses stored by OpenAI; this provider is \
             reached through a conversion that stores nothing: send the whole conversation \
             in `input` instead",
        ),
        (
            "conversation",
            "conversation needs conversations stored by OpenAI; this provider is reached \
             through a conversion that stores nothing: send the whole conversation in `input` \
             instead",
        ),
        (
            "prompt",
            "prompt templates are stored by OpenAI and cannot be used with this provider",
        ),
    ];
    for (field, message) in STATEFUL {
        if get(req, field).is_some() {
            return Err(invalid(field, "unsupported_parameter", message.into()));
        }
    }
    if input::opt_bool(req, "background")? == Some(true) {
        return Err(invalid(
            "background",
            "unsupported_parameter",
            "background responses are run and stored by OpenAI; this provider can only \
             answer in the foreground"
                .into(),
        ));
    }
    Ok(())
}

/// Messages for `input`, appended to `out`.
fn convert_input(req: &Object<'_>, out: &mut Vec<Value>) -> Result<(), GatewayError> {
    let items = match get(req, "input") {
        None => return Ok(()),
        Some(Json::Str(s)) => {
            out.push(json!({ "role": "user", "content": s.as_ref() }));
            return Ok(());
        }
        Some(Json::Array(items)) => items,
        Some(_) => {
            return Err(wrong_type(
                "input",
                "input",
                "a string or an array of input items",
            ))
        }
    };
    let mut builder = Builder {
        out,
        pending_images: Vec::new(),
        signatures: carried_signatures(items),
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("input[{i}]");
        let obj = item
            .as_object()
            .ok_or_else(|| wrong_type("input", &path, "an object"))?;
        let kind = match get(obj, "type") {
            None => "message",
            Some(Json::Str(t)) => t.as_ref(),
            Some(_) => return Err(wrong_type("input", format_args!("{path}.type"), "a string")),
        };
        match kind {
            "message" => builder.message(obj, &path)?,
            "function_call" => builder.function_call(obj, &path)?,
            "function_call_output" => builder.function_call_output(obj, &path)?,
            // Another vendor's reasoning (often encrypted) means nothing upstream.
            "reasoning" => {}
            "item_reference" => {
                return Err(invalid(
                    "input",
                    "unsupported_value",
                    format!(
                        "{path}: item references need items stored by OpenAI; send the item \
                         itself"
                    ),
                ))
            }
            other => {
                return Err(invalid(
                    "input",
                    "unsupported_value",
                    format!(
                        "{path}.type {other:?} cannot be sent to this provider (only message, \
                         function_call, function_call_output and reasoning items can; \
                         {HOSTED_TOOLS} run only at OpenAI)"
                    ),
                ))
            }
        }
    }
    builder.flush_images();
    Ok(())
}

/// Builds the chat messages one input item at a time.
struct Builder<'o> {
    out: &'o mut Vec<Value>,
    /// Images of function-call outputs: a `tool` message carries text only, so they follow
    /// the tool messages as one user message.
    pending_images: Vec<Value>,
    /// Gemini thought signatures by `call_id`, from the gateway's reasoning items.
    signatures: Vec<(String, String)>,
}

/// The thought signatures the gateway put in reasoning items' `encrypted_content`.
fn carried_signatures(items: &[Json<'_>]) -> Vec<(String, String)> {
    items
        .iter()
        .filter(|item| item.get("type").and_then(Json::as_str) == Some("reasoning"))
        .filter_map(|item| item.get("encrypted_content").and_then(Json::as_str))
        .filter_map(signature::decode)
        .collect()
}

impl Builder<'_> {
    fn push(&mut self, message: Value) {
        self.flush_images();
        // Adjacent system text (instructions, then system and developer messages) becomes one
        // message: several OpenAI-compatible servers accept a single leading system message.
        if message["role"] == "system" {
            if let (Some(last), Some(text)) = (self.out.last_mut(), message["content"].as_str()) {
                if last["role"] == "system" {
                    if let Some(prev) = last["content"].as_str() {
                        last["content"] = Value::String(format!("{prev}\n\n{text}"));
                        return;
                    }
                }
            }
        }
        self.out.push(message);
    }

    fn flush_images(&mut self) {
        if !self.pending_images.is_empty() {
            let parts = std::mem::take(&mut self.pending_images);
            self.out.push(json!({ "role": "user", "content": parts }));
        }
    }

    fn message(&mut self, obj: &Object<'_>, path: &str) -> Result<(), GatewayError> {
        let role = match get(obj, "role") {
            Some(Json::Str(r)) => match r.as_ref() {
                "user" => "user",
                "assistant" => "assistant",
                // OpenAI-compatible servers do not all know `developer`.
                "system" | "developer" => "system",
                other => {
                    return Err(invalid(
                        "input",
                        "invalid_value",
                        format!(
                            "{path}.role must be user, assistant, system or developer; got \
                             {other:?}"
                        ),
                    ))
                }
            },
            Some(_) => return Err(wrong_type("input", format_args!("{path}.role"), "a string")),
            None => {
                return Err(invalid(
                    "input",
                    "missing_required_parameter",
                    format!("{path}.role is required"),
                ))
            }
        };
        let cpath = format!("{path}.content");
        let parts = match get(obj, "content") {
            Some(Json::Str(s)) => {
                self.push(json!({ "role": role, "content": s.as_ref() }));
                return Ok(());
            }
            Some(Json::Array(parts)) => parts,
            Some(_) => {
                return Err(wrong_type(
                    "input",
                    &cpath,
                    "a string or an array of content parts",
                ))
            }
            None => {
                return Err(invalid(
                    "input",
                    "missing_required_parameter",
                    format!("{cpath} is required"),
                ))
            }
        };
        let mut converted = Vec::new();
        for (j, part) in parts.iter().enumerate() {
            converted.push(content_part(part, role, &format!("{cpath}[{j}]"))?);
        }
        let all_text = converted.iter().all(|p| p["type"] == "text");
        let content = if all_text || role != "user" {
            // Assistant and system content is text; several servers take only strings.
            let texts: Vec<&str> = converted
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect();
            Value::String(texts.join(""))
        } else {
            Value::Array(converted)
        };
        self.push(json!({ "role": role, "content": content }));
        Ok(())
    }

    fn function_call(&mut self, obj: &Object<'_>, path: &str) -> Result<(), GatewayError> {
        let call_id = str_field(obj, "call_id", path)?;
        let name = str_field(obj, "name", path)?;
        let arguments = match get(obj, "arguments") {
            None => "{}",
            Some(Json::Str(s)) => s.as_ref(),
            Some(_) => {
                return Err(wrong_type(
                    "input",
                    format_args!("{path}.arguments"),
                    "a string",
                ))
            }
        };
        let mut call = json!({
            "id": call_id,
            "type": "function",
            "function": { "name": name, "arguments": arguments },
        });
        if let Some((_, sig)) = self.signatures.iter().find(|(id, _)| id == call_id) {
            call["extra_content"] = json!({ "google": { "thought_signature": sig } });
        }
        // Parallel calls arrive as consecutive items: one assistant message carries them all,
        // together with the assistant text right before them.
        if self.pending_images.is_empty() {
            if let Some(last) = self.out.last_mut() {
                if last["role"] == "assistant" {
                    if let Some(obj) = last.as_object_mut() {
                        let calls = obj.entry("tool_calls").or_insert_with(|| json!([]));
                        if let Some(list) = calls.as_array_mut() {
                            list.push(call);
                            return Ok(());
                        }
                    }
                }
            }
        }
        self.push(json!({ "role": "assistant", "content": null, "tool_calls": [call] }));
        Ok(())
    }

    fn function_call_output(&mut self, obj: &Object<'_>, path: &str) -> Result<(), GatewayError> {
        let call_id = str_field(obj, "call_id", path)?;
        let opath = format!("{path}.output");
        let text = match get(obj, "output") {
            None => String::new(),
            Some(Json::Str(s)) => s.to_string(),
            Some(Json::Array(parts)) => {
                let mut texts = Vec::new();
                for (j, part) in parts.iter().enumerate() {
                    let p = content_part(part, "user", &format!("{opath}[{j}]"))?;
                    match p["text"].as_str() {
                        Some(t) if p["type"] == "text" => texts.push(t.to_owned()),
                        _ => self.pending_images.push(p),
                    }
                }
                texts.join("")
            }
            Some(_) => {
                return Err(wrong_type(
                    "input",
                    &opath,
                    "a string or an array of content parts",
                ))
            }
        };
        // Tool messages go right after the assistant's calls, before any pending image.
        self.out
            .push(json!({ "role": "tool", "tool_call_id": call_id, "content": text }));
        Ok(())
    }
}

fn str_field<'b>(obj: &'b Object<'_>, key: &str, path: &str) -> Result<&'b str, GatewayError> {
    match get(obj, key) {
        Some(Json::Str(s)) => Ok(s),
        Some(_) => Err(wrong_type(
            "input",
            format_args!("{path}.{key}"),
            "a string",
        )),
        None => Err(invalid(
            "input",
            "missing_required_parameter",
            format!("{path}.{key} is required"),
        )),
    }
}

/// One content part as a chat content part (`text`, `image_url` or `file`).
fn content_part(part: &Json<'_>, role: &str, path: &str) -> Result<Value, GatewayError> {
    let obj = part
        .as_object()
        .ok_or_else(|| wrong_type("input", path, "an object"))?;
    let kind = match get(obj, "type") {
        Some(Json::Str(t)) => t.as_ref(),
        _ => return Err(wrong_type("input", format_args!("{path}.type"), "a string")),
    };
    let text_of = |key: &str| -> Result<Value, GatewayError> {
        let text = str_field(obj, key, path)?;
        Ok(json!({ "type": "text", "text": text }))
    };
    match kind {
        "input_text" | "output_text" | "text" => text_of("text"),
        "refusal" => text_of("refusal"),
        "input_image" if role == "user" => {
            if get(obj, "file_id").is_some() && get(obj, "image_url").is_none() {
                return Err(file_id_error(path));
            }
            let url = str_field(obj, "image_url", path)?;
            let mut image = json!({ "url": url });
            match get(obj, "detail") {
                None => {}
                Some(Json::Str(d)) => image["detail"] = Value::String(d.to_string()),
                Some(_) => {
                    return Err(wrong_type(
                        "input",
                        format_args!("{path}.detail"),
                        "a string",
                    ))
                }
            }
            Ok(json!({ "type": "image_url", "image_url": image }))
        }
        "input_file" if role == "user" => {
            if get(obj, "file_data").is_none() {
                if get(obj, "file_url").is_some() {
                    return Err(invalid(
                        "input",
                        "unsupported_value",
                        format!(
                            "{path}: files by URL cannot be sent to this provider; send them \
                             inline as file_data"
                        ),
                    ));
                }
                return Err(file_id_error(path));
            }
            let data = str_field(obj, "file_data", path)?;
            let mut file = json!({ "file_data": data });
            if let Some(name) = get(obj, "filename").and_then(Json::as_str) {
                file["filename"] = Value::String(name.to_owned());
            }
            Ok(json!({ "type": "file", "file": file }))
        }
        "input_image" | "input_file" => Err(invalid(
            "input",
            "unsupported_value",
            format!("{path}: {kind} parts are only accepted in user messages"),
        )),
        other => Err(invalid(
            "input",
            "unsupported_value",
            format!("{path}.type {other:?} is not a supported content part"),
        )),
    }
}

fn file_id_error(path: &str) -> GatewayError {
    invalid(
        "input",
        "unsupported_value",
        format!("{path}: file ids refer to files stored by OpenAI and cannot be sent to this provider; send the data inline"),
    )
}

/// Whether chat tool `tool` is the function `name`.
fn declares(tool: &Value, name: &str) -> bool {
    tool.pointer("/function/name").and_then(Value::as_str) == Some(name)
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
        let obj = tool
            .as_object()
            .ok_or_else(|| wrong_type("tools", &path, "an object"))?;
        match get(obj, "type").and_then(Json::as_str) {
            Some("function") => {}
            Some(other) => {
                return Err(invalid(
                    "tools",
                    "unsupported_value",
                    format!(
                        "{path}.type {other:?} is a tool only OpenAI runs; this provider \
                         accepts function tools only ({HOSTED_TOOLS} run only at OpenAI)"
                    ),
                ))
            }
            None => return Err(wrong_type("tools", format_args!("{path}.type"), "a string")),
        }
        let name = match get(obj, "name") {
            Some(Json::Str(n)) if !n.is_empty() => n.as_ref(),
            _ => {
                return Err(invalid(
                    "tools",
                    "missing_required_parameter",
                    format!("{path}.name is required"),
                ))
            }
        };
        let mut function = Map::new();
        function.insert("name".into(), name.into());
        match get(obj, "description") {
            None => {}
            Some(Json::Str(d)) => {
                function.insert("description".into(), d.as_ref().into());
            }
            Some(_) => {
                return Err(wrong_type(
                    "tools",
                    format_args!("{path}.description"),
                    "a string",
                ))
            }
        }
        match get(obj, "parameters") {
            None => {}
            Some(p @ Json::Object(_)) => {
                function.insert("parameters".into(), p.to_value());
            }
            Some(_) => {
                return Err(wrong_type(
                    "tools",
                    format_args!("{path}.parameters"),
                    "an object",
                ))
            }
        }
        match get(obj, "strict") {
            None => {}
            Some(Json::Bool(b)) => {
                function.insert("strict".into(), (*b).into());
            }
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

/// A Responses `tool_choice` in chat terms.
enum ToolChoice {
    /// Chat's `tool_choice` as is.
    Chat(Value),
    /// `allowed_tools`: chat's `tool_choice` (`auto` or `required`) over only these functions.
    /// Sent as a restricted `tools` list, which every chat vendor understands (few know chat's
    /// own `allowed_tools`).
    Allowed { mode: Value, names: Vec<String> },
}

fn convert_tool_choice(req: &Object<'_>) -> Result<Option<ToolChoice>, GatewayError> {
    let bad = |message: String| invalid("tool_choice", "invalid_value", message);
    let choice = match get(req, "tool_choice") {
        None => return Ok(None),
        Some(Json::Str(s)) => match s.as_ref() {
            c @ ("auto" | "none" | "required") => return Ok(Some(ToolChoice::Chat(c.into()))),
            other => {
                return Err(bad(format!(
                    "tool_choice must be auto, none, required or an object; got {other:?}"
                )))
            }
        },
        Some(c @ Json::Object(_)) => c,
        Some(_) => {
            return Err(wrong_type(
                "tool_choice",
                "tool_choice",
                "a string or an object",
            ))
        }
    };
    let named = |c: &Json<'_>, path: &str| -> Result<Value, GatewayError> {
        match c.get("name").and_then(Json::as_str) {
            Some(name) => Ok(json!({ "type": "function", "function": { "name": name } })),
            None => Err(bad(format!("{path}.name is required"))),
        }
    };
    match choice.get("type").and_then(Json::as_str) {
        Some("function") => named(choice, "tool_choice").map(|c| Some(ToolChoice::Chat(c))),
        Some("allowed_tools") => {
            let mode = match choice.get("mode").and_then(Json::as_str) {
                Some(m @ ("auto" | "required")) => m,
                _ => return Err(bad("tool_choice.mode must be auto or required".into())),
            };
            let Some(tools) = choice.get("tools").and_then(Json::as_array) else {
                return Err(bad("tool_choice.tools must be an array".into()));
            };
            let mut allowed = Vec::new();
            for (i, t) in tools.iter().enumerate() {
                let path = format!("tool_choice.tools[{i}]");
                if t.get("type").and_then(Json::as_str) != Some("function") {
                    return Err(bad(format!(
                        "{path}: only function tools can be allowed with this provider"
                    )));
                }
                match t.get("name").and_then(Json::as_str) {
                    Some(name) => allowed.push(name.to_owned()),
                    None => return Err(bad(format!("{path}.name is required"))),
                }
            }
            Ok(Some(ToolChoice::Allowed {
                mode: mode.into(),
                names: allowed,
            }))
        }
        Some(other) => Err(invalid(
            "tool_choice",
            "unsupported_value",
            format!(
                "tool_choice.type {other:?} names a tool only OpenAI runs; this provider \
                 accepts function tools only"
            ),
        )),
        None => Err(bad("tool_choice.type is required".into())),
    }
}

/// `text.format` as chat's `response_format`.
fn convert_text_format(req: &Object<'_>) -> Result<Option<Value>, GatewayError> {
    let Some(text) = get(req, "text") else {
        return Ok(None);
    };
    let text = text
        .as_object()
        .ok_or_else(|| wrong_type("text", "text", "an object"))?;
    let Some(format) = get(text, "format") else {
        return Ok(None);
    };
    let format = format
        .as_object()
        .ok_or_else(|| wrong_type("text", "text.format", "an object"))?;
    match get(format, "type").and_then(Json::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({ "type": "json_object" }))),
        Some("json_schema") => {
            let name = match get(format, "name") {
                Some(Json::Str(n)) => n.as_ref(),
                _ => {
                    return Err(invalid(
                        "text",
                        "missing_required_parameter",
                        "text.format.name is required for json_schema".into(),
                    ))
                }
            };
            let schema = match get(format, "schema") {
                Some(s @ Json::Object(_)) => s.to_value(),
                _ => {
                    return Err(invalid(
                        "text",
                        "missing_required_parameter",
                        "text.format.schema must be an object".into(),
                    ))
                }
            };
            let mut json_schema = json!({ "name": name, "schema": schema });
            if let Some(d) = get(format, "description").and_then(Json::as_str) {
                json_schema["description"] = d.into();
            }
            match get(format, "strict") {
                None => {}
                Some(Json::Bool(b)) => json_schema["strict"] = (*b).into(),
                Some(_) => return Err(wrong_type("text", "text.format.strict", "a boolean")),
            }
            Ok(Some(
                json!({ "type": "json_schema", "json_schema": json_schema }),
            ))
        }
        Some(other) => Err(invalid(
            "text",
            "invalid_value",
            format!("text.format.type must be text, json_object or json_schema; got {other:?}"),
        )),
        None => Err(wrong_type("text", "text.format.type", "a string")),
    }
}

/// `text.verbosity`, if set.
fn text_verbosity<'b>(req: &'b Object<'_>) -> Result<Option<&'b str>, GatewayError> {
    let Some(Json::Object(text)) = get(req, "text") else {
        // A `text` that is not an object is reported by `convert_text_format`.
        return Ok(None);
    };
    match get(text, "verbosity") {
        None => Ok(None),
        Some(Json::Str(v)) => Ok(Some(v)),
        Some(_) => Err(wrong_type("text", "text.verbosity", "a string")),
    }
}

fn reasoning_effort<'b>(req: &'b Object<'_>) -> Result<Option<&'b str>, GatewayError> {
    let Some(reasoning) = get(req, "reasoning") else {
        return Ok(None);
    };
    let reasoning = reasoning
        .as_object()
        .ok_or_else(|| wrong_type("reasoning", "reasoning", "an object"))?;
    match get(reasoning, "effort") {
        None => Ok(None),
        Some(Json::Str(e)) => Ok(Some(e)),
        Some(_) => Err(wrong_type("reasoning", "reasoning.effort", "a string")),
    }
}
