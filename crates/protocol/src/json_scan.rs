//! A fast, strict, single-pass check of a JSON object that also finds where some of its
//! top-level values are. It is the fast path of [`crate::openai_edit::request_facts`] and
//! [`crate::json_field::top_level_value_spans`], which otherwise take several serde passes over
//! the same bytes (UTF-8, nesting depth, surrogate escapes, then the grammar).
//!
//! The contract is one-sided: when [`scan_object`] answers `Some`, the body is an RFC 8259 JSON
//! object (valid UTF-8, nesting at most [`MAX_DEPTH`], no escaped UTF-16 surrogates) and the
//! spans are the byte ranges serde would lend as `RawValue`s. When it answers `None` nothing is
//! claimed: the caller runs its general (serde) path, which words any error. Rare shapes —
//! an escaped top-level key, a `\uD800`-`\uDFFF` escape, deeper nesting — are `None` too, so the
//! general path keeps the last word on them.

use crate::borrowed_json::{Json, RAW_VALUE_TOKEN};
use serde_json::Number;
use std::borrow::Cow;
use std::ops::Range;

/// Deepest nesting the fast path accepts (an object or array counts one level; the top-level
/// object is level 1).
pub const MAX_DEPTH: usize = 128;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Scan `body`, a JSON object; `spans[k]` gets the range of every top-level value whose key is
/// `keys[k]`, in order (duplicates included). `None`: not checked here (see the module doc).
pub fn scan_object<const N: usize>(body: &[u8], keys: [&str; N]) -> Option<[Vec<Range<usize>>; N]> {
    let mut spans: [Vec<Range<usize>>; N] = std::array::from_fn(|_| Vec::new());
    scan_members_with(body, &keys, |k, span| {
        if let Some(slot) = spans.get_mut(k) {
            slot.push(span);
        }
    })?;
    Some(spans)
}

/// One key's members in a [`scan_members`] answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Member {
    /// The last value's range.
    pub span: Option<Range<usize>>,
    /// How many times the key appears.
    pub count: usize,
}

impl Member {
    /// One more value of this key (when it is one of the keys asked for) at `span`.
    fn note(member: Option<&mut Member>, span: Range<usize>) {
        if let Some(m) = member {
            m.span = Some(span);
            m.count += 1;
        }
    }
}

/// [`scan_object`] that keeps only the last value of each key and how often it appeared, and
/// allocates nothing: for small objects read many times (stream events).
pub fn scan_members<const N: usize>(body: &[u8], keys: [&str; N]) -> Option<[Member; N]> {
    let mut members: [Member; N] = std::array::from_fn(|_| Member::default());
    scan_members_with(body, &keys, |k, span| {
        Member::note(members.get_mut(k), span)
    })?;
    Some(members)
}

/// The object walk of [`scan_object`]: `found(k, range)` for each top-level value of `keys[k]`.
fn scan_members_with(
    body: &[u8],
    keys: &[&str],
    mut found: impl FnMut(usize, Range<usize>),
) -> Option<()> {
    let mut s = Scanner {
        b: body,
        text: "",
        i: 0,
    };
    s.ws();
    s.members(keys, |s, slot| {
        let start = s.i;
        s.value(1)?;
        if let Some(slot) = slot {
            found(slot, start..s.i);
        }
        Some(())
    })?;
    s.ws();
    (s.i == body.len()).then_some(())
}

/// [`scan_members`] of an object and, in the same pass, of the object value of its member
/// `keys[nested]` (its own `inner_keys`; spans are ranges of `body`): for small objects read
/// many times whose payload sits one level down (stream deltas), checked once instead of
/// twice. The inner answer is that of the last `keys[nested]` member, all empty when that is
/// not an object.
pub fn scan_members_nested<const N: usize, const M: usize>(
    body: &[u8],
    keys: [&str; N],
    nested: usize,
    inner_keys: [&str; M],
) -> Option<([Member; N], [Member; M])> {
    let mut outer: [Member; N] = std::array::from_fn(|_| Member::default());
    let mut inner: [Member; M] = std::array::from_fn(|_| Member::default());
    let mut s = Scanner {
        b: body,
        text: "",
        i: 0,
    };
    s.ws();
    s.members(&keys, |s, slot| {
        let start = s.i;
        if slot == Some(nested) {
            // The last occurrence's members count.
            inner = std::array::from_fn(|_| Member::default());
        }
        if slot == Some(nested) && s.peek()? == b'{' {
            s.members(&inner_keys, |s, k| {
                let at = s.i;
                s.value(2)?;
                Member::note(k.and_then(|k| inner.get_mut(k)), at..s.i);
                Some(())
            })?;
        } else {
            s.value(1)?;
        }
        Member::note(slot.and_then(|k| outer.get_mut(k)), start..s.i);
        Some(())
    })?;
    s.ws();
    (s.i == body.len()).then_some((outer, inner))
}

/// `body` (any JSON value) as a [`Json`] tree, strings without escapes borrowed from it: the
/// fast path of [`Json::from_slice`]. `Some` only for what serde reads to the same tree (see
/// the module doc: same grammar, UTF-8, depth); `None` claims nothing, and serde judges.
pub(crate) fn parse_tree(body: &[u8]) -> Option<Json<'_>> {
    // Checked once here, so each string is then a slice of `text` with no check of its own.
    let text = std::str::from_utf8(body).ok()?;
    let mut s = Scanner {
        b: body,
        text,
        i: 0,
    };
    s.ws();
    let tree = s.tree(1)?;
    s.ws();
    (s.i == body.len()).then_some(tree)
}

enum Key<'a> {
    Plain(&'a [u8]),
    Escaped,
}

struct Scanner<'a> {
    b: &'a [u8],
    /// `b` as text when the caller checked it is UTF-8 ([`parse_tree`]); empty otherwise.
    text: &'a str,
    i: usize,
}

impl<'a> Scanner<'a> {
    /// The object at `self.i`: each member's key matched against `keys` (its index, or `None`),
    /// then `value(self, slot)` reads the member's value (leaving `self.i` past it). Leaves
    /// `self.i` past the closing brace. Escaped keys are left to the general path (`None`):
    /// their decoded text could be one of `keys`.
    fn members(
        &mut self,
        keys: &[&str],
        mut value: impl FnMut(&mut Self, Option<usize>) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let slot = match self.key()? {
                Key::Plain(k) => keys.iter().position(|want| want.as_bytes() == k),
                Key::Escaped => return None,
            };
            self.ws();
            self.eat(b':')?;
            self.ws();
            value(self, slot)?;
            self.ws();
            match self.next()? {
                b',' => self.ws(),
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

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
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i.checked_add(word.len())?;
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    fn key(&mut self) -> Option<Key<'a>> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.i + 1;
        let plain = self.string()?;
        if !plain {
            return Some(Key::Escaped);
        }
        // `self.i` is past the closing quote.
        Some(Key::Plain(self.b.get(start..self.i - 1)?))
    }

    /// One value at nesting `depth` (the level of the container holding it).
    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                self.ws();
                if self.peek()? == b'}' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    if self.peek()? != b'"' {
                        return None;
                    }
                    self.string()?;
                    self.ws();
                    self.eat(b':')?;
                    self.ws();
                    self.value(depth + 1)?;
                    self.ws();
                    match self.next()? {
                        b',' => self.ws(),
                        b'}' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                self.ws();
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.value(depth + 1)?;
                    self.ws();
                    match self.next()? {
                        b',' => self.ws(),
                        b']' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// One value as a tree; `depth` is the level a container here would be.
    fn tree(&mut self, depth: usize) -> Option<Json<'a>> {
        match self.peek()? {
            b'"' => self.text().map(Json::Str),
            b'{' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                self.ws();
                let mut entries = Vec::new();
                if self.peek()? == b'}' {
                    self.i += 1;
                    return Some(Json::Object(entries));
                }
                loop {
                    if self.peek()? != b'"' {
                        return None;
                    }
                    let key = self.text()?;
                    if entries.is_empty() && key == RAW_VALUE_TOKEN {
                        // serde_json's private raw-value form: its own reading applies.
                        return None;
                    }
                    self.ws();
                    self.eat(b':')?;
                    self.ws();
                    let value = self.tree(depth + 1)?;
                    entries.push((key, value));
                    self.ws();
                    match self.next()? {
                        b',' => self.ws(),
                        b'}' => return Some(Json::Object(entries)),
                        _ => return None,
                    }
                }
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                self.ws();
                let mut items = Vec::new();
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(Json::Array(items));
                }
                loop {
                    items.push(self.tree(depth + 1)?);
                    self.ws();
                    match self.next()? {
                        b',' => self.ws(),
                        b']' => return Some(Json::Array(items)),
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true").map(|()| Json::Bool(true)),
            b'f' => self.literal(b"false").map(|()| Json::Bool(false)),
            b'n' => self.literal(b"null").map(|()| Json::Null),
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                self.number()?;
                number(self.b.get(start..self.i)?).map(Json::Number)
            }
            _ => None,
        }
    }

    /// A string's text, borrowed when it has no escapes (as serde lends it).
    fn text(&mut self) -> Option<Cow<'a, str>> {
        let start = self.i;
        let plain = self.string()?;
        let quoted = self.b.get(start..self.i)?;
        if plain {
            // Quotes are ASCII: the slice between them falls on character boundaries.
            self.text
                .get(start + 1..self.i.checked_sub(1)?)
                .map(Cow::Borrowed)
        } else {
            // Escapes are rare in requests: serde decodes them.
            serde_json::from_slice::<String>(quoted)
                .ok()
                .map(Cow::Owned)
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// A string starting at the opening quote (checked by the caller); leaves `self.i` past
    /// the closing one. Answers whether it had no escapes.
    #[inline(always)]
    fn string(&mut self) -> Option<bool> {
        // Most strings are plain bytes up to their closing quote: that much stays inline, the
        // rest (escapes, non-ASCII, errors) is out of line.
        let end = skip_plain(self.b, self.i + 1);
        if self.b.get(end) == Some(&b'"') {
            self.i = end + 1;
            return Some(true);
        }
        self.i = end;
        self.string_rest()
    }

    /// [`Scanner::string`] from the first byte that is not plain, `self.i`.
    #[inline(never)]
    fn string_rest(&mut self) -> Option<bool> {
        let mut plain = true;
        loop {
            match self.next()? {
                b'"' => return Some(plain),
                b'\\' => {
                    plain = false;
                    match self.next()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            let hex = self.b.get(self.i..self.i + 4)?;
                            let text = std::str::from_utf8(hex).ok()?;
                            if !text.bytes().all(|h| h.is_ascii_hexdigit()) {
                                return None;
                            }
                            let unit = u16::from_str_radix(text, 16).ok()?;
                            if (0xD800..=0xDFFF).contains(&unit) {
                                // Pairs and lone halves: the general path judges them.
                                return None;
                            }
                            self.i += 4;
                        }
                        _ => return None,
                    }
                }
                c if c < 0x20 => return None,
                c if c >= 0x80 => {
                    // Every byte of a multi-byte character is non-ASCII: a run of them is
                    // whole characters exactly when it is UTF-8. [`parse_tree`] checked the
                    // whole body already.
                    let start = self.i - 1;
                    let end = skip_non_ascii(self.b, self.i);
                    if self.text.is_empty() {
                        std::str::from_utf8(self.b.get(start..end)?).ok()?;
                    }
                    self.i = end;
                }
                _ => {}
            }
            self.i = skip_plain(self.b, self.i);
        }
    }
}

/// The index of the first byte at or after `i` that a string cannot take as it is (quote,
/// backslash, control character, non-ASCII), or `b.len()` when there is none.
#[cfg(target_arch = "x86_64")]
fn skip_plain(b: &[u8], mut i: usize) -> usize {
    use core::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // Sixteen bytes at a time (SSE2 is part of x86_64). One signed comparison flags both the
    // control characters (0x00-0x1F) and the non-ASCII bytes (0x80-0xFF, negative as `i8`).
    while let Some(chunk) = b.get(i..i.wrapping_add(16)) {
        // SAFETY: `chunk` is 16 in-bounds bytes and `_mm_loadu_si128` reads exactly 16 bytes
        // with no alignment requirement; the other intrinsics only compute on registers. All
        // are SSE2, which every x86_64 target enables.
        let mask = unsafe {
            let x = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
            let quote = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8));
            let low_or_high = _mm_cmplt_epi8(x, _mm_set1_epi8(0x20));
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), low_or_high))
        };
        if mask != 0 {
            return i + mask.trailing_zeros() as usize;
        }
        i += 16;
    }
    skip_plain_swar(b, i)
}

#[cfg(not(target_arch = "x86_64"))]
fn skip_plain(b: &[u8], i: usize) -> usize {
    skip_plain_swar(b, i)
}

/// [`skip_plain`] eight bytes at a time in a `u64`, then byte by byte (on x86_64 only for a
/// body's last bytes).
#[cfg_attr(target_arch = "x86_64", cold, inline(never))]
fn skip_plain_swar(b: &[u8], mut i: usize) -> usize {
    while let Some(word) = b.get(i..i.wrapping_add(8)) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let x = u64::from_le_bytes(w);
        let special = zero_byte(x ^ (ONES * u64::from(b'"')))
            | zero_byte(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGHS)
            | (x & HIGHS);
        if special != 0 {
            // The lowest flagged byte is a true one (borrows only run upwards).
            return i + (special.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c) {
            return i;
        }
        i += 1;
    }
    i.min(b.len())
}

/// The index of the first ASCII byte at or after `i`, or `b.len()` when there is none.
fn skip_non_ascii(b: &[u8], mut i: usize) -> usize {
    while let Some(word) = b.get(i..i.wrapping_add(8)) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let ascii = !u64::from_le_bytes(w) & HIGHS;
        if ascii != 0 {
            return i + (ascii.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c < 0x80 {
            return i;
        }
        i += 1;
    }
    i.min(b.len())
}

/// The number `text` (already checked against the grammar) as serde reads it: plain integers
/// that cannot overflow here; negative, fractional and exponent forms through serde itself.
fn number(text: &[u8]) -> Option<Number> {
    if text.len() <= 19 && text.iter().all(u8::is_ascii_digit) {
        let n = std::str::from_utf8(text).ok()?.parse::<u64>().ok()?;
        return Some(Number::from(n));
    }
    serde_json::from_slice::<Number>(text).ok()
}

/// High bit set in each byte of `x` that is zero (plus, possibly, bytes above the first
/// such one: callers only use the lowest).
fn zero_byte(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGHS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nested scan answers what a scan of the object and then of its member's value
    /// answer (spans moved into the outer body), and refuses what either refuses.
    #[test]
    fn nested_members_match_two_scans() {
        let bodies = [
            r#"{"type":"d","index":0,"delta":{"type":"t","text":"a b"}}"#,
            r#" { "delta" : { "text" : "x" , "type" : "t" , "text" : "y" } , "type" : 1 } "#,
            r#"{"delta":{"type":"t"},"delta":{"text":"z"}}"#,
            r#"{"delta":"not an object","type":"t"}"#,
            r#"{"delta":{"type":[1,{"a":"b"}],"other":{"text":"deep"}}}"#,
            r#"{"delta":{"type":"t","text":"\u00e9"}}"#,
            r#"{"delta":{"type":"t",}}"#,
            r#"{"delta":{"t\u0065xt":"x"}}"#,
            r#"{"delta":{}}"#,
            r#"{"delta":{"text":"x"}} trailing"#,
            r#"{}"#,
        ];
        for body in bodies {
            let b = body.as_bytes();
            let nested = scan_members_nested(b, ["type", "index", "delta"], 2, ["type", "text"]);
            let outer = scan_members(b, ["type", "index", "delta"]);
            let two = outer.and_then(|o| {
                let inner = match o[2].span.clone() {
                    Some(r) if b.get(r.start) == Some(&b'{') => {
                        let shift = |m: Member| Member {
                            span: m.span.map(|s| s.start + r.start..s.end + r.start),
                            count: m.count,
                        };
                        scan_members(b.get(r.clone())?, ["type", "text"])?.map(shift)
                    }
                    _ => Default::default(),
                };
                Some((o, inner))
            });
            assert_eq!(nested, two, "{body}");
        }
    }
    use serde_json::Value;

    fn spans(body: &str) -> Option<Vec<Range<usize>>> {
        scan_object(body.as_bytes(), ["model"]).map(|[m]| m)
    }

    #[test]
    fn finds_top_level_values_only() {
        let body = r#" { "messages":[{"model":"inner","content":"a \"model\": b"}],
            "model" :  "auto" , "model":1.5e3 } "#;
        let got = spans(body).unwrap();
        let texts: Vec<&str> = got.iter().map(|r| &body[r.clone()]).collect();
        assert_eq!(texts, vec![r#""auto""#, "1.5e3"]);
    }

    #[test]
    fn accepts_only_what_serde_accepts() {
        // Every answer of the fast path is checked against serde_json; `None` is always allowed.
        let cases = [
            r#"{}"#,
            r#"{"a":[]}"#,
            r#"{"a":[1,2,{"b":null}],"c":true,"d":false}"#,
            r#"{"a":-0.5E+10}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":-}"#,
            r#"{"a":1e}"#,
            r#"{"a":"\u00e9\n\t\/"}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":"\ud83d\ude00"}"#,
            r#"{"a":"\ud83d"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":"é漢字😀"}"#,
            r#"{"a":1,}"#,
            r#"{"a":1 "b":2}"#,
            r#"{"a" 1}"#,
            r#"{"a":tru}"#,
            r#"{"a":nul}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":[,1]}"#,
            r#"{"a":{"b":1,}}"#,
            r#"{"a":1}x"#,
            r#"{"a":1} "#,
            r#"[1]"#,
            r#""a""#,
            r#"{"a":1"#,
            r#"{"a"#,
            r#"{"mo\u0064el":"x"}"#,
            "\u{feff}{}",
            "{\"a\":\"\u{7f}\"}",
            r#"{"a":"\uDFFF"}"#,
            r#"{"a":"\uabcd\uABCD"}"#,
            r#"{"a":-01}"#,
            r#"{"a":1e+}"#,
            r#"{"a":1E-5}"#,
        ];
        for case in cases {
            check_against_serde(case.as_bytes());
        }
        for case in [
            "1",
            "-0",
            "-0.0",
            "0",
            "18446744073709551615",
            "18446744073709551616",
            "9999999999999999999",
            "99999999999999999999",
            "-9223372036854775808",
            "-9223372036854775809",
            "1e400",
            "0.1",
            "2.5e-3",
            "\"x\"",
            "\"a\\u0041\"",
            "[]",
            "[1,[2,{}]]",
            " null ",
            "true",
            "{\"a\":1,\"a\":2}",
            "{\"$serde_json::private::RawValue\":\"{}\"}",
        ] {
            check_against_serde(case.as_bytes());
        }
        // Invalid UTF-8 and overlong forms.
        for bytes in [
            &b"{\"a\":\"\xff\"}"[..],
            b"{\"a\":\"\xc0\xaf\"}",
            b"{\"a\":\"\xed\xa0\x80\"}",
            b"{\"a\":\"\xe2\x82\"}",
            b"{\"a\":\"\xf4\x90\x80\x80\"}",
            b"{\"a\":\"\xf0\x9f\x98\x80\"}",
        ] {
            check_against_serde(bytes);
        }
    }

    #[test]
    fn depth_beyond_the_limit_is_left_to_the_general_path() {
        let deep = |n: usize| format!(r#"{{"a":{}{}}}"#, "[".repeat(n), "]".repeat(n));
        assert!(spans(&deep(MAX_DEPTH - 1)).is_some());
        assert!(spans(&deep(MAX_DEPTH)).is_none());
    }

    /// The first byte a string cannot take as it is, one byte at a time: the reference for
    /// [`skip_plain`] and [`skip_plain_swar`].
    fn skip_plain_reference(b: &[u8], i: usize) -> usize {
        (i..b.len())
            .find(|&k| matches!(b[k], b'"' | b'\\' | 0..=0x1f | 0x80..=0xff))
            .unwrap_or(b.len())
    }

    #[test]
    fn skip_plain_stops_at_the_first_special_byte_at_every_offset() {
        // Around the 8- and 16-byte steps: every length, start and position of the byte.
        let specials = [b'"', b'\\', 0x00, 0x1f, 0x80, 0xc3, 0xff];
        let plain = [b'a', b' ', 0x20, 0x21, 0x5b, 0x5d, 0x7e, 0x7f];
        for len in 0..=40usize {
            for start in 0..=len.min(17) {
                for &fill in &plain {
                    let mut b = vec![fill; len];
                    let want = skip_plain_reference(&b, start);
                    assert_eq!(want, len);
                    assert_eq!(skip_plain(&b, start), want, "len {len} start {start}");
                    assert_eq!(skip_plain_swar(&b, start), want, "len {len} start {start}");
                    for at in start..len {
                        for &special in &specials {
                            b[at] = special;
                            // A second special byte further on must not win.
                            if let Some(later) = b.get_mut(at + 5) {
                                *later = b'"';
                            }
                            let want = skip_plain_reference(&b, start);
                            assert_eq!(want, at);
                            assert_eq!(skip_plain(&b, start), want, "{b:?} from {start}");
                            assert_eq!(skip_plain_swar(&b, start), want, "{b:?} from {start}");
                            b.fill(fill);
                        }
                    }
                }
            }
        }
        assert_eq!(skip_plain(b"abc", 7), 3);
        assert_eq!(skip_plain_swar(b"abc", 7), 3);
    }

    #[test]
    fn skip_non_ascii_stops_at_the_first_ascii_byte() {
        for len in 0..=24usize {
            for start in 0..=len {
                for at in start..=len {
                    let mut b = vec![0xe6u8; len];
                    if let Some(c) = b.get_mut(at) {
                        *c = b'a';
                    }
                    assert_eq!(skip_non_ascii(&b, start), at, "{b:?} from {start}");
                }
            }
        }
    }

    #[test]
    fn runs_of_non_ascii_are_checked_whole() {
        // Long runs of multi-byte characters with one byte spoiled at each place: refused by
        // the member scan (which checks UTF-8 itself), and never accepted unlike serde.
        let text = "漢字😀é".repeat(6);
        for at in 0..text.len() {
            for bad in [b'x', 0x80, 0xc3, 0xff] {
                let mut body = br#"{"a":""#.to_vec();
                body.extend_from_slice(text.as_bytes());
                body.extend_from_slice(b"\"}");
                body[6 + at] = bad;
                check_against_serde(&body);
                if std::str::from_utf8(&body).is_err() {
                    assert!(scan_object(&body, ["a"]).is_none(), "{at} {bad}");
                }
            }
        }
    }

    #[test]
    fn strings_with_a_special_byte_at_every_offset() {
        // The string's text starts at a different alignment for each key length, and the body
        // goes on past the string (so the 16-byte loads cross its closing quote) or ends there.
        let insertions: [&[u8]; 14] = [
            b"\\\"",
            b"\\n",
            b"\\u00e9",
            b"\\uD83D\\uDE00",
            b"\\x",
            b"\x00",
            b"\x1f",
            b"\x7f",
            "é".as_bytes(),
            "漢".as_bytes(),
            "😀".as_bytes(),
            b"\xc3",
            b"\xe6\xbc",
            b"\xed\xa0\x80",
        ];
        for key in ["a", "model", "content"] {
            for at in 0..=32usize {
                for tail in 0..=20usize {
                    for insertion in insertions {
                        let mut body = format!(r#"{{"{key}":""#).into_bytes();
                        body.extend(std::iter::repeat_n(b'x', at));
                        body.extend_from_slice(insertion);
                        body.extend(std::iter::repeat_n(b'y', tail));
                        body.extend_from_slice(b"\"}");
                        check_against_serde(&body);
                        // Plain text and non-ASCII are accepted here; the rest is judged by
                        // `check_against_serde` (or left to the general path).
                        let plain_or_utf8 = std::str::from_utf8(insertion).is_ok_and(|t| {
                            !t.contains(['"', '\\']) && !t.contains(|c: char| c < ' ')
                        });
                        if plain_or_utf8 {
                            assert!(scan_object(&body, ["a"]).is_some(), "{body:?}");
                            assert!(parse_tree(&body).is_some(), "{body:?}");
                        }
                        if insertion.first().is_some_and(|&c| c < 0x20) {
                            assert!(scan_object(&body, ["a"]).is_none(), "{body:?}");
                            assert!(parse_tree(&body).is_none(), "{body:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn non_ascii_straddling_a_load_is_read_whole() {
        // A character whose bytes fall on both sides of an 8- or 16-byte step, valid or cut.
        for at in 0..=34usize {
            for ch in ["é", "漢", "😀"] {
                let text = format!("{}{ch}{}", "x".repeat(at), "z".repeat(3));
                let body = format!(r#"{{"content":"{text}"}}"#);
                assert_eq!(
                    parse_tree(body.as_bytes()),
                    Some(Json::Object(vec![(
                        "content".into(),
                        Json::Str(text.into())
                    )])),
                    "{body}"
                );
                let [m] = scan_members(body.as_bytes(), ["content"]).unwrap();
                assert_eq!(m.count, 1);
                // Cut the character short: refused.
                let mut cut = format!(r#"{{"content":"{}"#, "x".repeat(at)).into_bytes();
                cut.extend_from_slice(&ch.as_bytes()[..ch.len() - 1]);
                cut.extend_from_slice(b"zzz\"}");
                assert!(scan_object(&cut, ["content"]).is_none(), "{cut:?}");
                check_against_serde(&cut);
            }
        }
    }

    /// Random mutations of realistic bodies: whenever the fast path answers, serde agrees.
    #[test]
    fn mutations_agree_with_serde() {
        let seeds: [&[u8]; 3] = [
            br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi \"there\" \u00e9"}],"stream":true,"stream_options":{"include_usage":false},"temperature":0.7,"n":1,"stop":null}"#,
            "{\"model\" : \"qwen\" ,\n \"messages\" : [ { \"role\" : \"system\" , \"content\" : \"漢字 😀\" } ] , \"max_tokens\" : -12e-3 }".as_bytes(),
            br#"{"a":[[[{"b":[true,false,null,{"c":"\\\/\b\f\n\r\t"}]}]]],"model":"x"}"#,
        ];
        let alphabet = b"{}[]\":,\\ .-+eE0159tfnu\x00\x1f\x7f\x80\xc3\xa9\xed\xf0";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..60_000 {
            let mut body = seeds[round % seeds.len()].to_vec();
            for _ in 0..(1 + rand() % 3) {
                let at = (rand() as usize) % (body.len() + 1);
                let byte = alphabet[(rand() as usize) % alphabet.len()];
                match rand() % 3 {
                    0 if at < body.len() => body[at] = byte,
                    1 if at < body.len() => {
                        body.remove(at);
                    }
                    _ => body.insert(at, byte),
                }
            }
            check_against_serde(&body);
        }
    }

    fn check_against_serde(body: &[u8]) {
        let shown = String::from_utf8_lossy(body);
        if let Some(tree) = parse_tree(body) {
            let serde = serde_json::from_slice::<Json>(body);
            assert_eq!(Some(&tree), serde.as_ref().ok(), "{shown:?}");
            // Numbers kept as serde keeps them (integer or float, and which).
            assert_eq!(
                tree.to_json_string(),
                serde.map(|j| j.to_json_string()).unwrap_or_default(),
                "{shown:?}"
            );
        }
        let Some([got]) = scan_object(body, ["model"]) else {
            return;
        };
        assert!(
            std::str::from_utf8(body).is_ok(),
            "accepted bad UTF-8: {shown:?}"
        );
        // The general paths' verdict: serde's own pass over the same body.
        assert_eq!(
            Some(got),
            crate::json_field::slow_top_level_value_spans(body, "model"),
            "{shown:?}"
        );
        // And a full parse agrees, but for numbers beyond f64 (which only a full parse refuses).
        if let Err(e) = serde_json::from_slice::<Value>(body) {
            assert!(
                e.to_string().contains("number out of range"),
                "{shown:?}: {e}"
            );
        }
    }

    /// A quick timing of the scans on ASCII and on CJK text (`cargo test --release -p
    /// switchyard-protocol --lib -- --ignored scan_timing --nocapture`).
    #[test]
    #[ignore]
    fn scan_timing() {
        for (name, unit) in [
            ("ascii", "It routes requests. "),
            ("cjk", "它路由请求并翻译协议。"),
        ] {
            let text = unit.repeat(1000 / unit.len());
            let body = format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":"{text}"}},{{"role":"assistant","content":"{text}"}}],"temperature":0.7}}"#
            );
            let rounds = 200_000;
            let t = std::time::Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(scan_object(
                    std::hint::black_box(body.as_bytes()),
                    ["model"],
                ));
            }
            let scan = t.elapsed() / rounds;
            let t = std::time::Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(parse_tree(std::hint::black_box(body.as_bytes())));
            }
            let tree = t.elapsed() / rounds;
            println!(
                "{name} ({} bytes): scan_object {scan:?}, parse_tree {tree:?}",
                body.len()
            );
        }
    }
}
