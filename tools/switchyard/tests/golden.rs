//! Golden files of both renderings of every example config. `SWITCHYARD_BLESS=1 cargo test -p
//! switchyard --test golden` rewrites them; review the diff before committing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use switchyard::gateway::{GatewayConfig, Upstreams};
use switchyard::higress::{self, HigressOptions};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bless() -> bool {
    std::env::var_os("SWITCHYARD_BLESS").is_some()
}

/// Compare `actual` with the file at `path` (or write it when blessing).
fn golden(path: &Path, actual: &str) {
    if bless() {
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with SWITCHYARD_BLESS=1 to create it)",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the rendering at line {}:\n  golden: {:?}\n  actual: {:?}\n(SWITCHYARD_BLESS=1 regenerates)",
            path.display(),
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

/// Deterministic stand-ins for secrets.
fn test_env(var: &str) -> Option<String> {
    Some(format!("test-{}", var.to_ascii_lowercase()))
}

fn load(example: &str) -> GatewayConfig {
    GatewayConfig::load(&root().join("examples").join(example).join("gateway.yaml"))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn envoy_json(cfg: &GatewayConfig) -> String {
    let ups = Upstreams::configured(cfg, &test_env).unwrap();
    let spec = switchyard::gateway::render(
        cfg,
        &ups,
        Path::new("/opt/switchyard/wasm"),
        cfg.admin_addr(),
    );
    serde_json::to_string_pretty(&switchyard::envoy::render(&spec)).unwrap() + "\n"
}

fn higress_yaml(cfg: &GatewayConfig) -> String {
    let tokens = Upstreams::configured(cfg, &test_env).unwrap().tokens();
    higress::to_yaml(&higress::render(cfg, &tokens, &HigressOptions::default())).unwrap()
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/golden")
}

#[test]
fn envoy_renderings() {
    for ex in ["quickstart", "vendors", "higress"] {
        golden(
            &golden_dir().join(format!("{ex}.envoy.json")),
            &envoy_json(&load(ex)),
        );
    }
}

#[test]
fn higress_renderings() {
    for ex in ["quickstart", "vendors", "higress"] {
        golden(
            &golden_dir().join(format!("{ex}.higress.yaml")),
            &higress_yaml(&load(ex)),
        );
    }
}

/// `examples/higress/manifests.yaml` is what its gateway.yaml's comment says to run.
#[test]
fn higress_example_output_is_current() {
    let cfg = load("higress");
    let tokens = cfg
        .providers
        .iter()
        .map(|p| {
            let t = p.api_tokens.iter().map(|t| t.value.clone()).collect();
            (p.name.value.clone(), t)
        })
        .collect();
    let opts = HigressOptions {
        balancer_url: "oci://registry.example.com/switchyard/ai-load-balancer-higress:0.1.0".into(),
        proxy_url: "oci://registry.example.com/switchyard/ai-proxy:0.1.0".into(),
    };
    golden(
        &root().join("examples/higress/manifests.yaml"),
        &higress::to_yaml(&higress::render(&cfg, &tokens, &opts)).unwrap(),
    );
}

/// The goldens really pin the output: a changed provider changes both renderings.
#[test]
fn renderings_follow_the_config() {
    let mut cfg = load("quickstart");
    let before = (envoy_json(&cfg), higress_yaml(&cfg));
    cfg.providers[1].value.model.value = "deepseek-reasoner".into();
    let after = (envoy_json(&cfg), higress_yaml(&cfg));
    assert_ne!(before.0, after.0);
    assert_ne!(before.1, after.1);
    assert!(after.1.contains("deepseek-reasoner"));
}

/// Rendered manifests pass `check`, with every provider routed by its own Ingress.
#[test]
fn rendered_manifests_check_clean() {
    for ex in ["quickstart", "vendors", "higress"] {
        let cfg = load(ex);
        let m = switchyard::check::Manifests::parse(&higress_yaml(&cfg)).unwrap();
        assert_eq!(m.conditions.len(), cfg.providers.len(), "{ex}");
        let findings = switchyard::check::check_manifests(&m, None);
        assert!(findings.is_empty(), "{ex}: {findings:?}");
    }
}
