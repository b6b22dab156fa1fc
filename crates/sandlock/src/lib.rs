//! sandlock: a lightweight process sandbox for Linux.
