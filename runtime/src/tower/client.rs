//! The client side: every call through a service an external call.

use crate::body::BodyCall;
pub use crate::body::ExternalBody;
use crate::io::Offload;
use crate::names::DepId;
use crate::wake::{Answering, Waking};
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument as _;
use tracing::instrument::Instrumented;

/// A [`Layer`] that measures every call through the service it wraps as an
/// external call to one dependency, from `call` to the response future's
/// completion (or drop). Any request and response types: see the [module
/// docs](super#client-side).
///
/// For an HTTP client whose response body streams in after the head,
/// [`HttpExternalLayer`] measures to the end of the body instead.
#[derive(Clone, Copy, Debug)]
pub struct ExternalLayer {
    dep: &'static str,
}

impl ExternalLayer {
    /// A layer naming the dependency `dep`, as `#[external_call("…")]` does.
    #[must_use]
    pub const fn new(dep: &'static str) -> Self {
        Self { dep }
    }
}

impl<S> Layer<S> for ExternalLayer {
    type Service = ExternalService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ExternalService {
            inner,
            // Numbered once, here, for every call through the service.
            dep: DepId::of(self.dep),
        }
    }
}

/// The service [`ExternalLayer`] makes.
#[derive(Clone, Debug)]
pub struct ExternalService<S> {
    inner: S,
    dep: DepId,
}

impl<S, Req> Service<Req> for ExternalService<S>
where
    S: Service<Req>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ExternalFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        // Begun before the inner `call`: a buffered client (a tonic
        // `Channel`) hands the request to its worker there, before the
        // response future is first polled.
        let call = Waking::begin(self.dep);
        ExternalFuture {
            inner: Answering::new(on_io_thread(&mut self.inner, request, call.as_ref()), call),
        }
    }
}

/// The inner service's response future, carrying the handler in scope (if
/// any) and the current span, so that calls and spans inside it still count
/// and nest where it runs.
type Carried<F> = Instrumented<crate::InCurrentHandler<F>>;

/// For a call inside a handler: calls `inner` with selftime's I/O runtime
/// current, and runs its response future there (see [`crate::io`]), so
/// that the call's end is when its answer arrives, not when a busy worker
/// next polls the caller. Outside any handler (no `call`), calls it where
/// it is: nothing is added to a call that measures nothing.
fn on_io_thread<S, Req>(
    inner: &mut S,
    request: Req,
    call: Option<&Waking>,
) -> Offload<Carried<S::Future>>
where
    S: Service<Req>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    use crate::FutureExt as _;
    if call.is_none() {
        return Offload::here(inner.call(request).in_current_handler().in_current_span());
    }
    let fut = crate::io::enter(|| inner.call(request));
    crate::io::offload(fut.in_current_handler().in_current_span())
}

pin_project! {
    /// The response future of [`ExternalService`]: the call ends when it
    /// completes or is dropped.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct ExternalFuture<F: Future> {
        // The call ends with the future: a cancelled call's interval closes
        // only once the inner future (declared before it) is gone.
        #[pin]
        inner: Answering<Offload<Carried<F>>>,
    }
}

impl<F: Future> Future for ExternalFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // The call, handed back, ends here as it drops.
        let (out, _call) = ready!(self.project().inner.poll(cx));
        Poll::Ready(out)
    }
}

/// A [`Layer`] for HTTP clients (hyper, tonic channels) that measures every
/// call as an external call to one dependency, from `call` to the end of the
/// response body (or its drop, or the response future's error or drop).
///
/// See the [module docs](super#client-side) for what that includes.
#[derive(Clone, Copy, Debug)]
pub struct HttpExternalLayer {
    dep: &'static str,
}

impl HttpExternalLayer {
    /// A layer naming the dependency `dep`, as `#[external_call("…")]` does.
    #[must_use]
    pub const fn new(dep: &'static str) -> Self {
        Self { dep }
    }
}

impl<S> Layer<S> for HttpExternalLayer {
    type Service = HttpExternalService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpExternalService {
            inner,
            // Numbered once, here, for every call through the service.
            dep: DepId::of(self.dep),
        }
    }
}

/// The service [`HttpExternalLayer`] makes.
#[derive(Clone, Debug)]
pub struct HttpExternalService<S> {
    inner: S,
    dep: DepId,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HttpExternalService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Body + Send + 'static,
{
    type Response = Response<ExternalBody<ResBody>>;
    type Error = S::Error;
    type Future = HttpExternalFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let call = Waking::begin(self.dep);
        HttpExternalFuture {
            inner: Answering::new(on_io_thread(&mut self.inner, request, call.as_ref()), call),
        }
    }
}

pin_project! {
    /// The response future of [`HttpExternalService`]: hands the call on to
    /// the response body.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct HttpExternalFuture<F: Future> {
        #[pin]
        inner: Answering<Offload<Carried<F>>>,
    }
}

impl<F, B, E> Future for HttpExternalFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<ExternalBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (result, call) = ready!(self.project().inner.poll(cx));
        if let (Ok(response), Some(call)) = (&result, &call) {
            let values = response.headers().get_all("server-timing");
            if let Some(own) =
                crate::timing::callee_total(values.iter().map(http::HeaderValue::as_bytes))
            {
                call.callee(own);
            }
        }
        Poll::Ready(result.map(|response| {
            // A body that is already over (a `HEAD`, a 204) ends the call now.
            response.map(|body| ExternalBody::new(body, call.map(BodyCall::Waking)))
        }))
    }
}
