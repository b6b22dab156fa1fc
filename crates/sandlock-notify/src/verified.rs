//! Values read from a task's memory, and their release after `NOTIF_ID_VALID`.
//!
//! Between the supervisor's read and its action, the task might have died
//! and its pid been reused, so what was read may belong to a stranger. Every
//! value read from child memory comes wrapped in [`Unverified`]; the only way
//! to get it out is [`Unverified::verify`], which asks the kernel whether the
//! notification is still pending. The on-behalf helpers take [`Verified`]
//! values, so forgetting the check is a type error.

use core::ops::Deref;

use crate::listener::IdCheck;

/// The notification was no longer pending when its memory was checked.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[error("notification {id:#x} is no longer pending (task gone or syscall interrupted)")]
pub struct Stale {
    /// The notification.
    pub id: u64,
}

/// A value read from the memory of the task behind notification `id`, not
/// yet confirmed to belong to that task.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a value read from child memory must be verified before use"]
pub struct Unverified<T> {
    id: u64,
    value: T,
}

impl<T> Unverified<T> {
    /// Wrap `value`, read for notification `id`.
    pub fn new(id: u64, value: T) -> Unverified<T> {
        Unverified { id, value }
    }

    /// The notification this was read for.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Release the value if notification `id` is still pending.
    pub fn verify(self, check: &impl IdCheck) -> Result<Verified<T>, Stale> {
        if check.id_valid(self.id) {
            Ok(Verified {
                id: self.id,
                value: self.value,
            })
        } else {
            Err(Stale { id: self.id })
        }
    }

    /// Apply `f` to the value, keeping it unverified.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Unverified<U> {
        Unverified {
            id: self.id,
            value: f(self.value),
        }
    }

    /// The value without the check: only for code that never acts on it
    /// (fuzzing, tests, logging of a notification already answered).
    pub fn into_inner_unchecked(self) -> T {
        self.value
    }
}

/// A value read from child memory after which `NOTIF_ID_VALID` confirmed
/// that the task still waits in the syscall.
///
/// Immutable: it is the copy that was checked, and stays that copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<T> {
    id: u64,
    value: T,
}

impl<T> Verified<T> {
    /// The notification it was read for.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The value.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T: Clone> Verified<Vec<T>> {
    /// The first `n` elements, still verified (they are part of the copy
    /// that was checked).
    pub fn truncated(&self, n: usize) -> Verified<Vec<T>> {
        Verified {
            id: self.id,
            value: self.value.iter().take(n).cloned().collect(),
        }
    }
}

impl<T> Verified<Option<T>> {
    /// `Some(verified value)` or `None`.
    pub fn transpose(self) -> Option<Verified<T>> {
        let id = self.id;
        self.value.map(|value| Verified { id, value })
    }
}

impl<T> Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(bool);
    impl IdCheck for Fixed {
        fn id_valid(&self, _: u64) -> bool {
            self.0
        }
    }

    #[test]
    fn released_only_when_pending() {
        assert_eq!(*Unverified::new(7, 3).verify(&Fixed(true)).unwrap(), 3);
        assert_eq!(
            Unverified::new(7, 3).verify(&Fixed(false)),
            Err(Stale { id: 7 })
        );
    }
}
