//! Arbitrary bytes become a seccomp notification, a fake `/proc` and a fake
//! address space; decoding (and the on-behalf request readers: open, msghdr, mmsghdr) must never
//! panic, hang, or allocate beyond their bounds.
//!
//! Layout of the input (missing bytes read as 0):
//! - `[0]`     syscall selector: < 0xf0 picks from `INTERESTING`, else the raw
//!   number in `[1..5]`;
//! - `[5]`     arch selector: 0..=1 x86_64, 2 aarch64, 3 the raw value in `[6..10]`;
//! - `[10..64]` six arguments of 9 bytes: a mode byte (bit 0: point into the
//!   image at offset `value % (len + 64)`) and a `u64`;
//! - `[64..68]` `/proc` fakes: ppid, cwd kind, dirfd-known flag, base offset;
//! - `[68..]`   the memory image, mapped at `0x7000_0000 + offset`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sandlock_bpf::Arch;
use sandlock_notify::{FakeMemory, FakeProc, SeccompData, SeccompNotif, bounded, decode_with, onbehalf};

const INTERESTING: &[&str] = &[
    "execve", "execveat", "open", "openat", "openat2", "creat", "newfstatat", "statx", "symlinkat",
    "connect", "bind", "sendto", "sendmsg", "sendmmsg", "mmap", "brk", "mremap", "clone", "getpid",
    "unlinkat", "renameat2", "utimensat",
];

fn byte(d: &[u8], i: usize) -> u8 {
    d.get(i).copied().unwrap_or(0)
}

fn u32_at(d: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([byte(d, i), byte(d, i + 1), byte(d, i + 2), byte(d, i + 3)])
}

fn u64_at(d: &[u8], i: usize) -> u64 {
    u64::from(u32_at(d, i)) | (u64::from(u32_at(d, i + 4)) << 32)
}

fuzz_target!(|data: &[u8]| {
    let image = data.get(68..).unwrap_or(&[]);
    let base = 0x7000_0000u64 + u64::from(byte(data, 67)) * 16;
    let sel = byte(data, 0);
    let (arch, nr) = match byte(data, 5) % 4 {
        0 | 1 => (Arch::X86_64.audit_arch(), Arch::X86_64),
        2 => (Arch::Aarch64.audit_arch(), Arch::Aarch64),
        _ => (u32_at(data, 6), Arch::X86_64),
    };
    let nr = if sel < 0xf0 {
        let name = INTERESTING[usize::from(sel) % INTERESTING.len()];
        nr.syscall_nr(name).map_or(-1, |n| n as i32)
    } else {
        u32_at(data, 1) as i32
    };
    let mut args = [0u64; 6];
    for (i, a) in args.iter_mut().enumerate() {
        let at = 10 + 9 * i;
        let v = u64_at(data, at + 1);
        *a = if byte(data, at) & 1 == 1 { base + v % (image.len() as u64 + 64) } else { v };
    }
    let notif = SeccompNotif {
        id: 1,
        pid: 4242,
        flags: 0,
        data: SeccompData { nr, arch, instruction_pointer: 0, args },
    };
    let proc = FakeProc {
        ppid: Some(u32::from(byte(data, 64))),
        cwd: match byte(data, 65) % 3 {
            0 => None,
            1 => Some("/".into()),
            _ => Some("/home/user/dir".into()),
        },
        fds: if byte(data, 66) & 1 == 1 { vec![(args[0] as i32, "/etc".into())] } else { vec![] },
    };
    let mem = FakeMemory::new().map(base, image.to_vec());

    if let Ok(ev) = decode_with(&notif, &mem, &proc) {
        if let Some(p) = &ev.path {
            assert!(p.len() <= 2 * bounded::PATH_MAX + 64);
        }
        if let Some(argv) = &ev.argv {
            assert!(argv.len() <= bounded::ARGV_MAX_COUNT);
        }
    }
    // The readers behind the on-behalf handlers, on the same input.
    for name in ["open", "openat", "openat2", "creat"] {
        let _ = onbehalf::read_open_request(name, &notif, &mem);
    }
    if let Ok(msg) = onbehalf::read_msghdr(&mem, 1, args[1]) {
        let msg = msg.into_inner_unchecked();
        assert!(msg.data.len() <= onbehalf::SEND_MAX);
        assert!(msg.control.len() <= onbehalf::CONTROL_MAX);
        if let Some(name) = msg.name {
            let _ = name.host_port();
        }
    }
    if let Ok(msgs) = onbehalf::read_mmsghdr(&mem, 1, args[1], args[2]) {
        let msgs = msgs.into_inner_unchecked();
        assert!(msgs.len() <= onbehalf::IOV_MAX);
        let total: usize = msgs.iter().map(|m| m.data.len()).sum();
        assert!(total <= onbehalf::SENDMMSG_MAX_BYTES + onbehalf::SEND_MAX);
    }
    if let Ok(sa) = bounded::read_sockaddr(&mem, args[1], args[2]) {
        let _ = sa.host_port();
    }
});
