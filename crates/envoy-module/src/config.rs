//! Per-filter-config state: the factory the module returned for one `filter_name` +
//! `filter_config`, its metric definitions, and [`ConfigContext`], the config-level (main
//! thread) handle to Envoy: metric definitions, config-owned callouts and the main-thread
//! scheduler.

use crate::abi;
use crate::filter::{callout_result, CalloutError};
use crate::metrics::{MetricDef, MetricKind, Metrics};
use crate::FilterFactory;

/// Everything kept for one filter config (boxed behind Envoy's config-module pointer; streams
/// hold an `Arc` of it). Envoy's own config pointer is not kept: the config-level hooks pass it.
pub(crate) struct ConfigState {
    pub filter_name: String,
    pub metrics: Metrics,
    pub factory: Option<Box<dyn FilterFactory>>,
}

// Streams on every worker share one `ConfigState`.
const _: () = {
    const fn shared_by_workers<T: Send + Sync>() {}
    shared_by_workers::<ConfigState>();
};

/// Name of the counter every config gets: panics caught in module code, by `filter`.
pub const PANICS_METRIC: &str = "switchyard_module_panics";

/// The main-thread handle to one filter config in Envoy.
pub struct ConfigContext<'a> {
    envoy: abi::ConfigEnvoyPtr,
    metrics: MetricsAccess<'a>,
}

/// Metric families are defined while the config is created, and used afterwards.
enum MetricsAccess<'a> {
    Define(&'a mut Metrics),
    Use(&'a Metrics),
}

impl<'a> ConfigContext<'a> {
    /// The handle while the config is created (metric families can be defined).
    pub(crate) fn creating(envoy: abi::ConfigEnvoyPtr, metrics: &'a mut Metrics) -> Self {
        ConfigContext {
            envoy,
            metrics: MetricsAccess::Define(metrics),
        }
    }

    /// The handle of a config's later main-thread hooks.
    pub(crate) fn created(envoy: abi::ConfigEnvoyPtr, metrics: &'a Metrics) -> Self {
        ConfigContext {
            envoy,
            metrics: MetricsAccess::Use(metrics),
        }
    }

    fn defined(&self) -> &Metrics {
        match &self.metrics {
            MetricsAccess::Define(m) => m,
            MetricsAccess::Use(m) => m,
        }
    }

    /// Add `value` to counter `name{labels}` from the main thread (no stream needed).
    pub fn counter_add(&mut self, name: &str, labels: &[(&str, &str)], value: u64) -> bool {
        let envoy = self.envoy;
        self.defined()
            .update(name, MetricKind::Counter, labels, |id, ptr, len| {
                // SAFETY: the buffers outlive the call; `id` is this config's family.
                unsafe {
                    abi::envoy_dynamic_module_callback_http_filter_config_increment_counter(
                        envoy, id, ptr, len, value,
                    )
                }
            })
    }

    /// Record `value` in histogram `name{labels}` from the main thread.
    pub fn histogram_record(&mut self, name: &str, labels: &[(&str, &str)], value: u64) -> bool {
        let envoy = self.envoy;
        self.defined()
            .update(name, MetricKind::Histogram, labels, |id, ptr, len| {
                // SAFETY: as in `counter_add`.
                unsafe {
                    abi::envoy_dynamic_module_callback_http_filter_config_record_histogram_value(
                        envoy, id, ptr, len, value,
                    )
                }
            })
    }

    fn define(&mut self, kind: MetricKind, name: &str, labels: &[&str]) -> Result<(), String> {
        let MetricsAccess::Define(metrics) = &mut self.metrics else {
            return Err(format!(
                "metric {name}: metrics are defined when the config is created"
            ));
        };
        let mut names: Vec<abi::ModuleBuffer> = labels
            .iter()
            .map(|l| abi::ModuleBuffer::of(l.as_bytes()))
            .collect();
        let mut id = 0usize;
        let name_buf = abi::ModuleBuffer::of(name.as_bytes());
        let (ptr, len) = (names.as_mut_ptr(), names.len());
        // SAFETY: all buffers outlive the call; `id` is a valid out-pointer.
        let r = unsafe {
            match kind {
                MetricKind::Counter => {
                    abi::envoy_dynamic_module_callback_http_filter_config_define_counter(
                        self.envoy, name_buf, ptr, len, &mut id,
                    )
                }
                MetricKind::Gauge => {
                    abi::envoy_dynamic_module_callback_http_filter_config_define_gauge(
                        self.envoy, name_buf, ptr, len, &mut id,
                    )
                }
                MetricKind::Histogram => {
                    abi::envoy_dynamic_module_callback_http_filter_config_define_histogram(
                        self.envoy, name_buf, ptr, len, &mut id,
                    )
                }
            }
        };
        if r != abi::METRICS_SUCCESS {
            return Err(format!("metric {name}: Envoy refused the definition ({r})"));
        }
        metrics.insert(
            name,
            MetricDef {
                kind,
                id,
                label_names: labels.iter().map(|l| l.to_string()).collect(),
            },
        );
        Ok(())
    }

    /// Define counter family `name` with `labels` (config time only).
    pub fn define_counter(&mut self, name: &str, labels: &[&str]) -> Result<(), String> {
        self.define(MetricKind::Counter, name, labels)
    }
    pub fn define_gauge(&mut self, name: &str, labels: &[&str]) -> Result<(), String> {
        self.define(MetricKind::Gauge, name, labels)
    }
    pub fn define_histogram(&mut self, name: &str, labels: &[&str]) -> Result<(), String> {
        self.define(MetricKind::Histogram, name, labels)
    }

    /// Worker threads Envoy runs (`--concurrency`). Main thread only.
    pub fn concurrency(&self) -> u32 {
        // SAFETY: plain call; config hooks run on the main thread.
        unsafe { abi::envoy_dynamic_module_callback_get_concurrency() }
    }

    /// Whether Envoy only validates the config (`--mode validate`): skip background work.
    pub fn is_validation_mode(&self) -> bool {
        // SAFETY: plain call; config hooks run on the main thread.
        unsafe { abi::envoy_dynamic_module_callback_is_validation_mode() }
    }

    /// An HTTP request owned by the config, not by any stream (background polling). Main thread
    /// only; the answer arrives in [`FilterFactory::on_callout_done`].
    pub fn http_callout(
        &mut self,
        cluster: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<u64, CalloutError> {
        let mut raw: Vec<abi::ModuleHttpHeader> = headers
            .iter()
            .map(|(k, v)| abi::ModuleHttpHeader {
                key_ptr: k.as_ptr(),
                key_length: k.len(),
                value_ptr: v.as_ptr(),
                value_length: v.len(),
            })
            .collect();
        let mut id = 0u64;
        // SAFETY: everything borrowed outlives the call; `id` is a valid out-pointer.
        let r = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_http_callout(
                self.envoy,
                &mut id,
                abi::ModuleBuffer::of(cluster.as_bytes()),
                raw.as_mut_ptr(),
                raw.len(),
                abi::ModuleBuffer::of(body),
                timeout_ms,
            )
        };
        callout_result(r, id)
    }

    /// A handle that runs [`FilterFactory::on_scheduled`] on Envoy's main thread, from any
    /// thread (e.g. a background thread the module owns hands results back this way).
    pub fn scheduler(&mut self) -> Option<ConfigScheduler> {
        // SAFETY: plain call on the config pointer; we own the result (freed on drop).
        let p = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_scheduler_new(self.envoy)
        };
        (!p.is_null()).then_some(ConfigScheduler(p))
    }
}

/// Posts events to the main thread for one filter config; movable to any thread.
pub struct ConfigScheduler(abi::ConfigSchedulerPtr);

// SAFETY: the ABI documents the scheduler as usable from any thread.
unsafe impl Send for ConfigScheduler {}
// SAFETY: `commit` only posts an event; concurrent posts are what the scheduler is for.
unsafe impl Sync for ConfigScheduler {}

impl ConfigScheduler {
    pub fn commit(&self, event_id: u64) {
        // SAFETY: the pointer came from `scheduler_new` and is freed only in `drop`.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_scheduler_commit(self.0, event_id)
        }
    }
}

impl Drop for ConfigScheduler {
    fn drop(&mut self) {
        // SAFETY: freed exactly once, here.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_config_scheduler_delete(self.0) }
    }
}
