//! Shapes shared by many scenarios: the verdict rule, sentinel processes,
//! namespace and descriptor comparisons, marker files.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::harness::{Attack, HANG_GUARD, Mode, Outcome, Session, User};
use crate::procfs;

/// Whether the attack is expected to work bare for this user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bare {
    /// It works for root and for uid 65534.
    Works,
    /// It needs a privilege (named) that only root has; bare as uid 65534
    /// the kernel refuses it, which the bare test then asserts.
    NeedsRoot(&'static str),
    /// It cannot work on this machine at all (named reason): the bare test
    /// asserts that, and the sandboxed test cannot fail here.
    Impossible(&'static str),
}

impl Bare {
    fn expected(self, user: User) -> bool {
        match self {
            Bare::Works => true,
            Bare::NeedsRoot(_) => user == User::Root,
            Bare::Impossible(_) => false,
        }
    }
}

/// The suite's one rule. Bare: the side effect happened exactly when the
/// attack is expected to work for this user. Sandboxed: the program ran,
/// and the side effect did not happen.
pub fn verdict(mode: Mode, bare: Bare, happened: bool, what: &str, out: &Outcome) {
    match mode {
        Mode::Bare(user) => {
            let expected = bare.expected(user);
            match bare {
                Bare::NeedsRoot(why) if user != User::Root => {
                    eprintln!("note: {what}: needs {why}; bare uid 65534 is refused by the kernel")
                }
                Bare::Impossible(why) => {
                    eprintln!("note: {what}: cannot work on this machine: {why}")
                }
                _ => {}
            }
            assert_eq!(
                happened,
                expected,
                "bare {what}: expected the side effect to {}happen\n{}",
                if expected { "" } else { "not " },
                out.describe()
            );
        }
        Mode::Sandboxed(_) => {
            out.assert_ran();
            assert!(
                !happened,
                "ESCAPE: {what} happened under sandlock\n{}",
                out.describe()
            );
        }
    }
}

/// A process the runner started, standing in for the supervisor when an
/// attack runs bare: it holds `secret` in memory, in argv and in its
/// environment, keeps a memfd open, and lets any same-uid process attach.
pub struct Sentinel {
    session: Session,
    /// Address of the secret in its memory.
    pub addr: u64,
    /// Length of the secret.
    pub len: usize,
}

/// The environment variable carrying secrets in supervisor attacks.
pub const SECRET_VAR: &str = "SANDLOCK_ESCAPE_SECRET";

impl Sentinel {
    /// Start one as `user`.
    pub fn start(user: User, secret: &str) -> Sentinel {
        let mut session = Attack::new(Mode::Bare(user), "helpers", "sentinel")
            .arg(secret)
            .env(SECRET_VAR, secret)
            .spawn();
        session.ready();
        let line = session.expect("ADDR");
        let words: Vec<&str> = line.split_whitespace().collect();
        let addr = u64::from_str_radix(words[1].trim_start_matches("0x"), 16).unwrap();
        let len = words[2].parse().unwrap();
        Sentinel { session, addr, len }
    }

    /// Its pid.
    pub fn pid(&self) -> i32 {
        self.session.pid()
    }

    /// Is it still running?
    pub fn alive(&mut self) -> bool {
        self.session.exited().is_none()
    }

    /// How it ended, if it did.
    pub fn killed_by(&mut self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.session.exited().and_then(|s| s.signal())
    }

    /// Stop it and return the secret as it is in its memory now.
    pub fn secret_now(self) -> String {
        let out = self.session.finish();
        out.lines
            .iter()
            .find_map(|l| l.strip_prefix("SECRET ").map(str::to_string))
            .unwrap_or_default()
    }
}

/// Namespaces (`pid name: old -> new`) of any process of the attack that
/// differ from the attacker's own before the attack.
pub fn namespace_attack(attack: Attack, go: &str) -> (Vec<String>, Outcome) {
    let mut s = attack.spawn();
    if !s.wait_ready() {
        return (vec![], s.finish());
    }
    let before = procfs::ns_links(s.attacker());
    s.go(go);
    s.next_line("HOLD", HANG_GUARD);
    let mut changed = vec![];
    for pid in s.attackers() {
        for (name, link) in procfs::ns_links(pid) {
            let old = before.get(&name).cloned().unwrap_or_default();
            if old != link {
                changed.push(format!("pid {pid} {name}: {old} -> {link}"));
            }
        }
    }
    (changed, s.finish())
}

/// Descriptors (`fd -> target`) the attacker gained during the attack whose
/// target contains `kind` (e.g. "bpf-map", "io_uring"); "" matches any.
pub fn fd_attack(
    attack: Attack,
    go: impl FnOnce(&Session) -> String,
    kind: &str,
) -> (BTreeMap<i32, String>, Outcome) {
    let mut s = attack.spawn();
    if !s.wait_ready() {
        return (BTreeMap::new(), s.finish());
    }
    let pid = s.attacker();
    let before = procfs::fds(pid);
    let words = go(&s);
    s.go(&words);
    s.next_line("HOLD", HANG_GUARD);
    let gained = procfs::fds(pid)
        .into_iter()
        .filter(|(fd, t)| before.get(fd) != Some(t) && t.contains(kind))
        .collect();
    // Modes that may hold a pipe to their own stdin end on a line, not EOF.
    s.go("");
    (gained, s.finish())
}

/// Lines of a marker file (each is one run of the marker program).
pub fn marker_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// `sysctl` value, if the knob exists.
pub fn sysctl(name: &str) -> Option<String> {
    fs::read_to_string(Path::new("/proc/sys").join(name.replace('.', "/")))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The errno the kernel gives when a call is simply not built in.
pub const ENOSYS: i32 = 38;
/// Operation not permitted.
pub const EPERM: i32 = 1;
/// Killed by the seccomp filter (SIGSYS), as sandlock reports it: 128 + 31.
pub const KILLED_BY_SIGSYS: i32 = 128 + 31;
