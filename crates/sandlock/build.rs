//! Builds the seed library (`seedlib/seed.c`), and lays the `sandlock`
//! binary's start path out together in release builds.
//!
//! - The seed library, which `random_seed` sandboxes preload to answer
//!   `getrandom()` inside the process (`src/seedlib.rs`,
//!   `docs/determinism.md`), is C, compiled with the C compiler that links
//!   Rust programs on Linux anyway (`$CC`, else `cc`): a freestanding shared
//!   object of a few kilobytes, embedded in the crate. x86-64 only;
//!   elsewhere the crate is built without it and the supervisor answers
//!   every `getrandom`.
//! - The code layout: see [`code_layout`].

use std::path::PathBuf;
use std::process::Command;

fn main() {
    code_layout();
    seed_library();
}

/// In a release build of the `sandlock` binary, links it with the
/// toolchain's own lld (`<sysroot>/lib/rustlib/<host>/bin/gcc-ld`) and
/// `link/start-order.txt`, the functions a sandbox's start runs, in the
/// order first run (written by `cargo xtask layout`): they end up side by
/// side, so a start maps fewer pages of code and its exit unmaps fewer
/// (about 0.1 ms of a 1.4 ms start, `docs/benchmarks.md`). Names the list has and the
/// binary no longer does are ignored. Without that lld (a toolchain not
/// from rustup) the binary is linked as usual.
fn code_layout() {
    println!("cargo::rerun-if-changed=link/start-order.txt");
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    if env("PROFILE") != "release" || env("CARGO_CFG_TARGET_OS") != "linux" {
        return;
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return;
    };
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let gcc_ld = sysroot
        .join("lib/rustlib")
        .join(env("HOST"))
        .join("bin/gcc-ld");
    let order = PathBuf::from(env("CARGO_MANIFEST_DIR")).join("link/start-order.txt");
    if !out.status.success() || !gcc_ld.join("ld.lld").is_file() || !order.is_file() {
        return;
    }
    for arg in [
        format!("-B{}", gcc_ld.display()),
        "-fuse-ld=lld".to_owned(),
        format!("-Wl,--symbol-ordering-file={}", order.display()),
        "-Wl,--no-warn-symbol-ordering".to_owned(),
    ] {
        println!("cargo::rustc-link-arg-bin=sandlock={arg}");
    }
}

/// The seed library (see the module documentation).
fn seed_library() {
    println!("cargo::rerun-if-changed=seedlib/seed.c");
    println!("cargo::rerun-if-env-changed=CC");
    println!("cargo::rustc-check-cfg=cfg(sandlock_seedlib)");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if arch != "x86_64" || os != "linux" {
        return;
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let so = out.join("libsandlock-seed.so");
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let status = Command::new(&cc)
        .args([
            "-O2",
            "-fPIC",
            "-shared",
            "-nostdlib",
            "-ffreestanding",
            "-fno-builtin",
            "-fno-tree-loop-distribute-patterns",
            "-fno-stack-protector",
            "-fvisibility=hidden",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wl,-z,now",
            "-Wl,-z,relro",
            "-Wl,-z,noexecstack",
            "-Wl,--hash-style=both",
            "-Wl,--build-id=none",
            "-Wl,-soname,libsandlock-seed.so",
            "-o",
        ])
        .arg(&so)
        .arg("seedlib/seed.c")
        .status();
    match status {
        Ok(s) if s.success() => println!("cargo::rustc-cfg=sandlock_seedlib"),
        Ok(s) => panic!("compiling seedlib/seed.c with {cc:?} failed ({s})"),
        Err(e) => panic!(
            "compiling seedlib/seed.c: cannot run the C compiler {cc:?} ({e}); \
             install one (apt-get install gcc) or set CC"
        ),
    }
}
