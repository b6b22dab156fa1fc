//! Prints the example filter of `docs/bpf.md` and its disassembly.
//!
//! `cargo run -p sandlock-bpf --example disasm`
use sandlock_bpf::{Action, Arch, ArgIndex, Cond, Errno, Filter, Rule};

/// The example rule set shown in `docs/bpf.md`.
fn example() -> Filter {
    const TIOCSTI: u64 = 0x5412;
    Filter::new(Arch::X86_64)
        .default_action(Action::Allow)
        .rule(Rule::named("ptrace", Action::Errno(Errno::EPERM)))
        .rule(
            Rule::named("ioctl", Action::Errno(Errno::EPERM))
                .when(Cond::eq(ArgIndex::A1, TIOCSTI).u32()),
        )
        .rule(Rule::named("lseek", Action::UserNotif).when(Cond::ge(ArgIndex::A1, 1 << 32)))
        .rule(Rule::named("openat", Action::UserNotif))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = example();
    for r in filter.rules() {
        println!("{r}");
    }
    let program = filter.build()?;
    println!("{} instructions", program.len());
    print!("{program}");
    Ok(())
}
