//! Request dispatch: admin, health and metrics endpoints, then the vendor APIs by path.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::Value;

use crate::body::MockBody;
use crate::reply::{self, PROMETHEUS, TEXT};
use crate::script::Script;
use crate::state::Shared;
use crate::{admin, anthropic, bedrock, gemini, openai, sigv4, vertex};

/// Largest request body the mock reads.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// What a vendor handler needs besides the request body.
pub(crate) struct Ctx<'a> {
    pub script: &'a Script,
    /// Number used in response ids (`chatcmpl-mock00000042`).
    pub id: u64,
    /// Unix seconds, for OpenAI's `created`.
    pub created: u64,
}

/// The vendor API a path belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api<'p> {
    Chat,
    Completions,
    Embeddings,
    Models,
    Messages,
    Responses,
    Gemini(&'p str, gemini::Method),
    /// Bedrock Converse: the model id as sent (percent-encoded), and whether streaming.
    Bedrock(&'p str, bool),
    /// Claude on Vertex AI: model, and whether streaming.
    VertexClaude(&'p str, bool),
}

/// Whose error shape a response uses.
#[derive(Clone, Copy)]
enum Vendor {
    OpenAi,
    Anthropic,
    Gemini,
    Bedrock,
}

impl Api<'_> {
    fn vendor(self) -> Vendor {
        match self {
            Api::Messages | Api::VertexClaude(..) => Vendor::Anthropic,
            Api::Gemini(..) => Vendor::Gemini,
            Api::Bedrock(..) => Vendor::Bedrock,
            _ => Vendor::OpenAi,
        }
    }
}

/// The API at `path`, if any. Any prefix is allowed (Azure deployments, DashScope's
/// `/compatible-mode/v1`, Vertex AI project paths).
fn api_of(path: &str) -> Option<Api<'_>> {
    if let Some(rest) = path.strip_prefix("/model/") {
        let (id, method) = rest.rsplit_once('/')?;
        return match method {
            "converse" => Some(Api::Bedrock(id, false)),
            "converse-stream" => Some(Api::Bedrock(id, true)),
            _ => None,
        };
    }
    if let Some((model, stream)) = vertex::parse_claude_path(path) {
        return Some(Api::VertexClaude(model, stream));
    }
    if let Some((model, method)) = gemini::parse_path(path) {
        return Some(Api::Gemini(model, method));
    }
    let path = path.strip_suffix('/').unwrap_or(path);
    Some(if path.ends_with("/chat/completions") {
        Api::Chat
    } else if path.ends_with("/completions") {
        Api::Completions
    } else if path.ends_with("/embeddings") {
        Api::Embeddings
    } else if path.ends_with("/messages") {
        Api::Messages
    } else if path.ends_with("/responses") {
        Api::Responses
    } else if path.ends_with("/models") {
        Api::Models
    } else {
        return None;
    })
}

/// Answer one request.
pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<MockBody> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    match (&parts.method, path) {
        (&Method::GET | &Method::HEAD, "/health") => return reply::plain(200, TEXT, "ok\n"),
        (&Method::GET, "/metrics") => return reply::plain(200, PROMETHEUS, shared.render_gauges()),
        _ => {}
    }
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(message) => return openai::error(400, &message, &[]),
    };
    if let Some(command) = path.strip_prefix("/__mock/") {
        return admin::handle(&shared, &parts.method, command, &body);
    }
    shared.record(&parts, &body);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if parts.method == Method::POST && path == "/token" {
        let answer = shared.with_clouds(|c| c.vertex.as_mut().map(|v| v.token(&body, now)));
        return answer.unwrap_or_else(|| {
            openai::error(
                404,
                "mock-provider: no Vertex AI token issuer configured",
                &[],
            )
        });
    }
    if let Some(refusal) = check_cloud_auth(&shared, &parts, &body, now) {
        return refusal;
    }
    let Some(api) = api_of(path) else {
        return openai::error(404, &format!("mock-provider: no API at {path}"), &[]);
    };
    let expected = if api == Api::Models {
        Method::GET
    } else {
        Method::POST
    };
    if parts.method != expected {
        let message = format!("mock-provider: use {expected} for {path}");
        return vendor_error(api.vendor(), 405, &message, &[]);
    }
    let query = parts.uri.query();
    let script = shared.select_script(&parts.headers, query);
    if script.ttfb_ms > 0 {
        tokio::time::sleep(Duration::from_millis(script.ttfb_ms)).await;
    }
    let ctx = Ctx {
        script: &script,
        id: shared.next_id(),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    // Anthropic's model list has its own shape; its clients send `anthropic-version`.
    if api == Api::Models
        && parts.headers.contains_key("anthropic-version")
        && script.status.is_none_or(|s| s < 400)
        && script.raw_body.is_none()
    {
        return anthropic::models(&ctx);
    }
    respond(&ctx, api, query, &body)
}

/// SigV4 on Bedrock paths and bearer tokens on Vertex paths, when configured.
fn check_cloud_auth(
    shared: &Shared,
    parts: &hyper::http::request::Parts,
    body: &[u8],
    now: u64,
) -> Option<Response<MockBody>> {
    let path = parts.uri.path();
    shared.with_clouds(|clouds| {
        let bearer = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let checked = !clouds.aws.is_empty() || !clouds.bedrock_api_keys.is_empty();
        if path.starts_with("/model/") && checked {
            if let Some(key) = bearer {
                if clouds.bedrock_api_keys.iter().any(|k| k == key.trim()) {
                    return None;
                }
                return Some(bedrock::exception_reply(
                    403,
                    "UnrecognizedClientException",
                    "Invalid API Key format: Must start with pre-defined prefix",
                    &[],
                ));
            }
        }
        if path.starts_with("/model/") && checked {
            let secret_for = |id: &str| {
                clouds
                    .aws
                    .iter()
                    .find(|(k, _)| k == id)
                    .map(|(_, s)| s.clone())
            };
            let query = parts.uri.query().unwrap_or("");
            let method = parts.method.as_str();
            if let Err(r) =
                sigv4::verify(method, path, query, &parts.headers, body, secret_for, now)
            {
                return Some(bedrock::exception_reply(
                    r.status,
                    r.exception,
                    &r.message,
                    &[],
                ));
            }
        }
        if path.starts_with("/v1/projects/") {
            if let Some(issuer) = &clouds.vertex {
                return issuer.check_bearer(&parts.headers, now);
            }
        }
        None
    })
}

async fn read_body(body: Incoming) -> Result<Bytes, String> {
    Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| format!("mock-provider: cannot read the request body: {e}"))
}

/// The scripted fault, or the vendor's answer.
fn respond(ctx: &Ctx<'_>, api: Api<'_>, query: Option<&str>, body: &[u8]) -> Response<MockBody> {
    let script = ctx.script;
    let vendor = api.vendor();
    if let Some(raw) = &script.raw_body {
        return reply::raw(script, raw);
    }
    if let Some(status) = script.status.filter(|s| *s >= 400) {
        let message = script
            .error_message
            .clone()
            .unwrap_or_else(|| format!("mock error {status}"));
        return vendor_error(vendor, status, &message, &script.headers);
    }
    if api == Api::Models {
        return openai::models(ctx);
    }
    let json = match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            let message = "the request body must be a JSON object";
            return vendor_error(vendor, 400, message, &script.headers);
        }
        Err(e) => {
            let message = format!("invalid JSON in the request body: {e}");
            return vendor_error(vendor, 400, &message, &script.headers);
        }
    };
    match api {
        Api::Chat => openai::chat(ctx, &json),
        Api::Completions => openai::completions(ctx, &json),
        Api::Embeddings => openai::embeddings(ctx, &json),
        Api::Models => openai::models(ctx),
        Api::Messages => anthropic::messages(ctx, &json),
        Api::Responses => openai::responses(ctx, &json),
        Api::Gemini(model, method) => gemini::handle(ctx, model, method, query, &json),
        Api::Bedrock(id, stream) => match bedrock::parse_path(&format!("/model/{id}/converse")) {
            Some((model, _)) => bedrock::handle(ctx, &model, stream, &json),
            None => vendor_error(vendor, 404, "mock-provider: bad model id", &script.headers),
        },
        Api::VertexClaude(model, stream) => vertex::claude(ctx, model, stream, &json),
    }
}

fn vendor_error(
    vendor: Vendor,
    status: u16,
    message: &str,
    extra: &[(String, String)],
) -> Response<MockBody> {
    match vendor {
        Vendor::OpenAi => openai::error(status, message, extra),
        Vendor::Anthropic => anthropic::error(status, message, extra),
        Vendor::Gemini => gemini::error(status, message, extra),
        Vendor::Bedrock => bedrock::error(status, message, extra),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(api_of("/v1/chat/completions"), Some(Api::Chat));
        assert_eq!(api_of("/chat/completions"), Some(Api::Chat));
        assert_eq!(
            api_of("/openai/deployments/gpt/chat/completions"),
            Some(Api::Chat)
        );
        assert_eq!(
            api_of("/compatible-mode/v1/chat/completions"),
            Some(Api::Chat)
        );
        assert_eq!(api_of("/v1/completions"), Some(Api::Completions));
        assert_eq!(api_of("/v1/embeddings"), Some(Api::Embeddings));
        assert_eq!(api_of("/v1/models"), Some(Api::Models));
        assert_eq!(api_of("/v1/messages"), Some(Api::Messages));
        assert_eq!(api_of("/v1/responses"), Some(Api::Responses));
        assert_eq!(
            api_of("/v1beta/models/gemini-2.0-flash:generateContent"),
            Some(Api::Gemini("gemini-2.0-flash", gemini::Method::Generate))
        );
        assert_eq!(
            api_of("/model/anthropic.claude-v2%3A1/converse-stream"),
            Some(Api::Bedrock("anthropic.claude-v2%3A1", true))
        );
        assert_eq!(api_of("/model/x/invoke"), None);
        assert_eq!(
            api_of("/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-x@1:rawPredict"),
            Some(Api::VertexClaude("claude-x@1", false))
        );
        assert_eq!(api_of("/nope"), None);
    }
}
