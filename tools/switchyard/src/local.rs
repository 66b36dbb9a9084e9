//! Local runs: providers whose API token variables are not set are served by a mock provider,
//! so the quickstart works on a machine with no vendor keys.

use crate::envoy::Cluster;
use crate::gateway::{endpoint_cluster, process_env, GatewayConfig, Upstreams};
use mock_provider::MockServer;
use std::collections::BTreeMap;

/// The mocks of a running gateway, one per provider that needs one, kept across reloads.
#[derive(Default)]
pub struct LocalMocks {
    mocks: BTreeMap<String, MockServer>,
    /// Mocks of providers removed by the last plan, kept until [`LocalMocks::release_retired`]
    /// (a running Envoy may still route to them until its new config is in force).
    retired: Vec<MockServer>,
}

impl LocalMocks {
    /// Decide each provider's upstream: its endpoint (or vendor host) when its token variables
    /// are set, else a mock on loopback (reused when the provider already had one). Mocks of
    /// providers no longer configured are stopped.
    pub fn plan(&mut self, cfg: &GatewayConfig) -> std::io::Result<Upstreams> {
        self.plan_with_env(cfg, &process_env)
    }

    fn plan_with_env(
        &mut self,
        cfg: &GatewayConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> std::io::Result<Upstreams> {
        let mut by_provider = BTreeMap::new();
        let mut keep = BTreeMap::new();
        for p in cfg.providers.iter().map(|p| &p.value) {
            let real = if p.missing_token_vars(env).is_empty() {
                let tokens = p.resolved_tokens(env).unwrap_or_default();
                p.upstream_url()
                    .and_then(|u| endpoint_cluster(&p.cluster_name(), &u))
                    .map(|c| (c, tokens))
            } else {
                None
            };
            let entry = match real {
                Some(e) => e,
                None => {
                    let mock = match self.mocks.remove(&p.name.value) {
                        Some(m) => m,
                        None => MockServer::start(
                            "127.0.0.1:0".parse().map_err(std::io::Error::other)?,
                        )?,
                    };
                    let cluster = Cluster::plain(&p.cluster_name(), mock.addr());
                    keep.insert(p.name.value.clone(), mock);
                    (cluster, vec![format!("mock-key-{}", p.name.value)])
                }
            };
            by_provider.insert(p.name.value.clone(), entry);
        }
        // What is left belongs to removed providers.
        let old = std::mem::replace(&mut self.mocks, keep);
        self.retired.extend(old.into_values());
        Ok(Upstreams { by_provider })
    }

    /// Stop the mocks of removed providers.
    pub fn release_retired(&mut self) {
        self.retired.clear();
    }

    /// Names of the providers served by a mock.
    pub fn mocked(&self) -> Vec<String> {
        self.mocks.keys().cloned().collect()
    }
}
