//! Two stream converters in a row: vendor -> OpenAI chat chunks -> the client's protocol
//! (e.g. Gemini -> chat -> Responses).

use crate::stream::{StreamConverter, Usage};

/// Feeds `first`'s output to `second`. Usage is `first`'s: the vendor's own counts.
#[derive(Debug)]
pub struct Chain<A, B> {
    pub first: A,
    pub second: B,
}

impl<A, B> Chain<A, B> {
    pub fn new(first: A, second: B) -> Self {
        Chain { first, second }
    }
}

impl<A: StreamConverter, B: StreamConverter> StreamConverter for Chain<A, B> {
    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mid = self.first.push(chunk);
        self.second.push(&mid)
    }

    fn finish(&mut self) -> Vec<u8> {
        let mid = self.first.finish();
        let mut out = self.second.push(&mid);
        out.extend(self.second.finish());
        out
    }

    fn usage(&self) -> Option<Usage> {
        self.first.usage().or_else(|| self.second.usage())
    }
}
