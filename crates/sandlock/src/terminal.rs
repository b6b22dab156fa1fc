//! The terminal of an interactive sandbox: its process group becomes the
//! terminal's foreground group for the run, and sandlock's group (and the
//! terminal's settings) come back at the end. `TIOCSTI` stays refused by
//! the filter, so even with the terminal the sandbox cannot push input into
//! it for the shell outside.

use std::os::fd::OwnedFd;

use rustix::process::Pid;
use rustix::termios::Termios;

use crate::error::Error;
use crate::sys;

/// The terminal and what to restore on it.
#[derive(Debug)]
pub(crate) struct Terminal {
    fd: OwnedFd,
    pgrp: Option<Pid>,
    termios: Option<Termios>,
}

impl Terminal {
    /// The terminal on standard input, or the controlling terminal.
    pub(crate) fn open() -> Result<Terminal, Error> {
        let fd = if rustix::termios::isatty(rustix::stdio::stdin()) {
            rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stdin(), 3)
                .map_err(Error::os("interactive: dup of standard input"))?
        } else {
            rustix::fs::open(
                "/dev/tty",
                rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC | rustix::fs::OFlags::NOCTTY,
                rustix::fs::Mode::empty(),
            )
            .map_err(|e| Error::Invalid {
                field: "interactive",
                value: "/dev/tty".to_owned(),
                why: format!(
                    "no terminal to give the sandbox ({})",
                    crate::error::errno_text(e)
                ),
            })?
        };
        let pgrp = rustix::termios::tcgetpgrp(&fd).ok();
        let termios = rustix::termios::tcgetattr(&fd).ok();
        Ok(Terminal { fd, pgrp, termios })
    }

    /// Makes process group `pgid` the terminal's foreground group.
    pub(crate) fn give_to(&self, pgid: i32) -> Result<(), Error> {
        let pid = Pid::from_raw(pgid).ok_or(Error::Os {
            what: "tcsetpgrp",
            errno: rustix::io::Errno::SRCH,
        })?;
        let old = sys::host::block_sigttou();
        let r = rustix::termios::tcsetpgrp(&self.fd, pid);
        sys::host::restore_signals(&old);
        r.map_err(Error::os("tcsetpgrp"))
    }

    /// Gives the terminal back to the group that had it, with its settings.
    pub(crate) fn restore(&self) {
        let old = sys::host::block_sigttou();
        if let Some(pgrp) = self.pgrp {
            let _ = rustix::termios::tcsetpgrp(&self.fd, pgrp);
        }
        if let Some(t) = &self.termios {
            let _ = rustix::termios::tcsetattr(&self.fd, rustix::termios::OptionalActions::Now, t);
        }
        sys::host::restore_signals(&old);
    }
}
