//! Secrets through real Envoy: the client's credentials never reach a vendor, and the
//! configured API tokens never show up in Envoy's log (the plugins' log at every level, Envoy's
//! whole log at its default level), in error bodies or in response headers. Checked on what
//! the mock vendors received and on Envoy's log file.

use std::path::PathBuf;
use switchyard::run::EnvoyProcess;
use switchyard_e2e::*;

/// Configured vendor tokens: distinctive, so any leak is found by a plain substring search.
const TOKENS: &[&str] = &[
    "sk-SECRET-deepseek-4f1c9a",
    "sk-SECRET-deepseek-b7e2d0",
    "sk-ant-SECRET-claude-93ad1e",
    "AIza-SECRET-gemini-5c7b3f",
];
/// What the client sends as its own credentials.
const CLIENT_SECRETS: &[&str] = &["client-SECRET-bearer-e4a1", "client-SECRET-xkey-77b2"];

/// Envoy with `-l <global>` and the `wasm` component at `trace`: a wrapper script around the
/// real binary rewrites the level the harness passes.
fn envoy_with_log_level(dir: &std::path::Path, global: &str) -> PathBuf {
    let real = envoy_bin();
    let script = dir.join("envoy-wrapper.sh");
    std::fs::create_dir_all(dir).expect("dir");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n# -l info (from the harness) becomes -l {global}, plus wasm:trace.\nfor a in \"$@\"; do shift; if [ \"$prev\" = \"-l\" ]; then a={global}; fi; set -- \"$@\" \"$a\"; prev=\"$a\"; done\nexec {} \"$@\" --component-log-level wasm:trace\n",
            real.display()
        ),
    )
    .expect("write wrapper");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    script
}

struct Setup {
    gw: Gateway,
    deepseek: MockServer,
    claude: MockServer,
    gemini: MockServer,
}

/// Balancer in front of the proxy with three vendors (two tokens for deepseek), started with
/// Envoy's global log level `global`.
fn setup(global: &str) -> Setup {
    let deepseek = mock();
    let claude = mock();
    let gemini = mock();
    let mut s = spec();
    s.filters.push(lb_filter(json!({
        "providers": [
            {"name": "ds", "key": "ds", "model": "deepseek-chat"},
            {"name": "cl", "key": "cl", "model": "claude-sonnet-4"},
            {"name": "ge", "key": "ge", "model": "gemini-2.5-flash"}
        ],
        "allow_client_choice": true,
        "metrics": {"source": "static", "values": {"ds": 1, "cl": 1, "ge": 1}}
    })));
    s.filters.push(proxy_filter(json!({
        "providers": [
            {"id": "ds", "type": "deepseek", "apiTokens": [TOKENS[0], TOKENS[1]]},
            {"id": "cl", "type": "claude", "apiTokens": [TOKENS[2]]},
            {"id": "ge", "type": "gemini", "apiTokens": [TOKENS[3]]}
        ],
        "activeProviderId": "ds",
        "activeProviderHeader": "x-selected-provider",
        "maxRequestBodyBytes": 4096
    })));
    add_provider(&mut s, "ds", deepseek.addr());
    add_provider(&mut s, "cl", claude.addr());
    add_provider(&mut s, "ge", gemini.addr());
    s.default_cluster = Some("provider-ds".into());
    let dir = root().join(format!(
        "target/e2e/secrets-{}-{global}",
        std::process::id()
    ));
    let envoy = envoy_with_log_level(&dir, global);
    let envoy =
        EnvoyProcess::start(&envoy, &s, &dir.join("envoy"), 1).unwrap_or_else(|e| panic!("{e}"));
    Setup {
        gw: Gateway { envoy },
        deepseek,
        claude,
        gemini,
    }
}

/// Traffic that exercises every path where a token is handled: each vendor, plain and
/// streaming, with client credentials in every header the gateway knows and in the query,
/// plus gateway errors and vendor errors (401 rotates tokens out of the pool).
fn drive(st: &Setup) -> Vec<Response> {
    let gw = &st.gw;
    let creds = [
        ("authorization", format!("Bearer {}", CLIENT_SECRETS[0])),
        ("x-api-key", CLIENT_SECRETS[1].to_string()),
        ("api-key", CLIENT_SECRETS[1].to_string()),
        ("x-goog-api-key", CLIENT_SECRETS[1].to_string()),
    ];
    let mut out = Vec::new();
    let path = format!("/v1/chat/completions?key={}", CLIENT_SECRETS[0]);
    for vendor in ["ds", "cl", "ge"] {
        let mut headers: Vec<(&str, &str)> = creds.iter().map(|(k, v)| (*k, v.as_str())).collect();
        headers.push(("x-selected-provider", vendor));
        for body in [
            r#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#,
            r#"{"model":"auto","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        ] {
            for _ in 0..2 {
                out.push(gw.request("POST", &path, &headers, &[body.as_bytes()]));
            }
        }
    }
    let headers: Vec<(&str, &str)> = creds.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Gateway errors: bad JSON, too large, unsupported API, bad Gemini model.
    out.push(gw.request("POST", &path, &headers, &[b"{nope"]));
    let big = format!(
        r#"{{"model":"auto","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(5000)
    );
    out.push(gw.request("POST", &path, &headers, &[big.as_bytes()]));
    out.push(gw.request(
        "POST",
        "/v1/images/generations",
        &headers,
        &[br#"{"model":"auto"}"#],
    ));
    out.push(gw.request(
        "POST",
        "/v1/chat/completions",
        &[("x-selected-provider", "ge")],
        &[br#"{"model":"../x","messages":[{"role":"user","content":"hi"}]}"#],
    ));
    // Vendor errors, including the ones that make the proxy judge a token.
    for m in [&st.deepseek, &st.claude, &st.gemini] {
        m.push_script(Script::error(401, "invalid api key"));
        m.push_script(Script::error(500, "boom"));
    }
    for vendor in ["ds", "cl", "ge"] {
        let mut headers = headers.clone();
        headers.push(("x-selected-provider", vendor));
        for _ in 0..3 {
            out.push(gw.request(
                "POST",
                &path,
                &headers,
                &[br#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#],
            ));
        }
    }
    out
}

fn assert_no_secret(what: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "{what} contains {s}:\n{text}");
    }
}

#[test]
fn client_credentials_never_reach_a_vendor_and_tokens_go_only_to_their_vendor() {
    let st = setup("info");
    let answers = drive(&st);
    assert!(answers.iter().any(|r| r.status == 200));
    let vendors = [
        ("deepseek", &st.deepseek, &TOKENS[0..2]),
        ("claude", &st.claude, &TOKENS[2..3]),
        ("gemini", &st.gemini, &TOKENS[3..4]),
    ];
    for (name, m, own) in vendors {
        let got = m.requests();
        assert!(!got.is_empty(), "{name} got no traffic");
        for up in &got {
            let dump = format!(
                "{} {:?} {}",
                up.path,
                up.headers,
                String::from_utf8_lossy(&up.body)
            );
            assert_no_secret(&format!("request to {name}"), &dump, CLIENT_SECRETS);
            let others: Vec<&str> = TOKENS
                .iter()
                .copied()
                .filter(|t| !own.contains(t))
                .collect();
            assert_no_secret(&format!("request to {name}"), &dump, &others);
            assert!(
                own.iter().any(|t| dump.contains(t)),
                "{name} request carries none of its own tokens: {dump}"
            );
        }
    }
}

#[test]
fn tokens_stay_out_of_logs_error_bodies_and_response_headers() {
    // Default level: nothing in Envoy's log at all.
    let st = setup("info");
    let answers = drive(&st);
    for r in &answers {
        let dump = format!("{} {:?} {}", r.status, r.headers, r.text());
        assert_no_secret("a response", &dump, TOKENS);
        assert_no_secret("a response", &dump, CLIENT_SECRETS);
    }
    assert!(
        answers.iter().any(|r| r.status >= 400),
        "errors were exercised"
    );
    std::thread::sleep(std::time::Duration::from_millis(300)); // log flush interval
    let log = st.gw.envoy.log();
    assert!(
        log.contains("wasm"),
        "the plugins' trace log is in the file"
    );
    assert_no_secret("Envoy's log at info (wasm at trace)", &log, TOKENS);
    assert!(!st.gw.wasm_failed());
}

#[test]
fn at_debug_level_only_envoys_own_header_dumps_could_show_a_token() {
    // `-l debug`: Envoy's router and codecs dump whole header maps (the upstream request
    // carries the vendor credential by design) and `config` dumps the filter configs with the
    // plugins' configuration; the plugins themselves must not log tokens at any level.
    let st = setup("debug");
    drive(&st);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = st.gw.envoy.log();
    // Attribute each line (header dumps span several lines) to the component of the last
    // `[time][thread][level][component]` line.
    let mut component = String::new();
    let mut leaking = std::collections::BTreeSet::new();
    for line in log.lines() {
        if line.starts_with('[') {
            component = line
                .split(']')
                .nth(3)
                .unwrap_or("")
                .trim_start_matches('[')
                .to_string();
        }
        if TOKENS.iter().any(|t| line.contains(t)) {
            assert_ne!(component, "wasm", "a plugin logged a token: {line}");
            leaking.insert(component.clone());
        }
    }
    for c in &leaking {
        assert!(
            [
                "router",
                "http",
                "client",
                "pool",
                "http2",
                "connection",
                "config"
            ]
            .contains(&c.as_str()),
            "token in Envoy log component {c}"
        );
    }
    assert!(!st.gw.wasm_failed());
}
