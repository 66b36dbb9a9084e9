//! `/__mock/*`: control the mock over HTTP (for users outside Rust).

use hyper::{Method, Response};
use serde_json::{json, Value};

use crate::body::MockBody;
use crate::record::RecordedRequestJson;
use crate::reply;
use crate::script::Script;
use crate::sse::to_json;
use crate::state::Shared;

/// Handle `/__mock/{command}`.
pub(crate) fn handle(
    shared: &Shared,
    method: &Method,
    command: &str,
    body: &[u8],
) -> Response<MockBody> {
    match (method, command) {
        (&Method::POST, "script") => match parse_script(body) {
            Ok(s) => {
                shared.push_script(s);
                ok()
            }
            Err(e) => bad_request(&e),
        },
        (&Method::POST | &Method::PUT, "default") => match parse_script(body) {
            Ok(s) => {
                shared.set_default_script(s);
                ok()
            }
            Err(e) => bad_request(&e),
        },
        (&Method::POST | &Method::PUT, "metrics") => match parse_gauges(body) {
            Ok(gauges) => {
                for (name, value) in gauges {
                    shared.set_gauge(&name, value);
                }
                ok()
            }
            Err(e) => bad_request(&e),
        },
        (&Method::GET, "requests") => {
            let out = shared.with_requests(|list| {
                let view: Vec<RecordedRequestJson<'_>> = list.iter().map(Into::into).collect();
                to_json(&view)
            });
            reply::json(200, &[], out)
        }
        (&Method::DELETE, "requests") => {
            shared.clear_requests();
            ok()
        }
        (&Method::POST | &Method::PUT, "aws") => {
            let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let field = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
            match (field("access_key_id"), field("secret_access_key")) {
                (Some(id), Some(secret)) => {
                    shared.with_clouds(|c| {
                        c.aws.retain(|(k, _)| k != id);
                        c.aws.push((id.to_owned(), secret.to_owned()));
                    });
                    ok()
                }
                _ => bad_request("expected {\"access_key_id\", \"secret_access_key\"}"),
            }
        }
        (&Method::POST | &Method::PUT, "vertex") => {
            let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let Some(pem) = v.get("public_key_pem").and_then(Value::as_str) else {
                return bad_request("expected {\"public_key_pem\", \"token_lifetime_secs\"?}");
            };
            let lifetime = v
                .get("token_lifetime_secs")
                .and_then(Value::as_u64)
                .unwrap_or(3600);
            match crate::vertex::Issuer::new(pem, lifetime) {
                Ok(issuer) => {
                    shared.with_clouds(|c| c.vertex = Some(issuer));
                    ok()
                }
                Err(e) => bad_request(&e),
            }
        }
        (&Method::POST, "vertex/expire") => {
            shared.with_clouds(|c| c.vertex.iter_mut().for_each(|v| v.expire_all()));
            ok()
        }
        (&Method::POST, "reset") => {
            shared.reset();
            ok()
        }
        (
            _,
            "script" | "default" | "metrics" | "requests" | "reset" | "aws" | "vertex"
            | "vertex/expire",
        ) => admin_error(
            405,
            &format!("method {method} not allowed on /__mock/{command}"),
        ),
        _ => admin_error(404, &format!("no admin endpoint /__mock/{command}")),
    }
}

/// A script from JSON; an empty body is `Script::default()`.
fn parse_script(body: &[u8]) -> Result<Script, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Script::default());
    }
    serde_json::from_slice(body).map_err(|e| format!("invalid script: {e}"))
}

/// `{"name": number, ...}`, checked whole before anything is set.
fn parse_gauges(body: &[u8]) -> Result<Vec<(String, f64)>, String> {
    let map: serde_json::Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| format!("expected a JSON object: {e}"))?;
    map.into_iter()
        .map(|(name, value)| match value.as_f64() {
            Some(v) => Ok((name, v)),
            None => Err(format!("metric {name}: {value} is not a number")),
        })
        .collect()
}

fn ok() -> Response<MockBody> {
    reply::json(200, &[], to_json(&json!({"ok": true})))
}

fn bad_request(message: &str) -> Response<MockBody> {
    admin_error(400, message)
}

fn admin_error(status: u16, message: &str) -> Response<MockBody> {
    reply::json(status, &[], to_json(&json!({"error": message})))
}
