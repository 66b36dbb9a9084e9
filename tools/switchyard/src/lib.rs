//! Switchyard's native side: one `gateway.yaml` rendered to an Envoy bootstrap or Higress
//! manifests, checks of both, and running the gateway locally with live config reloads.

pub mod check;
pub mod envoy;
pub mod gateway;
pub mod higress;
pub mod local;
pub mod run;
pub mod up;
