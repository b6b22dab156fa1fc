//! seccomp user-notification supervisor.
