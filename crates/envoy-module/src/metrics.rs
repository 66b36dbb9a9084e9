//! Labelled metrics. Envoy's ABI defines a metric family (name + label names) on the filter
//! config, at config time, and then takes the label *values* in definition order per update.
//! Filter code only knows `metric{label=value,...}`; [`Metrics`] keeps the definitions by name
//! and puts the values in the order Envoy expects, so callers pass labels in any order.
//!
//! Envoy exports these metrics under the module's `metrics_namespace` (default
//! `dynamicmodulescustom`), which its Prometheus output strips, so `gen_ai_client_requests`
//! with label `gen_ai_provider_name` scrapes as `gen_ai_client_requests{gen_ai_provider_name="x"}`
//! (the same line the Wasm build produces).

use crate::abi;
use std::collections::HashMap;

/// Kind of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// One defined metric family.
#[derive(Clone, Debug)]
pub(crate) struct MetricDef {
    pub kind: MetricKind,
    /// Envoy's opaque id for the family.
    pub id: usize,
    pub label_names: Vec<String>,
}

/// The metric families of one filter config, by name.
#[derive(Default, Debug)]
pub(crate) struct Metrics {
    defs: HashMap<String, MetricDef>,
}

impl Metrics {
    pub(crate) fn insert(&mut self, name: &str, def: MetricDef) {
        self.defs.insert(name.to_string(), def);
    }

    pub(crate) fn get(&self, name: &str, kind: MetricKind) -> Option<&MetricDef> {
        self.defs.get(name).filter(|d| d.kind == kind)
    }

    /// Update family `name` through `call(id, label_values, count)`, with the label values in
    /// definition order. `false` when the family or a label is unknown, or Envoy refused.
    pub(crate) fn update(
        &self,
        name: &str,
        kind: MetricKind,
        labels: &[(&str, &str)],
        call: impl FnOnce(usize, *mut abi::ModuleBuffer, usize) -> abi::MetricsResult,
    ) -> bool {
        let Some(def) = self.get(name, kind) else {
            crate::log::debug(&format!("metric {name} is not defined as a {kind:?}"));
            return false;
        };
        let Some(values) = ordered_values(&def.label_names, labels) else {
            crate::log::debug(&format!("metric {name}: unknown label in {labels:?}"));
            return false;
        };
        let mut bufs: Vec<abi::ModuleBuffer> = values
            .iter()
            .map(|v| abi::ModuleBuffer::of(v.as_bytes()))
            .collect();
        call(def.id, bufs.as_mut_ptr(), bufs.len()) == abi::METRICS_SUCCESS
    }
}

/// The label values of `labels` in the order of `names`. A name missing from `labels` gets an
/// empty value; a label not in `names` makes the update invalid (`None`), so a typo is not
/// silently merged into another series.
pub(crate) fn ordered_values<'a>(
    names: &[String],
    labels: &[(&str, &'a str)],
) -> Option<Vec<&'a str>> {
    if labels
        .iter()
        .any(|(k, _)| !names.iter().any(|n| n.as_str() == *k))
    {
        return None;
    }
    Some(
        names
            .iter()
            .map(|n| {
                labels
                    .iter()
                    .find(|(k, _)| *k == n.as_str())
                    .map_or("", |(_, v)| *v)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_definition_order() {
        let names = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        assert_eq!(
            ordered_values(&names, &[("c", "3"), ("a", "1")]),
            Some(vec!["1", "", "3"])
        );
        assert_eq!(ordered_values(&names, &[("x", "1")]), None);
        assert_eq!(ordered_values(&[], &[]), Some(vec![]));
    }
}
