//! A `json_to_metadata` that lifts only `model` and `stream` (what a hand-written bootstrap
//! has): `stream_options.include_usage` is then unknown in the header phase, and the usage
//! chunk an official SDK asks for must still reach it, for every vendor family.

use switchyard_e2e::*;

/// The official OpenAI SDK streams with `include_usage` and gets exactly one usage chunk,
/// last, with no choices; without it, none.
const SCRIPT: &str = r#"
import sys, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="client-key", max_retries=0)
model = sys.argv[2]
msgs = [{"role": "user", "content": "hi sdk"}]
chunks = list(c.chat.completions.create(model=model, messages=msgs, max_tokens=64, stream=True, stream_options={"include_usage": True}))
usage = [ch for ch in chunks if ch.usage is not None]
assert len(usage) == 1, [ch.model_dump() for ch in chunks]
assert usage[0] is chunks[-1] and usage[0].choices == [], usage
assert usage[0].usage.prompt_tokens > 0 and usage[0].usage.completion_tokens > 0, usage
text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
assert text, chunks
plain = list(c.chat.completions.create(model=model, messages=msgs, max_tokens=64, stream=True))
assert all(ch.usage is None for ch in plain), [ch.model_dump() for ch in plain]
print("ok")
"#;

fn run(provider: serde_json::Value, model: &str) {
    let (mut s, _m) = proxy_spec(json!({ "provider": provider }));
    s.minimal_body_metadata = true;
    let gw = Gateway::start(&s);
    run_python(
        SCRIPT,
        &[format!("http://{}/v1", gw.addr()), model.to_string()],
    );
}

#[test]
fn openai_compatible_stream_keeps_the_usage_chunk() {
    run(
        json!({"type": "deepseek", "apiTokens": ["k"]}),
        "deepseek-chat",
    );
}

#[test]
fn claude_stream_keeps_the_usage_chunk() {
    run(
        json!({"type": "claude", "apiTokens": ["k"]}),
        "claude-sonnet-4-5",
    );
}

#[test]
fn gemini_stream_keeps_the_usage_chunk() {
    run(
        json!({"type": "gemini", "apiTokens": ["k"]}),
        "gemini-2.5-flash",
    );
}
