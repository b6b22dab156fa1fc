//! The default deny list: syscalls (and argument values) a sandbox never
//! gets, whatever its policy. `docs/security.md` shows this table; a test
//! checks that the document matches [`DENY_LIST`].
//!
//! Arguments the kernel reads as a C `int` are compared on their low 32
//! bits only ([`Cond::u32`]), so setting the upper half of the register
//! cannot slip past a rule.

use sandlock_bpf::{Action, ArgIndex, Cond, Errno, Rule};

/// One row of the deny list.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// The syscalls of the row (names of the native table; a name the
    /// architecture does not have is skipped).
    pub syscalls: &'static [&'static str],
    /// When they are refused, in words.
    pub refused: &'static str,
    /// The answer: an errno, or what decides.
    pub answer: &'static str,
    /// Why.
    pub reason: &'static str,
    /// The rules of the row for one of its syscalls (by number).
    pub(crate) rules: fn(u32) -> Vec<Rule>,
}

const EPERM: Action = Action::Errno(Errno::EPERM);

fn always(nr: u32) -> Vec<Rule> {
    vec![Rule::nr(nr, EPERM)]
}

fn enosys(nr: u32) -> Vec<Rule> {
    vec![Rule::nr(nr, Action::Errno(Errno::ENOSYS))]
}

/// `CLONE_NEW*` bits valid in `clone`'s flags (low 32 bits; `CLONE_NEWTIME`
/// is only for `unshare` and `clone3`: in `clone` bit 7 is the exit signal).
pub(crate) const CLONE_NEW_FLAGS: [u64; 7] = [
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];
/// `CLONE_NEWTIME`, valid for `unshare`.
const CLONE_NEWTIME: u64 = 0x80;

/// One rule per namespace bit: `flags & bit == bit` on the low 32 bits.
fn ns_bits(nr: u32, bits: &[u64]) -> Vec<Rule> {
    bits.iter()
        .map(|&b| Rule::nr(nr, EPERM).when(Cond::masked_eq(ArgIndex::A0, b, b).u32()))
        .collect()
}

fn clone_ns(nr: u32) -> Vec<Rule> {
    ns_bits(nr, &CLONE_NEW_FLAGS)
}

fn unshare_ns(nr: u32) -> Vec<Rule> {
    let mut bits = CLONE_NEW_FLAGS.to_vec();
    bits.push(CLONE_NEWTIME);
    ns_bits(nr, &bits)
}

/// `personality`: only the query (`0xffffffff`), `PER_LINUX` and
/// `PER_LINUX | ADDR_NO_RANDOMIZE`.
pub(crate) const PERSONALITY_ALLOWED: [u64; 3] = [0xffff_ffff, 0, ADDR_NO_RANDOMIZE];
/// `ADDR_NO_RANDOMIZE`.
pub(crate) const ADDR_NO_RANDOMIZE: u64 = 0x0004_0000;

fn personality(nr: u32) -> Vec<Rule> {
    vec![
        Rule::nr(nr, EPERM).when_all(
            PERSONALITY_ALLOWED
                .iter()
                .map(|&p| Cond::ne(ArgIndex::A0, p).u32()),
        ),
    ]
}

/// `TIOCSTI` and `TIOCLINUX`.
pub(crate) const TTY_IOCTLS: [u64; 2] = [0x5412, 0x541c];

fn ioctl_tty(nr: u32) -> Vec<Rule> {
    TTY_IOCTLS
        .iter()
        .map(|&r| Rule::nr(nr, EPERM).when(Cond::eq(ArgIndex::A1, r).u32()))
        .collect()
}

/// The default deny list.
pub const DENY_LIST: &[Entry] = &[
    Entry {
        syscalls: &[
            "mount",
            "umount2",
            "pivot_root",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "move_mount",
            "open_tree",
            "open_tree_attr",
            "mount_setattr",
        ],
        refused: "always",
        answer: "EPERM",
        reason: "change the mount table (as root, or inside a user namespace) and so the paths Landlock sees",
        rules: always,
    },
    Entry {
        syscalls: &["unshare"],
        refused: "flags (low 32 bits) hold a `CLONE_NEW*` bit",
        answer: "EPERM",
        reason: "a new namespace (user, mount, network...) opens kernel surface meant for root",
        rules: unshare_ns,
    },
    Entry {
        syscalls: &["clone"],
        refused: "flags (low 32 bits, all the kernel reads) hold a `CLONE_NEW*` bit",
        answer: "EPERM",
        reason: "same as `unshare`, at process creation",
        rules: clone_ns,
    },
    Entry {
        syscalls: &["clone3"],
        refused: "always",
        answer: "ENOSYS",
        reason: "its flags are in memory, out of the filter's reach; libc falls back to `clone`",
        rules: enosys,
    },
    Entry {
        syscalls: &["setns"],
        refused: "always",
        answer: "EPERM",
        reason: "enter another process's namespaces",
        rules: always,
    },
    Entry {
        syscalls: &[
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "pidfd_getfd",
        ],
        refused: "always",
        answer: "EPERM",
        reason: "read or change another process's memory or descriptors (Landlock also scopes these to the sandbox)",
        rules: always,
    },
    Entry {
        syscalls: &[
            "kexec_load",
            "kexec_file_load",
            "init_module",
            "finit_module",
            "delete_module",
        ],
        refused: "always",
        answer: "EPERM",
        reason: "load or replace kernel code",
        rules: always,
    },
    Entry {
        syscalls: &["bpf", "perf_event_open", "userfaultfd"],
        refused: "always",
        answer: "EPERM",
        reason: "large kernel attack surface (eBPF, perf, page-fault handling in user space)",
        rules: always,
    },
    Entry {
        syscalls: &["io_uring_setup", "io_uring_enter", "io_uring_register"],
        refused: "always",
        answer: "EPERM",
        reason: "operations submitted through a ring are not seen by the seccomp filter",
        rules: always,
    },
    Entry {
        syscalls: &["keyctl", "add_key", "request_key"],
        refused: "always",
        answer: "EPERM",
        reason: "kernel keyrings are shared by the uid and outlive the sandbox",
        rules: always,
    },
    Entry {
        syscalls: &["open_by_handle_at", "name_to_handle_at"],
        refused: "always",
        answer: "EPERM",
        reason: "opening a file by handle skips the path walk Landlock checks",
        rules: always,
    },
    Entry {
        syscalls: &[
            "swapon",
            "swapoff",
            "reboot",
            "acct",
            "quotactl",
            "quotactl_fd",
        ],
        refused: "always",
        answer: "EPERM",
        reason: "machine-wide administration",
        rules: always,
    },
    Entry {
        syscalls: &["settimeofday", "clock_settime", "clock_adjtime", "adjtimex"],
        refused: "always",
        answer: "EPERM",
        reason: "set the machine's clock (the read-only `adjtimex` query is refused too: its mode is in memory)",
        rules: always,
    },
    Entry {
        syscalls: &["lookup_dcookie", "iopl", "ioperm"],
        refused: "always",
        answer: "EPERM",
        reason: "kernel profiling internals and raw I/O ports",
        rules: always,
    },
    Entry {
        syscalls: &["personality"],
        refused: "persona (low 32 bits) other than the query `0xffffffff`, `PER_LINUX` with or without `ADDR_NO_RANDOMIZE`",
        answer: "EPERM",
        reason: "other personas weaken the process (`READ_IMPLIES_EXEC`, a fixed low address space)",
        rules: personality,
    },
    Entry {
        syscalls: &["ioctl"],
        refused: "request (low 32 bits) is `TIOCSTI` or `TIOCLINUX`",
        answer: "EPERM",
        reason: "push input into the terminal, typed as if by the user outside the sandbox",
        rules: ioctl_tty,
    },
];
