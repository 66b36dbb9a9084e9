//! Counters summed in module memory and handed to Envoy in batches.
//!
//! A labelled counter update through the ABI costs Envoy about ten thousand instructions (it
//! interns every label value and looks the series up under a lock), and a request adds to three
//! or four of them. Here a stream adds to its worker's shard instead (a short, uncontended
//! lock and a scan of the few series in use), and the main thread hands the sums to Envoy
//! every [`FLUSH_PERIOD`] through the config-level counter call: one ABI call per series per
//! period, however many requests there were. Scrapes see a request's counts at most one
//! period (plus a main-thread wake-up) after the stream ended.
//!
//! Histograms cannot be summed: their samples still go to Envoy one by one, from the stream.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use switchyard_policy::stats::{self, Kind, METRICS};

/// How often the main thread hands the sums to Envoy.
pub const FLUSH_PERIOD: Duration = Duration::from_millis(100);

/// Shards, by worker index modulo this.
const SHARDS: usize = 32;
/// Series one shard keeps; a new series beyond that goes to Envoy directly.
const MAX_SERIES: usize = 512;
/// Flushes a series may stay at zero before it is forgotten.
const MAX_IDLE: u8 = 50;

struct Series {
    hash: u64,
    /// Index into [`METRICS`].
    metric: usize,
    /// Label values in the family's definition order.
    values: Vec<String>,
    delta: u64,
    idle: u8,
}

#[derive(Default)]
struct Shard {
    series: Vec<Series>,
}

fn shards() -> &'static [Mutex<Shard>] {
    static SHARDS_CELL: OnceLock<Vec<Mutex<Shard>>> = OnceLock::new();
    SHARDS_CELL.get_or_init(|| (0..SHARDS).map(|_| Mutex::default()).collect())
}

fn hash(metric: usize, values: &[&str]) -> u64 {
    // Eight bytes at a time (a multiply-rotate mix, as FxHash), each value closed by its
    // length so that ("ab", "") and ("a", "b") differ. Only compared within one shard.
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mix = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(K);
    let mut h = mix(0, metric as u64);
    for v in values {
        let mut words = v.as_bytes().chunks_exact(8);
        for w in words.by_ref() {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            h = mix(h, u64::from_le_bytes(b));
        }
        let mut b = [0u8; 8];
        let rest = words.remainder();
        if let Some(dst) = b.get_mut(..rest.len()) {
            dst.copy_from_slice(rest);
        }
        h = mix(mix(h, u64::from_le_bytes(b)), v.len() as u64);
    }
    h
}

/// The label values of `labels` in the order of `names` (an absent label is empty), or
/// `None` when a label is not one of `names`. Callers usually pass the labels in definition
/// order: that case is one comparison per label.
fn ordered<'a>(
    names: &[&str],
    labels: &[(&str, &'a str)],
    out: &mut [&'a str; 8],
) -> Option<usize> {
    let n = names.len();
    let slots = out.get_mut(..n)?;
    let in_order = labels.len() == n && labels.iter().zip(names).all(|((k, _), name)| k == name);
    if in_order {
        for (slot, (_, v)) in slots.iter_mut().zip(labels) {
            *slot = v;
        }
        return Some(n);
    }
    if labels.iter().any(|(k, _)| !names.contains(k)) {
        return None;
    }
    for (slot, name) in slots.iter_mut().zip(names) {
        *slot = labels
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| *v);
    }
    Some(n)
}

/// Add `n` to counter `metric{labels}` on behalf of worker `worker`. `false` when this does not
/// take it (not a declared counter, an undeclared label, a full shard): the caller then
/// updates Envoy directly.
pub fn add(worker: u32, metric: &str, labels: &[(&str, &str)], n: u64) -> bool {
    let Some((index, (_, _, names))) = METRICS
        .iter()
        .enumerate()
        .find(|(_, (name, kind, _))| *kind == Kind::Counter && *name == metric)
    else {
        return false;
    };
    let mut buf = [""; 8];
    let Some(len) = ordered(names, labels, &mut buf) else {
        return false;
    };
    let values = buf.get(..len).unwrap_or_default();
    let h = hash(index, values);
    let Some(shard) = shards().get(worker as usize % SHARDS) else {
        return false;
    };
    let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
    let series = &mut shard.series;
    let found = series.iter_mut().find(|s| {
        s.hash == h
            && s.metric == index
            && s.values.len() == values.len()
            && s.values.iter().zip(values).all(|(a, b)| a == b)
    });
    if let Some(s) = found {
        s.delta = s.delta.saturating_add(n);
        return true;
    }
    if series.len() >= MAX_SERIES {
        return false;
    }
    series.push(Series {
        hash: h,
        metric: index,
        values: values.iter().map(|v| v.to_string()).collect(),
        delta: n,
        idle: 0,
    });
    true
}

/// Hand every non-zero sum to `emit(metric, labels, n)` and zero it; forget series idle for
/// long. Envoy is called with no shard locked.
pub fn flush(mut emit: impl FnMut(&str, &[(&str, &str)], u64)) {
    let mut due: Vec<(usize, Vec<String>, u64)> = Vec::new();
    for shard in shards() {
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        if shard.series.is_empty() {
            continue;
        }
        for s in shard.series.iter_mut() {
            if s.delta == 0 {
                s.idle = s.idle.saturating_add(1);
            } else {
                due.push((s.metric, s.values.clone(), std::mem::take(&mut s.delta)));
                s.idle = 0;
            }
        }
        shard.series.retain(|s| s.idle <= MAX_IDLE);
    }
    for (metric, values, n) in due {
        let Some((name, _, names)) = METRICS.get(metric) else {
            continue;
        };
        // Series are kept by the values as the filters gave them; Envoy gets them as the
        // Wasm build names them (two raw values that sanitise alike add to one series).
        let values: Vec<_> = values.iter().map(|v| stats::label_value(v)).collect();
        let labels: Vec<(&str, &str)> = names
            .iter()
            .zip(values.iter())
            .map(|(k, v)| (*k, v.as_ref()))
            .collect();
        emit(name, &labels, n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flushed count: metric, labels, value.
    type Flushed = (String, Vec<(String, String)>, u64);

    fn drain() -> Vec<Flushed> {
        let mut out = Vec::new();
        flush(|m, l, n| {
            out.push((
                m.to_string(),
                l.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                n,
            ))
        });
        out.sort();
        out
    }

    #[test]
    fn sums_per_series_across_workers_and_flushes_once() {
        let _ = drain();
        let a = [(stats::PROVIDER, "p1"), (stats::ERROR_TYPE, "timeout")];
        let b = [(stats::ERROR_TYPE, "timeout"), (stats::PROVIDER, "p2")];
        assert!(add(0, stats::UPSTREAM_ERRORS, &a, 1));
        assert!(add(1, stats::UPSTREAM_ERRORS, &a, 2));
        assert!(add(0, stats::UPSTREAM_ERRORS, &b, 5));
        let got = drain();
        let total = |p: &str| {
            got.iter()
                .filter(|(m, l, _)| {
                    m == stats::UPSTREAM_ERRORS
                        && l.iter().any(|(k, v)| k == stats::PROVIDER && v == p)
                })
                .map(|(_, _, n)| n)
                .sum::<u64>()
        };
        assert_eq!(total("p1"), 3);
        assert_eq!(total("p2"), 5);
        // Labels come back in definition order, whatever order they were given in.
        assert!(got
            .iter()
            .all(|(_, l, _)| l.first().map(|(k, _)| k.as_str()) == Some(stats::PROVIDER)));
        assert!(drain().is_empty(), "a flush hands each count over once");
    }

    #[test]
    fn refuses_what_it_cannot_sum() {
        assert!(!add(0, "no_such_metric", &[], 1));
        assert!(!add(0, stats::OPERATION_DURATION, &[], 1), "a histogram");
        assert!(!add(0, stats::UPSTREAM_ERRORS, &[("nope", "x")], 1));
    }

    #[test]
    fn labels_in_any_order_and_split_values_are_distinct_series() {
        let names = [stats::PROVIDER, stats::ERROR_TYPE];
        let mut out = [""; 8];
        assert_eq!(
            ordered(
                &names,
                &[(stats::PROVIDER, "p"), (stats::ERROR_TYPE, "e")],
                &mut out
            ),
            Some(2)
        );
        assert_eq!(&out[..2], &["p", "e"]);
        assert_eq!(
            ordered(&names, &[(stats::ERROR_TYPE, "e")], &mut out),
            Some(2)
        );
        assert_eq!(&out[..2], &["", "e"]);
        assert_eq!(ordered(&names, &[("nope", "e")], &mut out), None);
        assert_ne!(hash(1, &["ab", ""]), hash(1, &["a", "b"]));
        assert_ne!(hash(1, &["abcdefgh", ""]), hash(1, &["abcdefg", "h"]));
        assert_ne!(hash(1, &["x"]), hash(2, &["x"]));
        assert_eq!(hash(3, &["same value", "v"]), hash(3, &["same value", "v"]));
    }
}
