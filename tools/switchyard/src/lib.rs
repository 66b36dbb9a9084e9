//! Switchyard's native side: rendering Envoy bootstraps (and, later, Higress manifests) from
//! one gateway config, and running the gateway locally.

pub mod envoy;
pub mod gateway;
pub mod local;
pub mod run;
