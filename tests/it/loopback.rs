//! A real axum service over loopback, called by a real reqwest client: the
//! handler calls a second local HTTP service that sleeps, and its span shows
//! the sleep as external time.

use crate::common::{Capture, serve};
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use selftime::{external_call, timed_handler};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// The dependency: answers after `ms` milliseconds.
async fn slow_backend(Query(q): Query<HashMap<String, u64>>) -> String {
    let ms = q.get("ms").copied().unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms}")
}

#[derive(Clone)]
struct Front {
    client: reqwest::Client,
    backend: SocketAddr,
}

#[external_call("backend")]
async fn ask_backend(front: &Front, ms: u64) -> Result<String, reqwest::Error> {
    let url = format!("http://{}/?ms={ms}", front.backend);
    front.client.get(url).send().await?.text().await
}

#[timed_handler]
async fn front_handler(State(front): State<Front>) -> Result<String, String> {
    let answer = ask_backend(&front, 80).await.map_err(|e| e.to_string())?;
    // Some work of our own.
    tokio::time::sleep(Duration::from_millis(20)).await;
    Ok(answer)
}

#[tokio::test]
async fn the_span_shows_the_dependency_sleep_as_external() {
    let (capture, _g) = Capture::install();
    let backend = serve(Router::new().route("/", get(slow_backend))).await;
    let front_state = Front {
        client: reqwest::Client::new(),
        backend,
    };
    let front = serve(
        Router::new()
            .route("/", get(front_handler))
            .with_state(front_state),
    )
    .await;

    let body = reqwest::get(format!("http://{front}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "slept 80");

    let span = capture.only("front_handler");
    let (total, external, internal) = span.figures();
    assert_eq!(total, external + internal);
    assert!(
        external >= 80_000,
        "the backend's sleep is external: {external}"
    );
    assert!(external < 2_080_000, "{external}");
    assert!(internal >= 20_000, "our own sleep is internal: {internal}");
    assert!(internal < 2_020_000, "{internal}");
    assert_eq!(span.u64("external.calls"), 1);
    assert!(
        span.breakdown().starts_with("backend="),
        "{}",
        span.breakdown()
    );
    assert!(span.breakdown().ends_with("us/1"), "{}", span.breakdown());
    assert_eq!(span.outcome(), "ok");
}
