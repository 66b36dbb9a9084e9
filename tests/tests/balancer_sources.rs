//! ai-load-balancer metric sources in real Envoy: Redis through Webdis (the seed's check end to
//! end), per-provider Prometheus `/metrics` over HTTP, and the fallback when metrics go stale.
//!
//! Needs `redis-server` and `webdis` (`cargo xtask setup` installs them). Build the plugins with
//! `cargo xtask build`, then
//! `ENVOY_BIN=... cargo test -p switchyard-e2e --test balancer_sources`.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use switchyard_e2e::*;

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(port: u16) {
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        }),
        "nothing listens on {port}"
    );
}

/// Redis on a free port, no persistence.
fn start_redis() -> (Killed, u16) {
    let port = free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--bind", "127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (cargo xtask setup installs it)");
    wait_for_port(port);
    (Killed(child), port)
}

/// Webdis (Redis over HTTP) in front of the Redis on `redis_port`.
fn start_webdis(redis_port: u16) -> (Killed, SocketAddr) {
    let port = free_port();
    let dir = scratch_dir(&format!("webdis-{port}"));
    let config = json!({
        "redis_host": "127.0.0.1",
        "redis_port": redis_port,
        "http_host": "127.0.0.1",
        "http_port": port,
        "threads": 1,
        "pool_size": 2,
        "daemonize": false,
        "database": 0,
        "verbosity": 1,
        "logfile": dir.join("webdis.log")
    });
    let path = dir.join("webdis.json");
    std::fs::write(&path, config.to_string()).expect("webdis config");
    let child = Command::new("webdis")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("webdis (cargo xtask setup installs it)");
    wait_for_port(port);
    (Killed(child), SocketAddr::from(([127, 0, 0, 1], port)))
}

fn redis_set(port: u16, key: &str, value: &str) {
    let ok = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "SET", key, value])
        .stdout(Stdio::null())
        .status()
        .expect("redis-cli");
    assert!(ok.success());
}

const AUTO: &str = r#"{"model":"auto","messages":[{"role":"user","content":"你好"}]}"#;

/// Send requests until three in a row land on `model` (the one the alias was rewritten to),
/// or fail. Until every provider's first measurement is in, picks may still vary.
fn until_model(gw: &Gateway, model: &str, within: Duration) {
    let deadline = Instant::now() + within;
    let mut streak = 0;
    loop {
        let r = gw.post("/masgod/v1/chat/completions", AUTO);
        assert_eq!(r.status, 200, "{}", r.text());
        if r.json()["model"] == model {
            streak += 1;
            if streak == 3 {
                return;
            }
            continue;
        }
        streak = 0;
        assert!(Instant::now() < deadline, "never routed to {model}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Send requests until fresh metrics decided a pick for `provider` (the balancer's pick
/// counter says so).
fn until_metrics_decide(gw: &Gateway, provider: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let r = gw.post("/masgod/v1/chat/completions", AUTO);
        assert_eq!(r.status, 200, "{}", r.text());
        let picks = &[("gen_ai_provider_name", provider), ("reason", "metrics")];
        if gw.metric("switchyard_balancer_picks", picks) > 0.0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never decided a pick:\n{}",
            gw.prometheus()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn all_go_to(gw: &Gateway, model: &str, n: usize) {
    for _ in 0..n {
        let r = gw.post("/masgod/v1/chat/completions", AUTO);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["model"], model);
    }
}

#[test]
fn seed_check_with_redis_over_webdis() {
    let (redis, redis_port) = start_redis();
    let (_webdis, webdis_addr) = start_webdis(redis_port);
    redis_set(redis_port, "ai_metric:qwen_1", "10");
    redis_set(redis_port, "ai_metric:minimax_1", "90");

    let minmax = mock();
    let qianwen = mock();
    let mut s = spec();
    s.filters.push(lb_filter(json!({
        "providers": [
            {"name": "minmax", "key": "minimax_1", "model": "MiniMax-M2.1"},
            {"name": "qianwen", "key": "qwen_1", "model": "qwen3-max-preview"}
        ],
        "redis": {"service_name": "redis-svc", "service_port": 6379, "timeout": 500,
                  "webdis_cluster": "webdis"},
        "redis_key_prefix": "ai_metric:",
        "target_header": "x-selected-provider",
        "metrics": {"refresh_ms": 100, "stale_after_ms": 2000}
    })));
    add_provider(&mut s, "minmax", minmax.addr());
    add_provider(&mut s, "qianwen", qianwen.addr());
    s.clusters
        .push(envoy::Cluster::plain("webdis", webdis_addr));
    s.default_cluster = Some("provider-minmax".into());
    // Two workers: both VMs must read the metrics one of them fetched (shared data).
    let gw = Gateway::start_with(&s, 2);

    // Until the first refresh lands, picks are weighted random (`reason="fallback"`); while
    // only one provider's metric is in, that provider is the only metric candidate. Once
    // qianwen's metric decided a pick, every later pick goes to it.
    until_metrics_decide(&gw, "qianwen", Duration::from_secs(15));
    all_go_to(&gw, "qwen3-max-preview", 10);
    assert!(
        gw.metric(
            "switchyard_balancer_picks",
            &[("gen_ai_provider_name", "qianwen"), ("reason", "metrics")]
        ) >= 10.0
    );
    let got = qianwen.requests();
    assert_eq!(
        got.last().and_then(|r| r.header("x-selected-provider")),
        Some("qianwen")
    );

    // Flip the load: traffic follows within a refresh or two.
    redis_set(redis_port, "ai_metric:qwen_1", "90");
    redis_set(redis_port, "ai_metric:minimax_1", "10");
    until_model(&gw, "MiniMax-M2.1", Duration::from_secs(6));
    all_go_to(&gw, "MiniMax-M2.1", 10);

    // Redis goes away: metrics turn stale, picks fall back to weighted random, never a 5xx.
    drop(redis);
    std::thread::sleep(Duration::from_millis(3500));
    let (before_m, before_q) = (minmax.requests().len(), qianwen.requests().len());
    for _ in 0..40 {
        let r = gw.post("/masgod/v1/chat/completions", AUTO);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let (m, q) = (
        minmax.requests().len() - before_m,
        qianwen.requests().len() - before_q,
    );
    assert_eq!(m + q, 40);
    assert!(m > 0 && q > 0, "fallback spreads by weight: {m}/{q}");
    // Native counters reach Envoy from the main thread's periodic flush, which a loaded
    // machine can delay past one scrape: wait for it (bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut fallbacks = gw.metric("switchyard_balancer_picks", &[("reason", "fallback")]);
    while fallbacks < 40.0 && std::time::Instant::now() < deadline {
        fallbacks = gw.metric("switchyard_balancer_picks", &[("reason", "fallback")]);
    }
    assert!(fallbacks >= 40.0, "fallback picks counted: {fallbacks}");
    assert!(!gw.wasm_failed(), "{}", gw.envoy.log());
}

/// `metrics.source: redis` with no Webdis: the native module reads Redis itself (a module
/// thread, the `redis` crate); a Proxy-Wasm plugin on stock Envoy cannot reach Redis without
/// Webdis, so it keeps to the documented fallback (weighted random, never an error).
#[test]
fn redis_without_webdis_native_reads_it_wasm_falls_back() {
    let (redis, redis_port) = start_redis();
    redis_set(redis_port, "ai_metric:qwen_1", "10");
    redis_set(redis_port, "ai_metric:minimax_1", "90");
    let minmax = mock();
    let qianwen = mock();
    let mut s = spec();
    s.filters.push(lb_filter(json!({
        "providers": [
            {"name": "minmax", "key": "minimax_1", "model": "MiniMax-M2.1"},
            {"name": "qianwen", "key": "qwen_1", "model": "qwen3-max-preview"}
        ],
        "redis": {"service_name": "127.0.0.1", "service_port": redis_port, "timeout": 500},
        "redis_key_prefix": "ai_metric:",
        "metrics": {"refresh_ms": 100, "stale_after_ms": 2000}
    })));
    add_provider(&mut s, "minmax", minmax.addr());
    add_provider(&mut s, "qianwen", qianwen.addr());
    s.default_cluster = Some("provider-minmax".into());
    let gw = Gateway::start_with(&s, 2);
    if !native() {
        for _ in 0..20 {
            let r = gw.post("/masgod/v1/chat/completions", AUTO);
            assert_eq!(r.status, 200, "{}", r.text());
        }
        assert!(gw.metric("switchyard_balancer_picks", &[("reason", "fallback")]) >= 20.0);
        assert!(!gw.wasm_failed(), "{}", gw.envoy.log());
        return;
    }
    until_metrics_decide(&gw, "qianwen", Duration::from_secs(15));
    all_go_to(&gw, "qwen3-max-preview", 10);
    // Flip the load: traffic follows within a refresh or two.
    redis_set(redis_port, "ai_metric:qwen_1", "90");
    redis_set(redis_port, "ai_metric:minimax_1", "10");
    until_model(&gw, "MiniMax-M2.1", Duration::from_secs(6));
    all_go_to(&gw, "MiniMax-M2.1", 10);
    // Redis goes away: metrics turn stale, picks fall back to weighted random, never a 5xx.
    drop(redis);
    std::thread::sleep(Duration::from_millis(3500));
    for _ in 0..20 {
        let r = gw.post("/masgod/v1/chat/completions", AUTO);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(gw.metric("switchyard_balancer_picks", &[("reason", "fallback")]) >= 20.0);
}

#[test]
fn http_source_polls_each_providers_own_metrics() {
    let minmax = mock();
    let qianwen = mock();
    minmax.set_metric("vllm:num_requests_running", 7.0);
    qianwen.set_metric("vllm:num_requests_running", 1.0);
    let mut s = spec();
    s.filters.push(lb_filter(json!({
        "providers": [
            {"name": "minmax", "key": "minimax_1", "model": "MiniMax-M2.1",
             "metrics_cluster": "metrics-minmax"},
            {"name": "qianwen", "key": "qwen_1", "model": "qwen3-max-preview",
             "metrics_cluster": "metrics-qianwen"}
        ],
        "metrics": {"source": "http", "refresh_ms": 100, "stale_after_ms": 3000,
                    "http": {"format": "prometheus", "metric": "vllm:num_requests_running"}}
    })));
    add_provider(&mut s, "minmax", minmax.addr());
    add_provider(&mut s, "qianwen", qianwen.addr());
    s.clusters
        .push(envoy::Cluster::plain("metrics-minmax", minmax.addr()));
    s.clusters
        .push(envoy::Cluster::plain("metrics-qianwen", qianwen.addr()));
    s.default_cluster = Some("provider-minmax".into());
    let gw = Gateway::start(&s);
    until_metrics_decide(&gw, "qianwen", Duration::from_secs(15));
    all_go_to(&gw, "qwen3-max-preview", 5);
    minmax.set_metric("vllm:num_requests_running", 0.0);
    until_model(&gw, "MiniMax-M2.1", Duration::from_secs(6));
    all_go_to(&gw, "MiniMax-M2.1", 5);
    assert!(!gw.wasm_failed(), "{}", gw.envoy.log());
}

#[test]
fn unreachable_metrics_fall_back_without_errors() {
    let minmax = mock();
    let qianwen = mock();
    let dead = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut s = spec();
    s.filters.push(lb_filter(json!({
        "providers": [
            {"name": "minmax", "key": "minimax_1", "model": "MiniMax-M2.1"},
            {"name": "qianwen", "key": "qwen_1", "model": "qwen3-max-preview"}
        ],
        "redis": {"service_name": "redis-svc", "webdis_cluster": "webdis"},
        "metrics": {"refresh_ms": 100}
    })));
    add_provider(&mut s, "minmax", minmax.addr());
    add_provider(&mut s, "qianwen", qianwen.addr());
    s.clusters.push(envoy::Cluster::plain("webdis", dead));
    s.default_cluster = Some("provider-minmax".into());
    let gw = Gateway::start(&s);
    for _ in 0..30 {
        let r = gw.post("/v1/chat/completions", AUTO);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(!minmax.requests().is_empty() && !qianwen.requests().is_empty());
    // The switch to the fallback is logged once (one worker VM), not once per request.
    let log = gw.log();
    assert_eq!(log.matches("no fresh metrics").count(), 1, "{log}");
    assert!(!gw.wasm_failed(), "{log}");
}

#[test]
fn local_source_spreads_concurrent_requests_by_in_flight_count() {
    let minmax = mock();
    let qianwen = mock();
    let slow = Script {
        ttfb_ms: 800,
        ..Script::default()
    };
    minmax.set_default_script(slow.clone());
    qianwen.set_default_script(slow);
    let mut s = spec();
    s.filters.push(lb_filter(json!({
        "providers": [
            {"name": "minmax", "key": "minimax_1", "model": "MiniMax-M2.1"},
            {"name": "qianwen", "key": "qwen_1", "model": "qwen3-max-preview"}
        ],
        "metrics": {"source": "local"}
    })));
    add_provider(&mut s, "minmax", minmax.addr());
    add_provider(&mut s, "qianwen", qianwen.addr());
    s.default_cluster = Some("provider-minmax".into());
    let gw = Gateway::start(&s);
    let addr = gw.addr();
    // Four requests at once: each pick sees the ones still in flight.
    let threads: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100 * i));
                request(
                    addr,
                    "POST",
                    "/v1/chat/completions",
                    &[],
                    &[AUTO.as_bytes()],
                )
                .status
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().ok(), Some(200));
    }
    assert_eq!(minmax.requests().len(), 2);
    assert_eq!(qianwen.requests().len(), 2);
    // Finished requests released their slots (at stream end): counts tie again, first wins.
    std::thread::sleep(Duration::from_millis(300));
    all_go_to(&gw, "MiniMax-M2.1", 1);
    assert!(!gw.wasm_failed(), "{}", gw.envoy.log());
}

#[test]
fn local_latency_signal_prefers_the_faster_provider() {
    let minmax = mock();
    let qianwen = mock();
    // minmax is slow; both start unknown (equal), so the first pick goes to minmax.
    minmax.set_default_script(Script {
        ttfb_ms: 300,
        ..Script::default()
    });
    let mut s = spec();
    s.filters.push(lb_filter(json!({
        "providers": [
            {"name": "minmax", "key": "minimax_1", "model": "MiniMax-M2.1"},
            {"name": "qianwen", "key": "qwen_1", "model": "qwen3-max-preview"}
        ],
        "metrics": {"source": "local", "local_signal": "latency"}
    })));
    add_provider(&mut s, "minmax", minmax.addr());
    add_provider(&mut s, "qianwen", qianwen.addr());
    s.default_cluster = Some("provider-minmax".into());
    let gw = Gateway::start(&s);
    all_go_to(&gw, "MiniMax-M2.1", 1);
    // minmax's average is now ~300 ms, qianwen's unknown (0): qianwen next, and it stays
    // preferred because its measured latency is far below minmax's.
    std::thread::sleep(Duration::from_millis(100));
    all_go_to(&gw, "qwen3-max-preview", 8);
    assert_eq!(minmax.requests().len(), 1);
    assert!(!gw.wasm_failed(), "{}", gw.envoy.log());
}
