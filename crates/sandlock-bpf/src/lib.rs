//! A pure classic-BPF program generator for seccomp.
//!
//! `sandlock-bpf` turns a list of rules (a syscall, argument conditions and an
//! action) into a seccomp program in the kernel's `sock_filter` layout, and
//! runs such programs in its own interpreter so every generated program can be
//! checked against the meaning of its rules. It makes no system calls and
//! builds under `#![no_std]` with `alloc`.
//!
//! ```
//! use sandlock_bpf::{Action, Arch, ArgIndex, Cond, Errno, Filter, Rule, SeccompData};
//!
//! let filter = Filter::new(Arch::X86_64)
//!     .default_action(Action::Allow)
//!     .rule(Rule::named("ptrace", Action::Errno(Errno::EPERM)))
//!     // ioctl's request is an `unsigned int`: compare the low 32 bits only.
//!     .rule(Rule::named("ioctl", Action::Errno(Errno::EPERM))
//!         .when(Cond::eq(ArgIndex::A1, 0x5412 /* TIOCSTI */).u32()));
//! let program = filter.build()?;
//!
//! // Every program can be run, and compared with the rules' meaning.
//! let ioctl = SeccompData::new(Arch::X86_64, 16, [0, 0x1_0000_5412, 0, 0, 0, 0]);
//! let outcome = program.run(&ioctl)?;
//! assert_eq!(outcome.action(), Some(Action::Errno(Errno::EPERM)));
//! assert_eq!(outcome.action(), Some(filter.evaluate(&ioctl)?));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! See `docs/bpf.md` for the program layout.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod action;
pub mod arch;
mod asm;
mod codegen;
pub mod cond;
pub mod data;
pub mod disasm;
pub mod errno;
pub mod filter;
pub mod insn;
pub mod interp;
mod names;
pub mod prebuilt;
pub mod program;
pub mod reference;
pub mod rule;
pub mod shrink;

pub use action::Action;
pub use arch::Arch;
pub use cond::{ArgIndex, CmpOp, Cond, Width};
pub use data::SeccompData;
pub use errno::{Errno, ErrnoError};
pub use filter::{BPF_MAXINSNS, BuildError, Filter};
pub use insn::Insn;
pub use interp::{InterpError, Outcome};
pub use prebuilt::Prebuilt;
pub use program::Program;
pub use reference::Reference;
pub use rule::{Rule, Syscall};
