//! Bedrock Converse: plain and event-stream answers, SigV4 checking. Requests are signed with
//! the gateway's signer and streams decoded with the gateway's decoder, so these tests also
//! check those against the mock's independent implementations.

use std::time::{SystemTime, UNIX_EPOCH};

use mock_provider::{Script, ScriptToolCall};
use serde_json::{json, Value};
use switchyard_protocol::bedrock::eventstream::{EventStreamDecoder, Message};
use switchyard_protocol::bedrock::sigv4::{self, Credentials, Request, Scope};

use crate::client::{Conn, Reply, ReplyExt};
use crate::server;

const MODEL_PATH: &str = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse";
const STREAM_PATH: &str = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream";
const KEY_ID: &str = "AKIDMOCKEXAMPLE";
const SECRET: &str = "mock/secret+key";

fn request() -> Value {
    json!({
        "system": [{"text": "Be kind"}],
        "messages": [{"role": "user", "content": [{"text": "Why is the sky blue?"}]}],
        "inferenceConfig": {"maxTokens": 100},
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// POST `body` to `path`, signed with `secret` at `time` unless `secret` is None.
fn send(
    addr: std::net::SocketAddr,
    path: &str,
    body: &[u8],
    secret: Option<&str>,
    time: u64,
) -> Reply {
    let mut headers: Vec<(String, String)> =
        vec![("content-type".into(), "application/json".into())];
    if let Some(secret) = secret {
        let req = Request {
            method: "POST",
            host: "mock",
            path,
            query: "",
            headers: &[("content-type", "application/json")],
            body,
        };
        let creds = Credentials {
            access_key_id: KEY_ID,
            secret_access_key: secret,
            session_token: Some("session-token"),
        };
        let signed = sigv4::sign(&req, &creds, &Scope::bedrock("us-east-1", time));
        headers.extend(
            signed
                .headers()
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned())),
        );
    }
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    Conn::connect(addr).send("POST", path, &headers, body)
}

fn frames(body: &[u8]) -> Vec<Message> {
    let mut d = EventStreamDecoder::new();
    let (msgs, err) = d.push(body);
    assert_eq!(err, None);
    d.finish().unwrap();
    msgs
}

fn event(m: &Message) -> (String, Value) {
    let kind = m
        .header_str(":event-type")
        .or(m.header_str(":exception-type"))
        .unwrap()
        .to_owned();
    (kind, serde_json::from_slice(&m.payload).unwrap())
}

#[test]
fn converse_plain() {
    let s = server();
    let r = send(
        s.addr(),
        MODEL_PATH,
        request().to_string().as_bytes(),
        None,
        now(),
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(
        v["output"]["message"],
        json!({"role": "assistant", "content": [{"text": "Mock answer to: Why is the sky blue?"}]})
    );
    assert_eq!(v["stopReason"], "end_turn");
    assert_eq!(
        v["usage"],
        json!({"inputTokens": 7, "outputTokens": 8, "totalTokens": 15})
    );
}

#[test]
fn converse_stream_frames_with_crcs() {
    let s = server();
    let r = send(
        s.addr(),
        STREAM_PATH,
        request().to_string().as_bytes(),
        None,
        now(),
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.amazon.eventstream")
    );
    let events: Vec<(String, Value)> = frames(&r.body).iter().map(event).collect();
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"messageStart"));
    assert_eq!(
        &kinds[kinds.len() - 3..],
        ["contentBlockStop", "messageStop", "metadata"]
    );
    let text: String = events
        .iter()
        .filter_map(|(_, v)| v.pointer("/delta/text").and_then(Value::as_str))
        .collect();
    assert_eq!(text, "Mock answer to: Why is the sky blue?");
    assert_eq!(events.last().unwrap().1["usage"]["totalTokens"], 15);
}

#[test]
fn stream_tool_calls_and_exceptions() {
    let s = server();
    s.push_script(Script {
        tool_calls: vec![ScriptToolCall::new("get_weather", r#"{"city":"Paris"}"#)],
        ..Script::default()
    });
    let r = send(
        s.addr(),
        STREAM_PATH,
        request().to_string().as_bytes(),
        None,
        now(),
    );
    let events: Vec<(String, Value)> = frames(&r.body).iter().map(event).collect();
    let start = events
        .iter()
        .find(|(k, _)| k == "contentBlockStart")
        .unwrap();
    assert_eq!(start.1["start"]["toolUse"]["name"], "get_weather");
    let input: String = events
        .iter()
        .filter_map(|(_, v)| v.pointer("/delta/toolUse/input").and_then(Value::as_str))
        .collect();
    assert_eq!(input, r#"{"city":"Paris"}"#);
    assert_eq!(
        events.iter().find(|(k, _)| k == "messageStop").unwrap().1["stopReason"],
        "tool_use"
    );

    s.push_script(Script {
        stream_exception: Some("throttlingException".into()),
        error_message: Some("Too many tokens".into()),
        ..Script::default()
    });
    let r = send(
        s.addr(),
        STREAM_PATH,
        request().to_string().as_bytes(),
        None,
        now(),
    );
    let msgs = frames(&r.body);
    assert_eq!(msgs.len(), 3);
    let last = msgs.last().unwrap();
    assert_eq!(last.header_str(":message-type"), Some("exception"));
    assert_eq!(
        last.header_str(":exception-type"),
        Some("throttlingException")
    );
}

#[test]
fn validation_like_bedrock() {
    let s = server();
    for (body, needle) in [
        (
            json!({"messages": [{"role": "assistant", "content": [{"text": "x"}]}]}),
            "must start with a user message",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]}]}),
            "alternate",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"text": "  "}]}]}),
            "blank",
        ),
        (
            json!({"model": "x", "messages": []}),
            "extraneous key [model]",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"toolResult": {"toolUseId": "t", "content": [{"text": "x"}]}}]}]}),
            "toolConfig",
        ),
    ] {
        let r = send(
            s.addr(),
            MODEL_PATH,
            body.to_string().as_bytes(),
            None,
            now(),
        );
        assert_eq!(r.status, 400, "{body}");
        assert!(r
            .header("x-amzn-errortype")
            .unwrap()
            .starts_with("ValidationException:"));
        assert!(
            r.json()["message"].as_str().unwrap().contains(needle),
            "{}",
            r.text()
        );
    }
    s.push_script(Script::error(
        429,
        "Too many requests, please wait before trying again.",
    ));
    let r = send(
        s.addr(),
        MODEL_PATH,
        request().to_string().as_bytes(),
        None,
        now(),
    );
    assert_eq!(r.status, 429);
    assert!(r
        .header("x-amzn-errortype")
        .unwrap()
        .starts_with("ThrottlingException"));
    assert_eq!(
        r.json(),
        json!({"message": "Too many requests, please wait before trying again."})
    );
}

#[test]
fn sigv4_is_checked_when_credentials_are_set() {
    let s = server();
    s.add_aws_credentials(KEY_ID, SECRET);
    let body = request().to_string().into_bytes();
    let ok = send(s.addr(), MODEL_PATH, &body, Some(SECRET), now());
    assert_eq!(ok.status, 200, "{}", ok.text());
    let ok = send(s.addr(), STREAM_PATH, &body, Some(SECRET), now());
    assert_eq!(ok.status, 200, "{}", ok.text());

    let wrong = send(s.addr(), MODEL_PATH, &body, Some("not the secret"), now());
    assert_eq!(wrong.status, 403);
    assert!(wrong
        .header("x-amzn-errortype")
        .unwrap()
        .starts_with("InvalidSignatureException"));
    assert!(wrong.json()["message"]
        .as_str()
        .unwrap()
        .contains("signature we calculated does not match"));

    let missing = send(s.addr(), MODEL_PATH, &body, None, now());
    assert_eq!(missing.status, 403);
    assert!(missing
        .header("x-amzn-errortype")
        .unwrap()
        .starts_with("MissingAuthenticationTokenException"));

    let stale = send(s.addr(), MODEL_PATH, &body, Some(SECRET), now() - 3600);
    assert_eq!(stale.status, 403);

    // The body is part of the signature: sign one body, send another.
    let req = Request {
        method: "POST",
        host: "mock",
        path: MODEL_PATH,
        query: "",
        headers: &[],
        body: &body,
    };
    let creds = Credentials {
        access_key_id: KEY_ID,
        secret_access_key: SECRET,
        session_token: None,
    };
    let mut scope = Scope::bedrock("us-east-1", now());
    scope.content_sha256_header = false;
    let signed = sigv4::sign(&req, &creds, &scope);
    let tampered = body.clone().into_iter().chain(*b" ").collect::<Vec<u8>>();
    let r = Conn::connect(s.addr()).send(
        "POST",
        MODEL_PATH,
        &[
            ("authorization", &signed.authorization),
            ("x-amz-date", &signed.x_amz_date),
        ],
        &tampered,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = Conn::connect(s.addr()).send(
        "POST",
        MODEL_PATH,
        &[
            ("authorization", &signed.authorization),
            ("x-amz-date", &signed.x_amz_date),
        ],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The gateway's translation of an OpenAI request is accepted as is, signed, and its answer
/// (plain and streamed) converts back to the same text.
#[test]
fn gateway_translation_round_trip() {
    use switchyard_protocol::bedrock::{self, BedrockOptions, ConverseStreamToChat};
    use switchyard_protocol::StreamConverter;

    let s = server();
    s.add_aws_credentials(KEY_ID, SECRET);
    let chat = br#"{"model":"anthropic.claude-3-5-sonnet-20240620-v1:0","messages":[
        {"role":"system","content":"Be kind"},
        {"role":"user","content":"Weather?"},
        {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
        {"role":"tool","tool_call_id":"call_1","content":"sunny"},
        {"role":"user","content":"Why is the sky blue?"}],
        "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
        "max_tokens":100,"stream_options":{"include_usage":true}}"#;
    let body = bedrock::chat_request_to_converse(chat, &BedrockOptions::default()).unwrap();
    let model = "anthropic.claude-3-5-sonnet-20240620-v1:0";

    let path = bedrock::converse_path(model, false).unwrap();
    let r = send(s.addr(), &path, &body, Some(SECRET), now());
    assert_eq!(r.status, 200, "{}", r.text());
    let (out, usage) = bedrock::converse_response_to_chat(&r.body, model, "chatcmpl-1", 1).unwrap();
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        out["choices"][0]["message"]["content"],
        "Mock answer to: Why is the sky blue?"
    );
    assert_eq!(usage.completion_tokens, 8);

    let path = bedrock::converse_path(model, true).unwrap();
    let r = send(s.addr(), &path, &body, Some(SECRET), now());
    assert_eq!(r.status, 200, "{}", r.text());
    let mut c = ConverseStreamToChat::new(model, "chatcmpl-1", 1, true);
    let mut sse = Vec::new();
    for piece in r.body.chunks(7) {
        sse.extend(c.push(piece));
    }
    sse.extend(c.finish());
    let text = String::from_utf8(sse).unwrap();
    let chunks: Vec<Value> = crate::client::sse_events(&text)
        .into_iter()
        .filter(|(_, d)| d != "[DONE]")
        .map(|(_, d)| serde_json::from_str(&d).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect();
    assert_eq!(content, "Mock answer to: Why is the sky blue?");
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 8);
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[test]
fn bedrock_api_keys_as_bearer_tokens() {
    let s = server();
    s.add_bedrock_api_key("ABSKmockkey");
    let body = request().to_string().into_bytes();
    let call = |auth: &str| {
        Conn::connect(s.addr()).send("POST", MODEL_PATH, &[("authorization", auth)], &body)
    };
    assert_eq!(call("Bearer ABSKmockkey").status, 200);
    let r = call("Bearer wrong");
    assert_eq!(r.status, 403);
    assert!(r
        .header("x-amzn-errortype")
        .unwrap()
        .starts_with("UnrecognizedClientException"));
    assert_eq!(send(s.addr(), MODEL_PATH, &body, None, now()).status, 403);
}
