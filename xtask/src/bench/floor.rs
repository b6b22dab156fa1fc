//! The "kernel-floor" row's seccomp filter: sandlock's own base filter,
//! read from `sandlock run --dry-run-policy -- /bin/true` (the default
//! profile's) and assembled back into the raw `struct sock_filter`s that
//! `landlock-exec --floor` installs. The listing is sandlock-bpf's
//! disassembly: one instruction per line, `PC: MNEMONIC OPERANDS ; note`,
//! jump targets as absolute instruction numbers.

use std::path::Path;
use std::process::Command;

/// The filter's file name in the stage's root.
pub const FILTER_FILE: &str = "kernel-floor.bpf";

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JA: u16 = 0x05;
const BPF_RET_K: u16 = 0x06;

/// Writes the base filter of `sandlock`'s default profile to `dest`.
pub fn write_filter(sandlock: &Path, dest: &Path) -> Result<(), String> {
    let out = Command::new(sandlock)
        .args(["run", "--dry-run-policy", "--", "/bin/true"])
        .output()
        .map_err(|e| format!("{}: {e}", sandlock.display()))?;
    if !out.status.success() {
        return Err(format!(
            "sandlock run --dry-run-policy: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let bytes = assemble(&String::from_utf8_lossy(&out.stdout))?;
    std::fs::write(dest, bytes).map_err(|e| format!("{}: {e}", dest.display()))
}

/// The base filter's section of a `--dry-run-policy` listing, as raw
/// instructions (native byte order, 8 bytes each).
pub fn assemble(listing: &str) -> Result<Vec<u8>, String> {
    let mut lines = listing
        .lines()
        .skip_while(|l| !l.starts_with("# seccomp: base filter"));
    if lines.next().is_none() {
        return Err("no base filter in the listing".to_owned());
    }
    let mut out = Vec::new();
    for line in lines.take_while(|l| !l.starts_with('#')) {
        if line.trim().is_empty() {
            continue;
        }
        let pc = out.len() / 8;
        let (code, jt, jf, k) = instruction(line, pc).map_err(|e| format!("{line:?}: {e}"))?;
        out.extend_from_slice(&code.to_ne_bytes());
        out.extend_from_slice(&[jt, jf]);
        out.extend_from_slice(&k.to_ne_bytes());
    }
    if out.is_empty() {
        return Err("an empty base filter".to_owned());
    }
    Ok(out)
}

/// One line: `(code, jt, jf, k)`; `pc` is the instruction's number.
fn instruction(line: &str, pc: usize) -> Result<(u16, u8, u8, u32), String> {
    let text = line.split(';').next().unwrap_or("");
    let (num, insn) = text.split_once(':').ok_or("no instruction number")?;
    if num.trim().parse::<usize>().ok() != Some(pc) {
        return Err(format!("expected instruction {pc}"));
    }
    let insn = insn.trim();
    let (mnemonic, operands) = insn.split_once(' ').unwrap_or((insn, ""));
    let number = |s: &str| -> Result<u32, String> {
        let s = s.trim().trim_start_matches('#');
        match s.strip_prefix("0x") {
            Some(hex) => u32::from_str_radix(hex, 16),
            None => s.parse(),
        }
        .map_err(|_| format!("bad number {s:?}"))
    };
    let offset = |target: &str| -> Result<u32, String> {
        let target = number(target)? as usize;
        target
            .checked_sub(pc + 1)
            .map(|o| o as u32)
            .ok_or_else(|| format!("a backward jump to {target}"))
    };
    match mnemonic {
        "ld" => {
            let k = operands
                .trim()
                .strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .ok_or("only `ld [k]` is known")?;
            Ok((BPF_LD_W_ABS, 0, 0, number(k)?))
        }
        "ret" => Ok((BPF_RET_K, 0, 0, number(operands)?)),
        "ja" => Ok((BPF_JMP_JA, 0, 0, offset(operands)?)),
        "jeq" | "jgt" | "jge" | "jset" => {
            let code = match mnemonic {
                "jeq" => 0x15,
                "jgt" => 0x25,
                "jge" => 0x35,
                _ => 0x45,
            };
            let ops: Vec<&str> = operands.split(',').collect();
            let [k, jt, jf] = ops[..] else {
                return Err("a jump takes #k, true, false".to_owned());
            };
            let short = |o: u32| u8::try_from(o).map_err(|_| "a jump over 255".to_owned());
            Ok((code, short(offset(jt)?)?, short(offset(jf)?)?, number(k)?))
        }
        other => Err(format!("unknown instruction {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "\
# network
no_udp = false

# seccomp: base filter (5 instructions)
   0: ld [4]                       ; arch
   1: jeq #0xc000003e, 2, 4        ; AUDIT_ARCH_X86_64
   2: ja 3
   3: ret #0x7fff0000              ; ALLOW
   4: ret #0x80000000              ; KILL_PROCESS

# seccomp: syscall-list filter (1 instructions)
   0: ret #0x7fff0000
";

    fn words(bytes: &[u8]) -> Vec<(u16, u8, u8, u32)> {
        bytes
            .chunks_exact(8)
            .map(|c| {
                (
                    u16::from_ne_bytes([c[0], c[1]]),
                    c[2],
                    c[3],
                    u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
                )
            })
            .collect()
    }

    #[test]
    fn assembles_the_base_filter_only() {
        let f = words(&assemble(LISTING).unwrap());
        assert_eq!(
            f,
            [
                (0x20, 0, 0, 4),
                (0x15, 0, 2, 0xc000_003e),
                (0x05, 0, 0, 0),
                (0x06, 0, 0, 0x7fff_0000),
                (0x06, 0, 0, 0x8000_0000),
            ]
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(assemble("no filter here").is_err());
        let gap = LISTING.replace("   2: ja 3", "   7: ja 3");
        assert!(
            assemble(&gap)
                .unwrap_err()
                .contains("expected instruction 2")
        );
        let odd = LISTING.replace("ja 3", "tax");
        assert!(assemble(&odd).unwrap_err().contains("unknown instruction"));
        let back = LISTING.replace("ja 3", "ja 1");
        assert!(assemble(&back).unwrap_err().contains("backward"));
    }
}
