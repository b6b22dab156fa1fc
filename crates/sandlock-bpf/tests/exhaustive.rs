//! Exhaustive checks: every syscall number 0..=1023 on both arches, every
//! x32 number, foreign arches; and the action-cache property.

mod common;

use common::{EDGES, check_one};
use sandlock_bpf::arch::{AUDIT_ARCH_I386, X32_SYSCALL_BIT};
use sandlock_bpf::{Action, Arch, ArgIndex, Cond, Errno, Filter, Rule, SeccompData};

const TIOCSTI: u64 = 0x5412;
const AF_UNIX: u64 = 1;
const CLONE_NEWUSER: u64 = 0x1000_0000;

/// A realistic mix: unconditional denies, U32 and U64 conditions, a
/// multi-rule chain, and a rule on a number with no name.
fn mixed(arch: Arch, default: Action) -> Filter {
    let eperm = Action::Errno(Errno::EPERM);
    Filter::new(arch)
        .default_action(default)
        .rule(Rule::named("ptrace", eperm))
        .rule(Rule::named("kexec_load", Action::KillProcess))
        .rule(Rule::named("bpf", Action::Errno(Errno::ENOSYS)))
        .rule(Rule::named("ioctl", eperm).when(Cond::eq(ArgIndex::A1, TIOCSTI).u32()))
        .rule(Rule::named("socket", Action::Allow).when(Cond::eq(ArgIndex::A0, AF_UNIX).u32()))
        .rule(Rule::named("socket", Action::UserNotif))
        .rule(Rule::named("lseek", Action::Log).when(Cond::ge(ArgIndex::A1, 1 << 32)))
        .rule(Rule::named("clone", eperm).when(Cond::masked_eq(
            ArgIndex::A0,
            CLONE_NEWUSER,
            CLONE_NEWUSER,
        )))
        .rule(
            Rule::named("mmap", Action::Trap(7))
                .when(Cond::masked_eq(ArgIndex::A2, 0b110, 0b110))
                .when(Cond::lt(ArgIndex::A1, 0x1_0000_0000)),
        )
        .rule(Rule::named("personality", Action::Allow).when(Cond::eq(ArgIndex::A0, 0).u32()))
        .rule(Rule::named("personality", Action::Errno(Errno::EINVAL)))
        .rule(Rule::nr(1000, Action::UserNotif).when(Cond::ne(ArgIndex::A5, 0)))
        .rule(Rule::nr(1023, Action::KillThread))
}

fn arg_patterns() -> Vec<[u64; 6]> {
    let mut out = vec![[0; 6]];
    for &e in &EDGES {
        out.push([e; 6]);
    }
    for v in [
        TIOCSTI,
        TIOCSTI | 1 << 32,
        AF_UNIX,
        1 << 32 | AF_UNIX,
        CLONE_NEWUSER | 0x11,
    ] {
        out.push([v, v, 0b110, 0, 0, 1]);
        out.push([v, 0xffff_ffff, 0b111, 0, 0, 0]);
    }
    out
}

fn has_rule(f: &Filter, nr: u32) -> Option<&Rule> {
    f.rules().iter().find(|r| match r.syscall() {
        sandlock_bpf::Syscall::Nr(n) => *n == nr,
        sandlock_bpf::Syscall::Name(name) => f.arch().syscall_nr(name) == Some(nr),
    })
}

#[test]
fn every_number_on_both_arches() {
    for arch in Arch::ALL {
        for default in [
            Action::Allow,
            Action::KillProcess,
            Action::Errno(Errno::EACCES),
        ] {
            let f = mixed(arch, default);
            let p = f.build().unwrap();
            let r = f.reference().unwrap();
            let audit = arch.audit_arch();
            let bound = 2 * (f.rules().len() as f64).log2().ceil() as usize + 8;
            for nr in 0..=1023u32 {
                let first = has_rule(&f, nr);
                for args in arg_patterns() {
                    let steps = check_one(&p, &r, &SeccompData::new(arch, nr, args));
                    if first.is_none() {
                        assert!(steps <= bound, "{arch} nr {nr}: {steps} steps > {bound}");
                    }
                }
                // The action cache: numbers whose verdict needs no argument
                // are constant; numbers with argument conditions are not.
                let want = match first {
                    None => Some(default.to_ret()),
                    Some(rule) if rule.conditions().is_empty() => Some(rule.action().to_ret()),
                    Some(_) => None,
                };
                assert_eq!(p.const_action(audit, nr), want, "{arch} nr {nr}");
            }
        }
    }
}

#[test]
fn default_allow_is_cacheable_everywhere_without_rules() {
    for arch in Arch::ALL {
        let f = mixed(arch, Action::Allow);
        let p = f.build().unwrap();
        let audit = arch.audit_arch();
        let allow = Some(Action::Allow.to_ret());
        let cached = (0..=1023)
            .filter(|&nr| p.const_action(audit, nr) == allow)
            .count();
        let ruled = (0..=1023).filter(|&nr| has_rule(&f, nr).is_some()).count();
        assert_eq!(cached, 1024 - ruled, "{arch}");
        let ioctl = arch.syscall_nr("ioctl").unwrap();
        assert_eq!(
            p.const_action(audit, ioctl),
            None,
            "{arch}: ioctl has a condition"
        );
    }
}

#[test]
fn every_x32_number() {
    let x32 = Action::Errno(Errno::ENOSYS);
    for arch in Arch::ALL {
        let f = mixed(arch, Action::Allow);
        let p = f.build().unwrap();
        let r = f.reference().unwrap();
        let mut nrs: Vec<u32> = (0..=1023).map(|n| X32_SYSCALL_BIT | n).collect();
        nrs.extend([
            u32::MAX,
            0x7fff_ffff,
            0xc000_0000,
            0xffff_fc00,
            X32_SYSCALL_BIT | 0x3fff_ffff,
        ]);
        for nr in nrs {
            for args in [[0; 6], [u64::MAX; 6]] {
                let d = SeccompData::new(arch, nr, args);
                check_one(&p, &r, &d);
                if arch == Arch::X86_64 {
                    assert_eq!(p.run(&d).unwrap().action(), Some(x32), "nr {nr:#x}");
                }
            }
        }
    }
    // The x32 action is configurable.
    let f = mixed(Arch::X86_64, Action::Allow).x32_action(Action::KillProcess);
    let p = f.build().unwrap();
    let d = SeccompData::new(Arch::X86_64, X32_SYSCALL_BIT | 39, [0; 6]);
    assert_eq!(p.run(&d).unwrap().action(), Some(Action::KillProcess));
}

#[test]
fn foreign_arches_are_killed() {
    for arch in Arch::ALL {
        for default in [Action::Allow, Action::UserNotif] {
            let f = mixed(arch, default);
            let p = f.build().unwrap();
            let r = f.reference().unwrap();
            let foreign = [
                AUDIT_ARCH_I386,
                Arch::ALL.iter().find(|a| **a != arch).unwrap().audit_arch(),
                0,
                u32::MAX,
                arch.audit_arch() ^ 0x8000_0000,
                arch.audit_arch() ^ 0x4000_0000,
            ];
            for audit in foreign {
                for nr in (0..=1023).chain([X32_SYSCALL_BIT | 1, u32::MAX]) {
                    let d = SeccompData::with_audit_arch(audit, nr, [0; 6]);
                    check_one(&p, &r, &d);
                    assert_eq!(p.run(&d).unwrap().action(), Some(Action::KillProcess));
                    assert_eq!(
                        p.const_action(audit, nr),
                        Some(Action::KillProcess.to_ret())
                    );
                }
            }
        }
    }
}

#[test]
fn u32_width_ignores_the_high_word_everywhere() {
    for arch in Arch::ALL {
        let f = mixed(arch, Action::Allow);
        let p = f.build().unwrap();
        let ioctl = arch.syscall_nr("ioctl").unwrap();
        for hi in [0u64, 1, 0xffff_ffff, 0x8000_0000] {
            let d = SeccompData::new(arch, ioctl, [0, hi << 32 | TIOCSTI, 0, 0, 0, 0]);
            assert_eq!(
                p.run(&d).unwrap().action(),
                Some(Action::Errno(Errno::EPERM))
            );
        }
        let d = SeccompData::new(arch, ioctl, [0, TIOCSTI + 1, 0, 0, 0, 0]);
        assert_eq!(p.run(&d).unwrap().action(), Some(Action::Allow));
    }
}
