//! Launching a child with the plan's namespaces, and without them when
//! the machine refuses optional ones.

use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::io::Errno;

use super::{Grant, NsPlan, Prepared};
use crate::error::Error;
use crate::ruleset::Landlock;
use crate::seccomp::Programs;
use crate::spawn::{self, Launch, Launched, SpawnPlan};
use crate::sys::child::ExecArgs;

/// What [`launch`] needs besides the plan.
pub(crate) struct Parts<'a> {
    pub(crate) exec: &'a ExecArgs,
    pub(crate) stdio: &'a [Option<OwnedFd>; 3],
    pub(crate) landlock: Option<&'a Landlock>,
    pub(crate) programs: &'a Programs,
    /// Make the child's group the target of the signal forwarding handlers.
    pub(crate) forward_signals: bool,
}

/// A launched child, and whether it got the plan's namespaces.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) launched: Launched,
    /// The namespaces the child is in (`CLONE_NEW*` bits, 0 for none).
    pub(crate) ns_flags: u64,
    /// The Landlock ruleset the child enforces (a descriptor of the same
    /// kernel object: with the grants the child added on its new mounts),
    /// for the supervisor's confined workers.
    pub(crate) ruleset: Option<OwnedFd>,
}

/// Launches `plan`'s child. With namespaces that are optional
/// ([`NsPlan::optional`], no mount or host name asked by a feature), a
/// refusal by the kernel (the clone, or the id maps, as under AppArmor's
/// restriction of unprivileged user namespaces) is remembered and the
/// child is launched again without them.
pub(crate) fn launch(
    plan: &SpawnPlan,
    parts: &Parts<'_>,
    before_exec: &mut dyn FnMut(i32) -> Result<(), Error>,
) -> Result<Started, Error> {
    let grants: Vec<Grant> = parts.landlock.map(Landlock::grants).unwrap_or_default();
    let mut ns: NsPlan = clone_plan(&plan.ns);
    if ns.pid && covers_proc(&grants, &ns.mounts.proc_target()) {
        // A PID namespace with the caller's /proc granted would show pids
        // of the wrong namespace (`/proc/<getpid()>` is another process):
        // give it its own.
        ns.mounts.fresh_proc();
    }
    let skip = ns.is_empty() || (!ns.required() && super::known_available() == Some(false));
    if !skip {
        let prepared = match ns.prepare(&grants) {
            Ok(p) => p,
            Err(e @ Error::Namespace { .. }) if ns.mounts.has_masks() => {
                // The masks cannot be made here (another mount shows a
                // masked path): as when the kernel refuses them.
                super::record_masks_refused();
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        if !prepared.child.reaper {
            become_subreaper();
        }
        match attempt(plan, parts, Some(&prepared), before_exec) {
            Ok((launched, ruleset)) => {
                super::record(true);
                return Ok(Started {
                    launched,
                    ns_flags: prepared.child.clone_flags,
                    ruleset,
                });
            }
            Err(e) if !plan.ns.required() && refused(&e) => super::record(false),
            Err(e) if plan.root.is_some() && plan.ns.user && refused(&e) => {
                return Err(Error::Unsupported(crate::compat::Protection::NewRoot));
            }
            Err(e) if plan.ns.mounts.has_masks() && plan.ns.user && refused(&e) => {
                super::record_masks_refused();
                return Err(Error::Unsupported(crate::compat::Protection::MaskedPaths));
            }
            Err(e) if plan.ns.mounts.has_masks() && refused(&e) => {
                super::record_masks_refused();
                return Err(e);
            }
            Err(e) => return Err(e),
        }
    }
    become_subreaper();
    let (launched, ruleset) = attempt(plan, parts, None, before_exec)?;
    Ok(Started {
        launched,
        ns_flags: 0,
        ruleset,
    })
}

fn attempt(
    plan: &SpawnPlan,
    parts: &Parts<'_>,
    ns: Option<&Prepared>,
    before_exec: &mut dyn FnMut(i32) -> Result<(), Error>,
) -> Result<(Launched, Option<OwnedFd>), Error> {
    let private = ns.is_some_and(Prepared::needs_private_ruleset);
    let landlock = match parts.landlock {
        Some(ll) if private => Some(ll.fresh_fd()?),
        Some(ll) => Some(ll.fd()?),
        None => None,
    };
    let launched = spawn::launch(
        Launch {
            plan,
            exec: parts.exec,
            stdio: parts.stdio,
            landlock: landlock.as_ref(),
            programs: parts.programs,
            ns: ns.map(|p| (&p.child, p.what.as_slice())),
            forward_signals: parts.forward_signals,
        },
        before_exec,
    )?;
    Ok((launched, landlock))
}

/// Whether `e` is the kernel refusing namespaces (rather than a failure
/// of the sandbox's own set-up).
fn refused(e: &Error) -> bool {
    match e {
        Error::Os {
            what: "clone with new namespaces",
            errno,
        } => [
            Errno::PERM,
            Errno::INVAL,
            Errno::NOSPC,
            Errno::USERS,
            Errno::NOSYS,
            Errno::ACCESS,
        ]
        .contains(errno),
        Error::Namespace { .. } => true,
        _ => false,
    }
}

/// Without a PID namespace, this process becomes a child subreaper before
/// the fork: an orphan of the sandbox (a double-forked daemon) is then
/// reparented to it, where `Tasks` finds it, rather than to the machine's
/// init, even if it is orphaned at once.
fn become_subreaper() {
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
}

/// Whether a grant reaches into `proc` (`/proc`, or the new root's): a
/// grant of it, of something under it, or of an ancestor.
fn covers_proc(grants: &[Grant], proc: &Path) -> bool {
    let proc = proc.to_string_lossy();
    let proc = proc.trim_end_matches('/');
    grants.iter().any(|g| {
        let p = g.path.trim_end_matches('/');
        p.is_empty()
            || p == proc
            || p.strip_prefix(proc).is_some_and(|r| r.starts_with('/'))
            || proc.strip_prefix(p).is_some_and(|r| r.starts_with('/'))
    })
}

fn clone_plan(p: &NsPlan) -> NsPlan {
    NsPlan {
        pid: p.pid,
        ipc: p.ipc,
        user: p.user,
        optional: p.optional,
        mounts: p.mounts.clone(),
        hostname: p.hostname.clone(),
        net: p.net,
    }
}
