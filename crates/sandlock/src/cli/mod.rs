//! Command-line parsing (clap) and dispatch.

/// `print!` that ignores a closed standard output (no panic on `EPIPE`).
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($t)*);
    }};
}

/// `println!` that ignores a closed standard output.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

mod check;
mod fast;
mod flags;
mod run;

use std::ffi::OsString;

use clap::{Parser, Subcommand};

pub(crate) use flags::RunArgs;

/// Lightweight process sandbox for Linux: Landlock + seccomp, no root.
#[derive(Parser, Debug)]
#[command(name = "sandlock", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a command in a sandbox.
    Run(Box<RunArgs>),
    /// Show the kernel features sandlock uses and what it enforces here.
    Check,
    /// Manage profiles (TOML files in $XDG_CONFIG_HOME/sandlock/profiles).
    Profile {
        #[command(subcommand)]
        action: ProfileAction,
    },
}

#[derive(Subcommand, Debug)]
enum ProfileAction {
    /// List the saved profiles.
    List,
    /// Print a profile (`default`: the built-in one, resolved for this machine).
    Show {
        /// The profile's name.
        name: String,
    },
    /// Delete a saved profile.
    Delete {
        /// The profile's name.
        name: String,
    },
}

/// Runs the command line `args` (the program name first); returns the exit
/// status.
pub(crate) fn main(args: Vec<OsString>) -> i32 {
    // The everyday `run` line is read without building clap's parser.
    if let Some(run) = fast::run_args(&args) {
        return run::run(run);
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match cli.command {
        Command::Run(args) => run::run(*args),
        Command::Check => check::check(),
        Command::Profile { action } => profile(action),
    }
}

fn profile(action: ProfileAction) -> i32 {
    let result = match action {
        ProfileAction::List => sandlock::profile::list_profiles().map(|names| {
            for n in names {
                outln!("{n}");
            }
        }),
        ProfileAction::Show { name } if name == "default" => sandlock::profile::default_policy()
            .map(|p| {
                for line in sandlock::profile::DEFAULT_PROFILE.lines() {
                    if line.starts_with('#') {
                        outln!("{line}");
                    } else {
                        break;
                    }
                }
                outln!("# Resolved on this machine:\n");
                out!("{}", p.to_toml());
            }),
        ProfileAction::Show { name } => sandlock::profile::read_profile(&name).map(|t| out!("{t}")),
        ProfileAction::Delete { name } => sandlock::profile::delete_profile(&name),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("sandlock: {e}");
            125
        }
    }
}
