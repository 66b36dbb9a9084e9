//! Reading a client's JSON request with errors that name the field at fault.
//!
//! The body is parsed into a [`Json`] tree that borrows its strings from the body. `null`
//! counts as absent everywhere: several client libraries send `"temperature": null` for
//! "not set".

use crate::borrowed_json::lookup;
pub(crate) use crate::borrowed_json::{Json, Object};
use crate::error::GatewayError;
use std::borrow::Cow;
use std::fmt;

/// 400 `invalid_request_error` naming `param`; `message` says what is wrong and where.
pub(crate) fn invalid(param: &'static str, code: &'static str, message: String) -> GatewayError {
    GatewayError::invalid(code, message).with_param(param)
}

pub(crate) fn wrong_type(
    param: &'static str,
    path: impl fmt::Display,
    expected: &str,
) -> GatewayError {
    invalid(param, "invalid_type", format!("{path} must be {expected}"))
}

/// Where a value is in the request (`messages[2].content[0].text`), written out only when an
/// error names it: building the text for every value read would cost an allocation each.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Path<'p> {
    Root(&'static str),
    Index(&'p Path<'p>, usize),
    Field(&'p Path<'p>, &'p str),
}

impl<'p> Path<'p> {
    /// Element `i` of the array here.
    pub fn at(&'p self, i: usize) -> Path<'p> {
        Path::Index(self, i)
    }

    /// Member `key` of the object here.
    pub fn field(&'p self, key: &'p str) -> Path<'p> {
        Path::Field(self, key)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root(name) => f.write_str(name),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
            Path::Field(parent, key) => write!(f, "{parent}.{key}"),
        }
    }
}

/// The request body as a JSON object: its entries, in document order.
pub(crate) fn parse_object(body: &[u8]) -> Result<Vec<(Cow<'_, str>, Json<'_>)>, GatewayError> {
    let value = Json::from_slice(body).map_err(|e| {
        GatewayError::invalid(
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    match value {
        Json::Object(obj) => Ok(obj),
        _ => Err(GatewayError::invalid(
            "invalid_type",
            "request body must be a JSON object",
        )),
    }
}

/// The value of `key`, with `null` treated as absent.
#[inline(never)]
pub(crate) fn get<'b, 'a>(obj: &'b Object<'a>, key: &str) -> Option<&'b Json<'a>> {
    lookup(obj, key).filter(|v| !v.is_null())
}

pub(crate) fn opt_str<'b>(
    obj: &'b Object<'_>,
    key: &'static str,
) -> Result<Option<&'b str>, GatewayError> {
    match get(obj, key) {
        None => Ok(None),
        Some(Json::Str(s)) => Ok(Some(s)),
        Some(_) => Err(wrong_type(key, key, "a string")),
    }
}

pub(crate) fn required_str<'b>(
    obj: &'b Object<'_>,
    key: &'static str,
) -> Result<&'b str, GatewayError> {
    opt_str(obj, key)?.ok_or_else(|| {
        invalid(
            key,
            "missing_required_parameter",
            format!("{key} is required"),
        )
    })
}

pub(crate) fn opt_bool(obj: &Object<'_>, key: &'static str) -> Result<Option<bool>, GatewayError> {
    match get(obj, key) {
        None => Ok(None),
        Some(Json::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(wrong_type(key, key, "a boolean")),
    }
}

pub(crate) fn opt_f64(obj: &Object<'_>, key: &'static str) -> Result<Option<f64>, GatewayError> {
    match get(obj, key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| wrong_type(key, key, "a number")),
    }
}

pub(crate) fn opt_u32(obj: &Object<'_>, key: &'static str) -> Result<Option<u32>, GatewayError> {
    match get(obj, key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| wrong_type(key, key, "a non-negative integer")),
    }
}

pub(crate) fn opt_u64(obj: &Object<'_>, key: &'static str) -> Result<Option<u64>, GatewayError> {
    match get(obj, key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| wrong_type(key, key, "a non-negative integer")),
    }
}

/// `stop` / `stop_sequences`: a string or an array of strings.
pub(crate) fn string_or_strings<'b>(
    obj: &'b Object<'_>,
    key: &'static str,
) -> Result<Vec<&'b str>, GatewayError> {
    match get(obj, key) {
        None => Ok(Vec::new()),
        Some(Json::Str(s)) => Ok(vec![s.as_ref()]),
        Some(Json::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .ok_or_else(|| wrong_type(key, format_args!("{key}[{i}]"), "a string"))
            })
            .collect(),
        Some(_) => Err(wrong_type(key, key, "a string or an array of strings")),
    }
}

/// The non-empty `messages` array.
pub(crate) fn messages<'b, 'a>(obj: &'b Object<'a>) -> Result<&'b [Json<'a>], GatewayError> {
    match get(obj, "messages") {
        None => Err(invalid(
            "messages",
            "missing_required_parameter",
            "messages is required".into(),
        )),
        Some(Json::Array(items)) if items.is_empty() => Err(invalid(
            "messages",
            "invalid_value",
            "messages must not be empty".into(),
        )),
        Some(Json::Array(items)) => Ok(items),
        Some(_) => Err(wrong_type("messages", "messages", "an array")),
    }
}

/// `data:<media type>;base64,<data>` split into media type and data.
pub(crate) fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type, data))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn data_urls() {
        assert_eq!(
            parse_data_url("data:image/png;base64,iVBOR"),
            Some(("image/png", "iVBOR"))
        );
        assert_eq!(parse_data_url("data:image/png,raw"), None);
        assert_eq!(parse_data_url("https://x/y.png"), None);
    }

    #[test]
    fn paths_are_written_as_before() {
        let root = Path::Root("messages");
        let msg = root.at(2);
        let content = msg.field("content");
        let part = content.at(0);
        assert_eq!(
            part.field("text").to_string(),
            "messages[2].content[0].text"
        );
    }

    #[test]
    fn null_is_absent_and_types_are_checked() {
        let obj = parse_object(br#"{"t":null,"n":1.5,"s":"x"}"#).unwrap();
        assert_eq!(opt_f64(&obj, "t").unwrap(), None);
        assert_eq!(opt_u32(&obj, "n").unwrap_err().param, Some("n"));
        assert_eq!(opt_str(&obj, "s").unwrap(), Some("x"));
        assert!(parse_object(b"[1]").is_err());
        assert_eq!(parse_object(b"{").unwrap_err().code, "invalid_json");
    }
}
