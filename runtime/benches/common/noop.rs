//! The registry with a layer that does nothing: what a service with a
//! subscriber pays for spans, without a bare registry's leak of every closed
//! span (tokio-rs/tracing#900). Shared by the benches and the suite's tests
//! (which include this file by path).

use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt as _;

/// A layer that does nothing.
pub(crate) struct Noop;

impl<S: Subscriber> Layer<S> for Noop {}

/// `registry().with(Noop)`, installed for the current thread until the guard
/// drops.
pub(crate) fn registry_noop() -> tracing::subscriber::DefaultGuard {
    tracing::subscriber::set_default(tracing_subscriber::registry().with(Noop))
}
