//! `metrics.source: redis` on the native runtime: a thread the module owns reads Redis directly
//! (`MGET` of every provider's key, with the `redis` crate; no Webdis in between) every
//! `metrics.refresh_ms`, and stores the values in the shared state requests read. Workers never
//! wait for Redis: when it is down or slow, entries go stale and requests fall back to the
//! weighted-random pick, as on every runtime. A config with `redis.webdis_cluster` keeps the
//! HTTP callout path.

use crate::host::ThreadHost;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard_filter::balancer::store_metrics;
use switchyard_filter::host::Host;
use switchyard_policy::balancer::{BalancerConfig, MetricSource, RedisConfig};
use switchyard_policy::metrics::cache_key;
use switchyard_policy::rules::RuleSet;

/// One config's Redis read.
struct Job {
    redis: RedisConfig,
    /// Redis keys, and the cache key each value is stored under.
    keys: Vec<(String, String)>,
    every: Duration,
    next: Instant,
    connection: Option<redis::Connection>,
}

/// The polling thread; it stops when this is dropped (the config went away).
pub struct Poller {
    stop: Arc<AtomicBool>,
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

impl Poller {
    /// Start polling the configs that read Redis directly; `None` when none does.
    pub fn start(rules: &RuleSet<BalancerConfig>) -> Option<Poller> {
        let mut jobs: Vec<Job> = rules
            .all()
            .filter(|c| c.source == MetricSource::Redis)
            .filter_map(|cfg| {
                let redis = cfg.redis.clone().filter(|r| r.webdis_cluster.is_none())?;
                let keys = cfg
                    .providers
                    .iter()
                    .enumerate()
                    .filter_map(|(i, p)| {
                        Some((
                            format!("{}{}", cfg.redis_key_prefix, p.key),
                            cache_key(cfg, i)?,
                        ))
                    })
                    .collect();
                Some(Job {
                    redis,
                    keys,
                    every: Duration::from_millis(cfg.metrics.refresh_ms.max(10)),
                    next: Instant::now(),
                    connection: None,
                })
            })
            .collect();
        if jobs.is_empty() {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("switchyard-redis".into())
            .spawn(move || {
                while !stopped.load(Ordering::Acquire) {
                    let now = Instant::now();
                    for job in jobs.iter_mut().filter(|j| j.next <= now) {
                        job.next = now + job.every;
                        job.poll();
                    }
                    let wake = jobs.iter().map(|j| j.next).min().unwrap_or(now);
                    std::thread::sleep(
                        wake.saturating_duration_since(Instant::now())
                            .clamp(Duration::from_millis(5), Duration::from_millis(250)),
                    );
                }
            });
        match spawned {
            Ok(_) => Some(Poller { stop }),
            Err(e) => {
                log::error!("ai-load-balancer: no Redis polling thread ({e}): metrics fall back");
                None
            }
        }
    }
}

impl Job {
    fn poll(&mut self) {
        let sent = ThreadHost.now_ms();
        match self.read() {
            Ok(values) => store_metrics(&ThreadHost, &values, sent),
            Err(e) => {
                // Reconnect next time; stale entries make requests fall back meanwhile.
                self.connection = None;
                log::debug!(
                    "ai-load-balancer: redis {}:{}: {e}",
                    self.redis.service_name,
                    self.redis.service_port
                );
            }
        }
    }

    fn read(&mut self) -> Result<Vec<(String, f64)>, redis::RedisError> {
        let timeout = Duration::from_millis(self.redis.timeout.max(1));
        let con = match &mut self.connection {
            Some(c) => c,
            None => {
                let client = redis::Client::open((
                    self.redis.service_name.as_str(),
                    self.redis.service_port,
                ))?;
                let mut c = client.get_connection_with_timeout(timeout)?;
                c.set_read_timeout(Some(timeout))?;
                c.set_write_timeout(Some(timeout))?;
                if let Some(pass) = &self.redis.password {
                    let mut auth = redis::cmd("AUTH");
                    if let Some(user) = &self.redis.username {
                        auth.arg(user);
                    }
                    auth.arg(pass).exec(&mut c)?;
                }
                if let Some(db) = self.redis.database {
                    redis::cmd("SELECT").arg(db).exec(&mut c)?;
                }
                self.connection.insert(c)
            }
        };
        let names: Vec<&str> = self.keys.iter().map(|(k, _)| k.as_str()).collect();
        let values: Vec<Option<String>> = redis::cmd("MGET").arg(&names).query(con)?;
        Ok(self
            .keys
            .iter()
            .zip(values)
            .filter_map(|((_, cache), v)| {
                let v = v?.trim().parse::<f64>().ok().filter(|v| v.is_finite())?;
                Some((cache.clone(), v))
            })
            .collect())
    }
}
