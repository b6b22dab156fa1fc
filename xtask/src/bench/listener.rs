//! The loopback listener of the connect loop: accepts and drops
//! connections on 127.0.0.1 until stopped.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use super::measure::sys;

/// A running listener; stopped on drop.
pub struct Listener {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
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
        let theirs = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if theirs.load(Ordering::Relaxed) {
                    break;
                }
                drop(conn);
            }
        });
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocked accept.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
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
        let l = Listener::start().unwrap();
        for _ in 0..50 {
            TcpStream::connect(("127.0.0.1", l.port())).unwrap();
        }
        let port = l.port();
        drop(l);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}
