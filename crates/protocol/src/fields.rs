//! What becomes of each top-level field of a client's request, per vendor family: the rule the
//! request translators apply before converting, and the source of the README's field table.
//!
//! A field is **mapped** (converted to the vendor's equivalent), **passed** (sent unchanged),
//! **ignored** (accepted and not sent: an identification or caching hint that cannot change
//! the answer) or **refused** (a 400 naming it). A refused field is still accepted when it is
//! `null` or holds a *neutral* value, one that asks for nothing beyond the vendor's default
//! (`logprobs: false`, `n: 1`); such a value is not sent either.
//!
//! A field the table does not list follows the table's `unknown` rule: passed where the
//! vendor speaks the client's API (it judges the field itself), refused where the request is
//! converted (Claude and Gemini answer 400 to fields they do not know, and forwarding a field
//! under the other API's name would be wrong anyway).

use crate::borrowed_json::{Json, Object};
use crate::error::GatewayError;
use std::fmt::Write as _;

/// The vendor families a request is converted for; the index of each table column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VendorFamily {
    /// Vendors that speak OpenAI's chat-completions API.
    OpenAi,
    /// Anthropic's Messages API.
    Claude,
    /// Google's Gemini `generateContent` API.
    Gemini,
}

impl VendorFamily {
    /// Every family, in column order.
    pub const ALL: [VendorFamily; 3] = [
        VendorFamily::OpenAi,
        VendorFamily::Claude,
        VendorFamily::Gemini,
    ];

    fn column(self) -> usize {
        match self {
            VendorFamily::OpenAi => 0,
            VendorFamily::Claude => 1,
            VendorFamily::Gemini => 2,
        }
    }

    /// The family's name in messages and the README.
    pub fn name(self) -> &'static str {
        match self {
            VendorFamily::OpenAi => "OpenAI-compatible",
            VendorFamily::Claude => "Claude",
            VendorFamily::Gemini => "Gemini",
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
        }
    }
}

/// The rule for one top-level field.
#[derive(Debug, Clone, Copy)]
pub struct FieldRule {
    pub field: &'static str,
    /// Per family, in [`VendorFamily::ALL`] order.
    pub rule: [Disposition; 3],
    /// Values accepted (and not sent) where the field is refused.
    pub neutral: &'static [Neutral],
    /// How it is mapped, or why it is refused or ignored.
    pub note: &'static str,
}

impl FieldRule {
    pub fn disposition(&self, family: VendorFamily) -> Disposition {
        self.rule[family.column()]
    }
}

/// The rules for every documented top-level field of one client API.
#[derive(Debug, Clone, Copy)]
pub struct FieldTable {
    /// The client API, as the README names it.
    pub api: &'static str,
    /// Sorted by field name.
    pub fields: &'static [FieldRule],
    /// The rule for a field the table does not list.
    pub unknown: [Disposition; 3],
    /// Why unknown fields get that rule.
    pub unknown_note: &'static str,
}

use Disposition::{Ignored as I, Mapped as M, Passed as P, Refused as R};

const fn rule(field: &'static str, rule: [Disposition; 3], note: &'static str) -> FieldRule {
    FieldRule {
        field,
        rule,
        neutral: &[],
        note,
    }
}

const fn neutral(
    field: &'static str,
    rule: [Disposition; 3],
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
    fields: &[
        rule("audio", [P, R, R], "audio output is not converted"),
        neutral("frequency_penalty", [P, R, M], &[Neutral::Zero], "Gemini: `frequencyPenalty`"),
        rule("function_call", [P, R, M], "deprecated form of `tool_choice`; Gemini: `toolConfig`; Claude: send `tool_choice`"),
        rule("functions", [P, R, M], "deprecated form of `tools`; Gemini: `functionDeclarations`; Claude: send `tools`"),
        neutral("logit_bias", [P, R, R], &[Neutral::EmptyObject], "no equivalent"),
        neutral("logprobs", [P, R, R], &[Neutral::False], "log probabilities are not converted back"),
        rule("max_completion_tokens", [P, M, M], "Claude: `max_tokens`; Gemini: `maxOutputTokens`"),
        rule("max_tokens", [P, M, M], "used when `max_completion_tokens` is absent"),
        rule("messages", [P, M, M], "Claude: `system` + turns; Gemini: `systemInstruction` + `contents`"),
        rule("metadata", [P, I, I], "tags for OpenAI's stored completions; no effect on the answer"),
        neutral("modalities", [P, R, R], &[Neutral::TextOnly], "text output only"),
        rule("model", [P, M, M], "after model mapping; Gemini: in the URL path"),
        neutral("n", [P, R, M], &[Neutral::One], "Claude answers one choice; Gemini: `candidateCount` (not with `stream`)"),
        neutral("parallel_tool_calls", [P, M, R], &[Neutral::True], "Claude: `false` -> `tool_choice.disable_parallel_tool_use`; Gemini cannot turn parallel calls off"),
        rule("prediction", [P, R, R], "predicted outputs: no equivalent"),
        neutral("presence_penalty", [P, R, M], &[Neutral::Zero], "Gemini: `presencePenalty`"),
        rule("prompt_cache_key", [P, I, I], "a cache-routing hint; Claude and Gemini cache by their own rules"),
        rule("prompt_cache_retention", [P, I, I], "a cache-retention hint, as `prompt_cache_key`"),
        rule("reasoning_effort", [P, M, M], "Claude: `thinking.budget_tokens` (1024/4096/16384 for low/medium/high, `none` = off); Gemini: `thinkingConfig.thinkingBudget` (0/1024/8192/24576)"),
        rule("response_format", [P, M, M], "`json_schema` -> Claude `output_config.format`, Gemini `responseSchema`; `json_object` -> Gemini `responseMimeType`, refused by Claude (no schema-less JSON mode)"),
        rule("safety_identifier", [P, M, I], "Claude: `metadata.user_id` when `user` is absent"),
        rule("seed", [P, R, M], "Gemini: `seed`"),
        neutral("service_tier", [P, R, R], &[Neutral::Str("auto"), Neutral::Str("default")], "OpenAI's tiers (`flex`, `scale`, `priority`) have no equivalent"),
        rule("stop", [P, M, M], "Claude: `stop_sequences`; Gemini: `stopSequences`"),
        neutral("store", [P, R, R], &[Neutral::False], "only OpenAI stores completions"),
        rule("stream", [P, M, M], "Gemini: `:streamGenerateContent?alt=sse`"),
        rule("stream_options", [P, M, M], "applied by the gateway to the converted stream (`include_usage`)"),
        rule("temperature", [P, M, M], "Claude: clamped to 0..1; refused with thinking unless 1"),
        rule("thinking", [P, M, M], "not OpenAI's: Anthropic's `{type, budget_tokens}`; Claude: as is; Gemini: `thinkingConfig`"),
        rule("tool_choice", [P, M, M], "Claude: `tool_choice`; Gemini: `toolConfig.functionCallingConfig`"),
        rule("tools", [P, M, M], "function tools only; `strict` -> Claude strict tool use"),
        rule("top_k", [P, M, M], "not OpenAI's (vLLM-style); Claude: `top_k`; Gemini: `topK`"),
        neutral("top_logprobs", [P, R, R], &[Neutral::Zero], "log probabilities are not converted back"),
        rule("top_p", [P, M, M], "Claude: only one of `temperature`/`top_p` (`top_p: 1` with `temperature` is not sent)"),
        rule("user", [P, M, I], "Claude: `metadata.user_id`"),
        neutral("verbosity", [P, R, R], &[Neutral::Str("medium")], "no equivalent"),
        rule("web_search_options", [P, R, R], "web search is not converted"),
    ],
    unknown: [P, R, R],
    unknown_note: "OpenAI-compatible vendors judge extension fields themselves; Claude and Gemini reject fields they do not know",
};

/// Anthropic Messages (`POST /v1/messages`), every field of Anthropic's reference (beta
/// fields included).
pub const MESSAGES_FIELDS: FieldTable = FieldTable {
    api: "Anthropic Messages (`/v1/messages`)",
    fields: &[
        rule("cache_control", [I, P, I], "automatic prompt caching: a caching hint"),
        rule("container", [R, P, R], "code-execution containers exist only at Anthropic"),
        rule("context_management", [R, P, R], "context editing exists only at Anthropic"),
        rule("inference_geo", [R, P, R], "a data-residency requirement cannot be honoured elsewhere"),
        rule("max_tokens", [M, P, M], "chat `max_tokens`"),
        rule("mcp_servers", [R, P, R], "the MCP connector exists only at Anthropic"),
        rule("messages", [M, P, M], "chat messages (tool results -> `tool` messages)"),
        rule("metadata", [M, P, I], "`user_id` -> `user`"),
        rule("model", [M, P, M], "after model mapping"),
        rule("output_config", [M, P, M], "`format` -> `response_format` `json_schema`; `effort` -> `reasoning_effort` (`max` -> `xhigh`)"),
        rule("output_format", [M, P, M], "deprecated beta form of `output_config.format`"),
        neutral("service_tier", [M, P, R], &[Neutral::Str("auto"), Neutral::Str("standard_only")], "OpenAI: `auto` -> `auto`, `standard_only` -> `default`"),
        neutral("speed", [R, P, R], &[Neutral::Str("standard")], "fast mode exists only at Anthropic"),
        rule("stop_sequences", [M, P, M], "chat `stop`"),
        rule("stream", [M, P, M], "streams are converted back to Anthropic events"),
        rule("system", [M, P, M], "a leading system message"),
        rule("temperature", [M, P, M], ""),
        rule("thinking", [M, P, M], "OpenAI: `reasoning_effort` (budget < 4096 low, < 16384 medium, else high; `disabled`/`adaptive` not sent); Gemini: `thinkingBudget` N, 0 for `disabled`, -1 for `adaptive`, with `includeThoughts`"),
        rule("tool_choice", [M, P, M], "`disable_parallel_tool_use` -> `parallel_tool_calls: false` (OpenAI), refused by Gemini (no way to turn parallel calls off)"),
        rule("tools", [M, P, M], "custom tools -> functions (`strict` kept); server tools (web search, code execution, ...) refused"),
        rule("top_k", [P, P, M], "Gemini: `topK`"),
        rule("top_p", [M, P, M], ""),
    ],
    unknown: [R, P, R],
    unknown_note: "Claude judges fields itself; a field converted under OpenAI's or Gemini's names cannot be guessed",
};

/// OpenAI Responses (`POST /v1/responses`), every field of OpenAI's reference. Claude and
/// Gemini are served through chat completions (`responses_request_to_chat_for`, then the chat
/// translators), so their columns are this table's rule followed by [`CHAT_FIELDS`]'.
pub const RESPONSES_FIELDS: FieldTable = FieldTable {
    api: "OpenAI Responses (`/v1/responses`; the first column is a vendor that serves it itself, e.g. OpenAI; Claude and Gemini go through chat completions)",
    fields: &[
        neutral("background", [P, R, R], &[Neutral::False], "background responses are run and stored by OpenAI"),
        rule("conversation", [P, R, R], "conversations are stored by OpenAI"),
        rule("include", [P, I, I], "extra output data; `message.output_text.logprobs` refused (log probabilities are not converted back); the hosted-tool ones concern tools that are refused"),
        rule("input", [P, M, M], "chat messages (function calls and outputs, images, inline files); `item_reference` and hosted-tool items refused"),
        rule("instructions", [P, M, M], "a leading system message"),
        rule("max_output_tokens", [P, M, M], "chat `max_tokens`"),
        rule("max_tool_calls", [P, I, I], "limits built-in (hosted) tool calls only, and hosted tools are refused"),
        rule("metadata", [P, I, I], "echoed in the answer; not sent (as chat `metadata`)"),
        rule("model", [P, M, M], "after model mapping; Gemini: in the URL path"),
        neutral("parallel_tool_calls", [P, M, R], &[Neutral::True], "Claude: `false` -> `tool_choice.disable_parallel_tool_use`; Gemini cannot turn parallel calls off"),
        rule("previous_response_id", [P, R, R], "needs responses stored by OpenAI"),
        rule("prompt", [P, R, R], "prompt templates are stored by OpenAI"),
        rule("prompt_cache_key", [P, I, I], "a cache-routing hint; Claude and Gemini cache by their own rules"),
        rule("prompt_cache_retention", [P, I, I], "a cache-retention hint, as `prompt_cache_key`"),
        rule("reasoning", [P, M, M], "`effort` -> chat `reasoning_effort` (Claude `thinking`, Gemini `thinkingConfig`); thinking comes back as `reasoning` items; `summary` is not sent"),
        rule("safety_identifier", [P, M, I], "Claude: `metadata.user_id` when `user` is absent"),
        neutral("service_tier", [P, R, R], &[Neutral::Str("auto"), Neutral::Str("default")], "OpenAI's tiers (`flex`, `scale`, `priority`) have no equivalent"),
        rule("store", [P, I, I], "nothing is stored, and the answer says `\"store\": false` (`previous_response_id` is refused)"),
        rule("stream", [P, M, M], "converted back to Responses events; Gemini: `:streamGenerateContent?alt=sse`"),
        rule("stream_options", [P, I, I], "`include_obfuscation`: converted streams carry no obfuscation padding"),
        rule("temperature", [P, M, M], "Claude: clamped to 0..1; refused with thinking unless 1"),
        rule("text", [P, M, M], "`format` -> chat `response_format` (`json_schema` -> Claude `output_config.format`, Gemini `responseSchema`; `json_object` -> Gemini `responseMimeType`, refused by Claude); `verbosity` other than `medium` refused"),
        rule("tool_choice", [P, M, M], "as chat; `allowed_tools` -> its mode over only the allowed functions; hosted-tool choices refused"),
        rule("tools", [P, M, M], "function tools only (`strict` kept); hosted tools (web search, file search, MCP, ...) refused"),
        neutral("top_logprobs", [P, R, R], &[Neutral::Zero], "log probabilities are not converted back"),
        rule("top_p", [P, M, M], "Claude: only one of `temperature`/`top_p`"),
        neutral("truncation", [P, R, R], &[Neutral::Str("disabled")], "`auto` (dropping context to fit) is OpenAI's; other vendors answer 400 when the context overflows, as with `disabled`"),
        rule("user", [P, M, I], "Claude: `metadata.user_id`"),
    ],
    unknown: [P, R, R],
    unknown_note: "OpenAI judges fields itself; Claude and Gemini get a converted request, and a field converted under chat's names cannot be guessed",
};

/// Every table, in README order.
pub const TABLES: [&FieldTable; 3] = [&CHAT_FIELDS, &MESSAGES_FIELDS, &RESPONSES_FIELDS];

impl FieldTable {
    /// The rule for `field`, if the table lists it.
    pub fn rule(&self, field: &str) -> Option<&FieldRule> {
        self.fields
            .binary_search_by(|r| r.field.cmp(field))
            .ok()
            .and_then(|i| self.fields.get(i))
    }

    /// What happens to `field` for `family` (the `unknown` rule for unlisted fields).
    pub fn disposition(&self, field: &str, family: VendorFamily) -> Disposition {
        match self.rule(field) {
            Some(r) => r.disposition(family),
            None => self.unknown[family.column()],
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
                    if r.disposition(family) == Disposition::Refused
                        && !r.neutral.iter().any(|n| n.matches(value)) =>
                {
                    return Err(refused(r, family));
                }
                Some(_) => {}
                None if self.unknown[family.column()] == Disposition::Refused => {
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

    /// The table as Markdown: one row per field, one column per family, then the notes.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}:\n", self.api);
        out.push_str("| field |");
        for family in VendorFamily::ALL {
            let _ = write!(out, " {} |", family.name());
        }
        out.push_str(" notes |\n| --- | --- | --- | --- | --- |\n");
        for r in self.fields {
            let _ = write!(out, "| `{}` |", r.field);
            for family in VendorFamily::ALL {
                let d = r.disposition(family);
                let _ = write!(out, " {}", d.name());
                if d == Disposition::Refused && !r.neutral.is_empty() {
                    let values: Vec<String> = r.neutral.iter().map(|n| n.markdown()).collect();
                    let _ = write!(out, " (accepts {})", values.join(", "));
                }
                out.push_str(" |");
            }
            let _ = writeln!(out, " {} |", r.note);
        }
        out.push_str("| any other field |");
        for d in self.unknown {
            let _ = write!(out, " {} |", d.name());
        }
        let _ = writeln!(out, " {} |", self.unknown_note);
        out
    }
}

/// The README section between `<!-- fields:begin -->` and `<!-- fields:end -->`.
pub fn readme_tables() -> String {
    let tables: Vec<String> = TABLES.iter().map(|t| t.markdown()).collect();
    tables.join("\n")
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
    GatewayError::invalid(
        "unsupported_parameter",
        format!(
            "`{}` cannot be sent to {} providers{accepted}: it has no equivalent there \
             (the gateway's field table lists what each provider type accepts)",
            r.field,
            family.name(),
        ),
    )
    .with_param(r.field)
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
