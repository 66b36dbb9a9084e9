//! ai-load-balancer config hot reload in real Envoy: listeners come from a watched LDS file;
//! a new balancer config applies without a restart, and an invalid one is refused (with a log
//! line naming the field) while the previous config keeps serving.
//!
//! Build first: `cargo xtask build`; run with `cargo xtask test` (or set `ENVOY_BIN`).

use serde_json::Value;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};
use switchyard::envoy::{
    clusters, discovery_response, listeners, render_dynamic, BootstrapSpec, CDS_FILE, CLUSTER_TYPE,
    LDS_FILE, LISTENER_TYPE,
};
use switchyard::run::{write_atomic, EnvoyProcess};
use switchyard_e2e::*;

const AUTO: &str = r#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#;

fn balancer(values: Value) -> Value {
    json!({
        "providers": [
            {"name": "minmax", "key": "minimax_1", "model": "MiniMax-M2.1"},
            {"name": "qianwen", "key": "qwen_1", "model": "qwen3-max-preview"}
        ],
        "metrics": {"source": "static", "values": values}
    })
}

fn write_resources(dir: &Path, spec: &BootstrapSpec, version: u64) {
    let cds = discovery_response(version, CLUSTER_TYPE, clusters(spec));
    let lds = discovery_response(version, LISTENER_TYPE, listeners(spec));
    write_atomic(&dir.join(CDS_FILE), cds.to_string().as_bytes()).expect("cds");
    write_atomic(&dir.join(LDS_FILE), lds.to_string().as_bytes()).expect("lds");
}

fn model_at(addr: SocketAddr) -> String {
    let r = request(
        addr,
        "POST",
        "/v1/chat/completions",
        &[],
        &[AUTO.as_bytes()],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["model"].as_str().unwrap_or_default().to_string()
}

fn until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn balancer_config_reloads_and_bad_config_keeps_the_old_one() {
    let minmax = mock();
    let qianwen = mock();
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut s = BootstrapSpec::new(
        SocketAddr::from(([127, 0, 0, 1], port)),
        "127.0.0.1:0".parse().expect("addr"),
    );
    s.filters
        .push(lb_filter(balancer(json!({"minimax_1": 90, "qwen_1": 10}))));
    add_provider(&mut s, "minmax", minmax.addr());
    add_provider(&mut s, "qianwen", qianwen.addr());
    s.default_cluster = Some("provider-minmax".into());

    let workdir = root().join(format!("target/e2e/reload-{}", std::process::id()));
    let dir = workdir.join("xds");
    for f in [CDS_FILE, LDS_FILE] {
        if let Some(d) = dir.join(f).parent() {
            std::fs::create_dir_all(d).expect("xds dir");
        }
    }
    write_resources(&dir, &s, 1);
    let mut envoy = EnvoyProcess::start_bootstrap(
        &envoy_bin(),
        &render_dynamic("127.0.0.1:0".parse().expect("addr"), &dir),
        &workdir,
        1,
        s.listen,
        s.admin,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let pid = envoy.pid();
    assert_eq!(model_at(s.listen), "qwen3-max-preview");

    // New metrics in the config: traffic follows without a restart.
    s.filters[0] = lb_filter(balancer(json!({"minimax_1": 5, "qwen_1": 50})));
    write_resources(&dir, &s, 2);
    until("new config applied", Duration::from_secs(10), || {
        model_at(s.listen) == "MiniMax-M2.1"
    });
    assert_eq!(envoy.pid(), pid);

    // An invalid config is refused, named in the log, and the previous one keeps serving.
    s.filters[0] = lb_filter(json!({"providers": [{"name": "a", "model": 7}]}));
    write_resources(&dir, &s, 3);
    until("refusal logged", Duration::from_secs(10), || {
        envoy.log().contains("providers[0].model")
    });
    for _ in 0..5 {
        assert_eq!(model_at(s.listen), "MiniMax-M2.1");
    }
    assert!(envoy.running(), "Envoy survived the bad config");
    assert_eq!(envoy.pid(), pid);
    let log = envoy.log();
    assert!(!log.contains("panicked at"), "{log}");
    envoy.stop();
}
