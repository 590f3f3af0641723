//! Every argument form of both attributes compiles, without a warning, and
//! runs; the dependency names they give are the ones the ledger sees.

use selftime::{external_call, timed_handler};

#[timed_handler]
fn bare() {}

#[timed_handler()]
fn empty_parentheses() {}

#[timed_handler(name = "checkout")]
fn named() {}

#[timed_handler(name = r"raw name")]
fn raw_name() {}

#[timed_handler(level = "trace")]
fn level_trace() {}

#[timed_handler(level = "debug")]
fn level_debug() {}

#[timed_handler(level = "info")]
fn level_info() {}

#[timed_handler(level = "warn")]
fn level_warn() {}

#[timed_handler(level = "error")]
fn level_error() {}

#[timed_handler(level = "WARN")]
fn level_upper_case() {}

#[timed_handler(span = "new")]
fn span_new() {}

#[timed_handler(span = "current")]
fn span_current() {}

#[timed_handler(crate = "::selftime")]
fn crate_absolute() {}

#[timed_handler(crate = "selftime")]
fn crate_relative() {}

#[timed_handler(crate = "crate::facade")]
fn crate_facade() {}

#[timed_handler(split)]
fn split() {}

#[selftime::timed_handler(
    name = "everything",
    level = "debug",
    span = "new",
    split,
    crate = "::selftime",
)]
fn every_argument() {}

#[timed_handler]
fn r#type() {}

#[external_call]
fn default_name() {}

#[external_call("redis")]
fn given_name() {}

#[external_call("legacy",)]
fn trailing_comma() {}

#[external_call(crate = "::selftime")]
fn crate_only() {}

#[external_call("cache", crate = "crate::facade")]
fn name_and_crate() {}

#[external_call(crate = "selftime", "queue")]
fn crate_then_name() {}

#[external_call]
async fn async_default_name() {}

#[selftime::external_call(r"raw")]
async fn async_raw_name() {}

#[external_call("db", until_wake)]
async fn wake_mode() {}

#[external_call(until_wake, crate = "crate::facade")]
fn wake_mode_returning_a_future() -> impl std::future::Future<Output = ()> {
    async {}
}

/// A boxed future under a name of the user's own, which `future` declares.
type Boxed = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

#[timed_handler(future)]
fn future_alias() -> Boxed {
    Box::pin(async {})
}

#[timed_handler(future, name = "future_and_more", split, crate = "crate::facade")]
fn future_with_others() -> Boxed {
    Box::pin(async {})
}

#[external_call("alias", future)]
fn future_call() -> Boxed {
    Box::pin(async {})
}

#[external_call(future, until_wake, crate = "::selftime")]
fn future_call_wake() -> Boxed {
    Box::pin(async {})
}

/// Strings passed through `macro_rules!` as `expr` fragments, which reach
/// the attributes inside invisible groups.
macro_rules! generated {
    ($handler:ident, $name:expr, $call:ident, $dep:expr) => {
        #[timed_handler(name = $name, level = "debug")]
        fn $handler() {}

        #[external_call($dep)]
        fn $call() {}
    };
}

generated!(generated_handler, "generated", generated_call, "generated-dep");

#[timed_handler(name = "calls")]
async fn calls() -> Vec<&'static str> {
    default_name();
    given_name();
    trailing_comma();
    crate_only();
    name_and_crate();
    crate_then_name();
    async_default_name().await;
    async_raw_name().await;
    wake_mode().await;
    wake_mode_returning_a_future().await;
    future_call().await;
    future_call_wake().await;
    generated_call();
    selftime::current()
        .map(|now| now.dependencies().map(|dep| dep.name()).collect())
        .unwrap_or_default()
}

#[test]
fn every_argument_form_runs() {
    bare();
    empty_parentheses();
    named();
    raw_name();
    level_trace();
    level_debug();
    level_info();
    level_warn();
    level_error();
    level_upper_case();
    span_new();
    span_current();
    crate_absolute();
    crate_relative();
    crate_facade();
    split();
    every_argument();
    r#type();
    generated_handler();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(future_alias());
    runtime.block_on(future_with_others());
    assert_eq!(
        runtime.block_on(calls()),
        [
            "default_name",
            "redis",
            "legacy",
            "crate_only",
            "cache",
            "queue",
            "async_default_name",
            "raw",
            "db",
            "wake_mode_returning_a_future",
            "alias",
            "future_call_wake",
            "generated-dep",
        ],
    );
}
