//! `openat2(2)` with a scope (`RESOLVE_IN_ROOT`, `RESOLVE_BENEATH`), made
//! again when the kernel answers `EAGAIN`.
//!
//! A scoped lookup that walks through `..` checks that no rename and no
//! mount happened **anywhere on the machine** while it walked (so that a
//! concurrent move could not have taken it out of its scope); when one
//! did, the kernel gives up with `EAGAIN`, and "the caller may choose to
//! retry" (openat2(2)). Any host process renaming files (an editor, a
//! package manager, a build) makes that happen now and then. The scope is
//! sandlock's, not the caller's: the policy's paths in a new root, and the
//! supervisor's lookups for a task under deny rules. An `EAGAIN` from
//! them would fail a start, or reach a task as an answer `open` never
//! gives (`fsdeny.rs` and `chroot.rs` test it under a rename loop).

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::path::Arg;

/// How many lookups in a row may meet a rename before the `EAGAIN` is
/// returned. Under a tight rename loop on the other CPU of a 2-CPU machine
/// about one lookup in fifteen meets one: sixteen in a row do not happen,
/// while a storm that does defeat them fails closed.
const TRIES: u32 = 16;

/// `openat2(dir, path, flags, mode, resolve)`, made again on `EAGAIN` (at
/// most [`TRIES`] times).
pub(crate) fn openat2<Fd: AsFd, P: Arg + Copy>(
    dir: Fd,
    path: P,
    flags: OFlags,
    mode: Mode,
    resolve: ResolveFlags,
) -> Result<OwnedFd, Errno> {
    let mut tries = 1;
    loop {
        match rustix::fs::openat2(dir.as_fd(), path, flags, mode, resolve) {
            Err(Errno::AGAIN) if tries < TRIES => tries += 1,
            result => return result,
        }
    }
}
