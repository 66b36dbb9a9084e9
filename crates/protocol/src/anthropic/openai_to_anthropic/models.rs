//! Claude's `GET /v1/models` list -> OpenAI's `{"object":"list","data":[...]}`.

use crate::{ErrorKind, GatewayError};
use serde_json::{json, Value};

/// Convert Anthropic's model list (`data[].id`, `created_at` as RFC 3339) to OpenAI's.
pub fn models_response_to_openai(body: &[u8]) -> Result<Vec<u8>, GatewayError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| bad(&e.to_string()))?;
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no `data` list"))?;
    let models: Vec<Value> = data
        .iter()
        .filter_map(|m| {
            let id = m.get("id")?.as_str()?;
            let created = m
                .get("created_at")
                .and_then(Value::as_str)
                .and_then(rfc3339_to_unix)
                .unwrap_or(0);
            Some(json!({"id": id, "object": "model", "created": created, "owned_by": "anthropic"}))
        })
        .collect();
    Ok(json!({"object": "list", "data": models})
        .to_string()
        .into_bytes())
}

fn bad(detail: &str) -> GatewayError {
    GatewayError::new(
        ErrorKind::BadGateway,
        "invalid_vendor_response",
        format!("the vendor's model list could not be read: {detail}"),
    )
}

/// Seconds since the Unix epoch of an RFC 3339 time (`2025-09-29T12:30:00Z`, fractions and
/// offsets accepted); `None` when malformed.
pub fn rfc3339_to_unix(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, min, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    // Skip fractional seconds, then read the offset.
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let o = num(i + 1, 2)? * 3600 + num(i + 4, 2)? * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let t = days * 86_400 + hour * 3600 + min * 60 + sec - offset;
    u64::try_from(t).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(rfc3339_to_unix("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_to_unix("2025-09-29T00:00:00Z"), Some(1_759_104_000));
        assert_eq!(
            rfc3339_to_unix("2024-02-29T12:30:15.123Z"),
            Some(1_709_209_815)
        );
        assert_eq!(
            rfc3339_to_unix("2024-02-29T14:30:15+02:00"),
            Some(1_709_209_815)
        );
        for bad in [
            "",
            "2024-13-01T00:00:00Z",
            "2024-01-01",
            "2024-01-01T00:00:00",
            "x024-01-01T00:00:00Z",
            "1960-01-01T00:00:00Z",
            "2024-01-01T00:00:00+0200",
        ] {
            assert_eq!(rfc3339_to_unix(bad), None, "{bad}");
        }
    }

    #[test]
    fn list() {
        let body = br#"{"data":[{"type":"model","id":"claude-sonnet-4-5","display_name":"S","created_at":"2025-09-29T00:00:00Z"},{"id":7},{"id":"claude-x"}],"has_more":false}"#;
        let v: Value = serde_json::from_slice(&models_response_to_openai(body).unwrap()).unwrap();
        assert_eq!(v["object"], "list");
        assert_eq!(v["data"].as_array().unwrap().len(), 2);
        assert_eq!(v["data"][0]["id"], "claude-sonnet-4-5");
        assert_eq!(v["data"][0]["created"], 1_759_104_000u64);
        assert_eq!(v["data"][0]["owned_by"], "anthropic");
        assert_eq!(v["data"][1]["created"], 0);
        let err = models_response_to_openai(b"<html>").unwrap_err();
        assert_eq!(err.status(), 502);
        assert!(models_response_to_openai(b"{}").is_err());
    }
}
