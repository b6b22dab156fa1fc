//! The `sandlock` binary's allocator on musl: a bump arena for start-up.
//!
//! [`StartupArena`] is a [`GlobalAlloc`]; the binary installs it on musl
//! only (`#[global_allocator]` in `main.rs`).
//!
//! The distributable binary links musl statically (glibc's start-up alone,
//! its CPU feature probing, costs about 0.27 ms on a virtual machine, where
//! each `cpuid` traps to the hypervisor: see `docs/cli.md`). musl's own
//! allocator, though, maps and unmaps small regions as it goes: a start-up
//! made 57 `mmap` and 48 `munmap` calls, every page faulted in anew, which
//! cost more than glibc's probing saved.
//!
//! So the first [`SIZE`] bytes ever allocated in blocks of up to
//! [`LARGE`] bytes come from one zero-filled static buffer (in `.bss`: no
//! page is touched before it is used), handed out by an atomic bump
//! pointer: no lock, no system call. Freeing gives
//! the bytes back only when they are the last ones handed out (the common
//! case of a temporary, and of a growing `Vec`, which is extended in
//! place); anything else freed from the arena is never reused. Once the
//! arena is used up, every allocation goes to the C library's allocator,
//! so a supervisor that runs for days holds at most [`SIZE`] bytes it
//! does not use. A start-up takes 250 to 600 KiB of it. Larger blocks (a
//! stack for the command's clone, a read buffer) go to the C library at
//! once: it maps them, so their pages are only touched when used.
//!
//! The bump pointer is an atomic integer, so the arena is as safe in a
//! child forked while another thread allocated as the rest of the child's
//! code requires (which allocates nothing anyway, `crate::child`).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The arena's size: start-up needs less; the rest bounds what is wasted.
pub const SIZE: usize = 1 << 20;

/// The arena's bytes, page-aligned.
#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; SIZE]>);

// SAFETY: each byte range is handed out to one owner at a time, by the
// atomic bump of `TOP`; the arena itself is never read or written here.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; SIZE]));

/// Blocks larger than this never come from the arena.
pub const LARGE: usize = 64 * 1024;

/// Offset of the first byte not handed out.
static TOP: AtomicUsize = AtomicUsize::new(0);

/// The global allocator of the musl build (see the module documentation).
pub struct StartupArena;

fn base() -> usize {
    ARENA.0.get() as usize
}

/// The arena offset of `ptr`, if the arena holds it.
fn offset_of(ptr: *mut u8) -> Option<usize> {
    (ptr as usize).checked_sub(base()).filter(|&o| o < SIZE)
}

/// Hands out `layout.size()` bytes aligned to `layout.align()`, or `None`
/// when the arena has no room left for them.
fn bump(layout: Layout) -> Option<*mut u8> {
    if layout.size() > LARGE {
        return None;
    }
    let base = base();
    // A power of two (`Layout`'s invariant): a mask, not a division.
    let mask = layout.align() - 1;
    let mut top = TOP.load(Ordering::Relaxed);
    loop {
        let start = ((base + top).checked_add(mask)? & !mask) - base;
        let end = start.checked_add(layout.size())?;
        if end > SIZE {
            return None;
        }
        match TOP.compare_exchange_weak(top, end, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Some(ARENA.0.get().cast::<u8>().wrapping_add(start)),
            Err(now) => top = now,
        }
    }
}

// SAFETY: `alloc` returns either a range of the arena that `TOP` moved
// past (so no other allocation overlaps it until it is given back) or the
// C library's memory; `dealloc` and `realloc` tell the two apart by
// address, and give an arena range back only by moving `TOP` down from its
// very end (a compare-and-swap, which fails if anything was handed out
// after it).
unsafe impl GlobalAlloc for StartupArena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match bump(layout) {
            Some(p) => p,
            // SAFETY: the caller's contract (a non-zero size) is passed on.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match bump(layout) {
            Some(p) => {
                // SAFETY: `p` heads `layout.size()` bytes we own; they may
                // hold what an earlier owner wrote before giving them back.
                unsafe { std::ptr::write_bytes(p, 0, layout.size()) };
                p
            }
            // SAFETY: as in `alloc`.
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match offset_of(ptr) {
            Some(off) => {
                // The last range handed out goes back; any other is kept.
                let _ = TOP.compare_exchange(
                    off + layout.size(),
                    off,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            // SAFETY: `ptr` came from `System.alloc` with this layout.
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(off) = offset_of(ptr) else {
            // SAFETY: `ptr` came from `System.alloc` with this layout.
            return unsafe { System.realloc(ptr, layout, new_size) };
        };
        // The last range handed out grows or shrinks in place.
        if new_size <= LARGE
            && off.checked_add(new_size).is_some_and(|end| end <= SIZE)
            && TOP
                .compare_exchange(
                    off + layout.size(),
                    off + new_size,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return ptr;
        }
        // SAFETY: the caller guarantees that `new_size`, rounded up to the
        // alignment, does not overflow `isize`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: `new_size` is non-zero (the caller's contract).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both ranges are live, ours, and distinct (the old one
            // was not given back); the copy is the smaller of the sizes.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The arena is one static: tests running in parallel may allocate from
    // it meanwhile, so nothing here assumes who allocated last.

    #[test]
    fn aligned_and_kept_across_a_realloc() {
        let a = StartupArena;
        let l = Layout::from_size_align(24, 64).unwrap();
        // SAFETY: non-zero layouts; each pointer is freed with its layout.
        unsafe {
            let p = a.alloc(l);
            assert_eq!(p as usize % 64, 0);
            p.write_bytes(0xa5, 24);
            let q = a.realloc(p, l, 8192);
            assert_eq!(q as usize % 64, 0);
            assert!(std::slice::from_raw_parts(q, 24).iter().all(|&b| b == 0xa5));
            a.dealloc(q, Layout::from_size_align(8192, 64).unwrap());
            let z = a.alloc_zeroed(l);
            assert!(std::slice::from_raw_parts(z, 24).iter().all(|&b| b == 0));
            a.dealloc(z, l);
        }
    }

    #[test]
    fn too_large_goes_to_the_c_library() {
        let a = StartupArena;
        let l = Layout::from_size_align(LARGE + 1, 8).unwrap();
        // SAFETY: a non-zero layout, freed with itself.
        unsafe {
            let p = a.alloc(l);
            assert!(!p.is_null());
            assert!(offset_of(p).is_none());
            a.dealloc(p, l);
        }
    }
}
