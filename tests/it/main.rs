//! The integration tests that run on the real clock, the clock a service
//! gets: `selftime` is built here without `test-util`. One binary, one
//! module per subject, so that the suite links once. The tests that assert
//! exact figures on tokio's paused clock are `tests/paused` (package
//! `selftime-paused-clock`, which builds selftime with `test-util`); a
//! subject with both kinds (its helpers shared) is one file included by
//! both binaries, each test marked with the clock it needs
//! (`#[cfg(feature = "test-util")]` for the paused one).
//!
//! Nothing here sets process-wide state that another module could see: the
//! span captures are each test thread's own subscriber. The tests that need
//! the process to themselves have binaries of their own: `alloc` and
//! `stress` (a counting global allocator; `stress` also a global subscriber
//! and a panic hook that counts), `saturation` (a runtime kept busy) and
//! `demo` (the global metrics recorder); `alerts` (promtool on the alert
//! rules) is one too.

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
mod browser;
mod client_time;
mod grpc;
mod house;
mod loopback;
mod real_clock;
mod redis;
mod reqwest;
mod server_timing;
mod shapes;
mod tower;
