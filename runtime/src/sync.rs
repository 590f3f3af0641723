//! The atomics the ledger is built from: `std`'s in a normal build, `loom`'s
//! under `--cfg loom`, so that the model checker can explore every
//! interleaving of the ledger's unions and of the naming of its slots.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU16, AtomicU64};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU16, AtomicU64};
