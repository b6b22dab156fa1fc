//! `landlock-exec`: the "Landlock alone" row of `cargo xtask bench`.
//!
//! ```text
//! landlock-exec [--spawn | --floor FILTER] [--ro PATH]... [--rw PATH]... [--connect PORT]... [--bind PORT]... -- CMD [ARG]...
//! ```
//!
//! Applies one Landlock ruleset to itself and execs `CMD`, so a benchmark can
//! tell the kernel's own Landlock cost apart from what sandlock adds on top.
//! With `--spawn` it runs `CMD` as a child instead, waits for it and exits
//! with its status (128+N for a signal N): the least a sandbox costs that
//! keeps a process of its own around the command, as every supervising
//! sandbox does (the "landlock-spawn" row). With `--floor FILTER` it makes
//! the kernel's part of sandlock's start around the command (see `floor`):
//! the "kernel-floor" row.
//!
//!
//! - every filesystem right the running kernel knows is handled; `--ro` paths
//!   get read + execute (files and directories), `--rw` paths get every right;
//! - every TCP right is handled (so TCP is denied by default, as in sandlock's
//!   default policy); `--connect`/`--bind` allow one port each.
//!
//! The ruleset must be fully enforced: on a kernel that cannot enforce all of
//! it the helper refuses to run the command (exit 125) rather than measuring
//! an unconfined process. It does not install seccomp filters and cannot
//! subtract a path from an allowed tree: those are sandlock's own layers.

mod floor;

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr, RulesetStatus,
};

/// The newest Landlock ABI the helper asks for; older kernels are refused by
/// the "fully enforced" check, not silently downgraded.
const ABI_WANTED: ABI = ABI::V5;

/// What the command line asked for.
#[derive(Debug, Default)]
struct Request {
    read: Vec<PathBuf>,
    write: Vec<PathBuf>,
    connect: Vec<u16>,
    bind: Vec<u16>,
    spawn: bool,
    floor: Option<PathBuf>,
    command: Vec<OsString>,
}

fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Request, String> {
    let mut req = Request::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(flag) = arg.to_str() else {
            return Err(format!("unexpected argument {arg:?}"));
        };
        if flag == "--" {
            req.command = args.collect();
            break;
        }
        if flag == "--spawn" {
            req.spawn = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag {
            "--floor" => req.floor = Some(PathBuf::from(value)),
            "--ro" => req.read.push(PathBuf::from(value)),
            "--rw" => req.write.push(PathBuf::from(value)),
            "--connect" | "--bind" => {
                let port: u16 = value
                    .to_str()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("{flag}: bad port {value:?}"))?;
                if flag == "--connect" {
                    req.connect.push(port);
                } else {
                    req.bind.push(port);
                }
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    if req.command.is_empty() {
        return Err("no command given after --".to_owned());
    }
    if req.spawn && req.floor.is_some() {
        return Err("--spawn and --floor exclude each other".to_owned());
    }
    Ok(req)
}

/// The ruleset of `req`, created and filled, not yet enforced.
fn ruleset(req: &Request) -> Result<RulesetCreated, String> {
    let fs_all = AccessFs::from_all(ABI_WANTED);
    let fs_read = AccessFs::from_read(ABI_WANTED);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(fs_all)
        .and_then(|r| r.handle_access(AccessNet::from_all(ABI_WANTED)))
        .and_then(|r| r.create())
        .map_err(|e| format!("creating the ruleset: {e}"))?;
    for (paths, access) in [(&req.read, fs_read), (&req.write, fs_all)] {
        for path in paths {
            let fd = PathFd::new(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
            let access = if path.is_dir() {
                access
            } else {
                // Directory-only rights make no sense on a file.
                access & AccessFs::from_file(ABI_WANTED)
            };
            ruleset = ruleset
                .add_rule(PathBeneath::new(fd, access))
                .map_err(|e| format!("rule for {}: {e}", path.display()))?;
        }
    }
    for (ports, access) in [
        (&req.connect, AccessNet::ConnectTcp),
        (&req.bind, AccessNet::BindTcp),
    ] {
        for &port in ports {
            ruleset = ruleset
                .add_rule(NetPort::new(port, access))
                .map_err(|e| format!("rule for port {port}: {e}"))?;
        }
    }
    Ok(ruleset)
}

fn restrict(req: &Request) -> Result<(), String> {
    let status = ruleset(req)?
        .restrict_self()
        .map_err(|e| format!("restrict_self: {e}"))?;
    if status.ruleset != RulesetStatus::FullyEnforced {
        return Err(format!("ruleset not fully enforced: {:?}", status.ruleset));
    }
    Ok(())
}

/// `--floor`: the ruleset goes to the command, enforced there.
fn floor(req: &Request, filter: &std::path::Path) -> Result<u8, String> {
    let bytes = std::fs::read(filter).map_err(|e| format!("--floor {}: {e}", filter.display()))?;
    let filter =
        floor::read_filter(&bytes).map_err(|e| format!("--floor {}: {e}", filter.display()))?;
    let fd: Option<OwnedFd> = ruleset(req)?.into();
    let fd = fd.ok_or("Landlock is not supported here")?;
    floor::run(fd, filter, &req.command)
}

fn main() -> ExitCode {
    let req = match parse(std::env::args_os().skip(1)) {
        Ok(req) => req,
        Err(e) => {
            eprintln!("landlock-exec: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(filter) = &req.floor {
        return match floor(&req, filter) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("landlock-exec: {e}");
                ExitCode::from(125)
            }
        };
    }
    if let Err(e) = restrict(&req) {
        eprintln!("landlock-exec: {e}");
        return ExitCode::from(125);
    }
    let (program, args) = req.command.split_at(1);
    let mut command = Command::new(&program[0]);
    command.args(args);
    if req.spawn {
        return match command.status() {
            Ok(status) => ExitCode::from(exit_code(status)),
            Err(err) => {
                eprintln!("landlock-exec: spawn {:?}: {err}", program[0]);
                ExitCode::from(if err.kind() == std::io::ErrorKind::NotFound {
                    127
                } else {
                    126
                })
            }
        };
    }
    let err = command.exec();
    eprintln!("landlock-exec: exec {:?}: {err}", program[0]);
    ExitCode::from(if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    })
}

/// A shell's exit code for a child's status: its own code, or 128+N when
/// signal N ended it.
fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(sig)) => 128u8.wrapping_add(sig as u8),
        (None, None) => 125,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_rules_and_command() {
        let req = parse(os(&[
            "--ro",
            "/usr",
            "--rw",
            "/tmp/x",
            "--connect",
            "80",
            "--bind",
            "8080",
            "--",
            "ls",
            "-l",
        ]))
        .unwrap();
        assert_eq!(req.read, [PathBuf::from("/usr")]);
        assert_eq!(req.write, [PathBuf::from("/tmp/x")]);
        assert_eq!(req.connect, [80]);
        assert_eq!(req.bind, [8080]);
        assert_eq!(req.command, os(&["ls", "-l"]));
        assert!(!req.spawn);
        let req = parse(os(&["--spawn", "--ro", "/usr", "--", "true"])).unwrap();
        assert!(req.spawn);
        assert_eq!(req.read, [PathBuf::from("/usr")]);
    }

    #[test]
    fn spawned_status_becomes_the_exit_code() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(9)), 137);
    }

    #[test]
    fn refuses_bad_input() {
        assert!(parse(os(&["--ro"])).unwrap_err().contains("needs a value"));
        assert!(
            parse(os(&["--connect", "99999", "--", "x"]))
                .unwrap_err()
                .contains("bad port")
        );
        assert!(
            parse(os(&["--ro", "/usr"]))
                .unwrap_err()
                .contains("no command")
        );
        assert!(
            parse(os(&["--what", "x"]))
                .unwrap_err()
                .contains("unknown option")
        );
    }
}
