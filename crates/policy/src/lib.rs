//! Plugin configuration, Higress `_rules_` matching, model mapping, vendor endpoints and
//! provider selection.
//!
//! Pure: time, randomness and metrics are passed in, so everything here is tested natively.

pub mod balancer;
pub mod bedrock;
pub mod config_error;
pub mod context_file;
pub mod failover;
pub mod herding;
pub mod local;
pub mod metrics;
pub mod model_map;
pub mod models;
pub mod observe;
pub mod proxy;
pub mod resp;
pub mod rules;
pub mod select;
pub mod stats;
pub mod translation;
pub mod vendor;
pub mod vertex;

pub use config_error::ConfigError;
