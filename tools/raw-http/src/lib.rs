//! The one raw HTTP/1.1 client, for the tests and tools that need byte-level control: the exact
//! request bytes, a body written in separately flushed pieces, a client that hangs up
//! mid-answer, and responses read as they arrive (chunk sizes, whether a chunked body ended
//! with its terminator, whether the peer stalled). Everything else uses a maintained client
//! (`ureq`).
//!
//! No dependencies, no panics: a read that fails ends the response and is recorded in it, so
//! each caller decides whether a stall or a cut connection is a failure.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The zero-size chunk and empty trailer that end a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// A request head: the request line, `headers` in order, and the blank line. Nothing is added.
pub fn request_head(method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// `piece` framed as one chunk of a chunked body.
pub fn chunk(piece: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", piece.len()).into_bytes();
    out.extend_from_slice(piece);
    out.extend_from_slice(b"\r\n");
    out
}

/// One response as read off the wire.
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// 0 when the status line is not a status line.
    pub status: u16,
    /// Names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// Sizes of the chunks of a chunked body, in order.
    pub chunks: Vec<usize>,
    /// Whether the body ended where its framing says (chunked terminator, `content-length`,
    /// or the peer closing a body framed by the close) rather than by a cut or a stall.
    pub complete: bool,
    /// The read error that ended the response early, if any.
    pub error: Option<ErrorKind>,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether reading stopped because the peer sent nothing within the read timeout.
    pub fn hung(&self) -> bool {
        matches!(
            self.error,
            Some(ErrorKind::WouldBlock | ErrorKind::TimedOut)
        )
    }
}

/// A connection; it may carry several requests one after another (keep-alive).
pub struct Conn {
    stream: TcpStream,
    /// Bytes read but not consumed yet.
    buf: Vec<u8>,
    eof: bool,
    error: Option<ErrorKind>,
}

impl Conn {
    /// Connect; every read waits at most `read_timeout`.
    pub fn connect(addr: SocketAddr, read_timeout: Duration) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(read_timeout))?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
            eof: false,
            error: None,
        })
    }

    /// Write `bytes` and flush them, so that they leave in a write of their own.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Write a whole request: `head` (see [`request_head`]) and `body` in one write.
    pub fn send(&mut self, head: &str, body: &[u8]) -> io::Result<()> {
        let mut bytes = head.as_bytes().to_vec();
        bytes.extend_from_slice(body);
        self.write(&bytes)
    }

    /// Read the next whole response. `head_only` for the answer to a HEAD request.
    pub fn response(&mut self, head_only: bool) -> io::Result<Response> {
        let mut r = self.head()?;
        if !head_only {
            self.body(&mut r);
        }
        Ok(r)
    }

    /// Read the status line and the headers; an error when not even a status line arrives.
    pub fn head(&mut self) -> io::Result<Response> {
        let Some(status_line) = self.line() else {
            return Err(io::Error::from(
                self.error.unwrap_or(ErrorKind::UnexpectedEof),
            ));
        };
        let mut r = Response {
            status: status_line
                .split(' ')
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0),
            complete: true,
            ..Response::default()
        };
        loop {
            match self.line() {
                None => {
                    r.complete = false;
                    break;
                }
                Some(l) if l.is_empty() => break,
                Some(l) => {
                    if let Some((k, v)) = l.split_once(':') {
                        r.headers
                            .push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                    }
                }
            }
        }
        r.error = self.error;
        Ok(r)
    }

    /// Read the body of the response whose head is `r`, as its framing says.
    pub fn body(&mut self, r: &mut Response) {
        if !r.complete || matches!(r.status, 100..=199 | 204 | 304) {
            return;
        }
        let chunked = r
            .header("transfer-encoding")
            .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
        let length = r.header("content-length").and_then(|n| n.parse().ok());
        if chunked {
            r.complete = self.chunked_body(r);
        } else if let Some(n) = length {
            match self.take(n) {
                Some(b) => r.body = b,
                None => {
                    r.body = std::mem::take(&mut self.buf);
                    r.complete = false;
                }
            }
        } else {
            while self.fill() {}
            r.body = std::mem::take(&mut self.buf);
            r.complete = self.error.is_none();
        }
        r.error = self.error;
    }

    /// Whether the chunked body ended with its terminator.
    fn chunked_body(&mut self, r: &mut Response) -> bool {
        while let Some(size) = self.line() {
            let Ok(n) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            else {
                return false;
            };
            if n == 0 {
                // Trailers, if any, up to the blank line.
                while let Some(l) = self.line() {
                    if l.is_empty() {
                        return true;
                    }
                }
                return false;
            }
            let Some(data) = self.take(n + 2) else {
                return false;
            };
            r.body.extend_from_slice(data.get(..n).unwrap_or_default());
            r.chunks.push(n);
        }
        false
    }

    /// The next bytes as they come, at most `max` (what is buffered, else one read); empty at
    /// the end of the stream.
    pub fn some_bytes(&mut self, max: usize) -> io::Result<Vec<u8>> {
        if self.buf.is_empty() && !self.fill() {
            if let Some(e) = self.error {
                return Err(io::Error::from(e));
            }
        }
        let n = max.min(self.buf.len());
        Ok(self.buf.drain(..n).collect())
    }

    /// Read and drop whatever else comes until the peer closes the connection (or a read
    /// fails), so that the peer, not this client, ends it.
    pub fn drain(&mut self) {
        self.buf.clear();
        while self.fill() {
            self.buf.clear();
        }
    }

    /// Read once more into the buffer; false at the end of the stream or on an error.
    fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        let mut tmp = [0u8; 16 * 1024];
        match self.stream.read(&mut tmp) {
            Ok(0) => {
                self.eof = true;
                false
            }
            Ok(n) => {
                self.buf.extend_from_slice(tmp.get(..n).unwrap_or_default());
                true
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => true,
            Err(e) => {
                self.eof = true;
                self.error = Some(e.kind());
                false
            }
        }
    }

    /// The next line without its CRLF; `None` when the stream ends first.
    fn line(&mut self) -> Option<String> {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..pos + 2).take(pos).collect();
                return Some(String::from_utf8_lossy(&line).into_owned());
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// The next `n` bytes; `None` when the stream ends first (what came stays buffered).
    fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill() {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }
}

/// Send `head` and `body` on a new connection and read the whole response.
pub fn exchange(
    addr: SocketAddr,
    read_timeout: Duration,
    head: &str,
    body: &[u8],
) -> io::Result<Response> {
    let mut c = Conn::connect(addr, read_timeout)?;
    c.send(head, body)?;
    c.response(head.starts_with("HEAD "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server that reads one request head and answers `reply`, then closes.
    fn serve(reply: &'static [u8]) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut seen = Vec::new();
            let mut b = [0u8; 1024];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut b).unwrap();
                seen.extend_from_slice(&b[..n]);
            }
            s.write_all(reply).unwrap();
        });
        addr
    }

    fn get(reply: &'static [u8]) -> Response {
        let head = request_head("GET", "/", &[("host", "x")]);
        exchange(serve(reply), Duration::from_secs(5), &head, b"").unwrap()
    }

    #[test]
    fn chunked_bodies_are_decoded_and_their_end_seen() {
        let r = get(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
        assert_eq!((r.status, r.text().as_str()), (200, "hello world"));
        assert_eq!(r.chunks, [5, 6]);
        assert!(r.complete);
        let cut = get(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n");
        assert_eq!(cut.text(), "hello");
        assert!(!cut.complete);
    }

    #[test]
    fn length_and_close_framed_bodies() {
        let r = get(b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\nX-A: b\r\n\r\nokEXTRA");
        assert_eq!((r.status, r.text().as_str()), (404, "ok"));
        assert_eq!(r.header("x-a"), Some("b"));
        let short = get(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nok");
        assert!(!short.complete);
        let closed = get(b"HTTP/1.1 200 OK\r\n\r\nuntil close");
        assert_eq!(closed.text(), "until close");
        assert!(closed.complete);
    }

    #[test]
    fn frames_requests() {
        assert_eq!(
            request_head("POST", "/p", &[("a", "1")]),
            "POST /p HTTP/1.1\r\na: 1\r\n\r\n"
        );
        assert_eq!(chunk(b"abc"), b"3\r\nabc\r\n");
    }
}
