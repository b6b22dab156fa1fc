//! One version of the live policy, and the queries the supervisor makes on it.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::num::{NonZeroU16, NonZeroU32};

use crate::bytesize::ByteSize;
use crate::ipset::IpSet;
use crate::limit::Limit;
use crate::path::PathSet;

/// The hosts a sandbox may reach.
///
/// "No network flag" and "port rules only" are different states:
/// `Only(empty)` reaches nothing, `Any` reaches every host (on the allowed
/// ports, see [`PortAccess`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostAccess {
    /// Every host (the policy restricts ports only).
    Any,
    /// Only these addresses (possibly none).
    Only(IpSet),
}

impl HostAccess {
    /// No host at all.
    pub const NOTHING: HostAccess = HostAccess::Only(IpSet::new());

    /// Whether `ip` is reachable (IPv4-mapped judged as IPv4).
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match self {
            HostAccess::Any => true,
            HostAccess::Only(set) => set.contains(ip),
        }
    }

    /// Whether every host reachable here is reachable under `ceiling`.
    pub fn is_within(&self, ceiling: &HostAccess) -> bool {
        match (self, ceiling) {
            (_, HostAccess::Any) => true,
            (HostAccess::Any, HostAccess::Only(_)) => false,
            (HostAccess::Only(a), HostAccess::Only(c)) => a.is_subset(c),
        }
    }

    /// The hosts reachable here and in `set`.
    pub fn intersection(&self, set: &IpSet) -> HostAccess {
        match self {
            HostAccess::Any => HostAccess::Only(set.clone()),
            HostAccess::Only(s) => HostAccess::Only(s.intersection(set)),
        }
    }

    /// The hosts reachable here or in `set`.
    pub fn union(&self, set: &IpSet) -> HostAccess {
        match self {
            HostAccess::Any => HostAccess::Any,
            HostAccess::Only(s) => HostAccess::Only(s.union(set)),
        }
    }
}

/// The TCP ports a sandbox may use for one direction (connect or bind).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortAccess {
    /// Every port (the policy restricts hosts only).
    Any,
    /// Only these ports, ascending (possibly none).
    Only(Vec<NonZeroU16>),
}

impl PortAccess {
    /// Whether `port` is allowed (port 0 only under [`PortAccess::Any`]).
    #[inline]
    pub fn allows(&self, port: u16) -> bool {
        match self {
            PortAccess::Any => true,
            PortAccess::Only(ports) => ports.binary_search_by(|p| p.get().cmp(&port)).is_ok(),
        }
    }
}

/// The part of the live policy the callback may widen and narrow, bounded
/// by a ceiling of the same type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grants {
    hosts: HostAccess,
    max_memory: Limit<ByteSize>,
    max_processes: Limit<NonZeroU32>,
}

impl Grants {
    /// Grants of `hosts` and the two limits.
    pub fn new(
        hosts: HostAccess,
        max_memory: Limit<ByteSize>,
        max_processes: Limit<NonZeroU32>,
    ) -> Self {
        Grants {
            hosts,
            max_memory,
            max_processes,
        }
    }

    /// The reachable hosts.
    pub fn hosts(&self) -> &HostAccess {
        &self.hosts
    }

    /// The memory limit.
    pub fn max_memory(&self) -> Limit<ByteSize> {
        self.max_memory
    }

    /// The task limit.
    pub fn max_processes(&self) -> Limit<NonZeroU32> {
        self.max_processes
    }

    /// Whether these grants are no wider than `ceiling` in every field.
    pub fn is_within(&self, ceiling: &Grants) -> bool {
        self.hosts.is_within(&ceiling.hosts)
            && self.max_memory.is_within(&ceiling.max_memory)
            && self.max_processes.is_within(&ceiling.max_processes)
    }

    pub(crate) fn hosts_mut(&mut self) -> &mut HostAccess {
        &mut self.hosts
    }

    pub(crate) fn set_max_memory(&mut self, v: Limit<ByteSize>) {
        self.max_memory = v;
    }

    pub(crate) fn set_max_processes(&mut self, v: Limit<NonZeroU32>) {
        self.max_processes = v;
    }
}

/// A field of the live policy that the callback can grant and restrict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LiveField {
    /// The reachable hosts.
    Network,
    /// The memory limit.
    MaxMemory,
    /// The task limit.
    MaxProcesses,
}

impl fmt::Display for LiveField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LiveField::Network => "network",
            LiveField::MaxMemory => "max_memory",
            LiveField::MaxProcesses => "max_processes",
        })
    }
}

/// The parts of the live policy no callback can change, shared by every version.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Fixed {
    pub(crate) static_denied: PathSet,
    pub(crate) connect_ports: PortAccess,
    pub(crate) bind_ports: PortAccess,
}

/// One published version of the live policy: what the supervisor consults.
///
/// A version never changes once published; the callback's changes publish
/// a new one. All queries are cheap and do not allocate, except
/// [`is_path_denied`](Self::is_path_denied) on a path that is not already in
/// normal form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveState {
    pub(crate) version: u64,
    pub(crate) grants: Grants,
    pub(crate) restricted: [bool; 3],
    pub(crate) pid_overrides: BTreeMap<u32, IpSet>,
    pub(crate) dynamic_denied: PathSet,
    pub(crate) fixed: Arc<Fixed>,
}

impl LiveState {
    /// Counts published versions: 0 for the initial one, then one more per change.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The current grants (hosts and limits).
    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// The hosts reachable by every task (before per-PID overrides).
    pub fn hosts(&self) -> &HostAccess {
        &self.grants.hosts
    }

    /// The memory limit now.
    pub fn max_memory(&self) -> Limit<ByteSize> {
        self.grants.max_memory
    }

    /// The task limit now.
    pub fn max_processes(&self) -> Limit<NonZeroU32> {
        self.grants.max_processes
    }

    /// Whether `field` has been restricted (so no grant of it can succeed again).
    pub fn is_restricted(&self, field: LiveField) -> bool {
        self.restricted[field as usize]
    }

    /// Whether task `pid` may reach `ip`: it must be in the global set and,
    /// if `pid` has an override, in that too.
    ///
    /// An IPv4-mapped IPv6 address is judged as IPv4. The unspecified
    /// addresses `0.0.0.0` and `::` are judged as the loopback address of
    /// their family (`127.0.0.1`, `::1`), since that is where a connection to
    /// them lands.
    #[inline]
    pub fn is_ip_allowed(&self, pid: u32, ip: IpAddr) -> bool {
        let ip = judged(ip);
        if !self.grants.hosts.contains(ip) {
            return false;
        }
        if self.pid_overrides.is_empty() {
            return true;
        }
        match self.pid_overrides.get(&pid) {
            Some(set) => set.contains(ip),
            None => true,
        }
    }

    /// Whether task `pid` may send to or connect to `ip` on `port`: the host
    /// must pass [`is_ip_allowed`](Self::is_ip_allowed) and the port the
    /// connect port rules. With host rules only, every port passes; with
    /// port rules only, every host passes; with no network rule, nothing does.
    #[inline]
    pub fn is_connect_allowed(&self, pid: u32, ip: IpAddr, port: u16) -> bool {
        self.fixed.connect_ports.allows(port) && self.is_ip_allowed(pid, ip)
    }

    /// Whether a TCP bind to `port` is allowed (only ports listed in
    /// `net_bind`; none without it).
    #[inline]
    pub fn is_bind_allowed(&self, port: u16) -> bool {
        self.fixed.bind_ports.allows(port)
    }

    /// The connect port rules.
    pub fn connect_ports(&self) -> &PortAccess {
        &self.fixed.connect_ports
    }

    /// The bind port rules.
    pub fn bind_ports(&self) -> &PortAccess {
        &self.fixed.bind_ports
    }

    /// The per-PID override of `pid`, if any.
    pub fn pid_override(&self, pid: u32) -> Option<&IpSet> {
        self.pid_overrides.get(&pid)
    }

    /// Every per-PID override.
    pub fn pid_overrides(&self) -> impl Iterator<Item = (u32, &IpSet)> + '_ {
        self.pid_overrides.iter().map(|(&p, s)| (p, s))
    }

    /// Whether `path` is denied, by the static `fs_denied` list or by a
    /// `deny_path` of the callback.
    ///
    /// Paths are compared by whole components after lexical normalisation
    /// (`/etc` denies `/etc` and `/etc/passwd`, not `/etcetera`;
    /// `/a/./b/../c` is `/a/c`). A relative path cannot be judged: it is
    /// denied whenever any deny rule exists, so the supervisor must pass
    /// resolved absolute paths.
    #[inline]
    pub fn is_path_denied(&self, path: impl AsRef<[u8]>) -> bool {
        let path = path.as_ref();
        self.fixed.static_denied.covers(path) || self.dynamic_denied.covers(path)
    }

    /// Whether any deny rule exists (static or dynamic), so path-taking
    /// syscalls need to be checked at all.
    pub fn has_path_rules(&self) -> bool {
        !self.fixed.static_denied.is_empty() || !self.dynamic_denied.is_empty()
    }

    /// The static deny rules (normalised `fs_denied`).
    pub fn static_denied(&self) -> &PathSet {
        &self.fixed.static_denied
    }

    /// The callback's deny rules.
    pub fn dynamic_denied(&self) -> &PathSet {
        &self.dynamic_denied
    }
}

/// The address a destination is judged as (see [`LiveState::is_ip_allowed`]).
#[inline]
fn judged(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}
