//! `docs/bpf.md` shows the disassembly of the example filter: keep it true.

use sandlock_bpf::{Action, Arch, ArgIndex, Cond, Errno, Filter, Rule};

const DOC: &str = include_str!("../../../docs/bpf.md");

/// The same rules as `examples/disasm.rs`.
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

#[test]
fn doc_shows_the_current_disassembly() {
    let f = example();
    let program = f.build().unwrap();
    let listing = program.to_string();
    assert!(
        DOC.contains(&listing),
        "docs/bpf.md is stale; regenerate with `cargo run -p sandlock-bpf --example disasm`:\n{listing}"
    );
    for r in f.rules() {
        assert!(
            DOC.contains(&r.to_string()),
            "rule `{r}` missing from docs/bpf.md"
        );
    }
}
