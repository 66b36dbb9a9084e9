//! Gauges served on `/metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;

/// Gauges by base name (the name before any `{labels}`), then by full series name.
#[derive(Default)]
pub(crate) struct Gauges {
    by_base: BTreeMap<String, BTreeMap<String, f64>>,
}

impl Gauges {
    /// Set series `name` (may carry labels, e.g. `vllm:num_requests_waiting{model_name="x"}`).
    pub(crate) fn set(&mut self, name: &str, value: f64) {
        let name = name.trim();
        let base = name.split('{').next().unwrap_or(name).trim();
        self.by_base
            .entry(base.to_owned())
            .or_default()
            .insert(name.to_owned(), value);
    }

    pub(crate) fn clear(&mut self) {
        self.by_base.clear();
    }

    /// Prometheus text exposition: `# TYPE base gauge` once per base name, then its series.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        for (base, series) in &self.by_base {
            let _ = writeln!(out, "# TYPE {base} gauge");
            for (name, value) in series {
                let _ = writeln!(out, "{name} {}", PromValue(*value));
            }
        }
        out
    }
}

struct PromValue(f64);

impl std::fmt::Display for PromValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            v if v.is_nan() => f.write_str("NaN"),
            v if v == f64::INFINITY => f.write_str("+Inf"),
            v if v == f64::NEG_INFINITY => f.write_str("-Inf"),
            v => write!(f, "{v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_line_once_per_base_name() {
        let mut g = Gauges::default();
        g.set("vllm:num_requests_waiting{model_name=\"b\"}", 2.0);
        g.set("vllm:num_requests_running", 3.0);
        g.set("vllm:num_requests_waiting{model_name=\"a\"}", 0.5);
        g.set("vllm:num_requests_waiting_total", 1.0);
        assert_eq!(
            g.render(),
            "# TYPE vllm:num_requests_running gauge\n\
             vllm:num_requests_running 3\n\
             # TYPE vllm:num_requests_waiting gauge\n\
             vllm:num_requests_waiting{model_name=\"a\"} 0.5\n\
             vllm:num_requests_waiting{model_name=\"b\"} 2\n\
             # TYPE vllm:num_requests_waiting_total gauge\n\
             vllm:num_requests_waiting_total 1\n"
        );
    }
}
