//! The `sandlock` command: run a command in a sandbox, check the kernel,
//! manage profiles. See `docs/cli.md`.
//!
//! The entry point is the C `main`, not Rust's `fn main`: the standard
//! library's start-up (a read of `/proc/self/maps` and an alternate signal
//! stack for stack-overflow messages) costs about 45 µs, which every
//! sandboxed command would pay. What of it matters here is done by hand:
//! `SIGPIPE` ignored, descriptors 0-2 made sure to exist.
#![cfg_attr(not(test), no_main)]
// Unit tests run without the C `main`, which is what uses most of the CLI.
#![cfg_attr(test, allow(dead_code))]
#![deny(unsafe_code)]

mod cli;

/// On musl, start-up allocations come from a bump arena: see
/// [`sandlock::startup_arena`].
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: sandlock::startup_arena::StartupArena = sandlock::startup_arena::StartupArena;

/// The process entry point, called once by the C runtime.
#[cfg(not(test))]
#[allow(unsafe_code)]
// SAFETY: this is the only item named `main` in the program; the C runtime
// calls it once, with the process's argc/argv.
#[unsafe(no_mangle)]
pub extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    runtime_init();
    cli::main(args(argc, argv))
}

/// The command line, from `main`'s own arguments: without Rust's start-up,
/// `std::env::args` is filled in on glibc only (musl passes nothing to the
/// initialisers that std reads it from there).
#[cfg(not(test))]
#[allow(unsafe_code)]
fn args(argc: libc::c_int, argv: *const *const libc::c_char) -> Vec<std::ffi::OsString> {
    use std::os::unix::ffi::OsStrExt;
    let count = usize::try_from(argc).unwrap_or(0);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        // SAFETY: the C runtime passes `argc` valid pointers in `argv`, each
        // to a NUL-terminated string that lives as long as the process.
        let arg = unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) };
        out.push(std::ffi::OsStr::from_bytes(arg.to_bytes()).to_owned());
    }
    out
}

/// What Rust's start-up would have done that this tool relies on.
#[cfg(not(test))]
fn runtime_init() {
    // A write to a closed pipe is an error (EPIPE), not a death: the
    // supervisor writes to sockets on the sandbox's behalf.
    #[allow(unsafe_code)]
    // SAFETY: setting a signal's disposition to SIG_IGN runs no code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // If 0, 1 or 2 is closed, the next file we open would take its number
    // and be handed to the command as its standard stream.
    let (i, o, e) = (
        rustix::stdio::stdin(),
        rustix::stdio::stdout(),
        rustix::stdio::stderr(),
    );
    let none = rustix::event::PollFlags::empty();
    let mut fds = [
        rustix::event::PollFd::new(&i, none),
        rustix::event::PollFd::new(&o, none),
        rustix::event::PollFd::new(&e, none),
    ];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    if rustix::event::poll(&mut fds, Some(&zero)).is_ok() {
        for fd in fds {
            if fd.revents().contains(rustix::event::PollFlags::NVAL) {
                // Opened without O_CLOEXEC on purpose: it fills the hole.
                let _ = rustix::fs::open(
                    "/dev/null",
                    rustix::fs::OFlags::RDWR,
                    rustix::fs::Mode::empty(),
                )
                .map(std::mem::forget::<std::os::fd::OwnedFd>);
            }
        }
    }
}
