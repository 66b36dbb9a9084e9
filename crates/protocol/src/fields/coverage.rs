//! The field tables against the translators: every documented field has a rule, and each
//! translator does with each field what its rule says.
//!
//! `testdata/fields/<api>_request.json` lists every documented top-level field of the client
//! API with a sample value that asks for something. For each field and family the sample is
//! added to a baseline request and translated:
//! - refused -> a 400 naming the field (a neutral sample: accepted, and nothing sent);
//! - ignored -> the same upstream body as the baseline;
//! - mapped -> a different upstream body (the field had an effect);
//! - passed -> the upstream body holds the field, unchanged.
//!
//! Where the vendor speaks the client's API (chat to OpenAI-compatible, Messages to Claude)
//! the body goes through unchanged, so those columns must say `passed` throughout.
//!
//! Test code only: `fields.rs` declares this module under `#[cfg(test)]`, so its `unwrap`s
//! never reach a build that serves requests.

use super::*;
use crate::anthropic::{
    chat_request_to_messages, messages_request_to_chat_for, ChatTarget, ClaudeOptions,
};
use crate::bedrock::{chat_request_to_converse, messages_request_to_converse, BedrockOptions};
use crate::gemini::{chat_request_to_gemini, GeminiOptions};
use crate::responses::responses_request_to_chat_for;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::path::Path;

type Translate = fn(&[u8]) -> Result<Vec<u8>, GatewayError>;

/// Fields whose effect is not in the upstream body: Gemini takes the model and streaming
/// from the URL; `stream_options` shapes the converted stream the client gets.
const OUTSIDE_BODY: &[(&str, VendorFamily)] = &[
    ("model", VendorFamily::Gemini),
    ("stream", VendorFamily::Gemini),
    ("stream_options", VendorFamily::Claude),
    ("stream_options", VendorFamily::Gemini),
    ("model", VendorFamily::Bedrock),
    ("stream", VendorFamily::Bedrock),
    ("stream_options", VendorFamily::Bedrock),
];

fn chat_to_claude(body: &[u8]) -> Result<Vec<u8>, GatewayError> {
    chat_request_to_messages(body, &ClaudeOptions::default())
}

fn chat_to_gemini(body: &[u8]) -> Result<Vec<u8>, GatewayError> {
    chat_request_to_gemini(body, &GeminiOptions::default())
}

fn chat_to_bedrock(body: &[u8]) -> Result<Vec<u8>, GatewayError> {
    chat_request_to_converse(body, &BedrockOptions::default())
}

/// The chain the gateway runs for an Anthropic client in front of Bedrock.
fn messages_to_bedrock(body: &[u8]) -> Result<Vec<u8>, GatewayError> {
    messages_request_to_converse(body, &BedrockOptions::default())
}

/// The chain the gateway runs for a Responses client in front of Bedrock.
fn responses_to_bedrock(body: &[u8]) -> Result<Vec<u8>, GatewayError> {
    let chat = responses_request_to_chat_for(body, VendorFamily::Bedrock)?;
    chat_to_bedrock(&chat.body)
}

fn messages_to_openai(body: &[u8]) -> Result<Vec<u8>, GatewayError> {
    messages_request_to_chat_for(body, ChatTarget::OpenAiCompatible)
}

/// The chain the gateway runs for an Anthropic client in front of Gemini.
fn messages_to_gemini(body: &[u8]) -> Result<Vec<u8>, GatewayError> {
    let chat = messages_request_to_chat_for(body, ChatTarget::Gemini)?;
    chat_request_to_gemini(&chat, &GeminiOptions::default())
}

/// A Responses client in front of an OpenAI-compatible chat vendor.
fn responses_to_chat(body: &[u8]) -> Result<Vec<u8>, GatewayError> {
    responses_request_to_chat_for(body, VendorFamily::OpenAi).map(|chat| chat.body)
}

/// The chain the gateway runs for a Responses client in front of Claude.
fn responses_to_claude(body: &[u8]) -> Result<Vec<u8>, GatewayError> {
    let chat = responses_request_to_chat_for(body, VendorFamily::Claude)?;
    chat_to_claude(&chat.body)
}

/// The chain the gateway runs for a Responses client in front of Gemini.
fn responses_to_gemini(body: &[u8]) -> Result<Vec<u8>, GatewayError> {
    let chat = responses_request_to_chat_for(body, VendorFamily::Gemini)?;
    chat_to_gemini(&chat.body)
}

fn load(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/fields")
        .join(name);
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap()
}

fn is_neutral(rule: &FieldRule, value: &Value) -> bool {
    let text = value.to_string();
    let json = Json::from_slice(text.as_bytes()).unwrap();
    rule.neutral.iter().any(|n| n.matches(&json))
}

fn body(base: &Map<String, Value>, extra: &[(&str, &Value)]) -> Vec<u8> {
    let mut obj = base.clone();
    for (k, v) in extra {
        obj.insert((*k).to_owned(), (*v).clone());
    }
    Value::Object(obj).to_string().into_bytes()
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn check_table(
    table: &FieldTable,
    fixture: &str,
    translators: &[(VendorFamily, Option<Translate>)],
) {
    let fx = load(fixture);
    let base = fx["base"].as_object().unwrap();
    let samples = fx["fields"].as_object().unwrap();

    let documented: BTreeSet<&str> = samples.keys().map(String::as_str).collect();
    let ruled: BTreeSet<&str> = table.fields.iter().map(|r| r.field).collect();
    assert_eq!(
        documented.difference(&ruled).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "{fixture}: documented fields without a rule in the table"
    );
    assert_eq!(
        ruled.difference(&documented).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "{fixture}: rules without a sample in the fixture"
    );

    let columns: Vec<VendorFamily> = translators.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        columns, table.columns,
        "{fixture}: one translator per column"
    );
    met::take(table.api);
    check_nested(table, &fx, translators);

    for (family, translate) in translators {
        let Some(translate) = translate else {
            // The vendor speaks the client's API: the body passes unchanged.
            for r in table.fields.iter().chain(table.nested) {
                let d = table.disposition_of(r, *family);
                assert_eq!(d, Disposition::Passed, "{}", r.field);
            }
            assert_eq!(table.disposition("??", *family), Disposition::Passed);
            continue;
        };
        for rule in table.fields {
            let sample = &samples[rule.field];
            let value = &sample["value"];
            let with: Vec<(&str, &Value)> = sample
                .get("with")
                .and_then(Value::as_object)
                .map(|w| w.iter().map(|(k, v)| (k.as_str(), v)).collect())
                .unwrap_or_default();
            let baseline = body(base, &with);
            let mut extra = with.clone();
            extra.push((rule.field, value));
            let request = body(base, &extra);
            let what = format!("{fixture}: {} for {}", rule.field, family.name());
            let expected = table.disposition_of(rule, *family);
            if expected == Disposition::Refused && !is_neutral(rule, value) {
                // Refused whatever else the request holds: sent alone, it names itself.
                let e = translate(&body(base, &[(rule.field, value)]))
                    .err()
                    .unwrap_or_else(|| panic!("{what}: expected a 400"));
                assert_eq!(
                    (e.status(), e.param),
                    (400, Some(rule.field)),
                    "{what}: {e:?}"
                );
                continue;
            }
            let result = translate(&request);
            let before = translate(&baseline).unwrap_or_else(|e| panic!("{what}: baseline: {e:?}"));
            match expected {
                Disposition::Refused | Disposition::Ignored => {
                    let out = result.unwrap_or_else(|e| panic!("{what}: {e:?}"));
                    assert_eq!(json_of(&out), json_of(&before), "{what}: must not be sent");
                }
                Disposition::Mapped => {
                    let out = result.unwrap_or_else(|e| panic!("{what}: {e:?}"));
                    if !OUTSIDE_BODY.contains(&(rule.field, *family)) {
                        assert_ne!(json_of(&out), json_of(&before), "{what}: had no effect");
                    }
                }
                Disposition::Passed => {
                    let out = json_of(&result.unwrap_or_else(|e| panic!("{what}: {e:?}")));
                    assert_eq!(&out[rule.field], value, "{what}: not passed unchanged");
                }
            }
        }
        // A field no table lists.
        for (key, value) in fx["unknown"].as_object().unwrap() {
            assert!(table.rule(key).is_none());
            let result = translate(&body(base, &[(key.as_str(), value)]));
            match table.disposition(key, *family) {
                Disposition::Refused => {
                    let e = result
                        .err()
                        .unwrap_or_else(|| panic!("{key}: expected a 400"));
                    assert_eq!(e.status(), 400);
                    assert!(e.message.contains(&format!("`{key}`")), "{}", e.message);
                }
                other => panic!("{key}: no converted family passes unknown fields ({other:?})"),
            }
        }
    }
    check_met(table, &fx);
}

/// The nested rules against `fixture.nested`: every documented nested field or content type
/// (each sample replaces one top-level field, `field`, with `value`, against `baseline`) has a
/// rule and each rule a sample; each converted family does what its rule says, and a type
/// no rule lists (`fixture.unknown_nested`) is refused.
fn check_nested(table: &FieldTable, fx: &Value, translators: &[(VendorFamily, Option<Translate>)]) {
    let base = fx["base"].as_object().unwrap();
    let empty = Map::new();
    let samples = fx["nested"].as_object().unwrap_or(&empty);
    let documented: BTreeSet<&str> = samples.keys().map(String::as_str).collect();
    let ruled: BTreeSet<&str> = table.nested.iter().map(|r| r.field).collect();
    assert_eq!(
        documented, ruled,
        "{}: nested samples and rules differ",
        table.api
    );
    let unknown = fx["unknown_nested"].as_object().unwrap_or(&empty);
    let cases = samples
        .iter()
        .map(|(path, sample)| (path, sample, table.nested(path)))
        .chain(unknown.iter().map(|(path, sample)| (path, sample, None)));
    for (path, sample, rule) in cases {
        let field = sample["field"].as_str().unwrap();
        let mut with: Vec<(&str, &Value)> = sample
            .get("with")
            .and_then(Value::as_object)
            .map(|w| w.iter().map(|(k, v)| (k.as_str(), v)).collect())
            .unwrap_or_default();
        let baseline = {
            let mut extra = with.clone();
            extra.push((field, &sample["baseline"]));
            body(base, &extra)
        };
        with.push((field, &sample["value"]));
        let request = body(base, &with);
        for (family, translate) in translators {
            let Some(translate) = translate else { continue };
            let what = format!("{}: {path} for {}", table.api, family.name());
            let result = translate(&request);
            let before = translate(&baseline).unwrap_or_else(|e| panic!("{what}: baseline: {e:?}"));
            match table.nested_disposition(path, *family) {
                Disposition::Refused => {
                    let e = result
                        .err()
                        .unwrap_or_else(|| panic!("{what}: expected a 400"));
                    assert_eq!((e.status(), e.param), (400, Some(field)), "{what}: {e:?}");
                    let at = sample["at"].as_str().unwrap();
                    assert!(e.message.contains(at), "{what}: {}", e.message);
                    if let Some(r) = rule {
                        assert!(e.message.contains(r.note), "{what}: {}", e.message);
                    }
                }
                Disposition::Ignored => {
                    let out = result.unwrap_or_else(|e| panic!("{what}: {e:?}"));
                    assert_eq!(json_of(&out), json_of(&before), "{what}: must not be sent");
                }
                Disposition::Mapped | Disposition::Passed => {
                    let out = result.unwrap_or_else(|e| panic!("{what}: {e:?}"));
                    if !NESTED_OUTSIDE_BODY.contains(&path.as_str()) {
                        assert_ne!(json_of(&out), json_of(&before), "{what}: had no effect");
                    }
                }
            }
        }
    }
}

/// Nested fields whose effect is not in the upstream body of any converted family.
const NESTED_OUTSIDE_BODY: &[&str] = &["stream_options.include_usage"];

/// Every nested path a translator asked the table about (while the samples above ran) has a
/// rule, or is one of the fixture's `unknown_nested` types: a translator meeting a nested
/// field nobody ruled on fails here, not at a client.
fn check_met(table: &FieldTable, fx: &Value) {
    let empty = Map::new();
    let unknown = fx["unknown_nested"].as_object().unwrap_or(&empty);
    let mut met = met::take(table.api);
    met.sort();
    met.dedup();
    let unruled: Vec<&String> = met
        .iter()
        .filter(|p| table.nested(p).is_none() && !unknown.contains_key(p.as_str()))
        .collect();
    assert!(
        unruled.is_empty(),
        "{}: nested paths met without a rule: {unruled:?}",
        table.api
    );
    // And every rule is one a translator asks about: a rule nothing consults documents
    // nothing.
    let unmet: Vec<&str> = table
        .nested
        .iter()
        .map(|r| r.field)
        .filter(|f| met.binary_search_by(|m| m.as_str().cmp(f)).is_err())
        .collect();
    assert!(
        unmet.is_empty(),
        "{}: nested rules no translator consulted: {unmet:?}",
        table.api
    );
}

#[test]
fn every_chat_field_has_a_rule_the_translators_follow() {
    check_table(
        &CHAT_FIELDS,
        "chat_request.json",
        &[
            (VendorFamily::OpenAi, None),
            (VendorFamily::Claude, Some(chat_to_claude)),
            (VendorFamily::Gemini, Some(chat_to_gemini)),
            (VendorFamily::Bedrock, Some(chat_to_bedrock)),
        ],
    );
}

#[test]
fn every_messages_field_has_a_rule_the_translators_follow() {
    check_table(
        &MESSAGES_FIELDS,
        "messages_request.json",
        &[
            (VendorFamily::OpenAi, Some(messages_to_openai)),
            (VendorFamily::Claude, None),
            (VendorFamily::Gemini, Some(messages_to_gemini)),
            (VendorFamily::Bedrock, Some(messages_to_bedrock)),
        ],
    );
}

#[test]
fn every_responses_field_has_a_rule_the_translators_follow() {
    check_table(
        &RESPONSES_FIELDS,
        "responses_request.json",
        &[
            (VendorFamily::OpenAiResponses, None),
            (VendorFamily::OpenAi, Some(responses_to_chat)),
            (VendorFamily::Claude, Some(responses_to_claude)),
            (VendorFamily::Gemini, Some(responses_to_gemini)),
            (VendorFamily::Bedrock, Some(responses_to_bedrock)),
        ],
    );
}

/// The values of a mapped or ignored Responses field that Claude or Gemini cannot honour are
/// 400s under the Responses name of the field, not the chat name it travels under.
#[test]
fn responses_values_refused_under_their_own_names() {
    let base = r#"{"model":"m","input":"Hi.","#;
    let cases: [(&str, VendorFamily, &str); 7] = [
        (
            r#""text":{"format":{"type":"json_object"}}}"#,
            VendorFamily::Claude,
            "text",
        ),
        (
            r#""text":{"verbosity":"low"}}"#,
            VendorFamily::Claude,
            "text",
        ),
        (
            r#""text":{"verbosity":"high"}}"#,
            VendorFamily::Gemini,
            "text",
        ),
        (
            r#""include":["message.output_text.logprobs"]}"#,
            VendorFamily::Gemini,
            "include",
        ),
        (r#""store":true}"#, VendorFamily::OpenAi, "store"),
        (
            r#""truncation":"auto"}"#,
            VendorFamily::OpenAi,
            "truncation",
        ),
        (
            r#""parallel_tool_calls":false}"#,
            VendorFamily::Gemini,
            "parallel_tool_calls",
        ),
    ];
    for (tail, family, param) in cases {
        let body = format!("{base}{tail}");
        let e = responses_request_to_chat_for(body.as_bytes(), family)
            .err()
            .unwrap_or_else(|| panic!("{body} for {family:?}: expected a 400"));
        assert_eq!((e.status(), e.param), (400, Some(param)), "{body}: {e:?}");
    }
    // Neutral values and Gemini's JSON mode go through.
    for (tail, family) in [
        (
            r#""text":{"format":{"type":"json_object"},"verbosity":"medium"}}"#,
            VendorFamily::Gemini,
        ),
        (
            r#""truncation":"disabled","service_tier":"auto","top_logprobs":0,"background":false}"#,
            VendorFamily::Claude,
        ),
        (
            r#""include":["reasoning.encrypted_content"],"store":false}"#,
            VendorFamily::Gemini,
        ),
    ] {
        let body = format!("{base}{tail}");
        let chat = responses_request_to_chat_for(body.as_bytes(), family)
            .unwrap_or_else(|e| panic!("{body}: {e:?}"));
        let converted = match family {
            VendorFamily::Claude => chat_to_claude(&chat.body),
            _ => chat_to_gemini(&chat.body),
        };
        converted.unwrap_or_else(|e| panic!("{body}: {e:?}"));
    }
    // An OpenAI-compatible chat vendor hears of the verbosity, the log probabilities, the
    // tier and the cache hints, as chat fields.
    let chat = responses_request_to_chat_for(
        br#"{"model":"m","input":"Hi.","text":{"verbosity":"low"},"top_logprobs":2,
            "service_tier":"flex","prompt_cache_key":"k","prompt_cache_retention":"24h",
            "store":false,"truncation":"disabled"}"#,
        VendorFamily::OpenAi,
    )
    .unwrap();
    assert_eq!(
        json_of(&chat.body),
        serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "Hi."}],
            "verbosity": "low", "logprobs": true, "top_logprobs": 2, "service_tier": "flex",
            "prompt_cache_key": "k", "prompt_cache_retention": "24h"})
    );
    let chat = responses_request_to_chat_for(
        br#"{"model":"m","input":"Hi.","include":["message.output_text.logprobs"],"top_logprobs":0}"#,
        VendorFamily::OpenAi,
    )
    .unwrap();
    let chat = json_of(&chat.body);
    assert_eq!(
        (&chat["logprobs"], &chat["top_logprobs"]),
        (&serde_json::json!(true), &Value::Null)
    );
}

/// The README shows exactly the generated tables.
#[test]
fn readme_table_is_generated() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (begin, end) = ("<!-- fields:begin -->\n", "<!-- fields:end -->");
    let start = readme
        .find(begin)
        .expect("README has no fields:begin marker")
        + begin.len();
    let stop = readme[start..]
        .find(end)
        .expect("README has no fields:end marker")
        + start;
    let want = readme_tables();
    if readme[start..stop] != want {
        if std::env::var_os("SWITCHYARD_BLESS").is_some() {
            let updated = format!("{}{want}{}", &readme[..start], &readme[stop..]);
            std::fs::write(&path, updated).unwrap();
            return;
        }
        panic!(
            "README.md's field table is stale; run `SWITCHYARD_BLESS=1 cargo test -p \
             switchyard-protocol readme_table` and review the diff"
        );
    }
}

/// `testdata/fields/messages_to_gemini/`: an Anthropic client's request through the chain
/// the gateway runs for Gemini (Messages -> chat -> `generateContent`), to `<case>.out.json`
/// or `<case>.error.json` (`status`, `param`).
#[test]
fn messages_to_gemini_fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/fields/messages_to_gemini");
    let mut cases: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".in.json").map(str::to_owned))
        .collect();
    cases.sort();
    assert!(cases.len() >= 4, "too few cases");
    for case in cases {
        let input = std::fs::read(dir.join(format!("{case}.in.json"))).unwrap();
        match messages_to_gemini(&input) {
            Ok(out) => {
                let path = dir.join(format!("{case}.out.json"));
                let got = json_of(&out);
                let want = std::fs::read(&path).ok().map(|b| json_of(&b));
                if want.as_ref() != Some(&got) {
                    if std::env::var_os("SWITCHYARD_BLESS").is_some() {
                        let text = serde_json::to_string_pretty(&got).unwrap() + "\n";
                        std::fs::write(&path, text).unwrap();
                        continue;
                    }
                    panic!("{case}: got {got:#}");
                }
            }
            Err(e) => {
                let want = load(&format!("messages_to_gemini/{case}.error.json"));
                assert_eq!(want["status"], e.status(), "{case}: {e:?}");
                assert_eq!(want["param"].as_str(), e.param, "{case}: {e:?}");
            }
        }
    }
}

/// Gemini's thought parts reach an Anthropic client as `thinking` blocks, whole and streamed,
/// through the same chain (Gemini -> chat `reasoning_content` -> Messages).
#[test]
fn gemini_thoughts_reach_anthropic_clients_as_thinking_blocks() {
    use crate::anthropic::{chat_response_to_messages, ChatStreamToMessages};
    use crate::gemini::{gemini_response_to_chat, GeminiStreamToChat};
    use crate::stream::StreamConverter;

    let answer = br#"{"candidates":[{"content":{"role":"model","parts":[
        {"text":"221 = 13 x 17.","thought":true},{"text":"No: 221 = 13 x 17."}]},
        "finishReason":"STOP"}],
        "usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":8,"thoughtsTokenCount":30}}"#;
    let chat = gemini_response_to_chat(answer, "gemini-2.5-flash", "id1", 1).unwrap();
    let messages = json_of(&chat_response_to_messages(&chat).unwrap());
    assert_eq!(messages["content"][0]["type"], "thinking");
    assert_eq!(messages["content"][0]["thinking"], "221 = 13 x 17.");
    assert_eq!(messages["content"][1]["type"], "text");

    let mut gemini = GeminiStreamToChat::new("gemini-2.5-flash", "id1", 1, true);
    let mut anthropic = ChatStreamToMessages::new();
    let sse = concat!(
        "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"13 x 17\",\"thought\":true}]}}]}\r\n\r\n",
        "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"No.\"}]},\"finishReason\":\"STOP\"}],",
        "\"usageMetadata\":{\"promptTokenCount\":9,\"candidatesTokenCount\":2,\"thoughtsTokenCount\":5}}\r\n\r\n",
    );
    let mut out = anthropic.push(&gemini.push(sse.as_bytes()));
    let tail = gemini.finish();
    out.extend(anthropic.push(&tail));
    out.extend(anthropic.finish());
    let text = String::from_utf8(out).unwrap();
    let thinking = text.find("\"thinking_delta\"").expect("no thinking_delta");
    let answer = text.find("\"text_delta\"").expect("no text_delta");
    assert!(thinking < answer, "{text}");
    assert!(text.contains("\"thinking\":\"13 x 17\""), "{text}");
}

/// What the official SDKs send back in history is accepted where it asks for nothing: a
/// direct `caller`, `allowed_callers: ["direct"]`, no image transformations, `null` members;
/// the same members asking for more are 400s naming their place.
#[test]
fn neutral_nested_values_pass() {
    let request = |caller: &str, callers: &str, transformations: &str| {
        format!(
            r#"{{"model":"m","max_tokens":100,"messages":[
            {{"role":"user","content":[{{"type":"image","source":{{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},"transformations":{transformations}}},{{"type":"text","text":"Hi.","citations":null}}]}},
            {{"role":"assistant","content":[{{"type":"tool_use","id":"toolu_1","name":"f","input":{{}},"caller":{caller},"toolset_name":null}}]}},
            {{"role":"user","content":[{{"type":"tool_result","tool_use_id":"toolu_1","content":"42"}}]}}],
            "tools":[{{"name":"f","input_schema":{{"type":"object"}},"allowed_callers":{callers}}}]}}"#
        )
    };
    let neutral = request(r#"{"type":"direct"}"#, r#"["direct"]"#, "{}");
    for target in [
        ChatTarget::OpenAiCompatible,
        ChatTarget::Gemini,
        ChatTarget::Bedrock,
    ] {
        messages_request_to_chat_for(neutral.as_bytes(), target)
            .unwrap_or_else(|e| panic!("{target:?}: {e:?}"));
    }
    for (body, at) in [
        (
            request(
                r#"{"type":"code_execution_20250825","tool_id":"s"}"#,
                "null",
                "null",
            ),
            "messages[1].content[0].caller",
        ),
        (
            request("null", r#"["direct","code_execution_20250825"]"#, "null"),
            "tools[0].allowed_callers",
        ),
        (
            request("null", "null", r#"{"resize":"max"}"#),
            "messages[0].content[0].transformations",
        ),
    ] {
        let e = messages_request_to_chat_for(body.as_bytes(), ChatTarget::OpenAiCompatible)
            .unwrap_err();
        assert_eq!(e.status(), 400, "{e:?}");
        assert!(e.message.contains(at), "{at}: {}", e.message);
    }
}
