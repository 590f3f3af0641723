//! Handler spans and metrics to an OpenTelemetry collector over OTLP: the
//! figures as span attributes, and as the `opentelemetry` feature's
//! histograms and counter.
//!
//! ```text
//! # to a collector (OTLP over HTTP with protobuf, e.g. port 4318):
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 cargo run --example otlp
//! # no collector: the same spans logged on stdout
//! cargo run --example otlp
//! ```
//!
//! The exporters read the standard variables themselves
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
//! and `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_EXPORTER_OTLP_TIMEOUT`). Spans and metrics are sent by the SDK's own
//! threads with a blocking HTTP client, so the providers are shut down
//! (flushing what is left) after the tokio runtime is gone, outside any
//! async context. Plain HTTP only: this build carries no TLS.
//!
//! In the collector, each `checkout` span has the attributes
//! `total.duration_us`, `external.duration_us`, `internal.duration_us`,
//! `external.calls`, `external.breakdown` and `outcome`, and the metrics
//! `selftime.internal.duration`, `selftime.total.duration`,
//! `selftime.external.duration` and `selftime.requests` have a series for
//! `selftime.handler="checkout"`.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{MetricExporter, SpanExporter};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
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
    let providers = if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
    {
        let resource = Resource::builder()
            .with_service_name("selftime-otlp-example")
            .build();
        let exporter = SpanExporter::builder().with_http().build()?;
        let tracer_provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.clone())
            .build();
        let layer =
            tracing_opentelemetry::layer().with_tracer(tracer_provider.tracer("selftime-example"));
        tracing_subscriber::registry().with(layer).init();
        // selftime's histograms and counter, through the same pipeline.
        let meter_provider = SdkMeterProvider::builder()
            .with_periodic_exporter(MetricExporter::builder().with_http().build()?)
            .with_resource(resource)
            .build();
        selftime::opentelemetry::set_global_meter_provider(&meter_provider)?;
        println!("exporting spans and metrics over OTLP");
        Some((tracer_provider, meter_provider))
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

    if let Some((tracer_provider, meter_provider)) = providers {
        tracer_provider.shutdown()?;
        meter_provider.shutdown()?;
    }
    Ok(())
}
