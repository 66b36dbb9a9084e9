//! ai-proxy: clients speak the OpenAI API; this plugin points each request at the configured
//! vendor (path, host, credentials), maps the model, edits or translates the body and converts
//! the response (streams included) back. Glue only: the logic lives in `switchyard_policy`
//! (config, vendors, model mapping) and `switchyard_protocol` (bodies and streams).

mod context_file;
mod failover;
mod observe;
mod translate;

use context_file::ContextCache;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use switchyard_policy::config_error::parse_json;
use switchyard_policy::proxy::{Protocol, Provider, ProxyConfig};
use switchyard_policy::rules::RuleSet;
use switchyard_policy::vendor::Api;
use switchyard_protocol::anthropic::openai_error_to_anthropic;
use switchyard_protocol::openai_edit::{self, RequestEdits};
use switchyard_protocol::{ErrorKind, GatewayError, StreamConverter};
use switchyard_wasm_host as host;
use translate::{Ids, Translation};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(ProxyRoot::default()) });
}}

/// Headers through which clients send their own credentials; none of them may reach a vendor.
const CLIENT_CREDENTIAL_HEADERS: [&str; 4] =
    ["authorization", "x-api-key", "api-key", "x-goog-api-key"];

struct ProxyRoot {
    rules: Option<Rc<RuleSet<ProxyConfig>>>,
    rng: Rc<RefCell<host::Rng>>,
    /// Token health checks run on the tick by the VM holding each pool's lease.
    health: RefCell<failover::HealthChecks>,
    contexts: Rc<RefCell<ContextCache>>,
}

impl Default for ProxyRoot {
    fn default() -> Self {
        let mut rng = host::Rng::from_clock();
        let health = failover::HealthChecks::new(rng.next_u64());
        ProxyRoot {
            rules: None,
            health: RefCell::new(health),
            rng: Rc::new(RefCell::new(rng)),
            contexts: Rc::new(RefCell::new(ContextCache::default())),
        }
    }
}

impl Context for ProxyRoot {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, _body: usize, _t: usize) {
        let status = proxy_wasm::hostcalls::get_map_value(
            proxy_wasm::types::MapType::HttpCallResponseHeaders,
            ":status",
        )
        .ok()
        .flatten()
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(0);
        self.health.borrow_mut().on_response(token, status);
    }
}

impl RootContext for ProxyRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match parse_json(&bytes).and_then(|v| RuleSet::parse(&v, ProxyConfig::from_json)) {
            Ok(rules) => {
                if let Some(period) = failover::HealthChecks::tick_period(&rules) {
                    self.set_tick_period(period);
                }
                self.health.borrow_mut().reconfigure();
                self.rules = Some(Rc::new(rules));
                self.contexts.borrow_mut().clear();
                true
            }
            Err(e) => {
                log::error!("ai-proxy: config refused: {e}");
                false
            }
        }
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(ProxyRequest {
            rules: self.rules.clone(),
            rng: self.rng.clone(),
            failover: failover::Attempts::default(),
            contexts: self.contexts.clone(),
            plan: None,
            stream: None,
            response_error: None,
            convert_response: false,
            anthropic_client: false,
            context_text: None,
            context_pending: false,
            obs: None,
            client_path: String::new(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn on_tick(&mut self) {
        if let Some(rules) = self.rules.clone() {
            self.health.borrow_mut().tick(self, &rules);
        }
    }
}

/// What the header phase decided for this request.
struct Plan {
    provider: Arc<Provider>,
    api: Api,
    translation: Translation,
    /// Completion id and timestamp for translated answers that carry none.
    id: String,
    created: u64,
    /// Embeddings: the client asked for base64 vectors.
    want_base64: bool,
    /// The model the client asked for (if known) and the one sent upstream.
    client_model: Option<String>,
    upstream_model: Option<String>,
    /// Body checks and edits still to do in the body phase.
    touch_body: bool,
    /// Body facts were unknown in the header phase: validate in the body phase.
    validate_body: bool,
    streaming: bool,
    client_wants_usage: bool,
    max_body: u64,
}

struct ProxyRequest {
    rules: Option<Rc<RuleSet<ProxyConfig>>>,
    rng: Rc<RefCell<host::Rng>>,
    /// Token in use, tokens tried and what a retry resends.
    failover: failover::Attempts,
    contexts: Rc<RefCell<ContextCache>>,
    plan: Option<Plan>,
    stream: Option<Box<dyn StreamConverter>>,
    /// The vendor answered an error status: buffer the body and convert it.
    response_error: Option<u16>,
    /// A whole successful answer is buffered and translated.
    convert_response: bool,
    /// The client speaks Anthropic's Messages API: gateway errors go back in its shape.
    anthropic_client: bool,
    context_text: Option<Rc<str>>,
    context_pending: bool,
    /// Provider, models, status, usage and timings of this request, for metrics and logs.
    obs: Option<observe::Observation>,
    /// The client's `:path` (read once).
    client_path: String,
}

impl ProxyRequest {
    fn fail(&mut self, err: GatewayError) -> Action {
        self.plan = None;
        if self.anthropic_client {
            let body = openai_error_to_anthropic(err.status(), &err.body());
            host::send_json(u32::from(err.status()), &body);
        } else {
            host::send_error(&err);
        }
        Action::Pause
    }

    /// A completion id from the VM's rng.
    fn fresh_id(&self) -> String {
        let n = self.rng.borrow_mut().next_u64();
        format!("chatcmpl-{n:016x}")
    }

    fn plan_request(&mut self) -> Result<Option<Plan>, GatewayError> {
        let Some(rules) = self.rules.clone() else {
            return Ok(None);
        };
        let Some(cfg) = host::select_config(&rules) else {
            return Ok(None);
        };
        let header_choice = cfg
            .active_provider_header
            .as_deref()
            .and_then(|h| self.get_http_request_header(h));
        let provider = cfg
            .provider_for(header_choice.as_deref())
            .cloned()
            .ok_or_else(|| {
                GatewayError::new(
                    ErrorKind::Unavailable,
                    "no_provider",
                    "no provider is configured for this request",
                )
            })?;
        let path = self.client_path.clone();
        let id = self.fresh_id();
        // One clock read serves the answer's `created` and the request's duration.
        let now_ms = host::now_ms();
        let created = now_ms / 1000;
        if provider.config.protocol == Protocol::Original {
            // Original protocol: only credentials and host change.
            return Ok(Some(Plan {
                provider,
                api: Api::from_path(&path).unwrap_or(Api::ChatCompletions),
                translation: Translation::Edit,
                id,
                created,
                want_base64: false,
                client_model: None,
                upstream_model: None,
                touch_body: false,
                validate_body: false,
                streaming: false,
                client_wants_usage: false,
                max_body: cfg.max_request_body_bytes,
            }));
        }
        let api = Api::from_path(&path).ok_or_else(|| {
            GatewayError::new(
                ErrorKind::NotFound,
                "unsupported_api",
                "this path is not an API the gateway serves",
            )
        })?;
        // Labels stay empty (emitted as `unknown`) until the body's model is known.
        self.obs = Some(observe::Observation::new(&provider, api, now_ms));
        if !provider.supports(api) {
            return Err(provider.unsupported(api));
        }
        let translation = Translation::choose(&provider, api)?;
        // The body's size is checked in the body phase (json_to_metadata, when present, has
        // buffered it already): no `content-length` read here.
        let facts = host::body_facts();
        let has_body = api != Api::Models;
        if has_body && facts.invalid_json {
            return Err(GatewayError::invalid(
                "invalid_json",
                "request body is not valid JSON",
            ));
        }
        if has_body && facts.model_missing {
            return Err(GatewayError::invalid(
                "missing_model",
                "you must provide a model parameter",
            )
            .with_param("model"));
        }
        let client_model = facts.model.clone();
        let upstream_model = client_model
            .as_deref()
            .map(|m| provider.config.model_mapping.map(m));
        let streaming = facts.stream == Some(true);
        let client_wants_usage = facts.include_usage == Some(true);
        if let Some(obs) = &mut self.obs {
            obs.set_models(
                &provider,
                client_model.as_deref(),
                upstream_model.as_deref(),
            );
            obs.streaming = streaming;
        }
        let mapping_changes = match (&client_model, &upstream_model) {
            (Some(a), Some(b)) => a != b,
            // Unknown model: the body phase maps it if the mapping says anything.
            _ => !provider.config.model_mapping.is_empty(),
        };
        let touch_body = has_body
            && (translation.rewrites_body()
                || mapping_changes
                || (streaming && !client_wants_usage)
                || provider.config.context.is_some()
                || !facts.known());
        Ok(Some(Plan {
            provider,
            api,
            translation,
            id,
            created,
            want_base64: false,
            client_model,
            upstream_model,
            touch_body,
            validate_body: has_body && !facts.known(),
            streaming,
            client_wants_usage,
            max_body: cfg.max_request_body_bytes,
        }))
    }

    fn rewrite_headers(&mut self, plan: &Plan) -> Result<(), GatewayError> {
        let provider = &plan.provider;
        let client_path = self.client_path.clone();
        if translate::translated(provider) {
            let path = plan.translation.upstream_path(
                provider,
                plan.api,
                plan.upstream_model.as_deref(),
                plan.streaming,
                &client_path,
            )?;
            self.set_http_request_header(":path", Some(&path));
        }
        match plan.translation {
            Translation::ChatToClaude | Translation::ModelsFromClaude => {
                let version = translate::claude_version(provider).to_string();
                self.set_http_request_header("anthropic-version", Some(&version));
            }
            Translation::MessagesNative
                if self.get_http_request_header("anthropic-version").is_none() =>
            {
                let version = translate::claude_version(provider).to_string();
                self.set_http_request_header("anthropic-version", Some(&version));
            }
            Translation::MessagesToChat => {
                self.set_http_request_header("anthropic-version", None);
                self.set_http_request_header("anthropic-beta", None);
            }
            _ => {}
        }
        self.set_http_request_header(":authority", Some(&provider.endpoint.host));
        for h in CLIENT_CREDENTIAL_HEADERS {
            self.set_http_request_header(h, None);
        }
        let rand = self.rng.borrow_mut().next_u64();
        let index = failover::choose_token(provider, rand);
        // The request's start time is already known (no second clock read).
        let started = self
            .obs
            .as_ref()
            .map_or_else(host::now_ms, |o| o.started_ms);
        self.failover.start(index, started);
        if let Some(token) = index.and_then(|i| provider.token(i)) {
            let (name, value) = provider.auth_header(token);
            self.set_http_request_header(name, Some(&value));
        }
        // Responses must be readable (and convertible) by the plugin.
        self.set_http_request_header("accept-encoding", None);
        self.set_http_request_header(
            "x-envoy-upstream-rq-timeout-ms",
            Some(&provider.config.timeout.to_string()),
        );
        if plan.touch_body {
            self.set_http_request_header("content-length", None);
        }
        Ok(())
    }

    fn start_context_fetch(&mut self, plan: &Plan) -> Result<bool, GatewayError> {
        let Some(ctx) = &plan.provider.config.context else {
            return Ok(false);
        };
        if let Some(text) = self.contexts.borrow().get(&ctx.file_url) {
            self.context_text = Some(text);
            return Ok(false);
        }
        let (authority, path) = context_file::request_target(ctx)?;
        let headers = vec![
            (":method", "GET"),
            (":path", path.as_str()),
            (":authority", authority.as_str()),
        ];
        let cluster = context_file::cluster_name(ctx);
        self.dispatch_http_call(&cluster, headers, None, vec![], Duration::from_secs(10))
            .map_err(|e| context_file::fetch_error(&ctx.file_url, &format!("{e:?}")))?;
        self.context_pending = true;
        Ok(true)
    }
}

impl ProxyRequest {
    /// The answer passes through untranslated: read its usage on the way (a whole JSON body,
    /// or an Anthropic stream for Messages clients of Claude).
    fn tap_passthrough(&mut self, status: u16) {
        if status >= 400 {
            return;
        }
        if let Some(obs) = &mut self.obs {
            obs.tap = observe::Tap::Sniff;
        }
    }

    /// The response is complete: settle usage and publish the request's facts.
    fn complete(&mut self, converter_usage: Option<switchyard_protocol::Usage>) {
        if let Some(obs) = &mut self.obs {
            obs.complete(converter_usage);
        }
    }
}

fn too_large(limit: u64) -> GatewayError {
    GatewayError::new(
        ErrorKind::PayloadTooLarge,
        "request_too_large",
        format!("request body exceeds the gateway limit of {limit} bytes"),
    )
}

impl Context for ProxyRequest {
    fn on_http_call_response(
        &mut self,
        _token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        if self.failover.owns(_token) {
            return failover::on_retry_response(self, body_size);
        }
        self.context_pending = false;
        let Some(plan) = &self.plan else {
            return;
        };
        let Some(ctx) = plan.provider.config.context.clone() else {
            return;
        };
        let status = self
            .get_http_call_response_header(":status")
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        let body = self
            .get_http_call_response_body(0, body_size)
            .unwrap_or_default();
        match context_file::accept(status, body) {
            Ok(text) => {
                let text: Rc<str> = Rc::from(text);
                self.contexts.borrow_mut().put(&ctx.file_url, text.clone());
                self.context_text = Some(text);
                self.resume_http_request();
            }
            Err(detail) => {
                log::warn!(
                    "ai-proxy: context file {} unavailable: {detail}",
                    ctx.file_url
                );
                let err = context_file::fetch_error(&ctx.file_url, &detail);
                self.fail(err);
            }
        }
    }
}

impl HttpContext for ProxyRequest {
    fn on_http_request_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        self.client_path = self.get_http_request_header(":path").unwrap_or_default();
        self.anthropic_client = Api::from_path(&self.client_path) == Some(Api::Messages);
        let plan = match self.plan_request() {
            Ok(Some(plan)) => plan,
            Ok(None) => return Action::Continue,
            Err(e) => return self.fail(e),
        };
        // No body at all: the body phase never runs, so nothing would check or translate it.
        if end_of_stream && plan.api != Api::Models {
            return self.fail(GatewayError::invalid(
                "invalid_json",
                "request body is empty: send a JSON object",
            ));
        }
        if let Err(e) = self.rewrite_headers(&plan) {
            return self.fail(e);
        }
        let fetching = match self.start_context_fetch(&plan) {
            Ok(f) => f,
            Err(e) => return self.fail(e),
        };
        self.plan = Some(plan);
        failover::capture_request(self);
        if fetching {
            // Held only until the context file arrives (on_http_call_response resumes).
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(plan) = &self.plan else {
            return Action::Continue;
        };
        if body_size as u64 > plan.max_body {
            let limit = plan.max_body;
            return self.fail(too_large(limit));
        }
        if !plan.touch_body {
            if !self.failover.wants_body() {
                return Action::Continue;
            }
            // Kept as sent, for retries.
            if !end_of_stream {
                return Action::Pause;
            }
            let body = self.get_http_request_body(0, body_size).unwrap_or_default();
            self.failover.keep_body(&body);
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        let needs_model = plan.api != Api::Models;
        let mut upstream_model = plan.upstream_model.clone();
        let mut streaming = plan.streaming;
        let mut wants_usage = plan.client_wants_usage;
        // Without body metadata, one pass reads the model and stream flags.
        let mut body_model = None;
        let mut model_spans = None;
        if plan.validate_body {
            let facts = match openai_edit::request_facts(&body, needs_model) {
                Ok(f) => f,
                Err(e) => return self.fail(e),
            };
            upstream_model = facts
                .model
                .as_deref()
                .map(|m| plan.provider.config.model_mapping.map(m));
            streaming = facts.stream;
            wants_usage = facts.include_usage;
            body_model = facts.model;
            model_spans = Some(facts.model_spans);
        }
        let client_model = if plan.validate_body {
            None
        } else {
            plan.client_model.clone()
        };
        let model_edit = upstream_model
            .as_deref()
            .filter(|m| plan.validate_body || client_model.as_deref() != Some(*m));
        let edits = RequestEdits {
            model: model_edit,
            model_spans: model_spans.as_deref(),
            request_usage: streaming && plan.api == Api::ChatCompletions && !wants_usage,
            context: self
                .context_text
                .as_deref()
                .filter(|_| matches!(plan.api, Api::ChatCompletions | Api::Messages)),
        };
        let model = upstream_model.as_deref().unwrap_or_default();
        let translated = plan
            .translation
            .request_body(&plan.provider, &body, &edits, model);
        let want_base64 = plan.translation == Translation::EmbeddingsToGemini
            && switchyard_protocol::gemini::embeddings_want_base64(&body);
        match translated {
            Ok(Some(new_body)) => {
                self.failover.keep_body(&new_body);
                self.set_http_request_body(0, body_size, &new_body)
            }
            Ok(None) => self.failover.keep_body(&body),
            Err(e) => return self.fail(e),
        }
        if let Some(plan) = &mut self.plan {
            plan.streaming = streaming;
            plan.client_wants_usage = wants_usage;
            plan.want_base64 = want_base64;
            if plan.upstream_model.is_none() {
                plan.upstream_model = upstream_model;
            }
            if let Some(obs) = &mut self.obs {
                if plan.validate_body {
                    obs.set_models(
                        &plan.provider,
                        body_model.as_deref(),
                        plan.upstream_model.as_deref(),
                    );
                }
                obs.streaming = streaming;
            }
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        if let Some(action) = failover::on_response_headers(self) {
            return action;
        }
        let Some(plan) = &self.plan else {
            return Action::Continue;
        };
        let status = self
            .get_http_response_header(":status")
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(200);
        if let Some(obs) = &mut self.obs {
            obs.status = Some(status);
        }
        if plan.provider.config.protocol == Protocol::Original {
            self.tap_passthrough(status);
            return Action::Continue;
        }
        let translation = plan.translation;
        if status >= 400 {
            if translation != Translation::MessagesNative {
                // An empty answer never reaches the body phase: convert it here.
                if end_of_stream {
                    if let Some(body) = translation.error_body(status, b"") {
                        self.plan = None;
                        host::send_json(u32::from(status), &body);
                        return Action::Pause;
                    }
                }
                self.response_error = Some(status);
                self.set_http_response_header("content-length", None);
            }
            return Action::Continue;
        }
        // Gemini may frame a stream as a JSON array; its converter reads both framings. The
        // content type is only read for requests that asked for a stream.
        let streamed_api = matches!(plan.api, Api::ChatCompletions | Api::Messages);
        let stream_framed = plan.streaming
            && streamed_api
            && (matches!(
                translation,
                Translation::ChatToGemini | Translation::MessagesToGemini
            ) || self
                .get_http_response_header("content-type")
                .is_some_and(|c| c.starts_with("text/event-stream")));
        if stream_framed {
            let model = plan.upstream_model.clone().unwrap_or_default();
            let ids = Ids {
                model: &model,
                id: &plan.id,
                created: plan.created,
            };
            self.stream = translation.stream_converter(&ids, plan.client_wants_usage);
            if self.stream.is_some() {
                self.set_http_response_header("content-length", None);
            }
            if translation != Translation::Edit && self.stream.is_some() {
                self.set_http_response_header("content-type", Some("text/event-stream"));
            }
        } else if translation.converts_plain_response() {
            self.convert_response = true;
            self.set_http_response_header("content-length", None);
        }
        if self.stream.is_none() && !self.convert_response {
            self.tap_passthrough(status);
        } else if end_of_stream {
            // Nothing to convert and no body phase to say so: answer while the status can
            // still change.
            return self.fail(GatewayError::new(
                ErrorKind::BadGateway,
                "invalid_upstream_response",
                "the vendor answered with an empty body",
            ));
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if let Some(status) = self.response_error {
            if !end_of_stream {
                return Action::Pause;
            }
            let body = self
                .get_http_response_body(0, body_size)
                .unwrap_or_default();
            let translation = self
                .plan
                .as_ref()
                .map_or(Translation::Edit, |p| p.translation);
            if let Some(converted) = translation.error_body(status, &body) {
                self.set_http_response_body(0, body_size, &converted);
            }
            self.complete(None);
            return Action::Continue;
        }
        if self.convert_response {
            if !end_of_stream {
                return Action::Pause;
            }
            let body = self
                .get_http_response_body(0, body_size)
                .unwrap_or_default();
            let Some(plan) = &self.plan else {
                return Action::Continue;
            };
            let model = plan.upstream_model.clone().unwrap_or_default();
            let ids = Ids {
                model: &model,
                id: &plan.id,
                created: plan.created,
            };
            let (out, usage) =
                match plan
                    .translation
                    .response_body_usage(&body, &ids, plan.want_base64)
                {
                    Ok(done) => done,
                    // The status already went out (holding the response headers until the body
                    // is read hung Envoy after an upstream reset; see the README's limits): the
                    // body says what failed, in the client's shape.
                    Err(e) => {
                        log::warn!(
                            "ai-proxy: the vendor's answer could not be converted: {}",
                            e.message
                        );
                        let body = match plan.translation.anthropic_client() {
                            true => openai_error_to_anthropic(e.status(), &e.body()),
                            false => e.body(),
                        };
                        (body, None)
                    }
                };
            self.set_http_response_body(0, body_size, &out);
            if let Some(obs) = &mut self.obs {
                obs.first_byte();
                obs.usage = usage.or_else(|| switchyard_protocol::usage::usage_from_body(&out));
            }
            self.complete(None);
            return Action::Continue;
        }
        if self.stream.is_none() {
            let tapped = self.obs.as_ref().is_some_and(|o| o.tapping());
            if body_size > 0 && tapped {
                let chunk = self.get_http_response_body(0, body_size);
                if let Some(obs) = &mut self.obs {
                    obs.first_byte();
                    if let Some(chunk) = chunk {
                        obs.feed(&chunk);
                    }
                }
            }
            if end_of_stream {
                self.complete(None);
            }
            return Action::Continue;
        }
        let chunk = self
            .get_http_response_body(0, body_size)
            .unwrap_or_default();
        let Some(conv) = self.stream.as_mut() else {
            return Action::Continue;
        };
        let mut out = conv.push(&chunk);
        if end_of_stream {
            out.extend(conv.finish());
        }
        let usage = conv.usage();
        self.set_http_response_body(0, body_size, &out);
        if !out.is_empty() {
            if let Some(obs) = &mut self.obs {
                obs.first_byte();
            }
        }
        if end_of_stream {
            self.complete(usage);
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let Some(obs) = &mut self.obs else {
            return;
        };
        // Host calls cost: an answer that completed through this filter has its status and
        // neither timed out nor was reset; only other endings (local replies, resets,
        // timeouts) read what Envoy recorded.
        let (status, details) = if obs.completed() {
            (obs.status, None)
        } else {
            let code = host::property(&["response", "code"])
                .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                .map(u64::from_le_bytes)
                .and_then(|c| u16::try_from(c).ok());
            (code, host::property_string(&["response", "code_details"]))
        };
        obs.emit(status, details.as_deref());
    }
}
