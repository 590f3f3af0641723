//! The integration tests that share a process: one binary, one module per
//! subject, so that the suite links once.
//!
//! Nothing here sets process-wide state that another module could see: the
//! span captures are each test thread's own subscriber, the metrics
//! recorders each test's own local recorder, and the only panic hook (in
//! `proptest_ledger`) silences its own planned panics and passes every other
//! one on. The tests that need the process to themselves have binaries of
//! their own: `alloc` and `stress` (a counting global allocator; `stress`
//! also a global subscriber and a panic hook that counts) and `demo` (the
//! global metrics recorder); `alerts` (promtool on the alert rules) is one
//! too.
//!
//! Orphan counts are process-wide: each test that reads them calls its own
//! dependencies, named for it alone.

#[path = "../common/mod.rs"]
mod common;
/// The code tonic-prost-build generates from `tests/proto/shop.proto`,
/// checked in (see `grpc`'s last test).
#[path = "../proto/shop.rs"]
#[allow(unreachable_pub, clippy::pedantic)]
#[rustfmt::skip] // as the generator wrote it, which its test compares
mod shop;

mod behaviour;
mod beyond;
mod client_time;
mod grpc;
mod hygiene;
mod loopback;
mod metrics;
mod otel;
mod otel_metrics;
mod proptest_ledger;
mod real_clock;
mod redis;
mod reqwest;
mod returned_futures;
mod shapes;
mod tower;
