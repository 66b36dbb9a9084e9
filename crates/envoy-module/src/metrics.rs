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

/// Most labels a family may have (the filters' families have at most five).
pub(crate) const MAX_LABELS: usize = 8;

/// The metric families of one filter config, by name. A handful per config: a list scanned
/// by name is cheaper per update than hashing the name.
#[derive(Default, Debug)]
pub(crate) struct Metrics {
    defs: Vec<(String, MetricDef)>,
}

impl Metrics {
    pub(crate) fn insert(&mut self, name: &str, def: MetricDef) {
        match self.defs.iter_mut().find(|(n, _)| n == name) {
            Some((_, d)) => *d = def,
            None => self.defs.push((name.to_string(), def)),
        }
    }

    pub(crate) fn get(&self, name: &str, kind: MetricKind) -> Option<&MetricDef> {
        self.defs
            .iter()
            .find(|(n, d)| d.kind == kind && n == name)
            .map(|(_, d)| d)
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
        let n = def.label_names.len();
        let mut bufs = [abi::ModuleBuffer::NULL; MAX_LABELS];
        let Some(slots) = bufs.get_mut(..n) else {
            crate::log::debug(&format!("metric {name} has more than {MAX_LABELS} labels"));
            return false;
        };
        if !fill_ordered(&def.label_names, labels, |i, v| {
            if let Some(slot) = slots.get_mut(i) {
                *slot = abi::ModuleBuffer::of(v.as_bytes());
            }
        }) {
            crate::log::debug(&format!("metric {name}: unknown label in {labels:?}"));
            return false;
        }
        call(def.id, slots.as_mut_ptr(), n) == abi::METRICS_SUCCESS
    }
}

/// Hand `put(i, value)` the value of label `names[i]` for every name (empty when `labels` has
/// none); `false` (nothing handed) when a label is not in `names`. Labels given in definition
/// order, the usual case, cost one comparison each.
fn fill_ordered<'a>(
    names: &[String],
    labels: &[(&str, &'a str)],
    mut put: impl FnMut(usize, &'a str),
) -> bool {
    let in_order =
        labels.len() == names.len() && labels.iter().zip(names).all(|((k, _), n)| n == k);
    if in_order {
        for (i, (_, v)) in labels.iter().enumerate() {
            put(i, v);
        }
        return true;
    }
    if labels.iter().any(|(k, _)| !names.iter().any(|n| n == k)) {
        return false;
    }
    for (i, n) in names.iter().enumerate() {
        put(
            i,
            labels.iter().find(|(k, _)| n == k).map_or("", |(_, v)| *v),
        );
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values `fill_ordered` hands over, in definition order; `None` when it refuses.
    fn ordered_values<'a>(names: &[String], labels: &[(&str, &'a str)]) -> Option<Vec<&'a str>> {
        let mut out = vec![""; names.len()];
        fill_ordered(names, labels, |i, v| out[i] = v).then_some(out)
    }

    #[test]
    fn values_follow_definition_order() {
        let names = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        assert_eq!(
            ordered_values(&names, &[("c", "3"), ("a", "1")]),
            Some(vec!["1", "", "3"])
        );
        assert_eq!(
            ordered_values(&names, &[("a", "1"), ("b", "2"), ("c", "3")]),
            Some(vec!["1", "2", "3"])
        );
        assert_eq!(ordered_values(&names, &[("x", "1")]), None);
        assert_eq!(
            ordered_values(&names, &[("a", "1"), ("b", "2"), ("x", "3")]),
            None
        );
        assert_eq!(ordered_values(&[], &[]), Some(vec![]));
    }

    #[test]
    fn families_are_found_by_name_and_kind() {
        let mut m = Metrics::default();
        let def = |id| MetricDef {
            kind: MetricKind::Counter,
            id,
            label_names: vec![],
        };
        m.insert("a", def(1));
        m.insert("b", def(2));
        m.insert("a", def(3));
        assert_eq!(m.get("a", MetricKind::Counter).map(|d| d.id), Some(3));
        assert_eq!(m.get("b", MetricKind::Counter).map(|d| d.id), Some(2));
        assert!(m.get("a", MetricKind::Histogram).is_none());
        assert!(m.get("c", MetricKind::Counter).is_none());
    }
}
