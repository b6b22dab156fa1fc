//! Whether a file the supervisor pinned is closed by a deny rule.
//!
//! A file is denied when
//!
//! 1. its **real path** (the path the kernel resolved, never the string the
//!    task passed) is a denied path or lies below one, compared by whole
//!    components ([`LiveState::is_path_denied`]: the static `fs_denied`
//!    list and the callback's `deny_path` rules), or
//! 2. its **identity** (`st_dev`, `st_ino`) is that of a denied path: a
//!    hard link to a denied file elsewhere, or a denied directory reached
//!    through another mount of it, is still the denied inode.
//!
//! Identities are taken by `stat` and `lstat` of every deny rule, again
//! each time the live policy changes version (the callback added a rule).
//! A rule naming a path that does not exist yet has no identity; its path
//! still applies, so creating it is refused.
//!
//! Rule 1 is sound because a denied tree cannot move: renaming a denied
//! path, a path below one, or a directory above one is refused (see
//! [`Denied::holds_denied`]), so a file below a denied directory stays
//! below it for as long as the sandbox lives.

use std::sync::{Arc, Mutex};

use rustix::fs::{AtFlags, CWD, Stat};
use sandlock_policy::LiveState;

use super::path::is_within;
use crate::supervise::Shared;

/// A file's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ident {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

impl Ident {
    /// The identity in a `stat` result.
    pub(crate) fn of(st: &Stat) -> Ident {
        Ident {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }
}

/// The identities of the deny rules of one live-policy version.
#[derive(Debug, Default)]
struct IdCache {
    version: Option<u64>,
    ids: Arc<Vec<Ident>>,
}

/// The deny check of one sandbox.
pub(crate) struct Denied {
    shared: Arc<Shared>,
    cache: Mutex<IdCache>,
}

impl std::fmt::Debug for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Denied").finish_non_exhaustive()
    }
}

impl Denied {
    /// The deny check reading `shared`'s live policy.
    pub(crate) fn new(shared: Arc<Shared>) -> Denied {
        Denied {
            shared,
            cache: Mutex::new(IdCache::default()),
        }
    }

    /// Whether any deny rule exists now (static or from the callback).
    pub(crate) fn any(&self) -> bool {
        self.shared.live.load().has_path_rules()
    }

    /// Whether the real path `real` is denied (rule 1). A path that is not
    /// absolute (a pipe's `pipe:[N]`) names no place in the tree: not
    /// denied by path.
    pub(crate) fn path_denied(&self, real: &[u8]) -> bool {
        real.starts_with(b"/") && self.shared.live.load().is_path_denied(strip_deleted(real))
    }

    /// Whether the file with identity `id` and real path `real` is denied
    /// (rules 1 and 2).
    pub(crate) fn denied(&self, id: Ident, real: &[u8]) -> bool {
        self.path_denied(real) || self.ids().contains(&id)
    }

    /// Whether the identity alone is denied (rule 2).
    pub(crate) fn id_denied(&self, id: Ident) -> bool {
        self.ids().contains(&id)
    }

    /// Whether moving or replacing `real` would move a denied tree: `real`
    /// is denied, or a deny rule lies below it.
    pub(crate) fn holds_denied(&self, real: &[u8]) -> bool {
        if !real.starts_with(b"/") {
            return false;
        }
        let real = strip_deleted(real);
        let snap = self.shared.live.load();
        snap.is_path_denied(real) || rules(&snap).any(|r| is_within(real, r.as_bytes()))
    }

    /// The identities of the current rules (recomputed when the live
    /// policy changed version).
    fn ids(&self) -> Arc<Vec<Ident>> {
        let snap = self.shared.live.load();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.version != Some(snap.version()) {
            let mut ids = Vec::new();
            for rule in rules(&snap) {
                for flags in [AtFlags::empty(), AtFlags::SYMLINK_NOFOLLOW] {
                    if let Ok(st) = rustix::fs::statat(CWD, rule, flags) {
                        let id = Ident::of(&st);
                        if !ids.contains(&id) {
                            ids.push(id);
                        }
                    }
                }
            }
            cache.ids = Arc::new(ids);
            cache.version = Some(snap.version());
        }
        cache.ids.clone()
    }
}

/// Every deny rule of `snap`, static then dynamic.
fn rules(snap: &LiveState) -> impl Iterator<Item = &str> + '_ {
    snap.static_denied()
        .iter()
        .chain(snap.dynamic_denied().iter())
}

/// `real` without the ` (deleted)` mark of an unlinked file.
fn strip_deleted(real: &[u8]) -> &[u8] {
    real.strip_suffix(b" (deleted)").unwrap_or(real)
}
