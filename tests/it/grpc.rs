//! tonic: a generated gRPC service (`tests/proto/shop.proto`) behind
//! `HandlerLayer::grpc()`, called through a `Channel` behind
//! `HttpExternalLayer`.
//!
//! Over an in-memory duplex (tonic's real HTTP/2 server and client, no
//! socket) the tests run on tokio's paused clock and get exact figures; over
//! a loopback TCP port they run on the real clock and get generous bounds.

// Compiled into both test binaries, each keeping the tests of its clock:
// the helpers and imports of the other clock's tests go unused in each.
#![allow(dead_code, unused_imports)]

use crate::common::{Capture, Closed, ms};
use crate::shop::cart_client::CartClient;
use crate::shop::cart_server::{Cart, CartServer};
use crate::shop::{CheckoutReply, CheckoutRequest, TrackRequest, TrackUpdate};
use futures::{Stream, StreamExt as _};
use selftime::tower::{HandlerLayer, HttpExternalLayer, HttpExternalService};
use selftime::{external_call, timed_handler};
use std::pin::Pin;
use std::time::Duration;
use tokio::time::sleep;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status};
use tower::Layer as _;

#[external_call("inventory")]
async fn inventory(d: Duration) {
    sleep(d).await;
}

#[external_call("carrier")]
async fn carrier(d: Duration) {
    sleep(d).await;
}

/// The cart service. `Checkout` waits 20 on inventory, then works 5 of its
/// own; the carts `internal` and `invalid` then fail with that status.
/// `Track` works 2 before answering, then each update waits 10 on the
/// carrier and works 1 of its own.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shop;

#[tonic::async_trait]
impl Cart for Shop {
    async fn checkout(
        &self,
        request: Request<CheckoutRequest>,
    ) -> Result<Response<CheckoutReply>, Status> {
        let cart = request.into_inner().cart;
        inventory(ms(20)).await;
        sleep(ms(5)).await;
        match cart.as_str() {
            "internal" => Err(Status::internal("the shop broke")),
            "invalid" => Err(Status::invalid_argument("no such cart")),
            _ => Ok(Response::new(CheckoutReply {
                order: format!("order-{cart}"),
            })),
        }
    }

    type TrackStream = Pin<Box<dyn Stream<Item = Result<TrackUpdate, Status>> + Send>>;

    async fn track(
        &self,
        request: Request<TrackRequest>,
    ) -> Result<Response<Self::TrackStream>, Status> {
        let updates = request.into_inner().updates;
        sleep(ms(2)).await;
        let stream = futures::stream::iter(1..=updates).then(|step| async move {
            carrier(ms(10)).await;
            sleep(ms(1)).await;
            Ok(TrackUpdate {
                step,
                status: format!("step {step}"),
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// A client of the cart service whose every call is an external call to
/// `cart`, to the end of its response.
pub(crate) type ShopClient = CartClient<HttpExternalService<Channel>>;

/// The streaming method these tests time to its end: a finite stream.
const TRACK: &str = "/shop.Cart/Track";

/// The layer of most of these tests: every RPC a handler, `Track` timed to
/// the end of its stream.
fn timed_to_end() -> HandlerLayer {
    HandlerLayer::grpc().to_end(&[TRACK])
}

/// The server, every RPC a handler, on an in-memory duplex, and a channel to
/// it: real HTTP/2 framing without a socket, so it runs on the paused clock.
pub(crate) async fn in_memory() -> ShopClient {
    CartClient::new(HttpExternalLayer::new("cart").layer(in_memory_channel().await))
}

/// The channel of [`in_memory`], bare.
async fn in_memory_channel() -> Channel {
    in_memory_channel_with(timed_to_end()).await
}

/// An in-memory channel to the server behind `layer`.
pub(crate) async fn in_memory_channel_with(layer: HandlerLayer) -> Channel {
    let (client, server) = tokio::io::duplex(64 * 1024);
    // One connection, and an incoming stream that stays open: a stream that
    // ended would shut the server down.
    let incoming =
        futures::stream::iter([Ok::<_, std::io::Error>(server)]).chain(futures::stream::pending());
    tokio::spawn(
        Server::builder()
            .layer(layer)
            .add_service(CartServer::new(Shop))
            .serve_with_incoming(incoming),
    );
    let mut client = Some(client);
    Endpoint::from_static("http://shop.test")
        .connect_with_connector(tower::service_fn(move |_: http::Uri| {
            let client = client.take();
            async move {
                client
                    .map(hyper_util::rt::TokioIo::new)
                    .ok_or_else(|| std::io::Error::other("the duplex has one connection"))
            }
        }))
        .await
        .expect("the channel connects over the duplex")
}

/// The server's spans (named `request`, target `selftime::tower`), once
/// `count` of them have closed.
async fn server_spans(capture: &Capture, count: usize) -> Vec<Closed> {
    for _ in 0..500 {
        let spans: Vec<Closed> = capture
            .named("request")
            .into_iter()
            .filter(|span| span.target == "selftime::tower")
            .collect();
        if spans.len() >= count {
            assert_eq!(spans.len(), count, "more server spans than requests");
            return spans;
        }
        sleep(ms(10)).await;
    }
    panic!(
        "{count} server span(s) expected: {:#?}",
        capture.named("request")
    );
}

/// 3 of its own, then a checkout.
#[timed_handler]
pub(crate) async fn place_order(
    mut cart: ShopClient,
    name: &'static str,
) -> Result<String, Status> {
    sleep(ms(3)).await;
    let reply = cart
        .checkout(CheckoutRequest {
            cart: name.to_owned(),
        })
        .await?;
    Ok(reply.into_inner().order)
}

/// Reads `updates` tracking updates to their end; stops reading and hangs up
/// after `hang_up_after` of them, when given, having waited 5.
#[timed_handler]
async fn follow(
    mut cart: ShopClient,
    updates: u32,
    hang_up_after: Option<u32>,
) -> Result<u32, Status> {
    let request = TrackRequest {
        order: "order-7".to_owned(),
        updates,
    };
    let mut stream = cart.track(request).await?.into_inner();
    let mut read = 0;
    while let Some(update) = stream.message().await? {
        read += 1;
        assert_eq!(update.step, read);
        if hang_up_after == Some(read) {
            sleep(ms(5)).await;
            break;
        }
    }
    Ok(read)
}

// ---------------------------------------------------------------------------
// In memory, paused clock: exact figures.
// ---------------------------------------------------------------------------

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_unary_rpc_is_a_handler_named_after_its_method_and_the_call_external() {
    let (capture, _g) = Capture::install();
    let cart = in_memory().await;
    assert_eq!(
        place_order(cart, "c1").await.map_err(|s| s.code()),
        Ok("order-c1".to_owned())
    );

    let [server] = <[Closed; 1]>::try_from(server_spans(&capture, 1).await).unwrap();
    assert_eq!(server.figures(), (25_000, 20_000, 5_000));
    assert_eq!(server.breakdown(), "inventory=20000us/1");
    assert_eq!(server.outcome(), "ok");
    assert_eq!(server.field("otel.name"), Some("/shop.Cart/Checkout"));
    assert_eq!(server.field("rpc.system.name"), Some("grpc"));
    assert_eq!(server.field("rpc.method"), Some("shop.Cart/Checkout"));
    assert_eq!(server.field("http.route"), None);
    assert_eq!(server.field("http.request.method"), Some("POST"));
    assert_eq!(server.u64("http.response.status_code"), 200);

    // The client waited on the whole RPC, message and trailers included.
    let client = capture.only("place_order");
    assert_eq!(client.figures(), (28_000, 25_000, 3_000));
    assert_eq!(client.breakdown(), "cart=25000us/1");
    assert_eq!(client.outcome(), "ok");
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_status_that_means_a_server_fault_is_an_error_and_a_client_mistake_is_not() {
    let (capture, _g) = Capture::install();
    let cart = in_memory().await;
    let internal = place_order(cart.clone(), "internal").await.unwrap_err();
    assert_eq!(internal.code(), tonic::Code::Internal);
    let invalid = place_order(cart, "invalid").await.unwrap_err();
    assert_eq!(invalid.code(), tonic::Code::InvalidArgument);

    let servers = server_spans(&capture, 2).await;
    // Both ran 25 (20 of it on inventory) before their status.
    for server in &servers {
        assert_eq!(server.figures(), (25_000, 20_000, 5_000), "{server:?}");
    }
    assert_eq!(servers[0].outcome(), "error");
    assert_eq!(servers[1].outcome(), "ok");
    // The client handlers returned the `Err` of their `Result`.
    for client in capture.named("place_order") {
        assert_eq!(client.outcome(), "error");
        assert_eq!(client.figures(), (28_000, 25_000, 3_000));
    }
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_streaming_response_is_timed_to_its_end_with_the_calls_made_while_streaming() {
    let (capture, _g) = Capture::install();
    let cart = in_memory().await;
    assert_eq!(follow(cart, 3, None).await.map_err(|s| s.code()), Ok(3));

    // 2 before the head, then 3 × (10 on the carrier + 1 of its own).
    let [server] = <[Closed; 1]>::try_from(server_spans(&capture, 1).await).unwrap();
    assert_eq!(server.figures(), (35_000, 30_000, 5_000));
    assert_eq!(server.breakdown(), "carrier=30000us/3");
    assert_eq!(server.outcome(), "ok");
    assert_eq!(server.field("otel.name"), Some("/shop.Cart/Track"));
    assert_eq!(server.field("rpc.method"), Some("shop.Cart/Track"));

    // The call is in flight until the stream's trailers.
    let client = capture.only("follow");
    assert_eq!(client.figures(), (35_000, 35_000, 0));
    assert_eq!(client.breakdown(), "cart=35000us/1");
}

#[cfg(feature = "test-util")]
/// By default a streaming method's latency is its response head: the
/// stream that follows is not in the handler's figures.
#[tokio::test(start_paused = true)]
async fn by_default_a_streaming_method_is_timed_to_its_head() {
    let (capture, _g) = Capture::install();
    let orphans = selftime::orphan_calls().get("carrier");
    let channel = in_memory_channel_with(HandlerLayer::grpc()).await;
    let cart = CartClient::new(HttpExternalLayer::new("cart").layer(channel));
    assert_eq!(follow(cart, 3, None).await.map_err(|s| s.code()), Ok(3));
    // The stream's carrier calls ran in the (reported) handler's scope: not
    // taken for calls outside any handler.
    assert_eq!(selftime::orphan_calls().get("carrier"), orphans);

    // 2 of its own before the head; the 3 updates after it are the stream's.
    let [server] = <[Closed; 1]>::try_from(server_spans(&capture, 1).await).unwrap();
    assert_eq!(server.figures(), (2_000, 0, 2_000));
    assert_eq!(server.u64("client.duration_us"), 0);
    assert_eq!(server.breakdown(), "");
    assert_eq!(server.outcome(), "ok");
    assert_eq!(server.field("otel.name"), Some(TRACK));
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_client_that_hangs_up_mid_stream_cancels_the_handler() {
    let (capture, _g) = Capture::install();
    let cart = in_memory().await;
    assert_eq!(
        follow(cart, 1_000, Some(2)).await.map_err(|s| s.code()),
        Ok(2)
    );

    // Update 2 at 24; the third carrier call was 5 in when the client hung up.
    let [server] = <[Closed; 1]>::try_from(server_spans(&capture, 1).await).unwrap();
    assert_eq!(server.outcome(), "cancelled");
    assert_eq!(server.figures(), (29_000, 25_000, 4_000));
    assert_eq!(server.breakdown(), "carrier=25000us/3");
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_client_that_gives_up_on_a_unary_rpc_cancels_the_handler() {
    let (capture, _g) = Capture::install();
    let cart = in_memory().await;
    // The client's own 3, then 7 into the checkout's 20 on inventory.
    let gave_up = tokio::time::timeout(ms(10), place_order(cart, "c2")).await;
    assert!(gave_up.is_err());

    let [server] = <[Closed; 1]>::try_from(server_spans(&capture, 1).await).unwrap();
    assert_eq!(server.outcome(), "cancelled");
    assert_eq!(server.figures(), (7_000, 7_000, 0));
    assert_eq!(server.breakdown(), "inventory=7000us/1");

    let client = capture.only("place_order");
    assert_eq!(client.outcome(), "cancelled");
    assert_eq!(client.figures(), (10_000, 7_000, 3_000));
}

/// Calls `path`, a method the shop does not have, as a unary RPC.
async fn call_missing(channel: Channel, path: String) -> tonic::Code {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("the channel is ready");
    let path = http::uri::PathAndQuery::try_from(path).unwrap();
    let codec = tonic_prost::ProstCodec::<CheckoutRequest, CheckoutReply>::default();
    let request = Request::new(CheckoutRequest {
        cart: String::new(),
    });
    grpc.unary(request, path, codec).await.unwrap_err().code()
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn calls_to_methods_the_server_does_not_have_cannot_use_up_the_names() {
    let (capture, _g) = Capture::install();
    let channel = in_memory_channel().await;
    // More made-up methods than the process has room for route names.
    for i in 0..300 {
        let path = format!("/it.grpc.Made{i}/Up{i}");
        assert_eq!(
            call_missing(channel.clone(), path).await,
            tonic::Code::Unimplemented
        );
    }
    let cart = CartClient::new(HttpExternalLayer::new("cart").layer(channel));
    assert_eq!(
        place_order(cart, "c4").await.map_err(|s| s.code()),
        Ok("order-c4".to_owned())
    );

    let servers = server_spans(&capture, 301).await;
    for server in &servers[..300] {
        assert_eq!(server.field("otel.name"), Some("unmatched"), "{server:?}");
        assert_eq!(server.outcome(), "error");
    }
    assert_eq!(servers[300].field("otel.name"), Some("/shop.Cart/Checkout"));
    assert_eq!(servers[300].outcome(), "ok");

    // And a method no request has named before still gets a name of its own.
    let fresh = HandlerLayer::grpc().layer(tower::service_fn(|_: http::Request<String>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    }));
    let request = http::Request::post("/it.grpc.Fresh/Method")
        .body(String::new())
        .unwrap();
    let response = tower::ServiceExt::oneshot(fresh, request).await.unwrap();
    drop(response);
    let [.., last] = <[Closed; 302]>::try_from(server_spans(&capture, 302).await).unwrap();
    assert_eq!(last.field("otel.name"), Some("/it.grpc.Fresh/Method"));
}

// ---------------------------------------------------------------------------
// Over a loopback TCP port, real clock: generous bounds only.
// ---------------------------------------------------------------------------

/// The server on a loopback port, and a client of it.
async fn over_loopback() -> ShopClient {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .layer(timed_to_end())
            .add_service(CartServer::new(Shop))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("the channel connects over loopback");
    CartClient::new(HttpExternalLayer::new("cart").layer(channel))
}

fn assert_adds_up(span: &Closed) {
    let (total, external, internal) = span.figures();
    // The server's spans have the client's time beside internal and
    // external; the client's (attribute) spans do not.
    let client = span
        .field("client.duration_us")
        .map_or(0, |_| span.u64("client.duration_us"));
    assert!(external <= total, "{span:?}");
    assert_eq!(total - external - client, internal, "{span:?}");
}

#[cfg(not(feature = "test-util"))]
#[tokio::test]
async fn over_loopback_unary_and_streaming_rpcs_are_handlers_and_their_calls_external() {
    let (capture, _g) = Capture::install();
    let cart = over_loopback().await;
    assert_eq!(
        place_order(cart.clone(), "c3").await.map_err(|s| s.code()),
        Ok("order-c3".to_owned())
    );
    assert_eq!(follow(cart, 3, None).await.map_err(|s| s.code()), Ok(3));

    let servers = server_spans(&capture, 2).await;
    let checkout = &servers[0];
    assert_eq!(checkout.field("otel.name"), Some("/shop.Cart/Checkout"));
    assert!(
        checkout.u64("external.duration_us") >= 20_000,
        "{checkout:?}"
    );
    assert!(
        checkout.u64("internal.duration_us") >= 5_000,
        "{checkout:?}"
    );
    assert_adds_up(checkout);
    assert_eq!(checkout.outcome(), "ok");
    let track = &servers[1];
    assert_eq!(track.field("otel.name"), Some("/shop.Cart/Track"));
    assert!(track.u64("external.duration_us") >= 30_000, "{track:?}");
    assert_eq!(track.u64("external.calls"), 3);
    assert!(track.breakdown().ends_with("us/3"), "{track:?}");
    assert_adds_up(track);
    assert_eq!(track.outcome(), "ok");

    // Each client waited at least as long as its server worked.
    let client = capture.only("place_order");
    assert!(client.u64("external.duration_us") >= 25_000, "{client:?}");
    assert!(client.breakdown().starts_with("cart="), "{client:?}");
    assert_adds_up(&client);
    let client = capture.only("follow");
    assert!(client.u64("external.duration_us") >= 35_000, "{client:?}");
    assert_adds_up(&client);
}

#[cfg(not(feature = "test-util"))]
#[tokio::test]
async fn over_loopback_a_server_fault_is_an_error() {
    let (capture, _g) = Capture::install();
    let cart = over_loopback().await;
    let status = place_order(cart, "internal").await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Internal);
    let [server] = <[Closed; 1]>::try_from(server_spans(&capture, 1).await).unwrap();
    assert_eq!(server.outcome(), "error");
    assert_eq!(server.u64("http.response.status_code"), 200);
}

#[cfg(not(feature = "test-util"))]
#[tokio::test]
async fn over_loopback_a_client_that_hangs_up_cancels() {
    let (capture, _g) = Capture::install();
    let cart = over_loopback().await;
    assert_eq!(
        follow(cart, 1_000, Some(1)).await.map_err(|s| s.code()),
        Ok(1)
    );
    let [server] = <[Closed; 1]>::try_from(server_spans(&capture, 1).await).unwrap();
    assert_eq!(server.outcome(), "cancelled");
    assert!(server.u64("total.duration_us") >= 13_000, "{server:?}");
    assert_adds_up(&server);
}

// ---------------------------------------------------------------------------
// The generated code.
// ---------------------------------------------------------------------------

#[cfg(not(feature = "test-util"))]
/// `tests/proto/shop.rs` is checked in rather than generated by a build
/// script: building the suite then needs no `protoc` (the README's `cargo
/// test` works on a machine with only cargo), and no code generator runs on
/// every build. This test keeps it honest: it runs tonic-prost-build on
/// `shop.proto` and compares. It needs `protoc` (Debian's
/// `protobuf-compiler`), which CI installs; `SELFTIME_BLESS=1` rewrites the
/// checked-in file.
#[test]
#[ignore = "needs protoc (Debian's protobuf-compiler); CI runs it"]
fn the_checked_in_code_is_what_the_generator_makes_of_the_proto() {
    let proto_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/proto");
    let out = std::env::temp_dir().join(format!("selftime-shop-proto-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    tonic_prost_build::configure()
        .out_dir(&out)
        .emit_rerun_if_changed(false)
        .compile_protos(
            &[proto_dir.join("shop.proto")],
            std::slice::from_ref(&proto_dir),
        )
        .expect("protoc and tonic-prost-build generate the code");
    let generated = std::fs::read_to_string(out.join("shop.rs")).unwrap();
    std::fs::remove_dir_all(&out).unwrap();

    let checked_in_path = proto_dir.join("shop.rs");
    if std::env::var_os("SELFTIME_BLESS").is_some() {
        std::fs::write(&checked_in_path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&checked_in_path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "tests/proto/shop.rs is not what tonic-prost-build makes of shop.proto: run \
         `SELFTIME_BLESS=1 cargo test -q --test it grpc:: -- --include-ignored` and review it"
    );
}
