//! The flags of `sandlock run`, and how they become a policy.
//!
//! Values are taken as text and validated by the policy builder, so that a
//! bad size, port or path is reported as `sandlock: FLAG VALUE: why` with
//! exit status 125 (clap's own errors, exit 2, are for unknown flags and
//! missing values).

use std::ffi::OsString;

use clap::Args;
use sandlock::{Compat, Policy, PolicyBuilder};

/// `sandlock run` (flags of sandlock 0.4.1, plus `--best-effort`,
/// `--audit` and `--dry-run-policy`).
#[derive(Args, Debug, Default, PartialEq)]
pub(crate) struct RunArgs {
    /// Grant read and execute on PATH and below (repeatable).
    #[arg(short = 'r', long = "fs-read", value_name = "PATH")]
    pub fs_read: Vec<String>,
    /// Grant read, write and create on PATH and below (repeatable).
    #[arg(short = 'w', long = "fs-write", value_name = "PATH")]
    pub fs_write: Vec<String>,
    /// Close PATH and everything below it, even inside a granted tree
    /// (repeatable): it cannot be opened, listed, executed, renamed, linked,
    /// truncated, changed or removed.
    #[arg(long = "fs-deny", value_name = "PATH")]
    pub fs_deny: Vec<String>,
    /// Hide PATH inside a granted tree (repeatable): not found, even if
    /// the host replaces it, by a read-only overlay of its directory in
    /// the sandbox's own mount namespace. Costs nothing after the start.
    #[arg(long = "fs-mask", value_name = "PATH")]
    pub fs_mask: Vec<String>,
    /// Memory of the whole sandbox (e.g. 512M): over it, allocations fail (ENOMEM).
    #[arg(short = 'm', long = "max-memory", value_name = "SIZE")]
    pub max_memory: Option<String>,
    /// Tasks (processes and threads) alive in the sandbox at once.
    #[arg(short = 'P', long = "max-processes", value_name = "N")]
    pub max_processes: Option<String>,
    /// CPU share of the whole sandbox, percent of one core.
    #[arg(short = 'c', long = "cpu", value_name = "PERCENT")]
    pub cpu: Option<String>,
    /// RLIMIT_NOFILE (soft and hard) of the command.
    #[arg(long = "max-open-files", value_name = "N")]
    pub max_open_files: Option<String>,
    /// Kill the whole sandbox after SECS seconds (exit status 124).
    #[arg(short = 't', long = "timeout", value_name = "SECS")]
    pub timeout: Option<String>,
    /// Allow reaching HOST: a name (resolved once at start), an IPv4 or
    /// IPv6 address, or a CIDR network (repeatable).
    #[arg(long = "net-allow-host", value_name = "HOST")]
    pub net_allow_host: Vec<String>,
    /// Allow binding TCP PORT (repeatable).
    #[arg(long = "net-bind", value_name = "PORT")]
    pub net_bind: Vec<String>,
    /// Allow connecting to TCP PORT (repeatable).
    #[arg(long = "net-connect", value_name = "PORT")]
    pub net_connect: Vec<String>,
    /// No UDP sockets (with host rules, which allow UDP otherwise).
    #[arg(long = "no-udp")]
    pub no_udp: bool,
    /// No abstract unix sockets outside the sandbox (on by default).
    #[arg(long = "isolate-ipc")]
    pub isolate_ipc: bool,
    /// No signals to processes outside the sandbox (on by default).
    #[arg(long = "isolate-signals")]
    pub isolate_signals: bool,
    /// Start from a minimal environment (PATH, LANG, TERM, HOME).
    #[arg(long = "clean-env")]
    pub clean_env: bool,
    /// Set an environment variable (repeatable; kept even if it looks secret).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Start the sandbox's realtime clocks at this instant (e.g. 2000-06-15T00:00:00).
    #[arg(long = "time-start", value_name = "ISO8601")]
    pub time_start: Option<String>,
    /// Seed getrandom, /dev/urandom and /dev/random with N (reproducible bytes).
    #[arg(long = "random-seed", value_name = "N")]
    pub random_seed: Option<String>,
    /// Turn address-space layout randomisation off.
    #[arg(long = "no-randomize-memory")]
    pub no_randomize_memory: bool,
    /// Turn transparent huge pages off.
    #[arg(long = "no-huge-pages")]
    pub no_huge_pages: bool,
    /// No core dumps (RLIMIT_CORE 0).
    #[arg(long = "no-coredump")]
    pub no_coredump: bool,
    /// Run on N CPUs, and say N in nproc, /proc/cpuinfo and /sys/devices/system/cpu.
    #[arg(long = "num-cpus", value_name = "N")]
    pub num_cpus: Option<String>,
    /// Pin the sandbox to these CPUs (e.g. 0-3,6).
    #[arg(long = "cpu-cores", value_name = "LIST")]
    pub cpu_cores: Option<String>,
    /// Host name inside the sandbox (uname, /etc/hostname).
    #[arg(long = "hostname", value_name = "NAME")]
    pub hostname: Option<String>,
    /// New root directory. Not implemented (see docs/cli.md).
    #[arg(long = "chroot", value_name = "DIR")]
    pub chroot: Option<String>,
    /// Working directory of the command.
    #[arg(long = "workdir", alias = "cwd", value_name = "DIR")]
    pub workdir: Option<String>,
    /// Start from this saved profile instead of the default one.
    #[arg(short = 'p', long = "profile", value_name = "NAME")]
    pub profile: Option<String>,
    /// Write one JSON line with the outcome to this descriptor.
    #[arg(long = "status-fd", value_name = "FD")]
    pub status_fd: Option<String>,
    /// Give the command the terminal (foreground process group).
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    /// Run CMD with /bin/sh -c.
    #[arg(short = 'e', long = "exec-shell", value_name = "CMD")]
    pub exec_shell: Option<String>,
    /// Run even where the kernel lacks a protection (each is reported).
    #[arg(long = "best-effort")]
    pub best_effort: bool,
    /// Write one JSON line per intercepted syscall to FILE.
    #[arg(long = "audit", value_name = "FILE")]
    pub audit: Option<String>,
    /// Print the resolved policy and the seccomp programs, then exit.
    #[arg(long = "dry-run-policy")]
    pub dry_run_policy: bool,
    /// The command and its arguments (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// The flag that sets a policy field, for messages.
pub(crate) fn flag_of(field: &str) -> &str {
    match field {
        "fs_readable" => "-r",
        "fs_writable" => "-w",
        "fs_denied" => "--fs-deny",
        "fs_masked" => "--fs-mask",
        "max_memory" => "-m/--max-memory",
        "max_processes" => "-P/--max-processes",
        "max_cpu" => "-c/--cpu",
        "max_open_files" => "--max-open-files",
        "timeout" => "-t",
        "net_allow_hosts" => "--net-allow-host",
        "net_bind" => "--net-bind",
        "net_connect" => "--net-connect",
        "env" => "--env",
        "time_start" => "--time-start",
        "random_seed" => "--random-seed",
        "num_cpus" => "--num-cpus",
        "cpu_cores" => "--cpu-cores",
        "hostname" => "--hostname",
        "workdir" => "--workdir",
        "chroot" => "--chroot",
        "policy_fn" => "the policy callback",
        other => other,
    }
}

/// `path` made absolute against the current directory (lexically).
fn absolute(path: &str) -> String {
    if path.starts_with('/') || path.is_empty() {
        return path.to_owned();
    }
    match std::env::current_dir() {
        Ok(cwd) => cwd.join(path).to_string_lossy().into_owned(),
        Err(_) => path.to_owned(),
    }
}

impl RunArgs {
    /// A path of the policy made absolute: against the current directory,
    /// or with `--chroot`, against the working directory in the new root
    /// (`--workdir`, else `/`).
    fn path(&self, p: &str) -> String {
        if self.chroot.is_none() || p.starts_with('/') || p.is_empty() {
            return absolute(p);
        }
        let mut base = std::path::PathBuf::from("/");
        if let Some(w) = &self.workdir {
            base.push(w);
        }
        base.join(p).to_string_lossy().into_owned()
    }

    /// `--workdir`, absolute: with `--chroot`, against the new root's `/`.
    pub(crate) fn workdir_path(&self, w: &str) -> String {
        if self.chroot.is_some() && !w.starts_with('/') {
            return format!("/{w}");
        }
        absolute(w)
    }

    /// Every path given with -r / -w (absolute).
    pub(crate) fn granted(&self) -> Vec<String> {
        self.fs_read
            .iter()
            .chain(&self.fs_write)
            .map(|p| self.path(p))
            .collect()
    }

    /// Whether `path` (for `field`) was given on the command line.
    pub(crate) fn gave(&self, field: &str, path: &str) -> bool {
        let list = match field {
            "fs_readable" => &self.fs_read,
            "fs_writable" => &self.fs_write,
            "fs_denied" => &self.fs_deny,
            "fs_masked" => &self.fs_mask,
            "chroot" => return self.chroot.as_deref().map(absolute).as_deref() == Some(path),
            "workdir" => {
                return self
                    .workdir
                    .as_deref()
                    .map(|w| self.workdir_path(w))
                    .as_deref()
                    == Some(path);
            }
            _ => return false,
        };
        list.iter().any(|p| self.path(p) == path)
    }

    /// The flags layered on `base`. A bad `--random-seed` is reported as
    /// `Err(value)` (the builder takes a number).
    pub(crate) fn apply(&self, base: PolicyBuilder) -> Result<PolicyBuilder, String> {
        let mut b = base;
        for p in &self.fs_read {
            b = b.fs_read(self.path(p));
        }
        for p in &self.fs_write {
            b = b.fs_write(self.path(p));
        }
        for p in &self.fs_deny {
            b = b.fs_deny(self.path(p));
        }
        for p in &self.fs_mask {
            b = b.fs_mask(self.path(p));
        }
        if let Some(v) = &self.max_memory {
            b = b.max_memory(v.as_str());
        }
        if let Some(v) = &self.max_processes {
            b = b.max_processes(v.as_str());
        }
        if let Some(v) = &self.cpu {
            b = b.max_cpu(v.as_str());
        }
        if let Some(v) = &self.max_open_files {
            b = b.max_open_files(v.as_str());
        }
        if let Some(v) = &self.timeout {
            b = b.timeout(v.as_str());
        }
        for h in &self.net_allow_host {
            b = b.net_allow_host(h.as_str());
        }
        for p in &self.net_bind {
            b = b.net_bind(p.as_str());
        }
        for p in &self.net_connect {
            b = b.net_connect(p.as_str());
        }
        if self.no_udp {
            b = b.no_udp(true);
        }
        if self.isolate_ipc {
            b = b.isolate_ipc(true);
        }
        if self.isolate_signals {
            b = b.isolate_signals(true);
        }
        if self.clean_env {
            b = b.clean_env(true);
        }
        for e in &self.env {
            b = b.env(e.as_str());
        }
        if let Some(v) = &self.time_start {
            b = b.time_start(v.as_str());
        }
        if let Some(v) = &self.random_seed {
            let seed: u64 = v.trim().parse().map_err(|_| v.clone())?;
            b = b.random_seed(seed);
        }
        if self.no_randomize_memory {
            b = b.no_randomize_memory(true);
        }
        if self.no_huge_pages {
            b = b.no_huge_pages(true);
        }
        if self.no_coredump {
            b = b.no_coredump(true);
        }
        if let Some(v) = &self.num_cpus {
            b = b.num_cpus(v.as_str());
        }
        if let Some(v) = &self.cpu_cores {
            b = b.cpu_cores(v.as_str());
        }
        if let Some(v) = &self.hostname {
            b = b.hostname(v.as_str());
        }
        if let Some(v) = &self.chroot {
            b = b.chroot(absolute(v));
        }
        if let Some(v) = &self.workdir {
            b = b.workdir(self.workdir_path(v));
        }
        if self.best_effort {
            b = b.compat(Compat::BestEffort);
        }
        Ok(b)
    }

    /// The command to run.
    pub(crate) fn argv(&self) -> Vec<OsString> {
        match &self.exec_shell {
            Some(cmd) => {
                let mut v: Vec<OsString> = vec!["/bin/sh".into(), "-c".into(), cmd.into()];
                if !self.command.is_empty() {
                    // `sh -c CMD NAME ARGS...`: the rest become $0, $1...
                    v.extend(self.command.iter().cloned());
                }
                v
            }
            None => self.command.clone(),
        }
    }
}

/// The policy from a profile (or the default one) and the flags.
pub(crate) fn policy(args: &RunArgs) -> Result<Policy, sandlock::Error> {
    let base = match &args.profile {
        Some(name) => sandlock::profile::load_profile(name)?.to_builder(),
        None => {
            let granted = args.granted();
            let refs: Vec<&str> = granted.iter().map(String::as_str).collect();
            match &args.chroot {
                Some(root) => {
                    let workdir = args.workdir.as_deref().map(|w| args.workdir_path(w));
                    sandlock::profile::default_builder_rooted(
                        std::path::Path::new(&absolute(root)),
                        workdir.as_deref(),
                        &refs,
                    )?
                }
                None => sandlock::profile::default_builder(&refs)?,
            }
        }
    };
    let b = args.apply(base).map_err(|value| sandlock::Error::Invalid {
        field: "random_seed",
        value,
        why: "is not a number in 0..=18446744073709551615".to_owned(),
    })?;
    Ok(b.build()?)
}
