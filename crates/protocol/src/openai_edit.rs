//! Edits of an OpenAI request body on its way to an OpenAI-compatible vendor, and the stream
//! filter on its way back. Edits splice bytes where they can, so an untouched field keeps the
//! client's exact bytes; only context injection needs a full parse.

use crate::error::GatewayError;
use crate::json_field::{replace_top_level_string, splice_string, top_level_value_spans, KeyIn};
use crate::sse::{write_event, SseEvent, SseParser};
use crate::stream::{StreamConverter, Usage};
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::ops::Range;

/// What to change in an OpenAI request body.
#[derive(Debug, Default, Clone)]
pub struct RequestEdits<'a> {
    /// Replace `model` with this.
    pub model: Option<&'a str>,
    /// Where the body's top-level `model` values are, when a pass over this same body already
    /// found them ([`RequestFacts::model_spans`]): the edit then splices without parsing again.
    pub model_spans: Option<&'a [Range<usize>]>,
    /// Ask the vendor for the usage chunk (`stream_options.include_usage: true`).
    pub request_usage: bool,
    /// Insert this text as the first system message.
    pub context: Option<&'a str>,
}

/// Check an OpenAI request body: a JSON object, with a string `model` when `needs_model`.
/// Returns the model.
pub fn validate(body: &[u8], needs_model: bool) -> Result<Option<String>, GatewayError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        GatewayError::invalid(
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    let Some(obj) = v.as_object() else {
        return Err(GatewayError::invalid(
            "invalid_body",
            "request body must be a JSON object",
        ));
    };
    check_model(obj.get("model"), needs_model)
}

/// The `model` field's rules: a non-empty string, required when `needs_model`.
fn check_model(model: Option<&Value>, needs_model: bool) -> Result<Option<String>, GatewayError> {
    match model {
        Some(Value::String(m)) if !m.is_empty() => Ok(Some(m.clone())),
        Some(Value::String(_)) | None if needs_model => Err(GatewayError::invalid(
            "missing_model",
            "you must provide a model parameter",
        )
        .with_param("model")),
        Some(Value::String(_)) | None => Ok(None),
        Some(_) => Err(
            GatewayError::invalid("invalid_type", "`model` must be a string").with_param("model"),
        ),
    }
}

/// What the body phase needs to know of an OpenAI request when no metadata filter told the
/// header phase: its model (checked as [`validate`] checks it), `stream` and
/// `stream_options.include_usage`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFacts {
    pub model: Option<String>,
    pub stream: bool,
    pub include_usage: bool,
    /// Byte ranges of every top-level `model` value (as [`top_level_value_spans`] finds them),
    /// for [`RequestEdits::model_spans`].
    pub model_spans: Vec<Range<usize>>,
}

/// The facts [`ParsedRequest::facts`] reads from a tree: those of [`RequestFacts`] for a body
/// with a model, without the byte spans of `model` (a tree keeps no offsets; an edit that
/// needs them finds `model` itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFacts {
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
}

/// An OpenAI request body parsed once (by the strict scanner), so that its facts and a
/// translation that needs the whole tree (OpenAI -> Claude) share one parse instead of a
/// facts scan and then a parse.
pub struct ParsedRequest<'a> {
    pub(crate) object: Vec<(std::borrow::Cow<'a, str>, crate::borrowed_json::Json<'a>)>,
    pub(crate) body_len: usize,
}

impl<'a> ParsedRequest<'a> {
    /// The body as a tree when the strict scanner reads it as a JSON object; `None` otherwise
    /// (not JSON, not an object, or a form the scanner leaves to serde), and the caller goes
    /// the usual way, whose errors are the reference.
    pub fn parse(body: &'a [u8]) -> Option<ParsedRequest<'a>> {
        match crate::json_scan::parse_tree(body)? {
            crate::borrowed_json::Json::Object(object) => Some(ParsedRequest {
                object,
                body_len: body.len(),
            }),
            _ => None,
        }
    }

    /// What [`request_facts`] answers for this body, read from the tree: `None` when `model`
    /// is not a non-empty string, leaving that body's answer (an error, or no model) to
    /// [`request_facts`].
    pub fn facts(&self) -> Option<TreeFacts> {
        use crate::borrowed_json::{lookup, Json};
        let model = match lookup(&self.object, "model")? {
            Json::Str(m) if !m.is_empty() => m.to_string(),
            _ => return None,
        };
        let stream = matches!(lookup(&self.object, "stream"), Some(Json::Bool(true)));
        let include_usage = match lookup(&self.object, "stream_options") {
            Some(Json::Object(options)) => {
                matches!(lookup(options, "include_usage"), Some(Json::Bool(true)))
            }
            _ => false,
        };
        Some(TreeFacts {
            model,
            stream,
            include_usage,
        })
    }
}

/// [`validate`] plus the stream flags, in one pass that builds only those three fields (the
/// messages are skipped, not materialised). With duplicate keys the last one counts, as with
/// [`validate`].
pub fn request_facts(body: &[u8], needs_model: bool) -> Result<RequestFacts, GatewayError> {
    // One strict pass does it for nearly every body; what it leaves goes the general way.
    if let Some([model, stream, options]) =
        crate::json_scan::scan_object(body, ["model", "stream", "stream_options"])
    {
        let last = |spans: &[Range<usize>]| spans.last().and_then(|r| body.get(r.clone()));
        let model_value = match last(&model) {
            // A plain string (the usual case) needs no parser: the scan checked it.
            Some([b'"', inner @ .., b'"']) if !inner.contains(&b'\\') => std::str::from_utf8(inner)
                .ok()
                .map(|m| Value::String(m.to_string())),
            raw => raw.and_then(|r| serde_json::from_slice::<Value>(r).ok()),
        };
        let include_usage = last(&options)
            .and_then(|r| serde_json::from_slice::<Value>(r).ok())
            .and_then(|o| o.get("include_usage").and_then(Value::as_bool))
            .unwrap_or(false);
        return Ok(RequestFacts {
            model: check_model(model_value.as_ref(), needs_model)?,
            stream: last(&stream) == Some(b"true"),
            include_usage,
            model_spans: model,
        });
    }
    request_facts_general(body, needs_model)
}

/// [`request_facts`] for what the fast scan leaves: several passes, and serde's wording of
/// any error.
fn request_facts_general(body: &[u8], needs_model: bool) -> Result<RequestFacts, GatewayError> {
    // JSON is UTF-8; the pass below skips most strings without looking inside them.
    if let Err(e) = std::str::from_utf8(body) {
        return Err(GatewayError::invalid(
            "invalid_json",
            format!(
                "request body is not valid JSON: invalid UTF-8 at byte {}",
                e.valid_up_to()
            ),
        ));
    }
    // The pass below skips strings without decoding their escapes: a body with a UTF-16
    // surrogate escape (rare) is checked whole, so a lone surrogate is refused as Envoy's
    // `json_to_metadata` refuses it.
    if has_surrogate_escape(body) {
        serde_json::from_slice::<Value>(body).map_err(|e| {
            GatewayError::invalid(
                "invalid_json",
                format!("request body is not valid JSON: {e}"),
            )
        })?;
    }
    if nesting_deeper_than(body, MAX_DEPTH) {
        return Err(GatewayError::invalid(
            "invalid_json",
            format!("request body is not valid JSON: nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    if body.trim_ascii_start().first() != Some(&b'{') {
        // Not an object: the full check words the error.
        validate(body, needs_model)?;
        return Err(GatewayError::invalid(
            "invalid_body",
            "request body must be a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let visitor = FactsVisitor {
        base: body.as_ptr() as usize,
    };
    let raw = serde::Deserializer::deserialize_map(&mut de, visitor)
        .and_then(|raw| de.end().map(|()| raw))
        .map_err(|e| {
            GatewayError::invalid(
                "invalid_json",
                format!("request body is not valid JSON: {e}"),
            )
        })?;
    let parse = |r: Option<&RawValue>| r.and_then(|r| serde_json::from_str::<Value>(r.get()).ok());
    let model = check_model(parse(raw.model).as_ref(), needs_model)?;
    let stream = parse(raw.stream) == Some(Value::Bool(true));
    let include_usage = parse(raw.stream_options)
        .and_then(|o| o.get("include_usage").and_then(Value::as_bool))
        .unwrap_or(false);
    Ok(RequestFacts {
        model,
        stream,
        include_usage,
        model_spans: raw.model_spans,
    })
}

/// Deepest nesting accepted (serde_json's own limit; the pass below skips nested values
/// without counting them).
const MAX_DEPTH: usize = 128;

/// Whether arrays and objects in `body` nest deeper than `limit` (brackets inside strings do
/// not count).
fn nesting_deeper_than(body: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Whether `body` holds a `\uD800`-`\uDFFF` escape (case-insensitive hex).
fn has_surrogate_escape(body: &[u8]) -> bool {
    let mut rest = body;
    while let Some(at) = rest.iter().position(|&b| b == b'\\') {
        let next = rest.get(at + 1..).unwrap_or_default();
        if let [b'u', b'd' | b'D', hex, ..] = next {
            if matches!(hex.to_ascii_lowercase(), b'8'..=b'9' | b'a'..=b'f') {
                return true;
            }
        }
        // Skip the escaped byte too (`\\` is one escape).
        rest = next.get(1..).unwrap_or_default();
    }
    false
}

#[derive(Default)]
struct RawFacts<'a> {
    model: Option<&'a RawValue>,
    model_spans: Vec<Range<usize>>,
    stream: Option<&'a RawValue>,
    stream_options: Option<&'a RawValue>,
}

struct FactsVisitor {
    /// Address of the body's first byte: a borrowed value's offset is its address minus this.
    base: usize,
}

impl<'de> Visitor<'de> for FactsVisitor {
    type Value = RawFacts<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut facts = RawFacts::default();
        while let Some(key) = map.next_key_seed(KeyIn(&["model", "stream", "stream_options"]))? {
            let slot = match key {
                Some(0) => {
                    let raw: &'de RawValue = map.next_value()?;
                    let start = (raw.get().as_ptr() as usize).wrapping_sub(self.base);
                    facts.model_spans.push(start..start + raw.get().len());
                    facts.model = Some(raw);
                    continue;
                }
                Some(1) => &mut facts.stream,
                Some(2) => &mut facts.stream_options,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value()?);
        }
        Ok(facts)
    }
}

/// Apply `edits`; `Ok(None)` when nothing changed.
pub fn apply(body: &[u8], edits: &RequestEdits<'_>) -> Result<Option<Vec<u8>>, GatewayError> {
    let mut out: Option<Vec<u8>> = None;
    if let Some(model) = edits.model {
        out = match edits.model_spans {
            Some(spans) => splice_string(body, spans, model),
            None => replace_top_level_string(body, "model", model),
        };
    }
    if edits.request_usage {
        let cur = out.as_deref().unwrap_or(body);
        if let Some(next) = request_usage(cur)? {
            out = Some(next);
        }
    }
    if let Some(text) = edits.context {
        let cur = out.as_deref().unwrap_or(body);
        out = Some(insert_system_message(cur, text)?);
    }
    Ok(out)
}

fn request_usage(body: &[u8]) -> Result<Option<Vec<u8>>, GatewayError> {
    let spans = top_level_value_spans(body, "stream_options").ok_or_else(|| {
        GatewayError::invalid("invalid_json", "request body is not a JSON object")
    })?;
    if spans.is_empty() {
        // Splice the field in right after the opening brace; the rest stays byte-identical.
        let Some(brace) = body.iter().position(|&b| b == b'{') else {
            return Ok(None);
        };
        let rest = body.get(brace + 1..).unwrap_or_default();
        let empty = rest.iter().all(|b| b.is_ascii_whitespace() || *b == b'}');
        let mut out = Vec::with_capacity(body.len() + 40);
        out.extend_from_slice(body.get(..=brace).unwrap_or_default());
        out.extend_from_slice(br#""stream_options":{"include_usage":true}"#);
        if !empty {
            out.push(b',');
        }
        out.extend_from_slice(rest);
        return Ok(Some(out));
    }
    let mut v: Value = serde_json::from_slice(body).map_err(|e| {
        GatewayError::invalid(
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    match v.get_mut("stream_options") {
        Some(Value::Object(o)) => {
            if o.get("include_usage") == Some(&Value::Bool(true)) {
                return Ok(None);
            }
            o.insert("include_usage".into(), Value::Bool(true));
        }
        _ => {
            return Err(
                GatewayError::invalid("invalid_type", "`stream_options` must be an object")
                    .with_param("stream_options"),
            )
        }
    }
    Ok(Some(v.to_string().into_bytes()))
}

fn insert_system_message(body: &[u8], text: &str) -> Result<Vec<u8>, GatewayError> {
    let mut v: Value = serde_json::from_slice(body).map_err(|e| {
        GatewayError::invalid(
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    let Some(messages) = v.get_mut("messages").and_then(Value::as_array_mut) else {
        return Err(
            GatewayError::invalid("invalid_type", "`messages` must be a list")
                .with_param("messages"),
        );
    };
    messages.insert(0, json!({ "role": "system", "content": text }));
    Ok(v.to_string().into_bytes())
}

/// OpenAI stream passed through, minus the usage the gateway asked for and the client did not.
/// Records usage either way.
#[derive(Debug)]
pub struct UsageFilter {
    parser: SseParser,
    client_wants_usage: bool,
    usage: Option<Usage>,
    events: Vec<SseEvent>,
}

impl UsageFilter {
    pub fn new(client_wants_usage: bool) -> Self {
        UsageFilter {
            parser: SseParser::new(),
            client_wants_usage,
            usage: None,
            events: Vec::new(),
        }
    }

    fn emit(&mut self, out: &mut Vec<u8>) {
        for ev in std::mem::take(&mut self.events) {
            let mut data = ev.data;
            if data != "[DONE]" && data.contains("\"usage\"") {
                if let Ok(mut v) = serde_json::from_str::<Value>(&data) {
                    if let Some(u) = v.get("usage").and_then(Usage::from_openai_json) {
                        self.usage = Some(u);
                        if !self.client_wants_usage {
                            let no_choices = v
                                .get("choices")
                                .and_then(Value::as_array)
                                .is_none_or(|c| c.is_empty());
                            if no_choices {
                                continue;
                            }
                            if let Some(o) = v.as_object_mut() {
                                o.remove("usage");
                            }
                            data = v.to_string();
                        }
                    }
                }
            }
            write_event(out, ev.event.as_deref(), &data);
        }
    }
}

impl StreamConverter for UsageFilter {
    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut events = std::mem::take(&mut self.events);
        self.parser.push_into(chunk, &mut events);
        self.events = events;
        let mut out = Vec::new();
        self.emit(&mut out);
        out
    }

    fn finish(&mut self) -> Vec<u8> {
        if let Some(ev) = self.parser.finish() {
            self.events.push(ev);
        }
        let mut out = Vec::new();
        self.emit(&mut out);
        out
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    /// The one-pass scan and the general path give the same facts and the same errors.
    #[test]
    fn fast_facts_equal_general_facts() {
        let bodies: [&[u8]; 10] = [
            br#"{"model":"gpt-4o","messages":[],"stream":true,"stream_options":{"include_usage":true}}"#,
            br#"{"model":"a","model":"b","stream":false,"stream":true}"#,
            br#"{"model":"auto","stream":1}"#,
            br#"{"model":"","messages":[]}"#,
            br#"{"model":5}"#,
            br#"{"messages":[]}"#,
            br#"{"model":"m","stream_options":{"include_usage":"yes"}}"#,
            br#"{"model":"m","stream_options":[]}"#,
            r#"{"model":"漢字","stream" : true }"#.as_bytes(),
            br#"{"model":null}"#,
        ];
        for body in bodies {
            for needs_model in [true, false] {
                assert!(crate::json_scan::scan_object(body, ["model"]).is_some());
                assert_eq!(
                    super::request_facts(body, needs_model),
                    super::request_facts_general(body, needs_model),
                    "{}",
                    String::from_utf8_lossy(body)
                );
            }
        }
    }

    #[test]
    fn facts_refuse_what_envoys_json_parser_refuses() {
        let lone = br#"{"model":"m","messages":[{"role":"user","content":"\ud800"}]}"#;
        assert_eq!(
            super::request_facts(lone, true).map_err(|e| e.code),
            Err("invalid_json")
        );
        let bad_utf8 = b"{\"model\":\"m\",\"x\":\"\xff\"}";
        assert_eq!(
            super::request_facts(bad_utf8, true).map_err(|e| e.code),
            Err("invalid_json")
        );
        // A surrogate pair and an escaped backslash before `ud800` are fine.
        let pair = br#"{"model":"m","x":"\ud83d\ude00","y":"\\ud800"}"#;
        assert_eq!(
            super::request_facts(pair, true).map(|f| f.model),
            Ok(Some("m".into()))
        );
        assert!(!super::has_surrogate_escape(br#"{"y":"\\ud800"}"#));
        let deep = format!(
            r#"{{"model":"m","messages":{}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(
            super::request_facts(deep.as_bytes(), true).map_err(|e| e.code),
            Err("invalid_json")
        );
        let ok = format!(
            r#"{{"model":"m","x":"{}","m":{}{}}}"#,
            "[".repeat(300),
            "[".repeat(100),
            "]".repeat(100)
        );
        assert!(super::request_facts(ok.as_bytes(), true).is_ok());
        assert!(super::has_surrogate_escape(br#"{"y":"\uDBFF"}"#));
    }

    use crate::openai::wants_usage;

    /// `request_facts` agrees with a full parse (`validate` and the stream fields of a `Value`).
    #[test]
    fn request_facts_match_a_full_parse() {
        let bodies = [
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"{\"model\":\"x\"}"}]}"#,
            r#"{"model":"a","stream":true,"stream_options":{"include_usage":true}}"#,
            r#"{"stream":"yes","model":"m","stream_options":{"include_usage":1}}"#,
            r#"{"model":"first","model":"second","stream":false,"stream":true}"#,
            r#"{"model":""}"#,
            r#"{"model":5}"#,
            r#"{"messages":[]}"#,
            r#" {"model":"m","extra":{"deep":[[[{"a":null}]]]}} "#,
            r#"{"model":"m"} trailing"#,
            r#"{"model":"m""#,
            r#"[{"model":"m"}]"#,
            r#""model""#,
            "",
        ];
        let bad_utf8 = request_facts(b"{\"model\":\"a\xff\"}", true).unwrap_err();
        assert_eq!(bad_utf8.code, "invalid_json");
        for body in bodies {
            for needs_model in [true, false] {
                let full = validate(body.as_bytes(), needs_model).map(|model| {
                    let v: Value = serde_json::from_str(body).unwrap_or_default();
                    RequestFacts {
                        model,
                        stream: v.get("stream") == Some(&Value::Bool(true)),
                        include_usage: wants_usage(&v),
                        model_spans: top_level_value_spans(body.as_bytes(), "model")
                            .unwrap_or_default(),
                    }
                });
                let fast = request_facts(body.as_bytes(), needs_model);
                match (&full, &fast) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "{body}"),
                    (Err(a), Err(b)) => assert_eq!(a.code, b.code, "{body}"),
                    _ => panic!("{body}: {full:?} vs {fast:?}"),
                }
            }
        }
    }
    use super::*;

    /// Facts read from the parsed tree are [`request_facts`]'s (spans aside), for every body
    /// the tree takes; the rest (no parse, or a model that is not a non-empty string) is left
    /// to [`request_facts`]. Bodies: each of these, and each with one byte removed.
    #[test]
    fn parsed_facts_are_request_facts() {
        let bodies = [
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"{\"model\":\"x\"}"}]}"#,
            r#"{"model":"a","stream":true,"stream_options":{"include_usage":true}}"#,
            r#"{"model":"a","stream":true,"stream_options":{"include_usage":false}}"#,
            r#"{"stream":"yes","model":"m","stream_options":{"include_usage":1}}"#,
            r#"{"model":"m","stream_options":{"include_usage":true,"include_usage":false}}"#,
            r#"{"model":"m","stream_options":{"include_usage":false,"include_usage":true}}"#,
            r#"{"model":"m","stream_options":[{"include_usage":true}],"stream":1}"#,
            r#"{"model":"first","model":"second","stream":false,"stream":true}"#,
            r#"{"model":"first","model":5}"#,
            r#"{"model":"\u0067pt","stream": true ,"stream_options" : {"include_usage" : true} }"#,
            r#"{"model":"漢字","messages":[],"n":1e5,"x":[null,true,false,{}]}"#,
            r#"{"model":""}"#,
            r#"{"model":5}"#,
            r#"{"model":null}"#,
            r#"{"messages":[]}"#,
            r#"{"model":"m","x":"\ud800"}"#,
            r#"{"model":"m","x":"\ud83d\ude00"}"#,
            r#"[{"model":"m"}]"#,
        ];
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for body in bodies {
            let b = body.as_bytes();
            cases.push(b.to_vec());
            for i in 0..b.len() {
                let mut cut = b.to_vec();
                cut.remove(i);
                cases.push(cut);
            }
        }
        let mut from_tree = 0;
        for body in &cases {
            let Some(facts) = ParsedRequest::parse(body).and_then(|p| p.facts()) else {
                continue;
            };
            from_tree += 1;
            let reference = request_facts(body, true).unwrap_or_else(|e| {
                panic!(
                    "{}: tree facts {facts:?}, request_facts {e:?}",
                    String::from_utf8_lossy(body)
                )
            });
            assert_eq!(
                (Some(facts.model), facts.stream, facts.include_usage),
                (reference.model, reference.stream, reference.include_usage),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // The tree path is the common one, not a corner the test never reaches.
        assert!(from_tree > 100, "{from_tree}");
        assert!(ParsedRequest::parse(br#"{"model":"m","x":"\ud800"}"#).is_none());
        assert!(ParsedRequest::parse(br#"[{"model":"m"}]"#).is_none());
    }

    #[test]
    fn validation_errors() {
        assert_eq!(validate(b"{x", true).unwrap_err().code, "invalid_json");
        assert_eq!(validate(b"[]", true).unwrap_err().code, "invalid_body");
        assert_eq!(validate(b"{}", true).unwrap_err().code, "missing_model");
        assert_eq!(
            validate(br#"{"model":1}"#, true).unwrap_err().param,
            Some("model")
        );
        assert_eq!(
            validate(br#"{"model":"m"}"#, true).unwrap(),
            Some("m".into())
        );
        assert_eq!(validate(b"{}", false).unwrap(), None);
    }

    #[test]
    fn facts_find_the_model_spans_a_rewrite_needs() {
        for body in [
            &br#"{"model":"a","messages":[]}"#[..],
            br#"{ "messages":[{"role":"user","content":"\"model\": \"x\""}], "model" :  "auto" }"#,
            br#"{"model":"a","metadata":{"model":"n"},"model":"b"}"#,
            br#"{"messages":[]}"#,
        ] {
            let facts = request_facts(body, false).unwrap();
            let spans = top_level_value_spans(body, "model").unwrap();
            assert_eq!(facts.model_spans, spans);
            let with = RequestEdits {
                model: Some("m\"x"),
                model_spans: Some(&facts.model_spans),
                ..Default::default()
            };
            let without = RequestEdits {
                model_spans: None,
                ..with.clone()
            };
            assert_eq!(apply(body, &with).unwrap(), apply(body, &without).unwrap());
        }
    }

    #[test]
    fn usage_is_requested_by_splicing() {
        let body = br#"{"model":"a","stream":true}"#;
        let out = apply(
            body,
            &RequestEdits {
                model: Some("b"),
                request_usage: true,
                ..Default::default()
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            &out[..],
            br#"{"stream_options":{"include_usage":true},"model":"b","stream":true}"#
        );
        let body = br#"{"stream_options":{"include_usage":false},"model":"a"}"#;
        let out = apply(
            body,
            &RequestEdits {
                request_usage: true,
                ..Default::default()
            },
        )
        .unwrap()
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        let body = br#"{"stream_options":{"include_usage":true},"model":"a"}"#;
        assert!(apply(
            body,
            &RequestEdits {
                request_usage: true,
                ..Default::default()
            }
        )
        .unwrap()
        .is_none());
    }

    #[test]
    fn context_becomes_first_system_message() {
        let body = br#"{"model":"a","messages":[{"role":"user","content":"hi"}]}"#;
        let out = apply(
            body,
            &RequestEdits {
                context: Some("ctx"),
                ..Default::default()
            },
        )
        .unwrap()
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["messages"][0],
            json!({"role": "system", "content": "ctx"})
        );
        assert_eq!(v["messages"][1]["content"], "hi");
        assert!(apply(
            br#"{"model":"a"}"#,
            &RequestEdits {
                context: Some("c"),
                ..Default::default()
            }
        )
        .is_err());
    }

    #[test]
    fn usage_chunk_stripped_unless_asked() {
        let stream = b"data: {\"id\":\"1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n\
data: {\"id\":\"1\",\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1,\"total_tokens\":3}}\n\ndata: [DONE]\n\n";
        for wants in [false, true] {
            let mut f = UsageFilter::new(wants);
            let mut out = Vec::new();
            for c in stream.chunks(7) {
                out.extend(f.push(c));
            }
            out.extend(f.finish());
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text.contains("\"usage\""), wants, "{text}");
            assert!(text.ends_with("data: [DONE]\n\n"));
            assert_eq!(f.usage().unwrap().total_tokens, 3);
        }
    }
}
