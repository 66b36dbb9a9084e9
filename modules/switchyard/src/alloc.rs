//! The module's global allocator: mimalloc, called the way its fast paths expect.
//!
//! The `mimalloc` crate hands every request to `mi_malloc_aligned`, even for the alignments
//! `mi_malloc` guarantees anyway. In mimalloc 3 that call takes its fast path only when the
//! size class already has a free block at the right alignment; otherwise it over-allocates
//! from a larger class and never refills the page of the size asked for, so some sizes stay
//! on the slow path for good. Here a layout whose alignment `mi_malloc` already gives (at most
//! 16 bytes, `MI_MAX_ALIGN_SIZE` on x86_64, and no more than its size, which mimalloc's size
//! classes then honour) goes to `mi_malloc`, `mi_zalloc` and `mi_realloc`; only larger
//! alignments use the aligned calls. Every pointer is freed with `mi_free`, which takes both.

use core::ffi::c_void;
use std::alloc::{GlobalAlloc, Layout};

use libmimalloc_sys as mi;

/// The alignment every `mi_malloc` block of at least that size has (`MI_MAX_ALIGN_SIZE`).
const PLAIN_ALIGN: usize = 16;

pub struct MiMalloc;

/// Whether `mi_malloc` alone gives `align` to a block of `size` bytes.
#[inline]
fn plain(align: usize, size: usize) -> bool {
    align <= PLAIN_ALIGN && align <= size
}

// SAFETY: every method returns memory from mimalloc sized and aligned as `Layout` asks (the
// plain calls only where mimalloc guarantees that alignment, see the module docs), or null on
// failure; `dealloc` and `realloc` receive only pointers this allocator returned, which
// `mi_free` and `mi_realloc`/`mi_realloc_aligned` accept whichever call made them.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain FFI calls into mimalloc; no pointer is passed in.
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (GlobalAlloc's contract), so from mimalloc.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout` (GlobalAlloc's contract); the
        // new block keeps `layout`'s alignment by the same rule as `alloc`.
        unsafe {
            if plain(layout.align(), new_size) {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size and alignment a Rust program asks for comes back aligned, through each call
    /// (mimalloc is this test binary's allocator too, as in the module).
    #[test]
    fn blocks_are_aligned_as_asked() {
        let a = MiMalloc;
        let mut kept = Vec::new();
        for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
            for size in (1..=300).chain([512, 1000, 4096, 65_536, 1 << 20]) {
                let Ok(layout) = Layout::from_size_align(size, align) else {
                    continue;
                };
                let layout = layout.pad_to_align();
                // SAFETY: `layout` has a non-zero size; each pointer is checked, written
                // within its size and freed once with its layout.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "alloc {size} align {align}");
                    p.write_bytes(0xab, layout.size());
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "alloc_zeroed {size} align {align}");
                    assert!(std::slice::from_raw_parts(z, layout.size())
                        .iter()
                        .all(|&b| b == 0));
                    let grown = layout.size() * 3 + align;
                    let r = a.realloc(p, layout, grown);
                    assert_eq!(
                        r as usize % align,
                        0,
                        "realloc {size}->{grown} align {align}"
                    );
                    assert!(std::slice::from_raw_parts(r, layout.size())
                        .iter()
                        .all(|&b| b == 0xab));
                    a.dealloc(z, layout);
                    // Kept a while so later blocks come from partly used pages.
                    kept.push((r, Layout::from_size_align_unchecked(grown, align)));
                }
            }
            for (p, layout) in kept.drain(..) {
                // SAFETY: allocated above with this layout, freed once.
                unsafe { a.dealloc(p, layout) };
            }
        }
    }
}
