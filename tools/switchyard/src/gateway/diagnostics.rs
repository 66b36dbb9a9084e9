//! Problems found in a config, each at a line and a field, and YAML errors made into one.

use std::fmt;

/// One problem found in a config, at a line (0: no line, e.g. a missing section).
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub line: u64,
    pub field: String,
    pub message: String,
}

impl Diagnostic {
    pub fn new(line: u64, field: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            line,
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Problems in one file; displays as one `file:line: field: message` per problem.
#[derive(Debug, Clone, thiserror::Error)]
pub struct GatewayError {
    pub file: String,
    pub problems: Vec<Diagnostic>,
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if d.line > 0 {
                write!(f, "{}:{}: ", self.file, d.line)?;
            } else {
                write!(f, "{}: ", self.file)?;
            }
            if d.field.is_empty() {
                write!(f, "{}", d.message)?;
            } else {
                write!(f, "{}: {}", d.field, d.message)?;
            }
        }
        Ok(())
    }
}

/// serde-saphyr's message without its location prefix and source snippet; the field is the
/// key written on that line when the message does not name one itself.
pub(super) fn yaml_error(e: &serde_saphyr::Error, text: &str) -> Diagnostic {
    let shown = e.to_string();
    let mut msg = shown.lines().next().unwrap_or_default().trim();
    msg = msg.strip_prefix("error: ").unwrap_or(msg);
    if let Some(rest) = msg.strip_prefix("line ") {
        if let Some((_, after)) = rest.split_once(": ") {
            msg = after;
        }
    }
    let line = e.location().map(|l| l.line()).unwrap_or(0);
    let field = if msg.contains('`') {
        String::new()
    } else {
        line_key(text, line).unwrap_or_default()
    };
    Diagnostic::new(line, field, msg)
}

/// The mapping key on a (1-based) line, e.g. `weight` in `    weight: abc`.
fn line_key(text: &str, line: u64) -> Option<String> {
    let l = text
        .lines()
        .nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let l = l.trim_start().trim_start_matches(['-', ' ', '{']);
    let (key, _) = l.split_once(':')?;
    let key = key.trim();
    (!key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
    .then(|| key.to_string())
}
