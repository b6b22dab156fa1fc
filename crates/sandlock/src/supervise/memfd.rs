//! `memfd_create`: the supervisor creates the memfd itself, with
//! `MFD_NOEXEC_SEAL`, and installs it in the caller.
//!
//! Landlock does not govern files of internal mounts such as memfds, so a
//! sandbox could write any program into a memfd and execute it
//! (`execveat(fd, "", AT_EMPTY_PATH)` or `/proc/self/fd/N`), even where no
//! granted path is executable. A memfd created with `MFD_NOEXEC_SEAL`
//! (Linux 6.3) has no execute bit and a seal that forbids adding one;
//! mapping it `PROT_EXEC` still works, so JITs that double-map a memfd keep
//! working. `MFD_EXEC` is refused with `EACCES`, as the kernel itself does
//! under `vm.memfd_noexec = 2`.
//!
//! The name is read from the caller's memory, but nothing is decided on it:
//! it only labels the memfd. The flags come from a register.
//!
//! Without a supervisor (a process confining itself), `memfd_create` is
//! allowed only when the caller passes `MFD_NOEXEC_SEAL` itself. On a
//! kernel without `MFD_NOEXEC_SEAL` the feature is off (and reported as a
//! missing protection).

use std::ffi::CString;
use std::os::fd::AsFd;
use std::sync::Arc;

use rustix::fs::MemfdFlags;
use sandlock_bpf::{Action, ArgIndex, Cond, Errno, Rule};
use sandlock_notify::{AddFdOptions, BuildError, Ctx, Reply, SupervisorBuilder};
use sandlock_policy::{Policy, SyscallCategory, SyscallEvent, Verdict};

use super::{Doc, Feature, Shared};
use crate::error::Error;
use crate::kernel;

const MFD_CLOEXEC: u32 = 0x1;
const MFD_NOEXEC_SEAL: u32 = 0x8;
const MFD_EXEC: u32 = 0x10;
/// The longest name `memfd_create` accepts (`NAME_MAX` minus `"memfd:"`).
const MFD_NAME_MAX: usize = 249;

/// The row of the deny-list table.
pub(crate) const DOC: Doc = Doc {
    syscalls: &["memfd_create"],
    refused: "always intercepted",
    answer: "the supervisor creates the memfd with `MFD_NOEXEC_SEAL` (`MFD_EXEC`: EACCES)",
    reason: "Landlock does not govern memfds: an executable one would run a program no granted path holds",
};

/// The feature: on when the kernel has `MFD_NOEXEC_SEAL`.
pub(crate) fn feature(_policy: &Policy) -> Result<Option<Box<dyn Feature>>, Error> {
    Ok(kernel::memfd_noexec_seal().then(|| Box::new(Memfd) as Box<dyn Feature>))
}

struct Memfd;

impl Feature for Memfd {
    fn name(&self) -> &'static str {
        "memfd"
    }

    fn rules(&self, _policy: &Policy, supervised: bool) -> Vec<Rule> {
        if supervised {
            vec![Rule::named("memfd_create", Action::UserNotif)]
        } else {
            let mask = u64::from(MFD_NOEXEC_SEAL);
            vec![
                Rule::named("memfd_create", Action::Errno(Errno::EPERM))
                    .when(Cond::masked_eq(ArgIndex::A1, mask, 0).u32()),
            ]
        }
    }

    fn register(
        &self,
        sup: SupervisorBuilder,
        shared: &Arc<Shared>,
    ) -> Result<SupervisorBuilder, BuildError> {
        let shared = shared.clone();
        sup.handle_name("memfd_create", move |ctx: &Ctx| create(ctx, &shared))
    }
}

fn create(ctx: &Ctx, shared: &Shared) -> Reply {
    let mut event = SyscallEvent::new("memfd_create", SyscallCategory::File, ctx.notif().pid);
    let deny = |event: &mut SyscallEvent, e: Errno| {
        event.denied = true;
        shared.audit(event, Verdict::DenyWith(e));
        Reply::errno(e)
    };
    // `unsigned int flags`: the low 32 bits.
    let flags = ctx.args()[1] as u32;
    if flags & MFD_EXEC != 0 {
        return deny(&mut event, Errno::EACCES);
    }
    let name = match ctx.read_path(0).and_then(|n| ctx.verify(n)) {
        Ok(n) => n.into_inner(),
        Err(e) => return deny(&mut event, e.errno()),
    };
    if name.len() > MFD_NAME_MAX {
        return deny(&mut event, Errno::EINVAL);
    }
    event.path = Some(format!("memfd:{}", String::from_utf8_lossy(&name)));
    let Ok(cname) = CString::new(name.as_slice()) else {
        return deny(&mut event, Errno::EINVAL);
    };
    let ours = MemfdFlags::from_bits_retain((flags | MFD_NOEXEC_SEAL) & !MFD_CLOEXEC)
        | MemfdFlags::CLOEXEC;
    let fd = match rustix::fs::memfd_create(cname.as_c_str(), ours) {
        Ok(fd) => fd,
        Err(e) => {
            let e = Errno::new(i64::from(e.raw_os_error())).unwrap_or(Errno::EPERM);
            return deny(&mut event, e);
        }
    };
    let opts = AddFdOptions {
        cloexec: flags & MFD_CLOEXEC != 0,
        at: None,
        send: true,
    };
    match ctx.listener().add_fd(ctx.notif().id, fd.as_fd(), opts) {
        Ok(_) => {
            shared.audit(&event, Verdict::Allow);
            Reply::Answered
        }
        // The caller is gone, or out of descriptors (EMFILE is passed on).
        Err(sandlock_notify::ListenerError::AddFd { errno, .. }) => {
            let e = Errno::new(i64::from(errno.raw_os_error())).unwrap_or(Errno::EPERM);
            deny(&mut event, e)
        }
        Err(_) => deny(&mut event, Errno::EPERM),
    }
}
