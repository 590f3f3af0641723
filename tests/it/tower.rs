//! The `tower` feature: `HandlerLayer` on the server side, `ExternalLayer`
//! and `HttpExternalLayer` on the client side.
//!
//! Services driven in-process run on tokio's paused clock and get exact
//! figures; a real axum server on a loopback port, called with reqwest and
//! with hyper's client, gets generous bounds on the real clock.

// Compiled into both test binaries, each keeping the tests of its clock:
// the helpers and imports of the other clock's tests go unused in each.
#![allow(dead_code, unused_imports)]

use crate::common::{Capture, Closed, ms, serve};
use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use futures::StreamExt as _;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Empty, Full, StreamBody};
use selftime::tower::{ExternalLayer, HandlerLayer, HttpExternalLayer};
use selftime::{external_call, timed_handler};
use std::convert::Infallible;
use std::time::Duration;
use tokio::time::sleep;
use tower::{Layer as _, ServiceExt as _, service_fn};

type TestBody = UnsyncBoxBody<Bytes, Infallible>;

#[external_call("db")]
async fn db(d: Duration) {
    sleep(d).await;
}

#[external_call("feed")]
async fn feed(d: Duration) {
    sleep(d).await;
}

/// One step of a streamed body: time of the body's own, or a wait on the
/// `feed` dependency, before yielding `chunk`.
#[derive(Clone, Copy)]
enum Step {
    Own(u64, &'static str),
    Feed(u64, &'static str),
}

fn streamed(steps: Vec<Step>) -> TestBody {
    let frames = futures::stream::iter(steps).then(|step| async move {
        let chunk = match step {
            Step::Own(d, chunk) => {
                sleep(ms(d)).await;
                chunk
            }
            Step::Feed(d, chunk) => {
                feed(ms(d)).await;
                chunk
            }
        };
        Ok::<_, Infallible>(Frame::data(Bytes::from_static(chunk.as_bytes())))
    });
    StreamBody::new(frames).boxed_unsync()
}

fn blow_up(what: &str) {
    panic!("{what} blew up");
}

fn get_request(path: &str) -> Request<Empty<Bytes>> {
    Request::get(path).body(Empty::new()).unwrap()
}

/// The response body of a `feed` handler whose body takes 10 ms of its own
/// for frame `a`, then a 20 ms `feed` call for frame `b`; nothing read yet.
async fn own_then_feed() -> impl http_body::Body<Data = Bytes, Error = impl std::fmt::Debug> + Unpin
{
    let service = HandlerLayer::new("feed").layer(service_fn(|_: Request<Empty<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(streamed(vec![
            Step::Own(10, "a"),
            Step::Feed(20, "b"),
        ])))
    }));
    service.oneshot(get_request("/")).await.unwrap().into_body()
}

async fn read_all<B>(body: B) -> Bytes
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    body.collect().await.unwrap().to_bytes()
}

/// Sends a body as hyper does: frame by frame, stopping after trailers
/// (a body's last frame) without polling again, then drops it.
async fn send_as_a_server<B>(body: B)
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let mut body = std::pin::pin!(body);
    while let Some(frame) = body.frame().await {
        if frame.unwrap().is_trailers() {
            break;
        }
    }
}

// ---------------------------------------------------------------------------
// Server side, in-process, paused clock: exact figures.
// ---------------------------------------------------------------------------

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn the_handler_runs_to_the_end_of_the_body_and_counts_calls_made_while_streaming() {
    let (capture, _g) = Capture::install();
    let service = HandlerLayer::new("feed").layer(service_fn(|_: Request<Empty<Bytes>>| async {
        db(ms(5)).await;
        let body = streamed(vec![
            Step::Own(10, "a"),
            Step::Feed(20, "b"),
            Step::Own(3, "c"),
        ]);
        Ok::<_, Infallible>(Response::new(body))
    }));

    let response = service.oneshot(get_request("/feed")).await.unwrap();
    // The head is ready after 5ms; the handler is not over until the body is.
    assert!(capture.named("request").is_empty());
    sleep(ms(100)).await; // the client's own pace is not the handler's time
    assert_eq!(read_all(response.into_body()).await, "abc");

    let span = capture.only("request");
    // 100 of the 138 were the client's, before it asked for the body: not
    // internal time.
    assert_eq!(span.figures(), (138_000, 25_000, 13_000));
    assert_eq!(span.u64("client.duration_us"), 100_000);
    assert_eq!(span.u64("external.calls"), 2);
    assert_eq!(span.breakdown(), "db=5000us/1,feed=20000us/1");
    assert_eq!(span.outcome(), "ok");
    assert_eq!(span.field("otel.name"), Some("feed"));
    assert_eq!(span.field("http.request.method"), Some("GET"));
    assert_eq!(span.field("http.route"), None);
    assert_eq!(span.u64("http.response.status_code"), 200);
    assert_eq!(span.target, "selftime::tower");
    assert_eq!(span.level, "INFO");
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_slow_readers_pace_between_frames_is_the_clients_time() {
    // The handler lasts until its body has been handed over to the end, so
    // a reader that takes its time between frames (backpressure) lengthens
    // its total; that time is the client's, neither internal nor external.
    let (capture, _g) = Capture::install();
    let mut body = own_then_feed().await;
    while let Some(frame) = body.frame().await {
        frame.unwrap();
        sleep(ms(7)).await;
    }
    // a at 10, b at 37; the stream says it has ended only when polled once
    // more, at 44. The reader kept each frame 7 before asking for the next.
    let span = capture.only("request");
    assert_eq!(span.figures(), (44_000, 20_000, 10_000));
    assert_eq!(span.u64("client.duration_us"), 14_000);
    assert_eq!(span.breakdown(), "feed=20000us/1");
    assert_eq!(span.outcome(), "ok");
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_server_error_status_is_an_error() {
    let (capture, _g) = Capture::install();
    let service = HandlerLayer::new("broken").layer(service_fn(|_: Request<Empty<Bytes>>| async {
        db(ms(4)).await;
        let mut response = Response::new(streamed(vec![Step::Own(6, "sorry")]));
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        Ok::<_, Infallible>(response)
    }));
    let response = service.oneshot(get_request("/")).await.unwrap();
    assert_eq!(read_all(response.into_body()).await, "sorry");
    let span = capture.only("request");
    assert_eq!(span.figures(), (10_000, 4_000, 6_000));
    assert_eq!(span.outcome(), "error");
    assert_eq!(span.u64("http.response.status_code"), 503);
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_client_error_status_is_not_an_error_of_ours() {
    let (capture, _g) = Capture::install();
    let service = HandlerLayer::new("lookup").layer(service_fn(|_: Request<Empty<Bytes>>| async {
        let mut response = Response::new(Full::new(Bytes::from_static(b"no such user")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        Ok::<_, Infallible>(response)
    }));
    let response = service.oneshot(get_request("/")).await.unwrap();
    read_all(response.into_body()).await;
    let span = capture.only("request");
    assert_eq!(span.outcome(), "ok");
    assert_eq!(span.u64("http.response.status_code"), 404);
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_service_error_is_an_error() {
    let (capture, _g) = Capture::install();
    let service =
        HandlerLayer::new("failing").layer(service_fn(|_: Request<Empty<Bytes>>| async {
            db(ms(8)).await;
            Err::<Response<Empty<Bytes>>, _>("backend gone")
        }));
    assert_eq!(
        service.oneshot(get_request("/")).await.unwrap_err(),
        "backend gone"
    );
    let span = capture.only("request");
    assert_eq!(span.figures(), (8_000, 8_000, 0));
    assert_eq!(span.outcome(), "error");
    assert_eq!(span.field("http.response.status_code"), None);
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn grpc_statuses_that_mean_a_server_fault_are_errors() {
    fn grpc(status: &'static str, in_trailers: bool) -> Response<TestBody> {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", status.parse().unwrap());
        if !in_trailers {
            // A trailers-only response: the status is in the head.
            let mut response = Response::new(Empty::new().boxed_unsync());
            *response.headers_mut() = trailers;
            return response;
        }
        let frames = futures::stream::iter([
            Ok(Frame::data(Bytes::from_static(b"\0\0\0\0\0"))),
            Ok(Frame::trailers(trailers)),
        ]);
        Response::new(StreamBody::new(frames).boxed_unsync())
    }

    for (status, in_trailers, outcome) in [
        ("0", true, "ok"),
        ("5", true, "ok"),     // NOT_FOUND: the client's
        ("13", true, "error"), // INTERNAL
        ("14", false, "error"),
        ("3", false, "ok"), // INVALID_ARGUMENT
    ] {
        let (capture, _g) = Capture::install();
        let service = HandlerLayer::new("grpc")
            .route(|parts| Some(parts.uri.path()))
            .layer(service_fn(move |_: Request<Empty<Bytes>>| async move {
                Ok::<_, Infallible>(grpc(status, in_trailers))
            }));
        let request = Request::post("/shop.Cart/Checkout")
            .body(Empty::new())
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        // A `StreamBody` never says it has ended: the trailers end it.
        send_as_a_server(response.into_body()).await;
        let span = capture.only("request");
        assert_eq!(span.outcome(), outcome, "grpc-status {status}");
        assert_eq!(span.field("otel.name"), Some("POST /shop.Cart/Checkout"));
    }
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_content_length_ends_the_body_at_its_last_byte_over_http1_only() {
    // Data, then 10 ms later trailers saying the server failed. An HTTP/1
    // server stops at the last byte of the `content-length` (and sends no
    // trailers); an HTTP/2 server goes on to the trailers.
    fn response() -> Response<TestBody> {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "13".parse().unwrap());
        let frames = futures::stream::iter([
            Frame::data(Bytes::from_static(b"12345")),
            Frame::trailers(trailers),
        ])
        .then(|frame| async move {
            if frame.is_trailers() {
                sleep(ms(10)).await;
            }
            Ok::<_, Infallible>(frame)
        });
        let mut response = Response::new(StreamBody::new(frames).boxed_unsync());
        response
            .headers_mut()
            .insert(CONTENT_LENGTH, "5".parse().unwrap());
        response
    }
    for (version, outcome, total) in [
        (Version::HTTP_11, "ok", 0),
        (Version::HTTP_2, "error", 10_000),
    ] {
        let (capture, _g) = Capture::install();
        let service =
            HandlerLayer::new("sized").layer(service_fn(|_: Request<Empty<Bytes>>| async {
                Ok::<_, Infallible>(response())
            }));
        let mut request = get_request("/");
        *request.version_mut() = version;
        let mut body = std::pin::pin!(service.oneshot(request).await.unwrap().into_body());
        // The first frame, as a server polls it; then on to the end if the
        // server would (HTTP/2).
        body.frame().await.unwrap().unwrap();
        if version == Version::HTTP_2 {
            send_as_a_server(body).await;
        }
        let span = capture.only("request");
        assert_eq!(span.outcome(), outcome, "{version:?}");
        assert_eq!(span.figures(), (total, 0, total), "{version:?}");
    }
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_body_dropped_mid_stream_is_cancelled() {
    let (capture, _g) = Capture::install();
    let mut body = own_then_feed().await;
    body.frame().await.unwrap().unwrap();
    // Mid-way through the feed call, the client goes away.
    let _ = tokio::time::timeout(ms(5), body.frame()).await;
    drop(body);
    let span = capture.only("request");
    assert_eq!(span.figures(), (15_000, 5_000, 10_000));
    assert_eq!(span.breakdown(), "feed=5000us/1");
    assert_eq!(span.outcome(), "cancelled");
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_response_future_dropped_before_the_head_is_cancelled() {
    let (capture, _g) = Capture::install();
    let service = HandlerLayer::new("slow").layer(service_fn(|_: Request<Empty<Bytes>>| async {
        db(ms(50)).await;
        Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
    }));
    let timed_out = tokio::time::timeout(ms(30), service.oneshot(get_request("/"))).await;
    assert!(timed_out.is_err());
    let span = capture.only("request");
    assert_eq!(span.figures(), (30_000, 30_000, 0));
    assert_eq!(span.outcome(), "cancelled");
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_panic_in_the_service_is_a_panic() {
    let (capture, _g) = Capture::install();
    let service = HandlerLayer::new("boom").layer(service_fn(|_: Request<Empty<Bytes>>| async {
        db(ms(5)).await;
        blow_up("the handler");
        Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
    }));
    // tokio's task harness catches the panic and drops the future after
    // unwinding: the handler must still read `panic`, not `cancelled`.
    let joined = tokio::spawn(service.oneshot(get_request("/"))).await;
    assert!(joined.unwrap_err().is_panic());
    let span = capture.only("request");
    assert_eq!(span.figures(), (5_000, 5_000, 0));
    assert_eq!(span.outcome(), "panic");
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_panic_while_producing_the_body_is_a_panic() {
    let (capture, _g) = Capture::install();
    let service = HandlerLayer::new("boom").layer(service_fn(|_: Request<Empty<Bytes>>| async {
        let frames = futures::stream::iter([1, 2]).then(|n| async move {
            sleep(ms(4)).await;
            assert!(n < 2, "the body blew up");
            Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"x")))
        });
        Ok::<_, Infallible>(Response::new(StreamBody::new(frames)))
    }));
    let response = service.oneshot(get_request("/")).await.unwrap();
    let joined = tokio::spawn(read_all(response.into_body())).await;
    assert!(joined.unwrap_err().is_panic());
    let span = capture.only("request");
    assert_eq!(span.figures(), (8_000, 0, 8_000));
    assert_eq!(span.outcome(), "panic");
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn responses_without_a_body_to_send_end_at_the_head() {
    // A server drops these bodies without polling them: that must read
    // `ok`, not `cancelled`, and end the handler at the head.
    let (capture, _g) = Capture::install();
    let service =
        HandlerLayer::new("head").layer(service_fn(|request: Request<Empty<Bytes>>| async move {
            db(ms(5)).await;
            let mut response = Response::new(streamed(vec![Step::Own(1_000, "never sent")]));
            if request.uri().path() == "/no-content" {
                *response.status_mut() = StatusCode::NO_CONTENT;
            }
            if request.uri().path() == "/empty" {
                response = Response::new(Full::new(Bytes::new()).boxed_unsync());
            }
            if request.uri().path() == "/zero-length" {
                // The body does not say it is empty; the header does.
                response
                    .headers_mut()
                    .insert(CONTENT_LENGTH, "0".parse().unwrap());
            }
            Ok::<_, Infallible>(response)
        }));

    let head = Request::head("/").body(Empty::new()).unwrap();
    let requests = [
        head,
        get_request("/no-content"),
        get_request("/empty"),
        get_request("/zero-length"),
    ];
    for request in requests {
        let response = service.clone().oneshot(request).await.unwrap();
        sleep(ms(20)).await;
        drop(response);
    }
    let spans = capture.named("request");
    assert_eq!(spans.len(), 4);
    for span in &spans {
        assert_eq!(span.figures(), (5_000, 5_000, 0), "{span:?}");
        assert_eq!(span.outcome(), "ok", "{span:?}");
    }
    assert_eq!(spans[0].field("http.request.method"), Some("HEAD"));
    assert_eq!(spans[1].u64("http.response.status_code"), 204);
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_content_length_ends_the_handler_at_its_last_byte() {
    // hyper stops polling a body once it has sent `content-length` bytes,
    // even if the body never says it has ended.
    let (capture, _g) = Capture::install();
    let service = HandlerLayer::new("sized").layer(service_fn(|_: Request<Empty<Bytes>>| async {
        let frames = streamed(vec![Step::Own(3, "hel"), Step::Feed(4, "lo")])
            .into_data_stream()
            .map(|chunk| chunk.map(Frame::data))
            .chain(futures::stream::pending());
        let response = Response::builder()
            .header("content-length", "5")
            .body(StreamBody::new(frames))
            .unwrap();
        Ok::<_, Infallible>(response)
    }));
    let response = service.oneshot(get_request("/")).await.unwrap();
    let mut body = response.into_body();
    body.frame().await.unwrap().unwrap();
    body.frame().await.unwrap().unwrap();
    sleep(ms(50)).await;
    drop(body);
    let span = capture.only("request");
    assert_eq!(span.figures(), (7_000, 4_000, 3_000));
    assert_eq!(span.outcome(), "ok");
}

#[timed_handler]
async fn gateway() -> Bytes {
    sleep(ms(5)).await;
    let inner = HandlerLayer::new("inner").layer(service_fn(|_: Request<Empty<Bytes>>| async {
        db(ms(10)).await;
        Ok::<_, Infallible>(Response::new(streamed(vec![
            Step::Own(2, "x"),
            Step::Feed(20, "y"),
        ])))
    }));
    let response = inner.oneshot(get_request("/")).await.unwrap();
    let body = read_all(response.into_body()).await;
    sleep(ms(5)).await;
    body
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_layer_inside_a_timed_handler_nests() {
    let (capture, _g) = Capture::install();
    assert_eq!(gateway().await, "xy");
    let inner = capture.only("request");
    assert_eq!(inner.figures(), (32_000, 30_000, 2_000));
    assert_eq!(inner.breakdown(), "db=10000us/1,feed=20000us/1");
    // The outer handler sees the inner one's waits, body included.
    let outer = capture.only("gateway");
    assert_eq!(outer.figures(), (42_000, 30_000, 12_000));
    assert_eq!(outer.u64("external.calls"), 2);
    assert_eq!(outer.breakdown(), "db=10000us/1,feed=20000us/1");
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn routes_name_handlers_with_bounded_methods() {
    let (capture, _g) = Capture::install();
    let service = HandlerLayer::new("fallback")
        .route(|parts| parts.uri.path().strip_prefix("/api"))
        .layer(service_fn(|_: Request<Empty<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
        }));
    let purge = Method::from_bytes(b"PURGE").unwrap();
    let requests = [
        Request::delete("/api/carts/{id}")
            .body(Empty::new())
            .unwrap(),
        Request::builder()
            .method(purge)
            .uri("/api/cache")
            .body(Empty::new())
            .unwrap(),
        get_request("/health"),
    ];
    for request in requests {
        let response = service.clone().oneshot(request).await.unwrap();
        read_all(response.into_body()).await;
    }
    let spans = capture.named("request");
    let names: Vec<_> = spans
        .iter()
        .map(|s| s.field("otel.name").unwrap())
        .collect();
    assert_eq!(names, ["DELETE /carts/{id}", "_OTHER /cache", "fallback"]);
    let routes: Vec<_> = spans.iter().map(|s| s.field("http.route")).collect();
    assert_eq!(routes, [Some("/carts/{id}"), Some("/cache"), None]);
    assert_eq!(spans[1].field("http.request.method"), Some("_OTHER"));
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn the_grpc_layer_names_rpcs_after_their_method_and_nothing_else() {
    let (capture, _g) = Capture::install();
    let service = HandlerLayer::grpc().layer(service_fn(|_: Request<Empty<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
    }));
    let paths = [
        "/shop.v1.Cart/Checkout",
        "/Health/Check",
        "/shop.Cart/",
        "/shop.Cart/Checkout/more",
        "/shop..Cart/Checkout",
        "/shop.Cart/Check-out",
        "/",
    ];
    for path in paths {
        let request = Request::post(path).body(Empty::new()).unwrap();
        let response = service.clone().oneshot(request).await.unwrap();
        read_all(response.into_body()).await;
    }
    let spans = capture.named("request");
    let names: Vec<_> = spans.iter().map(|s| s.field("otel.name")).collect();
    assert_eq!(
        names,
        [
            Some("/shop.v1.Cart/Checkout"),
            Some("/Health/Check"),
            Some("unmatched"),
            Some("unmatched"),
            Some("unmatched"),
            Some("unmatched"),
            Some("unmatched"),
        ]
    );
    let methods: Vec<_> = spans.iter().map(|s| s.field("rpc.method")).collect();
    assert_eq!(
        methods[..2],
        [Some("shop.v1.Cart/Checkout"), Some("Health/Check")]
    );
    assert!(methods[2..].iter().all(Option::is_none), "{methods:?}");
    assert_eq!(spans[0].field("rpc.system.name"), Some("grpc"));
    assert!(spans.iter().all(|s| s.field("http.route").is_none()));
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_grpc_method_is_named_only_once_the_server_has_answered_it() {
    let (capture, _g) = Capture::install();
    // A server that has one method: it answers the others as tonic does
    // (HTTP 200, `grpc-status: 12` in the head), or with a 404.
    let service =
        HandlerLayer::grpc().layer(service_fn(|request: Request<Empty<Bytes>>| async move {
            let mut response = Response::new(Empty::<Bytes>::new());
            match request.uri().path() {
                "/it.tower.Names/Kept" => {}
                "/it.tower.Names/NotFound" => *response.status_mut() = StatusCode::NOT_FOUND,
                _ => {
                    let headers = response.headers_mut();
                    headers.insert("grpc-status", "12".parse().unwrap());
                }
            }
            Ok::<_, Infallible>(response)
        }));
    let paths = [
        "/it.tower.Names/Missing",
        "/it.tower.Names/NotFound",
        "/it.tower.Names/Kept",
        "/it.tower.Names/Missing",
        "/it.tower.Names/Kept",
    ];
    for path in paths {
        let request = Request::post(path).body(Empty::new()).unwrap();
        let response = service.clone().oneshot(request).await.unwrap();
        read_all(response.into_body()).await;
    }
    let spans = capture.named("request");
    let names: Vec<_> = spans.iter().map(|s| s.field("otel.name")).collect();
    assert_eq!(
        names,
        [
            Some("unmatched"),
            Some("unmatched"),
            Some("/it.tower.Names/Kept"),
            Some("unmatched"),
            Some("/it.tower.Names/Kept"),
        ]
    );
    // The span still says which method was called.
    let methods: Vec<_> = spans.iter().map(|s| s.field("rpc.method")).collect();
    assert_eq!(methods[0], Some("it.tower.Names/Missing"));
    assert_eq!(methods[1], Some("it.tower.Names/NotFound"));
    assert_eq!(spans[0].outcome(), "error");
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn axum_routes_name_handlers_by_matched_path() {
    let (capture, _g) = Capture::install();
    let app = Router::new()
        .route(
            "/users/{id}",
            get(|| async {
                db(ms(3)).await;
                "someone"
            }),
        )
        .layer(HandlerLayer::matched_path());
    for path in ["/users/42", "/users/43", "/nowhere"] {
        let request = Request::get(path).body(axum::body::Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        read_all(response.into_body()).await;
    }
    let spans = capture.named("request");
    assert_eq!(spans.len(), 3);
    for span in &spans[..2] {
        assert_eq!(span.field("otel.name"), Some("GET /users/{id}"));
        assert_eq!(span.field("http.route"), Some("/users/{id}"));
        assert_eq!(span.figures(), (3_000, 3_000, 0));
    }
    assert_eq!(spans[2].field("otel.name"), Some("unmatched"));
    assert_eq!(spans[2].u64("http.response.status_code"), 404);
    assert_eq!(spans[2].outcome(), "ok");
}

// ---------------------------------------------------------------------------
// Client side, in-process, paused clock.
// ---------------------------------------------------------------------------

#[timed_handler]
async fn checkout_with<S, B>(billing: S, read_after: Duration) -> usize
where
    S: tower::Service<Request<Empty<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let response = billing.oneshot(get_request("/charge")).await.unwrap();
    sleep(read_after).await;
    read_all(response.into_body()).await.len()
}

// The client layers run a call's future on selftime's I/O thread (here,
// under the paused clock, where it is polled): it must be `Send + 'static`.
fn billing_service() -> impl tower::Service<
    Request<Empty<Bytes>>,
    Response = Response<TestBody>,
    Error = Infallible,
    Future: Send + 'static,
> + Clone {
    service_fn(|_: Request<Empty<Bytes>>| async {
        sleep(ms(10)).await;
        Ok::<_, Infallible>(Response::new(streamed(vec![
            Step::Own(5, "paid"),
            Step::Own(5, "!"),
        ])))
    })
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn the_external_layer_measures_to_the_response_future() {
    let (capture, _g) = Capture::install();
    let billing = ExternalLayer::new("billing").layer(billing_service());
    assert_eq!(checkout_with(billing, ms(3)).await, 5);
    let span = capture.only("checkout_with");
    // 10 to the head (external), then 3 + 10 reading the body (our own).
    assert_eq!(span.figures(), (23_000, 10_000, 13_000));
    assert_eq!(span.breakdown(), "billing=10000us/1");
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn the_http_external_layer_measures_to_the_end_of_the_body() {
    let (capture, _g) = Capture::install();
    let billing = HttpExternalLayer::new("billing").layer(billing_service());
    assert_eq!(checkout_with(billing, ms(3)).await, 5);
    let span = capture.only("checkout_with");
    // The 3ms before reading on are inside the call: it is in flight until
    // the body ends.
    assert_eq!(span.figures(), (23_000, 23_000, 0));
    assert_eq!(span.breakdown(), "billing=23000us/1");
}

#[timed_handler]
async fn peek<S>(billing: S) -> StatusCode
where
    S: tower::Service<
            Request<Empty<Bytes>>,
            Response = Response<selftime::tower::ExternalBody<TestBody>>,
        >,
    S::Error: std::fmt::Debug,
{
    let response = billing.oneshot(get_request("/charge")).await.unwrap();
    let status = response.status();
    drop(response); // the body, unread, ends the call
    sleep(ms(7)).await;
    status
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn an_http_response_dropped_unread_ends_the_call() {
    let (capture, _g) = Capture::install();
    let billing = HttpExternalLayer::new("billing").layer(billing_service());
    assert_eq!(peek(billing).await, StatusCode::OK);
    let span = capture.only("peek");
    assert_eq!(span.figures(), (17_000, 10_000, 7_000));
    assert_eq!(span.breakdown(), "billing=10000us/1");
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn client_layers_outside_any_handler_just_call() {
    // A name of this test's own: orphan counts are per process.
    const DEP: &str = "billing-outside-any-handler";
    let (capture, _g) = Capture::install();
    let before = selftime::orphan_calls().get(DEP);
    let billing = HttpExternalLayer::new(DEP).layer(billing_service());
    let response = billing.oneshot(get_request("/")).await.unwrap();
    assert_eq!(read_all(response.into_body()).await, "paid!");
    let plain = ExternalLayer::new(DEP).layer(billing_service());
    assert!(plain.oneshot(get_request("/")).await.is_ok());
    assert!(capture.closed().is_empty());
    // Each call is counted as an orphan, once.
    assert_eq!(selftime::orphan_calls().get(DEP), before + 2);
}

// ---------------------------------------------------------------------------
// A real axum server on a loopback port, real clock: generous bounds only.
// ---------------------------------------------------------------------------

/// The server's `request` span for `route`, once it has closed.
async fn server_span(capture: &Capture, route: &str) -> Closed {
    for _ in 0..500 {
        let found: Vec<_> = capture
            .named("request")
            .into_iter()
            .filter(|s| s.field("http.route") == Some(route))
            .collect();
        if let [span] = found.as_slice() {
            return span.clone();
        }
        assert!(
            found.len() < 2,
            "more than one request to {route}: {found:#?}"
        );
        sleep(ms(10)).await;
    }
    panic!(
        "no closed request span for {route}: {:#?}",
        capture.closed()
    );
}

#[external_call("legacy")]
async fn legacy(d: Duration) -> &'static str {
    sleep(d).await;
    "legacy says hi"
}

async fn slow_stream() -> axum::body::Body {
    let frames = futures::stream::iter(0..3).then(|_| async {
        feed(ms(40)).await;
        Ok::<_, Infallible>(Bytes::from_static(b"chunk\n"))
    });
    axum::body::Body::from_stream(frames)
}

async fn endless() -> axum::body::Body {
    let frames = futures::stream::repeat(()).then(|()| async {
        sleep(ms(20)).await;
        Ok::<_, Infallible>(Bytes::from_static(b"tick\n"))
    });
    axum::body::Body::from_stream(frames)
}

fn app() -> Router {
    Router::new()
        .route("/legacy", get(|| async { legacy(ms(50)).await }))
        .route(
            "/broken",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "broken") }),
        )
        .route("/stream", get(slow_stream))
        .route("/endless", get(endless))
        .route(
            "/panic",
            get(|| async {
                blow_up("the handler");
                "unreachable"
            }),
        )
        .layer(HandlerLayer::matched_path())
}

#[cfg(not(feature = "test-util"))]
#[tokio::test]
async fn over_loopback_an_external_call_in_a_handler_is_external_time() {
    let (capture, _g) = Capture::install();
    let addr = serve(app()).await;
    let text = reqwest::get(format!("http://{addr}/legacy"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "legacy says hi");
    let span = server_span(&capture, "/legacy").await;
    let (total, external, internal) = span.figures();
    assert!(external >= 50_000, "{span:?}");
    assert!(external <= total, "{span:?}");
    // The rest is internal, but for the moments the server spent sending
    // the response, which are the client's.
    let client = span.u64("client.duration_us");
    assert!(client < 10_000, "{span:?}");
    assert_eq!(total - external - client, internal);
    assert_eq!(span.u64("external.calls"), 1);
    assert!(span.breakdown().starts_with("legacy="), "{span:?}");
    assert_eq!(span.outcome(), "ok");
    assert_eq!(span.field("otel.name"), Some("GET /legacy"));
    assert_eq!(span.u64("http.response.status_code"), 200);
}

#[cfg(not(feature = "test-util"))]
#[tokio::test]
async fn over_loopback_a_500_is_an_error() {
    let (capture, _g) = Capture::install();
    let addr = serve(app()).await;
    let response = reqwest::get(format!("http://{addr}/broken")).await.unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(response.text().await.unwrap(), "broken");
    let span = server_span(&capture, "/broken").await;
    assert_eq!(span.outcome(), "error");
    assert_eq!(span.u64("http.response.status_code"), 500);
}

#[cfg(not(feature = "test-util"))]
#[tokio::test]
async fn over_loopback_a_streamed_body_is_in_the_total() {
    let (capture, _g) = Capture::install();
    let addr = serve(app()).await;
    let response = reqwest::get(format!("http://{addr}/stream")).await.unwrap();
    assert_eq!(response.text().await.unwrap(), "chunk\n".repeat(3));
    let span = server_span(&capture, "/stream").await;
    let (total, external, _) = span.figures();
    // The handler returned at once; the three 40ms waits were in the body.
    assert!(total >= 120_000, "{span:?}");
    assert!((120_000..=total).contains(&external), "{span:?}");
    assert_eq!(span.u64("external.calls"), 3);
    assert!(span.breakdown().starts_with("feed="), "{span:?}");
    assert!(span.breakdown().ends_with("us/3"), "{span:?}");
    assert_eq!(span.outcome(), "ok");
}

#[cfg(not(feature = "test-util"))]
#[tokio::test]
async fn over_loopback_a_client_that_hangs_up_mid_body_cancels() {
    let (capture, _g) = Capture::install();
    let addr = serve(app()).await;
    let mut response = reqwest::get(format!("http://{addr}/endless"))
        .await
        .unwrap();
    let first = response.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b"tick"));
    drop(response);
    let span = server_span(&capture, "/endless").await;
    assert_eq!(span.outcome(), "cancelled");
    assert!(span.u64("total.duration_us") >= 20_000, "{span:?}");
}

#[cfg(not(feature = "test-util"))]
#[tokio::test]
async fn over_loopback_a_panicking_handler_is_a_panic() {
    let (capture, _g) = Capture::install();
    let addr = serve(app()).await;
    // hyper's connection task unwinds; the client sees the connection close.
    assert!(reqwest::get(format!("http://{addr}/panic")).await.is_err());
    let span = server_span(&capture, "/panic").await;
    assert_eq!(span.outcome(), "panic");
}

#[cfg(not(feature = "test-util"))]
#[tokio::test]
async fn over_loopback_hyper_through_the_client_layers() {
    let addr = serve(app()).await;
    let url: http::Uri = format!("http://{addr}/stream").parse().unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<Bytes>>();

    #[timed_handler]
    async fn fetch<S, B>(client: S, url: http::Uri) -> Bytes
    where
        S: tower::Service<Request<Empty<Bytes>>, Response = Response<B>>,
        S::Error: std::fmt::Debug,
        B: http_body::Body,
        B::Error: std::fmt::Debug,
    {
        let request = Request::get(url).body(Empty::new()).unwrap();
        let response = client.oneshot(request).await.unwrap();
        read_all(response.into_body()).await
    }

    // To the end of the body: the server's three 40ms waits are external.
    let (capture, guard) = Capture::install();
    let whole = HttpExternalLayer::new("streamer").layer(client.clone());
    assert_eq!(fetch(whole, url.clone()).await, "chunk\n".repeat(3));
    let span = capture.only("fetch");
    let (total, external, _) = span.figures();
    assert!((120_000..=total).contains(&external), "{span:?}");
    assert!(span.breakdown().starts_with("streamer="), "{span:?}");
    assert!(span.breakdown().ends_with("us/1"), "{span:?}");
    drop(guard);

    // To the head only: the body arrives afterwards, as the handler's time.
    let (capture, _g) = Capture::install();
    let head_only = ExternalLayer::new("streamer").layer(client);
    assert_eq!(fetch(head_only, url).await, "chunk\n".repeat(3));
    let span = capture.only("fetch");
    let (_, _, internal) = span.figures();
    assert!(internal >= 60_000, "{span:?}");
    assert!(span.breakdown().ends_with("us/1"), "{span:?}");
}
