//! noop-filter: a Proxy-Wasm HTTP filter that does nothing. Every callback keeps its default
//! (continue), so Envoy still creates a context per request and calls into the VM for each
//! header and body event. `cargo xtask bench` uses it as the floor (scenario S0w): the cost of
//! running any Rust Wasm filter at all, against which ai-proxy and ai-load-balancer are held.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(NoopRoot) });
}}

struct NoopRoot;

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(NoopHttp))
    }
}

struct NoopHttp;

impl Context for NoopHttp {}

impl HttpContext for NoopHttp {}
