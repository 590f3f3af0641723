//! A `reqwest-middleware` middleware that marks every outbound HTTP request
//! as an external call (feature `reqwest`).
//!
//! ```no_run
//! use reqwest_middleware::ClientBuilder;
//! use selftime::reqwest::ExternalCallMiddleware;
//!
//! # async fn demo() -> Result<(), reqwest_middleware::Error> {
//! // The dependency is the URL's host: `billing.internal`, `10.0.0.7:8080`.
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(ExternalCallMiddleware::new())
//!     .build();
//!
//! // Or one name for everything this client calls.
//! let legacy = ClientBuilder::new(reqwest::Client::new())
//!     .with(ExternalCallMiddleware::named("legacy"))
//!     .build();
//!
//! #[selftime::timed_handler]
//! async fn handler(
//!     client: &reqwest_middleware::ClientWithMiddleware,
//! ) -> Result<String, reqwest_middleware::Error> {
//!     let response = client.get("http://billing.internal/invoice/7").send().await?;
//!     Ok(response.text().await?)
//! }
//!
//! handler(&client).await?;
//! # let _ = legacy;
//! # Ok(())
//! # }
//! ```
//!
//! # What is measured
//!
//! The call starts when the request reaches this middleware and, by
//! default, ends when the rest of the chain returns: when `send()` has the
//! response **head** (or an error). reqwest reads the body only when asked
//! (`text()`, `bytes()`, `chunk()`), after `send()` has returned, so by
//! default that read is outside the call and counts as the handler's own
//! time. For small bodies that arrive with the head the difference is a few
//! microseconds; for large or streamed ones, use
//! [`through_body`](ExternalCallMiddleware::through_body), which keeps the
//! call in flight until the body has been read to its end, has failed, or is
//! dropped. With it, work the handler does between receiving the head and
//! finishing the body (reading it chunk by chunk, or holding the response
//! while doing something else) counts as external too, so read the body
//! straight away.
//!
//! Every call inside a handler is polled with selftime's I/O runtime current
//! ([`crate::io`]), so the connections the client opens, and the tasks that
//! read them, live on selftime's I/O thread. A call ends when its answer
//! wakes the handler's task, the moment it arrives; the wait for a busy
//! worker from there is the handler's
//! [backlog](crate#backlog-when-the-service-itself-is-the-bottleneck), not
//! the dependency's time. A call outside any handler runs where it is, with
//! nothing added; a connection it opens lives on the caller's runtime, and
//! calls inside handlers that reuse it from the pool see their answers when
//! the caller's worker does. A client that serves background work as well
//! as handlers can open its connections on the I/O thread all the same by
//! wrapping those calls in [`selftime::io::run`](crate::io::run), or be two
//! clients.
//!
//! Where the middleware sits in the chain matters: after a retry middleware,
//! each attempt is one call; before it, the attempts and the waits between
//! them are one call. A middleware that reads the body itself, placed after
//! this one (a cache, a logger of bodies), reads it inside the call.
//!
//! As with every external call, a request sent outside any handler is not
//! measured, and one sent from a spawned task counts only if the task
//! carries the handler (`FutureExt::in_current_handler`).
//!
//! # Dependency names
//!
//! By default the dependency is the request URL's host, with its port when
//! the URL gives one (`billing.internal`, `127.0.0.1:8080`); never the
//! user-info, path or query. Host names are interned, at most 256 of them
//! for the process; further hosts are counted as
//! [`other`](crate::OTHER_DEPENDENCY). A client that talks to many hosts
//! (a crawler, a webhook sender) should be given one name with
//! [`named`](ExternalCallMiddleware::named).

use crate::body::{BodyCall, ExternalBody};
use crate::external::Call;
use crate::intern::Interner;
use crate::names::DepId;
use crate::wake::{Answering, Waking};
use http::Extensions;
use reqwest::{Request, Response, ResponseBuilderExt as _};
use reqwest_middleware::{Middleware, Next};

/// Dependency names taken from hosts, each with its number.
static HOSTS: Interner<DepId> = Interner::new();

/// Marks every request sent through a `reqwest_middleware` client as an
/// external call: see the [module docs](self).
#[derive(Clone, Copy, Debug)]
pub struct ExternalCallMiddleware {
    name: Option<&'static str>,
    through_body: bool,
    in_place: bool,
}

impl ExternalCallMiddleware {
    /// Names each call's dependency after the request URL's host (with its
    /// port when the URL has one).
    #[must_use]
    pub const fn new() -> Self {
        Self {
            name: None,
            through_body: false,
            in_place: false,
        }
    }

    /// Names every call's dependency `dep`, whatever the host.
    #[must_use]
    pub const fn named(dep: &'static str) -> Self {
        Self {
            name: Some(dep),
            through_body: false,
            in_place: false,
        }
    }

    /// Keeps each call in flight until its response body has been read to
    /// the end, has failed or is dropped, rather than until the response
    /// head: see the [module docs](self#what-is-measured).
    ///
    /// It costs about eight allocations a response: reqwest's conversion of
    /// the response to `http` parts and back (its URL carried across), and
    /// the wrapped body, boxed. In the `service` bench (`BENCHMARKS.md`)
    /// that is about 0.4 µs of CPU a request, on a request that costs the
    /// whole process about 51 µs. It is the price of never counting a
    /// dependency's slow body as the handler's own time; a client whose
    /// responses are small and arrive with their head can do without it.
    #[must_use]
    pub const fn through_body(mut self) -> Self {
        self.through_body = true;
        self
    }

    /// Measures each call where it runs, without selftime's I/O thread: a
    /// call then ends when the handler is next polled after its answer,
    /// and on a busy runtime the wait for a worker is billed to the
    /// dependency, as an `#[external_call]` without `until_wake` bills it. It
    /// saves the two hand-offs between threads a call costs (about 15 µs of
    /// CPU a call on the benchmarks' machine, `BENCHMARKS.md`): for a
    /// client whose dependency answers in well under a millisecond, on a
    /// service that is never short of workers.
    #[must_use]
    pub const fn in_place(mut self) -> Self {
        self.in_place = true;
        self
    }

    /// The number of the request's dependency: the client's name's, looked
    /// up by name (a hash of a short name, against a request's tens of
    /// microseconds; it keeps the middleware `Copy`), or the host's, kept
    /// beside the interned host.
    fn dependency(&self, request: &Request) -> DepId {
        if let Some(name) = self.name {
            return DepId::of(name);
        }
        let url = request.url();
        let Some(host) = url.host_str() else {
            return DepId::OTHER;
        };
        let interned = match url.port() {
            Some(port) => HOSTS.intern_with(&[host, ":", decimal(port, &mut [0; 5])], DepId::of),
            None => HOSTS.intern_with(&[host], DepId::of),
        };
        interned.map_or(DepId::OTHER, |(_, dep)| dep)
    }
}

impl Default for ExternalCallMiddleware {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Middleware for ExternalCallMiddleware {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        if self.in_place {
            let call = Call::begin_id(self.dependency(&request));
            let result = next.run(request, extensions).await;
            if let (Ok(response), Some(call)) = (&result, &call) {
                if let Some(own) = callee_total(response) {
                    call.callee(own);
                }
            }
            return match (result, call) {
                (Ok(response), Some(call)) if self.through_body => {
                    Ok(hand_on(response, BodyCall::Plain(call)))
                }
                (result, _) => result,
            };
        }
        let call = Waking::begin(self.dependency(&request));
        let (result, call) = Answering::new(next.run(request, extensions), call).await;
        if let (Ok(response), Some(call)) = (&result, &call) {
            if let Some(own) = callee_total(response) {
                call.callee(own);
            }
        }
        match (result, call) {
            (Ok(response), Some(call)) if self.through_body => {
                Ok(hand_on(response, BodyCall::Waking(call)))
            }
            // The call, if any, ends here as it drops.
            (result, _) => result,
        }
    }
}

/// The callee's own time, from its `Server-Timing` header.
fn callee_total(response: &Response) -> Option<u64> {
    let values = response.headers().get_all("server-timing");
    crate::timing::callee_total(values.iter().map(http::HeaderValue::as_bytes))
}

/// Moves `call` into `response`'s body, so that it ends with the body.
fn hand_on(response: Response, call: BodyCall) -> Response {
    // reqwest keeps the URL beside the `http` response, not in it: carry it
    // across the conversion, or `Response::url` would read a placeholder.
    let url = response.url().clone();
    let (mut parts, body) = http::Response::<reqwest::Body>::from(response).into_parts();
    if let Ok(marker) = http::Response::builder().url(url).body(()) {
        parts.extensions.extend(marker.into_parts().0.extensions);
    }
    // A body already over ends the call now.
    let body = reqwest::Body::wrap(ExternalBody::new(body, Some(call)));
    Response::from(http::Response::from_parts(parts, body))
}

/// Formats `n` in decimal into `buf` without allocating: for ports.
fn decimal(mut n: u16, buf: &mut [u8; 5]) -> &str {
    let mut at = buf.len();
    loop {
        // Cannot underflow: a `u16` has at most five digits.
        at -= 1;
        // Cannot truncate: a remainder of 10 is below 256.
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Digits are ASCII: the empty default is never taken.
    std::str::from_utf8(&buf[at..]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn decimal_ports() {
        let mut buf = [0; 5];
        assert_eq!(decimal(0, &mut buf), "0");
        assert_eq!(decimal(8080, &mut buf), "8080");
        assert_eq!(decimal(u16::MAX, &mut buf), "65535");
    }
}
