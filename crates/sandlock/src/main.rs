//! The `sandlock` command: run a command in a sandbox, check the kernel,
//! manage profiles. See `docs/cli.md`.
#![deny(unsafe_code)]

mod cli;

fn main() {
    std::process::exit(cli::main());
}
