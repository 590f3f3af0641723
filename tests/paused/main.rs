//! The tests that assert exact figures on tokio's paused clock
//! (`#[tokio::test(start_paused = true)]`): `selftime` built with
//! `test-util`, so that its figures follow tokio's time. This binary is
//! package `selftime-paused-clock`'s, which compiles the runtime's source
//! under the name `selftime_paused` with every feature on; it is `selftime`
//! here, as it is in a service's tests. The real-clock tests are `tests/it`
//! (built without `test-util`), whose files with tests of both kinds this
//! binary includes too.
//!
//! Nothing here sets process-wide state that another module could see: the
//! span captures are each test thread's own subscriber, the metrics
//! recorders each test's own local recorder, and the only panic hook (in
//! `proptest_ledger`) silences its own planned panics and passes every other
//! one on.

extern crate selftime_paused as selftime;

#[path = "../common/mod.rs"]
mod common;
#[path = "../proto/shop.rs"]
#[allow(unreachable_pub, clippy::pedantic)]
#[rustfmt::skip] // as the generator wrote it, which its test compares
mod shop;

// Only paused-clock tests.
mod hygiene;
mod metrics;
mod otel;
mod otel_metrics;
mod proptest_ledger;
mod returned_futures;

// Both kinds: the paused-clock tests of each.
#[path = "../it/behaviour.rs"]
mod behaviour;
#[path = "../it/beyond.rs"]
mod beyond;
#[path = "../it/client_time.rs"]
mod client_time;
#[path = "../it/grpc.rs"]
mod grpc;
#[path = "../it/server_timing.rs"]
mod server_timing;
#[path = "../it/shapes.rs"]
mod shapes;
#[path = "../it/tower.rs"]
mod tower;
