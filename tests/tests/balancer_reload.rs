//! ai-load-balancer config hot reload in real Envoy: listeners come from a watched LDS file;
//! a new balancer config applies without a restart, and an invalid one is refused (with a log
//! line naming the field) while the previous config keeps serving.
//!
//! Build first: `cargo xtask build`; run with `cargo xtask test` (or set `ENVOY_BIN`).

use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
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

#[test]
fn balancer_config_reloads_and_bad_config_keeps_the_old_one() {
    let minmax = mock();
    let qianwen = mock();
    let mut s = fixed_port_spec();
    s.filters
        .push(lb_filter(balancer(json!({"minimax_1": 90, "qwen_1": 10}))));
    add_provider(&mut s, "minmax", minmax.addr());
    add_provider(&mut s, "qianwen", qianwen.addr());
    s.default_cluster = Some("provider-minmax".into());
    let mut gw = DynamicGateway::start(&s, 1);
    let pid = gw.envoy.pid();
    assert_eq!(model_at(s.listen), "qwen3-max-preview");

    // New metrics in the config: traffic follows without a restart.
    s.filters[0] = lb_filter(balancer(json!({"minimax_1": 5, "qwen_1": 50})));
    gw.apply(&s);
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            model_at(s.listen) == "MiniMax-M2.1"
        }),
        "new config applied"
    );
    assert_eq!(gw.envoy.pid(), pid);

    // An invalid config is refused, named in the log, and the previous one keeps serving.
    s.filters[0] = lb_filter(json!({"providers": [{"name": "a", "model": 7}]}));
    gw.apply(&s);
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            gw.envoy.log().contains("providers[0].model")
        }),
        "refusal logged"
    );
    for _ in 0..5 {
        assert_eq!(model_at(s.listen), "MiniMax-M2.1");
    }
    assert!(gw.envoy.running(), "Envoy survived the bad config");
    assert_eq!(gw.envoy.pid(), pid);
    let log = gw.envoy.log();
    assert!(!log.contains("panicked at"), "{log}");
}
