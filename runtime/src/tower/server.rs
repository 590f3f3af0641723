//! The server side: every request a handler, to the end of its response body.

use super::timing::ServerTiming;
use crate::handler::HandlerContext;
use crate::intern::Interner;
use crate::names::OTHER_DEPENDENCY;
use crate::reading::{Outcome, Route};
use crate::run::{Run, Spec};
use crate::scope;
use crate::snapshot::Snapshot;
use bytes::Buf as _;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::task::futures::TaskLocalFuture;
use tower_layer::Layer;
use tower_service::Service;

const SERVER_TIMING_HEADER: http::HeaderName = http::HeaderName::from_static("server-timing");

/// Handler names built from routes: `GET /users/{id}`, `/shop.Cart/Checkout`.
static ROUTES: Interner = Interner::new();

/// The type of [`HandlerLayer::new`]'s route function, which names no route.
pub type NoRoute = fn(&Parts) -> Option<&str>;

fn no_route(_: &Parts) -> Option<&str> {
    None
}

/// The request's path if it has the shape of a gRPC method,
/// `/package.Service/Method`: a service name of dot-separated identifiers,
/// a method identifier, nothing else.
fn grpc_path(parts: &Parts) -> Option<&str> {
    let path = parts.uri.path();
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let identifier =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let service_ok = service.split('.').all(identifier);
    (service_ok && identifier(method)).then_some(path)
}

/// How a route becomes a handler's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Naming {
    /// `GET /users/{id}`: the method, then the route template.
    Http,
    /// `/shop.Cart/Checkout`: the gRPC method's path as it is.
    Grpc,
}

/// A [`Layer`] that runs every request of the service it wraps as a handler,
/// like `#[timed_handler]` on each of its routes: see the [module
/// docs](super) for the span, the names and what is measured.
///
/// `R` is the route function (see [`HandlerLayer::route`]).
#[derive(Clone)]
pub struct HandlerLayer<R = NoRoute> {
    name: &'static str,
    route: R,
    naming: Naming,
    to_end: &'static [&'static str],
    server_timing: Option<ServerTiming>,
}

impl HandlerLayer {
    /// A layer that names every request `name`: the `otel.name` field and
    /// the metrics' `handler` label.
    ///
    /// Use it for a service that is one handler (a route's own
    /// `MethodRouter::layer`, a tonic service), or give it a route function
    /// with [`route`](Self::route).
    #[must_use]
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            route: no_route,
            naming: Naming::Http,
            to_end: &[],
            server_timing: None,
        }
    }

    /// A layer for a tonic server (or any gRPC server built on tower) that
    /// names each request after the method it calls: its path,
    /// `/shop.Cart/Checkout`.
    ///
    /// Request spans carry `rpc.system.name` (`grpc`) and `rpc.method`
    /// (`shop.Cart/Checkout`) instead of `http.route`, and so do the
    /// OpenTelemetry series (feature `opentelemetry`). A request whose path
    /// does not have the shape of a gRPC method (`/package.Service/Method`,
    /// identifiers only) is named `unmatched`.
    ///
    /// The methods a server implements are a bounded set, but a client may
    /// call any path of that shape. So a request only looks its method up in
    /// the process's table of 256 route names (beyond which requests are
    /// named `other`), and a method is added to the table once the server
    /// has answered it as one it has: a response head with HTTP status 200
    /// and no `grpc-status` of `UNIMPLEMENTED`. A request whose method is
    /// not in the table is named `unmatched` until its response head, and
    /// then, if it was answered so, after its method (its span's `otel.name`
    /// is recorded again, and its series carry the method; a tracer that
    /// names a span when it opens, as `tracing-opentelemetry` does, keeps
    /// `unmatched` as that one span's name). A call to a method the server does not have
    /// (tonic answers `UNIMPLEMENTED`, an `error`) is named `unmatched` and
    /// takes no place in the table; so is one that fails or is cancelled
    /// before its response head while its method is not in the table yet.
    ///
    /// The outcome follows the `grpc-status` of the response's head (and
    /// of its trailers, for a method timed to its end; see the [module
    /// docs](super#what-is-measured)). A call is measured to its response
    /// head: a unary method's answer is ready then, and a streaming
    /// method's stream is not its latency. [`to_end`](Self::to_end) names
    /// the methods whose finite stream should be timed to its end.
    ///
    /// # Examples
    ///
    /// ```
    /// use selftime::tower::HandlerLayer;
    ///
    /// // With tonic:
    /// // Server::builder().layer(HandlerLayer::grpc()).add_service(CartServer::new(shop))
    /// let layer = HandlerLayer::grpc();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn grpc() -> Self {
        Self {
            name: "unmatched",
            route: grpc_path,
            naming: Naming::Grpc,
            to_end: &[],
            server_timing: None,
        }
    }

    /// A layer that names each request after the axum route it matched,
    /// `"GET /users/{id}"`, taken from axum's `MatchedPath`; a request that
    /// matched no route (axum's fallback) is named `unmatched`.
    ///
    /// `MatchedPath` is set by the `Router` before it calls the route, so add
    /// the layer with `Router::layer` or `Router::route_layer`. Wrapped
    /// around the whole router from outside (`ServiceBuilder` in front of
    /// `Router`), it sees no route and names every request `unmatched`.
    ///
    /// # Examples
    ///
    /// ```
    /// use axum::{routing::get, Router};
    ///
    /// let app: Router = Router::new()
    ///     .route("/users/{id}", get(|| async { "someone" }))
    ///     .layer(selftime::tower::HandlerLayer::matched_path());
    /// ```
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    #[must_use]
    pub fn matched_path() -> Self {
        fn matched(parts: &Parts) -> Option<&str> {
            parts
                .extensions
                .get::<axum::extract::MatchedPath>()
                .map(axum::extract::MatchedPath::as_str)
        }
        Self {
            name: "unmatched",
            route: matched,
            naming: Naming::Http,
            to_end: &[],
            server_timing: None,
        }
    }
}

impl<R> HandlerLayer<R> {
    /// Names each request after the route that `route` returns for it:
    /// `"{METHOD} {route}"` (`GET /users/{id}`, with `_OTHER` for a method
    /// outside RFC 9110's nine), or the layer's own name when it returns
    /// `None`.
    ///
    /// `route` must return a *template* (`/users/{id}`), never the raw path
    /// (`/users/42`): names become the metrics' `handler` label, and raw
    /// paths would make one series per user. As a safety net, the names are
    /// interned in a table of 256, which every `HandlerLayer` of the process
    /// shares; a route beyond that is named `other`.
    /// The route is also the span's `http.route` field and, with the
    /// `opentelemetry` feature, the series' `http.route` attribute.
    ///
    /// On a [`grpc`](HandlerLayer::grpc) layer, `route` replaces the gRPC
    /// naming with this one.
    ///
    /// # Examples
    ///
    /// ```
    /// use selftime::tower::HandlerLayer;
    ///
    /// // Everything under `/api/v1/reports/` is one handler.
    /// let layer = HandlerLayer::new("api").route(|parts| {
    ///     parts
    ///         .uri
    ///         .path()
    ///         .starts_with("/api/v1/reports/")
    ///         .then_some("/api/v1/reports/{id}")
    /// });
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn route<F>(self, route: F) -> HandlerLayer<F>
    where
        F: Fn(&Parts) -> Option<&str>,
    {
        HandlerLayer {
            name: self.name,
            route,
            naming: Naming::Http,
            to_end: self.to_end,
            server_timing: self.server_timing,
        }
    }

    /// Times the event streams of the handlers named `names` to their end
    /// rather than to their response head: for a finite stream whose end is
    /// its latency (an export streamed as server-sent events, a gRPC method
    /// that streams a bounded result). Names as the handlers are named:
    /// `"GET /export"`, `"/shop.Cart/Export"`. The time the client keeps
    /// such a stream waiting is its own figure, not internal time (see the
    /// [module docs](super#the-clients-time-and-event-streams)).
    ///
    /// # Examples
    ///
    /// ```
    /// use selftime::tower::HandlerLayer;
    ///
    /// let layer = HandlerLayer::grpc().to_end(&["/shop.Cart/Export"]);
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn to_end(mut self, names: &'static [&'static str]) -> Self {
        self.to_end = names;
        self
    }

    /// Tells the requests `policy` trusts how long their handler took, in a
    /// W3C `Server-Timing` response header (for gRPC, the response's
    /// metadata): off unless set. See [`ServerTiming`].
    ///
    /// # Examples
    ///
    /// ```
    /// use selftime::tower::{HandlerLayer, ServerTiming};
    ///
    /// # fn main() -> Result<(), selftime::tower::InvalidServerTiming> {
    /// let layer = HandlerLayer::matched_path()
    ///     .server_timing(ServerTiming::for_header("x-debug-timing", "s3cr3t")?);
    /// # let _ = layer;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn server_timing(mut self, policy: ServerTiming) -> Self {
        self.server_timing = Some(policy);
        self
    }
}

impl<R> fmt::Debug for HandlerLayer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerLayer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<S, R: Clone> Layer<S> for HandlerLayer<R> {
    type Service = HandlerService<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        // Calibrated now, while the service is built, rather than in its
        // first request.
        crate::clock::warm();
        HandlerService {
            inner,
            name: self.name,
            route: self.route.clone(),
            naming: self.naming,
            to_end: self.to_end,
            server_timing: self.server_timing.clone(),
        }
    }
}

/// The service [`HandlerLayer`] makes: runs each request of `S` as a handler.
#[derive(Clone)]
pub struct HandlerService<S, R = NoRoute> {
    inner: S,
    name: &'static str,
    route: R,
    naming: Naming,
    to_end: &'static [&'static str],
    server_timing: Option<ServerTiming>,
}

impl<S: fmt::Debug, R> fmt::Debug for HandlerService<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerService")
            .field("inner", &self.inner)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The handler's name for a request whose route function returned `route`;
/// the route as the series' attributes know it: parts of the interned name,
/// so as bounded as the names; and the path of a gRPC method not named yet,
/// to name the request by once the server has answered it
/// ([`name_answered`]).
fn name_of(
    fallback: &'static str,
    naming: Naming,
    method: &'static str,
    route: Option<&str>,
) -> (&'static str, Route, Option<Box<str>>) {
    let Some(route) = route else {
        return (fallback, Route::Unknown, None);
    };
    match naming {
        Naming::Http => match ROUTES.intern(&[method, " ", route]) {
            Some(name) => {
                let known = name.get(method.len() + 1..).map(Route::Http);
                (name, known.unwrap_or_default(), None)
            }
            None => (OTHER_DEPENDENCY, Route::Unknown, None),
        },
        // Looked up only: a client may call any method, and one the server
        // does not have must not take a place in the table.
        Naming::Grpc => match ROUTES.get(&[route]) {
            Some(name) => (name, grpc_route(name), None),
            None => (fallback, Route::Unknown, Some(route.into())),
        },
    }
}

/// A gRPC handler's route: its interned name without the leading `/`.
fn grpc_route(name: &'static str) -> Route {
    name.strip_prefix('/').map(Route::Grpc).unwrap_or_default()
}

/// gRPC's `UNIMPLEMENTED`: the server has no such method.
const GRPC_UNIMPLEMENTED: u32 = 12;

/// Names a gRPC request whose method was not named yet after the method at
/// `path`, interning it, if the server answered it as a method it has:
/// HTTP 200 and a `grpc-status`, if any, other than `UNIMPLEMENTED`.
fn name_answered<B>(run: &mut Run, path: &str, response: &Response<B>) {
    if response.status() != StatusCode::OK
        || grpc_status(response.headers()) == Some(GRPC_UNIMPLEMENTED)
    {
        return;
    }
    match ROUTES.intern(&[path]) {
        Some(name) => run.rename(name, grpc_route(name)),
        None => run.rename(OTHER_DEPENDENCY, Route::Unknown),
    }
}

/// RFC 9110's methods as themselves, any other as `_OTHER` (OpenTelemetry's
/// convention), so that a client cannot mint new handler names.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method.as_str())
        .unwrap_or("_OTHER")
}

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for HandlerService<S, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    R: Fn(&Parts) -> Option<&str>,
    ResBody: Body,
{
    type Response = Response<HandlerBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (parts, body) = request.into_parts();
        let method = method_label(&parts.method);
        let route = (self.route)(&parts);
        let (name, known, unnamed) = name_of(self.name, self.naming, method, route);
        let grpc = self.naming == Naming::Grpc;
        // The span's fields hold the route as the request gave it; the
        // series' attributes (`known`) only the interned, bounded one.
        let http_route = route.filter(|_| !grpc);
        let rpc_method = route
            .filter(|_| grpc)
            .map(|path| path.trim_start_matches('/'));
        let span = crate::__private::span!(
            @declare
            "selftime::tower",
            INFO,
            "request",
            [
                otel.name = name,
                http.request.method = method,
                http.route = http_route,
                rpc.system.name = rpc_method.map(|_| "grpc"),
                rpc.method = rpc_method,
                http.response.status_code = tracing::field::Empty,
            ],
            [client.duration_us = tracing::field::Empty,]
        );
        let head = parts.method == Method::HEAD;
        // Only an HTTP/1 server stops polling a body at its `content-length`
        // (HTTP/2 polls on, for trailers or the end).
        let http1 = parts.version < Version::HTTP_2;
        // Read before the handler opens, so that its total runs from the
        // request's arrival.
        let waited = super::arrival::waited(&parts.extensions);
        let timing = self.server_timing.as_ref().and_then(|t| t.decide(&parts));
        let spec = Spec::new(name, span)
            .with_route(known)
            .with_waited(waited)
            .with_client();
        let (mut run, handler) = Run::start(spec);
        // `call` may do part of the work (routing, a handler's synchronous
        // prelude): a step of the handler like any other.
        let request = Request::from_parts(parts, body);
        let future = run.step(|| scope::sync_scope(handler.clone(), || self.inner.call(request)));
        ResponseFuture {
            inner: scope::scope(handler, future),
            run: Some(run),
            unnamed,
            head,
            http1,
            grpc,
            to_end: self.to_end,
            timing,
        }
    }
}

pin_project! {
    /// The response future of [`HandlerService`]: the inner service's,
    /// polled in the handler's scope and span.
    ///
    /// Dropped before it completes (the client went away before the
    /// response head), the handler reports `cancelled`.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        // Declared before the run so that it is dropped first: calls
        // cancelled with it end before the handler reports.
        #[pin]
        inner: TaskLocalFuture<HandlerContext, F>,
        run: Option<Run>,
        // The path of a gRPC method named at the response head.
        unnamed: Option<Box<str>>,
        head: bool,
        http1: bool,
        grpc: bool,
        to_end: &'static [&'static str],
        // `Server-Timing` for this request, with the dependencies or not.
        timing: Option<bool>,
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("run", &self.run)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<HandlerBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(run) = this.run.as_mut() else {
            // Polled again after completing: like `Fuse`, never ready again
            // (rather than the inner future's panic).
            return Poll::Pending;
        };
        let mut inner = this.inner;
        let result = ready!(run.step(|| inner.as_mut().poll(cx)));
        let Some(mut run) = this.run.take() else {
            return Poll::Pending;
        };
        Poll::Ready(match result {
            Ok(mut response) => {
                if let (Some(dependencies), Some(handler)) = (*this.timing, run.handler()) {
                    let state = handler.state();
                    let snapshot = Snapshot::read(state, state.now());
                    if let Some(value) = super::timing::header(&snapshot, dependencies) {
                        response.headers_mut().append(SERVER_TIMING_HEADER, value);
                    }
                }
                if let Some(path) = this.unnamed.take() {
                    name_answered(&mut run, &path, &response);
                }
                let until = if this.to_end.contains(&run.name()) {
                    Until::End
                } else if *this.grpc || event_stream(response.headers()) {
                    Until::Head
                } else {
                    Until::End
                };
                Ok(track_body(response, run, *this.head, *this.http1, until))
            }
            Err(error) => {
                run.finish(Outcome::Error);
                Err(error)
            }
        })
    }
}

/// gRPC status codes that mean the server failed (OpenTelemetry's list for
/// server spans): `UNKNOWN`, `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`,
/// `INTERNAL`, `UNAVAILABLE`, `DATA_LOSS`. The others (`NOT_FOUND`,
/// `INVALID_ARGUMENT`, …) are the client's, like HTTP's 4xx.
fn grpc_failed(headers: &HeaderMap) -> bool {
    grpc_status(headers).is_some_and(|code| matches!(code, 2 | 4 | 12 | 13 | 14 | 15))
}

/// The `grpc-status` in `headers`, if any.
fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Whether a response is an event stream, timed to its head by default: a
/// `text/event-stream` (server-sent events).
fn event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .get(..17)
                .is_some_and(|t| t.eq_ignore_ascii_case("text/event-stream"))
        })
}

/// Where a handler's latency ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Until {
    /// At the response head: an event stream, a gRPC call.
    Head,
    /// At the end of the response body.
    End,
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Moves the run into the response body, or reports now if no body will
/// be sent (a server does not poll a body it will not send: it drops it,
/// which must not read as a client that went away).
fn track_body<B: Body>(
    response: Response<B>,
    mut run: Run,
    head: bool,
    http1: bool,
    until: Until,
) -> Response<HandlerBody<B>> {
    let status = response.status();
    run.span()
        .record("http.response.status_code", status.as_u16());
    let outcome = if status.is_server_error() || grpc_failed(response.headers()) {
        Outcome::Error
    } else {
        Outcome::Ok
    };
    let remaining = content_length(response.headers()).filter(|_| http1);
    let (parts, body) = response.into_parts();
    let bodiless = head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || remaining == Some(0)
        || body.is_end_stream()
        || until == Until::Head;
    // An event stream's body is still produced in the handler's scope, so
    // that calls made while streaming are not taken for calls outside any
    // handler; the handler has reported, and they are ignored.
    let mut scope = None;
    let state = if bodiless {
        run.finish(outcome);
        if until == Until::Head && !body.is_end_stream() {
            scope = run.handler();
        }
        None
    } else {
        // The head is handed to the server: until it asks for the body's
        // first frame, it is sending the head at the client's pace.
        run.frame_sent();
        Some(Tracking {
            run,
            outcome,
            remaining,
        })
    };
    Response::from_parts(
        parts,
        HandlerBody {
            inner: body,
            state,
            scope,
        },
    )
}

/// A handler whose response body is still being sent.
#[derive(Debug)]
struct Tracking {
    run: Run,
    outcome: Outcome,
    /// What is left of a `content-length`, over HTTP/1: the server stops
    /// polling a body once it has sent that many bytes, whether or not the
    /// body said it had ended.
    remaining: Option<u64>,
}

pin_project! {
    /// The response body of [`HandlerService`]: the inner service's body,
    /// polled in the handler's scope and span; the handler reports when it
    /// ends.
    ///
    /// The handler ends with the last frame (or the `content-length`'s last
    /// byte), and reports `cancelled` if the body is dropped before that:
    /// the client went away mid-body. A body that fails reports `error`.
    pub struct HandlerBody<B> {
        // Declared before the state so that it is dropped first: calls
        // cancelled with it end before the handler reports.
        #[pin]
        inner: B,
        state: Option<Tracking>,
        // An event stream's handler, reported at the head: the rest of the
        // body is produced in its scope.
        scope: Option<HandlerContext>,
    }
}

impl<B: fmt::Debug> fmt::Debug for HandlerBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerBody")
            .field("inner", &self.inner)
            .field("state", &self.state)
            .field("scope", &self.scope)
            .finish()
    }
}

impl<B: Body> Body for HandlerBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let Some(tracking) = this.state.as_mut() else {
            return match this.scope {
                Some(handler) => scope::sync_scope(handler.clone(), || this.inner.poll_frame(cx)),
                None => this.inner.poll_frame(cx),
            };
        };
        tracking.run.frame_asked();
        let polled = tracking
            .run
            .step_in_scope(|| this.inner.as_mut().poll_frame(cx));
        let ended = match &polled {
            Poll::Pending => false,
            Poll::Ready(None) => true,
            Poll::Ready(Some(Err(_))) => {
                tracking.outcome = Outcome::Error;
                true
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let sent = data.remaining() as u64;
                    tracking.remaining = tracking.remaining.map(|n| n.saturating_sub(sent));
                }
                if frame.trailers_ref().is_some_and(grpc_failed) {
                    tracking.outcome = Outcome::Error;
                }
                // Trailers are a body's last frame: the server sends them and
                // drops the body without polling it again.
                frame.is_trailers() || tracking.remaining == Some(0) || this.inner.is_end_stream()
            }
        };
        if ended {
            if let Some(mut tracking) = this.state.take() {
                tracking.run.finish(tracking.outcome);
            }
        } else if let (Poll::Ready(Some(_)), Some(tracking)) = (&polled, this.state.as_mut()) {
            // Handed to the server: until it asks for the next frame, it is
            // sending this one at the pace the client takes it.
            tracking.run.frame_sent();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
