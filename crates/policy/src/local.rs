//! `metrics.source: local`: what the gateway itself observes per provider, kept in shared data
//! so every worker VM sees it. Requests in flight are counted separately (taken at pick,
//! released when the stream ends); this module keeps the smoothed latency and error rate of
//! finished requests and turns them into the metric the strategies compare.

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

/// Whether a finished request counts as a failure of its provider: no answer, 429 or 5xx.
pub fn is_failure(status: u16) -> bool {
    status == 0 || status == 429 || status >= 500
}

#[cfg(test)]
mod tests {
    use super::*;

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
