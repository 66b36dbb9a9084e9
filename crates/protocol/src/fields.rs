//! What becomes of each field of a client's request, per vendor family: the rule the request
//! translators apply before converting, and the source of the README's field table. Each table
//! has its own columns (the Responses table has one more: a vendor serving Responses itself,
//! beside the chat vendors reached through chat completions).
//!
//! A field is **mapped** (converted to the vendor's equivalent), **passed** (sent unchanged),
//! **ignored** (accepted and not sent: an identification or caching hint that cannot change
//! the answer) or **refused** (a 400 naming it). A refused field is still accepted when it is
//! `null` or holds a *neutral* value, one that asks for nothing beyond the vendor's default
//! (`logprobs: false`, `n: 1`); such a value is not sent either.
//!
//! A field the table does not list follows the table's `unknown` rule: passed where the
//! vendor speaks the client's API (it judges the field itself), refused where the request is
//! converted (Claude, Gemini and Bedrock answer 400 to fields they do not know, and forwarding a field
//! under the other API's name would be wrong anyway).
//!
//! Nested fields and content types have rules too ([`FieldTable::nested`], by path:
//! `messages[].name`, `messages[].content[].type:server_tool_use`). A translator that meets a
//! nested field or content type it does not convert asks the table: ignored ones are left
//! out, refused ones (and any type no rule lists) are a 400 naming the exact place
//! (`messages[1].content[0].type: "server_tool_use"`), with the rule's note as the reason.

use crate::borrowed_json::{Json, Object};
use crate::error::GatewayError;
use std::fmt::Write as _;

/// The vendor families a request is converted for; each table names the ones it has a
/// column for ([`FieldTable::columns`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VendorFamily {
    /// Vendors that speak OpenAI's chat-completions API.
    OpenAi,
    /// Vendors that serve OpenAI's Responses API themselves (OpenAI): only the Responses
    /// table has this column, where requests pass unconverted.
    OpenAiResponses,
    /// Anthropic's Messages API.
    Claude,
    /// Google's Gemini `generateContent` API.
    Gemini,
    /// AWS Bedrock's Converse API (`/model/{id}/converse`), whatever model serves it.
    Bedrock,
}

impl VendorFamily {
    /// The families a chat or Messages request is converted for, in column order.
    pub const ALL: [VendorFamily; 4] = [
        VendorFamily::OpenAi,
        VendorFamily::Claude,
        VendorFamily::Gemini,
        VendorFamily::Bedrock,
    ];

    /// The family's name in messages and the README.
    pub fn name(self) -> &'static str {
        match self {
            VendorFamily::OpenAi => "OpenAI-compatible",
            VendorFamily::OpenAiResponses => "OpenAI Responses",
            VendorFamily::Claude => "Claude",
            VendorFamily::Gemini => "Gemini",
            VendorFamily::Bedrock => "Bedrock",
        }
    }
}

/// What the gateway does with one field for one vendor family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Converted to the vendor's equivalent.
    Mapped,
    /// Sent unchanged, under the same name.
    Passed,
    /// Accepted and not sent: a hint that does not change the answer (documented here).
    Ignored,
    /// A 400 naming the field, unless the value is `null` or neutral.
    Refused,
}

impl Disposition {
    fn name(self) -> &'static str {
        match self {
            Disposition::Mapped => "mapped",
            Disposition::Passed => "passed",
            Disposition::Ignored => "ignored",
            Disposition::Refused => "refused",
        }
    }
}

/// A value that asks for nothing beyond the vendor's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Neutral {
    False,
    True,
    /// Any number equal to 0.
    Zero,
    /// Any number equal to 1.
    One,
    Str(&'static str),
    EmptyObject,
    /// `["text"]`.
    TextOnly,
    /// An array that does not hold this string.
    ArrayWithout(&'static str),
    /// An array holding only this string.
    Only(&'static str),
    /// An object whose `type` is this string (and nothing else).
    TypeIs(&'static str),
}

impl Neutral {
    fn matches(self, v: &Json<'_>) -> bool {
        match self {
            Neutral::False => v.as_bool() == Some(false),
            Neutral::True => v.as_bool() == Some(true),
            Neutral::Zero => v.as_f64() == Some(0.0),
            Neutral::One => v.as_f64() == Some(1.0),
            Neutral::Str(s) => v.as_str() == Some(s),
            Neutral::EmptyObject => v.as_object().is_some_and(<[_]>::is_empty),
            Neutral::TextOnly => {
                matches!(v.as_array(), Some([only]) if only.as_str() == Some("text"))
            }
            Neutral::ArrayWithout(s) => v
                .as_array()
                .is_some_and(|items| !items.iter().any(|i| i.as_str() == Some(s))),
            Neutral::Only(s) => {
                matches!(v.as_array(), Some([only]) if only.as_str() == Some(s))
            }
            Neutral::TypeIs(s) => matches!(
                v.as_object(),
                Some([(key, kind)]) if key.as_ref() == "type" && kind.as_str() == Some(s)
            ),
        }
    }

    fn markdown(self) -> String {
        match self {
            Neutral::False => "`false`".into(),
            Neutral::True => "`true`".into(),
            Neutral::Zero => "`0`".into(),
            Neutral::One => "`1`".into(),
            Neutral::Str(s) => format!("`\"{s}\"`"),
            Neutral::EmptyObject => "`{}`".into(),
            Neutral::TextOnly => "`[\"text\"]`".into(),
            Neutral::ArrayWithout(s) => format!("lists without `\"{s}\"`"),
            Neutral::Only(s) => format!("`[\"{s}\"]`"),
            Neutral::TypeIs(s) => format!("`{{\"type\": \"{s}\"}}`"),
        }
    }
}

/// The rule for one field: a top-level field, or a nested one named by its path
/// (`messages[].name`, `messages[].content[].type:server_tool_use` for a content block type).
#[derive(Debug, Clone, Copy)]
pub struct FieldRule {
    pub field: &'static str,
    /// Per family, in the order of the table's [`FieldTable::columns`].
    pub rule: &'static [Disposition],
    /// Values accepted (and not sent) where the field is refused.
    pub neutral: &'static [Neutral],
    /// How it is mapped, or why it is refused or ignored.
    pub note: &'static str,
}

/// The rules for every documented field of one client API.
#[derive(Debug, Clone, Copy)]
pub struct FieldTable {
    /// The client API, as the README names it.
    pub api: &'static str,
    /// The vendor families of the columns, in order.
    pub columns: &'static [VendorFamily],
    /// Top-level fields, sorted by name.
    pub fields: &'static [FieldRule],
    /// The rule for a top-level field the table does not list.
    pub unknown: &'static [Disposition],
    /// Why unknown fields get that rule.
    pub unknown_note: &'static str,
    /// Nested fields and content types, sorted by path. The translators look these up where
    /// they meet a nested field or type they do not convert ([`FieldTable::nested`]); a path
    /// without a rule is refused.
    pub nested: &'static [FieldRule],
}

use Disposition::{Ignored as I, Mapped as M, Passed as P, Refused as R};

const fn rule(field: &'static str, rule: &'static [Disposition], note: &'static str) -> FieldRule {
    FieldRule {
        field,
        rule,
        neutral: &[],
        note,
    }
}

const fn neutral(
    field: &'static str,
    rule: &'static [Disposition],
    neutral: &'static [Neutral],
    note: &'static str,
) -> FieldRule {
    FieldRule {
        field,
        rule,
        neutral,
        note,
    }
}

/// OpenAI chat completions (`POST /v1/chat/completions`), every field of OpenAI's reference
/// plus the non-OpenAI `thinking` and `top_k` some clients send.
pub const CHAT_FIELDS: FieldTable = FieldTable {
    api: "OpenAI chat completions (`/v1/chat/completions`)",
    columns: &VendorFamily::ALL,
    fields: &[
        rule("audio", &[P, R, R, R], "audio output is not converted"),
        neutral("frequency_penalty", &[P, R, M, R], &[Neutral::Zero], "Gemini: `frequencyPenalty`; Claude and Bedrock's Converse have no penalties"),
        rule("function_call", &[P, R, M, R], "deprecated form of `tool_choice`; Gemini: `toolConfig`; Claude, Bedrock: send `tool_choice`"),
        rule("functions", &[P, R, M, R], "deprecated form of `tools`; Gemini: `functionDeclarations`; Claude, Bedrock: send `tools`"),
        neutral("logit_bias", &[P, R, R, R], &[Neutral::EmptyObject], "no equivalent"),
        neutral("logprobs", &[P, R, R, R], &[Neutral::False], "log probabilities are not converted back"),
        rule("max_completion_tokens", &[P, M, M, M], "Claude: `max_tokens`; Gemini: `maxOutputTokens` (thinking counts against it); Bedrock: `inferenceConfig.maxTokens`; with Claude thinking a value at or below `budget_tokens` is refused (the vendor would), a missing one is raised to budget + 4096"),
        rule("max_tokens", &[P, M, M, M], "used when `max_completion_tokens` is absent"),
        rule("messages", &[P, M, M, M], "Claude: `system` + turns; Gemini: `systemInstruction` + `contents`; Bedrock: `system` + `messages` (text, `image`, PDF `document`, `toolUse`, `toolResult` blocks)"),
        rule("metadata", &[P, I, I, M], "tags for OpenAI's stored completions; no effect on the answer; Bedrock: `requestMetadata` (tags of its invocation logs)"),
        neutral("modalities", &[P, R, R, R], &[Neutral::TextOnly], "text output only"),
        rule("model", &[P, M, M, M], "after model mapping; Gemini, Bedrock: in the URL path"),
        neutral("n", &[P, R, M, R], &[Neutral::One], "Claude and Bedrock answer one choice; Gemini: `candidateCount` (not with `stream`)"),
        neutral("parallel_tool_calls", &[P, M, R, R], &[Neutral::True], "Claude: `false` -> `tool_choice.disable_parallel_tool_use`; Gemini and Bedrock's `toolChoice` cannot turn parallel calls off"),
        rule("prediction", &[P, R, R, R], "predicted outputs: no equivalent"),
        neutral("presence_penalty", &[P, R, M, R], &[Neutral::Zero], "Gemini: `presencePenalty`; Claude and Bedrock's Converse have no penalties"),
        rule("prompt_cache_key", &[P, I, I, I], "a cache-routing hint; Claude, Gemini and Bedrock cache by their own rules"),
        rule("prompt_cache_retention", &[P, I, I, I], "a cache-retention hint, as `prompt_cache_key`"),
        rule("reasoning_effort", &[P, M, M, M], "Claude: `thinking.budget_tokens` (1024/4096/16384 for low/medium/high, `none` = off); Gemini: `thinkingConfig.thinkingBudget` (0/1024/8192/24576); Bedrock: `additionalModelRequestFields.thinking` with Claude's budgets for Claude models (`anthropic.claude*`, inference profiles included), `additionalModelRequestFields.reasoningConfig` `{type: enabled, maxReasoningEffort}` for Amazon Nova (`amazon.nova*`; `minimal` as low, `xhigh` as high; at high, `max_tokens`, `temperature` and `top_p` are refused, as Bedrock refuses them there), refused for others; with Claude thinking, a `max_tokens` at or below the budget is refused and a missing one raised to budget + 4096"),
        rule("response_format", &[P, M, M, M], "`json_schema` -> Claude `output_config.format`, Gemini `responseSchema`; `json_object` -> Gemini `responseMimeType`, refused by Claude (no schema-less JSON mode); Bedrock: `json_schema` -> `outputConfig.textFormat`, `json_object` refused"),
        rule("safety_identifier", &[P, M, I, I], "Claude: `metadata.user_id` when `user` is absent; Gemini and Bedrock have no end-user field (an abuse-monitoring id, no effect on the answer)"),
        rule("seed", &[P, R, M, R], "Gemini: `seed`; Claude and Bedrock's Converse have no seed"),
        neutral("service_tier", &[P, R, R, M], &[Neutral::Str("auto"), Neutral::Str("default")], "OpenAI's tiers (`flex`, `scale`, `priority`) have no equivalent at Claude and Gemini; Bedrock: `flex`, `priority` -> `serviceTier.type`, `scale` refused"),
        rule("stop", &[P, M, M, M], "Claude: `stop_sequences`; Gemini: `stopSequences`; Bedrock: `inferenceConfig.stopSequences`"),
        neutral("store", &[P, R, R, R], &[Neutral::False], "only OpenAI stores completions"),
        rule("stream", &[P, M, M, M], "Gemini: `:streamGenerateContent?alt=sse`; Bedrock: `/converse-stream`"),
        rule("stream_options", &[P, M, M, M], "applied by the gateway to the converted stream (`include_usage`)"),
        rule("temperature", &[P, M, M, M], "Claude: clamped to 0..1; refused with thinking unless 1; Bedrock: `inferenceConfig.temperature`"),
        rule("thinking", &[P, M, M, M], "not OpenAI's: Anthropic's `{type, budget_tokens}`; Claude: as is; Gemini: `thinkingConfig`; Bedrock: `additionalModelRequestFields.thinking` as is for Claude models, for Amazon Nova `reasoningConfig` at the level the budget stands for (< 4096 low, < 16384 medium, else high, but medium when `max_tokens`, `temperature` or `top_p` is sent, which Bedrock refuses at high; `disabled`/`adaptive` not sent), refused for others; `max_tokens` as with `reasoning_effort` (Claude)"),
        rule("tool_choice", &[P, M, M, M], "Claude: `tool_choice`; Gemini: `toolConfig.functionCallingConfig`; Bedrock: `toolConfig.toolChoice` (`none` leaves the tools out)"),
        rule("tools", &[P, M, M, M], "function tools only; `strict` -> Claude strict tool use; Bedrock: `toolConfig.tools[].toolSpec`"),
        rule("top_k", &[P, M, M, M], "not OpenAI's (vLLM-style); Claude: `top_k`; Gemini: `topK`; Bedrock: `additionalModelRequestFields.top_k` for Claude models, `additionalModelRequestFields.inferenceConfig.topK` for Amazon Nova, refused for others (set the model's own field in `bedrockAdditionalFields`)"),
        neutral("top_logprobs", &[P, R, R, R], &[Neutral::Zero], "log probabilities are not converted back"),
        rule("top_p", &[P, M, M, M], "Claude: only one of `temperature`/`top_p` (`top_p: 1` with `temperature` is not sent); Bedrock: `inferenceConfig.topP`"),
        rule("user", &[P, M, I, I], "Claude: `metadata.user_id`; Gemini and Bedrock have no end-user field"),
        neutral("verbosity", &[P, R, R, R], &[Neutral::Str("medium")], "no equivalent"),
        rule("web_search_options", &[P, R, R, R], "web search is not converted"),
    ],
    unknown: &[P, R, R, R],
    unknown_note: "OpenAI-compatible vendors judge extension fields themselves; Claude, Gemini and Bedrock reject fields they do not know (model-specific Bedrock fields go in the provider's `bedrockAdditionalFields`)",
    nested: &[
        neutral("messages[].audio", &[P, R, R, R], &[Neutral::EmptyObject], "an assistant turn's earlier audio answer, by an id only OpenAI keeps"),
        rule("messages[].content[].cache_control", &[P, M, I, I], "not OpenAI's (clients of Anthropic-style caching put it on parts); Claude: the `text` block's `cache_control`; Gemini and Bedrock cache by their own rules (a caching hint)"),
        rule("messages[].content[].file.file_id", &[P, R, M, R], "a file uploaded to OpenAI; Claude and Bedrock take inline `file_data` only; Gemini: a Gemini file URI -> `fileData` (other ids are refused)"),
        rule("messages[].content[].file.filename", &[P, M, M, M], "Claude: the `document` block's `title`; Gemini: a text part naming the file before it (inline data has no name); Bedrock: the `document` block's `name`"),
        rule("messages[].content[].image_url.detail", &[P, I, I, I], "a resolution hint (`low` costs fewer tokens); Claude, Gemini and Bedrock read images at their own resolution"),
        rule("messages[].content[].type:file", &[P, M, M, M], "Claude: a `document` block (base64 data URL); Gemini: `inlineData` (or `fileData` for a Gemini file URI); Bedrock: a PDF `document` block"),
        rule("messages[].content[].type:image_url", &[P, M, M, M], "Claude: an `image` block (data URL or http(s) URL); Gemini: `inlineData`/`fileData`; Bedrock: an `image` block (data URLs only)"),
        rule("messages[].content[].type:input_audio", &[P, R, M, R], "Claude and Bedrock's Converse take no audio input; Gemini: `inlineData` (`audio/wav`, `audio/mp3`)"),
        rule("messages[].content[].type:refusal", &[P, M, M, M], "an assistant turn's refusal: sent as its text"),
        rule("messages[].content[].type:text", &[P, M, M, M], ""),
        rule("messages[].function_call", &[P, R, M, R], "deprecated form of `tool_calls`, which carry the call id Claude and Bedrock pair calls and results by; Gemini: a `functionCall` part"),
        neutral("messages[].name", &[P, R, R, R], &[Neutral::Str("")], "a participant's name tells the model who speaks; Claude, Gemini and Bedrock messages have none (on a `tool` message it is accepted: the call id already names the function)"),
        rule("messages[].reasoning_content", &[P, I, I, I], "not OpenAI's: the thinking the gateway (like DeepSeek-style servers) returns, sent back in history; an earlier turn's thinking is left out of the context, as Claude does with its own"),
        rule("messages[].refusal", &[P, M, M, M], "an assistant turn's refusal: sent as its text"),
        rule("messages[].role:assistant", &[P, M, M, M], "Claude and Bedrock: `assistant` turns; Gemini: `model` turns"),
        rule("messages[].role:developer", &[P, M, M, M], "as `system`"),
        rule("messages[].role:function", &[P, R, M, R], "deprecated form of `tool` messages, which carry the call id Claude and Bedrock pair results with calls by; Gemini: a `functionResponse` part"),
        rule("messages[].role:system", &[P, M, M, M], "Claude, Bedrock: `system`; Gemini: `systemInstruction` (text parts only)"),
        rule("messages[].role:tool", &[P, M, M, M], "Claude: a `tool_result` block (text and image parts); Gemini: a `functionResponse` part (text parts, JSON objects as is); Bedrock: a `toolResult` block (text, image and document parts)"),
        rule("messages[].role:user", &[P, M, M, M], "consecutive turns of one role are merged"),
        rule("messages[].tool_calls[].extra_content", &[P, I, M, I], "not OpenAI's: where the gateway (like Google's OpenAI-compatible API) returns Gemini's thought signature; Gemini: the call's `thoughtSignature`; Claude and Bedrock cannot read it"),
        rule("messages[].tool_calls[].type:custom", &[P, R, R, R], "a custom tool's call (free-form input): custom tools are refused"),
        rule("messages[].tool_calls[].type:function", &[P, M, M, M], "Claude: `tool_use`; Gemini: `functionCall`; Bedrock: `toolUse`"),
        rule("response_format.json_schema.description", &[P, M, M, M], "Claude, Gemini: the schema's own `description` when it has none; Bedrock: `jsonSchema.description`"),
        rule("response_format.json_schema.name", &[P, I, I, M], "a label of the format; Claude's and Gemini's formats have none; Bedrock: `jsonSchema.name`"),
        rule("response_format.json_schema.strict", &[P, I, I, I], "Claude, Gemini and Bedrock always decode against the schema (`false` gets the stricter answer)"),
        rule("stream_options.include_obfuscation", &[P, I, I, I], "converted streams carry no obfuscation padding"),
        rule("stream_options.include_usage", &[P, M, M, M], "the gateway ends the converted stream with the usage chunk"),
        rule("tool_choice.type:allowed_tools", &[P, M, M, M], "Claude, Bedrock: only the allowed functions are sent, `mode` `auto`/`required` -> `auto`/`any`; Gemini: `allowedFunctionNames` (`required`), only the allowed declarations (`auto`)"),
        rule("tool_choice.type:custom", &[P, R, R, R], "custom tools are refused"),
        rule("tool_choice.type:function", &[P, M, M, M], "Claude: `tool`; Gemini: mode `ANY` with that function; Bedrock: `toolChoice.tool`"),
        rule("tools[].function.strict", &[P, M, M, M], "Claude: strict tool use; Gemini: `true` -> function-calling mode `VALIDATED` (calls decoded against the schema) when `tool_choice` is `auto`; a forced call (`ANY`) is already decoded against it; Bedrock: `toolSpec.strict`"),
        rule("tools[].type:custom", &[P, R, R, R], "custom tools take free-form text (or a grammar); Claude, Gemini and Bedrock call functions with JSON arguments only"),
        rule("tools[].type:function", &[P, M, M, M], "Claude: `tools[]` (`input_schema`); Gemini: `functionDeclarations`; Bedrock: `toolConfig.tools[].toolSpec`"),
    ],
};

/// Anthropic Messages (`POST /v1/messages`), every field of Anthropic's reference (beta
/// fields included).
pub const MESSAGES_FIELDS: FieldTable = FieldTable {
    api: "Anthropic Messages (`/v1/messages`)",
    columns: &VendorFamily::ALL,
    fields: &[
        rule("cache_control", &[I, P, I, I], "automatic prompt caching: a caching hint"),
        rule("container", &[R, P, R, R], "code-execution containers exist only at Anthropic"),
        rule("context_management", &[R, P, R, R], "context editing exists only at Anthropic"),
        rule("inference_geo", &[R, P, R, R], "a data-residency requirement cannot be honoured elsewhere"),
        rule("max_tokens", &[M, P, M, M], "chat `max_tokens`"),
        rule("mcp_servers", &[R, P, R, R], "the MCP connector exists only at Anthropic"),
        rule("messages", &[M, P, M, M], "chat messages (tool results -> `tool` messages)"),
        rule("metadata", &[M, P, I, I], "`user_id` -> `user` (Gemini and Bedrock have no end-user field)"),
        rule("model", &[M, P, M, M], "after model mapping; Gemini, Bedrock: in the URL path"),
        rule("output_config", &[M, P, M, M], "`format` -> `response_format` `json_schema`; `effort` -> `reasoning_effort` (`max` -> `xhigh`); Bedrock: `format` -> `outputConfig.textFormat`, `effort` -> `additionalModelRequestFields.thinking` (Claude models) or `reasoningConfig` (Amazon Nova, where `high` is refused: Bedrock takes no `max_tokens` at that level)"),
        rule("output_format", &[M, P, M, M], "deprecated beta form of `output_config.format`"),
        neutral("service_tier", &[M, P, R, R], &[Neutral::Str("auto"), Neutral::Str("standard_only")], "OpenAI: `auto` -> `auto`, `standard_only` -> `default`; Gemini and Bedrock: the standard tier, nothing to send"),
        neutral("speed", &[R, P, R, R], &[Neutral::Str("standard")], "fast mode exists only at Anthropic"),
        rule("stop_sequences", &[M, P, M, M], "chat `stop`"),
        rule("stream", &[M, P, M, M], "streams are converted back to Anthropic events"),
        rule("system", &[M, P, M, M], "a leading system message"),
        rule("temperature", &[M, P, M, M], ""),
        rule("thinking", &[M, P, M, M], "OpenAI: `reasoning_effort` (budget < 4096 low, < 16384 medium, else high; `disabled`/`adaptive` not sent); Gemini: `thinkingBudget` N, 0 for `disabled`, -1 for `adaptive`, with `includeThoughts`; Bedrock: `additionalModelRequestFields.thinking` as is (Claude models; with `max_tokens` at or below the budget refused), Amazon Nova's `reasoningConfig` at the budget's level as for OpenAI, but at most medium (Bedrock refuses `max_tokens` at Nova's high level, and Messages requests always carry it), refused for others"),
        rule("tool_choice", &[M, P, M, M], "`disable_parallel_tool_use` -> `parallel_tool_calls: false` (OpenAI), refused by Gemini and Bedrock (no way to turn parallel calls off)"),
        rule("tools", &[M, P, M, M], "custom tools -> functions (`strict` kept); server tools (web search, code execution, ...) refused"),
        rule("top_k", &[P, P, M, M], "Gemini: `topK`; Bedrock: `additionalModelRequestFields.top_k` (Claude models), `inferenceConfig.topK` there (Amazon Nova), refused for others"),
        rule("top_p", &[M, P, M, M], ""),
    ],
    unknown: &[R, P, R, R],
    unknown_note: "Claude judges fields itself; a field converted under OpenAI's, Gemini's or Bedrock's names cannot be guessed",
    nested: &[
        rule("messages[].content[].cache_control", &[I, P, I, I], "a caching hint"),
        neutral("messages[].content[].caller", &[R, P, R, R], &[Neutral::TypeIs("direct")], "`tool_use`: who made the call; other vendors' models call tools directly, calls made from Anthropic's code execution cannot be continued elsewhere"),
        rule("messages[].content[].citations", &[I, P, I, I], "on `text` blocks: where an earlier answer's text came from; the text itself is sent"),
        neutral("messages[].content[].citations.enabled", &[R, P, R, R], &[Neutral::False], "`document` and `search_result`: cited answers are written only by Anthropic"),
        rule("messages[].content[].content[].type:document", &[M, P, M, M], "in a tool result: as in a user turn, in a user message after the tool messages (chat tool messages hold text)"),
        rule("messages[].content[].content[].type:image", &[M, P, M, M], "in a tool result: an `image_url` part in a user message after the tool messages (chat tool messages hold text)"),
        rule("messages[].content[].content[].type:search_result", &[M, P, M, M], "in a tool result: its text (title, source, content) joins the tool message's"),
        rule("messages[].content[].content[].type:text", &[M, P, M, M], "the tool message's text"),
        rule("messages[].content[].context", &[M, P, M, M], "`document`: text the model reads beside the document: a text part after it"),
        rule("messages[].content[].is_error", &[M, P, M, M], "`tool_result`: `true` -> the tool message's text starts with `Error: ` (chat tool messages have no error flag)"),
        rule("messages[].content[].source.type:base64", &[M, P, M, M], "a data URL (`image_url` or `file` part); Gemini: `inlineData`; Bedrock: inline `bytes` (png, jpeg, gif, webp images; PDF documents)"),
        rule("messages[].content[].source.type:content", &[R, P, R, R], "a document made of content blocks (custom citation chunks): send its text as a `text` source"),
        rule("messages[].content[].source.type:file", &[R, P, R, R], "a file uploaded to Anthropic's Files API: only Anthropic can read it"),
        rule("messages[].content[].source.type:text", &[M, P, M, M], "a plain-text document: a text part (its `title` on the first line)"),
        rule("messages[].content[].source.type:url", &[M, P, M, R], "images: an `image_url` part by URL (Gemini: `fileData`); Bedrock's Converse takes images inline only; documents by URL are refused (send them inline)"),
        rule("messages[].content[].title", &[M, P, M, M], "`document`: the `file` part's `filename` (Gemini: a text part before the file; Bedrock: the `document` block's `name`), or the first line of a plain-text document"),
        rule("messages[].content[].toolset_name", &[R, P, R, R], "`tool_use`, `tool_result`: a tool of an Anthropic toolset (MCP connector), which exists only at Anthropic"),
        neutral("messages[].content[].transformations", &[R, P, R, R], &[Neutral::EmptyObject], "`image`: transformations Anthropic's servers apply before the model sees the image"),
        rule("messages[].content[].type:bash_code_execution_tool_result", &[R, P, R, R], SERVER),
        rule("messages[].content[].type:code_execution_tool_result", &[R, P, R, R], SERVER),
        rule("messages[].content[].type:container_upload", &[R, P, R, R], "files for Anthropic's code-execution container"),
        rule("messages[].content[].type:document", &[M, P, M, M], "base64 -> a `file` part (Gemini: `inlineData`; Bedrock: a `document` block, PDFs only), plain text -> text; by URL or file id refused"),
        rule("messages[].content[].type:image", &[M, P, M, M], "an `image_url` part (base64 as a data URL; Bedrock: an `image` block, by URL refused); file ids refused"),
        rule("messages[].content[].type:mcp_tool_result", &[R, P, R, R], SERVER),
        rule("messages[].content[].type:mcp_tool_use", &[R, P, R, R], SERVER),
        rule("messages[].content[].type:redacted_thinking", &[I, P, I, I], "encrypted thinking of an earlier turn: only Anthropic can read it"),
        rule("messages[].content[].type:search_result", &[M, P, M, M], "a text part: title, source and the result's text"),
        rule("messages[].content[].type:server_tool_use", &[R, P, R, R], SERVER),
        rule("messages[].content[].type:text", &[M, P, M, M], ""),
        rule("messages[].content[].type:text_editor_code_execution_tool_result", &[R, P, R, R], SERVER),
        rule("messages[].content[].type:thinking", &[I, P, I, I], "thinking of an earlier turn: its signature is Anthropic's, and Claude itself leaves earlier turns' thinking out of the context"),
        rule("messages[].content[].type:tool_result", &[M, P, M, M], "a `tool` message (images move to the next user message)"),
        rule("messages[].content[].type:tool_search_tool_result", &[R, P, R, R], SERVER),
        rule("messages[].content[].type:tool_use", &[M, P, M, M], "an assistant `tool_calls` entry"),
        rule("messages[].content[].type:web_fetch_tool_result", &[R, P, R, R], SERVER),
        rule("messages[].content[].type:web_search_tool_result", &[R, P, R, R], SERVER),
        rule("system[].cache_control", &[I, P, I, I], "a caching hint"),
        neutral("tools[].allowed_callers", &[R, P, R, R], &[Neutral::Only("direct")], "calls from Anthropic's code execution (programmatic tool calling) exist only at Anthropic"),
        rule("tools[].cache_control", &[I, P, I, I], "a caching hint"),
        rule("tools[].defer_loading", &[I, P, I, I], "tool search loads the definition on demand at Anthropic; other vendors get every definition up front (same answers, more input tokens)"),
        rule("tools[].description", &[M, P, M, M], "the function's `description`"),
        rule("tools[].eager_input_streaming", &[I, P, I, I], "a streaming-granularity hint for tool input; converted streams carry arguments as the vendor sends them"),
        rule("tools[].input_examples", &[R, P, R, R], "example inputs the model reads; chat functions have no place for them"),
        rule("tools[].input_schema", &[M, P, M, M], "the function's `parameters`"),
        rule("tools[].name", &[M, P, M, M], "the function's `name`"),
        rule("tools[].strict", &[M, P, M, M], "the function's `strict`"),
        rule("tools[].type:custom", &[M, P, M, M], "a function tool (as with no `type`)"),
        rule("tools[].type:server", &[R, P, R, R], "server tools (`web_search_*`, `web_fetch_*`, `code_execution_*`, `bash_*`, `text_editor_*`, `computer_*`, `memory_*`, tool search, MCP toolsets) run at Anthropic; one rule for every versioned type"),
    ],
};

/// OpenAI Responses (`POST /v1/responses`), every field of OpenAI's reference. Claude, Gemini
/// and Bedrock are served through chat completions (`responses_request_to_chat_for`, then the chat
/// translators), so their columns are this table's rule followed by [`CHAT_FIELDS`]'.
pub const RESPONSES_FIELDS: FieldTable = FieldTable {
    api: "OpenAI Responses (`/v1/responses`; OpenAI Responses is a vendor that serves it itself, e.g. OpenAI; the others are reached through chat completions)",
    columns: &[
        VendorFamily::OpenAiResponses,
        VendorFamily::OpenAi,
        VendorFamily::Claude,
        VendorFamily::Gemini,
        VendorFamily::Bedrock,
    ],
    fields: &[
        neutral("background", &[P, R, R, R, R], &[Neutral::False], "background responses are run and stored by OpenAI"),
        rule("conversation", &[P, R, R, R, R], "conversations are stored by OpenAI"),
        neutral("include", &[P, M, R, R, R], &[Neutral::ArrayWithout(LOGPROBS)], "extra output data: `message.output_text.logprobs` -> chat `logprobs` (converted back), refused by Claude, Gemini and Bedrock (no log probabilities); the others concern hosted tools (refused) or encrypted reasoning (none to give) and are not sent"),
        rule("input", &[P, M, M, M, M], "chat messages (function calls and outputs, images, inline files); `item_reference` and hosted-tool items refused"),
        rule("instructions", &[P, M, M, M, M], "a leading system message"),
        rule("max_output_tokens", &[P, M, M, M, M], "chat `max_tokens`"),
        rule("max_tool_calls", &[P, I, I, I, I], "limits built-in (hosted) tool calls only, and hosted tools are refused"),
        rule("metadata", &[P, I, I, I, I], "echoed in the answer; not sent (as chat `metadata`)"),
        rule("model", &[P, M, M, M, M], "after model mapping; Gemini, Bedrock: in the URL path"),
        neutral("parallel_tool_calls", &[P, M, M, R, R], &[Neutral::True], "chat `parallel_tool_calls`; Claude: `false` -> `tool_choice.disable_parallel_tool_use`; Gemini and Bedrock cannot turn parallel calls off"),
        rule("previous_response_id", &[P, R, R, R, R], "needs responses stored by OpenAI"),
        rule("prompt", &[P, R, R, R, R], "prompt templates are stored by OpenAI"),
        rule("prompt_cache_key", &[P, P, I, I, I], "a cache-routing hint (a chat field too); Claude, Gemini and Bedrock cache by their own rules"),
        rule("prompt_cache_retention", &[P, P, I, I, I], "a cache-retention hint, as `prompt_cache_key`"),
        rule("reasoning", &[P, M, M, M, M], "`effort` -> chat `reasoning_effort` (Claude `thinking`, Gemini `thinkingConfig`, Bedrock `additionalModelRequestFields.thinking`); thinking comes back as `reasoning` items; `summary` is not sent"),
        rule("safety_identifier", &[P, M, M, I, I], "chat `user` (Claude: `metadata.user_id`) when `user` is absent"),
        neutral("service_tier", &[P, P, R, R, M], &[Neutral::Str("auto"), Neutral::Str("default")], "a chat field too; OpenAI's tiers (`flex`, `scale`, `priority`) have no equivalent at Claude and Gemini; Bedrock: `flex`, `priority` -> `serviceTier.type`"),
        neutral("store", &[P, R, R, R, R], &[Neutral::False], "a converted request is stored nowhere (OpenAI's default is to store, so an absent `store` is answered `\"store\": false`); an explicit `true` asks for what `previous_response_id` would need later"),
        rule("stream", &[P, M, M, M, M], "converted back to Responses events; Gemini: `:streamGenerateContent?alt=sse`; Bedrock: `/converse-stream`"),
        rule("stream_options", &[P, I, I, I, I], "`include_obfuscation`: converted streams carry no obfuscation padding"),
        rule("temperature", &[P, M, M, M, M], "Claude: clamped to 0..1; refused with thinking unless 1"),
        rule("text", &[P, M, M, M, M], "`format` -> chat `response_format` (`json_schema` -> Claude `output_config.format`, Gemini `responseSchema`, Bedrock `outputConfig.textFormat`; `json_object` -> Gemini `responseMimeType`, refused by Claude and Bedrock); `verbosity` -> chat `verbosity`, refused by Claude, Gemini and Bedrock unless `medium`"),
        rule("tool_choice", &[P, M, M, M, M], "as chat; `allowed_tools` -> its mode over only the allowed functions; hosted-tool choices refused"),
        rule("tools", &[P, M, M, M, M], "function tools only (`strict` kept); hosted tools (web search, file search, MCP, ...) refused"),
        neutral("top_logprobs", &[P, M, R, R, R], &[Neutral::Zero], "chat `logprobs: true` + `top_logprobs` (converted back into `output_text.logprobs`); Claude, Gemini and Bedrock give no log probabilities"),
        rule("top_p", &[P, M, M, M, M], "Claude: only one of `temperature`/`top_p`"),
        neutral("truncation", &[P, R, R, R, R], &[Neutral::Str("disabled")], "`auto` (dropping context to fit) is OpenAI's; other vendors answer 400 when the context overflows, as with `disabled`"),
        rule("user", &[P, M, M, I, I], "chat `user`; Claude: `metadata.user_id`"),
    ],
    unknown: &[P, R, R, R, R],
    unknown_note: "OpenAI judges fields itself; the others get a converted request, and a field converted under chat's names cannot be guessed",
    nested: &[],
};

/// The `include` value asking for log probabilities.
const LOGPROBS: &str = "message.output_text.logprobs";

/// The note of the server-tool content blocks.
const SERVER: &str =
    "server-tool blocks record a tool Anthropic ran; another vendor cannot read or continue them";

/// Every table, in README order.
pub const TABLES: [&FieldTable; 3] = [&CHAT_FIELDS, &MESSAGES_FIELDS, &RESPONSES_FIELDS];

impl FieldTable {
    fn column(&self, family: VendorFamily) -> Option<usize> {
        self.columns.iter().position(|f| *f == family)
    }

    /// What `rule` (a rule of this table) says for `family`. A family the table has no column
    /// for gets the request in the client's own API: everything passes.
    pub fn disposition_of(&self, rule: &FieldRule, family: VendorFamily) -> Disposition {
        match self.column(family) {
            // A rule shorter than the columns (a test rules it out) refuses: fail loudly.
            Some(c) => rule.rule.get(c).copied().unwrap_or(Disposition::Refused),
            None => Disposition::Passed,
        }
    }

    /// The rule for top-level `field`, if the table lists it.
    pub fn rule(&self, field: &str) -> Option<&FieldRule> {
        lookup(self.fields, field)
    }

    /// What happens to top-level `field` for `family` (the `unknown` rule for unlisted
    /// fields).
    pub fn disposition(&self, field: &str, family: VendorFamily) -> Disposition {
        match (self.rule(field), self.column(family)) {
            (Some(r), _) => self.disposition_of(r, family),
            (None, Some(c)) => self.unknown.get(c).copied().unwrap_or(Disposition::Refused),
            (None, None) => Disposition::Passed,
        }
    }

    /// The rule for nested `path` (`messages[].name`, `messages[].content[].type:text`).
    pub fn nested(&self, path: &str) -> Option<&FieldRule> {
        lookup(self.nested, path)
    }

    /// What happens to nested `path` for `family`: a path without a rule is refused (a
    /// converted request never drops what it does not know).
    pub fn nested_disposition(&self, path: &str, family: VendorFamily) -> Disposition {
        self.disposition_of_nested(self.nested(path), family)
    }

    fn disposition_of_nested(&self, rule: Option<&FieldRule>, family: VendorFamily) -> Disposition {
        match (rule, self.column(family)) {
            (Some(r), _) => self.disposition_of(r, family),
            (None, Some(_)) => Disposition::Refused,
            (None, None) => Disposition::Passed,
        }
    }

    /// Apply the rule of nested `path` to `value`, found at `at` (e.g. `messages[2].name`)
    /// under top-level field `param`: `Ok(true)` to convert it, `Ok(false)` to leave it out
    /// (ignored, `null`, or a neutral value of a refused field), or a 400 naming `at`.
    pub(crate) fn check_nested(
        &self,
        path: &str,
        at: &str,
        value: &Json<'_>,
        family: VendorFamily,
        param: &'static str,
    ) -> Result<bool, GatewayError> {
        self.check_nested_at(path, &|| at.to_owned(), value, family, param)
    }

    /// The check the nested walks (`chat_nested`, `messages_nested`) call for each nested
    /// field they meet: `null` is absent; otherwise [`Self::check_nested_at`].
    pub(crate) fn nested_checker(
        &'static self,
        family: VendorFamily,
    ) -> impl Fn(&str, &dyn Fn() -> String, &Json<'_>, &'static str) -> Result<(), GatewayError>
    {
        move |path, at, value, param| {
            if value.is_null() {
                return Ok(());
            }
            self.check_nested_at(path, at, value, family, param)
                .map(|_| ())
        }
    }

    /// [`Self::check_nested`] with the place written only for an error: walks over whole
    /// requests call this for every nested field they meet, and nearly all pass.
    pub(crate) fn check_nested_at(
        &self,
        path: &str,
        at: &dyn Fn() -> String,
        value: &Json<'_>,
        family: VendorFamily,
        param: &'static str,
    ) -> Result<bool, GatewayError> {
        if value.is_null() {
            #[cfg(test)]
            met::record(self.api, path);
            return Ok(false);
        }
        self.check_nested_rule(self.nested(path), path, at, value, family, param)
    }

    /// [`Self::check_nested_at`] with the rule of `path` already looked up (`rule`), for a
    /// walk that needed it first; `value` is not `null`.
    pub(crate) fn check_nested_rule(
        &self,
        rule: Option<&FieldRule>,
        path: &str,
        at: &dyn Fn() -> String,
        value: &Json<'_>,
        family: VendorFamily,
        param: &'static str,
    ) -> Result<bool, GatewayError> {
        #[cfg(test)]
        met::record(self.api, path);
        #[cfg(not(test))]
        let _ = path; // the coverage test's record of the paths asked about
        match self.disposition_of_nested(rule, family) {
            Disposition::Mapped | Disposition::Passed => Ok(true),
            Disposition::Ignored => Ok(false),
            Disposition::Refused => {
                if rule.is_some_and(|r| r.neutral.iter().any(|n| n.matches(value))) {
                    return Ok(false);
                }
                let shown = match value {
                    Json::Str(s) => format!(": {:?}", s.as_ref()),
                    _ => String::new(),
                };
                let why = match rule {
                    Some(r) if !r.note.is_empty() => r.note,
                    Some(_) => "it has no equivalent there",
                    None => "the gateway does not know it and refuses what it cannot convert",
                };
                Err(GatewayError::invalid(
                    "unsupported_parameter",
                    format!(
                        "{}{shown} cannot be sent to {} providers: {why}",
                        at(),
                        family.name()
                    ),
                )
                .with_param(param))
            }
        }
    }

    /// Check a parsed request's top-level fields for `family`: a 400 for the first refused
    /// field that asks for something (`null` and neutral values are accepted).
    pub(crate) fn check(&self, req: &Object<'_>, family: VendorFamily) -> Result<(), GatewayError> {
        for (key, value) in req {
            if value.is_null() {
                continue;
            }
            match self.rule(key) {
                Some(r)
                    if self.disposition_of(r, family) == Disposition::Refused
                        && !r.neutral.iter().any(|n| n.matches(value)) =>
                {
                    return Err(refused(r, family));
                }
                Some(_) => {}
                None if self.disposition(key, family) == Disposition::Refused => {
                    return Err(GatewayError::invalid(
                        "unsupported_parameter",
                        format!(
                            "unknown parameter `{key}`: the request is converted for {} \
                             providers and the gateway refuses a field it cannot convert \
                             rather than drop it",
                            family.name(),
                        ),
                    ));
                }
                None => {}
            }
        }
        Ok(())
    }

    /// [`FieldTable::check`] over a body that is not parsed yet (for callers outside this
    /// crate, e.g. a filter deciding early).
    pub fn check_body(&self, body: &[u8], family: VendorFamily) -> Result<(), GatewayError> {
        match Json::from_slice(body) {
            Ok(Json::Object(obj)) => self.check(&obj, family),
            // The translator reports malformed bodies with its own messages.
            _ => Ok(()),
        }
    }

    /// The table as Markdown: one row per field, one column per family, then the notes;
    /// nested fields follow the top-level ones.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}:\n", self.api);
        out.push_str("| field |");
        for family in self.columns {
            let _ = write!(out, " {} |", family.name());
        }
        out.push_str(" notes |\n|");
        for _ in 0..self.columns.len() + 2 {
            out.push_str(" --- |");
        }
        out.push('\n');
        for r in self.fields {
            self.markdown_row(&mut out, &format!("`{}`", r.field), r);
        }
        out.push_str("| any other field |");
        for d in self.unknown {
            let _ = write!(out, " {} |", d.name());
        }
        let _ = writeln!(out, " {} |", self.unknown_note);
        for r in self.nested {
            let shown = match r.field.split_once(':') {
                Some((path, kind)) => format!("`{path}: \"{kind}\"`"),
                None => format!("`{}`", r.field),
            };
            self.markdown_row(&mut out, &shown, r);
        }
        out
    }

    fn markdown_row(&self, out: &mut String, shown: &str, r: &FieldRule) {
        let _ = write!(out, "| {shown} |");
        for family in self.columns {
            let d = self.disposition_of(r, *family);
            let _ = write!(out, " {}", d.name());
            if d == Disposition::Refused && !r.neutral.is_empty() {
                let values: Vec<String> = r.neutral.iter().map(|n| n.markdown()).collect();
                let _ = write!(out, " (accepts {})", values.join(", "));
            }
            out.push_str(" |");
        }
        let _ = writeln!(out, " {} |", r.note);
    }
}

fn lookup<'t>(rules: &'t [FieldRule], field: &str) -> Option<&'t FieldRule> {
    rules
        .binary_search_by(|r| r.field.cmp(field))
        .ok()
        .and_then(|i| rules.get(i))
}

/// What a nested walk's helpers are handed: [`FieldTable::nested_checker`].
pub(crate) type NestedCheck<'c> =
    dyn Fn(&str, &dyn Fn() -> String, &Json<'_>, &'static str) -> Result<(), GatewayError> + 'c;

/// Vertex AI has no column of its own: it runs the same translators, and so the same checks.
const VERTEX_NOTE: &str = "\nVertex AI providers (`type: vertex`) follow the Claude column for \
`claude-*` models (the same translators and checks; a Messages body passes with \
`anthropic_version` set and no `model`) and the Gemini column for the others.\n";

/// The README section between `<!-- fields:begin -->` and `<!-- fields:end -->`.
pub fn readme_tables() -> String {
    let tables: Vec<String> = TABLES.iter().map(|t| t.markdown()).collect();
    let mut out = tables.join("\n");
    out.push_str(VERTEX_NOTE);
    out
}

fn refused(r: &FieldRule, family: VendorFamily) -> GatewayError {
    let accepted = if r.neutral.is_empty() {
        String::new()
    } else {
        let values: Vec<String> = r
            .neutral
            .iter()
            .map(|n| n.markdown().replace('`', ""))
            .collect();
        format!(" (only {} is accepted)", values.join(" or "))
    };
    let why = if r.note.is_empty() {
        "it has no equivalent there"
    } else {
        r.note
    };
    GatewayError::invalid(
        "unsupported_parameter",
        format!(
            "`{}` cannot be sent to {} providers{accepted}: {why} (the gateway's field table \
             lists what each provider type accepts)",
            r.field,
            family.name(),
        ),
    )
    .with_param(r.field)
}

mod chat_nested;
mod messages_nested;
pub(crate) use chat_nested::check_chat_nested;
pub(crate) use messages_nested::check_messages_nested;

/// The nested paths the translators asked the tables about, per test thread: the coverage
/// test checks each has a rule.
#[cfg(test)]
pub(crate) mod met {
    use std::cell::RefCell;

    thread_local! {
        static MET: RefCell<Vec<(&'static str, String)>> = const { RefCell::new(Vec::new()) };
    }

    pub(crate) fn record(api: &'static str, path: &str) {
        MET.with(|m| m.borrow_mut().push((api, path.to_owned())));
    }

    /// The paths recorded for table `api` since the last call, which clears them.
    pub(crate) fn take(api: &str) -> Vec<String> {
        MET.with(|m| {
            let all = std::mem::take(&mut *m.borrow_mut());
            all.into_iter()
                .filter(|(a, _)| *a == api)
                .map(|(_, p)| p)
                .collect()
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod coverage;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_without_duplicates() {
        for t in TABLES {
            for pair in t.fields.windows(2) {
                assert!(
                    pair[0].field < pair[1].field,
                    "{}: {} / {}",
                    t.api,
                    pair[0].field,
                    pair[1].field
                );
            }
            for pair in t.nested.windows(2) {
                assert!(pair[0].field < pair[1].field, "{}", pair[1].field);
            }
            assert_eq!(t.unknown.len(), t.columns.len(), "{}", t.api);
            for r in t.fields.iter().chain(t.nested) {
                assert_eq!(r.rule.len(), t.columns.len(), "{}: {}", t.api, r.field);
            }
            for r in t.nested {
                assert_eq!(t.nested(r.field).map(|x| x.field), Some(r.field));
                // Nested rules are never matched against top-level keys.
                assert!(t.rule(r.field).is_none());
                if !r.neutral.is_empty() {
                    assert!(r.rule.contains(&Disposition::Refused), "{}", r.field);
                }
            }
            for r in t.fields {
                assert_eq!(t.rule(r.field).map(|x| x.field), Some(r.field));
                // Neutral values only mean something where the field is refused.
                if !r.neutral.is_empty() {
                    assert!(r.rule.contains(&Disposition::Refused), "{}", r.field);
                }
            }
        }
    }

    #[test]
    fn refused_fields_name_themselves_and_neutral_values_pass() {
        let check = |body: &str, family| CHAT_FIELDS.check_body(body.as_bytes(), family);
        let e = check(r#"{"logprobs":true}"#, VendorFamily::Claude).unwrap_err();
        assert_eq!(
            (e.status(), e.param, e.code),
            (400, Some("logprobs"), "unsupported_parameter")
        );
        assert!(
            e.message.contains("(only false is accepted)"),
            "{}",
            e.message
        );
        assert!(check(
            r#"{"logprobs":false,"n":1,"top_logprobs":0.0,"logit_bias":{},"store":null}"#,
            VendorFamily::Claude
        )
        .is_ok());
        assert!(check(r#"{"modalities":["text"]}"#, VendorFamily::Gemini).is_ok());
        assert!(check(r#"{"modalities":["text","audio"]}"#, VendorFamily::Gemini).is_err());
        assert!(check(r#"{"logprobs":true,"whatever":1}"#, VendorFamily::OpenAi).is_ok());
        let e = check(r#"{"whatever":1}"#, VendorFamily::Gemini).unwrap_err();
        assert_eq!(e.param, None);
        assert!(e.message.contains("`whatever`"), "{}", e.message);
        assert!(MESSAGES_FIELDS
            .check_body(br#"{"whatever":1}"#, VendorFamily::Claude)
            .is_ok());
    }
}
