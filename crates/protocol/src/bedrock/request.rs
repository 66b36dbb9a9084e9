//! OpenAI chat-completions request -> Bedrock Converse request, and the upstream path.

use crate::borrowed_json::Json;
use crate::error::GatewayError;
use crate::fields::{VendorFamily, CHAT_FIELDS};
use serde_json::{json, Map, Value};

/// Per-provider Bedrock settings from the plugin config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BedrockOptions {
    /// `bedrockAdditionalFields` (Higress): an object merged into
    /// `additionalModelRequestFields`, for model-specific parameters such as `top_k`.
    pub additional_fields: Option<Map<String, Value>>,
    /// `maxTokens` when the client sent neither `max_tokens` nor `max_completion_tokens`
    /// (`None`: leave it to the model's default).
    pub default_max_tokens: Option<u32>,
}

/// Longest model id accepted (ARNs of inference profiles included).
const MAX_MODEL_LEN: usize = 2048;

/// `/model/{modelId}/converse`, or `/converse-stream` when streaming.
///
/// The model id (`anthropic.claude-3-5-sonnet-20240620-v1:0`, an inference profile such as
/// `us.anthropic...`, or an ARN) is percent-encoded as one path segment: everything but
/// ASCII letters, digits and `-._~` is escaped, so `:` becomes `%3A` and `/` `%2F`. AWS
/// SDKs send it the same way; [`sigv4`](super::sigv4) then signs the path as sent. An empty
/// id, one longer than 2048 bytes or one with control characters is a 400 naming `model`.
pub fn converse_path(model: &str, stream: bool) -> Result<String, GatewayError> {
    if model.is_empty() || model.len() > MAX_MODEL_LEN || model.chars().any(char::is_control) {
        return Err(GatewayError::invalid(
            "invalid_model",
            "model must be a Bedrock model id, inference profile id or ARN (1 to 2048 characters, no control characters)",
        )
        .with_param("model"));
    }
    let method = if stream {
        "converse-stream"
    } else {
        "converse"
    };
    Ok(format!("/model/{}/{method}", encode_segment(model)))
}

/// `bedrock-runtime.{region}.amazonaws.com`. A region outside `[a-z0-9-]` (1..=32 bytes)
/// is a config error (500 naming the field, not its value).
pub fn runtime_host(region: &str) -> Result<String, GatewayError> {
    let ok = !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
    if !ok {
        return Err(GatewayError::new(
            crate::ErrorKind::Internal,
            "invalid_provider_config",
            "the AWS region in the provider config is not a valid region name",
        ));
    }
    Ok(format!("bedrock-runtime.{region}.amazonaws.com"))
}

/// Percent-encode every byte outside RFC 3986's unreserved set.
pub(crate) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn invalid(param: &'static str, code: &'static str, message: String) -> GatewayError {
    GatewayError::invalid(code, message).with_param(param)
}

fn wrong_type(param: &'static str, path: &str, expected: &str) -> GatewayError {
    invalid(param, "invalid_type", format!("{path} must be {expected}"))
}

/// The value of `key`, `null` counting as absent.
fn get<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn opt_u32(obj: &Map<String, Value>, key: &'static str) -> Result<Option<u32>, GatewayError> {
    match get(obj, key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| wrong_type(key, key, "a non-negative integer")),
    }
}

fn opt_f64(obj: &Map<String, Value>, key: &'static str) -> Result<Option<f64>, GatewayError> {
    match get(obj, key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| wrong_type(key, key, "a number")),
    }
}

/// Translate an OpenAI chat-completions request body to a Bedrock Converse request body.
///
/// The model is not part of the body (it is in the path, see [`converse_path`]). Mappings:
/// - `system`/`developer` messages -> top-level `system` text blocks;
/// - `user` content: text, `image_url` data URLs -> `image` blocks (`png`, `jpeg`, `gif`,
///   `webp`, base64 bytes), `file` data URLs of PDFs -> `document` blocks; http(s) image
///   URLs are a 400 (Converse only takes inline bytes or S3 locations);
/// - `assistant` text and `tool_calls` -> `text` and `toolUse` blocks (arguments parsed);
/// - `tool` messages -> `toolResult` blocks of the following user turn;
/// - consecutive turns of one role are merged (Converse wants them alternating), blank
///   text is dropped (Converse rejects it);
/// - `max_completion_tokens`/`max_tokens`, `temperature`, `top_p`, `stop` ->
///   `inferenceConfig`; `tools` -> `toolConfig.tools[].toolSpec`, `tool_choice` `auto` /
///   `required` / named -> `toolChoice` `auto` / `any` / `tool`. `tool_choice: "none"` drops
///   the tools unless the history holds tool blocks (Converse then requires `toolConfig`);
/// - `response_format` `json_schema` -> `outputConfig.textFormat` (schema as a JSON string);
/// - `metadata` -> `requestMetadata`, `service_tier` `flex`/`priority` -> `serviceTier`;
/// - [`BedrockOptions::additional_fields`] -> `additionalModelRequestFields`, with the
///   client's `top_k` and `thinking` (or `reasoning_effort` as Claude's `thinking`, or as
///   Nova's `reasoningConfig`) over them: model-specific fields only some models take
///   (others answer 400).
///
/// Every top-level and nested field first follows its rule in [`CHAT_FIELDS`]
/// (Bedrock column): what Converse cannot carry is a 400 naming it, never dropped.
///
/// Errors are 400s naming the field: invalid JSON, empty `messages`, wrong types, unknown
/// roles, unparsable tool-call arguments, unsupported parts, refused fields.
pub fn chat_request_to_converse(
    body: &[u8],
    opts: &BedrockOptions,
) -> Result<Vec<u8>, GatewayError> {
    check_fields(body)?;
    let req: Value = serde_json::from_slice(body).map_err(|e| {
        GatewayError::invalid(
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    let req = req.as_object().ok_or_else(|| {
        GatewayError::invalid("invalid_type", "request body must be a JSON object")
    })?;
    crate::openai::check_request_fields(req)?;
    let messages = match get(req, "messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        Some(Value::Array(_)) => {
            return Err(invalid(
                "messages",
                "invalid_value",
                "messages must not be empty".into(),
            ))
        }
        Some(_) => return Err(wrong_type("messages", "messages", "an array")),
        None => {
            return Err(invalid(
                "messages",
                "missing_required_parameter",
                "messages is required".into(),
            ))
        }
    };
    let (system, turns) = convert_messages(messages)?;
    if turns.is_empty() {
        return Err(invalid(
            "messages",
            "invalid_value",
            "messages must contain at least one user or assistant message with content".into(),
        ));
    }
    let has_tool_blocks = turns.iter().any(|t| {
        t["content"].as_array().is_some_and(|c| {
            c.iter()
                .any(|b| b.get("toolUse").is_some() || b.get("toolResult").is_some())
        })
    });

    let mut out = Map::new();
    out.insert("messages".into(), Value::Array(turns));
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }

    let mut inference = Map::new();
    let family = ModelFamily::of(get(req, "model").and_then(Value::as_str).unwrap_or(""));
    let requested_max = match opt_u32(req, "max_completion_tokens")? {
        Some(n) => Some(n),
        None => opt_u32(req, "max_tokens")?,
    };
    // Amazon Nova reasons by level, not by token budget: its own `reasoningConfig`.
    let (thinking, nova_effort) = if family == ModelFamily::Nova {
        (None, nova_high_effort_rule(req, nova_reasoning(req)?)?)
    } else {
        (thinking(req, family)?, None)
    };
    let nova_high = nova_effort.as_ref().is_some_and(|e| e.level == NOVA_HIGH);
    let budget = thinking
        .as_ref()
        .and_then(|t| t.get("budget_tokens"))
        .and_then(Value::as_u64)
        .map(|b| u32::try_from(b).unwrap_or(u32::MAX));
    // Claude wants `max_tokens` above the thinking budget (the thinking counts against it):
    // a client's value at or below it is a 400, a missing one leaves room for an answer.
    let max_tokens = match (requested_max, budget) {
        (Some(n), Some(b)) if n <= b => {
            let param = if get(req, "max_completion_tokens").is_some() {
                "max_completion_tokens"
            } else {
                "max_tokens"
            };
            return Err(
                crate::anthropic::openai_to_anthropic::thinking_budget_exceeds(param, n, b),
            );
        }
        (Some(n), _) => Some(n),
        (None, Some(b)) => {
            let answer = opts
                .default_max_tokens
                .unwrap_or(DEFAULT_ANSWER_TOKENS)
                .max(1);
            Some(if answer > b {
                answer
            } else {
                b.saturating_add(answer)
            })
        }
        // At Nova's high level Bedrock takes no `maxTokens`, not even the gateway's default.
        (None, None) if nova_high => None,
        (None, None) => opts.default_max_tokens,
    };
    if let Some(n) = max_tokens {
        inference.insert("maxTokens".into(), json!(n));
    }
    if let Some(t) = opt_f64(req, "temperature")? {
        inference.insert("temperature".into(), json!(t));
    }
    if let Some(p) = opt_f64(req, "top_p")? {
        inference.insert("topP".into(), json!(p));
    }
    let stops = stop_sequences(req)?;
    if !stops.is_empty() {
        inference.insert("stopSequences".into(), json!(stops));
    }
    if !inference.is_empty() {
        out.insert("inferenceConfig".into(), Value::Object(inference));
    }

    if let Some(config) = tool_config(req, has_tool_blocks)? {
        out.insert("toolConfig".into(), config);
    }
    if let Some(format) = output_config(req)? {
        out.insert("outputConfig".into(), format);
    }
    if let Some(tags) = request_metadata(req)? {
        out.insert("requestMetadata".into(), tags);
    }
    if let Some(tier) = service_tier(req)? {
        out.insert("serviceTier".into(), json!({ "type": tier }));
    }
    let mut additional = opts.additional_fields.clone().unwrap_or_default();
    if let Some(k) = get(req, "top_k") {
        let k = k
            .as_u64()
            .ok_or_else(|| wrong_type("top_k", "top_k", "a non-negative integer"))?;
        match family {
            ModelFamily::Claude => {
                additional.insert("top_k".into(), json!(k));
            }
            ModelFamily::Nova => {
                let config = additional
                    .entry("inferenceConfig")
                    .or_insert_with(|| Value::Object(Map::new()));
                match config.as_object_mut() {
                    Some(config) => {
                        config.insert("topK".into(), json!(k));
                    }
                    None => *config = json!({ "topK": k }),
                }
            }
            ModelFamily::Other => return Err(model_specific("top_k")),
        }
    }
    if let Some(thinking) = thinking {
        additional.insert("thinking".into(), thinking);
    }
    if let Some(effort) = nova_effort {
        additional.insert("reasoningConfig".into(), nova_config(effort.level));
    }
    if !additional.is_empty() {
        out.insert(
            "additionalModelRequestFields".into(),
            Value::Object(additional),
        );
    }
    serde_json::to_vec(&Value::Object(out)).map_err(|e| {
        GatewayError::new(
            crate::ErrorKind::Internal,
            "encoding_failed",
            format!("could not encode the Converse request: {e}"),
        )
    })
}

/// The top-level and nested fields against [`CHAT_FIELDS`]' Bedrock column.
fn check_fields(body: &[u8]) -> Result<(), GatewayError> {
    // Malformed bodies are reported by the conversion with its own messages.
    let Ok(Json::Object(req)) = Json::from_slice(body) else {
        return Ok(());
    };
    CHAT_FIELDS.check(&req, VendorFamily::Bedrock)?;
    crate::fields::check_chat_nested(&req, VendorFamily::Bedrock)
}

/// `maxTokens` left for the answer when thinking is on and neither the client nor
/// [`BedrockOptions::default_max_tokens`] set a limit: the thinking budget comes on top.
pub const DEFAULT_ANSWER_TOKENS: u32 = 4096;

/// Which model-specific fields of `additionalModelRequestFields` a model takes, from its id
/// (a base model id, an inference profile id such as `us.anthropic.claude-...`, or an ARN
/// ending in one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModelFamily {
    /// `anthropic.claude*`: Claude's `top_k` and `thinking`.
    Claude,
    /// `amazon.nova*`: `inferenceConfig.topK`.
    Nova,
    /// Any other model (Llama, Mistral, ...) or an id that does not say (an application
    /// inference profile ARN): no model-specific field is sent for it.
    Other,
}

impl ModelFamily {
    fn of(model: &str) -> ModelFamily {
        let id = model.rsplit('/').next().unwrap_or(model);
        // Cross-region inference profiles prefix the base id with a geography (`us.`,
        // `eu.`, `apac.`, `global.`, ...).
        let base = match id.split_once('.') {
            Some((geo, rest)) if !geo.contains('-') || geo == "us-gov" => {
                if rest.starts_with("anthropic.") || rest.starts_with("amazon.") {
                    rest
                } else {
                    id
                }
            }
            _ => id,
        };
        if base.starts_with("anthropic.claude") {
            ModelFamily::Claude
        } else if base.starts_with("amazon.nova") {
            ModelFamily::Nova
        } else {
            ModelFamily::Other
        }
    }
}

/// The 400 for a model-specific field the model of the request does not take in the form
/// the gateway knows.
fn model_specific(param: &'static str) -> GatewayError {
    invalid(
        param,
        "unsupported_parameter",
        format!(
            "{param} cannot be sent to this Bedrock model: the gateway maps it for Claude \
             models (anthropic.claude*) and Amazon Nova (amazon.nova*) only; set the model's \
             own field in the provider's bedrockAdditionalFields instead"
        ),
    )
}

/// `thinking` (Anthropic's object, as is) or else `reasoning_effort` as Claude's `thinking`
/// (budgets 1024/4096/16384; `none` asks for nothing), for `additionalModelRequestFields`:
/// Claude models (Nova has [`nova_reasoning`]; a 400 naming the field for others).
fn thinking(req: &Map<String, Value>, family: ModelFamily) -> Result<Option<Value>, GatewayError> {
    let out = claude_thinking(req)?;
    if out.is_some() && family != ModelFamily::Claude {
        let param = if get(req, "thinking").is_some() {
            "thinking"
        } else {
            "reasoning_effort"
        };
        return Err(model_specific(param));
    }
    Ok(out)
}

/// Nova's top reasoning level. Bedrock refuses `maxTokens`, `temperature` and `topP` with it
/// (the model decides how long it thinks and answers).
const NOVA_HIGH: &str = "high";

/// A reasoning level for Amazon Nova, and whether the client named it (`reasoning_effort`,
/// or a Messages client's `output_config.effort`) rather than the gateway deriving it from a
/// `thinking` budget.
struct NovaEffort {
    level: &'static str,
    named: bool,
}

/// Bedrock's rule for Nova's high level, applied before the request leaves: with the client's
/// `max_tokens`/`max_completion_tokens`, `temperature` or `top_p` present, a level the client
/// named is a 400 naming that field (never dropped), and a level derived from a `thinking`
/// budget is lowered to medium (the nearest level that keeps the client's limits; Messages
/// requests always carry `max_tokens`).
fn nova_high_effort_rule(
    req: &Map<String, Value>,
    effort: Option<NovaEffort>,
) -> Result<Option<NovaEffort>, GatewayError> {
    let Some(effort) = effort else {
        return Ok(None);
    };
    if effort.level != NOVA_HIGH {
        return Ok(Some(effort));
    }
    let sampling = [
        "max_completion_tokens",
        "max_tokens",
        "temperature",
        "top_p",
    ]
    .into_iter()
    .find(|k| get(req, k).is_some());
    match sampling {
        None => Ok(Some(effort)),
        Some(param) if effort.named => Err(invalid(
            param,
            "unsupported_parameter",
            format!(
                "`{param}` cannot be sent to Amazon Nova with high reasoning effort: Bedrock \
                 requires max_tokens, temperature and top_p unset at that level (the model sets \
                 its own output length); remove `{param}` or ask for medium effort"
            ),
        )),
        Some(_) => Ok(Some(NovaEffort {
            level: "medium",
            named: false,
        })),
    }
}

/// Reasoning for Amazon Nova models: `reasoningConfig` of `additionalModelRequestFields`,
/// `{type: enabled, maxReasoningEffort}` with Nova's three levels. From Anthropic's
/// `thinking` object when there is one (Messages clients; its budget as the level it stands
/// for, [`effort_for_budget`](crate::anthropic::anthropic_to_openai::effort_for_budget);
/// `disabled` and `adaptive` ask for nothing), else from `reasoning_effort` (`minimal` as
/// `low`, `xhigh` as `high`, `none` asks for nothing). Nova's default is no extended
/// thinking. Whether the model reasons is the model's: Bedrock answers 400 for a Nova model
/// without extended thinking. [`nova_high_effort_rule`] then applies Bedrock's limits on the
/// high level.
fn nova_reasoning(req: &Map<String, Value>) -> Result<Option<NovaEffort>, GatewayError> {
    if let Some(t) = get(req, "thinking") {
        let t = t
            .as_object()
            .ok_or_else(|| wrong_type("thinking", "thinking", "an object"))?;
        let budget = t.get("budget_tokens");
        let effort = match t.get("type").and_then(Value::as_str) {
            Some("disabled" | "adaptive") => return Ok(None),
            Some("enabled") => match budget.and_then(Value::as_u64) {
                Some(b) => crate::anthropic::anthropic_to_openai::effort_for_budget(b),
                None => {
                    return Err(wrong_type(
                        "thinking",
                        "thinking.budget_tokens",
                        "a non-negative integer",
                    ))
                }
            },
            _ => {
                return Err(invalid(
                    "thinking",
                    "invalid_value",
                    "thinking.type must be enabled, disabled or adaptive".into(),
                ))
            }
        };
        return Ok(Some(NovaEffort {
            level: effort,
            named: false,
        }));
    }
    let level = match get(req, "reasoning_effort") {
        None => return Ok(None),
        Some(v) => match v.as_str() {
            Some("none") => return Ok(None),
            Some("minimal" | "low") => "low",
            Some("medium") => "medium",
            Some("high" | "xhigh") => NOVA_HIGH,
            _ => return Err(bad_effort()),
        },
    };
    Ok(Some(NovaEffort { level, named: true }))
}

fn nova_config(effort: &str) -> Value {
    json!({ "type": "enabled", "maxReasoningEffort": effort })
}

fn bad_effort() -> GatewayError {
    invalid(
        "reasoning_effort",
        "invalid_value",
        "reasoning_effort must be none, minimal, low, medium, high or xhigh".into(),
    )
}

fn claude_thinking(req: &Map<String, Value>) -> Result<Option<Value>, GatewayError> {
    if let Some(t) = get(req, "thinking") {
        if !t.is_object() {
            return Err(wrong_type("thinking", "thinking", "an object"));
        }
        // `disabled` asks for nothing beyond the default.
        if t.get("type").and_then(Value::as_str) == Some("disabled") {
            return Ok(None);
        }
        return Ok(Some(t.clone()));
    }
    let budget = match get(req, "reasoning_effort") {
        None => return Ok(None),
        Some(v) => match v.as_str() {
            Some("none") => return Ok(None),
            Some("minimal" | "low") => 1024,
            Some("medium") => 4096,
            Some("high" | "xhigh") => 16384,
            _ => return Err(bad_effort()),
        },
    };
    Ok(Some(json!({ "type": "enabled", "budget_tokens": budget })))
}

/// `metadata` (string tags) -> `requestMetadata`, the tags of Bedrock's invocation logs.
fn request_metadata(req: &Map<String, Value>) -> Result<Option<Value>, GatewayError> {
    let Some(meta) = get(req, "metadata") else {
        return Ok(None);
    };
    let meta = meta
        .as_object()
        .ok_or_else(|| wrong_type("metadata", "metadata", "an object of strings"))?;
    if meta.is_empty() {
        return Ok(None);
    }
    for (k, v) in meta {
        if !v.is_string() {
            return Err(wrong_type("metadata", &format!("metadata.{k}"), "a string"));
        }
    }
    Ok(Some(Value::Object(meta.clone())))
}

/// `service_tier` -> Bedrock's `serviceTier.type`: `flex` and `priority` as named, `auto` and
/// `default` are the standard tier (nothing to send), `scale` has no equivalent.
fn service_tier(req: &Map<String, Value>) -> Result<Option<&'static str>, GatewayError> {
    match get(req, "service_tier") {
        None => Ok(None),
        Some(v) => match v.as_str() {
            Some("auto" | "default") => Ok(None),
            Some("flex") => Ok(Some("flex")),
            Some("priority") => Ok(Some("priority")),
            _ => Err(invalid(
                "service_tier",
                "unsupported_value",
                "service_tier must be auto, default, flex or priority for Bedrock providers".into(),
            )),
        },
    }
}

/// `response_format: {"type": "json_schema", "json_schema": {name, schema, description}}` ->
/// `outputConfig.textFormat` (structured output; Converse takes the schema as a JSON
/// string). `text` asks for nothing; `json_object` is refused: Converse has no schema-less
/// JSON mode.
fn output_config(req: &Map<String, Value>) -> Result<Option<Value>, GatewayError> {
    let Some(format) = get(req, "response_format") else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("json_schema") => {}
        Some("text") => return Ok(None),
        Some("json_object") => {
            return Err(invalid(
                "response_format",
                "unsupported_value",
                "response_format json_object cannot be sent to Bedrock providers: Converse has \
                 no schema-less JSON mode; send a json_schema format"
                    .into(),
            ))
        }
        _ => {
            return Err(invalid(
                "response_format",
                "invalid_value",
                "response_format.type must be text, json_object or json_schema".into(),
            ))
        }
    }
    let spec = format.get("json_schema");
    let schema = spec
        .and_then(|s| s.get("schema"))
        .filter(|s| s.is_object())
        .ok_or_else(|| {
            wrong_type(
                "response_format",
                "response_format.json_schema.schema",
                "a JSON schema object",
            )
        })?;
    let mut json_schema = Map::new();
    json_schema.insert("schema".into(), Value::String(schema.to_string()));
    for key in ["name", "description"] {
        if let Some(v) = spec.and_then(|s| s.get(key)).and_then(Value::as_str) {
            json_schema.insert(key.into(), json!(v));
        }
    }
    Ok(Some(json!({
        "textFormat": {"type": "json_schema", "structure": {"jsonSchema": json_schema}}
    })))
}

fn stop_sequences(req: &Map<String, Value>) -> Result<Vec<String>, GatewayError> {
    let list = match get(req, "stop") {
        None => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| wrong_type("stop", &format!("stop[{i}]"), "a string"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(wrong_type(
                "stop",
                "stop",
                "a string or an array of strings",
            ))
        }
    };
    Ok(list.into_iter().filter(|s| !s.is_empty()).collect())
}

/// System blocks and the merged user/assistant turns.
type Converted = (Vec<Value>, Vec<Value>);

fn convert_messages(messages: &[Value]) -> Result<Converted, GatewayError> {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, msg) in messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        let msg = msg
            .as_object()
            .ok_or_else(|| wrong_type("messages", &path, "an object"))?;
        let role = match msg.get("role") {
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
                system.extend(text_only(content, &cpath)?);
                continue;
            }
            "user" => ("user", user_blocks(content, &cpath)?),
            "assistant" => ("assistant", assistant_blocks(msg, &path)?),
            "tool" => ("user", vec![tool_result(msg, &path)?]),
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
            Some((last, content)) if *last == role => content.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    // Tool results first in their turn, as the assistant turn before expects them.
    let turns = turns
        .into_iter()
        .map(|(role, content)| {
            let (mut results, rest): (Vec<Value>, Vec<Value>) = content
                .into_iter()
                .partition(|b| b.get("toolResult").is_some());
            results.extend(rest);
            json!({ "role": role, "content": results })
        })
        .collect();
    Ok((system, turns))
}

fn text_block(text: &str) -> Option<Value> {
    (!text.trim().is_empty()).then(|| json!({ "text": text }))
}

fn part_type<'v>(part: &'v Value, path: &str) -> Result<&'v str, GatewayError> {
    part.get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| wrong_type("messages", &format!("{path}.type"), "a string"))
}

fn part_str<'v>(part: &'v Value, key: &str, path: &str) -> Result<&'v str, GatewayError> {
    part.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| wrong_type("messages", &format!("{path}.{key}"), "a string"))
}

/// Content that may only hold text: a string or `text` parts.
fn text_only(content: Option<&Value>, path: &str) -> Result<Vec<Value>, GatewayError> {
    match content {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(text_block(s).into_iter().collect()),
        Some(Value::Array(parts)) => {
            let mut out = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let ppath = format!("{path}[{j}]");
                match part_type(part, &ppath)? {
                    "text" => out.extend(text_block(part_str(part, "text", &ppath)?)),
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

/// `data:<media type>;base64,<data>` split into media type and data.
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    Some((meta.strip_suffix(";base64")?, data))
}

fn user_blocks(content: Option<&Value>, path: &str) -> Result<Vec<Value>, GatewayError> {
    let Some(Value::Array(parts)) = content else {
        return text_only(content, path);
    };
    let mut out = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let ppath = format!("{path}[{j}]");
        match part_type(part, &ppath)? {
            "text" => out.extend(text_block(part_str(part, "text", &ppath)?)),
            "image_url" => {
                let upath = format!("{ppath}.image_url.url");
                let url = match part.get("image_url") {
                    Some(Value::String(u)) => u.as_str(),
                    Some(obj) => obj
                        .get("url")
                        .and_then(Value::as_str)
                        .ok_or_else(|| wrong_type("messages", &upath, "a string"))?,
                    None => {
                        return Err(invalid(
                            "messages",
                            "missing_required_parameter",
                            format!("{ppath}.image_url is required"),
                        ))
                    }
                };
                out.push(image_block(url, &upath)?);
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
                            format!("{fpath} is required: only inline files (data URLs) can be sent to Bedrock"),
                        )
                    })?;
                let (media_type, data) = parse_data_url(data)
                    .filter(|(m, _)| *m == "application/pdf")
                    .ok_or_else(|| {
                        invalid(
                            "messages",
                            "invalid_value",
                            format!("{fpath} must be a base64 data URL of a PDF"),
                        )
                    })?;
                let _ = media_type;
                // Converse wants a document name: letters, digits, spaces, hyphens, brackets.
                let name = part
                    .pointer("/file/filename")
                    .and_then(Value::as_str)
                    .map(document_name)
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| format!("document-{}", out.len() + 1));
                out.push(json!({"document": {"format": "pdf", "name": name, "source": {"bytes": data}}}));
            }
            other => {
                return Err(invalid(
                    "messages",
                    "unsupported_value",
                    format!("{ppath}.type {other:?} is not supported by Bedrock (text, image_url and file are)"),
                ))
            }
        }
    }
    Ok(out)
}

/// A file name reduced to what Converse accepts in a document name.
fn document_name(name: &str) -> String {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    stem.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '(' | ')' | '[' | ']') {
                c
            } else {
                '-'
            }
        })
        .take(200)
        .collect()
}

fn image_block(url: &str, path: &str) -> Result<Value, GatewayError> {
    if url.starts_with("https://") || url.starts_with("http://") {
        return Err(invalid(
            "messages",
            "unsupported_value",
            format!("{path}: Bedrock takes images inline only; send a base64 data URL"),
        ));
    }
    let (media_type, data) = parse_data_url(url).ok_or_else(|| {
        invalid(
            "messages",
            "invalid_value",
            format!("{path} must be a base64 data URL (data:<type>;base64,...)"),
        )
    })?;
    let format = match media_type {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        other => {
            return Err(invalid(
                "messages",
                "unsupported_value",
                format!("{path}: image type {other:?} is not supported by Bedrock (png, jpeg, gif, webp are)"),
            ))
        }
    };
    Ok(json!({"image": {"format": format, "source": {"bytes": data}}}))
}

fn assistant_blocks(msg: &Map<String, Value>, path: &str) -> Result<Vec<Value>, GatewayError> {
    let cpath = format!("{path}.content");
    let mut out = Vec::new();
    match get(msg, "content") {
        Some(Value::Array(parts)) => {
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
                out.extend(text_block(part_str(part, key, &ppath)?));
            }
        }
        other => out.extend(text_only(other, &cpath)?),
    }
    // An earlier refusal is what the assistant said (OpenAI sends it instead of content).
    match get(msg, "refusal") {
        None => {}
        Some(Value::String(r))
            if !out
                .iter()
                .any(|b| b.get("text").and_then(Value::as_str) == Some(r)) =>
        {
            out.extend(text_block(r));
        }
        Some(Value::String(_)) => {}
        Some(_) => {
            return Err(wrong_type(
                "messages",
                &format!("{path}.refusal"),
                "a string",
            ))
        }
    }
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
        out.push(json!({"toolUse": {"toolUseId": tool_id(id), "name": name, "input": input}}));
    }
    Ok(out)
}

fn tool_result(msg: &Map<String, Value>, path: &str) -> Result<Value, GatewayError> {
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
    let mut content = match get(msg, "content") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![json!({ "text": s })],
        array @ Some(Value::Array(_)) => user_blocks(array, &cpath)?,
        Some(_) => {
            return Err(wrong_type(
                "messages",
                &cpath,
                "a string or an array of parts",
            ))
        }
    };
    if content.is_empty() {
        // Converse wants at least one content block in a tool result.
        content.push(json!({ "text": "" }));
    }
    Ok(json!({"toolResult": {"toolUseId": tool_id(id), "content": content}}))
}

/// Converse accepts tool ids matching `^[a-zA-Z0-9_-]+$` of at most 64 characters; ids
/// minted by other vendors may not. Applied to `toolUse` and `toolResult` alike, so pairs
/// still match.
pub(crate) fn tool_id(id: &str) -> String {
    id.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn tool_config(
    req: &Map<String, Value>,
    has_tool_blocks: bool,
) -> Result<Option<Value>, GatewayError> {
    let tools = match get(req, "tools") {
        None => return Ok(None),
        Some(Value::Array(t)) if t.is_empty() => return Ok(None),
        Some(Value::Array(t)) => t,
        Some(_) => return Err(wrong_type("tools", "tools", "an array")),
    };
    let allowed = match get(req, "tool_choice") {
        Some(c @ Value::Object(_)) => crate::openai::allowed_tools(c)?,
        _ => None,
    };
    let mut specs = Vec::with_capacity(tools.len());
    let mut names = Vec::with_capacity(tools.len());
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
        let mut spec = Map::new();
        spec.insert("name".into(), json!(name));
        match tool.pointer("/function/description") {
            None | Some(Value::Null) => {}
            Some(Value::String(d)) if d.is_empty() => {}
            Some(Value::String(d)) => {
                spec.insert("description".into(), json!(d));
            }
            Some(_) => {
                return Err(wrong_type(
                    "tools",
                    &format!("{path}.function.description"),
                    "a string",
                ))
            }
        }
        let schema = match tool.pointer("/function/parameters") {
            None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
            Some(s @ Value::Object(_)) => s.clone(),
            Some(_) => {
                return Err(wrong_type(
                    "tools",
                    &format!("{path}.function.parameters"),
                    "a JSON schema object",
                ))
            }
        };
        spec.insert("inputSchema".into(), json!({ "json": schema }));
        match tool.pointer("/function/strict") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(strict)) => {
                spec.insert("strict".into(), json!(strict));
            }
            Some(_) => {
                return Err(wrong_type(
                    "tools",
                    &format!("{path}.function.strict"),
                    "a boolean",
                ))
            }
        }
        specs.push(json!({ "toolSpec": spec }));
        names.push(name);
    }
    if let Some((_, allowed)) = &allowed {
        // Converse has no allowed-tools choice: only the allowed functions are sent.
        if let Some(missing) = allowed.iter().find(|n| !names.contains(&n.as_str())) {
            return Err(invalid(
                "tool_choice",
                "invalid_value",
                format!("tool_choice.allowed_tools names {missing:?}, which is not in tools"),
            ));
        }
        let keep: Vec<bool> = names
            .iter()
            .map(|n| allowed.iter().any(|a| a == n))
            .collect();
        let mut keep = keep.into_iter();
        specs.retain(|_| keep.next().unwrap_or(false));
    }
    let choice = match get(req, "tool_choice") {
        None => None,
        Some(_) if allowed.is_some() => {
            let required = allowed.as_ref().is_some_and(|(r, _)| *r);
            Some(if required {
                json!({"any": {}})
            } else {
                json!({"auto": {}})
            })
        }
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"auto": {}})),
            "required" => Some(json!({"any": {}})),
            "none" if has_tool_blocks => None,
            "none" => return Ok(None),
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
        Some(c) => {
            let name = c
                .pointer("/function/name")
                .or_else(|| c.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    wrong_type("tool_choice", "tool_choice.function.name", "a string")
                })?;
            if !names.contains(&name) {
                return Err(invalid(
                    "tool_choice",
                    "invalid_value",
                    format!("tool_choice names {name:?}, which is not in tools"),
                ));
            }
            Some(json!({"tool": {"name": name}}))
        }
    };
    let mut config = Map::new();
    config.insert("tools".into(), Value::Array(specs));
    if let Some(choice) = choice {
        config.insert("toolChoice".into(), choice);
    }
    Ok(Some(Value::Object(config)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn model_families_from_ids_profiles_and_arns() {
        for (id, want) in [
            ("anthropic.claude-3-5-sonnet-20240620-v1:0", ModelFamily::Claude),
            ("us.anthropic.claude-sonnet-4-20250514-v1:0", ModelFamily::Claude),
            ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", ModelFamily::Claude),
            ("us-gov.anthropic.claude-3-haiku-20240307-v1:0", ModelFamily::Claude),
            (
                "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-7-sonnet-20250219-v1:0",
                ModelFamily::Claude,
            ),
            ("amazon.nova-pro-v1:0", ModelFamily::Nova),
            ("apac.amazon.nova-lite-v1:0", ModelFamily::Nova),
            ("meta.llama3-70b-instruct-v1:0", ModelFamily::Other),
            ("us.meta.llama3-2-1b-instruct-v1:0", ModelFamily::Other),
            ("mistral.mistral-large-2407-v1:0", ModelFamily::Other),
            ("amazon.titan-text-express-v1", ModelFamily::Other),
            (
                "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123",
                ModelFamily::Other,
            ),
            ("", ModelFamily::Other),
        ] {
            assert_eq!(ModelFamily::of(id), want, "{id}");
        }
    }

    /// `reasoning_effort` and Anthropic's `thinking` to Nova: every level, and the requests
    /// for none, as `reasoningConfig`.
    #[test]
    fn nova_reasoning_levels() {
        let effort = |e: &str| json!({"reasoning_effort": e});
        let thinking = |t: Value| json!({"thinking": t});
        let budget = |b: u64| thinking(json!({"type": "enabled", "budget_tokens": b}));
        for (field, want) in [
            (effort("minimal"), Some("low")),
            (effort("low"), Some("low")),
            (effort("medium"), Some("medium")),
            (effort("high"), Some("high")),
            (effort("xhigh"), Some("high")),
            (effort("none"), None),
            (budget(1024), Some("low")),
            (budget(4095), Some("low")),
            (budget(4096), Some("medium")),
            (budget(16383), Some("medium")),
            (budget(16384), Some("high")),
            (thinking(json!({"type": "disabled"})), None),
            (thinking(json!({"type": "adaptive"})), None),
        ] {
            let mut body = json!({"model": "us.amazon.nova-2-lite-v1:0",
                "messages": [{"role": "user", "content": "hi"}]});
            for (k, v) in field.as_object().unwrap() {
                body[k] = v.clone();
            }
            let out: Value = serde_json::from_slice(
                &chat_request_to_converse(body.to_string().as_bytes(), &BedrockOptions::default())
                    .unwrap(),
            )
            .unwrap();
            let config = out.pointer("/additionalModelRequestFields/reasoningConfig");
            match want {
                Some(level) => assert_eq!(
                    config,
                    Some(&json!({"type": "enabled", "maxReasoningEffort": level})),
                    "{field}"
                ),
                None => assert!(out.get("additionalModelRequestFields").is_none(), "{out}"),
            }
            // Nova has no token budget: `max_tokens` is left as the client sent it (none).
            assert!(out.pointer("/inferenceConfig/maxTokens").is_none(), "{out}");
        }
    }

    /// Bedrock takes no `maxTokens`, `temperature` or `topP` at Nova's high level: a level the
    /// client named is refused with the field, a budget's level is lowered to medium, and the
    /// gateway's own default `maxTokens` is left out.
    #[test]
    fn nova_high_effort_sends_no_sampling_limits() {
        let opts = BedrockOptions {
            default_max_tokens: Some(1000),
            ..BedrockOptions::default()
        };
        let convert = |extra: Value| {
            let mut body = json!({"model": "us.amazon.nova-2-lite-v1:0",
                "messages": [{"role": "user", "content": "hi"}]});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            chat_request_to_converse(body.to_string().as_bytes(), &opts)
                .map(|out| serde_json::from_slice::<Value>(&out).unwrap())
        };
        for (extra, param) in [
            (
                json!({"reasoning_effort": "high", "max_tokens": 50}),
                "max_tokens",
            ),
            (
                json!({"reasoning_effort": "high", "max_completion_tokens": 50}),
                "max_completion_tokens",
            ),
            (
                json!({"reasoning_effort": "xhigh", "temperature": 0.2}),
                "temperature",
            ),
            (json!({"reasoning_effort": "high", "top_p": 0.9}), "top_p"),
        ] {
            let e = convert(extra.clone()).unwrap_err();
            assert_eq!(
                (e.status(), e.param, e.code),
                (400, Some(param), "unsupported_parameter"),
                "{extra}"
            );
            assert!(e.message.contains("medium effort"), "{}", e.message);
        }
        let level = |out: &Value| {
            out.pointer("/additionalModelRequestFields/reasoningConfig/maxReasoningEffort")
                .cloned()
        };
        // High with nothing to conflict: no maxTokens at all, not even the default; a null
        // counts as absent and stop sequences are kept.
        let out = convert(json!({"reasoning_effort": "high", "temperature": null, "stop": ["x"]}))
            .unwrap();
        assert_eq!(level(&out), Some(json!("high")), "{out}");
        assert_eq!(
            out["inferenceConfig"],
            json!({"stopSequences": ["x"]}),
            "{out}"
        );
        // Lower levels keep every limit, and the default applies.
        let out =
            convert(json!({"reasoning_effort": "medium", "max_tokens": 50, "temperature": 0.2}))
                .unwrap();
        assert_eq!(level(&out), Some(json!("medium")), "{out}");
        assert_eq!(
            out["inferenceConfig"],
            json!({"maxTokens": 50, "temperature": 0.2}),
            "{out}"
        );
        let out = convert(json!({"reasoning_effort": "low"})).unwrap();
        assert_eq!(out["inferenceConfig"]["maxTokens"], 1000, "{out}");
        // A budget standing for high: high without limits, medium with the client's limit.
        let budget = json!({"type": "enabled", "budget_tokens": 20000});
        let out = convert(json!({"thinking": budget})).unwrap();
        assert_eq!(level(&out), Some(json!("high")), "{out}");
        assert!(out.get("inferenceConfig").is_none(), "{out}");
        let out = convert(json!({"thinking": budget, "max_tokens": 30000})).unwrap();
        assert_eq!(level(&out), Some(json!("medium")), "{out}");
        assert_eq!(out["inferenceConfig"]["maxTokens"], 30000, "{out}");
    }

    #[test]
    fn paths_encode_the_model_id() {
        assert_eq!(
            converse_path("anthropic.claude-3-5-sonnet-20240620-v1:0", false).unwrap(),
            "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
        );
        assert_eq!(
            converse_path("us.meta.llama3-2-1b-instruct-v1:0", true).unwrap(),
            "/model/us.meta.llama3-2-1b-instruct-v1%3A0/converse-stream"
        );
        assert_eq!(
            converse_path(
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.x",
                false
            )
            .unwrap(),
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.x/converse"
        );
        assert_eq!(
            converse_path("a/../b?c#d%e f", false).unwrap(),
            "/model/a%2F..%2Fb%3Fc%23d%25e%20f/converse"
        );
        for bad in ["", "a\r\nb", "a\0"] {
            let e = converse_path(bad, false).unwrap_err();
            assert_eq!((e.status(), e.param), (400, Some("model")));
        }
        assert!(converse_path(&"a".repeat(2049), false).is_err());
    }

    #[test]
    fn runtime_hosts() {
        assert_eq!(
            runtime_host("us-east-1").unwrap(),
            "bedrock-runtime.us-east-1.amazonaws.com"
        );
        for bad in ["", "US-EAST-1", "us-east-1.evil.com/", "a b"] {
            assert_eq!(runtime_host(bad).unwrap_err().status(), 500, "{bad:?}");
        }
    }

    #[test]
    fn tool_ids_are_sanitised() {
        assert_eq!(tool_id("call.1:x"), "call_1_x");
        assert_eq!(tool_id(&"a".repeat(80)).len(), 64);
    }
}
