//! `cargo xtask bench | ab | fuzz | ci | layout`: sandlock's developer tasks.
//!
//! - `bench`: end-to-end scenarios, bare against sandlock, Landlock alone and
//!   other sandboxes, interleaved; a JSON record per run in `target/bench/`.
//! - `ab`: this tree's start-up against another revision's, start by start.
//! - `fuzz`: every cargo-fuzz target for a while, coverage growth, crashes.
//! - `ci`: `.ci/run` plus `bench --quick`.
//! - `layout`: the start path's functions, for the binary's code layout.
//!
//! See `docs/benchmarks.md`.

mod bench;
mod ci;
mod cli;
mod fuzz;
mod layout;
mod workspace;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match cli::parse(&args) {
        Ok(cli::Command::Bench(opts)) => bench::main(&opts),
        Ok(cli::Command::Ab(opts)) => bench::ab(&opts),
        Ok(cli::Command::Fuzz(opts)) => fuzz::main(&opts),
        Ok(cli::Command::Ci) => ci::main(),
        Ok(cli::Command::Layout { check }) => layout::main(check),
        Ok(cli::Command::Help) => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask: {e}\n\n{}", cli::USAGE);
            ExitCode::from(2)
        }
    }
}
