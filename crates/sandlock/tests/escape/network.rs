//! Attack class 6: the network rules (`net.c`).
//!
//! Listeners the test started on 127.0.0.1, 127.0.0.2 and ::1 (TCP and
//! UDP), a raw ICMP watcher, and unix sockets standing in for host daemons
//! count what reaches them. Each attack uses a spelling or a protocol the
//! policy could overlook.

use std::os::unix::fs::{lchown, symlink};

use crate::checks::{Bare, sysctl, verdict};
use crate::harness::{Attack, Mode, Outcome, Scratch, nonce};
use crate::observe::{IcmpWatch, LoopbackPair, TcpCounter, UnixCounter, UnixName};

escape_tests!(run:
    ipv4_mapped_ipv6,
    zero_address_v4,
    zero_address_v6,
    mptcp,
    msg_fastopen,
    listener_key_guesses,
    udp_with_no_udp,
    unix_socket_outside_grants,
    unix_socket_through_symlink,
    unix_datagram_outside_grants,
);

// Only --net-connect: Landlock's TCP port rules and the socket filter.
escape_tests!(run:
    udp_when_only_tcp_ports,
    icmp_when_only_tcp_ports,
);

escape_tests!(run:
    abstract_unix_stream,
    abstract_unix_datagram,
);

fn tcp(mode: Mode, family: &str, addr: &str, port: &str, proto: &str, allow: &str) -> Outcome {
    Attack::new(mode, "net", "tcp")
        .arg(family)
        .arg(addr)
        .arg(port)
        .arg(proto)
        .flag("--net-allow-host")
        .flag(allow)
        .run("")
}

fn ipv4_mapped_ipv6(mode: Mode) {
    let net = LoopbackPair::new();
    let out = tcp(
        mode,
        "inet6",
        "::ffff:127.0.0.2",
        &net.port(),
        "tcp",
        "127.0.0.1",
    );
    let what = "[::ffff:127.0.0.2] reaching 127.0.0.2 when only 127.0.0.1 is allowed";
    verdict(mode, Bare::Works, net.bad.count() > 0, what, &out);
}

/// Only 127.0.0.2 is allowed; 0.0.0.0 means 127.0.0.1, which is not.
fn zero_address_v4(mode: Mode) {
    let net = LoopbackPair::new();
    let out = tcp(mode, "inet", "0.0.0.0", &net.port(), "tcp", "127.0.0.2");
    let what = "0.0.0.0 reaching 127.0.0.1 when only 127.0.0.2 is allowed";
    verdict(mode, Bare::Works, net.good.count() > 0, what, &out);
}

/// Only 127.0.0.2 is allowed; [::] means [::1], which is not.
fn zero_address_v6(mode: Mode) {
    let v6 = TcpCounter::bind("::1", 0).expect("listen on ::1");
    let out = tcp(
        mode,
        "inet6",
        "::",
        &v6.port().to_string(),
        "tcp",
        "127.0.0.2",
    );
    let what = "[::] reaching [::1] when only 127.0.0.2 is allowed";
    verdict(mode, Bare::Works, v6.count() > 0, what, &out);
}

fn mptcp(mode: Mode) {
    let bare = match sysctl("net.mptcp.enabled").as_deref() {
        Some("1") => Bare::Works,
        _ => Bare::Impossible("MPTCP is not enabled (net.mptcp.enabled)"),
    };
    let net = LoopbackPair::new();
    let out = tcp(mode, "inet", "127.0.0.2", &net.port(), "mptcp", "127.0.0.1");
    let what = "an MPTCP connect to a refused host";
    verdict(mode, bare, net.bad.count() > 0, what, &out);
}

fn msg_fastopen(mode: Mode) {
    let client = sysctl("net.ipv4.tcp_fastopen")
        .and_then(|v| v.parse::<u32>().ok())
        .is_some_and(|v| v & 1 != 0);
    let bare = if client {
        Bare::Works
    } else {
        Bare::Impossible("client TCP Fast Open is off (net.ipv4.tcp_fastopen)")
    };
    let net = LoopbackPair::new();
    let out = Attack::new(mode, "net", "fastopen")
        .arg("127.0.0.2")
        .arg(net.port())
        .flag("--net-allow-host")
        .flag("127.0.0.1")
        .run("");
    let what = "sendto/sendmsg(MSG_FASTOPEN) connecting to a refused host";
    verdict(mode, bare, net.bad.count() > 0, what, &out);
}

/// The listener hand-over key: raw `sendmsg` calls to a refused host, with
/// the three unused argument registers set as a guess would set them
/// (`net.c keyguess`). With the host rule every `sendmsg` is supervised;
/// a guess taken for the key would pass unexamined and reach 127.0.0.2.
fn listener_key_guesses(mode: Mode) {
    let net = LoopbackPair::new();
    let out = Attack::new(mode, "net", "keyguess")
        .arg("127.0.0.2")
        .arg(net.port())
        .flag("--net-allow-host")
        .flag("127.0.0.1")
        .run("");
    let what = "raw sendmsg with guessed hand-over keys reaching a refused host";
    verdict(mode, Bare::Works, net.bad_udp.count() > 0, what, &out);
}

fn udp(mode: Mode, flags: impl FnOnce(&str) -> Vec<String>) {
    let net = LoopbackPair::new();
    let flags = flags(&net.port());
    let out = Attack::new(mode, "net", "udp")
        .arg("inet")
        .arg("127.0.0.1")
        .arg(net.port())
        .flags(&flags)
        .run("");
    let what = format!("UDP datagrams to 127.0.0.1 under {flags:?}");
    verdict(mode, Bare::Works, net.good_udp.count() > 0, &what, &out);
}

/// Port rules are TCP rules: they allow no UDP.
fn udp_when_only_tcp_ports(mode: Mode) {
    udp(mode, |port| vec!["--net-connect".into(), port.into()]);
}

/// A host rule alone allows UDP to that host, unless --no-udp.
fn udp_with_no_udp(mode: Mode) {
    udp(mode, |_| {
        vec![
            "--no-udp".into(),
            "--net-allow-host".into(),
            "127.0.0.1".into(),
        ]
    });
}

/// Port rules are TCP rules: they allow no ICMP either.
fn icmp_when_only_tcp_ports(mode: Mode) {
    let ping_gids = sysctl("net.ipv4.ping_group_range").unwrap_or_default();
    let range: Vec<u32> = ping_gids
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let nobody_pings = range.len() == 2 && range[0] <= 65534 && 65534 <= range[1];
    let bare = if nobody_pings {
        Bare::Works
    } else {
        Bare::NeedsRoot("CAP_NET_RAW (net.ipv4.ping_group_range excludes gid 65534)")
    };
    let watch = IcmpWatch::new();
    let tag = nonce("icmp-");
    let out = Attack::new(mode, "net", "icmp")
        .arg("127.0.0.1")
        .arg(&tag)
        .flag("--net-connect")
        .flag("80")
        .run("");
    let what = "an ICMP echo request when only TCP ports are allowed";
    verdict(mode, bare, watch.saw(&tag), what, &out);
}

/// A scratch tree with a "host daemon" socket in outside/ (never granted),
/// and rw/ granted read-write with a symlink to that socket.
fn unix_attack(mode: Mode, kind: &str, via_link: bool) {
    let scratch = Scratch::new(mode.user());
    let rw = scratch.dir("rw");
    let outside = scratch.dir("outside");
    let sock = outside.join("daemon.sock");
    let counter = match kind {
        "stream" => UnixCounter::stream(UnixName::Path(sock.clone())),
        _ => UnixCounter::dgram(UnixName::Path(sock.clone())),
    }
    .expect("unix socket");
    let link = rw.join("daemon-link");
    symlink(&sock, &link).unwrap();
    lchown(&link, Some(mode.user().uid()), Some(mode.user().uid())).unwrap();
    let out = Attack::new(mode, "net", "unix")
        .arg(kind)
        .arg("path")
        .arg(if via_link { &link } else { &sock })
        .flag("-w")
        .flag(&rw)
        .run("");
    let what = format!("a {kind} unix socket outside the grants (through a symlink: {via_link})");
    verdict(mode, Bare::Works, counter.count() > 0, &what, &out);
}

fn unix_socket_outside_grants(mode: Mode) {
    unix_attack(mode, "stream", false);
}

fn unix_socket_through_symlink(mode: Mode) {
    unix_attack(mode, "stream", true);
}

fn unix_datagram_outside_grants(mode: Mode) {
    unix_attack(mode, "dgram", false);
}

fn abstract_attack(mode: Mode, kind: &str) {
    let name = nonce("sandlock-escape-abstract-");
    let counter = match kind {
        "stream" => UnixCounter::stream(UnixName::Abstract(name.clone())),
        _ => UnixCounter::dgram(UnixName::Abstract(name.clone())),
    }
    .expect("abstract unix socket");
    let out = Attack::new(mode, "net", "unix")
        .arg(kind)
        .arg("abstract")
        .arg(&name)
        .flag("--isolate-ipc")
        .run("");
    let what = format!("an abstract {kind} unix socket outside the sandbox");
    verdict(mode, Bare::Works, counter.count() > 0, &what, &out);
}

fn abstract_unix_stream(mode: Mode) {
    abstract_attack(mode, "stream");
}

fn abstract_unix_datagram(mode: Mode) {
    abstract_attack(mode, "dgram");
}
