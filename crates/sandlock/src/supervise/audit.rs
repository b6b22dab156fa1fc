//! The audit log: one JSON line per intercepted syscall, with its verdict.
//!
//! ```json
//! {"time_ns":1718000000123456789,"syscall":"prlimit64","category":"process","pid":4242,
//!  "parent_pid":null,"path":null,"host":null,"port":null,"size":null,"argv":null,
//!  "denied":true,"verdict":"deny","errno":"EPERM","source":"sandlock","held":false}
//! ```
//!
//! The event fields are those of [`SyscallEvent`]; `verdict` is `allow`,
//! `audit` or `deny`, `errno` the errno of a denial, `source` who decided
//! (`sandlock` for the supervisor's own rules, `callback` for the policy
//! callback, `callback-panicked` / `callback-timed-out` for a callback that
//! failed and was taken as a denial), and `held` whether the syscall waited
//! for the verdict.

use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use sandlock_policy::{SyscallEvent, Verdict};

/// Where audit lines go. Each line is written with one `write` call.
pub struct AuditLog {
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditLog")
    }
}

#[derive(serde::Serialize)]
struct Line<'a> {
    time_ns: u128,
    #[serde(flatten)]
    event: &'a SyscallEvent,
    verdict: &'static str,
    errno: Option<&'static str>,
    source: &'static str,
    held: bool,
}

impl AuditLog {
    /// A log writing to `out` (a file, a pipe, a buffer).
    pub fn new(out: impl Write + Send + 'static) -> AuditLog {
        AuditLog {
            out: Mutex::new(Box::new(out)),
        }
    }

    /// Records `event` with its verdict.
    pub fn record(&self, event: &SyscallEvent, verdict: Verdict, source: &'static str, held: bool) {
        let (verdict_name, errno) = match verdict {
            Verdict::Allow => ("allow", None),
            Verdict::Audit => ("audit", None),
            Verdict::Deny | Verdict::DenyWith(_) => (
                "deny",
                Some(verdict.errno().and_then(|e| e.name()).unwrap_or("EPERM")),
            ),
        };
        let line = Line {
            time_ns: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
            event,
            verdict: verdict_name,
            errno,
            source,
            held,
        };
        let Ok(mut bytes) = serde_json::to_vec(&line) else {
            return;
        };
        bytes.push(b'\n');
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // An audit write that fails cannot stop the sandbox; the next line
        // is tried again.
        let _ = out.write_all(&bytes);
        let _ = out.flush();
    }
}
