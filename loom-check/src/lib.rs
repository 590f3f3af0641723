//! Model checks of `selftime`'s per-request ledger under [loom].
//!
//! The ledger (`runtime/src/ledger.rs`) and the atomics it is built from
//! (`runtime/src/sync.rs`) are plain data: no tokio, no tracing. This
//! package compiles them as they are (with the process's table of
//! dependency numbers, `names.rs` and `table.rs`, which the ledger reads its
//! names from), and under `--cfg loom` the ledger gets loom's atomics, so
//! that loom can run each test once per interleaving of its threads (up to a
//! preemption bound) and under every value the memory model lets a load
//! return:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test -q --release -p loom-check --target-dir target/loom
//! ```
//!
//! (A separate target dir: the flag changes every crate's fingerprint.)
//!
//! Without `--cfg loom` this package is an empty library: it is a workspace
//! member, and a normal build must neither fetch loom nor build the ledger a
//! second time. `selftime` itself is never built with `--cfg loom`, because
//! tokio has `cfg(loom)` code paths of its own; that is why the files are
//! included here by path instead of through a dependency on `selftime`.
//!
//! [loom]: https://docs.rs/loom

// The runtime uses all of the ledger; these
// checks use its calls and readings only (not `Ticket`'s packing, for one).
#[cfg(loom)]
#[allow(dead_code, unreachable_pub)]
#[path = "../../runtime/src/ledger.rs"]
mod ledger;
#[cfg(loom)]
#[allow(dead_code, unreachable_pub)]
#[path = "../../runtime/src/names.rs"]
mod names;
#[cfg(loom)]
#[allow(dead_code)]
#[path = "../../runtime/src/sync.rs"]
mod sync;
#[cfg(loom)]
#[allow(dead_code)]
#[path = "../../runtime/src/table.rs"]
mod table;

#[cfg(all(test, loom))]
mod model;
