//! ai-proxy as a Proxy-Wasm plugin: an adapter from the SDK's contexts to
//! `switchyard_filter::proxy`, over the Proxy-Wasm host (`switchyard_wasm_host::WasmHost`).
//! No logic here.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use switchyard_filter::host::Host;
use switchyard_filter::proxy::{ProxyRequest, ProxyRoot};
use switchyard_wasm_host::{action, callout_response, WasmHost};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root(ProxyRoot::new(WasmHost.random_seed())))
    });
}}

struct Root(ProxyRoot);

impl Context for Root {
    fn on_http_call_response(&mut self, id: u32, headers: usize, body: usize, _t: usize) {
        let response = callout_response(headers, body);
        self.0.on_callout_done(&WasmHost, id, &response);
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match self.0.configure(&bytes) {
            Ok(tick) => {
                if let Some(period) = tick {
                    self.set_tick_period(period);
                }
                true
            }
            Err(e) => {
                log::error!("ai-proxy: config refused: {e}");
                false
            }
        }
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request(self.0.new_request())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn on_tick(&mut self) {
        self.0.on_tick(&mut WasmHost);
    }
}

struct Request(ProxyRequest);

impl Context for Request {
    fn on_http_call_response(&mut self, id: u32, headers: usize, body: usize, _t: usize) {
        let response = callout_response(headers, body);
        self.0.on_callout_done(&mut WasmHost, id, response);
    }
}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        action(self.0.on_request_headers(&mut WasmHost, end_of_stream))
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        action(self.0.on_request_body(&mut WasmHost, size, end_of_stream))
    }

    fn on_http_response_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        action(self.0.on_response_headers(&mut WasmHost, end_of_stream))
    }

    fn on_http_response_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        action(self.0.on_response_body(&mut WasmHost, size, end_of_stream))
    }

    fn on_log(&mut self) {
        self.0.on_log(&mut WasmHost);
    }
}
