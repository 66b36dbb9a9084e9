//! AWS Signature Version 4 for requests with headers (`Authorization`), as a pure function.
//!
//! The filter calls [`sign`] once the upstream request is final (method, host, path as sent,
//! query, body) and adds the returned headers. Nothing here reads a clock or logs: the time
//! is an input, and the secret appears only inside the HMAC chain ([`Credentials`]' `Debug`
//! hides it).
//!
//! Canonical URI: AWS signs each path segment URI-encoded *again* for every service but S3
//! ("double encoding"): a Bedrock path sent as `/model/anthropic.claude-v2%3A1/converse` is
//! signed as `/model/anthropic.claude-v2%253A1/converse`. [`PathEncoding::Single`] signs
//! the path as given (S3, and AWS's test-suite vectors that start from an encoded path).

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// The algorithm name in the string to sign and the `Authorization` header.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// AWS credentials: an access key pair and, for temporary credentials, a session token.
#[derive(Clone)]
pub struct Credentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
}

impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.map(|_| "<redacted>"))
            .finish()
    }
}

/// How the path enters the canonical request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathEncoding {
    /// Each segment URI-encoded once more (every service but S3; Bedrock).
    Double,
    /// The path as given (S3).
    Single,
}

/// The request to sign. `path` is the path as it goes on the wire (already percent-encoded),
/// `query` the query string without `?` (may be empty), `headers` the extra headers to sign
/// (e.g. `content-type`); `host` is always signed, and so are the headers [`sign`] adds.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// Where and when the signature applies.
#[derive(Debug, Clone)]
pub struct Scope<'a> {
    /// e.g. `us-east-1`.
    pub region: &'a str,
    /// e.g. `bedrock` (Bedrock Runtime's signing name).
    pub service: &'a str,
    /// Seconds since the Unix epoch (UTC).
    pub unix_seconds: u64,
    pub path_encoding: PathEncoding,
    /// Add and sign `x-amz-content-sha256` (S3 requires it; elsewhere it is optional).
    pub content_sha256_header: bool,
}

impl<'a> Scope<'a> {
    /// Bedrock Runtime in `region` at `unix_seconds`: service `bedrock`, double encoding,
    /// with `x-amz-content-sha256`.
    pub fn bedrock(region: &'a str, unix_seconds: u64) -> Self {
        Scope {
            region,
            service: "bedrock",
            unix_seconds,
            path_encoding: PathEncoding::Double,
            content_sha256_header: true,
        }
    }
}

/// The headers to add to the request.
#[derive(Clone, PartialEq, Eq)]
pub struct Signed {
    pub authorization: String,
    /// `YYYYMMDD'T'HHMMSS'Z'`.
    pub x_amz_date: String,
    /// Hex SHA-256 of the body (sent only when [`Scope::content_sha256_header`]).
    pub x_amz_content_sha256: Option<String>,
    /// The session token, when the credentials have one.
    pub x_amz_security_token: Option<String>,
}

impl fmt::Debug for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The signature authorizes this request for minutes: not for logs either.
        let authorization = self
            .authorization
            .split_once("Signature=")
            .map_or("<redacted>".to_owned(), |(head, _)| {
                format!("{head}Signature=<redacted>")
            });
        f.debug_struct("Signed")
            .field("authorization", &authorization)
            .field("x_amz_date", &self.x_amz_date)
            .field("x_amz_content_sha256", &self.x_amz_content_sha256)
            .field(
                "x_amz_security_token",
                &self.x_amz_security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Signed {
    /// `(name, value)` pairs to set on the request, lowercase names.
    pub fn headers(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![
            ("authorization", self.authorization.as_str()),
            ("x-amz-date", self.x_amz_date.as_str()),
        ];
        if let Some(h) = &self.x_amz_content_sha256 {
            out.push(("x-amz-content-sha256", h.as_str()));
        }
        if let Some(t) = &self.x_amz_security_token {
            out.push(("x-amz-security-token", t.as_str()));
        }
        out
    }
}

/// Sign `req`: see the module docs. Header names are compared case-insensitively; a header
/// given twice is signed with its values joined by `,` as AWS specifies.
pub fn sign(req: &Request<'_>, creds: &Credentials<'_>, scope: &Scope<'_>) -> Signed {
    let amz_date = amz_date(scope.unix_seconds);
    let date = amz_date.get(..8).unwrap_or_default().to_owned();
    let payload_hash = hex(&Sha256::digest(req.body));

    let mut headers: Vec<(String, String)> = Vec::with_capacity(req.headers.len() + 4);
    headers.push(("host".into(), req.host.to_owned()));
    headers.push(("x-amz-date".into(), amz_date.clone()));
    if scope.content_sha256_header {
        headers.push(("x-amz-content-sha256".into(), payload_hash.clone()));
    }
    if let Some(token) = creds.session_token {
        headers.push(("x-amz-security-token".into(), token.to_owned()));
    }
    for (name, value) in req.headers {
        let name = name.to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "host"
                | "x-amz-date"
                | "x-amz-content-sha256"
                | "x-amz-security-token"
                | "authorization"
        ) {
            continue;
        }
        headers.push((name, (*value).to_owned()));
    }
    let canonical = canonical_request(req, &headers, &payload_hash, scope.path_encoding);
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{credential_scope}\n{}",
        hex(&Sha256::digest(canonical.text.as_bytes()))
    );
    let key = signing_key(creds.secret_access_key, &date, scope.region, scope.service);
    let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
    Signed {
        authorization: format!(
            "{ALGORITHM} Credential={}/{credential_scope}, SignedHeaders={}, Signature={signature}",
            creds.access_key_id, canonical.signed_headers
        ),
        x_amz_date: amz_date,
        x_amz_content_sha256: scope.content_sha256_header.then_some(payload_hash),
        x_amz_security_token: creds.session_token.map(str::to_owned),
    }
}

struct Canonical {
    text: String,
    signed_headers: String,
}

fn canonical_request(
    req: &Request<'_>,
    headers: &[(String, String)],
    payload_hash: &str,
    encoding: PathEncoding,
) -> Canonical {
    // Sorted by name; values of one name joined in order.
    let mut merged: Vec<(String, String)> = Vec::with_capacity(headers.len());
    let mut sorted: Vec<&(String, String)> = headers.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in sorted {
        let value = trim_value(value);
        match merged.last_mut() {
            Some((last, v)) if last == name => {
                v.push(',');
                v.push_str(&value);
            }
            _ => merged.push((name.clone(), value)),
        }
    }
    let signed_headers = merged
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let mut text = String::with_capacity(256);
    text.push_str(req.method);
    text.push('\n');
    text.push_str(&canonical_uri(req.path, encoding));
    text.push('\n');
    text.push_str(&canonical_query(req.query));
    text.push('\n');
    for (name, value) in &merged {
        text.push_str(name);
        text.push(':');
        text.push_str(value);
        text.push('\n');
    }
    text.push('\n');
    text.push_str(&signed_headers);
    text.push('\n');
    text.push_str(payload_hash);
    Canonical {
        text,
        signed_headers,
    }
}

/// Trimmed, with runs of spaces collapsed to one.
fn trim_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn canonical_uri(path: &str, encoding: PathEncoding) -> String {
    let path = if path.is_empty() { "/" } else { path };
    match encoding {
        PathEncoding::Single => path.to_owned(),
        PathEncoding::Double => path
            .split('/')
            .map(|segment| uri_encode(segment.as_bytes()))
            .collect::<Vec<_>>()
            .join("/"),
    }
}

/// Parameters decoded, re-encoded the AWS way, sorted by name then value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k)),
                uri_encode(&percent_decode(v)),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Every byte outside RFC 3986's unreserved set as `%XX` (uppercase hex).
pub(crate) fn uri_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `%XX` sequences decoded; a `%` not followed by two hex digits is kept as is.
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex_at = |j: usize| b.get(j).and_then(|c| char::from(*c).to_digit(16));
        match (b.get(i), hex_at(i + 1), hex_at(i + 2)) {
            (Some(b'%'), Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(0));
                i += 3;
            }
            (Some(c), _, _) => {
                out.push(*c);
                i += 1;
            }
            (None, _, _) => break,
        }
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_secret = format!("AWS4{secret}");
    let k_date = hmac(k_secret.as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time (UTC).
pub fn amz_date(unix_seconds: u64) -> String {
    let days = unix_seconds / 86_400;
    let secs = unix_seconds % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Year, month, day of a day count since 1970-01-01 (proleptic Gregorian calendar).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const KEY_ID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    /// 2015-08-30T12:36:00Z, the time of AWS's SigV4 test suite.
    const SUITE_TIME: u64 = 1_440_938_160;

    fn suite_scope() -> Scope<'static> {
        Scope {
            region: "us-east-1",
            service: "service",
            unix_seconds: SUITE_TIME,
            path_encoding: PathEncoding::Single,
            content_sha256_header: false,
        }
    }

    fn creds() -> Credentials<'static> {
        Credentials {
            access_key_id: KEY_ID,
            secret_access_key: SECRET,
            session_token: None,
        }
    }

    fn suite(method: &str, path: &str, query: &str) -> String {
        let req = Request {
            method,
            host: "example.amazonaws.com",
            path,
            query,
            headers: &[],
            body: b"",
        };
        sign(&req, &creds(), &suite_scope()).authorization
    }

    /// Vectors of AWS's SigV4 test suite (`aws-sig-v4-test-suite`): get-vanilla,
    /// get-vanilla-query-order-key-case, post-vanilla, get-utf8 (path given encoded).
    #[test]
    fn aws_test_suite() {
        let prefix = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=";
        for (method, path, query, sig) in [
            (
                "GET",
                "/",
                "",
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
            (
                "GET",
                "/",
                "Param2=value2&Param1=value1",
                "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            ),
            (
                "POST",
                "/",
                "",
                "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            ),
            (
                "GET",
                "/%E1%88%B4",
                "",
                "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
            ),
        ] {
            assert_eq!(
                suite(method, path, query),
                format!("{prefix}{sig}"),
                "{method} {path}?{query}"
            );
        }
    }

    /// AWS's S3 documentation example (GET Object with a Range header): signature
    /// f0e8bdb8... for `examplebucket`, 2013-05-24, with `x-amz-content-sha256` signed.
    #[test]
    fn aws_s3_get_object_example() {
        let req = Request {
            method: "GET",
            host: "examplebucket.s3.amazonaws.com",
            path: "/test.txt",
            query: "",
            headers: &[("Range", "bytes=0-9")],
            body: b"",
        };
        let creds = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            session_token: None,
        };
        let scope = Scope {
            region: "us-east-1",
            service: "s3",
            unix_seconds: 1_369_353_600,
            path_encoding: PathEncoding::Single,
            content_sha256_header: true,
        };
        let signed = sign(&req, &creds, &scope);
        assert_eq!(
            signed.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        assert_eq!(
            signed.x_amz_content_sha256.as_deref(),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
    }

    /// A Converse request signed by botocore 1.44.18 (`SigV4Auth(creds, "bedrock",
    /// "us-east-1")`, timestamp fixed at 2024-01-01T00:00:00Z, session token `SESSIONTOKEN`):
    /// the path as the SDK sends it (`:` as `%3A`), signed double-encoded (`%253A`), no
    /// `x-amz-content-sha256` (botocore sends it for S3 only).
    #[test]
    fn matches_botocore_for_a_converse_request() {
        let body = br#"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#;
        let req = Request {
            method: "POST",
            host: "bedrock-runtime.us-east-1.amazonaws.com",
            path: "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
            query: "",
            headers: &[("Content-Type", "application/json")],
            body,
        };
        let creds = Credentials {
            session_token: Some("SESSIONTOKEN"),
            ..creds()
        };
        let mut scope = Scope::bedrock("us-east-1", 1_704_067_200);
        scope.content_sha256_header = false;
        let signed = sign(&req, &creds, &scope);
        assert_eq!(
            signed.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=887e3e62ed0309344479e41a36235ab1aa3d1a7b49b0d40149968fb02db8c51b"
        );
        assert_eq!(signed.x_amz_date, "20240101T000000Z");
        assert_eq!(signed.x_amz_content_sha256, None);
        // The path the gateway builds is the one botocore sends.
        assert_eq!(
            crate::bedrock::converse_path("anthropic.claude-3-5-sonnet-20240620-v1:0", false)
                .unwrap(),
            req.path
        );
    }

    #[test]
    fn dates() {
        assert_eq!(amz_date(SUITE_TIME), "20150830T123600Z");
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
        assert_eq!(amz_date(4_102_444_799), "20991231T235959Z");
    }

    #[test]
    fn bedrock_path_is_double_encoded() {
        let c = canonical_uri(
            "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
            PathEncoding::Double,
        );
        assert_eq!(
            c,
            "/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse"
        );
        assert_eq!(canonical_query("alt=sse&b=%2f+x"), "alt=sse&b=%2F%2Bx");
    }

    #[test]
    fn session_token_is_signed_and_secrets_are_not_debug_printed() {
        let req = Request {
            method: "POST",
            host: "bedrock-runtime.us-east-1.amazonaws.com",
            path: "/model/m/converse",
            query: "",
            headers: &[("Content-Type", "application/json")],
            body: b"{}",
        };
        let creds = Credentials {
            session_token: Some("TOKEN-SECRET"),
            ..creds()
        };
        let signed = sign(&req, &creds, &Scope::bedrock("us-east-1", SUITE_TIME));
        assert!(signed.authorization.contains(
            "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"
        ));
        assert_eq!(signed.x_amz_security_token.as_deref(), Some("TOKEN-SECRET"));
        let debug = format!("{signed:?} {creds:?}");
        assert!(
            !debug.contains("TOKEN-SECRET") && !debug.contains(SECRET),
            "{debug}"
        );
        let names: Vec<&str> = signed.headers().iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "authorization",
                "x-amz-date",
                "x-amz-content-sha256",
                "x-amz-security-token"
            ]
        );
    }
}
