//! Scratch targets the runner watches: listeners that count what reaches
//! them, a pseudo-terminal, and a raw ICMP socket that sees pings. They are
//! bound to loopback addresses and scratch paths only.

use std::fs::File;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{self, UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::harness::User;

/// Listeners only count what completed before we look; this is how long a
/// count is left to settle after the attack ended (not a speed assertion).
const SETTLE: Duration = Duration::from_millis(300);

/// A counter fed by a background thread until dropped.
struct Counting {
    count: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    wake: Box<dyn Fn() + Send>,
}

impl Counting {
    fn start(
        wake: Box<dyn Fn() + Send>,
        mut one: impl FnMut() -> io::Result<bool> + Send + 'static,
    ) -> Counting {
        let count = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (Arc::clone(&count), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match one() {
                    Ok(true) if !s.load(Ordering::SeqCst) => {
                        c.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {}
                }
            }
        });
        Counting {
            count,
            stop,
            thread: Some(thread),
            wake,
        }
    }

    fn settled(&self) -> usize {
        thread::sleep(SETTLE);
        self.count.load(Ordering::SeqCst)
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        (self.wake)();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A TCP listener counting accepted connections.
pub struct TcpCounter {
    addr: SocketAddr,
    counting: Counting,
}

impl TcpCounter {
    /// Listen on `ip:port` (port 0: any).
    pub fn bind(ip: &str, port: u16) -> io::Result<TcpCounter> {
        let ip: IpAddr = ip.parse().expect("listener address");
        let listener = TcpListener::bind((ip, port))?;
        let addr = listener.local_addr()?;
        let wake = Box::new(move || {
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        });
        let counting = Counting::start(wake, move || listener.accept().map(|_| true));
        Ok(TcpCounter { addr, counting })
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far (after letting pending ones arrive).
    pub fn count(&self) -> usize {
        self.counting.settled()
    }
}

/// A UDP socket counting datagrams.
pub struct UdpCounter {
    counting: Counting,
}

impl UdpCounter {
    /// Bind `ip:port`.
    pub fn bind(ip: &str, port: u16) -> io::Result<UdpCounter> {
        let ip: IpAddr = ip.parse().expect("udp address");
        let sock = UdpSocket::bind((ip, port))?;
        sock.set_read_timeout(Some(Duration::from_millis(50)))?;
        let counting = Counting::start(Box::new(|| {}), move || {
            let mut buf = [0u8; 2048];
            sock.recv(&mut buf).map(|_| true)
        });
        Ok(UdpCounter { counting })
    }

    /// Datagrams received so far.
    pub fn count(&self) -> usize {
        self.counting.settled()
    }
}

/// Listeners on 127.0.0.1:P (allowed by the tests' policies) and
/// 127.0.0.2:P (refused), TCP and UDP, all on one port number P.
pub struct LoopbackPair {
    /// TCP on 127.0.0.1.
    pub good: TcpCounter,
    /// TCP on 127.0.0.2.
    pub bad: TcpCounter,
    /// UDP on 127.0.0.1.
    pub good_udp: UdpCounter,
    /// UDP on 127.0.0.2.
    pub bad_udp: UdpCounter,
}

impl LoopbackPair {
    /// Find a port free on both addresses, for both protocols.
    pub fn new() -> LoopbackPair {
        for _ in 0..50 {
            let Ok(bad) = TcpCounter::bind("127.0.0.2", 0) else {
                continue;
            };
            let p = bad.port();
            let (Ok(good), Ok(good_udp), Ok(bad_udp)) = (
                TcpCounter::bind("127.0.0.1", p),
                UdpCounter::bind("127.0.0.1", p),
                UdpCounter::bind("127.0.0.2", p),
            ) else {
                continue;
            };
            return LoopbackPair {
                good,
                bad,
                good_udp,
                bad_udp,
            };
        }
        panic!("no port free on both 127.0.0.1 and 127.0.0.2");
    }

    /// The shared port number, as a string for argv.
    pub fn port(&self) -> String {
        self.good.port().to_string()
    }
}

/// Where a unix socket lives.
pub enum UnixName {
    /// A filesystem path.
    Path(PathBuf),
    /// An abstract name (no leading NUL here).
    Abstract(String),
}

impl UnixName {
    fn addr(&self) -> io::Result<net::SocketAddr> {
        match self {
            UnixName::Path(p) => net::SocketAddr::from_pathname(p),
            UnixName::Abstract(n) => net::SocketAddr::from_abstract_name(n.as_bytes()),
        }
    }
}

/// A unix stream listener or datagram socket counting what reaches it.
pub struct UnixCounter {
    counting: Counting,
}

impl UnixCounter {
    /// Listen for stream connections at `name`.
    pub fn stream(name: UnixName) -> io::Result<UnixCounter> {
        let addr = name.addr()?;
        let listener = UnixListener::bind_addr(&addr)?;
        open_to_all(&name);
        let wake = Box::new(move || {
            let _ = UnixStream::connect_addr(&addr);
        });
        let counting = Counting::start(wake, move || listener.accept().map(|_| true));
        Ok(UnixCounter { counting })
    }

    /// Receive datagrams at `name`.
    pub fn dgram(name: UnixName) -> io::Result<UnixCounter> {
        let sock = UnixDatagram::bind_addr(&name.addr()?)?;
        open_to_all(&name);
        sock.set_read_timeout(Some(Duration::from_millis(50)))?;
        let counting = Counting::start(Box::new(|| {}), move || {
            let mut buf = [0u8; 512];
            sock.recv(&mut buf).map(|_| true)
        });
        Ok(UnixCounter { counting })
    }

    /// Connections or datagrams so far.
    pub fn count(&self) -> usize {
        self.counting.settled()
    }
}

/// Plain permissions must not be what stops the attack: mode 0777.
fn open_to_all(name: &UnixName) {
    use std::os::unix::fs::PermissionsExt;
    if let UnixName::Path(p) = name {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
}

/// A pseudo-terminal whose slave the attack gets; the runner keeps both ends.
pub struct Pty {
    master: OwnedFd,
    slave_path: PathBuf,
    slave: File,
}

impl Pty {
    /// A new pty whose slave belongs to `owner`.
    pub fn open(owner: User) -> Pty {
        use rustix::fs::{Mode, OFlags};
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .expect("open /dev/ptmx");
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        let slave_path = PathBuf::from(name.to_string_lossy().into_owned());
        std::os::unix::fs::chown(&slave_path, Some(owner.uid()), Some(owner.uid())).unwrap();
        let flags = OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC;
        let slave = File::from(rustix::fs::open(&slave_path, flags, Mode::empty()).unwrap());
        Pty {
            master,
            slave_path,
            slave,
        }
    }

    /// The slave's path (/dev/pts/N).
    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }

    /// Another descriptor of the slave, to hand to the attack.
    pub fn slave(&self) -> File {
        self.slave.try_clone().unwrap()
    }

    /// Is a line waiting in the terminal's input queue (what a shell
    /// reading this terminal would execute)? Consumes it.
    pub fn pending_input(&self) -> Option<String> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let timeout = Timespec {
            tv_sec: 0,
            tv_nsec: 200_000_000,
        };
        let mut fds = [PollFd::new(&self.slave, PollFlags::IN)];
        let ready = poll(&mut fds, Some(&timeout)).unwrap_or(0);
        if ready == 0 || !fds[0].revents().contains(PollFlags::IN) {
            return None;
        }
        let mut buf = [0u8; 256];
        let n = (&self.slave).read(&mut buf).unwrap_or(0);
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// (rows, columns) as the terminal reports them.
    pub fn winsize(&self) -> (u16, u16) {
        let ws = rustix::termios::tcgetwinsize(&self.master).unwrap();
        (ws.ws_row, ws.ws_col)
    }
}

/// A raw ICMP socket: sees every ICMP packet on the machine's loopback.
pub struct IcmpWatch {
    sock: OwnedFd,
}

impl IcmpWatch {
    /// Start watching (needs CAP_NET_RAW: the runner is root).
    pub fn new() -> IcmpWatch {
        use rustix::net::{AddressFamily, SocketFlags, SocketType, ipproto, socket_with};
        let sock = socket_with(
            AddressFamily::INET,
            SocketType::RAW,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            Some(ipproto::ICMP),
        )
        .expect("raw ICMP socket");
        IcmpWatch { sock }
    }

    /// Did a packet carrying `nonce` pass since we started watching?
    pub fn saw(&self, nonce: &str) -> bool {
        thread::sleep(SETTLE);
        let mut buf = [0u8; 4096];
        let mut seen = false;
        while let Ok((n, _)) =
            rustix::net::recv(&self.sock, &mut buf[..], rustix::net::RecvFlags::DONTWAIT)
        {
            if buf[..n].windows(nonce.len()).any(|w| w == nonce.as_bytes()) {
                seen = true;
            }
        }
        seen
    }
}
