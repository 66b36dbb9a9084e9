//! The targets of issue #10 checked against a report, and the balancer's herding simulation.

use serde_json::{json, Value};

pub(super) fn targets(report: &Value) -> Value {
    let row = |key: &str, field: &str| {
        report["e2e"]["scenarios"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["key"] == key))
            .and_then(|r| r[field].as_f64())
    };
    let micro = |group: &str, name: &str| {
        report["micro"].as_array().and_then(|rows| {
            rows.iter()
                .find(|r| r["group"] == group && r["name"] == name)
                .and_then(|r| r["us_per_unit"].as_f64())
        })
    };
    let wasm = |file: &str| {
        report["e2e"]["wasm"].as_array().and_then(|w| {
            w.iter()
                .find(|x| x["file"] == file)
                .and_then(|x| x["bytes"].as_f64())
                .map(|b| b / 1024.0 / 1024.0)
        })
    };
    let idle = |key: &str, field: &str| {
        report["e2e"]["idle_memory"]["rows"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["key"] == key))
            .and_then(|r| r[field].as_f64())
    };
    // Issue 17's memory targets: at rest, over S0.
    let idle_over_s0 = |field: &str| Some(idle("S4n", field)? - idle("S0", field)?);
    // (what, measured, limit, higher is better, unit)
    let list: Vec<(&str, Option<f64>, f64, bool, &str)> = vec![
        // Issue 17: the native module against Envoy with no filter (S0).
        ("S1n throughput / S0", row("S1n", "vs_s0"), 0.90, true, "x"),
        ("S2n throughput / S0", row("S2n", "vs_s0"), 0.85, true, "x"),
        ("S4n throughput / S0", row("S4n", "vs_s0"), 0.80, true, "x"),
        (
            "S1n Envoy CPU added over S0",
            row("S1n", "cpu_added_s0_us"),
            10.0,
            false,
            "us/req",
        ),
        (
            "S2n Envoy CPU added over S0",
            row("S2n", "cpu_added_s0_us"),
            15.0,
            false,
            "us/req",
        ),
        (
            "S4n Envoy CPU added over S0",
            row("S4n", "cpu_added_s0_us"),
            20.0,
            false,
            "us/req",
        ),
        (
            "S3n Envoy CPU added over S0 per stream event",
            report["e2e"]["stream"]["native_cpu_added_us_per_event"].as_f64(),
            1.0,
            false,
            "us/event",
        ),
        (
            "RSS with both filters, native (S4n) minus S0",
            row("S4n", "rss_added_s0_mib"),
            6.0,
            false,
            "MiB",
        ),
        (
            "RSS at rest with both filters, native (S4n) minus S0, 1 worker",
            idle_over_s0("rss_mib_1_worker"),
            6.0,
            false,
            "MiB",
        ),
        (
            "RSS per further worker, native (S4n) minus S0",
            idle_over_s0("per_extra_worker_mib"),
            1.0,
            false,
            "MiB",
        ),
        ("S1 throughput / S0w", row("S1", "vs_s0w"), 0.90, true, "x"),
        ("S2 throughput / S0w", row("S2", "vs_s0w"), 0.75, true, "x"),
        ("S4 throughput / S0w", row("S4", "vs_s0w"), 0.75, true, "x"),
        (
            "S1 Envoy CPU added over S0w",
            row("S1", "cpu_added_us"),
            15.0,
            false,
            "us/req",
        ),
        (
            "S2 Envoy CPU added over S0w",
            row("S2", "cpu_added_us"),
            40.0,
            false,
            "us/req",
        ),
        (
            "Claude stream translation (native)",
            micro("stream_event", "claude_to_openai"),
            3.0,
            false,
            "us/event",
        ),
        (
            "Gemini stream translation (native)",
            micro("stream_event", "gemini_to_openai"),
            3.0,
            false,
            "us/event",
        ),
        (
            "RSS with both plugins (S4) minus S0w",
            row("S4", "rss_added_mib"),
            8.0,
            false,
            "MiB",
        ),
        (
            "ai_proxy.wasm size",
            wasm("ai_proxy.wasm"),
            1.5,
            false,
            "MiB",
        ),
        (
            "ai_load_balancer.wasm size",
            wasm("ai_load_balancer.wasm"),
            1.5,
            false,
            "MiB",
        ),
        (
            "ai_load_balancer_higress.wasm size",
            wasm("ai_load_balancer_higress.wasm"),
            1.5,
            false,
            "MiB",
        ),
    ];
    Value::Array(
        list.into_iter()
            .filter_map(|(what, v, limit, higher, unit)| {
                let v = v.filter(|v| v.is_finite())?;
                let met = if higher { v >= limit } else { v <= limit };
                Some(json!({
                    "target": what,
                    "measured": v,
                    "limit": limit,
                    "higher_is_better": higher,
                    "unit": unit,
                    "met": met,
                }))
            })
            .collect(),
    )
}

/// The balancer's herding simulation (`switchyard_policy::herding`): how unevenly each
/// strategy loads providers when metrics are stale (busiest provider / mean; 1.0 is even).
pub(super) fn herding() -> Value {
    use switchyard_policy::herding::{simulate, STANDARD};
    use switchyard_policy::select::Strategy;
    let s = STANDARD;
    let spread = |st| simulate(st, s).peak_to_mean;
    json!({
        "scenario": format!(
            "{} replicas, {} providers, metrics refreshed every {} ticks, requests last {}",
            s.replicas, s.providers, s.refresh_ticks, s.service_ticks
        ),
        "least": spread(Strategy::Least),
        "p2c": spread(Strategy::P2c),
        "weighted": spread(Strategy::Weighted),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_compare_in_the_right_direction() {
        let report = json!({
            "e2e": {
                "scenarios": [
                    {"key": "S1", "vs_s0w": 0.95, "cpu_added_us": 20.0},
                    {"key": "S2", "vs_s0w": 0.5, "cpu_added_us": 10.0},
                ],
                "wasm": [{"file": "ai_proxy.wasm", "bytes": 2_000_000}, {"file": "ai_load_balancer.wasm", "bytes": null}],
            },
            "micro": [{"group": "stream_event", "name": "claude_to_openai", "us_per_unit": 2.0}],
        });
        let t = targets(&report);
        let met = |name: &str| {
            t.as_array()
                .and_then(|a| a.iter().find(|x| x["target"] == name))
                .map(|x| x["met"].clone())
        };
        assert_eq!(met("S1 throughput / S0w"), Some(json!(true)));
        assert_eq!(met("S2 throughput / S0w"), Some(json!(false)));
        assert_eq!(met("S1 Envoy CPU added over S0w"), Some(json!(false)));
        assert_eq!(met("S2 Envoy CPU added over S0w"), Some(json!(true)));
        assert_eq!(met("Claude stream translation (native)"), Some(json!(true)));
        assert_eq!(met("ai_proxy.wasm size"), Some(json!(false)));
        // Missing measurements are left out, not counted as met.
        assert_eq!(met("ai_load_balancer.wasm size"), None);
        assert_eq!(met("S4 throughput / S0w"), None);
    }
}
