//! The client's time is not the service's: behind `HandlerLayer`, a
//! response that waits on a slow reader is neither internal nor external
//! time (`client.duration_us`), and an event stream (server-sent events, an
//! upgrade, a gRPC stream) is timed to its response head unless its route
//! asks to be timed to its end.
//!
//! The slow readers read over loopback sockets (HTTP/1 with axum, HTTP/2
//! with tonic) on the real clock: generous bounds. The event stream runs on
//! the paused clock: exact figures.

// Compiled into both test binaries, each keeping the tests of its clock:
// the helpers and imports of the other clock's tests go unused in each.
#![allow(dead_code, unused_imports)]

use crate::common::{Capture, Closed, ms};
use crate::shop::cart_client::CartClient;
use crate::shop::cart_server::{Cart, CartServer};
use crate::shop::{CheckoutReply, CheckoutRequest, TrackRequest, TrackUpdate};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use http_body_util::BodyExt as _;
use selftime::tower::HandlerLayer;
use std::convert::Infallible;
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tower::ServiceExt as _;

/// The request spans (target `selftime::tower`), once `count` have closed.
async fn server_spans(capture: &Capture, count: usize) -> Vec<Closed> {
    for _ in 0..500 {
        let spans = capture.named("request");
        if spans.len() >= count {
            return spans;
        }
        tokio::time::sleep(ms(10)).await;
    }
    panic!(
        "{count} request spans did not close: {:?}",
        capture.closed()
    );
}

fn client_us(span: &Closed) -> u64 {
    span.u64("client.duration_us")
}

/// Total = external + internal + the client's, in the recorded µs.
fn assert_adds_up(span: &Closed) {
    let (total, external, internal) = span.figures();
    assert_eq!(total, external + internal + client_us(span), "{span:?}");
}

/// 4 MiB in 64 KiB chunks, all ready at once: producing it takes nothing.
/// (Less would fit in the kernel's send buffer and hyper's, and the server
/// would never wait.)
const CHUNKS: usize = 64;
const CHUNK: usize = 64 * 1024;

#[cfg(not(feature = "test-util"))]
/// A reader with a small receive buffer that takes a read every 2 ms (a
/// phone on a poor network), over HTTP/1: once the kernel's and hyper's
/// buffers are full, the server waits on it, and none of that is the
/// service's time.
#[tokio::test]
async fn a_slow_readers_time_is_the_clients_not_internal() {
    let (capture, _g) = Capture::install();
    let app = Router::new()
        .route(
            "/export",
            get(|| async {
                let chunks =
                    (0..CHUNKS).map(|_| Ok::<_, Infallible>(Bytes::from(vec![b'x'; CHUNK])));
                Body::from_stream(futures::stream::iter(chunks))
            }),
        )
        .layer(HandlerLayer::matched_path());
    let addr = crate::common::serve(app).await;

    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(8 * 1024).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream
        .write_all(b"GET /export HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let mut received = 0;
    let mut buf = vec![0; 8 * 1024];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        received += n;
        tokio::time::sleep(ms(2)).await;
    }
    let reading = start.elapsed();
    assert!(received > CHUNKS * CHUNK, "{received}");

    let [span] = <[Closed; 1]>::try_from(server_spans(&capture, 1).await).unwrap();
    assert_eq!(span.outcome(), "ok", "{span:?}");
    assert_adds_up(&span);
    let (total, _, internal) = span.figures();
    // Producing the body took nothing: internal is at most 10 ms (the
    // server's own writes included), however long the client took.
    assert!(internal <= 10_000, "read in {reading:?}: {span:?}");
    assert!(client_us(&span) >= 100_000, "read in {reading:?}: {span:?}");
    assert!(total >= client_us(&span), "{span:?}");
    assert_eq!(span.u64("internal.backlog_us"), 0, "{span:?}");
}

/// One event a second, for ten seconds, after 5 of the handler's own work.
fn events() -> Router {
    Router::new().route(
        "/events",
        get(|| async {
            tokio::time::sleep(ms(5)).await;
            let stream = futures::stream::unfold(0, |n| async move {
                (n < 10).then_some(())?;
                tokio::time::sleep(Duration::from_secs(1)).await;
                Some((Ok::<_, Infallible>(format!("data: {n}\n\n")), n + 1))
            });
            http::Response::builder()
                .header(http::header::CONTENT_TYPE, "text/event-stream")
                .body(Body::from_stream(stream))
                .unwrap()
        }),
    )
}

async fn read_events(app: Router) -> usize {
    let request = http::Request::get("/events").body(Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    body.split(|&b| b == b'\n')
        .filter(|line| line.starts_with(b"data:"))
        .count()
}

#[cfg(feature = "test-util")]
/// Server-sent events, open for ten seconds: the handler's latency is its
/// 5 ms to the response head, and nothing of the stream's life is in its
/// figures.
#[tokio::test(start_paused = true)]
async fn an_event_stream_is_timed_to_its_head() {
    let (capture, _g) = Capture::install();
    let app = events().layer(HandlerLayer::matched_path());
    assert_eq!(read_events(app).await, 10);
    let span = capture.only("request");
    assert_eq!(span.figures(), (5_000, 0, 5_000));
    assert_eq!(client_us(&span), 0);
    assert_eq!(span.outcome(), "ok");
    assert_eq!(span.field("otel.name"), Some("GET /events"));
}

#[cfg(feature = "test-util")]
/// A finite stream its route asks to be timed to its end: then it is, and
/// producing it is the handler's own time.
#[tokio::test(start_paused = true)]
async fn an_event_stream_named_to_end_is_timed_to_its_end() {
    let (capture, _g) = Capture::install();
    let app = events().layer(HandlerLayer::matched_path().to_end(&["GET /events"]));
    assert_eq!(read_events(app).await, 10);
    let span = capture.only("request");
    // The stream says it has ended only when polled after its last event.
    assert_eq!(span.figures(), (10_005_000, 0, 10_005_000));
    assert_eq!(client_us(&span), 0);
}

#[cfg(not(feature = "test-util"))]
/// A connection upgraded by its handler (`101 Switching Protocols`, as a
/// WebSocket handshake is) ends the handler at the 101: the upgraded
/// connection's life is not its latency.
#[tokio::test]
async fn an_upgrade_ends_the_handler_at_its_101() {
    let (capture, _g) = Capture::install();
    let app = Router::new()
        .route(
            "/socket",
            get(|mut request: http::Request<Body>| async move {
                let upgrade = hyper::upgrade::on(&mut request);
                tokio::spawn(async move {
                    let Ok(upgraded) = upgrade.await else { return };
                    let mut io = hyper_util::rt::TokioIo::new(upgraded);
                    for n in 0..5u8 {
                        tokio::time::sleep(ms(50)).await;
                        if io.write_all(&[b'0' + n]).await.is_err() {
                            return;
                        }
                    }
                });
                http::Response::builder()
                    .status(http::StatusCode::SWITCHING_PROTOCOLS)
                    .header(http::header::CONNECTION, "upgrade")
                    .header(http::header::UPGRADE, "test")
                    .body(Body::empty())
                    .unwrap()
            }),
        )
        .layer(HandlerLayer::matched_path());
    let addr = crate::common::serve(app).await;

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"GET /socket HTTP/1.1\r\nhost: test\r\nconnection: upgrade\r\nupgrade: test\r\n\r\n",
        )
        .await
        .unwrap();
    let start = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0; 1024];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
    }
    let open = start.elapsed();
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(text.ends_with("01234"), "{text}");
    assert!(open >= ms(250), "{open:?}");

    let [span] = <[Closed; 1]>::try_from(server_spans(&capture, 1).await).unwrap();
    assert_eq!(span.u64("http.response.status_code"), 101);
    assert_eq!(span.outcome(), "ok");
    // Ended at the 101, long before the connection closed.
    assert!(
        span.u64("total.duration_us") < 200_000,
        "open {open:?}: {span:?}"
    );
    assert_adds_up(&span);
}

/// A cart whose `Track` streams 100 updates of 64 KiB each, all ready at
/// once: more than HTTP/2's flow-control window lets the server send
/// before its client reads.
#[derive(Clone, Copy)]
struct BigTracker;

#[tonic::async_trait]
impl Cart for BigTracker {
    async fn checkout(
        &self,
        _: tonic::Request<CheckoutRequest>,
    ) -> Result<tonic::Response<CheckoutReply>, tonic::Status> {
        Err(tonic::Status::unimplemented("tracking only"))
    }

    type TrackStream = Pin<Box<dyn Stream<Item = Result<TrackUpdate, tonic::Status>> + Send>>;

    async fn track(
        &self,
        request: tonic::Request<TrackRequest>,
    ) -> Result<tonic::Response<Self::TrackStream>, tonic::Status> {
        let updates = request.into_inner().updates;
        let stream = futures::stream::iter(1..=updates).map(|step| {
            Ok(TrackUpdate {
                step,
                status: "x".repeat(64 * 1024),
            })
        });
        Ok(tonic::Response::new(Box::pin(stream)))
    }
}

#[cfg(not(feature = "test-util"))]
/// A tonic server stream of 100 large messages, timed to its end, read by a
/// consumer that takes 5 ms over each: the server waits on it (HTTP/2 flow
/// control) for about half a second, and that is the client's time.
#[tokio::test]
async fn a_slow_consumers_time_on_a_grpc_stream_is_the_clients() {
    let (capture, _g) = Capture::install();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(HandlerLayer::grpc().to_end(&["/shop.Cart/Track"]))
            .add_service(CartServer::new(BigTracker))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let mut client = CartClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
        .max_decoding_message_size(1 << 20);
    let mut stream = client
        .track(TrackRequest {
            order: "o".into(),
            updates: 100,
        })
        .await
        .unwrap()
        .into_inner();
    let start = Instant::now();
    let mut read = 0;
    while let Some(update) = stream.message().await.unwrap() {
        assert_eq!(update.status.len(), 64 * 1024);
        read += 1;
        tokio::time::sleep(ms(5)).await;
    }
    let reading = start.elapsed();
    assert_eq!(read, 100);

    let [span] = <[Closed; 1]>::try_from(server_spans(&capture, 1).await).unwrap();
    assert_eq!(span.outcome(), "ok", "{span:?}");
    assert_adds_up(&span);
    assert!(
        span.u64("internal.duration_us") <= 50_000,
        "read in {reading:?}: {span:?}"
    );
    assert!(client_us(&span) >= 200_000, "read in {reading:?}: {span:?}");
}
