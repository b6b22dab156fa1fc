//! sandlock's policy model: what a sandbox may do.
//!
//! - [`Policy`] and [`PolicyBuilder`]: the static policy, validated on the
//!   way in, so a bad value is an error naming its field and the value.
//! - Value types that cannot be misread: [`Limit`] (unlimited or a positive
//!   amount), [`ByteSize`], [`CpuPercent`], [`AbsPath`], [`NetHost`] /
//!   [`Cidr`] / [`IpSet`], [`CpuSet`], [`Timestamp`], [`Hostname`], [`EnvVar`].
//! - [`SyscallEvent`] and [`Verdict`]: what the supervisor saw, and the
//!   policy callback's answer.
//! - With the `std` feature: [`LivePolicy`], the policy the supervisor reads
//!   on every intercepted syscall without a lock, and [`PolicyContext`],
//!   through which the policy callback narrows or widens it within its
//!   ceiling; TOML profiles ([`Policy::from_toml`], [`Policy::to_toml`]).
//!
//! The crate runs no syscalls. Its core is `#![no_std]` with `alloc`: paths
//! are kept as UTF-8 `String`s ([`AbsPath`]), and the policy callback
//! ([`PolicyFn`]) exists only with `std`, because its context drives the
//! `std`-only live policy.
//!
//! See `docs/policy.md` for a guide with a builder and a TOML example.
#![no_std]
// The crate docs link to `std`-only items, which do not exist without it.
#![cfg_attr(not(feature = "std"), allow(rustdoc::broken_intra_doc_links))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod arg;
pub mod builder;
pub mod bytesize;
pub mod cpuset;
pub mod error;
pub mod event;
pub mod ipset;
pub mod limit;
#[cfg(feature = "std")]
pub mod live;
pub mod names;
pub mod net;
pub mod path;
pub mod policy;
#[cfg(feature = "std")]
pub mod profile;
pub mod time;
pub mod verdict;

pub use arg::Arg;
pub use builder::PolicyBuilder;
pub use bytesize::ByteSize;
pub use cpuset::CpuSet;
pub use error::{ParseError, PolicyError, Reason};
pub use event::{CategorySet, SyscallCategory, SyscallEvent};
pub use ipset::IpSet;
pub use limit::{Amount, CpuPercent, Limit};
#[cfg(feature = "std")]
pub use live::{
    ContextError, Grants, HostAccess, LiveError, LiveField, LivePolicy, LiveReader, LiveState,
    PolicyContext, PortAccess, Snapshot,
};
pub use names::{EnvVar, Hostname};
pub use net::{Cidr, DnsName, NetHost};
pub use path::AbsPath;
#[cfg(feature = "std")]
pub use policy::PolicyFn;
pub use policy::{Compat, DEFAULT_CALLBACK_TIMEOUT, Policy};
#[cfg(feature = "std")]
pub use profile::ProfileError;
pub use time::Timestamp;
pub use verdict::Verdict;

/// The examples of `docs/policy.md`, compiled and run as doctests.
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../../../docs/policy.md")]
struct PolicyGuide;
