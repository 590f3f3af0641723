//! Where a finished handler's figures go: its span, and (with the `metrics`
//! and `opentelemetry` features) the metrics facade and OpenTelemetry's
//! instruments.

use crate::snapshot::{Outcome, Reading};
use std::cell::RefCell;
use std::fmt::Write as _;
use tracing::Span;

/// The span fields `#[timed_handler]` declares and records, in the order
/// they are declared. `#[timed_handler(polls)]` adds [`SPLIT_FIELDS`]. Use them to declare the fields yourself when recording
/// onto a span of your own (`span = "current"`).
pub const FIELDS: [&str; 6] = [
    "total.duration_us",
    "external.duration_us",
    "internal.duration_us",
    "external.calls",
    "external.breakdown",
    "outcome",
];

/// The fields `#[timed_handler(polls)]` adds: internal time split into the
/// handler's own polling, the wait after a dependency's wake, and the rest.
pub const SPLIT_FIELDS: [&str; 3] = [
    "internal.busy_us",
    "internal.scheduled_us",
    "internal.waiting_us",
];

/// What a handler knows of the request it serves beyond its name: the
/// `tower` layer's route, which the OpenTelemetry series carry as the
/// semantic conventions' attributes. Every part is borrowed from the
/// handler's (interned) name, so it is as bounded as the name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) enum Route {
    /// Nothing more than the name (`#[timed_handler]`, a layer without a
    /// route function, a route function that found none).
    #[default]
    Unknown,
    /// An HTTP route template: `/users/{id}`.
    Http(&'static str),
    /// A gRPC method, fully qualified: `shop.Cart/Checkout`.
    Grpc(&'static str),
}

pub(crate) fn report(
    name: &'static str,
    route: Route,
    span: &Span,
    reading: &Reading<'_>,
    outcome: Outcome,
) {
    record_on_span(span, reading, outcome);
    #[cfg(feature = "metrics")]
    crate::metrics::record(name, reading, outcome);
    #[cfg(feature = "opentelemetry")]
    crate::opentelemetry::record(name, route, reading, outcome);
    #[cfg(not(any(feature = "metrics", feature = "opentelemetry")))]
    let _ = name;
    #[cfg(not(feature = "opentelemetry"))]
    let _ = route;
}

fn record_on_span(span: &Span, reading: &Reading<'_>, outcome: Outcome) {
    if span.is_disabled() {
        return;
    }
    // Microseconds are floored once each for total and external, and internal
    // is their difference, so the three recorded figures always add up.
    // Cannot underflow: external is clamped to total before flooring.
    let [total_field, external_field, internal_field, calls_field, breakdown_field, outcome_field] =
        FIELDS;
    let total = reading.total_ns() / 1_000;
    let external = reading.external_ns() / 1_000;
    span.record(total_field, total);
    span.record(external_field, external);
    span.record(internal_field, total - external);
    span.record(calls_field, reading.calls());
    record_breakdown(span, breakdown_field, reading);
    span.record(outcome_field, outcome.as_str());
    if let Some((busy, scheduled)) = reading.split_ns() {
        let (busy, scheduled) = (busy / 1_000, scheduled / 1_000);
        // Floors of parts never exceed the floor of their sum, which is at
        // most `internal` here, so `waiting` cannot underflow; the three
        // recorded parts add up to the recorded internal time.
        let internal = total - external;
        let [busy_field, scheduled_field, waiting_field] = SPLIT_FIELDS;
        span.record(busy_field, busy);
        span.record(scheduled_field, scheduled);
        span.record(waiting_field, internal.saturating_sub(busy + scheduled));
    }
}

thread_local! {
    /// Each thread's buffer for the breakdown's text: it grows to the
    /// longest breakdown the thread has written, then allocates no more.
    static BREAKDOWN: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Records `external.breakdown` as a string field, so that subscribers see
/// a string (and a logfmt printer quotes it: `external.breakdown=""` for a
/// handler that made no call, `external.breakdown="redis=812us/3"`).
fn record_breakdown(span: &Span, field: &str, reading: &Reading<'_>) {
    let record = |text: &mut String| {
        text.clear();
        // Writing to a `String` cannot fail.
        let _ = write!(text, "{}", reading.breakdown());
        span.record(field, text.as_str());
    };
    // A subscriber that reports a handler from inside `record` would find
    // the buffer taken: it gets one of its own.
    let recorded = BREAKDOWN
        .try_with(|buffer| {
            buffer
                .try_borrow_mut()
                .map(|mut text| record(&mut text))
                .is_ok()
        })
        .unwrap_or(false);
    if !recorded {
        record(&mut String::new());
    }
}

#[cfg(test)]
mod tests {
    use super::{FIELDS, SPLIT_FIELDS};
    use tracing_subscriber::layer::SubscriberExt as _;

    struct Noop;
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Noop {}

    /// The fields the span macro declares are the fields recorded: the two
    /// places the names are written agree.
    #[test]
    fn the_span_macro_declares_the_figure_fields() {
        let subscriber = tracing_subscriber::registry().with(Noop);
        tracing::subscriber::with_default(subscriber, || {
            let plain = crate::__private::handler_span!(INFO, "plain");
            let fields: Vec<&str> = plain
                .metadata()
                .unwrap()
                .fields()
                .iter()
                .map(|f| f.name())
                .collect();
            assert_eq!(fields, FIELDS);
            let polls = crate::__private::handler_span!(polls, INFO, "polls");
            let fields: Vec<&str> = polls
                .metadata()
                .unwrap()
                .fields()
                .iter()
                .map(|f| f.name())
                .collect();
            assert_eq!(fields, [&FIELDS[..], &SPLIT_FIELDS[..]].concat());
        });
    }
}
