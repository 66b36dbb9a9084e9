//! A tiny blocking HTTP/1.1 client that exposes what the tests check: chunk sizes, whether the
//! chunked body was terminated, and the raw bytes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// One response as read off the wire.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Sizes of the chunks of a chunked body.
    pub chunks: Vec<usize>,
    /// False when the connection ended before the body did.
    pub complete: bool,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("JSON body ({e}): {}", self.text()))
    }

    /// SSE events as (event name, data), split at blank lines (`\n\n` or `\r\n\r\n`).
    pub fn events(&self) -> Vec<(Option<String>, String)> {
        sse_events(&self.text())
    }

    /// The JSON of each `data:` event (not `[DONE]`).
    pub fn data(&self) -> Vec<Value> {
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

/// A keep-alive connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        Conn {
            stream,
            buf: Vec::new(),
            eof: false,
        }
    }

    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nhost: mock\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.write_all(&bytes).expect("write request");
        self.read_reply(method == "HEAD")
    }

    fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        let mut tmp = [0u8; 16 * 1024];
        match self.stream.read(&mut tmp) {
            Ok(0) | Err(_) => {
                self.eof = true;
                false
            }
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
        }
    }

    /// Bytes up to and including the next CRLF, or None at EOF.
    fn line(&mut self) -> Option<String> {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..pos + 2).collect();
                return Some(String::from_utf8_lossy(&line[..pos]).into_owned());
            }
            if !self.fill() {
                return None;
            }
        }
    }

    fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill() {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }

    fn read_reply(&mut self, head_only: bool) -> Reply {
        let status_line = self.line().expect("status line");
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let mut headers = Vec::new();
        while let Some(line) = self.line() {
            if line.is_empty() {
                break;
            }
            let (n, v) = line.split_once(':').expect("header line");
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
            chunks: Vec::new(),
            complete: true,
        };
        if head_only {
            return reply;
        }
        let chunked = reply
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"));
        if chunked {
            reply.complete = false;
            while let Some(size_line) = self.line() {
                let size = usize::from_str_radix(size_line.trim(), 16).expect("chunk size");
                if size == 0 {
                    reply.complete = self.line().is_some();
                    break;
                }
                let Some(data) = self.take(size + 2) else {
                    break;
                };
                reply.body.extend_from_slice(&data[..size]);
                reply.chunks.push(size);
            }
        } else if let Some(len) = reply.header("content-length") {
            let len: usize = len.parse().expect("content-length");
            match self.take(len) {
                Some(b) => reply.body = b,
                None => reply.complete = false,
            }
        } else {
            while self.fill() {}
            reply.body = std::mem::take(&mut self.buf);
        }
        reply
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
