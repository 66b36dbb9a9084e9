//! Byte-level access to top-level fields of a JSON object, so a plugin can change one field
//! (e.g. `model`) and leave every other byte of the body as the client sent it.
//!
//! The scanner is iterative (no recursion, so deep nesting cannot overflow the stack) and
//! never panics; anything that is not a well-formed JSON object yields `None`.

use std::ops::Range;

/// Byte ranges of the values of every top-level `key` in `body` (usually one; JSON allows
/// duplicates, and a rewrite must cover all of them so no upstream parser sees the old value).
/// `None` when `body` is not a well-formed JSON object.
pub fn top_level_value_spans(body: &[u8], key: &str) -> Option<Vec<Range<usize>>> {
    // One full validation (grammar, UTF-8, serde's nesting limit) up front; the scanner below
    // then only needs to find extents.
    std::str::from_utf8(body).ok()?;
    serde_json::from_slice::<serde::de::IgnoredAny>(body).ok()?;
    let mut s = Scanner { b: body, i: 0 };
    s.ws();
    s.eat(b'{')?;
    let mut spans = Vec::new();
    s.ws();
    if s.peek() == Some(b'}') {
        s.i += 1;
        return s.only_ws_left().then_some(spans);
    }
    loop {
        s.ws();
        let key_span = s.string()?;
        let matches = string_equals(&body[key_span.start + 1..key_span.end - 1], key);
        s.ws();
        s.eat(b':')?;
        s.ws();
        let value = s.value()?;
        if matches {
            spans.push(value);
        }
        s.ws();
        match s.next()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    s.only_ws_left().then_some(spans)
}

/// The decoded string value of the top-level `key`, if the body is a JSON object whose `key`
/// is a string. With duplicates, the last one wins (as in most JSON parsers).
pub fn top_level_string(body: &[u8], key: &str) -> Option<String> {
    let spans = top_level_value_spans(body, key)?;
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
    let spans = top_level_value_spans(body, key)?;
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

/// Whether the raw (still escaped) JSON string content equals `want`.
fn string_equals(raw: &[u8], want: &str) -> bool {
    if !raw.contains(&b'\\') {
        return raw == want.as_bytes();
    }
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted).is_ok_and(|s| s == want)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn only_ws_left(&mut self) -> bool {
        self.ws();
        self.i == self.b.len()
    }

    /// A string starting at the cursor; returns its span including quotes.
    fn string(&mut self) -> Option<Range<usize>> {
        let start = self.i;
        self.eat(b'"')?;
        loop {
            match self.next()? {
                b'"' => return Some(start..self.i),
                b'\\' => {
                    self.next()?;
                }
                _ => {}
            }
        }
    }

    /// Any JSON value starting at the cursor; returns its span. Nested containers are skipped
    /// with an explicit depth counter; strings inside them are skipped whole.
    fn value(&mut self) -> Option<Range<usize>> {
        let start = self.i;
        match self.peek()? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => {
                let mut stack: Vec<u8> = Vec::new();
                loop {
                    match self.next()? {
                        b'"' => {
                            self.i -= 1;
                            self.string()?;
                        }
                        c @ (b'{' | b'[') => stack.push(c),
                        c @ (b'}' | b']') => {
                            let open = if c == b'}' { b'{' } else { b'[' };
                            if stack.pop()? != open {
                                return None;
                            }
                        }
                        _ => {}
                    }
                    if stack.is_empty() {
                        break;
                    }
                }
            }
            _ => {
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.i += 1;
                }
            }
        }
        Some(start..self.i)
    }
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
