//! Local runs: providers whose API tokens are not configured are served by a mock provider,
//! so the quickstart works on a machine with no vendor keys.

use crate::envoy::Cluster;
use crate::gateway::{endpoint_cluster, GatewayConfig, Upstreams};
use mock_provider::MockServer;
use std::collections::BTreeMap;

/// Decide each provider's upstream: its endpoint (or vendor host) when its tokens resolve from
/// the environment, else a fresh mock on loopback. The mocks live as long as the returned Vec.
pub fn upstreams_with_mocks(cfg: &GatewayConfig) -> std::io::Result<(Upstreams, Vec<MockServer>)> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut by_provider = BTreeMap::new();
    let mut mocks = Vec::new();
    for p in &cfg.providers {
        let tokens = p.resolved_tokens(&env);
        let real = tokens.as_ref().filter(|t| !t.is_empty()).and_then(|t| {
            let url = p.endpoint.clone().or_else(|| default_endpoint(&p.vendor))?;
            let cluster = endpoint_cluster(&p.cluster_name(), &url)?;
            Some((cluster, t.clone()))
        });
        let entry = match real {
            Some(e) => e,
            None => {
                let mock =
                    MockServer::start("127.0.0.1:0".parse().map_err(std::io::Error::other)?)?;
                let cluster = Cluster::plain(&p.cluster_name(), mock.addr());
                mocks.push(mock);
                (cluster, vec![format!("mock-key-{}", p.name)])
            }
        };
        by_provider.insert(p.name.clone(), entry);
    }
    Ok((Upstreams { by_provider }, mocks))
}

/// The vendor's default endpoint (from the vendor table), when it has a fixed host.
fn default_endpoint(vendor: &str) -> Option<String> {
    let spec = switchyard_policy::vendor::vendor(vendor)?;
    (!spec.host.is_empty()).then(|| format!("https://{}", spec.host))
}
