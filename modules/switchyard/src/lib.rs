//! `libswitchyard.so`: the Switchyard filters as one Envoy dynamic module. Envoy picks a filter
//! by `filter_name`; `filter_config` is the filter's JSON (a `google.protobuf.StringValue`).
//!
//! Build with `cargo xtask build` (profile `native`: release settings with `panic = "unwind"`,
//! so a panic is caught at the hook and answered with a 500 instead of aborting Envoy).

#[cfg(panic = "abort")]
compile_error!("libswitchyard.so must unwind on panic: build it with `--profile native`");

use switchyard_envoy_module::{declare_module, ConfigContext, FilterFactory};

#[cfg(feature = "test-filters")]
mod test_filters;

declare_module!(new_config);

/// The filters this module serves, by `filter_name`.
fn new_config(
    ctx: &mut ConfigContext,
    filter_name: &str,
    config: &[u8],
) -> Result<Box<dyn FilterFactory>, String> {
    #[cfg(feature = "test-filters")]
    if let Some(factory) = test_filters::new_config(ctx, filter_name, config)? {
        return Ok(factory);
    }
    let _ = (ctx, config);
    Err(format!("unknown filter_name {filter_name:?}"))
}
