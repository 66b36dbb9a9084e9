//! ai-proxy: clients speak the OpenAI API (or Anthropic's Messages API); this filter points
//! each request at the configured vendor (path, host, credentials), maps the model, edits or
//! translates the body and converts the response (streams included) back.
//!
//! [`ProxyRoot`] is the per-plugin state (config, token health checks, fetched context
//! files); [`ProxyRequest`] is one request's state machine. The decisions are pure and live
//! in `switchyard_policy` (config, vendors, model mapping, translation choice, response mode)
//! and `switchyard_protocol` (bodies and streams).

mod bedrock;
mod failover;
mod vertex;

pub use failover::HEALTH_CHECK_HEADER;

use crate::host::{
    select_config, Action, BodyFacts, Callout, CalloutResponse, Host, HttpHost, Rng,
};
use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchyard_policy::config_error::parse_json;
use switchyard_policy::context_file::{self, ContextCache};
use switchyard_policy::observe;
use switchyard_policy::proxy::{Protocol, Provider, ProxyConfig};
use switchyard_policy::rules::RuleSet;
use switchyard_policy::stats::Kind;
use switchyard_policy::translation::{
    self, AnswerPlan, Ids, ResponseMode, Translation, UpstreamTarget,
};
use switchyard_policy::vendor::Api;
use switchyard_protocol::anthropic::openai_error_to_anthropic;
use switchyard_protocol::openai_edit::{self, ParsedRequest, RequestEdits};
use switchyard_protocol::responses::RequestEcho;
use switchyard_protocol::{ErrorKind, GatewayError};

/// How long the context-file fetch may take.
const CONTEXT_FETCH_TIMEOUT_MS: u64 = 10_000;

type Rules = Arc<RuleSet<ProxyConfig>>;

/// The plugin instance: its config, and what all its requests share.
pub struct ProxyRoot {
    rules: Option<Rules>,
    rng: Arc<Rng>,
    /// Token health checks, run on the tick by the instance holding each pool's lease.
    health: failover::HealthChecks,
    /// Vertex AI access tokens, fetched and refreshed on the tick.
    vertex_tokens: vertex::TokenRefresher,
    contexts: Arc<Mutex<ContextCache>>,
}

impl ProxyRoot {
    pub fn new(seed: u64) -> Self {
        let rng = Rng::new(seed);
        let health = failover::HealthChecks::new(rng.next_u64());
        ProxyRoot {
            rules: None,
            health,
            vertex_tokens: vertex::TokenRefresher::default(),
            rng: Arc::new(rng),
            contexts: Arc::new(Mutex::new(ContextCache::default())),
        }
    }

    /// Take a new config (JSON, Higress's shape). On success returns the tick period the
    /// config needs (token health checks), if any; on error the previous config stays.
    pub fn configure(&mut self, config: &[u8]) -> Result<Option<Duration>, String> {
        let rules = parse_json(config)
            .and_then(|v| RuleSet::parse(&v, ProxyConfig::from_json))
            .map_err(|e| e.to_string())?;
        let period = [
            failover::HealthChecks::tick_period(&rules),
            vertex::TokenRefresher::tick_period(&rules),
        ]
        .into_iter()
        .flatten()
        .min();
        self.health.reconfigure();
        self.rules = Some(Arc::new(rules));
        if let Ok(mut c) = self.contexts.lock() {
            c.clear();
        }
        Ok(period)
    }

    pub fn new_request(&self) -> ProxyRequest {
        ProxyRequest {
            rules: self.rules.clone(),
            rng: self.rng.clone(),
            failover: failover::Attempts::default(),
            contexts: self.contexts.clone(),
            plan: None,
            response: None,
            anthropic_client: false,
            context_text: None,
            obs: None,
            client_path: String::new(),
            client_api: None,
            deferred: false,
            held_body: None,
            read_body: None,
            token_fetch: None,
            context_pending: false,
            retry_after: None,
            vendor_error_type: None,
        }
    }

    /// The periodic tick: token health checks that are due, Vertex AI tokens to fetch.
    pub fn on_tick(&mut self, host: &mut impl Host) {
        if let Some(rules) = self.rules.clone() {
            self.health.tick(host, &rules);
            self.vertex_tokens.tick(host, &rules);
        }
    }

    /// A callout the root started (a health check, a token request) answered.
    pub fn on_callout_done(&mut self, host: &impl Host, id: u32, response: &CalloutResponse) {
        if self.vertex_tokens.on_response(host, id, response) {
            return;
        }
        self.health
            .on_response(host, id, response.status.unwrap_or(0));
    }
}

/// What the header phase decided for this request.
struct Plan {
    provider: Arc<Provider>,
    api: Api,
    translation: Translation,
    /// Completion id (written when an answer first needs it: passed-through answers carry
    /// their own) and timestamp for translated answers that carry none.
    id: CompletionId,
    created: u64,
    /// Embeddings: the client asked for base64 vectors.
    want_base64: bool,
    /// The model the client asked for (if known) and the one sent upstream.
    client_model: Option<String>,
    upstream_model: Option<String>,
    /// Body checks and edits still to do in the body phase.
    touch_body: bool,
    /// Body facts were unknown (or incomplete) in the header phase: read them from the body.
    validate_body: bool,
    streaming: bool,
    client_wants_usage: bool,
    max_body: u64,
    /// Responses clients: what the converted answer echoes of the request (set in the body
    /// phase).
    echo: Option<RequestEcho>,
}

impl Plan {
    fn original(&self) -> bool {
        self.provider.config.protocol == Protocol::Original
    }

    /// What choosing the response mode needs to know; `model` holds the upstream model.
    fn answer<'a>(&'a self, model: &'a str) -> AnswerPlan<'a> {
        AnswerPlan {
            translation: (!self.original()).then_some(self.translation),
            api: self.api,
            streaming: self.streaming,
            client_wants_usage: self.client_wants_usage,
            ids: Ids {
                model,
                id: self.id.get(),
                created: self.created,
                echo: self.echo.as_ref(),
            },
        }
    }
}

/// A completion id, drawn when the plan is made and written out the first time it is read.
struct CompletionId {
    n: u64,
    responses: bool,
    text: std::cell::OnceCell<String>,
}

impl CompletionId {
    fn get(&self) -> &str {
        self.text.get_or_init(|| {
            let prefix = if self.responses { "resp_" } else { "chatcmpl-" };
            prefixed_hex(prefix, self.n)
        })
    }
}

/// `prefix` then `n` as sixteen lower-case hex digits (what `format!("{prefix}{n:016x}")`
/// writes, without the formatting machinery: this runs for every answer).
fn prefixed_hex(prefix: &str, n: u64) -> String {
    let mut out = String::with_capacity(prefix.len() + 16);
    out.push_str(prefix);
    for shift in (0..16).rev() {
        let digit = ((n >> (shift * 4)) & 0xf) as u32;
        out.push(char::from_digit(digit, 16).unwrap_or('0'));
    }
    out
}

/// One request through ai-proxy.
pub struct ProxyRequest {
    rules: Option<Rules>,
    rng: Arc<Rng>,
    /// Token in use, tokens tried and what a retry resends.
    failover: failover::Attempts,
    contexts: Arc<Mutex<ContextCache>>,
    plan: Option<Plan>,
    /// How the answer reaches the client, once its headers arrived.
    response: Option<ResponseMode>,
    /// The client speaks Anthropic's Messages API: gateway errors go back in its shape.
    anthropic_client: bool,
    context_text: Option<Arc<str>>,
    /// Provider, models, status, usage and timings of this request, for metrics and logs.
    obs: Option<observe::Observation>,
    /// The client's `:path` (read once), and the API it names.
    client_path: String,
    client_api: Option<Api>,
    /// The host holds the headers until the body is complete: the header phase's decisions
    /// are taken in the body phase, from the body itself (native filters).
    deferred: bool,
    /// Deferred and waiting for the context file or the token: the size of the held body to
    /// finish with when they arrive.
    held_body: Option<usize>,
    /// Deferred: the body as the decision read it, and where its top-level `model` values
    /// are (`None` when its facts came from a parsed tree), so the body phase neither reads
    /// nor scans it again.
    read_body: Option<(Vec<u8>, Option<ModelSpans>)>,
    /// Vertex AI: the callout of this request's own token request (no usable token yet).
    token_fetch: Option<u32>,
    /// The context file's fetch is in flight.
    context_pending: bool,
    /// `retry-after` seconds for the next gateway error.
    retry_after: Option<u64>,
    /// The vendor's error type header of an error answer (Bedrock's `x-amzn-errortype`).
    vendor_error_type: Option<String>,
}

impl ProxyRequest {
    fn fail(&mut self, host: &mut impl HttpHost, err: GatewayError) -> Action {
        self.plan = None;
        self.token_fetch = None;
        self.context_pending = false;
        let body = if self.anthropic_client {
            openai_error_to_anthropic(err.status(), &err.body())
        } else {
            err.body()
        };
        let retry_after = self.retry_after.take().map(|s| s.to_string());
        let mut headers = vec![
            ("content-type", "application/json"),
            ("x-switchyard-error", "gateway"),
        ];
        if let Some(s) = retry_after.as_deref() {
            headers.push(("retry-after", s));
        }
        host.send_response(err.status(), &headers, &body);
        Action::Pause
    }

    /// The token and the context file, when awaited, are here: finish a held body (deferred)
    /// and let the request go on.
    fn proceed(&mut self, host: &mut impl HttpHost) {
        if self.token_fetch.is_some() || self.context_pending {
            return;
        }
        if let Some(size) = self.held_body.take() {
            // Deferred: the body waited with the headers; finish it first.
            if self.body_phase(host, size, true, None) == Action::Pause {
                return;
            }
        }
        host.resume_request();
    }

    /// A completion id from the instance's rng (`resp_…` for the Responses API).
    fn fresh_id(&self, api: Api) -> CompletionId {
        CompletionId {
            n: self.rng.next_u64(),
            responses: api == Api::Responses,
            text: std::cell::OnceCell::new(),
        }
    }

    /// `GET /v1/models`: the gateway answers from its config (every provider of the scope),
    /// unless the provider for this request keeps its vendor's own protocol. Returns whether
    /// it answered.
    fn answer_models(&mut self, host: &mut impl HttpHost) -> bool {
        let Some(rules) = self.rules.clone() else {
            return false;
        };
        let Some((cfg, provider)) = provider_choice(host, &rules) else {
            return false;
        };
        let original = provider.is_some_and(|p| p.config.protocol == Protocol::Original);
        if original {
            return false;
        }
        let body = switchyard_policy::models::list_body(&cfg.listed_models());
        send_list(host, &body);
        true
    }

    fn plan_request(
        &mut self,
        host: &impl HttpHost,
        facts: Option<BodyFacts>,
    ) -> Result<Option<Plan>, GatewayError> {
        let Some(rules) = self.rules.clone() else {
            return Ok(None);
        };
        let Some((cfg, provider)) = provider_choice(host, &rules) else {
            return Ok(None);
        };
        let provider = provider.cloned().ok_or_else(|| {
            GatewayError::new(
                ErrorKind::Unavailable,
                "no_provider",
                "no provider is configured for this request",
            )
        })?;
        let path_api = self.client_api;
        let id = self.fresh_id(path_api.unwrap_or(Api::ChatCompletions));
        // One clock read serves the answer's `created` and the request's duration.
        let now_ms = host.now_ms();
        let created = now_ms / 1000;
        if provider.config.protocol == Protocol::Original {
            // Original protocol: only credentials and host change.
            return Ok(Some(Plan {
                provider,
                api: path_api.unwrap_or(Api::ChatCompletions),
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
                echo: None,
            }));
        }
        let api = path_api.ok_or_else(|| {
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
        // The body's size is checked in the body phase (json_to_metadata, when present, has
        // buffered it already): no `content-length` read here.
        let facts = facts.unwrap_or_else(|| host.body_facts());
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
        // Vertex AI picks Claude or Gemini by the mapped model.
        let translation = Translation::choose_for(&provider, api, upstream_model.as_deref())?;
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
        // A fact the metadata filter did not lift (e.g. `include_usage` of a stream) is
        // unknown, never false: the body phase reads it.
        // Responses streams never carry `include_usage`: the model alone is complete.
        let complete = if api == Api::Responses {
            facts.known()
        } else {
            facts.complete()
        };
        let validate_body = has_body && !complete;
        let touch_body = has_body
            && (translation.rewrites_body()
                // Claude on Vertex: `model` leaves the body, `anthropic_version` joins it.
                || provider.vertex.is_some()
                || mapping_changes
                || (streaming && !client_wants_usage && api != Api::Responses)
                || provider.config.context.is_some()
                || validate_body);
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
            validate_body,
            streaming,
            client_wants_usage,
            max_body: cfg.max_request_body_bytes,
            echo: None,
        }))
    }

    fn rewrite_headers(
        &mut self,
        host: &mut impl HttpHost,
        plan: &Plan,
    ) -> Result<(), GatewayError> {
        let provider = &plan.provider;
        let rand = self.rng.next_u64();
        let key_auth = provider.vertex.as_ref().and_then(|v| v.auth.clone());
        let index = match key_auth {
            Some(_) => None,
            None => failover::choose_token(&*host, provider, rand),
        };
        let target = UpstreamTarget {
            provider,
            translation: plan.translation,
            api: plan.api,
            model: plan.upstream_model.as_deref(),
            streaming: plan.streaming,
            client_path: &self.client_path,
            token: index.and_then(|i| provider.token(i)),
            body_changes: plan.touch_body,
        };
        let edits = translation::upstream_headers(&target, || {
            host.request_header("anthropic-version").is_some()
        })?;
        host.edit_request_headers(&edits);
        if let Some(auth) = &key_auth {
            match vertex::token_for_request(host, auth) {
                Ok(vertex::Need::Token(token)) => {
                    let (name, value) = provider.auth_header(&token);
                    host.set_request_header(name, Some(&value));
                }
                Ok(vertex::Need::Fetching(id)) => self.token_fetch = Some(id),
                Err(u) => {
                    self.retry_after = Some(u.retry_after);
                    return Err(u.error);
                }
            }
        }
        // The request's start time is already known (no second clock read).
        let started = self
            .obs
            .as_ref()
            .map_or_else(|| host.now_ms(), |o| o.started_ms);
        self.failover.start(index, started);
        Ok(())
    }

    /// Start fetching the context file unless it is cached. Returns whether a fetch is in
    /// flight (the request is then held until it answers).
    fn start_context_fetch(
        &mut self,
        host: &mut impl HttpHost,
        plan: &Plan,
    ) -> Result<bool, GatewayError> {
        let Some(ctx) = &plan.provider.config.context else {
            return Ok(false);
        };
        let cached = self.contexts.lock().ok().and_then(|c| c.get(&ctx.file_url));
        if let Some(text) = cached {
            self.context_text = Some(text);
            return Ok(false);
        }
        let (authority, path) = context_file::request_target(ctx)?;
        let headers = [
            (":method", "GET"),
            (":path", path.as_str()),
            (":authority", authority.as_str()),
        ];
        let cluster = context_file::cluster_name(ctx);
        let call = Callout {
            cluster: &cluster,
            headers: &headers,
            body: None,
            timeout_ms: CONTEXT_FETCH_TIMEOUT_MS,
        };
        host.http_call(&call)
            .map_err(|e| context_file::fetch_error(&ctx.file_url, &e))?;
        Ok(true)
    }

    /// The response is complete: settle usage and publish the request's facts.
    fn complete(
        &mut self,
        host: &mut impl HttpHost,
        converter_usage: Option<switchyard_protocol::Usage>,
    ) {
        if let Some(obs) = &mut self.obs {
            if let Some(line) = obs.complete(converter_usage) {
                host.set_log_facts(&line);
            }
        }
    }

    fn first_byte(&mut self, host: &impl Host) {
        if let Some(obs) = &mut self.obs {
            if obs.wants_first_byte() {
                obs.first_byte_ms = Some(host.now_ms());
            }
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

/// Answer locally with a successful JSON list (`GET /v1/models`).
pub(crate) fn send_list(host: &mut impl HttpHost, body: &[u8]) {
    host.send_response(200, &[("content-type", "application/json")], body);
}

/// Answer locally with a JSON body, marked as the gateway's own answer.
pub(crate) fn send_json(host: &mut impl HttpHost, status: u16, body: &[u8]) {
    host.send_response(
        status,
        &[
            ("content-type", "application/json"),
            ("x-switchyard-error", "gateway"),
        ],
        body,
    );
}

impl ProxyRequest {
    pub fn on_request_headers(&mut self, host: &mut impl HttpHost, end_of_stream: bool) -> Action {
        self.client_path = host.request_header(":path").unwrap_or_default();
        self.client_api = Api::from_path(&self.client_path);
        self.anthropic_client = self.client_api == Some(Api::Messages);
        if self.rules.is_some() && host.holds_headers_for_body() && !end_of_stream {
            // Decide once the body is here, with every fact known.
            self.deferred = true;
            return Action::Pause;
        }
        self.start(host, None, end_of_stream)
    }

    /// The header phase's work: plan, point the headers at the vendor, fetch the context
    /// file. `facts`: what is known of the body (`None`: ask the host's metadata).
    fn start(
        &mut self,
        host: &mut impl HttpHost,
        facts: Option<BodyFacts>,
        end_of_stream: bool,
    ) -> Action {
        if self.client_api == Some(Api::Models) && self.answer_models(host) {
            return Action::Pause;
        }
        let plan = match self.plan_request(host, facts) {
            Ok(Some(plan)) => plan,
            Ok(None) => return Action::Continue,
            Err(e) => return self.fail(host, e),
        };
        // No body at all: the body phase never runs, so nothing would check or translate it.
        if end_of_stream && plan.api != Api::Models {
            return self.fail(
                host,
                GatewayError::invalid("invalid_json", "request body is empty: send a JSON object"),
            );
        }
        if let Err(e) = bedrock::check_runtime(&*host, &plan.provider) {
            return self.fail(host, e);
        }
        if let Err(e) = self.rewrite_headers(host, &plan) {
            return self.fail(host, e);
        }
        let fetching = match self.start_context_fetch(host, &plan) {
            Ok(f) => f,
            Err(e) => return self.fail(host, e),
        };
        self.context_pending = fetching;
        if plan.provider.config.retry_on_failure.enabled {
            // Kept for retries: the upstream headers after the rewrite.
            self.failover.keep_headers(host.request_headers());
        }
        self.plan = Some(plan);
        if fetching || self.token_fetch.is_some() {
            // Held only until the context file (and the token) arrive: their answers resume.
            return Action::Pause;
        }
        Action::Continue
    }

    pub fn on_request_body(
        &mut self,
        host: &mut impl HttpHost,
        body_size: usize,
        end_of_stream: bool,
    ) -> Action {
        if self.deferred {
            if !end_of_stream {
                return Action::Pause;
            }
            self.deferred = false;
            let needs_body = self.client_api.is_some_and(|a| a != Api::Models);
            if !needs_body {
                if self.start(host, None, false) == Action::Pause {
                    return self.hold_body(body_size);
                }
                return self.body_phase(host, body_size, end_of_stream, None);
            }
            let body = host.request_body(body_size).unwrap_or_default();
            // The balancer before this filter may have left the facts of the body it wrote.
            let memo = crate::body_memo::take(&body).filter(|f| f.model.is_some());
            // Without the balancer's facts the body is parsed or scanned here: its size limit
            // comes first. (Facts from the balancer cost no parse; the body phase checks the
            // limit before translating.)
            let parse_tree = match memo {
                Some(_) => false,
                None => {
                    let before = self.before_body(host);
                    if let Some(limit) = before.limit.filter(|l| body_size as u64 > *l) {
                        return self.fail(host, too_large(limit));
                    }
                    before.parse_tree
                }
            };
            // Translated from its whole tree: parse it once, for its facts and for the
            // translation (the usual way is a facts scan, then the translator's parse).
            let parsed = parse_tree.then(|| ParsedRequest::parse(&body)).flatten();
            if let Some((parsed, facts)) = parsed.and_then(|p| p.facts().map(|f| (p, f))) {
                let known = body_facts(Some(facts.model), facts.stream, facts.include_usage);
                if self.start(host, Some(known), false) == Action::Pause {
                    drop(parsed);
                    self.read_body = Some((body, None));
                    return self.hold_body(body_size);
                }
                let pre = PreRead {
                    body: &body,
                    parsed: &parsed,
                };
                return self.body_phase(host, body_size, end_of_stream, Some(pre));
            }
            let facts = match memo {
                Some(f) => f,
                None => match openai_edit::request_facts(&body, true) {
                    Ok(f) => f,
                    Err(e) => return self.fail(host, e),
                },
            };
            let known = body_facts(facts.model, facts.stream, facts.include_usage);
            self.read_body = Some((body, Some(facts.model_spans)));
            if self.start(host, Some(known), false) == Action::Pause {
                return self.hold_body(body_size);
            }
        }
        self.body_phase(host, body_size, end_of_stream, None)
    }

    /// The header-phase work paused (context file, token): its answer finishes the body.
    fn hold_body(&mut self, body_size: usize) -> Action {
        if self.plan.is_some() {
            self.held_body = Some(body_size);
        }
        Action::Pause
    }

    /// What the deferred start needs before it reads the body's facts, from the provider the
    /// request goes to (the same choice [`Self::plan_request`] makes).
    fn before_body(&self, host: &impl HttpHost) -> BeforeBody {
        let (Some(api), Some(rules)) = (self.client_api, self.rules.as_ref()) else {
            return BeforeBody::default();
        };
        match provider_choice(host, rules) {
            Some((cfg, Some(provider))) => BeforeBody {
                limit: Some(cfg.max_request_body_bytes),
                parse_tree: Translation::translates_parsed_body(provider, api),
            },
            _ => BeforeBody::default(),
        }
    }

    /// `pre`: the body as the deferred start already read (and parsed) it; `None` reads it
    /// here (or takes what [`Self::read_body`] kept).
    fn body_phase(
        &mut self,
        host: &mut impl HttpHost,
        body_size: usize,
        end_of_stream: bool,
        pre: Option<PreRead<'_>>,
    ) -> Action {
        let Some(plan) = &self.plan else {
            return Action::Continue;
        };
        if body_size as u64 > plan.max_body {
            let limit = plan.max_body;
            return self.fail(host, too_large(limit));
        }
        if !plan.touch_body {
            let signs = switchyard_policy::bedrock::signs(&plan.provider);
            if !self.failover.wants_body() && !signs {
                return Action::Continue;
            }
            // Kept as sent, for retries; signed as sent (SigV4 covers the body).
            if !end_of_stream {
                return Action::Pause;
            }
            let body = match (&pre, self.read_body.take()) {
                (Some(pre), _) => Cow::Borrowed(pre.body),
                (None, Some((body, _))) => Cow::Owned(body),
                (None, None) => Cow::Owned(host.request_body(body_size).unwrap_or_default()),
            };
            self.failover.keep_body(&body);
            bedrock::sign(host, &plan.provider, &body);
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let (body, read_spans, parsed) = match (pre, self.read_body.take()) {
            (Some(pre), _) => (Cow::Borrowed(pre.body), None, Some(pre.parsed)),
            (None, Some((body, spans))) => (Cow::Owned(body), spans, None),
            (None, None) => (
                Cow::Owned(host.request_body(body_size).unwrap_or_default()),
                None,
                None,
            ),
        };
        let needs_model = plan.api != Api::Models;
        let mut upstream_model = plan.upstream_model.clone();
        let mut streaming = plan.streaming;
        let mut wants_usage = plan.client_wants_usage;
        // Without (complete) body metadata, one pass reads the model and stream flags.
        let mut body_model = None;
        let mut model_spans = read_spans;
        if plan.validate_body {
            let facts = match openai_edit::request_facts(&body, needs_model) {
                Ok(f) => f,
                Err(e) => return self.fail(host, e),
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
            context: self.context_text.as_deref().filter(|_| {
                matches!(
                    plan.api,
                    Api::ChatCompletions | Api::Messages | Api::Responses
                )
            }),
        };
        let model = upstream_model.as_deref().unwrap_or_default();
        let mut echo = None;
        let translated = if plan.translation.responses_client() {
            plan.translation
                .responses_request_body(&plan.provider, &body, &edits, model)
                .map(|(out, e)| {
                    echo = e;
                    out
                })
        } else {
            plan.translation
                .request_body_parsed(&plan.provider, &body, parsed, &edits, model)
        };
        let want_base64 = plan.translation == Translation::EmbeddingsToGemini
            && switchyard_protocol::gemini::embeddings_want_base64(&body);
        match translated {
            Ok(Some(new_body)) => {
                self.failover.keep_body(&new_body);
                host.set_request_body(body_size, &new_body);
                bedrock::sign(host, &plan.provider, &new_body);
            }
            Ok(None) => {
                self.failover.keep_body(&body);
                bedrock::sign(host, &plan.provider, &body);
            }
            Err(e) => return self.fail(host, e),
        }
        if let Some(plan) = &mut self.plan {
            plan.streaming = streaming;
            plan.client_wants_usage = wants_usage;
            plan.want_base64 = want_base64;
            plan.echo = echo;
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

    pub fn on_response_headers(&mut self, host: &mut impl HttpHost, end_of_stream: bool) -> Action {
        if let Some(action) = failover::on_response_headers(self, host) {
            return action;
        }
        let Some(plan) = &self.plan else {
            return Action::Continue;
        };
        let status = host
            .response_header(":status")
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(200);
        // A vendor error's status for the client (Bedrock's exception decides it).
        let mut client_status = status;
        if status >= 400 && plan.translation.bedrock() && !plan.original() {
            self.vendor_error_type = host.response_header("x-amzn-errortype");
            client_status = plan
                .translation
                .error_status(status, self.vendor_error_type.as_deref());
            if client_status != status {
                host.set_response_header(":status", Some(&client_status.to_string()));
            }
        }
        if let Some(obs) = &mut self.obs {
            obs.status = Some(client_status);
        }
        let model = plan.upstream_model.as_deref().unwrap_or_default();
        let answer = plan.answer(model);
        let mode = ResponseMode::choose(&answer, status, || {
            host.response_header("content-type")
                .is_some_and(|c| c.starts_with("text/event-stream"))
        });
        let translation = plan.translation;
        match &mode {
            ResponseMode::Passthrough { tap } => {
                if *tap {
                    if let Some(obs) = &mut self.obs {
                        obs.tap = if plan.api == Api::Responses {
                            observe::Tap::SniffResponses
                        } else {
                            observe::Tap::Sniff
                        };
                    }
                }
            }
            ResponseMode::VendorError(status) => {
                // An empty answer never reaches the body phase: convert it here.
                if end_of_stream {
                    let error_type = self.vendor_error_type.as_deref();
                    if let Some(body) = translation.error_body_typed(*status, error_type, b"") {
                        self.plan = None;
                        send_json(host, client_status, &body);
                        return Action::Pause;
                    }
                }
                host.set_response_header("content-length", None);
            }
            ResponseMode::Stream(_) | ResponseMode::WholeBody => {
                if end_of_stream {
                    // Nothing to convert and no body phase to say so: answer while the status
                    // can still change.
                    return self.fail(
                        host,
                        GatewayError::new(
                            ErrorKind::BadGateway,
                            "invalid_upstream_response",
                            "the vendor answered with an empty body",
                        ),
                    );
                }
                host.set_response_header("content-length", None);
                if matches!(mode, ResponseMode::Stream(_)) && translation != Translation::Edit {
                    host.set_response_header("content-type", Some("text/event-stream"));
                }
            }
        }
        self.response = Some(mode);
        Action::Continue
    }

    pub fn on_response_body(
        &mut self,
        host: &mut impl HttpHost,
        body_size: usize,
        end_of_stream: bool,
    ) -> Action {
        match &mut self.response {
            Some(ResponseMode::VendorError(status)) => {
                let status = *status;
                if !end_of_stream {
                    return Action::Pause;
                }
                let body = host.response_body(body_size).unwrap_or_default();
                let translation = self
                    .plan
                    .as_ref()
                    .map_or(Translation::Edit, |p| p.translation);
                let error_type = self.vendor_error_type.as_deref();
                if let Some(converted) = translation.error_body_typed(status, error_type, &body) {
                    host.set_response_body(body_size, &converted);
                }
                self.complete(host, None);
                Action::Continue
            }
            Some(ResponseMode::WholeBody) => {
                if !end_of_stream {
                    return Action::Pause;
                }
                let body = host.response_body(body_size).unwrap_or_default();
                let Some(plan) = &self.plan else {
                    return Action::Continue;
                };
                let model = plan.upstream_model.as_deref().unwrap_or_default();
                let ids = plan.answer(model).ids;
                let (out, usage) =
                    match plan
                        .translation
                        .response_body_usage(&body, &ids, plan.want_base64)
                    {
                        Ok(done) => done,
                        // The status already went out (holding the response headers until the
                        // body is read hung Envoy after an upstream reset; see the README's
                        // limits): the body says what failed, in the client's shape.
                        Err(e) => {
                            log::warn!(
                                "ai-proxy: the vendor's answer could not be converted: {}",
                                e.message
                            );
                            (translation::client_error(plan.translation, &e), None)
                        }
                    };
                host.set_response_body(body_size, &out);
                self.first_byte(&*host);
                if let Some(obs) = &mut self.obs {
                    obs.usage = usage.or_else(|| switchyard_protocol::usage::usage_from_body(&out));
                }
                self.complete(host, None);
                Action::Continue
            }
            Some(ResponseMode::Stream(conv)) => {
                let chunk = host.response_body(body_size).unwrap_or_default();
                let mut out = conv.push(&chunk);
                if end_of_stream {
                    out.extend(conv.finish());
                }
                let usage = conv.usage();
                host.set_response_body(body_size, &out);
                if !out.is_empty() {
                    self.first_byte(&*host);
                }
                if end_of_stream {
                    self.complete(host, usage);
                }
                Action::Continue
            }
            Some(ResponseMode::Passthrough { .. }) | None => {
                let tapped = self.obs.as_ref().is_some_and(|o| o.tapping());
                if body_size > 0 && tapped {
                    let chunk = host.response_body(body_size);
                    self.first_byte(&*host);
                    if let (Some(obs), Some(chunk)) = (&mut self.obs, chunk) {
                        obs.feed(&chunk);
                    }
                }
                if end_of_stream {
                    self.complete(host, None);
                }
                Action::Continue
            }
        }
    }

    /// A callout this request started answered: a retry, or the context file.
    pub fn on_callout_done(
        &mut self,
        host: &mut impl HttpHost,
        id: u32,
        response: CalloutResponse,
    ) {
        if self.failover.owns(id) {
            return failover::on_retry_response(self, host, response);
        }
        let Some(plan) = &self.plan else {
            return;
        };
        if self.token_fetch == Some(id) {
            self.token_fetch = None;
            let Some(auth) = plan.provider.vertex.as_ref().and_then(|v| v.auth.clone()) else {
                return;
            };
            match vertex::accept(&*host, &auth, &response) {
                Ok(token) => {
                    let (name, value) = plan.provider.auth_header(&token);
                    host.set_request_header(name, Some(&value));
                    self.proceed(host);
                }
                Err(u) => {
                    self.retry_after = Some(u.retry_after);
                    self.fail(host, u.error);
                }
            }
            return;
        }
        let Some(ctx) = plan.provider.config.context.clone() else {
            return;
        };
        match context_file::accept(response.status.unwrap_or(0), response.body) {
            Ok(text) => {
                let text: Arc<str> = Arc::from(text);
                if let Ok(mut c) = self.contexts.lock() {
                    c.put(&ctx.file_url, text.clone());
                }
                self.context_text = Some(text);
                self.context_pending = false;
                self.proceed(host);
            }
            Err(detail) => {
                log::warn!(
                    "ai-proxy: context file {} unavailable: {detail}",
                    ctx.file_url
                );
                let err = context_file::fetch_error(&ctx.file_url, &detail);
                self.fail(host, err);
            }
        }
    }

    /// The stream is over: emit the request's metrics.
    pub fn on_log(&mut self, host: &mut impl HttpHost) {
        let Some(obs) = &mut self.obs else {
            return;
        };
        // An answer that completed through this filter has its status and neither timed out
        // nor was reset; only other endings (local replies, resets, timeouts) read what the
        // host recorded.
        let (status, details) = if obs.completed() {
            (obs.status, None)
        } else {
            (host.final_status(), host.final_status_details())
        };
        if let Some(line) = obs.publish() {
            host.set_log_facts(&line);
        }
        obs.emit(
            status,
            details.as_deref(),
            host.now_ms(),
            |kind, metric, labels, value| match kind {
                Kind::Counter => host.count(metric, labels, value),
                Kind::Histogram => host.record(metric, labels, value),
            },
        );
    }
}

/// The config that applies to this request and the provider it names: the one the
/// `activeProviderHeader` picks, else the active one (`None` when neither is configured).
fn provider_choice<'r>(
    host: &impl HttpHost,
    rules: &'r Rules,
) -> Option<(&'r ProxyConfig, Option<&'r Arc<Provider>>)> {
    let cfg = select_config(host, rules)?;
    let header_choice = cfg
        .active_provider_header
        .as_deref()
        .and_then(|h| host.request_header(h));
    Some((cfg, cfg.provider_for(header_choice.as_deref())))
}

/// Byte ranges of a body's top-level `model` values.
type ModelSpans = Vec<std::ops::Range<usize>>;

/// [`ProxyRequest::before_body`]: the request's body limit (when a provider takes it), and
/// whether that provider translates from the body's whole tree.
#[derive(Default)]
struct BeforeBody {
    limit: Option<u64>,
    parse_tree: bool,
}

/// The body as the deferred start read and parsed it for the translation.
struct PreRead<'b> {
    body: &'b [u8],
    parsed: &'b ParsedRequest<'b>,
}

/// The facts of a body read in the body phase, as the header phase takes them.
fn body_facts(model: Option<String>, stream: bool, include_usage: bool) -> BodyFacts {
    BodyFacts {
        model,
        stream: Some(stream),
        include_usage: Some(include_usage),
        invalid_json: false,
        model_missing: false,
    }
}

#[cfg(test)]
mod tests {
    use super::prefixed_hex;

    #[test]
    fn prefixed_hex_writes_what_format_writes() {
        let mut n = 0x9e37_79b9_7f4a_7c15u64;
        for fixed in [0, 1, 0xf, 0x10, 0xdead_beef, u64::MAX] {
            assert_eq!(
                prefixed_hex("chatcmpl-", fixed),
                format!("chatcmpl-{fixed:016x}")
            );
        }
        for _ in 0..1000 {
            n ^= n << 13;
            n ^= n >> 7;
            n ^= n << 17;
            assert_eq!(prefixed_hex("resp_", n), format!("resp_{n:016x}"));
        }
    }
}
