//! When to fetch a Vertex AI access token: a pure state machine, driven by the filter.
//!
//! Rules:
//! - a token is *usable* until `SAFETY` seconds before it expires (so it does not expire
//!   on the way upstream);
//! - a refresh is *due* from `refresh_ahead` seconds before expiry (Higress's
//!   `vertexTokenRefreshAhead`), or when there is no token;
//! - one refresh at a time: while one is in flight, nobody starts another, and callers keep
//!   using the old token if it is still usable. A refresh that has not completed after
//!   `refresh_timeout` seconds counts as lost and may be started again;
//! - after a failed refresh, no new one starts for `retry_after_failure` seconds; requests
//!   meanwhile use the old token while usable, else are told the token is unavailable.
//!
//! Once warm, a request never waits: the refresh starts ahead of expiry and the old token
//! serves until the new one arrives. The state derives `Serialize`/`Deserialize` so a
//! host can keep one copy for all workers (e.g. in shared data, updated with CAS).

use super::auth::AccessToken;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Seconds before expiry from which a token is no longer handed out.
pub const SAFETY: u64 = 10;

/// What a request should do about the token.
#[derive(PartialEq, Eq)]
pub enum TokenAction<'a> {
    /// Send the request with this token. When `refresh` is true this caller has been chosen
    /// to start the refresh callout now (the cache already counts it as in flight).
    Use { token: &'a str, refresh: bool },
    /// No usable token; this caller must start the refresh callout and wait for it.
    FetchAndWait,
    /// No usable token; a refresh is in flight: wait for it (or fail after a timeout).
    Wait,
    /// No usable token and the last refresh failed: answer 503, retry after this many
    /// seconds.
    Unavailable { retry_after: u64 },
}

impl fmt::Debug for TokenAction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenAction::Use { refresh, .. } => f
                .debug_struct("Use")
                .field("token", &"<redacted>")
                .field("refresh", refresh)
                .finish(),
            TokenAction::FetchAndWait => f.write_str("FetchAndWait"),
            TokenAction::Wait => f.write_str("Wait"),
            TokenAction::Unavailable { retry_after } => f
                .debug_struct("Unavailable")
                .field("retry_after", retry_after)
                .finish(),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cached {
    token: String,
    /// Unix seconds.
    expires_at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Refresh {
    Idle,
    InFlight { since: u64 },
    Failed { at: u64 },
}

/// The cache; see the module docs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCache {
    refresh_ahead: u64,
    refresh_timeout: u64,
    retry_after_failure: u64,
    token: Option<Cached>,
    refresh: Refresh,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("refresh_ahead", &self.refresh_ahead)
            .field("has_token", &self.token.is_some())
            .field("expires_at", &self.token.as_ref().map(|c| c.expires_at))
            .field("refresh", &self.refresh)
            .finish()
    }
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::new(300)
    }
}

impl TokenCache {
    /// A cold cache refreshing `refresh_ahead` seconds before expiry (at least [`SAFETY`]);
    /// in-flight refreshes time out after 30 s, failed ones are retried after 5 s.
    pub fn new(refresh_ahead: u64) -> Self {
        TokenCache {
            refresh_ahead: refresh_ahead.max(SAFETY),
            refresh_timeout: 30,
            retry_after_failure: 5,
            token: None,
            refresh: Refresh::Idle,
        }
    }

    /// Same cache with other timeouts (seconds).
    pub fn with_timeouts(mut self, refresh_timeout: u64, retry_after_failure: u64) -> Self {
        self.refresh_timeout = refresh_timeout.max(1);
        self.retry_after_failure = retry_after_failure;
        self
    }

    /// The usable token at `now`, if any.
    pub fn token(&self, now: u64) -> Option<&str> {
        self.token
            .as_ref()
            .filter(|c| now.saturating_add(SAFETY) < c.expires_at)
            .map(|c| c.token.as_str())
    }

    /// Whether a refresh callout is in flight (and not timed out) at `now`.
    pub fn refreshing(&self, now: u64) -> bool {
        matches!(self.refresh, Refresh::InFlight { since } if now < since.saturating_add(self.refresh_timeout))
    }

    fn due(&self, now: u64) -> bool {
        self.token
            .as_ref()
            .is_none_or(|c| now.saturating_add(self.refresh_ahead) >= c.expires_at)
    }

    /// Decide for a request (or a timer tick) at `now`; see [`TokenAction`]. Starting a
    /// refresh is recorded here, so exactly one caller is told to start it.
    pub fn poll(&mut self, now: u64) -> TokenAction<'_> {
        let may_start = match self.refresh {
            Refresh::Idle => true,
            Refresh::InFlight { since } => now >= since.saturating_add(self.refresh_timeout),
            Refresh::Failed { at } => now >= at.saturating_add(self.retry_after_failure),
        };
        let start = self.due(now) && may_start;
        if start {
            self.refresh = Refresh::InFlight { since: now };
        }
        let retry_after = match self.refresh {
            Refresh::Failed { at } => at
                .saturating_add(self.retry_after_failure)
                .saturating_sub(now)
                .max(1),
            _ => 1,
        };
        let in_flight = matches!(self.refresh, Refresh::InFlight { .. });
        match self.token(now) {
            Some(token) => TokenAction::Use {
                token,
                refresh: start,
            },
            None if start => TokenAction::FetchAndWait,
            None if in_flight => TokenAction::Wait,
            None => TokenAction::Unavailable { retry_after },
        }
    }

    /// The refresh callout returned a token at `now`.
    pub fn refreshed(&mut self, now: u64, token: AccessToken) {
        self.token = Some(Cached {
            expires_at: now.saturating_add(token.expires_in),
            token: token.token,
        });
        self.refresh = Refresh::Idle;
    }

    /// The refresh callout failed at `now` (status, bad answer, timeout).
    pub fn refresh_failed(&mut self, now: u64) {
        self.refresh = Refresh::Failed { at: now };
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn tok(t: &str, expires_in: u64) -> AccessToken {
        AccessToken {
            token: t.into(),
            expires_in,
        }
    }

    #[test]
    fn cold_start_fetches_once_and_others_wait() {
        let mut c = TokenCache::new(300);
        assert_eq!(c.poll(1000), TokenAction::FetchAndWait);
        assert_eq!(c.poll(1001), TokenAction::Wait);
        assert!(c.refreshing(1001));
        c.refreshed(1002, tok("a", 3600));
        assert_eq!(
            c.poll(1003),
            TokenAction::Use {
                token: "a",
                refresh: false
            }
        );
    }

    #[test]
    fn refreshes_ahead_of_expiry_serving_the_old_token() {
        let mut c = TokenCache::new(300);
        c.poll(0);
        c.refreshed(0, tok("a", 3600));
        assert_eq!(
            c.poll(3299),
            TokenAction::Use {
                token: "a",
                refresh: false
            }
        );
        // Due from expiry - 300: one caller starts the refresh, the others keep using "a".
        assert_eq!(
            c.poll(3300),
            TokenAction::Use {
                token: "a",
                refresh: true
            }
        );
        assert_eq!(
            c.poll(3301),
            TokenAction::Use {
                token: "a",
                refresh: false
            }
        );
        c.refreshed(3302, tok("b", 3600));
        assert_eq!(
            c.poll(3303),
            TokenAction::Use {
                token: "b",
                refresh: false
            }
        );
    }

    #[test]
    fn never_hands_out_a_token_about_to_expire() {
        let mut c = TokenCache::new(10).with_timeouts(30, 5);
        c.poll(0);
        c.refreshed(0, tok("a", 100));
        assert_eq!(c.token(89), Some("a"));
        assert_eq!(c.token(90), None);
        assert_eq!(
            c.poll(85),
            TokenAction::Use {
                token: "a",
                refresh: false
            }
        );
        assert_eq!(c.poll(90), TokenAction::FetchAndWait);
    }

    #[test]
    fn failures_back_off_and_lost_refreshes_time_out() {
        let mut c = TokenCache::new(300).with_timeouts(30, 5);
        assert_eq!(c.poll(0), TokenAction::FetchAndWait);
        c.refresh_failed(1);
        assert_eq!(c.poll(2), TokenAction::Unavailable { retry_after: 4 });
        assert_eq!(c.poll(6), TokenAction::FetchAndWait);
        // Lost callout: after the timeout someone may try again.
        assert_eq!(c.poll(20), TokenAction::Wait);
        assert_eq!(c.poll(36), TokenAction::FetchAndWait);
        // A failed refresh with a still-usable token keeps serving it.
        c.refreshed(40, tok("a", 600));
        assert_eq!(
            c.poll(340),
            TokenAction::Use {
                token: "a",
                refresh: true
            }
        );
        c.refresh_failed(341);
        assert_eq!(
            c.poll(342),
            TokenAction::Use {
                token: "a",
                refresh: false
            }
        );
        assert_eq!(
            c.poll(346),
            TokenAction::Use {
                token: "a",
                refresh: true
            }
        );
    }

    #[test]
    fn serialises_for_shared_state_and_debug_hides_the_token() {
        let mut c = TokenCache::new(60);
        c.poll(0);
        c.refreshed(0, tok("ya29.secret", 3600));
        let json = serde_json::to_string(&c).unwrap();
        let back: TokenCache = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        assert!(!format!("{c:?} {:?}", c.clone().poll(1)).contains("ya29"));
    }
}
