//! The policy callback's handle on the live policy.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::num::NonZeroU32;

use super::LivePolicy;
use super::state::{Grants, HostAccess, LiveField, LiveState};
use crate::bytesize::ByteSize;
use crate::error::ParseError;
use crate::ipset::IpSet;
use crate::limit::Limit;
use crate::net::Cidr;
use crate::path::AbsPath;

/// Why a [`PolicyContext`] call was refused. A refused call changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// A grant of a field that was restricted earlier.
    #[error("cannot grant {field}: it was restricted earlier, and a restriction is permanent")]
    Restricted {
        /// The field.
        field: LiveField,
    },
    /// A grant wider than the ceiling (the static policy).
    #[error(
        "cannot grant {field} {value}: it is outside the ceiling set by the static policy ({ceiling})"
    )]
    AboveCeiling {
        /// The field.
        field: LiveField,
        /// The refused value (for the network, the first address or network outside).
        value: String,
        /// The ceiling of the field.
        ceiling: String,
    },
    /// A path argument that is not an absolute path.
    #[error("{op}: {source}")]
    InvalidPath {
        /// The method (`deny_path` or `allow_path`).
        op: &'static str,
        /// What is wrong with the path.
        source: ParseError,
    },
    /// `allow_path` on a path that would still be denied by a rule it may not lift.
    #[error(
        "allow_path: {path:?} stays denied by {} rule {rule:?}; allow_path lifts only deny_path rules at or below the path",
        if *static_rule { "the static fs_denied" } else { "the deny_path" }
    )]
    StillDenied {
        /// The path given.
        path: String,
        /// The rule that still covers it.
        rule: String,
        /// Whether the rule is from the static policy (else a `deny_path` on a parent).
        static_rule: bool,
    },
}

/// The callback's handle on the live policy.
///
/// Every change is checked against the ceiling, applied to a copy of the
/// current version and published before the method returns, so the
/// supervisor's very next read sees it. The rules:
///
/// - a **grant** widens a field up to the ceiling and never narrows it
///   (`grant_network` adds addresses, `grant_max_*` raises to the value); it
///   fails if the value is outside the ceiling or the field was restricted;
/// - a **restrict** narrows a field (`restrict_network` intersects,
///   `restrict_max_*` takes the minimum) and never fails; it is permanent —
///   every later grant of that field fails;
/// - a **per-PID override** narrows one task's hosts further; a task is
///   allowed an address only if both its override and the global set allow it;
/// - **`deny_path`** closes a path and everything below it; **`allow_path`**
///   lifts `deny_path` rules at or below a path, never a static `fs_denied`
///   rule.
#[derive(Clone, Debug)]
pub struct PolicyContext {
    live: LivePolicy,
}

impl PolicyContext {
    /// A context on `live`.
    pub fn new(live: &LivePolicy) -> Self {
        PolicyContext { live: live.clone() }
    }

    /// The live policy now (an owned version; later changes publish new ones).
    pub fn current(&self) -> Arc<LiveState> {
        self.live.load_full()
    }

    /// The ceiling: the static policy's grants.
    pub fn ceiling(&self) -> &Grants {
        self.live.ceiling()
    }

    /// Adds `ips` (addresses or networks) to the hosts every task may reach.
    /// Fails, changing nothing, if the network was restricted or an entry
    /// is outside the ceiling.
    pub fn grant_network<C: Into<Cidr>>(
        &mut self,
        ips: impl IntoIterator<Item = C>,
    ) -> Result<(), ContextError> {
        let nets: Vec<Cidr> = ips.into_iter().map(Into::into).collect();
        let add: IpSet = nets.iter().copied().collect();
        self.live.update(|s, ceiling| {
            if s.is_restricted(LiveField::Network) {
                return Err(ContextError::Restricted {
                    field: LiveField::Network,
                });
            }
            if let HostAccess::Only(c) = ceiling.hosts()
                && let Some(out) = nets.iter().find(|n| !IpSet::from_iter([**n]).is_subset(c))
            {
                return Err(ContextError::AboveCeiling {
                    field: LiveField::Network,
                    value: out.to_string(),
                    ceiling: alloc::format!("{c:?}"),
                });
            }
            let widened = s.grants.hosts().union(&add);
            *s.grants.hosts_mut() = widened;
            Ok(())
        })
    }

    /// Raises the memory limit to `limit` (no change if it is already
    /// higher). Fails if memory was restricted or `limit` is above the ceiling.
    pub fn grant_max_memory(
        &mut self,
        limit: impl Into<Limit<ByteSize>>,
    ) -> Result<(), ContextError> {
        let limit = limit.into();
        self.live.update(|s, ceiling| {
            check_grant(s, LiveField::MaxMemory, &limit, &ceiling.max_memory())?;
            let v = s.grants.max_memory().max(limit);
            s.grants.set_max_memory(v);
            Ok(())
        })
    }

    /// Raises the task limit to `limit` (no change if it is already
    /// higher). Fails if it was restricted or `limit` is above the ceiling.
    pub fn grant_max_processes(
        &mut self,
        limit: impl Into<Limit<NonZeroU32>>,
    ) -> Result<(), ContextError> {
        let limit = limit.into();
        self.live.update(|s, ceiling| {
            check_grant(s, LiveField::MaxProcesses, &limit, &ceiling.max_processes())?;
            let v = s.grants.max_processes().max(limit);
            s.grants.set_max_processes(v);
            Ok(())
        })
    }

    /// Narrows the hosts every task may reach to those also in `ips`, for good.
    pub fn restrict_network<C: Into<Cidr>>(&mut self, ips: impl IntoIterator<Item = C>) {
        let keep: IpSet = ips.into_iter().collect();
        self.publish(|s| {
            let narrowed = s.grants.hosts().intersection(&keep);
            *s.grants.hosts_mut() = narrowed;
            s.restricted[LiveField::Network as usize] = true;
        });
    }

    /// Lowers the memory limit to `limit` (no change if it is already lower), for good.
    pub fn restrict_max_memory(&mut self, limit: impl Into<Limit<ByteSize>>) {
        let limit = limit.into();
        self.publish(|s| {
            let v = s.grants.max_memory().min(limit);
            s.grants.set_max_memory(v);
            s.restricted[LiveField::MaxMemory as usize] = true;
        });
    }

    /// Lowers the task limit to `limit` (no change if it is already lower), for good.
    pub fn restrict_max_processes(&mut self, limit: impl Into<Limit<NonZeroU32>>) {
        let limit = limit.into();
        self.publish(|s| {
            let v = s.grants.max_processes().min(limit);
            s.grants.set_max_processes(v);
            s.restricted[LiveField::MaxProcesses as usize] = true;
        });
    }

    /// Narrows the hosts task `pid` may reach to those also in `ips` (and
    /// in its earlier override, if any). The global set still applies on
    /// top: a task reaches an address only if both allow it.
    pub fn restrict_pid_network<C: Into<Cidr>>(
        &mut self,
        pid: u32,
        ips: impl IntoIterator<Item = C>,
    ) {
        let keep: IpSet = ips.into_iter().collect();
        self.publish(|s| {
            let base = match s.pid_overrides.get(&pid) {
                Some(old) => old.intersection(&keep),
                None => keep,
            };
            let narrowed = match s.grants.hosts() {
                HostAccess::Any => base,
                HostAccess::Only(global) => base.intersection(global),
            };
            s.pid_overrides.insert(pid, narrowed);
        });
    }

    /// Removes task `pid`'s override: it is judged by the global set alone again.
    pub fn clear_pid_override(&mut self, pid: u32) {
        self.publish(|s| {
            s.pid_overrides.remove(&pid);
        });
    }

    /// Denies `path` and everything below it (absolute; normalised).
    pub fn deny_path(&mut self, path: impl AsRef<str>) -> Result<(), ContextError> {
        let path = checked_path("deny_path", path.as_ref())?;
        self.live.update(|s, _| {
            s.dynamic_denied.insert(&path);
            Ok(())
        })
    }

    /// Lifts every `deny_path` rule at or below `path`. Fails, changing
    /// nothing, if `path` would stay denied: by a static `fs_denied` rule,
    /// or by a `deny_path` rule on a parent of it.
    pub fn allow_path(&mut self, path: impl AsRef<str>) -> Result<(), ContextError> {
        let path = checked_path("allow_path", path.as_ref())?;
        self.live.update(|s, _| {
            let mut dynamic = s.dynamic_denied.clone();
            dynamic.remove_under(&path);
            let text = path.as_str();
            let still = match s.fixed.static_denied.covering(text) {
                Some(rule) => Some((rule.to_string(), true)),
                None => dynamic.covering(text).map(|r| (r.to_string(), false)),
            };
            if let Some((rule, static_rule)) = still {
                return Err(ContextError::StillDenied {
                    path: text.to_string(),
                    rule,
                    static_rule,
                });
            }
            s.dynamic_denied = dynamic;
            Ok(())
        })
    }

    /// Publishes an infallible change.
    fn publish(&mut self, change: impl FnOnce(&mut LiveState)) {
        let r: Result<(), ContextError> = self.live.update(|s, _| {
            change(s);
            Ok(())
        });
        debug_assert!(r.is_ok());
    }
}

/// Refuses a grant of a restricted field, or of a value above the ceiling.
fn check_grant<T: Ord + Copy + core::fmt::Display>(
    s: &LiveState,
    field: LiveField,
    value: &Limit<T>,
    ceiling: &Limit<T>,
) -> Result<(), ContextError> {
    if s.is_restricted(field) {
        return Err(ContextError::Restricted { field });
    }
    if !value.is_within(ceiling) {
        return Err(ContextError::AboveCeiling {
            field,
            value: value.to_string(),
            ceiling: ceiling.to_string(),
        });
    }
    Ok(())
}

/// Validates a path argument.
fn checked_path(op: &'static str, path: &str) -> Result<AbsPath, ContextError> {
    AbsPath::new(path).map_err(|source| ContextError::InvalidPath { op, source })
}
