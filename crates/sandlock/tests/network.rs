//! The network rules, end to end: `sandlock run` with `--net-allow-host`,
//! `--net-connect` and unix sockets, driving `progs/netprobe.c` inside the
//! sandbox while listeners of the test (on 127.0.0.1, 127.0.0.2, ::1 and
//! scratch paths) count what reaches them. As root, a raw socket also
//! watches every TCP SYN sent to the refused address, so "refused" means
//! not a single packet left for it. Each scenario runs as root and, where
//! it matters, as uid 65534 (sandlock itself unprivileged).

// A test crate: an unwrap that fails is a failed test, reported with its line.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "network/support.rs"]
mod support;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixListener;
use std::path::Path;

use common::{Out, Scratch, bins, root, run_as};
use support::*;

#[test]
fn allowed_host_reached_others_refused() {
    for uid in users() {
        let n = Pair::new();
        let p = n.port;
        let out = net(
            uid,
            &["--net-allow-host", "127.0.0.1"],
            &format!(
                "tcp good 127.0.0.1 {p} , tcp bad 127.0.0.2 {p} , tcp mapped ::ffff:127.0.0.2 {p} , \
                 tcp mapped-good ::ffff:127.0.0.1 {p} , tcp zero 0.0.0.0 {p}"
            ),
        );
        assert_eq!(out.get("good"), "ok", "{out:?}");
        assert_eq!(out.get("mapped-good"), "ok", "{out:?}");
        // 0.0.0.0 lands on 127.0.0.1, which is allowed.
        assert_eq!(out.get("zero"), "ok", "{out:?}");
        assert_eq!(out.get("bad"), ECONNREFUSED, "{out:?}");
        assert_eq!(out.get("mapped"), ECONNREFUSED, "{out:?}");
        assert_eq!(n.good.get(), 3, "{out:?}");
        n.assert_bad_untouched(&out);
    }
}

/// A non-blocking connect answers EINPROGRESS and completes on the
/// task's own socket, as without sandlock.
#[test]
fn non_blocking_connects_keep_their_meaning() {
    let n = Pair::new();
    let p = n.port;
    let out = net(
        0,
        &["--net-allow-host", "127.0.0.1"],
        &format!("tcpnb nb 127.0.0.1 {p} , tcpnb nb-bad 127.0.0.2 {p}"),
    );
    assert_eq!(out.get("nb"), "errno=115", "{out:?}");
    assert_eq!(out.get("nb-done"), "ok", "{out:?}");
    assert_eq!(out.get("nb-bad"), ECONNREFUSED, "{out:?}");
    assert_eq!(n.good.get(), 1);
    n.assert_bad_untouched(&out);
}

/// `--audit`: every network decision is a JSON line, refusals with their
/// host, port and errno.
#[test]
fn audit_log_records_network_decisions() {
    let n = Pair::new();
    let p = n.port;
    let s = Scratch::new(0);
    let log = s.join("audit.jsonl");
    let out = net(
        0,
        &[
            "--audit",
            log.to_str().unwrap(),
            "--net-allow-host",
            "127.0.0.1",
        ],
        &format!("tcp good 127.0.0.1 {p} , udp bad 127.0.0.2 {p}"),
    );
    assert_eq!(out.get("bad"), ECONNREFUSED, "{out:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["category"] == "network")
        .collect();
    let good = lines.iter().find(|v| v["syscall"] == "connect").unwrap();
    assert_eq!(good["host"], "127.0.0.1", "{text}");
    assert_eq!(good["verdict"], "allow", "{text}");
    let bad = lines.iter().find(|v| v["syscall"] == "sendto").unwrap();
    assert_eq!(bad["host"], "127.0.0.2", "{text}");
    assert_eq!(bad["port"], p, "{text}");
    assert_eq!(bad["verdict"], "deny", "{text}");
    assert_eq!(bad["errno"], "ECONNREFUSED", "{text}");
}

#[test]
fn unspecified_and_loopback_need_their_host() {
    let n = Pair::new();
    let p = n.port;
    // Only 127.0.0.2: 0.0.0.0 (= 127.0.0.1) and [::] (= [::1]) are refused.
    let v6 = tcp_counter("::1", p);
    let out = net(
        0,
        &["--net-allow-host", "127.0.0.2"],
        &format!("tcp zero 0.0.0.0 {p} , tcp zero6 :: {p} , tcp ok 127.0.0.2 {p}"),
    );
    assert_eq!(out.get("zero"), ECONNREFUSED, "{out:?}");
    assert_eq!(out.get("zero6"), ECONNREFUSED, "{out:?}");
    assert_eq!(out.get("ok"), "ok", "{out:?}");
    assert_eq!((n.good.get(), v6.get(), n.bad.get()), (0, 0, 1));
}

#[test]
fn udp_sendto_sendmsg_and_mixed_sendmmsg() {
    for uid in users() {
        let n = Pair::new();
        let p = n.port;
        let out = net(
            uid,
            &["--net-allow-host", "127.0.0.1"],
            &format!(
                "udp good 127.0.0.1 {p} , udp bad 127.0.0.2 {p} , udpmsg msg-good 127.0.0.1 {p} , \
                 udpmsg msg-bad 127.0.0.2 {p} , mmsg vec {p} 127.0.0.1 127.0.0.2 127.0.0.1 , \
                 mmsg vec-bad-first {p} 127.0.0.2 127.0.0.1"
            ),
        );
        assert_eq!(out.get("good"), "ok", "{out:?}");
        assert_eq!(out.get("msg-good"), "ok", "{out:?}");
        assert_eq!(out.get("bad"), ECONNREFUSED, "{out:?}");
        assert_eq!(out.get("msg-bad"), ECONNREFUSED, "{out:?}");
        // [good, bad, good]: the first goes, the call stops at the refused
        // one (as the kernel stops at a failing entry), and the retry from
        // there is refused.
        assert_eq!(out.get("vec"), "=1", "{out:?}");
        assert_eq!(out.get("vec-len0"), "=8", "{out:?}");
        assert_eq!(out.get("vec-rest"), ECONNREFUSED, "{out:?}");
        assert_eq!(out.get("vec-bad-first"), ECONNREFUSED, "{out:?}");
        assert_eq!(n.good_udp.get(), 3, "{out:?}");
        n.assert_bad_untouched(&out);
    }
}

/// A sibling thread flips the connect address between the allowed and the
/// refused host during 3000 connects: the refused one is never reached.
#[test]
fn racing_thread_never_reaches_the_refused_host() {
    let n = Pair::new();
    let p = n.port;
    let out = net(
        0,
        &["--net-allow-host", "127.0.0.1"],
        &format!("race race 127.0.0.1 127.0.0.2 {p} 3000"),
    );
    let ok: usize = out.get("race").trim_start_matches('=').parse().unwrap();
    assert!(ok > 0, "the allowed host was never reached: {out:?}");
    assert_eq!(n.good.get(), ok, "{out:?}");
    n.assert_bad_untouched(&out);
}

/// A blocking connect that cannot complete (the listener's accept queue
/// is full) waits as long as the task's own timeout says, and holds up no
/// other call of the sandbox meanwhile.
#[test]
fn a_stalled_connect_holds_up_nothing_else() {
    use rustix::net::{AddressFamily, SocketType};
    let n = Pair::new();
    let full_port = free_port();
    let full = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    let addr = std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, full_port);
    rustix::net::bind(&full, &addr).unwrap();
    rustix::net::listen(&full, 0).unwrap();
    let out = net(
        0,
        &["--net-allow-host", "127.0.0.1"],
        &format!("stall stall {} {full_port}", n.port),
    );
    // The kernel's answer to a blocking connect whose SO_SNDTIMEO ran out.
    assert_eq!(out.get("stall"), "errno=115", "{out:?}");
    assert_eq!(out.get("stall-helper"), "ok", "{out:?}");
    assert_eq!(out.get("stall-during"), "=1", "{out:?}");
    assert_eq!(n.good.get(), 1);
}

#[test]
fn port_rules_without_host_rules() {
    for uid in users() {
        let n = Pair::new();
        let (p, other) = (n.port, free_port());
        let _other_listener = tcp_counter("127.0.0.1", other);
        let out = net(
            uid,
            &["--net-connect", &p.to_string()],
            &format!(
                "tcp a 127.0.0.1 {p} , tcp b 127.0.0.2 {p} , tcp other-port 127.0.0.1 {other} , \
                 socket udp inet dgram , socket icmp inet icmp"
            ),
        );
        // Any host on the listed port; no other port; TCP only.
        assert_eq!(out.get("a"), "ok", "{out:?}");
        assert_eq!(out.get("b"), "ok", "{out:?}");
        assert_eq!(out.get("other-port"), ECONNREFUSED, "{out:?}");
        assert_eq!(out.get("udp"), EPERM, "{out:?}");
        assert_eq!(out.get("icmp"), EPERM, "{out:?}");
        assert_eq!((n.good.get(), n.bad.get()), (1, 1), "{out:?}");
    }
}

#[test]
fn port_rules_with_host_rules_must_both_pass() {
    let n = Pair::new();
    let (p, other) = (n.port, free_port());
    let other_tcp = tcp_counter("127.0.0.1", other);
    let other_udp = udp_counter("127.0.0.1", other);
    let out = net(
        0,
        &[
            "--net-allow-host",
            "127.0.0.1",
            "--net-connect",
            &p.to_string(),
        ],
        &format!(
            "tcp ok 127.0.0.1 {p} , tcp port 127.0.0.1 {other} , tcp host 127.0.0.2 {p} , \
             udp udp-ok 127.0.0.1 {p} , udp udp-port 127.0.0.1 {other}"
        ),
    );
    assert_eq!(out.get("ok"), "ok", "{out:?}");
    assert_eq!(out.get("udp-ok"), "ok", "{out:?}");
    for refused in ["port", "host", "udp-port"] {
        assert_eq!(out.get(refused), ECONNREFUSED, "{refused}: {out:?}");
    }
    assert_eq!((other_tcp.get(), other_udp.get()), (0, 0), "{out:?}");
    n.assert_bad_untouched(&out);
}

#[test]
fn no_network_flag_means_no_ip_socket_and_no_udp_means_no_udp() {
    let out = net(0, &[], "socket tcp inet stream , socket udp6 inet6 dgram");
    assert_eq!(out.get("tcp"), EPERM, "{out:?}");
    assert_eq!(out.get("udp6"), EPERM, "{out:?}");
    let out = net(
        0,
        &["--no-udp", "--net-allow-host", "127.0.0.1"],
        "socket tcp inet stream , socket udp inet dgram",
    );
    assert_eq!(out.get("tcp"), "ok", "{out:?}");
    assert_eq!(out.get("udp"), EPERM, "{out:?}");
}

/// ICMP ping sockets follow the host rules. The kernel lets a group open
/// them only within `net.ipv4.ping_group_range` (closed on many machines):
/// as root, the scenario runs in a network namespace of its own where the
/// range is opened, leaving the machine's setting alone.
#[test]
fn ping_follows_the_host_rules() {
    if !root() {
        return;
    }
    let script = format!(
        "echo '0 2147483647' > /proc/sys/net/ipv4/ping_group_range && ip link set lo up && \
         exec {} run --net-allow-host 127.0.0.1 -r {} -- {} ping good 127.0.0.1 , ping bad 127.0.0.2",
        bins().sandlock().display(),
        bins().dir().display(),
        netprobe().display()
    );
    let out = run_as(
        0,
        Path::new("/usr/bin/unshare"),
        &["--net", "sh", "-c", &script],
        &[],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.get("good"), "ok", "{out:?}");
    // The kernel would have sent it: the refusal is the supervisor's.
    assert_eq!(out.get("bad"), ECONNREFUSED, "{out:?}");
}

/// Names are resolved once at start; the sandbox sees them in its
/// `/etc/hosts` and reaches exactly their addresses.
#[test]
fn host_names_and_the_generated_etc_hosts() {
    for uid in users() {
        let n = Pair::new();
        let p = n.port;
        let out = net(
            uid,
            &["--net-allow-host", "localhost"],
            &format!(
                "cat hosts /etc/hosts , resolve name localhost , tcp good 127.0.0.1 {p} , \
                 tcp bad 127.0.0.2 {p}"
            ),
        );
        assert!(out.get("hosts").ends_with("\tlocalhost"), "{out:?}");
        assert_eq!(out.get("name"), "=127.0.0.1", "{out:?}");
        assert_eq!(out.get("good"), "ok", "{out:?}");
        assert_eq!(out.get("bad"), ECONNREFUSED, "{out:?}");
        n.assert_bad_untouched(&out);
    }
}

#[test]
fn an_unresolvable_name_is_a_clear_error() {
    let out = run_as(
        0,
        &bins().sandlock(),
        &[
            "run",
            "--net-allow-host",
            "no-such-host.invalid",
            "--",
            "/bin/true",
        ],
        &[],
    );
    assert_eq!(out.code, Some(125), "{out:?}");
    assert!(
        out.stderr
            .starts_with("sandlock: --net-allow-host no-such-host.invalid: could not be resolved"),
        "{out:?}"
    );
}

/// `localhost` is not reachable unless named.
#[test]
fn loopback_is_not_implied() {
    let n = Pair::new();
    let out = net(
        0,
        &["--net-allow-host", "10.255.255.1"],
        &format!("tcp lo 127.0.0.1 {}", n.port),
    );
    assert_eq!(out.get("lo"), ECONNREFUSED, "{out:?}");
    assert_eq!(n.good.get(), 0);
}

/// Unix sockets: reached inside -r and -w trees, refused outside them
/// whatever the spelling, in every network mode.
#[test]
fn unix_sockets_follow_the_filesystem_grants() {
    let modes: [&[&str]; 3] = [
        &[],
        &["--net-allow-host", "127.0.0.1"],
        &["--net-connect", "80"],
    ];
    for uid in users() {
        for mode in modes {
            unix_scenario(uid, mode);
        }
    }
}

fn unix_scenario(uid: u32, mode: &[&str]) {
    let s = Scratch::new(uid);
    let (rw, ro, out_dir) = (s.dir("rw"), s.dir("ro"), s.dir("out"));
    let rw_s = unix_stream(&rw.join("s"));
    let ro_s = unix_stream(&ro.join("s"));
    let out_s = unix_stream(&out_dir.join("s"));
    let out_d = unix_dgram(&out_dir.join("d"));
    let rw_d = unix_dgram(&rw.join("d"));
    for p in ["rw/s", "ro/s", "out/s", "out/d", "rw/d"] {
        chown(&s.join(p), uid);
        std::fs::set_permissions(
            s.join(p),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
    }
    symlink(out_dir.join("s"), rw.join("link")).unwrap();
    chown(&rw.join("link"), uid);
    symlink(&out_dir, rw.join("dirlink")).unwrap();
    chown(&rw.join("dirlink"), uid);
    let st = |p: &str| s.s(p);
    let (rw_path, ro_path) = (st("rw"), st("ro"));
    let mut flags: Vec<&str> = mode.to_vec();
    flags.extend(["-w", &rw_path, "-r", &ro_path, "--workdir", &rw_path]);
    let out = net(
        uid,
        &flags,
        &format!(
            "unix rw {rw}/s , unix ro {ro}/s , unix relative s , unixdg rw-dgram {rw}/d , \
             unix out {o}/s , unix link {rw}/link , unix dirlink {rw}/dirlink/s , \
             unix dotdot {rw}/../out/s , unix relative-dotdot ../out/s , \
             unix proc-root /proc/self/root{o}/s , unixdg dgram {o}/d , unixmsg dgram-msg {o}/d , \
             scm fd-passing , unix-self own-tmp TMPDIR/own.sock , unix-self own-rw {rw}/own.sock",
            rw = rw_path,
            ro = ro_path,
            o = st("out"),
        ),
    );
    // Sockets the sandbox binds itself, in -w and in its private $TMPDIR.
    for ok in [
        "rw",
        "ro",
        "relative",
        "rw-dgram",
        "fd-passing",
        "own-tmp",
        "own-rw",
    ] {
        assert_eq!(out.get(ok), "ok", "{ok} {mode:?}: {out:?}");
    }
    for refused in [
        "out",
        "link",
        "dirlink",
        "dotdot",
        "relative-dotdot",
        "dgram",
        "dgram-msg",
    ] {
        assert_eq!(out.get(refused), EACCES, "{refused} {mode:?}: {out:?}");
    }
    // Through /proc the supervisor would read its own links: refused.
    assert_eq!(out.get("proc-root"), "errno=40", "{mode:?}: {out:?}");
    assert_eq!(
        (rw_s.get(), ro_s.get(), rw_d.get()),
        (2, 1, 1),
        "{mode:?}: {out:?}"
    );
    assert_eq!((out_s.get(), out_d.get()), (0, 0), "{mode:?}: {out:?}");
}

/// Abstract unix sockets stay governed by --isolate-ipc: one outside the
/// sandbox is refused, one the sandbox bound itself is reached.
#[test]
fn abstract_sockets_follow_isolate_ipc() {
    let name = format!("sandlock-net-test-{}", std::process::id());
    let sa = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let c = unix_accepts(UnixListener::bind_addr(&sa).unwrap());
    for uid in users() {
        let out = net(
            uid,
            &["--isolate-ipc"],
            &format!("abstract outside {name} , abstract-self inside {name}-own-{uid}"),
        );
        assert_eq!(out.get("outside"), EPERM, "{out:?}");
        // One bound by the sandbox itself is reachable.
        assert_eq!(out.get("inside"), "ok", "{out:?}");
    }
    assert_eq!(c.get(), 0);
    // A policy without isolate_ipc (the CLI's default profile sets it):
    // the outside socket is reachable.
    let policy = sandlock::Policy::builder()
        .fs_read(bins().dir().to_str().unwrap())
        .build()
        .unwrap();
    let np = netprobe();
    let r = sandlock::Sandbox::new(policy)
        .unwrap()
        .stdout(sandlock::Stdio::Piped)
        .run(&[np.to_str().unwrap(), "abstract", "reachable", &name])
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&r.stdout), "reachable ok\n");
    assert_eq!(c.get(), 1);
}

/// The library: a policy with a host rule, run through `Sandbox`.
#[test]
fn library_sandbox_with_host_rules() {
    let n = Pair::new();
    let p = n.port.to_string();
    let policy = sandlock::Policy::builder()
        .fs_read(bins().dir().to_str().unwrap())
        .net_allow_host("127.0.0.1")
        .build()
        .unwrap();
    let np = netprobe();
    let argv = [
        np.to_str().unwrap(),
        "tcp",
        "good",
        "127.0.0.1",
        &p,
        ",",
        "tcp",
        "bad",
        "127.0.0.2",
        &p,
    ];
    let r = sandlock::Sandbox::new(policy)
        .unwrap()
        .stdout(sandlock::Stdio::Piped)
        .run(&argv)
        .unwrap();
    let text = String::from_utf8_lossy(&r.stdout).into_owned();
    assert!(
        text.contains("good ok") && text.contains("bad errno=111"),
        "{text}"
    );
    assert_eq!(n.good.get(), 1);
    n.assert_bad_untouched(&Out {
        code: Some(0),
        signal: None,
        stdout: text,
        stderr: String::new(),
    });
}

/// Running many sandboxes from one process leaves no thread (the pool of
/// blocking calls) and no descriptor (kept pidfds) behind. Counted in a
/// process of its own ([`leak_probe`]): other tests run in parallel here.
#[test]
fn library_runs_leave_nothing_behind() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "leak_probe", "--ignored", "--test-threads", "1"])
        .env("SANDLOCK_LEAK_PROBE", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}

/// The body of [`library_runs_leave_nothing_behind`], alone in its process.
#[test]
#[ignore = "run by library_runs_leave_nothing_behind in a process of its own"]
fn leak_probe() {
    if std::env::var_os("SANDLOCK_LEAK_PROBE").is_none() {
        return;
    }
    let s = Scratch::new(0);
    let sock = s.join("s");
    let _c = unix_stream(&sock);
    let count = |what: &str| {
        std::fs::read_dir(format!("/proc/self/{what}"))
            .unwrap()
            .count()
    };
    let policy = sandlock::Policy::builder()
        .fs_read(bins().dir().to_str().unwrap())
        .fs_read(s.path().to_str().unwrap())
        .build()
        .unwrap();
    let sandbox = sandlock::Sandbox::new(policy)
        .unwrap()
        .stdout(sandlock::Stdio::Piped);
    let np = netprobe();
    let run = || {
        // A blocking unix connect is made by a pool thread.
        let r = sandbox
            .run(&[np.to_str().unwrap(), "unix", "c", sock.to_str().unwrap()])
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&r.stdout), "c ok\n");
    };
    let settle = |threads: usize| {
        // Threads end after their supervisor; give them a moment (a guard
        // against a hang, not a speed assertion).
        for _ in 0..250 {
            if count("task") <= threads {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    let (fds, threads) = (count("fd"), count("task"));
    for _ in 0..20 {
        run();
    }
    settle(threads);
    assert_eq!(count("task"), threads, "threads left behind");
    assert_eq!(count("fd"), fds, "descriptors left behind");
}
