//! Filters that exist only in test builds (feature `test-filters`), to prove what the native
//! runtime can do in real Envoy (`tests/tests/native_module.rs`):
//!
//! - `switchyard-test`: holds the request headers, reads the whole body, sets the routing header
//!   (config `header`, default `x-selected-provider`) from a body field (config `field`, default
//!   `provider`), rewrites the body, clears the route cache and continues; counts
//!   `gen_ai_client_requests{gen_ai_provider_name,reason}`. With feature `panic-trigger` it
//!   panics in the hook named by request header `x-switchyard-test-panic`.
//! - `switchyard-test-async`: with request header `x-test-async: callout` it holds the request,
//!   calls cluster `provider-b` and continues with the callout's status in `x-callout-status`;
//!   with `x-test-async: scheduler` a thread of its own wakes the stream through the worker
//!   scheduler. Every request gets `x-config-ticks`: events a config-time thread posted to the
//!   main thread through the config scheduler.
//! - `switchyard-test-hold`: the floor of a filter shaped like the Switchyard filters on the
//!   native runtime, for the bench (row S0n): holds the request headers until the body is
//!   complete (Envoy buffers it), then lets everything go on, reading and changing nothing.
//! - `switchyard-test-floor`: the Envoy side of bench row S1n without its logic (row S1f): the
//!   host calls ai-proxy makes per request for an OpenAI-compatible provider with model
//!   mapping (counted with callgrind), each with a fixed argument and nothing computed. What
//!   S1n costs beyond S1f is the module's own work; what S1f costs beyond S0 no change inside
//!   the module can remove.
//! - `switchyard-test-echo`: copies what it sees in its request-header phase (routing header,
//!   route and cluster names) into `x-seen-*` request headers, so the upstream records them.

use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switchyard_envoy_module::{
    BodyStatus, CalloutOutcome, CalloutResponse, ConfigContext, EnvoyFilter, FilterFactory,
    HeadersStatus, HttpFilter, Side,
};

pub const REQUESTS: &str = "gen_ai_client_requests";

pub fn new_config(
    ctx: &mut ConfigContext,
    filter_name: &str,
    config: &[u8],
) -> Result<Option<Box<dyn FilterFactory>>, String> {
    // The bytes are the StringValue's JSON text: parsing them proves it (a serialized Any
    // would not parse).
    let parse = || -> Result<Value, String> {
        serde_json::from_slice(config).map_err(|e| {
            format!(
                "config is not JSON ({e}): {:?}",
                String::from_utf8_lossy(config)
            )
        })
    };
    match filter_name {
        "switchyard-test" => {
            let v = parse()?;
            let field = v["field"].as_str().unwrap_or("provider").to_string();
            let header = v["header"]
                .as_str()
                .unwrap_or("x-selected-provider")
                .to_string();
            ctx.define_counter(REQUESTS, &["gen_ai_provider_name", "reason"])?;
            Ok(Some(Box::new(RouterFactory { field, header })))
        }
        "switchyard-test-async" => {
            parse()?;
            let ticks = Arc::new(AtomicU64::new(0));
            // Background work off the workers: a thread of ours posts to the main thread.
            if !ctx.is_validation_mode() {
                if let Some(scheduler) = ctx.scheduler() {
                    std::thread::spawn(move || {
                        for event in 1..=3 {
                            std::thread::sleep(Duration::from_millis(10));
                            scheduler.commit(event);
                        }
                    });
                }
            }
            Ok(Some(Box::new(AsyncFactory { ticks })))
        }
        "switchyard-test-echo" => {
            parse()?;
            Ok(Some(Box::new(Fresh::<EchoFilter>::new())))
        }
        "switchyard-test-hold" => {
            parse()?;
            Ok(Some(Box::new(Fresh::<HoldFilter>::new())))
        }
        "switchyard-test-floor" => {
            parse()?;
            ctx.define_histogram(FLOOR_HISTOGRAM, &FLOOR_LABELS)?;
            Ok(Some(Box::new(Fresh::<FloorFilter>::new())))
        }
        _ => Ok(None),
    }
}

/// The request-header phase of a filter that decides from the body: hold the headers until
/// the body is complete (nothing to wait for when there is no body).
fn hold_for_body(end_of_stream: bool) -> HeadersStatus {
    if end_of_stream {
        HeadersStatus::Continue
    } else {
        HeadersStatus::StopIteration
    }
}

/// The factory of a filter that keeps no config and no state across streams: a fresh
/// `F::default()` per stream.
struct Fresh<F>(std::marker::PhantomData<fn() -> F>);

impl<F> Fresh<F> {
    fn new() -> Self {
        Fresh(std::marker::PhantomData)
    }
}

impl<F: HttpFilter + Default + 'static> FilterFactory for Fresh<F> {
    fn new_filter(&self, _f: &mut EnvoyFilter) -> Box<dyn HttpFilter> {
        Box::new(F::default())
    }
}

struct RouterFactory {
    field: String,
    header: String,
}

impl FilterFactory for RouterFactory {
    fn new_filter(&self, _f: &mut EnvoyFilter) -> Box<dyn HttpFilter> {
        Box::new(RouterFilter {
            field: self.field.clone(),
            header: self.header.clone(),
            panic_at: None,
        })
    }
}

struct RouterFilter {
    field: String,
    header: String,
    /// Hook name from request header `x-switchyard-test-panic`.
    panic_at: Option<String>,
}

impl RouterFilter {
    #[cfg(feature = "panic-trigger")]
    #[allow(clippy::panic)]
    fn maybe_panic(&self, hook: &str) {
        if self.panic_at.as_deref() == Some(hook) {
            panic!("test panic requested in {hook}");
        }
    }
    #[cfg(not(feature = "panic-trigger"))]
    fn maybe_panic(&self, _hook: &str) {}
}

impl HttpFilter for RouterFilter {
    fn on_request_headers(&mut self, f: &mut EnvoyFilter, end_of_stream: bool) -> HeadersStatus {
        self.panic_at = f
            .request_header_str("x-switchyard-test-panic")
            .map(str::to_string);
        self.maybe_panic("request_headers");
        // The route is decided from the body.
        hold_for_body(end_of_stream)
    }

    fn on_request_body(&mut self, f: &mut EnvoyFilter, end_of_stream: bool) -> BodyStatus {
        if !end_of_stream {
            return BodyStatus::StopIterationAndBuffer;
        }
        self.maybe_panic("request_body");
        let body = f.body(Side::Request);
        let Ok(mut json) = serde_json::from_slice::<Value>(&body) else {
            return BodyStatus::Continue;
        };
        let Some(provider) = json[self.field.as_str()].as_str().map(str::to_string) else {
            return BodyStatus::Continue;
        };
        f.set_request_header(&self.header, provider.as_bytes());
        f.clear_route_cache();
        f.set_metadata("switchyard", "provider", &provider);
        f.set_filter_state("switchyard.provider", provider.as_bytes());
        f.counter_add(
            REQUESTS,
            &[("reason", "body"), ("gen_ai_provider_name", &provider)],
            1,
        );
        // Rewrite the body (proves body replacement): the upstream sees `routed_by`.
        if let Some(o) = json.as_object_mut() {
            o.insert("routed_by".into(), Value::String("switchyard-test".into()));
        }
        let new_body = json.to_string();
        f.remove_request_header("content-length");
        f.replace_body(Side::Request, new_body.as_bytes());
        BodyStatus::Continue
    }

    fn on_response_headers(&mut self, f: &mut EnvoyFilter, _end_of_stream: bool) -> HeadersStatus {
        self.maybe_panic("response_headers");
        let route = f.route_name().unwrap_or("-").to_string();
        f.set_response_header("x-test-route-at-response", route.as_bytes());
        let code = f.response_code().map_or("-".to_string(), |c| c.to_string());
        let details = f.response_code_details().unwrap_or("-").to_string();
        let forwarded = f
            .request_header_values("x-forwarded-test")
            .len()
            .to_string();
        f.set_response_header("x-test-response-code", code.as_bytes());
        f.set_response_header("x-test-response-code-details", details.as_bytes());
        f.set_response_header("x-test-forwarded-count", forwarded.as_bytes());
        HeadersStatus::Continue
    }
}

#[derive(Default)]
struct EchoFilter;

impl HttpFilter for EchoFilter {
    fn on_request_headers(&mut self, f: &mut EnvoyFilter, _end_of_stream: bool) -> HeadersStatus {
        let seen = [
            (
                "x-seen-provider",
                f.request_header("x-selected-provider")
                    .map(<[u8]>::to_vec)
                    .unwrap_or_else(|| b"-".to_vec()),
            ),
            (
                "x-seen-route",
                f.route_name().unwrap_or("-").as_bytes().to_vec(),
            ),
            (
                "x-seen-cluster",
                f.cluster_name().unwrap_or("-").as_bytes().to_vec(),
            ),
        ];
        for (k, v) in seen {
            f.set_request_header(k, &v);
        }
        HeadersStatus::Continue
    }
}

struct AsyncFactory {
    ticks: Arc<AtomicU64>,
}

impl FilterFactory for AsyncFactory {
    fn new_filter(&self, _f: &mut EnvoyFilter) -> Box<dyn HttpFilter> {
        Box::new(AsyncFilter {
            ticks: self.ticks.load(Ordering::Relaxed),
        })
    }

    fn on_scheduled(&self, _ctx: &mut ConfigContext, event_id: u64) {
        self.ticks.fetch_max(event_id, Ordering::Relaxed);
    }
}

struct AsyncFilter {
    ticks: u64,
}

impl HttpFilter for AsyncFilter {
    fn on_request_headers(&mut self, f: &mut EnvoyFilter, _end_of_stream: bool) -> HeadersStatus {
        f.set_request_header("x-config-ticks", self.ticks.to_string().as_bytes());
        match f.request_header_str("x-test-async") {
            Some("callout") => {
                let body = br#"{"model":"m","messages":[{"role":"user","content":"callout"}]}"#;
                let headers: [(&str, &[u8]); 4] = [
                    (":method", b"POST"),
                    (":path", b"/v1/chat/completions"),
                    ("host", b"callout.local"),
                    ("content-type", b"application/json"),
                ];
                match f.http_callout("provider-b", &headers, body, 5000) {
                    Ok(_) => HeadersStatus::StopAllIterationAndBuffer,
                    Err(e) => {
                        f.set_request_header("x-callout-status", e.to_string().as_bytes());
                        HeadersStatus::Continue
                    }
                }
            }
            Some("scheduler") => match f.scheduler() {
                Some(scheduler) => {
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(20));
                        scheduler.commit(7);
                    });
                    HeadersStatus::StopAllIterationAndBuffer
                }
                None => HeadersStatus::Continue,
            },
            _ => HeadersStatus::Continue,
        }
    }

    fn on_callout_done(
        &mut self,
        f: &mut EnvoyFilter,
        _callout_id: u64,
        outcome: CalloutOutcome,
        response: &CalloutResponse,
    ) {
        let status = match (outcome, response.status()) {
            (CalloutOutcome::Success, Some(s)) => s.to_string(),
            (o, _) => format!("{o:?}"),
        };
        let json_ok = serde_json::from_slice::<Value>(&response.body()).is_ok();
        f.set_request_header("x-callout-status", status.as_bytes());
        f.set_request_header("x-callout-json", if json_ok { b"yes" } else { b"no" });
        f.continue_decoding();
    }

    fn on_scheduled(&mut self, f: &mut EnvoyFilter, event_id: u64) {
        f.set_request_header("x-scheduled", event_id.to_string().as_bytes());
        f.continue_decoding();
    }
}

/// Holds the request headers until the body is complete, and nothing else.
#[derive(Default)]
struct HoldFilter;

impl HttpFilter for HoldFilter {
    fn on_request_headers(&mut self, _f: &mut EnvoyFilter, end_of_stream: bool) -> HeadersStatus {
        hold_for_body(end_of_stream)
    }

    fn on_request_body(&mut self, _f: &mut EnvoyFilter, end_of_stream: bool) -> BodyStatus {
        if end_of_stream {
            BodyStatus::Continue
        } else {
            BodyStatus::StopIterationAndBuffer
        }
    }
}

/// The histogram `switchyard-test-floor` records once per request, with as many labels as
/// ai-proxy's operation-duration histogram.
const FLOOR_HISTOGRAM: &str = "switchyard_test_floor_duration";
const FLOOR_LABELS: [&str; 3] = [
    "gen_ai_provider_name",
    "gen_ai_response_model",
    "gen_ai_operation_name",
];

/// The host calls of ai-proxy for bench row S1n (OpenAI client, OpenAI-compatible provider,
/// model mapping), in the same hooks, with fixed arguments: hold the headers; at the body's end
/// read the headers and the body, set `:path`, `:authority`, the credential and the upstream
/// timeout, drop `content-length`, replace the body (by itself); read the answer's status and
/// body as it passes; publish a log line; record one labelled histogram sample.
#[derive(Default)]
struct FloorFilter;

impl HttpFilter for FloorFilter {
    fn on_request_headers(&mut self, f: &mut EnvoyFilter, end_of_stream: bool) -> HeadersStatus {
        let _ = f.request_header("content-type");
        hold_for_body(end_of_stream)
    }

    fn on_request_body(&mut self, f: &mut EnvoyFilter, end_of_stream: bool) -> BodyStatus {
        if !end_of_stream {
            return BodyStatus::StopIterationAndBuffer;
        }
        let _ = f.body_len(Side::Request);
        let body = f.body(Side::Request);
        // ai-proxy reads the header list to skip removing headers that are absent.
        let _ = f.request_headers();
        f.set_request_header(":path", b"/chat/completions");
        f.set_request_header(":authority", b"api.deepseek.com");
        f.set_request_header("authorization", b"Bearer sk-bench");
        f.set_request_header("x-envoy-upstream-rq-timeout-ms", b"120000");
        f.remove_request_header("content-length");
        f.replace_body(Side::Request, &body);
        BodyStatus::Continue
    }

    fn on_response_headers(&mut self, f: &mut EnvoyFilter, _end_of_stream: bool) -> HeadersStatus {
        let _ = f.response_header(":status");
        HeadersStatus::Continue
    }

    fn on_response_body(&mut self, f: &mut EnvoyFilter, end_of_stream: bool) -> BodyStatus {
        if f.body_len(Side::Response) > 0 {
            let _ = f.body(Side::Response);
        }
        if end_of_stream {
            f.set_filter_state(
                "switchyard.log",
                b"provider=alpha model=gpt-4o upstream_model=deepseek-chat input_tokens=9 \
                  output_tokens=12 ttft_ms=",
            );
        }
        BodyStatus::Continue
    }

    fn on_stream_complete(&mut self, f: &mut EnvoyFilter) {
        f.histogram_record(
            FLOOR_HISTOGRAM,
            &[
                ("gen_ai_provider_name", "alpha"),
                ("gen_ai_response_model", "deepseek-chat"),
                ("gen_ai_operation_name", "chat"),
            ],
            1,
        );
    }
}
