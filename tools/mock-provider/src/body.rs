//! The response body: a whole buffer, or a stream of pieces with delays, forced flushes and an
//! optional abrupt end.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

use crate::script::Script;
use crate::sse::Events;

/// A response body. Whole bodies get a `content-length`; streams are sent chunked, one chunk
/// per piece.
pub(crate) struct MockBody {
    pieces: VecDeque<Piece>,
    /// Pause before each piece marked `delay_before`.
    delay: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    /// Return `Pending` once after each piece so that hyper flushes it on its own.
    flush_each: bool,
    must_yield: bool,
    /// End with an error instead of the stream terminator: hyper then closes the connection.
    abort: bool,
    exact_len: Option<u64>,
}

struct Piece {
    data: Bytes,
    delay_before: bool,
}

/// How a stream is paced and cut, from the script.
pub(crate) struct Pacing {
    pub delay: Duration,
    pub split_bytes: Option<usize>,
    pub drop_after_events: Option<usize>,
}

impl Pacing {
    pub(crate) fn from_script(s: &Script) -> Self {
        Pacing {
            delay: Duration::from_millis(s.chunk_delay_ms),
            split_bytes: s.split_bytes,
            drop_after_events: s.drop_after_events,
        }
    }
}

impl MockBody {
    /// A whole body with a known length.
    pub(crate) fn full(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        let exact_len = Some(data.len() as u64);
        let pieces = if data.is_empty() {
            VecDeque::new()
        } else {
            VecDeque::from([Piece {
                data,
                delay_before: false,
            }])
        };
        MockBody {
            pieces,
            delay: Duration::ZERO,
            sleep: None,
            flush_each: false,
            must_yield: false,
            abort: false,
            exact_len,
        }
    }

    /// A streamed body of `events`, paced and cut as `pacing` says.
    pub(crate) fn stream(events: Events, pacing: &Pacing) -> Self {
        let (buf, mut ends) = events.into_parts();
        let mut bytes = Bytes::from(buf);
        let abort = pacing.drop_after_events.is_some();
        if let Some(n) = pacing.drop_after_events {
            if n < ends.len() {
                let cut = n.checked_sub(1).and_then(|i| ends.get(i)).copied();
                bytes.truncate(cut.unwrap_or(0));
                ends.truncate(n);
            }
        }
        let len = bytes.len();
        // Start offsets of the events after the first: the places where a delay belongs.
        let starts: Vec<usize> = ends.iter().copied().filter(|&e| e < len).collect();
        let mut pieces = VecDeque::new();
        let mut flush_each = false;
        if let Some(n) = pacing.split_bytes {
            let n = n.max(1);
            flush_each = true;
            let mut next_start = 0;
            let mut off = 0;
            while off < len {
                let end = (off + n).min(len);
                let mut delay_before = false;
                while let Some(&s) = starts.get(next_start) {
                    if s >= end {
                        break;
                    }
                    delay_before = true;
                    next_start += 1;
                }
                pieces.push_back(Piece {
                    data: bytes.slice(off..end),
                    delay_before,
                });
                off = end;
            }
        } else if !pacing.delay.is_zero() {
            let mut start = 0;
            for &end in &ends {
                if end > start && end <= len {
                    pieces.push_back(Piece {
                        data: bytes.slice(start..end),
                        delay_before: start > 0,
                    });
                }
                start = end;
            }
        } else if len > 0 {
            pieces.push_back(Piece {
                data: bytes,
                delay_before: false,
            });
        }
        MockBody {
            pieces,
            delay: pacing.delay,
            sleep: None,
            flush_each,
            must_yield: false,
            abort,
            exact_len: None,
        }
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        loop {
            if let Some(sleep) = this.sleep.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                this.sleep = None;
            }
            if this.must_yield {
                // Returning Pending makes hyper write out what it buffered before asking again.
                this.must_yield = false;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let delay_first = match this.pieces.front_mut() {
                None if this.abort => {
                    this.abort = false;
                    return Poll::Ready(Some(Err(std::io::Error::other(
                        "mock-provider: connection dropped by script (drop_after_events)",
                    ))));
                }
                None => return Poll::Ready(None),
                Some(p) if p.delay_before && !this.delay.is_zero() => {
                    p.delay_before = false;
                    true
                }
                Some(_) => false,
            };
            if delay_first {
                this.sleep = Some(Box::pin(tokio::time::sleep(this.delay)));
                continue;
            }
            if let Some(piece) = this.pieces.pop_front() {
                this.must_yield = this.flush_each || (this.abort && this.pieces.is_empty());
                return Poll::Ready(Some(Ok(Frame::data(piece.data))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty() && !self.abort && self.sleep.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact_len {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
