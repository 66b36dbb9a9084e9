//! Bedrock's request signing in the request's life: SigV4 needs the final body, so it is done
//! in the body phase, on hosts that hold the request headers until then (the native module).
//! Elsewhere a SigV4 provider is refused with a clear error (API keys work everywhere).

use crate::host::HttpHost;
use switchyard_policy::bedrock::{self, SignTarget};
use switchyard_policy::proxy::Provider;
use switchyard_protocol::GatewayError;

/// Whether this host can serve `provider`: a SigV4 provider needs headers held for the body.
pub(super) fn check_runtime(host: &impl HttpHost, provider: &Provider) -> Result<(), GatewayError> {
    if bedrock::signs(provider) && !host.holds_headers_for_body() {
        log::warn!(
            "ai-proxy: provider `{}` (type bedrock) uses awsAccessKey/awsSecretKey (SigV4), \
             which the Proxy-Wasm plugin cannot sign; use a Bedrock API key in apiTokens or \
             the native module",
            provider.id()
        );
        return Err(bedrock::sigv4_needs_native());
    }
    Ok(())
}

/// Sign the upstream request whose final body is `body`, if `provider` signs. The headers
/// (`:method`, `:path`, `:authority`, `content-type`) are read back as they will be sent.
pub(super) fn sign(host: &mut impl HttpHost, provider: &Provider, body: &[u8]) {
    if !bedrock::signs(provider) {
        return;
    }
    let method = host
        .request_header(":method")
        .unwrap_or_else(|| "POST".into());
    let path = host.request_header(":path").unwrap_or_default();
    let authority = host
        .request_header(":authority")
        .unwrap_or_else(|| provider.endpoint.host.clone());
    let content_type = host.request_header("content-type");
    let target = SignTarget {
        method: &method,
        host: &authority,
        path: &path,
        content_type: content_type.as_deref(),
        body,
    };
    let Some(headers) = bedrock::sigv4_headers(provider, &target, host.now_ms() / 1000) else {
        return;
    };
    for (name, value) in &headers {
        host.set_request_header(name, Some(value));
    }
}
