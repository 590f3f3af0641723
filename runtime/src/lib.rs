//! # selftime: how slow is *your* service?
//!
//! A service that waits on systems owned by other teams cannot page on its
//! request latency: every slow dependency fires the alert. `selftime`
//! measures, per request,
//!
//! ```text
//! internal = total - external
//! ```
//!
//! where *total* is the handler's wall time and *external* is the time spent
//! waiting on outbound calls, and records all three on the request's
//! `tracing` span, so that alerts can fire on *internal* time only.
//!
//! (The full manual follows below.)

#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod external;
mod handler;
mod ledger;
mod propagate;
mod report;
mod scope;
mod snapshot;
mod sync;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use external::{external, external_sync, External};
pub use ledger::OTHER_DEPENDENCY;
pub use propagate::{bind, FutureExt, Handle, InCurrentHandler};
pub use report::FIELDS;
pub use selftime_macros::{external_call, timed_handler};
pub use snapshot::{current, Dependency, Outcome, Snapshot};
