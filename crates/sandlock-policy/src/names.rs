//! Small validated strings: the sandbox's host name and environment variables.

use alloc::string::String;
use core::fmt;
use core::str::FromStr;

use crate::error::{ParseError, Reason};

/// A host name for the sandbox's UTS namespace view: 1..=64 bytes (the
/// kernel's `__NEW_UTS_LEN`), no NUL and no `/` (it also names
/// `/etc/hostname`'s content and must not look like a path).
///
/// ```
/// use sandlock_policy::Hostname;
/// assert!("sandbox".parse::<Hostname>().is_ok());
/// assert!("".parse::<Hostname>().is_err());
/// assert!("a/b".parse::<Hostname>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hostname(String);

impl Hostname {
    /// The longest host name the kernel stores, in bytes.
    pub const MAX_LEN: usize = 64;

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Hostname {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let reason = if s.is_empty() {
            Some(Reason::Empty)
        } else if s.len() > Hostname::MAX_LEN {
            Some(Reason::TooLong {
                max: Hostname::MAX_LEN,
            })
        } else if s.contains('\0') {
            Some(Reason::ContainsNul)
        } else if s.contains('/') {
            Some(Reason::InvalidChar('/'))
        } else {
            None
        };
        match reason {
            Some(r) => Err(ParseError::new(s, r)),
            None => Ok(Hostname(String::from(s))),
        }
    }
}

/// One environment variable for the sandboxed command: a non-empty key
/// without `=`, and a value; neither may hold a NUL byte (`execve` could not
/// pass it).
///
/// Parsed from `KEY=VALUE` (split at the first `=`; the value may contain
/// more `=` and may be empty).
///
/// ```
/// use sandlock_policy::EnvVar;
/// let v: EnvVar = "A=b=c".parse().unwrap();
/// assert_eq!((v.key(), v.value()), ("A", "b=c"));
/// assert!("=x".parse::<EnvVar>().is_err());
/// assert!("NOVALUE".parse::<EnvVar>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EnvVar {
    key: String,
    value: String,
}

impl EnvVar {
    /// A variable `key=value`, validated.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Result<EnvVar, ParseError> {
        let (key, value) = (key.into(), value.into());
        let shown = || alloc::format!("{key}={value}");
        let reason = if key.is_empty() {
            Some(Reason::Empty)
        } else if key.contains('=') {
            Some(Reason::InvalidChar('='))
        } else if key.contains('\0') || value.contains('\0') {
            Some(Reason::ContainsNul)
        } else {
            None
        };
        match reason {
            Some(r) => Err(ParseError::new(shown(), r)),
            None => Ok(EnvVar { key, value }),
        }
    }

    /// The name.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for EnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

impl FromStr for EnvVar {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.split_once('=') {
            Some((k, v)) => EnvVar::new(k, v).map_err(|e| ParseError::new(s, e.reason)),
            None => Err(ParseError::new(s, Reason::Syntax("KEY=VALUE"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn hostname() {
        assert_eq!(
            "x".repeat(64).parse::<Hostname>().map(|h| h.as_str().len()),
            Ok(64)
        );
        assert_eq!(
            "x".repeat(65).parse::<Hostname>().unwrap_err().reason,
            Reason::TooLong { max: 64 }
        );
        assert_eq!(
            "a\0b".parse::<Hostname>().unwrap_err().reason,
            Reason::ContainsNul
        );
        assert_eq!(
            "a/b".parse::<Hostname>().unwrap_err().reason,
            Reason::InvalidChar('/')
        );
        assert_eq!("".parse::<Hostname>().unwrap_err().reason, Reason::Empty);
    }

    #[test]
    fn env_var() {
        let v: EnvVar = "EMPTY=".parse().unwrap();
        assert_eq!(v.value(), "");
        assert_eq!(v.to_string(), "EMPTY=");
        assert_eq!("=v".parse::<EnvVar>().unwrap_err().reason, Reason::Empty);
        assert_eq!(
            EnvVar::new("A=B", "c").unwrap_err().reason,
            Reason::InvalidChar('=')
        );
        assert_eq!(
            EnvVar::new("A", "c\0").unwrap_err().reason,
            Reason::ContainsNul
        );
        assert_eq!("NOPE".parse::<EnvVar>().unwrap_err().value, "NOPE");
    }
}
