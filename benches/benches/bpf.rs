//! BPF evaluation cost: instructions executed per syscall and interpreter
//! time, for a 40-rule deny list and a 400-rule list with argument
//! conditions, sandlock-bpf's program against seccompiler's for the same rules.
//!
//! The instruction counts are printed as a table before criterion runs:
//! `cargo bench -p sandlock-benches --bench bpf`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use sandlock_bpf::interp::Checked;
use sandlock_bpf::{Action, Arch, ArgIndex, Cond, Errno, Filter, Insn, Rule, SeccompData};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// A typical deny list: syscalls a sandboxed program has no business making.
const DENY_40: [&str; 40] = [
    "ptrace",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "clock_adjtime",
    "sethostname",
    "setdomainname",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "unshare",
    "setns",
    "open_by_handle_at",
    "name_to_handle_at",
    "process_vm_readv",
    "process_vm_writev",
    "quotactl",
    "lookup_dcookie",
    "syslog",
    "vhangup",
    "fanotify_init",
    "move_mount",
    "fsopen",
    "fsmount",
];

/// One rule set, as (syscall number, argument-0 values; empty = unconditional).
type Spec = BTreeMap<u32, Vec<u64>>;

fn deny_40(arch: Arch) -> Spec {
    DENY_40
        .iter()
        .filter_map(|n| arch.syscall_nr(n))
        .map(|nr| (nr, vec![]))
        .collect()
}

/// 400 rules: 4 argument conditions on each of 100 syscalls spread over the
/// table (more rules than a table has syscalls needs arguments).
fn list_400(arch: Arch) -> Spec {
    let nrs: Vec<u32> = arch.syscalls().map(|(nr, _)| nr).collect();
    let step = nrs.len() / 100;
    nrs.iter()
        .step_by(step)
        .take(100)
        .map(|&nr| (nr, (1..=4).map(|k| u64::from(nr) << 8 | k).collect()))
        .collect()
}

fn rule_count(spec: &Spec) -> usize {
    spec.values().map(|v| v.len().max(1)).sum()
}

fn ours(arch: Arch, spec: &Spec) -> Vec<Insn> {
    let deny = Action::Errno(Errno::EPERM);
    let mut f = Filter::new(arch).default_action(Action::Allow);
    for (&nr, values) in spec {
        if values.is_empty() {
            f.push(Rule::nr(nr, deny));
        }
        for &v in values {
            f.push(Rule::nr(nr, deny).when(Cond::eq(ArgIndex::A0, v)));
        }
    }
    f.build().expect("bench rule sets build").into_insns()
}

fn theirs(arch: Arch, spec: &Spec) -> Vec<Insn> {
    let target = match arch {
        Arch::X86_64 => TargetArch::x86_64,
        Arch::Aarch64 => TargetArch::aarch64,
    };
    let rules = spec
        .iter()
        .map(|(&nr, values)| {
            let chain = values
                .iter()
                .map(|&v| {
                    let c = SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, v)
                        .expect("valid condition");
                    SeccompRule::new(vec![c]).expect("non-empty rule")
                })
                .collect();
            (i64::from(nr), chain)
        })
        .collect();
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(1), target)
        .expect("valid filter");
    let program: BpfProgram = filter.try_into().expect("seccompiler builds it");
    program
        .iter()
        .map(|i| Insn::new(i.code, i.jt, i.jf, i.k))
        .collect()
}

/// Every syscall of the table, arguments zero.
fn inputs(arch: Arch) -> Vec<SeccompData> {
    arch.syscalls()
        .map(|(nr, _)| SeccompData::new(arch, nr, [0; 6]))
        .collect()
}

struct Steps {
    mean: f64,
    worst: usize,
    mean_unmatched: f64,
    worst_unmatched: usize,
}

fn steps(insns: &[Insn], inputs: &[SeccompData], spec: &Spec) -> Steps {
    let p = Checked::new(insns).expect("program passes the kernel's checks");
    let mut all = Vec::new();
    let mut unmatched = Vec::new();
    for d in inputs {
        let s = p.run(d).expect("runs").steps;
        all.push(s);
        if !spec.contains_key(&d.nr_bits()) {
            unmatched.push(s);
        }
    }
    let mean = |v: &[usize]| v.iter().sum::<usize>() as f64 / v.len().max(1) as f64;
    Steps {
        mean: mean(&all),
        worst: all.iter().copied().max().unwrap_or(0),
        mean_unmatched: mean(&unmatched),
        worst_unmatched: unmatched.iter().copied().max().unwrap_or(0),
    }
}

fn print_table(arch: Arch) {
    println!(
        "\nBPF instructions executed per syscall ({arch}, every table syscall, args 0)\n\
         {:<14} {:<12} {:>6} {:>8} {:>7} {:>14} {:>15} {:>12}",
        "rules", "program", "len", "mean", "worst", "mean no-match", "worst no-match", "2log2(n)+8"
    );
    let inputs = inputs(arch);
    for (name, spec) in [("deny-40", deny_40(arch)), ("list-400", list_400(arch))] {
        let n = rule_count(&spec);
        let bound = 2.0 * (n as f64).log2() + 8.0;
        for (who, insns) in [
            ("sandlock", ours(arch, &spec)),
            ("seccompiler", theirs(arch, &spec)),
        ] {
            let s = steps(&insns, &inputs, &spec);
            println!(
                "{:<14} {:<12} {:>6} {:>8.1} {:>7} {:>14.1} {:>15} {:>12.1}",
                format!("{name}({n})"),
                who,
                insns.len(),
                s.mean,
                s.worst,
                s.mean_unmatched,
                s.worst_unmatched,
                bound
            );
        }
    }
    println!();
}

fn bench(c: &mut Criterion) {
    let arch = Arch::native().unwrap_or(Arch::X86_64);
    print_table(arch);
    let inputs = inputs(arch);
    for (name, spec) in [("deny-40", deny_40(arch)), ("list-400", list_400(arch))] {
        let mut g = c.benchmark_group(format!("bpf/{name}/all-syscalls"));
        for (who, insns) in [
            ("sandlock", ours(arch, &spec)),
            ("seccompiler", theirs(arch, &spec)),
        ] {
            let p = Checked::new(&insns).expect("program passes the kernel's checks");
            g.bench_function(who, |b| {
                b.iter(|| {
                    let mut acc = 0u32;
                    for d in &inputs {
                        acc ^= p.run(black_box(d)).map_or(0, |o| o.ret);
                    }
                    acc
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
