//! Provider selection strategies. Pure: metrics and randomness are inputs.

use serde::Deserialize;

/// How the balancer picks among providers with fresh metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// The lowest metric (the seed's behaviour); ties go to the first in config order.
    #[default]
    Least,
    /// Power of two choices: two random candidates (by weight), the lower metric wins.
    P2c,
    /// Random by weight divided by (1 + metric).
    Weighted,
}

/// One candidate: its weight and current metric (`None` when unknown).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub weight: f64,
    pub metric: Option<f64>,
}

/// Pick an index. `rand` yields uniform numbers in [0, 1). Candidates without a metric are
/// skipped; when none has one, the pick is weighted random (the documented fallback).
pub fn select(
    strategy: Strategy,
    candidates: &[Candidate],
    rand: &mut dyn FnMut() -> f64,
) -> Option<usize> {
    let known: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].metric.is_some_and(f64::is_finite) && candidates[i].weight > 0.0)
        .collect();
    if known.is_empty() {
        return weighted_random(candidates, |c| c.weight, rand);
    }
    let metric = |i: usize| candidates[i].metric.unwrap_or(f64::INFINITY);
    match strategy {
        Strategy::Least => {
            known
                .iter()
                .copied()
                .reduce(|best, i| if metric(i) < metric(best) { i } else { best })
        }
        Strategy::P2c => {
            let a = weighted_pick(&known, candidates, rand)?;
            let rest: Vec<usize> = known.iter().copied().filter(|&i| i != a).collect();
            let Some(b) = weighted_pick(&rest, candidates, rand) else {
                return Some(a);
            };
            Some(if metric(b) < metric(a) { b } else { a })
        }
        Strategy::Weighted => {
            let scored: Vec<Candidate> = candidates
                .iter()
                .enumerate()
                .map(|(i, c)| Candidate {
                    weight: if known.contains(&i) {
                        c.weight / (1.0 + metric(i).max(0.0))
                    } else {
                        0.0
                    },
                    metric: c.metric,
                })
                .collect();
            weighted_random(&scored, |c| c.weight, rand)
        }
    }
}

fn weighted_pick(idx: &[usize], c: &[Candidate], rand: &mut dyn FnMut() -> f64) -> Option<usize> {
    let sub: Vec<Candidate> = idx.iter().map(|&i| c[i]).collect();
    weighted_random(&sub, |c| c.weight, rand).and_then(|j| idx.get(j).copied())
}

/// Weighted random index; all-zero weights fall back to uniform.
pub fn weighted_random<T>(
    items: &[T],
    weight: impl Fn(&T) -> f64,
    rand: &mut dyn FnMut() -> f64,
) -> Option<usize> {
    if items.is_empty() {
        return None;
    }
    let w = |t: &T| {
        let x = weight(t);
        if x.is_finite() && x > 0.0 {
            x
        } else {
            0.0
        }
    };
    let total: f64 = items.iter().map(w).sum();
    if total <= 0.0 {
        let i = (rand() * items.len() as f64) as usize;
        return Some(i.min(items.len() - 1));
    }
    let mut x = rand().clamp(0.0, 1.0) * total;
    for (i, t) in items.iter().enumerate() {
        let wi = w(t);
        if x < wi {
            return Some(i);
        }
        x -= wi;
    }
    items.iter().rposition(|t| w(t) > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(metric: Option<f64>) -> Candidate {
        Candidate {
            weight: 1.0,
            metric,
        }
    }

    #[test]
    fn least_picks_lowest_metric_first_on_ties() {
        let mut r = || 0.5;
        assert_eq!(
            select(Strategy::Least, &[c(Some(90.0)), c(Some(10.0))], &mut r),
            Some(1)
        );
        assert_eq!(
            select(Strategy::Least, &[c(Some(5.0)), c(Some(5.0))], &mut r),
            Some(0)
        );
        assert_eq!(
            select(Strategy::Least, &[c(None), c(Some(50.0))], &mut r),
            Some(1)
        );
    }

    #[test]
    fn unknown_metrics_fall_back_to_weighted_random() {
        let cands = [
            Candidate {
                weight: 1.0,
                metric: None,
            },
            Candidate {
                weight: 3.0,
                metric: None,
            },
        ];
        let mut counts = [0; 2];
        for k in 0..100 {
            let mut r = || k as f64 / 100.0;
            counts[select(Strategy::Least, &cands, &mut r).unwrap()] += 1;
        }
        assert_eq!(counts, [25, 75]);
        assert_eq!(select(Strategy::Least, &[], &mut || 0.0), None);
    }

    #[test]
    fn p2c_prefers_the_lower_of_two() {
        let cands = [c(Some(1.0)), c(Some(100.0))];
        let mut seq = [0.9, 0.1].into_iter();
        let mut r = || seq.next().unwrap_or(0.0);
        assert_eq!(select(Strategy::P2c, &cands, &mut r), Some(0));
    }
}
