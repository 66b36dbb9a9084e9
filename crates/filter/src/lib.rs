//! The two filters, `ai-load-balancer` and `ai-proxy`, as per-request state machines driven
//! by events (request headers, request body, response headers, response body, callout done,
//! tick, log) and talking to the host only through [`host::Host`] and [`host::HttpHost`].
//!
//! Each host is a thin adapter: `plugins/*` over Proxy-Wasm (Envoy, Higress), the native
//! module over Envoy's dynamic modules, and [`mock::MockHost`] for the tests, which drive the
//! filters callback by callback in memory. Decisions are pure and live in
//! `switchyard_policy`/`switchyard_protocol`; this crate sequences them.

pub mod balancer;
pub mod body_memo;
pub mod host;
pub mod mock;
pub mod proxy;
pub mod shared;

pub use host::{Action, BodyFacts, CalloutResponse, Host, HttpHost};
