//! The `context` option: a text file fetched once per plugin instance and inserted as a system
//! message. Where to fetch it, how to judge the answer, and the cache of fetched files.

use crate::proxy::ContextConfig;
use crate::vendor::split_url;
use std::collections::HashMap;
use std::sync::Arc;
use switchyard_protocol::{ErrorKind, GatewayError};

/// Largest context file accepted.
const MAX_CONTEXT_BYTES: usize = 1024 * 1024;

/// Fetched files by URL, kept for the life of the plugin instance (cleared on reconfigure).
#[derive(Default)]
pub struct ContextCache {
    files: HashMap<String, Arc<str>>,
}

impl ContextCache {
    pub fn get(&self, url: &str) -> Option<Arc<str>> {
        self.files.get(url).cloned()
    }
    pub fn put(&mut self, url: &str, text: Arc<str>) {
        self.files.insert(url.to_string(), text);
    }
    pub fn clear(&mut self) {
        self.files.clear();
    }
}

/// `(authority, path)` of the fetch.
pub fn request_target(ctx: &ContextConfig) -> Result<(String, String), GatewayError> {
    let (host, path) =
        split_url(&ctx.file_url).ok_or_else(|| fetch_error(&ctx.file_url, "not a URL"))?;
    let authority = ctx.service_host.clone().unwrap_or(host);
    let path = if path.is_empty() {
        "/".to_string()
    } else {
        path
    };
    Ok((authority, path))
}

/// The Envoy cluster to call: Higress names clusters `outbound|PORT||FQDN`; on plain Envoy
/// `serviceName` is the cluster name itself.
pub fn cluster_name(ctx: &ContextConfig) -> String {
    if ctx.service_name.contains('|') || ctx.service_port == 0 || !ctx.service_name.contains('.') {
        ctx.service_name.clone()
    } else {
        format!("outbound|{}||{}", ctx.service_port, ctx.service_name)
    }
}

/// Accept a fetch result: 2xx with UTF-8 text of reasonable size.
pub fn accept(status: u16, body: Vec<u8>) -> Result<String, String> {
    if !(200..300).contains(&status) {
        return Err(format!("status {status}"));
    }
    if body.len() > MAX_CONTEXT_BYTES {
        return Err("file too large".into());
    }
    String::from_utf8(body).map_err(|_| "file is not UTF-8 text".into())
}

pub fn fetch_error(url: &str, detail: &str) -> GatewayError {
    GatewayError::new(
        ErrorKind::Internal,
        "context_unavailable",
        format!("the context file {url} could not be fetched ({detail})"),
    )
}
