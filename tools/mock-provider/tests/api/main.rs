//! Black-box tests of the mock over real TCP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod anthropic;
mod bedrock;
mod client;
mod faults;
mod gemini;
mod openai;
mod vertex;

use mock_provider::MockServer;

/// A server on a free loopback port.
pub fn server() -> MockServer {
    MockServer::start("127.0.0.1:0".parse().unwrap()).expect("start mock")
}

/// An event or body with the per-response fields (`id`, `created`, `responseId`, ids of tool
/// calls) blanked, so two responses to the same request compare equal.
pub fn normalized(mut v: serde_json::Value) -> serde_json::Value {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                for key in ["id", "created", "responseId"] {
                    if map.contains_key(key) {
                        map.insert(key.into(), serde_json::Value::Null);
                    }
                }
                map.values_mut().for_each(walk);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}
