//! Shared helpers for sandlock's criterion benches (see `benches/benches/`).
