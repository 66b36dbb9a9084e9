//! Requests to the mock through the raw client (`raw_http`), and replies with what the tests
//! check: chunk sizes, whether the chunked body was terminated, and the raw bytes.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

/// One response as read off the wire (raw-http's), with [`ReplyExt`]'s views of its body.
pub use raw_http::Response as Reply;

/// JSON and SSE views of a [`Reply`] body.
pub trait ReplyExt {
    fn json(&self) -> Value;
    /// SSE events as (event name, data), split at blank lines (`\n\n` or `\r\n\r\n`).
    fn events(&self) -> Vec<(Option<String>, String)>;
    /// The JSON of each `data:` event (not `[DONE]`).
    fn data(&self) -> Vec<Value>;
}

impl ReplyExt for Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("JSON body ({e}): {}", self.text()))
    }

    fn events(&self) -> Vec<(Option<String>, String)> {
        sse_events(&self.text())
    }

    fn data(&self) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|(_, d)| d != "[DONE]")
            .map(|(_, d)| serde_json::from_str(&d).expect("JSON data"))
            .collect()
    }
}

pub fn sse_events(text: &str) -> Vec<(Option<String>, String)> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = Some(name.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push(d);
                }
            }
            (event, data.join("\n"))
        })
        .collect()
}

/// A keep-alive connection (the raw client: the tests check framing).
pub struct Conn(raw_http::Conn);

impl Conn {
    pub fn connect(addr: SocketAddr) -> Conn {
        Conn(raw_http::Conn::connect(addr, Duration::from_secs(20)).expect("connect"))
    }

    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let len = body.len().to_string();
        let mut all = vec![("host", "mock"), ("content-length", len.as_str())];
        all.extend_from_slice(headers);
        let head = raw_http::request_head(method, path, &all);
        self.0.send(&head, body).expect("write request");
        self.0.response(method == "HEAD").expect("status line")
    }
}

/// POST `body` as JSON on a new connection.
pub fn post(addr: SocketAddr, path: &str, body: &Value) -> Reply {
    post_with(addr, path, &[], body)
}

/// POST `body` as JSON with extra headers on a new connection.
pub fn post_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    Conn::connect(addr).send("POST", path, &all, body.to_string().as_bytes())
}

/// POST raw bytes on a new connection.
pub fn post_raw(addr: SocketAddr, path: &str, body: &[u8]) -> Reply {
    Conn::connect(addr).send("POST", path, &[], body)
}

/// GET on a new connection.
pub fn get(addr: SocketAddr, path: &str) -> Reply {
    Conn::connect(addr).send("GET", path, &[], b"")
}
