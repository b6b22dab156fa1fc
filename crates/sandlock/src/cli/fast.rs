//! A quick reading of the everyday `sandlock run` command line, before clap.
//!
//! Building clap's parser for `run` (some forty flags, each with its help
//! text) costs about 0.12 ms, a tenth of a sandbox's whole start-up. Most
//! command lines are plain: known flags, each value in the next argument
//! or after `=`, then `--` and the command. [`run_args`] reads exactly
//! those; anything else (help, an unknown flag, `-rPATH`, a value that
//! starts with `-` or is empty, a flag given twice where clap allows it
//! once, text that is not UTF-8) gives `None`, and clap parses the whole
//! line, with its own messages and exit codes. So the quick reading never
//! decides what an error is: it only skips clap when clap would produce the
//! same [`RunArgs`] (the tests compare the two on every flag).

use std::ffi::OsString;

use super::RunArgs;

/// How a flag takes its value, and where the value goes.
#[derive(Clone, Copy)]
enum Slot {
    /// A switch: `true` when given.
    Switch(fn(&mut RunArgs) -> &mut bool),
    /// One value (clap refuses a second one).
    One(fn(&mut RunArgs) -> &mut Option<String>),
    /// Repeatable: every value, in order.
    Many(fn(&mut RunArgs) -> &mut Vec<String>),
}

/// One flag of `run`: its long name, its short letter, its slot.
struct Flag {
    long: &'static str,
    short: Option<char>,
    slot: Slot,
}

macro_rules! flags {
    ($($long:literal $(| $short:literal)? => $kind:ident $field:ident,)*) => {
        /// Every flag of `run` (aliases included), as clap knows them.
        const FLAGS: &[Flag] = &[$(Flag {
            long: $long,
            short: flags!(@short $($short)?),
            slot: Slot::$kind(|a| &mut a.$field),
        },)*];
    };
    (@short $s:literal) => { Some($s) };
    (@short) => { None };
}

flags! {
    "fs-read" | 'r' => Many fs_read,
    "fs-write" | 'w' => Many fs_write,
    "fs-deny" => Many fs_deny,
    "fs-mask" => Many fs_mask,
    "max-memory" | 'm' => One max_memory,
    "max-processes" | 'P' => One max_processes,
    "cpu" | 'c' => One cpu,
    "max-open-files" => One max_open_files,
    "timeout" | 't' => One timeout,
    "net-allow-host" => Many net_allow_host,
    "net-bind" => Many net_bind,
    "net-connect" => Many net_connect,
    "no-udp" => Switch no_udp,
    "isolate-ipc" => Switch isolate_ipc,
    "isolate-signals" => Switch isolate_signals,
    "clean-env" => Switch clean_env,
    "env" => Many env,
    "time-start" => One time_start,
    "random-seed" => One random_seed,
    "no-randomize-memory" => Switch no_randomize_memory,
    "no-huge-pages" => Switch no_huge_pages,
    "no-coredump" => Switch no_coredump,
    "num-cpus" => One num_cpus,
    "cpu-cores" => One cpu_cores,
    "hostname" => One hostname,
    "chroot" => One chroot,
    "workdir" => One workdir,
    "cwd" => One workdir,
    "profile" | 'p' => One profile,
    "status-fd" => One status_fd,
    "interactive" | 'i' => Switch interactive,
    "exec-shell" | 'e' => One exec_shell,
    "best-effort" => Switch best_effort,
    "audit" => One audit,
    "dry-run-policy" => Switch dry_run_policy,
}

/// `args` (the program name first) read as `sandlock run ...`, or `None`
/// when clap must read them (see the module documentation).
pub(crate) fn run_args(args: &[OsString]) -> Option<RunArgs> {
    if args.get(1)?.to_str()? != "run" {
        return None;
    }
    let mut out = RunArgs::default();
    // Which flags were seen, by index in FLAGS (aliases share a field, so
    // a second one is caught by the field being set, below).
    let mut seen = [false; FLAGS.len()];
    let mut rest = args[2..].iter();
    while let Some(arg) = rest.next() {
        let arg = arg.to_str()?;
        if arg == "--" {
            out.command = rest.cloned().collect();
            return Some(out);
        }
        let (index, inline) = if let Some(long) = arg.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            (FLAGS.iter().position(|f| f.long == name)?, value)
        } else {
            let mut chars = arg.strip_prefix('-')?.chars();
            let (letter, None) = (chars.next()?, chars.next()) else {
                return None;
            };
            (FLAGS.iter().position(|f| f.short == Some(letter))?, None)
        };
        if std::mem::replace(&mut seen[index], true) && !matches!(FLAGS[index].slot, Slot::Many(_))
        {
            return None;
        }
        match FLAGS[index].slot {
            Slot::Switch(field) => {
                if inline.is_some() {
                    return None;
                }
                *field(&mut out) = true;
            }
            Slot::One(field) => {
                let value = value(inline, &mut rest)?;
                if field(&mut out).replace(value).is_some() {
                    return None; // --workdir and --cwd together
                }
            }
            Slot::Many(field) => {
                let value = value(inline, &mut rest)?;
                field(&mut out).push(value);
            }
        }
    }
    Some(out)
}

/// A flag's value: after `=`, or the next argument; `None` for anything
/// clap might read otherwise (missing, empty, or starting with `-`).
fn value<'a>(
    inline: Option<&str>,
    rest: &mut impl Iterator<Item = &'a OsString>,
) -> Option<String> {
    let v = match inline {
        Some(v) => v,
        None => rest.next()?.to_str()?,
    };
    (!v.is_empty() && !v.starts_with('-')).then(|| v.to_owned())
}

#[cfg(test)]
mod tests {
    use clap::{ArgAction, CommandFactory};

    use super::*;
    use crate::cli::{Cli, Command};

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    /// clap's reading of `args`, if it is a `run`.
    fn clap(args: &[OsString]) -> Option<RunArgs> {
        use clap::Parser;
        match Cli::try_parse_from(args).ok()?.command {
            Command::Run(r) => Some(*r),
            _ => None,
        }
    }

    /// The quick reading, which must agree with clap whenever it answers.
    fn agree(args: &[&str]) -> Option<RunArgs> {
        let args = os(args);
        let quick = run_args(&args);
        if let Some(q) = &quick {
            assert_eq!(Some(q), clap(&args).as_ref(), "{args:?}");
        }
        quick
    }

    #[test]
    fn the_table_is_clap_s_list_of_run_flags() {
        let cli = Cli::command();
        let run = cli.find_subcommand("run").unwrap();
        let mut names = Vec::new();
        for arg in run.get_arguments() {
            let Some(long) = arg.get_long() else {
                continue; // the command (after --)
            };
            if long == "help" {
                continue;
            }
            let longs = std::iter::once(long).chain(arg.get_all_aliases().unwrap_or_default());
            for name in longs {
                names.push(name);
                let f = FLAGS
                    .iter()
                    .find(|f| f.long == name)
                    .unwrap_or_else(|| panic!("--{name} is missing from FLAGS"));
                assert_eq!(f.short, arg.get_short(), "--{name}");
                let kind = match f.slot {
                    Slot::Switch(_) => ArgAction::SetTrue,
                    Slot::One(_) => ArgAction::Set,
                    Slot::Many(_) => ArgAction::Append,
                };
                assert_eq!(
                    std::mem::discriminant(&kind),
                    std::mem::discriminant(arg.get_action()),
                    "--{name}"
                );
            }
        }
        assert_eq!(names.len(), FLAGS.len(), "FLAGS has flags clap does not");
    }

    #[test]
    fn every_flag_is_read_as_clap_reads_it() {
        for f in FLAGS {
            let long = format!("--{}", f.long);
            // (flags, whether the quick reading takes them)
            let mut lines: Vec<(Vec<String>, bool)> = Vec::new();
            match f.slot {
                Slot::Switch(_) => {
                    lines.push((vec![long.clone()], true));
                    lines.extend(f.short.map(|s| (vec![format!("-{s}")], true)));
                }
                Slot::One(_) | Slot::Many(_) => {
                    let many = matches!(f.slot, Slot::Many(_));
                    lines.push((vec![long.clone(), "v1".into()], true));
                    lines.push((vec![format!("{long}=v=2")], true));
                    lines.push((
                        vec![long.clone(), "a".into(), long.clone(), "b".into()],
                        many,
                    ));
                    lines.extend(f.short.map(|s| (vec![format!("-{s}"), "v".into()], true)));
                }
            }
            for (flags, taken) in lines {
                let mut args = vec!["sandlock".to_owned(), "run".to_owned()];
                args.extend(flags);
                args.extend(["--".to_owned(), "/bin/true".to_owned(), "-x".to_owned()]);
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                assert_eq!(agree(&refs).is_some(), taken, "{refs:?}");
            }
        }
    }

    #[test]
    fn everyday_lines_are_read() {
        let q = agree(&[
            "sandlock",
            "run",
            "-r",
            "/usr",
            "-w",
            "/tmp",
            "--fs-deny=/tmp/s",
            "--fs-mask",
            "/tmp/m",
            "-m",
            "512M",
            "--clean-env",
            "--env",
            "A=B",
            "-i",
            "--",
            "sh",
            "-c",
            "echo --",
        ])
        .unwrap();
        assert_eq!(q.fs_read, ["/usr"]);
        assert_eq!(q.command, os(&["sh", "-c", "echo --"]));
        assert!(agree(&["sandlock", "run", "--", "true"]).is_some());
        assert!(agree(&["sandlock", "run", "--"]).is_some());
        assert!(agree(&["sandlock", "run", "-r", "/usr"]).is_some());
    }

    #[test]
    fn anything_unusual_is_left_to_clap() {
        for line in [
            &["sandlock", "check"][..],
            &["sandlock", "run", "--help"],
            &["sandlock", "run", "-h"],
            &["sandlock", "run", "--no-such-flag", "--", "true"],
            &["sandlock", "run", "-r/usr", "--", "true"],
            &["sandlock", "run", "-ri", "/usr", "--", "true"],
            &["sandlock", "run", "-r", "--", "true"],
            &["sandlock", "run", "-r", "-w", "/tmp", "--", "true"],
            &["sandlock", "run", "-r", "", "--", "true"],
            &["sandlock", "run", "--timeout", "1", "-t", "2", "--", "true"],
            &[
                "sandlock",
                "run",
                "--workdir",
                "/a",
                "--cwd",
                "/b",
                "--",
                "true",
            ],
            &["sandlock", "run", "--clean-env=yes", "--", "true"],
            &[
                "sandlock",
                "run",
                "--clean-env",
                "--clean-env",
                "--",
                "true",
            ],
            &["sandlock", "run", "true"],
            &["sandlock", "run", "-r"],
        ] {
            assert!(run_args(&os(line)).is_none(), "{line:?}");
        }
        use std::os::unix::ffi::OsStringExt;
        let mut args = os(&["sandlock", "run", "-r"]);
        args.push(OsString::from_vec(vec![0xff]));
        assert!(run_args(&args).is_none());
        // Not UTF-8 after `--` is the command's business.
        let mut args = os(&["sandlock", "run", "--"]);
        args.push(OsString::from_vec(vec![0xff]));
        assert!(agree_os(&args));
    }

    fn agree_os(args: &[OsString]) -> bool {
        let quick = run_args(args);
        assert_eq!(quick, clap(args));
        quick.is_some()
    }
}
