//! A deterministic simulation of herding: several gateway replicas pick providers from the
//! same metric snapshot, which is refreshed only every few ticks. With `least`, every replica
//! sends everything to the provider that looked idlest at the last refresh until the next one;
//! `p2c` and `weighted` keep spreading. Used as a unit test with bounds, and to reason about
//! `refresh_ms`.

use crate::select::{select, Candidate, Strategy};

/// Shape of one simulation run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scenario {
    /// Gateway replicas (each a separate picker).
    pub replicas: usize,
    /// Providers, all of weight 1.
    pub providers: usize,
    /// Requests each replica sends per tick.
    pub requests_per_tick: usize,
    /// Ticks a request stays in flight.
    pub service_ticks: usize,
    /// Ticks between metric refreshes (the staleness).
    pub refresh_ticks: usize,
    /// Ticks simulated; the first `service_ticks * 2` are warm-up and not measured.
    pub ticks: usize,
    pub seed: u64,
}

/// The scenario the unit test bounds and `cargo xtask bench` reports: 8 replicas, 4 providers,
/// metrics refreshed every 5 ticks while requests last 10.
pub const STANDARD: Scenario = Scenario {
    replicas: 8,
    providers: 4,
    requests_per_tick: 2,
    service_ticks: 10,
    refresh_ticks: 5,
    ticks: 2000,
    seed: 42,
};

/// How evenly load spread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Mean over measured ticks of (busiest provider's in-flight / mean in-flight); 1.0 is
    /// perfectly even.
    pub peak_to_mean: f64,
}

/// Run `scenario` with `strategy`. Pure and deterministic (seeded xorshift).
pub fn simulate(strategy: Strategy, s: Scenario) -> Spread {
    let mut rng = s.seed | 1;
    let mut rand = move || {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        (rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    };
    let m = s.providers.max(1);
    let service = s.service_ticks.max(1);
    // completions[t % service][p]: requests to p that finish at tick t.
    let mut completions = vec![vec![0usize; m]; service];
    let mut load = vec![0usize; m];
    let mut snapshot: Vec<f64> = vec![0.0; m];
    let (mut sum, mut measured) = (0.0, 0usize);
    for t in 0..s.ticks {
        let slot = t % service;
        for (l, done) in load.iter_mut().zip(completions[slot].iter_mut()) {
            *l -= *done;
            *done = 0;
        }
        if t % s.refresh_ticks.max(1) == 0 {
            snapshot = load.iter().map(|&l| l as f64).collect();
        }
        let candidates: Vec<Candidate> = snapshot
            .iter()
            .map(|&x| Candidate {
                weight: 1.0,
                metric: Some(x),
            })
            .collect();
        for _ in 0..s.replicas * s.requests_per_tick {
            if let Some(p) = select(strategy, &candidates, &mut rand) {
                if let (Some(l), Some(c)) = (load.get_mut(p), completions[slot].get_mut(p)) {
                    *l += 1;
                    *c += 1;
                }
            }
        }
        if t >= service * 2 {
            let total: usize = load.iter().sum();
            let peak = load.iter().copied().max().unwrap_or(0);
            if total > 0 {
                sum += peak as f64 / (total as f64 / m as f64);
                measured += 1;
            }
        }
    }
    Spread {
        peak_to_mean: if measured == 0 {
            1.0
        } else {
            sum / measured as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENARIO: Scenario = STANDARD;

    #[test]
    fn stale_metrics_herd_least_but_not_p2c_or_weighted() {
        let least = simulate(Strategy::Least, SCENARIO).peak_to_mean;
        let p2c = simulate(Strategy::P2c, SCENARIO).peak_to_mean;
        let weighted = simulate(Strategy::Weighted, SCENARIO).peak_to_mean;
        eprintln!("peak/mean: least {least:.2} p2c {p2c:.2} weighted {weighted:.2}");
        assert!(least > 1.8, "least herds on stale metrics: {least}");
        assert!(p2c < 1.5, "p2c spreads: {p2c}");
        assert!(weighted < 1.5, "weighted spreads: {weighted}");
    }

    #[test]
    fn fresh_metrics_make_least_even() {
        let fresh = Scenario {
            refresh_ticks: 1,
            requests_per_tick: 1,
            replicas: 1,
            ..SCENARIO
        };
        let least = simulate(Strategy::Least, fresh).peak_to_mean;
        assert!(least < 1.3, "{least}");
        assert_eq!(
            simulate(Strategy::P2c, fresh),
            simulate(Strategy::P2c, fresh)
        );
    }
}
