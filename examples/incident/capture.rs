//! The demo's only source of figures: a tracing `Layer` that reads the six
//! fields `#[timed_handler]` records on its span, when the span closes.
//! Nothing here measures time; the demo never recomputes internal time.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The phase index of the warm-up's samples, which no phase includes.
pub(crate) const WARMUP: usize = usize::MAX;

/// One finished handler, as its span reported it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sample {
    /// The phase the handler ran in.
    pub(crate) phase: usize,
    /// When its span closed.
    pub(crate) ended: Option<Instant>,
    pub(crate) total_us: u64,
    pub(crate) external_us: u64,
    pub(crate) internal_us: u64,
    pub(crate) calls: u64,
    pub(crate) outcome: String,
    /// `external.breakdown`, parsed: (dependency, busy µs, calls).
    pub(crate) dependencies: Vec<(String, u64, u64)>,
}

/// Collects a [`Sample`] from every closed span named `handler` that
/// carries selftime's fields; ignores every other span and event.
#[derive(Clone, Debug)]
pub(crate) struct Capture {
    handler: &'static str,
    phase: Arc<AtomicUsize>,
    samples: Arc<Mutex<Vec<Sample>>>,
}

impl Capture {
    pub(crate) fn new(handler: &'static str) -> Self {
        Self {
            handler,
            phase: Arc::default(),
            samples: Arc::default(),
        }
    }

    /// Tags the handlers that start from now on with `phase`.
    pub(crate) fn set_phase(&self, phase: usize) {
        self.phase.store(phase, Ordering::Relaxed);
    }

    /// How many samples so far, warm-up excluded.
    pub(crate) fn measured(&self) -> usize {
        self.lock().iter().filter(|s| s.phase != WARMUP).count()
    }

    /// Takes the samples collected so far.
    pub(crate) fn take(&self) -> Vec<Sample> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Sample>> {
        // A poisoned list is still a list of whole samples.
        self.samples.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wants(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_span()
            && metadata.name() == self.handler
            && selftime::FIELDS
                .iter()
                .all(|name| metadata.fields().field(name).is_some())
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        // Spans and events of hyper, reqwest and the rest cost nothing.
        if self.wants(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        self.wants(metadata)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut sample = Sample {
                phase: self.phase.load(Ordering::Relaxed),
                ..Sample::default()
            };
            attrs.record(&mut Fields(&mut sample));
            span.extensions_mut().insert(sample);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(sample) = span.extensions_mut().get_mut::<Sample>() {
                values.record(&mut Fields(sample));
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let ended = Instant::now();
        if let Some(span) = ctx.span(&id) {
            if let Some(mut sample) = span.extensions_mut().remove::<Sample>() {
                sample.ended = Some(ended);
                self.lock().push(sample);
            }
        }
    }
}

/// Reads the six fields into a sample.
struct Fields<'a>(&'a mut Sample);

impl Visit for Fields<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "total.duration_us" => self.0.total_us = value,
            "external.duration_us" => self.0.external_us = value,
            "internal.duration_us" => self.0.internal_us = value,
            "external.calls" => self.0.calls = value,
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `external.breakdown` is recorded with `display`, whose Debug is the text.
        self.text(field, &format!("{value:?}"));
    }
}

impl Fields<'_> {
    fn text(&mut self, field: &Field, value: &str) {
        match field.name() {
            "outcome" => value.clone_into(&mut self.0.outcome),
            "external.breakdown" => self.0.dependencies = parse_breakdown(value),
            _ => {}
        }
    }
}

/// Parses `dep=<µs>us/<calls>,…`; skips entries it cannot read.
pub(crate) fn parse_breakdown(text: &str) -> Vec<(String, u64, u64)> {
    text.split(',')
        .filter_map(|entry| {
            let (name, figures) = entry.split_once('=')?;
            let (busy, calls) = figures.split_once("us/")?;
            Some((name.to_owned(), busy.parse().ok()?, calls.parse().ok()?))
        })
        .collect()
}
