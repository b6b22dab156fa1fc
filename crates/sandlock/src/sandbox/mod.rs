//! [`Sandbox`]: a policy made ready to run commands.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Arc, Once};

use sandlock_notify::Listener;
use sandlock_policy::{Compat, Policy};

use crate::compat::{self, Protection};
use crate::error::Error;
use crate::kernel;
use crate::limits::{
    self, CpuCap, LaunchLimits, LimitExceeded, Mechanisms, MemoryGuard, ProcessCap,
};
use crate::newroot::NewRoot;
use crate::process::{Capture, Child, Sup, Tracking};
use crate::ruleset::{Grant, Landlock};
use crate::seccomp::{self, Programs};
use crate::spawn;
use crate::supervise::net::HostTable;
use crate::supervise::{self, AuditLog, Feature, Pending, Tasks};
use crate::sys::child::ExecArgs;
use crate::terminal::Terminal;
use crate::tmpdir::TempDir;
use crate::{env, ns, sys};

mod masks;
mod prepare;

pub(crate) use prepare::cpu_mask;
use prepare::{check_dir, cstring, resolve};

/// Where a standard descriptor of the command comes from.
#[derive(Debug, Default)]
pub enum Stdio {
    /// The caller's own (the default).
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
    /// A pipe: [`Child::stdin`] / `stdout` / `stderr` after
    /// [`Sandbox::spawn`]; captured into [`RunResult`] by [`Sandbox::run`].
    Piped,
    /// This descriptor (duplicated for each command).
    Fd(OwnedFd),
}

/// Descriptors for (or of) the command's 0, 1 and 2.
type StdioFds = [Option<OwnedFd>; 3];

/// What [`Sandbox::run`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunResult {
    /// The command's status.
    pub status: ExitStatus,
    /// Its standard output, when piped (empty otherwise).
    pub stdout: Vec<u8>,
    /// Its standard error, when piped (empty otherwise).
    pub stderr: Vec<u8>,
    /// Whether the sandbox was killed at its timeout.
    pub timed_out: bool,
    /// Why sandlock ended the sandbox before its command ended, if a limit
    /// that only a kill can hold was passed (see `docs/resources.md`).
    pub limit_exceeded: Option<LimitExceeded>,
}

impl RunResult {
    /// The status as a shell reports it: the exit code, `128 + N` for a
    /// death by signal N, and 124 when the timeout killed the sandbox.
    pub fn code(&self) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        if self.timed_out {
            124
        } else if let Some(code) = self.status.code() {
            code
        } else {
            128 + self.status.signal().unwrap_or(0)
        }
    }
}

/// A policy made ready to run commands: its seccomp programs are built,
/// its Landlock ruleset created and its paths opened, and every setting is
/// checked. Any number of commands may be started from one `Sandbox`.
///
/// ```no_run
/// use sandlock::{Policy, Sandbox, Stdio};
///
/// let policy = Policy::builder().fs_read("/usr").fs_read("/lib").fs_read("/lib64").build()?;
/// let out = Sandbox::new(policy)?.stdout(Stdio::Piped).run(&["/usr/bin/echo", "hi"])?;
/// assert_eq!(out.stdout, b"hi\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The child dies with the thread that forked it (`PR_SET_PDEATHSIG` fires
/// when the *thread* that called `spawn` or `run` exits, not the process):
/// call them from a thread that outlives the sandbox.
pub struct Sandbox {
    policy: Arc<Policy>,
    programs: Programs,
    landlock: Option<Landlock>,
    features: Arc<Vec<Box<dyn Feature>>>,
    missing: Vec<Protection>,
    tmp: Option<TempDir>,
    stdio: [Stdio; 3],
    interactive: bool,
    forward_signals: bool,
    audit: Option<Arc<AuditLog>>,
    pid_namespace: bool,
    mech: Mechanisms,
    hosts: Arc<HostTable>,
    /// Whether stale private directories were swept already.
    swept: std::sync::atomic::AtomicBool,
    /// The seed library preloaded into the command (`random_seed`).
    preload: Option<crate::seedlib::Preload>,
    /// The new root (`chroot`).
    root: Option<NewRoot>,
    /// The policy's masked paths that exist (`fs_masked`).
    masks: Vec<std::path::PathBuf>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("policy", &self.policy)
            .field("missing", &self.missing)
            .field("tmp", &self.tmp)
            .finish_non_exhaustive()
    }
}

/// Checks the kernel against what `policy` asks for: an error in strict
/// mode, a warning (once per protection and process) in best-effort mode.
pub(crate) fn check_kernel(policy: &Policy) -> Result<Vec<Protection>, Error> {
    let missing = compat::missing(policy);
    if let Some(&first) = missing.first()
        && policy.compat() == Compat::Strict
    {
        return Err(Error::Unsupported(first));
    }
    // Running outside the new root would run another program, on other
    // files; without the masks, the grants would show what they hide:
    // never best-effort.
    for p in [Protection::NewRoot, Protection::MaskedPaths] {
        if missing.contains(&p) {
            return Err(Error::Unsupported(p));
        }
    }
    static WARNED: [Once; Protection::ALL.len()] = [const { Once::new() }; Protection::ALL.len()];
    for p in &missing {
        if let Some(i) = Protection::ALL.iter().position(|q| q == p) {
            WARNED[i]
                .call_once(|| eprintln!("sandlock: warning: not enforced by this kernel: {p}"));
        }
    }
    Ok(missing)
}

impl Sandbox {
    /// Checks `policy`, builds its seccomp programs and its Landlock ruleset.
    ///
    /// Fails when a setting is invalid or not implemented, a path cannot be
    /// opened, or (in strict mode) the kernel lacks a protection the policy
    /// asks for; in best-effort mode each missing protection is printed
    /// once on standard error and listed by [`not_enforced`](Self::not_enforced).
    pub fn new(policy: Policy) -> Result<Sandbox, Error> {
        let limited = !policy.max_memory().is_unlimited()
            || !policy.max_processes().is_unlimited()
            || !policy.max_cpu().is_unlimited();
        let mech = if limited {
            Mechanisms::detect()
        } else {
            Mechanisms {
                processes: ProcessCap::Supervisor,
                memory: MemoryGuard::Watchdog,
                cpu: CpuCap::Throttle,
            }
        };
        Sandbox::with_mechanisms(policy, mech)
    }

    /// [`Sandbox::new`] with the mechanisms that hold the limits chosen by
    /// the caller rather than detected (a cgroup mechanism that cannot be
    /// set up fails the launch).
    pub fn with_mechanisms(policy: Policy, mech: Mechanisms) -> Result<Sandbox, Error> {
        // With a new root, the policy's paths are inside it: from here on
        // they are the host paths they name (see `newroot`).
        let root = match policy.chroot() {
            Some(dir) => Some(NewRoot::open(Path::new(dir.as_str()))?),
            None => None,
        };
        let policy = match &root {
            Some(r) => r.rooted(&policy)?,
            None => policy,
        };
        let missing = check_kernel(&policy)?;
        let masks = masks::masks(&policy, root.as_ref().map(NewRoot::host_path))?;
        // Host names are resolved once, here, before any fork.
        let hosts = Arc::new(HostTable::resolve(&policy)?);
        let mut features = supervise::features(&policy)?;
        if let Some(f) = limits::feature(&policy, mech)? {
            features.push(f);
        }
        let programs = seccomp::build(&policy, &features, true)?;
        let mut landlock = match kernel::landlock_abi() {
            Some(abi) => Some(Landlock::build(&policy, abi)?),
            None => None,
        };
        // Under a seed, libc's getrandom() is answered in the process by
        // the preloaded seed library, bound in the mount namespace (not
        // inside a chroot: its mount point is outside), whose mount point
        // the sandbox must not reach otherwise (see `seedlib`).
        let preload = if policy.random_seed().is_some()
            && policy.chroot().is_none()
            && Protection::SeededDevices.available()
        {
            let reachable = |lib: &crate::seedlib::Preload| {
                landlock
                    .as_ref()
                    .is_some_and(|ll| ll.grants_beneath(&lib.holders()))
            };
            crate::seedlib::Preload::create(|lib| !reachable(lib))?
        } else {
            None
        };
        if let (Some(lib), Some(ll)) = (&preload, &mut landlock) {
            let path = lib.path().to_string_lossy().into_owned();
            ll.add_path(&path, Grant::Read, "random_seed library")?;
        }
        let clean_env = policy.clean_env();
        let sandbox = Sandbox {
            policy: Arc::new(policy),
            programs,
            landlock,
            features: Arc::new(features),
            missing,
            tmp: None,
            stdio: [Stdio::Inherit, Stdio::Inherit, Stdio::Inherit],
            interactive: false,
            forward_signals: false,
            audit: None,
            pid_namespace: true,
            hosts,
            swept: std::sync::atomic::AtomicBool::new(false),
            mech,
            preload,
            root,
            masks,
        };
        if clean_env {
            sandbox.with_private_tmp()
        } else {
            Ok(sandbox)
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The mechanisms that hold the policy's limits.
    pub fn mechanisms(&self) -> Mechanisms {
        self.mech
    }

    /// The seccomp programs (for `--dry-run-policy` and tests).
    pub fn programs(&self) -> &Programs {
        &self.programs
    }

    /// The protections the policy asks for that this kernel does not
    /// enforce (empty unless the policy is best-effort).
    pub fn not_enforced(&self) -> &[Protection] {
        &self.missing
    }

    /// Gives the sandbox a private temporary directory: created `0700`,
    /// writable inside, exported as `TMPDIR` (and as `HOME` with
    /// `clean_env`), removed with its contents when the `Sandbox` is dropped.
    /// A policy with `clean_env` gets one anyway.
    pub fn with_private_tmp(mut self) -> Result<Sandbox, Error> {
        if self.tmp.is_none() {
            const FIELD: &str = "private temporary directory";
            let Some(root) = &self.root else {
                let tmp = TempDir::for_sandbox()?;
                if let Some(ll) = &mut self.landlock {
                    let path = tmp.path().to_string_lossy().into_owned();
                    ll.add_path(&path, Grant::Write, FIELD)?;
                }
                self.tmp = Some(tmp);
                return Ok(self);
            };
            // In the new root's /tmp: the sandbox could not reach the
            // host's. The tree may be writable by another sandbox: the
            // directory made is granted by a descriptor opened from the
            // root and checked to be the one made.
            let base = root.host(Path::new("/tmp")).map_err(|errno| Error::Path {
                field: FIELD,
                path: root.host_path().join("tmp").display().to_string(),
                errno,
            })?;
            let tmp = TempDir::for_sandbox_in(&base)?;
            let path = tmp.path().to_string_lossy().into_owned();
            let fd = root.made_dir(tmp.path()).map_err(|errno| Error::Path {
                field: FIELD,
                path: path.clone(),
                errno,
            })?;
            if let Some(ll) = &mut self.landlock {
                ll.add_fd(fd, &path, Grant::Write, FIELD)?;
            }
            self.tmp = Some(tmp);
        }
        Ok(self)
    }

    /// The private temporary directory, if the sandbox has one.
    pub fn private_tmp(&self) -> Option<&Path> {
        self.tmp.as_ref().map(TempDir::path)
    }

    /// Where the command's standard input comes from.
    pub fn stdin(mut self, s: Stdio) -> Sandbox {
        self.stdio[0] = s;
        self
    }

    /// Where the command's standard output goes.
    pub fn stdout(mut self, s: Stdio) -> Sandbox {
        self.stdio[1] = s;
        self
    }

    /// Where the command's standard error goes.
    pub fn stderr(mut self, s: Stdio) -> Sandbox {
        self.stdio[2] = s;
        self
    }

    /// Gives the command the terminal: its process group becomes the
    /// terminal's foreground group while it runs (sandlock's comes back at
    /// the end, with the terminal's settings).
    pub fn interactive(mut self, on: bool) -> Sandbox {
        self.interactive = on;
        self
    }

    /// Passes `SIGINT`, `SIGTERM`, `SIGHUP` and `SIGQUIT` received by this
    /// process on to the running sandbox's process group. Installs
    /// process-wide handlers for those signals (meant for command-line
    /// tools; a library embedding sandlock usually does its own).
    pub fn forward_signals(mut self) -> Result<Sandbox, Error> {
        sys::host::install_signal_forwarding(&[
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
        ])
        .map_err(Error::os("sigaction"))?;
        self.forward_signals = true;
        Ok(self)
    }

    /// Whether commands run in a PID namespace of their own (with an IPC
    /// namespace, and a user namespace for a caller without root), where
    /// the machine allows it: on by default. It is what guarantees that
    /// nothing of the sandbox outlives a sandlock killed with `SIGKILL`;
    /// see `docs/namespaces.md` for what it changes inside.
    pub fn pid_namespace(mut self, on: bool) -> Sandbox {
        self.pid_namespace = on;
        self
    }

    /// Writes one JSON line per intercepted syscall to `log`.
    pub fn audit(mut self, log: AuditLog) -> Sandbox {
        self.audit = Some(Arc::new(log));
        self
    }

    /// Starts `argv` in the sandbox, its supervisor running at once.
    pub fn spawn<S: AsRef<OsStr>>(&self, argv: &[S]) -> Result<Child, Error> {
        let (mut child, _) = self.start(argv, false)?;
        child.start_supervisor()?;
        Ok(child)
    }

    /// Runs `argv` to its end (killing the sandbox at the policy's timeout)
    /// and returns its status and piped output. The supervisor starts at
    /// the first intercepted syscall, if any.
    pub fn run<S: AsRef<OsStr>>(&self, argv: &[S]) -> Result<RunResult, Error> {
        let (mut child, pipes) = self.start(argv, true)?;
        let [_, out, err] = pipes;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let mut captures = [
            Capture {
                pipe: out,
                out: &mut stdout,
            },
            Capture {
                pipe: err,
                out: &mut stderr,
            },
        ];
        let status = child.wait_capturing(&mut captures)?;
        Ok(RunResult {
            status,
            stdout,
            stderr,
            timed_out: child.timed_out(),
            limit_exceeded: child.limit_exceeded(),
        })
    }

    /// Ends the sandbox in a process that is about to exit. The private
    /// temporary directory is removed and the audit log closed, as when it
    /// is dropped; the descriptors of the Landlock rules' paths (one per
    /// granted path: about 150 as root, where `/etc` is granted entry by
    /// entry) are left for the kernel to close at the exit, which costs
    /// less than a `close` each. In a process that goes on, drop the
    /// sandbox instead.
    pub fn finish_before_exit(mut self) {
        if let Some(landlock) = self.landlock.take() {
            std::mem::forget(landlock);
        }
    }

    /// Forks and confines; returns the child and, for `run`, the parent
    /// ends of the pipes (for `spawn` they go into the `Child`).
    fn start<S: AsRef<OsStr>>(
        &self,
        argv: &[S],
        for_run: bool,
    ) -> Result<(Child, StdioFds), Error> {
        let policy = &self.policy;
        let first = argv.first().ok_or(Error::NoCommand)?.as_ref();
        let root = self.root.as_ref();
        // The private directory by the path the sandbox sees.
        let tmp = self.tmp.as_ref().map(|t| match root {
            Some(r) => r.inside(t.path()).unwrap_or_else(|| t.path().to_path_buf()),
            None => t.path().to_path_buf(),
        });
        let mut envv = env::build(policy, std::env::vars_os(), tmp.as_deref());
        if let Some(lib) = &self.preload {
            env::preload(&mut envv, lib.path());
        }
        let mut workdir = policy.workdir().map(|w| w.as_path().to_path_buf());
        if let Some(w) = &workdir {
            check_dir(w, root)?;
        }
        if root.is_some() && workdir.is_none() {
            // The caller's directory is not in the new root.
            workdir = Some(PathBuf::from("/"));
        }
        let program = resolve(first, &env::path_of(&envv), workdir.as_deref(), root)?;
        let exec = ExecArgs::new(
            cstring("command", program.into_os_string())?,
            argv.iter()
                .map(|a| cstring("command", a.as_ref().to_owned()))
                .collect::<Result<_, _>>()?,
            envv.into_iter()
                .map(|(k, v)| {
                    let mut kv = k;
                    kv.push("=");
                    kv.push(v);
                    cstring("env", kv)
                })
                .collect::<Result<_, _>>()?,
        );
        let mut plan = self.plan(workdir.as_deref())?;
        plan.deadline = policy.timeout().map(|t| (std::time::Instant::now() + t, t));
        for f in self.features.iter() {
            f.prepare(&mut plan)?;
        }
        if let Some(lib) = &self.preload {
            lib.mount(&mut plan.ns.mounts);
        }
        // A feature that answers the command's own execve needs the
        // supervisor running before it: started at once, not lazily.
        if self.features.iter().any(|f| f.supervises_exec()) {
            plan.exec_supervised = true;
        }
        let launch_limits = LaunchLimits::prepare(policy, &self.mech, &mut plan)?;
        let terminal = if self.interactive {
            plan.wait_go = true;
            Some(Terminal::open()?)
        } else {
            None
        };
        let (child_ends, mut parent_ends) = self.stdio_fds(for_run)?;
        let features = &self.features;
        let mut before_exec = |pid: i32| -> Result<(), Error> {
            launch_limits.before_exec(pid)?;
            if let Some(t) = &terminal {
                t.give_to(pid)?;
            }
            for f in features.iter() {
                f.before_exec(pid)?;
            }
            Ok(())
        };
        let started = ns::launch::launch(
            &plan,
            &ns::launch::Parts {
                exec: &exec,
                stdio: &child_ends,
                landlock: self.landlock.as_ref(),
                programs: &self.programs,
                forward_signals: self.forward_signals,
            },
            &mut before_exec,
        )?;
        drop(child_ends);
        // The child's own ruleset (with its grants on new mounts) for the
        // supervisor's confined workers (supervise/confined.rs), when a
        // feature needs them.
        let confined_ruleset = if self.features.iter().any(|f| f.confines()) {
            started.ruleset.map(Arc::new)
        } else {
            None
        };
        let pidns = started.ns_flags & ns::CLONE_NEWPID != 0;
        let launched = started.launched;
        let tasks = Tasks::new(launched.pid, &launched.pidfd, pidns);
        let limited = !policy.max_memory().is_unlimited()
            || !policy.max_processes().is_unlimited()
            || !policy.max_cpu().is_unlimited();
        let runtime = if limited {
            let live = supervise::live_policy(policy, &self.hosts)?;
            Some(Arc::new(limits::Runtime::new(
                policy,
                live,
                self.mech,
                tasks.clone(),
                launch_limits,
            )))
        } else {
            None
        };
        let monitor = match &runtime {
            Some(rt) => limits::monitor::Monitor::start(rt)
                .map_err(Error::io("starting the limits' monitor thread"))?,
            None => None,
        };
        let sup = match launched.listener {
            Some(fd) => {
                let listener =
                    Listener::from_fd(fd).map_err(|e| Error::Supervisor(e.to_string()))?;
                Sup::Pending(Box::new(Pending {
                    listener,
                    features: self.features.clone(),
                    policy: policy.clone(),
                    tasks: tasks.clone(),
                    audit: self.audit.clone(),
                    limits: runtime.clone(),
                    ruleset: confined_ruleset,
                    private_tmp: self.private_tmp().map(Path::to_path_buf),
                    hosts: self.hosts.clone(),
                }))
            }
            None => Sup::Off,
        };
        if let Some(tmp) = &self.tmp
            && !self.swept.swap(true, std::sync::atomic::Ordering::Relaxed)
            && let Some(base) = tmp.path().parent()
        {
            // While the command starts, on another CPU.
            if base != std::env::temp_dir() {
                crate::tmpdir::sweep_stale(base, !tmp.is_slot());
            }
        }
        // Its init's stack (an init sharing our memory) lasts as long as
        // the sandbox.
        let init_stack = launched.init_stack;
        let (mut sup, mut status) = (sup, launched.status);
        if let Some(pending) = launched.exec_pending {
            // The command's own execve waits for the supervisor.
            if let Sup::Pending(p) = sup {
                sup = match supervise::start(*p) {
                    Ok(h) => Sup::Running(h),
                    Err(e) => return Err(spawn::abandon(&launched.pidfd, e)),
                };
            }
            status = spawn::finish_exec(pending, &launched.pidfd, &exec)?;
        }
        let mut child = Child::new(
            launched.pid,
            launched.pidfd,
            sup,
            Tracking {
                tasks,
                limits: runtime,
                monitor,
                status_sock: status,
            },
            policy.timeout(),
            terminal,
            self.forward_signals,
        );
        child.keep(std::mem::take(&mut plan.keep));
        if let Some(stack) = init_stack {
            child.keep(vec![Box::new(stack)]);
        }
        if !for_run {
            child.stdin = parent_ends[0].take().map(Into::into);
            child.stdout = parent_ends[1].take().map(Into::into);
            child.stderr = parent_ends[2].take().map(Into::into);
        }
        Ok((child, parent_ends))
    }
}
