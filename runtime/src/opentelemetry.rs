//! Handler figures as OpenTelemetry metrics (feature `opentelemetry`).
//!
//! With the feature on and a meter provider given to selftime
//! ([`set_global_meter_provider`]), every handler, when it ends, records
//! through the OpenTelemetry metrics API (the [`opentelemetry`] crate, 0.33):
//!
//! | instrument | kind | unit | attributes | value |
//! |---|---|---|---|---|
//! | `selftime.total.duration` | histogram | `s` | `selftime.handler` | the handler's wall time |
//! | `selftime.internal.duration` | histogram | `s` | `selftime.handler` | total minus external: the figure to alert on |
//! | `selftime.external.duration` | histogram | `s` | `selftime.handler`, `selftime.dependency` | time waiting on dependencies (see below) |
//! | `selftime.backlog.duration` | histogram | `s` | `selftime.handler` | the part of internal time in which this process held the request up ([backlog](crate#backlog-when-the-service-itself-is-the-bottleneck)) |
//! | `selftime.client.duration` | histogram | `s` | `selftime.handler` | behind the `tower` layer: the time the response waited on the client, which internal time does not include |
//! | `selftime.requests` | counter | `{request}` | `selftime.handler`, `selftime.outcome` | one per handler run |
//!
//! `selftime.handler` is the handler's name: the span's name (or its
//! `otel.name`, behind the `tower` layer) and the `metrics` feature's
//! `handler` label. `selftime.outcome` is one of `ok`, `error`, `panic`,
//! `cancelled` (see [`Outcome`]). The instruments belong to
//! the instrumentation scope `selftime`, versioned as this crate.
//!
//! # Route attributes
//!
//! A request served behind the `tower` feature's `HandlerLayer` also
//! carries, on all six instruments, what the layer knows of its route, in
//! the OpenTelemetry semantic conventions' names (version 1.42, the one the
//! 0.33 crates follow):
//!
//! - `http.route`: the route template (`/users/{id}`), when the layer's
//!   route function (`HandlerLayer::route`, `HandlerLayer::matched_path`)
//!   returned one;
//! - `rpc.system.name` (`grpc`) and `rpc.method`, the fully qualified
//!   method (`shop.Cart/Checkout`), under `HandlerLayer::grpc`.
//!
//! They add no series: a handler's name already determines them.
//!
//! # `selftime.external.duration`: per dependency, and `all`
//!
//! Each request records one point with `selftime.dependency = "all"`, the
//! union of the intervals in which *any* call was in flight: exactly the
//! external figure that internal time subtracts, so that, summed over any
//! set of requests, `total = internal + external{all}`. Requests that made
//! no call record `0` there, so its count is the request count, like the
//! other two histograms.
//!
//! Besides, each dependency the request called records one point with its
//! own busy time (the union of that dependency's calls only), under its
//! name. Calls to different dependencies may overlap, so per-dependency
//! points do **not** add up to the `all` point: they answer "which
//! dependency was slow", `all` answers "how much did waiting cost". A
//! dependency named `all` would share the union's series: do not call one
//! that (the name is [`ALL_DEPENDENCIES`]).
//!
//! # Buckets
//!
//! The three histograms are created with [`BUCKETS`] as their explicit
//! bucket boundaries, the bounds the `metrics` feature's histograms use and
//! the shipped alert thresholds sit on, so no view is needed; a view of your
//! own on the meter provider still takes precedence.
//!
//! # Cardinality and cost
//!
//! Every attribute value is a `&'static str`: handler and dependency names
//! written in the attributes (or interned, in bounded number, by the
//! `tower` and `reqwest` integrations), route templates and gRPC methods
//! that are parts of those names, and the four outcomes. The number of
//! series is bounded by the program, never by its traffic.
//!
//! Recording builds each attribute list on the stack, always in the same
//! order, from those borrowed strings (OpenTelemetry's `KeyValue` holds a
//! `&'static str` without copying it), so selftime allocates nothing to
//! record. What the SDK does with a point is the SDK's cost: with
//! `opentelemetry_sdk` 0.33, a series' first point allocates the SDK's
//! entry for it, and every later point finds that entry by its attribute
//! list and allocates nothing; with delta temporality, the SDK evicts a
//! series that got no point during an export interval, and its next point
//! allocates the entry again.
//!
//! # Setting up
//!
//! Give selftime the meter provider once, at startup:
//! [`set_global_meter_provider`]. Handlers that end before that record
//! nothing to OpenTelemetry (their spans and the `metrics` feature's series
//! are not affected). [`with_local_meter_provider`] records one thread's
//! handlers to another provider, for tests.
//!
//! ```
//! use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
//! use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
//!
//! #[selftime::external_call("redis")]
//! async fn read_session() {
//!     tokio::time::sleep(std::time::Duration::from_millis(30)).await;
//! }
//!
//! #[selftime::timed_handler]
//! async fn checkout() {
//!     read_session().await;
//!     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A service would export with `opentelemetry-otlp`'s `MetricExporter`.
//! let exporter = InMemoryMetricExporter::default();
//! let provider = SdkMeterProvider::builder()
//!     .with_reader(PeriodicReader::builder(exporter.clone()).build())
//!     .build();
//! selftime::opentelemetry::set_global_meter_provider(&provider)?;
//!
//! tokio::runtime::Builder::new_current_thread()
//!     .enable_time()
//!     .build()?
//!     .block_on(checkout());
//!
//! provider.force_flush()?;
//! let exported = exporter.get_finished_metrics()?;
//! let internal = exported
//!     .iter()
//!     .flat_map(|resource| resource.scope_metrics())
//!     .filter(|scope| scope.scope().name() == "selftime")
//!     .flat_map(|scope| scope.metrics())
//!     .find(|metric| metric.name() == "selftime.internal.duration")
//!     .expect("the internal-time histogram");
//! assert_eq!(internal.unit(), "s");
//! let AggregatedMetrics::F64(MetricData::Histogram(histogram)) = internal.data() else {
//!     panic!("a histogram of seconds");
//! };
//! let point = histogram.data_points().next().expect("one series");
//! assert_eq!(point.count(), 1);
//! let handler = point.attributes().find(|kv| kv.key.as_str() == "selftime.handler");
//! assert_eq!(handler.map(|kv| kv.value.as_str()), Some("checkout".into()));
//! # Ok(())
//! # }
//! ```

use crate::names::ALL_DEPENDENCIES;
use crate::reading::{Outcome, Reading, Route};
use ::opentelemetry::metrics::{Counter, Histogram, MeterProvider};
use ::opentelemetry::{InstrumentationScope, KeyValue};
use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::sync::OnceLock;

pub use crate::buckets::BUCKETS;

/// `selftime.total.duration`: histogram of handlers' wall time, in seconds.
pub const TOTAL_DURATION: &str = "selftime.total.duration";

/// `selftime.internal.duration`: histogram of handlers' internal time, total
/// minus external, in seconds.
pub const INTERNAL_DURATION: &str = "selftime.internal.duration";

/// `selftime.external.duration`: histogram of the time handlers spent
/// waiting on dependencies, in seconds, per [`DEPENDENCY`] and
/// [`ALL_DEPENDENCIES`].
pub const EXTERNAL_DURATION: &str = "selftime.external.duration";

/// `selftime.backlog.duration`: histogram of the part of handlers' internal
/// time in which this process, not a dependency, held the request up (see
/// [backlog](crate#backlog-when-the-service-itself-is-the-bottleneck)), in seconds.
pub const BACKLOG_DURATION: &str = "selftime.backlog.duration";

/// `selftime.client.duration`: histogram of the time the `tower` layer's
/// handlers' responses waited on their clients (slow readers), in seconds.
/// Only the layer's handlers record it.
pub const CLIENT_DURATION: &str = "selftime.client.duration";

/// `selftime.between.duration`: histogram of the time a handler's calls to
/// a dependency spent between the two (the network, proxies, load
/// balancers), in seconds, per [`DEPENDENCY`]: only dependencies that
/// report their own time in `Server-Timing` (see [the time
/// between](crate#server-timing-the-time-between)).
pub const BETWEEN_DURATION: &str = "selftime.between.duration";

/// `selftime.callee.duration`: histogram of a dependency's own time in a
/// handler's calls to it, as it reported it, in seconds, per
/// [`DEPENDENCY`]: only dependencies that report it.
pub const CALLEE_DURATION: &str = "selftime.callee.duration";

/// `selftime.requests`: counter of finished handler runs by [`OUTCOME`].
pub const REQUESTS: &str = "selftime.requests";

/// The attribute naming the handler, on every instrument.
pub const HANDLER: &str = "selftime.handler";

/// The attribute naming the dependency, on [`EXTERNAL_DURATION`],
/// [`BETWEEN_DURATION`] and [`CALLEE_DURATION`].
pub const DEPENDENCY: &str = "selftime.dependency";

/// The attribute holding the outcome, on [`REQUESTS`].
pub const OUTCOME: &str = "selftime.outcome";

const HTTP_ROUTE: &str = "http.route";
const RPC_SYSTEM_NAME: &str = "rpc.system.name";
const RPC_METHOD: &str = "rpc.method";

/// The instruments made from the provider given to selftime: read-only once
/// set, so that handlers ending on many threads share them without
/// contending.
static GLOBAL: OnceLock<Instruments> = OnceLock::new();

thread_local! {
    /// The instruments of [`with_local_meter_provider`], taken out while a
    /// handler records and put back after.
    static LOCAL: Cell<Option<Rc<Instruments>>> = const { Cell::new(None) };
}

/// Records every handler that ends from now on, on any thread, to
/// `provider`: the eight instruments are made once, from a meter of scope
/// `selftime`.
///
/// Pass the provider your exporter is installed on (an
/// `opentelemetry_sdk::metrics::SdkMeterProvider`), or
/// `&opentelemetry::global::meter_provider()` once the global one is set.
///
/// # Errors
///
/// If a provider has been set already: the first one stays, as with
/// `opentelemetry::global` and the `metrics` facade's global recorder,
/// whose instruments handlers may be using on other threads.
///
/// # Examples
///
/// ```
/// use opentelemetry_sdk::metrics::SdkMeterProvider;
///
/// // With the exporter of your choice: `.with_reader(…)` or
/// // `.with_periodic_exporter(…)`.
/// let provider = SdkMeterProvider::builder().build();
/// selftime::opentelemetry::set_global_meter_provider(&provider).expect("set once");
/// assert!(selftime::opentelemetry::set_global_meter_provider(&provider).is_err());
/// ```
pub fn set_global_meter_provider<P>(provider: &P) -> Result<(), SetMeterProviderError>
where
    P: MeterProvider + ?Sized,
{
    // `get_or_init` runs its closure only if no provider was set: only then
    // are the instruments made (a second provider must not register
    // instruments it will never record to).
    let mut made = false;
    GLOBAL.get_or_init(|| {
        made = true;
        Instruments::new(provider)
    });
    if made {
        Ok(())
    } else {
        Err(SetMeterProviderError(()))
    }
}

/// Runs `f` with this thread's handlers recording to `provider`, and only
/// to it, instead of the global one; handlers on other threads are not
/// affected.
///
/// A handler records where it *ends*: on a current-thread runtime driven
/// inside `f` (`block_on`), or sync code, every handler does. Nested calls
/// shadow the outer provider until they return. Meant for tests, which each
/// get their own provider and exporter while running in parallel.
///
/// # Examples
///
/// ```
/// use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
///
/// #[selftime::timed_handler]
/// fn render() -> &'static str {
///     "<p>hi</p>"
/// }
///
/// let exporter = InMemoryMetricExporter::default();
/// let provider = SdkMeterProvider::builder()
///     .with_reader(PeriodicReader::builder(exporter.clone()).build())
///     .build();
/// selftime::opentelemetry::with_local_meter_provider(&provider, || render());
/// provider.force_flush().unwrap();
/// let exported = exporter.get_finished_metrics().unwrap();
/// let names: Vec<String> = exported
///     .iter()
///     .flat_map(|resource| resource.scope_metrics())
///     .flat_map(|scope| scope.metrics())
///     .map(|metric| metric.name().to_owned())
///     .collect();
/// assert!(names.iter().any(|name| name == "selftime.requests"));
/// ```
pub fn with_local_meter_provider<P, R>(provider: &P, f: impl FnOnce() -> R) -> R
where
    P: MeterProvider + ?Sized,
{
    /// Puts the outer provider back however `f` ends.
    struct Restore(Option<Rc<Instruments>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            let _ = LOCAL.try_with(|local| local.set(outer));
        }
    }

    let instruments = Rc::new(Instruments::new(provider));
    let outer = LOCAL
        .try_with(|local| local.replace(Some(instruments)))
        .ok()
        .flatten();
    let _restore = Restore(outer);
    f()
}

/// The error of [`set_global_meter_provider`] when a provider was set
/// already.
#[derive(Debug)]
pub struct SetMeterProviderError(());

impl fmt::Display for SetMeterProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("selftime's OpenTelemetry meter provider was already set")
    }
}

impl std::error::Error for SetMeterProviderError {}

/// Records one finished handler's figures to this thread's provider if
/// [`with_local_meter_provider`] set one, else to the global one, if any.
pub(crate) fn record(handler: &'static str, route: Route, reading: &Reading<'_>, outcome: Outcome) {
    // Taken out rather than borrowed: a handler that ended inside the SDK's
    // recording (it calls no user code, but a subscriber of its internal
    // logs might) finds none and goes to the global provider.
    let local = LOCAL.try_with(Cell::take).ok().flatten();
    if let Some(instruments) = local {
        instruments.record(handler, route, reading, outcome);
        let _ = LOCAL.try_with(|slot| slot.set(Some(instruments)));
    } else if let Some(instruments) = GLOBAL.get() {
        instruments.record(handler, route, reading, outcome);
    }
}

/// The eight instruments, made once from one provider.
struct Instruments {
    total: Histogram<f64>,
    internal: Histogram<f64>,
    backlog: Histogram<f64>,
    client: Histogram<f64>,
    external: Histogram<f64>,
    between: Histogram<f64>,
    callee: Histogram<f64>,
    requests: Counter<u64>,
}

impl Instruments {
    fn new<P: MeterProvider + ?Sized>(provider: &P) -> Self {
        let scope = InstrumentationScope::builder("selftime")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let meter = provider.meter_with_scope(scope);
        let histogram = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(BUCKETS.to_vec())
                .build()
        };
        Self {
            total: histogram(TOTAL_DURATION, "Wall time of selftime handlers."),
            internal: histogram(
                INTERNAL_DURATION,
                "Time selftime handlers spent on their own work: total minus the time waiting \
                 on dependencies.",
            ),
            backlog: histogram(
                BACKLOG_DURATION,
                "The part of selftime handlers' internal time in which this process held the \
                 request up: a dependency's answer waiting to be noticed, a request waiting for \
                 its handler to start.",
            ),
            client: histogram(
                CLIENT_DURATION,
                "Time the responses of selftime's tower layer waited on their clients (slow \
                 readers): neither internal nor external time.",
            ),
            external: histogram(
                EXTERNAL_DURATION,
                "Time selftime handlers spent waiting on dependencies: per dependency, and \
                 selftime.dependency=\"all\" for the union of all of a request's calls.",
            ),
            between: histogram(
                BETWEEN_DURATION,
                "Time selftime handlers' calls spent between them and a dependency that reports \
                 its own time (Server-Timing): network, proxies, load balancers.",
            ),
            callee: histogram(
                CALLEE_DURATION,
                "A dependency's own time in selftime handlers' calls to it, as it reported it \
                 (Server-Timing).",
            ),
            requests: meter
                .u64_counter(REQUESTS)
                .with_unit("{request}")
                .with_description(
                    "Finished selftime handler runs by outcome (ok, error, panic, cancelled).",
                )
                .build(),
        }
    }

    fn record(&self, handler: &'static str, route: Route, reading: &Reading<'_>, outcome: Outcome) {
        let mut attributes = Attributes::new(handler, route);
        let (total, external) = (reading.total_ns(), reading.external_ns());
        self.total.record(secs(total), attributes.common());
        // Cannot underflow: external is clamped to total.
        self.internal
            .record(secs(reading.internal_ns()), attributes.common());
        if let Some(client) = reading.client_ns() {
            self.client.record(secs(client), attributes.common());
        }
        self.backlog
            .record(secs(reading.backlog_ns()), attributes.common());
        self.external.record(
            secs(external),
            attributes.with(DEPENDENCY, ALL_DEPENDENCIES),
        );
        for dependency in reading.dependencies() {
            self.external.record(
                dependency.duration().as_secs_f64(),
                attributes.with(DEPENDENCY, dependency.name()),
            );
            if let (Some(between), Some(own)) = (dependency.between(), dependency.own()) {
                self.between.record(
                    between.as_secs_f64(),
                    attributes.with(DEPENDENCY, dependency.name()),
                );
                self.callee.record(
                    own.as_secs_f64(),
                    attributes.with(DEPENDENCY, dependency.name()),
                );
            }
        }
        self.requests
            .add(1, attributes.with(OUTCOME, outcome.as_str()));
    }
}

/// Nanoseconds as the seconds a histogram records.
fn secs(ns: u64) -> f64 {
    std::time::Duration::from_nanos(ns).as_secs_f64()
}

/// One handler's attribute list, on the stack: the handler's name, its route
/// attributes, and a slot for the one attribute a series adds. The order
/// never changes, which is what lets the SDK find a series without sorting
/// (and so without allocating).
struct Attributes {
    list: [KeyValue; 4],
    /// How many of `list` every series carries; `list[common]` is the slot.
    common: usize,
}

impl Attributes {
    fn new(handler: &'static str, route: Route) -> Self {
        let name = KeyValue::new(HANDLER, handler);
        let (list, common) = match route {
            Route::Unknown => ([name.clone(), name.clone(), name.clone(), name], 1),
            Route::Http(template) => (
                [
                    name.clone(),
                    KeyValue::new(HTTP_ROUTE, template),
                    name.clone(),
                    name,
                ],
                2,
            ),
            Route::Grpc(method) => (
                [
                    name.clone(),
                    KeyValue::new(RPC_SYSTEM_NAME, "grpc"),
                    KeyValue::new(RPC_METHOD, method),
                    name,
                ],
                3,
            ),
        };
        Self { list, common }
    }

    /// The attributes every series of the handler carries.
    fn common(&self) -> &[KeyValue] {
        &self.list[..self.common]
    }

    /// The common attributes and `key = value`.
    fn with(&mut self, key: &'static str, value: &'static str) -> &[KeyValue] {
        self.list[self.common] = KeyValue::new(key, value);
        &self.list[..=self.common]
    }
}
