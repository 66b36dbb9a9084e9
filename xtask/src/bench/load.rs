//! Load generation: `wrk` with a Lua script per scenario, Envoy's CPU measured around each run.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::measure::cpu_us;
use super::scenarios::Scenario;
use crate::Result;

/// `wrk`'s Lua script: POST the body with keep-alive, print the summary as one JSON line.
pub(super) fn wrk_script(dir: &Path, key: &str, body: &str) -> Result<PathBuf> {
    let path = dir.join(format!("{key}.lua"));
    let script = format!(
        r#"wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer client-secret"
wrk.body = [==[{body}]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {{"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,"p50_us":%.0f,"p99_us":%.0f,"mean_us":%.1f,"non2xx":%.0f,"socket_errors":%.0f}}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
    latency.mean, e.status, e.connect + e.read + e.write + e.timeout))
end
"#
    );
    std::fs::write(&path, script).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// One `wrk` run; returns its summary plus Envoy's CPU during the run.
pub(super) fn wrk(
    sc: &Scenario,
    script: &Path,
    connections: u32,
    seconds: u64,
    cpu: Option<u32>,
    ticks: f64,
) -> Result<Value> {
    let url = format!("http://{}/v1/chat/completions", sc.envoy.listen);
    let mut cmd = match cpu {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", &c.to_string(), "wrk"]);
            cmd
        }
        None => Command::new("wrk"),
    };
    cmd.args([
        "-t1",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--timeout",
        "10s",
        "-s",
    ])
    .arg(script)
    .arg(&url);
    let pid = sc.envoy.pid();
    let before = cpu_us(pid, ticks)?;
    let out = cmd.output().map_err(|e| format!("wrk: {e}"))?;
    let after = cpu_us(pid, ticks)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut v = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH "))
        .and_then(|j| serde_json::from_str::<Value>(j).ok())
        .ok_or_else(|| {
            format!(
                "{}: wrk gave no summary: {stdout}{}",
                sc.key,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let n = v["requests"].as_f64().unwrap_or(0.0);
    let non2xx = v["non2xx"].as_f64().unwrap_or(0.0);
    let errors = v["socket_errors"].as_f64().unwrap_or(0.0);
    if n == 0.0 || non2xx > 0.0 || errors > 0.0 {
        return Err(format!(
            "{}: {n} requests, {non2xx} non-2xx, {errors} socket errors: refusing to report \
             a broken run (Envoy log: {})",
            sc.key,
            sc.envoy.log_path.display()
        ));
    }
    let secs = v["duration_us"].as_f64().unwrap_or(1.0) / 1e6;
    v["rps"] = json!(n / secs);
    v["envoy_cpu_us"] = json!(after - before);
    v["cpu_us_per_req"] = json!((after - before) / n);
    v["connections"] = json!(connections);
    Ok(v)
}
