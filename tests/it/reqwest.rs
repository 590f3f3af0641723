//! The `reqwest` feature: `ExternalCallMiddleware` against real axum
//! servers on loopback ports, on the real clock (generous bounds only).

use crate::common::{Capture, Closed, ms, serve};
use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use futures::StreamExt as _;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use selftime::reqwest::ExternalCallMiddleware;
use selftime::timed_handler;
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio::time::sleep;

/// A chunk at once, then three more 40ms apart: a body that takes 120ms to
/// arrive after its head.
async fn trickle() -> axum::body::Body {
    let frames = futures::stream::iter(0..4).then(|i| async move {
        if i > 0 {
            sleep(ms(40)).await;
        }
        Ok::<_, Infallible>(Bytes::from_static(b"drip\n"))
    });
    axum::body::Body::from_stream(frames)
}

/// A server with a slow route and a trickling one.
async fn backend() -> SocketAddr {
    let app = Router::new()
        .route(
            "/slow",
            get(|| async {
                sleep(ms(50)).await;
                "slow"
            }),
        )
        .route("/trickle", get(trickle));
    serve(app).await
}

fn client(middleware: ExternalCallMiddleware) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(middleware)
        .build()
}

/// `(name, busy µs, calls)` for each dependency of a breakdown.
fn breakdown(span: &Closed) -> Vec<(String, u64, u64)> {
    span.breakdown()
        .split(',')
        .map(|dep| {
            let (name, figures) = dep.rsplit_once('=').unwrap();
            let (busy, calls) = figures.split_once("us/").unwrap();
            (
                name.to_owned(),
                busy.parse().unwrap(),
                calls.parse().unwrap(),
            )
        })
        .collect()
}

#[timed_handler]
async fn fan_out(client: &ClientWithMiddleware, urls: Vec<String>) -> Vec<String> {
    let mut bodies = Vec::new();
    for url in urls {
        bodies.push(client.get(url).send().await.unwrap().text().await.unwrap());
    }
    bodies
}

#[tokio::test]
async fn by_default_each_request_is_a_call_to_its_host_and_port() {
    let (capture, _g) = Capture::install();
    let (a, b) = (backend().await, backend().await);
    let client = client(ExternalCallMiddleware::new());
    let urls = vec![
        format!("http://{a}/slow"),
        format!("http://{a}/slow?again=1"),
        format!("http://{b}/slow"),
    ];
    assert_eq!(fan_out(&client, urls).await, ["slow", "slow", "slow"]);

    let span = capture.only("fan_out");
    let (total, external, _) = span.figures();
    assert!((150_000..=total).contains(&external), "{span:?}");
    assert_eq!(span.u64("external.calls"), 3);
    let deps = breakdown(&span);
    let names: Vec<_> = deps.iter().map(|(name, _, _)| name.clone()).collect();
    assert_eq!(names, [a.to_string(), b.to_string()]);
    assert_eq!((deps[0].2, deps[1].2), (2, 1));
    assert!(deps[0].1 >= 100_000 && deps[1].1 >= 50_000, "{span:?}");
    assert_eq!(span.outcome(), "ok");
}

#[timed_handler]
async fn twice_at_once(client: &ClientWithMiddleware, url: String) {
    let (x, y) = tokio::join!(client.get(&url).send(), client.get(&url).send());
    x.unwrap().text().await.unwrap();
    y.unwrap().text().await.unwrap();
}

#[tokio::test]
async fn a_named_client_names_the_dependency() {
    let (capture, _g) = Capture::install();
    let addr = backend().await;
    let client = client(ExternalCallMiddleware::named("billing"));
    twice_at_once(&client, format!("http://{addr}/slow")).await;
    let span = capture.only("twice_at_once");
    let deps = breakdown(&span);
    assert_eq!(deps.len(), 1);
    assert_eq!(deps[0].0, "billing");
    assert_eq!(deps[0].2, 2);
    let (total, external, _) = span.figures();
    assert!((50_000..=total).contains(&external), "{span:?}");
}

#[timed_handler]
async fn read_trickle(client: &ClientWithMiddleware, url: String) -> (String, String) {
    let response = client.get(&url).send().await.unwrap();
    let seen_url = response.url().to_string();
    (seen_url, response.text().await.unwrap())
}

#[tokio::test]
async fn by_default_the_body_read_after_send_is_the_handlers_own_time() {
    let (capture, _g) = Capture::install();
    let addr = backend().await;
    let client = client(ExternalCallMiddleware::new());
    let url = format!("http://{addr}/trickle");
    let (_, text) = read_trickle(&client, url).await;
    assert_eq!(text, "drip\n".repeat(4));
    let span = capture.only("read_trickle");
    let (_, _, internal) = span.figures();
    // Three 40ms gaps arrive after `send()` returned with the head.
    assert!(internal >= 100_000, "{span:?}");
    assert_eq!(span.u64("external.calls"), 1);
}

#[tokio::test]
async fn through_body_keeps_the_call_until_the_body_is_read() {
    let (capture, _g) = Capture::install();
    let addr = backend().await;
    let client = client(ExternalCallMiddleware::new().through_body());
    let url = format!("http://{addr}/trickle");
    let (seen_url, text) = read_trickle(&client, url.clone()).await;
    assert_eq!(text, "drip\n".repeat(4));
    // The response survives being rebuilt around the measured body.
    assert_eq!(seen_url, url);
    let span = capture.only("read_trickle");
    let (total, external, _) = span.figures();
    assert!((120_000..=total).contains(&external), "{span:?}");
    assert_eq!(span.u64("external.calls"), 1);
    assert_eq!(breakdown(&span)[0].0, addr.to_string());
}

/// In place (no I/O thread), a call is measured the same way on an idle
/// runtime, through the body too.
#[tokio::test]
async fn in_place_the_call_is_measured_where_it_runs() {
    let (capture, _g) = Capture::install();
    let addr = backend().await;
    let client = client(
        ExternalCallMiddleware::named("trickle")
            .in_place()
            .through_body(),
    );
    let url = format!("http://{addr}/trickle");
    let (seen_url, text) = read_trickle(&client, url.clone()).await;
    assert_eq!(text, "drip\n".repeat(4));
    assert_eq!(seen_url, url);
    let span = capture.only("read_trickle");
    let (total, external, _) = span.figures();
    assert!((120_000..=total).contains(&external), "{span:?}");
    assert_eq!(span.u64("internal.backlog_us"), 0, "{span:?}");
    assert_eq!(breakdown(&span)[0].0, "trickle");
}

#[timed_handler]
async fn glance(client: &ClientWithMiddleware, url: String) -> u16 {
    let status = client.get(&url).send().await.unwrap().status().as_u16();
    // The response, body unread, is gone: the call ended with it.
    sleep(ms(100)).await;
    status
}

#[tokio::test]
async fn through_body_a_response_dropped_unread_ends_the_call() {
    let (capture, _g) = Capture::install();
    let addr = backend().await;
    let client = client(ExternalCallMiddleware::new().through_body());
    assert_eq!(glance(&client, format!("http://{addr}/trickle")).await, 200);
    let span = capture.only("glance");
    let (_, _, internal) = span.figures();
    assert!(internal >= 100_000, "{span:?}");
}

#[timed_handler]
async fn unreachable_dependency(client: &ClientWithMiddleware, url: String) -> bool {
    client.get(url).send().await.is_err()
}

#[tokio::test]
async fn a_request_that_fails_is_still_a_call() {
    let (capture, _g) = Capture::install();
    // A port nothing listens on any more.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let client = client(ExternalCallMiddleware::new().through_body());
    assert!(unreachable_dependency(&client, format!("http://{addr}/")).await);
    let span = capture.only("unreachable_dependency");
    assert_eq!(span.u64("external.calls"), 1);
    assert_eq!(breakdown(&span)[0].0, addr.to_string());
}

#[tokio::test]
async fn outside_any_handler_the_middleware_only_sends() {
    // Names of this test's own (the host's port is): orphan counts are per
    // process.
    const NAMED: &str = "billing-outside-any-handler-reqwest";
    let (capture, _g) = Capture::install();
    let addr = backend().await;
    let host = addr.to_string();
    let before = selftime::orphan_calls();
    let (host_before, named_before) = (before.get(&host), before.get(NAMED));
    for middleware in [
        ExternalCallMiddleware::new(),
        ExternalCallMiddleware::named(NAMED).through_body(),
    ] {
        let response = client(middleware)
            .get(format!("http://{addr}/slow"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.text().await.unwrap(), "slow");
    }
    assert!(capture.closed().is_empty());
    // Each request is counted as an orphan call, once.
    let after = selftime::orphan_calls();
    assert_eq!(after.get(&host), host_before + 1);
    assert_eq!(after.get(NAMED), named_before + 1);
}
