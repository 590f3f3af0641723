//! From zero to a page: a service whose every request is a selftime
//! handler, whose calls to its dependency are external calls, and whose
//! figures Prometheus scrapes. The README's "From zero to a page" shows this
//! file, whole.
//!
//! ```text
//! BILLING_URL=http://127.0.0.1:4000 cargo run --example service
//! ```
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use selftime::reqwest::ExternalCallMiddleware;
use selftime::tower::{Arrival, ArrivalListener, HandlerLayer};
use std::sync::Arc;
use tracing_subscriber::fmt::format::FmtSpan;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Each request's span, with selftime's fields, printed as it closes.
    tracing_subscriber::fmt()
        .with_span_events(FmtSpan::CLOSE)
        .init();

    // selftime's histograms get buckets (on the builder, before `install`);
    // the page is served at http://127.0.0.1:9000/metrics.
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Prefix("selftime_".into()),
            &selftime::metrics::BUCKETS,
        )?
        .with_http_listener(([127, 0, 0, 1], 9000))
        .install()?;
    selftime::metrics::describe();

    // Every request through this client is an external call to `billing`,
    // in flight until its response body has been read.
    // Shared through an `Arc`: the router clones its state for every request,
    // and a `ClientWithMiddleware` clone allocates.
    let billing = Arc::new(
        ClientBuilder::new(reqwest::Client::new())
            .with(ExternalCallMiddleware::named("billing").through_body())
            .build(),
    );

    // Every request is a handler, named after its route: `GET /checkout/{cart}`.
    let app = Router::new()
        .route("/checkout/{cart}", get(checkout))
        .layer(HandlerLayer::matched_path())
        .with_state(billing);
    // A listener that notes when each request arrived, so that a request
    // waiting for a busy worker counts in its handler's total (as backlog).
    let listener = ArrivalListener::bind(("127.0.0.1", 3000)).await?;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<Arrival>(),
    )
    .await?;
    Ok(())
}

async fn checkout(
    State(billing): State<Arc<ClientWithMiddleware>>,
    Path(cart): Path<u64>,
) -> Result<String, StatusCode> {
    let base = std::env::var("BILLING_URL").unwrap_or_else(|_| "http://127.0.0.1:4000".into());
    let price = billing
        .get(format!("{base}/price/{cart}"))
        .send()
        .await
        .and_then(|response| Ok(response.error_for_status()?))
        .map_err(|_| StatusCode::BAD_GATEWAY)?
        .text()
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?;
    Ok(format!("cart {cart}: {price}"))
}
