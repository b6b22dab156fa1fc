//! sandlock's policy model: what a sandbox may do.
//!
//! The core is `#![no_std]` with `alloc`; the `std` feature (on by default)
//! adds the lock-free live policy and TOML profiles.
#![no_std]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod event;
pub mod verdict;

pub use event::{SyscallCategory, SyscallEvent};
pub use verdict::Verdict;
