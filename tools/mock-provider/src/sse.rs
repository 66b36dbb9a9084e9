//! Building a stream body as a list of events in one buffer.

use serde::Serialize;

/// A stream body under construction: all bytes in one buffer plus where each event ends, so
/// the body can later be cut at event boundaries (delays, drops) or anywhere (byte splits).
pub(crate) struct Events {
    buf: Vec<u8>,
    ends: Vec<usize>,
    /// Separator after each SSE event: `\n\n`, or `\r\n\r\n` as Gemini sends it.
    crlf: bool,
}

impl Events {
    /// An empty stream, for events written with [`Events::raw`].
    pub(crate) fn new() -> Self {
        Events {
            buf: Vec::with_capacity(2048),
            ends: Vec::with_capacity(16),
            crlf: false,
        }
    }

    /// SSE events ending in `\n\n`.
    pub(crate) fn sse() -> Self {
        Events::new()
    }

    /// SSE events ending in `\r\n\r\n`.
    pub(crate) fn sse_crlf() -> Self {
        Events {
            crlf: true,
            ..Events::new()
        }
    }

    fn separator(&mut self) {
        let sep: &[u8] = if self.crlf { b"\r\n\r\n" } else { b"\n\n" };
        self.buf.extend_from_slice(sep);
    }

    /// `data: <json><sep>`.
    pub(crate) fn data(&mut self, value: &impl Serialize) {
        self.buf.extend_from_slice(b"data: ");
        write_json(&mut self.buf, value);
        self.separator();
        self.end_event();
    }

    /// `data: <text><sep>`, e.g. `[DONE]`.
    pub(crate) fn data_text(&mut self, text: &str) {
        self.buf.extend_from_slice(b"data: ");
        self.buf.extend_from_slice(text.as_bytes());
        self.separator();
        self.end_event();
    }

    /// `event: <name>\ndata: <json><sep>` (Anthropic).
    pub(crate) fn named(&mut self, name: &str, value: &impl Serialize) {
        self.buf.extend_from_slice(b"event: ");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf
            .extend_from_slice(if self.crlf { b"\r\n" } else { b"\n" });
        self.data(value);
    }

    /// One event of exactly these bytes, written by `f`.
    pub(crate) fn raw(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        f(&mut self.buf);
        self.end_event();
    }

    /// Raw bytes, cut into events after each blank line (`\n\n` or `\r\n\r\n`).
    pub(crate) fn from_raw(body: &str) -> Self {
        let buf = body.as_bytes().to_vec();
        let mut ends: Vec<usize> = buf
            .windows(2)
            .enumerate()
            .filter(|(_, w)| *w == b"\n\n")
            .map(|(i, _)| i + 2)
            .collect();
        ends.extend(
            buf.windows(4)
                .enumerate()
                .filter(|(_, w)| *w == b"\r\n\r\n")
                .map(|(i, _)| i + 4),
        );
        ends.sort_unstable();
        ends.dedup();
        if ends.last() != Some(&buf.len()) && !buf.is_empty() {
            ends.push(buf.len());
        }
        Events {
            buf,
            ends,
            crlf: false,
        }
    }

    fn end_event(&mut self) {
        self.ends.push(self.buf.len());
    }

    /// The bytes and the end offset of each event.
    pub(crate) fn into_parts(self) -> (Vec<u8>, Vec<usize>) {
        (self.buf, self.ends)
    }
}

/// Serialize `value` as JSON onto `buf`.
pub(crate) fn write_json(buf: &mut Vec<u8>, value: &impl Serialize) {
    // Writing to a Vec cannot fail, and the values here have string keys only.
    let _ = serde_json::to_writer(buf, value);
}

/// `value` as a JSON byte vector.
pub(crate) fn to_json(value: &impl Serialize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    write_json(&mut buf, value);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_offsets() {
        let mut e = Events::sse();
        e.data(&serde_json::json!({"a": 1}));
        e.named("ping", &serde_json::json!({"type": "ping"}));
        e.data_text("[DONE]");
        let (buf, ends) = e.into_parts();
        let text = String::from_utf8_lossy(&buf);
        assert_eq!(
            text,
            "data: {\"a\":1}\n\nevent: ping\ndata: {\"type\":\"ping\"}\n\ndata: [DONE]\n\n"
        );
        assert_eq!(ends, vec![15, 50, 64]);
    }

    #[test]
    fn raw_is_cut_after_blank_lines() {
        let (_, ends) = Events::from_raw("data: 1\n\ndata: 2\r\n\r\ntail").into_parts();
        assert_eq!(ends, vec![9, 20, 24]);
        let (_, ends) = Events::from_raw("{}").into_parts();
        assert_eq!(ends, vec![2]);
    }
}
