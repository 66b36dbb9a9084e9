//! Wire types the Anthropic translators read and write.
//!
//! Requests the gateway sends to Anthropic are typed and written from these structs, so no
//! field outside them can reach the vendor (Anthropic answers 400 to unknown top-level fields).
//! Everything read from a vendor is lenient: missing fields default, unknown block, delta and
//! event types land in an `Other` variant and are skipped by the translators.

use crate::borrowed_json::{
    write_json, write_list, write_number, write_object, write_str, Json, Object,
};
use crate::stream::Usage;
use serde::Deserialize;
use serde_json::{Number, Value};
use std::borrow::Cow;

// ---------------------------------------------------------------------------------------------
// Anthropic requests (written by `openai_to_anthropic`)
// ---------------------------------------------------------------------------------------------

/// The body of `POST /v1/messages`, restricted to the fields the gateway sets. Strings borrow
/// from the client's parsed request.
///
/// Written by hand ([`MessagesRequest::write`]) rather than through serde: this runs for every
/// request, and most of its cost was serde_json escaping strings byte by byte. The text is the
/// one `#[derive(Serialize)]` gave: fields in declaration order, `None` and empty lists left
/// out, enums tagged with `type` first.
#[derive(Debug)]
pub(crate) struct MessagesRequest<'a> {
    pub model: &'a str,
    pub max_tokens: u32,
    pub messages: Vec<Message<'a>>,
    /// Left out when empty.
    pub system: Vec<RequestBlock<'a>>,
    /// Left out when empty.
    pub stop_sequences: Vec<&'a str>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub metadata: Option<Metadata<'a>>,
    /// Left out when empty.
    pub tools: Vec<Tool<'a>>,
    pub tool_choice: Option<ToolChoice<'a>>,
    pub thinking: Option<Thinking>,
    /// `{"format": {...}}` for structured outputs (see [`claude_output_format`]).
    ///
    /// [`claude_output_format`]: crate::anthropic::claude_output_format
    pub output_config: Option<Value>,
    pub stream: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    User,
    Assistant,
}

/// One turn; consecutive turns of the same role are merged before sending.
#[derive(Debug)]
pub(crate) struct Message<'a> {
    pub role: Role,
    pub content: Vec<RequestBlock<'a>>,
}

/// A content block of a request.
#[derive(Debug)]
pub(crate) enum RequestBlock<'a> {
    Text {
        text: &'a str,
        /// The client's object, written as given (keys sorted, as everywhere JSON passes
        /// through).
        cache_control: Option<&'a Json<'a>>,
    },
    Image {
        source: Source<'a>,
    },
    Document {
        source: Source<'a>,
        /// The file's name (chat `file.filename`).
        title: Option<&'a str>,
    },
    ToolUse {
        id: Cow<'a, str>,
        name: &'a str,
        input: Json<'a>,
    },
    ToolResult {
        tool_use_id: Cow<'a, str>,
        content: ToolResultContent<'a>,
    },
}

impl RequestBlock<'_> {
    pub fn is_tool_result(&self) -> bool {
        matches!(self, RequestBlock::ToolResult { .. })
    }
}

/// Where an image or document comes from.
#[derive(Debug)]
pub(crate) enum Source<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

/// A tool result is either plain text or a list of text/image blocks.
#[derive(Debug)]
pub(crate) enum ToolResultContent<'a> {
    Text(&'a str),
    Blocks(Vec<RequestBlock<'a>>),
}

#[derive(Debug)]
pub(crate) struct Tool<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub input_schema: InputSchema<'a>,
    /// Strict tool use: Claude validates the call's input against the schema.
    pub strict: Option<bool>,
}

/// A tool's JSON schema: the client's `parameters` object with `"type": "object"` added when
/// it has no `type` (Anthropic requires one; `{}` is a common way to say "no arguments").
#[derive(Debug, Clone, Copy)]
pub(crate) struct InputSchema<'a>(pub &'a Object<'a>);

/// The schema of a tool sent without `parameters`.
static NO_PARAMETERS: [(Cow<'static, str>, Json<'static>); 2] = [
    (Cow::Borrowed("properties"), Json::Object(Vec::new())),
    (Cow::Borrowed("type"), Json::Str(Cow::Borrowed("object"))),
];

static OBJECT_TYPE: Json<'static> = Json::Str(Cow::Borrowed("object"));

impl InputSchema<'_> {
    /// `{"type": "object", "properties": {}}`.
    pub fn no_parameters() -> InputSchema<'static> {
        InputSchema(&NO_PARAMETERS)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ToolChoice<'a> {
    Auto {
        disable_parallel_tool_use: Option<bool>,
    },
    Any {
        disable_parallel_tool_use: Option<bool>,
    },
    Tool {
        name: &'a str,
        disable_parallel_tool_use: Option<bool>,
    },
    None,
}

impl ToolChoice<'_> {
    /// Whether the model is forced to call a tool (Anthropic refuses thinking with that).
    pub fn forces_tool_use(&self) -> bool {
        matches!(self, ToolChoice::Any { .. } | ToolChoice::Tool { .. })
    }
}

#[derive(Debug)]
pub(crate) struct Metadata<'a> {
    pub user_id: &'a str,
}

/// Extended thinking: `{"type": "enabled", "budget_tokens": N}` or `{"type": "adaptive"}`
/// (the model decides how much to think).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Thinking {
    Enabled { budget_tokens: u32 },
    Adaptive,
}

/// The members of one JSON object being written: commas and keys (plain ASCII names).
struct Members<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl<'o> Members<'o> {
    fn open(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        Members { out, first: true }
    }

    /// Start member `key`; its value is written to the returned buffer.
    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    fn str(&mut self, key: &str, value: &str) {
        write_str(self.key(key), value);
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

fn write_bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// A float as serde_json writes an `f64` (`null` when not finite).
fn write_f64(out: &mut Vec<u8>, f: f64) {
    match Number::from_f64(f) {
        Some(n) => write_number(out, &n),
        None => out.extend_from_slice(b"null"),
    }
}

impl MessagesRequest<'_> {
    /// Append the request body to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let mut m = Members::open(out);
        m.str("model", self.model);
        write_number(m.key("max_tokens"), &self.max_tokens.into());
        write_list(m.key("messages"), &self.messages, Message::write);
        if !self.system.is_empty() {
            write_list(m.key("system"), &self.system, RequestBlock::write);
        }
        if !self.stop_sequences.is_empty() {
            write_list(m.key("stop_sequences"), &self.stop_sequences, |s, out| {
                write_str(out, s)
            });
        }
        if let Some(t) = self.temperature {
            write_f64(m.key("temperature"), t);
        }
        if let Some(p) = self.top_p {
            write_f64(m.key("top_p"), p);
        }
        if let Some(k) = self.top_k {
            write_number(m.key("top_k"), &k.into());
        }
        if let Some(metadata) = &self.metadata {
            let mut o = Members::open(m.key("metadata"));
            o.str("user_id", metadata.user_id);
            o.close();
        }
        if !self.tools.is_empty() {
            write_list(m.key("tools"), &self.tools, Tool::write);
        }
        if let Some(choice) = &self.tool_choice {
            choice.write(m.key("tool_choice"));
        }
        if let Some(thinking) = &self.thinking {
            // Keys in the order a JSON map writes them, as when this was a `Value`.
            let mut o = Members::open(m.key("thinking"));
            match thinking {
                Thinking::Enabled { budget_tokens } => {
                    write_number(o.key("budget_tokens"), &(*budget_tokens).into());
                    o.str("type", "enabled");
                }
                Thinking::Adaptive => o.str("type", "adaptive"),
            }
            o.close();
        }
        if let Some(config) = &self.output_config {
            let out = m.key("output_config");
            // Writing a `Value` into a Vec cannot fail; keep the JSON valid if it ever did.
            if serde_json::to_writer(&mut *out, config).is_err() {
                out.extend_from_slice(b"{}");
            }
        }
        if let Some(stream) = self.stream {
            write_bool(m.key("stream"), stream);
        }
        m.close();
    }
}

impl Message<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        let mut m = Members::open(out);
        m.str(
            "role",
            match self.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            },
        );
        write_list(m.key("content"), &self.content, RequestBlock::write);
        m.close();
    }
}

impl RequestBlock<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        let mut m = Members::open(out);
        match self {
            RequestBlock::Text {
                text,
                cache_control,
            } => {
                m.str("type", "text");
                m.str("text", text);
                if let Some(c) = cache_control {
                    write_json(m.key("cache_control"), c);
                }
            }
            RequestBlock::Image { source } => {
                m.str("type", "image");
                source.write(m.key("source"));
            }
            RequestBlock::Document { source, title } => {
                m.str("type", "document");
                source.write(m.key("source"));
                if let Some(title) = title {
                    m.str("title", title);
                }
            }
            RequestBlock::ToolUse { id, name, input } => {
                m.str("type", "tool_use");
                m.str("id", id);
                m.str("name", name);
                write_json(m.key("input"), input);
            }
            RequestBlock::ToolResult {
                tool_use_id,
                content,
            } => {
                m.str("type", "tool_result");
                m.str("tool_use_id", tool_use_id);
                match content {
                    ToolResultContent::Text(text) => m.str("content", text),
                    ToolResultContent::Blocks(blocks) => {
                        write_list(m.key("content"), blocks, RequestBlock::write)
                    }
                }
            }
        }
        m.close();
    }
}

impl Source<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        let mut m = Members::open(out);
        match self {
            Source::Base64 { media_type, data } => {
                m.str("type", "base64");
                m.str("media_type", media_type);
                m.str("data", data);
            }
            Source::Url { url } => {
                m.str("type", "url");
                m.str("url", url);
            }
        }
        m.close();
    }
}

impl Tool<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        let mut m = Members::open(out);
        m.str("name", self.name);
        if let Some(description) = self.description {
            m.str("description", description);
        }
        write_object(
            m.key("input_schema"),
            self.input_schema.0,
            Some(("type", &OBJECT_TYPE)),
        );
        if let Some(strict) = self.strict {
            write_bool(m.key("strict"), strict);
        }
        m.close();
    }
}

impl ToolChoice<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        let mut m = Members::open(out);
        let disable_parallel_tool_use = match self {
            ToolChoice::Auto {
                disable_parallel_tool_use,
            } => {
                m.str("type", "auto");
                disable_parallel_tool_use
            }
            ToolChoice::Any {
                disable_parallel_tool_use,
            } => {
                m.str("type", "any");
                disable_parallel_tool_use
            }
            ToolChoice::Tool {
                name,
                disable_parallel_tool_use,
            } => {
                m.str("type", "tool");
                m.str("name", name);
                disable_parallel_tool_use
            }
            ToolChoice::None => {
                m.str("type", "none");
                &None
            }
        };
        if let Some(disable) = disable_parallel_tool_use {
            write_bool(m.key("disable_parallel_tool_use"), *disable);
        }
        m.close();
    }
}

// ---------------------------------------------------------------------------------------------
// Anthropic responses and stream events (read by `openai_to_anthropic`)
// ---------------------------------------------------------------------------------------------

/// A non-streaming Messages response (or, with `type: "error"`, an error body).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct MessagesResponse<'a> {
    #[serde(rename = "type")]
    pub kind: Option<Cow<'a, str>>,
    pub id: Option<Cow<'a, str>>,
    pub model: Option<Cow<'a, str>>,
    pub content: Vec<ResponseBlock<'a>>,
    pub stop_reason: Option<Cow<'a, str>>,
    pub usage: Option<AnthropicUsage>,
    pub error: Option<ErrorObject>,
}

impl<'a> MessagesResponse<'a> {
    /// Read a response body as its `Deserialize` reads it. The usual shapes are taken from
    /// a borrowed tree (no buffering of the tagged blocks); anything the tree reader is not
    /// sure serde would read the same way (duplicate or mistyped members, an `error` object)
    /// is serde's, which also words the error.
    ///
    /// Strings of the tree path borrow from `body` (serde's own are owned).
    pub(crate) fn from_body(body: &'a [u8]) -> Result<MessagesResponse<'a>, serde_json::Error> {
        if let Some(resp) = crate::json_scan::parse_tree(body)
            .as_ref()
            .and_then(MessagesResponse::from_tree)
        {
            return Ok(resp);
        }
        serde_json::from_slice(body)
    }

    fn from_tree(tree: &Json<'a>) -> Option<MessagesResponse<'a>> {
        let obj = unique(
            tree,
            &[
                "type",
                "id",
                "model",
                "content",
                "stop_reason",
                "usage",
                "error",
            ],
        )?;
        let content = match crate::borrowed_json::lookup(obj, "content") {
            None => Vec::new(),
            Some(Json::Array(blocks)) => blocks
                .iter()
                .map(ResponseBlock::from_tree)
                .collect::<Option<Vec<_>>>()?,
            Some(_) => return None,
        };
        let usage = match crate::borrowed_json::lookup(obj, "usage") {
            None | Some(Json::Null) => None,
            Some(u) => Some(AnthropicUsage::from_tree(u)?),
        };
        // Error bodies are rare: serde reads them.
        if !matches!(
            crate::borrowed_json::lookup(obj, "error"),
            None | Some(Json::Null)
        ) {
            return None;
        }
        Some(MessagesResponse {
            kind: opt_string(obj, "type")?,
            id: opt_string(obj, "id")?,
            model: opt_string(obj, "model")?,
            content,
            stop_reason: opt_string(obj, "stop_reason")?,
            usage,
            error: None,
        })
    }
}

/// The entries of `tree` when it is an object in which none of `keys` appears twice (serde
/// refuses a duplicated field; a look-up would take the last).
fn unique<'b, 'a>(tree: &'b Json<'a>, keys: &[&str]) -> Option<&'b Object<'a>> {
    let obj = tree.as_object()?;
    let twice = |key: &&str| obj.iter().filter(|(k, _)| k == key).nth(1).is_some();
    (!keys.iter().any(twice)).then_some(obj)
}

/// An `Option<String>` member as serde reads it (absent or `null` is `None`); `None` when
/// serde would refuse it.
fn opt_string<'a>(obj: &Object<'a>, key: &str) -> Option<Option<Cow<'a, str>>> {
    match crate::borrowed_json::lookup(obj, key) {
        None | Some(Json::Null) => Some(None),
        Some(Json::Str(s)) => Some(Some(s.clone())),
        Some(_) => None,
    }
}

/// A `#[serde(default)] String` member: absent is empty; `None` when serde would refuse it.
fn default_string<'a>(obj: &Object<'a>, key: &str) -> Option<Cow<'a, str>> {
    match crate::borrowed_json::lookup(obj, key) {
        None => Some(Cow::Borrowed("")),
        Some(Json::Str(s)) => Some(s.clone()),
        Some(_) => None,
    }
}

impl<'a> ResponseBlock<'a> {
    fn from_tree(tree: &Json<'a>) -> Option<ResponseBlock<'a>> {
        let obj = unique(tree, &["type", "text", "thinking", "id", "name", "input"])?;
        let Some(Json::Str(kind)) = crate::borrowed_json::lookup(obj, "type") else {
            return None;
        };
        Some(match kind.as_ref() {
            "text" => ResponseBlock::Text {
                text: default_string(obj, "text")?,
            },
            "thinking" => ResponseBlock::Thinking {
                thinking: default_string(obj, "thinking")?,
            },
            "tool_use" => ResponseBlock::ToolUse {
                id: default_string(obj, "id")?,
                name: default_string(obj, "name")?,
                input: crate::borrowed_json::lookup(obj, "input")
                    .map_or(Value::Null, Json::to_value),
            },
            _ => ResponseBlock::Other,
        })
    }
}

impl AnthropicUsage {
    fn from_tree(tree: &Json<'_>) -> Option<AnthropicUsage> {
        let obj = unique(
            tree,
            &[
                "input_tokens",
                "output_tokens",
                "cache_read_input_tokens",
                "cache_creation_input_tokens",
            ],
        )?;
        let count = |key: &str| match crate::borrowed_json::lookup(obj, key) {
            None | Some(Json::Null) => Some(None),
            Some(n) => n.as_u64().map(Some),
        };
        Some(AnthropicUsage {
            input_tokens: count("input_tokens")?,
            output_tokens: count("output_tokens")?,
            cache_read_input_tokens: count("cache_read_input_tokens")?,
            cache_creation_input_tokens: count("cache_creation_input_tokens")?,
        })
    }
}

/// A content block of a response, or the `content_block` of `content_block_start`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ResponseBlock<'a> {
    Text {
        #[serde(default)]
        text: Cow<'a, str>,
    },
    Thinking {
        #[serde(default)]
        thinking: Cow<'a, str>,
    },
    ToolUse {
        #[serde(default)]
        id: Cow<'a, str>,
        #[serde(default)]
        name: Cow<'a, str>,
        #[serde(default)]
        input: Value,
    },
    /// `redacted_thinking`, `server_tool_use`, `web_search_tool_result`, and future types.
    #[serde(other)]
    Other,
}

/// Anthropic's usage object; every field is optional because `message_delta` sends a subset.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(default)]
pub(crate) struct AnthropicUsage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_read_input_tokens: Option<u64>,
    pub cache_creation_input_tokens: Option<u64>,
}

impl AnthropicUsage {
    /// Overwrite the fields `newer` reports. Anthropic's counts are cumulative, never deltas.
    pub fn update(&mut self, newer: &AnthropicUsage) {
        let keep = |old: Option<u64>, new: Option<u64>| new.or(old);
        self.input_tokens = keep(self.input_tokens, newer.input_tokens);
        self.output_tokens = keep(self.output_tokens, newer.output_tokens);
        self.cache_read_input_tokens =
            keep(self.cache_read_input_tokens, newer.cache_read_input_tokens);
        self.cache_creation_input_tokens = keep(
            self.cache_creation_input_tokens,
            newer.cache_creation_input_tokens,
        );
    }

    /// In OpenAI's terms: prompt tokens include cache reads and writes, as OpenAI counts them.
    pub fn to_usage(self) -> Usage {
        let input = self.input_tokens.unwrap_or(0);
        let cache_read = self.cache_read_input_tokens.unwrap_or(0);
        let cache_creation = self.cache_creation_input_tokens.unwrap_or(0);
        let prompt = input
            .saturating_add(cache_read)
            .saturating_add(cache_creation);
        let completion = self.output_tokens.unwrap_or(0);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt.saturating_add(completion),
            cached_tokens: cache_read,
            cache_creation_tokens: cache_creation,
        }
    }
}

/// `{"type": "...", "message": "..."}` inside an error body or `error` event.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct ErrorObject {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub message: Option<String>,
}

/// One event of a Messages stream, dispatched on the `type` inside its data.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum StreamEvent<'a> {
    MessageStart {
        message: MessagesResponse<'a>,
    },
    ContentBlockStart {
        index: u64,
        content_block: ResponseBlock<'a>,
    },
    ContentBlockDelta {
        index: u64,
        delta: BlockDelta<'a>,
    },
    ContentBlockStop {
        index: u64,
    },
    MessageDelta {
        #[serde(default)]
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<AnthropicUsage>,
    },
    MessageStop,
    Ping,
    Error {
        #[serde(default)]
        error: ErrorObject,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum BlockDelta<'a> {
    TextDelta {
        #[serde(default)]
        text: Cow<'a, str>,
    },
    ThinkingDelta {
        #[serde(default)]
        thinking: Cow<'a, str>,
    },
    InputJsonDelta {
        #[serde(default)]
        partial_json: Cow<'a, str>,
    },
    /// `signature_delta`, `citations_delta`, and future types.
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct MessageDeltaBody {
    pub stop_reason: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// OpenAI chat completions as read from an OpenAI-compatible vendor (by `anthropic_to_openai`)
// ---------------------------------------------------------------------------------------------

/// A `chat.completion` or a `chat.completion.chunk`; both share this lenient shape.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ChatCompletion {
    pub id: Option<String>,
    pub model: Option<String>,
    pub choices: Vec<ChatChoice>,
    pub usage: Option<Value>,
    pub error: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ChatChoice {
    pub index: Option<u64>,
    /// Set in a `chat.completion`.
    pub message: Option<ChatMessage>,
    /// Set in a `chat.completion.chunk`.
    pub delta: Option<ChatMessage>,
    pub finish_reason: Option<String>,
    /// `{"content": [{token, logprob, bytes, top_logprobs}]}` when the request asked for
    /// log probabilities.
    pub logprobs: Option<Value>,
}

/// An assistant message or a streamed delta of one.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ChatMessage {
    /// A string; some vendors send a list of text parts.
    pub content: Option<Value>,
    pub refusal: Option<String>,
    /// DeepSeek, Qwen and vLLM's name for the reasoning text.
    pub reasoning_content: Option<String>,
    /// OpenRouter's and newer vLLM's name for it.
    pub reasoning: Option<String>,
    pub tool_calls: Option<Vec<ChatToolCall>>,
}

impl ChatMessage {
    /// The reasoning text under whichever name the vendor uses.
    pub fn reasoning_text(&self) -> Option<&str> {
        self.reasoning_content
            .as_deref()
            .or(self.reasoning.as_deref())
            .filter(|s| !s.is_empty())
    }

    /// The text content; a list of parts is joined.
    pub fn text(&self) -> String {
        match &self.content {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
            _ => String::new(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ChatToolCall {
    pub index: Option<u64>,
    pub id: Option<String>,
    pub function: Option<ChatFunction>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ChatFunction {
    pub name: Option<String>,
    pub arguments: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// Anthropic's error `type` for an HTTP status, as in its error documentation.
pub(crate) fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// The message of an error body in OpenAI's or Anthropic's shape (`error.message`), or of the
/// looser shapes some vendors use (`{"error": "text"}`, `{"message": "text"}`).
pub(crate) fn error_message(v: &Value) -> Option<&str> {
    v.pointer("/error/message")
        .and_then(Value::as_str)
        .or_else(|| v.get("error").and_then(Value::as_str))
        .or_else(|| v.get("message").and_then(Value::as_str))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Whenever the tree reader answers, it answers what serde reads; and it takes the
    /// responses Anthropic sends (every response fixture).
    #[test]
    fn response_tree_reader_reads_what_serde_reads() {
        let mut bodies = crate::anthropic::response_fixture_bodies();
        let taken: Vec<String> = bodies
            .iter()
            .filter(|(_, b)| {
                crate::json_scan::parse_tree(b)
                    .as_ref()
                    .and_then(MessagesResponse::from_tree)
                    .is_some()
            })
            .map(|(n, _)| n.clone())
            .collect();
        for typical in [
            "text_cached",
            "tool_use_parallel",
            "thinking_max_tokens",
            "no_id_no_usage",
        ] {
            assert!(
                taken.iter().any(|n| n.contains(typical)),
                "declined {typical}"
            );
        }
        for odd in [
            r#"{"content":[{"type":"text","text":"a","text":"b"}]}"#,
            r#"{"content":[{"type":"text","text":null}]}"#,
            r#"{"content":[{"type":"text"}],"id":null,"model":5}"#,
            r#"{"content":[{"type":7}]}"#,
            r#"{"content":[{"text":"no type"}]}"#,
            r#"{"content":[{"type":"tool_use","id":"t","name":"f"}],"usage":{"input_tokens":1.5}}"#,
            r#"{"content":[{"type":"tool_use","id":"t","name":"f","input":{"a":[1,"x"]}}],"usage":{"input_tokens":3,"output_tokens":null}}"#,
            r#"{"content":null}"#,
            r#"{"content":[],"content":[]}"#,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#,
            r#"{"content":[{"type":"server_tool_use","id":"s","input":{}}],"stop_reason":"pause_turn"}"#,
            r#"{"usage":{"input_tokens":-1}}"#,
            r#"[]"#,
        ] {
            bodies.push((odd.to_string(), odd.as_bytes().to_vec()));
        }
        for (name, body) in &bodies {
            let serde = serde_json::from_slice::<MessagesResponse>(body);
            if let Some(fast) = crate::json_scan::parse_tree(body)
                .as_ref()
                .and_then(MessagesResponse::from_tree)
            {
                assert_eq!(
                    format!("{fast:?}"),
                    format!("{:?}", serde.unwrap()),
                    "{name}"
                );
            }
            // And the public reading is serde's, answer or error.
            assert_eq!(
                format!(
                    "{:?}",
                    MessagesResponse::from_body(body).map_err(|e| e.to_string())
                ),
                format!(
                    "{:?}",
                    serde_json::from_slice::<MessagesResponse>(body).map_err(|e| e.to_string())
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn unknown_types_parse_as_other() {
        let e: StreamEvent = serde_json::from_str(r#"{"type":"brand_new","x":1}"#).unwrap();
        assert!(matches!(e, StreamEvent::Other));
        let e: StreamEvent = serde_json::from_str(
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"abc"}}"#,
        )
        .unwrap();
        assert!(matches!(
            e,
            StreamEvent::ContentBlockDelta {
                delta: BlockDelta::Other,
                ..
            }
        ));
        let b: ResponseBlock =
            serde_json::from_str(r#"{"type":"redacted_thinking","data":"xyz"}"#).unwrap();
        assert!(matches!(b, ResponseBlock::Other));
        let e: StreamEvent = serde_json::from_str(r#"{"type":"message_stop","extra":{}}"#).unwrap();
        assert!(matches!(e, StreamEvent::MessageStop));
    }

    #[test]
    fn usage_counts_cache_in_prompt_and_updates_cumulatively() {
        let mut u = AnthropicUsage {
            input_tokens: Some(10),
            output_tokens: Some(1),
            cache_read_input_tokens: Some(100),
            cache_creation_input_tokens: Some(5),
        };
        u.update(&AnthropicUsage {
            output_tokens: Some(42),
            ..Default::default()
        });
        let usage = u.to_usage();
        assert_eq!(usage.prompt_tokens, 115);
        assert_eq!(usage.completion_tokens, 42);
        assert_eq!(usage.total_tokens, 157);
        assert_eq!(usage.cached_tokens, 100);
        assert_eq!(usage.cache_creation_tokens, 5);
    }
}
