//! An errno value that a seccomp filter or a supervisor can return.

use core::fmt;
use core::num::NonZeroU16;

/// The largest errno the kernel accepts in `SECCOMP_RET_ERRNO` data
/// (`MAX_ERRNO` in `<linux/err.h>`).
pub const MAX_ERRNO: u16 = 4095;

/// An error number in `1..=4095`.
///
/// `0` would make a "denied" syscall look successful and values above 4095
/// are not errors to the kernel, so neither can be represented.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Errno(NonZeroU16);

/// The value given to [`Errno::new`] was not in `1..=4095`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("errno {0} is out of range: an errno must be in 1..=4095")]
pub struct ErrnoError(pub i64);

macro_rules! errnos {
    ($($(#[$doc:meta])* $name:ident = $val:expr;)*) => {
        impl Errno {
            $($(#[$doc])* pub const $name: Errno = Errno::from_const($val);)*

            /// The symbolic name (`"EPERM"`) of well-known values.
            pub const fn name(self) -> Option<&'static str> {
                match self.0.get() {
                    $($val => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

errnos! {
    /// Operation not permitted.
    EPERM = 1;
    /// No such file or directory.
    ENOENT = 2;
    /// No such process.
    ESRCH = 3;
    /// Interrupted system call.
    EINTR = 4;
    /// Input/output error.
    EIO = 5;
    /// Argument list too long.
    E2BIG = 7;
    /// Bad file descriptor.
    EBADF = 9;
    /// Resource temporarily unavailable (also the fork-limit answer).
    EAGAIN = 11;
    /// Cannot allocate memory.
    ENOMEM = 12;
    /// Permission denied.
    EACCES = 13;
    /// Bad address.
    EFAULT = 14;
    /// File exists.
    EEXIST = 17;
    /// Not a directory.
    ENOTDIR = 20;
    /// Is a directory.
    EISDIR = 21;
    /// Invalid argument.
    EINVAL = 22;
    /// Too many open files.
    EMFILE = 24;
    /// Inappropriate ioctl for device.
    ENOTTY = 25;
    /// Read-only file system.
    EROFS = 30;
    /// File name too long.
    ENAMETOOLONG = 36;
    /// Function not implemented.
    ENOSYS = 38;
    /// Address family not supported by protocol.
    EAFNOSUPPORT = 97;
    /// Network is unreachable.
    ENETUNREACH = 101;
    /// Connection refused.
    ECONNREFUSED = 111;
    /// Operation not supported.
    EOPNOTSUPP = 95;
}

impl Errno {
    /// An errno from a raw value, or an error if it is not in `1..=4095`.
    pub const fn new(value: i64) -> Result<Errno, ErrnoError> {
        if value < 1 || value > MAX_ERRNO as i64 {
            return Err(ErrnoError(value));
        }
        match NonZeroU16::new(value as u16) {
            Some(v) => Ok(Errno(v)),
            None => Err(ErrnoError(value)),
        }
    }

    const fn from_const(value: u16) -> Errno {
        match Errno::new(value as i64) {
            Ok(e) => e,
            Err(_) => panic!("errno constant out of range"),
        }
    }

    /// The raw positive value (`1..=4095`).
    pub const fn get(self) -> u16 {
        self.0.get()
    }

    /// The value as the `i32` that libc and the kernel use.
    pub const fn raw(self) -> i32 {
        self.0.get() as i32
    }
}

impl TryFrom<i32> for Errno {
    type Error = ErrnoError;
    fn try_from(value: i32) -> Result<Self, Self::Error> {
        Errno::new(value as i64)
    }
}

impl From<Errno> for i32 {
    fn from(e: Errno) -> i32 {
        e.raw()
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "Errno({})", self.get()),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "{}", self.get()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_is_enforced() {
        assert_eq!(Errno::new(0), Err(ErrnoError(0)));
        assert_eq!(Errno::new(-1), Err(ErrnoError(-1)));
        assert_eq!(Errno::new(4096), Err(ErrnoError(4096)));
        assert_eq!(Errno::new(1).map(Errno::get), Ok(1));
        assert_eq!(Errno::new(4095).map(Errno::get), Ok(4095));
    }

    #[test]
    fn names() {
        assert_eq!(Errno::EPERM.name(), Some("EPERM"));
        assert_eq!(Errno::new(4000).ok().and_then(Errno::name), None);
    }
}
