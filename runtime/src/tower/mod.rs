//! `tower` layers: every request of a service as a handler, every call
//! through a client as an external call (feature `tower`).
//!
//! # Server side
//!
//! [`HandlerLayer`] does for a whole axum, tonic or hyper service what
//! `#[timed_handler]` does for one fn: each request runs in a new handler
//! scope, and its figures are recorded on a span when it ends. On a tonic
//! server, [`HandlerLayer::grpc()`] makes every RPC a handler named after its
//! method: `Server::builder().layer(HandlerLayer::grpc())`.
//!
//! ```
//! use axum::{routing::get, Router};
//! use selftime::tower::HandlerLayer;
//! use tower::ServiceExt as _;
//!
//! #[selftime::external_call("legacy")]
//! async fn lookup() -> &'static str {
//!     "someone"
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = Router::new()
//!     .route("/users/{id}", get(|| async { lookup().await }))
//!     // Every route of the router; `HandlerLayer::matched_path()` (feature
//!     // `axum`) names each request after its route instead.
//!     .layer(HandlerLayer::new("users"));
//!
//! let request = http::Request::get("/users/42").body(axum::body::Body::empty()).unwrap();
//! let response = app.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! # }
//! ```
//!
//! With [`HandlerLayer::server_timing`], the requests a policy trusts also
//! get the handler's figures in a W3C `Server-Timing` response header
//! ([`ServerTiming`]). Browsers show these entries in their developer tools
//! (Network → Timing), and the test suite checks with headless Chromium that
//! a page reads them (`performance.getEntriesByType("navigation")`) as its
//! handler's span records them.
//!
//! ## The span
//!
//! Tracing span names are fixed at compile time, so every request's span is
//! named `request` (target `selftime::tower`, level `INFO`); which handler it
//! was is in its fields:
//!
//! | field | value |
//! |---|---|
//! | `otel.name` | the handler's name (below); OpenTelemetry exporters use it as the span's name |
//! | `http.request.method` | `GET`, `POST`, …; `_OTHER` for a method outside RFC 9110's nine |
//! | `http.route` | the route template, when the layer has a route function and it returned one |
//! | `rpc.system.name`, `rpc.method` | `grpc` and the method, `shop.Cart/Checkout`, under [`HandlerLayer::grpc`] |
//! | `http.response.status_code` | the response status, once the head is ready |
//!
//! | `client.duration_us` | the time the response waited on the client ([below](#the-clients-time-and-event-streams)) |
//!
//! and the seven fields of `#[timed_handler]` ([`FIELDS`](crate::FIELDS)).
//! The request's URI, query and headers are never recorded: they carry
//! tokens.
//!
//! ## The handler's name
//!
//! The name is the `otel.name` field and the metrics' `handler` label, so it
//! must come from a small, fixed set:
//!
//! - [`HandlerLayer::new("checkout")`](HandlerLayer::new): one name for
//!   every request, for a service that is one handler (a route's own
//!   `MethodRouter::layer`, a single tonic service);
//! - [`HandlerLayer::route`]: a function from the request's head to a route
//!   *template*; the name is `"{METHOD} {route}"`, e.g. `GET /users/{id}`;
//! - `HandlerLayer::matched_path()` (feature `axum`): that function, reading
//!   axum's `MatchedPath`;
//! - [`HandlerLayer::grpc()`]: the gRPC method's path, `/shop.Cart/Checkout`.
//!
//! Names built from routes are interned, at most 256 of them for the whole
//! process (every `HandlerLayer` shares the table); a route beyond that is
//! named `other`. Never return the raw path: `/users/42` and `/users/43`
//! would be two handlers. Under [`HandlerLayer::grpc()`] a method takes a
//! place only once the server has answered it as a method it has (not
//! `UNIMPLEMENTED`), so calls to methods it does not have, named
//! `unmatched`, cannot fill the table. With the `opentelemetry` feature, the
//! route (`http.route`, or `rpc.system.name` and `rpc.method`) is also an
//! attribute of the request's series.
//!
//! ## What is measured
//!
//! A handler runs from the layer's `call` (or, served through an
//! [`ArrivalListener`], from the request's arrival) to the **end of the
//! response body**, not only to its head: the body is wrapped
//! ([`HandlerBody`]) and each of its frames is produced inside the
//! handler's scope and span, so a streamed body's production time is in
//! `total`, and external calls made while streaming count. It ends when the
//! body yields its last frame (its trailers, if it has any; over HTTP/1 with
//! a `content-length`, its last byte) to the server, which is when the
//! server has the whole response, not when the client has read it; and a
//! body that can only say it has ended when polled once more (a stream)
//! ends at that poll.
//!
//! ## The client's time and event streams
//!
//! Between handing the server a frame (or the head) and asking for the
//! next, the server is sending it out at the pace the client reads. A slow
//! reader (a phone on a poor network, a client that reads a large export a
//! little at a time) keeps the server, and so the handler, waiting: that
//! time is the **client's**, recorded as `client.duration_us` on the span
//! ([`CLIENT_FIELD`](crate::CLIENT_FIELD)) and in the
//! `selftime_client_seconds` histogram (feature `metrics`) or
//! `selftime.client.duration` (feature `opentelemetry`). It is neither
//! internal nor external: for the layer's handlers,
//!
//! ```text
//! total = external + internal + client
//! ```
//!
//! so no slow client can page the service's team, and no dependency is
//! billed for it. (What the server does in that time, its own writes, is
//! counted as the client's too: microseconds, against the client's
//! milliseconds. On a saturated runtime, the connection's wait for a worker
//! between frames falls there as well.) HTTP/1 and HTTP/2 alike: over HTTP/2
//! the server asks for the next frame when the client's flow-control window
//! has room.
//!
//! **Event streams** are measured to their response head, by default:
//!
//! - a `text/event-stream` response (server-sent events): the handler ends
//!   when it returns the response, and the stream's life, however long, is
//!   in no figure;
//! - a `101 Switching Protocols` (a WebSocket handshake, any upgrade): the
//!   handler ends at the 101, before the upgraded connection's life;
//! - every gRPC call under [`HandlerLayer::grpc`]: a unary method's answer
//!   is ready when its head is sent, and a server-streaming or
//!   bidirectional method's stream is not its latency. The outcome is
//!   read from the head's `grpc-status` (a call that fails is answered with
//!   its status in the head).
//!
//! A finite stream whose end is its latency (an export, a bounded gRPC
//! stream) is named with [`HandlerLayer::to_end`]; it is then measured to
//! its end, its client's time apart as above.
//!
//! Without the layer, `#[timed_handler]` on an axum handler times the
//! handler fn: to the moment it returns its response, not the body's
//! delivery, which axum and hyper do after it. It cannot see the client.
//!
//! A response that has no body to send ends at its head: a `HEAD` request,
//! a 1xx, 204 or 304 status, `content-length: 0` over HTTP/1, or a body that reports its
//! end already (the server never polls those bodies, and dropping one
//! unpolled is not a disconnect).
//!
//! The outcome is:
//!
//! - `error`: a 5xx status; a `grpc-status` that means the server failed
//!   (`UNKNOWN`, `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`, `INTERNAL`,
//!   `UNAVAILABLE`, `DATA_LOSS`), in the head or the trailers; the service
//!   returned `Err`; or the body failed mid-stream;
//! - `panic`: the service panicked in `call`, in its future or while
//!   producing the body (the server's task drops the handler only after
//!   unwinding, which still reads `panic`);
//! - `cancelled`: the response future or the body was dropped before the
//!   end, which is what a client that disconnects looks like to the server;
//! - `ok`: everything else, 4xx included (the client's mistake, not a fault
//!   of this service).
//!
//! Inside a `#[timed_handler]` (a service called by a handler), the layer's
//! handler nests like any other: it gets its own figures, and its external
//! calls count toward the enclosing handler as well.
//!
//! ## When the request arrived
//!
//! A server on a busy runtime reads a request only when a worker gets to
//! its connection, and calls the layer later still. Served through an
//! [`ArrivalListener`], the layer starts each handler's total when the
//! request's data reached the host instead (on Linux, the kernel's receive
//! timestamp of the data; elsewhere, the time it was read), and the wait
//! until `call` is part of the handler's
//! [backlog](crate#backlog-when-the-service-itself-is-the-bottleneck):
//!
//! ```no_run
//! # #[cfg(feature = "axum")]
//! # async fn demo(app: axum::Router) -> std::io::Result<()> {
//! use selftime::tower::{Arrival, ArrivalListener};
//! let listener = ArrivalListener::bind("0.0.0.0:3000").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<Arrival>()).await
//! # }
//! ```
//!
//! The layer finds the arrival in the request's extensions, where axum puts
//! `ConnectInfo<Arrival>` and tonic (`serve_with_incoming(listener.incoming())`,
//! feature `tonic`) the connection's `Arrival`. A request that came another
//! way starts at `call`. Over HTTP/1 each request has its own arrival, and
//! over HTTP/2 too: each stream's is that of its `HEADERS` frame, read on
//! its own (see [`ArrivalListener`]). Under load the kernel may merge small
//! packets waiting in a socket into one that carries the later arrival, and
//! requests queued that way read as having arrived a little later.
//!
//! # Client side
//!
//! Two layers mark every call through a tower `Service` as an external call
//! to a named dependency, as `#[external_call("…")]` does for a fn. Each call
//! starts at the service's `call` (a buffered client such as a tonic
//! `Channel` sends the request from there) and is one call in the
//! dependency's count. Its response future runs on selftime's I/O thread
//! ([`crate::io`]), as a task of its own, and the call ends when that task
//! has the answer, whether or not the caller's worker is free to see it:
//! the wait from there is the caller's
//! [backlog](crate#backlog-when-the-service-itself-is-the-bottleneck). So
//! the inner service's future must be `Send + 'static` (hyper's and tonic's
//! are), and a call dropped by its caller is aborted there. A tonic
//! `Channel` must be made on the I/O thread too, for its worker to live
//! there: `selftime::io::enter(|| endpoint.connect_lazy())`.
//!
//! - [`ExternalLayer`] works with any service. The call ends when the
//!   response future completes (or is dropped). For an HTTP client that is
//!   the response *head*: a body read afterwards is outside the call, and
//!   counts as the handler's own time.
//! - [`HttpExternalLayer`] works with HTTP services
//!   (`Service<http::Request<_>, Response = http::Response<_>>`: hyper's
//!   client, tonic channels) and keeps the call in flight until the response
//!   body ends, fails or is dropped ([`ExternalBody`]). A response body is
//!   usually read straight through, where this is exactly the wait on the
//!   dependency; if the caller holds a response and does work of its own
//!   before reading on, that work counts as external too. A tonic unary
//!   call reads its message from the body, after the head: use this layer
//!   for tonic, one per client, named after the service it calls:
//!   `CartClient::new(HttpExternalLayer::new("cart").layer(channel))`. A
//!   server-streaming call is then in flight until its stream ends.
//!
//! ```
//! use selftime::tower::HttpExternalLayer;
//! use tower::{service_fn, Layer as _, ServiceExt as _};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // Any HTTP client service: hyper_util's `Client`, a tonic `Channel`, …
//! let billing = service_fn(|_: http::Request<String>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("paid")))
//! });
//! let billing = HttpExternalLayer::new("billing").layer(billing);
//!
//! #[selftime::timed_handler]
//! async fn checkout<S>(billing: S) -> u64
//! where
//!     S: tower::Service<http::Request<String>> + Send,
//!     S::Future: Send,
//! {
//!     let _response = billing.oneshot(http::Request::new(String::new())).await;
//!     selftime::current().unwrap().calls()
//! }
//!
//! assert_eq!(checkout(billing).await, 1);
//! # }
//! ```

mod arrival;
mod client;
mod server;
mod streams;
mod timing;

#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub use arrival::Incoming;
pub use arrival::{Arrival, ArrivalListener, ArrivalStream};
pub use client::{
    ExternalBody, ExternalFuture, ExternalLayer, ExternalService, HttpExternalFuture,
    HttpExternalLayer, HttpExternalService,
};
pub use server::{HandlerBody, HandlerLayer, HandlerService, NoRoute, ResponseFuture};
pub use timing::{InvalidServerTiming, ServerTiming};
