//! Network calls performed on the child's behalf: the destination is copied
//! once, checked, and used for the real call on a copy of the child's socket.
// Test helpers outside #[test] fns may unwrap too.
#![allow(unsafe_code, clippy::unwrap_used)]

mod common;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use common::{Body, notify_on, spawn};
use sandlock_bpf::Errno;
use sandlock_notify::{SockAddrBuf, Supervisor, handlers};

// Each test has its own statics: tests run in parallel in this process, and
// a forked child reads them after the fork.
static CONNECT_A: AtomicU16 = AtomicU16::new(0);
static CONNECT_B: AtomicU16 = AtomicU16::new(0);
static UDP_PORT: AtomicU16 = AtomicU16::new(0);
static MMSG_A: AtomicU16 = AtomicU16::new(0);
static MMSG_C: AtomicU16 = AtomicU16::new(0);

fn sin(port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
        },
        sin_zero: [0; 8],
    }
}

/// In the child: a blocking TCP connect to 127.0.0.1:port; 0 or the errno.
fn connect_to(port: u16) -> i32 {
    // SAFETY: raw socket calls on our own fds and a valid sockaddr_in.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        if s < 0 {
            return 100;
        }
        let a = sin(port);
        let r = libc::connect(
            s,
            (&a as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as u32,
        );
        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        libc::close(s);
        if r == 0 { 0 } else { e }
    }
}

/// Only `port` passes the static check; others get ECONNREFUSED.
fn only(port: u16) -> impl Fn(&SockAddrBuf) -> Option<Errno> + Send + Sync + 'static {
    move |sa: &SockAddrBuf| match sa.host_port() {
        Some((_, p)) if p == port => None,
        _ => Some(Errno::ECONNREFUSED),
    }
}

fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let p = l.local_addr().unwrap().port();
    (l, p)
}

#[test]
fn connect_on_behalf_reaches_exactly_the_checked_address() {
    let (a, pa) = listener();
    let (b, pb) = listener();
    CONNECT_A.store(pa, Ordering::SeqCst);
    CONNECT_B.store(pb, Ordering::SeqCst);
    let (child, l) = spawn(
        &notify_on(&["connect"]),
        Body::Fn(|| {
            if connect_to(CONNECT_A.load(Ordering::SeqCst)) != 0 {
                return 1;
            }
            if connect_to(CONNECT_B.load(Ordering::SeqCst)) != libc::ECONNREFUSED {
                return 2;
            }
            0
        }),
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let sup = Supervisor::builder(l)
        .handle_name("connect", handlers::connect(only(pa)))
        .unwrap()
        .event_sink(|_| sandlock_policy::Verdict::Allow)
        .audit(move |ev, d| seen2.lock().unwrap().push((ev.host, ev.port, d.verdict)))
        .spawn()
        .unwrap();
    child.go();
    assert_eq!(child.wait(), 0);
    sup.join();
    // A saw exactly one connection, from the child's socket; B saw nothing.
    let (conn, _) = a.accept().expect("A accepted the on-behalf connection");
    assert_eq!(
        conn.local_addr().unwrap(),
        SocketAddr::from(([127, 0, 0, 1], pa))
    );
    assert!(a.accept().is_err());
    assert_eq!(
        b.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    // The refused attempt never reached the callback; the allowed one did.
    let seen = seen.lock().unwrap();
    assert_eq!(
        *seen,
        [(
            Some("127.0.0.1".parse().unwrap()),
            Some(pa),
            sandlock_policy::Verdict::Allow
        )]
    );
}

#[test]
fn udp_sendto_and_sendmsg_on_behalf_deliver_the_payload() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let port = rx.local_addr().unwrap().port();
    UDP_PORT.store(port, Ordering::SeqCst);
    let (child, l) = spawn(
        &notify_on(&["sendto", "sendmsg"]),
        Body::Fn(|| {
            // SAFETY: raw socket calls with valid buffers.
            unsafe {
                let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
                let a = sin(UDP_PORT.load(Ordering::SeqCst));
                let alen = size_of::<libc::sockaddr_in>() as u32;
                let r = libc::sendto(
                    s,
                    b"one".as_ptr().cast(),
                    3,
                    0,
                    (&a as *const libc::sockaddr_in).cast(),
                    alen,
                );
                if r != 3 {
                    return 1;
                }
                let mut iov = [
                    libc::iovec {
                        iov_base: b"tw".as_ptr() as *mut _,
                        iov_len: 2,
                    },
                    libc::iovec {
                        iov_base: b"o!".as_ptr() as *mut _,
                        iov_len: 2,
                    },
                ];
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_name = (&a as *const libc::sockaddr_in) as *mut _;
                msg.msg_namelen = alen;
                msg.msg_iov = iov.as_mut_ptr();
                msg.msg_iovlen = 2;
                if libc::sendmsg(s, &msg, 0) != 4 {
                    return 2;
                }
                // A refused destination.
                let bad = sin(9);
                let r = libc::sendto(
                    s,
                    b"x".as_ptr().cast(),
                    1,
                    0,
                    (&bad as *const libc::sockaddr_in).cast(),
                    alen,
                );
                if r != -1
                    || std::io::Error::last_os_error().raw_os_error() != Some(libc::ECONNREFUSED)
                {
                    return 3;
                }
                0
            }
        }),
    );
    let sup = Supervisor::builder(l)
        .handle_name("sendto", handlers::sendto(only(port)))
        .unwrap()
        .handle_name("sendmsg", handlers::sendmsg(only(port)))
        .unwrap()
        .spawn()
        .unwrap();
    child.go();
    assert_eq!(child.wait(), 0);
    sup.join();
    let mut buf = [0u8; 16];
    let n = rx.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"one");
    let n = rx.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"two!");
}

/// In the child: sendmmsg of [A "a0", A "a1", B "b" (refused), C "c"],
/// resubmitting from the first unsent entry as a program would. Returns a
/// code that encodes each call's result.
fn mmsg_child() -> i32 {
    let (pa, pc) = (MMSG_A.load(Ordering::SeqCst), MMSG_C.load(Ordering::SeqCst));
    let addrs = [sin(pa), sin(pa), sin(9), sin(pc)];
    let payloads: [&[u8]; 4] = [b"a0", b"a1", b"b", b"c"];
    // SAFETY: raw socket calls; every pointer refers to a live local.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        // Fixed arrays: no allocation in the forked child.
        let mut iovs: [libc::iovec; 4] = std::mem::zeroed();
        let mut msgs: [libc::mmsghdr; 4] = std::mem::zeroed();
        for i in 0..4 {
            iovs[i] = libc::iovec {
                iov_base: payloads[i].as_ptr() as *mut _,
                iov_len: payloads[i].len(),
            };
            let m = &mut msgs[i];
            m.msg_hdr.msg_name = (&addrs[i] as *const libc::sockaddr_in) as *mut _;
            m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
            m.msg_hdr.msg_iov = &mut iovs[i];
            m.msg_hdr.msg_iovlen = 1;
            m.msg_len = 999;
        }
        // [A, A] go; B is another destination: a short count of 2.
        if libc::sendmmsg(s, msgs.as_mut_ptr(), 4, 0) != 2 {
            return 1;
        }
        if msgs[0].msg_len != 2 || msgs[1].msg_len != 2 || msgs[2].msg_len != 999 {
            return 2;
        }
        // B first: refused as a whole.
        let r = libc::sendmmsg(s, msgs.as_mut_ptr().add(2), 2, 0);
        if r != -1 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ECONNREFUSED) {
            return 3;
        }
        // C: sent.
        if libc::sendmmsg(s, msgs.as_mut_ptr().add(3), 1, 0) != 1 || msgs[3].msg_len != 1 {
            return 4;
        }
        0
    }
}

#[test]
fn sendmmsg_on_behalf_checks_every_destination() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    for s in [&a, &c] {
        s.set_nonblocking(true).unwrap();
    }
    let (pa, pc) = (
        a.local_addr().unwrap().port(),
        c.local_addr().unwrap().port(),
    );
    MMSG_A.store(pa, Ordering::SeqCst);
    MMSG_C.store(pc, Ordering::SeqCst);
    let (child, l) = spawn(&notify_on(&["sendmmsg"]), Body::Fn(mmsg_child));
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev2 = events.clone();
    let sup = Supervisor::builder(l)
        .handle_name(
            "sendmmsg",
            handlers::sendmmsg(move |sa: &SockAddrBuf| match sa.host_port() {
                Some((_, p)) if p == pa || p == pc => None,
                _ => Some(Errno::ECONNREFUSED),
            }),
        )
        .unwrap()
        .event_sink(move |ev: sandlock_policy::SyscallEvent| {
            ev2.lock().unwrap().push(ev.port);
            sandlock_policy::Verdict::Allow
        })
        .spawn()
        .unwrap();
    child.go();
    assert_eq!(child.wait(), 0);
    sup.join();
    let mut buf = [0u8; 8];
    let mut got = |s: &UdpSocket| {
        let mut v = Vec::new();
        while let Ok(n) = s.recv(&mut buf) {
            v.push(buf[..n].to_vec());
        }
        v
    };
    assert_eq!(got(&a), [b"a0".to_vec(), b"a1".to_vec()]);
    assert_eq!(got(&c), [b"c".to_vec()]);
    // The callback judged each destination run once; B never reached it.
    assert_eq!(*events.lock().unwrap(), [Some(pa), Some(pc)]);
}

#[test]
fn bind_on_behalf_binds_the_childs_socket() {
    let (child, l) = spawn(
        &notify_on(&["bind"]),
        Body::Fn(|| {
            // SAFETY: raw socket calls with valid buffers.
            unsafe {
                let s = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
                let a = sin(0);
                let alen = size_of::<libc::sockaddr_in>() as u32;
                if libc::bind(s, (&a as *const libc::sockaddr_in).cast(), alen) != 0 {
                    return 1;
                }
                let mut got = sin(1);
                let mut glen = alen;
                libc::getsockname(s, (&mut got as *mut libc::sockaddr_in).cast(), &mut glen);
                if got.sin_port == 0 { 2 } else { 0 }
            }
        }),
    );
    let sup = Supervisor::builder(l)
        .handle_name("bind", handlers::bind(handlers::any_addr))
        .unwrap()
        .spawn()
        .unwrap();
    child.go();
    assert_eq!(child.wait(), 0);
    sup.join();
}

const RACE_CONNECTS: usize = 2000;

/// The child side of the race: one thread flips the port in a shared
/// sockaddr between A (allowed) and B (refused) while the main thread
/// connects with that very buffer.
#[test]
#[ignore = "run as the child of racing_thread_cannot_change_the_checked_address"]
fn race_child() {
    let Ok(a) = std::env::var("RACE_A") else {
        return;
    };
    let pa: u16 = a.parse().unwrap();
    let pb: u16 = std::env::var("RACE_B").unwrap().parse().unwrap();
    // The port field of this sockaddr_in is flipped by a racing thread while
    // the main thread connects with it.
    let buf: &'static mut libc::sockaddr_in = Box::leak(Box::new(sin(pa)));
    let port_ptr = std::ptr::addr_of_mut!(buf.sin_port) as usize;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let flipper = std::thread::spawn(move || {
        let mut i = 0u32;
        while !stop2.load(Ordering::Relaxed) {
            let p = if i.is_multiple_of(2) { pa } else { pb };
            // SAFETY: a volatile write of a u16 into the leaked sockaddr.
            unsafe { std::ptr::write_volatile(port_ptr as *mut u16, p.to_be()) };
            i = i.wrapping_add(1);
        }
    });
    let (mut ok, mut refused, mut other) = (0, 0, Vec::new());
    for _ in 0..RACE_CONNECTS {
        // SAFETY: raw socket calls; `buf` stays valid (leaked).
        unsafe {
            let s = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            let r = libc::connect(
                s,
                (buf as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as u32,
            );
            if r == 0 {
                ok += 1;
            } else {
                match std::io::Error::last_os_error().raw_os_error() {
                    Some(libc::ECONNREFUSED) => refused += 1,
                    e => other.push(e),
                }
            }
            libc::close(s);
        }
    }
    stop.store(true, Ordering::Relaxed);
    flipper.join().unwrap();
    eprintln!("race: {ok} allowed, {refused} refused, other errors {other:?}");
    assert!(
        ok > 0 && refused > 0,
        "the race must exercise both outcomes"
    );
    assert!(other.is_empty());
}

#[test]
fn racing_thread_cannot_change_the_checked_address() {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    b.set_nonblocking(true).unwrap();
    let (pa, pb) = (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    );
    let env = vec![
        ("RACE_A".into(), pa.to_string()),
        ("RACE_B".into(), pb.to_string()),
    ];
    let (child, l) = spawn(
        &notify_on(&["connect"]),
        Body::Exec {
            name: "race_child",
            env,
        },
    );
    // A accepts in the background so its backlog never fills.
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let acceptor = {
        let (accepted, done) = (accepted.clone(), done.clone());
        a.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                match a.accept() {
                    Ok(_) => {
                        accepted.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_micros(200)),
                }
            }
            while a.accept().is_ok() {
                accepted.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let sup = Supervisor::builder(l)
        .handle_name("connect", handlers::connect(only(pa)))
        .unwrap()
        .spawn()
        .unwrap();
    child.go();
    assert_eq!(child.wait(), 0, "the race child failed (see its output)");
    sup.join();
    done.store(true, Ordering::SeqCst);
    acceptor.join().unwrap();
    // B never saw a connection: every connect used the copy that was checked.
    assert_eq!(
        b.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    let n = accepted.load(Ordering::SeqCst);
    assert!(n > 0 && n < RACE_CONNECTS, "A accepted {n}");
}
