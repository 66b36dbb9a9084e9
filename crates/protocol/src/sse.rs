//! Incremental Server-Sent Events parsing and writing.
//!
//! Vendors' streams reach a proxy in arbitrary pieces: an event, a line, a `data:` prefix or a
//! multi-byte UTF-8 character may be split across body callbacks. [`SseParser`] keeps the
//! incomplete tail between calls, accepts `\n`, `\r\n` and `\r` line ends (also a `\r\n` split
//! between two calls), skips comments, joins multi-line `data`, and never panics.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, if the event had one.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental parser; feed it bytes as they arrive.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` at the start of the next one belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    /// Strings of events handed back with [`SseParser::recycle`], reused for the next events'
    /// names and data (a stream of short events then allocates nothing per event).
    spare: Vec<String>,
}

/// Strings kept for reuse, and the largest capacity kept (one huge event must not pin its
/// buffer for the rest of the stream).
const MAX_SPARE: usize = 16;
const MAX_SPARE_CAPACITY: usize = 64 * 1024;

/// Longest line kept while waiting for its end; a longer one is a broken stream, dropped so a
/// hostile upstream cannot grow memory without bound.
const MAX_LINE: usize = 16 * 1024 * 1024;

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse `chunk`, appending every completed event to `out`.
    pub fn push_into(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) {
        let mut rest = chunk;
        if rest.is_empty() {
            return;
        }
        if self.after_cr {
            self.after_cr = false;
            if let Some(stripped) = rest.strip_prefix(b"\n") {
                rest = stripped;
            }
        }
        while let Some(pos) = line_end(rest) {
            let (head, tail) = rest.split_at(pos);
            let is_cr = tail.first() == Some(&b'\r');
            let mut tail = tail.get(1..).unwrap_or_default();
            if is_cr {
                match tail.first() {
                    Some(b'\n') => tail = tail.get(1..).unwrap_or_default(),
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            if self.line.is_empty() {
                self.line_done(head, out);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(head);
                self.line_done(&line, out);
            }
            rest = tail;
        }
        if self.line.len() + rest.len() > MAX_LINE {
            self.line.clear();
        } else {
            self.line.extend_from_slice(rest);
        }
    }

    /// Take back events `push_into` produced (emptying `events`): their strings serve the
    /// next events.
    pub fn recycle(&mut self, events: &mut Vec<SseEvent>) {
        for e in events.drain(..) {
            for mut text in e.event.into_iter().chain([e.data]) {
                if self.spare.len() < MAX_SPARE && text.capacity() <= MAX_SPARE_CAPACITY {
                    text.clear();
                    self.spare.push(text);
                }
            }
        }
    }

    /// Parse `chunk` and return the completed events.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        self.push_into(chunk, &mut out);
        out
    }

    /// The stream ended: an unterminated last event is dispatched too (vendors sometimes omit
    /// the final blank line).
    pub fn finish(&mut self) -> Option<SseEvent> {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, &mut out);
        }
        self.dispatch(&mut out);
        out.pop()
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.first() == Some(&b':') {
            return;
        }
        let (field, value) = match line.iter().position(|&c| c == b':') {
            Some(p) => {
                let v = line.get(p + 1..).unwrap_or_default();
                (&line[..p], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                push_lossy(&mut self.data, value);
                self.has_data = true;
            }
            b"event" => {
                let mut name = match self.event.take() {
                    Some(mut old) => {
                        old.clear();
                        old
                    }
                    None => self.spare.pop().unwrap_or_default(),
                };
                push_lossy(&mut name, value);
                self.event = Some(name);
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if !self.has_data {
            return;
        }
        self.has_data = false;
        let next = self.spare.pop().unwrap_or_default();
        out.push(SseEvent {
            event,
            data: std::mem::replace(&mut self.data, next),
        });
    }
}

/// Append `bytes` as text, invalid UTF-8 replaced (the check alone for valid text).
fn push_lossy(out: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => out.push_str(text),
        Err(_) => out.push_str(&String::from_utf8_lossy(bytes)),
    }
}

/// The position of the first `\n` or `\r` in `bytes`: eight bytes at a time, since most of a
/// stream is long `data:` lines.
fn line_end(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // High bit set in each byte that is zero (and maybe in bytes above the first such one).
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in words.by_ref() {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let x = u64::from_le_bytes(w);
        let hit = zero(x ^ (ONES * u64::from(b'\n'))) | zero(x ^ (ONES * u64::from(b'\r')));
        if hit != 0 {
            // The lowest flagged byte is a true one (borrows only run upwards).
            return Some(at + (hit.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&c| c == b'\n' || c == b'\r')
        .map(|p| at + p)
}

/// Append one event in wire form: optional `event:` line, `data:` line(s), blank line.
pub fn write_event(out: &mut Vec<u8>, event: Option<&str>, data: &str) {
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::{line_end, SseEvent, SseParser};

    /// Recycled strings come back empty: the events after a recycle read as without one,
    /// at every split of the stream.
    #[test]
    fn recycled_strings_do_not_leak_into_later_events() {
        let wire: &[u8] = b"event: message_start\ndata: {\"a\":1}\n\ndata: x\ndata: y\n\n: c\nevent: e\ndata: long long long long\n\ndata: z\n\n";
        let whole = parse_all(&[wire]);
        for split in 0..=wire.len() {
            let mut p = SseParser::new();
            let mut got = Vec::new();
            let mut events = Vec::new();
            for piece in [&wire[..split], &wire[split..]] {
                p.push_into(piece, &mut events);
                got.extend(events.iter().cloned());
                p.recycle(&mut events);
                assert!(events.is_empty());
            }
            assert_eq!(got, whole, "split at {split}");
        }
    }

    #[test]
    fn line_end_finds_the_first_line_break_at_every_offset() {
        for len in 0..40 {
            for at in 0..=len {
                for brk in [b'\n', b'\r'] {
                    let mut bytes = vec![b'x'; len];
                    // Bytes that differ from a line break by one bit, and high bytes.
                    for (i, b) in bytes.iter_mut().enumerate() {
                        *b = [b'x', 0x0b, 0x0c, 0x8a, 0x0e, 0xff][i % 6];
                    }
                    let want = (at < len).then(|| {
                        bytes[at] = brk;
                        at
                    });
                    if let Some(after) = bytes.get_mut(at + 1) {
                        *after = b'\n';
                    }
                    assert_eq!(line_end(&bytes), want, "len {len} at {at}");
                }
            }
        }
    }
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.push_into(c, &mut out);
        }
        out.extend(p.finish());
        out
    }

    const STREAM: &[u8] =
        b": keep-alive\r\nevent: message_start\r\ndata: {\"a\":\"\xc3\xa9\"}\r\n\r\n\
data: one\ndata: two\n\nevent: ping\ndata: {}\r\rdata: [DONE]\n\n";

    #[test]
    fn parses_mixed_line_ends_comments_and_multiline_data() {
        let events = parse_all(&[STREAM]);
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: Some("message_start".into()),
                    data: "{\"a\":\"é\"}".into()
                },
                SseEvent {
                    event: None,
                    data: "one\ntwo".into()
                },
                SseEvent {
                    event: Some("ping".into()),
                    data: "{}".into()
                },
                SseEvent {
                    event: None,
                    data: "[DONE]".into()
                },
            ]
        );
    }

    #[test]
    fn every_split_gives_the_same_events() {
        let whole = parse_all(&[STREAM]);
        for i in 0..=STREAM.len() {
            for j in i..=STREAM.len() {
                let got = parse_all(&[&STREAM[..i], &STREAM[i..j], &STREAM[j..]]);
                assert_eq!(got, whole, "split at {i},{j}");
            }
        }
        let bytes: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(parse_all(&bytes), whole);
    }

    #[test]
    fn unterminated_last_event_is_dispatched_on_finish() {
        assert_eq!(
            parse_all(&[b"data: x"]),
            vec![SseEvent {
                event: None,
                data: "x".into()
            }]
        );
        assert!(parse_all(&[b"event: x\n\n"]).is_empty());
    }

    #[test]
    fn writer_round_trips() {
        let mut out = Vec::new();
        write_event(&mut out, Some("content_block_delta"), "{\"x\":1}");
        write_event(&mut out, None, "a\nb");
        assert_eq!(
            parse_all(&[&out]),
            vec![
                SseEvent {
                    event: Some("content_block_delta".into()),
                    data: "{\"x\":1}".into()
                },
                SseEvent {
                    event: None,
                    data: "a\nb".into()
                },
            ]
        );
    }
}
