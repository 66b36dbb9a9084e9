//! The end-to-end scenarios: each one's Envoy spec, request body and answer check.

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use switchyard::envoy::{BootstrapSpec, Cluster, HeaderRoute, WasmFilter};
use switchyard::run::EnvoyProcess;

use super::processes::{pin, Mock};
use crate::Result;

/// Request body size of every scenario.
pub(super) const BODY_BYTES: usize = 1024;
/// Text events per streamed response in S3.
const STREAM_EVENTS: usize = 50;

/// A scenario: its Envoy and what one request looks like.
pub(super) struct Scenario {
    pub(super) key: &'static str,
    pub(super) title: &'static str,
    pub(super) body: String,
    /// Check of one response through the gateway (status 200 is checked before).
    pub(super) check: fn(&str) -> bool,
    pub(super) envoy: EnvoyProcess,
    pub(super) runs: Vec<Value>,
}

/// An OpenAI chat request of exactly [`BODY_BYTES`] bytes.
pub(super) fn chat_body(model: &str, stream: bool) -> String {
    let build = |pad: usize| {
        format!(
            concat!(
                r#"{{"model":"{}","stream":{},"temperature":0.7,"max_tokens":512,"messages":["#,
                r#"{{"role":"system","content":"You are a concise assistant for a platform team. Answer in plain English."}},"#,
                r#"{{"role":"user","content":"What does an AI gateway do?"}},"#,
                r#"{{"role":"assistant","content":"It routes requests to model vendors, translates protocols and enforces quotas."}},"#,
                r#"{{"role":"user","content":"Explain how it picks a provider when several serve the same model. {}"}}]}}"#
            ),
            model,
            stream,
            "x".repeat(pad)
        )
    };
    let base = build(0).len();
    build(BODY_BYTES.saturating_sub(base))
}

fn wasm_filter(dir: &Path, name: &str, file: &str, config: Value) -> WasmFilter {
    WasmFilter {
        name: name.into(),
        wasm_path: dir.join(file),
        config,
    }
}

/// A provider cluster and the route that the routing header `x-selected-provider: <name>`
/// selects (the shape the CLI renders).
pub(crate) fn add_provider(spec: &mut BootstrapSpec, name: &str, addr: SocketAddr) {
    let cluster = format!("provider-{name}");
    spec.header_routes.push(HeaderRoute {
        name: cluster.clone(),
        header: "x-selected-provider".into(),
        value: name.into(),
        cluster: cluster.clone(),
    });
    spec.clusters.push(Cluster::plain(&cluster, addr));
}

pub(crate) fn base_spec(upstream: SocketAddr) -> Result<BootstrapSpec> {
    let any: SocketAddr = "127.0.0.1:0".parse().map_err(|_| "addr")?;
    let mut s = BootstrapSpec::new(any, any);
    add_provider(&mut s, "upstream", upstream);
    s.default_cluster = Some("provider-upstream".into());
    Ok(s)
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}

fn check_plain(body: &str) -> bool {
    json_of(body)["object"] == "chat.completion"
}

fn check_s1(body: &str) -> bool {
    let v = json_of(body);
    v["object"] == "chat.completion" && v["model"] == "deepseek-chat"
}

fn check_s2(body: &str) -> bool {
    let v = json_of(body);
    v["object"] == "chat.completion"
        && v["model"] == "claude-sonnet-4-5"
        && v.pointer("/choices/0/message/content")
            .is_some_and(Value::is_string)
}

fn check_s3(body: &str) -> bool {
    body.contains("chat.completion.chunk") && body.trim_end().ends_with("data: [DONE]")
}

fn check_s4(body: &str) -> bool {
    let v = json_of(body);
    v["object"] == "chat.completion" && (v["model"] == "deepseek-chat" || v["model"] == "qwen-max")
}

/// The stream every S3 response carries: 50 text events of one word each.
pub(super) fn stream_script() -> Value {
    let words: Vec<String> = (0..STREAM_EVENTS).map(|i| format!("word{i}")).collect();
    json!({ "events": STREAM_EVENTS, "reply_text": words.join(" ") })
}

/// One scenario's definition: key, title, Envoy spec, request body, answer check.
type Row = (
    &'static str,
    &'static str,
    BootstrapSpec,
    String,
    fn(&str) -> bool,
);

pub(super) fn scenarios(
    mock: &Mock,
    envoy_bin: &Path,
    cpu: Option<u32>,
    wasm: &Path,
    only: Option<&[String]>,
) -> Result<Vec<Scenario>> {
    let workdir = crate::target_dir().join("bench/envoy");
    let mut out = Vec::new();
    for (key, title, spec, body, check) in scenario_specs(mock, wasm)? {
        let wanted = only.is_none_or(|o| o.iter().any(|k| k == key));
        if !(wanted || key == "S0" || key == "S0w") {
            continue;
        }
        let envoy = EnvoyProcess::start(envoy_bin, &spec, &workdir.join(key), 1)
            .map_err(|e| format!("{key}: {e}"))?;
        if let Some(c) = cpu {
            pin(envoy.pid(), c)?;
        }
        out.push(Scenario {
            key,
            title,
            body,
            check,
            envoy,
            runs: Vec::new(),
        });
    }
    Ok(out)
}

/// The scenarios' Envoy specs, against `mock`'s three listeners (plain, second, streaming).
pub(super) fn scenario_specs(mock: &Mock, wasm: &Path) -> Result<Vec<Row>> {
    let [plain, second, streaming] = [0, 1, 2].map(|i| mock.addrs.get(i).copied());
    let (Some(plain), Some(second), Some(streaming)) = (plain, second, streaming) else {
        return Err("mock-provider listeners missing".into());
    };
    let noop = || wasm_filter(wasm, "noop", "noop_filter.wasm", json!({}));
    let proxy = |config: Value| wasm_filter(wasm, "ai-proxy", "ai_proxy.wasm", config);
    let claude = json!({"provider": {
        "type": "claude", "apiTokens": ["sk-ant-bench"],
        "modelMapping": {"gpt-4o": "claude-sonnet-4-5"}
    }});

    let mut s0 = base_spec(plain)?;
    s0.body_metadata = false;
    let mut s0w = s0.clone();
    s0w.filters.push(noop());
    let mut s0j = base_spec(plain)?;
    s0j.filters.push(noop());
    let deepseek = json!({"provider": {
        "type": "deepseek", "apiTokens": ["sk-bench"],
        "modelMapping": {"gpt-4o": "deepseek-chat"}
    }});
    let mut s1j = base_spec(plain)?;
    s1j.filters.push(proxy(deepseek.clone()));
    let mut s1 = s1j.clone();
    s1.body_metadata = false;
    let mut s2 = base_spec(plain)?;
    s2.body_metadata = false;
    s2.filters.push(proxy(claude.clone()));
    let mut s3 = base_spec(streaming)?;
    s3.body_metadata = false;
    s3.filters.push(proxy(claude));
    let any: SocketAddr = "127.0.0.1:0".parse().map_err(|_| "addr")?;
    let mut s4 = BootstrapSpec::new(any, any);
    s4.filters.push(wasm_filter(
        wasm,
        "ai-load-balancer",
        "ai_load_balancer.wasm",
        json!({
            "providers": [
                {"name": "alpha", "key": "alpha_load", "model": "deepseek-chat"},
                {"name": "beta", "key": "beta_load", "model": "qwen-max"}
            ],
            "metrics": {"source": "local"}
        }),
    ));
    s4.filters.push(proxy(json!({
        "providers": [
            {"id": "alpha", "type": "deepseek", "apiTokens": ["sk-a"]},
            {"id": "beta", "type": "qwen", "apiTokens": ["sk-b"]}
        ],
        "activeProviderId": "alpha",
        "activeProviderHeader": "x-selected-provider"
    })));
    add_provider(&mut s4, "alpha", plain);
    add_provider(&mut s4, "beta", second);
    s4.default_cluster = Some("provider-alpha".into());

    // The same filters in the native module (libswitchyard.so, release build): no V8, no
    // json_to_metadata. Compared with S0, Envoy with no filter.
    let native = |wasm_spec: &BootstrapSpec| {
        let mut n = wasm_spec.clone();
        n.runtime = switchyard::envoy::Runtime::Native;
        n.native_module_dir = Some(crate::target_dir().join("native"));
        n
    };
    let (s1n, s2n, s3n, s4n) = (native(&s1), native(&s2), native(&s3), native(&s4));
    // The floor of the native rows: a filter of the module's test build that holds the request
    // headers until the body is complete (as ai-proxy and the balancer do there) and does
    // nothing else.
    let mut s0n = s0.clone();
    s0n.runtime = switchyard::envoy::Runtime::Native;
    s0n.native_module_dir = Some(crate::target_dir().join("native/test"));
    s0n.native_filters
        .push(switchyard::envoy::NativeFilter::switchyard(
            "switchyard-test-hold",
            json!({}),
        ));
    // The Envoy side of S1n without its logic: a test filter that makes the host calls S1n's
    // ai-proxy makes per request, with fixed arguments.
    let mut s1f = s0n.clone();
    s1f.native_filters = vec![switchyard::envoy::NativeFilter::switchyard(
        "switchyard-test-floor",
        json!({}),
    )];

    let plain_body = chat_body("gpt-4o", false);
    Ok(vec![
        ("S0", "Envoy, no Wasm", s0, plain_body.clone(), check_plain),
        (
            "S0w",
            "empty Rust Wasm filter",
            s0w,
            plain_body.clone(),
            check_plain,
        ),
        (
            "S0j",
            "S0w + json_to_metadata",
            s0j,
            plain_body.clone(),
            check_plain,
        ),
        (
            "S1",
            "ai-proxy OpenAI -> OpenAI-compatible",
            s1,
            plain_body.clone(),
            check_s1,
        ),
        (
            "S1j",
            "S1 behind json_to_metadata",
            s1j,
            plain_body.clone(),
            check_s1,
        ),
        ("S2", "ai-proxy OpenAI -> Claude", s2, plain_body, check_s2),
        (
            "S3",
            "ai-proxy OpenAI -> Claude, stream",
            s3,
            chat_body("gpt-4o", true),
            check_s3,
        ),
        (
            "S4",
            "ai-load-balancer + ai-proxy",
            s4,
            chat_body("auto", false),
            check_s4,
        ),
        (
            "S0n",
            "native filter holding headers for the body, no work",
            s0n,
            chat_body("gpt-4o", false),
            check_plain,
        ),
        (
            "S1f",
            "S1n's host calls with fixed arguments, no logic",
            s1f,
            chat_body("gpt-4o", false),
            check_plain,
        ),
        (
            "S1n",
            "S1, native module",
            s1n,
            chat_body("gpt-4o", false),
            check_s1,
        ),
        (
            "S2n",
            "S2, native module",
            s2n,
            chat_body("gpt-4o", false),
            check_s2,
        ),
        (
            "S3n",
            "S3, native module",
            s3n,
            chat_body("gpt-4o", true),
            check_s3,
        ),
        (
            "S4n",
            "S4, native module",
            s4n,
            chat_body("auto", false),
            check_s4,
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_one_kib_of_valid_chat_json() {
        for (model, stream) in [("gpt-4o", false), ("gpt-4o", true), ("auto", false)] {
            let b = chat_body(model, stream);
            assert_eq!(b.len(), BODY_BYTES);
            let v: Value = serde_json::from_str(&b).unwrap();
            assert_eq!(v["model"], model);
            assert_eq!(v["stream"], stream);
            assert_eq!(v["messages"].as_array().map(Vec::len), Some(4));
        }
    }
}
