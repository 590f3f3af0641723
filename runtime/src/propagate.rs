//! Carrying the handler in scope into spawned tasks, blocking tasks and
//! threads, which do not inherit tokio task-locals.

use crate::handler::HandlerContext;
use crate::scope;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::task::futures::TaskLocalFuture;

impl HandlerContext {
    /// The handler in scope, or `None` outside any handler.
    #[must_use]
    pub fn capture() -> Option<Self> {
        scope::current()
    }

    /// Runs `fut` with this handler in scope (on every poll).
    pub fn scope<F: Future>(&self, fut: F) -> InCurrentHandler<F> {
        InCurrentHandler {
            inner: Carried::Scoped {
                inner: scope::scope(self.clone(), fut),
            },
        }
    }

    /// Runs `f` with this handler in scope: for `spawn_blocking` and threads.
    pub fn sync_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        scope::sync_scope(self.clone(), f)
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
    let handler = HandlerContext::capture();
    move || match handler {
        Some(handler) => handler.sync_scope(f),
        None => f(),
    }
}

pin_project! {
    /// A future that runs with a captured handler in scope: see
    /// [`FutureExt::in_current_handler`] and [`HandlerContext::scope`].
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
        Scoped { #[pin] inner: TaskLocalFuture<HandlerContext, F> },
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
        match HandlerContext::capture() {
            Some(handler) => handler.scope(self),
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
