//! Builds the seed library (`seedlib/seed.c`), which `random_seed`
//! sandboxes preload to answer `getrandom()` inside the process
//! (`src/seedlib.rs`, `docs/determinism.md`).
//!
//! It is C, compiled with the C compiler that links Rust programs on Linux
//! anyway (`$CC`, else `cc`): a freestanding shared object of a few
//! kilobytes, embedded in the crate. x86-64 only; elsewhere the crate is
//! built without it and the supervisor answers every `getrandom`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
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
