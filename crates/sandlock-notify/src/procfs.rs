//! What `/proc/PID` tells about a task: its parent, its cwd, its fds.
//!
//! Behind the [`ProcView`] trait so that decoding can run against a fake.

use std::fmt::Write as _;

use rustix::fs::{CWD, Mode, OFlags};

/// Information about a task that is not in its memory.
pub trait ProcView {
    /// The parent process id of task `pid`.
    fn parent_pid(&self, pid: u32) -> Option<u32>;
    /// The current directory of task `pid`, as an absolute path.
    fn cwd(&self, pid: u32) -> Option<String>;
    /// What fd `fd` of task `pid` refers to, as an absolute path.
    fn fd_path(&self, pid: u32, fd: i32) -> Option<String>;
}

/// The real `/proc`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcFs;

/// `readlink` of a `/proc` path, without allocating for the path.
fn readlink(path: &str) -> Option<String> {
    let mut buf = [0u8; 4096];
    let n = rustix::fs::readlinkat_raw(CWD, path, &mut buf[..]).ok()?;
    if n >= buf.len() {
        return None; // possibly truncated
    }
    String::from_utf8(buf[..n].to_vec()).ok()
}

impl ProcView for ProcFs {
    fn parent_pid(&self, pid: u32) -> Option<u32> {
        let mut path = heapless::String::<32>::new();
        write!(path, "/proc/{pid}/stat").ok()?;
        let fd = rustix::fs::open(
            path.as_str(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let mut buf = [0u8; 1024];
        let mut len = 0;
        while len < buf.len() {
            match rustix::io::read(&fd, &mut buf[len..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => len += n,
            }
        }
        parse_stat_ppid(&buf[..len])
    }

    fn cwd(&self, pid: u32) -> Option<String> {
        let mut path = heapless::String::<32>::new();
        write!(path, "/proc/{pid}/cwd").ok()?;
        readlink(&path)
    }

    fn fd_path(&self, pid: u32, fd: i32) -> Option<String> {
        if fd < 0 {
            return None;
        }
        let mut path = heapless::String::<48>::new();
        write!(path, "/proc/{pid}/fd/{fd}").ok()?;
        readlink(&path)
    }
}

/// The ppid field (the 4th) of a `/proc/PID/stat` line.
///
/// The 2nd field, `(comm)`, may hold spaces and parentheses, so the fields
/// after it are found after the **last** `)` of the line.
pub fn parse_stat_ppid(stat: &[u8]) -> Option<u32> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = core::str::from_utf8(&stat[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

/// A fake `/proc` for tests and fuzzing: the same answers for every pid.
#[derive(Clone, Debug, Default)]
pub struct FakeProc {
    /// The parent pid.
    pub ppid: Option<u32>,
    /// The cwd.
    pub cwd: Option<String>,
    /// `(fd, path)` pairs.
    pub fds: Vec<(i32, String)>,
}

impl ProcView for FakeProc {
    fn parent_pid(&self, _: u32) -> Option<u32> {
        self.ppid
    }
    fn cwd(&self, _: u32) -> Option<String> {
        self.cwd.clone()
    }
    fn fd_path(&self, _: u32, fd: i32) -> Option<String> {
        self.fds
            .iter()
            .find(|(f, _)| *f == fd)
            .map(|(_, p)| p.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_with_spaces_and_parens() {
        assert_eq!(parse_stat_ppid(b"42 (a) b) (c) S 17 42 42 0 -1"), Some(17));
        assert_eq!(parse_stat_ppid(b"42 (sh) R 1 2 3"), Some(1));
        assert_eq!(parse_stat_ppid(b"42 (x"), None);
        assert_eq!(parse_stat_ppid(b"42 (x) S"), None);
        assert_eq!(parse_stat_ppid(b"42 (x) S -5"), None);
        assert_eq!(parse_stat_ppid(b""), None);
    }

    #[test]
    fn real_proc_of_ourselves() {
        let me = std::process::id();
        let ppid = ProcFs.parent_pid(me).unwrap();
        assert_eq!(
            ppid,
            rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get() as u32)
        );
        assert_eq!(
            ProcFs.cwd(me).unwrap(),
            std::env::current_dir().unwrap().to_str().unwrap()
        );
        assert_eq!(ProcFs.fd_path(me, -1), None);
    }
}
