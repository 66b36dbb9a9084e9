//! `gateway.yaml`: one human-first file from which both plugin configs, the Envoy bootstrap
//! and the Higress manifests are generated, so provider names and routing-header values can
//! never drift apart.
//!
//! Loading keeps the line of every field that validation may complain about, so each problem
//! is reported as `file:line: field: message`.
//!
//! `schema` is the file's shape and what it says; `validate` loads and checks it; `env`
//! resolves `${VAR}` tokens and decides each provider's upstream; `render` turns it into the
//! plugin configs and Envoy's bootstrap spec.

mod diagnostics;
mod env;
mod render;
mod schema;
mod validate;

pub use diagnostics::{Diagnostic, GatewayError};
pub use env::{
    env_refs, missing_vars_problem, process_env, resolve_value, value_refs, EnvLookup, Upstreams,
    CREDENTIAL_OPTIONS,
};
pub use render::{endpoint_cluster, render};
pub use schema::{
    BalancerEntry, GatewayConfig, HigressEntry, LimitsEntry, ListenerEntry, Located, Options,
    ProviderEntry, RouteEntry, DEFAULT_HEADER, STRATEGIES,
};
