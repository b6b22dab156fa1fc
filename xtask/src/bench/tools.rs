//! Finding the sandboxes on this machine, building ours, installing the
//! others on request (`--install`), and recording their versions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::sandbox::{Dialect, Kind, Sandbox};
use crate::workspace;

/// Published sandlock-cli versions compared: 0.4.1 has the command line ours
/// keeps compatible; 0.9.0 is the newest published at the time of writing.
pub const SANDLOCK_CLI_VERSIONS: &[&str] = &["0.4.1", "0.9.0"];

/// The target the distributable `sandlock` is built for: musl, linked
/// statically (docs/cli.md, "Building the distributable binary").
pub const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";

/// Whether the standard library for [`MUSL_TARGET`] is installed (and this
/// is an x86-64 machine).
pub fn musl_installed() -> bool {
    cfg!(target_arch = "x86_64")
        && workspace::output_of("rustc", &["--print", "sysroot"]).is_some_and(|root| {
            Path::new(&root)
                .join("lib/rustlib")
                .join(MUSL_TARGET)
                .is_dir()
        })
}

/// Builds our release binaries: `landlock-exec` and `sandlock`, separately
/// so one failing does not take the other's row with it. `sandlock` is
/// built as it is distributed (docs/cli.md), and `landlock-exec` the same
/// way: linked statically against musl, or, when the musl target is not
/// installed (`install` adds it with rustup), statically against glibc,
/// whose start-up costs about 0.2 ms more here.
pub fn build(install: bool) -> (Result<PathBuf, String>, Result<PathBuf, String>) {
    if install && cfg!(target_arch = "x86_64") && !musl_installed() {
        let mut cmd = std::process::Command::new("rustup");
        cmd.args(["target", "add", MUSL_TARGET]);
        if let Err(e) = workspace::run_echo(&mut cmd) {
            eprintln!("   {e}: sandlock and landlock-exec are built against glibc");
        }
    }
    let musl = musl_installed();
    if !musl {
        eprintln!(
            "   the {MUSL_TARGET} target is not installed: sandlock and landlock-exec are built against glibc \
             (rustup target add {MUSL_TARGET}, or cargo xtask bench --install)"
        );
    }
    // Both are built the same way, so that the Landlock-alone row of the
    // start-up scenario is the floor of a wrapper built like sandlock.
    let one = |package: &str, bin: &str| -> Result<PathBuf, String> {
        let mut cmd = workspace::cargo();
        let mut dir = workspace::target_dir();
        cmd.args(["rustc", "--release", "-p", package, "--bin", bin]);
        if musl {
            cmd.args(["--target", MUSL_TARGET]);
            dir.push(MUSL_TARGET);
        } else {
            cmd.args(["--", "-C", "target-feature=+crt-static"]);
        }
        workspace::run_echo(&mut cmd).map_err(|e| format!("build failed: {e}"))?;
        let path = dir.join("release").join(bin);
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!("build produced no {}", path.display()))
        }
    };
    (
        one("landlock-exec", "landlock-exec"),
        one("sandlock", "sandlock"),
    )
}

fn cli_root(cache: &Path, version: &str) -> PathBuf {
    cache.join(format!("sandlock-cli-{version}"))
}

fn syd_root(cache: &Path) -> PathBuf {
    cache.join("syd")
}

fn apt_package(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Bwrap => Some("bubblewrap"),
        Kind::Firejail => Some("firejail"),
        _ => None,
    }
}

/// Every sandbox, located or with the reason it is missing. `built` are the
/// results of [`build`] for landlock-exec and sandlock; `failed_installs`
/// replace "not installed" with what went wrong installing; `cache` is the
/// tool cache the crates are installed into.
pub fn discover(
    cache: &Path,
    built: &(Result<PathBuf, String>, Result<PathBuf, String>),
    failed_installs: &BTreeMap<String, String>,
) -> Vec<Sandbox> {
    let not_installed = |name: &str, how: String| -> String {
        failed_installs
            .get(name)
            .map(|e| format!("install failed: {e}"))
            .unwrap_or(format!(
                "not installed ({how}, or cargo xtask bench --install)"
            ))
    };
    let mut v = vec![
        Sandbox {
            name: "bare".to_owned(),
            kind: Kind::Bare,
            program: Ok(PathBuf::new()),
        },
        Sandbox {
            name: "landlock".to_owned(),
            kind: Kind::Landlock,
            program: built.0.clone(),
        },
        Sandbox {
            name: "landlock-spawn".to_owned(),
            kind: Kind::LandlockSpawn,
            program: built.0.clone(),
        },
        Sandbox {
            name: "kernel-floor".to_owned(),
            kind: Kind::KernelFloor,
            program: match (&built.0, &built.1) {
                (Ok(helper), Ok(_)) => Ok(helper.clone()),
                (Err(e), _) => Err(e.clone()),
                (_, Err(_)) => Err("needs this workspace's sandlock for its filter".to_owned()),
            },
        },
        Sandbox {
            name: "sandlock".to_owned(),
            kind: Kind::Sandlock,
            program: built.1.clone(),
        },
    ];
    for version in SANDLOCK_CLI_VERSIONS {
        let name = format!("sandlock-cli-{version}");
        let bin = cli_root(cache, version).join("bin/sandlock");
        let program = if bin.is_file() {
            Ok(bin)
        } else {
            Err(not_installed(
                &name,
                format!(
                    "cargo install --root {} --version {version} --locked sandlock-cli",
                    cli_root(cache, version).display()
                ),
            ))
        };
        v.push(Sandbox {
            name,
            kind: Kind::SandlockCli(Dialect::of_version(version)),
            program,
        });
    }
    for (name, kind) in [("bwrap", Kind::Bwrap), ("firejail", Kind::Firejail)] {
        let program = workspace::which(name).ok_or_else(|| {
            not_installed(
                name,
                format!("apt-get install -y {}", apt_package(kind).unwrap_or(name)),
            )
        });
        v.push(Sandbox {
            name: name.to_owned(),
            kind,
            program,
        });
    }
    let syd_bin = syd_root(cache).join("bin/syd");
    let syd = workspace::which("syd")
        .or_else(|| syd_bin.is_file().then_some(syd_bin))
        .ok_or_else(|| {
            not_installed(
                "syd",
                format!(
                    "cargo install --root {} --locked syd, which needs libseccomp-dev",
                    syd_root(cache).display()
                ),
            )
        });
    v.push(Sandbox {
        name: "syd".to_owned(),
        kind: Kind::Syd,
        program: syd,
    });
    v
}

/// Keeps bare and the sandboxes named in `only`: by name, or by prefix
/// when no sandbox has that exact name (so `sandlock-cli` selects every
/// version, and `sandlock` only this workspace's); all when `only` is
/// empty.
pub fn select(sandboxes: Vec<Sandbox>, only: &[String]) -> Vec<Sandbox> {
    let exact = |o: &String| sandboxes.iter().any(|s| s.name == *o);
    let wanted: Vec<(&String, bool)> = only.iter().map(|o| (o, exact(o))).collect();
    sandboxes
        .into_iter()
        .filter(|s| {
            s.kind == Kind::Bare
                || only.is_empty()
                || wanted.iter().any(|(o, exact)| {
                    s.name == **o || (!exact && s.name.starts_with(&format!("{o}-")))
                })
        })
        .collect()
}

/// Installs what is missing among `sandboxes` (and redis when `redis`):
/// Debian packages with apt-get, the crates with `cargo install --root`
/// into the tool cache. Returns the failures by sandbox name.
pub fn install(cache: &Path, sandboxes: &[Sandbox], redis: bool) -> BTreeMap<String, String> {
    let mut failures = BTreeMap::new();
    let missing = |kind: Kind| {
        sandboxes
            .iter()
            .filter(move |s| s.kind == kind && s.program.is_err())
    };
    let mut apt: Vec<(&str, &str)> = Vec::new();
    for kind in [Kind::Bwrap, Kind::Firejail] {
        for s in missing(kind) {
            if let Some(pkg) = apt_package(kind) {
                apt.push((s.name.as_str(), pkg));
            }
        }
    }
    if redis && super::redis::installed().is_none() {
        apt.push(("redis", "redis-server"));
        apt.push(("redis", "redis-tools"));
    }
    let syd_missing = missing(Kind::Syd).next().is_some();
    if syd_missing {
        apt.push(("syd", "libseccomp-dev"));
        apt.push(("syd", "pkg-config"));
    }
    if !apt.is_empty() {
        let pkgs: Vec<&str> = apt.iter().map(|(_, p)| *p).collect();
        if let Err(e) = apt_install(&pkgs) {
            for (name, _) in &apt {
                failures.insert((*name).to_owned(), e.clone());
            }
        }
    }
    let cli_missing = sandboxes
        .iter()
        .filter(|s| matches!(s.kind, Kind::SandlockCli(_)) && s.program.is_err());
    for s in cli_missing {
        let version = s.name.trim_start_matches("sandlock-cli-");
        let mut cmd = workspace::cargo();
        cmd.arg("install")
            .arg("--root")
            .arg(cli_root(cache, version))
            .args(["--version", version, "--locked", "sandlock-cli"]);
        if let Err(e) = workspace::run_echo(&mut cmd) {
            failures.insert(s.name.clone(), e);
        }
    }
    if syd_missing && !failures.contains_key("syd") {
        let mut cmd = workspace::cargo();
        cmd.arg("install")
            .arg("--root")
            .arg(syd_root(cache))
            .args(["--locked", "syd"]);
        if let Err(e) = workspace::run_echo(&mut cmd) {
            failures.insert("syd".to_owned(), e);
        }
    }
    failures
}

fn apt_install(pkgs: &[&str]) -> Result<(), String> {
    let install = || {
        let mut cmd = std::process::Command::new("apt-get");
        cmd.args(["install", "-y", "--no-install-recommends"])
            .args(pkgs);
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
        workspace::run_echo(&mut cmd)
    };
    install().or_else(|_| {
        // A stale package list is the usual cause: refresh once and retry.
        let mut update = std::process::Command::new("apt-get");
        update.arg("update");
        workspace::run_echo(&mut update)?;
        install()
    })
}

/// Versions of the tools in use, for the record.
pub fn versions(sandboxes: &[Sandbox]) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    let first_line = |s: String| s.lines().next().unwrap_or("").trim().to_owned();
    for (name, program, args) in [
        ("rustc", "rustc", &["--version"][..]),
        ("gcc", "gcc", &["--version"][..]),
        ("redis-server", "redis-server", &["--version"][..]),
    ] {
        if let Some(out) = workspace::output_of(program, args) {
            v.insert(name.to_owned(), first_line(out));
        }
    }
    for s in sandboxes {
        let Ok(program) = &s.program else { continue };
        let args: &[&str] = match s.kind {
            Kind::Bwrap | Kind::Firejail | Kind::Syd => &["--version"],
            Kind::SandlockCli(_) | Kind::Sandlock => &["--version"],
            Kind::Bare | Kind::Landlock | Kind::LandlockSpawn | Kind::KernelFloor => continue,
        };
        let out = workspace::output_of(&program.to_string_lossy(), args);
        let text = match (s.kind, out) {
            (Kind::SandlockCli(_), _) => s.name.trim_start_matches("sandlock-cli-").to_owned(),
            (_, Some(out)) => first_line(out),
            (_, None) => continue,
        };
        if s.kind == Kind::Sandlock {
            let libc = if program.to_string_lossy().contains(MUSL_TARGET) {
                "musl"
            } else {
                "glibc"
            };
            v.insert("sandlock-build".to_owned(), format!("static, {libc}"));
        }
        v.insert(s.name.clone(), text);
    }
    v
}

/// The machine: (kernel, CPU model, CPU count).
pub fn machine() -> (String, String, usize) {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (kernel, cpu, cpus)
}

/// The commit measured and whether the tree had uncommitted changes.
pub fn commit() -> (String, bool) {
    let head =
        workspace::output_of("git", &["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    let dirty = workspace::output_of("git", &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    (head, dirty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_keeps_bare_and_matches_prefixes() {
        let built = (Err("x".to_owned()), Err("y".to_owned()));
        let all = discover(Path::new("/nonexistent/cache"), &built, &BTreeMap::new());
        let names = |v: &[Sandbox]| v.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&select(all.clone(), &[])), names(&all));
        assert_eq!(
            names(&select(all.clone(), &["sandlock-cli".to_owned()])),
            ["bare", "sandlock-cli-0.4.1", "sandlock-cli-0.9.0"]
        );
        assert_eq!(
            names(&select(all.clone(), &["bwrap".to_owned()])),
            ["bare", "bwrap"]
        );
        assert_eq!(
            names(&select(all, &["sandlock".to_owned()])),
            ["bare", "sandlock"]
        );
    }

    #[test]
    fn missing_tools_say_how_to_get_them() {
        let built = (Err("x".to_owned()), Err("build failed: boom".to_owned()));
        let mut failed = BTreeMap::new();
        failed.insert(
            "sandlock-cli-0.9.0".to_owned(),
            "cargo install failed".to_owned(),
        );
        let all = discover(Path::new("/nonexistent/cache"), &built, &failed);
        let reason = |n: &str| {
            all.iter()
                .find(|s| s.name == n)
                .unwrap()
                .program
                .clone()
                .err()
        };
        assert_eq!(reason("sandlock").unwrap(), "build failed: boom");
        assert!(reason("bare").is_none());
        let cli = reason("sandlock-cli-0.4.1").unwrap();
        assert!(
            cli.contains("cargo install") && cli.contains("--install"),
            "{cli}"
        );
        assert_eq!(
            reason("sandlock-cli-0.9.0").unwrap(),
            "install failed: cargo install failed"
        );
    }
}
