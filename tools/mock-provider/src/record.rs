//! Requests as the mock received them.

use serde::Serialize;

/// One request the mock received (admin requests, `/health` and `/metrics` are not recorded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Method, e.g. `POST`.
    pub method: String,
    /// Path and query, e.g. `/openai/deployments/d/chat/completions?api-version=2024-10-21`.
    pub path: String,
    /// Headers in arrival order, names in lowercase, values lossily as UTF-8.
    pub headers: Vec<(String, String)>,
    /// The body as received.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    pub(crate) fn from_parts(parts: &hyper::http::request::Parts, body: &[u8]) -> Self {
        RecordedRequest {
            method: parts.method.as_str().to_owned(),
            path: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        }
    }
}

/// The JSON form served by `GET /__mock/requests`.
#[derive(Serialize)]
pub(crate) struct RecordedRequestJson<'a> {
    method: &'a str,
    path: &'a str,
    headers: &'a [(String, String)],
    body: std::borrow::Cow<'a, str>,
}

impl<'a> From<&'a RecordedRequest> for RecordedRequestJson<'a> {
    fn from(r: &'a RecordedRequest) -> Self {
        RecordedRequestJson {
            method: &r.method,
            path: &r.path,
            headers: &r.headers,
            body: String::from_utf8_lossy(&r.body),
        }
    }
}
