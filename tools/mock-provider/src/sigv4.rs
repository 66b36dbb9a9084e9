//! Checking AWS Signature Version 4 on incoming requests, the way AWS does: recompute the
//! signature from the request as received and the secret of the access key it names.
//!
//! Written independently of the gateway's signer (`switchyard_protocol::bedrock::sigv4`), so
//! a mistake there shows up here as a 403 instead of being mirrored.

use hmac::{Hmac, KeyInit, Mac};
use hyper::HeaderMap;
use sha2::{Digest, Sha256};

/// Largest clock difference AWS tolerates between `x-amz-date` and its own clock.
const MAX_SKEW_SECS: u64 = 5 * 60;

/// Why a request was refused: AWS's exception name and message (status 403, or 400 for a
/// malformed header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: u16,
    pub exception: &'static str,
    pub message: String,
}

fn refuse(status: u16, exception: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        exception,
        message: message.into(),
    }
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
struct Authorization<'a> {
    key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    let mut scope = credential?.split('/');
    let auth = Authorization {
        key_id: scope.next()?,
        date: scope.next()?,
        region: scope.next()?,
        service: scope.next()?,
        signed_headers: signed?.split(';').collect(),
        signature: signature?,
    };
    (scope.next() == Some("aws4_request") && scope.next().is_none()).then_some(auth)
}

/// Verify the request against `secret_for(access key id)`. `path` is the path as received
/// (percent-encoded), `now` Unix seconds.
pub(crate) fn verify(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    secret_for: impl Fn(&str) -> Option<String>,
    now: u64,
) -> Result<(), Refusal> {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Err(refuse(
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let auth = parse_authorization(value).ok_or_else(|| {
        refuse(400, "IncompleteSignatureException", "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.")
    })?;
    let Some(secret) = secret_for(auth.key_id) else {
        return Err(refuse(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    };
    let amz_date = header(headers, "x-amz-date").unwrap_or_default();
    if amz_date.len() != 16 || !amz_date.starts_with(auth.date) {
        return Err(refuse(403, "InvalidSignatureException", "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP."));
    }
    match unix_from_amz_date(&amz_date) {
        Some(t) if t.abs_diff(now) <= MAX_SKEW_SECS => {}
        _ => {
            return Err(refuse(
                403,
                "InvalidSignatureException",
                "Signature expired: the request time is too far from the server's time.",
            ))
        }
    }
    if !auth.signed_headers.contains(&"host") {
        return Err(refuse(
            403,
            "InvalidSignatureException",
            "'Host' must be a signed header.",
        ));
    }
    let body_hash = hex(&Sha256::digest(body));
    if let Some(claimed) = header(headers, "x-amz-content-sha256") {
        if claimed != body_hash {
            return Err(refuse(
                400,
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
    }
    let mut canonical = String::new();
    canonical.push_str(method);
    canonical.push('\n');
    let segments: Vec<String> = path.split('/').map(|s| encode(s.as_bytes())).collect();
    canonical.push_str(&segments.join("/"));
    canonical.push('\n');
    let mut params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(k)), encode(&decode(v)))
        })
        .collect();
    params.sort();
    let params: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    canonical.push_str(&params.join("&"));
    canonical.push('\n');
    for name in &auth.signed_headers {
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(&values.join(","));
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(&auth.signed_headers.join(";"));
    canonical.push('\n');
    canonical.push_str(&body_hash);

    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = mac(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
    for part in [auth.region, auth.service, "aws4_request"] {
        key = mac(&key, part.as_bytes());
    }
    let expected = hex(&mac(&key, to_sign.as_bytes()));
    if expected != auth.signature {
        return Err(refuse(403, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."));
    }
    Ok(())
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) else {
        return Vec::new();
    };
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hexval = |j: usize| b.get(j).and_then(|c| char::from(*c).to_digit(16));
        if let (Some(b'%'), Some(h), Some(l)) = (b.get(i), hexval(i + 1), hexval(i + 2)) {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Unix seconds of `YYYYMMDDTHHMMSSZ`.
fn unix_from_amz_date(s: &str) -> Option<u64> {
    let num = |a: usize, b: usize| s.get(a..b)?.parse::<u64>().ok();
    if s.get(8..9)? != "T" || s.get(15..16)? != "Z" {
        return None;
    }
    let (y, m, d) = (num(0, 4)?, num(4, 6)?, num(6, 8)?);
    let (hh, mm, ss) = (num(9, 11)?, num(11, 13)?, num(13, 15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(unix_from_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(unix_from_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(unix_from_amz_date("2015-08-30T12:36Z"), None);
    }

    /// AWS's get-vanilla test-suite request verifies with the suite's secret.
    #[test]
    fn verifies_the_aws_test_suite_request() {
        let mut h = HeaderMap::new();
        h.insert("host", "example.amazonaws.com".parse().unwrap());
        h.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        h.insert("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31".parse().unwrap());
        let secret = |id: &str| {
            (id == "AKIDEXAMPLE").then(|| "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned())
        };
        assert_eq!(
            verify("GET", "/", "", &h, b"", secret, 1_440_938_160),
            Ok(())
        );
        let e = verify("GET", "/x", "", &h, b"", secret, 1_440_938_160).unwrap_err();
        assert_eq!(e.exception, "InvalidSignatureException");
        let e = verify("GET", "/", "", &h, b"", |_| None, 1_440_938_160).unwrap_err();
        assert_eq!(e.exception, "UnrecognizedClientException");
        let e = verify("GET", "/", "", &h, b"", secret, 1_440_938_160 + 3600).unwrap_err();
        assert!(e.message.starts_with("Signature expired"));
    }
}
