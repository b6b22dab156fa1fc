//! The escape suite: hostile programs try to cross every boundary sandlock
//! draws, and each test checks that the side effect did not happen.
//!
//! Each attack is a small C program in `tests/escape/` (compiled with gcc at
//! the start of the run). Every scenario runs four ways:
//! - `bare_root`, `bare_nobody`: unconfined, as root and as uid 65534. These
//!   prove that the attack works on this kernel (so that the sandboxed test
//!   can fail), or, where the attack needs a privilege the user lacks, that
//!   the kernel itself refuses it — each test says which.
//! - `sandboxed_root`, `sandboxed_nobody`: the same attack under
//!   `sandlock run FLAGS -- ...`; the side effect must be absent, and the
//!   program must have started (a sandlock that refuses to run anything
//!   proves nothing).
//!
//! The sandboxed variants of scenarios that need the supervisor features of
//! issues 6-8 are `#[ignore]`d until those exist. Run them with
//! `cargo test -p sandlock --test escape -- --ignored`.
//!
//! Every target is a scratch one: temp dirs, listeners on 127.0.0.x started
//! by the test, processes the test started, keys with unique names. Attacks
//! that would change the machine if they worked (reboot, kexec, clock
//! setting, ...) use arguments the kernel rejects after its permission
//! check, and `kill(-1)` only runs inside a fresh PID namespace.
//!
//! The whole suite needs root (CI runs as root); without it, tests skip.

// A test crate: an unwrap that fails is a failed test, reported with its line.
#![allow(clippy::unwrap_used)]

/// Generate the four tests of a scenario `fn NAME(mode: Mode)`: bare as
/// root and as uid 65534, sandboxed as both. With `run:` all four run; with
/// a `REASON`, the sandboxed ones are ignored until the features they need
/// exist.
macro_rules! escape_tests {
    (run: $($name:ident),+ $(,)?) => {
        $(
            mod $name {
                use crate::harness::{Mode, User};

                #[test]
                fn bare_root() {
                    if crate::harness::have_root() {
                        super::$name(Mode::Bare(User::Root));
                    }
                }

                #[test]
                fn bare_nobody() {
                    if crate::harness::have_root() {
                        super::$name(Mode::Bare(User::Nobody));
                    }
                }

                #[test]
                fn sandboxed_root() {
                    if crate::harness::have_root() {
                        super::$name(Mode::Sandboxed(User::Root));
                    }
                }

                #[test]
                fn sandboxed_nobody() {
                    if crate::harness::have_root() {
                        super::$name(Mode::Sandboxed(User::Nobody));
                    }
                }
            }
        )+
    };
    ($reason:literal: $($name:ident),+ $(,)?) => {
        $(
            mod $name {
                use crate::harness::{Mode, User};

                #[test]
                fn bare_root() {
                    if crate::harness::have_root() {
                        super::$name(Mode::Bare(User::Root));
                    }
                }

                #[test]
                fn bare_nobody() {
                    if crate::harness::have_root() {
                        super::$name(Mode::Bare(User::Nobody));
                    }
                }

                #[test]
                #[ignore = $reason]
                fn sandboxed_root() {
                    if crate::harness::have_root() {
                        super::$name(Mode::Sandboxed(User::Root));
                    }
                }

                #[test]
                #[ignore = $reason]
                fn sandboxed_nobody() {
                    if crate::harness::have_root() {
                        super::$name(Mode::Sandboxed(User::Nobody));
                    }
                }
            }
        )+
    };
}

#[path = "escape/checks.rs"]
mod checks;
#[path = "escape/harness.rs"]
mod harness;
#[path = "escape/observe.rs"]
mod observe;
#[path = "escape/procfs.rs"]
mod procfs;
#[path = "escape/programs.rs"]
mod programs;
#[path = "escape/scratch.rs"]
mod scratch;

#[path = "escape/failure.rs"]
mod failure;
#[path = "escape/filesystem.rs"]
mod filesystem;
#[path = "escape/filter_shape.rs"]
mod filter_shape;
#[path = "escape/kernel_surface.rs"]
mod kernel_surface;
#[path = "escape/network.rs"]
mod network;
#[path = "escape/path_races.rs"]
mod path_races;
#[path = "escape/races.rs"]
mod races;
#[path = "escape/resources.rs"]
mod resources;
#[path = "escape/supervisor.rs"]
mod supervisor;
