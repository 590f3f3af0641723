//! Handler spans to an OpenTelemetry collector over OTLP, with the figures
//! as span attributes.
//!
//! ```text
//! # to a collector (OTLP over HTTP with protobuf, e.g. port 4318):
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 cargo run --example otlp
//! # no collector: the same spans logged on stdout
//! cargo run --example otlp
//! ```
//!
//! The exporter reads the standard variables itself
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`). Spans are
//! batched and sent by the SDK's own thread with a blocking HTTP client, so
//! the provider is shut down (flushing the last batch) after the tokio
//! runtime is gone, outside any async context. Plain HTTP only: this build
//! carries no TLS.
//!
//! In the collector, each `checkout` span has the attributes
//! `total.duration_us`, `external.duration_us`, `internal.duration_us`,
//! `external.calls`, `external.breakdown` and `outcome`.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::SpanExporter;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use selftime::{external_call, timed_handler};
use std::error::Error;
use std::time::Duration;
use tokio::time::sleep;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

#[external_call("inventory")]
async fn reserve_items() {
    sleep(Duration::from_millis(30)).await;
}

#[external_call("payments")]
async fn charge_card() {
    sleep(Duration::from_millis(45)).await;
}

/// 75 ms waiting on two dependencies, about 10 ms of its own work.
#[timed_handler]
async fn checkout(order: u32) -> Result<u32, String> {
    reserve_items().await;
    sleep(Duration::from_millis(10)).await;
    charge_card().await;
    if order % 4 == 0 {
        return Err(format!("order {order}: card declined"));
    }
    Ok(order)
}

fn main() -> Result<(), Box<dyn Error>> {
    let provider = if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
    {
        let exporter = SpanExporter::builder().with_http().build()?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name("selftime-otlp-example")
                    .build(),
            )
            .build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("selftime-example"));
        tracing_subscriber::registry().with(layer).init();
        println!("exporting spans over OTLP");
        Some(provider)
    } else {
        tracing_subscriber::fmt()
            .with_span_events(FmtSpan::CLOSE)
            .init();
        println!("OTEL_EXPORTER_OTLP_ENDPOINT is not set: logging spans on stdout instead");
        None
    };

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        for order in 1..=8 {
            match checkout(order).await {
                Ok(order) => println!("order {order}: paid"),
                Err(e) => println!("{e}"),
            }
        }
    });
    drop(runtime);

    if let Some(provider) = provider {
        provider.shutdown()?;
    }
    Ok(())
}
