//! Local runs: providers whose token or option variables are not set are served by a mock
//! provider, so the quickstart works on a machine with no vendor keys.

use crate::envoy::Cluster;
use crate::gateway::{
    endpoint_cluster, process_env, resolve_value, GatewayConfig, ProviderEntry, Upstreams,
    CREDENTIAL_OPTIONS,
};
use mock_provider::MockServer;
use serde_json::{json, Map, Value};
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
    /// Decide each provider's upstream: its endpoint (or vendor host) when every variable its
    /// tokens and options reference is set, else a mock on loopback (reused when the provider
    /// already had one). Mocks of providers no longer configured are stopped.
    ///
    /// A mocked provider gets the token `mock-key-<name>` (a Bedrock API key, a Vertex static
    /// access token), leaves out its credential options (AWS key pair, Vertex service-account
    /// key; [`CREDENTIAL_OPTIONS`]) and any other option whose variables are unset; a Vertex
    /// provider without `vertexProjectId` gets `mock-project`.
    pub fn plan(&mut self, cfg: &GatewayConfig) -> std::io::Result<Upstreams> {
        self.plan_with_env(cfg, &process_env)
    }

    fn plan_with_env(
        &mut self,
        cfg: &GatewayConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> std::io::Result<Upstreams> {
        let mut ups = Upstreams::default();
        let mut keep = BTreeMap::new();
        for p in cfg.providers.iter().map(|p| &p.value) {
            let real = match (p.resolved_tokens(env), p.resolved_options(env)) {
                (Some(tokens), Some(options)) => p
                    .with_options(options.clone())
                    .upstream_url()
                    .and_then(|u| endpoint_cluster(&p.cluster_name(), &u))
                    .map(|c| (c, tokens, options)),
                _ => None,
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
                    let tokens = vec![format!("mock-key-{}", p.name.value)];
                    (cluster, tokens, mock_options(p, env))
                }
            };
            let (cluster, tokens, options) = entry;
            ups.by_provider
                .insert(p.name.value.clone(), (cluster, tokens));
            ups.options.insert(p.name.value.clone(), options);
        }
        // What is left belongs to removed providers.
        let old = std::mem::replace(&mut self.mocks, keep);
        self.retired.extend(old.into_values());
        Ok(ups)
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

/// The options of a provider served by a mock: no credentials, and no option whose
/// variables are unset.
fn mock_options(p: &ProviderEntry, env: &dyn Fn(&str) -> Option<String>) -> Map<String, Value> {
    let mut out: Map<String, Value> = p
        .options
        .iter()
        .filter(|(k, _)| !CREDENTIAL_OPTIONS.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.clone(), resolve_value(v, env)?)))
        .collect();
    if p.vendor.value == "vertex" && !out.contains_key("vertexProjectId") {
        out.insert("vertexProjectId".into(), json!("mock-project"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOUDS: &str = "providers:
  - name: aws
    type: bedrock
    model: m
    options: {awsRegion: us-east-1, awsAccessKey: '${AK}', awsSecretKey: '${SK}', awsSessionToken: '${ST}'}
  - name: vx
    type: vertex
    model: gemini-2.5-flash
    options: {vertexRegion: us-central1, vertexAuthKey: '${VERTEX_KEY}'}
";

    #[test]
    fn providers_missing_option_variables_are_mocked_without_credentials() {
        let cfg = GatewayConfig::parse(CLOUDS).unwrap();
        let mut mocks = LocalMocks::default();
        let ups = mocks.plan_with_env(&cfg, &|_| None).unwrap();
        assert_eq!(mocks.mocked(), ["aws", "vx"]);
        for name in ["aws", "vx"] {
            let (cluster, tokens) = &ups.by_provider[name];
            assert_eq!(cluster.address, "127.0.0.1");
            assert_eq!(tokens, &[format!("mock-key-{name}")]);
        }
        let aws = &ups.options["aws"];
        assert_eq!(aws.keys().collect::<Vec<_>>(), ["awsRegion"]);
        let vx = &ups.options["vx"];
        assert!(!vx.contains_key("vertexAuthKey"));
        assert_eq!(vx["vertexProjectId"], "mock-project");
        // ai-proxy accepts what the mocks are served with.
        assert_eq!(ups.validate(&cfg), []);
        let spec = crate::gateway::render(
            &cfg,
            &ups,
            std::path::Path::new("/w"),
            "127.0.0.1:0".parse().unwrap(),
        );
        let text = spec.filters[1].config.to_string();
        assert!(!text.contains("${"), "{text}");
        assert!(!spec.clusters.iter().any(|c| c.name == "vertex-auth-vx"));
    }

    #[test]
    fn a_new_plan_resolves_again() {
        // Each reload plans again: a provider whose variables are now set leaves its mock.
        let cfg = GatewayConfig::parse(CLOUDS).unwrap();
        let mut mocks = LocalMocks::default();
        mocks.plan_with_env(&cfg, &|_| None).unwrap();
        assert_eq!(mocks.mocked(), ["aws", "vx"]);
        let env = |k: &str| ["AK", "SK", "ST"].contains(&k).then(|| format!("v-{k}"));
        let ups = mocks.plan_with_env(&cfg, &env).unwrap();
        assert_eq!(mocks.mocked(), ["vx"]);
        let (cluster, tokens) = &ups.by_provider["aws"];
        assert_eq!(cluster.address, "bedrock-runtime.us-east-1.amazonaws.com");
        assert!(tokens.is_empty());
        assert_eq!(ups.options["aws"]["awsSecretKey"], "v-SK");
        assert_eq!(ups.validate(&cfg), []);
        mocks.release_retired();
    }
}
