//! The policy callback as an event sink, and the audit log's lines.

use std::io::Write;
use std::sync::{Arc, Mutex};

use sandlock_notify::EventSink;
use sandlock_policy::{LivePolicy, Policy, SyscallCategory, SyscallEvent, Verdict};

use super::{AuditLog, callback_sink};

#[test]
fn callback_sees_events_and_changes_the_live_policy() {
    let policy = Policy::builder()
        .net_allow_host("10.0.0.0/8")
        .policy_fn(|ev, ctx| {
            if ev.path_contains("/secret") {
                ctx.restrict_network(Vec::<std::net::IpAddr>::new());
                return Verdict::Deny;
            }
            Verdict::Allow
        })
        .build()
        .unwrap();
    let live = LivePolicy::new(&policy).unwrap();
    let mut sink = callback_sink(policy.policy_fn().unwrap().clone(), &live);
    let mut ev = SyscallEvent::new("openat", SyscallCategory::File, 1);
    ev.path = Some("/tmp/x".into());
    let ip = "10.1.2.3".parse().unwrap();
    assert_eq!(sink.on_event(ev.clone()), Verdict::Allow);
    assert!(live.load().is_ip_allowed(1, ip));
    ev.path = Some("/srv/secret".into());
    assert_eq!(sink.on_event(ev), Verdict::Deny);
    // Applied before the next decision.
    assert!(!live.load().is_ip_allowed(1, ip));
}

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

#[test]
fn audit_lines_are_json_with_the_verdict() {
    let buf = Buf::default();
    let log = AuditLog::new(buf.clone());
    let mut ev = SyscallEvent::new("prlimit64", SyscallCategory::Process, 42);
    ev.denied = true;
    ev.path = Some("a \"quoted\"\npath".into());
    log.record(
        &ev,
        Verdict::DenyWith(sandlock_bpf::Errno::EACCES),
        "sandlock",
        false,
    );
    log.record(&ev, Verdict::Allow, "callback", true);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["syscall"], "prlimit64");
    assert_eq!(lines[0]["pid"], 42);
    assert_eq!(lines[0]["verdict"], "deny");
    assert_eq!(lines[0]["errno"], "EACCES");
    assert_eq!(lines[0]["path"], "a \"quoted\"\npath");
    assert_eq!(lines[1]["verdict"], "allow");
    assert_eq!(lines[1]["source"], "callback");
    assert_eq!(lines[1]["held"], true);
}
