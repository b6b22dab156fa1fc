//! Errors for invalid policy values.
//!
//! Every error names the value that was refused, and [`PolicyError`] also names
//! the field it was given for, so a user reading one line knows what to fix.

use alloc::string::String;
use core::fmt;

use sandlock_bpf::Arch;

/// Why a value was refused, phrased so that it reads after the value:
/// `"usr/lib" is not an absolute path`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// A path that does not start with `/`.
    NotAbsolute,
    /// A NUL byte, which no path, name or environment string can carry to the kernel.
    ContainsNul,
    /// Bytes that are not UTF-8 where text is required.
    NotUtf8,
    /// An empty string where a value is required.
    Empty,
    /// Longer than the kernel (or the format) accepts.
    TooLong {
        /// The largest accepted length in bytes.
        max: usize,
    },
    /// Zero where only a positive amount makes sense.
    Zero,
    /// A number outside the accepted range.
    OutOfRange {
        /// The smallest accepted value.
        min: u64,
        /// The largest accepted value.
        max: u64,
    },
    /// A number too large to represent.
    Overflow,
    /// A character that is not allowed here.
    InvalidChar(char),
    /// Text that does not have the expected shape; the string says what was expected.
    Syntax(&'static str),
    /// A syscall name that is not in the table of the architecture checked.
    UnknownSyscall {
        /// The architecture whose table was consulted (`None`: no supported
        /// architecture is native, every known table was consulted).
        arch: Option<Arch>,
    },
    /// A CIDR network whose address has bits set below the prefix length.
    HostBitsSet {
        /// The prefix length given.
        prefix: u8,
    },
    /// `num_cpus` asks for more CPUs than `cpu_cores` lists.
    MoreCpusThanCores {
        /// How many cores `cpu_cores` lists.
        cores: usize,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NotAbsolute => f.write_str("is not an absolute path"),
            Reason::ContainsNul => f.write_str("contains a NUL byte"),
            Reason::NotUtf8 => f.write_str("is not valid UTF-8"),
            Reason::Empty => f.write_str("is empty"),
            Reason::TooLong { max } => write!(f, "is longer than {max} bytes"),
            Reason::Zero => f.write_str("must not be 0 (leave the field unset for no limit)"),
            Reason::OutOfRange { min, max } => write!(f, "is outside the range {min}..={max}"),
            Reason::Overflow => f.write_str("is too large"),
            Reason::InvalidChar(c) => {
                write!(f, "contains the character {c:?}, which is not allowed")
            }
            Reason::Syntax(expected) => write!(f, "is not {expected}"),
            Reason::UnknownSyscall { arch: Some(a) } => write!(f, "is not a syscall on {a}"),
            Reason::UnknownSyscall { arch: None } => f.write_str("is not a known syscall"),
            Reason::HostBitsSet { prefix } => {
                write!(f, "has address bits set after its /{prefix} prefix")
            }
            Reason::MoreCpusThanCores { cores } => {
                write!(f, "is more than the {cores} core(s) listed in cpu_cores")
            }
        }
    }
}

/// A value that could not be parsed or validated, on its own (no field).
///
/// Returned by the `FromStr` impls of this crate's value types
/// ([`ByteSize`](crate::ByteSize), [`Cidr`](crate::Cidr),
/// [`Timestamp`](crate::Timestamp), ...).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} {reason}")]
pub struct ParseError {
    /// The refused value, as given (lossily decoded if it was not UTF-8).
    pub value: String,
    /// Why it was refused.
    pub reason: Reason,
}

impl ParseError {
    /// An error for `value` with `reason`.
    pub fn new(value: impl Into<String>, reason: Reason) -> Self {
        ParseError {
            value: value.into(),
            reason,
        }
    }

    /// The same error attributed to a policy field.
    pub fn in_field(self, field: &'static str) -> PolicyError {
        PolicyError::Invalid {
            field,
            value: self.value,
            reason: self.reason,
        }
    }
}

/// Why [`PolicyBuilder::build`](crate::PolicyBuilder::build) refused a policy.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// One field was given an invalid value.
    #[error("{field}: {value:?} {reason}")]
    Invalid {
        /// The policy field (the TOML key and builder method share its name).
        field: &'static str,
        /// The refused value, as given.
        value: String,
        /// Why it was refused.
        reason: Reason,
    },
    /// Two settings that exclude each other were both given.
    #[error("conflicting modes: {first} and {second} cannot both be set ({why})")]
    Conflict {
        /// The first field.
        first: &'static str,
        /// The second field.
        second: &'static str,
        /// Why they exclude each other.
        why: &'static str,
    },
}

impl PolicyError {
    /// The field the error is about (the first one, for a conflict).
    pub fn field(&self) -> &'static str {
        match self {
            PolicyError::Invalid { field, .. } => field,
            PolicyError::Conflict { first, .. } => first,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn messages_name_field_and_value() {
        let e = ParseError::new("usr", Reason::NotAbsolute).in_field("fs_readable");
        assert_eq!(
            e.to_string(),
            r#"fs_readable: "usr" is not an absolute path"#
        );
        assert_eq!(e.field(), "fs_readable");
        let e = ParseError::new("0", Reason::Zero);
        assert!(e.to_string().starts_with(r#""0" must not be 0"#));
    }
}
