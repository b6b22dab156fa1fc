//! The time system calls under `time_start`: the BPF rules that send them
//! to the supervisor, and the handlers that answer them.
//!
//! - **Reads** (`clock_gettime` of a realtime clock, `gettimeofday`,
//!   `time`) are answered with the sandbox's clock, written into the
//!   task's buffer. They reach the supervisor only when a program makes the
//!   system call itself: the vDSO stubs answer the usual calls in user
//!   space.
//! - **Absolute realtime deadlines** (`clock_nanosleep` with
//!   `TIMER_ABSTIME`, `futex` waits with `FUTEX_CLOCK_REALTIME` and
//!   `FUTEX_LOCK_PI`, `futex_waitv` on `CLOCK_REALTIME`) are restarted as
//!   the same wait on `CLOCK_MONOTONIC`, with the deadline converted
//!   exactly; `timer_settime` / `timerfd_settime` with an absolute time on a
//!   realtime timer are restarted as relative ones.
//! - **"Now" time stamps** (`utimensat` with `NULL` or `UTIME_NOW`,
//!   `utimes` / `futimesat` / `utime` with `NULL`) are restarted with the
//!   sandbox's current time written out explicitly.
//!
//! A restarted call's new argument lives in the task's scratch slot, in
//! its vDSO (see `crate::vdso`), and the registers are edited by the
//! tracer ([`super::tracer`]). Without a slot (a process that unmapped its
//! vDSO) the call runs unshifted, with a warning.
//!
//! Nothing here is a security decision: a program that races its own
//! arguments only gets an unshifted clock.

use std::sync::Arc;

use sandlock_bpf::{Action, ArgIndex, Cond, Errno, Rule};
use sandlock_notify::{BuildError, ChildMemory, Ctx, Reply, Response, SupervisorBuilder};

use super::clock::{
    CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_REALTIME_ALARM, CLOCK_REALTIME_COARSE, CLOCK_TAI,
    SandboxClock, Shifted, Ts,
};
use super::tracer::{Edit, Tracer, warn_once};
use crate::procmem::MemCache;
use crate::sys::trace::kernel_timezone;
use crate::vdso::{self, Plan};

const TIMER_ABSTIME: u64 = 1;
const TFD_TIMER_CANCEL_ON_SET: u64 = 2;
const FUTEX_CMD_MASK: u64 = 0x7f;
const FUTEX_PRIVATE: u64 = 0x80;
const FUTEX_CLOCK_REALTIME: u64 = 0x100;
const FUTEX_LOCK_PI: u64 = 6;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAIT_REQUEUE_PI: u64 = 11;
const FUTEX_LOCK_PI2: u64 = 13;
const UTIME_NOW: i64 = (1 << 30) - 1;
const ARCH_MAP_VDSO: [u64; 3] = [0x2001, 0x2002, 0x2003];

/// The clocks whose reads are shifted.
const READ_CLOCKS: [u32; 4] = [
    CLOCK_REALTIME,
    CLOCK_REALTIME_COARSE,
    CLOCK_REALTIME_ALARM,
    CLOCK_TAI,
];
/// The clocks a sleep can wait on that are shifted (not the coarse one).
const SLEEP_CLOCKS: [u32; 3] = [CLOCK_REALTIME, CLOCK_REALTIME_ALARM, CLOCK_TAI];

/// The BPF rules: each intercepts only the calls whose meaning depends on
/// the realtime clock.
pub(crate) fn rules(notify: Action) -> Vec<Rule> {
    let mut r = Vec::new();
    for clk in READ_CLOCKS {
        r.push(Rule::named("clock_gettime", notify).when(Cond::eq(ArgIndex::A0, clk.into()).u32()));
    }
    r.push(Rule::named("gettimeofday", notify));
    r.push(Rule::named("time", notify));
    let abstime = Cond::masked_eq(ArgIndex::A1, TIMER_ABSTIME, TIMER_ABSTIME).u32();
    for clk in SLEEP_CLOCKS {
        r.push(
            Rule::named("clock_nanosleep", notify)
                .when(Cond::eq(ArgIndex::A0, clk.into()).u32())
                .when(abstime),
        );
    }
    let timeout = Cond::ne(ArgIndex::A3, 0);
    for cmd in [FUTEX_WAIT_BITSET, FUTEX_WAIT_REQUEUE_PI, FUTEX_LOCK_PI2] {
        let op = FUTEX_CLOCK_REALTIME | cmd;
        r.push(
            Rule::named("futex", notify)
                .when(
                    Cond::masked_eq(ArgIndex::A1, FUTEX_CLOCK_REALTIME | FUTEX_CMD_MASK, op).u32(),
                )
                .when(timeout),
        );
    }
    r.push(
        Rule::named("futex", notify)
            .when(Cond::masked_eq(ArgIndex::A1, FUTEX_CMD_MASK, FUTEX_LOCK_PI).u32())
            .when(timeout),
    );
    r.push(
        Rule::named("futex_waitv", notify)
            .when(Cond::eq(ArgIndex::A4, CLOCK_REALTIME.into()).u32())
            .when(timeout),
    );
    r.push(Rule::named("timer_settime", notify).when(abstime));
    r.push(Rule::named("timerfd_settime", notify).when(abstime));
    r.push(Rule::named("utimensat", notify));
    r.push(Rule::named("utimes", notify).when(Cond::eq(ArgIndex::A1, 0)));
    r.push(Rule::named("futimesat", notify).when(Cond::eq(ArgIndex::A2, 0)));
    r.push(Rule::named("utime", notify).when(Cond::eq(ArgIndex::A1, 0)));
    // A fresh vDSO mapped on request would bypass the stubs.
    for code in ARCH_MAP_VDSO {
        r.push(
            Rule::named("arch_prctl", Action::Errno(Errno::EPERM))
                .when(Cond::eq(ArgIndex::A0, code).u32()),
        );
    }
    r
}

/// What the handlers share.
pub(crate) struct TimeCalls {
    pub(crate) clock: SandboxClock,
    pub(crate) tracer: Arc<Tracer>,
    pub(crate) plan: Option<Arc<Plan>>,
    pub(crate) mem: Arc<MemCache>,
}

type Handler = fn(&TimeCalls, &Ctx) -> Reply;

/// The file-time calls, which the filesystem rules perform on the task's
/// behalf when they are on (a syscall has one handler): a "now" stamp is
/// then the real time (docs/determinism.md).
const FILE_TIMES: [&str; 4] = ["utimensat", "utimes", "futimesat", "utime"];

/// Registers the handlers (`file_times`: also those of [`FILE_TIMES`]).
pub(crate) fn register(
    mut sup: SupervisorBuilder,
    calls: &Arc<TimeCalls>,
    file_times: bool,
) -> Result<SupervisorBuilder, BuildError> {
    let table: [(&str, Handler); 12] = [
        ("clock_gettime", clock_gettime),
        ("gettimeofday", gettimeofday),
        ("time", time),
        ("clock_nanosleep", clock_nanosleep),
        ("futex", futex),
        ("futex_waitv", futex_waitv),
        ("timer_settime", timer_settime),
        ("timerfd_settime", timerfd_settime),
        ("utimensat", utimensat),
        ("utimes", null_times),
        ("futimesat", null_times),
        ("utime", null_times),
    ];
    let arch = sandlock_bpf::Arch::native();
    for (name, f) in table {
        if arch.and_then(|a| a.syscall_nr(name)).is_none()
            || (!file_times && FILE_TIMES.contains(&name))
        {
            continue;
        }
        let c = calls.clone();
        sup = sup.handle_name(name, move |ctx: &Ctx| f(&c, ctx))?;
    }
    Ok(sup)
}

fn errno_of(e: rustix::io::Errno) -> Errno {
    sandlock_notify::listener::errno_of(e)
}

/// Writes `bytes` at `addr` in the task's memory, after checking that the
/// notification is still pending (the descriptor, taken first, then names
/// the notifying task's memory).
pub(crate) fn write_out(cache: &MemCache, ctx: &Ctx, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
    if addr == 0 {
        return Err(Errno::EFAULT);
    }
    let (mem, fresh) = cache.get(ctx.notif().pid).map_err(errno_of)?;
    if fresh && !ctx.listener().id_valid(ctx.notif().id) {
        return Err(Errno::EINTR);
    }
    mem.write_all(addr, bytes).map_err(errno_of)
}

/// Reads a `struct timespec` (or any 16 bytes) at argument `arg`.
fn read16(ctx: &Ctx, arg: usize) -> Result<[u8; 16], Errno> {
    let mut b = [0u8; 16];
    ctx.memory()
        .read_exact(ctx.args()[arg], &mut b)
        .map_err(|_| Errno::EFAULT)?;
    Ok(b)
}

/// A valid, non-negative timespec.
fn timespec(b: &[u8; 16]) -> Result<Ts, Errno> {
    let (sec, nsec) = Ts::words(b);
    Ts::valid(sec, nsec)
        .filter(|t| t.sec >= 0)
        .ok_or(Errno::EINVAL)
}

fn clock_gettime(c: &TimeCalls, ctx: &Ctx) -> Reply {
    let Some(which) = Shifted::of(ctx.args()[0]) else {
        return Reply::Respond(Response::Continue);
    };
    let now = c.clock.now(which);
    match write_out(&c.mem, ctx, ctx.args()[1], &now.timespec_bytes()) {
        Ok(()) => Reply::Respond(Response::Value(0)),
        Err(e) => Reply::errno(e),
    }
}

fn gettimeofday(c: &TimeCalls, ctx: &Ctx) -> Reply {
    let [tv, tz, ..] = *ctx.args();
    if tv != 0 {
        let now = c.clock.now(Shifted::Realtime);
        if let Err(e) = write_out(&c.mem, ctx, tv, &now.timeval_bytes()) {
            return Reply::errno(e);
        }
    }
    if tz != 0 {
        let (west, dst) = kernel_timezone();
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&west.to_ne_bytes());
        b[4..].copy_from_slice(&dst.to_ne_bytes());
        if let Err(e) = write_out(&c.mem, ctx, tz, &b) {
            return Reply::errno(e);
        }
    }
    Reply::Respond(Response::Value(0))
}

fn time(c: &TimeCalls, ctx: &Ctx) -> Reply {
    let now = c.clock.now(Shifted::Coarse).sec;
    let tloc = ctx.args()[0];
    if tloc != 0
        && let Err(e) = write_out(&c.mem, ctx, tloc, &now.to_ne_bytes())
    {
        return Reply::errno(e);
    }
    Reply::Respond(Response::Value(now))
}

/// Puts `payload` in the task's scratch slot and restarts its syscall with
/// argument `ptr_arg` pointing at it and `more` set.
fn restart(
    c: &TimeCalls,
    ctx: &Ctx,
    payload: &[u8],
    ptr_arg: usize,
    more: &[(usize, u64)],
) -> Reply {
    let tid = ctx.notif().pid;
    let slot = c.plan.as_ref().and_then(|plan| {
        let base = vdso::base_of(tid).ok()?;
        plan.scratch_slot(base, tid)
    });
    let Some(slot) = slot else {
        warn_once("a process has no vDSO scratch space: a deadline or time stamp stays unshifted");
        return Reply::Respond(Response::Continue);
    };
    if let Err(e) = write_out(&c.mem, ctx, slot, payload) {
        if e != Errno::EINTR {
            warn_once("cannot write a vDSO scratch slot: a deadline or time stamp stays unshifted");
        }
        return Reply::Respond(Response::Continue);
    }
    let mut args = vec![(ptr_arg, slot)];
    args.extend_from_slice(more);
    let edit = Edit {
        nr: ctx.notif().data.nr as u64,
        args,
    };
    c.tracer.restart(ctx, edit)
}

/// A deadline at argument `arg`, read and converted to MONOTONIC.
fn deadline(c: &TimeCalls, ctx: &Ctx, which: Shifted, arg: usize) -> Result<Ts, Errno> {
    let t = timespec(&read16(ctx, arg)?)?;
    Ok(c.clock.monotonic_deadline(which, t))
}

fn clock_nanosleep(c: &TimeCalls, ctx: &Ctx) -> Reply {
    let Some(which) = Shifted::of(ctx.args()[0]) else {
        return Reply::Respond(Response::Continue);
    };
    match deadline(c, ctx, which, 2) {
        Ok(mono) => restart(
            c,
            ctx,
            &mono.timespec_bytes(),
            2,
            &[(0, CLOCK_MONOTONIC.into())],
        ),
        Err(e) => Reply::errno(e),
    }
}

/// The futex operation that waits for the same thing with a MONOTONIC
/// deadline.
fn monotonic_futex_op(op: u64) -> u64 {
    if op & FUTEX_CMD_MASK == FUTEX_LOCK_PI {
        (op & FUTEX_PRIVATE) | FUTEX_LOCK_PI2
    } else {
        op & !FUTEX_CLOCK_REALTIME
    }
}

fn futex(c: &TimeCalls, ctx: &Ctx) -> Reply {
    let op = ctx.args()[1] & 0xffff_ffff;
    match deadline(c, ctx, Shifted::Realtime, 3) {
        Ok(mono) => restart(
            c,
            ctx,
            &mono.timespec_bytes(),
            3,
            &[(1, monotonic_futex_op(op))],
        ),
        Err(e) => Reply::errno(e),
    }
}

fn futex_waitv(c: &TimeCalls, ctx: &Ctx) -> Reply {
    match deadline(c, ctx, Shifted::Realtime, 3) {
        Ok(mono) => restart(
            c,
            ctx,
            &mono.timespec_bytes(),
            3,
            &[(4, CLOCK_MONOTONIC.into())],
        ),
        Err(e) => Reply::errno(e),
    }
}

/// The value of `key` (a line `key: N` or `key:\tN`) in a `/proc` file.
fn proc_field(path: &str, section: Option<&str>, key: &str) -> Option<i64> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    if let Some(s) = section {
        lines.by_ref().find(|l| l.trim() == s)?;
    }
    lines
        .take_while(|l| section.is_none() || !l.starts_with("ID:"))
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
}

/// Restarts an absolute `*settime` on a realtime clock as a relative one:
/// `flags` at argument 1, the new `itimerspec` at argument 2.
fn settime_relative(c: &TimeCalls, ctx: &Ctx, which: Shifted, clear: u64) -> Reply {
    let mut spec = [0u8; 32];
    if ctx.memory().read_exact(ctx.args()[2], &mut spec).is_err() {
        return Reply::errno(Errno::EFAULT);
    }
    let mut value = [0u8; 16];
    value.copy_from_slice(&spec[16..]);
    let t = match Ts::words(&value) {
        (0, 0) => return Reply::Respond(Response::Continue), // disarms: no time involved
        (sec, nsec) => match Ts::valid(sec, nsec).filter(|t| t.sec >= 0) {
            Some(t) => t,
            None => return Reply::errno(Errno::EINVAL),
        },
    };
    spec[16..].copy_from_slice(&c.clock.remaining(which, t).timespec_bytes());
    let flags = ctx.args()[1] & !clear;
    restart(c, ctx, &spec, 2, &[(1, flags)])
}

fn timer_settime(c: &TimeCalls, ctx: &Ctx) -> Reply {
    let id = ctx.args()[0] as u32 as i32;
    let path = format!("/proc/{}/timers", ctx.notif().pid);
    let clock = proc_field(&path, Some(&format!("ID: {id}")), "ClockID:");
    match clock.and_then(|k| Shifted::of(k as u64)) {
        Some(which) => settime_relative(c, ctx, which, TIMER_ABSTIME),
        None => Reply::Respond(Response::Continue),
    }
}

fn timerfd_settime(c: &TimeCalls, ctx: &Ctx) -> Reply {
    let fd = ctx.args()[0] as u32 as i32;
    let path = format!("/proc/{}/fdinfo/{fd}", ctx.notif().pid);
    match proc_field(&path, None, "clockid:").and_then(|k| Shifted::of(k as u64)) {
        // Cancel-on-set watches for the clock being set: the sandbox's
        // clock never is.
        Some(which) => settime_relative(c, ctx, which, TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET),
        None => Reply::Respond(Response::Continue),
    }
}

fn utimensat(c: &TimeCalls, ctx: &Ctx) -> Reply {
    let now = c.clock.now(Shifted::Realtime);
    let times = ctx.args()[2];
    let mut pair = [0u8; 32];
    if times == 0 {
        pair[..16].copy_from_slice(&now.timespec_bytes());
        pair[16..].copy_from_slice(&now.timespec_bytes());
    } else {
        if ctx.memory().read_exact(times, &mut pair).is_err() {
            return Reply::errno(Errno::EFAULT);
        }
        let mut any = false;
        for half in pair.chunks_exact_mut(16) {
            let mut w = [0u8; 16];
            w.copy_from_slice(half);
            if Ts::words(&w).1 == UTIME_NOW {
                half.copy_from_slice(&now.timespec_bytes());
                any = true;
            }
        }
        if !any {
            return Reply::Respond(Response::Continue);
        }
    }
    restart(c, ctx, &pair, 2, &[])
}

/// `utimes(path, NULL)`, `futimesat(dirfd, path, NULL)`, `utime(path, NULL)`.
fn null_times(c: &TimeCalls, ctx: &Ctx) -> Reply {
    let now = c.clock.now(Shifted::Realtime);
    let nr = ctx.notif().data.nr as u32;
    let name = sandlock_bpf::Arch::native().and_then(|a| a.syscall_name(nr));
    let (arg, payload): (usize, Vec<u8>) = match name {
        Some("utime") => {
            let mut b = now.sec.to_ne_bytes().to_vec();
            b.extend_from_slice(&now.sec.to_ne_bytes());
            (1, b)
        }
        Some("futimesat") => (2, [now.timeval_bytes(), now.timeval_bytes()].concat()),
        _ => (1, [now.timeval_bytes(), now.timeval_bytes()].concat()),
    };
    restart(c, ctx, &payload, arg, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn futex_ops_become_monotonic() {
        assert_eq!(
            monotonic_futex_op(FUTEX_CLOCK_REALTIME | FUTEX_PRIVATE | FUTEX_WAIT_BITSET),
            FUTEX_PRIVATE | FUTEX_WAIT_BITSET
        );
        assert_eq!(
            monotonic_futex_op(FUTEX_PRIVATE | FUTEX_LOCK_PI),
            FUTEX_PRIVATE | FUTEX_LOCK_PI2
        );
        assert_eq!(
            monotonic_futex_op(FUTEX_CLOCK_REALTIME | FUTEX_LOCK_PI2),
            FUTEX_LOCK_PI2
        );
    }

    #[test]
    fn rules_match_only_realtime_calls() {
        let rules = rules(Action::UserNotif);
        let matches = |name: &str, args: [u64; 6]| {
            rules.iter().any(|r| {
                matches!(r.syscall(), sandlock_bpf::Syscall::Name(n) if n == name)
                    && r.matches_args(&args)
            })
        };
        assert!(matches("clock_gettime", [0, 0, 0, 0, 0, 0]));
        assert!(matches("clock_gettime", [1 << 32, 0, 0, 0, 0, 0]));
        assert!(!matches("clock_gettime", [1, 0, 0, 0, 0, 0]));
        assert!(matches("clock_nanosleep", [0, 1, 0, 0, 0, 0]));
        assert!(!matches("clock_nanosleep", [0, 0, 0, 0, 0, 0]));
        assert!(!matches("clock_nanosleep", [1, 1, 0, 0, 0, 0]));
        let wait_bitset_rt = FUTEX_CLOCK_REALTIME | FUTEX_PRIVATE | FUTEX_WAIT_BITSET;
        assert!(matches("futex", [0, wait_bitset_rt, 0, 8, 0, 0]));
        assert!(!matches("futex", [0, wait_bitset_rt, 0, 0, 0, 0]));
        assert!(!matches(
            "futex",
            [0, FUTEX_PRIVATE | FUTEX_WAIT_BITSET, 0, 8, 0, 0]
        ));
        assert!(!matches("futex", [0, FUTEX_PRIVATE, 0, 8, 0, 0]));
        assert!(matches("futex", [0, FUTEX_LOCK_PI, 0, 8, 0, 0]));
        assert!(matches("utimes", [0, 0, 0, 0, 0, 0]));
        assert!(!matches("utimes", [0, 8, 0, 0, 0, 0]));
        assert!(matches("timerfd_settime", [3, 1, 8, 0, 0, 0]));
        assert!(!matches("timerfd_settime", [3, 0, 8, 0, 0, 0]));
    }

    #[test]
    fn proc_fields_are_found_per_section() {
        let dir = std::env::temp_dir().join(format!("sandlock-timers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("timers");
        std::fs::write(
            &f,
            "ID: 0\nsignal: 14/0\nnotify: signal/pid.1\nClockID: 1\nID: 1\nsignal: 14/0\nnotify: signal/pid.1\nClockID: 0\n",
        )
        .unwrap();
        let p = f.to_str().unwrap();
        assert_eq!(proc_field(p, Some("ID: 0"), "ClockID:"), Some(1));
        assert_eq!(proc_field(p, Some("ID: 1"), "ClockID:"), Some(0));
        assert_eq!(proc_field(p, Some("ID: 2"), "ClockID:"), None);
        std::fs::write(&f, "pos:\t0\nflags:\t02\nclockid: 0\n").unwrap();
        assert_eq!(proc_field(p, None, "clockid:"), Some(0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
