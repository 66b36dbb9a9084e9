//! The facts of the last request body a filter of this thread wrote, for the next filter of
//! the same stream. On the native runtime the balancer rewrites the body's model and ai-proxy,
//! right after it on the same worker thread, would scan the new body again for the same
//! facts; the balancer derives them from its own scan instead and leaves them here.
//!
//! A memo answers only for a body with exactly the same bytes (the facts are a function of
//! the bytes alone), and only once; bodies over [`MAX_BODY`] are not kept.

use std::cell::RefCell;
use switchyard_protocol::openai_edit::RequestFacts;

/// Larger bodies are not kept (a memo nobody takes stays until the thread's next one).
pub const MAX_BODY: usize = 64 * 1024;

thread_local! {
    static LAST: RefCell<Option<(Vec<u8>, RequestFacts)>> = const { RefCell::new(None) };
}

/// Leave `facts`, the facts of `body`, for the next filter.
pub fn keep(body: Vec<u8>, facts: RequestFacts) {
    if body.len() > MAX_BODY {
        return;
    }
    LAST.with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            *l = Some((body, facts));
        }
    });
}

/// The facts left for exactly `body`, if any (taken: a memo answers once).
pub fn take(body: &[u8]) -> Option<RequestFacts> {
    LAST.with(|l| {
        let mut l = l.try_borrow_mut().ok()?;
        let (kept, _) = l.as_ref()?;
        if kept.as_slice() != body {
            return None;
        }
        l.take().map(|(_, facts)| facts)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(model: &str) -> RequestFacts {
        RequestFacts {
            model: Some(model.into()),
            stream: true,
            include_usage: false,
            model_spans: std::iter::once(9..14).collect(),
        }
    }

    #[test]
    fn answers_once_and_only_for_the_same_bytes() {
        keep(b"{\"model\":\"qwen\"}".to_vec(), facts("qwen"));
        assert_eq!(take(b"{\"model\":\"qwer\"}"), None);
        assert_eq!(take(b"{\"model\":\"qwen\"}"), Some(facts("qwen")));
        assert_eq!(take(b"{\"model\":\"qwen\"}"), None);
    }

    #[test]
    fn large_bodies_are_not_kept() {
        let body = vec![b' '; MAX_BODY + 1];
        keep(body.clone(), facts("x"));
        assert_eq!(take(&body), None);
    }
}
