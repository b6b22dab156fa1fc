//! `/dev/urandom` and `/dev/random` under `random_seed`: in the sandbox's
//! mount namespace each is a FIFO that sandlock keeps full of its seeded
//! stream (streams [`URANDOM`] and [`RANDOM`] of `crate::chacha`), so
//! reading them costs no interception.
//!
//! Bytes come out in the order they are read, whoever reads them: a
//! program that reads sequentially gets the same bytes on every run.
//! Differences from the character devices: `stat` says FIFO, `lseek`
//! fails with `ESPIPE`, and a non-blocking read may find the FIFO
//! momentarily empty (`EAGAIN`) when the sandbox reads faster than the
//! writer refills it (64 KiB at a time).

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::random::{RANDOM, URANDOM};
use crate::chacha::Stream;
use crate::error::Error;
use crate::tmpdir::TempDir;

/// The devices replaced: target, stream id.
const DEVICES: [(&str, u64); 2] = [("/dev/urandom", URANDOM), ("/dev/random", RANDOM)];

/// What a launch binds, and the token that keeps the writer running.
pub(crate) struct Seeded {
    /// `(FIFO, device path)` pairs to bind.
    pub(crate) binds: Vec<(PathBuf, &'static str)>,
    /// The writer stops once this is dropped (with the run).
    pub(crate) alive: Box<dyn std::any::Any + Send>,
}

/// One FIFO being fed.
struct Feed {
    fd: OwnedFd,
    stream: Stream,
    chunk: Vec<u8>,
    sent: usize,
}

/// Creates the FIFOs of the devices that exist here and starts the thread
/// that feeds them with `seed`'s streams.
pub(crate) fn start(seed: u64) -> Result<Seeded, Error> {
    let dir = TempDir::create()?;
    let mut feeds = Vec::new();
    let mut binds = Vec::new();
    for (device, id) in DEVICES {
        if std::fs::symlink_metadata(device).is_err() {
            continue;
        }
        let name = device.rsplit('/').next().unwrap_or("random");
        let path = dir.path().join(name);
        let os = |errno| Error::Path {
            field: "random_seed device",
            path: path.display().to_string(),
            errno,
        };
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &path,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .map_err(os)?;
        // Opened for writing and reading: opening it never blocks, and a
        // reader that closes never makes our writes fail.
        let fd = rustix::fs::open(
            &path,
            OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(os)?;
        feeds.push(Feed {
            fd,
            stream: Stream::seeded(seed, id),
            chunk: Vec::new(),
            sent: 0,
        });
        binds.push((path, device));
    }
    let alive = Arc::new(());
    let weak = Arc::downgrade(&alive);
    std::thread::Builder::new()
        .name("sandlock-random".into())
        .spawn(move || feed(feeds, weak))
        .map_err(Error::io("starting the random-device writer"))?;
    // The directory goes with the run, at once: the writer keeps the
    // FIFOs open, and the sandbox has them bound.
    Ok(Seeded {
        binds,
        alive: Box::new((alive, dir)),
    })
}

/// Keeps every FIFO full until `alive` is gone.
fn feed(mut feeds: Vec<Feed>, alive: Weak<()>) {
    const CHUNK: usize = 16 * 1024;
    let tick = Timespec {
        tv_sec: 0,
        tv_nsec: 200_000_000,
    };
    while alive.strong_count() > 0 {
        let mut fds: Vec<PollFd<'_>> = feeds
            .iter()
            .map(|f| PollFd::new(&f.fd, PollFlags::OUT))
            .collect();
        match rustix::event::poll(&mut fds, Some(&tick)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(_) => break,
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|p| p.revents().contains(PollFlags::OUT))
            .collect();
        drop(fds);
        for (f, ready) in feeds.iter_mut().zip(ready) {
            if !ready {
                continue;
            }
            loop {
                if f.sent == f.chunk.len() {
                    f.chunk.resize(CHUNK, 0);
                    f.stream.fill(&mut f.chunk);
                    f.sent = 0;
                }
                match rustix::io::write(&f.fd, &f.chunk[f.sent..]) {
                    Ok(n) if n > 0 => f.sent += n,
                    _ => break,
                }
            }
        }
    }
    drop(feeds);
}
