//! Vertex AI access tokens from a service-account key, shared by every worker.
//!
//! One [`TokenCache`] per key lives in the host's shared state under `KeyAuth::shared_key`
//! (as JSON in Proxy-Wasm shared data, as itself in the native module's process memory);
//! every change is atomic (a compare-and-swap, or a change under the key's lock). The
//! cache's in-flight refresh is the lease: the one caller whose
//! CAS write moved it to "in flight" sends the token request, and a lost refresh times out
//! after 30 s.
//!
//! - **Background** ([`TokenRefresher`], on the root tick, every second while a key is
//!   configured): fetches the first token right after (re)configuration and refreshes it
//!   `vertexTokenRefreshAhead` seconds before it expires. Requests keep using the old token
//!   meanwhile, so once warm no request waits for the token endpoint.
//! - **Requests** ([`token_for_request`]) only read the cache while a token is usable. With
//!   none (cold start before the first tick's fetch returned, or every token expired) the
//!   request fetches one itself and waits for it (its header phase is held, then resumed
//!   with the token). While the token endpoint is failing (the last fetch failed less than
//!   5 s ago and no token is usable), requests are answered 503 with `retry-after` rather
//!   than piling onto the failing endpoint.
//!
//! Neither the key, the JWT assertion nor a token is ever logged.

use crate::host::{Callout, CalloutResponse, Host};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use switchyard_policy::proxy::ProxyConfig;
use switchyard_policy::rules::RuleSet;
use switchyard_policy::vertex::KeyAuth;
use switchyard_protocol::vertex::{parse_token_response, AuthError, TokenAction, TokenCache};
use switchyard_protocol::{ErrorKind, GatewayError};

/// How long a token request may take.
const TOKEN_TIMEOUT_MS: u64 = 10_000;
/// The root tick while a key is configured.
const TICK: Duration = Duration::from_secs(1);

/// What a request does about its token.
pub enum Need {
    /// Send the request with this token.
    Token(String),
    /// No usable token: this request's token request is in flight (callout id); hold the
    /// request until it answers.
    Fetching(u32),
}

/// A request that cannot get a token: the error and the `retry-after` seconds.
pub struct Unavailable {
    pub error: GatewayError,
    pub retry_after: u64,
}

/// Look at the shared cache of `auth` (a cold one when none is stored).
fn view<R>(host: &(impl Host + ?Sized), auth: &KeyAuth, f: impl FnOnce(&TokenCache) -> R) -> R {
    host.shared_view(&auth.shared_key, |cache: Option<&TokenCache>| match cache {
        Some(cache) => f(cache),
        None => f(&TokenCache::new(auth.refresh_ahead)),
    })
}

/// Change the shared cache of `auth` atomically.
fn change<R>(
    host: &(impl Host + ?Sized),
    auth: &KeyAuth,
    f: impl FnMut(&mut TokenCache) -> R,
) -> Option<R> {
    host.shared_update(&auth.shared_key, || TokenCache::new(auth.refresh_ahead), f)
}

/// What `poll` said, owned (the cache is gone once the CAS closure returns).
enum Polled {
    Use {
        token: String,
        refresh: bool,
    },
    /// No usable token; `claimed`: this caller moved the cache to "in flight" (else someone
    /// else's fetch is in flight).
    Fetch {
        claimed: bool,
    },
    Unavailable(u64),
}

/// Poll the shared cache at `now` (seconds) with compare-and-swap; `None` when the shared
/// state could not be written.
fn poll(host: &(impl Host + ?Sized), auth: &KeyAuth, now: u64) -> Option<Polled> {
    change(host, auth, |cache| match cache.poll(now) {
        TokenAction::Use { token, refresh } => Polled::Use {
            token: token.to_string(),
            refresh,
        },
        TokenAction::FetchAndWait => Polled::Fetch { claimed: true },
        TokenAction::Wait => Polled::Fetch { claimed: false },
        TokenAction::Unavailable { retry_after } => Polled::Unavailable(retry_after),
    })
}

fn record(host: &(impl Host + ?Sized), auth: &KeyAuth, f: impl Fn(&mut TokenCache)) {
    change(host, auth, f);
}

fn unavailable(detail: &str, retry_after: u64) -> Unavailable {
    Unavailable {
        error: GatewayError::new(
            ErrorKind::Unavailable,
            "vertex_token_unavailable",
            format!("no Vertex AI access token is available: {detail}"),
        ),
        retry_after,
    }
}

/// Send the token request for `auth` at `now` (seconds): a freshly signed JWT assertion.
fn send_token_request(host: &mut impl Host, auth: &KeyAuth, now: u64) -> Result<u32, String> {
    let body = auth
        .key
        .token_request_body(now)
        .map_err(|e| e.to_string())?;
    let length = body.len().to_string();
    let headers = [
        (":method", "POST"),
        (":path", auth.endpoint.path.as_str()),
        (":authority", auth.endpoint.authority.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
        ("content-length", length.as_str()),
    ];
    host.http_call(&Callout {
        cluster: &auth.cluster,
        headers: &headers,
        body: Some(body.as_bytes()),
        timeout_ms: TOKEN_TIMEOUT_MS,
    })
}

/// The token for a request, or the fetch it must wait for, or why there is none.
pub fn token_for_request(host: &mut impl Host, auth: &KeyAuth) -> Result<Need, Unavailable> {
    let now = host.now_ms() / 1000;
    // The warm path: one read, no write.
    if let Some(token) = view(&*host, auth, |c| c.token(now).map(str::to_string)) {
        return Ok(Need::Token(token));
    }
    match poll(&*host, auth, now) {
        // Someone stored a token since the read above. Rarely, this poll also claimed the
        // refresh the root tick would have sent: then this request sends it and waits for
        // the fresh token (a claim nobody serves would stall refreshes for 30 s).
        Some(Polled::Use { token, refresh }) => {
            if refresh {
                match send_token_request(host, auth, now) {
                    Ok(id) => return Ok(Need::Fetching(id)),
                    Err(e) => {
                        log::warn!("ai-proxy: Vertex AI token request not sent: {e}");
                        record(&*host, auth, |c| c.refresh_failed(now));
                    }
                }
            }
            Ok(Need::Token(token))
        }
        Some(Polled::Unavailable(retry_after)) => Err(unavailable(
            "the token endpoint failed; retrying shortly",
            retry_after,
        )),
        // No usable token (or the shared state refused the write): fetch one and wait.
        Some(Polled::Fetch { .. }) | None => match send_token_request(host, auth, now) {
            Ok(id) => Ok(Need::Fetching(id)),
            Err(e) => {
                log::warn!("ai-proxy: Vertex AI token request not sent: {e}");
                record(&*host, auth, |c| c.refresh_failed(now));
                Err(unavailable("the token request could not be sent", 5))
            }
        },
    }
}

/// Read a token request's answer at `now` (seconds) into the shared cache: the token, or
/// the failure (logged without secrets).
fn accept_answer(
    host: &(impl Host + ?Sized),
    auth: &KeyAuth,
    response: &CalloutResponse,
) -> Result<String, AuthError> {
    let now = host.now_ms() / 1000;
    let answer = match response.status {
        Some(status) => parse_token_response(status, &response.body),
        None => Err(AuthError::TokenRejected {
            status: 0,
            error: "no answer (timeout, reset or no healthy upstream)".into(),
        }),
    };
    match answer {
        Ok(token) => {
            let value = token.token.clone();
            record(host, auth, |c| c.refreshed(now, token.clone()));
            Ok(value)
        }
        Err(e) => {
            log::warn!(
                "ai-proxy: Vertex AI token for {} not refreshed: {e}",
                auth.key.client_email
            );
            record(host, auth, |c| c.refresh_failed(now));
            Err(e)
        }
    }
}

/// A request's own token request answered: the token to send, or why there is none.
pub fn accept(
    host: &(impl Host + ?Sized),
    auth: &KeyAuth,
    response: &CalloutResponse,
) -> Result<String, Unavailable> {
    accept_answer(host, auth, response).map_err(|e| unavailable(&e.to_string(), 5))
}

/// The root's background refreshes (one per VM and plugin config).
#[derive(Default)]
pub struct TokenRefresher {
    pending: HashMap<u32, Arc<KeyAuth>>,
}

/// Every distinct service-account key in the config.
fn keys(rules: &RuleSet<ProxyConfig>) -> Vec<Arc<KeyAuth>> {
    let mut out: Vec<Arc<KeyAuth>> = Vec::new();
    let all = rules.all().flat_map(|c| c.providers.iter());
    for auth in all.filter_map(|p| p.vertex.as_ref().and_then(|v| v.auth.clone())) {
        if !out.iter().any(|a| a.shared_key == auth.shared_key) {
            out.push(auth);
        }
    }
    out
}

impl TokenRefresher {
    /// The tick the config needs: every second while a service-account key is configured.
    pub fn tick_period(rules: &RuleSet<ProxyConfig>) -> Option<Duration> {
        (!keys(rules).is_empty()).then_some(TICK)
    }

    /// One tick: for each key whose token is missing or due, the worker whose CAS claims
    /// the refresh sends the token request.
    pub fn tick(&mut self, host: &mut impl Host, rules: &RuleSet<ProxyConfig>) {
        let now = host.now_ms() / 1000;
        for auth in keys(rules) {
            if self
                .pending
                .values()
                .any(|a| a.shared_key == auth.shared_key)
            {
                continue;
            }
            // Read first: a token good past the refresh window, or a refresh in flight,
            // needs no write.
            let settled = view(&*host, &auth, |c| {
                c.refreshing(now) || c.token(now.saturating_add(auth.refresh_ahead)).is_some()
            });
            if settled {
                continue;
            }
            let start = matches!(
                poll(&*host, &auth, now),
                Some(Polled::Use { refresh: true, .. } | Polled::Fetch { claimed: true })
            );
            if !start {
                continue;
            }
            match send_token_request(host, &auth, now) {
                Ok(id) => {
                    self.pending.insert(id, auth);
                }
                Err(e) => {
                    log::warn!("ai-proxy: Vertex AI token request not sent: {e}");
                    record(&*host, &auth, |c| c.refresh_failed(now));
                }
            }
        }
    }

    /// A callout the root started answered; returns whether it was a token request.
    pub fn on_response(
        &mut self,
        host: &(impl Host + ?Sized),
        id: u32,
        response: &CalloutResponse,
    ) -> bool {
        let Some(auth) = self.pending.remove(&id) else {
            return false;
        };
        let _ = accept_answer(host, &auth, response);
        true
    }
}
