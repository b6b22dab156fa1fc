//! The loopback listener of the connect loop: accepts and drops
//! connections on 127.0.0.1 until stopped.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use super::measure::sys;

/// A running listener; stopped on drop.
pub struct Listener {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Connections accepted (read by the tests).
    #[cfg_attr(not(test), expect(dead_code))]
    accepted: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Binds an ephemeral port on 127.0.0.1 and starts accepting.
    pub fn start() -> Result<Self, String> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| format!("binding a loopback listener: {e}"))?;
        // A deep accept queue: if this thread is descheduled on a busy
        // machine, a full queue drops SYNs and the client waits a 1 s
        // retransmit, which would show up as a sandbox's cost.
        sys::listen_backlog(&listener, 4096);
        let addr = listener
            .local_addr()
            .map_err(|e| format!("loopback listener address: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (theirs, count) = (Arc::clone(&stop), Arc::clone(&accepted));
        // The listening socket moves into the thread: it is closed when the
        // thread ends.
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if theirs.load(Ordering::Relaxed) {
                    break;
                }
                drop(conn);
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ok(Self {
            addr,
            stop,
            accepted,
            thread: Some(thread),
        })
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far.
    #[cfg(test)]
    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Stops accepting and waits for the thread (the socket closes with
    /// it); returns whether it ended cleanly.
    fn stop(&mut self) -> bool {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocked accept.
        let _ = TcpStream::connect(self.addr);
        self.thread.take().is_some_and(|t| t.join().is_ok())
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_then_stops() {
        let mut l = Listener::start().unwrap();
        for _ in 0..50 {
            TcpStream::connect(("127.0.0.1", l.port())).unwrap();
        }
        // Every connection is accepted (the thread may lag the handshakes).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while l.accepted() < 50 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(l.accepted(), 50);
        // Stopping ends the thread, which owns (and so closes) the socket.
        // Not checked by connecting to the port again: with tests or
        // benches running alongside, another listener may have it by then.
        assert!(l.stop());
        assert!(l.thread.is_none());
        assert_eq!(l.accepted(), 50);
        assert!(!l.stop(), "a second stop has no thread to wait for");
    }
}
