//! RESP (Redis serialization protocol) for Higress's Redis host calls: the host takes a
//! RESP-encoded command and hands back the raw RESP reply. Pure encode/decode.

/// Encode a command as a RESP array of bulk strings.
pub fn encode_command<S: AsRef<[u8]>>(args: &[S]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// `MGET k1 k2 …`.
pub fn mget(keys: &[String]) -> Vec<u8> {
    let mut args: Vec<&[u8]> = vec![b"MGET"];
    args.extend(keys.iter().map(|k| k.as_bytes()));
    encode_command(&args)
}

/// `AUTH [user] pass`.
pub fn auth(user: Option<&str>, pass: &str) -> Vec<u8> {
    match user {
        Some(u) if !u.is_empty() => encode_command(&["AUTH", u, pass]),
        _ => encode_command(&["AUTH", pass]),
    }
}

/// `SELECT db`.
pub fn select(db: u32) -> Vec<u8> {
    encode_command(&["SELECT".to_string(), db.to_string()])
}

/// A decoded RESP value.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// Nesting bound: a hostile reply cannot recurse deeply.
const MAX_DEPTH: usize = 8;

/// Decode one reply from the start of `input`; returns it and the bytes consumed, or `None`
/// when the input is malformed or incomplete.
pub fn decode(input: &[u8]) -> Option<(Reply, usize)> {
    decode_at(input, 0)
}

fn decode_at(input: &[u8], depth: usize) -> Option<(Reply, usize)> {
    if depth > MAX_DEPTH {
        return None;
    }
    let (&tag, rest) = input.split_first()?;
    let (line, after_line) = read_line(rest)?;
    let head = 1 + after_line;
    let text = std::str::from_utf8(line).ok()?;
    match tag {
        b'+' => Some((Reply::Simple(text.to_string()), head)),
        b'-' => Some((Reply::Error(text.to_string()), head)),
        b':' => Some((Reply::Integer(text.parse().ok()?), head)),
        b'$' => {
            let n: i64 = text.parse().ok()?;
            if n < 0 {
                return Some((Reply::Bulk(None), head));
            }
            let n = usize::try_from(n).ok()?;
            let body = input.get(head..head.checked_add(n)?)?;
            if input.get(head + n..head + n + 2)? != b"\r\n" {
                return None;
            }
            Some((Reply::Bulk(Some(body.to_vec())), head + n + 2))
        }
        b'*' => {
            let n: i64 = text.parse().ok()?;
            if n < 0 {
                return Some((Reply::Array(None), head));
            }
            let n = usize::try_from(n).ok()?;
            // Each element takes at least 3 bytes; refuse counts the input cannot hold.
            if n > input.len() / 3 + 1 {
                return None;
            }
            let mut items = Vec::with_capacity(n);
            let mut at = head;
            for _ in 0..n {
                let (item, used) = decode_at(input.get(at..)?, depth + 1)?;
                items.push(item);
                at += used;
            }
            Some((Reply::Array(Some(items)), at))
        }
        _ => None,
    }
}

fn read_line(s: &[u8]) -> Option<(&[u8], usize)> {
    let end = s.windows(2).position(|w| w == b"\r\n")?;
    Some((s.get(..end)?, end + 2))
}

/// Decode an `MGET` reply into numbers (missing or non-numeric keys are `None`).
pub fn decode_mget(input: &[u8]) -> Option<Vec<Option<f64>>> {
    match decode(input)?.0 {
        Reply::Array(Some(items)) => Some(
            items
                .iter()
                .map(|r| match r {
                    Reply::Bulk(Some(b)) => std::str::from_utf8(b)
                        .ok()
                        .and_then(|s| s.trim().parse::<f64>().ok())
                        .filter(|x| x.is_finite()),
                    Reply::Integer(i) => Some(*i as f64),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands() {
        assert_eq!(
            mget(&["ai_metric:qwen_1".into(), "k".into()]),
            b"*3\r\n$4\r\nMGET\r\n$16\r\nai_metric:qwen_1\r\n$1\r\nk\r\n"
        );
        assert_eq!(auth(None, "pw"), b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n");
        assert_eq!(
            auth(Some("u"), "pw"),
            b"*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$2\r\npw\r\n"
        );
        assert_eq!(select(3), b"*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n");
    }

    #[test]
    fn decodes_replies() {
        assert_eq!(
            decode_mget(b"*3\r\n$2\r\n10\r\n$-1\r\n$1\r\nx\r\n"),
            Some(vec![Some(10.0), None, None])
        );
        assert_eq!(decode(b"+OK\r\n"), Some((Reply::Simple("OK".into()), 5)));
        assert_eq!(
            decode(b"-ERR no\r\n").map(|r| r.0),
            Some(Reply::Error("ERR no".into()))
        );
        assert_eq!(decode(b":42\r\n").map(|r| r.0), Some(Reply::Integer(42)));
        assert_eq!(decode(b"*-1\r\n").map(|r| r.0), Some(Reply::Array(None)));
        assert_eq!(decode_mget(b"-ERR wrong\r\n"), None);
    }

    #[test]
    fn malformed_input_is_refused_not_panicked() {
        for bad in [
            &b""[..],
            b"*",
            b"*2\r\n$1\r\na\r\n",
            b"$5\r\nab\r\n",
            b"$3\r\nabcXY",
            b"*99999999999\r\n",
            b"$-9999999999999999999999\r\n",
            b"?x\r\n",
            b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
        ] {
            assert!(decode(bad).is_none(), "{bad:?}");
        }
    }
}
