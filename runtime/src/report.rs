//! Where a finished handler's figures go: its span, and (with the `metrics`
//! and `opentelemetry` features) the metrics facade and OpenTelemetry's
//! instruments.

use crate::reading::{Outcome, Reading, Route};
use crate::table::{Table, fnv1a};
use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use tracing::Span;
use tracing::field::{Field, FieldSet, Value};

/// The span fields `#[timed_handler]` declares and records, in the order
/// they are declared (`external.between_us` only when a dependency reported
/// its own time in `Server-Timing`). `#[timed_handler(split)]` adds
/// [`SPLIT_FIELDS`]. Use them to declare the fields yourself when recording
/// onto a span of your own (`span = "current"`).
pub const FIELDS: [&str; 8] = [
    "total.duration_us",
    "external.duration_us",
    "internal.duration_us",
    "external.calls",
    "external.breakdown",
    "outcome",
    "internal.backlog_us",
    "external.between_us",
];

/// The field the `tower` layer's handlers add: the time in which the
/// response was ready but the client had not taken it (µs), which is neither
/// internal nor external time.
pub const CLIENT_FIELD: &str = "client.duration_us";

/// The metrics of the W3C `Server-Timing` header that
/// `HandlerLayer::server_timing` adds to a trusted caller's response, in
/// the order written, each with `dur` in milliseconds: the handler's
/// total, internal and external time so far, then (when asked) one
/// `dependency` metric per dependency, named in its `desc`. The client
/// integrations read the callee's `total`.
pub const SERVER_TIMING: [&str; 4] = ["total", "internal", "external", "dependency"];

/// The fields `#[timed_handler(split)]` adds: internal time split into the
/// handler's own polling, the wait after a dependency's wake, and the rest.
pub const SPLIT_FIELDS: [&str; 3] = [
    "internal.busy_us",
    "internal.scheduled_us",
    "internal.waiting_us",
];

pub(crate) fn report(
    name: &'static str,
    route: Route,
    span: &Span,
    reading: &Reading<'_>,
    outcome: Outcome,
) {
    if !record_on_span(span, reading, outcome) {
        warn_undeclared(name, span, reading.split_ns().is_some());
    }
    #[cfg(feature = "metrics")]
    crate::metrics::record(name, reading, outcome);
    #[cfg(feature = "opentelemetry")]
    crate::opentelemetry::record(name, route, reading, outcome);
    #[cfg(not(any(feature = "metrics", feature = "opentelemetry")))]
    let _ = name;
    #[cfg(not(feature = "opentelemetry"))]
    let _ = route;
}

/// Records the figures on `span`; whether it declares each field where
/// selftime's own spans do (if not, some may be missing).
fn record_on_span(span: &Span, reading: &Reading<'_>, outcome: Outcome) -> bool {
    // A disabled span has no metadata: nothing to record.
    let Some(metadata) = span.metadata() else {
        return true;
    };
    let fields = metadata.fields();
    // Microseconds are floored once each for total, external and the
    // client's time, and internal is what is left, so the recorded figures
    // always add up. Cannot underflow: external and the client's time are
    // clamped to total before flooring, and floor(t) - floor(e) is at least
    // floor(t - e).
    let total = reading.total_ns() / 1_000;
    let external = reading.external_ns() / 1_000;
    let client = reading.client_ns().map(|ns| ns / 1_000);
    let internal = (total - external).saturating_sub(client.unwrap_or(0));
    let calls = reading.calls();
    let outcome = outcome.as_str();
    // Floored on its own: at most the floor of internal, which it is part of.
    let backlog = (reading.backlog_ns() / 1_000).min(internal);
    // Part of external time, floored on its own; `None` records nothing.
    let between = reading.between_ns().map(|ns| (ns / 1_000).min(external));
    let mut in_place = true;
    with_breakdown(reading, |breakdown| {
        let values: [&dyn Value; 8] = [
            &total, &external, &internal, &calls, &breakdown, &outcome, &backlog, &between,
        ];
        in_place &= record_fields(span, fields, FIELDS, values);
    });
    if let Some(client) = client {
        span.record(CLIENT_FIELD, client);
    }
    if let Some((busy, scheduled)) = reading.split_ns() {
        let (busy, scheduled) = (busy / 1_000, scheduled / 1_000);
        // Floors of parts never exceed the floor of their sum, which is at
        // most `internal` here, so `waiting` cannot underflow; the three
        // recorded parts add up to the recorded internal time.
        let waiting = internal.saturating_sub(busy + scheduled);
        in_place &= record_fields(span, fields, SPLIT_FIELDS, [&busy, &scheduled, &waiting]);
    }
    in_place
}

/// Records `values` as the fields `names` of `span`: in one call to the
/// subscriber when the span declares them one after the other (every span
/// selftime opens does), else one field at a time (a span of the user's own,
/// `span = "current"`, whose missing fields are skipped as tracing skips
/// them). Whether it was the one call.
fn record_fields<const N: usize>(
    span: &Span,
    fields: &FieldSet,
    names: [&str; N],
    values: [&dyn Value; N],
) -> bool {
    let mut declared = fields.iter().skip_while(|field| field.name() != names[0]);
    let found: [Option<Field>; N] =
        std::array::from_fn(|i| declared.next().filter(|field| field.name() == names[i]));
    match &found[0] {
        Some(first) if found.iter().all(Option::is_some) => {
            // (Every entry is `Some`; `first` with no value would record nothing.)
            let pairs: [(&Field, Option<&dyn Value>); N] =
                std::array::from_fn(|i| match &found[i] {
                    Some(field) => (field, Some(values[i])),
                    None => (first, None),
                });
            span.record_all(&fields.value_set(&pairs));
            true
        }
        _ => {
            for (name, value) in names.into_iter().zip(values) {
                span.record(name, value);
            }
            false
        }
    }
}

/// Handlers already warned about a span without the figure fields, by name.
/// A full table warns no more: by then the point is made.
static WARNED: Table<&'static str, 64> = Table::new();

/// For a span not made by selftime (`span = "current"`) that lacks figure
/// fields, whose values tracing drops without a word: a `WARN` event, the
/// first time for each handler, naming the handler, the span and the
/// missing fields. Only reached when the fields are not where selftime's
/// own spans have them; after its first time for a handler it reads the
/// span's fields and one slot of a table, and allocates nothing.
fn warn_undeclared(name: &'static str, span: &Span, split: bool) {
    let Some(metadata) = span.metadata() else {
        return;
    };
    let fields = metadata.fields();
    let split: &[&str] = if split { &SPLIT_FIELDS } else { &[] };
    let missing = || {
        FIELDS
            .iter()
            .chain(split)
            .copied()
            .filter(|field| fields.field(field).is_none())
    };
    // Declared, in an order of the user's own.
    if missing().next().is_none() {
        return;
    }
    let first = Cell::new(false);
    let start = fnv1a(&[name]) as usize;
    let found = WARNED.find_or_insert(
        start,
        |warned| *warned == name,
        || {
            first.set(true);
            name
        },
    );
    if found.is_none() || !first.get() {
        return;
    }
    let missing: Vec<&str> = missing().collect();
    let declare: Vec<String> = missing
        .iter()
        .map(|field| format!("{field} = tracing::field::Empty"))
        .collect();
    tracing::warn!(
        target: "selftime",
        handler = name,
        span = metadata.name(),
        missing = %missing.join(", "),
        "handler `{name}` records its figures onto the current span, `{}`, which does not \
         declare {}: tracing drops those values, so the span does not have them (metrics and \
         `selftime::current()` still do); declare them where the span is made: `{}` (or the \
         bare names in `#[instrument(fields(…))]`)",
        metadata.name(),
        missing.iter().map(|field| format!("`{field}`")).collect::<Vec<_>>().join(", "),
        declare.join(", "),
    );
}

thread_local! {
    /// Each thread's buffer for the breakdown's text: it grows to the
    /// longest breakdown the thread has written, then allocates no more.
    static BREAKDOWN: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `f` with the breakdown's text, `external.breakdown`, recorded as a
/// string, so that subscribers see a string (and a logfmt printer quotes it:
/// `external.breakdown=""` for a handler that made no call,
/// `external.breakdown="redis=812us/3"`).
fn with_breakdown(reading: &Reading<'_>, f: impl FnOnce(&str)) {
    if reading.calls() == 0 {
        return f("");
    }
    let write = |text: &mut String| {
        text.clear();
        // Writing to a `String` cannot fail.
        let _ = write!(text, "{}", reading.breakdown());
    };
    let mut f = Some(f);
    // A subscriber that reports a handler from inside `record` would find
    // the buffer taken: it gets one of its own.
    let _ = BREAKDOWN.try_with(|buffer| {
        if let Ok(mut text) = buffer.try_borrow_mut() {
            write(&mut text);
            if let Some(f) = f.take() {
                f(&text);
            }
        }
    });
    if let Some(f) = f {
        let mut text = String::new();
        write(&mut text);
        f(&text);
    }
}

#[cfg(test)]
mod tests {
    use super::{FIELDS, SPLIT_FIELDS};

    /// The fields the span macro declares are the fields recorded: the two
    /// places the names are written agree.
    #[test]
    fn the_span_macro_declares_the_figure_fields() {
        // Any subscriber that enables the spans: they only need metadata.
        let subscriber = tracing_subscriber::registry();
        let names = |span: tracing::Span| -> Vec<&'static str> {
            let fields = span.metadata().unwrap().fields();
            fields.iter().map(|f| f.name()).collect()
        };
        tracing::subscriber::with_default(subscriber, || {
            let plain = crate::__private::span!(INFO, "plain");
            assert_eq!(names(plain), FIELDS);
            let split = crate::__private::span!(split, INFO, "split");
            assert_eq!(names(split), [&FIELDS[..], &SPLIT_FIELDS[..]].concat());
        });
    }
}
