//! The seccomp programs of a sandbox.
//!
//! Up to two filters are installed in the child:
//!
//! 1. The **base filter**, always: the architecture check, the default deny
//!    list ([`DENY_LIST`], the socket rules), the rules of the supervisor
//!    features (`USER_NOTIF`), and `ENOSYS` for the [`UNKNOWN_AHEAD`]
//!    numbers after the newest syscall of this build's table (a syscall
//!    added by a later kernel is refused, as an older kernel would answer,
//!    until it is reviewed). Its default action is `ALLOW`, so every syscall without
//!    an argument rule stays in the kernel's action cache. When it notifies,
//!    it is installed with a listener, behind the guard that lets the
//!    listener's hand-over through ([`handoff_guard`]). The base filters of
//!    the usual policies are carried prebuilt ([`prebuilt`]): a start then
//!    skips generating them (about 60 µs, most of it first touches of code
//!    and memory).
//! 2. The **user filter**, only when the policy lists syscalls:
//!    `deny_syscalls` (refused with `syscall_errno`) or `allow_syscalls`
//!    (default action `syscall_errno`, `ALLOW` for each listed name). The
//!    kernel runs every filter and keeps the strictest answer, so an
//!    allow-list really is one: a syscall it does not list is refused even
//!    where a supervisor feature would have intercepted it (an errno beats
//!    `USER_NOTIF`), and the default deny list still applies to the listed
//!    ones. Installed after the listener is handed over, it cannot stop
//!    sandlock's own set-up.

mod denylist;
pub(crate) mod prebuilt;
mod socket;

use sandlock_bpf::arch::MAX_SYSCALL_NR;
use sandlock_bpf::{Action, Arch, ArgIndex, Errno, Filter, Program, Rule};
use sandlock_policy::Policy;

pub(crate) use denylist::ADDR_NO_RANDOMIZE;
pub use denylist::{DENY_LIST, Entry};
pub(crate) use socket::NetMode;

use crate::error::Error;
use crate::supervise::Feature;

/// The programs of one policy.
#[derive(Clone, Debug)]
pub struct Programs {
    /// The base filter (deny list and supervisor rules).
    pub base: Program,
    /// Whether the base filter sends syscalls to a supervisor.
    pub notifies: bool,
    /// The filter of the policy's syscall list, if it has one.
    pub user: Option<Program>,
    /// The key of the listener hand-over (see [`handoff_guard`]).
    pub(crate) handoff: [u64; 3],
}

/// The one `sendmsg` the base filter lets through unexamined: the child's
/// hand-over of the seccomp listener to sandlock, right after the filter is
/// installed and before anything could answer a notification.
///
/// Once the filter notifies on `sendmsg` (the network feature intercepts
/// every one: only the socket's type says whether its address counts),
/// that hand-over would wait for a supervisor that does not exist yet. It
/// is recognised by a 192-bit key, drawn from the kernel's random source
/// for each sandbox, in the three argument registers `sendmsg` does not use
/// (the kernel ignores them; the filter sees them). The sandboxed program
/// cannot learn the key: it exists only in sandlock's memory and in the
/// kernel's copy of the filter, which no sandboxed process can read
/// (`ptrace`, hence `PTRACE_SECCOMP_GET_FILTER`, and every way into
/// sandlock's memory are refused by the deny list). Guessing it takes
/// 2^192 tries.
///
/// The check is a guard in front of the generated program
/// ([`Program::allow_first`](sandlock_bpf::Program::allow_first)), so that
/// the generated part holds no secret and the usual filters can be carried
/// prebuilt ([`prebuilt`]).
fn handoff_guard(arch: Arch, program: Program, key: [u64; 3]) -> Result<Program, Error> {
    let nr = arch.syscall_nr("sendmsg").ok_or_else(|| Error::Invalid {
        field: "architecture",
        value: arch.to_string(),
        why: "has no sendmsg for the listener hand-over".to_owned(),
    })?;
    let args = [
        (ArgIndex::A3, key[0]),
        (ArgIndex::A4, key[1]),
        (ArgIndex::A5, key[2]),
    ];
    Ok(program.allow_first(nr, &args)?)
}

/// A fresh hand-over key.
fn handoff_key() -> Result<[u64; 3], Error> {
    let mut b = [0u8; 24];
    let mut got = 0;
    while got < b.len() {
        match rustix::rand::getrandom(&mut b[got..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => got += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(errno) => {
                return Err(Error::Os {
                    what: "getrandom (listener hand-over key)",
                    errno,
                });
            }
        }
    }
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[8 * i..8 * i + 8]);
        u64::from_ne_bytes(w)
    };
    Ok([word(0), word(1), word(2)])
}

/// How many syscall numbers after the newest one this build knows are
/// refused with `ENOSYS`. Linux adds a handful of syscalls a year, so 64
/// numbers cover years of kernels newer than the table; numbers further up
/// to 1023 would take decades to be assigned (and every rule costs time at
/// each start: the whole range to 1023 would add about 50 µs).
pub const UNKNOWN_AHEAD: u32 = 64;

/// The native architecture, or an error on an unsupported one.
pub(crate) fn native_arch() -> Result<Arch, Error> {
    Arch::native().ok_or_else(|| Error::Invalid {
        field: "architecture",
        value: std::env::consts::ARCH.to_owned(),
        why: "sandlock supports x86_64 and aarch64".to_owned(),
    })
}

/// The base filter's rules, in order.
pub(crate) fn base_rules(
    arch: Arch,
    policy: &Policy,
    features: &[Box<dyn Feature>],
    supervised: bool,
) -> Vec<Rule> {
    let known = |r: &Rule| match r.syscall() {
        sandlock_bpf::Syscall::Name(n) => arch.syscall_nr(n).is_some(),
        sandlock_bpf::Syscall::Nr(_) => true,
    };
    // Sized for the usual filter (about 150 rules) at once: grown step by
    // step, between the deny list's own small vectors, the start-up arena
    // would copy it at each step (and keep every old copy).
    let mut rules: Vec<Rule> = Vec::with_capacity(256);
    for entry in DENY_LIST {
        for name in entry.syscalls {
            if let Some(nr) = arch.syscall_nr(name) {
                rules.extend((entry.rules)(nr));
            }
        }
    }
    rules.extend(socket::head(policy));
    if policy.chroot().is_some()
        && let Some(nr) = arch.syscall_nr("chroot")
    {
        // A process of the new root, root there, must not make another
        // root to climb out of it.
        rules.push(Rule::nr(nr, Action::Errno(Errno::EPERM)));
    }
    for f in features {
        rules.extend(f.rules(policy, supervised).into_iter().filter(known));
    }
    rules.extend(socket::tail(policy));
    let first = arch.max_known_nr() + 1;
    for nr in first..=(first + UNKNOWN_AHEAD - 1).min(MAX_SYSCALL_NR) {
        rules.push(Rule::nr(nr, Action::Errno(Errno::ENOSYS)));
    }
    rules
}

/// The base filter of `policy` with `features`, and whether it notifies.
pub(crate) fn base_filter(
    arch: Arch,
    policy: &Policy,
    features: &[Box<dyn Feature>],
    supervised: bool,
) -> (Filter, bool) {
    let rules = base_rules(arch, policy, features, supervised);
    let notifies = rules.iter().any(|r| r.action() == Action::UserNotif);
    let mut base = Filter::new(arch).default_action(Action::Allow);
    base.extend(rules);
    (base, notifies)
}

/// Builds the programs of `policy` with `features` (`supervised == false`
/// for a process confining itself, which has no supervisor: the features
/// then answer with an errno instead of notifying). A base filter carried
/// prebuilt ([`prebuilt`]) is not generated again.
pub(crate) fn build(
    policy: &Policy,
    features: &[Box<dyn Feature>],
    supervised: bool,
) -> Result<Programs, Error> {
    let arch = native_arch()?;
    let (filter, notifies) = base_filter(arch, policy, features, supervised);
    let mut base = filter.build_or_prebuilt(prebuilt::PREBUILT)?;
    let handoff = if notifies {
        let key = handoff_key()?;
        base = handoff_guard(arch, base, key)?;
        key
    } else {
        [0; 3]
    };
    let user = user_filter(arch, policy)?;
    Ok(Programs {
        base,
        notifies,
        user,
        handoff,
    })
}

/// The filter of the policy's own syscall list, if any.
fn user_filter(arch: Arch, policy: &Policy) -> Result<Option<Program>, Error> {
    let errno = Action::Errno(policy.syscall_errno());
    if let Some(allowed) = policy.allow_syscalls() {
        let mut f = Filter::new(arch).default_action(errno);
        for name in allowed {
            f.push(Rule::named(name, Action::Allow));
        }
        return Ok(Some(f.build()?));
    }
    if !policy.deny_syscalls().is_empty() {
        let mut f = Filter::new(arch).default_action(Action::Allow);
        for name in policy.deny_syscalls() {
            f.push(Rule::named(name, errno));
        }
        return Ok(Some(f.build()?));
    }
    Ok(None)
}

/// One row of the deny-list table of `docs/security.md`.
struct Row {
    syscalls: String,
    refused: String,
    answer: String,
    reason: String,
}

fn code_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The deny-list table of `docs/security.md`, generated from the data the
/// filter is built from.
pub fn deny_list_markdown() -> String {
    let mut rows: Vec<Row> = DENY_LIST
        .iter()
        .map(|e| Row {
            syscalls: code_list(e.syscalls),
            refused: e.refused.to_owned(),
            answer: e.answer.to_owned(),
            reason: e.reason.to_owned(),
        })
        .collect();
    rows.push(Row {
        syscalls: "`socket`".to_owned(),
        refused: socket::ENTRY_REFUSED.to_owned(),
        answer: "EPERM".to_owned(),
        reason: socket::ENTRY_REASON.to_owned(),
    });
    rows.push(Row {
        syscalls: "`chroot`".to_owned(),
        refused: "with a new root (`chroot`)".to_owned(),
        answer: "EPERM".to_owned(),
        reason: "a second `chroot` (with `..` from a directory outside it) climbs out of the first"
            .to_owned(),
    });
    for doc in crate::supervise::DOCS {
        rows.push(Row {
            syscalls: code_list(doc.syscalls),
            refused: doc.refused.to_owned(),
            answer: doc.answer.to_owned(),
            reason: doc.reason.to_owned(),
        });
    }
    rows.push(Row {
        syscalls: format!("the {UNKNOWN_AHEAD} numbers after the newest syscall sandlock knows"),
        refused: "always".to_owned(),
        answer: "ENOSYS".to_owned(),
        reason: "a syscall added to a later kernel is refused until it is reviewed".to_owned(),
    });
    rows.push(Row {
        syscalls: "any syscall of another ABI (i386 `int $0x80`, x32 numbers)".to_owned(),
        refused: "always".to_owned(),
        answer: "process killed (i386), ENOSYS (x32)".to_owned(),
        reason: "a second syscall table would bypass every rule above".to_owned(),
    });
    let mut out = String::from("| syscalls | refused when | answer | why |\n|---|---|---|---|\n");
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.syscalls, r.refused, r.answer, r.reason
        ));
    }
    out
}

#[cfg(test)]
mod tests;
