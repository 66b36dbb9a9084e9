//! Byte-level access to top-level fields of a JSON object, so a plugin can change one field
//! (e.g. `model`) and leave every other byte of the body as the client sent it.
//!
//! Nested values are skipped iteratively (deep nesting cannot overflow the stack) and nothing
//! here panics; anything that is not a well-formed JSON object yields `None`.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::ops::Range;

/// Byte ranges of the values of every top-level `key` in `body` (usually one; JSON allows
/// duplicates, and a rewrite must cover all of them so no upstream parser sees the old value).
/// `None` when `body` is not a well-formed JSON object.
///
/// One strict pass of [`crate::json_scan`] answers nearly every body; what it leaves (escaped
/// keys, surrogate escapes, nesting deeper than its limit) takes one pass of serde_json's
/// parser, where each top-level value is captured as a borrowed [`RawValue`] whose position
/// inside `body` is its span (nested values skipped iteratively, so deep nesting cannot
/// overflow the stack).
pub fn top_level_value_spans(body: &[u8], key: &str) -> Option<Vec<Range<usize>>> {
    if let Some([spans]) = crate::json_scan::scan_object(body, [key]) {
        return Some(spans);
    }
    slow_top_level_value_spans(body, key)
}

/// [`top_level_value_spans`] through serde (the path for what the fast scan leaves).
pub(crate) fn slow_top_level_value_spans(body: &[u8], key: &str) -> Option<Vec<Range<usize>>> {
    let base = body.as_ptr() as usize;
    let mut de = serde_json::Deserializer::from_slice(body);
    let spans = de.deserialize_map(SpanVisitor { key, base }).ok()?;
    de.end().ok()?;
    Some(spans)
}

struct SpanVisitor<'k> {
    key: &'k str,
    base: usize,
}

impl<'de> Visitor<'de> for SpanVisitor<'_> {
    type Value = Vec<Range<usize>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut spans = Vec::new();
        while let Some(k) = map.next_key_seed(KeyIn(&[self.key]))? {
            let value: &'de RawValue = map.next_value()?;
            if k.is_some() {
                let raw = value.get();
                let start = (raw.as_ptr() as usize).wrapping_sub(self.base);
                spans.push(start..start + raw.len());
            }
        }
        Ok(spans)
    }
}

/// A map key read as the index of the name in the list it equals (`None`: another key),
/// compared where the parser holds it. Reading keys as `String` or `Cow<str>` (serde's `Cow`
/// is always owned) would allocate one per key.
pub(crate) struct KeyIn<'n>(pub &'n [&'n str]);

impl<'de> DeserializeSeed<'de> for KeyIn<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIn<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|name| *name == key))
    }
}

/// The decoded string value of the top-level `key`, if the body is a JSON object whose `key`
/// is a string. With duplicates, the last one wins (as in most JSON parsers).
pub fn top_level_string(body: &[u8], key: &str) -> Option<String> {
    string_at(body, &top_level_value_spans(body, key)?)
}

/// The string value of the last of `spans` (as [`top_level_value_spans`] returns them for a
/// key: the last duplicate wins, as in serde); `None` when it is not a string.
pub fn string_at(body: &[u8], spans: &[Range<usize>]) -> Option<String> {
    let last = spans.last()?;
    let raw = body.get(last.clone())?;
    if raw.first() != Some(&b'"') {
        return None;
    }
    serde_json::from_slice::<String>(raw).ok()
}

/// Replace the value of every top-level `key` with the JSON string `new_value`; every other
/// byte stays as it was. `None` when the body is not a JSON object or has no such key.
pub fn replace_top_level_string(body: &[u8], key: &str, new_value: &str) -> Option<Vec<u8>> {
    splice_string(body, &top_level_value_spans(body, key)?, new_value)
}

/// Replace each of `spans` (ascending, non-overlapping byte ranges of `body`, as
/// [`top_level_value_spans`] returns them) with the JSON string `new_value`. `None` when
/// `spans` is empty or does not fit `body`.
pub fn splice_string(body: &[u8], spans: &[Range<usize>], new_value: &str) -> Option<Vec<u8>> {
    if spans.is_empty() {
        return None;
    }
    let encoded = serde_json::to_string(new_value).ok()?;
    let mut out = Vec::with_capacity(body.len() + encoded.len());
    let mut at = 0;
    for span in spans {
        out.extend_from_slice(body.get(at..span.start)?);
        out.extend_from_slice(encoded.as_bytes());
        at = span.end;
    }
    out.extend_from_slice(body.get(at..)?);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_model_value() {
        let body = br#"{ "messages":[{"role":"user","content":"model \"auto\""}],
  "model" :  "auto", "temperature":0.70 }"#;
        let out = replace_top_level_string(body, "model", "qwen3-max-preview").unwrap();
        let expected = br#"{ "messages":[{"role":"user","content":"model \"auto\""}],
  "model" :  "qwen3-max-preview", "temperature":0.70 }"#;
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(expected)
        );
    }

    #[test]
    fn nested_model_keys_are_not_top_level() {
        let body = br#"{"metadata":{"model":"x"},"model":"auto"}"#;
        assert_eq!(top_level_string(body, "model").as_deref(), Some("auto"));
        let out = replace_top_level_string(body, "model", "m").unwrap();
        assert_eq!(&out[..], br#"{"metadata":{"model":"x"},"model":"m"}"#);
    }

    #[test]
    fn escaped_keys_and_duplicates() {
        let body = br#"{"mod\u0065l":"a","model":"b"}"#;
        assert_eq!(top_level_value_spans(body, "model").unwrap().len(), 2);
        let out = replace_top_level_string(body, "model", "c").unwrap();
        assert_eq!(&out[..], br#"{"mod\u0065l":"c","model":"c"}"#);
        assert_eq!(top_level_string(body, "model").as_deref(), Some("b"));
    }

    #[test]
    fn new_value_is_escaped() {
        let out = replace_top_level_string(br#"{"model":"auto"}"#, "model", "a\"b").unwrap();
        assert_eq!(&out[..], br#"{"model":"a\"b"}"#);
    }

    #[test]
    fn not_json_or_no_key() {
        for body in [
            &b"model=auto"[..],
            b"",
            b"[1,2]",
            b"{\"model\":\"auto\"",
            b"{\"model\":\"auto\"} x",
            b"{\"a\":[1,}]}",
            b"{\"a\":tru}",
            b"{\"model\":\"a\xff\"}",
        ] {
            assert_eq!(
                replace_top_level_string(body, "model", "m"),
                None,
                "{body:?}"
            );
        }
        assert_eq!(replace_top_level_string(b"{}", "model", "m"), None);
        assert_eq!(top_level_string(br#"{"model":5}"#, "model"), None);
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let mut body = b"{\"a\":".to_vec();
        body.extend(std::iter::repeat_n(b'[', 100_000));
        body.extend(std::iter::repeat_n(b']', 100_000));
        body.extend_from_slice(b",\"model\":\"auto\"}");
        let out = replace_top_level_string(&body, "model", "m").unwrap();
        assert!(out.ends_with(b"\"model\":\"m\"}"));
    }
}
