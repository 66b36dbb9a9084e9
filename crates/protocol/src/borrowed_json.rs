//! A JSON tree that borrows its strings from the request body.
//!
//! Request translators read a client's body once and copy little of it: parsing it into
//! `serde_json::Value` would allocate a `String` for every key and string and a `BTreeMap`
//! per object. [`Json`] keeps strings without escapes as slices of the body and objects as
//! vectors of entries, so a typical request costs a few allocations per object instead.
//!
//! It is read the way `Value` would be, so a translator sees the same request:
//! - parsing goes through serde_json's deserializer (same grammar, same error messages and
//!   positions, same recursion limit: deep nesting is an error, not a stack overflow);
//! - a duplicated key reads as its last value, as `Value`'s map keeps it;
//! - [`write_json`] writes it as serde_json writes the `Value` it stands for: object keys
//!   sorted (byte order) and each key once with its last value, numbers and strings as
//!   `Value` writes them.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Number, Value};
use std::borrow::Cow;
use std::fmt;
use std::io::Write as _;

/// A JSON value whose strings borrow from the text it was parsed from, when they can.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// Entries in document order, duplicates included; look-ups see the last one.
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

/// The entries of a JSON object.
pub(crate) type Object<'a> = [(Cow<'a, str>, Json<'a>)];

/// The value of `key` in `obj` as `Value`'s map has it: the last of duplicated keys.
///
/// Not inlined: translators look fields up in dozens of places, and a call is smaller than
/// the loop in each of them.
#[inline(never)]
pub(crate) fn lookup<'b, 'a>(obj: &'b Object<'a>, key: &str) -> Option<&'b Json<'a>> {
    obj.iter()
        .rev()
        .find(|(k, _)| k.as_ref() == key)
        .map(|(_, v)| v)
}

impl<'a> Json<'a> {
    /// Parse `text`; errors are serde_json's, as parsing a `Value` would give them. The
    /// common case takes the single-pass scanner ([`crate::json_scan::parse_tree`], about
    /// twice as fast), which hands anything it is unsure of to serde.
    pub fn from_slice(text: &'a [u8]) -> Result<Json<'a>, serde_json::Error> {
        if let Some(tree) = crate::json_scan::parse_tree(text) {
            return Ok(tree);
        }
        serde_json::from_slice(text)
    }

    /// `Value::get` with a string index: the member `key` of an object, else `None`.
    #[inline(never)]
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        match self {
            Json::Object(entries) => lookup(entries, key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json<'a>]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Object<'a>> {
        match self {
            Json::Object(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    pub fn is_boolean(&self) -> bool {
        matches!(self, Json::Bool(_))
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Json::Object(_))
    }

    /// An integer that fits `i64` or `u64` (not a float).
    pub fn is_integer(&self) -> bool {
        matches!(self, Json::Number(n) if n.is_i64() || n.is_u64())
    }

    /// The `Value` this stands for (of duplicated keys, the last).
    pub fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Number(n.clone()),
            Json::Str(s) => Value::String(s.to_string()),
            Json::Array(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Object(entries) => {
                // Inserted one by one (not collected, which would sort): the last duplicate wins.
                let mut map = serde_json::Map::new();
                for (k, v) in entries {
                    map.insert(k.to_string(), v.to_value());
                }
                Value::Object(map)
            }
        }
    }

    /// The JSON text `Value::to_string` would give for [`Json::to_value`].
    pub fn to_json_string(&self) -> String {
        let mut out = Vec::new();
        write_json(&mut out, self);
        // Only whole strings and ASCII were written: always UTF-8.
        String::from_utf8(out).unwrap_or_default()
    }

    /// The same value owning all its strings.
    fn into_owned(self) -> Json<'static> {
        match self {
            Json::Null => Json::Null,
            Json::Bool(b) => Json::Bool(b),
            Json::Number(n) => Json::Number(n),
            Json::Str(s) => Json::Str(Cow::Owned(s.into_owned())),
            Json::Array(items) => Json::Array(items.into_iter().map(Json::into_owned).collect()),
            Json::Object(entries) => Json::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned()))
                    .collect(),
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Json<'de>, E> {
        Ok(Number::from_f64(n).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(s)))
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json<'de>, D::Error> {
        Json::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let Some(first) = map.next_key_seed(KEY)? else {
            return Ok(Json::Object(Vec::new()));
        };
        if first == RAW_VALUE_TOKEN {
            // serde_json (with its `raw_value` feature, which this workspace enables) reads an
            // object whose first key is its private raw-value token as the JSON text of the
            // string that follows. Kept so this tree sees what a `Value` would.
            let text = map.next_value_seed(RAW_TEXT)?;
            let parsed = Json::from_slice(text.as_bytes()).map_err(de::Error::custom)?;
            return Ok(parsed.into_owned());
        }
        let mut entries = Vec::new();
        entries.push((first, map.next_value()?));
        while let Some(key) = map.next_key_seed(KEY)? {
            entries.push((key, map.next_value()?));
        }
        Ok(Json::Object(entries))
    }
}

/// The key serde_json's `Value` reads as "the rest is raw JSON text" (`serde_json::raw::TOKEN`,
/// which is not public).
pub(crate) const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// A string, borrowed when it has no escapes: an object key (`KEY`) or the text after a
/// raw-value token (`RAW_TEXT`, read as serde_json reads it, with the same expectation in its
/// type errors).
struct StrSeed(&'static str);

const KEY: StrSeed = StrSeed("a string key");
const RAW_TEXT: StrSeed = StrSeed("raw value");

impl<'de> DeserializeSeed<'de> for StrSeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for StrSeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s))
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Write `items` as a JSON array, each with `write`.
pub(crate) fn write_list<T>(out: &mut Vec<u8>, items: &[T], write: impl Fn(&T, &mut Vec<u8>)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(item, out);
    }
    out.push(b']');
}

/// Append `value` as JSON text, byte for byte as serde_json writes the `Value` it stands for.
pub(crate) fn write_json(out: &mut Vec<u8>, value: &Json<'_>) {
    match value {
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(true) => out.extend_from_slice(b"true"),
        Json::Bool(false) => out.extend_from_slice(b"false"),
        Json::Number(n) => write_number(out, n),
        Json::Str(s) => write_str(out, s),
        Json::Array(items) => write_list(out, items, |item, out| write_json(out, item)),
        Json::Object(entries) => write_object(out, entries, None),
    }
}

/// A number as serde_json writes it (its `Display` is that text); writing to a `Vec` cannot
/// fail.
pub(crate) fn write_number(out: &mut Vec<u8>, n: &Number) {
    match n.as_u64() {
        Some(u) => write_u64(out, u),
        // serde_json's own writer (itoa, or the shortest float text): the `Display` text
        // without going through `core::fmt`. Writing into a Vec cannot fail.
        None => {
            if serde_json::to_writer(&mut *out, n).is_err() {
                let _ = write!(out, "{n}");
            }
        }
    }
}

/// An unsigned integer in decimal, as serde_json writes it.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        if let Some(d) = digits.get_mut(start) {
            // `n % 10` is below 10: the cast keeps it whole.
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || start == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(start..).unwrap_or_default());
}

/// A JSON string literal, escaped as serde_json escapes it: `"`, `\\` and control characters
/// only, with the short forms where JSON has them and lowercase `\u00XX` otherwise.
///
/// Long runs that need no escape are found eight bytes at a time and copied whole (serde_json
/// looks at every byte through a table, which was most of the cost of writing a request).
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len().saturating_add(2));
    out.push(b'"');
    let mut rest = s.as_bytes();
    loop {
        let (run, tail) = rest
            .split_at_checked(plain_prefix_len(rest))
            .unwrap_or((rest, &[]));
        out.extend_from_slice(run);
        let Some((&byte, after)) = tail.split_first() else {
            break;
        };
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                let hex = |d: u8| if d < 10 { b'0' + d } else { b'a' + (d - 10) };
                out.extend_from_slice(b"\\u00");
                out.push(hex(byte >> 4));
                out.push(hex(byte & 0xf));
            }
        }
        rest = after;
    }
    out.push(b'"');
}

/// Whether a string byte must be escaped.
fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// The length of the longest prefix of `bytes` that needs no escape: sixteen bytes at a time
/// with SSE2 on x86_64 (part of every x86_64 target), eight at a time elsewhere.
#[cfg(target_arch = "x86_64")]
fn plain_prefix_len(bytes: &[u8]) -> usize {
    use core::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let mut len: usize = 0;
    while let Some(chunk) = bytes.get(len..len.wrapping_add(16)) {
        // SAFETY: `chunk` is 16 in-bounds bytes and `_mm_loadu_si128` reads exactly 16 bytes
        // with no alignment requirement; the other intrinsics only compute on registers. All
        // are SSE2, which every x86_64 target enables.
        let mask = unsafe {
            let x = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
            let quote = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8));
            // Unsigned `x <= 0x1f`: the minimum with 0x1f is `x` itself (non-ASCII bytes,
            // which need no escape, are above it).
            let control = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control))
        };
        if mask != 0 {
            return len + mask.trailing_zeros() as usize;
        }
        len += 16;
    }
    len + plain_prefix_len_swar(bytes.get(len..).unwrap_or_default())
}

#[cfg(not(target_arch = "x86_64"))]
fn plain_prefix_len(bytes: &[u8]) -> usize {
    plain_prefix_len_swar(bytes)
}

/// [`plain_prefix_len`] eight bytes at a time in a `u64`, then byte by byte (on x86_64 only
/// for a string's last bytes).
fn plain_prefix_len_swar(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Non-zero when some byte of `word` is below `n` (n <= 0x80), zero otherwise.
    let any_below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH;
    let any_equal = |word: u64, b: u8| any_below(word ^ (ONES * u64::from(b)), 1);
    let mut len = 0;
    for chunk in bytes.chunks_exact(8) {
        let Ok(word) = <[u8; 8]>::try_from(chunk).map(u64::from_le_bytes) else {
            break;
        };
        if any_below(word, 0x20) | any_equal(word, b'"') | any_equal(word, b'\\') != 0 {
            break;
        }
        len += 8;
    }
    let tail = bytes.get(len..).unwrap_or_default();
    len + tail.iter().take_while(|&&b| !needs_escape(b)).count()
}

/// Objects up to this many entries are sorted without allocating.
const INLINE_ENTRIES: usize = 16;

/// Append `entries` as `Value`'s map would hold them: keys in byte order, each once with its
/// last value. `default` is an entry added only when no entry has its key (as
/// `Map::entry(key).or_insert(value)` does).
pub(crate) fn write_object(
    out: &mut Vec<u8>,
    entries: &Object<'_>,
    default: Option<(&str, &Json<'_>)>,
) {
    // Keys with their positions, 0 for `default` and i + 1 for entry i: sorted, the last of
    // equal keys is the one a map keeps.
    let keys = default.map(|(k, _)| (k, 0)).into_iter().chain(
        entries
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.as_ref(), i + 1)),
    );
    let mut inline = [("", 0); INLINE_ENTRIES];
    let mut heap = Vec::new();
    let order = match inline.get_mut(..entries.len() + usize::from(default.is_some())) {
        Some(order) => {
            order
                .iter_mut()
                .zip(keys)
                .for_each(|(slot, key)| *slot = key);
            order
        }
        None => {
            heap.extend(keys);
            &mut heap[..]
        }
    };
    heapsort(order);

    out.push(b'{');
    let mut first = true;
    let mut iter = order.iter().peekable();
    while let Some(&(key, pos)) = iter.next() {
        if iter.peek().is_some_and(|(next, _)| *next == key) {
            continue; // a later duplicate wins
        }
        let value = match pos.checked_sub(1) {
            None => default.map(|(_, v)| v),
            Some(i) => entries.get(i).map(|(_, v)| v),
        };
        if let Some(value) = value {
            if !first {
                out.push(b',');
            }
            first = false;
            write_str(out, key);
            out.push(b':');
            write_json(out, value);
        }
    }
    out.push(b'}');
}

/// Sort `items` in O(n log n) without allocating: a few lines instead of the standard
/// library's sorts, which would each add kilobytes of Wasm for this one element type.
fn heapsort(items: &mut [(&str, usize)]) {
    fn sift_down(heap: &mut [(&str, usize)], mut root: usize) {
        loop {
            let left = root.saturating_mul(2).saturating_add(1);
            let right = left.saturating_add(1);
            let child = match (heap.get(left), heap.get(right)) {
                (Some(l), Some(r)) if l < r => right,
                (Some(_), _) => left,
                (None, _) => return,
            };
            match (heap.get(root), heap.get(child)) {
                (Some(top), Some(larger)) if top < larger => heap.swap(root, child),
                _ => return,
            }
            root = child;
        }
    }
    for root in (0..items.len() / 2).rev() {
        sift_down(items, root);
    }
    for end in (1..items.len()).rev() {
        items.swap(0, end);
        if let Some(heap) = items.get_mut(..end) {
            sift_down(heap, 0);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Parsing to `Json` and writing it gives the bytes `Value` gives.
    fn same_as_value(text: &str) {
        let value: Result<Value, _> = serde_json::from_str(text);
        let json: Result<Json<'_>, _> = serde_json::from_str(text);
        match (value, json) {
            (Ok(v), Ok(j)) => {
                assert_eq!(v.to_string(), j.to_json_string(), "{text}");
                assert_eq!(v, j.to_value(), "{text}");
            }
            (Err(v), Err(j)) => assert_eq!(v.to_string(), j.to_string(), "{text}"),
            (v, j) => panic!("{text}: {v:?} vs {j:?}"),
        }
    }

    #[test]
    fn writes_and_fails_like_value() {
        for text in [
            r#"{"b":1,"a":[true,null,-1,1.5,1e2,-0,18446744073709551615],"b":{"z":"\u00e9\n","y":{}}}"#,
            r#"{"k":1,"k":2,"a":3,"k":4}"#,
            r#"[{},[],"",0.1,1E400]"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#""\ud800""#,
            r#"{"$serde_json::private::RawValue":"{\"b\":1,\"a\":2}"}"#,
            r#"{"$serde_json::private::RawValue":"{\"b\":1,"}"#,
            r#"{"$serde_json::private::RawValue":5}"#,
            r#"{"$serde_json::private::RawValue":"[]","x":1}"#,
            r#"{"x":{"$serde_json::private::RawValue":"[1,2]"},"a":0}"#,
            r#"{"a":1,"$serde_json::private::RawValue":"[]"}"#,
        ] {
            same_as_value(text);
        }
        let many: String = (0..40).rev().map(|i| format!("\"k{i}\":{i},")).collect();
        same_as_value(&format!("{{{many}\"k3\":\"last\"}}"));
    }

    #[test]
    fn borrows_unescaped_strings_and_reads_last_duplicate() {
        let text = r#"{"a":"plain","b":"esc\"aped","a":"again"}"#;
        let json = Json::from_slice(text.as_bytes()).unwrap();
        assert!(matches!(json.get("b"), Some(Json::Str(Cow::Owned(_)))));
        assert!(matches!(
            json.get("a"),
            Some(Json::Str(Cow::Borrowed("again")))
        ));
        assert_eq!(json.get("missing"), None);
        assert_eq!(Json::Null.get("a"), None);
    }

    #[test]
    fn default_entry_is_added_only_when_its_key_is_missing() {
        let write = |text: &str| {
            let json = Json::from_slice(text.as_bytes()).unwrap();
            let obj = json.as_object().unwrap();
            let default = Json::Str(Cow::Borrowed("object"));
            let mut out = Vec::new();
            write_object(&mut out, obj, Some(("type", &default)));
            String::from_utf8(out).unwrap()
        };
        assert_eq!(write(r#"{"z":1}"#), r#"{"type":"object","z":1}"#);
        assert_eq!(write(r#"{"type":null}"#), r#"{"type":null}"#);
        assert_eq!(write("{}"), r#"{"type":"object"}"#);
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut all: String = (0..=0x7fu8).map(char::from).collect();
        all.push_str("é😀\u{2028}\u{fffd}");
        let mut cases = vec![all.clone(), String::new()];
        // Every byte at every position of two 16-byte blocks and the tail after them, so the
        // 16-byte, the 8-byte and the byte-by-byte scans each see it, alone and after another.
        for c in (0..=0x7fu8).map(char::from).chain(['é', '😀']) {
            for pad in 0..40 {
                cases.push(format!("{}{c}{}", "a".repeat(pad), "b".repeat(39 - pad)));
                cases.push(format!("\\{}{c}{}é", "a".repeat(pad), "b".repeat(39 - pad)));
            }
        }
        for s in cases {
            let mut out = Vec::new();
            write_str(&mut out, &s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&s).unwrap()
            );
        }
    }

    #[test]
    fn numbers_are_written_as_serde_json_writes_them() {
        let mut numbers: Vec<Number> =
            [0u64, 1, 9, 10, 99, 100, 512, 4096, u64::MAX / 10, u64::MAX]
                .into_iter()
                .map(Number::from)
                .collect();
        numbers.extend([-1i64, i64::MIN, -512].into_iter().map(Number::from));
        numbers.extend(
            [0.7, 1.0, -0.0, 1e21, 1.5e-7, 123456.789, f64::MAX]
                .into_iter()
                .filter_map(Number::from_f64),
        );
        for n in numbers {
            let mut out = Vec::new();
            write_number(&mut out, &n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
            if let Some(u) = n.as_u64() {
                let mut out = Vec::new();
                write_u64(&mut out, u);
                assert_eq!(String::from_utf8(out).unwrap(), u.to_string());
            }
        }
    }

    #[test]
    fn heapsort_sorts() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for n in 0..60 {
            let keys: Vec<u64> = (0..n)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng % 7
                })
                .collect();
            let names: Vec<String> = keys.iter().map(|k| format!("k{k}")).collect();
            let mut order: Vec<(&str, usize)> = names
                .iter()
                .enumerate()
                .map(|(i, k)| (k.as_str(), i))
                .collect();
            let mut expected = order.clone();
            heapsort(&mut order);
            expected.sort();
            assert_eq!(order, expected);
        }
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let err = Json::from_slice(deep.as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("recursion limit exceeded"),
            "{err}"
        );
    }
}
