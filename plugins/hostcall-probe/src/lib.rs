//! hostcall-probe: repeats one Proxy-Wasm host call `x-n` times per request, the call named by
//! the request header `x-op` (the list is `xtask/src/hostcalls.rs`'s `OPS`). `cargo xtask bench --host-calls` runs it inside
//! Envoy under callgrind and divides the extra instructions by the number of calls: the cost
//! of each kind of call, which bounds what any plugin's request path can cost.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(ProbeRoot::default()) });
}}

#[derive(Default)]
struct ProbeRoot {
    counter: u32,
    histogram: u32,
}

impl Context for ProbeRoot {}

impl RootContext for ProbeRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        self.counter = hostcalls::define_metric(MetricType::Counter, "hostcall_probe_counter")
            .unwrap_or_default();
        self.histogram = hostcalls::define_metric(MetricType::Histogram, "hostcall_probe_hist")
            .unwrap_or_default();
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Probe {
            op: String::new(),
            n: 0,
            counter: self.counter,
            histogram: self.histogram,
        }))
    }
}

struct Probe {
    op: String,
    n: usize,
    counter: u32,
    histogram: u32,
}

impl Context for Probe {}

const MODEL: [&str; 4] = ["metadata", "filter_metadata", "switchyard", "model"];

impl HttpContext for Probe {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        self.op = self.get_http_request_header("x-op").unwrap_or_default();
        self.n = self
            .get_http_request_header("x-n")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
            .min(1000);
        let headers = MapType::HttpRequestHeaders;
        for i in 0..self.n {
            let _ = match self.op.as_str() {
                "get_header" => hostcalls::get_map_value(headers, ":path").map(drop),
                "get_header_missing" => hostcalls::get_map_value(headers, "x-absent").map(drop),
                "get_headers" => hostcalls::get_map(headers).map(drop),
                "add_header" => hostcalls::add_map_value(headers, &format!("x-probe-{i}"), "v"),
                "replace_header" => hostcalls::set_map_value(headers, "x-probe", Some("v")),
                "remove_header" => hostcalls::set_map_value(headers, "x-absent", None),
                "get_property" => hostcalls::get_property(MODEL.to_vec()).map(drop),
                "get_property_missing" => {
                    hostcalls::get_property(vec!["metadata", "filter_metadata", "absent"]).map(drop)
                }
                "get_property_map" => hostcalls::get_property(MODEL[..3].to_vec()).map(drop),
                "set_property" => hostcalls::set_property(vec!["probe"], Some(b"value")),
                "time" => hostcalls::get_current_time().map(drop),
                "counter" => hostcalls::increment_metric(self.counter, 1),
                "histogram" => hostcalls::record_metric(self.histogram, 5),
                "clear_route_cache" => {
                    hostcalls::call_foreign_function("clear_route_cache", None::<&[u8]>).map(drop)
                }
                _ => Ok(()),
            };
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !matches!(self.op.as_str(), "get_body" | "set_body") {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        for _ in 0..self.n {
            if self.op == "get_body" {
                let _ = self.get_http_request_body(0, body_size);
            } else {
                self.set_http_request_body(0, body_size, &body);
            }
        }
        Action::Continue
    }
}
