//! `Server-Timing` both ways: what `HandlerLayer` tells the callers its
//! policy trusts, and how a measured caller splits its call into the
//! dependency's own time and the time between the two.
//!
//! In-process services on tokio's paused clock get exact figures; real
//! servers over loopback, with a TCP forwarder nobody instruments in
//! between, get generous bounds, checked against what the server measured
//! of itself.

// Compiled into both test binaries, each keeping the tests of its clock:
// the helpers and imports of the other clock's tests go unused in each.
#![allow(dead_code, unused_imports)]

use crate::common::{Capture, Closed, forwarder, ms, serve_arrivals};
use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Empty, Full};
use selftime::tower::{HandlerLayer, HttpExternalLayer, InvalidServerTiming, ServerTiming};
use selftime::{Snapshot, external_call, timed_handler};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::sleep;
use tower::{Layer as _, ServiceExt as _, service_fn};

#[external_call("db")]
async fn db(d: Duration) {
    sleep(d).await;
}

/// 20 on `db`, then 5 of its own.
async fn page(_: Request<Empty<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    db(ms(20)).await;
    sleep(ms(5)).await;
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

fn timing(response: &Response<impl http_body::Body>) -> Vec<&str> {
    response
        .headers()
        .get_all("server-timing")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

async fn ask(policy: ServerTiming, request: Request<Empty<Bytes>>) -> Vec<String> {
    let service = HandlerLayer::new("page")
        .server_timing(policy)
        .layer(service_fn(page));
    let response = service.oneshot(request).await.unwrap();
    timing(&response).into_iter().map(str::to_owned).collect()
}

fn request(headers: &[(&'static str, &str)]) -> Request<Empty<Bytes>> {
    let mut request = Request::get("/").body(Empty::new()).unwrap();
    for &(name, value) in headers {
        request.headers_mut().append(name, value.parse().unwrap());
    }
    request
}

fn from(peer: &str) -> Request<Empty<Bytes>> {
    let mut request = request(&[]);
    let addr: SocketAddr = peer.parse().unwrap();
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(addr));
    request
}

// ---------------------------------------------------------------------------
// The server's header, in-process, paused clock.
// ---------------------------------------------------------------------------

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_trusted_request_is_told_the_figures_at_the_head_and_others_nothing() {
    let policy = ServerTiming::for_header("x-debug-timing", "s3cret").unwrap();
    let told = ["total;dur=25.000, internal;dur=5.000, external;dur=20.000"];
    assert_eq!(
        ask(policy.clone(), request(&[("x-debug-timing", "s3cret")])).await,
        told
    );
    // Untrusted: no header, a wrong value, or the name alone.
    assert!(ask(policy.clone(), request(&[])).await.is_empty());
    assert!(
        ask(policy.clone(), request(&[("x-debug-timing", "guess")]))
            .await
            .is_empty()
    );
    assert!(
        ask(policy.clone(), request(&[("x-debug-timing", "")]))
            .await
            .is_empty()
    );
    // Dependencies only when asked for.
    assert_eq!(
        ask(
            policy.with_dependencies(),
            request(&[("x-debug-timing", "s3cret")])
        )
        .await,
        [
            "total;dur=25.000, internal;dur=5.000, external;dur=20.000, \
          dependency;desc=\"db\";dur=20.000"
        ]
    );
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn peers_are_trusted_by_network_and_unknown_peers_are_not() {
    let policy = ServerTiming::for_peers(["10.0.0.0/8", "fd00::/8"]).unwrap();
    for trusted in ["10.1.2.3:5000", "[::ffff:10.9.9.9]:80", "[fd12::1]:443"] {
        assert_eq!(
            ask(policy.clone(), from(trusted)).await.len(),
            1,
            "{trusted}"
        );
    }
    for stranger in ["192.168.1.1:5000", "[::1]:80", "[2001:db8::1]:443"] {
        assert!(
            ask(policy.clone(), from(stranger)).await.is_empty(),
            "{stranger}"
        );
    }
    // No peer known (no listener said): not trusted.
    assert!(ask(policy, request(&[])).await.is_empty());
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_function_can_decide() {
    let policy = ServerTiming::when(|parts| parts.uri.query() == Some("debug"));
    let mut asked = request(&[]);
    *asked.uri_mut() = "/?debug".parse().unwrap();
    assert_eq!(ask(policy.clone(), asked).await.len(), 1);
    assert!(ask(policy, request(&[])).await.is_empty());
}

#[test]
fn a_policy_that_cannot_be_is_an_error_not_a_panic() {
    let err = |r: Result<ServerTiming, InvalidServerTiming>| r.unwrap_err().to_string();
    assert_eq!(
        err(ServerTiming::for_peers(["10.0.0.0/8", "10.0.0.0/33"])),
        "`10.0.0.0/33` is not a network: write one as `10.0.0.0/8` or `::1/128`"
    );
    assert_eq!(
        err(ServerTiming::for_peers(["localhost"])),
        "`localhost` is not a network: write one as `10.0.0.0/8` or `::1/128`"
    );
    assert_eq!(
        err(ServerTiming::for_header("x debug", "1")),
        "`x debug` is not a header name"
    );
    assert_eq!(
        err(ServerTiming::for_header("x-debug", "line\nbreak")),
        "the value for `x-debug` is not a header value"
    );
    // The secret is not printed.
    let policy = ServerTiming::for_header("x-debug", "s3cret").unwrap();
    assert!(!format!("{policy:?}").contains("s3cret"));
}

// ---------------------------------------------------------------------------
// The caller's split, in-process, paused clock.
// ---------------------------------------------------------------------------

/// A dependency that answers after 15 with `header` as its `Server-Timing`.
fn billing(
    header: &'static str,
) -> impl tower::Service<
    Request<Empty<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future: Send + 'static,
> + Clone {
    service_fn(move |_: Request<Empty<Bytes>>| async move {
        sleep(ms(15)).await;
        let mut response = Response::new(Full::new(Bytes::from_static(b"paid")));
        if !header.is_empty() {
            response
                .headers_mut()
                .insert("server-timing", header.parse().unwrap());
        }
        Ok::<_, Infallible>(response)
    })
}

#[timed_handler]
async fn charge<S, B>(billing: S) -> Snapshot
where
    S: tower::Service<Request<Empty<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let response = billing.oneshot(request(&[])).await.unwrap();
    response.into_body().collect().await.unwrap();
    selftime::current().unwrap()
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_call_splits_into_the_dependencys_own_time_and_the_time_between() {
    let (capture, _g) = Capture::install();
    let layer = HttpExternalLayer::new("billing");
    let so_far = charge(layer.layer(billing("cache;desc=hit, total;dur=10"))).await;
    let dependency = so_far.dependencies().next().unwrap();
    assert_eq!(dependency.duration(), ms(15));
    assert_eq!(dependency.between(), Some(ms(5)));
    assert_eq!(dependency.own(), Some(ms(10)));
    assert_eq!(so_far.between(), Some(ms(5)));
    let span = capture.only("charge");
    assert_eq!(span.figures(), (15_000, 15_000, 0));
    assert_eq!(span.breakdown(), "billing=15000us/1;between=5000us");
    assert_eq!(span.u64("external.between_us"), 5_000);

    // A callee that says it took longer than the call: its clock, or its
    // rounding. Nothing between, and its own time is the call's.
    let so_far = charge(layer.layer(billing("total;dur=15.4"))).await;
    let dependency = so_far.dependencies().next().unwrap();
    assert_eq!(
        (dependency.between(), dependency.own()),
        (Some(ms(0)), Some(ms(15)))
    );
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn without_the_header_or_with_a_hostile_one_nothing_changes() {
    let (capture, _g) = Capture::install();
    let layer = HttpExternalLayer::new("billing");
    let long = Box::leak(format!("{}total;dur=1", "x;dur=1, ".repeat(600)).into_boxed_str());
    for header in [
        "",
        "cache;desc=hit",
        "total;dur=-5",
        "total;dur=NaN",
        "total;dur=1e2",
        "total;dur=abc",
        "total",
        "total;dur=1, total;dur=2",
        "total;dur=1;dur=2",
        "total;dur=99999999999",
        long,
    ] {
        let so_far = charge(layer.layer(billing(header))).await;
        let dependency = so_far.dependencies().next().unwrap();
        assert_eq!(
            (dependency.between(), dependency.own()),
            (None, None),
            "{header}"
        );
        assert_eq!(so_far.between(), None);
        let span = capture.take().pop().unwrap();
        assert_eq!(span.breakdown(), "billing=15000us/1", "{header}");
        assert_eq!(span.field("external.between_us"), None, "{header}");
        assert_eq!(span.figures(), (15_000, 15_000, 0), "{header}");
    }
}

/// An in-process hop nobody instruments: 7 before the request goes on.
fn slow_hop<S>(
    inner: S,
) -> impl tower::Service<
    Request<Empty<Bytes>>,
    Response = S::Response,
    Error = S::Error,
    Future: Send + 'static,
> + Clone
where
    S: tower::Service<Request<Empty<Bytes>>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    service_fn(move |request| {
        let inner = inner.clone();
        async move {
            sleep(ms(7)).await;
            inner.oneshot(request).await
        }
    })
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn both_ends_measured_the_same_way_agree() {
    let (capture, _g) = Capture::install();
    let server = HandlerLayer::new("page")
        .server_timing(ServerTiming::when(|_| true))
        .layer(service_fn(page));
    let client = HttpExternalLayer::new("pages").layer(slow_hop(server));
    let so_far = charge(client).await;
    let dependency = so_far.dependencies().next().unwrap();
    // The hop's 7 are between; the page's 25 its own, as the page measured.
    assert_eq!(dependency.duration(), ms(32));
    assert_eq!(dependency.between(), Some(ms(7)));
    assert_eq!(dependency.own(), Some(ms(25)));
    let page = capture.only("request");
    assert_eq!(page.u64("total.duration_us"), 25_000);
    let charge = capture.only("charge");
    // In one process the page's handler nests in the caller's, so its call
    // to `db` counts toward the caller as well.
    assert_eq!(
        charge.breakdown(),
        "pages=32000us/1;between=7000us,db=20000us/1"
    );
    assert_eq!(charge.u64("external.between_us"), 7_000);
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn a_grpc_server_tells_a_grpc_client_in_its_metadata() {
    use crate::shop::cart_client::CartClient;
    let (capture, _g) = Capture::install();
    let channel = crate::grpc::in_memory_channel_with(
        HandlerLayer::grpc().server_timing(ServerTiming::when(|_| true)),
    )
    .await;
    let cart = CartClient::new(HttpExternalLayer::new("cart").layer(channel));
    crate::grpc::place_order(cart, "c1").await.unwrap();
    let client = capture.only("place_order");
    // Checkout is 20 on inventory and 5 of its own; nothing in between.
    assert_eq!(client.breakdown(), "cart=25000us/1;between=0us");
    assert_eq!(client.u64("external.between_us"), 0);
}

// ---------------------------------------------------------------------------
// Over loopback, real clock.
// ---------------------------------------------------------------------------

#[external_call("store")]
async fn store(d: Duration) {
    sleep(d).await;
}

/// What the member service measured of itself: each request's total as
/// its handler returned, from `selftime::current()`.
type Served = std::sync::Arc<std::sync::Mutex<Vec<Duration>>>;

/// 30 on `store`.
async fn member(axum::extract::State(served): axum::extract::State<Served>) -> &'static str {
    store(ms(30)).await;
    if let Some(so_far) = selftime::current() {
        served.lock().unwrap().push(so_far.total());
    }
    "member"
}

async fn member_service(policy: ServerTiming) -> (SocketAddr, Served) {
    let served = Served::default();
    let app = Router::new()
        .route("/member", get(member))
        .with_state(served.clone())
        .layer(HandlerLayer::matched_path().server_timing(policy));
    (serve_arrivals(app).await, served)
}

fn reqwest_client(dep: &'static str) -> reqwest_middleware::ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(selftime::reqwest::ExternalCallMiddleware::named(dep))
        .build()
}

#[timed_handler]
async fn login(client: reqwest_middleware::ClientWithMiddleware, addr: SocketAddr) -> Snapshot {
    let body = client
        .get(format!("http://{addr}/member"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "member");
    selftime::current().unwrap()
}

const HOP: Duration = Duration::from_millis(20);

#[cfg(not(feature = "test-util"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_loopback_a_slow_hop_is_between_and_the_callee_keeps_its_own_time() {
    let (member, served) = member_service(ServerTiming::for_peers(["127.0.0.1/32"]).unwrap()).await;
    let hop = forwarder(member, HOP).await;
    let so_far = login(reqwest_client("members"), hop).await;
    let dependency = so_far.dependencies().next().unwrap();
    let (between, own) = (dependency.between().unwrap(), dependency.own().unwrap());
    // The hop held the answer 20: between, with room for a busy machine.
    assert!(between >= HOP && between < HOP + ms(100), "{so_far:?}");
    // The callee's own time is what it measured of itself (its handler's
    // total as it returned; the head went out just after).
    let measured = served.lock().unwrap()[0];
    assert!(measured >= ms(30), "{measured:?}");
    assert!(
        own.checked_sub(measured).is_some_and(|d| d < ms(2)),
        "own {own:?}, measured {measured:?}"
    );
    assert_eq!(own + between, dependency.duration());
}

#[cfg(not(feature = "test-util"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_loopback_a_direct_call_has_little_between_and_a_stranger_is_told_nothing() {
    let (trusted, _) = member_service(ServerTiming::for_peers(["127.0.0.1/32"]).unwrap()).await;
    let so_far = login(reqwest_client("members"), trusted).await;
    let between = so_far.dependencies().next().unwrap().between().unwrap();
    assert!(between < ms(20), "{so_far:?}");

    let (strangers, _) = member_service(ServerTiming::for_peers(["10.0.0.0/8"]).unwrap()).await;
    let response = reqwest::get(format!("http://{strangers}/member"))
        .await
        .unwrap();
    assert!(response.headers().get("server-timing").is_none());
    let so_far = login(reqwest_client("members"), strangers).await;
    assert_eq!(so_far.between(), None);
}

#[timed_handler]
async fn login_with_hyper<S>(client: S, addr: SocketAddr) -> Snapshot
where
    S: tower::Service<
            Request<Empty<Bytes>>,
            Response = Response<selftime::tower::ExternalBody<hyper::body::Incoming>>,
        >,
    S::Error: std::fmt::Debug,
{
    let request = Request::get(format!("http://{addr}/member"))
        .body(Empty::new())
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    response.into_body().collect().await.unwrap();
    selftime::current().unwrap()
}

#[cfg(not(feature = "test-util"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_loopback_the_tower_client_layer_splits_too() {
    let (member, _) = member_service(ServerTiming::for_peers(["127.0.0.1/32"]).unwrap()).await;
    let hop = forwarder(member, HOP).await;
    let hyper_client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<Empty<Bytes>>();
    let client = HttpExternalLayer::new("members").layer(hyper_client);
    let so_far = login_with_hyper(client, hop).await;
    let between = so_far.dependencies().next().unwrap().between().unwrap();
    assert!(between >= HOP && between < HOP + ms(100), "{so_far:?}");
}
