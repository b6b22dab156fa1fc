//! The policy callback's restrictions of the limits reach the kernel's
//! mechanisms (real processes; root, since the cgroup needs it).

use std::sync::Arc;

use sandlock_notify::EventSink;
use sandlock_policy::{PolicyFn, SyscallCategory, SyscallEvent, Verdict};

use super::{CpuCap, Mechanisms, MemoryGuard, ProcessCap};
use crate::Sandbox;

fn root() -> bool {
    rustix::process::geteuid().is_root()
}

/// "Max processes" of `/proc/PID/limits` (soft, hard).
fn nproc(pid: i32) -> (String, String) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("Max processes"))
        .unwrap();
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[2].to_owned(), f[3].to_owned())
}

fn sandbox(processes: ProcessCap) -> Sandbox {
    let policy = crate::profile::default_builder(&[])
        .unwrap()
        .max_processes(10)
        .max_memory("512M")
        .build()
        .unwrap();
    let m = Mechanisms {
        processes,
        memory: MemoryGuard::Watchdog,
        cpu: CpuCap::Throttle,
    };
    Sandbox::with_mechanisms(policy, m).unwrap()
}

/// The command's host pid (the first member that is not sandlock's init).
fn command_pid(rt: &super::Runtime) -> i32 {
    rt.tasks.scan().iter().find(|m| !m.init).unwrap().pid
}

/// A callback that restricts max_processes to 3 and max_memory to 64M.
fn restricting() -> PolicyFn {
    Arc::new(|_event, ctx| {
        ctx.restrict_max_processes(std::num::NonZeroU32::new(3).unwrap());
        ctx.restrict_max_memory(sandlock_policy::ByteSize::mib(64).unwrap());
        Verdict::Allow
    })
}

fn event() -> SyscallEvent {
    SyscallEvent::new("connect", SyscallCategory::Network, 1)
}

#[test]
fn callback_lowers_rlimit_nproc_of_every_task() {
    let mut child = sandbox(ProcessCap::UserNamespaceRlimit)
        .spawn(&["/bin/sleep", "10"])
        .unwrap();
    let rt = child.limits().unwrap();
    let pid = command_pid(&rt);
    // 10 for the command's tasks, 1 for sandlock's init.
    let pidns = u64::from(rt.tasks.has_pidns());
    assert_eq!(
        nproc(pid),
        ((10 + pidns).to_string(), (10 + pidns).to_string())
    );
    let mut sink = crate::supervise::callback_sink(restricting(), &rt.live, Some(rt.clone()));
    assert_eq!(sink.on_event(event()), Verdict::Allow);
    let want = (3 + pidns).to_string();
    assert_eq!(nproc(pid), (want.clone(), want));
    assert_eq!(rt.live_memory(), Some(64 << 20));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn callback_lowers_pids_max() {
    if !root() {
        return;
    }
    let mut child = sandbox(ProcessCap::Cgroup)
        .spawn(&["/bin/sleep", "10"])
        .unwrap();
    let rt = child.limits().unwrap();
    let pidns = u64::from(rt.tasks.has_pidns());
    let cg = rt.pids.as_ref().unwrap();
    assert_eq!(
        cg.read("pids.max").unwrap().trim(),
        (10 + pidns).to_string()
    );
    let mut sink = crate::supervise::callback_sink(restricting(), &rt.live, Some(rt.clone()));
    sink.on_event(event());
    assert_eq!(cg.read("pids.max").unwrap().trim(), (3 + pidns).to_string());
    child.kill().unwrap();
    child.wait().unwrap();
}

/// After the restriction the supervisor's accounting refuses what the old
/// limit allowed.
#[test]
fn callback_restricts_the_memory_accounting() {
    let mut child = sandbox(ProcessCap::Supervisor)
        .spawn(&["/bin/sleep", "10"])
        .unwrap();
    let rt = child.limits().unwrap();
    let meter = rt.memory.as_ref().unwrap();
    let pid = command_pid(&rt);
    let ask = super::memory::Request::Bytes(100 << 20);
    assert_eq!(
        meter.judge(&rt, None, pid, ask),
        super::memory::Answer::Allow
    );
    let mut sink = crate::supervise::callback_sink(restricting(), &rt.live, Some(rt.clone()));
    sink.on_event(event());
    assert_eq!(
        meter.judge(&rt, None, pid, ask),
        super::memory::Answer::NoMemory
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
