//! Reading a client's JSON request with errors that name the field at fault.
//!
//! `null` counts as absent everywhere: several client libraries send `"temperature": null`
//! for "not set".

use crate::error::GatewayError;
use serde_json::{Map, Value};

pub(crate) type Object = Map<String, Value>;

/// 400 `invalid_request_error` naming `param`; `message` says what is wrong and where.
pub(crate) fn invalid(param: &'static str, code: &'static str, message: String) -> GatewayError {
    GatewayError::invalid(code, message).with_param(param)
}

pub(crate) fn wrong_type(param: &'static str, path: &str, expected: &str) -> GatewayError {
    invalid(param, "invalid_type", format!("{path} must be {expected}"))
}

/// The request body as a JSON object.
pub(crate) fn parse_object(body: &[u8]) -> Result<Object, GatewayError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        GatewayError::invalid(
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    match value {
        Value::Object(obj) => Ok(obj),
        _ => Err(GatewayError::invalid(
            "invalid_type",
            "request body must be a JSON object",
        )),
    }
}

/// The value of `key`, with `null` treated as absent.
pub(crate) fn get<'a>(obj: &'a Object, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

pub(crate) fn opt_str<'a>(
    obj: &'a Object,
    key: &'static str,
) -> Result<Option<&'a str>, GatewayError> {
    match get(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(wrong_type(key, key, "a string")),
    }
}

pub(crate) fn required_str<'a>(
    obj: &'a Object,
    key: &'static str,
) -> Result<&'a str, GatewayError> {
    opt_str(obj, key)?.ok_or_else(|| {
        invalid(
            key,
            "missing_required_parameter",
            format!("{key} is required"),
        )
    })
}

pub(crate) fn opt_bool(obj: &Object, key: &'static str) -> Result<Option<bool>, GatewayError> {
    match get(obj, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(wrong_type(key, key, "a boolean")),
    }
}

pub(crate) fn opt_f64(obj: &Object, key: &'static str) -> Result<Option<f64>, GatewayError> {
    match get(obj, key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| wrong_type(key, key, "a number")),
    }
}

pub(crate) fn opt_u32(obj: &Object, key: &'static str) -> Result<Option<u32>, GatewayError> {
    match get(obj, key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| wrong_type(key, key, "a non-negative integer")),
    }
}

pub(crate) fn opt_u64(obj: &Object, key: &'static str) -> Result<Option<u64>, GatewayError> {
    match get(obj, key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| wrong_type(key, key, "a non-negative integer")),
    }
}

/// `stop` / `stop_sequences`: a string or an array of strings.
pub(crate) fn string_or_strings(
    obj: &Object,
    key: &'static str,
) -> Result<Vec<String>, GatewayError> {
    match get(obj, key) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| wrong_type(key, &format!("{key}[{i}]"), "a string"))
            })
            .collect(),
        Some(_) => Err(wrong_type(key, key, "a string or an array of strings")),
    }
}

/// The non-empty `messages` array.
pub(crate) fn messages(obj: &Object) -> Result<&Vec<Value>, GatewayError> {
    match get(obj, "messages") {
        None => Err(invalid(
            "messages",
            "missing_required_parameter",
            "messages is required".into(),
        )),
        Some(Value::Array(items)) if items.is_empty() => Err(invalid(
            "messages",
            "invalid_value",
            "messages must not be empty".into(),
        )),
        Some(Value::Array(items)) => Ok(items),
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
    fn null_is_absent_and_types_are_checked() {
        let obj = parse_object(br#"{"t":null,"n":1.5,"s":"x"}"#).unwrap();
        assert_eq!(opt_f64(&obj, "t").unwrap(), None);
        assert_eq!(opt_u32(&obj, "n").unwrap_err().param, Some("n"));
        assert_eq!(opt_str(&obj, "s").unwrap(), Some("x"));
        assert!(parse_object(b"[1]").is_err());
        assert_eq!(parse_object(b"{").unwrap_err().code, "invalid_json");
    }
}
