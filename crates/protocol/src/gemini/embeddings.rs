//! OpenAI `/v1/embeddings` <-> Gemini `embedContent` / `batchEmbedContents`.
//!
//! A string `input` uses `embedContent`; an array of strings (even of one) uses
//! `batchEmbedContents`, whose per-request `model` must name the model of the URL. Token-id
//! inputs have no Gemini equivalent and are refused.

use serde_json::{json, Map, Value};

use super::path::parse_model;
use crate::error::{ErrorKind, GatewayError};

fn bad(param: &'static str, message: impl Into<String>) -> GatewayError {
    GatewayError::invalid("invalid_value", message).with_param(param)
}

/// Convert an OpenAI embeddings request body for Gemini model `model`. Returns whether the
/// batch endpoint must be used (see [`super::embed_path`]) and the upstream body.
pub fn embeddings_request_to_gemini(
    body: &[u8],
    model: &str,
) -> Result<(bool, Vec<u8>), GatewayError> {
    let resource = parse_model(model)?.resource_name();
    let req: Value = serde_json::from_slice(body).map_err(|e| {
        GatewayError::invalid(
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    let obj = req.as_object().ok_or_else(|| {
        GatewayError::invalid("invalid_json", "request body must be a JSON object")
    })?;
    let dimensions = match obj.get("dimensions") {
        None | Some(Value::Null) => None,
        Some(d) => Some(
            d.as_u64()
                .filter(|d| *d > 0)
                .ok_or_else(|| bad("dimensions", "dimensions must be a positive integer"))?,
        ),
    };
    let one = |text: &str| {
        let mut r = Map::new();
        r.insert("model".into(), json!(resource));
        r.insert("content".into(), json!({ "parts": [{ "text": text }] }));
        if let Some(d) = dimensions {
            r.insert("outputDimensionality".into(), json!(d));
        }
        Value::Object(r)
    };
    let not_text = || {
        bad(
            "input",
            "input must be a non-empty string or a non-empty array of non-empty strings \
             (token arrays are not supported by Gemini)",
        )
    };
    let (batch, out) = match obj.get("input") {
        Some(Value::String(s)) if !s.is_empty() => (false, one(s)),
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut requests = Vec::with_capacity(items.len());
            for item in items {
                let text = item
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(not_text)?;
                requests.push(one(text));
            }
            (true, json!({ "requests": requests }))
        }
        _ => return Err(not_text()),
    };
    Ok((batch, out.to_string().into_bytes()))
}

/// Whether an OpenAI embeddings request asked for base64 vectors (`encoding_format`).
pub fn embeddings_want_base64(request_body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(request_body)
        .ok()
        .and_then(|v| {
            v.get("encoding_format")
                .and_then(Value::as_str)
                .map(|f| f == "base64")
        })
        .unwrap_or(false)
}

/// Convert a Gemini embeddings response (`embedContent` when `!batch`, else
/// `batchEmbedContents`) to OpenAI's `list` of `embedding` objects, vectors as float arrays.
/// Gemini reports no token counts for embeddings, so `usage` is zero unless a
/// `usageMetadata.promptTokenCount` is present.
pub fn gemini_embeddings_to_openai(
    body: &[u8],
    model: &str,
    batch: bool,
) -> Result<Vec<u8>, GatewayError> {
    gemini_embeddings_to_openai_encoded(body, model, batch, false)
}

/// [`gemini_embeddings_to_openai`], with each vector as base64 of little-endian `f32`s when
/// `base64` is set (OpenAI's `encoding_format: "base64"`, the official SDKs' default).
pub fn gemini_embeddings_to_openai_encoded(
    body: &[u8],
    model: &str,
    batch: bool,
    base64: bool,
) -> Result<Vec<u8>, GatewayError> {
    let unreadable = || {
        GatewayError::new(
            ErrorKind::BadGateway,
            "invalid_upstream_response",
            "Gemini returned an unreadable embeddings response",
        )
    };
    let v: Value = serde_json::from_slice(body).map_err(|_| unreadable())?;
    if let Some(err) = v.get("error") {
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("Gemini returned an error");
        let kind = err
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .map_or(ErrorKind::BadGateway, ErrorKind::from_status);
        return Err(GatewayError::new(kind, "upstream_error", message));
    }
    let vectors: Vec<&Value> = if batch {
        v.get("embeddings")
            .and_then(Value::as_array)
            .ok_or_else(unreadable)?
            .iter()
            .collect()
    } else {
        vec![v.get("embedding").ok_or_else(unreadable)?]
    };
    let mut data = Vec::with_capacity(vectors.len());
    for (i, e) in vectors.into_iter().enumerate() {
        let values = e
            .get("values")
            .and_then(Value::as_array)
            .filter(|vals| vals.iter().all(Value::is_number))
            .ok_or_else(unreadable)?;
        let embedding = if base64 {
            let mut bytes = Vec::with_capacity(values.len() * 4);
            for x in values {
                // Narrowing to f32 is what OpenAI's base64 format carries.
                let f = x.as_f64().unwrap_or(0.0) as f32;
                bytes.extend_from_slice(&f.to_le_bytes());
            }
            json!(encode_base64(&bytes))
        } else {
            Value::Array(values.clone())
        };
        data.push(json!({ "object": "embedding", "index": i, "embedding": embedding }));
    }
    let tokens = v
        .pointer("/usageMetadata/promptTokenCount")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let out = json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
    });
    Ok(out.to_string().into_bytes())
}

/// Standard base64 with padding.
fn encode_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sym = |n: u32| char::from(ALPHABET[(n & 63) as usize]);
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = |i: usize| u32::from(group.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        out.push(sym(n >> 18));
        out.push(sym(n >> 12));
        out.push(if group.len() > 1 { sym(n >> 6) } else { '=' });
        out.push(if group.len() > 2 { sym(n) } else { '=' });
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn base64_known_vectors() {
        assert_eq!(encode_base64(b""), "");
        assert_eq!(encode_base64(b"f"), "Zg==");
        assert_eq!(encode_base64(b"fo"), "Zm8=");
        assert_eq!(encode_base64(b"foo"), "Zm9v");
        assert_eq!(encode_base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(encode_base64(&[0xff, 0xfe, 0xfd]), "//79");
    }

    #[test]
    fn base64_vectors_are_le_f32() {
        let out = gemini_embeddings_to_openai_encoded(
            br#"{"embedding":{"values":[1.0,-2.0]}}"#,
            "m",
            false,
            true,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        // 1.0f32 = 00 00 80 3f, -2.0f32 = 00 00 00 c0
        assert_eq!(v["data"][0]["embedding"], "AACAPwAAAMA=");
    }

    #[test]
    fn wants_base64() {
        assert!(embeddings_want_base64(
            br#"{"input":"x","encoding_format":"base64"}"#
        ));
        assert!(!embeddings_want_base64(
            br#"{"input":"x","encoding_format":"float"}"#
        ));
        assert!(!embeddings_want_base64(b"nope"));
    }
}
