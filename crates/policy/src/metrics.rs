//! Load metrics for the balancer: what to fetch for a config (`fetch_plan`), pure parsers for
//! the replies (Prometheus text, flat JSON maps, Webdis `MGET`), and the timestamped entries
//! that workers share (one per metric, [`MetricEntry`]).
//!
//! Pure: the plugin does the I/O and passes the clock in.

use crate::balancer::{BalancerConfig, HttpFormat, MetricSource};
use serde_json::Value;

/// How to read one fetched reply.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyParser {
    /// Webdis `{"MGET":[...]}`: one value per cache key, in order.
    WebdisMget { keys: Vec<String> },
    /// Prometheus text: the sum of series of `metric`; with `label`, only series whose label
    /// value equals the provider key count for that provider.
    Prometheus {
        metric: String,
        label: Option<String>,
        /// (provider metric key, cache key)
        targets: Vec<(String, String)>,
    },
    /// A flat JSON object `{"<provider key>": number | "number"}`.
    JsonMap { targets: Vec<(String, String)> },
    /// RESP reply of `MGET` (Higress Redis host calls): one value per cache key, in order.
    RespMget { keys: Vec<String> },
}

impl ReplyParser {
    /// Values by cache key found in `body`; keys without a usable value are left out.
    pub fn parse(&self, body: &[u8]) -> Vec<(String, f64)> {
        match self {
            ReplyParser::WebdisMget { keys } => match parse_webdis_mget(body) {
                Some(vals) => zip_values(keys, vals),
                None => Vec::new(),
            },
            ReplyParser::RespMget { keys } => match crate::resp::decode_mget(body) {
                Some(vals) => zip_values(keys, vals),
                None => Vec::new(),
            },
            ReplyParser::Prometheus {
                metric,
                label,
                targets,
            } => {
                let text = String::from_utf8_lossy(body);
                targets
                    .iter()
                    .filter_map(|(key, cache)| {
                        let want = label.as_deref().map(|l| (l, key.as_str()));
                        parse_prometheus(&text, metric, want).map(|v| (cache.clone(), v))
                    })
                    .collect()
            }
            ReplyParser::JsonMap { targets } => targets
                .iter()
                .filter_map(|(key, cache)| parse_json_map(body, key).map(|v| (cache.clone(), v)))
                .collect(),
        }
    }
}

fn zip_values(keys: &[String], vals: Vec<Option<f64>>) -> Vec<(String, f64)> {
    keys.iter()
        .zip(vals)
        .filter_map(|(k, v)| v.map(|v| (k.clone(), v)))
        .collect()
}

/// One HTTP callout the refresh makes.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpFetch {
    pub cluster: String,
    pub path: String,
    pub timeout_ms: u64,
    pub parser: ReplyParser,
}

/// The cache key under which provider `key`'s metric is stored for `cfg`'s source. Configs
/// that read the same thing share entries.
pub fn cache_key(cfg: &BalancerConfig, provider: usize) -> Option<String> {
    let p = cfg.providers.get(provider)?;
    match cfg.source {
        MetricSource::Redis => Some(format!("redis|{}{}", cfg.redis_key_prefix, p.key)),
        MetricSource::Http => {
            let http = cfg.metrics.http.as_ref()?;
            let cluster = p.metrics_cluster.as_deref().or(http.cluster.as_deref())?;
            Some(format!(
                "http|{cluster}|{}|{}|{}",
                http.path,
                http.metric.as_deref().unwrap_or(""),
                p.key
            ))
        }
        MetricSource::Local => Some(format!("local|{}", p.name)),
        MetricSource::Static => None,
    }
}

/// The HTTP callouts that refresh `cfg`'s metrics (none for `static`/`local`, or for Redis
/// without a Webdis cluster, which only the Higress build can reach).
pub fn fetch_plan(cfg: &BalancerConfig) -> Vec<HttpFetch> {
    match cfg.source {
        MetricSource::Redis => {
            let Some(redis) = &cfg.redis else {
                return Vec::new();
            };
            let Some(cluster) = &redis.webdis_cluster else {
                return Vec::new();
            };
            let mut path = String::from("/MGET");
            let mut keys = Vec::new();
            for (i, p) in cfg.providers.iter().enumerate() {
                path.push('/');
                path.push_str(&percent_encode(&format!(
                    "{}{}",
                    cfg.redis_key_prefix, p.key
                )));
                keys.extend(cache_key(cfg, i));
            }
            vec![HttpFetch {
                cluster: cluster.clone(),
                path,
                timeout_ms: redis.timeout,
                parser: ReplyParser::WebdisMget { keys },
            }]
        }
        MetricSource::Http => {
            let Some(http) = &cfg.metrics.http else {
                return Vec::new();
            };
            // Group providers by the cluster polled for them, in config order.
            let mut groups: Vec<(String, Vec<(String, String)>)> = Vec::new();
            for (i, p) in cfg.providers.iter().enumerate() {
                let Some(cluster) = p.metrics_cluster.as_deref().or(http.cluster.as_deref()) else {
                    continue;
                };
                let Some(cache) = cache_key(cfg, i) else {
                    continue;
                };
                match groups.iter_mut().find(|(c, _)| c == cluster) {
                    Some((_, t)) => t.push((p.key.clone(), cache)),
                    None => groups.push((cluster.to_string(), vec![(p.key.clone(), cache)])),
                }
            }
            groups
                .into_iter()
                .map(|(cluster, targets)| HttpFetch {
                    cluster,
                    path: http.path.clone(),
                    timeout_ms: http.timeout_ms,
                    parser: match http.format {
                        HttpFormat::Prometheus => ReplyParser::Prometheus {
                            metric: http.metric.clone().unwrap_or_default(),
                            label: http.label.clone(),
                            targets,
                        },
                        HttpFormat::Json => ReplyParser::JsonMap { targets },
                    },
                })
                .collect()
        }
        MetricSource::Static | MetricSource::Local => Vec::new(),
    }
}

/// Percent-encode a Redis key for a Webdis path segment (`/` would split it).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parse Webdis's reply to `MGET`: `{"MGET":["10",null,"x"]}` -> `[Some(10), None, None]`.
pub fn parse_webdis_mget(body: &[u8]) -> Option<Vec<Option<f64>>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let arr = v.get("MGET")?.as_array()?;
    Some(arr.iter().map(number_of).collect())
}

fn number_of(v: &Value) -> Option<f64> {
    let x = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    x.is_finite().then_some(x)
}

/// A flat JSON object's numeric (or numeric-string) value at `key`.
pub fn parse_json_map(body: &[u8], key: &str) -> Option<f64> {
    let v: Value = serde_json::from_slice(body).ok()?;
    number_of(v.get(key)?)
}

/// Sum of the samples of `metric` in Prometheus text. With `label = Some((name, value))` only
/// series carrying `name="value"` count. `None` when no series matched.
pub fn parse_prometheus(text: &str, metric: &str, label: Option<(&str, &str)>) -> Option<f64> {
    let mut sum = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(metric) else {
            continue;
        };
        let (labels, value_part) = if let Some(r) = rest.strip_prefix('{') {
            let Some(end) = find_label_end(r) else {
                continue;
            };
            (r.get(..end).unwrap_or(""), r.get(end + 1..).unwrap_or(""))
        } else if rest.starts_with([' ', '\t']) {
            ("", rest)
        } else {
            continue; // a longer metric name with the same prefix
        };
        if let Some((name, want)) = label {
            if parse_labels(labels)
                .iter()
                .all(|(n, v)| !(n == name && v == want))
            {
                continue;
            }
        }
        let Some(value) = value_part.split_whitespace().next() else {
            continue;
        };
        let Some(x) = parse_prom_number(value) else {
            continue;
        };
        sum = Some(sum.unwrap_or(0.0) + x);
    }
    sum
}

fn parse_prom_number(s: &str) -> Option<f64> {
    let x = match s {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s.parse::<f64>().ok()?,
    };
    x.is_finite().then_some(x)
}

/// Index of the `}` closing a label set, skipping quoted values.
fn find_label_end(s: &str) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        let Some(eq) = rest.find('=') else {
            return out;
        };
        let name = rest.get(..eq).unwrap_or("").trim().to_string();
        let Some(after) = rest
            .get(eq + 1..)
            .and_then(|r| r.trim_start().strip_prefix('"'))
        else {
            return out;
        };
        let mut value = String::new();
        let mut escaped = false;
        let mut end = None;
        for (i, c) in after.char_indices() {
            if escaped {
                value.push(match c {
                    'n' => '\n',
                    other => other,
                });
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                end = Some(i);
                break;
            } else {
                value.push(c);
            }
        }
        let Some(end) = end else {
            return out;
        };
        out.push((name, value));
        rest = after.get(end + 1..).unwrap_or("");
    }
}

/// One cached measurement: the value and when its callout was sent. Kept per metric, so two
/// workers storing different providers' metrics never overwrite each other.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricEntry {
    pub value: f64,
    pub measured_ms: u64,
}

impl MetricEntry {
    /// Byte form for shared data: `value\tmeasured_ms`.
    pub fn encode(&self) -> Vec<u8> {
        format!("{}\t{}", self.value, self.measured_ms).into_bytes()
    }

    /// Decode [`MetricEntry::encode`]; `None` when malformed or not finite.
    pub fn decode(bytes: &[u8]) -> Option<MetricEntry> {
        let s = std::str::from_utf8(bytes).ok()?;
        let (v, t) = s.split_once('\t')?;
        let value = v.parse::<f64>().ok().filter(|v| v.is_finite())?;
        Some(MetricEntry {
            value,
            measured_ms: t.parse().ok()?,
        })
    }

    /// Take `newer` unless this one was measured later (workers race; the newest
    /// measurement wins).
    pub fn keep_newest(&mut self, newer: MetricEntry) {
        if self.measured_ms <= newer.measured_ms {
            *self = newer;
        }
    }

    /// The value if it was measured no more than `stale_after_ms` before `now_ms`.
    pub fn fresh(&self, now_ms: u64, stale_after_ms: u64) -> Option<f64> {
        (now_ms.saturating_sub(self.measured_ms) <= stale_after_ms).then_some(self.value)
    }
}

/// [`MetricEntry::encode`] of `value` measured at `measured_ms`.
pub fn encode_entry(value: f64, measured_ms: u64) -> Vec<u8> {
    MetricEntry { value, measured_ms }.encode()
}

/// Decode [`encode_entry`]; `None` when malformed.
pub fn decode_entry(bytes: &[u8]) -> Option<(f64, u64)> {
    MetricEntry::decode(bytes).map(|e| (e.value, e.measured_ms))
}

/// The entry to store when `value` was measured at `measured_ms` and `current` is in shared
/// data: the newer measurement wins (VMs race).
pub fn newer_entry(current: Option<&[u8]>, value: f64, measured_ms: u64) -> Vec<u8> {
    let newer = MetricEntry { value, measured_ms };
    let mut entry = current.and_then(MetricEntry::decode).unwrap_or(newer);
    entry.keep_newest(newer);
    entry.encode()
}

/// The value of a stored entry if it was measured no more than `stale_after_ms` before
/// `now_ms` (a missing, malformed or stale entry is unknown).
pub fn fresh_entry(bytes: &[u8], now_ms: u64, stale_after_ms: u64) -> Option<f64> {
    MetricEntry::decode(bytes)?.fresh(now_ms, stale_after_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const VLLM: &str = r#"# HELP vllm:num_requests_running Number of requests running.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="qwen"} 3.0
vllm:num_requests_running{engine="1",model_name="qwen"} 2
vllm:num_requests_running_total 99
vllm:num_requests_waiting{model_name="a,b=\"c}\""} 7
plain_metric 1.5e1
nan_metric NaN
"#;

    #[test]
    fn prometheus_sums_matching_series() {
        assert_eq!(
            parse_prometheus(VLLM, "vllm:num_requests_running", None),
            Some(5.0)
        );
        assert_eq!(
            parse_prometheus(VLLM, "vllm:num_requests_running", Some(("engine", "1"))),
            Some(2.0)
        );
        assert_eq!(
            parse_prometheus(
                VLLM,
                "vllm:num_requests_waiting",
                Some(("model_name", "a,b=\"c}\""))
            ),
            Some(7.0)
        );
        assert_eq!(parse_prometheus(VLLM, "plain_metric", None), Some(15.0));
        assert_eq!(parse_prometheus(VLLM, "nan_metric", None), None);
        assert_eq!(parse_prometheus(VLLM, "missing", None), None);
        assert_eq!(
            parse_prometheus("garbage {{{ \u{ff}", "garbage", None),
            None
        );
    }

    #[test]
    fn json_map_and_webdis() {
        let body = br#"{"qwen_1": 10, "minimax_1": "90", "bad": "x", "nested": {"a": 1}}"#;
        assert_eq!(parse_json_map(body, "qwen_1"), Some(10.0));
        assert_eq!(parse_json_map(body, "minimax_1"), Some(90.0));
        assert_eq!(parse_json_map(body, "bad"), None);
        assert_eq!(parse_json_map(body, "nested"), None);
        assert_eq!(parse_json_map(b"not json", "x"), None);
        assert_eq!(
            parse_webdis_mget(br#"{"MGET":["10",null,"x",4]}"#),
            Some(vec![Some(10.0), None, None, Some(4.0)])
        );
        assert_eq!(parse_webdis_mget(br#"{"GET":"1"}"#), None);
    }

    #[test]
    fn entries_age() {
        let e = encode_entry(10.0, 1000);
        assert_eq!(fresh_entry(&e, 3000, 5000), Some(10.0));
        assert_eq!(fresh_entry(&e, 6000, 5000), Some(10.0));
        assert_eq!(fresh_entry(&e, 6001, 5000), None);
        assert_eq!(fresh_entry(b"NaN\t1000", 1000, 5000), None);
        assert_eq!(fresh_entry(b"junk", 1000, 5000), None);
    }

    #[test]
    fn shared_entries_keep_the_newest() {
        assert_eq!(decode_entry(&encode_entry(10.5, 7)), Some((10.5, 7)));
        assert_eq!(decode_entry(b"x\t1"), None);
        assert_eq!(decode_entry(b"1"), None);
        let cur = encode_entry(1.0, 100);
        assert_eq!(newer_entry(Some(&cur), 2.0, 50), cur);
        assert_eq!(newer_entry(Some(&cur), 2.0, 150), encode_entry(2.0, 150));
        assert_eq!(newer_entry(Some(b"junk"), 2.0, 1), encode_entry(2.0, 1));
        assert_eq!(newer_entry(None, 2.0, 1), encode_entry(2.0, 1));
        // The same on entries kept as themselves.
        let mut e = MetricEntry {
            value: 1.0,
            measured_ms: 100,
        };
        let older = MetricEntry {
            value: 2.0,
            measured_ms: 50,
        };
        e.keep_newest(older);
        assert_eq!(e.value, 1.0);
        let newer = MetricEntry {
            value: 3.0,
            measured_ms: 150,
        };
        e.keep_newest(newer);
        assert_eq!(e, newer);
        assert_eq!(e.fresh(5150, 5000), Some(3.0));
        assert_eq!(e.fresh(5151, 5000), None);
    }

    fn cfg(v: serde_json::Value) -> BalancerConfig {
        BalancerConfig::from_json(&v).unwrap()
    }

    #[test]
    fn webdis_plan_is_one_mget() {
        let c = cfg(json!({
            "providers": [
                {"name": "minmax", "key": "minimax_1", "model": "M"},
                {"name": "qianwen", "key": "qwen 1", "model": "Q"}
            ],
            "redis": {"service_name": "r", "webdis_cluster": "webdis"}
        }));
        let plan = fetch_plan(&c);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].cluster, "webdis");
        assert_eq!(plan[0].path, "/MGET/ai_metric:minimax_1/ai_metric:qwen%201");
        let got = plan[0].parser.parse(br#"{"MGET":["90",null]}"#);
        assert_eq!(got, vec![("redis|ai_metric:minimax_1".to_string(), 90.0)]);
        assert_eq!(
            cache_key(&c, 0).as_deref(),
            Some("redis|ai_metric:minimax_1")
        );
    }

    #[test]
    fn http_plan_polls_each_provider_cluster() {
        let c = cfg(json!({
            "providers": [
                {"name": "a", "key": "a", "model": "A", "metrics_cluster": "metrics-a"},
                {"name": "b", "key": "b", "model": "B", "metrics_cluster": "metrics-b"},
                {"name": "c", "key": "c", "model": "C"}
            ],
            "metrics": {"source": "http", "http": {"cluster": "shared", "metric": "vllm:num_requests_running"}}
        }));
        let plan = fetch_plan(&c);
        let clusters: Vec<&str> = plan.iter().map(|f| f.cluster.as_str()).collect();
        assert_eq!(clusters, ["metrics-a", "metrics-b", "shared"]);
        assert_eq!(plan[0].path, "/metrics");
        let got = plan[0].parser.parse(VLLM.as_bytes());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, 5.0);
        assert_eq!(Some(got[0].0.clone()), cache_key(&c, 0));
    }
}
