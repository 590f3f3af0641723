//! The expansions reach the runtime only through `::selftime::__private` and
//! `::core`: they compile in a module that shadows every name they could
//! otherwise pick up, under `forbid(unsafe_code)` and `deny(warnings)`.

#![forbid(unsafe_code)]
#![deny(warnings)]

mod decoys {
    #![allow(dead_code, non_camel_case_types, clippy::all, clippy::pedantic)]

    // Shadow everything an expansion might name without a leading `::`.
    mod tokio {}
    mod tracing {}
    mod core {}
    mod std {}
    mod selftime {}
    struct Ok;
    struct Err;
    struct Some;
    struct None;
    struct Box;
    struct Pin;
    struct Future;
    struct Arc;
    struct Span;
    struct Level;
    type Result = ();
    enum Option {}
    fn drop() {}
    fn unreachable() {}

    #[::selftime::external_call("decoy")]
    pub(super) async fn call(d: ::std::time::Duration) -> u32 {
        ::tokio::time::sleep(d).await;
        1
    }

    #[::selftime::external_call]
    pub(super) fn call_sync() -> u32 {
        2
    }

    #[::selftime::timed_handler]
    pub(super) async fn handler() -> ::core::result::Result<u32, ()> {
        let a = call(::std::time::Duration::from_millis(3)).await;
        let b = call_sync();
        if a == 0 {
            return ::core::result::Result::Err(());
        }
        ::core::result::Result::Ok(a + b)
    }

    #[::selftime::timed_handler(name = "sync_handler", level = "warn")]
    pub(super) fn sync_handler(x: u32) -> ::core::option::Option<u32> {
        ::core::option::Option::Some(x + call_sync())
    }

    #[::selftime::timed_handler]
    pub(super) fn returns_future() -> impl ::core::future::Future<Output = u32> {
        async { 4 }
    }

    type Pending = ::core::pin::Pin<
        ::std::boxed::Box<dyn ::core::future::Future<Output = u32> + ::core::marker::Send>,
    >;

    #[::selftime::external_call("decoy", future, until_wake)]
    pub(super) fn returns_alias() -> Pending {
        ::std::boxed::Box::pin(call(::std::time::Duration::from_millis(1)))
    }

    #[::selftime::timed_handler]
    pub(super) fn returns_boxed() -> ::core::pin::Pin<
        ::std::boxed::Box<dyn ::core::future::Future<Output = u32> + ::core::marker::Send>,
    > {
        let fut = returns_alias();
        ::std::boxed::Box::pin(fut)
    }
}

#[::tokio::test(start_paused = true)]
async fn expansions_ignore_shadowed_names() {
    assert_eq!(decoys::handler().await, Ok(3));
    assert_eq!(decoys::sync_handler(1), Some(3));
    assert_eq!(decoys::returns_future().await, 4);
    assert_eq!(decoys::returns_boxed().await, 1);
    assert!(selftime::current().is_none());
}
