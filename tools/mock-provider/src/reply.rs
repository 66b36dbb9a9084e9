//! Response construction shared by the vendor modules.

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use crate::body::{MockBody, Pacing};
use crate::script::Script;
use crate::sse::Events;

pub(crate) const JSON: &str = "application/json";
pub(crate) const EVENT_STREAM: &str = "text/event-stream; charset=utf-8";
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";
pub(crate) const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A response with `status`, `content_type` and the script's extra headers, which replace a
/// default header of the same name.
pub(crate) fn response(
    status: u16,
    content_type: &'static str,
    extra: &[(String, String)],
    body: MockBody,
) -> Response<MockBody> {
    let mut res = Response::new(body);
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (i, (name, value)) in extra.iter().enumerate() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            continue;
        };
        let earlier = extra
            .iter()
            .take(i)
            .any(|(n, _)| n.eq_ignore_ascii_case(name.as_str()));
        if earlier {
            headers.append(name, value);
        } else {
            headers.insert(name, value);
        }
    }
    res
}

/// A whole JSON body.
pub(crate) fn json(status: u16, extra: &[(String, String)], body: Vec<u8>) -> Response<MockBody> {
    response(status, JSON, extra, MockBody::full(body))
}

/// A whole body of a fixed type, without script headers.
pub(crate) fn plain(
    status: u16,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<MockBody> {
    response(status, content_type, &[], MockBody::full(body))
}

/// A streamed body paced by the script.
pub(crate) fn stream(
    status: u16,
    content_type: &'static str,
    script: &Script,
    events: Events,
) -> Response<MockBody> {
    let body = MockBody::stream(events, &Pacing::from_script(script));
    response(status, content_type, &script.headers, body)
}

/// The script's `raw_body`, as-is, with its status (default 200).
pub(crate) fn raw(script: &Script, raw: &str) -> Response<MockBody> {
    let trimmed = raw.trim_start();
    let content_type = if trimmed.starts_with("data:") || trimmed.starts_with("event:") {
        EVENT_STREAM
    } else {
        JSON
    };
    stream(
        script.status.unwrap_or(200),
        content_type,
        script,
        Events::from_raw(raw),
    )
}

/// The status of a normal answer: the script's if it is below 400, else 200.
pub(crate) fn ok_status(script: &Script) -> u16 {
    script.status.filter(|s| *s < 400).unwrap_or(200)
}
