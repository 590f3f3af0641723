//! The handler in scope: a tokio task-local holding the innermost running
//! [`HandlerContext`], which links to the handlers around it.

use crate::handler::{HandlerContext, State};
use std::future::Future;
use tokio::task::futures::TaskLocalFuture;

tokio::task_local! {
    static CURRENT: HandlerContext;
}

/// The innermost handler in scope on this task, if any.
pub(crate) fn current() -> Option<HandlerContext> {
    CURRENT.try_with(HandlerContext::clone).ok()
}

/// The state of the innermost handler in scope on this task, if any. It
/// stays valid while the task-local holds the handler: until the code that
/// looked it up returns to the scope that set it (scopes nest, and one
/// entered inside keeps the handler it replaced until it ends).
#[inline]
pub(crate) fn current_state() -> Option<*const State> {
    CURRENT
        .try_with(|handler| std::ptr::from_ref(handler.state()))
        .ok()
}

/// Runs `f` with `handler` in scope.
pub(crate) fn sync_scope<R>(handler: HandlerContext, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(handler, f)
}

/// Polls `fut` with `handler` in scope, on every poll and while it is
/// dropped.
pub(crate) fn scope<F: Future>(
    handler: HandlerContext,
    fut: F,
) -> TaskLocalFuture<HandlerContext, F> {
    CURRENT.scope(handler, fut)
}

/// Runs `f` on the handler in scope without cloning it, or returns `None`.
/// `f` must not run user code: the task-local is borrowed meanwhile.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&HandlerContext) -> R) -> Option<R> {
    CURRENT.try_with(f).ok()
}
