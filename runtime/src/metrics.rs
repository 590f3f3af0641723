//! Handler figures as metrics, through the [`metrics`] facade (feature
//! `metrics`).
//!
//! With the feature on, every handler, when it ends, records:
//!
//! | metric | kind | labels | value |
//! |---|---|---|---|
//! | `selftime_total_seconds` | histogram | `handler` | the handler's wall time |
//! | `selftime_internal_seconds` | histogram | `handler` | total minus external: the figure to alert on |
//! | `selftime_external_seconds` | histogram | `handler`, `dependency` | time waiting on dependencies (see below) |
//! | `selftime_backlog_seconds` | histogram | `handler` | the part of internal time in which this process held the request up ([backlog](crate#backlog-when-the-service-itself-is-the-bottleneck)) |
//! | `selftime_client_seconds` | histogram | `handler` | behind the `tower` layer: the time the response waited on the client (a slow reader), which internal time does not include |
//! | `selftime_requests_total` | counter | `handler`, `outcome` | one per handler run |
//!
//! `handler` is the handler's name (the span's name, so `name = "…"`
//! renames it here too), `outcome` is one of `ok`, `error`, `panic`,
//! `cancelled` (see [`Outcome`]).
//!
//! # `selftime_external_seconds`: per dependency, and `all`
//!
//! Each request records one `dependency="all"` sample, the union of the
//! intervals in which *any* call was in flight: exactly the external figure
//! that internal time subtracts, so that, summed over any set of requests,
//! `total = internal + external{dependency="all"}` (the `_sum` series add
//! up). Requests that made no call record `0` there, so its `_count` is the
//! request count, like the other two histograms.
//!
//! Besides, each dependency the request called records one sample with its
//! own busy time (the union of that dependency's calls only), under its
//! name. Calls to different dependencies may overlap, so per-dependency
//! samples do **not** add up to the `all` sample: they answer "which
//! dependency was slow", `all` answers "how much did waiting cost". Their
//! `_count` is the number of requests that called that dependency. A
//! dependency named `all` would share the union's series: do not call one
//! that (the name is [`ALL_DEPENDENCIES`]).
//!
//! # Cardinality and cost
//!
//! Every label value is a `&'static str`: handler and dependency names
//! written in the attributes (or interned, in bounded number, by the `tower`
//! and `reqwest` integrations) and the four outcomes, so the number of
//! series is bounded by the program, never by its traffic. A request that
//! calls more than sixteen distinct dependencies counts the rest under
//! [`OTHER_DEPENDENCY`](crate::OTHER_DEPENDENCY).
//!
//! Names and label values are borrowed, never copied. The facade's [`Key`]
//! owns its list of labels unless the whole list is `'static`, so each
//! recorded series costs one small allocation for that list, as with the
//! facade's own `histogram!` macro given a label that is not a literal.
//! Each report also looks its series up in the recorder, which is the
//! exporter's cost, not this crate's.
//!
//! Recording goes to whatever [`metrics::with_recorder`] finds: a recorder
//! set with [`metrics::with_local_recorder`], else the global one, else
//! nothing (the facade's no-op). Like span fields, metrics are recorded
//! whether or not the handler's span is enabled.
//!
//! # Setting up an exporter
//!
//! Histograms need buckets to be histograms: exporters that support them
//! (Prometheus's does) otherwise fall back to summaries, which cannot be
//! aggregated across instances or fed to `histogram_quantile`. Configure
//! [`BUCKETS`] (or your own) for the `selftime_` prefix, and call
//! [`describe`] once so that the exporter publishes units and help text.
//! The shipped alert rules (`alerts/selftime.rules.yml` in this crate's
//! source) read these series; see the crate docs' *Metrics and alerts*.
//!
//! ```
//! use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
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
//! // A service would `.install()` the exporter (an HTTP endpoint and the
//! // global recorder); this example renders the page itself instead.
//! let recorder = PrometheusBuilder::new()
//!     .set_buckets_for_metric(Matcher::Prefix("selftime_".into()), &selftime::metrics::BUCKETS)
//!     .expect("buckets are not empty")
//!     .build_recorder();
//! let page = recorder.handle();
//!
//! let runtime = tokio::runtime::Builder::new_current_thread()
//!     .enable_time()
//!     .build()
//!     .unwrap();
//! // A local recorder sees only this thread: a current-thread runtime keeps
//! // the handler on it.
//! metrics::with_local_recorder(&recorder, || {
//!     selftime::metrics::describe();
//!     runtime.block_on(checkout());
//! });
//!
//! let page = page.render();
//! assert!(page.contains("# TYPE selftime_internal_seconds histogram"));
//! assert!(page.contains(r#"selftime_internal_seconds_count{handler="checkout"} 1"#));
//! assert!(page.contains(r#"selftime_external_seconds_count{handler="checkout",dependency="all"} 1"#));
//! assert!(page.contains(r#"selftime_external_seconds_count{handler="checkout",dependency="redis"} 1"#));
//! assert!(page.contains(r#"selftime_requests_total{handler="checkout",outcome="ok"} 1"#));
//! ```
//!
//! [`Outcome`]: crate::Outcome
//! [`Key`]: metrics::Key

use crate::names::ALL_DEPENDENCIES;
use crate::reading::{Outcome, Reading};
use crate::table::Table;
use metrics::{Key, KeyName, Label, Level, Metadata, Unit};

/// `selftime_total_seconds{handler}`: histogram of handlers' wall time.
pub const TOTAL_SECONDS: &str = "selftime_total_seconds";

/// `selftime_internal_seconds{handler}`: histogram of handlers' internal
/// time, total minus external.
pub const INTERNAL_SECONDS: &str = "selftime_internal_seconds";

/// `selftime_external_seconds{handler,dependency}`: histogram of the time
/// handlers spent waiting on dependencies, per dependency and
/// [`ALL_DEPENDENCIES`].
pub const EXTERNAL_SECONDS: &str = "selftime_external_seconds";

/// `selftime_backlog_seconds{handler}`: histogram of the part of handlers'
/// internal time in which this process, not a dependency, held the request
/// up: see [backlog](crate#backlog-when-the-service-itself-is-the-bottleneck).
pub const BACKLOG_SECONDS: &str = "selftime_backlog_seconds";

/// `selftime_client_seconds{handler}`: histogram of the time the `tower`
/// layer's handlers' responses waited on their clients (a slow reader): not
/// internal time, not external. Only the layer's handlers record it.
pub const CLIENT_SECONDS: &str = "selftime_client_seconds";

/// `selftime_between_seconds{handler,dependency}`: histogram of the time a
/// handler's calls to a dependency spent *between* the two (the network,
/// proxies, load balancers): the calls' time less the dependency's own, as
/// it reported it in `Server-Timing`. Only dependencies that report it have
/// this series; see [the time
/// between](crate#server-timing-the-time-between).
pub const BETWEEN_SECONDS: &str = "selftime_between_seconds";

/// `selftime_callee_seconds{handler,dependency}`: histogram of a
/// dependency's own time in a handler's calls to it, as it reported it
/// (its time in [`EXTERNAL_SECONDS`] less [`BETWEEN_SECONDS`]). Only
/// dependencies that report it have this series.
pub const CALLEE_SECONDS: &str = "selftime_callee_seconds";

/// `selftime_requests_total{handler,outcome}`: counter of finished handler
/// runs by [`Outcome`].
pub const REQUESTS_TOTAL: &str = "selftime_requests_total";

pub use crate::buckets::BUCKETS;

const HANDLER: &str = "handler";
const DEPENDENCY: &str = "dependency";
const OUTCOME: &str = "outcome";

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// Describes the eight metrics (unit and help text) to the recorder in
/// scope.
///
/// Call it once, after installing the recorder (global or local; the
/// buckets, by contrast, are set on the exporter's builder, before it is
/// installed): exporters
/// keep descriptions apart from samples, so the order relative to the first
/// request does not matter, and calling it again is harmless. Without it the
/// metrics are still recorded, only without `# HELP` text and units.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
///
/// // The global recorder; serve `page.render()` from your own `/metrics`
/// // route (or use `.install()`, which also serves it, with the exporter's
/// // `http-listener` feature).
/// let page = PrometheusBuilder::new()
///     .set_buckets_for_metric(Matcher::Prefix("selftime_".into()), &selftime::metrics::BUCKETS)?
///     .install_recorder()?;
/// selftime::metrics::describe();
/// # drop(page);
/// # Ok(())
/// # }
/// ```
pub fn describe() {
    metrics::with_recorder(|recorder| {
        recorder.describe_histogram(
            KeyName::from_const_str(TOTAL_SECONDS),
            Some(Unit::Seconds),
            "Wall time of selftime handlers.".into(),
        );
        recorder.describe_histogram(
            KeyName::from_const_str(INTERNAL_SECONDS),
            Some(Unit::Seconds),
            "Time selftime handlers spent on their own work: total minus the time waiting on \
             dependencies."
                .into(),
        );
        recorder.describe_histogram(
            KeyName::from_const_str(EXTERNAL_SECONDS),
            Some(Unit::Seconds),
            "Time selftime handlers spent waiting on dependencies: per dependency, and \
             dependency=\"all\" for the union of all of a request's calls."
                .into(),
        );
        recorder.describe_histogram(
            KeyName::from_const_str(BACKLOG_SECONDS),
            Some(Unit::Seconds),
            "The part of selftime handlers' internal time in which this process held the \
             request up: a dependency's answer waiting to be noticed, a request waiting for its \
             handler to start."
                .into(),
        );
        recorder.describe_histogram(
            KeyName::from_const_str(CLIENT_SECONDS),
            Some(Unit::Seconds),
            "Time the responses of selftime's tower layer waited on their clients (slow \
             readers): neither internal nor external time."
                .into(),
        );
        recorder.describe_histogram(
            KeyName::from_const_str(BETWEEN_SECONDS),
            Some(Unit::Seconds),
            "Time selftime handlers' calls spent between them and a dependency that reports its \
             own time (Server-Timing): network, proxies, load balancers."
                .into(),
        );
        recorder.describe_histogram(
            KeyName::from_const_str(CALLEE_SECONDS),
            Some(Unit::Seconds),
            "A dependency's own time in selftime handlers' calls to it, as it reported it \
             (Server-Timing)."
                .into(),
        );
        recorder.describe_counter(
            KeyName::from_const_str(REQUESTS_TOTAL),
            Some(Unit::Count),
            "Finished selftime handler runs by outcome (ok, error, panic, cancelled).".into(),
        );
    });
}

/// Records one finished handler's figures.
pub(crate) fn record(handler: &'static str, reading: &Reading<'_>, outcome: Outcome) {
    // Fetch the recorder once for all series; `with_recorder` is what each of
    // the facade's macros would otherwise look up again.
    metrics::with_recorder(|recorder| {
        let key = |name, second| key(name, handler, second);
        recorder
            .register_histogram(&key(TOTAL_SECONDS, None), &METADATA)
            .record(secs(reading.total_ns()));
        recorder
            .register_histogram(&key(INTERNAL_SECONDS, None), &METADATA)
            .record(secs(reading.internal_ns()));
        recorder
            .register_histogram(&key(BACKLOG_SECONDS, None), &METADATA)
            .record(secs(reading.backlog_ns()));
        if let Some(client) = reading.client_ns() {
            recorder
                .register_histogram(&key(CLIENT_SECONDS, None), &METADATA)
                .record(secs(client));
        }
        recorder
            .register_histogram(
                &key(EXTERNAL_SECONDS, Some((DEPENDENCY, ALL_DEPENDENCIES))),
                &METADATA,
            )
            .record(secs(reading.external_ns()));
        for dependency in reading.dependencies() {
            recorder
                .register_histogram(
                    &key(EXTERNAL_SECONDS, Some((DEPENDENCY, dependency.name()))),
                    &METADATA,
                )
                .record(dependency.duration().as_secs_f64());
            if let (Some(between), Some(own)) = (dependency.between(), dependency.own()) {
                recorder
                    .register_histogram(
                        &key(BETWEEN_SECONDS, Some((DEPENDENCY, dependency.name()))),
                        &METADATA,
                    )
                    .record(between.as_secs_f64());
                recorder
                    .register_histogram(
                        &key(CALLEE_SECONDS, Some((DEPENDENCY, dependency.name()))),
                        &METADATA,
                    )
                    .record(own.as_secs_f64());
            }
        }
        recorder
            .register_counter(
                &key(REQUESTS_TOTAL, Some((OUTCOME, outcome.as_str()))),
                &METADATA,
            )
            .increment(1);
    });
}

/// Nanoseconds as the seconds a histogram records.
fn secs(ns: u64) -> f64 {
    std::time::Duration::from_nanos(ns).as_secs_f64()
}

/// The key of series `name` for `handler`, with one more label if given.
///
/// Its labels come from [`LABEL_SETS`], built once per handler and label
/// and borrowed ever after, so that recording allocates nothing. A label
/// set that finds no room (see [`LABEL_SLOTS`]) has its key's label list
/// allocated on each record instead.
fn key(name: &'static str, handler: &'static str, second: Option<Pair>) -> Key {
    let Some(labels) = label_set(&LABEL_SETS, handler, second) else {
        return Key::from_parts(KeyName::from_const_str(name), label_list(handler, second));
    };
    Key::from_static_parts(name, labels)
}

/// A label's key and value.
type Pair = (&'static str, &'static str);

/// One label set: `handler`, and a second label when there is one.
#[derive(Debug)]
struct LabelSet {
    handler: &'static str,
    second: Option<Pair>,
    labels: Box<[Label]>,
}

/// `log2` of [`LABEL_SLOTS`]: the slot is the hash's top bits.
const LABEL_BITS: u32 = 12;

/// How many label sets [`LABEL_SETS`] holds: 4,096.
///
/// A handler uses one set for itself (its total and internal time), one
/// for `dependency="all"`, one per dependency it calls and one per outcome
/// it ends with: a handler that calls two dependencies and has ended with
/// all four outcomes uses eight. So the table keeps the sets of about 500
/// such handlers (the 256 names the `tower` layer interns from routes use
/// at most 2,048 of them) with room to spare.
const LABEL_SLOTS: usize = 1 << LABEL_BITS;

/// How far from the slot its hash picks a label set is looked for. A set
/// that finds these slots full of others (the table nearly full) gets none:
/// its key's labels are allocated on each record, after a walk of at most
/// this many slots, never of the whole table.
const LABEL_PROBES: usize = 64;

/// Label sets by the identity (address and length) of their `&'static str`
/// parts, in an append-only [`Table`] found by hash. Two literals with the
/// same text at different addresses get two sets with the same labels,
/// which is harmless: the names come from code, so the sets are few.
static LABEL_SETS: Table<LabelSet, LABEL_SLOTS> = Table::new();

fn same(a: &'static str, b: &'static str) -> bool {
    std::ptr::eq(a, b)
}

/// The slot a label set's walk starts at: the addresses of its parts,
/// multiplied in turn by 2^64 / φ (Fibonacci hashing), and the product's
/// top bits, which every bit of every address reaches. (The low bits of an
/// address barely change: names are aligned, and sit side by side.)
fn slot(handler: &'static str, second: Option<Pair>) -> usize {
    const PHI: u64 = 0x9E37_79B9_7F4A_7C15;
    let address = |s: &'static str| s.as_ptr().addr() as u64;
    let mut hash = address(handler).wrapping_mul(PHI);
    if let Some((k, v)) = second {
        hash = (hash ^ address(k)).wrapping_mul(PHI);
        hash = (hash ^ address(v)).wrapping_mul(PHI);
    }
    // Cannot truncate: the top `LABEL_BITS` bits.
    (hash >> (u64::BITS - LABEL_BITS)) as usize
}

/// The labels of `handler` and `second` in `table`, built on first use.
fn label_set(
    table: &'static Table<LabelSet, LABEL_SLOTS>,
    handler: &'static str,
    second: Option<Pair>,
) -> Option<&'static [Label]> {
    find(table, handler, second).map(|(_, set)| &*set.labels)
}

/// The slot of the set of `handler` and `second` in `table`, and the set,
/// built on first use.
fn find(
    table: &'static Table<LabelSet, LABEL_SLOTS>,
    handler: &'static str,
    second: Option<Pair>,
) -> Option<(usize, &'static LabelSet)> {
    let is = |set: &LabelSet| {
        same(set.handler, handler)
            && match (set.second, second) {
                (None, None) => true,
                (Some((k1, v1)), Some((k2, v2))) => same(k1, k2) && same(v1, v2),
                _ => false,
            }
    };
    let make = || LabelSet {
        handler,
        second,
        labels: label_list(handler, second).into_boxed_slice(),
    };
    table.find_or_insert_near(slot(handler, second), LABEL_PROBES, is, make)
}

fn label_list(handler: &'static str, second: Option<Pair>) -> Vec<Label> {
    let mut labels = vec![Label::from_static_parts(HANDLER, handler)];
    labels.extend(second.map(|(k, v)| Label::from_static_parts(k, v)));
    labels
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_label_sets_of_many_handlers_spread_over_the_table() {
        // A table of its own, leaked like the static: its labels are
        // handed out as `'static`.
        let table: &'static Table<LabelSet, LABEL_SLOTS> = Box::leak(Box::new(Table::new()));
        // Handler names as the `tower` layer interns them: each its own
        // small allocation, side by side.
        let handlers: Vec<&'static str> = (0..256)
            .map(|i| &*Box::leak(format!("GET /route/{i}").into_boxed_str()))
            .collect();
        let seconds = [
            None,
            Some((DEPENDENCY, ALL_DEPENDENCIES)),
            Some((DEPENDENCY, "redis")),
            Some((DEPENDENCY, "billing")),
            Some((OUTCOME, "ok")),
            Some((OUTCOME, "error")),
        ];
        let sets = handlers.len() * seconds.len();
        let mut walked = 0;
        let mut starts = std::collections::HashSet::new();
        let mut found = Vec::new();
        for &handler in &handlers {
            for second in seconds {
                let start = slot(handler, second);
                let (index, set) = find(table, handler, second)
                    .unwrap_or_else(|| panic!("no slot for {handler} {second:?}"));
                starts.insert(start);
                walked += (index + LABEL_SLOTS - start) % LABEL_SLOTS;
                found.push(set);
            }
        }
        assert_eq!(table.filled(), sets);
        // Each of a handler's sets starts a walk of its own (1,536 sets
        // thrown at random on 4,096 slots land on about 1,280), and a set
        // is found, on average, less than one slot past its start.
        assert!(starts.len() > sets * 2 / 3, "{} starts", starts.len());
        assert!(walked < sets, "{walked} slots walked past the starts");
        // Found again where they were put.
        let again = handlers
            .iter()
            .flat_map(|&handler| seconds.map(|second| find(table, handler, second)));
        for (first, again) in found.into_iter().zip(again) {
            assert!(std::ptr::eq(first, again.unwrap().1));
        }
    }
}
