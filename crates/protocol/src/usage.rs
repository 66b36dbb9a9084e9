//! Reading token usage from answers the gateway passes through without translating: whole
//! bodies (OpenAI or Anthropic shape, possibly only the tail of a large body) and Anthropic
//! Messages streams. Translated answers report usage through their converters.

use crate::anthropic::types::AnthropicUsage;
use crate::json_field::KeyIn;
use crate::json_scan::Member;
use crate::sse::{SseEvent, SseParser};
use crate::stream::Usage;
use serde::de::{Deserialize, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Usage in a `usage` object of either shape: OpenAI (`prompt_tokens`, `completion_tokens`,
/// `prompt_tokens_details.cached_tokens`) or Anthropic (`input_tokens`, `output_tokens`,
/// `cache_read_input_tokens`, `cache_creation_input_tokens`).
pub fn usage_from_object(usage: &Value) -> Option<Usage> {
    let obj = usage.as_object()?;
    if obj.contains_key("input_tokens") || obj.contains_key("output_tokens") {
        let a: AnthropicUsage = serde_json::from_value(usage.clone()).ok()?;
        return Some(a.to_usage());
    }
    Usage::from_openai_json(usage)
}

/// Usage of a whole JSON answer (`None` when it has none or is not JSON). One pass: the
/// `usage` object's counts are read as they go by and the rest of the answer is skipped
/// without allocating. Same answers as [`usage_from_object`] on the parsed `usage`.
pub fn usage_from_body(body: &[u8]) -> Option<Usage> {
    // One strict scan finds the `usage` value; only that value is read, without serde when it
    // has the plain shape.
    if let Some([usage]) = crate::json_scan::scan_members(body, ["usage"]) {
        if usage.count != 1 {
            return None;
        }
        let value = body.get(usage.span?)?;
        let fields = match usage_fields_fast(value) {
            Some(fields) => fields,
            None => serde_json::from_slice::<UsageFields>(value).ok()?,
        };
        return fields.to_usage();
    }
    usage_from_body_general(body)
}

/// [`UsageFields`] of a `usage` value the strict scanner accepted ([`crate::json_scan`]), read
/// without serde when it has the plain shape: an object with each key at most once and
/// unescaped, whose counts are `null`, plain counts (`[0-9]{1,19}`) or values that are not
/// numbers. `None` leaves the value to serde (other numbers may be out of `f64` range, which
/// serde refuses, and repeated keys are each read by serde).
fn usage_fields_fast(value: &[u8]) -> Option<UsageFields> {
    if value.first() != Some(&b'{') {
        return None;
    }
    let [prompt, completion, total, input, output, cache_read, cache_creation, details] =
        crate::json_scan::scan_members(value, USAGE_KEYS)?;
    let count = |m: Member| match m.count {
        0 => Some(Count::Absent),
        1 => count_fast(value.get(m.span?)?),
        _ => None,
    };
    let cached = match details.count {
        0 => Count::Absent,
        1 => {
            let details = value.get(details.span?)?;
            match details.first()? {
                b'{' => {
                    let [cached] = crate::json_scan::scan_members(details, ["cached_tokens"])?;
                    match cached.count {
                        0 => Count::Absent,
                        1 => count_fast(details.get(cached.span?)?)?,
                        _ => return None,
                    }
                }
                // Not an object: no cached count (a number only when serde reads it).
                _ => count_fast(details).map(|_| Count::Absent)?,
            }
        }
        _ => return None,
    };
    Some(UsageFields {
        object: true,
        prompt: count(prompt)?,
        completion: count(completion)?,
        total: count(total)?,
        cached,
        input: count(input)?,
        output: count(output)?,
        cache_read: count(cache_read)?,
        cache_creation: count(cache_creation)?,
    })
}

/// A scanned value as [`Count`] reads it; `None` for numbers other than plain counts (serde
/// reads those: negative or fractional ones are `Other`, but some are out of range).
fn count_fast(value: &[u8]) -> Option<Count> {
    match value.first()? {
        b'n' => Some(Count::Null),
        b'"' | b't' | b'f' | b'[' | b'{' => Some(Count::Other),
        _ => {
            if value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let n = value.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            Some(Count::Tokens(n))
        }
    }
}

/// [`usage_from_body`] for what the fast scan leaves.
fn usage_from_body_general(body: &[u8]) -> Option<Usage> {
    // Answers are objects (a top-level array is not an answer).
    if body.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let fields = de.deserialize_map(TopUsageVisitor).ok()?;
    de.end().ok()?;
    fields?.to_usage()
}

/// Usage from the last bytes of a JSON answer too large to keep whole: the object after the
/// last `"usage":` key. Vendors put `usage` at the end of their answers.
pub fn usage_from_tail(tail: &[u8]) -> Option<Usage> {
    const KEY: &[u8] = b"\"usage\"";
    let at = tail.windows(KEY.len()).rposition(|w| w == KEY)?;
    let rest = tail.get(at + KEY.len()..)?;
    let colon = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    if rest.get(colon) != Some(&b':') {
        return None;
    }
    let value = rest.get(colon + 1..)?;
    serde_json::Deserializer::from_slice(value)
        .into_iter::<UsageFields>()
        .next()?
        .ok()?
        .to_usage()
}

/// The `visit_*` methods of a visitor that takes any JSON value and answers `$value` for each
/// that is not an object (arrays are read through and skipped).
macro_rules! non_objects_are {
    ($de:lifetime, $ty:ty, $value:expr) => {
        fn visit_u64<E>(self, _: u64) -> Result<$ty, E> {
            Ok($value)
        }
        fn visit_i64<E>(self, _: i64) -> Result<$ty, E> {
            Ok($value)
        }
        fn visit_f64<E>(self, _: f64) -> Result<$ty, E> {
            Ok($value)
        }
        fn visit_unit<E>(self) -> Result<$ty, E> {
            Ok($value)
        }
        fn visit_bool<E>(self, _: bool) -> Result<$ty, E> {
            Ok($value)
        }
        fn visit_str<E>(self, _: &str) -> Result<$ty, E> {
            Ok($value)
        }
        fn visit_seq<A: SeqAccess<$de>>(self, mut seq: A) -> Result<$ty, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($value)
        }
    };
}

/// A token count as [`Value::as_u64`] sees it, without building the value.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum Count {
    #[default]
    Absent,
    Null,
    Tokens(u64),
    /// Anything else: a negative or fractional number, a string, an array, an object.
    Other,
}

impl Count {
    /// OpenAI's reading (`as_u64`, else nothing).
    fn openai(self) -> Option<u64> {
        match self {
            Count::Tokens(n) => Some(n),
            _ => None,
        }
    }

    /// Anthropic's typed reading: absent or `null` is `None`, anything but a count fails.
    fn anthropic(self) -> Result<Option<u64>, ()> {
        match self {
            Count::Absent | Count::Null => Ok(None),
            Count::Tokens(n) => Ok(Some(n)),
            Count::Other => Err(()),
        }
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CountVisitor)
    }
}

struct CountVisitor;

impl<'de> Visitor<'de> for CountVisitor {
    type Value = Count;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_u64<E>(self, n: u64) -> Result<Count, E> {
        Ok(Count::Tokens(n))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Count, E> {
        Ok(u64::try_from(n).map_or(Count::Other, Count::Tokens))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Count, E> {
        Ok(Count::Other)
    }
    fn visit_unit<E>(self) -> Result<Count, E> {
        Ok(Count::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Count, E> {
        Ok(Count::Other)
    }
    fn visit_str<E>(self, _: &str) -> Result<Count, E> {
        Ok(Count::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Count::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Count, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Count::Other)
    }
}

/// The counts of a `usage` value, in either vendor's names; `object` is false when the value
/// is not an object (no usage then). With duplicate keys the last one counts.
#[derive(Debug, Default, Clone, PartialEq)]
struct UsageFields {
    object: bool,
    prompt: Count,
    completion: Count,
    total: Count,
    /// `prompt_tokens_details.cached_tokens`.
    cached: Count,
    input: Count,
    output: Count,
    cache_read: Count,
    cache_creation: Count,
}

impl UsageFields {
    fn to_usage(&self) -> Option<Usage> {
        if !self.object {
            return None;
        }
        if self.input != Count::Absent || self.output != Count::Absent {
            let a = AnthropicUsage {
                input_tokens: self.input.anthropic().ok()?,
                output_tokens: self.output.anthropic().ok()?,
                cache_read_input_tokens: self.cache_read.anthropic().ok()?,
                cache_creation_input_tokens: self.cache_creation.anthropic().ok()?,
            };
            return Some(a.to_usage());
        }
        let prompt = self.prompt.openai().unwrap_or(0);
        let completion = self.completion.openai().unwrap_or(0);
        Some(Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: self
                .total
                .openai()
                .unwrap_or(prompt.saturating_add(completion)),
            cached_tokens: self.cached.openai().unwrap_or(0),
            cache_creation_tokens: 0,
        })
    }
}

/// The keys of a `usage` object that [`UsageFields`] reads, in the order of its fields (the
/// last holds `cached_tokens`).
const USAGE_KEYS: [&str; 8] = [
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "prompt_tokens_details",
];

impl<'de> Deserialize<'de> for UsageFields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UsageVisitor)
    }
}

struct UsageVisitor;

impl<'de> Visitor<'de> for UsageVisitor {
    type Value = UsageFields;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UsageFields, A::Error> {
        let mut u = UsageFields {
            object: true,
            ..UsageFields::default()
        };
        while let Some(key) = map.next_key_seed(KeyIn(&USAGE_KEYS))? {
            let slot = match key {
                Some(0) => &mut u.prompt,
                Some(1) => &mut u.completion,
                Some(2) => &mut u.total,
                Some(3) => &mut u.input,
                Some(4) => &mut u.output,
                Some(5) => &mut u.cache_read,
                Some(6) => &mut u.cache_creation,
                Some(_) => {
                    u.cached = map.next_value::<Details>()?.0;
                    continue;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = map.next_value()?;
        }
        Ok(u)
    }
    non_objects_are!('de, UsageFields, UsageFields::default());
}

/// `prompt_tokens_details.cached_tokens` (`Absent` unless the details are an object).
struct Details(Count);

impl<'de> Deserialize<'de> for Details {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Not an object: the count visitor skips it; only an object's `cached_tokens` counts.
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Details;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Details, A::Error> {
                let mut cached = Count::Absent;
                while let Some(key) = map.next_key_seed(KeyIn(&["cached_tokens"]))? {
                    if key.is_some() {
                        cached = map.next_value()?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Details(cached))
            }
            non_objects_are!('de, Details, Details(Count::Absent));
        }
        d.deserialize_any(V)
    }
}

/// A whole answer's top level: its `usage` (`None` without one, or with two).
struct TopUsageVisitor;

impl<'de> Visitor<'de> for TopUsageVisitor {
    type Value = Option<UsageFields>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut usage = None;
        let mut seen = 0u32;
        while let Some(key) = map.next_key_seed(KeyIn(&["usage"]))? {
            if key.is_some() {
                usage = Some(map.next_value::<UsageFields>()?);
                seen += 1;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(usage.filter(|_| seen == 1))
    }
}

/// Keeps what is needed to read usage from a passed-through body of any size: the whole body
/// up to `keep_whole` bytes, then only the last `tail` bytes.
#[derive(Debug)]
pub struct BodyTail {
    buf: Vec<u8>,
    keep_whole: usize,
    tail: usize,
    truncated: bool,
}

impl BodyTail {
    pub fn new(keep_whole: usize, tail: usize) -> Self {
        BodyTail {
            buf: Vec::new(),
            keep_whole,
            tail: tail.min(keep_whole),
            truncated: false,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
        if self.buf.len() > self.keep_whole {
            let cut = self.buf.len() - self.tail;
            self.buf.drain(..cut);
            self.truncated = true;
        }
    }

    /// The bytes kept: the whole body, or its tail once it outgrew `keep_whole`.
    pub fn kept(&self) -> &[u8] {
        &self.buf
    }

    pub fn usage(&self) -> Option<Usage> {
        if self.truncated {
            usage_from_tail(&self.buf)
        } else {
            usage_from_body(&self.buf).or_else(|| usage_from_tail(&self.buf))
        }
    }
}

/// Watches an Anthropic Messages stream that passes through untouched and keeps its usage:
/// input tokens from `message_start`, cumulative output tokens from `message_delta`.
#[derive(Debug, Default)]
pub struct MessagesUsageTap {
    parser: SseParser,
    events: Vec<SseEvent>,
    usage: Option<AnthropicUsage>,
}

impl MessagesUsageTap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.parser.push_into(chunk, &mut self.events);
        for ev in std::mem::take(&mut self.events) {
            // Only `message_start` and `message_delta` carry usage; skip parsing the rest.
            if !ev.data.contains("\"usage\"") {
                continue;
            }
            let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
                continue;
            };
            let found = match v.get("type").and_then(Value::as_str) {
                Some("message_start") => v.pointer("/message/usage"),
                Some("message_delta") => v.get("usage"),
                _ => None,
            };
            let Some(found) =
                found.and_then(|u| serde_json::from_value::<AnthropicUsage>(u.clone()).ok())
            else {
                continue;
            };
            self.usage
                .get_or_insert_with(AnthropicUsage::default)
                .update(&found);
        }
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage.map(AnthropicUsage::to_usage)
    }
}

#[cfg(test)]
mod tests {
    /// The fast scan and the general path read the same usage from the same answers.
    #[test]
    fn fast_usage_equals_general_usage() {
        let bodies: [&[u8]; 9] = [
            br#"{"id":"x","choices":[{"message":{"content":"usage"}}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":1}}}"#,
            br#"{"usage":{"input_tokens":5,"output_tokens":2,"cache_read_input_tokens":null}}"#,
            br#"{"usage":{"input_tokens":"5"}}"#,
            br#"{"usage":{"prompt_tokens":-1,"completion_tokens":2.5}}"#,
            br#"{"usage":[1,2]}"#,
            br#"{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}"#,
            br#"{"choices":[]}"#,
            br#"{"usage":{"prompt_tokens":1e400}}"#,
            br#"{"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":1}}"#,
        ];
        for body in bodies {
            assert!(crate::json_scan::scan_object(body, ["usage"]).is_some());
            assert_eq!(
                usage_from_body(body),
                usage_from_body_general(body),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    use super::*;

    /// The serde-free reading of a `usage` value gives serde's [`UsageFields`] whenever it
    /// answers, on fixtures and on random mutations of them; and it answers for the usual
    /// shapes.
    #[test]
    fn fast_usage_fields_equal_serde_fields() {
        let seeds: [&[u8]; 6] = [
            br#"{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":4,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}"#,
            br#"{"input_tokens":10,"output_tokens":7,"cache_read_input_tokens":100,"cache_creation_input_tokens":null,"server_tool_use":{"web_search_requests":1}}"#,
            br#"{"prompt_tokens":"3","completion_tokens":-2,"total_tokens":1.5,"prompt_tokens_details":[1]}"#,
            br#"{"input_tokens":true,"output_tokens":[0],"prompt_tokens":{"a":1},"cache_read_input_tokens":"x"}"#,
            br#"{"prompt_tokens":9999999999999999999,"completion_tokens":0,"prompt_tokens_details":null}"#,
            br#"{}"#,
        ];
        let mut answered = 0;
        for (k, seed) in seeds.iter().enumerate() {
            let fast = usage_fields_fast(seed);
            // Negative and fractional counts are serde's to read (the third seed).
            assert_eq!(fast.is_some(), k != 2, "{k}");
            let serde = serde_json::from_slice::<UsageFields>(seed).unwrap();
            assert_eq!(fast.unwrap_or_else(|| serde.clone()), serde, "{k}");
        }
        let alphabet = b"{}[]\":,\\ .-+eE0159tfnu_\x00\x80\xc3";
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..30_000 {
            let mut usage = seeds[round % seeds.len()].to_vec();
            for _ in 0..(1 + rand() % 3) {
                let at = (rand() as usize) % (usage.len() + 1);
                let byte = alphabet[(rand() as usize) % alphabet.len()];
                match rand() % 3 {
                    0 if at < usage.len() => usage[at] = byte,
                    1 if at < usage.len() => {
                        usage.remove(at);
                    }
                    _ => usage.insert(at, byte),
                }
            }
            let mut body = br#"{"id":"x","usage":"#.to_vec();
            body.extend_from_slice(&usage);
            body.push(b'}');
            let shown = String::from_utf8_lossy(&body);
            assert_eq!(
                usage_from_body(&body),
                usage_from_body_general(&body),
                "{shown}"
            );
            // The fast reading only ever sees values the strict scan accepted.
            let Some([m]) = crate::json_scan::scan_members(&body, ["usage"]) else {
                continue;
            };
            let value = &body[m.span.unwrap()];
            if let Some(fast) = usage_fields_fast(value) {
                answered += 1;
                let serde = serde_json::from_slice::<UsageFields>(value);
                assert_eq!(Some(&fast), serde.as_ref().ok(), "{shown}");
            }
        }
        // Most mutations keep a plain shape: the comparison above is not vacuous.
        assert!(answered > 5_000, "{answered}");
    }

    #[test]
    fn body_usage_only_from_an_object_with_a_usage_object() {
        let usage = r#"{"prompt_tokens":3,"completion_tokens":2}"#;
        for body in [
            format!("[{usage}]"),
            r#"{"usage":null}"#.to_string(),
            r#"{"usage":7}"#.to_string(),
            format!(r#"{{"usage":{usage}"#),
            format!(r#"{{"usage":{usage}}} trailing"#),
            r#"{"choices":[{"message":{"usage":{"prompt_tokens":1}}}]}"#.to_string(),
        ] {
            assert_eq!(usage_from_body(body.as_bytes()), None, "{body}");
        }
        let nested_first = format!(
            r#"{{"choices":[{{"message":{{"content":"\"usage\": 1","usage":{{}}}}}}],"usage":{usage}}}"#
        );
        let u = usage_from_body(nested_first.as_bytes()).unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (3, 2, 5)
        );
    }

    #[test]
    fn one_pass_reads_what_the_parsed_object_says() {
        let shapes = [
            r#"{"prompt_tokens":3,"completion_tokens":2}"#,
            r#"{"prompt_tokens":3,"completion_tokens":2,"total_tokens":9}"#,
            r#"{"prompt_tokens":"3","completion_tokens":-2,"total_tokens":1.5}"#,
            r#"{"prompt_tokens":3,"prompt_tokens":4,"completion_tokens":null}"#,
            r#"{"prompt_tokens":3,"prompt_tokens_details":{"cached_tokens":2,"audio_tokens":0}}"#,
            r#"{"prompt_tokens":3,"prompt_tokens_details":null}"#,
            r#"{"prompt_tokens":3,"prompt_tokens_details":[{"cached_tokens":2}]}"#,
            r#"{"prompt_tokens":3,"prompt_tokens_details":{"cached_tokens":{"n":1}}}"#,
            r#"{"input_tokens":10,"output_tokens":7,"cache_read_input_tokens":100}"#,
            r#"{"input_tokens":null,"output_tokens":7}"#,
            r#"{"output_tokens":7,"cache_creation_input_tokens":"x"}"#,
            r#"{"input_tokens":1.0}"#,
            r#"{"input_tokens":[1],"prompt_tokens":3}"#,
            r#"{"prompt_tokens":18446744073709551615,"completion_tokens":1}"#,
            r#"{"server_tool_use":{"web_search_requests":1},"output_tokens":3}"#,
            r#"{}"#,
            r#"[]"#,
            r#"null"#,
            r#""usage""#,
        ];
        for shape in shapes {
            let body = format!(r#"{{"id":"x","usage":{shape},"model":"m"}}"#);
            let parsed: Value = serde_json::from_str(shape).unwrap();
            assert_eq!(
                usage_from_body(body.as_bytes()),
                usage_from_object(&parsed),
                "{shape}"
            );
            let tail = format!(r#"..."usage": {shape}}}"#);
            assert_eq!(
                usage_from_tail(tail.as_bytes()),
                usage_from_object(&parsed),
                "tail {shape}"
            );
        }
        let twice = br#"{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}"#;
        assert_eq!(usage_from_body(twice), None);
    }

    #[test]
    fn both_shapes_and_cache_tokens() {
        let openai = br#"{"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":4}}}"#;
        let u = usage_from_body(openai).unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.cached_tokens),
            (12, 5, 4)
        );
        let anthropic = br#"{"type":"message","usage":{"input_tokens":10,"output_tokens":7,"cache_read_input_tokens":100,"cache_creation_input_tokens":20}}"#;
        let u = usage_from_body(anthropic).unwrap();
        assert_eq!(u.prompt_tokens, 130);
        assert_eq!(u.completion_tokens, 7);
        assert_eq!(u.cached_tokens, 100);
        assert_eq!(u.cache_creation_tokens, 20);
        let embeddings = br#"{"data":[],"usage":{"prompt_tokens":8,"total_tokens":8}}"#;
        assert_eq!(usage_from_body(embeddings).unwrap().prompt_tokens, 8);
        assert_eq!(usage_from_body(b"{\"choices\":[]}"), None);
        assert_eq!(usage_from_body(b"not json"), None);
    }

    #[test]
    fn tail_of_a_large_body() {
        let mut big = br#"{"choices":[{"message":{"content":""#.to_vec();
        big.extend(std::iter::repeat_n(b'a', 100_000));
        big.extend(br#"  \"usage\": fake"}}],"usage" : {"prompt_tokens":3,"completion_tokens":9,"total_tokens":12}}"#);
        let mut tail = BodyTail::new(4096, 1024);
        for piece in big.chunks(777) {
            tail.push(piece);
        }
        let u = tail.usage().unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (3, 9));
        let mut small = BodyTail::new(4096, 1024);
        small.push(br#"{"usage":{"prompt_tokens":1,"#);
        small.push(br#""completion_tokens":2}}"#);
        assert_eq!(small.usage().unwrap().total_tokens, 3);
        assert_eq!(usage_from_tail(br#"{"usage": [1,2"#), None);
        assert_eq!(usage_from_tail(b"\"usage\""), None);
    }

    #[test]
    fn anthropic_stream_usage_counted_once_at_any_split() {
        let stream = concat!(
            "event: message_start\n",
            "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
            "event: content_block_delta\n",
            "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"usage\"}}\n\n",
            "event: message_delta\n",
            "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n",
            "event: message_stop\n",
            "data: {\"type\":\"message_stop\"}\n\n",
        )
        .as_bytes();
        for at in 0..stream.len() {
            let mut tap = MessagesUsageTap::new();
            tap.push(&stream[..at]);
            tap.push(&stream[at..]);
            let u = tap.usage().unwrap();
            assert_eq!(
                (u.prompt_tokens, u.completion_tokens),
                (25, 15),
                "split at {at}"
            );
        }
        assert_eq!(MessagesUsageTap::new().usage(), None);
    }
}
