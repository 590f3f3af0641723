//! A layer that keeps every closed span's recorded fields, so tests can
//! assert on exactly what `#[timed_handler]` recorded.
//!
//! Open spans are kept in a map of its own rather than in the registry's
//! span extensions: the registry keeps each slot's extension table for
//! reuse, and how many slots it ends up with depends on which threads close
//! the spans, which would blur a count of the heap.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

/// One closed span: its name, target, level, the fields recorded on it, and
/// its parent as the parent stood when this span opened.
#[derive(Clone, Debug, Default)]
pub struct Closed {
    pub name: &'static str,
    pub target: &'static str,
    pub level: &'static str,
    pub fields: HashMap<&'static str, String>,
    pub parent: Option<Box<Closed>>,
}

impl Closed {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    pub fn u64(&self, name: &str) -> u64 {
        self.field(name)
            .unwrap_or_else(|| panic!("span `{}` has no field `{name}`: {self:?}", self.name))
            .parse()
            .unwrap_or_else(|e| panic!("field `{name}` of `{}` is not a u64: {e}", self.name))
    }

    /// `(total, external, internal)` in microseconds.
    pub fn figures(&self) -> (u64, u64, u64) {
        (
            self.u64("total.duration_us"),
            self.u64("external.duration_us"),
            self.u64("internal.duration_us"),
        )
    }

    pub fn outcome(&self) -> &str {
        self.field("outcome").unwrap_or("<none>")
    }

    pub fn breakdown(&self) -> &str {
        self.field("external.breakdown").unwrap_or("<none>")
    }
}

/// One event: its target, level and fields (`message` included).
#[derive(Clone, Debug, Default)]
pub struct Event {
    pub target: &'static str,
    pub level: &'static str,
    pub fields: HashMap<&'static str, String>,
}

#[derive(Clone, Default)]
pub struct Capture {
    /// Keep only the closed spans of this name, and no events.
    keep: Option<&'static str>,
    open: Arc<Mutex<HashMap<Id, Closed>>>,
    closed: Arc<Mutex<Vec<Closed>>>,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Capture {
    /// A capturing subscriber, installed for the current thread until the
    /// guard drops.
    pub fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        let capture = Self::default();
        let guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
        (capture, guard)
    }

    /// A layer that keeps only the closed spans named `name`, and no events:
    /// for runs too long to keep everything.
    pub fn keeping(name: &'static str) -> Self {
        Self {
            keep: Some(name),
            ..Self::default()
        }
    }

    pub fn closed(&self) -> Vec<Closed> {
        self.closed.lock().unwrap().clone()
    }

    /// Takes the spans closed so far.
    pub fn take(&self) -> Vec<Closed> {
        std::mem::take(&mut *self.closed.lock().unwrap())
    }

    /// The one closed span named `name`; panics if there is not exactly one.
    pub fn only(&self, name: &str) -> Closed {
        let all: Vec<_> = self
            .closed()
            .into_iter()
            .filter(|c| c.name == name)
            .collect();
        assert_eq!(
            all.len(),
            1,
            "expected one closed span `{name}`, got {all:#?}"
        );
        all.into_iter().next().unwrap()
    }

    /// The events recorded so far with this target.
    pub fn events(&self, target: &str) -> Vec<Event> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.target == target)
            .cloned()
            .collect()
    }

    pub fn named(&self, name: &str) -> Vec<Closed> {
        self.closed()
            .into_iter()
            .filter(|c| c.name == name)
            .collect()
    }
}

struct Fields<'a>(&'a mut HashMap<&'static str, String>);

impl Visit for Fields<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name(), value.to_string());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut span = Closed {
            name: attrs.metadata().name(),
            target: attrs.metadata().target(),
            level: attrs.metadata().level().as_str(),
            ..Closed::default()
        };
        attrs.record(&mut Fields(&mut span.fields));
        let parent = ctx.span(id).and_then(|s| s.parent().map(|p| p.id()));
        let mut open = self.open.lock().unwrap();
        span.parent = parent.and_then(|p| open.get(&p).cloned().map(Box::new));
        open.insert(id.clone(), span);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(span) = self.open.lock().unwrap().get_mut(id) {
            values.record(&mut Fields(&mut span.fields));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if self.keep.is_some() {
            return;
        }
        let mut captured = Event {
            target: event.metadata().target(),
            level: event.metadata().level().as_str(),
            fields: HashMap::new(),
        };
        event.record(&mut Fields(&mut captured.fields));
        self.events.lock().unwrap().push(captured);
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        let Some(span) = self.open.lock().unwrap().remove(&id) else {
            return;
        };
        if self.keep.is_none_or(|name| span.name == name) {
            self.closed.lock().unwrap().push(span);
        }
    }
}
