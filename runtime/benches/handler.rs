//! The cost of `#[timed_handler]` against the same figures written by hand
//! with tracing alone, and against its peers.
//!
//! `cargo bench -p selftime --bench handler`
//!
//! Targets (BENCHMARKS.md), on a trivial async fn under
//! `registry().with(<no-op layer>)`: `#[timed_handler]` <= 0.7 x the
//! hand-written equivalent (`#[tracing::instrument]` declaring the eight
//! fields, two reads of the clock, seven `Span::record` calls: the same
//! figures, `external.between_us` left empty as a handler leaves it when no
//! dependency reported its own time),
//! and <= 1.3 x a plain `#[instrument(skip_all)]` span. Also reported:
//! against no instrumentation, with no subscriber at all, and beside
//! fastrace's `#[trace]`.
//!
//! Never a bare `registry()`: it never frees closed spans (tokio-rs/tracing#900).
//!
//! The groups run in this order on purpose: tracing caches each callsite's
//! interest when a dispatcher is created, so the no-subscriber group runs
//! before any subscriber exists in the process, as in a program that
//! installs none.

// The trivial async fns are the subject: they await nothing on purpose.
#![allow(clippy::unused_async)]

mod common;

use common::{Suite, Target, noop::Noop};
use criterion::Criterion;
use std::hint::black_box;
use std::time::Duration;
use tracing::field::Empty;
use tracing_subscriber::layer::SubscriberExt as _;

async fn none() -> u64 {
    black_box(1)
}

#[tracing::instrument(skip_all)]
async fn instrument() -> u64 {
    black_box(1)
}

/// What a user writes to get the same figures with tracing alone.
#[tracing::instrument(
    skip_all,
    fields(
        total.duration_us = Empty,
        external.duration_us = Empty,
        internal.duration_us = Empty,
        external.calls = Empty,
        external.breakdown = Empty,
        outcome = Empty,
        internal.backlog_us = Empty,
        external.between_us = Empty,
    )
)]
async fn hand_written() -> u64 {
    let start = tokio::time::Instant::now();
    let out = black_box(1);
    let total = u64::try_from(
        tokio::time::Instant::now()
            .duration_since(start)
            .as_micros(),
    )
    .unwrap_or(u64::MAX);
    let span = tracing::Span::current();
    span.record("total.duration_us", total);
    span.record("external.duration_us", 0_u64);
    span.record("internal.duration_us", total);
    span.record("external.calls", 0_u64);
    span.record("external.breakdown", "");
    span.record("outcome", "ok");
    span.record("internal.backlog_us", 0_u64);
    out
}

#[selftime::timed_handler]
async fn timed() -> u64 {
    black_box(1)
}

#[fastrace::trace]
async fn fastrace_traced() -> u64 {
    black_box(1)
}

/// A fastrace reporter that drops every span (the collector still runs).
struct Discard;

impl fastrace::collector::Reporter for Discard {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        drop(black_box(spans));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}

/// `iters` awaits of the future `f` makes, on `rt`.
fn awaits<F: std::future::Future<Output = u64>>(
    rt: &tokio::runtime::Runtime,
    iters: u64,
    f: impl Fn() -> F,
) -> Duration {
    rt.block_on(async {
        let start = std::time::Instant::now();
        for _ in 0..iters {
            black_box(f().await);
        }
        start.elapsed()
    })
}

/// fastrace records only under a root span set as the local parent; a
/// trace is reported when its root drops. One root per 1024 calls bounds the
/// memory a trace holds; its cost is spread over the calls.
fn fastrace_children(rt: &tokio::runtime::Runtime, iters: u64) -> Duration {
    rt.block_on(async {
        let start = std::time::Instant::now();
        let mut left = iters;
        while left > 0 {
            let chunk = left.min(1024);
            left -= chunk;
            let root = fastrace::Span::root("request", fastrace::collector::SpanContext::random());
            let _parent = root.set_local_parent();
            for _ in 0..chunk {
                black_box(fastrace_traced().await);
            }
        }
        start.elapsed()
    })
}

/// One fastrace trace per call: a root span (the request) around the traced fn.
fn fastrace_roots(rt: &tokio::runtime::Runtime, iters: u64) -> Duration {
    rt.block_on(async {
        let start = std::time::Instant::now();
        for _ in 0..iters {
            let root = fastrace::Span::root("request", fastrace::collector::SpanContext::random());
            let _parent = root.set_local_parent();
            black_box(fastrace_traced().await);
        }
        start.elapsed()
    })
}

fn four<'a>(suite: &mut Suite<'a>, rt: &'a tokio::runtime::Runtime) {
    suite.add("none", |n| awaits(rt, n, none));
    suite.add("instrument_skip_all", |n| awaits(rt, n, instrument));
    suite.add("hand_written_eight_fields", |n| awaits(rt, n, hand_written));
    suite.add("timed_handler", |n| awaits(rt, n, timed));
}

/// The targets are stated under a subscriber; `judged` is false for the
/// group without one, whose ratios are reported only.
fn judge(r: &common::Rounds, judged: bool) {
    let target = |t| {
        if judged {
            Target::AtMost(t)
        } else {
            Target::Report
        }
    };
    r.ratio(
        "timed_handler / hand-written eight fields",
        target(0.7),
        |r| r.ns("timed_handler") / r.ns("hand_written_eight_fields"),
    );
    r.ratio(
        "timed_handler / #[instrument(skip_all)]",
        target(1.3),
        |r| r.ns("timed_handler") / r.ns("instrument_skip_all"),
    );
    r.figure("timed_handler - none", "ns", |r| {
        r.ns("timed_handler") - r.ns("none")
    });
    r.figure("#[instrument(skip_all)] - none", "ns", |r| {
        r.ns("instrument_skip_all") - r.ns("none")
    });
    r.figure("hand-written - none", "ns", |r| {
        r.ns("hand_written_eight_fields") - r.ns("none")
    });
}

fn no_subscriber(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let mut suite = Suite::new("handler_no_subscriber");
    four(&mut suite, rt);
    if let Some(r) = suite.run(c) {
        judge(&r, false);
    }
}

fn registry_noop(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let mut suite = Suite::new("handler_registry_noop");
    four(&mut suite, rt);
    if let Some(r) = suite.run(c) {
        judge(&r, true);
    }
}

fn peers(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    fastrace::set_reporter(Discard, fastrace::collector::Config::default());
    let mut suite = Suite::new("peers");
    suite.add("none", |n| awaits(rt, n, none));
    suite.add("selftime_timed_handler", |n| awaits(rt, n, timed));
    suite.add("tracing_instrument_skip_all", |n| awaits(rt, n, instrument));
    suite.add("fastrace_trace_child_span", |n| fastrace_children(rt, n));
    suite.add("fastrace_trace_root_per_call", |n| fastrace_roots(rt, n));
    let result = suite.run(c);
    fastrace::flush();
    let Some(r) = result else { return };
    for name in [
        "selftime_timed_handler",
        "tracing_instrument_skip_all",
        "fastrace_trace_child_span",
        "fastrace_trace_root_per_call",
    ] {
        r.figure(&format!("{name} - none"), "ns", |r| {
            r.ns(name) - r.ns("none")
        });
        if name == "tracing_instrument_skip_all" {
            continue;
        }
        r.ratio(
            &format!("{name} / tracing_instrument_skip_all"),
            Target::Report,
            |r| (r.ns(name) - r.ns("none")) / (r.ns("tracing_instrument_skip_all") - r.ns("none")),
        );
    }
}

fn main() {
    common::print_machine();
    let mut c = Criterion::default().configure_from_args();
    let rt = runtime();
    no_subscriber(&mut c, &rt);
    // From here on, for the rest of the process: the registry with a no-op layer.
    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry().with(Noop));
    registry_noop(&mut c, &rt);
    peers(&mut c, &rt);
    c.final_summary();
}
