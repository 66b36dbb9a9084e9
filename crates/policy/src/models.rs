//! `GET /v1/models`, answered by the gateway from its config in OpenAI's list shape:
//! `{"object":"list","data":[{"id","object":"model","created","owned_by"}]}`.
//!
//! A gateway's model list is what it routes, not what whichever upstream the route happens to
//! pick would list; so the balancer lists its aliases and providers' models, and ai-proxy its
//! providers' configured models (see [`crate::proxy::ProxyConfig::listed_models`]).

use serde_json::{json, Value};

/// `owned_by` of models that belong to no one provider (the balancer's aliases).
pub const GATEWAY_OWNER: &str = "switchyard";

/// One entry of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedModel<'a> {
    pub id: &'a str,
    pub owned_by: &'a str,
}

/// Add `id` unless it is empty or already listed (the first owner wins).
pub fn push_unique<'a>(out: &mut Vec<ListedModel<'a>>, id: &'a str, owned_by: &'a str) {
    if !id.is_empty() && !out.iter().any(|m| m.id == id) {
        out.push(ListedModel { id, owned_by });
    }
}

/// The list body. `created` is 0: the config carries no dates, and a fixed value keeps the
/// answer identical across gateway replicas.
pub fn list_body(models: &[ListedModel<'_>]) -> Vec<u8> {
    let data: Vec<Value> = models
        .iter()
        .map(|m| json!({"id": m.id, "object": "model", "created": 0, "owned_by": m.owned_by}))
        .collect();
    json!({"object": "list", "data": data})
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_shape_and_dedup() {
        let mut out = Vec::new();
        push_unique(&mut out, "auto", GATEWAY_OWNER);
        push_unique(&mut out, "gpt-4o", "openai");
        push_unique(&mut out, "gpt-4o", "azure");
        push_unique(&mut out, "", "x");
        let v: Value = serde_json::from_slice(&list_body(&out)).unwrap_or_default();
        assert_eq!(
            v,
            json!({"object": "list", "data": [
                {"id": "auto", "object": "model", "created": 0, "owned_by": "switchyard"},
                {"id": "gpt-4o", "object": "model", "created": 0, "owned_by": "openai"},
            ]})
        );
    }
}
