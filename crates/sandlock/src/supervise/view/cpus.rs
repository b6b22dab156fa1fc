//! `num_cpus`: the sandbox runs on N CPUs and every way of counting them
//! says N.
//!
//! The tasks are pinned to the first N CPUs that sandlock itself may use
//! (of `cpu_cores`, when given), so `sched_getaffinity` — and `nproc`,
//! which asks it — answers N without any syscall being intercepted. The
//! files programs read instead are replaced in the sandbox's mount
//! namespace: `/sys/devices/system/cpu/{online,possible,present}` say
//! `0-(N-1)`, and `/proc/cpuinfo` keeps the entries of the chosen CPUs,
//! numbered from 0. sandlock does not invent CPUs: asking for more than
//! are available is an error.

use sandlock_policy::CpuSet;

use crate::error::Error;

/// The highest CPU number considered.
const MAX_CPU: usize = 8192;

/// The CPUs (at most `n`) the sandbox is pinned to: the first `n` of
/// `allowed` that are set in `have`.
pub(crate) fn choose(
    n: usize,
    allowed: Option<&CpuSet>,
    have: impl Fn(usize) -> bool,
) -> Result<Vec<usize>, Error> {
    let usable: Vec<usize> = match allowed {
        Some(set) => set
            .iter()
            .map(|c| c as usize)
            .filter(|&c| have(c))
            .collect(),
        None => (0..MAX_CPU).filter(|&c| have(c)).collect(),
    };
    if usable.len() < n {
        let what = if allowed.is_some() {
            "of --cpu-cores are"
        } else {
            "are"
        };
        return Err(Error::Invalid {
            field: "num_cpus",
            value: n.to_string(),
            why: format!(
                "only {} CPUs {what} available to sandlock (it does not invent CPUs)",
                usable.len()
            ),
        });
    }
    Ok(usable[..n].to_vec())
}

/// The CPUs this process may run on.
pub(crate) fn available() -> impl Fn(usize) -> bool {
    let set = rustix::thread::sched_getaffinity(None).ok();
    move |c| c < rustix::thread::CpuSet::MAX_CPU && set.as_ref().is_none_or(|s| s.is_set(c))
}

/// An affinity bitmap of `cpus` (64-bit words, as the kernel reads it).
pub(crate) fn mask(cpus: &[usize]) -> Vec<u64> {
    let max = cpus.iter().copied().max().unwrap_or(0);
    let mut m = vec![0u64; max / 64 + 1];
    for &c in cpus {
        m[c / 64] |= 1 << (c % 64);
    }
    m
}

/// The contents of `/sys/devices/system/cpu/online` for `n` CPUs.
pub(crate) fn range_file(n: usize) -> Vec<u8> {
    if n <= 1 {
        b"0\n".to_vec()
    } else {
        format!("0-{}\n", n - 1).into_bytes()
    }
}

/// `cpuinfo` (the host's `/proc/cpuinfo`) reduced to the entries of
/// `cpus`, renumbered `0..`, with the counts of a package (`siblings`,
/// `cpu cores`) set to the number kept.
pub(crate) fn cpuinfo(cpuinfo: &str, cpus: &[usize]) -> String {
    let n = cpus.len();
    let mut out = String::new();
    let mut next = 0usize;
    for block in cpuinfo.split("\n\n") {
        let number = block.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "processor")
                .then(|| v.trim().parse::<usize>().ok())
                .flatten()
        });
        let Some(number) = number else { continue };
        if !cpus.contains(&number) {
            continue;
        }
        for line in block.lines() {
            let key = line.split_once(':').map(|(k, _)| k.trim());
            let tab = line
                .split_once(':')
                .map_or("", |(k, _)| &k[k.trim_end().len()..]);
            match key {
                Some("processor") => out.push_str(&format!("processor{tab}: {next}")),
                Some(k @ ("siblings" | "cpu cores")) => out.push_str(&format!("{k}{tab}: {n}")),
                _ => out.push_str(line),
            }
            out.push('\n');
        }
        out.push('\n');
        next += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "processor\t: 0\nvendor_id\t: X\nsiblings\t: 4\ncpu cores\t: 4\n\n\
                        processor\t: 1\nvendor_id\t: X\nsiblings\t: 4\ncpu cores\t: 4\n\n\
                        processor\t: 2\nvendor_id\t: X\nsiblings\t: 4\ncpu cores\t: 4\n\n";

    #[test]
    fn cpuinfo_keeps_chosen_cpus_renumbered() {
        let out = cpuinfo(INFO, &[2]);
        assert_eq!(
            out,
            "processor\t: 0\nvendor_id\t: X\nsiblings\t: 1\ncpu cores\t: 1\n\n"
        );
        let two = cpuinfo(INFO, &[0, 2]);
        assert_eq!(two.matches("processor").count(), 2);
        assert!(two.contains("processor\t: 1\n"));
        assert!(!two.contains("processor\t: 2"));
    }

    #[test]
    fn choice_takes_the_first_available() {
        let have = |c: usize| c == 1 || c == 3 || c == 4;
        assert_eq!(choose(2, None, have).unwrap(), [1, 3]);
        let cores: CpuSet = "3-7".parse().unwrap();
        assert_eq!(choose(1, Some(&cores), have).unwrap(), [3]);
        let err = choose(3, Some(&cores), have).unwrap_err().to_string();
        assert!(err.contains("only 2 CPUs"), "{err}");
        assert_eq!(mask(&[1, 3, 64]), [0b1010, 1]);
        assert_eq!(range_file(1), b"0\n");
        assert_eq!(range_file(4), b"0-3\n");
    }
}
