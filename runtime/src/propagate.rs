//! Carrying the handler in scope into spawned tasks, blocking tasks and
//! threads, which do not inherit tokio task-locals.

use crate::scope::{self, Scope};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::task::futures::TaskLocalFuture;

/// The handler in scope, captured so that work elsewhere can count toward it.
///
/// `tokio::spawn`, `spawn_blocking` and `std::thread::spawn` start without
/// the spawning task's task-locals, so external calls made there belong to
/// no handler. Capture a `Handle` where the handler is in scope and enter it
/// where the work runs.
///
/// A handle keeps the handler's ledger alive, not the handler: calls made
/// after the handler has reported are accepted and ignored.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #[selftime::external_call("legacy")]
/// fn blocking_lookup() -> u32 { 7 }
///
/// #[selftime::timed_handler]
/// async fn handler() -> u64 {
///     let handle = selftime::Handle::current().expect("inside a handler");
///     let n = tokio::task::spawn_blocking(move || handle.sync_scope(blocking_lookup))
///         .await
///         .unwrap();
///     assert_eq!(n, 7);
///     selftime::current().unwrap().calls()
/// }
///
/// assert_eq!(handler().await, 1);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Handle {
    scope: Arc<Scope>,
}

impl Handle {
    /// The handler in scope, or `None` outside any handler.
    #[must_use]
    pub fn current() -> Option<Self> {
        scope::current().map(|scope| Self { scope })
    }

    /// Runs `fut` with this handler in scope (on every poll).
    pub fn scope<F: Future>(&self, fut: F) -> InCurrentHandler<F> {
        InCurrentHandler {
            inner: Carried::Scoped {
                inner: scope::scope(Arc::clone(&self.scope), fut),
            },
        }
    }

    /// Runs `f` with this handler in scope: for `spawn_blocking` and threads.
    pub fn sync_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        scope::sync_scope(Arc::clone(&self.scope), f)
    }
}

/// Wraps `f` so that it runs with the handler in scope *now* (if any) in
/// scope, wherever it is called: `spawn_blocking(selftime::bind(|| …))`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #[selftime::timed_handler]
/// async fn handler() -> bool {
///     tokio::task::spawn_blocking(selftime::bind(|| selftime::current().is_some()))
///         .await
///         .unwrap()
/// }
///
/// assert!(handler().await);
/// # }
/// ```
pub fn bind<R>(f: impl FnOnce() -> R) -> impl FnOnce() -> R {
    let handle = Handle::current();
    move || match handle {
        Some(handle) => handle.sync_scope(f),
        None => f(),
    }
}

pin_project! {
    /// A future that runs with a captured handler in scope: see
    /// [`FutureExt::in_current_handler`] and [`Handle::scope`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct InCurrentHandler<F: Future> {
        #[pin]
        inner: Carried<F>,
    }
}

pin_project! {
    #[project = CarriedProj]
    #[derive(Debug)]
    enum Carried<F: Future> {
        // A handler was in scope when the future was wrapped.
        Scoped { #[pin] inner: TaskLocalFuture<Arc<Scope>, F> },
        // No handler was in scope: the future runs as it is.
        Plain { #[pin] inner: F },
    }
}

impl<F: Future> Future for InCurrentHandler<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.project().inner.project() {
            CarriedProj::Scoped { inner } => inner.poll(cx),
            CarriedProj::Plain { inner } => inner.poll(cx),
        }
    }
}

/// Extension methods for futures.
pub trait FutureExt: Future + Sized {
    /// Carries the handler in scope into this future, wherever it is polled.
    ///
    /// tokio does not inherit task-locals across `tokio::spawn`, so without
    /// this a spawned task's external calls count toward no handler:
    ///
    /// ```
    /// use selftime::FutureExt as _;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// #[selftime::external_call("redis")]
    /// async fn warm_cache() {}
    ///
    /// #[selftime::timed_handler]
    /// async fn handler() -> u64 {
    ///     tokio::spawn(warm_cache().in_current_handler()).await.unwrap();
    ///     selftime::current().unwrap().calls()
    /// }
    ///
    /// assert_eq!(handler().await, 1);
    /// # }
    /// ```
    ///
    /// Outside any handler the future is returned unchanged in behaviour.
    fn in_current_handler(self) -> InCurrentHandler<Self> {
        match Handle::current() {
            Some(handle) => handle.scope(self),
            None => InCurrentHandler {
                inner: Carried::Plain { inner: self },
            },
        }
    }
}

impl<F: Future> FutureExt for F {}

/// `tokio::spawn`, carrying the handler in scope (if any) into the task:
/// `tokio::spawn(fut.in_current_handler())`.
///
/// # Panics
///
/// Like `tokio::spawn`, when called outside a tokio runtime.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #[selftime::external_call("search")]
/// async fn search() -> u32 { 3 }
///
/// #[selftime::timed_handler]
/// async fn handler() -> u64 {
///     let hits = selftime::spawn(search()).await.unwrap();
///     assert_eq!(hits, 3);
///     selftime::current().unwrap().calls()
/// }
///
/// assert_eq!(handler().await, 1);
/// # }
/// ```
pub fn spawn<F>(fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(fut.in_current_handler())
}

/// `tokio::task::spawn_blocking`, carrying the handler in scope (if any)
/// onto the blocking thread: `spawn_blocking(selftime::bind(f))`.
///
/// # Panics
///
/// Like `tokio::task::spawn_blocking`, when called outside a tokio runtime.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #[selftime::external_call("legacy_sdk")]
/// fn blocking_lookup() -> u32 { 7 }
///
/// #[selftime::timed_handler]
/// async fn handler() -> u64 {
///     assert_eq!(selftime::spawn_blocking(blocking_lookup).await.unwrap(), 7);
///     selftime::current().unwrap().calls()
/// }
///
/// assert_eq!(handler().await, 1);
/// # }
/// ```
pub fn spawn_blocking<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(bind(f))
}
