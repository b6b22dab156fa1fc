//! What the network scenarios share: `netprobe` (compiled once), running it
//! under `sandlock run`, and the listeners that count what reaches them.
#![allow(dead_code)]

use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::common::{NOBODY, Out, bins, root, run_as};

/// The refused errno of an IP destination.
pub const ECONNREFUSED: &str = "errno=111";
/// A unix socket outside the grants.
pub const EACCES: &str = "errno=13";
/// A socket the filter refuses at `socket()`.
pub const EPERM: &str = "errno=1";

/// `netprobe`, compiled once next to the copied `sandlock`.
pub fn netprobe() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let out = bins().dir().join("netprobe");
        crate::common::gcc("tests/progs/netprobe.c", &out, &["-static", "-pthread"]);
        out
    })
    .clone()
}

/// `sandlock run FLAGS -r BINS -- netprobe OPS` as `uid`; `ops` is split
/// at white space (operations are separated by ` , `). It must exit 0.
pub fn net(uid: u32, flags: &[&str], ops: &str) -> Out {
    let mut args: Vec<String> = vec!["run".into()];
    args.extend(flags.iter().map(|s| s.to_string()));
    args.extend(["-r".into(), bins().dir().to_string_lossy().into_owned()]);
    args.push("--".into());
    args.push(netprobe().to_string_lossy().into_owned());
    args.extend(ops.split_whitespace().map(str::to_owned));
    let out = run_as(uid, &bins().sandlock(), &args, &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    out
}

/// The users a scenario runs as: root, and uid 65534 when we are root.
pub fn users() -> Vec<u32> {
    if root() { vec![0, NOBODY] } else { vec![0] }
}

/// Counts what a background thread sees until dropped.
pub struct Counter {
    count: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Counter {
    pub fn start(mut one: impl FnMut() -> bool + Send + 'static) -> Counter {
        let count = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (count.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                if one() {
                    c.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Counter {
            count,
            stop,
            thread: Some(thread),
        }
    }

    /// The count, after letting in-flight packets land (not a speed
    /// assertion: the sandboxed run has already ended).
    pub fn get(&self) -> usize {
        thread::sleep(Duration::from_millis(200));
        self.count.load(Ordering::SeqCst)
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accepting(mut accept: impl FnMut() -> bool + Send + 'static) -> Counter {
    Counter::start(move || {
        let got = accept();
        if !got {
            thread::sleep(Duration::from_millis(2));
        }
        got
    })
}

/// TCP accepts on `ip:port`.
pub fn tcp_counter(ip: &str, port: u16) -> Counter {
    let l = TcpListener::bind((ip, port)).unwrap();
    l.set_nonblocking(true).unwrap();
    accepting(move || l.accept().is_ok())
}

/// UDP datagrams on `ip:port`.
pub fn udp_counter(ip: &str, port: u16) -> Counter {
    let s = UdpSocket::bind((ip, port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    Counter::start(move || s.recv(&mut [0u8; 64]).is_ok())
}

/// Connections accepted on the unix stream socket `l`.
pub fn unix_accepts(l: UnixListener) -> Counter {
    l.set_nonblocking(true).unwrap();
    accepting(move || l.accept().is_ok())
}

/// A unix stream listener at `path`, counting.
pub fn unix_stream(path: &Path) -> Counter {
    unix_accepts(UnixListener::bind(path).unwrap())
}

/// A unix datagram socket at `path`, counting.
pub fn unix_dgram(path: &Path) -> Counter {
    let s = UnixDatagram::bind(path).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    Counter::start(move || s.recv(&mut [0u8; 64]).is_ok())
}

/// A free port on 127.0.0.1, 127.0.0.2 and ::1, for TCP and UDP.
pub fn free_port() -> u16 {
    loop {
        let p = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let ok = ["127.0.0.1", "127.0.0.2", "::1"]
            .iter()
            .all(|ip| TcpListener::bind((*ip, p)).is_ok() && UdpSocket::bind((*ip, p)).is_ok());
        if ok {
            return p;
        }
    }
}

/// As root: a raw TCP socket counting SYNs to `ip:port` (IPv4).
pub fn syn_watch(ip: [u8; 4], port: u16) -> Option<Counter> {
    use rustix::net::{AddressFamily, SocketType, ipproto, sockopt};
    if !root() {
        return None;
    }
    let raw = rustix::net::socket(AddressFamily::INET, SocketType::RAW, Some(ipproto::TCP)).ok()?;
    sockopt::set_socket_timeout(
        &raw,
        sockopt::Timeout::Recv,
        Some(Duration::from_millis(20)),
    )
    .unwrap();
    Some(Counter::start(move || {
        let mut b = [0u8; 256];
        let Ok(n) = rustix::io::read(&raw, &mut b) else {
            return false;
        };
        let ihl = usize::from(b[0] & 0xf) * 4;
        n >= ihl + 14
            && b[16..20] == ip
            && u16::from_be_bytes([b[ihl + 2], b[ihl + 3]]) == port
            && b[ihl + 13] & 0x02 != 0
    }))
}

/// A TCP and a UDP listener on 127.0.0.1 and 127.0.0.2, and (as root)
/// the SYN watch on 127.0.0.2.
pub struct Pair {
    pub port: u16,
    pub good: Counter,
    pub bad: Counter,
    pub good_udp: Counter,
    pub bad_udp: Counter,
    pub bad_syn: Option<Counter>,
}

impl Pair {
    pub fn new() -> Pair {
        let port = free_port();
        Pair {
            port,
            good: tcp_counter("127.0.0.1", port),
            bad: tcp_counter("127.0.0.2", port),
            good_udp: udp_counter("127.0.0.1", port),
            bad_udp: udp_counter("127.0.0.2", port),
            bad_syn: syn_watch([127, 0, 0, 2], port),
        }
    }

    /// Nothing reached 127.0.0.2: no accept, no datagram, no SYN.
    pub fn assert_bad_untouched(&self, out: &Out) {
        assert_eq!(
            self.bad.get(),
            0,
            "127.0.0.2 accepted a connection\n{out:?}"
        );
        assert_eq!(self.bad_udp.get(), 0, "127.0.0.2 got a datagram\n{out:?}");
        if let Some(syn) = &self.bad_syn {
            assert_eq!(syn.get(), 0, "a SYN went to 127.0.0.2\n{out:?}");
        }
    }
}

/// `lchown` as root (the scratch belongs to the scenario's user).
pub fn chown(p: &Path, uid: u32) {
    if root() {
        std::os::unix::fs::lchown(p, Some(uid), Some(uid)).unwrap();
    }
}
