//! The `opentelemetry` feature: handlers run on tokio's paused clock record
//! through the OpenTelemetry metrics API into the SDK, and the tests check
//! names, units, attributes, counts, sums and every bucket against figures
//! known in advance: read from the SDK's in-memory exporter, and once over
//! the wire, from the OTLP/HTTP exporter's requests to a loopback receiver
//! that decodes them (with the spans' attributes).
//!
//! Each test has its own meter provider, set as the thread's provider around
//! a current-thread runtime (so every handler ends on that thread): tests do
//! not share a global provider and can run in parallel.
//!
//! Every thread here runs its handlers under a subscriber, although only the
//! wire test reads spans: `tracing` caches each callsite's interest for the
//! whole process, computed by the first thread to reach it, and a thread
//! without a subscriber can cache "never" for a callsite another test is
//! capturing (tokio-rs/tracing#3611). These handlers are shared between
//! tests, and `HandlerLayer`'s span with the `tower` and `grpc` modules.

use crate::common::ms;
use crate::common::noop::registry_noop;
use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue as ProtoKeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{
    InMemoryMetricExporter, PeriodicReader, SdkMeterProvider, Temporality,
};
use opentelemetry_sdk::trace::SdkTracerProvider;
use prost::Message as _;
use selftime::opentelemetry::BUCKETS;
use selftime::tower::HandlerLayer;
use selftime::{external_call, timed_handler};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::sleep;
use tower::{Layer as _, ServiceExt as _};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;

#[external_call("redis")]
async fn redis(d: Duration) {
    sleep(d).await;
}

#[external_call("legacy")]
async fn legacy(d: Duration) {
    sleep(d).await;
}

/// redis 0..30 and legacy 20..40 overlap, then 20 of its own: total 60,
/// external 40 (the union), internal 20; redis busy 30, legacy busy 20.
#[timed_handler]
async fn checkout() {
    tokio::join!(redis(ms(30)), async {
        sleep(ms(20)).await;
        legacy(ms(20)).await;
    });
    sleep(ms(20)).await;
}

/// 4 of its own, 3 on redis: total 7, internal 4, external 3.
#[timed_handler]
async fn login(fail: bool) -> Result<(), &'static str> {
    sleep(ms(4)).await;
    redis(ms(3)).await;
    if fail { Err("bad password") } else { Ok(()) }
}

/// No external call at all: total 1, internal 1, external 0.
#[timed_handler]
async fn health() {
    sleep(ms(1)).await;
}

#[timed_handler]
async fn explode() {
    sleep(ms(2)).await;
    panic!("the handler's own bug");
}

#[timed_handler]
async fn stuck() {
    redis(ms(50)).await;
}

#[timed_handler]
async fn inner() {
    redis(ms(10)).await;
}

/// 5 of its own around an inner handler that waits 10 on redis.
#[timed_handler]
async fn outer() {
    sleep(ms(5)).await;
    inner().await;
}

// ---------------------------------------------------------------------------
// The series, read from the SDK or decoded from the wire.
// ---------------------------------------------------------------------------

/// One series' point: a histogram's count, sum, per-bucket counts and
/// bounds, or a counter's value.
#[derive(Clone, Debug, PartialEq)]
enum Point {
    Histogram {
        count: u64,
        sum: f64,
        buckets: Vec<u64>,
        bounds: Vec<f64>,
    },
    Counter(u64),
}

/// What one export held of the `selftime` scope: each series' point by
/// `name{attributes sorted by key}`, and each instrument's unit and
/// description.
#[derive(Debug, Default)]
struct Series {
    points: BTreeMap<String, Point>,
    units: BTreeMap<String, String>,
    descriptions: BTreeMap<String, String>,
    scope_version: Option<String>,
}

fn key(name: &str, attributes: &[(&str, &str)]) -> String {
    let mut attributes: Vec<String> = attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    attributes.sort_unstable();
    format!("{name}{{{}}}", attributes.join(","))
}

impl Series {
    /// The `selftime` scope of the SDK's last export.
    fn from_sdk(exported: &[ResourceMetrics]) -> Self {
        let mut series = Self::default();
        let last = exported.last().expect("one export at least");
        for scope in last.scope_metrics() {
            if scope.scope().name() != "selftime" {
                continue;
            }
            series.scope_version = scope.scope().version().map(str::to_owned);
            for metric in scope.metrics() {
                let name = metric.name().to_owned();
                series.units.insert(name.clone(), metric.unit().to_owned());
                series
                    .descriptions
                    .insert(name.clone(), metric.description().to_owned());
                let attributes = |kvs: Vec<(String, String)>| {
                    let kvs: Vec<(&str, &str)> =
                        kvs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    key(&name, &kvs)
                };
                let pairs = |kvs: &mut dyn Iterator<Item = &opentelemetry::KeyValue>| {
                    kvs.map(|kv| (kv.key.as_str().to_owned(), kv.value.as_str().into_owned()))
                        .collect::<Vec<_>>()
                };
                match metric.data() {
                    AggregatedMetrics::F64(MetricData::Histogram(histogram)) => {
                        assert_eq!(histogram.temporality(), Temporality::Cumulative);
                        for point in histogram.data_points() {
                            series.points.insert(
                                attributes(pairs(&mut point.attributes())),
                                Point::Histogram {
                                    count: point.count(),
                                    sum: point.sum(),
                                    buckets: point.bucket_counts().collect(),
                                    bounds: point.bounds().collect(),
                                },
                            );
                        }
                    }
                    AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                        assert!(sum.is_monotonic(), "{name} is a counter");
                        for point in sum.data_points() {
                            series.points.insert(
                                attributes(pairs(&mut point.attributes())),
                                Point::Counter(point.value()),
                            );
                        }
                    }
                    other => panic!("{name}: unexpected data {other:?}"),
                }
            }
        }
        series
    }

    /// The `selftime` scope of OTLP export requests, as decoded.
    fn from_otlp(requests: &[ExportMetricsServiceRequest]) -> Self {
        let mut series = Self::default();
        let last = requests.last().expect("one export request at least");
        for scope in last
            .resource_metrics
            .iter()
            .flat_map(|resource| &resource.scope_metrics)
            .filter(|scope| scope.scope.as_ref().is_some_and(|s| s.name == "selftime"))
        {
            series.scope_version = scope.scope.as_ref().map(|s| s.version.clone());
            for metric in &scope.metrics {
                let name = &metric.name;
                series.units.insert(name.clone(), metric.unit.clone());
                series
                    .descriptions
                    .insert(name.clone(), metric.description.clone());
                let attributes = |kvs: &[ProtoKeyValue]| {
                    let kvs: Vec<(&str, &str)> =
                        kvs.iter().map(|kv| (kv.key.as_str(), text(kv))).collect();
                    key(name, &kvs)
                };
                match metric.data.as_ref() {
                    Some(metric::Data::Histogram(histogram)) => {
                        for point in &histogram.data_points {
                            series.points.insert(
                                attributes(&point.attributes),
                                Point::Histogram {
                                    count: point.count,
                                    sum: point.sum.expect("a histogram of durations has a sum"),
                                    buckets: point.bucket_counts.clone(),
                                    bounds: point.explicit_bounds.clone(),
                                },
                            );
                        }
                    }
                    Some(metric::Data::Sum(sum)) => {
                        assert!(sum.is_monotonic, "{name} is a counter");
                        for point in &sum.data_points {
                            let Some(number_data_point::Value::AsInt(value)) = point.value else {
                                panic!("{name}: a count is an integer: {point:?}");
                            };
                            series.points.insert(
                                attributes(&point.attributes),
                                Point::Counter(u64::try_from(value).expect("a count")),
                            );
                        }
                    }
                    other => panic!("{name}: unexpected data {other:?}"),
                }
            }
        }
        series
    }

    fn get(&self, name: &str, attributes: &[(&str, &str)]) -> Option<&Point> {
        self.points.get(&key(name, attributes))
    }

    fn point(&self, name: &str, attributes: &[(&str, &str)]) -> &Point {
        self.get(name, attributes).unwrap_or_else(|| {
            panic!(
                "no series {}: {:#?}",
                key(name, attributes),
                self.points.keys()
            )
        })
    }

    fn counter(&self, name: &str, attributes: &[(&str, &str)]) -> u64 {
        match self.point(name, attributes) {
            Point::Counter(value) => *value,
            other @ Point::Histogram { .. } => {
                panic!("{name}{attributes:?} is not a counter: {other:?}")
            }
        }
    }

    fn sum(&self, name: &str, attributes: &[(&str, &str)]) -> f64 {
        match self.point(name, attributes) {
            Point::Histogram { sum, .. } => *sum,
            other @ Point::Counter(_) => {
                panic!("{name}{attributes:?} is not a histogram: {other:?}")
            }
        }
    }

    /// Asserts a histogram's count, sum (seconds, to float precision) and
    /// every bucket: `(upper bound, count)` for the non-empty ones, the rest
    /// empty; the bounds are `BUCKETS`.
    fn assert_histogram(
        &self,
        name: &str,
        attributes: &[(&str, &str)],
        count: u64,
        sum: f64,
        filled: &[(f64, u64)],
    ) {
        let Point::Histogram {
            count: got_count,
            sum: got_sum,
            buckets,
            bounds,
        } = self.point(name, attributes)
        else {
            panic!("{name}{attributes:?} is not a histogram");
        };
        assert_eq!(bounds.as_slice(), BUCKETS.as_slice(), "{name} bounds");
        assert_eq!(*got_count, count, "{name}{attributes:?} count");
        assert!(
            (got_sum - sum).abs() <= 1e-12,
            "{name}{attributes:?} sum: got {got_sum}, want {sum}"
        );
        let mut want = vec![0; BUCKETS.len() + 1];
        for &(bound, n) in filled {
            let index = BUCKETS
                .iter()
                .position(|b| b.to_bits() == bound.to_bits())
                .unwrap_or_else(|| panic!("{bound} is not a bound"));
            want[index] = n;
        }
        assert_eq!(buckets, &want, "{name}{attributes:?} buckets");
    }
}

/// A string attribute's text.
fn text(kv: &ProtoKeyValue) -> &str {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s,
        other => panic!("attribute {} is not a string: {other:?}", kv.key),
    }
}

const TOTAL: &str = "selftime.total.duration";
const INTERNAL: &str = "selftime.internal.duration";
const EXTERNAL: &str = "selftime.external.duration";
const REQUESTS: &str = "selftime.requests";
const BACKLOG: &str = "selftime.backlog.duration";
const ALL: (&str, &str) = ("selftime.dependency", "all");
const REDIS: (&str, &str) = ("selftime.dependency", "redis");
const LEGACY: (&str, &str) = ("selftime.dependency", "legacy");

const fn h(name: &str) -> (&str, &str) {
    ("selftime.handler", name)
}

const fn outcome(name: &str) -> (&str, &str) {
    ("selftime.outcome", name)
}

/// Runs `scenario` on a paused current-thread runtime with `provider` as
/// this thread's provider, then flushes the provider.
fn run_paused<F: Future<Output = ()>>(provider: &SdkMeterProvider, scenario: F) {
    let paused = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a paused runtime");
    selftime::opentelemetry::with_local_meter_provider(provider, || paused.block_on(scenario));
    drop(paused);
    provider.force_flush().expect("the provider flushes");
}

/// Runs `scenario` (see [`run_paused`]) with a provider that exports to
/// memory, and reads what it exported.
fn exported_after<F: Future<Output = ()>>(scenario: F) -> Series {
    let _subscriber = registry_noop();
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    run_paused(&provider, scenario);
    let series = Series::from_sdk(&exporter.get_finished_metrics().expect("exported metrics"));
    provider.shutdown().expect("the provider shuts down");
    series
}

/// The scenario of the `metrics` feature's tests, so that the two exports
/// can be read side by side.
async fn five_handlers() {
    for _ in 0..3 {
        checkout().await;
    }
    login(false).await.unwrap();
    login(false).await.unwrap();
    login(true).await.unwrap_err();
    health().await;
    let panicked = tokio::spawn(explode()).await.unwrap_err();
    assert!(panicked.is_panic());
    tokio::time::timeout(ms(10), stuck()).await.unwrap_err();
}

/// The figures of [`five_handlers`], exactly.
fn assert_five_handlers(series: &Series) {
    // checkout: 3 × (total 60, internal 20, external 40 = redis 30 ∪ legacy 20).
    let checkout = [h("checkout")];
    series.assert_histogram(TOTAL, &checkout, 3, 0.18, &[(0.1, 3)]);
    series.assert_histogram(INTERNAL, &checkout, 3, 0.06, &[(0.025, 3)]);
    series.assert_histogram(EXTERNAL, &[h("checkout"), ALL], 3, 0.12, &[(0.05, 3)]);
    series.assert_histogram(EXTERNAL, &[h("checkout"), REDIS], 3, 0.09, &[(0.05, 3)]);
    series.assert_histogram(EXTERNAL, &[h("checkout"), LEGACY], 3, 0.06, &[(0.025, 3)]);
    assert_eq!(series.counter(REQUESTS, &[h("checkout"), outcome("ok")]), 3);
    assert_eq!(
        series.get(REQUESTS, &[h("checkout"), outcome("error")]),
        None
    );

    // login: 3 × (total 7, internal 4, external 3), one of them an error.
    let login = [h("login")];
    series.assert_histogram(TOTAL, &login, 3, 0.021, &[(0.01, 3)]);
    series.assert_histogram(INTERNAL, &login, 3, 0.012, &[(0.005, 3)]);
    series.assert_histogram(EXTERNAL, &[h("login"), ALL], 3, 0.009, &[(0.005, 3)]);
    series.assert_histogram(EXTERNAL, &[h("login"), REDIS], 3, 0.009, &[(0.005, 3)]);
    assert_eq!(series.counter(REQUESTS, &[h("login"), outcome("ok")]), 2);
    assert_eq!(series.counter(REQUESTS, &[h("login"), outcome("error")]), 1);

    // health: no call, so `all` holds one zero and no dependency has a
    // series; 1 ms is a bound, and falls in the bucket it closes.
    let health = [h("health")];
    series.assert_histogram(TOTAL, &health, 1, 0.001, &[(0.001, 1)]);
    series.assert_histogram(INTERNAL, &health, 1, 0.001, &[(0.001, 1)]);
    series.assert_histogram(EXTERNAL, &[h("health"), ALL], 1, 0.0, &[(0.0001, 1)]);
    for dependency in [REDIS, LEGACY] {
        assert_eq!(series.get(EXTERNAL, &[h("health"), dependency]), None);
    }

    // explode: 2 of its own, then a panic.
    series.assert_histogram(TOTAL, &[h("explode")], 1, 0.002, &[(0.0025, 1)]);
    series.assert_histogram(INTERNAL, &[h("explode")], 1, 0.002, &[(0.0025, 1)]);
    assert_eq!(
        series.counter(REQUESTS, &[h("explode"), outcome("panic")]),
        1
    );

    // stuck: cancelled by the timeout after 10, all of it waiting on redis.
    series.assert_histogram(TOTAL, &[h("stuck")], 1, 0.01, &[(0.01, 1)]);
    series.assert_histogram(INTERNAL, &[h("stuck")], 1, 0.0, &[(0.0001, 1)]);
    series.assert_histogram(EXTERNAL, &[h("stuck"), ALL], 1, 0.01, &[(0.01, 1)]);
    series.assert_histogram(EXTERNAL, &[h("stuck"), REDIS], 1, 0.01, &[(0.01, 1)]);
    assert_eq!(
        series.counter(REQUESTS, &[h("stuck"), outcome("cancelled")]),
        1
    );

    // No call is in wake mode and no request came through a listener that
    // knows arrivals: no backlog, one zero per run.
    for (handler, runs) in [
        ("checkout", 3),
        ("login", 3),
        ("health", 1),
        ("explode", 1),
        ("stuck", 1),
    ] {
        series.assert_histogram(BACKLOG, &[h(handler)], runs, 0.0, &[(0.0001, runs)]);
    }

    // The sums add up: total = internal + external{all}.
    for handler in ["checkout", "login", "health", "explode", "stuck"] {
        let parts = series.sum(INTERNAL, &[h(handler)]) + series.sum(EXTERNAL, &[h(handler), ALL]);
        assert!(
            (series.sum(TOTAL, &[h(handler)]) - parts).abs() <= 1e-12,
            "{handler}: total ≠ internal + external"
        );
    }
    // Nothing else: 5 handlers × 4 histograms, 2 dependency series of
    // checkout, 1 of login, 1 of stuck, 6 counter series.
    assert_eq!(
        series.points.len(),
        20 + 4 + 6,
        "{:#?}",
        series.points.keys()
    );
}

// ---------------------------------------------------------------------------
// In memory.
// ---------------------------------------------------------------------------

#[test]
fn every_series_has_the_figures_of_the_requests_that_ran() {
    let series = exported_after(five_handlers());
    assert_five_handlers(&series);
}

#[test]
fn the_instruments_are_named_the_opentelemetry_way_with_units_and_descriptions() {
    let series = exported_after(async {
        health().await;
    });
    let names: Vec<&str> = series.units.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "selftime.backlog.duration",
            "selftime.external.duration",
            "selftime.internal.duration",
            "selftime.requests",
            "selftime.total.duration",
        ]
    );
    for histogram in [TOTAL, INTERNAL, EXTERNAL, BACKLOG] {
        assert_eq!(series.units[histogram], "s");
    }
    assert_eq!(series.units[REQUESTS], "{request}");
    assert!(
        series.descriptions[INTERNAL].starts_with("Time selftime handlers spent on their own work")
    );
    assert!(series.descriptions.values().all(|d| !d.is_empty()));
    // The scope is this crate, at its version (the suite shares it).
    assert_eq!(
        series.scope_version.as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    // The same bounds as the `metrics` feature's, the alert thresholds' own.
    assert_eq!(
        BUCKETS.map(f64::to_bits),
        selftime::metrics::BUCKETS.map(f64::to_bits)
    );
}

#[test]
fn nested_handlers_each_get_their_own_series() {
    let series = exported_after(async {
        outer().await;
    });
    // inner: 10 on redis, nothing of its own.
    series.assert_histogram(TOTAL, &[h("inner")], 1, 0.01, &[(0.01, 1)]);
    series.assert_histogram(INTERNAL, &[h("inner")], 1, 0.0, &[(0.0001, 1)]);
    series.assert_histogram(EXTERNAL, &[h("inner"), REDIS], 1, 0.01, &[(0.01, 1)]);
    // outer: 5 of its own; the inner handler's wait on redis is outer's too.
    series.assert_histogram(TOTAL, &[h("outer")], 1, 0.015, &[(0.025, 1)]);
    series.assert_histogram(INTERNAL, &[h("outer")], 1, 0.005, &[(0.005, 1)]);
    series.assert_histogram(EXTERNAL, &[h("outer"), ALL], 1, 0.01, &[(0.01, 1)]);
    series.assert_histogram(EXTERNAL, &[h("outer"), REDIS], 1, 0.01, &[(0.01, 1)]);
    for handler in ["inner", "outer"] {
        assert_eq!(series.counter(REQUESTS, &[h(handler), outcome("ok")]), 1);
    }
}

#[test]
fn the_tower_layers_routes_become_http_route_and_rpc_attributes() {
    let series = exported_after(async {
        let app = Router::new()
            .route(
                "/users/{id}",
                get(|| async {
                    redis(ms(3)).await;
                    "someone"
                }),
            )
            .layer(HandlerLayer::matched_path());
        for path in ["/users/42", "/users/43", "/nowhere"] {
            let request = http::Request::get(path)
                .body(axum::body::Body::empty())
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
        }
        let fixed = HandlerLayer::new("fixed").layer(tower::service_fn(
            |_: http::Request<axum::body::Body>| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(axum::body::Body::empty()))
            },
        ));
        let request = http::Request::get("/")
            .body(axum::body::Body::empty())
            .unwrap();
        fixed.oneshot(request).await.unwrap();
        // A gRPC server's RPC, and the client's handler around the call.
        let cart = crate::grpc::in_memory().await;
        crate::grpc::place_order(cart, "c1").await.unwrap();
    });

    let route = ("http.route", "/users/{id}");
    let users = [h("GET /users/{id}"), route];
    series.assert_histogram(TOTAL, &users, 2, 0.006, &[(0.005, 2)]);
    series.assert_histogram(
        EXTERNAL,
        &[h("GET /users/{id}"), route, REDIS],
        2,
        0.006,
        &[(0.005, 2)],
    );
    assert_eq!(
        series.counter(REQUESTS, &[h("GET /users/{id}"), route, outcome("ok")]),
        2
    );
    // No route matched, no route layer: the name alone.
    assert_eq!(
        series.counter(REQUESTS, &[h("unmatched"), outcome("ok")]),
        1
    );
    assert_eq!(series.counter(REQUESTS, &[h("fixed"), outcome("ok")]), 1);

    let rpc = [
        h("/shop.Cart/Checkout"),
        ("rpc.system.name", "grpc"),
        ("rpc.method", "shop.Cart/Checkout"),
    ];
    series.assert_histogram(TOTAL, &rpc, 1, 0.025, &[(0.025, 1)]);
    series.assert_histogram(INTERNAL, &rpc, 1, 0.005, &[(0.005, 1)]);
    let mut inventory = rpc.to_vec();
    inventory.push(("selftime.dependency", "inventory"));
    series.assert_histogram(EXTERNAL, &inventory, 1, 0.02, &[(0.025, 1)]);
    let mut ok = rpc.to_vec();
    ok.push(outcome("ok"));
    assert_eq!(series.counter(REQUESTS, &ok), 1);
    // The client: a `#[timed_handler]`, its call to `cart` external.
    series.assert_histogram(
        EXTERNAL,
        &[h("place_order"), ("selftime.dependency", "cart")],
        1,
        0.025,
        &[(0.025, 1)],
    );
}

#[test]
fn only_this_threads_handlers_record_to_its_provider_and_only_while_it_is_set() {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let _subscriber = registry_noop();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    selftime::opentelemetry::with_local_meter_provider(&provider, || {
        runtime.block_on(login(false)).unwrap();
        // Another thread's handler is not this thread's.
        std::thread::spawn(|| {
            let _subscriber = registry_noop();
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap()
                .block_on(health());
        })
        .join()
        .unwrap();
    });
    // The provider is no longer this thread's.
    runtime.block_on(checkout());
    provider.force_flush().unwrap();
    let series = Series::from_sdk(&exporter.get_finished_metrics().unwrap());
    assert_eq!(series.counter(REQUESTS, &[h("login"), outcome("ok")]), 1);
    let handlers: Vec<&str> = series
        .points
        .keys()
        .filter(|k| !k.contains("selftime.handler=login"))
        .map(String::as_str)
        .collect();
    assert!(handlers.is_empty(), "{handlers:?}");
}

// ---------------------------------------------------------------------------
// Over the wire: OTLP over HTTP with protobuf, to a loopback receiver.
// ---------------------------------------------------------------------------

/// An OTLP/HTTP receiver on a loopback port, on a runtime of its own: it
/// keeps the body of every request to `/v1/metrics` and `/v1/traces`.
struct Receiver {
    address: std::net::SocketAddr,
    metrics: Arc<Mutex<Vec<Bytes>>>,
    traces: Arc<Mutex<Vec<Bytes>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("the receiver's runtime");
        let metrics = Arc::<Mutex<Vec<Bytes>>>::default();
        let traces = Arc::<Mutex<Vec<Bytes>>>::default();
        let keep = |into: &Arc<Mutex<Vec<Bytes>>>| {
            let into = Arc::clone(into);
            post(move |body: Bytes| async move {
                into.lock().unwrap().push(body);
                // An empty export response: nothing rejected.
                ([("content-type", "application/x-protobuf")], Bytes::new())
            })
        };
        let app = Router::new()
            .route("/v1/metrics", keep(&metrics))
            .route("/v1/traces", keep(&traces));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a loopback port");
        let address = listener.local_addr().unwrap();
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self {
            address,
            metrics,
            traces,
            _runtime: runtime,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }
}

/// An attribute of a decoded span, as text.
fn span_attribute<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.attributes.iter().find(|kv| kv.key == key).map(text)
}

/// A meter provider and a tracer provider exporting over OTLP/HTTP with
/// protobuf to `receiver`. Built outside any runtime: the exporters'
/// blocking HTTP client runs on the SDK's own threads.
fn otlp_providers(receiver: &Receiver) -> (SdkMeterProvider, SdkTracerProvider) {
    let metric_exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(receiver.url("/v1/metrics"))
        .with_timeout(Duration::from_secs(10))
        .build()
        .expect("an OTLP metric exporter");
    let meter_provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(metric_exporter).build())
        .build();
    let span_exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(receiver.url("/v1/traces"))
        .with_timeout(Duration::from_secs(10))
        .build()
        .expect("an OTLP span exporter");
    let tracer_provider = SdkTracerProvider::builder()
        .with_batch_exporter(span_exporter)
        .build();
    (meter_provider, tracer_provider)
}

#[test]
fn over_otlp_http_the_series_and_the_span_attributes_reach_a_receiver() {
    let receiver = Receiver::start();
    let (meter_provider, tracer_provider) = otlp_providers(&receiver);
    // Handler spans are `INFO`; h2's and hyper's own are not exported.
    // A gRPC method the process has answered before, so that its span is
    // named after it from the start: `tracing-opentelemetry` takes a span's
    // name when the span opens, and a method seen for the first time is
    // `unmatched` until its answer (see `HandlerLayer::grpc`).
    run_paused(&SdkMeterProvider::default(), async {
        let cart = crate::grpc::in_memory().await;
        crate::grpc::place_order(cart, "c0").await.unwrap();
    });
    let layer = tracing_opentelemetry::layer().with_tracer(tracer_provider.tracer("selftime-test"));
    let subscriber = tracing::subscriber::set_default(
        tracing_subscriber::registry()
            .with(layer)
            .with(LevelFilter::INFO),
    );
    run_paused(&meter_provider, async {
        five_handlers().await;
        let cart = crate::grpc::in_memory().await;
        crate::grpc::place_order(cart, "c1").await.unwrap();
    });
    drop(subscriber);
    tracer_provider.force_flush().expect("the spans are sent");

    let metrics: Vec<ExportMetricsServiceRequest> = receiver
        .metrics
        .lock()
        .unwrap()
        .iter()
        .map(|body| ExportMetricsServiceRequest::decode(body.as_ref()).expect("OTLP metrics"))
        .collect();
    let series = Series::from_otlp(&metrics);
    assert_eq!(
        series.scope_version.as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(series.units[INTERNAL], "s");
    assert_eq!(series.units[REQUESTS], "{request}");
    // The gRPC handlers' series are on the wire too; the five handlers'
    // are exactly as in memory.
    let rpc = [
        h("/shop.Cart/Checkout"),
        ("rpc.system.name", "grpc"),
        ("rpc.method", "shop.Cart/Checkout"),
    ];
    series.assert_histogram(INTERNAL, &rpc, 1, 0.005, &[(0.005, 1)]);
    let mut five = Series {
        points: series.points.clone(),
        ..Series::default()
    };
    five.points
        .retain(|k, _| !k.contains("/shop.Cart/Checkout") && !k.contains("place_order"));
    assert_five_handlers(&five);

    let spans: Vec<Span> = receiver
        .traces
        .lock()
        .unwrap()
        .iter()
        .map(|body| ExportTraceServiceRequest::decode(body.as_ref()).expect("OTLP traces"))
        .flat_map(|request| request.resource_spans)
        .flat_map(|resource| resource.scope_spans)
        .flat_map(|scope| scope.spans)
        .collect();
    assert_spans_on_the_wire(&spans);

    meter_provider
        .shutdown()
        .expect("the meter provider shuts down");
    tracer_provider
        .shutdown()
        .expect("the tracer provider shuts down");
}

/// The spans of the wire test's handlers, each with its figures as
/// attributes (the `u64` ones as text: see the `otel` module).
fn assert_spans_on_the_wire(spans: &[Span]) {
    let named = |name: &str| -> Vec<&Span> { spans.iter().filter(|s| s.name == name).collect() };
    // Three checkouts: total 60, external 40, internal 20 each.
    let checkouts = named("checkout");
    assert_eq!(checkouts.len(), 3);
    for span in checkouts {
        assert_eq!(span_attribute(span, "total.duration_us"), Some("60000"));
        assert_eq!(span_attribute(span, "external.duration_us"), Some("40000"));
        assert_eq!(span_attribute(span, "internal.duration_us"), Some("20000"));
        assert_eq!(span_attribute(span, "external.calls"), Some("2"));
        assert_eq!(
            span_attribute(span, "external.breakdown"),
            Some("redis=30000us/1,legacy=20000us/1")
        );
        assert_eq!(span_attribute(span, "outcome"), Some("ok"));
    }
    let [stuck] = named("stuck")[..] else {
        panic!("one `stuck` span: {spans:#?}");
    };
    assert_eq!(span_attribute(stuck, "outcome"), Some("cancelled"));
    // The gRPC server's span: named after the method, with its attributes.
    let [rpc] = named("/shop.Cart/Checkout")[..] else {
        panic!("one gRPC server span: {spans:#?}");
    };
    assert_eq!(span_attribute(rpc, "rpc.system.name"), Some("grpc"));
    assert_eq!(
        span_attribute(rpc, "rpc.method"),
        Some("shop.Cart/Checkout")
    );
    assert_eq!(span_attribute(rpc, "total.duration_us"), Some("25000"));
    assert_eq!(span_attribute(rpc, "internal.duration_us"), Some("5000"));
    assert_eq!(
        span_attribute(rpc, "external.breakdown"),
        Some("inventory=20000us/1")
    );
    assert_eq!(span_attribute(rpc, "outcome"), Some("ok"));
}
