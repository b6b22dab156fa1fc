//! The command line of `cargo xtask`: parsed by hand (three subcommands and a
//! dozen flags do not justify an argument-parser dependency).

use std::path::PathBuf;

/// Usage text printed on `--help` and after a usage error.
pub const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  bench   run the end-to-end benchmark scenarios and write target/bench/<timestamp>.json
      --quick              reduced set (about a minute), for CI smoke tests
      --scenario NAME      run only this scenario (repeatable); see --list
      --sandbox NAME       only these sandboxes besides bare (repeatable)
      --rounds N           override the number of timed rounds per scenario
      --criterion          also run sandlock-benches' criterion benches, fold medians in
      --compare            compare with the previous record of the same mode; exit 1
                           when a ratio got worse by more than the threshold
      --threshold PCT      regression threshold for --compare, in percent (default 10)
      --plot               write target/bench/history[-quick].svg (ratio history)
      --markdown           also print the record as a Markdown table (docs/benchmarks.md)
      --no-run             with --compare/--plot/--markdown: use the records already there
      --install            install missing comparison sandboxes (apt-get, cargo install)
      --list               list scenarios and sandboxes, then exit
  ab      start-up of this tree's sandlock against another revision's: both built alike,
          their page cache dropped and read back alike, starts alternated A B B A, in
          two passes (A first, B first); medians per start line (startup flags, the
          default profile, and as uid 65534 when run as root)
      --rev REV            the revision to compare with (default HEAD)
      --pairs N            alternated pairs per pass and line (default 600)
  fuzz    run every cargo-fuzz target (nightly), print coverage growth and crashes
      --seconds N          time per target (default 60)
      --fuzz-dir DIR       the cargo-fuzz project (default fuzz/)
      TARGET...            only these targets
  ci      what .ci/run runs (fmt, clippy -D warnings, tests) plus bench --quick
  layout  trace a few sandbox starts instruction by instruction (x86-64, ptrace) and write
          crates/sandlock/link/start-order.txt, the functions release builds lay out side by side
      --check              only check that the release binary has every function the list
                           names (a renamed one is left unplaced: about 0.1 ms a start for
                           two dozen); fails otherwise
";

/// A parsed `cargo xtask` invocation.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// `cargo xtask bench ...`
    Bench(BenchOptions),
    /// `cargo xtask ab ...`
    Ab(AbOptions),
    /// `cargo xtask fuzz ...`
    Fuzz(FuzzOptions),
    /// `cargo xtask ci`
    Ci,
    /// `cargo xtask layout` (`--check`: only check the list against the
    /// binary).
    Layout {
        /// Check instead of writing.
        check: bool,
    },
    /// `--help`
    Help,
}

/// Options of `cargo xtask ab`.
#[derive(Debug, Clone, PartialEq)]
pub struct AbOptions {
    /// The revision to compare this tree with.
    pub rev: String,
    /// Alternated pairs per pass and line.
    pub pairs: usize,
}

impl Default for AbOptions {
    fn default() -> Self {
        Self {
            rev: "HEAD".to_owned(),
            pairs: 600,
        }
    }
}

/// Options of `cargo xtask bench`.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchOptions {
    /// Reduced set for CI.
    pub quick: bool,
    /// Only these scenarios (empty: all).
    pub scenarios: Vec<String>,
    /// Only these sandboxes besides bare (empty: all).
    pub sandboxes: Vec<String>,
    /// Override of the number of timed rounds.
    pub rounds: Option<usize>,
    /// Also run all criterion benches.
    pub criterion: bool,
    /// Compare with the previous record.
    pub compare: bool,
    /// Regression threshold as a fraction (0.10 = 10 %).
    pub threshold: f64,
    /// Write the SVG history.
    pub plot: bool,
    /// Also print the record as a Markdown table.
    pub markdown: bool,
    /// Do not measure; only compare/plot/print existing records.
    pub no_run: bool,
    /// Install missing comparison sandboxes.
    pub install: bool,
    /// List scenarios and sandboxes.
    pub list: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            quick: false,
            scenarios: Vec::new(),
            sandboxes: Vec::new(),
            rounds: None,
            criterion: false,
            compare: false,
            threshold: 0.10,
            plot: false,
            markdown: false,
            no_run: false,
            install: false,
            list: false,
        }
    }
}

/// Options of `cargo xtask fuzz`.
#[derive(Debug, Clone, PartialEq)]
pub struct FuzzOptions {
    /// Seconds per target.
    pub seconds: u64,
    /// The cargo-fuzz project directory, relative to the workspace root.
    pub fuzz_dir: PathBuf,
    /// Only these targets (empty: every target found).
    pub targets: Vec<String>,
}

impl Default for FuzzOptions {
    fn default() -> Self {
        Self {
            seconds: 60,
            fuzz_dir: PathBuf::from("fuzz"),
            targets: Vec::new(),
        }
    }
}

fn parse_layout(args: &[String]) -> Result<Command, String> {
    match args {
        [] => Ok(Command::Layout { check: false }),
        [c] if c == "--check" => Ok(Command::Layout { check: true }),
        [other, ..] => Err(format!("layout: unknown option {other:?}")),
    }
}

/// Parses the arguments after `cargo xtask`.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let Some((command, rest)) = args.split_first() else {
        return Err("no command given".to_owned());
    };
    match command.as_str() {
        "bench" => parse_bench(rest).map(Command::Bench),
        "ab" => parse_ab(rest).map(Command::Ab),
        "fuzz" => parse_fuzz(rest).map(Command::Fuzz),
        "ci" => match rest.first() {
            None => Ok(Command::Ci),
            Some(arg) => Err(format!("ci takes no arguments, got {arg:?}")),
        },
        "layout" => parse_layout(rest),
        "-h" | "--help" | "help" => Ok(Command::Help),
        other => Err(format!("unknown command {other:?}")),
    }
}

fn value<'a>(flag: &str, it: &mut impl Iterator<Item = &'a String>) -> Result<&'a str, String> {
    it.next()
        .map(String::as_str)
        .ok_or_else(|| format!("{flag} needs a value"))
}

fn number<T: std::str::FromStr>(flag: &str, raw: &str) -> Result<T, String> {
    raw.parse()
        .map_err(|_| format!("{flag}: {raw:?} is not a valid number"))
}

fn parse_ab(args: &[String]) -> Result<AbOptions, String> {
    let mut o = AbOptions::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--rev" => o.rev = value(arg, &mut it)?.to_owned(),
            "--pairs" => {
                let n: usize = number(arg, value(arg, &mut it)?)?;
                if n == 0 {
                    return Err("--pairs must be at least 1".to_owned());
                }
                o.pairs = n;
            }
            other => return Err(format!("ab: unknown option {other:?}")),
        }
    }
    Ok(o)
}

fn parse_bench(args: &[String]) -> Result<BenchOptions, String> {
    let mut o = BenchOptions::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => o.quick = true,
            "--scenario" => o.scenarios.push(value(arg, &mut it)?.to_owned()),
            "--sandbox" => o.sandboxes.push(value(arg, &mut it)?.to_owned()),
            "--rounds" => {
                let n: usize = number(arg, value(arg, &mut it)?)?;
                if n == 0 {
                    return Err("--rounds must be at least 1".to_owned());
                }
                o.rounds = Some(n);
            }
            "--criterion" => o.criterion = true,
            "--compare" => o.compare = true,
            "--threshold" => {
                let raw = value(arg, &mut it)?;
                let pct: f64 = number(arg, raw.trim_end_matches('%'))?;
                if !pct.is_finite() || pct < 0.0 {
                    return Err(format!("--threshold: {raw:?} must be a percentage >= 0"));
                }
                o.threshold = pct / 100.0;
            }
            "--plot" => o.plot = true,
            "--markdown" => o.markdown = true,
            "--no-run" => o.no_run = true,
            "--install" => o.install = true,
            "--list" => o.list = true,
            other => return Err(format!("bench: unknown option {other:?}")),
        }
    }
    if o.no_run && !(o.compare || o.plot || o.markdown) {
        return Err("--no-run only makes sense with --compare, --plot or --markdown".to_owned());
    }
    Ok(o)
}

fn parse_fuzz(args: &[String]) -> Result<FuzzOptions, String> {
    let mut o = FuzzOptions::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => {
                o.seconds = number(arg, value(arg, &mut it)?)?;
                if o.seconds == 0 {
                    return Err("--seconds must be at least 1".to_owned());
                }
            }
            "--fuzz-dir" => o.fuzz_dir = PathBuf::from(value(arg, &mut it)?),
            flag if flag.starts_with('-') => {
                return Err(format!("fuzz: unknown option {flag:?}"));
            }
            target => o.targets.push(target.to_owned()),
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn bench_flags() {
        let Command::Bench(o) = parse(&args(
            "bench --quick --scenario open --scenario fork --compare --threshold 15% --rounds 3 --sandbox bwrap",
        ))
        .unwrap() else {
            panic!("not bench")
        };
        assert!(o.quick && o.compare);
        assert_eq!(o.scenarios, ["open", "fork"]);
        assert_eq!(o.sandboxes, ["bwrap"]);
        assert_eq!(o.rounds, Some(3));
        assert!((o.threshold - 0.15).abs() < 1e-12);
    }

    #[test]
    fn ab_flags() {
        assert_eq!(
            parse(&args("ab")).unwrap(),
            Command::Ab(AbOptions {
                rev: "HEAD".to_owned(),
                pairs: 600
            })
        );
        assert_eq!(
            parse(&args("ab --rev 949e794 --pairs 40")).unwrap(),
            Command::Ab(AbOptions {
                rev: "949e794".to_owned(),
                pairs: 40
            })
        );
        assert!(
            parse(&args("ab --pairs 0"))
                .unwrap_err()
                .contains("at least 1")
        );
        assert!(parse(&args("ab --rev")).unwrap_err().contains("--rev"));
        assert!(
            parse(&args("ab --scenario x"))
                .unwrap_err()
                .contains("--scenario")
        );
    }

    #[test]
    fn bench_defaults() {
        assert_eq!(
            parse(&args("bench")).unwrap(),
            Command::Bench(BenchOptions::default())
        );
    }

    #[test]
    fn bad_values_are_named() {
        let e = parse(&args("bench --threshold abc")).unwrap_err();
        assert!(e.contains("--threshold") && e.contains("abc"), "{e}");
        assert!(
            parse(&args("bench --rounds 0"))
                .unwrap_err()
                .contains("at least 1")
        );
        assert!(
            parse(&args("bench --scenario"))
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(
            parse(&args("bench --no-run"))
                .unwrap_err()
                .contains("--no-run")
        );
        assert!(
            parse(&args("bench --frobnicate"))
                .unwrap_err()
                .contains("frobnicate")
        );
        assert!(
            parse(&args("fuzz --seconds -3"))
                .unwrap_err()
                .contains("-3")
        );
        assert!(parse(&args("ci extra")).is_err());
        assert!(parse(&args("nope")).is_err());
        assert!(parse(&[]).is_err());
    }

    #[test]
    fn fuzz_targets_and_seconds() {
        let Command::Fuzz(o) = parse(&args("fuzz --seconds 5 bpf_generate decode_event")).unwrap()
        else {
            panic!("not fuzz")
        };
        assert_eq!(o.seconds, 5);
        assert_eq!(o.targets, ["bpf_generate", "decode_event"]);
        assert_eq!(o.fuzz_dir, PathBuf::from("fuzz"));
    }

    #[test]
    fn layout_takes_only_check() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse(&args(&["layout"])),
            Ok(Command::Layout { check: false })
        );
        assert_eq!(
            parse(&args(&["layout", "--check"])),
            Ok(Command::Layout { check: true })
        );
        for bad in [
            &["layout", "--starts", "20"][..],
            &["layout", "-x"],
            &["layout", "--check", "--check"],
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
