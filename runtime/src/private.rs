//! What the attribute macros expand to. Not public API: nothing here is
//! covered by semver, and each item may change in any release.

use crate::external::Call;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

#[doc(hidden)]
pub use crate::external::External;
#[doc(hidden)]
pub use crate::orphan::Site;
#[doc(hidden)]
pub use crate::run::{HandlerFuture, Spec};
#[doc(hidden)]
pub use tracing;

/// Not public API. The call of an `async fn` under `#[external_call]`,
/// begun where its body starts and ended when this guard, the body's first
/// local, is dropped: however the body ends (a value, `?`, `return`, a
/// panic), or when the future is dropped mid-call.
#[doc(hidden)]
#[derive(Debug)]
pub struct CallGuard(#[allow(dead_code)] Option<Call>);

/// Not public API. Begins the call of an `async fn` under `#[external_call]`.
#[doc(hidden)]
#[inline]
#[must_use]
pub fn begin_call(site: &'static Site) -> CallGuard {
    CallGuard(Call::begin_at(site.dep(), Some(site)))
}

/// Not public API. Runs the body of a synchronous `#[external_call]` fn as
/// a call to its site's dependency, however it ends.
#[doc(hidden)]
#[inline]
pub fn external_sync<R>(site: &'static Site, body: impl FnOnce() -> R) -> R {
    crate::external::run_sync(site.dep(), Some(site), body)
}

/// Not public API. The future of an `#[external_call]` fn (in wake mode,
/// or returned by the fn), measured as a call to its site's dependency.
#[doc(hidden)]
#[inline]
pub fn external<F: Future>(site: &'static Site, fut: F) -> External<F> {
    crate::external::external_at(site, fut)
}

/// Not public API. Runs the body of an `#[external_call]` fn that returns a
/// future, and gives the future to measure. The body is a closure so that a
/// `return` in it gives the future too, rather than leaving the function
/// unmeasured.
#[doc(hidden)]
#[inline]
pub fn returned<F: Future>(body: impl FnOnce() -> F) -> F {
    body()
}

/// Not public API. The measured future of a fn whose return type is a boxed
/// future (`Pin<Box<dyn Future<…>>>`, `BoxFuture`, `future`) or an
/// `impl Future + Unpin`, boxed to fit it.
#[doc(hidden)]
#[inline]
pub fn boxed<F: Future>(measured: F) -> Pin<Box<F>> {
    Box::pin(measured)
}

/// Not public API. Picks, by the return type alone, how to tell an `error`
/// outcome from an `ok` one: `Result::is_err` for any `Result<T, E>` (and so
/// for every alias of it), "never" for anything else. The choice is made by
/// method resolution (autoref specialisation): `IsResult` matches
/// `&Probe<Result<T, E>>` without an extra reference, `NotResult` only with
/// one.
#[doc(hidden)]
#[derive(Debug)]
pub struct Probe<T>(PhantomData<fn() -> T>);

impl<T> Probe<T> {
    #[doc(hidden)]
    #[must_use]
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

/// Not public API.
#[doc(hidden)]
pub trait IsResult {
    type Value;
    fn __selftime_classifier(&self) -> fn(&Self::Value) -> bool;
}

impl<T, E> IsResult for Probe<Result<T, E>> {
    type Value = Result<T, E>;
    fn __selftime_classifier(&self) -> fn(&Result<T, E>) -> bool {
        Result::is_err
    }
}

/// Not public API.
#[doc(hidden)]
pub trait NotResult {
    type Value;
    fn __selftime_classifier(&self) -> fn(&Self::Value) -> bool;
}

impl<T> NotResult for &Probe<T> {
    type Value = T;
    fn __selftime_classifier(&self) -> fn(&T) -> bool {
        never_error
    }
}

/// Not public API. For a fn the attributes measure as a plain fn: its return
/// type is a future after all, under a name they cannot recognise. Chosen by
/// method resolution as [`IsResult`] is (on `&Probe<F>` without an extra
/// reference). Its method asks [`MeasuredWhileBuilt`] of the future, which
/// no type has, so that calling it is an error at the return type: an
/// error, not a lint, so that no `allow` can hide a handler that reads
/// 0 µs. (A method's own where clause plays no part in choosing it, so the
/// choice is made as before and then fails.) The future is the trait's
/// parameter rather than part of `Self`: rustc then reports the failure at
/// the method call, which the macro places at the return type, rather than
/// at the receiver, whose path starts at the attribute.
#[doc(hidden)]
pub trait ReturnsAFuture<F> {
    fn __selftime_returns_a_value(&self)
    where
        F: MeasuredWhileBuilt,
    {
    }
}

impl<F: Future> ReturnsAFuture<F> for Probe<F> {}

/// Not public API. Implemented by no type: the bound that makes
/// [`ReturnsAFuture`]'s method an error, worded for the user.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "the selftime attribute cannot measure a fn returning `{Self}`, a future it \
               cannot recognise by its name: it would time only the building of the future, \
               not the wait",
    label = "a future under a name the attribute cannot see through",
    note = "return `impl Future<Output = …>` instead (an `async move` block, or \
            `async move {{ fut.await }}` around the future); or, if `{Self}` is a \
            `Pin<Box<dyn Future<…>>>` under a name of your own, add the `future` argument: \
            `#[timed_handler(future)]`, `#[external_call(\"…\", future)]`"
)]
pub trait MeasuredWhileBuilt {}

/// Not public API. The return type is not a future: nothing to say.
#[doc(hidden)]
pub trait ReturnsAValue {
    fn __selftime_returns_a_value(&self) {}
}

impl<T> ReturnsAValue for &Probe<T> {}

/// Not public API. The classifier for return types that cannot be named
/// (`impl Trait`), which are never a `Result`.
#[doc(hidden)]
#[must_use]
pub fn never_error<T>(_: &T) -> bool {
    false
}

/// Not public API. Every span selftime records its figures on is made here,
/// where the figure fields ([`FIELDS`](crate::FIELDS), and
/// [`SPLIT_FIELDS`](crate::SPLIT_FIELDS) with `split`) are declared `Empty`:
///
/// - `span!(LEVEL, "name")`: the span `#[timed_handler]` opens, named after
///   the fn, with the caller's module as target;
/// - `span!(split, LEVEL, "name")`: the same for `#[timed_handler(split)]`;
/// - `span!(@declare target, LEVEL, "name", [fields before], [fields after])`:
///   any other (the `tower` layer's).
///
/// `#[macro_export]` is the only way an expansion in the user's crate can
/// reach a `macro_rules!`, and it puts the macro at the crate root: this one
/// macro is all there is, hidden, and reached through `__private::span!`.
#[doc(hidden)]
#[macro_export]
macro_rules! __selftime_span {
    (@declare $target:expr, $level:ident, $name:expr, [$($before:tt)*], [$($after:tt)*]) => {
        $crate::__private::tracing::span!(
            target: $target,
            $crate::__private::tracing::Level::$level,
            $name,
            $($before)*
            total.duration_us = $crate::__private::tracing::field::Empty,
            external.duration_us = $crate::__private::tracing::field::Empty,
            internal.duration_us = $crate::__private::tracing::field::Empty,
            external.calls = $crate::__private::tracing::field::Empty,
            external.breakdown = $crate::__private::tracing::field::Empty,
            outcome = $crate::__private::tracing::field::Empty,
            internal.backlog_us = $crate::__private::tracing::field::Empty,
            external.between_us = $crate::__private::tracing::field::Empty,
            $($after)*
        )
    };
    (split, $level:ident, $name:expr) => {
        $crate::__selftime_span!(
            @declare
            ::core::module_path!(),
            $level,
            $name,
            [],
            [
                internal.busy_us = $crate::__private::tracing::field::Empty,
                internal.scheduled_us = $crate::__private::tracing::field::Empty,
                internal.waiting_us = $crate::__private::tracing::field::Empty,
            ]
        )
    };
    ($level:ident, $name:expr) => {
        $crate::__selftime_span!(@declare ::core::module_path!(), $level, $name, [], [])
    };
}

#[doc(hidden)]
pub use crate::__selftime_span as span;
