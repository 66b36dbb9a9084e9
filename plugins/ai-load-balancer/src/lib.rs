//! ai-load-balancer: picks a provider per request from load metrics, writes the routing header
//! so Envoy re-selects the route, and rewrites an alias model (`"model":"auto"`) to the chosen
//! provider's real model. Glue only: decisions live in `switchyard_policy`.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::cell::RefCell;
use std::rc::Rc;
use switchyard_policy::balancer::{BalancerConfig, MetricSource};
use switchyard_policy::config_error::parse_json;
use switchyard_policy::rules::RuleSet;
use switchyard_policy::select::{select, weighted_random, Candidate};
use switchyard_protocol::json_field::replace_top_level_string;
use switchyard_protocol::{ErrorKind, GatewayError};
use switchyard_wasm_host as host;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(BalancerRoot::default()) });
}}

type Rules = Rc<RuleSet<BalancerConfig>>;

struct BalancerRoot {
    rules: Option<Rules>,
    rng: Rc<RefCell<host::Rng>>,
}

impl Default for BalancerRoot {
    fn default() -> Self {
        BalancerRoot {
            rules: None,
            rng: Rc::new(RefCell::new(host::Rng::from_clock())),
        }
    }
}

impl Context for BalancerRoot {}

impl RootContext for BalancerRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let parsed = parse_json(&bytes).and_then(|v| RuleSet::parse(&v, BalancerConfig::from_json));
        match parsed {
            Ok(rules) => {
                self.rules = Some(Rc::new(rules));
                true
            }
            Err(e) => {
                // Refusing makes Envoy keep the previous config (or not start the listener).
                log::error!("ai-load-balancer: config refused: {e}");
                false
            }
        }
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(BalancerRequest {
            rules: self.rules.clone(),
            rng: self.rng.clone(),
            rewrite_to: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct BalancerRequest {
    rules: Option<Rules>,
    rng: Rc<RefCell<host::Rng>>,
    /// The model the body's alias becomes, once a provider is picked.
    rewrite_to: Option<String>,
}

impl Context for BalancerRequest {}

impl BalancerRequest {
    /// Pick a provider for `cfg` from its metric source.
    fn pick<'c>(
        &self,
        cfg: &'c BalancerConfig,
    ) -> Option<&'c switchyard_policy::balancer::BalancerProvider> {
        let metric = |key: &str| -> Option<f64> {
            match cfg.source {
                MetricSource::Static => cfg.metrics.values.get(key).copied(),
                // Sources not measured yet degrade to the weighted-random fallback.
                MetricSource::Local | MetricSource::Redis | MetricSource::Http => None,
            }
        };
        let candidates: Vec<Candidate> = cfg
            .providers
            .iter()
            .map(|p| Candidate {
                weight: p.weight,
                metric: metric(&p.key),
            })
            .collect();
        let mut rng = self.rng.borrow_mut();
        let mut rand = || rng.next_f64();
        let idx = select(cfg.strategy, &candidates, &mut rand)
            .or_else(|| weighted_random(&cfg.providers, |p| p.weight, &mut rand))?;
        cfg.providers.get(idx)
    }
}

impl HttpContext for BalancerRequest {
    fn on_http_request_headers(&mut self, _n: usize, _end_of_stream: bool) -> Action {
        let Some(rules) = self.rules.clone() else {
            return Action::Continue;
        };
        let keys = host::RequestKeysOwned::read();
        let Some(cfg) = rules.select(keys.keys()) else {
            return Action::Continue;
        };
        let header = cfg.target_header.as_str();
        let client_choice = self.get_http_request_header(header);
        let facts = host::body_facts();
        let honoured = client_choice
            .as_deref()
            .filter(|_| cfg.allow_client_choice)
            .and_then(|name| cfg.provider(name));

        let chosen = match facts.model.as_deref() {
            Some(model) if cfg.is_alias(model) => match honoured {
                Some(p) => Some(p),
                None => match self.pick(cfg) {
                    Some(p) => Some(p),
                    None => {
                        host::send_error(&GatewayError::new(
                            ErrorKind::Unavailable,
                            "no_provider",
                            "no provider is available for this request",
                        ));
                        return Action::Pause;
                    }
                },
            },
            _ => honoured,
        };

        match chosen {
            Some(p) => {
                if client_choice.as_deref() != Some(p.name.as_str()) {
                    self.set_http_request_header(header, Some(&p.name));
                    host::clear_route_cache();
                }
                if facts.model.as_deref().is_some_and(|m| cfg.is_alias(m))
                    && facts.model.as_deref() != Some(&p.model)
                {
                    self.rewrite_to = Some(p.model.clone());
                    // The body changes length.
                    self.set_http_request_header("content-length", None);
                }
            }
            None if client_choice.is_some() => {
                // A client must not pick a provider by sending the routing header itself.
                self.set_http_request_header(header, None);
                host::clear_route_cache();
            }
            None => {}
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(target) = &self.rewrite_to else {
            return Action::Continue;
        };
        if !end_of_stream {
            // Buffer the whole body; Envoy hands it over complete at end of stream.
            return Action::Pause;
        }
        let Some(body) = self.get_http_request_body(0, body_size) else {
            return Action::Continue;
        };
        if let Some(new_body) = replace_top_level_string(&body, "model", target) {
            self.set_http_request_body(0, body_size, &new_body);
        }
        Action::Continue
    }
}
