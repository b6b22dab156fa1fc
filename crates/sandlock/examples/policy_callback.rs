//! A policy callback watching a command: deny an `execve` by its argv,
//! deny opens by path, and close a path for the rest of the run once a
//! trigger file is read.
//!
//! ```text
//! policy_callback run [-r PATH]... [-w PATH]... [--fs-deny PATH]...
//!                     [--deny-argv WORD]... [--deny-last-arg WORD]... [--deny-path TEXT]...
//!                     [--close-after TRIGGER=PATH]...
//!                     [--panic-on TEXT] [--hang-on TEXT] [--callback-timeout SECS]
//!                     [--isolate-signals on|off] [--pid-namespace on|off]
//!                     [--audit FILE] -- COMMAND [ARGS]...
//! ```
//!
//! It takes the `run FLAGS -- COMMAND` form of `sandlock run`, so the
//! escape suite drives it like the command-line tool (`--panic-on` and
//! `--hang-on` make the callback fail on purpose, to show it fails closed;
//! `--pid-namespace off` shows what Landlock's scopes hold alone, as on a
//! machine that refuses the namespace).
#![allow(clippy::print_stderr)]

use std::process::ExitCode;
use std::time::Duration;

use sandlock::{AuditLog, Policy, Sandbox, Verdict};

fn usage() -> ExitCode {
    eprintln!("usage: policy_callback run [FLAGS] -- COMMAND [ARGS]...");
    ExitCode::from(125)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some("run") {
        return usage();
    }
    let mut b = Policy::builder();
    let (mut deny_argv, mut deny_last, mut deny_path) = (Vec::new(), Vec::new(), Vec::new());
    let mut close_after = Vec::new();
    let (mut panic_on, mut hang_on, mut audit) = (None, None, None);
    let mut pid_namespace = true;
    let mut command = Vec::new();
    while let Some(a) = args.next() {
        if a == "--" {
            command = args.by_ref().collect();
            break;
        }
        let Some(v) = args.next() else {
            return usage();
        };
        match a.as_str() {
            "-r" => b = b.fs_read(v),
            "-w" => b = b.fs_write(v),
            "--fs-deny" => b = b.fs_deny(v),
            "--deny-argv" => deny_argv.push(v),
            "--deny-last-arg" => deny_last.push(v),
            "--deny-path" => deny_path.push(v),
            "--close-after" => match v.split_once('=') {
                Some((t, p)) => close_after.push((t.to_owned(), p.to_owned())),
                None => return usage(),
            },
            "--panic-on" => panic_on = Some(v),
            "--hang-on" => hang_on = Some(v),
            "--callback-timeout" => b = b.callback_timeout(v),
            "--audit" => audit = Some(v),
            "--isolate-signals" | "--pid-namespace" => {
                let on = match v.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => return usage(),
                };
                if a == "--pid-namespace" {
                    pid_namespace = on;
                } else {
                    b = b.isolate_signals(on);
                }
            }
            _ => return usage(),
        }
    }
    if command.is_empty() {
        return usage();
    }
    let policy = b.policy_fn(move |event, ctx| {
        if let Some(p) = &panic_on
            && event.path_contains(p)
        {
            panic!("policy_callback: asked to panic on {p}");
        }
        if let Some(h) = &hang_on
            && event.path_contains(h)
        {
            std::thread::sleep(Duration::from_secs(3600));
        }
        for (trigger, path) in &close_after {
            if event.path_contains(trigger) && ctx.deny_path(path).is_err() {
                return Verdict::Deny;
            }
        }
        let last = event.argv.as_ref().and_then(|a| a.last());
        if deny_argv.iter().any(|w| event.argv_contains(w))
            || last.is_some_and(|l| deny_last.contains(l))
            || deny_path.iter().any(|p| event.path_contains(p))
        {
            return Verdict::Deny;
        }
        Verdict::Allow
    });
    let run = || -> Result<i32, Box<dyn std::error::Error>> {
        let mut sandbox = Sandbox::new(policy.build()?)?.pid_namespace(pid_namespace);
        if let Some(f) = audit {
            sandbox = sandbox.audit(AuditLog::new(std::fs::File::create(f)?));
        }
        Ok(sandbox.run(&command)?.code())
    };
    match run() {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("policy_callback: {e}");
            ExitCode::from(125)
        }
    }
}
