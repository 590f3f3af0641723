//! A subscriber that keeps every closed span's recorded fields, so tests can
//! assert on exactly what `#[timed_handler]` recorded.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// One closed span: its name, target, level and the fields recorded on it.
#[derive(Clone, Debug, Default)]
pub struct Closed {
    pub name: String,
    pub target: String,
    pub level: String,
    pub fields: HashMap<String, String>,
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
    pub target: String,
    pub level: String,
    pub fields: HashMap<String, String>,
}

#[derive(Clone, Default)]
pub struct Capture {
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

    pub fn closed(&self) -> Vec<Closed> {
        self.closed.lock().unwrap().clone()
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

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut closed = Closed {
            name: attrs.metadata().name().to_owned(),
            target: attrs.metadata().target().to_owned(),
            level: attrs.metadata().level().to_string(),
            fields: HashMap::new(),
        };
        attrs.record(&mut Fields(&mut closed.fields));
        self.open.lock().unwrap().insert(id.clone(), closed);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(span) = self.open.lock().unwrap().get_mut(id) {
            values.record(&mut Fields(&mut span.fields));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut captured = Event {
            target: event.metadata().target().to_owned(),
            level: event.metadata().level().to_string(),
            fields: HashMap::new(),
        };
        event.record(&mut Fields(&mut captured.fields));
        self.events.lock().unwrap().push(captured);
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        if let Some(span) = self.open.lock().unwrap().remove(&id) {
            self.closed.lock().unwrap().push(span);
        }
    }
}
