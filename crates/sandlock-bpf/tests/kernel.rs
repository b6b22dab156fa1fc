//! Real kernel: forked children load generated programs with seccomp(2) and
//! make syscalls; the parent checks what the kernel did.
//!
//! Children write their results into a shared anonymous mapping, so they need
//! no syscall to report (the filter may deny `write`), and they call only
//! async-signal-safe functions between `fork` and `_exit`.
#![cfg(target_os = "linux")]

use proptest::prelude::*;
use sandlock_bpf::arch::X32_SYSCALL_BIT;
use sandlock_bpf::{Action, Arch, ArgIndex, Cond, Errno, Filter, Insn, Program, Rule};

const SLOTS: usize = 64;
const TIOCSTI: u64 = 0x5412;
const TCGETS: u64 = 0x5401;
/// Marks slot 0 once the filter is loaded.
const LOADED: i64 = 0x5eed;

/// A page shared between parent and child.
struct Shared(*mut i64);

impl Shared {
    fn new() -> Shared {
        // SAFETY: a fresh anonymous shared mapping; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap");
        Shared(p.cast())
    }

    fn slots(&mut self) -> &mut [i64] {
        // SAFETY: the mapping is 4096 bytes, holds SLOTS i64s, lives as long as
        // `self`, and parent and child never access it at the same time
        // (the parent reads only after waitpid).
        unsafe { std::slice::from_raw_parts_mut(self.0, SLOTS) }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `new`.
        unsafe { libc::munmap(self.0.cast(), 4096) };
    }
}

/// How the child ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Exited(i32),
    Signaled(i32),
}

/// A raw syscall; `-errno` on failure.
fn sys(nr: libc::c_long, a: [u64; 3]) -> i64 {
    // SAFETY: raw syscalls with integer arguments only; the probes below pass
    // invalid fds or no pointers, so no memory is read or written.
    unsafe {
        let r = libc::syscall(
            nr,
            a[0] as libc::c_long,
            a[1] as libc::c_long,
            a[2] as libc::c_long,
        );
        if r == -1 {
            -i64::from(*libc::__errno_location())
        } else {
            r
        }
    }
}

/// Drops root to uid/gid 65534 if we have it: loading a filter must not need
/// privileges (NO_NEW_PRIVS is enough).
fn drop_root() -> bool {
    // SAFETY: plain credential syscalls in the forked child.
    unsafe {
        if libc::geteuid() != 0 {
            return true;
        }
        libc::setgroups(0, std::ptr::null()) == 0
            && libc::setresgid(65534, 65534, 65534) == 0
            && libc::setresuid(65534, 65534, 65534) == 0
            && libc::geteuid() == 65534
    }
}

/// Loads `insns` in `child`: returns 0 or the errno of seccomp(2).
fn load(insns: &[Insn]) -> i64 {
    let prog = libc::sock_fprog {
        len: insns.len() as libc::c_ushort,
        // `Insn` is `#[repr(C)]` with `struct sock_filter`'s layout.
        filter: insns.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: NO_NEW_PRIVS takes integers; seccomp reads `prog` and the
    // instructions it points to, which outlive the call.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return -1000;
        }
        let r = libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_long,
            0 as libc::c_long,
            &prog as *const libc::sock_fprog,
        );
        if r == 0 {
            0
        } else {
            i64::from(*libc::__errno_location())
        }
    }
}

/// Forks; the child (unprivileged) loads `insns`, runs `probes`, and exits.
fn in_child(insns: &[Insn], probes: impl FnOnce(&mut [i64])) -> (End, Vec<i64>) {
    let mut shared = Shared::new();
    // SAFETY: between fork and _exit the child only makes raw syscalls and
    // writes to the shared page; it does not allocate or take locks.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        let slots = shared.slots();
        if !drop_root() {
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(90) };
        }
        let r = load(insns);
        if r != 0 {
            slots[0] = -r;
            // SAFETY: as above.
            unsafe { libc::_exit(91) };
        }
        slots[0] = LOADED;
        probes(&mut slots[1..]);
        // SAFETY: as above.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waits for the child we just forked.
    let w = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(w, pid, "waitpid");
    let end = if libc::WIFEXITED(status) {
        End::Exited(libc::WEXITSTATUS(status))
    } else {
        End::Signaled(libc::WTERMSIG(status))
    };
    (end, shared.slots().to_vec())
}

fn native() -> Arch {
    Arch::native().expect("tests run on x86_64 or aarch64")
}

fn nr(name: &str) -> libc::c_long {
    native().syscall_nr(name).expect("known syscall") as libc::c_long
}

fn errno(e: i64) -> Action {
    Action::Errno(Errno::new(e).expect("errno in range"))
}

/// The filter of the main test: deny lists with U32 and U64 conditions.
fn deny_list() -> Program {
    Filter::new(native())
        .default_action(Action::Allow)
        .x32_action(errno(80))
        .rule(Rule::named("getppid", errno(77)))
        .rule(Rule::named("ioctl", errno(78)).when(Cond::eq(ArgIndex::A1, TIOCSTI).u32()))
        .rule(Rule::named("lseek", errno(79)).when(Cond::eq(ArgIndex::A1, 1 << 32)))
        .rule(Rule::named("getuid", Action::UserNotif))
        .build()
        .expect("the deny list builds")
}

#[test]
fn kernel_enforces_a_generated_program() {
    let p = deny_list();
    let (end, s) = in_child(p.insns(), |out| {
        out[0] = sys(nr("getppid"), [0; 3]);
        out[1] = sys(nr("getpid"), [0; 3]);
        out[2] = sys(nr("ioctl"), [u64::MAX, TIOCSTI, 0]);
        // The kernel reads ioctl's request as an unsigned int: so does the rule.
        out[3] = sys(nr("ioctl"), [u64::MAX, 1 << 32 | TIOCSTI, 0]);
        out[4] = sys(nr("ioctl"), [u64::MAX, TCGETS, 0]);
        out[5] = sys(nr("lseek"), [u64::MAX, 1 << 32, 0]);
        // Same low word as the rule's value: a low-half-only compare would
        // deny this (CVE-2019-10063). The U64 condition must not.
        out[6] = sys(nr("lseek"), [u64::MAX, 0, 0]);
        out[7] = sys(nr("lseek"), [u64::MAX, 1 << 32 | 1, 0]);
        // Without a listener, a user-notif verdict fails with ENOSYS.
        out[8] = sys(nr("getuid"), [0; 3]);
        // SAFETY: geteuid takes no arguments.
        out[9] = unsafe { libc::geteuid() } as i64;
    });
    assert_eq!(end, End::Exited(0), "slots {s:?}");
    assert_eq!(s[0], LOADED, "the kernel accepted the program");
    let probes = &s[1..];
    assert_eq!(probes[0], -77, "getppid denied with the chosen errno");
    assert!(probes[1] > 0, "getpid allowed: {}", probes[1]);
    assert_eq!(probes[2], -78, "ioctl(TIOCSTI) denied");
    assert_eq!(probes[3], -78, "ioctl(TIOCSTI | 1<<32) denied: U32 width");
    assert_eq!(
        probes[4],
        -i64::from(libc::EBADF),
        "ioctl(TCGETS) reaches the kernel"
    );
    assert_eq!(probes[5], -79, "lseek(offset 1<<32) denied");
    assert_eq!(
        probes[6],
        -i64::from(libc::EBADF),
        "lseek(0) allowed: high word compared"
    );
    assert_eq!(
        probes[7],
        -i64::from(libc::EBADF),
        "lseek((1<<32)|1) allowed"
    );
    assert_eq!(
        probes[8],
        -i64::from(libc::ENOSYS),
        "user-notif without listener"
    );
    assert_ne!(probes[9], 0, "the child ran unprivileged");
}

#[test]
#[cfg(target_arch = "x86_64")]
fn x32_numbers_are_refused_before_dispatch() {
    // A custom x32 action proves the filter answered, not a kernel built
    // without x32 support (which answers ENOSYS by itself).
    let (end, s) = in_child(deny_list().insns(), |out| {
        let x32 = X32_SYSCALL_BIT as libc::c_long;
        out[0] = sys(x32 | nr("getpid"), [0; 3]);
        out[1] = sys(x32 | nr("getppid"), [0; 3]);
        out[2] = sys(-1, [0; 3]);
    });
    assert_eq!(end, End::Exited(0), "{s:?}");
    assert_eq!(&s[1..4], &[-80, -80, -80]);

    // The default x32 action mimics a kernel without x32: ENOSYS.
    let p = Filter::new(Arch::X86_64)
        .default_action(Action::Allow)
        .build()
        .unwrap();
    let (end, s) = in_child(p.insns(), |out| {
        out[0] = sys(X32_SYSCALL_BIT as libc::c_long | nr("getpid"), [0; 3]);
    });
    assert_eq!(end, End::Exited(0));
    assert_eq!(s[1], -i64::from(libc::ENOSYS));
}

/// `int $0x80` from a 64-bit process enters the i386 syscall table with
/// `AUDIT_ARCH_I386`: the architecture check must kill it, even though the
/// default action is allow.
#[test]
#[cfg(target_arch = "x86_64")]
fn foreign_arch_syscall_kills_the_process() {
    fn int80_getpid() -> i64 {
        let ret: i32;
        // SAFETY: i386 getpid (20) through the legacy gate: no memory access;
        // r8-r11 may be clobbered by the entry code.
        unsafe {
            std::arch::asm!(
                "int 0x80",
                inlateout("eax") 20i32 => ret,
                out("r8") _, out("r9") _, out("r10") _, out("r11") _,
                options(nostack),
            );
        }
        i64::from(ret)
    }
    // Control: with an allow-all program the gate works on this kernel, so
    // the test below can fail.
    let allow_all = [Insn::stmt(0x06, Action::Allow.to_ret())];
    let (end, s) = in_child(&allow_all, |out| out[0] = int80_getpid());
    assert_eq!(end, End::Exited(0));
    assert!(
        s[1] > 0,
        "int 0x80 getpid should work without our filter: {}",
        s[1]
    );

    let p = Filter::new(Arch::X86_64)
        .default_action(Action::Allow)
        .build()
        .unwrap();
    let (end, s) = in_child(p.insns(), |out| {
        out[0] = 1;
        out[1] = int80_getpid();
    });
    assert_eq!(end, End::Signaled(libc::SIGSYS), "slots {:?}", &s[..3]);
    assert_eq!((s[1], s[2]), (1, 0), "the i386 syscall never returned");
}

#[test]
fn kill_and_default_actions() {
    // An allow list: everything not listed fails with the default errno.
    let p = Filter::new(native())
        .default_action(errno(81))
        .rule(Rule::named("exit_group", Action::Allow))
        .rule(Rule::named("getppid", Action::KillProcess))
        .build()
        .unwrap();
    let (end, s) = in_child(p.insns(), |out| {
        out[0] = sys(nr("getpid"), [0; 3]);
        out[1] = sys(nr("getppid"), [0; 3]);
        out[2] = 1;
    });
    assert_eq!(end, End::Signaled(libc::SIGSYS));
    assert_eq!(s[1], -81, "getpid not on the allow list");
    assert_eq!(s[3], 0, "getppid killed the process");
}

/// Hundreds of rules with trampolines: the kernel accepts the program and
/// enforces rules far from the start.
#[test]
fn kernel_accepts_a_program_with_far_jumps() {
    let mut f = Filter::new(native()).default_action(Action::Allow);
    for i in 0..150u64 {
        f.push(Rule::named("lseek", errno(200 + i as i64)).when(Cond::eq(ArgIndex::A2, 100 + i)));
    }
    // Distinct conditions, so neighbouring numbers cannot share code.
    for n in 500..800u32 {
        f.push(Rule::nr(n, errno(99)).when(Cond::ne(ArgIndex::A0, u64::from(n) ^ 0x318)));
    }
    let p = f.build().unwrap();
    assert!(p.len() > 1000);
    assert!(
        p.insns().iter().any(|i| i.code == 0x05),
        "has JA trampolines"
    );
    let (end, s) = in_child(p.insns(), |out| {
        out[0] = sys(nr("lseek"), [u64::MAX, 0, 100]);
        out[1] = sys(nr("lseek"), [u64::MAX, 0, 249]);
        out[2] = sys(nr("lseek"), [u64::MAX, 0, 250]);
        out[3] = sys(799, [0; 3]);
        out[4] = sys(799, [7, 0, 0]);
        out[5] = sys(nr("getpid"), [0; 3]);
    });
    assert_eq!(end, End::Exited(0), "{s:?}");
    assert_eq!(s[0], LOADED);
    assert_eq!(&s[1..4], &[-200, -349, -i64::from(libc::EBADF)]);
    assert_eq!(s[4], -99);
    assert_eq!(
        s[5],
        -i64::from(libc::ENOSYS),
        "799 passes the filter; no such syscall"
    );
    assert!(s[6] > 0);
}

fn near_valid_program() -> impl Strategy<Value = Vec<Insn>> {
    let code = prop_oneof![
        30 => proptest::sample::select(vec![
            // Accepted by seccomp.
            0x00u16, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x0c, 0x14, 0x15, 0x16, 0x1c,
            0x1d, 0x20, 0x24, 0x25, 0x2c, 0x2d, 0x34, 0x35, 0x3c, 0x3d, 0x44, 0x45, 0x4c, 0x4d,
            0x54, 0x5c, 0x60, 0x61, 0x64, 0x6c, 0x74, 0x7c, 0x80, 0x81, 0x84, 0x87, 0xa4, 0xac,
        ]),
        3 => proptest::sample::select(vec![
            0x00u16, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x0c, 0x14, 0x15, 0x16, 0x1c,
            0x1d, 0x20, 0x24, 0x25, 0x28, 0x2c, 0x2d, 0x30, 0x34, 0x35, 0x3c, 0x3d, 0x40, 0x44,
            0x45, 0x4c, 0x4d, 0x54, 0x5c, 0x60, 0x61, 0x64, 0x6c, 0x74, 0x7c, 0x80, 0x81, 0x84,
            0x87, 0x94, 0xa4, 0xac, 0xb1,
        ]),
        1 => any::<u16>(),
    ];
    let k = prop_oneof![
        6 => (0u32..16).prop_map(|w| w * 4),
        2 => 0u32..70,
        1 => Just(u32::MAX),
        1 => any::<u32>(),
    ];
    let insn = (code, 0u8..4, 0u8..4, k).prop_map(|(c, jt, jf, k)| Insn::jump(c, k, jt, jf));
    (
        proptest::collection::vec(insn, 0..10),
        proptest::bool::weighted(0.9),
    )
        .prop_map(|(mut p, ret)| {
            if ret {
                p.push(Insn::stmt(0x06, Action::Allow.to_ret()));
            }
            p
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    /// The interpreter's acceptance check agrees with the kernel's on
    /// random, mostly well-formed programs.
    #[test]
    fn interpreter_check_agrees_with_the_kernel(p in near_valid_program()) {
        let ours = sandlock_bpf::interp::check(&p);
        let (_, s) = in_child(&p, |_| {});
        let kernel_ok = s[0] == LOADED;
        prop_assert!(
            kernel_ok == ours.is_ok(),
            "kernel {} (slot {}), interpreter {:?}\n{}",
            if kernel_ok { "accepts" } else { "refuses" },
            s[0],
            ours,
            sandlock_bpf::disasm::Disasm::new(&p, None)
        );
        if !kernel_ok {
            prop_assert_eq!(s[0], -i64::from(libc::EINVAL));
        }
    }
}
