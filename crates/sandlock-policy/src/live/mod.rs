//! The live policy: read lock-free by the supervisor, changed by the callback.
//!
//! A [`LivePolicy`] holds the current [`LiveState`] behind an
//! [`arc_swap::ArcSwap`]. The supervisor's read is one atomic snapshot load:
//! no lock, no allocation, and it never waits for a writer. Its dedicated
//! thread uses a [`LiveReader`], which keeps the version it last saw and
//! checks it with a single atomic pointer load per read; other threads use
//! [`LivePolicy::load`], a short-lived snapshot guard.
//!
//! A writer (the callback, through [`PolicyContext`]) copies the
//! current version, changes the copy and publishes it whole, so a reader
//! sees either the old or the new version, never a mix. Writers are
//! serialised by a mutex that readers never touch; a change is published
//! before the context method returns, so the very next read sees it.
//!
//! The ceiling is the static policy's grants: nothing the callback does can
//! make the live policy wider than the [`Policy`] it was built from.

mod context;
mod state;

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;
use core::ops::Deref;
use std::sync::{Mutex, MutexGuard};

use arc_swap::cache::Cache;
use arc_swap::{ArcSwap, Guard};

use crate::ipset::IpSet;
use crate::net::NetHost;
use crate::path::PathSet;
use crate::policy::Policy;

pub use context::{ContextError, PolicyContext};
use state::Fixed;
pub use state::{Grants, HostAccess, LiveField, LiveState, PortAccess};

/// Why a [`LivePolicy`] could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The policy names a host that must be resolved first.
    #[error("net_allow_hosts: {host:?} is a host name; build the live policy with a resolver")]
    Unresolved {
        /// The host name.
        host: String,
    },
    /// The resolver failed for a host name.
    #[error("net_allow_hosts: {host:?} could not be resolved: {reason}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's message.
        reason: String,
    },
    /// The resolver found no address for a host name.
    #[error("net_allow_hosts: {host:?} resolved to no address")]
    NoAddresses {
        /// The host name.
        host: String,
    },
    /// A starting state that is wider than the ceiling.
    #[error("the starting grants are wider than the ceiling (the static policy)")]
    StartAboveCeiling,
    /// [`LivePolicy::with_start`] after the live policy was already changed.
    #[error("the live policy was already changed; the start can only be set first")]
    AlreadyChanged,
}

/// The live policy of one sandbox: a cheap handle, `Clone` to share it
/// between the supervisor and the callback thread.
///
/// ```
/// use sandlock_policy::{LivePolicy, Policy};
/// let policy = Policy::builder().net_allow_host("10.0.0.0/24").build()?;
/// let live = LivePolicy::new(&policy)?;
///
/// // The supervisor: one atomic load, then cheap queries.
/// let mut reader = live.reader();
/// let ip = "10.0.0.7".parse()?;
/// assert!(reader.load().is_ip_allowed(1234, ip));
///
/// // The callback narrows the policy; the next read sees it.
/// let mut ctx = live.context();
/// ctx.restrict_network(["10.0.0.1".parse::<std::net::IpAddr>()?]);
/// assert!(!reader.load().is_ip_allowed(1234, ip));
/// assert!(!live.load().is_ip_allowed(1234, ip));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct LivePolicy {
    shared: Arc<Shared>,
}

/// What the handles share.
struct Shared {
    current: ArcSwap<LiveState>,
    ceiling: Grants,
    /// Serialises writers (read-modify-publish); readers never take it.
    /// It also holds the last few replaced versions, so that the memory of
    /// an old version is freed by a writer, not by the supervisor's reader
    /// dropping the last reference to it.
    writer: Mutex<Retired>,
}

/// One loaded version of the live policy; dereferences to [`LiveState`].
///
/// Hold it only for the decision at hand: a snapshot keeps its version
/// alive, and the number of snapshots a thread can hold cheaply is small.
pub struct Snapshot(Guard<Arc<LiveState>>);

impl Deref for Snapshot {
    type Target = LiveState;
    #[inline]
    fn deref(&self) -> &LiveState {
        &self.0
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self.0, f)
    }
}

/// The supervisor's reader: a cached view of the live policy.
///
/// [`load`](LiveReader::load) costs one relaxed atomic load of the current
/// version's pointer and a comparison; only when a new version was published
/// since the last read does it take a reference to the new one. It never
/// locks and never waits for a writer. A change published before the read
/// (in the happens-before sense: the callback published it, then handed its
/// verdict to the supervisor through a channel) is always seen.
///
/// The reader keeps the version it last saw alive until its next `load`.
pub struct LiveReader {
    cache: Cache<CurrentOf, Arc<LiveState>>,
}

/// Dereferences a shared handle to its `ArcSwap`, for [`Cache`].
struct CurrentOf(Arc<Shared>);

impl Deref for CurrentOf {
    type Target = ArcSwap<LiveState>;
    fn deref(&self) -> &ArcSwap<LiveState> {
        &self.0.current
    }
}

impl LiveReader {
    /// The current version.
    #[inline]
    pub fn load(&mut self) -> &LiveState {
        self.cache.load()
    }
}

impl fmt::Debug for LiveReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveReader").finish_non_exhaustive()
    }
}

impl LivePolicy {
    /// The live policy of `policy`, starting at its ceiling. Fails if the
    /// policy names hosts by name: use [`with_resolver`](Self::with_resolver).
    pub fn new(policy: &Policy) -> Result<LivePolicy, LiveError> {
        Self::with_resolver(policy, |name| {
            Err::<Vec<IpAddr>, _>(LiveError::Unresolved {
                host: name.to_string(),
            })
        })
        .map_err(|e| match e {
            LiveError::Resolve { host, .. } => LiveError::Unresolved { host },
            other => other,
        })
    }

    /// The live policy of `policy`, with each host name in
    /// `net_allow_hosts` replaced by the addresses `resolve` returns for it.
    /// The crate itself never resolves names (it runs no syscalls); the
    /// caller passes e.g. `std::net::ToSocketAddrs` lookups.
    pub fn with_resolver<F, E>(policy: &Policy, mut resolve: F) -> Result<LivePolicy, LiveError>
    where
        F: FnMut(&str) -> Result<Vec<IpAddr>, E>,
        E: fmt::Display,
    {
        let hosts = if policy.net_allow_hosts().is_empty() {
            if policy.net_connect().is_empty() {
                HostAccess::NOTHING
            } else {
                HostAccess::Any
            }
        } else {
            let mut set = IpSet::new();
            for h in policy.net_allow_hosts() {
                match h {
                    NetHost::Name(n) => {
                        let addrs = resolve(n.as_str()).map_err(|e| LiveError::Resolve {
                            host: n.to_string(),
                            reason: e.to_string(),
                        })?;
                        if addrs.is_empty() {
                            return Err(LiveError::NoAddresses {
                                host: n.to_string(),
                            });
                        }
                        set.extend(addrs);
                    }
                    NetHost::Ip(ip) => set.insert(*ip),
                    NetHost::Net(c) => set.insert(*c),
                }
            }
            HostAccess::Only(set)
        };
        let ports = |list: &[core::num::NonZeroU16], any: bool| {
            if list.is_empty() && any {
                PortAccess::Any
            } else {
                PortAccess::Only(list.to_vec())
            }
        };
        let mut static_denied = PathSet::new();
        for p in policy.fs_denied() {
            static_denied.insert(p);
        }
        let fixed = Fixed {
            static_denied,
            connect_ports: ports(policy.net_connect(), !policy.net_allow_hosts().is_empty()),
            bind_ports: ports(policy.net_bind(), false),
        };
        let ceiling = Grants::new(hosts, policy.max_memory(), policy.max_processes());
        let state = LiveState {
            version: 0,
            grants: ceiling.clone(),
            restricted: [false; 3],
            pid_overrides: Default::default(),
            dynamic_denied: PathSet::new(),
            fixed: Arc::new(fixed),
        };
        Ok(LivePolicy {
            shared: Arc::new(Shared {
                current: ArcSwap::from_pointee(state),
                ceiling,
                writer: Mutex::new(Retired::default()),
            }),
        })
    }

    /// Starts the live policy narrower than its ceiling, so the callback
    /// can grant up to the ceiling later (for example: no host until the
    /// callback approves one). Only before any change.
    pub fn with_start(self, start: Grants) -> Result<LivePolicy, LiveError> {
        if !start.is_within(&self.shared.ceiling) {
            return Err(LiveError::StartAboveCeiling);
        }
        {
            let _w = self.lock_writer();
            let cur = self.shared.current.load_full();
            if cur.version != 0 {
                return Err(LiveError::AlreadyChanged);
            }
            let mut next = LiveState::clone(&cur);
            next.grants = start;
            self.shared.current.store(Arc::new(next));
        }
        Ok(self)
    }

    /// A cached reader for the supervisor's thread (see [`LiveReader`]).
    pub fn reader(&self) -> LiveReader {
        LiveReader {
            cache: Cache::new(CurrentOf(self.shared.clone())),
        }
    }

    /// The current version: one atomic load, no lock, no allocation.
    #[inline]
    pub fn load(&self) -> Snapshot {
        Snapshot(self.shared.current.load())
    }

    /// The current version as an owned `Arc`, to keep beyond one decision.
    pub fn load_full(&self) -> Arc<LiveState> {
        self.shared.current.load_full()
    }

    /// The ceiling: the static policy's grants.
    pub fn ceiling(&self) -> &Grants {
        &self.shared.ceiling
    }

    /// A context through which the callback changes this live policy.
    pub fn context(&self) -> PolicyContext {
        PolicyContext::new(self)
    }

    /// Takes the writer lock; a panic in an earlier writer cannot have left
    /// a half-made version (versions are published whole), so poisoning is
    /// ignored.
    fn lock_writer(&self) -> MutexGuard<'_, Retired> {
        self.shared
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Copies the current version, applies `change`, and publishes the copy
    /// (with the next version number) if `change` succeeds.
    pub(crate) fn update<R>(
        &self,
        change: impl FnOnce(&mut LiveState, &Grants) -> Result<R, ContextError>,
    ) -> Result<R, ContextError> {
        let mut retired = self.lock_writer();
        let cur = self.shared.current.load_full();
        let mut next = LiveState::clone(&cur);
        let r = change(&mut next, &self.shared.ceiling)?;
        next.version = cur.version.wrapping_add(1);
        debug_assert!(next.grants.is_within(&self.shared.ceiling));
        self.shared.current.store(Arc::new(next));
        retired.keep(cur);
        Ok(r)
    }
}

/// The most recently replaced versions, kept alive by the writers.
#[derive(Default)]
struct Retired {
    versions: [Option<Arc<LiveState>>; Retired::KEPT],
    next: usize,
}

impl Retired {
    /// How many replaced versions are kept: a reader that moves on within
    /// this many publications never drops the last reference to an old one.
    const KEPT: usize = 4;

    /// Keeps `old`, dropping (on this writer's thread) the oldest kept one.
    fn keep(&mut self, old: Arc<LiveState>) {
        self.versions[self.next] = Some(old);
        self.next = (self.next + 1) % Self::KEPT;
    }
}

impl fmt::Debug for LivePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LivePolicy")
            .field("ceiling", &self.shared.ceiling)
            .field("current", &self.load())
            .finish()
    }
}

#[cfg(test)]
mod tests;
