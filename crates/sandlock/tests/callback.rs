//! The policy callback (`Policy::builder().policy_fn(..)`) on real
//! processes: verdicts and their errnos, changes through the context that
//! apply to the very next decision, a callback that panics or never
//! answers (denied, not allowed), which events reach it (`policy_events`),
//! and what the audit log records.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "progs/fsprobe.rs"]
mod fsprobe_prog;

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Out, Scratch, bins};
use sandlock::bpf::Errno;
use sandlock::{
    AuditLog, Policy, PolicyBuilder, Sandbox, Stdio, SyscallCategory, SyscallEvent, Verdict,
};

fn fsprobe() -> PathBuf {
    fsprobe_prog::fsprobe(bins().dir())
}

/// Reads `bins` and writes the scratch.
fn base(s: &Scratch) -> PolicyBuilder {
    Policy::builder()
        .fs_read(bins().dir().to_str().unwrap())
        .fs_write(s.path().to_str().unwrap())
}

/// Runs `fsprobe OPS` in `sandbox`.
fn probe(sandbox: Sandbox, ops: &[String]) -> Out {
    let mut argv = vec![fsprobe().to_string_lossy().into_owned()];
    argv.extend(ops.iter().cloned());
    let r = sandbox
        .stdout(Stdio::Piped)
        .stderr(Stdio::Piped)
        .run(&argv)
        .unwrap();
    Out {
        code: r.status.code(),
        signal: None,
        stdout: String::from_utf8_lossy(&r.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&r.stderr).into_owned(),
    }
}

fn ops(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// An audit log into memory.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    fn lines(&self) -> Vec<serde_json::Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[test]
fn verdicts_and_their_errnos() {
    let s = Scratch::new(0);
    for f in ["deny-me", "enoent-me", "audit-me", "allow-me"] {
        s.file(f, "G");
    }
    let policy = base(&s)
        .policy_fn(|ev, _| {
            if ev.path_contains("deny-me") {
                Verdict::Deny
            } else if ev.path_contains("enoent-me") {
                Verdict::DenyWith(Errno::ENOENT)
            } else if ev.path_contains("audit-me") {
                Verdict::Audit
            } else {
                Verdict::Allow
            }
        })
        .build()
        .unwrap();
    let log = Buf::default();
    let sb = Sandbox::new(policy)
        .unwrap()
        .audit(AuditLog::new(log.clone()));
    let out = probe(
        sb,
        &ops(&[
            "read.deny",
            &s.s("deny-me"),
            "read.enoent",
            &s.s("enoent-me"),
            "read.audit",
            &s.s("audit-me"),
            "read.allow",
            &s.s("allow-me"),
            "mkdir.deny",
            &s.s("deny-me-dir"),
            "stat.enoent",
            &s.s("enoent-me"),
        ]),
    );
    assert_eq!(out.get("read.deny"), "errno=1", "{out:?}");
    assert_eq!(out.get("read.enoent"), "errno=2", "{out:?}");
    assert_eq!(out.get("read.audit"), "G", "{out:?}");
    assert_eq!(out.get("read.allow"), "G", "{out:?}");
    assert_eq!(out.get("mkdir.deny"), "errno=1", "{out:?}");
    assert_eq!(out.get("stat.enoent"), "errno=2", "{out:?}");
    assert!(!s.join("deny-me-dir").exists());
    // Every held decision is in the audit log, with its source.
    let lines = log.lines();
    let find = |name: &str| {
        lines
            .iter()
            .find(|l| {
                l["path"].as_str().is_some_and(|p| p.ends_with(name)) && l["source"] == "callback"
            })
            .unwrap_or_else(|| panic!("no audit line for {name}: {lines:#?}"))
            .clone()
    };
    let d = find("deny-me");
    assert_eq!(
        (
            d["verdict"].as_str(),
            d["errno"].as_str(),
            d["held"].as_bool()
        ),
        (Some("deny"), Some("EPERM"), Some(true))
    );
    let e = find("enoent-me");
    assert_eq!(e["errno"], "ENOENT");
    assert_eq!(find("audit-me")["verdict"], "audit");
    assert_eq!(find("allow-me")["verdict"], "allow");
    assert!(
        lines
            .iter()
            .any(|l| l["syscall"] == "execve" && l["category"] == "process"),
        "the exec event is logged too"
    );
}

#[test]
fn exec_verdicts() {
    let s = Scratch::new(0);
    let policy = base(&s)
        .policy_fn(|ev, _| {
            if ev.syscall.starts_with("execve") && ev.argv_contains("--refuse-me") {
                Verdict::DenyWith(Errno::EACCES)
            } else {
                Verdict::Allow
            }
        })
        .build()
        .unwrap();
    // The first exec (the command itself) is judged too: refused, it never runs.
    let argv = [
        fsprobe().to_string_lossy().into_owned(),
        "--refuse-me".into(),
    ];
    let err = Sandbox::new(policy.clone())
        .unwrap()
        .run(&argv)
        .unwrap_err();
    assert!(err.to_string().contains("denied"), "{err}");
    let out = probe(
        Sandbox::new(policy).unwrap(),
        &ops(&["exec.child", &fsprobe().to_string_lossy()]),
    );
    assert_eq!(out.get("exec.child"), "ok", "{out:?}");
}

#[test]
fn context_changes_apply_to_the_next_decision() {
    let s = Scratch::new(0);
    s.file("later", "G later");
    s.file("trigger", "G trigger");
    let later = s.s("later");
    let policy = base(&s)
        .policy_fn(move |ev, ctx| {
            if ev.path_contains("trigger") {
                ctx.deny_path(&later).unwrap();
            }
            Verdict::Allow
        })
        .build()
        .unwrap();
    let out = probe(
        Sandbox::new(policy).unwrap(),
        &ops(&[
            "read.before",
            &s.s("later"),
            "read.trigger",
            &s.s("trigger"),
            "read.after",
            &s.s("later"),
            "stat.after",
            &s.s("later"),
            "write.after",
            &s.s("later"),
        ]),
    );
    assert_eq!(out.get("read.before"), "G later", "{out:?}");
    assert_eq!(out.get("read.trigger"), "G trigger", "{out:?}");
    // The trigger's verdict and its deny_path came before this open.
    assert_eq!(out.get("read.after"), "errno=13", "{out:?}");
    assert_eq!(out.get("stat.after"), "errno=13", "{out:?}");
    assert_eq!(out.get("write.after"), "errno=13", "{out:?}");
    assert_eq!(std::fs::read_to_string(s.join("later")).unwrap(), "G later");
}

#[test]
fn a_panicking_callback_denies() {
    let s = Scratch::new(0);
    s.file("boom", "G");
    s.file("fine", "G");
    let policy = base(&s)
        .policy_fn(|ev, _| {
            if ev.path_contains("boom") {
                panic!("callback failure on purpose");
            }
            Verdict::Allow
        })
        .build()
        .unwrap();
    let log = Buf::default();
    let sb = Sandbox::new(policy)
        .unwrap()
        .audit(AuditLog::new(log.clone()));
    let out = probe(
        sb,
        &ops(&[
            "read.boom",
            &s.s("boom"),
            "write.boom",
            &s.s("boom2-boom"),
            "read.fine",
            &s.s("fine"),
        ]),
    );
    assert_eq!(out.get("read.boom"), "errno=1", "{out:?}");
    assert_eq!(out.get("write.boom"), "errno=1", "{out:?}");
    assert!(
        !s.join("boom2-boom").exists(),
        "a denied create took effect"
    );
    // The callback thread survives its panic: later events are judged.
    assert_eq!(out.get("read.fine"), "G", "{out:?}");
    assert!(
        log.lines()
            .iter()
            .any(|l| l["source"] == "callback-panicked" && l["verdict"] == "deny")
    );
}

#[test]
fn a_callback_that_never_answers_denies_after_the_bounded_wait() {
    let s = Scratch::new(0);
    s.file("slow", "G");
    let policy = base(&s)
        .callback_timeout("300ms")
        .policy_fn(|ev, _| {
            if ev.path_contains("slow") {
                std::thread::sleep(Duration::from_secs(5));
            }
            Verdict::Allow
        })
        .build()
        .unwrap();
    let log = Buf::default();
    let sb = Sandbox::new(policy)
        .unwrap()
        .audit(AuditLog::new(log.clone()));
    let out = probe(sb, &ops(&["read.slow", &s.s("slow")]));
    assert_eq!(out.get("read.slow"), "errno=1", "{out:?}");
    assert!(
        log.lines()
            .iter()
            .any(|l| l["source"] == "callback-timed-out" && l["verdict"] == "deny")
    );
}

/// Events of the categories asked for reach the callback; the others are
/// not even intercepted.
#[test]
fn events_follow_the_categories_asked_for() {
    let s = Scratch::new(0);
    s.file("f", "G");
    let seen: Arc<Mutex<Vec<SyscallEvent>>> = Arc::default();
    let run = |cats: &[SyscallCategory]| {
        seen.lock().unwrap().clear();
        let sink = seen.clone();
        let policy = base(&s)
            .policy_events(cats.iter().copied())
            .policy_fn(move |ev, _| {
                sink.lock().unwrap().push(ev);
                Verdict::Allow
            })
            .build()
            .unwrap();
        let out = probe(
            Sandbox::new(policy).unwrap(),
            &ops(&["read.f", &s.s("f"), "exec.x", &fsprobe().to_string_lossy()]),
        );
        assert_eq!(out.get("read.f"), "G", "{out:?}");
        assert_eq!(out.get("exec.x"), "ok", "{out:?}");
        seen.lock().unwrap().clone()
    };
    let only = |evs: &[SyscallEvent], c: SyscallCategory| evs.iter().any(|e| e.category == c);

    let file = run(&[SyscallCategory::File]);
    assert!(
        file.iter()
            .any(|e| e.path.as_deref() == Some(&*s.s("f")) && e.syscall.starts_with("open")),
        "{file:#?}"
    );
    assert!(!only(&file, SyscallCategory::Process) && !only(&file, SyscallCategory::Memory));

    let process = run(&[SyscallCategory::Process]);
    assert!(
        process
            .iter()
            .any(|e| e.syscall == "execve" && e.argv.as_ref().is_some_and(|a| a.len() == 1)),
        "{process:#?}"
    );
    assert!(
        process
            .iter()
            .any(|e| matches!(e.syscall.as_str(), "clone" | "fork" | "vfork")),
        "{process:#?}"
    );
    assert!(!only(&process, SyscallCategory::File));

    let memory = run(&[SyscallCategory::Memory]);
    assert!(
        memory
            .iter()
            .any(|e| matches!(e.syscall.as_str(), "mmap" | "brk") && e.size.is_some()),
        "{memory:#?}"
    );
    assert!(!only(&memory, SyscallCategory::File) && !only(&memory, SyscallCategory::Process));
}

/// Without a deny rule and without a callback asking for file events, no
/// open reaches the supervisor: the filter lets it through in the kernel.
#[test]
fn no_rule_no_interception() {
    use sandlock::bpf::{Arch, SeccompData, interp};
    let arch = Arch::native().unwrap();
    let action = |policy: Policy, name: &str| {
        let sb = Sandbox::new(policy).unwrap();
        let d = SeccompData::new(arch, arch.syscall_nr(name).unwrap(), [0; 6]);
        interp::run(sb.programs().base.insns(), &d)
            .unwrap()
            .action()
            .unwrap()
    };
    let allow = sandlock::bpf::Action::Allow;
    let notif = sandlock::bpf::Action::UserNotif;
    let plain = Policy::builder().fs_read("/usr").build().unwrap();
    let net_only = Policy::builder()
        .policy_events([SyscallCategory::Network])
        .policy_fn(|_, _| Verdict::Allow)
        .build()
        .unwrap();
    let deny = Policy::builder()
        .fs_read("/usr")
        .fs_deny("/usr/share")
        .build()
        .unwrap();
    for name in ["openat", "newfstatat", "execve", "rename", "mmap"] {
        assert_eq!(action(plain.clone(), name), allow, "{name} without rules");
        assert_eq!(
            action(net_only.clone(), name),
            allow,
            "{name} with a network-only callback"
        );
    }
    for name in [
        "openat",
        "newfstatat",
        "execve",
        "renameat2",
        "unlinkat",
        "linkat",
    ] {
        assert_eq!(action(deny.clone(), name), notif, "{name} with a deny rule");
    }
    assert_eq!(action(deny, "mmap"), allow);
}

/// With a deny rule, paths and execs are intercepted for the rule's sake,
/// yet a callback that did not ask for them never sees them (nor waits).
#[test]
fn deny_rules_do_not_feed_a_callback_that_did_not_ask() {
    let s = Scratch::new(0);
    s.file("f", "G");
    s.file("closed", "B");
    let seen: Arc<Mutex<Vec<SyscallEvent>>> = Arc::default();
    let sink = seen.clone();
    let policy = base(&s)
        .fs_deny(s.s("closed"))
        .policy_events([SyscallCategory::Network])
        .policy_fn(move |ev, _| {
            sink.lock().unwrap().push(ev);
            Verdict::Deny
        })
        .build()
        .unwrap();
    let out = probe(
        Sandbox::new(policy).unwrap(),
        &ops(&[
            "read.f",
            &s.s("f"),
            "read.closed",
            &s.s("closed"),
            "exec.x",
            &fsprobe().to_string_lossy(),
        ]),
    );
    assert_eq!(out.get("read.f"), "G", "{out:?}");
    assert_eq!(out.get("read.closed"), "errno=13", "{out:?}");
    assert_eq!(out.get("exec.x"), "ok", "{out:?}");
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:#?}",
        seen.lock().unwrap()
    );
}
