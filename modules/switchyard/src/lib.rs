//! `libswitchyard.so`: the Switchyard filters as one Envoy dynamic module. Envoy picks a filter
//! by `filter_name` (`ai-proxy`, `ai-load-balancer`); `filter_config` is the filter's JSON (a
//! `google.protobuf.StringValue`), the same JSON the Wasm builds take. Adapters only: the
//! filters are `switchyard_filter`'s, over the host in [`host`].
//!
//! Build with `cargo xtask build` (profile `native`: release settings with `panic = "unwind"`,
//! so a panic is caught at the hook and answered with a 500 instead of aborting Envoy).

#[cfg(panic = "abort")]
compile_error!("libswitchyard.so must unwind on panic: build it with `--profile native`");

use switchyard_envoy_module::{declare_module, ConfigContext, FilterFactory};

/// The module's own allocations (its state, request bodies it rewrites, translated answers)
/// come from mimalloc rather than glibc's malloc: a request makes some fifty small
/// allocations, and glibc spent about twice the instructions per allocation and free (README,
/// "Native module: where the instructions went"). Envoy never frees what the module allocated,
/// nor the reverse (the ABI copies across), so the two allocators never meet. Local-dynamic
/// TLS because Envoy loads the module with `dlopen`. How it is called: [`alloc`].
#[global_allocator]
static ALLOCATOR: alloc::MiMalloc = alloc::MiMalloc;

mod alloc;
mod counters;
mod filters;
mod host;
mod redis;
#[cfg(feature = "test-filters")]
mod test_filters;

declare_module!(new_config);

/// The filters this module serves, by `filter_name`.
fn new_config(
    ctx: &mut ConfigContext,
    filter_name: &str,
    config: &[u8],
) -> Result<Box<dyn FilterFactory>, String> {
    if let Some(made) = filters::new_config(ctx, filter_name, config) {
        return made;
    }
    #[cfg(feature = "test-filters")]
    if let Some(factory) = test_filters::new_config(ctx, filter_name, config)? {
        return Ok(factory);
    }
    Err(format!("unknown filter_name {filter_name:?}"))
}
