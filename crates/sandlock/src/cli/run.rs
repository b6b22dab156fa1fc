//! `sandlock run`.

use std::fs::{File, OpenOptions};
use std::io::Write;

use sandlock::{AuditLog, Error, PolicyError, RunResult, Sandbox};

use super::flags::{self, RunArgs, flag_of};

/// Runs `sandlock run`; returns the exit status.
pub(crate) fn run(args: RunArgs) -> i32 {
    let status = match args.status_fd.as_deref().map(open_status_fd).transpose() {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("sandlock: {msg}");
            return 125;
        }
    };
    let outcome = execute(&args);
    if let Ok(Some(RunResult {
        limit_exceeded: Some(why),
        ..
    })) = &outcome
    {
        eprintln!("sandlock: {why}");
    }
    let code = match &outcome {
        Ok(Some(r)) => r.code(),
        Ok(None) => 0,
        Err(e) => {
            eprintln!("sandlock: {}", message(&args, e));
            e.exit_code()
        }
    };
    if let Some(mut f) = status {
        let line = match &outcome {
            Ok(Some(r)) => {
                use std::os::unix::process::ExitStatusExt;
                serde_json::json!({
                    "exit_code": code,
                    "signal": r.status.signal(),
                    "timed_out": r.timed_out,
                    "error": null,
                })
            }
            Ok(None) => {
                serde_json::json!({"exit_code": 0, "signal": null, "timed_out": false, "error": null})
            }
            Err(e) => serde_json::json!({
                "exit_code": code,
                "signal": null,
                "timed_out": matches!(e, Error::TimedOut { .. }),
                "error": message(&args, e),
            }),
        };
        let _ = writeln!(f, "{line}");
    }
    code
}

/// The run itself: `Ok(None)` for `--dry-run-policy`. When masks could
/// not be made (the machine refused their mounts, or another mount shows
/// a masked path; the command did not start), once more: the default
/// profile then grants `/etc` entry by entry, and masks the user asked
/// for fail again, with their own message.
fn execute(args: &RunArgs) -> Result<Option<RunResult>, Error> {
    match execute_once(args) {
        Err(_) if sandlock::profile::masks_refused() => execute_once(args),
        outcome => outcome,
    }
}

/// [`execute`], with the policy as it is built now.
fn execute_once(args: &RunArgs) -> Result<Option<RunResult>, Error> {
    let policy = flags::policy(args)?;
    let mut sandbox = Sandbox::new(policy)?;
    if args.dry_run_policy {
        out!("{}", sandbox.policy().to_toml());
        let p = sandbox.programs();
        outln!("\n# seccomp: base filter ({} instructions)", p.base.len());
        out!("{}", p.base);
        if let Some(user) = &p.user {
            outln!(
                "\n# seccomp: syscall-list filter ({} instructions)",
                user.len()
            );
            out!("{user}");
        }
        return Ok(None);
    }
    let argv = args.argv();
    if argv.is_empty() {
        return Err(Error::NoCommand);
    }
    sandbox = sandbox
        .with_private_tmp()?
        .forward_signals()?
        .interactive(args.interactive);
    if let Some(path) = &args.audit {
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)
            .map_err(|source| Error::Io {
                what: format!("--audit {path}"),
                source,
            })?;
        sandbox = sandbox.audit(AuditLog::new(file));
    }
    let result = sandbox.run(&argv);
    sandbox.finish_before_exit();
    result.map(Some)
}

/// `--status-fd N`: the descriptor, reopened through `/proc/self/fd` (a
/// pipe or a file, appended to).
fn open_status_fd(value: &str) -> Result<File, String> {
    let fd: u32 = value
        .trim()
        .parse()
        .map_err(|_| format!("--status-fd {value}: is not a descriptor number"))?;
    OpenOptions::new()
        .append(true)
        .open(format!("/proc/self/fd/{fd}"))
        .map_err(|e| match e.raw_os_error() {
            Some(2) => format!("--status-fd {value}: not an open descriptor"),
            _ => format!("--status-fd {value}: {}", sandlock::error::io_text(&e)),
        })
}

/// The one-line message for `e`, naming the flag and value at fault.
fn message(args: &RunArgs, e: &Error) -> String {
    match e {
        Error::Policy(PolicyError::Invalid {
            field,
            value,
            reason,
        }) => format!("{} {value}: {reason}", flag_of(field)),
        Error::Path { field, path, errno } => {
            let errno = sandlock::errno_text(*errno);
            if args.gave(field, path) {
                format!("{} {path}: {errno}", flag_of(field))
            } else {
                format!("{field} {path}: {errno}")
            }
        }
        Error::NotImplemented { setting, issue } => {
            format!("{}: not implemented yet ({issue})", flag_of(setting))
        }
        Error::Invalid { field, value, why } => format!("{} {value}: {why}", flag_of(field)),
        Error::NoCommand => {
            "run: no command given (sandlock run [FLAGS] -- CMD [ARGS...])".to_owned()
        }
        other => other.to_string(),
    }
}
