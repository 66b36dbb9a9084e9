//! The answer the mock gives, derived from the request and the script, shared by all vendors.

use crate::script::{Script, ScriptToolCall};

/// What the request says, reduced to what the answer needs.
#[derive(Default)]
pub(crate) struct Prompt {
    /// Text of the last user turn (its text parts joined by spaces).
    pub last_user: String,
    /// Words of all message text, the mock's prompt token count.
    pub words: u64,
}

impl Prompt {
    /// Count the words of one piece of message text.
    pub(crate) fn count(&mut self, text: &str) {
        self.words += count_words(text);
    }
}

/// Why the answer ended, in vendor-neutral terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Finish {
    Stop,
    Length,
    ToolCalls,
}

/// The answer with consistent token counts; the same for a plain and a streamed response.
pub(crate) struct Answer<'s> {
    /// Answer text; empty when the answer is only tool calls.
    pub text: String,
    pub tool_calls: &'s [ScriptToolCall],
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub finish: Finish,
}

/// Longest prefix of the user's text quoted in the default answer, in characters.
const QUOTE_CHARS: usize = 40;
/// Most content chunks `Script::events` may ask for.
const MAX_EVENTS: usize = 100_000;

impl<'s> Answer<'s> {
    /// The answer to `prompt` under `script`; `max_tokens` truncates a text answer (by words)
    /// and makes it finish with `Length`.
    pub(crate) fn new(prompt: &Prompt, script: &'s Script, max_tokens: Option<u64>) -> Self {
        let tool_calls = script.tool_calls.as_slice();
        let mut text = match (&script.reply_text, tool_calls.is_empty()) {
            (Some(t), _) => t.clone(),
            (None, true) => {
                let quote: String = collapse_whitespace(&prompt.last_user)
                    .chars()
                    .take(QUOTE_CHARS)
                    .collect();
                format!("Mock answer to: {}", quote.trim_end())
            }
            (None, false) => String::new(),
        };
        let mut finish = if tool_calls.is_empty() {
            Finish::Stop
        } else {
            Finish::ToolCalls
        };
        let mut completion_tokens = count_words(&text)
            + tool_calls
                .iter()
                .map(|c| count_words(&c.name) + count_words(&c.arguments))
                .sum::<u64>();
        if let Some(max) = max_tokens.filter(|_| tool_calls.is_empty()) {
            if completion_tokens > max {
                let limit = usize::try_from(max).unwrap_or(usize::MAX);
                text = text
                    .split_whitespace()
                    .take(limit)
                    .collect::<Vec<_>>()
                    .join(" ");
                completion_tokens = max;
                finish = Finish::Length;
            }
        }
        Answer {
            text,
            tool_calls,
            prompt_tokens: prompt.words.max(1),
            completion_tokens,
            finish,
        }
    }

    pub(crate) fn total_tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }

    /// The text cut into stream chunks: one per word (with its trailing space), or `events`
    /// even pieces. Concatenated they give `text` back.
    pub(crate) fn text_chunks(&self, events: Option<usize>) -> Vec<&str> {
        match events {
            Some(n) => even_pieces(&self.text, n.clamp(1, MAX_EVENTS)),
            None => word_pieces(&self.text),
        }
    }
}

/// Words as the mock counts tokens.
pub(crate) fn count_words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `"a b  c"` -> `["a ", "b  ", "c"]`.
fn word_pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut after_word = false;
    let mut in_gap = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            in_gap = after_word;
        } else {
            if in_gap {
                pieces.extend(text.get(start..i));
                start = i;
                in_gap = false;
            }
            after_word = true;
        }
    }
    if start < text.len() {
        pieces.extend(text.get(start..));
    }
    pieces
}

/// `text` cut into `n` pieces of (nearly) equal numbers of characters; some may be empty.
pub(crate) fn even_pieces(text: &str, n: usize) -> Vec<&str> {
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect();
    let chars = bounds.len() - 1;
    (0..n)
        .map(|k| {
            let a = bounds.get(k * chars / n).copied().unwrap_or(text.len());
            let b = bounds
                .get((k + 1) * chars / n)
                .copied()
                .unwrap_or(text.len());
            text.get(a..b).unwrap_or("")
        })
        .collect()
}

/// Tool-call arguments cut into up to three fragments, as vendors stream them.
pub(crate) fn argument_fragments(arguments: &str) -> Vec<&str> {
    even_pieces(arguments, 3)
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect()
}

/// A deterministic unit vector of `dims` floats derived from `seed` (FNV-1a, then splitmix64).
pub(crate) fn embedding(seed: &[u8], dims: usize) -> Vec<f32> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in seed {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let raw: Vec<f64> = (0..dims as u64)
        .map(|i| {
            let mut z = h.wrapping_add(i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect();
    let norm = raw
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    raw.iter().map(|x| (x / norm) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(text: &str) -> Prompt {
        let mut p = Prompt {
            last_user: text.to_owned(),
            ..Prompt::default()
        };
        p.count(text);
        p
    }

    #[test]
    fn default_answer_quotes_the_user() {
        let s = Script::default();
        let a = Answer::new(
            &prompt("  Hello\n there, how are you doing today my dear old friend?"),
            &s,
            None,
        );
        assert_eq!(
            a.text,
            "Mock answer to: Hello there, how are you doing today my"
        );
        assert_eq!(a.completion_tokens, 11);
        assert_eq!(a.prompt_tokens, 11);
        assert_eq!(a.finish, Finish::Stop);
        assert_eq!(a.text_chunks(None).concat(), a.text);
        assert_eq!(a.text_chunks(None).len(), 11);
        assert_eq!(a.text_chunks(Some(5)).concat(), a.text);
        assert_eq!(a.text_chunks(Some(500)).len(), 500);
    }

    #[test]
    fn max_tokens_truncates() {
        let s = Script::default();
        let a = Answer::new(&prompt("hi"), &s, Some(2));
        assert_eq!(a.text, "Mock answer");
        assert_eq!(a.completion_tokens, 2);
        assert_eq!(a.finish, Finish::Length);
    }

    #[test]
    fn pieces_keep_multibyte_characters_whole() {
        assert_eq!(word_pieces("é ü  x"), vec!["é ", "ü  ", "x"]);
        assert_eq!(even_pieces("éüx", 2), vec!["é", "üx"]);
        assert_eq!(argument_fragments("{}"), vec!["{", "}"]);
        assert!(word_pieces("").is_empty());
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embedding(b"hello", 8);
        assert_eq!(a, embedding(b"hello", 8));
        assert_ne!(a, embedding(b"hellp", 8));
        let norm: f32 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }
}
