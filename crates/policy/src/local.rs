//! `metrics.source: local`: what the gateway itself observes per provider, kept in shared data
//! so every worker VM sees it: requests in flight (taken at pick, released when the stream
//! ends) and the smoothed latency and error rate of finished requests, turned into the metric
//! the strategies compare.

use serde::Deserialize;

/// Weight of the newest sample in the moving averages.
pub const ALPHA: f64 = 0.2;

/// Which local observation is the provider's metric (lower is better).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalSignal {
    /// Requests in flight (the default).
    #[default]
    InFlight,
    /// Moving average of request duration, in milliseconds.
    Latency,
    /// Moving average of the failure ratio (5xx, 429, no answer).
    Errors,
    /// Expected cost of one more request: `(in_flight + 1) × latency / (1 − error_rate)`
    /// (latency 1 until known; error rate capped at 0.95). Spreads by load, prefers fast and
    /// healthy providers.
    Cost,
}

/// Moving averages of one provider's finished requests.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LocalStats {
    /// Milliseconds; `None` until the first request finished.
    pub latency_ms: Option<f64>,
    /// 0..=1.
    pub error_rate: f64,
}

impl LocalStats {
    pub fn encode(&self) -> Vec<u8> {
        match self.latency_ms {
            Some(l) => format!("{l:.3},{:.5}", self.error_rate).into_bytes(),
            None => format!("-,{:.5}", self.error_rate).into_bytes(),
        }
    }

    /// Garbage decodes as "nothing known".
    pub fn decode(bytes: &[u8]) -> LocalStats {
        let text = std::str::from_utf8(bytes).unwrap_or_default();
        let mut parts = text.split(',');
        let latency_ms = parts
            .next()
            .and_then(|l| l.parse::<f64>().ok())
            .filter(|l| l.is_finite() && *l >= 0.0);
        let error_rate = parts
            .next()
            .and_then(|e| e.parse::<f64>().ok())
            .filter(|e| e.is_finite())
            .map_or(0.0, |e| e.clamp(0.0, 1.0));
        LocalStats {
            latency_ms,
            error_rate,
        }
    }

    /// Fold in one finished request.
    pub fn record(&self, latency_ms: f64, failed: bool) -> LocalStats {
        let latency_ms = latency_ms.max(0.0);
        let sample = if failed { 1.0 } else { 0.0 };
        LocalStats {
            latency_ms: Some(match self.latency_ms {
                Some(old) => old + ALPHA * (latency_ms - old),
                None => latency_ms,
            }),
            error_rate: self.error_rate + ALPHA * (sample - self.error_rate),
        }
    }

    /// The metric for `signal`, given the requests in flight.
    pub fn metric(&self, signal: LocalSignal, in_flight: f64) -> f64 {
        match signal {
            LocalSignal::InFlight => in_flight,
            LocalSignal::Latency => self.latency_ms.unwrap_or(0.0),
            LocalSignal::Errors => self.error_rate,
            LocalSignal::Cost => {
                let latency = self.latency_ms.unwrap_or(1.0).max(1.0);
                (in_flight + 1.0) * latency / (1.0 - self.error_rate.min(0.95))
            }
        }
    }
}

/// Every provider's local state in one shared-data entry: requests in flight and the moving
/// averages. One entry (not one per provider) because each shared-data read that returns data
/// costs a trip back into the VM: a pick reads all providers at once, and a request's start and
/// end are one compare-and-swap write each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalBoard {
    entries: Vec<(String, u64, LocalStats)>,
}

/// Bound on the providers one board keeps (config bounds them; garbage cannot grow it).
const MAX_BOARD_ENTRIES: usize = 1024;

impl LocalBoard {
    /// Lines of `in_flight<TAB>stats<TAB>name`; garbage lines are skipped (a board that cannot
    /// be read is an empty one: every provider unknown).
    pub fn decode(bytes: &[u8]) -> LocalBoard {
        let text = std::str::from_utf8(bytes).unwrap_or_default();
        let entries = text
            .split('\n')
            .filter_map(|line| {
                let mut parts = line.splitn(3, '\t');
                let n = parts.next()?.parse::<u64>().ok()?;
                let stats = LocalStats::decode(parts.next()?.as_bytes());
                let name = parts.next()?;
                Some((name.to_string(), n, stats))
            })
            .take(MAX_BOARD_ENTRIES)
            .collect();
        LocalBoard { entries }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * 32);
        for (name, n, stats) in &self.entries {
            if !out.is_empty() {
                out.push(b'\n');
            }
            out.extend_from_slice(n.to_string().as_bytes());
            out.push(b'\t');
            out.extend_from_slice(&stats.encode());
            out.push(b'\t');
            out.extend_from_slice(name.as_bytes());
        }
        out
    }

    /// Requests in flight at `provider` and its averages (zero and unknown when absent).
    pub fn get(&self, provider: &str) -> (u64, LocalStats) {
        self.entries
            .iter()
            .find(|(name, _, _)| name == provider)
            .map_or((0, LocalStats::default()), |(_, n, s)| (*n, *s))
    }

    fn entry(&mut self, provider: &str) -> Option<&mut (String, u64, LocalStats)> {
        // Names with the separators would corrupt the encoding: such a provider is not kept.
        if provider.contains(['\n', '\t']) {
            return None;
        }
        let at = match self
            .entries
            .iter()
            .position(|(name, _, _)| name == provider)
        {
            Some(at) => at,
            None if self.entries.len() < MAX_BOARD_ENTRIES => {
                self.entries
                    .push((provider.to_string(), 0, LocalStats::default()));
                self.entries.len() - 1
            }
            None => return None,
        };
        self.entries.get_mut(at)
    }

    /// A request to `provider` started.
    pub fn start(&mut self, provider: &str) {
        if let Some(e) = self.entry(provider) {
            e.1 = e.1.saturating_add(1);
        }
    }

    /// A request to `provider` ended after `latency_ms`, failed or not.
    pub fn finish(&mut self, provider: &str, latency_ms: f64, failed: bool) {
        if let Some(e) = self.entry(provider) {
            e.1 = e.1.saturating_sub(1);
            e.2 = e.2.record(latency_ms, failed);
        }
    }
}

/// Whether a finished request counts as a failure of its provider: no answer, 429 or 5xx.
pub fn is_failure(status: u16) -> bool {
    status == 0 || status == 429 || status >= 500
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_round_trips_and_counts() {
        let mut board = LocalBoard::decode(b"");
        board.start("alpha");
        board.start("alpha");
        board.start("beta one");
        board.finish("alpha", 100.0, false);
        let again = LocalBoard::decode(&board.encode());
        assert_eq!(again, board);
        let (n, stats) = again.get("alpha");
        assert_eq!((n, stats.latency_ms), (1, Some(100.0)));
        assert_eq!(again.get("beta one").0, 1);
        assert_eq!(again.get("gamma"), (0, LocalStats::default()));
        // Never below zero; names that would break the encoding are not kept.
        let mut b = LocalBoard::default();
        b.finish("x", 5.0, true);
        assert_eq!(b.get("x").0, 0);
        b.start("bad\tname");
        assert_eq!(b.get("bad\tname").0, 0);
    }

    #[test]
    fn board_garbage_is_empty_not_a_panic() {
        for bytes in [
            &b"\xff\xfe"[..],
            b"x\ty\tz",
            b"\t\t",
            b"-1\t-,0\tname",
            b"\n\n",
        ] {
            let b = LocalBoard::decode(bytes);
            assert_eq!(b.get("name").0, 0, "{bytes:?}");
        }
        let b = LocalBoard::decode(b"3\tgarbage\tname");
        assert_eq!(b.get("name"), (3, LocalStats::default()));
    }

    #[test]
    fn averages_move_towards_samples_and_round_trip() {
        let s = LocalStats::default().record(100.0, false);
        assert_eq!(s.latency_ms, Some(100.0));
        assert_eq!(s.error_rate, 0.0);
        let s = s.record(200.0, true);
        assert!((s.latency_ms.unwrap() - 120.0).abs() < 1e-9);
        assert!((s.error_rate - 0.2).abs() < 1e-9);
        let back = LocalStats::decode(&s.encode());
        assert!((back.latency_ms.unwrap() - 120.0).abs() < 1e-3);
        assert!((back.error_rate - 0.2).abs() < 1e-4);
        assert_eq!(LocalStats::decode(b"garbage"), LocalStats::default());
        assert_eq!(
            LocalStats::decode(b"-,7"),
            LocalStats {
                latency_ms: None,
                error_rate: 1.0
            }
        );
        assert_eq!(LocalStats::decode(b"NaN,-1").latency_ms, None);
    }

    #[test]
    fn cost_prefers_idle_fast_healthy_providers() {
        let fast = LocalStats {
            latency_ms: Some(100.0),
            error_rate: 0.0,
        };
        let slow = LocalStats {
            latency_ms: Some(400.0),
            error_rate: 0.0,
        };
        let flaky = LocalStats {
            latency_ms: Some(100.0),
            error_rate: 0.9,
        };
        let c = LocalSignal::Cost;
        // A fast provider stays preferred until it has several requests more in flight.
        assert!(fast.metric(c, 2.0) < slow.metric(c, 0.0));
        assert!(fast.metric(c, 4.0) > slow.metric(c, 0.0));
        assert!(flaky.metric(c, 0.0) > slow.metric(c, 0.0));
        // Nothing known: cost follows in-flight counts.
        let new = LocalStats::default();
        assert!(new.metric(c, 0.0) < new.metric(c, 1.0));
        assert_eq!(new.metric(LocalSignal::InFlight, 3.0), 3.0);
        assert_eq!(slow.metric(LocalSignal::Latency, 9.0), 400.0);
        assert_eq!(flaky.metric(LocalSignal::Errors, 9.0), 0.9);
        assert!(is_failure(0) && is_failure(429) && is_failure(503));
        assert!(!is_failure(200) && !is_failure(400));
    }
}
