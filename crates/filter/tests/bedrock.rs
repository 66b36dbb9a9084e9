//! ai-proxy against AWS Bedrock (`type: bedrock`) over the mock host: the Converse path and
//! host, API-key and SigV4 auth (signed in the body phase on hosts that hold the headers,
//! refused on hosts that cannot), plain and streamed answers (event-stream frames split at
//! every byte) converted for chat, Messages and Responses clients, usage metrics and errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{json, Value};
use switchyard_filter::mock::MockHost;
use switchyard_filter::proxy::ProxyRoot;
use switchyard_filter::Action;
use switchyard_protocol::bedrock::eventstream::{HeaderValue, Message};
use switchyard_protocol::bedrock::sigv4::{self, Credentials, Request, Scope};

const MODEL: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const ENCODED: &str = "anthropic.claude-3-5-sonnet-20240620-v1%3A0";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn api_key_root() -> ProxyRoot {
    proxy_root(
        json!({"provider": {"type": "bedrock", "awsRegion": "us-east-1",
        "apiTokens": ["bedrock-key-1"], "modelMapping": {"gpt-4o": MODEL},
        "bedrockAdditionalFields": {"top_k": 7}}}),
    )
}

fn sigv4_root(session: Option<&str>) -> ProxyRoot {
    let mut p = json!({"type": "bedrock", "awsRegion": "eu-west-1",
        "awsAccessKey": "AKIDEXAMPLE", "awsSecretKey": SECRET});
    if let Some(t) = session {
        p["awsSessionToken"] = json!(t);
    }
    proxy_root(json!({ "provider": p }))
}

/// A request as the native module sees it: headers held until the body is complete, no
/// metadata filter.
fn native(path: &str, body: &Value) -> MockHost {
    let mut host = MockHost::post(path, body.to_string().as_bytes());
    host.holds_headers_for_body = true;
    host
}

fn converse_answer() -> Vec<u8> {
    json!({
        "output": {"message": {"role": "assistant", "content": [{"text": "Hello from Bedrock"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 11, "outputTokens": 4, "totalTokens": 15},
        "metrics": {"latencyMs": 5}
    })
    .to_string()
    .into_bytes()
}

fn frame(event: &str, payload: Value) -> Vec<u8> {
    Message {
        headers: vec![
            (":event-type".into(), HeaderValue::String(event.into())),
            (
                ":content-type".into(),
                HeaderValue::String("application/json".into()),
            ),
            (":message-type".into(), HeaderValue::String("event".into())),
        ],
        payload: payload.to_string().into_bytes(),
    }
    .encode()
    .unwrap()
}

/// A ConverseStream answer: text in two deltas, then a tool call with streamed input.
fn converse_stream() -> Vec<u8> {
    [
        frame("messageStart", json!({"role": "assistant"})),
        frame(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
        ),
        frame(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "lo é"}}),
        ),
        frame("contentBlockStop", json!({"contentBlockIndex": 0})),
        frame(
            "contentBlockStart",
            json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu_1", "name": "get_weather"}}}),
        ),
        frame(
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\":"}}}),
        ),
        frame(
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Paris\"}"}}}),
        ),
        frame("contentBlockStop", json!({"contentBlockIndex": 1})),
        frame("messageStop", json!({"stopReason": "tool_use"})),
        frame(
            "metadata",
            json!({"usage": {"inputTokens": 20, "outputTokens": 9, "totalTokens": 29}, "metrics": {"latencyMs": 3}}),
        ),
    ]
    .concat()
}

const EVENT_STREAM: (&str, &str) = ("content-type", "application/vnd.amazon.eventstream");

#[test]
fn api_key_chat_plain_goes_to_converse_and_comes_back_as_chat() {
    let root = api_key_root();
    let body = json!({"model": "gpt-4o", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"}], "max_tokens": 50});
    // The Wasm path: the metadata filter told the header phase the model.
    let mut host = chat(body);
    let out = exchange(&root, &mut host, 200, &[], &converse_answer());
    assert_eq!(
        host.request_header_value(":path"),
        Some(format!("/model/{ENCODED}/converse").as_str())
    );
    assert_eq!(
        host.request_header_value(":authority"),
        Some("bedrock-runtime.us-east-1.amazonaws.com")
    );
    assert_eq!(
        host.request_header_value("authorization"),
        Some("Bearer bedrock-key-1")
    );
    assert_eq!(host.request_header_value("content-length"), None);
    let up = host.request_json();
    assert_eq!(up["system"], json!([{"text": "be brief"}]), "{up}");
    assert_eq!(up["messages"][0]["content"], json!([{"text": "hi"}]));
    assert_eq!(up["inferenceConfig"]["maxTokens"], 50);
    assert_eq!(up["additionalModelRequestFields"], json!({"top_k": 7}));
    assert!(up.get("model").is_none());
    let v = json(&out);
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], MODEL);
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from Bedrock");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["total_tokens"], 15);
    let tokens = |kind: &str| {
        host.counter(
            "gen_ai_client_token_usage",
            &[
                ("gen_ai_provider_name", "bedrock"),
                ("gen_ai_request_model", "gpt-4o"),
                ("gen_ai_response_model", MODEL),
                ("gen_ai_token_type", kind),
            ],
        )
    };
    assert_eq!((tokens("input"), tokens("output")), (11, 4));
}

#[test]
fn api_key_without_model_metadata_is_a_clear_400_on_wasm() {
    let root = api_key_root();
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let mut host = MockHost::post("/v1/chat/completions", body.to_string().as_bytes());
    let mut req = root.new_request();
    send_request(&mut req, &mut host);
    let reply = host.local_reply.as_ref().expect("refused");
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("json_to_metadata"));
}

/// The request phase on the native module: the headers are held (`Pause`), the body decides.
fn send_native(req: &mut switchyard_filter::proxy::ProxyRequest, host: &mut MockHost) -> Action {
    assert_eq!(req.on_request_headers(host, false), Action::Pause);
    let size = host.request_body.len();
    req.on_request_body(host, size, true)
}

/// Stream `bytes` to the filter cut at `cut` (and at the end).
fn stream_split(root: &ProxyRoot, path: &str, body: &Value, bytes: &[u8], cut: usize) -> Vec<u8> {
    let mut host = native(path, body);
    let mut req = root.new_request();
    assert_eq!(send_native(&mut req, &mut host), Action::Continue);
    assert!(host
        .request_header_value(":path")
        .unwrap()
        .ends_with("/converse-stream"));
    let (a, rest) = bytes.split_at(cut);
    let pieces: Vec<&[u8]> = [a, rest].into_iter().filter(|p| !p.is_empty()).collect();
    let out = receive(&mut req, &mut host, 200, &[EVENT_STREAM], &pieces);
    assert_eq!(
        host.response_header_value("content-type"),
        Some("text/event-stream")
    );
    assert_eq!(host.response_header_value("content-length"), None);
    out
}

#[test]
fn chat_stream_converts_at_every_byte_split() {
    let root = api_key_root();
    let body = json!({"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "weather?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]});
    let bytes = converse_stream();
    let whole = stream_split(&root, "/v1/chat/completions", &body, &bytes, 0);
    let chunks = sse_data(&whole);
    assert_eq!(chunks.last(), Some(&Value::String("[DONE]".into())));
    let text: String = chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect();
    assert_eq!(text, "Hello é");
    let args: String = chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/tool_calls/0/function/arguments")
                .and_then(Value::as_str)
        })
        .collect();
    assert_eq!(args, r#"{"city":"Paris"}"#);
    let first_call = chunks
        .iter()
        .find_map(|c| c.pointer("/choices/0/delta/tool_calls/0"))
        .unwrap();
    assert_eq!(first_call["index"], 0);
    assert_eq!(first_call["id"], "tu_1");
    let finish: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c.pointer("/choices/0/finish_reason"))
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, [&json!("tool_calls")]);
    let usage: Vec<&Value> = chunks
        .iter()
        .filter(|c| c.get("usage").is_some_and(|u| !u.is_null()))
        .collect();
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0]["usage"]["prompt_tokens"], 20);
    for cut in 1..bytes.len() {
        let out = stream_split(&root, "/v1/chat/completions", &body, &bytes, cut);
        // Ids and timestamps come from the same seed per root; compare the payloads'
        // content, not ids.
        let got: Vec<Value> = sse_data(&out).into_iter().map(strip_ids).collect();
        let want: Vec<Value> = chunks.iter().cloned().map(strip_ids).collect();
        assert_eq!(got, want, "split at {cut}");
    }
}

fn strip_ids(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("id");
        o.remove("created");
    }
    v
}

#[test]
fn messages_stream_converts_at_every_byte_split() {
    let root = api_key_root();
    let body = json!({"model": "gpt-4o", "stream": true, "max_tokens": 100,
        "messages": [{"role": "user", "content": "weather?"}]});
    let bytes = converse_stream();
    let whole = stream_split(&root, "/v1/messages", &body, &bytes, 0);
    let text = String::from_utf8_lossy(&whole).into_owned();
    assert!(text.starts_with("event: message_start"), "{text}");
    assert!(text.contains("event: content_block_delta"));
    assert!(text.contains(r#""partial_json""#));
    assert!(text.contains(r#""stop_reason":"tool_use""#), "{text}");
    assert!(
        text.trim_end()
            .ends_with(r#"data: {"type":"message_stop"}"#),
        "{text}"
    );
    let strip = |s: &str| -> String {
        // message ids differ per request; drop the message_start line's id.
        s.lines()
            .map(|l| {
                if l.contains("\"message_start\"") {
                    "message_start".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    for cut in 1..bytes.len() {
        let out = stream_split(&root, "/v1/messages", &body, &bytes, cut);
        assert_eq!(
            strip(&String::from_utf8_lossy(&out)),
            strip(&text),
            "split at {cut}"
        );
    }
}

#[test]
fn responses_client_through_chat_to_converse() {
    let root = api_key_root();
    let body = json!({"model": "gpt-4o", "input": "hi there", "instructions": "be brief"});
    let mut host = native("/v1/responses", &body);
    let mut req = root.new_request();
    send_native(&mut req, &mut host);
    assert!(host.local_reply.is_none(), "{:?}", host.local_reply);
    assert_eq!(
        host.request_header_value(":path"),
        Some(format!("/model/{ENCODED}/converse").as_str())
    );
    let up = host.request_json();
    assert_eq!(up["system"], json!([{"text": "be brief"}]), "{up}");
    let out = receive(&mut req, &mut host, 200, &[], &[&converse_answer()]);
    let v = json(&out);
    assert_eq!(v["object"], "response", "{v}");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["output"][0]["content"][0]["text"], "Hello from Bedrock");
    assert_eq!(v["usage"]["input_tokens"], 11);
}

/// Recompute the signature of the request as the host will send it.
fn expected_signature(host: &MockHost, session: Option<&str>) -> sigv4::Signed {
    let path = host.request_header_value(":path").unwrap();
    sigv4::sign(
        &Request {
            method: "POST",
            host: host.request_header_value(":authority").unwrap(),
            path,
            query: "",
            headers: &[("content-type", "application/json")],
            body: &host.request_body,
        },
        &Credentials {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: SECRET,
            session_token: session,
        },
        &Scope::bedrock("eu-west-1", host.now_ms.get() / 1000),
    )
}

#[test]
fn sigv4_signs_the_final_body_in_the_body_phase_on_native() {
    for session in [None, Some("FwoGZXIvYXdzEJr//session")] {
        let root = sigv4_root(session);
        let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]});
        let mut host = native("/v1/chat/completions", &body);
        host.request_headers
            .push(("x-amz-security-token".into(), "client-sent".into()));
        let mut req = root.new_request();
        assert_eq!(req.on_request_headers(&mut host, false), Action::Pause);
        // Nothing decided yet: headers held, no signature.
        assert_eq!(
            host.request_header_value(":path"),
            Some("/v1/chat/completions")
        );
        let size = host.request_body.len();
        assert_eq!(req.on_request_body(&mut host, size, true), Action::Continue);
        assert_eq!(
            host.request_header_value(":authority"),
            Some("bedrock-runtime.eu-west-1.amazonaws.com")
        );
        let up = host.request_json();
        assert!(up.get("messages").is_some() && up.get("model").is_none());
        let want = expected_signature(&host, session);
        assert_eq!(
            host.request_header_value("authorization"),
            Some(want.authorization.as_str())
        );
        let auth = host.request_header_value("authorization").unwrap();
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/eu-west-1/bedrock/aws4_request"
            ),
            "{auth}"
        );
        assert_eq!(
            host.request_header_value("x-amz-date"),
            Some("20231114T221320Z")
        );
        assert_eq!(
            host.request_header_value("x-amz-content-sha256"),
            want.x_amz_content_sha256.as_deref()
        );
        assert_eq!(host.request_header_value("x-amz-security-token"), session);
        if session.is_some() {
            assert!(auth.contains("x-amz-security-token"));
        }
        let out = receive(&mut req, &mut host, 200, &[], &[&converse_answer()]);
        assert_eq!(
            json(&out)["choices"][0]["message"]["content"],
            "Hello from Bedrock"
        );
    }
}

#[test]
fn sigv4_is_refused_with_a_clear_error_where_headers_cannot_be_held() {
    let root = sigv4_root(None);
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]});
    let mut host = chat(body);
    assert!(!host.holds_headers_for_body);
    let mut req = root.new_request();
    send_request(&mut req, &mut host);
    let reply = host.local_reply.as_ref().expect("refused");
    assert_eq!(reply.status, 500);
    let v = reply.json();
    assert_eq!(v["error"]["code"], "sigv4_unsupported_runtime");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("apiTokens") && msg.contains("native"), "{msg}");
    assert!(!msg.contains(SECRET));
    assert_eq!(
        host.request_header_value("authorization"),
        Some("Bearer client-secret")
    );
}

#[test]
fn vendor_errors_get_the_exception_status_and_the_client_shape() {
    let root = api_key_root();
    // Throttling: 429 with the exception as code.
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let mut host = chat(body.clone());
    let out = exchange(
        &root,
        &mut host,
        429,
        &[(
            "x-amzn-errortype",
            "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
        )],
        br#"{"message":"Too many requests, please wait before trying again."}"#,
    );
    let v = json(&out);
    assert_eq!(v["error"]["code"], "ThrottlingException", "{v}");
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Too many"));
    // A quota error AWS sends as 400 reaches the client as 429.
    let mut host = chat(body);
    exchange(
        &root,
        &mut host,
        400,
        &[("x-amzn-errortype", "ServiceQuotaExceededException")],
        br#"{"message":"quota"}"#,
    );
    assert_eq!(host.response_header_value(":status"), Some("429"));
    // Messages clients get Anthropic's error shape.
    let mbody = json!({"model": "gpt-4o", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let mut host = native("/v1/messages", &mbody);
    let mut req = root.new_request();
    send_native(&mut req, &mut host);
    let out = receive(
        &mut req,
        &mut host,
        400,
        &[("x-amzn-errortype", "ValidationException")],
        &[br#"{"message":"bad input"}"#],
    );
    let v = json(&out);
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["message"], "bad input");
}

#[test]
fn health_checks_and_retries_use_the_api_key_path() {
    let root = proxy_root(
        json!({"provider": {"id": "aws", "type": "bedrock", "awsRegion": "us-east-1",
        "apiTokens": ["bk-1", "bk-2"],
        "retryOnFailure": {"enabled": true, "retryOnStatus": ["429"]}}}),
    );
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]});
    let mut host = chat(body).with_cluster("provider-aws");
    let mut req = root.new_request();
    send_request(&mut req, &mut host);
    let first = host
        .request_header_value("authorization")
        .unwrap()
        .to_string();
    host.answer(429, &[("x-amzn-errortype", "ThrottlingException")], b"{}");
    assert_eq!(req.on_response_headers(&mut host, false), Action::Pause);
    let retry = host.callouts.last().expect("a retry callout").clone();
    assert_eq!(retry.cluster, "provider-aws");
    assert_eq!(
        retry.header(":path"),
        Some(format!("/model/{ENCODED}/converse").as_str())
    );
    let second = retry.header("authorization").unwrap();
    assert_ne!(second, first);
    assert!(second == "Bearer bk-1" || second == "Bearer bk-2");
    let sent: Value = serde_json::from_slice(retry.body.as_deref().unwrap()).unwrap();
    assert!(sent.get("messages").is_some() && sent.get("model").is_none());
    // The retry's model error (424 at AWS) reaches the client as a 502 with the exception.
    req.on_callout_done(
        &mut host,
        retry.id,
        switchyard_filter::host::CalloutResponse {
            status: Some(424),
            headers: vec![
                ("x-amzn-errortype".into(), "ModelErrorException".into()),
                ("content-type".into(), "application/json".into()),
            ],
            body: br#"{"message":"model failed"}"#.to_vec(),
        },
    );
    let reply = host.local_reply.as_ref().expect("answered with the retry");
    assert_eq!(reply.status, 502);
    assert_eq!(reply.json()["error"]["code"], "ModelErrorException");
    assert_eq!(reply.json()["error"]["message"], "model failed");
}

#[test]
fn sigv4_with_protocol_original_signs_the_body_as_sent() {
    let root = proxy_root(
        json!({"provider": {"type": "bedrock", "awsRegion": "eu-west-1",
        "protocol": "original", "awsAccessKey": "AKIDEXAMPLE", "awsSecretKey": SECRET}}),
    );
    let body = json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]});
    let path = format!("/model/{ENCODED}/converse");
    let mut host = native(&path, &body);
    let mut req = root.new_request();
    assert_eq!(send_native(&mut req, &mut host), Action::Continue);
    assert_eq!(host.request_header_value(":path"), Some(path.as_str()));
    assert_eq!(
        host.request_header_value(":authority"),
        Some("bedrock-runtime.eu-west-1.amazonaws.com")
    );
    assert_eq!(host.request_json(), body, "body untouched");
    let want = expected_signature(&host, None);
    assert_eq!(
        host.request_header_value("authorization"),
        Some(want.authorization.as_str())
    );
}
