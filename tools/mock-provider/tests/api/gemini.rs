use mock_provider::{Script, ScriptToolCall};
use serde_json::{json, Value};

use crate::client::{post, post_raw, post_with, ReplyExt};
use crate::server;

const PLAIN: &str = "/v1beta/models/gemini-2.0-flash:generateContent";
const STREAM: &str = "/v1beta/models/gemini-2.0-flash:streamGenerateContent";

fn request() -> Value {
    json!({
        "systemInstruction": {"parts": [{"text": "Be kind"}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Why is the sky blue?"}]},
        ],
    })
}

#[test]
fn plain_generate() {
    let s = server();
    let v = post(s.addr(), PLAIN, &request()).json();
    assert_eq!(v["modelVersion"], "gemini-2.0-flash");
    let candidate = &v["candidates"][0];
    assert_eq!(candidate["content"]["role"], "model");
    assert_eq!(
        candidate["content"]["parts"],
        json!([{"text": "Mock answer to: Why is the sky blue?"}])
    );
    assert_eq!(candidate["finishReason"], "STOP");
    assert_eq!(
        v["usageMetadata"],
        json!({"promptTokenCount": 7, "candidatesTokenCount": 8, "totalTokenCount": 15})
    );
}

#[test]
fn stream_sse_with_crlf() {
    let s = server();
    let r = post(s.addr(), &format!("{STREAM}?alt=sse"), &request());
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    let text = r.text();
    assert!(text.starts_with("data: {"));
    assert!(text.ends_with("}\r\n\r\n"));
    let chunks = r.data();
    assert_eq!(chunks.len(), 8);
    let joined: String = chunks
        .iter()
        .map(|c| {
            c["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(joined, "Mock answer to: Why is the sky blue?");
    for c in &chunks[..7] {
        assert!(c["candidates"][0].get("finishReason").is_none());
        assert!(c["usageMetadata"].get("candidatesTokenCount").is_none());
    }
    let last = chunks.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    let plain = post(s.addr(), PLAIN, &request()).json();
    assert_eq!(last["usageMetadata"], plain["usageMetadata"]);
}

#[test]
fn stream_json_array() {
    let s = server();
    let r = post(s.addr(), STREAM, &request());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    let chunks = v.as_array().unwrap();
    assert_eq!(chunks.len(), 8);
    assert_eq!(chunks[7]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(chunks[7]["modelVersion"], "gemini-2.0-flash");
}

#[test]
fn function_call_whole_in_one_chunk() {
    let s = server();
    let script = Script {
        tool_calls: vec![ScriptToolCall::new("get_weather", r#"{"city":"Paris"}"#)],
        ..Script::default()
    };
    s.push_script(script.clone());
    let chunks = post(s.addr(), &format!("{STREAM}?alt=sse"), &request()).data();
    assert_eq!(chunks.len(), 1);
    let candidate = &chunks[0]["candidates"][0];
    assert_eq!(
        candidate["content"]["parts"],
        json!([{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}])
    );
    assert_eq!(candidate["finishReason"], "STOP");
    s.push_script(script);
    let v = post(s.addr(), PLAIN, &request()).json();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["functionCall"]["name"],
        "get_weather"
    );
}

#[test]
fn thought_summary_before_the_answer() {
    let s = server();
    let script = Script {
        thought_text: Some("Rayleigh scattering, shorter waves".into()),
        ..Script::text("Because of Rayleigh scattering.")
    };
    s.push_script(script.clone());
    let v = post(s.addr(), PLAIN, &request()).json();
    assert_eq!(
        v["candidates"][0]["content"]["parts"],
        json!([
            {"text": "Rayleigh scattering, shorter waves", "thought": true},
            {"text": "Because of Rayleigh scattering."},
        ])
    );
    assert_eq!(
        v["usageMetadata"],
        json!({"promptTokenCount": 7, "candidatesTokenCount": 4, "thoughtsTokenCount": 4, "totalTokenCount": 15})
    );

    s.push_script(script);
    let chunks = post(s.addr(), &format!("{STREAM}?alt=sse"), &request()).data();
    assert_eq!(chunks.len(), 5, "the thought, then one chunk per word");
    assert_eq!(
        chunks[0]["candidates"][0]["content"]["parts"],
        json!([{"text": "Rayleigh scattering, shorter waves", "thought": true}])
    );
    let answer: String = chunks[1..]
        .iter()
        .map(|c| {
            let part = &c["candidates"][0]["content"]["parts"][0];
            assert!(part.get("thought").is_none(), "{part}");
            part["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(answer, "Because of Rayleigh scattering.");
    assert_eq!(chunks[4]["usageMetadata"], v["usageMetadata"]);

    // Without the script: no thought part, no thought tokens.
    let v = post(s.addr(), PLAIN, &request()).json();
    assert!(v["usageMetadata"].get("thoughtsTokenCount").is_none());
    assert_eq!(
        v["candidates"][0]["content"]["parts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn max_output_tokens() {
    let s = server();
    let mut req = request();
    req["generationConfig"] = json!({"maxOutputTokens": 2});
    let v = post(s.addr(), PLAIN, &req).json();
    assert_eq!(v["candidates"][0]["finishReason"], "MAX_TOKENS");
    assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 2);
}

#[test]
fn embeddings() {
    let s = server();
    let one = post(
        s.addr(),
        "/v1beta/models/text-embedding-004:embedContent",
        &json!({"content": {"parts": [{"text": "hello"}]}}),
    )
    .json();
    assert_eq!(one["embedding"]["values"].as_array().unwrap().len(), 8);
    let batch = post(
        s.addr(),
        "/v1beta/models/text-embedding-004:batchEmbedContents",
        &json!({"requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "hello"}]}},
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "bye"}]}, "outputDimensionality": 3},
        ]}),
    )
    .json();
    let list = batch["embeddings"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["values"], one["embedding"]["values"]);
    assert_eq!(list[1]["values"].as_array().unwrap().len(), 3);
}

#[test]
fn errors() {
    let s = server();
    let r = post_raw(s.addr(), PLAIN, b"[1,");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(r.json()["error"]["code"], 400);
    let mut bad_role = request();
    bad_role["contents"][0]["role"] = json!("assistant");
    assert_eq!(post(s.addr(), PLAIN, &bad_role).status, 400);

    s.set_default_script(Script {
        only_for_token: Some("exhausted".into()),
        ..Script::error(429, "Resource has been exhausted")
    });
    let r = post_with(
        s.addr(),
        PLAIN,
        &[("x-goog-api-key", "exhausted")],
        &request(),
    );
    assert_eq!(r.status, 429);
    assert_eq!(
        r.json(),
        json!({"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED"}})
    );
    let r = post(s.addr(), &format!("{PLAIN}?key=exhausted"), &request());
    assert_eq!(r.status, 429);
    let r = post(s.addr(), &format!("{PLAIN}?key=fine"), &request());
    assert_eq!(r.status, 200);
}
