//! A pure classic-BPF program generator for seccomp.
//!
//! `sandlock-bpf` turns a list of rules (a syscall, argument conditions and an
//! action) into a seccomp program in the kernel's `sock_filter` layout, and
//! runs such programs in its own interpreter so every generated program can be
//! checked against the meaning of its rules. It makes no system calls and
//! builds under `#![no_std]` with `alloc`.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod arch;
pub mod errno;
pub mod insn;

pub use arch::Arch;
pub use errno::{Errno, ErrnoError};
pub use insn::Insn;
