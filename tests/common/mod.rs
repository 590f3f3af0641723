//! What more than one test (or test binary) needs, written once: a layer
//! that keeps the fields of closed spans, a layer that does nothing, a
//! counting global allocator (installed only by the binaries that count), a
//! `redis-server` of a test's own, and small helpers.
//!
//! Each binary includes this module and uses part of it.

#![allow(dead_code, unreachable_pub, unused_imports)]

pub mod capture;
#[path = "../../runtime/benches/common/counting.rs"]
pub mod counting;
#[path = "../../runtime/benches/common/noop.rs"]
pub mod noop;
pub mod redis_server;

pub use capture::{Capture, Closed};

use std::net::SocketAddr;
use std::time::Duration;

/// `n` milliseconds.
pub const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `t`, which must be `Send`: a compile-time check that a future stays one.
pub fn assert_send<T: Send>(t: T) -> T {
    t
}

/// Serves `router` on a free loopback port, in a task of the current
/// runtime, and gives its address.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}
