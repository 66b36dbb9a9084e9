//! The switchyard CLI against real Envoy: rendered bootstraps pass `envoy --mode validate`,
//! and `switchyard up` applies an edited gateway.yaml (a provider added) without restarting
//! Envoy or dropping a request in flight, and keeps running through a bad edit. A Bedrock
//! provider's AWS secret written as `${VAR}` in `options` is resolved from the environment
//! and signs real requests (native runtime; Proxy-Wasm refuses SigV4 clearly).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;
use switchyard::gateway::{GatewayConfig, Upstreams};
use switchyard::up::{Event, Up, UpOptions};
use switchyard_e2e::*;

fn validate(bootstrap: &Path) -> (bool, String) {
    let out = Command::new(envoy_bin())
        .args(["--mode", "validate", "-l", "error", "-c"])
        .arg(bootstrap)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// `envoy --mode validate` also loads the plugins and hands them their configs, so this checks
/// that the real plugins accept what the CLI renders.
#[test]
fn rendered_bootstraps_pass_envoy_validate() {
    let dir = scratch_dir("cli-validate");
    let env = |v: &str| Some(format!("test-{v}"));
    // `vendors`: TLS clusters, path prefixes, Claude/Gemini options; `higress`: the Redis
    // metric source and a self-hosted endpoint. (`quickstart` runs in the `up` test.)
    for ex in ["vendors", "higress"] {
        let cfg = GatewayConfig::load(&root().join(format!("examples/{ex}/gateway.yaml")))
            .unwrap_or_else(|e| panic!("{e}"));
        let ups = Upstreams::configured(&cfg, &env).unwrap();
        let spec = switchyard::gateway::render(&cfg, &ups, &wasm_dir(), cfg.admin_addr());
        let path = dir.join(format!("{ex}.json"));
        std::fs::write(&path, envoy::render(&spec).to_string()).unwrap();
        let (ok, text) = validate(&path);
        assert!(ok, "{ex}: {text}");
    }
    // The check can fail: a balancer config the plugin refuses fails validation.
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("vendors.json")).unwrap()).unwrap();
    let filters = v
        .pointer_mut(
            "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/http_filters",
        )
        .unwrap();
    let lb = filters
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|f| f.pointer("/typed_config/config/name") == Some(&json!("ai-load-balancer")))
        .unwrap();
    lb["typed_config"]["config"]["configuration"]["value"] = json!(r#"{"providers":[]}"#);
    let bad = dir.join("bad.json");
    std::fs::write(&bad, v.to_string()).unwrap();
    let (ok, text) = validate(&bad);
    assert!(!ok, "envoy accepted a refused plugin config: {text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `awsSecretKey: "${VAR}"` in gateway.yaml: resolved at render time, the mock provider
/// verifies the SigV4 signature made with it; missing, it is reported without any secret.
#[test]
fn bedrock_secret_from_the_environment() {
    const KEY_ID: &str = "AKIDOPTIONSE2E";
    const SECRET: &str = "optvar/Secret+Key/e2e";
    let mock = MockServer::start("127.0.0.1:0".parse().unwrap()).unwrap();
    mock.add_aws_credentials(KEY_ID, SECRET);
    let yaml = format!(
        "listen: 127.0.0.1:0\nproviders:\n  - name: aws\n    type: bedrock\n    model: anthropic.claude-3-5-sonnet-20240620-v1:0\n    endpoint: 'http://{}'\n    options:\n      awsRegion: us-east-1\n      awsAccessKey: ${{E2E_AWS_ACCESS_KEY}}\n      awsSecretKey: \"${{E2E_AWS_SECRET_KEY}}\"\n",
        mock.addr()
    );
    let cfg = GatewayConfig::parse(&yaml).unwrap_or_else(|e| panic!("{e:?}"));
    // Missing: named with its line, and neither the secret nor the access key is shown.
    let only_key = |v: &str| (v == "E2E_AWS_ACCESS_KEY").then(|| KEY_ID.to_string());
    let err = Upstreams::configured(&cfg, &only_key).unwrap_err();
    let shown = format!("{err:?}");
    assert_eq!(err.len(), 1, "{shown}");
    assert_eq!(err[0].line, 10, "{shown}");
    assert_eq!(err[0].field, "providers[0].options.awsSecretKey");
    assert!(
        shown.contains("`E2E_AWS_SECRET_KEY`")
            && !shown.contains(KEY_ID)
            && !shown.contains(SECRET),
        "{shown}"
    );
    // Set: rendered into ai-proxy's config, and requests are signed with it.
    let env = |v: &str| match v {
        "E2E_AWS_ACCESS_KEY" => Some(KEY_ID.to_string()),
        "E2E_AWS_SECRET_KEY" => Some(SECRET.to_string()),
        _ => None,
    };
    let ups = Upstreams::configured(&cfg, &env).unwrap();
    let mut spec =
        switchyard::gateway::render(&cfg, &ups, &wasm_dir(), "127.0.0.1:0".parse().unwrap());
    let base = switchyard_e2e::spec();
    spec.runtime = base.runtime;
    spec.native_module_dir = base.native_module_dir;
    let gw = Gateway::start(&spec);
    let chat = r#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#;
    let r = gw.post("/v1/chat/completions", chat);
    if native() {
        assert_eq!(r.status, 200, "{}", r.text());
        let got = mock.requests();
        let auth = got[0].header("authorization").unwrap();
        assert!(
            auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={KEY_ID}/")),
            "{auth}"
        );
    } else {
        assert_eq!(r.status, 500, "{}", r.text());
        assert_eq!(r.json()["error"]["code"], "sigv4_unsupported_runtime");
        assert!(mock.requests().is_empty());
    }
    assert!(!gw.log().contains(SECRET));
    // The check can fail: a wrong secret in the environment is refused by the mock.
    if native() {
        let wrong = |v: &str| match v {
            "E2E_AWS_ACCESS_KEY" => Some(KEY_ID.to_string()),
            _ => Some("not-the-secret".to_string()),
        };
        let ups = Upstreams::configured(&cfg, &wrong).unwrap();
        let mut spec =
            switchyard::gateway::render(&cfg, &ups, &wasm_dir(), "127.0.0.1:0".parse().unwrap());
        let base = switchyard_e2e::spec();
        spec.runtime = base.runtime;
        spec.native_module_dir = base.native_module_dir;
        let bad = Gateway::start(&spec);
        let r = bad.post("/v1/chat/completions", chat);
        assert_eq!(r.status, 403, "{}", r.text());
    }
}

fn gateway_yaml(providers: &[(&str, &str, std::net::SocketAddr, u32)]) -> String {
    let mut s = String::from("listen: 127.0.0.1:0\nproviders:\n");
    let mut values = Vec::new();
    for (name, model, addr, load) in providers {
        s.push_str(&format!(
            "  - {{name: {name}, type: openai, model: {model}, endpoint: 'http://{addr}'}}\n"
        ));
        values.push(format!("{name}: {load}"));
    }
    // A provider whose key variable is unset: `up` serves it with a mock; never picked.
    s.push_str("  - {name: spare, type: deepseek, model: deepseek-chat, api_tokens: ['${SWITCHYARD_E2E_UNSET_KEY}']}\n");
    values.push("spare: 1000".into());
    s.push_str(&format!(
        "balancer:\n  strategy: least\n  metrics: {{source: static, values: {{{}}}}}\n",
        values.join(", ")
    ));
    s
}

const AUTO: &str = r#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#;

fn recv(rx: &mpsc::Receiver<Event>) -> Event {
    rx.recv_timeout(Duration::from_secs(60))
        .expect("no reload event within 60 s")
}

#[test]
fn up_applies_edits_without_restart() {
    let alpha = mock();
    let beta = mock();
    let dir = scratch_dir("cli-up");
    let config = dir.join("gateway.yaml");
    std::fs::write(
        &config,
        gateway_yaml(&[("alpha", "alpha-model", alpha.addr(), 10)]),
    )
    .unwrap();
    let mut opts = UpOptions::new(config.clone(), envoy_bin(), wasm_dir(), dir.join("run"));
    opts.poll_interval = Duration::from_millis(100);
    let mut gw = Up::start(opts).unwrap_or_else(|e| panic!("{e}"));
    let addr = gw.listen();
    let pid = gw.pid();
    assert_eq!(gw.mocked(), ["spare"]);
    let log = gw.envoy.log_path.clone();
    let lds_updates = |gw: &Up| {
        let (_, s) = gw
            .envoy
            .admin_get("/stats?filter=^listener_manager\\.lds\\.update_success$")
            .unwrap();
        s.split(": ")
            .nth(1)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap()
    };
    let lds_before = lds_updates(&gw);

    let r = request(
        addr,
        "POST",
        "/v1/chat/completions",
        &[],
        &[AUTO.as_bytes()],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "alpha-model");
    assert_eq!(alpha.requests().len(), 1);

    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            gw.watch(&stop, &mut |_, ev| {
                let _ = tx.send(ev.clone());
            })
        });
        // A slow request in flight while the config changes must still complete.
        alpha.push_script(Script {
            ttfb_ms: 1500,
            ..Script::default()
        });
        let slow = s.spawn(move || {
            request(
                addr,
                "POST",
                "/v1/chat/completions",
                &[],
                &[AUTO.as_bytes()],
            )
        });
        while alpha.requests().len() < 2 {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Add a provider that is less loaded: `auto` goes there once the edit applies.
        let edited = gateway_yaml(&[
            ("alpha", "alpha-model", alpha.addr(), 10),
            ("beta", "beta-model", beta.addr(), 5),
        ]);
        std::fs::write(&config, edited).unwrap();
        match recv(&rx) {
            Event::Applied { providers, .. } => assert_eq!(providers, ["alpha", "beta", "spare"]),
            other => panic!(
                "{other:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        }
        let r = request(
            addr,
            "POST",
            "/v1/chat/completions",
            &[],
            &[AUTO.as_bytes()],
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["model"], "beta-model");
        assert_eq!(beta.requests().len(), 1);
        let r = slow.join().unwrap();
        assert_eq!(r.status, 200, "in-flight request: {}", r.text());
        assert_eq!(r.json()["model"], "alpha-model");

        // A bad edit is reported with file, line and field; the running config stays.
        std::fs::write(
            &config,
            "providers:\n  - {name: beta, type: nosuchvendor, model: m}\n",
        )
        .unwrap();
        match recv(&rx) {
            Event::Rejected { message } => {
                assert!(
                    message.contains(
                        "gateway.yaml:2: providers[0].type: unknown vendor type `nosuchvendor`"
                    ),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        let r = request(
            addr,
            "POST",
            "/v1/chat/completions",
            &[],
            &[AUTO.as_bytes()],
        );
        assert_eq!(r.json()["model"], "beta-model");
        assert_eq!(beta.requests().len(), 2);

        // An edit only Envoy can refuse: a second listener on a port that is taken.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let two = gateway_yaml(&[
            ("alpha", "alpha-model", alpha.addr(), 10),
            ("beta", "beta-model", beta.addr(), 5),
        ])
        .replace(
            "listen: 127.0.0.1:0",
            &format!(
                "listeners: [{{address: '{addr}'}}, {{address: '{}'}}]",
                taken.local_addr().unwrap()
            ),
        );
        std::fs::write(&config, two).unwrap();
        match recv(&rx) {
            Event::Rejected { message } => assert!(message.contains("cannot bind"), "{message}"),
            other => panic!("{other:?}"),
        }
        let r = request(
            addr,
            "POST",
            "/v1/chat/completions",
            &[],
            &[AUTO.as_bytes()],
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["model"], "beta-model");
        assert_eq!(beta.requests().len(), 3);
        drop(taken);
        stop.store(true, Ordering::SeqCst);
        watcher.join().unwrap();
    });
    // One Envoy process throughout.
    assert_eq!(gw.pid(), pid);
    assert!(gw.envoy.running());
    // Exactly one listener update succeeded: the good edit.
    assert_eq!(lds_updates(&gw), lds_before + 1);
    drop(gw);
    let _ = std::fs::remove_dir_all(&dir);
}
