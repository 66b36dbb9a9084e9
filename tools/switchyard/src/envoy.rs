//! Envoy bootstrap rendering: one listener with `json_to_metadata`, the Switchyard Wasm
//! filters and the router; one header-matched route per provider; one cluster per upstream.

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Dynamic-metadata namespace shared with the plugins (`switchyard_wasm_host`).
pub const METADATA_NAMESPACE: &str = "switchyard";

/// One Wasm filter in the chain.
#[derive(Debug, Clone)]
pub struct WasmFilter {
    /// Plugin name (also the VM id).
    pub name: String,
    pub wasm_path: PathBuf,
    /// The plugin's JSON configuration.
    pub config: Value,
}

/// One filter of the native dynamic module (`lib<module>.so`, e.g. `libswitchyard.so`), run by
/// Envoy's `envoy.filters.http.dynamic_modules` filter.
#[derive(Debug, Clone)]
pub struct NativeFilter {
    /// Module name: Envoy loads `lib<module>.so` from `ENVOY_DYNAMIC_MODULES_SEARCH_PATH`
    /// ([`BootstrapSpec::native_module_dir`]).
    pub module: String,
    /// The module's filter (`filter_name`).
    pub filter_name: String,
    /// The filter's JSON configuration (sent as a `google.protobuf.StringValue`).
    pub config: Value,
}

/// Where the Switchyard filters (`ai-proxy`, `ai-load-balancer`) run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Runtime {
    /// Proxy-Wasm plugins (`.wasm`) in Envoy's V8, behind `json_to_metadata`.
    #[default]
    Wasm,
    /// The native dynamic module `libswitchyard.so`: no V8, no `json_to_metadata` (the filters
    /// read the body themselves before the request goes on).
    Native,
}

impl Runtime {
    /// `wasm` or `native`.
    pub fn parse(s: &str) -> Option<Runtime> {
        match s {
            "wasm" => Some(Runtime::Wasm),
            "native" => Some(Runtime::Native),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Runtime::Wasm => "wasm",
            Runtime::Native => "native",
        }
    }
}

/// Filters that exist in both runtimes (a `WasmFilter` with one of these names runs as the
/// native module's filter of the same name under [`Runtime::Native`]).
pub const SWITCHYARD_FILTERS: [&str; 2] = ["ai-load-balancer", "ai-proxy"];

/// The native module's name (`libswitchyard.so`).
pub const NATIVE_MODULE: &str = "switchyard";

impl NativeFilter {
    /// A filter of `libswitchyard.so`.
    pub fn switchyard(filter_name: &str, config: Value) -> NativeFilter {
        NativeFilter {
            module: NATIVE_MODULE.into(),
            filter_name: filter_name.into(),
            config,
        }
    }
}

/// An upstream cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    /// Host name or IP address.
    pub address: String,
    pub port: u16,
    /// TLS with SNI = `address` (real vendors); plain for local servers.
    pub tls: bool,
}

impl Cluster {
    pub fn plain(name: &str, addr: SocketAddr) -> Cluster {
        Cluster {
            name: name.to_string(),
            address: addr.ip().to_string(),
            port: addr.port(),
            tls: false,
        }
    }
}

/// A route that matches one value of the routing header.
#[derive(Debug, Clone)]
pub struct HeaderRoute {
    /// Route name (`xds.route_name`, what `_rules_` match on).
    pub name: String,
    pub header: String,
    pub value: String,
    pub cluster: String,
}

/// Everything one bootstrap needs.
#[derive(Debug, Clone)]
pub struct BootstrapSpec {
    pub listen: SocketAddr,
    /// More addresses served by the same routes and filters.
    pub extra_listeners: Vec<SocketAddr>,
    /// Path prefixes served (default `/`); other paths get a 404 in OpenAI's shape.
    pub paths: Vec<String>,
    pub admin: SocketAddr,
    /// Run `json_to_metadata` before the plugins (the plugins rely on it; tests turn it off
    /// to check the fallback).
    pub body_metadata: bool,
    /// With `body_metadata`: lift only `model` and `stream`, as a hand-written bootstrap (or
    /// the rule set DESIGN.md first described) does; the plugins must read the rest from the
    /// body.
    pub minimal_body_metadata: bool,
    pub filters: Vec<WasmFilter>,
    /// Where `filters` named in [`SWITCHYARD_FILTERS`] run.
    pub runtime: Runtime,
    /// Native dynamic-module filters, after the Wasm ones.
    pub native_filters: Vec<NativeFilter>,
    /// Directory holding `lib<module>.so` (Envoy's `ENVOY_DYNAMIC_MODULES_SEARCH_PATH`).
    pub native_module_dir: Option<PathBuf>,
    pub header_routes: Vec<HeaderRoute>,
    /// Cluster of the catch-all route; `None` answers 404 in OpenAI's shape.
    pub default_cluster: Option<String>,
    pub clusters: Vec<Cluster>,
    /// Per-connection buffer limit (bounds the buffered request body).
    pub buffer_limit_bytes: u32,
    /// Route timeout in seconds (0 disables).
    pub route_timeout_s: u64,
    /// Write one access-log line per request here ([`ACCESS_LOG_FORMAT`]).
    pub access_log: Option<PathBuf>,
}

impl BootstrapSpec {
    /// Whether any filter runs in the native module.
    pub fn uses_native(&self) -> bool {
        !self.native_filters.is_empty()
            || (self.runtime == Runtime::Native
                && self
                    .filters
                    .iter()
                    .any(|f| SWITCHYARD_FILTERS.contains(&f.name.as_str())))
    }

    pub fn new(listen: SocketAddr, admin: SocketAddr) -> Self {
        BootstrapSpec {
            listen,
            extra_listeners: Vec::new(),
            paths: vec!["/".into()],
            admin,
            body_metadata: true,
            minimal_body_metadata: false,
            filters: Vec::new(),
            runtime: Runtime::Wasm,
            native_filters: Vec::new(),
            native_module_dir: None,
            header_routes: Vec::new(),
            default_cluster: None,
            clusters: Vec::new(),
            buffer_limit_bytes: 64 * 1024 * 1024,
            route_timeout_s: 300,
            access_log: None,
        }
    }
}

fn socket(addr: &str, port: u16) -> Value {
    json!({ "socket_address": { "address": addr, "port_value": port } })
}

/// The `json_to_metadata` filter that tells the plugins `model`, `stream` and
/// `stream_options.include_usage` in their header phase.
pub fn json_to_metadata_filter() -> Value {
    let ns = METADATA_NAMESPACE;
    let flag = |key: &str| json!({ "metadata_namespace": ns, "key": key, "value": { "bool_value": true } });
    let present = |key: &str, ty: &str| json!({ "metadata_namespace": ns, "key": key, "type": ty });
    json!({
        "name": "envoy.filters.http.json_to_metadata",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.json_to_metadata.v3.JsonToMetadata",
            "request_rules": {
                "rules": [
                    {
                        "selectors": [{ "key": "model" }],
                        "on_present": present("model", "STRING"),
                        "on_missing": flag("model_missing"),
                        "on_error": flag("invalid_json"),
                    },
                    { "selectors": [{ "key": "stream" }], "on_present": present("stream", "PROTOBUF_VALUE") },
                    {
                        "selectors": [{ "key": "stream_options" }, { "key": "include_usage" }],
                        "on_present": present("include_usage", "PROTOBUF_VALUE"),
                    },
                ],
                // curl -d sends form content type; clients that omit it still speak JSON.
                "allow_content_types": ["application/json", "application/x-www-form-urlencoded", "text/plain"],
                "allow_empty_content_type": true,
            },
        },
    })
}

fn wasm_filter(f: &WasmFilter) -> Value {
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": f.name,
                "root_id": f.name,
                "vm_config": {
                    "vm_id": f.name,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": { "local": { "filename": f.wasm_path.to_string_lossy() } },
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": f.config.to_string(),
                },
                "fail_open": false,
            },
        },
    })
}

fn native_filter(f: &NativeFilter) -> Value {
    json!({
        "name": "envoy.filters.http.dynamic_modules",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
            "dynamic_module_config": { "name": f.module },
            "filter_name": f.filter_name,
            "filter_config": {
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": f.config.to_string(),
            },
        },
    })
}

fn cluster(c: &Cluster, buffer_limit: u32) -> Value {
    let is_ip = c.address.parse::<std::net::IpAddr>().is_ok();
    let mut v = json!({
        "name": c.name,
        "type": if is_ip { "STATIC" } else { "STRICT_DNS" },
        "connect_timeout": "5s",
        "per_connection_buffer_limit_bytes": buffer_limit,
        "load_assignment": {
            "cluster_name": c.name,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": socket(&c.address, c.port) } }] }],
        },
    });
    if !is_ip {
        v["dns_lookup_family"] = json!("V4_PREFERRED");
    }
    if c.tls {
        v["transport_socket"] = json!({
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": c.address,
                "common_tls_context": {
                    "validation_context": {
                        "trusted_ca": { "filename": "/etc/ssl/certs/ca-certificates.crt" },
                    },
                },
            },
        });
    }
    v
}

/// Envoy-generated errors (no route, upstream down, timeout, body over the buffer limit) in
/// OpenAI's error shape. Only replies that carry one of these response flags, or Envoy's own
/// "payload too large" details (matched with a CEL filter: a plugin's 413 has other details),
/// are rewritten, so the plugins' own JSON errors pass untouched.
fn local_reply_config() -> Value {
    json!({
        "mappers": [{
            "filter": { "extension_filter": {
                "name": "envoy.access_loggers.extension_filters.cel",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
                    "expression": "response.code_details == 'request_payload_too_large'",
                },
            } },
            "body_format_override": {
                "json_format": {
                    "error": {
                        "message": "request body is larger than the gateway's buffer limit",
                        "type": "invalid_request_error",
                        "code": "request_too_large",
                    },
                },
            },
        }, {
            "filter": { "response_flag_filter": { "flags": ["NR", "UH", "UF", "UT", "URX", "UO", "UC", "LH", "DC"] } },
            "body_format_override": {
                "json_format": {
                    "error": {
                        "message": "%LOCAL_REPLY_BODY%",
                        "type": "api_error",
                        "code": "%RESPONSE_FLAGS%",
                    },
                },
            },
        }],
    })
}

/// Tag extraction for the plugins' metrics: labels travel in the metric name as `;key=value`
/// (see `switchyard_policy::stats`) and become real tags here.
pub fn stats_config() -> Value {
    let tags: Vec<Value> = switchyard_policy::stats::tag_regexes()
        .into_iter()
        .map(|(name, regex)| json!({ "tag_name": name, "regex": regex }))
        .collect();
    json!({ "stats_tags": tags })
}

fn no_route() -> Value {
    json!({
        "status": 404,
        "body": { "inline_string": r#"{"error":{"message":"no provider route matches this request","type":"invalid_request_error","code":"no_route"}}"# },
    })
}

/// The routes: per served path, one header-matched route per provider, then the main route.
fn routes(spec: &BootstrapSpec) -> Vec<Value> {
    let timeout = format!("{}s", spec.route_timeout_s);
    let mut routes = Vec::new();
    let paths: Vec<&str> = if spec.paths.is_empty() {
        vec!["/"]
    } else {
        spec.paths.iter().map(String::as_str).collect()
    };
    for path in &paths {
        for r in &spec.header_routes {
            routes.push(json!({
                "name": r.name,
                "match": {
                    "prefix": path,
                    "headers": [{ "name": r.header, "string_match": { "exact": r.value } }],
                },
                "route": { "cluster": r.cluster, "timeout": timeout },
            }));
        }
        routes.push(match &spec.default_cluster {
            Some(c) => json!({ "name": "main", "match": { "prefix": path }, "route": { "cluster": c, "timeout": timeout } }),
            None => json!({
                "name": "main",
                "match": { "prefix": path },
                "direct_response": no_route(),
                "response_headers_to_add": [{ "header": { "key": "content-type", "value": "application/json" } }],
            }),
        });
    }
    if !paths.contains(&"/") {
        routes.push(json!({
            "name": "not-served",
            "match": { "prefix": "/" },
            "direct_response": no_route(),
            "response_headers_to_add": [{ "header": { "key": "content-type", "value": "application/json" } }],
        }));
    }
    routes
}

/// The HTTP connection manager shared by every listener.
fn connection_manager(spec: &BootstrapSpec) -> Value {
    let mut http_filters = Vec::new();
    let native = spec.runtime == Runtime::Native;
    // The native filters hold the headers and read the body themselves: no metadata filter.
    if spec.body_metadata && !native {
        let mut filter = json_to_metadata_filter();
        if spec.minimal_body_metadata {
            // Keep the `model` and `stream` rules only.
            if let Some(rules) = filter
                .pointer_mut("/typed_config/request_rules/rules")
                .and_then(Value::as_array_mut)
            {
                rules.truncate(2);
            }
        }
        http_filters.push(filter);
    }
    http_filters.extend(spec.filters.iter().map(|f| {
        if native && SWITCHYARD_FILTERS.contains(&f.name.as_str()) {
            native_filter(&NativeFilter::switchyard(&f.name, f.config.clone()))
        } else {
            wasm_filter(f)
        }
    }));
    http_filters.extend(spec.native_filters.iter().map(native_filter));
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
    }));
    json!({
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "switchyard",
            "stream_idle_timeout": "300s",
            "route_config": {
                "name": "switchyard",
                // Clusters come from CDS in `up`; a route may briefly name one not yet there.
                "validate_clusters": false,
                "virtual_hosts": [{ "name": "all", "domains": ["*"], "routes": routes(spec) }],
            },
            "local_reply_config": local_reply_config(),
            "http_filters": http_filters,
            "access_log": access_log(spec),
        },
    })
}

/// The access-log line: Envoy's own fields plus what ai-proxy publishes as filter state
/// (provider, models, tokens, time to first token; `-` when absent).
pub const ACCESS_LOG_FORMAT: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %DURATION%ms %FILTER_STATE(wasm.switchyard:PLAIN)% upstream=%UPSTREAM_CLUSTER%\n";

fn access_log(spec: &BootstrapSpec) -> Value {
    let Some(path) = &spec.access_log else {
        return json!([]);
    };
    json!([{
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": path.display().to_string(),
            "log_format": { "text_format_source": { "inline_string": ACCESS_LOG_FORMAT } },
        },
    }])
}

/// The listeners (the first is named `switchyard`, more are `switchyard-1`, …).
pub fn listeners(spec: &BootstrapSpec) -> Vec<Value> {
    let hcm = connection_manager(spec);
    std::iter::once(spec.listen)
        .chain(spec.extra_listeners.iter().copied())
        .enumerate()
        .map(|(i, addr)| {
            let name = if i == 0 {
                "switchyard".to_string()
            } else {
                format!("switchyard-{i}")
            };
            json!({
                "name": name,
                "address": socket(&addr.ip().to_string(), addr.port()),
                "per_connection_buffer_limit_bytes": spec.buffer_limit_bytes,
                "filter_chains": [{ "filters": [hcm.clone()] }],
            })
        })
        .collect()
}

/// The upstream clusters.
pub fn clusters(spec: &BootstrapSpec) -> Vec<Value> {
    spec.clusters
        .iter()
        .map(|c| cluster(c, spec.buffer_limit_bytes))
        .collect()
}

fn admin(addr: SocketAddr) -> Value {
    json!({ "address": socket(&addr.ip().to_string(), addr.port()) })
}

/// Runtime for the native module: Envoy 1.40 exports dynamic-module metrics as
/// `envoy_dynamicmodulescustom_<name>` unless this (default off) flag registers the module's
/// metrics namespace as a custom one, which Prometheus output strips, as it strips Wasm's
/// `wasmcustom`: then native and Wasm builds scrape under the same names.
pub fn native_runtime() -> Value {
    json!({
        "layers": [{
            "name": "switchyard-native",
            "static_layer": { "envoy.reloadable_features.dynamic_modules_strip_custom_stat_prefix": true },
        }],
    })
}

/// Render the bootstrap as JSON (Envoy reads `.json` bootstrap files): everything static.
pub fn render(spec: &BootstrapSpec) -> Value {
    let mut v = json!({
        "admin": admin(spec.admin),
        "stats_config": stats_config(),
        "static_resources": { "listeners": listeners(spec), "clusters": clusters(spec) },
    });
    if spec.uses_native() {
        v["layered_runtime"] = native_runtime();
    }
    v
}

/// Type URLs of the resources in LDS/CDS files.
pub const LISTENER_TYPE: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const CLUSTER_TYPE: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";

/// Paths of the dynamic resources below the resource directory. Each file has a directory of
/// its own because Envoy reloads a path on any rename into its watched directory.
pub const LDS_FILE: &str = "lds/lds.json";
pub const CDS_FILE: &str = "cds/cds.json";

/// A bootstrap whose listeners and clusters come from [`LDS_FILE`] / [`CDS_FILE`] below
/// `dir`, which Envoy watches: replacing a file by rename applies it without a restart.
pub fn render_dynamic(admin_addr: SocketAddr, dir: &std::path::Path) -> Value {
    let source = |file: &str| {
        let path = dir.join(file);
        let watched = path.parent().unwrap_or(dir).to_path_buf();
        json!({
            "resource_api_version": "V3",
            "path_config_source": {
                "path": path.to_string_lossy(),
                "watched_directory": { "path": watched.to_string_lossy() },
            },
        })
    };
    json!({
        "node": { "id": "switchyard", "cluster": "switchyard" },
        "admin": admin(admin_addr),
        "stats_config": stats_config(),
        "dynamic_resources": { "lds_config": source(LDS_FILE), "cds_config": source(CDS_FILE) },
    })
}

/// The content of an LDS or CDS file.
pub fn discovery_response(version: u64, type_url: &str, resources: Vec<Value>) -> Value {
    let resources: Vec<Value> = resources
        .into_iter()
        .map(|mut r| {
            if let Some(o) = r.as_object_mut() {
                o.insert("@type".into(), json!(type_url));
            }
            r
        })
        .collect();
    json!({ "version_info": version.to_string(), "type_url": type_url, "resources": resources })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_filters_and_clusters() {
        let mut spec = BootstrapSpec::new(
            "127.0.0.1:10000".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        );
        spec.filters.push(WasmFilter {
            name: "ai-proxy".into(),
            wasm_path: "/x.wasm".into(),
            config: json!({"a": 1}),
        });
        spec.header_routes.push(HeaderRoute {
            name: "provider-q".into(),
            header: "x-selected-provider".into(),
            value: "q".into(),
            cluster: "provider-q".into(),
        });
        spec.clusters.push(Cluster::plain(
            "provider-q",
            "127.0.0.1:18001".parse().unwrap(),
        ));
        spec.clusters.push(Cluster {
            name: "openai".into(),
            address: "api.openai.com".into(),
            port: 443,
            tls: true,
        });
        let v = render(&spec);
        let hcm = &v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"];
        let filters: Vec<&str> = hcm["http_filters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            filters,
            [
                "envoy.filters.http.json_to_metadata",
                "envoy.filters.http.wasm",
                "envoy.filters.http.router"
            ]
        );
        let routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
            .as_array()
            .unwrap();
        assert_eq!(routes[0]["name"], "provider-q");
        assert_eq!(routes[1]["direct_response"]["status"], 404);
        assert_eq!(
            hcm["http_filters"][1]["typed_config"]["config"]["configuration"]["value"],
            "{\"a\":1}"
        );
        let clusters = v["static_resources"]["clusters"].as_array().unwrap();
        spec.native_filters
            .push(NativeFilter::switchyard("ai-proxy", json!({"b": 2})));
        let v = render(&spec);
        let native = &v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"]["http_filters"][2]["typed_config"];
        assert_eq!(native["dynamic_module_config"]["name"], "switchyard");
        assert_eq!(native["filter_name"], "ai-proxy");
        assert_eq!(native["filter_config"]["value"], "{\"b\":2}");
        assert_eq!(clusters[0]["type"], "STATIC");
        assert_eq!(
            clusters[1]["transport_socket"]["typed_config"]["sni"],
            "api.openai.com"
        );
    }
}
