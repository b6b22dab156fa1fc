//! Programs generated ahead of time, and the guard placed in front of one.
//!
//! Generating a program is cheap when warm (about 25 µs for a deny list of
//! 120 rules) but costs three times that at the start of a short-lived
//! process, where its code and memory are touched for the first time. A
//! caller that starts a process per sandbox can carry the programs of its
//! usual filters, generated ahead of time: [`Filter::build_or_prebuilt`]
//! returns the carried program when the filter is **exactly** the one it
//! was generated from, and generates as [`Filter::build`] otherwise.
//!
//! "Exactly" is decided by the filter's [key](Filter::key): its
//! architecture, default and x32 actions, and every rule resolved (number,
//! action, each condition's argument, width, operator and operands), in
//! order. The generator is a function of these alone, so equal keys mean
//! equal programs; a carried program that no longer matches its generator
//! is caught where it is generated ([`Filter::prebuilt_source`] and the
//! caller's test that compares it with the carried text), and at worst is
//! never used, since the caller's filters then have other keys.
//!
//! [`Program::allow_first`] puts a guard in front of a program: one syscall,
//! with given 64-bit argument values, allowed before anything else is
//! looked at. A per-process secret (sandlock's listener hand-over key) then
//! stays out of the generated part, which can be carried.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::action::Action;
use crate::cond::{ArgIndex, CmpOp, Width};
use crate::data::offset;
use crate::filter::{BPF_MAXINSNS, BuildError, Filter, Resolved};
use crate::insn::{Insn, op};
use crate::program::Program;

/// A program generated ahead of time, with the key of its filter.
#[derive(Clone, Copy, Debug)]
pub struct Prebuilt {
    /// [`Filter::key`] of the filter the program was generated from.
    pub key: &'static [u64],
    /// The program [`Filter::build`] generated for it.
    pub insns: &'static [Insn],
}

impl Filter {
    /// The filter as words: equal keys, equal programs (see the module
    /// documentation). Fails as [`build`](Filter::build) does on a rule
    /// that cannot be resolved.
    pub fn key(&self) -> Result<Vec<u64>, BuildError> {
        Ok(self.key_of(&self.resolve()?))
    }

    /// The key of this filter, whose rules resolve to `resolved`.
    fn key_of(&self, resolved: &[Resolved<'_>]) -> Vec<u64> {
        let mut key = Vec::with_capacity(4 + resolved.len() * 8);
        self.key_words(resolved, |w| {
            key.push(w);
            true
        });
        key
    }

    /// Hands the key's words to `word` in order, while it returns `true`;
    /// whether every word was handed.
    fn key_words(&self, resolved: &[Resolved<'_>], mut word: impl FnMut(u64) -> bool) -> bool {
        let head = [
            u64::from(self.arch().audit_arch()),
            u64::from(self.current_default_action().to_ret()),
            u64::from(self.current_x32_action().to_ret()),
            resolved.len() as u64,
        ];
        if !head.into_iter().all(&mut word) {
            return false;
        }
        resolved.iter().all(|r| {
            word(u64::from(r.nr))
                && word(u64::from(r.action.to_ret()))
                && word(r.conds.len() as u64)
                && r.conds.iter().all(|c| {
                    let (op, mask) = match c.op() {
                        CmpOp::Eq => (0, 0),
                        CmpOp::Ne => (1, 0),
                        CmpOp::Lt => (2, 0),
                        CmpOp::Le => (3, 0),
                        CmpOp::Gt => (4, 0),
                        CmpOp::Ge => (5, 0),
                        CmpOp::MaskedEq(m) => (6, m),
                    };
                    let width = match c.width() {
                        Width::U64 => 0,
                        Width::U32 => 1,
                    };
                    word(u64::from(c.arg().get()) | width << 8 | op << 16)
                        && word(mask)
                        && word(c.value())
                })
        })
    }

    /// Whether this filter's key, for rules resolved to `resolved`, is
    /// `key`: compared word by word as it is made, never written out.
    fn key_is(&self, resolved: &[Resolved<'_>], key: &[u64]) -> bool {
        let mut at = 0;
        let all = self.key_words(resolved, |w| {
            let same = key.get(at) == Some(&w);
            at += 1;
            same
        });
        all && at == key.len()
    }

    /// The program of the first of `prebuilt` whose key is this filter's,
    /// else [`build`](Filter::build)'s. The rules are resolved once, for
    /// the key and the generator both.
    pub fn build_or_prebuilt(&self, prebuilt: &[Prebuilt]) -> Result<Program, BuildError> {
        let resolved = self.resolve()?;
        if let Some(p) = prebuilt.iter().find(|p| self.key_is(&resolved, p.key)) {
            return Ok(Program::new(self.arch(), p.insns.to_vec()));
        }
        let insns = crate::codegen::generate(self, &resolved)?;
        Ok(Program::new(self.arch(), insns))
    }

    /// Rust source of a [`Prebuilt`] for this filter: its key and the
    /// program [`build`](Filter::build) generates, as an expression (for a
    /// generator that writes them into the caller's source).
    pub fn prebuilt_source(&self) -> Result<String, BuildError> {
        let resolved = self.resolve()?;
        let key = self.key_of(&resolved);
        let program = crate::codegen::generate(self, &resolved)?;
        let mut s = String::from("Prebuilt {\n    key: &[\n");
        for chunk in key.chunks(6) {
            s.push_str("       ");
            for w in chunk {
                s.push_str(&format!(" {w:#x},"));
            }
            s.push('\n');
        }
        s.push_str("    ],\n    insns: &[\n");
        for i in &program {
            s.push_str(&format!(
                "        Insn::new({:#06x}, {}, {}, {:#x}),\n",
                i.code, i.jt, i.jf, i.k
            ));
        }
        s.push_str("    ],\n}");
        Ok(s)
    }
}

impl Program {
    /// This program behind a guard: syscall `nr` of the program's
    /// architecture is allowed when each listed argument equals its value
    /// (all 64 bits); anything else runs this program, unchanged (its jumps
    /// are relative, so a prefix moves none of them).
    ///
    /// ```
    /// use sandlock_bpf::{Action, Arch, ArgIndex, Filter, Rule, SeccompData};
    ///
    /// let inner = Filter::new(Arch::X86_64)
    ///     .default_action(Action::Allow)
    ///     .rule(Rule::named("sendmsg", Action::UserNotif))
    ///     .build()?;
    /// let guarded = inner.allow_first(46, &[(ArgIndex::A3, 0xfeed)])?;
    /// let send = |a3| SeccompData::new(Arch::X86_64, 46, [1, 0, 0, a3, 0, 0]);
    /// assert_eq!(guarded.run(&send(0xfeed))?.action(), Some(Action::Allow));
    /// assert_eq!(guarded.run(&send(0xfeee))?.action(), Some(Action::UserNotif));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn allow_first(self, nr: u32, args: &[(ArgIndex, u64)]) -> Result<Program, BuildError> {
        // arch, nr, two words per argument: a load and a test each; then
        // the return.
        let guard = 4 + 4 * args.len() + 1;
        let len = guard + self.insns().len();
        if len > BPF_MAXINSNS || guard > usize::from(u8::MAX) {
            return Err(BuildError::TooLong { len });
        }
        let load = |off: u32| Insn::stmt(op::BPF_LD | op::BPF_W | op::BPF_ABS, off);
        let mut out: Vec<Insn> = Vec::with_capacity(len);
        // A test that falls through when equal and otherwise jumps past the
        // guard (the return being the guard's last instruction).
        let test = |out: &mut Vec<Insn>, k: u32| {
            let skip = (guard - out.len() - 1) as u8;
            out.push(Insn::jump(
                op::BPF_JMP | op::BPF_JEQ | op::BPF_K,
                k,
                0,
                skip,
            ));
        };
        out.push(load(offset::ARCH));
        test(&mut out, self.arch().audit_arch());
        out.push(load(offset::NR));
        test(&mut out, nr);
        for &(arg, value) in args {
            out.push(load(offset::arg_hi(arg)));
            test(&mut out, (value >> 32) as u32);
            out.push(load(offset::arg_lo(arg)));
            test(&mut out, value as u32);
        }
        out.push(Insn::stmt(op::BPF_RET | op::BPF_K, Action::Allow.to_ret()));
        debug_assert_eq!(out.len(), guard);
        let arch = self.arch();
        out.extend(self.into_insns());
        Ok(Program::new(arch, out))
    }
}

#[cfg(test)]
mod tests {
    use alloc::boxed::Box;
    use alloc::vec;

    use super::*;
    use crate::arch::Arch;
    use crate::cond::Cond;
    use crate::data::SeccompData;
    use crate::errno::Errno;
    use crate::rule::Rule;

    fn filter(value: u64) -> Filter {
        Filter::new(Arch::X86_64)
            .default_action(Action::Allow)
            .rule(Rule::named("ptrace", Action::Errno(Errno::EPERM)))
            .rule(
                Rule::named("ioctl", Action::Errno(Errno::EPERM))
                    .when(Cond::eq(ArgIndex::A1, value).u32()),
            )
            .rule(Rule::named("sendmsg", Action::UserNotif))
    }

    fn leak(p: &Program, key: Vec<u64>) -> Prebuilt {
        Prebuilt {
            key: Box::leak(key.into_boxed_slice()),
            insns: Box::leak(p.insns().to_vec().into_boxed_slice()),
        }
    }

    #[test]
    fn keys_are_equal_only_word_for_word() {
        let f = filter(7);
        let resolved = f.resolve().unwrap();
        let key = f.key_of(&resolved);
        assert!(f.key_is(&resolved, &key));
        assert!(!f.key_is(&resolved, &key[..key.len() - 1]));
        let mut longer = key.clone();
        longer.push(0);
        assert!(!f.key_is(&resolved, &longer));
        for at in [0, 1, key.len() / 2, key.len() - 1] {
            let mut other = key.clone();
            other[at] ^= 1 << 63;
            assert!(!f.key_is(&resolved, &other), "{at}");
        }
        assert!(!f.key_is(&resolved, &[]));
    }

    #[test]
    fn the_carried_program_serves_its_filter_only() {
        let a = filter(0x5412);
        let built = a.build().unwrap();
        // A stand-in program, to see which one is returned.
        let marker = Program::new(Arch::X86_64, vec![Insn::stmt(op::BPF_RET | op::BPF_K, 0)]);
        let table = [leak(&marker, a.key().unwrap())];
        assert_eq!(a.build_or_prebuilt(&table).unwrap(), marker);
        // One operand changed: another key, the generator's program.
        let b = filter(0x541c);
        assert_ne!(a.key().unwrap(), b.key().unwrap());
        assert_eq!(b.build_or_prebuilt(&table).unwrap(), b.build().unwrap());
        // Another action or default: another key.
        assert_ne!(
            a.key().unwrap(),
            a.clone().default_action(Action::Log).key().unwrap()
        );
        assert_ne!(
            a.key().unwrap(),
            a.clone()
                .rule(Rule::named("getpid", Action::Allow))
                .key()
                .unwrap()
        );
        assert_eq!(a.build_or_prebuilt(&[]).unwrap(), built);
    }

    #[test]
    fn width_operator_and_mask_are_in_the_key() {
        let with = |c: Cond| {
            Filter::new(Arch::X86_64)
                .rule(Rule::named("read", Action::Allow).when(c))
                .key()
                .unwrap()
        };
        let keys = [
            with(Cond::eq(ArgIndex::A0, 3)),
            with(Cond::eq(ArgIndex::A0, 3).u32()),
            with(Cond::ne(ArgIndex::A0, 3)),
            with(Cond::eq(ArgIndex::A1, 3)),
            with(Cond::masked_eq(ArgIndex::A0, 3, 3)),
            with(Cond::masked_eq(ArgIndex::A0, 7, 3)),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn the_guard_allows_its_call_and_leaves_the_rest_unchanged() {
        let inner = filter(0x5412).build().unwrap();
        let key = [0x1122_3344_5566_7788, 0, u64::MAX];
        let args = [
            (ArgIndex::A3, key[0]),
            (ArgIndex::A4, key[1]),
            (ArgIndex::A5, key[2]),
        ];
        let guarded = inner.clone().allow_first(46, &args).unwrap();
        let run = |p: &Program, d: &SeccompData| p.run(d).unwrap().action().unwrap();
        let send = |a: [u64; 3]| SeccompData::new(Arch::X86_64, 46, [1, 2, 3, a[0], a[1], a[2]]);
        assert_eq!(run(&guarded, &send(key)), Action::Allow);
        for wrong in [
            [key[0] ^ 1 << 40, key[1], key[2]],
            [key[0] ^ 1, key[1], key[2]],
            [key[0], 1 << 32, key[2]],
            [key[0], key[1], 0],
        ] {
            assert_eq!(run(&guarded, &send(wrong)), Action::UserNotif, "{wrong:x?}");
        }
        // The key on another syscall, or another architecture: the inner
        // program decides.
        let ptrace = SeccompData::new(Arch::X86_64, 101, [0, 0, 0, key[0], key[1], key[2]]);
        assert_eq!(run(&guarded, &ptrace), Action::Errno(Errno::EPERM));
        let i386 = SeccompData::with_audit_arch(
            crate::arch::AUDIT_ARCH_I386,
            46,
            [0, 0, 0, key[0], key[1], key[2]],
        );
        assert_eq!(run(&guarded, &i386), run(&inner, &i386));
        for nr in 0..500 {
            for a in [[0u64; 6], [1, 0x5412, 0, 0, 0, 0]] {
                let d = SeccompData::new(Arch::X86_64, nr, a);
                assert_eq!(run(&guarded, &d), run(&inner, &d), "nr {nr}");
            }
        }
    }
}
