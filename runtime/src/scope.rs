//! The handler in scope: a tokio task-local holding the innermost running
//! [`Handler`], which links to the handlers around it; and each thread's
//! pool of finished handlers' state, for reuse.

use crate::handler::{Handler, State};
use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;
use tokio::task::futures::TaskLocalFuture;

tokio::task_local! {
    static CURRENT: Handler;
}

/// The innermost handler in scope on this task, if any.
pub(crate) fn current() -> Option<Handler> {
    CURRENT.try_with(Handler::clone).ok()
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
pub(crate) fn sync_scope<R>(handler: Handler, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(handler, f)
}

/// Polls `fut` with `handler` in scope, on every poll and while it is
/// dropped.
pub(crate) fn scope<F: Future>(handler: Handler, fut: F) -> TaskLocalFuture<Handler, F> {
    CURRENT.scope(handler, fut)
}

/// Runs `f` on the handler in scope without cloning it, or returns `None`.
/// `f` must not run user code: the task-local is borrowed meanwhile.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&Handler) -> R) -> Option<R> {
    CURRENT.try_with(f).ok()
}

/// How many finished handlers' state a thread keeps for reuse: about 6 KB
/// at most.
const POOL_SIZE: usize = 16;

thread_local! {
    static POOL: RefCell<Vec<Arc<State>>> = const { RefCell::new(Vec::new()) };
}

/// A finished handler's state, for the next handler to start on this thread.
pub(crate) fn pop_pooled() -> Option<Arc<State>> {
    POOL.try_with(|pool| pool.try_borrow_mut().ok()?.pop())
        .ok()
        .flatten()
}

/// Hands a finished handler's state back for reuse by the next handler to
/// start on this thread, if nothing else holds it (a call still in flight
/// in a task the handler spawned keeps it alive until that call ends: then
/// it is simply freed).
pub(crate) fn recycle(handler: Handler) {
    let Some(state) = handler.into_unique() else {
        return;
    };
    // A thread being torn down, or a pool in use further up this stack
    // (impossible today, handled anyway), frees the state instead.
    let _ = POOL.try_with(|pool| {
        if let Ok(mut pool) = pool.try_borrow_mut() {
            if pool.len() < POOL_SIZE {
                if pool.capacity() == 0 {
                    pool.reserve_exact(POOL_SIZE);
                }
                pool.push(state);
            }
        }
    });
}
