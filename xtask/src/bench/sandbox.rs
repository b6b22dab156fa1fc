//! The sandboxes compared, and how each expresses one scenario's rules.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// System directories every sandbox makes readable and executable, as
/// sandlock's default policy does (those that exist on this machine).
pub const SYSTEM_DIRS: &[&str] = &["/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc"];

/// What a scenario needs from a sandbox, in sandlock's terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    /// `-r`: readable (and executable) paths beyond the system directories.
    pub read: Vec<PathBuf>,
    /// `-w`: writable paths.
    pub write: Vec<PathBuf>,
    /// `--fs-deny`: paths closed although inside a readable tree.
    pub deny: Vec<PathBuf>,
    /// `-P`.
    pub max_processes: Option<u32>,
    /// `-m`, sandlock's size syntax (`512M`).
    pub max_memory: Option<String>,
    /// `--net-allow-host`.
    pub net_allow_hosts: Vec<String>,
    /// `--net-bind`.
    pub net_bind: Vec<u16>,
    /// TCP ports the workload connects to (host rules name no port; Landlock
    /// alone can only allow ports).
    pub connects_to: Vec<u16>,
    /// `--time-start`: the sandbox's clock starts at this instant.
    pub time_start: Option<String>,
    /// `--random-seed`.
    pub random_seed: Option<u64>,
    /// This workspace's sandlock runs with no flag at all (`sandlock run --
    /// CMD`: its built-in default profile, which grants the system
    /// directories, the working directory and a private temporary
    /// directory); the other sandboxes get the equivalent rules as usual.
    /// Only for rules that add nothing to that default.
    pub sandlock_default: bool,
}

impl Rules {
    /// The workload needs the host's network (loopback).
    pub fn uses_network(&self) -> bool {
        !self.net_allow_hosts.is_empty()
            || !self.net_bind.is_empty()
            || !self.connects_to.is_empty()
    }
}

/// A kind of sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No sandbox: the reference.
    Bare,
    /// `landlock-exec`: the same Landlock paths, nothing else.
    Landlock,
    /// `landlock-exec --spawn`: the same, with the command run as a child
    /// the helper waits for (start-up scenarios only): what a sandbox costs
    /// at least when a process of its own stays around the command.
    LandlockSpawn,
    /// `landlock-exec --floor`: the same rules, enforced in the command
    /// behind sandlock's kernel sequence (namespaces, init, seccomp filter
    /// with a listener) without sandlock's own logic (start-up scenarios
    /// only): sandlock's floor.
    KernelFloor,
    /// This workspace's `sandlock run`.
    Sandlock,
    /// A published `sandlock-cli` from crates.io.
    SandlockCli(Dialect),
    /// bubblewrap with read-only binds.
    Bwrap,
    /// firejail with read-only paths.
    Firejail,
    /// syd with an allow list of the same paths.
    Syd,
}

/// The network flags of a sandlock command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// sandlock 0.4 (and ours): `--net-allow-host HOST`, `--net-bind PORT`.
    Classic,
    /// sandlock 0.9: `--net-allow HOST:PORT`, `--net-allow-bind PORT`.
    Endpoints,
}

impl Dialect {
    /// The dialect of a published sandlock-cli version.
    pub fn of_version(version: &str) -> Self {
        if version.starts_with("0.4.") || version.starts_with("0.3.") {
            Dialect::Classic
        } else {
            Dialect::Endpoints
        }
    }
}

/// One sandbox of the comparison, located (or not) on this machine.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// Name in tables and records.
    pub name: String,
    /// What it is.
    pub kind: Kind,
    /// Its program, or why there is none.
    pub program: Result<PathBuf, String>,
}

/// A scenario's command wrapped by a sandbox.
#[derive(Debug, Clone)]
pub struct Wrapped {
    /// The full command line.
    pub argv: Vec<OsString>,
    /// Where the wrapper does not express the rules sandlock gets.
    pub notes: Vec<String>,
    /// The wrapper closes `Rules::deny` (so a probe must find it closed).
    pub enforces_deny: bool,
}

impl Sandbox {
    /// Wraps `cmd` (run in `cwd`, with scratch space `tmp`) under `rules`.
    pub fn wrap(
        &self,
        rules: &Rules,
        cwd: &Path,
        tmp: &Path,
        cmd: &[OsString],
    ) -> Result<Wrapped, String> {
        let program = self.program.as_ref().map_err(Clone::clone)?;
        let mut w = Wrapped {
            argv: vec![program.clone().into_os_string()],
            notes: Vec::new(),
            enforces_deny: true,
        };
        let sys = system_dirs();
        // The workload runs in `cwd`, which sandlock's default makes readable.
        let mut read: Vec<PathBuf> = sys.clone();
        read.push(cwd.to_path_buf());
        read.extend(rules.read.iter().cloned());
        let mut write = vec![tmp.to_path_buf()];
        write.extend(rules.write.iter().cloned());
        match self.kind {
            Kind::Bare => {
                w.argv.clear();
                w.enforces_deny = false;
            }
            Kind::Landlock => landlock(&mut w, rules, &read, &write),
            Kind::LandlockSpawn => {
                w.argv.push("--spawn".into());
                landlock(&mut w, rules, &read, &write);
            }
            Kind::KernelFloor => {
                push(&mut w.argv, "--floor", cwd.join(super::floor::FILTER_FILE));
                landlock(&mut w, rules, &read, &write);
            }
            Kind::Sandlock if rules.sandlock_default => {
                w.argv.push("run".into());
                w.argv.push("--".into());
            }
            Kind::Sandlock => sandlock(&mut w, rules, &read, &write, Dialect::Classic),
            Kind::SandlockCli(dialect) => sandlock(&mut w, rules, &read, &write, dialect),
            Kind::Bwrap => bwrap(&mut w, rules, cwd, &sys, &read[sys.len()..], &write),
            Kind::Firejail => firejail(&mut w, rules, &read, &write),
            Kind::Syd => syd(&mut w, rules, &read, &write),
        }
        w.argv.extend(cmd.iter().cloned());
        Ok(w)
    }
}

/// The system directories that exist here.
pub fn system_dirs() -> Vec<PathBuf> {
    SYSTEM_DIRS
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .collect()
}

fn push(argv: &mut Vec<OsString>, flag: &str, value: impl Into<OsString>) {
    argv.push(flag.into());
    argv.push(value.into());
}

fn landlock(w: &mut Wrapped, rules: &Rules, read: &[PathBuf], write: &[PathBuf]) {
    for p in read {
        push(&mut w.argv, "--ro", p);
    }
    for p in write {
        push(&mut w.argv, "--rw", p);
    }
    for port in &rules.connects_to {
        push(&mut w.argv, "--connect", port.to_string());
    }
    for port in &rules.net_bind {
        push(&mut w.argv, "--bind", port.to_string());
    }
    if !rules.deny.is_empty() {
        w.enforces_deny = false;
        w.notes
            .push("Landlock cannot close a path inside an allowed tree: no deny rule".to_owned());
    }
    if !rules.net_allow_hosts.is_empty() {
        w.notes
            .push("no host rule in Landlock: the port is allowed instead".to_owned());
    }
    limits_not_expressed(w, rules);
    w.argv.push("--".into());
}

fn sandlock(w: &mut Wrapped, rules: &Rules, read: &[PathBuf], write: &[PathBuf], dialect: Dialect) {
    w.argv.push("run".into());
    for p in read {
        push(&mut w.argv, "-r", p);
    }
    for p in write {
        push(&mut w.argv, "-w", p);
    }
    for p in &rules.deny {
        push(&mut w.argv, "--fs-deny", p);
    }
    if let Some(n) = rules.max_processes {
        push(&mut w.argv, "-P", n.to_string());
    }
    if let Some(m) = &rules.max_memory {
        push(&mut w.argv, "-m", m);
    }
    if let Some(t) = &rules.time_start {
        push(&mut w.argv, "--time-start", t);
    }
    if let Some(seed) = rules.random_seed {
        push(&mut w.argv, "--random-seed", seed.to_string());
    }
    match dialect {
        Dialect::Classic => {
            for h in &rules.net_allow_hosts {
                push(&mut w.argv, "--net-allow-host", h);
            }
            for port in &rules.net_bind {
                push(&mut w.argv, "--net-bind", port.to_string());
            }
        }
        Dialect::Endpoints => {
            for h in &rules.net_allow_hosts {
                for port in &rules.connects_to {
                    push(&mut w.argv, "--net-allow", format!("{h}:{port}"));
                }
            }
            for port in &rules.net_bind {
                push(&mut w.argv, "--net-allow-bind", port.to_string());
            }
            if !rules.net_allow_hosts.is_empty() {
                w.notes
                    .push("0.9 host rules name a port: host:port given".to_owned());
            }
        }
    }
    w.argv.push("--".into());
}

fn bwrap(
    w: &mut Wrapped,
    rules: &Rules,
    cwd: &Path,
    sys: &[PathBuf],
    read: &[PathBuf],
    write: &[PathBuf],
) {
    w.argv.extend(
        [
            "--die-with-parent",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
        ]
        .map(OsString::from),
    );
    if !rules.uses_network() {
        w.argv.push("--unshare-net".into());
    }
    push(&mut w.argv, "--proc", "/proc");
    push(&mut w.argv, "--dev", "/dev");
    for dir in sys {
        match std::fs::read_link(dir) {
            // Merged /usr: /bin -> usr/bin stays a symlink inside.
            Ok(target) => {
                w.argv.push("--symlink".into());
                w.argv.push(target.into_os_string());
                w.argv.push(dir.clone().into_os_string());
            }
            Err(_) => bind(&mut w.argv, "--ro-bind", dir),
        }
    }
    for p in read {
        bind(&mut w.argv, "--ro-bind", p);
    }
    for p in write {
        bind(&mut w.argv, "--bind", p);
    }
    for p in &rules.deny {
        if p.is_dir() {
            push(&mut w.argv, "--tmpfs", p);
        } else {
            push(&mut w.argv, "--ro-bind", "/dev/null");
            w.argv.push(p.clone().into_os_string());
        }
    }
    push(&mut w.argv, "--chdir", cwd);
    if !rules.net_allow_hosts.is_empty() {
        w.notes
            .push("shares the host network: no host filter".to_owned());
    }
    limits_not_expressed(w, rules);
    w.argv.push("--".into());
}

fn bind(argv: &mut Vec<OsString>, flag: &str, p: &Path) {
    argv.push(flag.into());
    argv.push(p.as_os_str().to_owned());
    argv.push(p.as_os_str().to_owned());
}

fn firejail(w: &mut Wrapped, rules: &Rules, read: &[PathBuf], write: &[PathBuf]) {
    w.argv
        .extend(["--quiet", "--noprofile"].map(OsString::from));
    for p in read {
        w.argv.push(format!("--read-only={}", p.display()).into());
    }
    for p in write {
        w.argv.push(format!("--read-write={}", p.display()).into());
    }
    for p in &rules.deny {
        w.argv.push(format!("--blacklist={}", p.display()).into());
    }
    if !rules.uses_network() {
        w.argv.push("--net=none".into());
    }
    if let Some(n) = rules.max_processes {
        w.argv.push(format!("--rlimit-nproc={n}").into());
        w.notes
            .push("RLIMIT_NPROC counts the user's processes machine-wide".to_owned());
    }
    if let Some(m) = &rules.max_memory {
        w.argv
            .push(format!("--rlimit-as={}", m.to_lowercase()).into());
        w.notes
            .push("RLIMIT_AS caps address space, not memory".to_owned());
    }
    if !rules.net_allow_hosts.is_empty() {
        w.notes
            .push("shares the host network: no host filter".to_owned());
    }
    w.notes
        .push("other paths stay visible (firejail has no allow list outside $HOME)".to_owned());
    determinism_not_expressed(w, rules);
    w.argv.push("--".into());
}

fn syd(w: &mut Wrapped, rules: &Rules, read: &[PathBuf], write: &[PathBuf]) {
    let m = |w: &mut Wrapped, rule: String| push(&mut w.argv, "-m", rule);
    for cat in ["read", "stat", "exec", "write", "net"] {
        m(w, format!("sandbox/{cat}:on"));
    }
    for p in read {
        m(w, format!("allow/read,stat,exec+{}/***", p.display()));
    }
    for p in write {
        m(w, format!("allow/read,stat,write+{}/***", p.display()));
    }
    for p in &rules.deny {
        m(w, format!("deny/read,stat,exec,write+{}/***", p.display()));
    }
    for h in &rules.net_allow_hosts {
        for port in &rules.connects_to {
            m(w, format!("allow/net/connect+{h}!{port}"));
        }
    }
    for port in &rules.net_bind {
        m(w, format!("allow/net/bind+127.0.0.1!{port}"));
        m(w, "allow/net/bind+127.0.0.1!0".to_owned());
    }
    if let Some(n) = rules.max_processes {
        m(w, "sandbox/pid:on".to_owned());
        m(w, format!("pid/max:{n}"));
    }
    if let Some(mem) = &rules.max_memory {
        m(w, "sandbox/mem:on".to_owned());
        m(w, format!("mem/max:{mem}"));
    }
    determinism_not_expressed(w, rules);
    w.argv.push("--".into());
}

/// Notes for a sandbox that neither shifts the clock nor seeds randomness.
fn determinism_not_expressed(w: &mut Wrapped, rules: &Rules) {
    if rules.time_start.is_some() {
        w.notes.push("no clock shift".to_owned());
    }
    if rules.random_seed.is_some() {
        w.notes.push("no seeded randomness".to_owned());
    }
}

fn limits_not_expressed(w: &mut Wrapped, rules: &Rules) {
    determinism_not_expressed(w, rules);
    if rules.max_processes.is_some() {
        w.notes.push("no process cap".to_owned());
    }
    if rules.max_memory.is_some() {
        w.notes.push("no memory cap".to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(kind: Kind) -> Sandbox {
        Sandbox {
            name: format!("{kind:?}").to_lowercase(),
            kind,
            program: Ok(PathBuf::from("/opt/wrapper")),
        }
    }

    fn strings(w: &Wrapped) -> Vec<String> {
        w.argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn rules() -> Rules {
        Rules {
            read: vec!["/stage/bin".into()],
            deny: vec!["/stage/data/secret-file".into()],
            max_processes: Some(10),
            net_allow_hosts: vec!["127.0.0.1".to_owned()],
            connects_to: vec![4000],
            ..Rules::default()
        }
    }

    fn wrap(kind: Kind) -> Wrapped {
        sandbox(kind)
            .wrap(
                &rules(),
                Path::new("/stage"),
                Path::new("/stage/tmp"),
                &["/stage/bin/w".into()],
            )
            .unwrap()
    }

    #[test]
    fn bare_is_the_command_alone() {
        let w = wrap(Kind::Bare);
        assert_eq!(strings(&w), ["/stage/bin/w"]);
        assert!(!w.enforces_deny);
    }

    #[test]
    fn sandlock_gets_its_own_flags() {
        let w = wrap(Kind::Sandlock);
        let a = strings(&w).join(" ");
        assert!(a.starts_with("/opt/wrapper run -r /usr "), "{a}");
        for part in [
            "-r /stage -r /stage/bin",
            "-w /stage/tmp",
            "--fs-deny /stage/data/secret-file",
            "-P 10",
            "--net-allow-host 127.0.0.1",
            "-- /stage/bin/w",
        ] {
            assert!(a.contains(part), "{part} missing in {a}");
        }
        assert!(w.enforces_deny && w.notes.is_empty());
    }

    #[test]
    fn sandlock_default_is_the_bare_run_line() {
        let default = Rules {
            sandlock_default: true,
            ..Rules::default()
        };
        let wrap = |kind| {
            sandbox(kind)
                .wrap(
                    &default,
                    Path::new("/stage"),
                    Path::new("/stage/tmp"),
                    &["/bin/true".into()],
                )
                .unwrap()
        };
        assert_eq!(
            strings(&wrap(Kind::Sandlock)),
            ["/opt/wrapper", "run", "--", "/bin/true"]
        );
        // The others still spell the same grants out.
        let a = strings(&wrap(Kind::Landlock)).join(" ");
        assert!(
            a.contains("--ro /stage --rw /stage/tmp -- /bin/true"),
            "{a}"
        );
    }

    #[test]
    fn sandlock_0_9_speaks_endpoints() {
        let w = wrap(Kind::SandlockCli(Dialect::of_version("0.9.0")));
        let a = strings(&w).join(" ");
        assert!(a.contains("--net-allow 127.0.0.1:4000"), "{a}");
        assert!(!a.contains("--net-allow-host"), "{a}");
        assert_eq!(Dialect::of_version("0.4.1"), Dialect::Classic);
    }

    #[test]
    fn landlock_says_what_it_cannot_express() {
        let w = wrap(Kind::Landlock);
        let a = strings(&w).join(" ");
        // The spawning helper gets the same rules, behind its own flag.
        let spawn = strings(&wrap(Kind::LandlockSpawn));
        assert_eq!(spawn[1], "--spawn");
        assert_eq!(spawn[2..].join(" "), strings(&w)[1..].join(" "));
        let floor = strings(&wrap(Kind::KernelFloor));
        assert_eq!(floor[1..3], ["--floor", "/stage/kernel-floor.bpf"]);
        assert_eq!(floor[3..].join(" "), strings(&w)[1..].join(" "));
        assert!(
            a.contains("--ro /stage/bin --rw /stage/tmp --connect 4000 -- /stage/bin/w"),
            "{a}"
        );
        assert!(!w.enforces_deny);
        assert_eq!(w.notes.len(), 3, "{:?}", w.notes);
    }

    #[test]
    fn bwrap_binds_read_only_and_hides_denied_paths() {
        let w = wrap(Kind::Bwrap);
        let a = strings(&w).join(" ");
        assert!(a.contains("--ro-bind /stage/bin /stage/bin"), "{a}");
        assert!(a.contains("--bind /stage/tmp /stage/tmp"), "{a}");
        assert!(
            a.contains("--ro-bind /dev/null /stage/data/secret-file"),
            "{a}"
        );
        assert!(
            !a.contains("--unshare-net"),
            "the scenario needs the network: {a}"
        );
        assert!(a.contains("--chdir /stage"));
    }

    #[test]
    fn missing_program_gives_its_reason() {
        let s = Sandbox {
            name: "bwrap".to_owned(),
            kind: Kind::Bwrap,
            program: Err("not installed".to_owned()),
        };
        let e = s
            .wrap(&Rules::default(), Path::new("/"), Path::new("/tmp"), &[])
            .unwrap_err();
        assert_eq!(e, "not installed");
    }
}
