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
#[path = "../../demo/src/relay.rs"]
pub mod relay;

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

/// Serves `router` as a service would to know its requests' arrival and
/// peer: through an `ArrivalListener`, with `ConnectInfo<Arrival>`.
pub async fn serve_arrivals(router: axum::Router) -> SocketAddr {
    let listener = selftime::tower::ArrivalListener::bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router.into_make_service_with_connect_info::<selftime::tower::Arrival>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A plain TCP forwarder to `upstream`, instrumented by nobody, standing for
/// a load balancer or a slow network: each chunk of the answer waits
/// `delay` before it is passed on. Its address.
pub async fn forwarder(upstream: SocketAddr, delay: Duration) -> SocketAddr {
    forwarder_recording(upstream, delay, Held::default()).await
}

/// How long a forwarder held each chunk of an answer, as it measured it:
/// from the chunk's arrival to its being passed on.
pub type Held = std::sync::Arc<std::sync::Mutex<Vec<Duration>>>;

/// [`forwarder`], recording into `held` how long it held each chunk.
pub async fn forwarder_recording(upstream: SocketAddr, delay: Duration, held: Held) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let held = held.clone();
            tokio::spawn(relay::relay(
                client,
                upstream,
                move || delay,
                move |d| {
                    held.lock().unwrap().push(d);
                },
            ));
        }
    });
    addr
}
