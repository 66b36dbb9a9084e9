//! The native runtime in real Envoy 1.40: `libswitchyard.so` (e2e build, with the test-only
//! filters of `modules/switchyard/src/test_filters.rs`) loads, a filter that holds the request
//! headers and reads the body re-selects the route, a second module filter sees its header,
//! panics are contained, and labelled counters scrape under the Wasm build's names.

use std::process::Command;
use switchyard_e2e::*;

/// `switchyard-test` (+ `switchyard-test-echo` when `echo`) in front of providers `a` (the
/// default route) and `b` (route `provider-b`, matched on `x-selected-provider: b`).
fn native_gateway(echo: bool) -> (Gateway, MockServer, MockServer) {
    let a = mock();
    let b = mock();
    let mut s = spec();
    // The native chain needs no json_to_metadata: the filter reads the body itself.
    s.body_metadata = false;
    s.native_module_dir = Some(native_test_dir());
    s.native_filters.push(native_filter(
        "switchyard-test",
        json!({"field": "provider"}),
    ));
    if echo {
        s.native_filters
            .push(native_filter("switchyard-test-echo", json!({})));
    }
    add_provider(&mut s, "a", a.addr());
    add_provider(&mut s, "b", b.addr());
    s.default_cluster = Some("provider-a".into());
    (Gateway::start(&s), a, b)
}

const CHAT: &str = "/v1/chat/completions";

#[test]
fn route_is_reselected_after_the_body_phase() {
    let (gw, a, b) = native_gateway(true);
    // The body arrives in three chunks: the filter holds the headers until the last one.
    let r = gw.request(
        "POST",
        CHAT,
        &[
            ("content-type", "application/json"),
            ("x-forwarded-test", "1"),
            ("x-forwarded-test", "2"),
        ],
        &[
            br#"{"model":"m","#,
            br#""messages":[],"#,
            br#""provider":"b"}"#,
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        a.requests().is_empty(),
        "the route chosen before the body phase was used"
    );
    let got = b.requests();
    assert_eq!(got.len(), 1);
    let req = &got[0];
    assert_eq!(req.header("x-selected-provider"), Some("b"));
    // The second module filter runs after the first released the headers: it sees the header.
    assert_eq!(req.header("x-seen-provider"), Some("b"));
    // ...but not the new route: `xds.route_name`/`xds.cluster_name` still name the route chosen
    // before the body phase (Envoy re-resolves only when the router asks), as with Wasm. A
    // later filter must follow the routing header, not the route name.
    assert_eq!(req.header("x-seen-route"), Some("main"));
    assert_eq!(req.header("x-seen-cluster"), Some("provider-a"));
    // In the response phase the route is the re-selected one.
    assert_eq!(r.header("x-test-route-at-response"), Some("provider-b"));
    // Attributes and repeated request headers, read in the response phase.
    assert_eq!(r.header("x-test-response-code"), Some("200"));
    assert_eq!(
        r.header("x-test-response-code-details"),
        Some("via_upstream")
    );
    assert_eq!(r.header("x-test-forwarded-count"), Some("2"));
    // The rewritten body went upstream whole, without a stale content-length.
    let body = req.json().expect("upstream body is JSON");
    assert_eq!(body["routed_by"], "switchyard-test");
    assert_eq!(body["provider"], "b");
    assert!(req
        .header("content-length")
        .is_none_or(|l| l == req.body.len().to_string()));

    // No routing field: the default route.
    let r = gw.post(CHAT, r#"{"model":"m","messages":[]}"#);
    assert_eq!(r.status, 200);
    assert_eq!(a.requests().len(), 1);
    assert_eq!(b.requests().len(), 1);
}

#[test]
fn panics_are_answered_counted_and_envoy_keeps_serving() {
    let (gw, a, b) = native_gateway(false);
    for hook in ["request_headers", "request_body", "response_headers"] {
        let r = gw.request(
            "POST",
            CHAT,
            &[("x-switchyard-test-panic", hook)],
            &[br#"{"model":"m","provider":"b"}"#],
        );
        assert_eq!(r.status, 500, "panic in {hook}: {}", r.text());
        let err = r.json();
        assert_eq!(err["error"]["type"], "server_error", "{hook}");
        assert_eq!(err["error"]["code"], "internal_error", "{hook}");
        // Envoy is still there and the next request is served normally.
        let ok = gw.post(CHAT, r#"{"model":"m","provider":"b"}"#);
        assert_eq!(ok.status, 200, "after a panic in {hook}: {}", ok.text());
    }
    assert!(a.requests().is_empty());
    // Three served requests plus the one whose response headers panicked.
    assert_eq!(b.requests().len(), 4);
    let log = gw.log();
    assert!(
        log.contains("panicked in request_headers: ") && log.contains("test panic requested"),
        "panic not logged"
    );
    assert_eq!(
        gw.metric("switchyard_module_panics", &[("filter", "switchyard-test")]),
        3.0
    );
}

#[test]
fn labelled_counter_scrapes_under_the_wasm_name() {
    let (gw, _a, _b) = native_gateway(false);
    for _ in 0..2 {
        assert_eq!(gw.post(CHAT, r#"{"model":"m","provider":"b"}"#).status, 200);
    }
    let scrape = gw.prometheus();
    let lines: Vec<&str> = scrape
        .lines()
        .filter(|l| l.contains("gen_ai_client_requests"))
        .collect();
    eprintln!("{lines:#?}");
    // No prefix: Envoy strips the module's default `dynamicmodulescustom` namespace like it
    // strips Wasm's `wasmcustom`; labels are real labels, in definition order.
    assert!(
        lines.contains(&r#"gen_ai_client_requests{gen_ai_provider_name="b",reason="body"} 2"#),
        "{lines:#?}"
    );
}

/// Callouts, the worker scheduler (woken from a thread of the module's) and the main-thread
/// config scheduler, each resuming a held request.
#[test]
fn callouts_and_schedulers_resume_held_requests() {
    let a = mock();
    let b = mock();
    let mut s = spec();
    s.body_metadata = false;
    s.native_module_dir = Some(native_test_dir());
    s.native_filters
        .push(native_filter("switchyard-test-async", json!({})));
    add_provider(&mut s, "a", a.addr());
    add_provider(&mut s, "b", b.addr());
    s.default_cluster = Some("provider-a".into());
    let gw = Gateway::start(&s);
    let body: &[u8] = br#"{"model":"m","messages":[]}"#;

    let r = gw.request("POST", CHAT, &[("x-test-async", "callout")], &[body]);
    assert_eq!(r.status, 200, "{}", r.text());
    let got = a.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("x-callout-status"), Some("200"));
    assert_eq!(got[0].header("x-callout-json"), Some("yes"));
    assert_eq!(got[0].body, body, "the held body went on whole");
    let callouts = b.requests();
    assert_eq!(callouts.len(), 1, "the callout reached cluster provider-b");
    assert_eq!(callouts[0].header("host"), Some("callout.local"));

    let r = gw.request("POST", CHAT, &[("x-test-async", "scheduler")], &[body]);
    assert_eq!(r.status, 200, "{}", r.text());
    let got = a.requests();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].header("x-scheduled"), Some("7"));
    assert_eq!(got[1].body, body);

    // The config-time thread's three events reached the main thread.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let r = gw.post(CHAT, std::str::from_utf8(body).unwrap_or_default());
    assert_eq!(r.status, 200);
    assert_eq!(a.requests()[2].header("x-config-ticks"), Some("3"));
}

#[test]
fn unknown_filter_name_is_rejected() {
    let mut s = spec();
    s.body_metadata = false;
    s.native_module_dir = Some(native_test_dir());
    s.native_filters
        .push(native_filter("no-such-filter", json!({})));
    let dir = root().join(format!("target/e2e/native-reject-{}", std::process::id()));
    let err = match switchyard::run::EnvoyProcess::start(&envoy_bin(), &s, &dir, 1) {
        Ok(_) => panic!("Envoy accepted an unknown filter_name"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("unknown filter_name"), "{err}");
}

/// Every Envoy callback the module imports exists in this Envoy, and the module exports the
/// hooks Envoy looks up.
#[test]
fn abi_symbols_exist_in_envoy() {
    let nm = |path: &std::path::Path| -> String {
        let out = Command::new("nm")
            .arg("-D")
            .arg(path)
            .output()
            .expect("nm runs (binutils)");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let envoy = nm(&envoy_bin());
    let defined: std::collections::HashSet<&str> = envoy
        .lines()
        .filter_map(
            |l| match l.split_whitespace().collect::<Vec<_>>().as_slice() {
                [_, kind, name] if *kind != "U" => Some(*name),
                _ => None,
            },
        )
        .collect();
    let module = nm(&native_test_dir().join("libswitchyard.so"));
    let mut imported = 0;
    for line in module.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let ["U", sym] = parts.as_slice() {
            if sym.starts_with("envoy_dynamic_module_callback_") {
                imported += 1;
                assert!(defined.contains(sym), "{sym} is not exported by Envoy");
            }
        }
    }
    assert!(imported > 10, "module imports {imported} callbacks");
    for hook in [
        "envoy_dynamic_module_on_program_init",
        "envoy_dynamic_module_on_http_filter_config_new",
        "envoy_dynamic_module_on_http_filter_new",
        "envoy_dynamic_module_on_http_filter_request_body",
        "envoy_dynamic_module_on_http_filter_http_callout_done",
    ] {
        assert!(
            module.contains(&format!(" T {hook}\n")),
            "{hook} not exported"
        );
    }
}
