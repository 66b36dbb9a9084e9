//! Token failover as a pure state machine: per-token failure counts, the unavailable set,
//! health-check success counts, cooldowns and `retry-after` rests, and the token choice that
//! follows from them. Time (milliseconds) and randomness are passed in; the plugin keeps the
//! state in Proxy-Wasm shared data as the bytes of [`PoolState::encode`], so every worker VM
//! sees the same picture.
//!
//! A token's life: it is *available*; each failure counts, a success resets the count; at
//! `failure_threshold` consecutive failures it goes *down*. A down token comes back either
//! after `success_threshold` successful health checks (or successful real requests, when it
//! was used because every token was down), or, with a cooldown configured, once the cooldown
//! has passed: it is then on probation, and its next failure takes it down again at once.
//! Independently, a `429` with `retry-after` makes a token *rest* until that time.

/// The thresholds the machine applies (from the provider's `failover` config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive failures that take a token down (at least 1).
    pub failure_threshold: u32,
    /// Successful checks that bring a down token back (at least 1).
    pub success_threshold: u32,
    /// A down token is usable again this long after it went down, without health checks.
    pub cooldown_ms: Option<u64>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            failure_threshold: 3,
            success_threshold: 1,
            cooldown_ms: None,
        }
    }
}

/// What one token has been through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenState {
    /// Consecutive failures while available.
    pub failures: u32,
    /// Successful checks since the token went down.
    pub successes: u32,
    /// When the token (last) went down; `None` while it is available.
    pub down_since: Option<u64>,
    /// When the token last failed (0: never).
    pub last_failure: u64,
    /// The token rests until this time (a `429` with `retry-after`); 0: not resting.
    pub rest_until: u64,
}

/// How a recorded outcome changed a token's availability, for logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    None,
    /// The token was taken out of rotation.
    WentDown,
    /// The token is back in rotation.
    CameBack,
}

/// The token picked for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub index: usize,
    /// Every token was unavailable: this is the least recently failed one.
    pub fallback: bool,
}

/// The failover state of one provider's token list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolState {
    /// [`pool_fingerprint`] of the provider id and token list this state belongs to.
    pub fingerprint: u64,
    pub tokens: Vec<TokenState>,
}

const FORMAT_VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 8 + 4;
const TOKEN_LEN: usize = 4 + 4 + 8 + 8 + 8;
/// `down_since` encoding for "available".
const NOT_DOWN: u64 = u64::MAX;

/// FNV-1a over the provider id and its tokens: names the shared state of one token list, so
/// the state survives a config reload that keeps the list and starts fresh when it changes.
pub fn pool_fingerprint(provider_id: &str, tokens: &[String]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(provider_id.as_bytes());
    for t in tokens {
        eat(&[0]);
        eat(t.as_bytes());
    }
    eat(&(tokens.len() as u64).to_le_bytes());
    h
}

/// The last four characters of a token, the most that may be logged.
pub fn token_tail(token: &str) -> String {
    let n = token.chars().count();
    if n <= 4 {
        // Too short to show any part of it safely.
        return "****".into();
    }
    let tail: String = token.chars().skip(n - 4).collect();
    format!("...{tail}")
}

impl PoolState {
    /// A fresh state: every token available.
    pub fn new(fingerprint: u64, tokens: usize) -> Self {
        PoolState {
            fingerprint,
            tokens: vec![TokenState::default(); tokens],
        }
    }

    /// The state in `bytes` if they hold one for this fingerprint and token count, else a
    /// fresh one.
    pub fn load(bytes: Option<&[u8]>, fingerprint: u64, tokens: usize) -> Self {
        bytes
            .and_then(Self::decode)
            .filter(|s| s.belongs_to(fingerprint, tokens))
            .unwrap_or_else(|| Self::new(fingerprint, tokens))
    }

    /// Whether this is the state of the token list with `fingerprint` and `tokens` tokens
    /// (else it belongs to another list, and that list starts fresh).
    pub fn belongs_to(&self, fingerprint: u64, tokens: usize) -> bool {
        self.fingerprint == fingerprint && self.tokens.len() == tokens
    }

    /// Compact little-endian bytes for shared data.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + TOKEN_LEN * self.tokens.len());
        out.push(FORMAT_VERSION);
        out.extend(self.fingerprint.to_le_bytes());
        out.extend((self.tokens.len() as u32).to_le_bytes());
        for t in &self.tokens {
            out.extend(t.failures.to_le_bytes());
            out.extend(t.successes.to_le_bytes());
            out.extend(t.down_since.unwrap_or(NOT_DOWN).to_le_bytes());
            out.extend(t.last_failure.to_le_bytes());
            out.extend(t.rest_until.to_le_bytes());
        }
        out
    }

    /// Parse [`PoolState::encode`] output; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        if r.take::<1>()? != [FORMAT_VERSION] {
            return None;
        }
        let fingerprint = u64::from_le_bytes(r.take()?);
        let n = u32::from_le_bytes(r.take()?) as usize;
        if r.0.len() != n.checked_mul(TOKEN_LEN)? {
            return None;
        }
        let mut tokens = Vec::with_capacity(n);
        for _ in 0..n {
            let failures = u32::from_le_bytes(r.take()?);
            let successes = u32::from_le_bytes(r.take()?);
            let down = u64::from_le_bytes(r.take()?);
            let last_failure = u64::from_le_bytes(r.take()?);
            let rest_until = u64::from_le_bytes(r.take()?);
            tokens.push(TokenState {
                failures,
                successes,
                down_since: (down != NOT_DOWN).then_some(down),
                last_failure,
                rest_until,
            });
        }
        Some(PoolState {
            fingerprint,
            tokens,
        })
    }

    /// Whether token `i` is out of rotation at `now` because of failures (not counting rests).
    pub fn is_down(&self, i: usize, now: u64, th: &Thresholds) -> bool {
        self.tokens
            .get(i)
            .is_some_and(|t| effectively_down(t, now, th))
    }

    /// Whether token `i` may serve requests at `now`.
    pub fn is_available(&self, i: usize, now: u64, th: &Thresholds) -> bool {
        self.tokens
            .get(i)
            .is_some_and(|t| !effectively_down(t, now, th) && now >= t.rest_until)
    }

    /// Indices of the tokens that may serve requests at `now`.
    pub fn available(&self, now: u64, th: &Thresholds) -> Vec<usize> {
        (0..self.tokens.len())
            .filter(|&i| self.is_available(i, now, th))
            .collect()
    }

    /// The token for a new request: a random available one (`rand` picks), else the least
    /// recently failed one (never none while the pool has tokens).
    pub fn choose(&self, now: u64, th: &Thresholds, rand: u64) -> Option<Choice> {
        let ok = self.available(now, th);
        if !ok.is_empty() {
            let index = ok[(rand % ok.len() as u64) as usize];
            return Some(Choice {
                index,
                fallback: false,
            });
        }
        self.least_recently_failed().map(|index| Choice {
            index,
            fallback: true,
        })
    }

    /// The token for a retry after `tried` failed: a random available one not yet tried, else
    /// a random available one; `None` when no token is available.
    pub fn choose_retry(
        &self,
        now: u64,
        th: &Thresholds,
        rand: u64,
        tried: &[usize],
    ) -> Option<usize> {
        let ok = self.available(now, th);
        let fresh: Vec<usize> = ok.iter().copied().filter(|i| !tried.contains(i)).collect();
        let pool = if fresh.is_empty() { ok } else { fresh };
        if pool.is_empty() {
            return None;
        }
        Some(pool[(rand % pool.len() as u64) as usize])
    }

    fn least_recently_failed(&self) -> Option<usize> {
        self.tokens
            .iter()
            .enumerate()
            .min_by_key(|(i, t)| (t.last_failure, *i))
            .map(|(i, _)| i)
    }

    /// A request with token `i` succeeded.
    pub fn record_success(&mut self, i: usize, now: u64, th: &Thresholds) -> Change {
        let Some(t) = self.tokens.get_mut(i) else {
            return Change::None;
        };
        if t.down_since.is_none() {
            t.failures = 0;
            return Change::None;
        }
        if !effectively_down(t, now, th) {
            // Back from a cooldown and it works: fully available again.
            bring_back(t);
            return Change::None;
        }
        // Used while down (every token was down): as good as a health check.
        count_check_success(t, th)
    }

    /// A request (or health check) with token `i` failed.
    pub fn record_failure(&mut self, i: usize, now: u64, th: &Thresholds) -> Change {
        let Some(t) = self.tokens.get_mut(i) else {
            return Change::None;
        };
        let was_down = effectively_down(t, now, th);
        t.last_failure = now;
        t.successes = 0;
        if t.down_since.is_some() {
            // Down, or on probation after a cooldown: (again) down from now.
            t.down_since = Some(now);
        } else {
            t.failures = t.failures.saturating_add(1);
            if t.failures >= th.failure_threshold.max(1) {
                t.down_since = Some(now);
            }
        }
        if !was_down && effectively_down(t, now, th) {
            Change::WentDown
        } else {
            Change::None
        }
    }

    /// Token `i` was told to wait (`retry-after`): it rests until `until`.
    pub fn record_rest(&mut self, i: usize, now: u64, until: u64) {
        if let Some(t) = self.tokens.get_mut(i) {
            t.last_failure = now;
            t.rest_until = t.rest_until.max(until);
        }
    }

    /// A health check of token `i` answered: `ok` is a success status.
    pub fn record_check(&mut self, i: usize, ok: bool, now: u64, th: &Thresholds) -> Change {
        if !ok {
            return self.record_failure(i, now, th);
        }
        match self.tokens.get_mut(i) {
            Some(t) if t.down_since.is_some() => count_check_success(t, th),
            _ => Change::None,
        }
    }

    /// Tokens a health check should probe at `now`: down ones, not resting. None at all when
    /// a cooldown brings tokens back instead.
    pub fn due_checks(&self, now: u64, th: &Thresholds) -> Vec<usize> {
        if th.cooldown_ms.is_some() {
            return Vec::new();
        }
        (0..self.tokens.len())
            .filter(|&i| {
                self.tokens
                    .get(i)
                    .is_some_and(|t| t.down_since.is_some() && now >= t.rest_until)
            })
            .collect()
    }
}

fn effectively_down(t: &TokenState, now: u64, th: &Thresholds) -> bool {
    match (t.down_since, th.cooldown_ms) {
        (None, _) => false,
        (Some(since), Some(cool)) => now < since.saturating_add(cool),
        (Some(_), None) => true,
    }
}

fn bring_back(t: &mut TokenState) {
    t.down_since = None;
    t.failures = 0;
    t.successes = 0;
}

fn count_check_success(t: &mut TokenState, th: &Thresholds) -> Change {
    t.successes = t.successes.saturating_add(1);
    if t.successes >= th.success_threshold.max(1) {
        bring_back(t);
        Change::CameBack
    } else {
        Change::None
    }
}

/// Who runs health checks for a pool: one VM holds the lease until it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub owner: u64,
    pub until: u64,
}

impl Lease {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        out.extend(self.owner.to_le_bytes());
        out.extend(self.until.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Lease> {
        let mut r = Reader(bytes);
        let owner = u64::from_le_bytes(r.take()?);
        let until = u64::from_le_bytes(r.take()?);
        r.0.is_empty().then_some(Lease { owner, until })
    }

    /// Claim or renew the lease held in `current` for `me` at `now`, for `ttl` ms. Returns
    /// the bytes to store and whether `me` holds the lease.
    pub fn claim(current: Option<&[u8]>, me: u64, now: u64, ttl: u64) -> (Vec<u8>, bool) {
        // Nothing readable stored: an expired lease, anyone's to take.
        let mut lease = current.and_then(Lease::decode).unwrap_or(Lease {
            owner: me,
            until: 0,
        });
        let mine = lease.claim_for(me, now, ttl);
        (lease.encode(), mine)
    }

    /// Claim or renew this lease for `me` at `now`, for `ttl` ms, unless another holder's is
    /// still running. Returns whether `me` holds it.
    pub fn claim_for(&mut self, me: u64, now: u64, ttl: u64) -> bool {
        if self.owner != me && now < self.until {
            return false;
        }
        *self = Lease {
            owner: me,
            until: now.saturating_add(ttl),
        };
        true
    }
}

/// What one answer says about the token that served it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// A failure that counts towards taking the token out (`failoverOnStatus`).
    pub failed: bool,
    /// A 2xx: resets the failure count (and brings a probation token back).
    pub success: bool,
    /// A `429` with `retry-after`: the token rests this long.
    pub rest_ms: Option<u64>,
}

impl Outcome {
    /// Classify an answer's status (and `retry-after`) by the provider's failover config.
    pub fn classify(
        status: u16,
        retry_after: Option<&str>,
        failover: &crate::proxy::FailoverConfig,
    ) -> Outcome {
        Outcome {
            failed: failover.enabled && failover.failover_on_status.matches(status),
            success: (200..300).contains(&status),
            rest_ms: (status == 429)
                .then(|| retry_after.and_then(retry_after_ms))
                .flatten(),
        }
    }

    /// Whether the answer changes nothing (the common case needs no shared-state write).
    pub fn is_neutral(&self) -> bool {
        !self.failed && !self.success && self.rest_ms.is_none()
    }

    /// Apply the outcome to token `i` of `state`.
    pub fn apply(&self, state: &mut PoolState, i: usize, now: u64, th: &Thresholds) -> Change {
        if let Some(ms) = self.rest_ms {
            state.record_rest(i, now, now.saturating_add(ms));
        }
        if self.failed {
            state.record_failure(i, now, th)
        } else if self.success {
            state.record_success(i, now, th)
        } else {
            Change::None
        }
    }
}

/// Seconds (or an HTTP date we cannot parse without a calendar: `None`) of a `retry-after`.
pub fn retry_after_ms(value: &str) -> Option<u64> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| (secs * 1000.0).min(86_400_000.0) as u64)
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn th(failure: u32, success: u32, cooldown: Option<u64>) -> Thresholds {
        Thresholds {
            failure_threshold: failure,
            success_threshold: success,
            cooldown_ms: cooldown,
        }
    }

    #[test]
    fn goes_down_after_threshold_consecutive_failures() {
        let t = th(3, 1, None);
        let mut s = PoolState::new(7, 2);
        assert_eq!(s.record_failure(0, 10, &t), Change::None);
        assert_eq!(s.record_failure(0, 20, &t), Change::None);
        assert!(s.is_available(0, 20, &t));
        assert_eq!(s.record_failure(0, 30, &t), Change::WentDown);
        assert!(!s.is_available(0, 31, &t));
        assert!(s.is_down(0, 31, &t));
        assert_eq!(s.available(40, &t), vec![1]);
        // Further failures while down change nothing visible.
        assert_eq!(s.record_failure(0, 50, &t), Change::None);
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let t = th(2, 1, None);
        let mut s = PoolState::new(0, 1);
        s.record_failure(0, 1, &t);
        s.record_success(0, 2, &t);
        assert_eq!(s.tokens[0].failures, 0);
        assert_eq!(s.record_failure(0, 3, &t), Change::None);
        assert_eq!(s.record_failure(0, 4, &t), Change::WentDown);
    }

    #[test]
    fn health_checks_bring_a_token_back_after_success_threshold() {
        let t = th(1, 2, None);
        let mut s = PoolState::new(0, 2);
        s.record_failure(1, 100, &t);
        assert_eq!(s.due_checks(200, &t), vec![1]);
        assert_eq!(s.record_check(1, true, 200, &t), Change::None);
        assert!(!s.is_available(1, 200, &t));
        // A failed check starts the count again.
        assert_eq!(s.record_check(1, false, 300, &t), Change::None);
        assert_eq!(s.tokens[1].successes, 0);
        assert_eq!(s.record_check(1, true, 400, &t), Change::None);
        assert_eq!(s.record_check(1, true, 500, &t), Change::CameBack);
        assert!(s.is_available(1, 500, &t));
        assert!(s.due_checks(600, &t).is_empty());
        assert_eq!(s.tokens[1].failures, 0);
        // Checks of an available token change nothing.
        assert_eq!(s.record_check(0, true, 600, &t), Change::None);
    }

    #[test]
    fn cooldown_brings_a_token_back_on_probation_without_checks() {
        let t = th(2, 1, Some(1_000));
        let mut s = PoolState::new(0, 2);
        s.record_failure(0, 0, &t);
        assert_eq!(s.record_failure(0, 10, &t), Change::WentDown);
        assert!(
            s.due_checks(20, &t).is_empty(),
            "no health checks with a cooldown"
        );
        assert!(!s.is_available(0, 1_009, &t));
        assert!(s.is_available(0, 1_010, &t));
        // On probation: one failure takes it down again, for another cooldown.
        assert_eq!(s.record_failure(0, 1_500, &t), Change::WentDown);
        assert!(!s.is_available(0, 2_499, &t));
        assert!(s.is_available(0, 2_500, &t));
        // A success after the cooldown makes it fully available (count from zero).
        assert_eq!(s.record_success(0, 2_600, &t), Change::None);
        assert_eq!(s.tokens[0].down_since, None);
        assert_eq!(s.record_failure(0, 2_700, &t), Change::None);
        assert!(s.is_available(0, 2_700, &t));
    }

    #[test]
    fn choice_is_among_available_tokens() {
        let t = th(1, 1, None);
        let mut s = PoolState::new(0, 3);
        s.record_failure(1, 5, &t);
        for r in 0..20 {
            let c = s.choose(10, &t, r).unwrap();
            assert_ne!(c.index, 1);
            assert!(!c.fallback);
        }
        let picked: std::collections::BTreeSet<usize> = (0..20)
            .map(|r| s.choose(10, &t, r).unwrap().index)
            .collect();
        assert_eq!(picked.into_iter().collect::<Vec<_>>(), vec![0, 2]);
    }

    #[test]
    fn all_down_falls_back_to_the_least_recently_failed() {
        let t = th(1, 1, None);
        let mut s = PoolState::new(0, 3);
        s.record_failure(0, 30, &t);
        s.record_failure(1, 10, &t);
        s.record_failure(2, 20, &t);
        for r in 0..5 {
            assert_eq!(
                s.choose(40, &t, r),
                Some(Choice {
                    index: 1,
                    fallback: true
                })
            );
        }
        // Its failing again moves the choice on.
        s.record_failure(1, 50, &t);
        assert_eq!(s.choose(60, &t, 0).unwrap().index, 2);
        assert_eq!(PoolState::new(0, 0).choose(0, &t, 0), None);
    }

    #[test]
    fn a_success_of_a_down_token_counts_like_a_check() {
        let t = th(1, 2, None);
        let mut s = PoolState::new(0, 1);
        s.record_failure(0, 1, &t);
        assert_eq!(s.record_success(0, 2, &t), Change::None);
        assert_eq!(s.record_success(0, 3, &t), Change::CameBack);
        assert!(s.is_available(0, 3, &t));
    }

    #[test]
    fn retries_prefer_untried_available_tokens() {
        let t = th(1, 1, None);
        let mut s = PoolState::new(0, 3);
        s.record_failure(0, 1, &t);
        for r in 0..10 {
            assert_eq!(s.choose_retry(2, &t, r, &[1]), Some(2));
        }
        // All available ones tried: retry one of them.
        let again = s.choose_retry(2, &t, 3, &[1, 2]).unwrap();
        assert!(again == 1 || again == 2);
        s.record_failure(1, 3, &t);
        s.record_failure(2, 3, &t);
        assert_eq!(s.choose_retry(4, &t, 0, &[2]), None);
    }

    #[test]
    fn retry_after_rests_a_token_until_then() {
        let t = th(3, 1, None);
        let mut s = PoolState::new(0, 2);
        s.record_rest(0, 100, 2_100);
        assert!(!s.is_available(0, 2_099, &t));
        assert!(!s.is_down(0, 2_099, &t));
        assert!(s.is_available(0, 2_100, &t));
        // A shorter retry-after does not shorten the rest.
        s.record_rest(0, 200, 300);
        assert!(!s.is_available(0, 1_000, &t));
        assert_eq!(s.choose(1_000, &t, 0).unwrap().index, 1);
        // Resting down tokens are not probed until the rest is over.
        s.tokens[0].down_since = Some(100);
        assert!(s.due_checks(1_000, &t).is_empty());
        assert_eq!(s.due_checks(2_100, &t), vec![0]);
        assert_eq!(retry_after_ms("2"), Some(2_000));
        assert_eq!(retry_after_ms(" 0.5 "), Some(500));
        assert_eq!(retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(retry_after_ms("-1"), None);
    }

    #[test]
    fn bytes_round_trip_and_mismatches_start_fresh() {
        let t = th(1, 1, None);
        let mut s = PoolState::new(42, 3);
        s.record_failure(1, 1_234, &t);
        s.record_rest(2, 5, 99);
        s.record_failure(0, 7, &th(3, 1, None));
        let bytes = s.encode();
        assert_eq!(PoolState::decode(&bytes), Some(s.clone()));
        assert_eq!(PoolState::load(Some(&bytes), 42, 3), s);
        assert_eq!(PoolState::load(Some(&bytes), 43, 3), PoolState::new(43, 3));
        assert_eq!(PoolState::load(Some(&bytes), 42, 2), PoolState::new(42, 2));
        assert_eq!(PoolState::load(None, 42, 3), PoolState::new(42, 3));
        for cut in 0..bytes.len() {
            assert_eq!(PoolState::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(PoolState::decode(&longer), None);
        let mut other_version = bytes;
        other_version[0] = 9;
        assert_eq!(PoolState::decode(&other_version), None);
        // A huge claimed count does not allocate or panic.
        let mut bogus = vec![FORMAT_VERSION];
        bogus.extend(0u64.to_le_bytes());
        bogus.extend(u32::MAX.to_le_bytes());
        assert_eq!(PoolState::decode(&bogus), None);
    }

    #[test]
    fn fingerprint_follows_id_and_token_list() {
        let toks = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let a = pool_fingerprint("p", &toks(&["a", "b"]));
        assert_eq!(a, pool_fingerprint("p", &toks(&["a", "b"])));
        assert_ne!(a, pool_fingerprint("q", &toks(&["a", "b"])));
        assert_ne!(a, pool_fingerprint("p", &toks(&["b", "a"])));
        assert_ne!(a, pool_fingerprint("p", &toks(&["ab"])));
        assert_ne!(a, pool_fingerprint("p", &toks(&["a", "b", "c"])));
    }

    #[test]
    fn lease_is_held_by_one_owner_until_it_expires() {
        let (bytes, mine) = Lease::claim(None, 1, 100, 50);
        assert!(mine);
        let (same, mine) = Lease::claim(Some(&bytes), 2, 120, 50);
        assert!(!mine);
        assert_eq!(same, bytes);
        // The owner renews.
        let (renewed, mine) = Lease::claim(Some(&bytes), 1, 140, 50);
        assert!(mine);
        assert_eq!(Lease::decode(&renewed).unwrap().until, 190);
        // Expired: someone else takes it.
        let (taken, mine) = Lease::claim(Some(&renewed), 2, 190, 50);
        assert!(mine);
        assert_eq!(Lease::decode(&taken).unwrap().owner, 2);
        // Garbage is a free lease.
        assert!(Lease::claim(Some(b"xx"), 3, 0, 1).1);
        // The same rules on a lease kept as itself.
        let mut lease = Lease { owner: 1, until: 0 };
        assert!(lease.claim_for(1, 100, 50));
        assert!(!lease.claim_for(2, 149, 50));
        assert_eq!(
            lease,
            Lease {
                owner: 1,
                until: 150
            },
            "a refused claim changes nothing"
        );
        assert!(lease.claim_for(2, 150, 50));
        assert_eq!(
            lease,
            Lease {
                owner: 2,
                until: 200
            }
        );
    }

    #[test]
    fn token_tails_show_at_most_four_characters() {
        assert_eq!(token_tail("sk-abcdef1234"), "...1234");
        assert_eq!(token_tail("abcd"), "****");
        assert_eq!(token_tail("ключ-секрет"), "...крет");
    }
}
