//! A mock LLM vendor server for tests, demos and benchmarks.
//!
//! It speaks the OpenAI (chat completions, legacy completions, embeddings, models, responses),
//! Anthropic Messages and Gemini (`generateContent`, `streamGenerateContent`, embeddings) APIs,
//! AWS Bedrock's Converse API (`/model/{id}/converse`, `/converse-stream` in event-stream
//! frames) and Vertex AI's paths for Gemini and Claude (`rawPredict`, `streamRawPredict`) over
//! plain HTTP/1.1 with keep-alive, streaming included. Answers are derived from the request, so they
//! are deterministic: `"Mock answer to: <last user text, at most 40 chars>"`, with the request's
//! `model` echoed and usage numbers that agree between plain and streamed responses.
//!
//! Behaviour is scripted per request ([`Script`]): vendor-shaped errors, extra headers, latency
//! before the headers and between events, byte-level splitting of the stream, abrupt
//! connection drops, tool calls, raw bodies, faults that only hit one API token. Every request
//! is recorded ([`RecordedRequest`]), and `/metrics` serves gauges for load-balancer tests.
//!
//! The same controls are reachable over HTTP on the same port, for users outside Rust:
//!
//! | endpoint | effect |
//! | --- | --- |
//! | `POST /__mock/script` | queue a JSON [`Script`] for the next request |
//! | `POST /__mock/default` | set the JSON [`Script`] used when the queue is empty |
//! | `POST /__mock/metrics` | set gauges from a JSON object `{"name": number}` |
//! | `GET /__mock/requests` | recorded requests as JSON (body as lossy UTF-8) |
//! | `DELETE /__mock/requests` | forget the recorded requests |
//! | `POST /__mock/reset` | clear requests, queue, default script, metrics and cloud credentials |
//! | `POST /__mock/aws` | `{"access_key_id", "secret_access_key"}`: check SigV4 on Bedrock paths |
//! | `POST /__mock/vertex` | `{"public_key_pem", "token_lifetime_secs"}`: issue tokens at `POST /token`, require them on `/v1/projects/...` |
//! | `POST /__mock/vertex/expire` | expire every Vertex token issued so far |
//! | `GET /health` | `200 ok` |
//! | `GET /metrics` | Prometheus text of the gauges |
//!
//! ```no_run
//! use mock_provider::{MockServer, Script};
//! let server = MockServer::start("127.0.0.1:0".parse().expect("addr")).expect("start");
//! server.push_script(Script::error(429, "slow down"));
//! // ... send requests to server.addr() ...
//! assert!(server.requests().is_empty());
//! ```
//!
//! ## Speed
//!
//! One runtime thread, hyper HTTP/1.1 with keep-alive, no logging per request, typed
//! serialization on the OpenAI chat path. A quick manual run (release build, `--record-limit
//! 0`, `wrk -t1 -c32` on the same 2-core VM while other builds were running; command in
//! `src/server.rs`) gave:
//!
//! | request | requests/s (wall) | requests per server CPU-second |
//! | --- | --- | --- |
//! | `GET /health` | 51k | 112k |
//! | chat completion, plain | 38k-44k | 68k-72k (same with recording on) |
//! | chat completion, stream (11 events, `include_usage`) | 20k | 50k |
//! | Anthropic message, stream (13 events) | 19k | 44k |
//!
//! ## Cloud credentials
//!
//! With AWS credentials set ([`MockServer::add_aws_credentials`]), Bedrock paths require a
//! SigV4 `Authorization` that the mock recomputes with the secret (or a Bedrock API key set
//! with [`MockServer::add_bedrock_api_key`] as `Authorization: Bearer`) (mismatch: 403
//! `InvalidSignatureException`, unknown key: 403 `UnrecognizedClientException`, no header:
//! 403 `MissingAuthenticationTokenException`, clock skew over 5 minutes: 403). With a Vertex
//! public key set ([`MockServer::set_vertex_auth`]), `POST /token` verifies JWT-bearer
//! assertions (RS256 with that key, `scope` cloud-platform, `aud` ending in `/token`, at most
//! one hour between `iat` and `exp`) and hands out expiring tokens, which every
//! `/v1/projects/...` path then requires (401 `UNAUTHENTICATED` otherwise). Without them,
//! nothing is checked.
//!
//! Recording keeps at most [`DEFAULT_RECORD_LIMIT`] requests (oldest dropped first); see
//! [`MockServer::set_record_limit`].

mod admin;
mod answer;
mod anthropic;
mod bedrock;
mod body;
mod eventstream;
mod gemini;
mod metrics;
mod openai;
mod record;
mod reply;
mod router;
mod script;
mod server;
mod sigv4;
mod sse;
mod state;
mod vertex;

pub use record::RecordedRequest;
pub use script::{Script, ScriptToolCall};
pub use server::{MockServer, DEFAULT_RECORD_LIMIT};
