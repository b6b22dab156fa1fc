//! The redis scenario: `redis-server` under each sandbox, `redis-benchmark`
//! bare against it; a sample is the benchmark client's wall time.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::measure::{Run, sys};
use super::record::ScenarioRecord;
use super::run::{Ctx, Slot, finish, progress, progress_done, round_order, skipped};
use super::sandbox::Kind;
use super::scenario::Scenario;
use super::stage::Stage;
use crate::workspace;

/// What to tell the user when redis is missing.
pub const MISSING: &str = "redis-server/redis-benchmark not installed (apt-get install -y redis-server redis-tools, or bench --install)";

/// Runs the redis scenario.
pub fn scenario(ctx: &Ctx<'_>, sc: &Scenario, requests: u32, rounds: usize) -> ScenarioRecord {
    let (Some(server), Some(client)) = (
        workspace::which("redis-server"),
        workspace::which("redis-benchmark"),
    ) else {
        return skipped(sc, "client", MISSING.to_owned());
    };
    let Some(&port) = sc.rules.net_bind.first() else {
        return skipped(sc, "client", "no port chosen for redis".to_owned());
    };
    let server_argv = server_argv(&server, port, &ctx.stage.redis);
    let client_argv = |n: u32| -> Vec<OsString> {
        [
            client.as_os_str(),
            "-h".as_ref(),
            "127.0.0.1".as_ref(),
            "-p".as_ref(),
            port.to_string().as_ref(),
            "-t".as_ref(),
            "set,get".as_ref(),
            "-n".as_ref(),
            n.to_string().as_ref(),
            "--csv".as_ref(),
        ]
        .map(OsString::from)
        .to_vec()
    };
    let log = ctx.stage.runs.join("redis-server.log");
    let cwd = &ctx.stage.root;

    let mut slots = Vec::new();
    let mut commands = Vec::new();
    for sandbox in ctx.sandboxes {
        if matches!(sandbox.kind, Kind::LandlockSpawn | Kind::KernelFloor) {
            continue;
        }
        let wrapped = sandbox.wrap(&sc.rules, cwd, &ctx.stage.tmp, &server_argv);
        let mut slot = Slot::new(sandbox, wrapped.as_ref().map_err(Clone::clone));
        if let Ok(w) = &wrapped {
            progress(&format!("redis: checking {}", sandbox.name));
            if let Err(e) = one(ctx, sc, &w.argv, &client_argv(1000), port, &log) {
                slot.state = Err(e);
            }
        }
        commands.push(wrapped.map(|w| w.argv).unwrap_or_default());
        slots.push(slot);
    }
    progress_done();
    if let Some(Err(reason)) = slots.first().map(|s| &s.state) {
        return skipped(sc, "client", format!("redis fails bare: {reason}"));
    }
    for round in 0..rounds {
        progress(&format!("redis: round {}/{rounds}", round + 1));
        for i in round_order(round, slots.len()) {
            if !slots[i].live() {
                continue;
            }
            let result = one(ctx, sc, &commands[i], &client_argv(requests), port, &log);
            match (result, &mut slots[i].state) {
                (Ok((run, rps)), Ok(samples)) => {
                    samples.push(run.wall.as_nanos() as f64, &run);
                    for (test, value) in rps {
                        samples
                            .extra
                            .entry(format!("{test}_rps"))
                            .or_default()
                            .push(value);
                    }
                }
                (Err(e), state) => *state = Err(format!("failed in round {}: {e}", round + 1)),
                (Ok(_), Err(_)) => {}
            }
        }
    }
    progress_done();
    finish(sc, "client", slots, rounds)
}

fn server_argv(server: &Path, port: u16, dir: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![server.into()];
    for (k, val) in [
        ("--port", port.to_string()),
        ("--bind", "127.0.0.1".to_owned()),
        ("--dir", dir.display().to_string()),
        ("--save", String::new()),
        ("--appendonly", "no".to_owned()),
        ("--protected-mode", "no".to_owned()),
        ("--daemonize", "no".to_owned()),
    ] {
        v.push(k.into());
        v.push(val.into());
    }
    v
}

/// Starts the server (wrapped), waits until it answers, times one client
/// run, stops the server. Returns the client's run and its per-test rps.
fn one(
    ctx: &Ctx<'_>,
    sc: &Scenario,
    server: &[OsString],
    client: &[OsString],
    port: u16,
    log: &Path,
) -> Result<(Run, Vec<(String, f64)>), String> {
    Stage::clear(&ctx.stage.redis);
    let mut child = spawn_server(server, &ctx.stage.root, log)?;
    let result = ready(&mut child, port, log).and_then(|()| {
        let run = ctx.runner.run(client, &ctx.stage.root, sc.timeout)?;
        if !run.success() {
            return Err(format!("redis-benchmark: {}", run.failure()));
        }
        let rps = parse_csv(&run.stdout)?;
        Ok((run, rps))
    });
    stop(&mut child, port);
    result
}

fn spawn_server(argv: &[OsString], cwd: &Path, log: &Path) -> Result<Child, String> {
    let (program, args) = argv.split_first().ok_or("empty server command")?;
    let out = File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("{}: {e}", log.display()))?;
    Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", program.to_string_lossy()))
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(no output)")
        .to_owned()
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buf = [0u8; 16];
    s.write_all(b"PING\r\n").is_ok()
        && s.read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
}

fn ready(child: &mut Child, port: u16, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("redis-server ended ({status}): {}", log_tail(log)));
        }
        if ping(port) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "redis-server did not answer on port {port}: {}",
                log_tail(log)
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn stop(child: &mut Child, port: u16) {
    if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
        let _ = s.write_all(b"SHUTDOWN NOSAVE\r\n");
    }
    let pgid = i32::try_from(child.id()).unwrap_or(0);
    for (signal, wait) in [
        (None, 5),
        (Some(sys::term_group as fn(i32)), 2),
        (Some(sys::kill_group), 5),
    ] {
        if let Some(send) = signal {
            send(pgid);
        }
        let deadline = Instant::now() + Duration::from_secs(wait);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Requests per second per test from `redis-benchmark --csv` output
/// (`"SET","98231.82",...`).
pub fn parse_csv(out: &str) -> Result<Vec<(String, f64)>, String> {
    let mut v = Vec::new();
    for line in out.lines() {
        let mut fields = line.split(',').map(|f| f.trim().trim_matches('"'));
        let (Some(test), Some(rps)) = (fields.next(), fields.next()) else {
            continue;
        };
        if let Ok(rps) = rps.parse::<f64>() {
            v.push((test.to_lowercase(), rps));
        }
    }
    if v.is_empty() {
        return Err(format!(
            "no results in redis-benchmark output {:?}",
            out.trim()
        ));
    }
    Ok(v)
}

/// The redis binaries, when installed.
pub fn installed() -> Option<(PathBuf, PathBuf)> {
    Some((
        workspace::which("redis-server")?,
        workspace::which("redis-benchmark")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv() {
        let out = "\"test\",\"rps\",\"avg_latency_ms\"\n\"SET\",\"98231.82\",\"0.3\"\n\"GET\",\"100000.00\",\"0.2\"\n";
        assert_eq!(
            parse_csv(out).unwrap(),
            [("set".to_owned(), 98231.82), ("get".to_owned(), 100000.0)]
        );
        assert!(parse_csv("garbage").is_err());
    }
}
