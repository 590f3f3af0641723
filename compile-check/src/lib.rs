//! Every form of `#[timed_handler]` and `#[external_call]`, compiled under the
//! strictest lints a user may deny. A lint that fires inside an expansion
//! fails the workspace's clippy run (`cargo clippy -p selftime-compile-check
//! -- -D warnings`), which is how the expansions are kept clean for users who
//! write `#![deny(warnings, clippy::pedantic)]`. The misuses, each a compile
//! error with its message, are the package's UI tests (`tests/ui.rs`).
//!
//! The code around the attributes is itself lint-clean, so that anything
//! reported here comes from an expansion. The forms: `async fn`, plain `fn`,
//! `impl Future` (and `+ Unpin`), a boxed async block, a boxed future the
//! body builds (`Pin<Box<dyn Future>>`, a `BoxFuture` alias, an alias of the
//! user's own with `future`), `#[async_trait]` methods, native `async fn` in
//! traits, inherent methods with every receiver; `name`, `level`, `span`,
//! `split`, `future` and `crate` on handlers; a named and an unnamed
//! dependency, `until_wake`, `future` and `crate` on calls.

#![deny(warnings, clippy::pedantic, clippy::nursery, unused_qualifications)]

use async_trait::async_trait;
use selftime::{external_call, timed_handler};
use std::future::Future;
use std::pin::Pin;

/// A dependency's failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

/// The shape of `futures::future::BoxFuture`, which the attributes know by
/// its name.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A boxed future under a name of the user's own, which `future` declares.
pub type Lookup<'a> = Pin<Box<dyn Future<Output = Result<u32, Unavailable>> + Send + 'a>>;

// --- external calls ----------------------------------------------------------

/// An async call, named.
#[external_call("redis")]
pub async fn get(key: &str) -> Option<String> {
    std::future::ready(Some(key.to_owned())).await
}

/// An async call named after the function, returning a `Result`.
///
/// # Errors
///
/// When the id is 0.
#[external_call]
pub async fn legacy_lookup(id: u32) -> Result<u32, Unavailable> {
    let id = std::future::ready(id).await;
    if id == 0 { Err(Unavailable) } else { Ok(id) }
}

/// A blocking call.
#[must_use]
#[external_call("db")]
pub fn query(id: u32) -> u32 {
    id.wrapping_mul(3)
}

/// A blocking call returning nothing.
#[external_call("audit")]
pub fn audit(_event: &str) {}

/// A call in wake mode.
#[external_call("search", until_wake)]
pub async fn search(term: &str) -> usize {
    std::future::ready(term.len()).await
}

/// A call through a re-exported path to the crate.
#[external_call("cdn", crate = "::selftime")]
pub async fn fetch_asset() -> Vec<u8> {
    std::future::ready(vec![1, 2, 3]).await
}

/// A call returning `impl Future`.
#[external_call("http")]
pub fn send(body: u32) -> impl Future<Output = u32> + Send {
    async move { body + 1 }
}

/// A call with a boxed body.
#[external_call("boxed")]
#[must_use]
pub fn boxed_call(n: u32) -> Pin<Box<dyn Future<Output = u32> + Send>> {
    Box::pin(async move { n })
}

/// A call returning a boxed future its body builds from another, in wake
/// mode, returning early from one branch.
#[external_call("boxed_named", until_wake)]
#[must_use]
pub fn boxed_named<'a>(key: &'a str) -> Pin<Box<dyn Future<Output = usize> + Send + 'a>> {
    if key.is_empty() {
        return Box::pin(std::future::ready(0));
    }
    let length = search(key);
    Box::pin(length)
}

/// A call returning a `BoxFuture`.
#[external_call("box_future")]
#[must_use]
pub fn box_future_call(n: u32) -> BoxFuture<'static, u32> {
    Box::pin(send(n))
}

/// A call returning an alias of the user's own, declared with `future`.
#[external_call("lookup", future, until_wake, crate = "::selftime")]
#[must_use]
pub fn lookup_call(id: u32) -> Lookup<'static> {
    Box::pin(legacy_lookup(id))
}

/// A call returning an `Unpin` future.
#[external_call("ready")]
pub fn ready_call(n: u32) -> impl Future<Output = u32> + Unpin {
    std::future::ready(n)
}

// --- handlers ------------------------------------------------------------------

/// The plain form.
///
/// # Errors
///
/// When the lookup fails.
#[timed_handler]
pub async fn handler(id: u32) -> Result<u32, Unavailable> {
    let session = get("session").await;
    let found = legacy_lookup(id).await?;
    audit("lookup");
    Ok(found + u32::from(session.is_some()) + query(id))
}

/// Every argument of a new span.
#[timed_handler(name = "checkout", level = "debug", split, crate = "::selftime")]
pub async fn checkout(items: Vec<u32>) -> u32 {
    let total: u32 = items.iter().sum();
    search("item").await;
    send(total).await
}

/// Recording onto the span `#[instrument]` entered.
#[timed_handler(span = "current")]
#[tracing::instrument(
    skip_all,
    fields(
        total.duration_us = tracing::field::Empty,
        external.duration_us = tracing::field::Empty,
        internal.duration_us = tracing::field::Empty,
        external.calls = tracing::field::Empty,
        external.breakdown = tracing::field::Empty,
        outcome = tracing::field::Empty,
        internal.backlog_us = tracing::field::Empty,
        external.between_us = tracing::field::Empty,
    )
)]
pub async fn instrumented(asset: bool) -> usize {
    if asset { fetch_asset().await.len() } else { 0 }
}

/// A synchronous handler.
#[must_use]
#[timed_handler(level = "trace")]
pub fn render(items: &[&str]) -> String {
    audit("render");
    items.join(",")
}

/// A handler returning `impl Future`.
#[timed_handler]
pub fn later(n: u32) -> impl Future<Output = u32> + Send {
    let doubled = n * 2;
    async move { boxed_call(doubled).await }
}

/// A recursive handler with a boxed body.
#[timed_handler(name = "countdown")]
#[must_use]
pub fn countdown(n: u32) -> Pin<Box<dyn Future<Output = u32> + Send>> {
    Box::pin(async move {
        if n == 0 {
            0
        } else {
            countdown(n - 1).await + 1
        }
    })
}

/// A handler returning a boxed future its body builds from another.
#[timed_handler]
#[must_use]
pub fn boxed_handler(key: &str) -> Pin<Box<dyn Future<Output = usize> + Send + '_>> {
    let length = boxed_named(key);
    Box::pin(length)
}

/// A handler returning a `BoxFuture`, with every other argument.
#[timed_handler(name = "box_future", level = "warn", split, crate = "::selftime")]
#[must_use]
pub fn box_future_handler(n: u32) -> BoxFuture<'static, u32> {
    box_future_call(n)
}

/// A handler returning an alias of the user's own, declared with `future`.
#[timed_handler(future)]
#[must_use]
pub fn lookup_handler(id: u32) -> Lookup<'static> {
    lookup_call(id)
}

/// A handler returning an `Unpin` future.
#[timed_handler]
pub fn ready_handler(n: u32) -> impl Future<Output = u32> + Unpin {
    ready_call(n)
}

/// A generic handler with a where clause and an `impl Trait` argument.
#[timed_handler]
pub async fn generic<T>(value: T, extra: impl Into<u64> + Send) -> String
where
    T: std::fmt::Display + Send,
{
    let extra = extra.into();
    format!("{value}{extra}")
}

/// A sync handler returning a `Result` alias, with `?`.
///
/// # Errors
///
/// When the file cannot be read.
#[timed_handler]
pub fn read_config(path: &std::path::Path) -> std::io::Result<usize> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.len())
}

/// A handler with lifetimes.
#[timed_handler]
pub async fn longest<'a>(a: &'a str, b: &'a str) -> &'a str {
    if get(a).await.is_some() && a.len() >= b.len() {
        a
    } else {
        b
    }
}

// --- methods and traits -----------------------------------------------------------

/// A service with handlers and calls as methods.
#[derive(Debug, Default)]
pub struct Service {
    hits: u32,
}

impl Service {
    /// A handler on `&self`.
    #[timed_handler]
    pub async fn show(&self) -> u32 {
        self.fetch().await + self.hits
    }

    /// A handler on `&mut self`.
    #[timed_handler(name = "bump")]
    pub async fn bump(&mut self) {
        self.hits += self.count();
    }

    /// A sync handler taking `self`.
    #[must_use]
    #[timed_handler]
    pub fn into_hits(self) -> u32 {
        self.hits
    }

    /// A call on `&self`.
    #[external_call("service_backend")]
    async fn fetch(&self) -> u32 {
        std::future::ready(self.hits).await
    }

    /// A blocking call on `&self`.
    #[external_call]
    fn count(&self) -> u32 {
        self.hits + 1
    }
}

/// A trait with `async fn`, implemented with timed methods.
pub trait Store {
    /// Loads a value.
    fn load(&self, key: u32) -> impl Future<Output = u32> + Send;
}

impl Store for Service {
    #[timed_handler]
    async fn load(&self, key: u32) -> u32 {
        self.fetch().await + key
    }
}

/// A trait object-safe through `async_trait`.
#[async_trait]
pub trait Backend {
    /// A handler.
    async fn serve(&self, id: u32) -> u32;
    /// A call.
    async fn ping(&self) -> bool;
}

#[async_trait]
impl Backend for Service {
    #[timed_handler(name = "serve")]
    async fn serve(&self, id: u32) -> u32 {
        u32::from(self.ping().await) + id
    }

    #[external_call("backend")]
    async fn ping(&self) -> bool {
        std::future::ready(self.hits < 10).await
    }
}

#[cfg(test)]
mod tests {
    use super::{Backend as _, Service, Store as _};

    #[tokio::test]
    async fn every_form_runs() {
        assert_eq!(super::handler(2).await, Ok(9));
        assert_eq!(super::handler(0).await, Err(super::Unavailable));
        assert_eq!(super::checkout(vec![1, 2]).await, 4);
        assert_eq!(super::instrumented(true).await, 3);
        assert_eq!(super::render(&["a", "b"]), "a,b");
        assert_eq!(super::later(2).await, 4);
        assert_eq!(super::countdown(3).await, 3);
        assert_eq!(super::generic("a", 1u8).await, "a1");
        assert!(super::read_config(std::path::Path::new("/nonexistent/selftime")).is_err());
        assert_eq!(super::longest("ab", "c").await, "ab");
        assert_eq!(super::boxed_handler("abc").await, 3);
        assert_eq!(super::boxed_handler("").await, 0);
        assert_eq!(super::box_future_handler(1).await, 2);
        assert_eq!(super::lookup_handler(0).await, Err(super::Unavailable));
        assert_eq!(super::ready_handler(4).await, 4);
        let mut service = Service::default();
        service.bump().await;
        assert_eq!(service.show().await, 2);
        assert_eq!(service.load(1).await, 2);
        assert_eq!(service.serve(1).await, 2);
        assert_eq!(service.into_hits(), 1);
    }
}
