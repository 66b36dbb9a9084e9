//! Issue 20, end to end with the official SDKs: no request field is dropped silently. A field
//! the vendor has an equivalent for reaches it under the vendor's name (structured output to
//! Claude's `output_config.format` and Gemini's `responseSchema`, thinking to Gemini's
//! `thinkingConfig`), what the vendor answers comes back in the client's terms (Gemini thought
//! parts as Anthropic `thinking` blocks and OpenAI `reasoning_content`), and a field with no
//! equivalent is a 400 naming it that the SDK raises, before anything reaches the vendor.
//!
//! Build first: `cargo xtask build`; run with `cargo xtask test` (or set `ENVOY_BIN`).

use serde_json::Value;
use switchyard_e2e::*;

/// The JSON the mock answers where the client asked for a `Weather` object.
const WEATHER: &str = r#"{"city":"Paris","temperature_c":21}"#;

/// The thought summary the Gemini mock sends before its answer.
const THOUGHT: &str = "The user wants the weather; Paris is mild in May.";

/// The `Weather` model the Python scripts parse answers into (`from pydantic import ...`
/// already done), and the schema of the same object as a plain dict.
const WEATHER_PY: &str = r#"
class Weather(BaseModel):
    city: str
    temperature_c: int

schema = {"type": "object", "properties": {"city": {"type": "string"}, "temperature_c": {"type": "integer"}}, "required": ["city", "temperature_c"], "additionalProperties": False}
"#;

fn base(gw: &Gateway) -> String {
    format!("http://{}/v1", gw.addr())
}

fn claude_gateway() -> (Gateway, MockServer) {
    provider_gateway(json!({"type": "claude", "apiTokens": ["sk-ant-1"]}))
}

/// ai-proxy with a Gemini provider (`claude-*` mapped to a Gemini model for Anthropic
/// clients); the Wasm runtime needs the body-to-metadata filter for the model in the path.
fn gemini_gateway() -> (Gateway, MockServer) {
    let (mut s, m) = proxy_spec(json!({"provider": {
        "type": "gemini", "apiTokens": ["g-key-1"],
        "modelMapping": {"claude-*": "gemini-2.5-flash"}
    }}));
    s.body_metadata = true;
    (Gateway::start(&s), m)
}

fn bodies(m: &MockServer) -> Vec<Value> {
    m.requests()
        .iter()
        .map(|r| {
            r.json()
                .unwrap_or_else(|| panic!("upstream body is not JSON: {r:?}"))
        })
        .collect()
}

#[test]
fn openai_sdk_structured_output_to_claude() {
    let (gw, m) = claude_gateway();
    m.set_default_script(Script::text(WEATHER));
    let script = format!(
        "{}{WEATHER_PY}{}",
        "import sys, json, openai\nfrom pydantic import BaseModel\n",
        r#"
c = openai.OpenAI(base_url=sys.argv[1], api_key="client-key", max_retries=0)
msgs = [{"role": "user", "content": "weather in Paris as JSON"}]
r = c.chat.completions.create(model="claude-sonnet-4-5", messages=msgs,
    response_format={"type": "json_schema", "json_schema": {"name": "weather", "schema": schema, "strict": True}})
assert r.object == "chat.completion" and r.choices[0].finish_reason == "stop", r
assert json.loads(r.choices[0].message.content) == {"city": "Paris", "temperature_c": 21}, r
p = c.chat.completions.parse(model="claude-sonnet-4-5", messages=msgs, response_format=Weather)
w = p.choices[0].message.parsed
assert isinstance(w, Weather) and w.city == "Paris" and w.temperature_c == 21, p
with c.chat.completions.stream(model="claude-sonnet-4-5", messages=msgs, response_format=Weather) as s:
    final = s.get_final_completion()
assert final.choices[0].message.parsed == w, final
try:
    c.chat.completions.create(model="claude-sonnet-4-5", messages=msgs, response_format={"type": "json_object"})
    raise SystemExit("json_object was not refused")
except openai.BadRequestError as e:
    assert e.status_code == 400 and e.param == "response_format", (e.status_code, e.param, e.body)
    assert "json_object" in e.message and "json_schema" in e.message, e.message
print("ok")
"#
    );
    run_python(&script, &[base(&gw)]);

    let up = bodies(&m);
    assert_eq!(up.len(), 3, "json_object never reached the vendor: {up:?}");
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}, "temperature_c": {"type": "integer"}}, "required": ["city", "temperature_c"], "additionalProperties": false});
    assert_eq!(
        up[0]["output_config"],
        json!({"format": {"type": "json_schema", "schema": schema}}),
        "{}",
        up[0]
    );
    assert!(up[0].get("response_format").is_none(), "{}", up[0]);
    for body in &up[1..] {
        let format = &body["output_config"]["format"];
        assert_eq!(format["type"], "json_schema", "{body}");
        // The SDK's schema from the pydantic model, as it sent it.
        assert_eq!(
            format["schema"]["properties"]["temperature_c"]["type"], "integer",
            "{body}"
        );
        assert_eq!(
            format["schema"]["required"],
            json!(["city", "temperature_c"])
        );
        assert!(body.get("response_format").is_none(), "{body}");
    }
    assert_eq!(up[2]["stream"], true);
    assert!(!gw.wasm_failed());
}

#[test]
fn openai_sdk_structured_output_to_gemini() {
    let (gw, m) = gemini_gateway();
    m.set_default_script(Script::text(WEATHER));
    let script = format!(
        "{}{WEATHER_PY}{}",
        "import sys, json, openai\nfrom pydantic import BaseModel\n",
        r#"
c = openai.OpenAI(base_url=sys.argv[1], api_key="client-key", max_retries=0)
msgs = [{"role": "user", "content": "weather in Paris as JSON"}]
r = c.chat.completions.create(model="gemini-2.5-flash", messages=msgs,
    response_format={"type": "json_schema", "json_schema": {"name": "weather", "schema": schema, "strict": True}})
assert json.loads(r.choices[0].message.content) == {"city": "Paris", "temperature_c": 21}, r
p = c.chat.completions.parse(model="gemini-2.5-flash", messages=msgs, response_format=Weather)
w = p.choices[0].message.parsed
assert isinstance(w, Weather) and w.city == "Paris" and w.temperature_c == 21, p
with c.chat.completions.stream(model="gemini-2.5-flash", messages=msgs, response_format=Weather) as s:
    final = s.get_final_completion()
assert final.choices[0].message.parsed == w, final
r = c.chat.completions.create(model="gemini-2.5-flash", messages=msgs, response_format={"type": "json_object"})
assert json.loads(r.choices[0].message.content)["city"] == "Paris", r
print("ok")
"#
    );
    run_python(&script, &[base(&gw)]);

    let got = m.requests();
    let paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/v1beta/models/gemini-2.5-flash:generateContent",
            "/v1beta/models/gemini-2.5-flash:generateContent",
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            "/v1beta/models/gemini-2.5-flash:generateContent",
        ]
    );
    let up = bodies(&m);
    let want = json!({
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING"}, "temperature_c": {"type": "INTEGER"}},
        "required": ["city", "temperature_c"],
    });
    let config = &up[0]["generationConfig"];
    assert_eq!(config["responseMimeType"], "application/json", "{}", up[0]);
    assert_eq!(config["responseSchema"], want, "{}", up[0]);
    assert!(up[0].get("response_format").is_none(), "{}", up[0]);
    for body in &up[1..3] {
        let config = &body["generationConfig"];
        assert_eq!(config["responseMimeType"], "application/json", "{body}");
        let schema = &config["responseSchema"];
        assert_eq!(schema["type"], "OBJECT", "{body}");
        assert_eq!(
            schema["properties"]["temperature_c"]["type"], "INTEGER",
            "{body}"
        );
        assert_eq!(schema["required"], json!(["city", "temperature_c"]));
        assert!(
            schema.get("additionalProperties").is_none(),
            "Gemini rejects additionalProperties: {body}"
        );
    }
    // json_object: JSON mode without a schema.
    let config = &up[3]["generationConfig"];
    assert_eq!(config["responseMimeType"], "application/json", "{}", up[3]);
    assert!(config.get("responseSchema").is_none(), "{}", up[3]);
    assert!(!gw.wasm_failed());
}

#[test]
fn anthropic_sdk_thinking_to_gemini() {
    let (gw, m) = gemini_gateway();
    m.set_default_script(Script {
        thought_text: Some(THOUGHT.into()),
        ..Script::text("Mild and sunny, 21 degrees.")
    });
    let script = r#"
import sys, anthropic
c = anthropic.Anthropic(base_url=sys.argv[1], api_key="client-key", max_retries=0)
msgs = [{"role": "user", "content": "weather in Paris?"}]
thought = sys.argv[2]
m = c.messages.create(model="claude-sonnet-4-5", max_tokens=4096, messages=msgs,
    thinking={"type": "enabled", "budget_tokens": 2048})
assert [b.type for b in m.content] == ["thinking", "text"], m
assert m.content[0].thinking == thought, m
assert m.content[1].text == "Mild and sunny, 21 degrees.", m
assert m.stop_reason == "end_turn", m
assert m.usage.output_tokens > len(thought.split()), m.usage
with c.messages.stream(model="claude-sonnet-4-5", max_tokens=4096, messages=msgs,
        thinking={"type": "enabled", "budget_tokens": 2048}) as s:
    kinds = [e.type for e in s]
    final = s.get_final_message()
assert "thinking" in kinds and "text" in kinds, kinds
assert kinds.index("thinking") < kinds.index("text"), kinds
assert [b.type for b in final.content] == ["thinking", "text"], final
assert final.content[0].thinking == thought, final
assert final.content[1].text == m.content[1].text, final
m = c.messages.create(model="claude-sonnet-4-5", max_tokens=4096, messages=msgs,
    thinking={"type": "disabled"})
assert m.content[-1].type == "text", m
print("ok")
"#;
    run_python(
        script,
        &[format!("http://{}", gw.addr()), THOUGHT.to_string()],
    );

    let got = m.requests();
    let paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/v1beta/models/gemini-2.5-flash:generateContent",
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            "/v1beta/models/gemini-2.5-flash:generateContent",
        ]
    );
    let up = bodies(&m);
    for body in &up[..2] {
        assert_eq!(
            body["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 2048, "includeThoughts": true}),
            "{body}"
        );
        assert!(body.get("thinking").is_none(), "{body}");
    }
    assert_eq!(
        up[2]["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 0}),
        "disabled: no thinking, no thoughts to include: {}",
        up[2]
    );
    assert!(!gw.wasm_failed());
}

#[test]
fn openai_sdk_reasoning_effort_to_gemini() {
    let (gw, m) = gemini_gateway();
    m.set_default_script(Script {
        thought_text: Some(THOUGHT.into()),
        ..Script::text("Mild and sunny, 21 degrees.")
    });
    let script = r#"
import sys, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="client-key", max_retries=0)
msgs = [{"role": "user", "content": "weather in Paris?"}]
thought = sys.argv[2]
r = c.chat.completions.create(model="gemini-2.5-flash", messages=msgs, reasoning_effort="low")
assert r.choices[0].message.content == "Mild and sunny, 21 degrees.", r
assert r.choices[0].message.reasoning_content == thought, r
assert r.usage.completion_tokens_details.reasoning_tokens == len(thought.split()), r.usage
chunks = list(c.chat.completions.create(model="gemini-2.5-flash", messages=msgs, reasoning_effort="low", stream=True))
reasoning = "".join(getattr(ch.choices[0].delta, "reasoning_content", None) or "" for ch in chunks if ch.choices)
text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
assert reasoning == thought, chunks
assert text == "Mild and sunny, 21 degrees.", chunks
print("ok")
"#;
    run_python(script, &[base(&gw), THOUGHT.to_string()]);
    for body in bodies(&m) {
        assert_eq!(
            body["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 1024, "includeThoughts": true}),
            "{body}"
        );
        assert!(body.get("reasoning_effort").is_none(), "{body}");
    }
    assert_eq!(m.requests().len(), 2);
    assert!(!gw.wasm_failed());
}

#[test]
fn refused_fields_are_400s_naming_the_field() {
    // OpenAI client -> Claude: a field Claude has no equivalent for, and one nobody knows.
    let (gw, m) = claude_gateway();
    let script = r#"
import sys, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="client-key", max_retries=0)
msgs = [{"role": "user", "content": "hi"}]
for stream in (False, True):
    try:
        c.chat.completions.create(model="claude-sonnet-4-5", messages=msgs, logit_bias={"50256": -100}, stream=stream)
        raise SystemExit("logit_bias was not refused")
    except openai.BadRequestError as e:
        assert e.status_code == 400 and e.param == "logit_bias", (e.status_code, e.param, e.body)
        assert "`logit_bias`" in e.message and "Claude" in e.message, e.message
        assert e.code == "unsupported_parameter", e.code
try:
    c.chat.completions.create(model="claude-sonnet-4-5", messages=msgs, extra_body={"frobnicate": True})
    raise SystemExit("an unknown field was not refused")
except openai.BadRequestError as e:
    assert e.status_code == 400 and "`frobnicate`" in e.message, (e.status_code, e.message)
# A neutral value asks for nothing and goes through.
r = c.chat.completions.create(model="claude-sonnet-4-5", messages=msgs, logit_bias={})
assert r.choices[0].message.content.startswith("Mock answer"), r
print("ok")
"#;
    run_python(script, &[base(&gw)]);
    let up = bodies(&m);
    assert_eq!(
        up.len(),
        1,
        "only the neutral request reached Claude: {up:?}"
    );
    assert!(up[0].get("logit_bias").is_none(), "{}", up[0]);

    // The same refusal without an SDK: the raw OpenAI error body.
    let r = gw.post(
        "/v1/chat/completions",
        r#"{"model":"claude-sonnet-4-5","logit_bias":{"50256":-100},"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["param"], "logit_bias", "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    assert_eq!(m.requests().len(), 1);

    // Anthropic client -> Gemini: `speed` (fast mode) exists only at Anthropic.
    let (gw, m) = gemini_gateway();
    let script = r#"
import sys, anthropic
c = anthropic.Anthropic(base_url=sys.argv[1], api_key="client-key", max_retries=0)
msgs = [{"role": "user", "content": "hi"}]
try:
    c.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=msgs, extra_body={"speed": "fast"})
    raise SystemExit("speed was not refused")
except anthropic.BadRequestError as e:
    assert e.status_code == 400, e.status_code
    assert e.body["type"] == "error" and e.body["error"]["type"] == "invalid_request_error", e.body
    assert "`speed`" in e.body["error"]["message"], e.body
m = c.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=msgs, extra_body={"speed": "standard"})
assert m.content[0].text.startswith("Mock answer"), m
print("ok")
"#;
    run_python(script, &[format!("http://{}", gw.addr())]);
    let up = bodies(&m);
    assert_eq!(
        up.len(),
        1,
        "only the neutral request reached Gemini: {up:?}"
    );
    assert!(up[0].get("speed").is_none(), "{}", up[0]);
    assert!(!gw.wasm_failed());
}

/// A chat completion with log probabilities, as an OpenAI-compatible vendor answers a request
/// with `logprobs: true, top_logprobs: 2`.
const CHAT_WITH_LOGPROBS: &str = r#"{"id":"chatcmpl-lp","object":"chat.completion","created":1,"model":"deepseek-chat","choices":[{"index":0,"message":{"role":"assistant","content":"Hi!"},"logprobs":{"content":[{"token":"Hi","logprob":-0.01,"bytes":[72,105],"top_logprobs":[{"token":"Hi","logprob":-0.01,"bytes":[72,105]},{"token":"Hello","logprob":-4.6,"bytes":[72,101,108,108,111]}]},{"token":"!","logprob":-0.2,"bytes":[33],"top_logprobs":[{"token":"!","logprob":-0.2,"bytes":[33]},{"token":".","logprob":-1.8,"bytes":[46]}]}]},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#;

/// A Responses client in front of a chat-only vendor: the Responses fields chat has reach the
/// vendor as chat fields (log probabilities, which come back in `output_text.logprobs`; the
/// service tier and cache hints unchanged), and what cannot be honoured (`store: true`,
/// `truncation: "auto"`, a field nobody knows) is a 400 naming it.
#[test]
fn openai_sdk_responses_fields_to_an_openai_compatible_vendor() {
    let (gw, m) = provider_gateway(json!({"type": "deepseek", "apiTokens": ["k"]}));
    m.set_default_script(Script {
        raw_body: Some(CHAT_WITH_LOGPROBS.into()),
        headers: vec![("content-type".into(), "application/json".into())],
        ..Script::default()
    });
    let script = r#"
import sys, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="client-key", max_retries=0)
r = c.responses.create(model="deepseek-chat", input="hi", top_logprobs=2,
    include=["message.output_text.logprobs"], service_tier="flex", prompt_cache_key="conv-1")
assert r.output_text == "Hi!", r
lp = r.output[0].content[0].logprobs
assert [l.token for l in lp] == ["Hi", "!"], lp
assert [t.token for t in lp[0].top_logprobs] == ["Hi", "Hello"], lp
assert r.store is False, r
for kwargs, param in ((dict(store=True), "store"), (dict(truncation="auto"), "truncation")):
    try:
        c.responses.create(model="deepseek-chat", input="hi", **kwargs)
        raise SystemExit(f"{param} was not refused")
    except openai.BadRequestError as e:
        assert e.status_code == 400 and e.param == param, (e.status_code, e.param, e.body)
        assert f"`{param}`" in e.message and "OpenAI-compatible" in e.message, e.message
try:
    c.responses.create(model="deepseek-chat", input="hi", extra_body={"frobnicate": 1})
    raise SystemExit("an unknown field was not refused")
except openai.BadRequestError as e:
    assert e.status_code == 400 and "`frobnicate`" in e.message, (e.status_code, e.message)
# What asks for nothing goes through.
r = c.responses.create(model="deepseek-chat", input="hi", store=False, truncation="disabled")
assert r.output_text == "Hi!", r
print("ok")
"#;
    run_python(script, &[base(&gw)]);
    let up = bodies(&m);
    assert_eq!(
        up.len(),
        2,
        "only the honourable requests reached the vendor: {up:?}"
    );
    let first = &up[0];
    assert_eq!(first["logprobs"], true, "{first}");
    assert_eq!(first["top_logprobs"], 2, "{first}");
    assert_eq!(first["service_tier"], "flex", "{first}");
    assert_eq!(first["prompt_cache_key"], "conv-1", "{first}");
    assert!(
        first.get("include").is_none() && first.get("input").is_none(),
        "{first}"
    );
    for key in ["store", "truncation", "logprobs"] {
        assert!(up[1].get(key).is_none(), "{key}: {}", up[1]);
    }
    assert!(!gw.wasm_failed());
}

/// An Anthropic client in front of an OpenAI-compatible vendor: a server-tool block in the
/// history is a 400 naming its path; search results and a tool's error reach the vendor as
/// text; earlier thinking is left out; answers carry `msg_` ids.
#[test]
fn anthropic_sdk_content_blocks_to_an_openai_compatible_vendor() {
    let (gw, m) = provider_gateway(json!({"type": "deepseek", "apiTokens": ["k"]}));
    let script = r#"
import sys, anthropic
c = anthropic.Anthropic(base_url=sys.argv[1], api_key="client-key", max_retries=0)
history = [
    {"role": "user", "content": "What is new in Paris?"},
    {"role": "assistant", "content": [
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "paris"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "text", "text": "Nothing new."}]},
    {"role": "user", "content": "Thanks."},
]
for stream in (False, True):
    try:
        c.messages.create(model="deepseek-chat", max_tokens=100, messages=history, stream=stream)
        raise SystemExit("server_tool_use was not refused")
    except anthropic.BadRequestError as e:
        assert e.status_code == 400, e.status_code
        msg = e.body["error"]["message"]
        assert 'messages[1].content[0].type: "server_tool_use"' in msg, msg
        assert "OpenAI-compatible" in msg, msg
tools = [{"name": "population", "description": "People in a city.",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
msgs = [
    {"role": "user", "content": [
        {"type": "search_result", "source": "https://example.com/paris", "title": "Paris",
         "content": [{"type": "text", "text": "Paris has 2.1 million people."}]},
        {"type": "text", "text": "How big is Paris?"}]},
    {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "Look it up.", "signature": "EqQB"},
        {"type": "tool_use", "id": "toolu_1", "name": "population", "input": {"city": "Paris"}}]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True, "content": "service unavailable"}]},
]
r = c.messages.create(model="deepseek-chat", max_tokens=100, tools=tools, messages=msgs)
assert r.id.startswith("msg_") and r.content[0].text.startswith("Mock answer"), r
with c.messages.stream(model="deepseek-chat", max_tokens=100, messages=[{"role": "user", "content": "hi"}]) as s:
    final = s.get_final_message()
assert final.id.startswith("msg_"), final
print("ok")
"#;
    run_python(script, &[format!("http://{}", gw.addr())]);
    let up = bodies(&m);
    assert_eq!(
        up.len(),
        2,
        "the refused requests never reached the vendor: {up:?}"
    );
    let msgs = up[0]["messages"].as_array().unwrap();
    let user = msgs[0]["content"].as_str().unwrap();
    assert!(
        user.contains("https://example.com/paris")
            && user.contains("Paris has 2.1 million people."),
        "{user}"
    );
    assert_eq!(msgs[1]["tool_calls"][0]["function"]["name"], "population");
    assert!(msgs[1].get("reasoning_content").is_none(), "{}", msgs[1]);
    assert_eq!(msgs[2]["role"], "tool");
    assert_eq!(msgs[2]["content"], "Error: service unavailable");
    assert!(!gw.wasm_failed());
}

/// Nested chat fields: a participant `name` has no equivalent at Claude or Gemini (a 400
/// naming `messages[0].name`); a strict function tool reaches Gemini as function-calling mode
/// `VALIDATED`.
#[test]
fn openai_sdk_nested_fields_to_claude_and_gemini() {
    let named = r#"
import sys, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="client-key", max_retries=0)
try:
    c.chat.completions.create(model=sys.argv[2], messages=[{"role": "user", "name": "alice", "content": "hi"}])
    raise SystemExit("name was not refused")
except openai.BadRequestError as e:
    assert e.status_code == 400 and e.param == "messages", (e.status_code, e.param, e.body)
    assert 'messages[0].name: "alice"' in e.message, e.message
tools = [{"type": "function", "function": {"name": "weather", "strict": True, "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": False}}}]
r = c.chat.completions.create(model=sys.argv[2], messages=[{"role": "user", "content": "hi"}], tools=tools)
assert r.choices[0].message.content.startswith("Mock answer"), r
print("ok")
"#;
    let (gw, m) = claude_gateway();
    run_python(named, &[base(&gw), "claude-sonnet-4-5".into()]);
    let up = bodies(&m);
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0]["tools"][0]["strict"], true, "{}", up[0]);

    let (gw, m) = gemini_gateway();
    run_python(named, &[base(&gw), "gemini-2.5-flash".into()]);
    let up = bodies(&m);
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(
        up[0]["toolConfig"],
        json!({"functionCallingConfig": {"mode": "VALIDATED"}}),
        "{}",
        up[0]
    );
    assert!(!gw.wasm_failed());
}

/// A nested field the vendor has no equivalent for is a 400 naming its exact place, raised by
/// the SDK before anything reaches the vendor: an audio part to Claude, a custom tool to
/// Gemini; an assistant turn's earlier `refusal` reaches Claude as its text.
#[test]
fn openai_sdk_nested_fields_refused_by_path() {
    let (gw, m) = claude_gateway();
    let script = r#"
import sys, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="client-key", max_retries=0)
audio = [{"role": "user", "content": [{"type": "text", "text": "Transcribe."},
    {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]}]
try:
    c.chat.completions.create(model="claude-sonnet-4-5", messages=audio)
    raise SystemExit("input_audio was not refused")
except openai.BadRequestError as e:
    assert e.status_code == 400 and e.param == "messages", (e.status_code, e.param, e.body)
    assert 'messages[0].content[1].type: "input_audio"' in e.message, e.message
    assert e.code == "unsupported_parameter", e.body
msgs = [{"role": "user", "content": "Hi."},
    {"role": "assistant", "content": None, "refusal": "I cannot help with that."},
    {"role": "user", "content": "Then say hello."}]
r = c.chat.completions.create(model="claude-sonnet-4-5", messages=msgs)
assert r.choices[0].message.content, r
print("ok")
"#;
    run_python(script, &[base(&gw)]);
    let up = bodies(&m);
    assert_eq!(
        up.len(),
        1,
        "only the accepted request reached Claude: {up:?}"
    );
    assert_eq!(
        up[0]["messages"][1],
        json!({"role": "assistant", "content": [{"type": "text", "text": "I cannot help with that."}]}),
        "{}",
        up[0]
    );
    assert!(!gw.wasm_failed());

    let (gw, m) = gemini_gateway();
    let script = r#"
import sys, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="client-key", max_retries=0)
tools = [{"type": "custom", "custom": {"name": "sql", "description": "Runs SQL."}}]
try:
    c.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}], tools=tools)
    raise SystemExit("custom tool was not refused")
except openai.BadRequestError as e:
    assert e.status_code == 400 and e.param == "tools", (e.status_code, e.param, e.body)
    assert 'tools[0].type: "custom"' in e.message, e.message
print("ok")
"#;
    run_python(script, &[base(&gw)]);
    assert!(m.requests().is_empty(), "nothing reached Gemini");
    assert!(!gw.wasm_failed());
}
