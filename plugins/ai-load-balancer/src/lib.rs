//! ai-load-balancer as a Proxy-Wasm plugin: an adapter from the SDK's contexts to
//! `switchyard_filter::balancer`, over the Proxy-Wasm host. The `higress` build also reads
//! Redis with Higress's own Redis host calls (module [`higress`]); everything else is in the
//! filter.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use switchyard_filter::balancer::{BalancerRequest, BalancerRoot};
use switchyard_filter::host::Host;
use switchyard_wasm_host::{action, callout_response, WasmHost};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root {
            inner: BalancerRoot::new(WasmHost.random_seed()),
            #[cfg(feature = "higress")]
            redis: higress::Redis::default(),
        })
    });
}}

struct Root {
    inner: BalancerRoot,
    #[cfg(feature = "higress")]
    redis: higress::Redis,
}

impl Context for Root {
    fn on_http_call_response(&mut self, id: u32, headers: usize, body: usize, _t: usize) {
        let response = callout_response(headers, body);
        self.inner.on_callout_done(&WasmHost, id, &response);
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match self.inner.configure(&bytes) {
            Ok(tick) => {
                #[cfg(feature = "higress")]
                if let Some(rules) = self.inner.rules() {
                    self.redis.init(rules);
                }
                if let Some(period) = tick {
                    self.set_tick_period(period);
                }
                true
            }
            Err(e) => {
                // Refusing makes Envoy keep the previous config (or not start the listener).
                log::error!("ai-load-balancer: config refused: {e}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let polling = self.inner.on_tick(&mut WasmHost);
        #[cfg(feature = "higress")]
        if polling {
            if let Some(rules) = self.inner.rules() {
                self.redis.refresh(rules);
            }
        }
        let _ = polling;
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request(self.inner.new_request())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Request(BalancerRequest);

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        action(self.0.on_request_headers(&mut WasmHost, end_of_stream))
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        action(self.0.on_request_body(&mut WasmHost, size, end_of_stream))
    }

    fn on_log(&mut self) {
        self.0.on_log(&mut WasmHost);
    }
}

/// Higress build: read Redis directly with the host's Redis calls (`MGET`), unless a Webdis
/// cluster is configured (then the filter's HTTP callouts do).
#[cfg(feature = "higress")]
mod higress {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::rc::Rc;
    use switchyard_filter::balancer::store_metrics;
    use switchyard_filter::host::Host;
    use switchyard_policy::balancer::{BalancerConfig, MetricSource, RedisConfig};
    use switchyard_policy::metrics::{cache_key, ReplyParser};
    use switchyard_policy::resp;
    use switchyard_policy::rules::RuleSet;
    use switchyard_wasm_host::{redis, WasmHost};

    /// Redis callouts in flight: callout id -> (how to read the reply, sent at).
    #[derive(Default)]
    pub struct Redis {
        pending: Rc<RefCell<HashMap<u32, (ReplyParser, u64)>>>,
    }

    /// Higress cluster string, with `?db=N` when a database is configured.
    fn cluster(redis: &RedisConfig) -> String {
        match redis.database {
            Some(db) => format!("{}?db={db}", redis.higress_cluster()),
            None => redis.higress_cluster(),
        }
    }

    fn direct(cfg: &BalancerConfig) -> Option<&RedisConfig> {
        cfg.redis.as_ref().filter(|r| r.webdis_cluster.is_none())
    }

    impl Redis {
        /// Connect the host's Redis client for every Redis config.
        pub fn init(&self, rules: &RuleSet<BalancerConfig>) {
            let pending = self.pending.clone();
            redis::on_reply(move |id, status, body| {
                let Some((parser, sent)) = pending.borrow_mut().remove(&id) else {
                    return;
                };
                if status != 0 {
                    log::debug!("ai-load-balancer: redis reply status {status}");
                    return;
                }
                store_metrics(&WasmHost, &parser.parse(&body), sent);
            });
            for cfg in rules.all() {
                let Some(r) = direct(cfg) else {
                    continue;
                };
                let user = r.username.as_deref().unwrap_or("");
                let pass = r.password.as_deref().unwrap_or("");
                let timeout = u32::try_from(r.timeout).unwrap_or(u32::MAX);
                if let Err(e) = redis::init(&cluster(r), user, pass, timeout) {
                    log::warn!(
                        "ai-load-balancer: redis init for {} failed: {e}",
                        r.service_name
                    );
                }
            }
        }

        /// One `MGET` per Redis config, unless one is still in flight.
        pub fn refresh(&self, rules: &RuleSet<BalancerConfig>) {
            for cfg in rules.all() {
                let Some(r) = direct(cfg) else {
                    continue;
                };
                if cfg.source != MetricSource::Redis {
                    continue;
                }
                // A reply the host never delivered must not block refreshes forever.
                let now = WasmHost.now_ms();
                let give_up = r.timeout.saturating_mul(2).max(1000);
                self.pending
                    .borrow_mut()
                    .retain(|_, (_, sent)| now.saturating_sub(*sent) < give_up);
                if !self.pending.borrow().is_empty() {
                    continue;
                }
                let redis_keys: Vec<String> = cfg
                    .providers
                    .iter()
                    .map(|p| format!("{}{}", cfg.redis_key_prefix, p.key))
                    .collect();
                let keys: Vec<String> = (0..cfg.providers.len())
                    .filter_map(|i| cache_key(cfg, i))
                    .collect();
                match redis::call(&cluster(r), &resp::mget(&redis_keys)) {
                    Ok(id) => {
                        self.pending
                            .borrow_mut()
                            .insert(id, (ReplyParser::RespMget { keys }, now));
                    }
                    Err(e) => log::debug!("ai-load-balancer: redis call failed: {e}"),
                }
            }
        }
    }
}
