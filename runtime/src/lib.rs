//! # selftime: how slow is *your* service?
//!
//! A service that waits on systems owned by other teams cannot page on its
//! request latency: every slow dependency fires the alert. `selftime`
//! measures, per request,
//!
//! ```text
//! internal = total - external
//! ```
//!
//! where *total* is the handler's wall time and *external* is the time spent
//! waiting on outbound calls, and records all three on the request's
//! `tracing` span, so that alerts can fire on *internal* time only.
//!
//! The figures come from two attributes:
//!
//! - [`#[timed_handler]`](macro@timed_handler) on a request handler opens a
//!   per-request *ledger* (a tokio task-local scope) and a `tracing` span,
//!   and when the handler ends, however it ends, records the figures on it;
//! - [`#[external_call("redis")]`](macro@external_call) on a function that
//!   waits on a dependency adds the call's busy interval to the ledger of the
//!   handler in scope.
//!
//! # Contents
//!
//! [Which one to use](#which-one-to-use) ·
//! [What it measures](#what-it-measures) ·
//! [A complete example](#a-complete-example) ·
//! [The span fields](#the-span-fields) ·
//! [Outcomes](#outcomes) ·
//! [Nested handlers](#nested-handlers) ·
//! [Spawned tasks, blocking calls and threads](#spawned-tasks-blocking-calls-and-threads) ·
//! [Where internal time goes](#where-internal-time-goes) ·
//! [Backlog: when the service itself is the bottleneck](#backlog-when-the-service-itself-is-the-bottleneck) ·
//! [Server-Timing: the time between](#server-timing-the-time-between) ·
//! [Orphan calls](#orphan-calls) ·
//! [Edge cases](#edge-cases) ·
//! [Testing with tokio's paused clock](#testing-with-tokios-paused-clock) ·
//! [Cost](#cost) ·
//! [Failure model](#failure-model) ·
//! [Integrations](#integrations) ·
//! [Metrics and alerts](#metrics-and-alerts) ·
//! [OpenTelemetry](#opentelemetry)
//!
//! ## The public API
//!
//! Everything this crate exports, by kind. The modules other than [`io`]
//! are each behind the cargo feature of the same name; the docs on docs.rs
//! are built with every feature, and label each gated item with its
//! feature.
//!
//! **Attributes**
//!
//! - [`#[timed_handler]`](macro@timed_handler): a fn is a handler; its
//!   figures go on its span (and to the metrics) when it ends.
//! - [`#[external_call]`](macro@external_call): a fn is an external call to
//!   a dependency, counted toward the handler in scope.
//!
//! **Functions**
//!
//! - [`external`] and [`external_sync`]: a future, or a closure, as an
//!   external call to a named dependency, without an attribute.
//! - [`current`]: the figures so far of the handler in scope.
//! - [`spawn`], [`spawn_blocking`] and [`bind`]: work handed to another
//!   task or thread, still counting toward the handler
//!   ([Spawned tasks](#spawned-tasks-blocking-calls-and-threads)).
//! - [`orphan_calls`]: the calls made where no handler was in scope, per
//!   dependency ([Orphan calls](#orphan-calls)).
//!
//! **Types and traits**
//!
//! - [`Snapshot`]: a handler's figures at one moment, as [`current`]
//!   returns them; [`Dependency`]: one dependency's figures in it;
//!   [`Outcome`]: how a handler ended.
//! - [`HandlerContext`]: the handler in scope, captured to run work in it
//!   elsewhere.
//! - [`FutureExt`]: `fut.in_current_handler()`, which carries the handler
//!   into a future; [`InCurrentHandler`] is that future.
//! - [`External`]: the future [`external`] returns (`.until_wake()` ends
//!   the call when its answer arrives).
//! - [`OrphanCalls`]: the orphan counts [`orphan_calls`] returns.
//!
//! **Constants**
//!
//! - [`FIELDS`], [`SPLIT_FIELDS`] and [`CLIENT_FIELD`]: the names of the span
//!   fields a handler records ([The span fields](#the-span-fields)).
//! - [`SERVER_TIMING`]: the entries of the `Server-Timing` header a
//!   handler tells trusted callers.
//! - [`OTHER_DEPENDENCY`]: `other`, the dependency further dependencies
//!   are counted under; [`ALL_DEPENDENCIES`]: `all`, the `dependency`
//!   label of the union of a handler's calls in the metrics.
//!
//! **Modules**
//!
//! - [`io`] (always present): selftime's I/O thread, where measured clients'
//!   connections live: [`io::enter`], and [`io::run`] with its future
//!   [`io::OnIoThread`].
//! - [`tower`] (feature `tower`): the server layer [`tower::HandlerLayer`]
//!   (every request a handler) with its `Server-Timing` policy
//!   [`tower::ServerTiming`]; the listener [`tower::ArrivalListener`], which
//!   notes when each request arrived ([`tower::Arrival`]); the client layers
//!   [`tower::ExternalLayer`] and [`tower::HttpExternalLayer`] (every call
//!   through a tower service an external call). The feature `axum` adds
//!   [`tower::HandlerLayer::matched_path`], and `tonic`
//!   [`tower::ArrivalListener::incoming`]. The types these hand out:
//!   [`tower::HandlerService`], [`tower::ResponseFuture`],
//!   [`tower::HandlerBody`], [`tower::NoRoute`],
//!   [`tower::InvalidServerTiming`], [`tower::ArrivalStream`],
//!   [`tower::Incoming`], [`tower::ExternalService`],
//!   [`tower::ExternalFuture`], [`tower::HttpExternalService`],
//!   [`tower::HttpExternalFuture`], [`tower::ExternalBody`].
//! - [`reqwest`] (feature `reqwest`): [`reqwest::ExternalCallMiddleware`],
//!   every request of a `reqwest-middleware` client an external call.
//! - [`metrics`] (feature `metrics`): the figures as histograms and a
//!   counter through the `metrics` facade; [`metrics::BUCKETS`],
//!   [`metrics::describe`], and the metrics' names as constants
//!   ([`metrics::INTERNAL_SECONDS`], …).
//! - [`opentelemetry`] (feature `opentelemetry`): the same figures through
//!   the OpenTelemetry metrics API;
//!   [`opentelemetry::set_global_meter_provider`] (its error,
//!   [`opentelemetry::SetMeterProviderError`]),
//!   [`opentelemetry::with_local_meter_provider`],
//!   [`opentelemetry::BUCKETS`], and the instruments' and attributes' names
//!   as constants ([`opentelemetry::INTERNAL_DURATION`], …).
//!
//! The feature `test-util` adds no item: it makes figures follow tokio's
//! paused clock ([Testing](#testing-with-tokios-paused-clock)).
//!
//! # Which one to use
//!
//! One thing opens each request's handler, and each call to a dependency is
//! marked once:
//!
//! | you have | use |
//! |---|---|
//! | a handler fn (any framework, a queue consumer, a job) | [`#[timed_handler]`](macro@timed_handler) on it |
//! | a tower service: axum, tonic, hyper | [`tower::HandlerLayer`] on it: every request a handler, timed to the end of its response body, its client's time apart |
//! | a fn that waits on a dependency | [`#[external_call("dep")]`](macro@external_call) on it |
//! | a call that is not a fn of yours | [`external`] (a future) or [`external_sync`] (a closure) around it |
//! | a `reqwest` client | [`reqwest::ExternalCallMiddleware`] on it: every request an external call |
//! | a tower client: a tonic `Channel`, hyper's client | [`tower::HttpExternalLayer`] (to the end of the response body) or [`tower::ExternalLayer`] (any service, to its response) |
//!
//! The client integrations (the tower client layers, the `reqwest`
//! middleware) also end each call when its answer arrives, not when a busy
//! worker gets to it
//! ([Backlog](#backlog-when-the-service-itself-is-the-bottleneck)), and read
//! a callee's `Server-Timing`.
//!
//! **One handler per request.** `HandlerLayer` and `#[timed_handler]` on
//! the same request make two handlers, the attribute's nested in the
//! layer's: two spans, two series in the metrics, and the inner handler's
//! calls counted toward both ([Nested handlers](#nested-handlers)). Pick
//! one per request: the layer for a whole service, the attribute where
//! there is no layer or for a fn the layer does not see.
//!
//! **The layer's span.** Tracing span names are fixed at compile time, so
//! behind `HandlerLayer` every request's span is named `request` (target
//! `selftime::tower`); its `otel.name` field, which OpenTelemetry
//! exporters use as the span's name, and the metrics' `handler` label
//! carry the handler's name (`HandlerLayer::new("checkout")`, the route
//! template as `GET /users/{id}`, or the gRPC method). See the
//! [`tower`] module.
//!
//! # What it measures
//!
//! For each invocation of a handler:
//!
//! - **total**: the handler's wall time, from its start (an `async fn`'s
//!   first poll; a plain fn's call) to its end (return, `?`, panic, or the
//!   drop of its future);
//! - **external**: the *union* of the intervals in which at least one
//!   external call was in flight. Concurrent calls overlap, so their time
//!   counts once, never twice: internal time can never come out negative,
//!   which it does when call durations are simply summed;
//! - **internal** = total − external: the service's own time. Alert on this.
//!
//! ```text
//! handler  |============================================================|  0..60
//! ext A              |--------------------|                               10..30
//! ext B                        |--------------------|                     20..40
//! ext C                                                 |----------|      45..55
//! external           [==============================]   [==========]     30 + 10 = 40
//! internal = 60 - 40 = 20
//! ```
//!
//! An external call's interval runs from the first poll of its future (or
//! the call of a plain fn) to its completion, or to its drop if it is
//! cancelled. Each call also counts toward its own dependency: the
//! per-dependency figures are each dependency's own union, so they may add up
//! to more than *external* when different dependencies overlap.
//!
//! # A complete example
//!
//! ```
//! use selftime::{external_call, timed_handler};
//! use std::time::Duration;
//!
//! #[derive(Debug)]
//! struct Session(String);
//!
//! // An outbound call: its time is the dependency's, not ours.
//! #[external_call("redis")]
//! async fn load_session(token: &str) -> Option<Session> {
//!     tokio::time::sleep(Duration::from_millis(20)).await;
//!     Some(Session(token.to_owned()))
//! }
//!
//! #[external_call] // dependency name: "ask_legacy", the fn's name
//! async fn ask_legacy(user: &str) -> Result<u32, String> {
//!     tokio::time::sleep(Duration::from_millis(30)).await;
//!     Ok(user.len() as u32)
//! }
//!
//! // The handler: records total, external and internal time on its span.
//! #[timed_handler]
//! async fn authenticate(token: String) -> Result<u32, String> {
//!     let session = load_session(&token).await.ok_or("no session")?;
//!     let (member, ()) = tokio::join!(
//!         ask_legacy(&session.0),                        // concurrent with...
//!         tokio::time::sleep(Duration::from_millis(5)),  // ...our own work
//!     );
//!     let figures = selftime::current().expect("inside the handler");
//!     assert_eq!(figures.calls(), 2);
//!     assert!(figures.external() >= Duration::from_millis(50));
//!     member
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! assert_eq!(authenticate("t0k3n".into()).await, Ok(5));
//! # }
//! ```
//!
//! With a subscriber that prints span fields on close (for example
//! `tracing_subscriber::fmt().with_span_events(FmtSpan::CLOSE)`), that
//! request shows as
//!
//! ```text
//! INFO authenticate{total.duration_us=50211 external.duration_us=50187
//!   internal.duration_us=24 external.calls=2
//!   external.breakdown="redis=20093us/1,ask_legacy=30094us/1" outcome="ok"}: close
//! ```
//!
//! # The span fields
//!
//! `#[timed_handler]` opens a span named after the function (target: the
//! module path; level `INFO` unless `level = "…"` says otherwise), declares
//! these fields `Empty`, and records them when the handler ends. It records
//! **no function arguments**, unlike `#[tracing::instrument]`: handlers
//! carry tokens and passwords.
//!
//! | field | value |
//! |---|---|
//! | `total.duration_us` | `u64`, wall time of the handler, µs |
//! | `external.duration_us` | `u64`, the union of the intervals in which at least one external call was in flight, µs |
//! | `internal.duration_us` | `u64`, total − external (never negative; the three always add up exactly) |
//! | `external.calls` | `u64`, how many external calls the handler started |
//! | `external.breakdown` | `dep=<µs>us/<calls>` joined by `,`, in order of first call: `legacy=35012us/1,redis=812us/3`; a dependency that reported its own time adds `;between=<µs>us` ([Server-Timing](#server-timing-the-time-between)): `legacy=35012us/1;between=2010us` |
//! | `outcome` | `ok`, `error`, `panic` or `cancelled` (see [Outcomes](#outcomes)) |
//! | `internal.backlog_us` | `u64`, the part of internal time in which this process held the request up: answers waiting for a busy worker, and a request waiting before its handler started ([Backlog](#backlog-when-the-service-itself-is-the-bottleneck)) |
//! | `external.between_us` | `u64`, recorded only when a dependency reported its own time: the part of external time spent between this process and those dependencies (network, proxies, balancers) ([Server-Timing](#server-timing-the-time-between)) |
//! | `client.duration_us` | behind the `tower` layer only: `u64`, the time the response was ready but the client had not taken it (a slow reader); then `internal = total − external − client` ([`CLIENT_FIELD`]) |
//!
//! The names are in [`FIELDS`]. The ledger works whether or not the span is
//! enabled: with no subscriber, or a filter that drops the span, [`current`],
//! the metrics and nested handlers still see every figure; only the span
//! recording is skipped.
//!
//! # Outcomes
//!
//! - `ok`: the handler returned, and its value was not an `Err`;
//! - `error`: it returned an `Err`. This is decided by the *declared return
//!   type*, so `Result<T, E>`, `anyhow::Result<T>`, `io::Result<T>` and any
//!   alias of `Result` count, and nothing else does (an `impl Trait` return
//!   type is never an error);
//! - `panic`: the body panicked. This holds even when the future is dropped
//!   only after unwinding has finished (tokio's task harness, `catch_unwind`),
//!   where `std::thread::panicking()` no longer tells;
//! - `cancelled`: the handler's future was dropped before it completed: a
//!   client that went away, a `tokio::time::timeout`, the losing branch of a
//!   `select!`. The figures run to the moment of the drop, calls still in
//!   flight included.
//!
//! An `async fn` handler starts at its first poll, so one dropped without
//! ever being polled records nothing: its body never ran. A plain fn
//! returning a future (including `#[async_trait]` methods) starts when it is
//! called.
//!
//! # Nested handlers
//!
//! A handler that runs inside another (one `#[timed_handler]` fn awaited by
//! another, a handler behind the `tower` layer, a recursive handler) gets its
//! own figures, and its external calls also count toward every enclosing
//! handler: an outer handler's internal time never includes an inner
//! handler's waits on dependencies. The inner handler's *own* time is the
//! outer's internal time too: to the outer handler it is not a dependency.
//! A call counts toward its 12 innermost enclosing handlers.
//!
//! # Spawned tasks, blocking calls and threads
//!
//! The ledger lives in a tokio task-local, and tokio does not inherit
//! task-locals across `tokio::spawn`. Work the handler hands off counts only
//! when the handler is carried along:
//!
//! - [`selftime::spawn(fut)`](spawn), which is
//!   `tokio::spawn(fut.in_current_handler())` ([`FutureExt`]);
//! - [`selftime::spawn_blocking(f)`](spawn_blocking), which is
//!   `spawn_blocking(selftime::bind(f))` ([`bind`]); for a thread of your
//!   own, capture the [`HandlerContext`] and run the work in [`HandlerContext::sync_scope`];
//! - a call made where no handler is in scope runs normally and counts toward
//!   nothing, except [the orphan counts](#orphan-calls).
//!
//! A carried task that is still running when its handler ends is cut off at
//! the end: its call counts up to the handler's end, and its later end is
//! ignored safely (the ledger stays alive as long as anyone holds it; nobody
//! reads it again).
//!
//! A blocking client called from async code (`external_sync(…)`, or a plain
//! `#[external_call]` fn) is measured like any other call; it also blocks
//! the runtime's worker thread, which is its caller's business.
//!
//! # Where internal time goes
//!
//! `#[timed_handler(split)]` also splits internal time, recording three more
//! fields ([`SPLIT_FIELDS`]) and filling [`Snapshot::busy`],
//! [`Snapshot::scheduled`] and [`Snapshot::waiting`]:
//!
//! | field | the part of internal time in which… |
//! |---|---|
//! | `internal.busy_us` | the handler's future was being polled, outside external calls: its own CPU work (and any blocking it does) |
//! | `internal.scheduled_us` | a dependency had answered a [wake-mode](#backlog-when-the-service-itself-is-the-bottleneck) call, and the handler waited to be polled |
//! | `internal.waiting_us` | neither: timers, locks, channels, the run queue after other wakes |
//!
//! The three add up to `internal.duration_us` exactly. A high *waiting* with
//! a low *busy* points at contention (a lock, a pool, a saturated runtime); a
//! high *busy* at the code itself. The price is two clock reads per poll of
//! the handler, which is why it is opt-in; a plain fn's whole body is one
//! poll.
//!
//! # Backlog: when the service itself is the bottleneck
//!
//! Under load a service's own backlog is easy to bill to its dependencies.
//! A dependency's answer is data in a socket; on a runtime whose workers
//! are all busy, nobody reads it until a worker is free, and then the
//! handler waits in the run queue to be polled. Measured naively, from the
//! call's start to the moment the handler sees the answer, that wait looks
//! like a slow dependency: an overloaded service reports "my own work takes
//! 25 ms, billing takes 800 ms", pages billing's owners and not its own.
//! The same happens on the way in: a request that waits in the accept queue
//! and the run queue before its handler starts is not in the handler's
//! total at all.
//!
//! selftime counts the time *the dependency had the request*, from the call
//! to the moment the answer reached this process, as external, and the wait
//! from there until the handler noticed it as internal. That wait, and the
//! wait before the handler started, are also reported on their own as the
//! **backlog** (`internal.backlog_us`, [`Snapshot::backlog`], the
//! `selftime_backlog_seconds` histogram), the part of internal time in
//! which this process, not a dependency, held the request up. A high
//! backlog with a modest own CPU time says: the service is saturated (too
//! few workers, blocking work on a worker, a CPU-bound neighbour), which is
//! the service's fault and pages its team.
//!
//! How each integration finds the moment an answer arrived:
//!
//! - the `tower` client layers, the `reqwest` middleware and
//!   `#[external_call("dep", until_wake)]` open their connections on a small
//!   runtime of selftime's own, on a thread of its own ([`io`]), which reads
//!   the answer as soon as it arrives and wakes the handler's task then: the
//!   call ends at that wake. The `tower` client layers run each call's
//!   future there too, so a buffered client (a tonic `Channel`, whose worker
//!   hands the response future back to the caller) is measured the same way;
//!   that is why they need the inner service's future to be `Send +
//!   'static`, as tonic's and hyper's are;
//! - a client whose connections are opened ahead of its calls (a tonic
//!   `Channel`, a Redis multiplexed connection) must open them there too,
//!   one line: `selftime::io::enter(|| endpoint.connect_lazy())`, or
//!   `selftime::io::run(client.get_multiplexed_async_connection()).await`;
//!   with `#[external_call("redis", until_wake)]` on the calls, a Redis answer is
//!   then noticed as it arrives. From a runtime kept busy, such a call reads
//!   within about 0.05 ms at the median, and half a millisecond at p99, of
//!   what the same `GET` takes from an idle runtime at the same moment,
//!   while the handlers' backlog reads tens of milliseconds: what is left
//!   is the I/O thread's hand-off;
//! - an `#[external_call]` without `until_wake` (or [`external`]) ends its call
//!   when the handler next runs after the answer: the cheapest form, right
//!   on an idle runtime, and counting run-queue delay as external when the
//!   runtime is busy;
//! - on the way in, [`tower::ArrivalListener`](crate::tower) (a TCP listener
//!   for axum's `serve` and tonic's `serve_with_incoming`) notes when each
//!   request's data reached the host: on Linux the kernel's receive
//!   timestamp, elsewhere the time of the read. `HandlerLayer` starts the
//!   handler's total there, and the wait until the handler started is
//!   backlog. Over HTTP/2, where one connection carries many requests,
//!   each request's arrival is that of its own `HEADERS` frame (the
//!   listener reads one frame header at a time). Without
//!   the listener, or with `#[timed_handler]` alone, the total starts when
//!   the handler does: time spent before it (the accept queue, hyper's
//!   connection task, the run queue) is invisible to it.
//!
//! What backlog cannot see: a wait inside a client that does not use the
//! I/O thread (a connection opened elsewhere), which stays external, and
//! CPU work of the handler itself, which is internal but not backlog.
//! Wake-mode calls that split internal time (`split`) also report their
//! waits as `internal.scheduled_us`. The price of wake mode: one allocation
//! per call, a lock per poll, and a clock read per wake; the `tower` client
//! layers add a task on the I/O thread per call (see `BENCHMARKS.md`).
//!
//! # Server-Timing: the time between
//!
//! A caller knows that its call to `legacy` took 80 ms, and nothing more:
//! if a load balancer, a proxy nobody instruments or the network between
//! the two slows, its dependency alert tells legacy's owners, whose service
//! is fine. The W3C `Server-Timing` response header lets a server say how
//! long it took, and selftime measures both ends the same way:
//!
//! - **The callee** tells the callers it trusts:
//!   [`HandlerLayer::server_timing`](tower::HandlerLayer::server_timing)
//!   with a [`ServerTiming`](tower::ServerTiming) policy (a header your
//!   gateway sets, the networks your callers are in, or a function) adds
//!   `Server-Timing: total;dur=12.345, internal;dur=2.101,
//!   external;dur=10.244` to their responses (gRPC: the response metadata),
//!   figures so far at the response head, milliseconds (the names are
//!   [`SERVER_TIMING`]). Off unless set, and never for requests the policy
//!   does not trust: the figures, and with `with_dependencies()` the names
//!   of what the service calls, are not for strangers. Browsers show the
//!   entries in their developer tools.
//! - **The caller**'s integrations (the [`reqwest`] middleware, the
//!   [`tower`] client layers, a tonic `Channel` behind
//!   `HttpExternalLayer`) read the callee's `total` and split the call into
//!   the dependency's own time and the time *between*: the call's time, less
//!   the waits for this process's busy workers (its backlog, never between),
//!   less the callee's total. [`Dependency::between`] and
//!   [`Dependency::own`], [`Snapshot::between`], the `external.between_us`
//!   field, `;between=` in the breakdown, and (features `metrics`,
//!   `opentelemetry`) the `selftime_between_seconds` and
//!   `selftime_callee_seconds` histograms per dependency carry it. Alert on
//!   the time between (`SelftimeBetweenLatencyHigh`, for the platform's
//!   owner) and on the callee's own time for the dependency's owner.
//!
//! Without the header nothing changes. A header that is longer than 4 KiB,
//! names `total` twice, gives it two durations, or one that is not a
//! plain non-negative number of milliseconds below a day is ignored as a
//! whole, without an error. A callee that reports more than the call took
//! (its clock, or rounding) leaves nothing between. Concurrent calls to one
//! dependency add their times between, capped at the dependency's time.
//!
//! # Orphan calls
//!
//! A call made where no handler is in scope counts toward no handler. For a
//! background job that is right; for work a handler handed off without
//! carrying itself along (a `tokio::spawn` without `in_current_handler()`)
//! it is a silent hole in the figures. Such calls are counted per
//! dependency, [`orphan_calls()`](orphan_calls), and in debug builds the
//! first one of each `#[external_call]` site is reported as a `WARN` event
//! with target `selftime`, naming the function and the fix.
//!
//! # Edge cases
//!
//! - **Streaming bodies.** An HTTP call's interval ends when its future
//!   completes. If that future returns a response whose body is read later,
//!   outside the `#[external_call]` fn, the body's download time is internal.
//!   Read the body inside the call (`resp.bytes().await` in the same fn) to
//!   count it as external.
//! - **Scheduler delay.** All figures are wall-clock. Delay before a call
//!   starts is internal. Delay after a dependency answered is internal
//!   backlog for the integrations and wake-mode calls, and external for an
//!   `#[external_call]` without `until_wake` (see
//!   [Backlog](#backlog-when-the-service-itself-is-the-bottleneck)).
//! - **Many dependencies.** A ledger names 16 dependencies, in order of
//!   first call; calls to further ones are counted together under
//!   [`OTHER_DEPENDENCY`] (`other`). No time is lost: the union and the call
//!   count include them. A dependency named `other` (an
//!   `#[external_call("other")]`, a host the `reqwest` middleware cannot
//!   name) is counted in that same entry, never in one of its own.
//! - **Many calls at once.** Up to 16,383 calls of one handler may be in
//!   flight at the same moment; a call beyond that still counts toward the
//!   call counts and falls inside the union interval already open.
//! - **Very long handlers.** Times are kept as nanoseconds from the outermost
//!   handler's start, and a union keeps them in 50 bits: a handler's
//!   figures saturate about 6.5 days after the outermost handler's start.
//! - **A time-stamp counter that differs between cores** (rare: the counter
//!   is used only where the CPU says it is invariant) reads as no time
//!   passing when a later reading comes out lower: figures never go negative.
//! - **Clocks that look backwards** read as no time passing: figures never go
//!   negative, and external time is clamped to total time.
//! - **Dependency names** are `&'static str`: they label metrics, so they
//!   must come from a small, fixed set, never from request data.
//! - **Functions that return a future.** A plain fn whose return type is a
//!   future is measured over that future, not over the call that builds it
//!   (a handler from its call, a call from its future's first poll):
//!   `impl Future<…>`, `Pin<Box<dyn Future<…> + Send + 'a>>`, and any path
//!   ending in `BoxFuture` or `LocalBoxFuture` (the `futures` crate's
//!   aliases) are known by their names, whatever the body; so is any
//!   return type when the body ends by boxing an async block
//!   (`Box::pin(async move { … })`). Another type alias of your own is
//!   not: add `future` (`#[timed_handler(future)]`, `#[external_call("redis",
//!   future)]`) to say its return type is a future. The measured future is
//!   then boxed to fit it, so the alias must name a
//!   `Pin<Box<dyn Future<…>>>`; the outcome is read from its `Output`. A
//!   future the attribute cannot know by its name and that is not boxed
//!   (`Self::Future`, `std::future::Ready<T>`, a `JoinHandle<T>`, a future
//!   type of your own) cannot be measured as a future: the attribute would
//!   time it as a plain fn, while it is built, so it is a compile error at
//!   the return type, which no `allow` silences. Return
//!   `impl Future<Output = …>` instead (`async move { fut.await }`). A
//!   return type that names a future inside another type
//!   (`Option<impl Future<…>>`, `Result<BoxFuture<…>, E>`, a closure
//!   returning futures) is a compile error, as are an unpinned
//!   `Box<dyn Future<…>>` and a `dyn Future + Unpin`, which the measured
//!   future cannot be returned as: timing them would time the construction
//!   of the future, not the wait. Return the future itself instead.
//! - **Lazy return values.** A value that does its work when the caller
//!   drives it, after the function has returned, would be measured without
//!   that work, so both attributes refuse it at the return type, on an
//!   `async fn` too: an iterator (`impl Iterator<…>` and the other iterator
//!   traits, `impl IntoIterator<…>`), a stream (`impl Stream<…>`, any trait
//!   path ending in `Stream`, `BoxStream`), an `impl IntoFuture<…>`, and a
//!   closure (`impl Fn…`), as the return type itself or boxed
//!   (`Box<dyn Iterator<…>>`, `Pin<Box<dyn Stream<…>>>`). Collect an
//!   iterator or a stream and return the collection, or put the attribute
//!   on the code that consumes it; return `impl Future<Output = …>` for an
//!   `impl IntoFuture` (callers' `.await` is unchanged). Any other
//!   `impl Trait` (`impl Display`, `impl Into<T>`, `impl IntoResponse`) is
//!   a value built by the time the function returns, and is measured as a
//!   plain fn's value; so is a type that holds a lazy value
//!   (`Sse<impl Stream<…>>`): it is a response its caller delivers, which
//!   the attribute does not time (see `HandlerLayer` in
//!   [Integrations](#integrations) for a response's delivery).
//! - **`span = "current"` and the figure fields.** tracing drops a value
//!   recorded on a field its span did not declare, so the span already
//!   current must declare [`FIELDS`] (and [`SPLIT_FIELDS`] with `split`).
//!   When it is the span of an `#[instrument]` written below
//!   `#[timed_handler]`, the attribute sees it, and a field it lacks is a
//!   compile error at `#[instrument]` naming the `fields(…)` to add. A span
//!   made out of its sight (an `#[instrument]` above it, a span the caller
//!   entered) is checked when the handler reports: the first time a handler
//!   finds the span lacking fields, a `WARN` event with target `selftime`
//!   names the handler, the span and the missing fields. The figures still
//!   go to the fields the span has, to metrics and to [`current()`].
//! - **Attribute order.** Attributes expand from the top. `#[timed_handler]`
//!   works above or below `#[tracing::instrument]`, `#[tokio::main]` and
//!   `#[tokio::test]`; with `span = "current"` put it *above*
//!   `#[instrument]`, so that it runs inside the span `#[instrument]` enters.
//!   On `#[async_trait]` impls it goes on the method; the boxed future the
//!   `async_trait` expansion builds is what is timed.
//!
//! # Testing with tokio's paused clock
//!
//! In a normal build every figure comes from the cheapest monotonic clock
//! the machine has: the CPU's time-stamp counter where it is invariant (a
//! counter read and a multiplication a reading), the OS's monotonic clock
//! where it is not. That clock knows nothing of tokio's paused time.
//!
//! With the `test-util` feature, the way tokio's own is enabled for tests,
//! figures come from `tokio::time::Instant` instead, so under
//! `#[tokio::test(start_paused = true)]` they are exact and deterministic:
//!
//! ```toml
//! [dev-dependencies]
//! selftime = { version = "0.1", features = ["test-util"] }
//! ```
//!
//! ```text
//! #[tokio::test(start_paused = true)]
//! async fn internal_time_is_ours() {
//!     let snap = my_handler().await;          // sleeps 10 ms in a call, 5 ms itself
//!     assert_eq!(snap.external(), Duration::from_millis(10));
//!     assert_eq!(snap.internal(), Duration::from_millis(5));
//! }
//! ```
//!
//! Cargo enables a dev-dependency's features for test builds only, so the
//! service itself keeps the counter. A debug build without the feature that
//! sees tokio's clock paused (or advanced by hand) while a handler runs says
//! so once, on stderr and as a `WARN` event with target `selftime`: its
//! figures are then real time, not the test's.
//!
//! # Cost
//!
//! What this crate guarantees, whatever the machine:
//!
//! - **An external call allocates nothing and takes no lock.** It reads the
//!   clock twice and, in each handler it counts toward, makes a fixed
//!   number of uncontended atomic operations; its cost does not grow with
//!   the number of calls already made. Its dependency's name is looked up
//!   once and kept by an `#[external_call]` site, a tower client layer, and
//!   the `reqwest` middleware for each host it names; a call through
//!   [`external`] or [`external_sync`], or through a `reqwest` middleware
//!   given one name, finds it in a table of names each time. The one
//!   exception to "no allocation, no lock" is wake mode (`until_wake`, and
//!   the integrations): one allocation per call and an uncontended lock per
//!   poll.
//! - **A call through an integration, inside a handler** (the `tower`
//!   client layers, the `reqwest` middleware) is in wake mode, and its
//!   connection's reads happen on selftime's [I/O thread](io): the request
//!   is handed to that thread and the answer handed back, which is most of
//!   its cost (the `tower` client layers also run the call's future there,
//!   one task a call). That is the price of billing a dependency only the
//!   time it had the request, however busy the caller is. An
//!   `#[external_call]` without `until_wake` pays none of it, and bills the
//!   dependency its answer's wait for a busy worker. Outside any handler an
//!   integration's call runs where it is, as if selftime were not there.
//! - **Outside any handler** a call reads no clock: it finds no handler in
//!   scope and adds one to its dependency's [orphan count](#orphan-calls).
//! - **A handler allocates at most once**, for its state, and reuses the
//!   state of handlers that finished on its thread, so a steady stream of
//!   handlers allocates nothing. Its report records the span fields and,
//!   with `metrics`, the series.
//! - **The clock's first reading calibrates it.** Where the clock is the
//!   CPU's counter, it is calibrated against the OS's clock when it is first
//!   read: a busy spin, usually of milliseconds, at most 200 ms. Unless
//!   something read it before, that is at the start of the process's first
//!   handler, whose caller waits for it (the handler's figures start after
//!   it). A [`tower::HandlerLayer`] reads it when it wraps a service
//!   (`Layer::layer`: axum's `Router::layer`, tonic's `serve`), so a tower
//!   service's first request does not wait for it. With `test-util` the
//!   clock is tokio's, which needs no calibration.
//! - **Nothing global on the hot path**: concurrent handlers on any number
//!   of threads share nothing but the tables of names, which are read-only
//!   once the names in use are in them.
//!
//! Measured figures, as ratios against baselines taken in the same run, are
//! in `BENCHMARKS.md` in the repository.
//!
//! # Failure model
//!
#![doc = include_str!("docs/failure_model.md")]
//!
//! # Integrations
//!
//! Each is an optional cargo feature, so the core builds with `tokio` (its
//! `rt`, `time` and `net` features: the [I/O thread](io) reads sockets),
//! `tracing`, `pin-project-lite` and `quanta` (the clock) alone.
//!
//! **`tower`**: the `selftime::tower` module. `HandlerLayer` runs every
//! request of an axum, tonic or hyper service as a handler, one line instead
//! of one attribute per handler: the seven fields above on a span named
//! `request` (with `otel.name`, `http.route` and the status), measured to the
//! *end of the response body*, so a streamed body's time is in `total` and
//! the external calls made while streaming count; `cancelled` when the client
//! goes away mid-response. The time a slow client keeps the response waiting
//! is its own figure, `client.duration_us`, not internal time; event streams
//! (server-sent events, upgrades, gRPC calls) end at their response head
//! unless named with `HandlerLayer::to_end` (see the `tower` module's docs).
//! `#[timed_handler]` on an axum handler times the handler fn only, up to the
//! response it returns: it cannot see the body's delivery or the client.
//! Served through `ArrivalListener`, the layer starts each request's total
//! when the request reached the host (the kernel's receive timestamp on
//! Linux), so that a request waiting for a busy worker is in its total. The feature `axum` adds `HandlerLayer::matched_path()`, which
//! names each request after its route, and serves `ArrivalListener` to
//! `axum::serve`; the feature `tonic`, `ArrivalListener::incoming()` for
//! tonic's `serve_with_incoming`. On the client side, `ExternalLayer` /
//! `HttpExternalLayer` mark every call through a tower service (a tonic
//! channel, hyper's client) as an external call to a named dependency, the
//! latter until the response body ends; its response future runs on the
//! I/O thread.
//!
//! gRPC with tonic is two lines:
//! `Server::builder().layer(HandlerLayer::grpc())` makes every RPC a handler
//! named after its method (`/shop.Cart/Checkout`, with `rpc.method` on its
//! span), measured to its response head (a streaming method's stream is not
//! its latency; `.to_end(&["/shop.Cart/Export"])` times a finite one to its
//! end) and a `Status` that means a server fault an `error`; and
//! `CartClient::new(HttpExternalLayer::new("cart").layer(channel))`, the
//! channel made with `selftime::io::enter(|| endpoint.connect_lazy())`,
//! makes every call of a client an external call to `cart`, in flight until
//! its response (or stream) ends.
//!
//! **`reqwest`**: the `selftime::reqwest` module. `ExternalCallMiddleware`,
//! a `reqwest-middleware` middleware, marks every outbound request as an
//! external call; the dependency is the URL's host (interned, bounded) or a
//! name given per client. By default a call ends at the response head, and
//! a body read after `send()` returns counts as the handler's own time;
//! `through_body()` keeps it in flight until the body is read. The client's
//! connections are opened on the I/O thread, and a call ends when its
//! answer arrives.
//!
//! **`opentelemetry`**: the `selftime::opentelemetry` module. The figures of
//! the `metrics` feature (below) through the OpenTelemetry metrics API
//! instead, or as well: `selftime.internal.duration`,
//! `selftime.total.duration` and `selftime.external.duration` histograms in
//! seconds and a `selftime.requests` counter, with `selftime.handler`,
//! `selftime.dependency` and `selftime.outcome` attributes (and `http.route`
//! or `rpc.method` behind the `tower` layer), recorded to the provider given
//! once with `selftime::opentelemetry::set_global_meter_provider`. It
//! depends on the `opentelemetry` API crate alone; the SDK and exporter are
//! yours.

#![doc = include_str!("docs/integrations_metrics.md")]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]
// One `unsafe` block in the crate, allowed where it is (`external.rs`: a
// synchronous call borrows its handler's state from the task-local).
#![deny(unsafe_code)]
// docs.rs (`--cfg docsrs`, nightly rustdoc) labels each feature-gated item
// with the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backlog;
#[cfg(any(feature = "tower", feature = "reqwest"))]
mod body;
#[cfg(any(feature = "metrics", feature = "opentelemetry"))]
mod buckets;
mod clock;
mod external;
mod handler;
#[cfg(any(feature = "tower", feature = "reqwest"))]
mod intern;
pub mod io;
mod ledger;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
mod names;
#[cfg(feature = "opentelemetry")]
#[cfg_attr(docsrs, doc(cfg(feature = "opentelemetry")))]
pub mod opentelemetry;
mod orphan;
mod propagate;
mod reading;
mod report;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest;
mod run;
mod scope;
mod snapshot;
mod sync;
mod table;
#[cfg(any(feature = "tower", feature = "reqwest"))]
mod timing;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;
mod wake;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use external::{External, external, external_sync};
pub use handler::HandlerContext;
pub use names::{ALL_DEPENDENCIES, OTHER_DEPENDENCY};
pub use orphan::{OrphanCalls, orphan_calls};
pub use propagate::{FutureExt, InCurrentHandler, bind, spawn, spawn_blocking};
pub use report::{CLIENT_FIELD, FIELDS, SERVER_TIMING, SPLIT_FIELDS};
/// Times a request handler: total, external and internal time, call counts,
/// a per-dependency breakdown and the outcome, recorded on its span.
///
/// Put it on an `async fn` or a plain `fn`: a free fn, an inherent method, a
/// trait impl method (native `async fn` in traits and `#[async_trait]`
/// methods included). A plain fn whose return type is a future is timed from
/// its call to the end of that future, whatever its body: `impl Future<…>`,
/// `Pin<Box<dyn Future<…> + Send + 'a>>`, `BoxFuture<'a, T>` and
/// `LocalBoxFuture<'a, T>` (any path ending in those names), and with
/// `future` a boxed future under a name of your own (see
/// [Edge cases](crate#edge-cases)). The function keeps its signature,
/// visibility, attributes, docs, generics and `Send`-ness: an axum handler
/// stays an axum handler, a `Send` future stays `Send`, a `!Send` one still
/// compiles.
///
/// It opens a new handler scope around the body (a tokio task-local scope
/// for async code, `sync_scope` for sync code), nested in the handler
/// already in scope if there is one, and a span; see the
/// [crate docs](crate#the-span-fields) for the fields and what each means.
///
/// # Arguments
///
/// | argument | meaning | default |
/// |---|---|---|
/// | `name = "checkout"` | the span's name and the metrics' `handler` label | the fn's name |
/// | `level = "debug"` | the span's level: `trace`, `debug`, `info`, `warn` or `error` | `info` |
/// | `span = "current"` | record onto the span already current instead of opening one (declare the seven fields on it: [`FIELDS`]); put the attribute *above* `#[tracing::instrument]` | `"new"` |
/// | `split` | split internal time into busy, scheduled and waiting ([Where internal time goes](crate#where-internal-time-goes)) | off |
/// | `future` | the return type is a boxed future under a name the macro cannot see through (your own alias of `Pin<Box<dyn Future<…>>>`): time that future, not its construction | off |
/// | `crate = "::my::selftime"` | the path to this crate, when it is re-exported | `::selftime` |
///
/// Misuse is a compile error pointing at the offending tokens: on anything
/// but a function with a body, on a `const fn`, an unknown or duplicated
/// argument, a bad level or span mode, `future` where it has no effect (an
/// `async fn`, no return type, a return type already known to be a future),
/// and a return type that names a future inside another type
/// (`Option<impl Future<…>>`, a closure returning futures) or that the timed
/// future cannot be returned as (`Box<dyn Future<…>>` unpinned,
/// `dyn Future + Unpin`). So are a lazy return value (an iterator, a
/// stream, an `impl IntoFuture`, a closure), a future under a name the
/// attribute cannot see through (`JoinHandle<T>`, `Ready<T>`), and
/// `span = "current"` under an `#[instrument]` that does not declare the
/// fields (see [Edge cases](crate#edge-cases)).
///
/// # Examples
///
/// ```
/// use selftime::{external_call, timed_handler};
/// use std::future::Future;
/// use std::pin::Pin;
///
/// #[external_call("billing")]
/// async fn charge(cents: u64) -> Result<u64, String> {
///     Ok(cents)
/// }
///
/// #[timed_handler(name = "checkout", level = "info")]
/// async fn checkout(cents: u64) -> Result<u64, String> {
///     let charged = charge(cents).await?;
///     Ok(charged)
/// }
///
/// // A plain fn: the scope is a `sync_scope`.
/// #[timed_handler]
/// fn render(items: &[&str]) -> String {
///     items.join(",")
/// }
///
/// // A plain fn returning a future: timed to the end of the future.
/// #[timed_handler]
/// fn refund(cents: u64) -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send>> {
///     let charged = charge(cents);
///     Box::pin(charged)
/// }
///
/// // A boxed future under a name of your own: `future` says it is one.
/// type Pending = Pin<Box<dyn Future<Output = u64> + Send>>;
///
/// #[timed_handler(future)]
/// fn pending() -> Pending {
///     Box::pin(async { 7 })
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert_eq!(checkout(250).await, Ok(250));
/// assert_eq!(render(&["a", "b"]), "a,b");
/// assert_eq!(refund(100).await, Ok(100));
/// assert_eq!(pending().await, 7);
/// # }
/// ```
pub use selftime_macros::timed_handler;

pub use reading::{Dependency, Outcome};
/// Marks a function as an outbound call to a dependency: its busy interval
/// (first poll to completion or drop) is added to the ledger of the handler
/// in scope.
///
/// `#[external_call("redis")]` names the dependency; `#[external_call]`
/// uses the fn's name. It goes on an `async fn`, a plain `fn` (a blocking
/// client), or a plain fn whose return type is a future, whatever its body
/// (`impl Future<…>`, `Pin<Box<dyn Future<…>>>`, `BoxFuture`,
/// `LocalBoxFuture`, or with `future` a boxed future under a name of your
/// own): the future it returns is measured from its first poll to its end,
/// and building it is not. Outside any handler it reads no clock, counts an
/// [orphan call](crate#orphan-calls) and returns the value (see the
/// [cost](crate#cost)).
///
/// Nested calls are fine: the union counts their time once, and each call
/// counts toward its own dependency.
///
/// # Arguments
///
/// | argument | meaning | default |
/// |---|---|---|
/// | `"redis"` | the dependency's name (a string literal: it labels metrics) | the fn's name |
/// | `until_wake` | end the call when its answer arrives, not when the task next runs: its client's connections are opened on selftime's I/O thread, and the wait for a busy worker is [backlog](crate#backlog-when-the-service-itself-is-the-bottleneck); for a call that is a future | off |
/// | `future` | the return type is a boxed future under a name the macro cannot see through: measure that future, not its construction (as for `#[timed_handler]`) | off |
/// | `crate = "::my::selftime"` | the path to this crate, when it is re-exported | `::selftime` |
///
/// Misuse is a compile error pointing at the offending tokens, as for
/// [`#[timed_handler]`](macro@timed_handler); also `until_wake` on a plain fn whose
/// value is not a future.
///
/// # Examples
///
/// ```
/// use selftime::{external_call, timed_handler};
///
/// #[external_call("redis")]
/// async fn get(key: &str) -> Option<String> {
///     Some(key.to_uppercase())
/// }
///
/// #[external_call] // dependency "query_legacy"
/// fn query_legacy(id: u32) -> u32 {
///     id + 1
/// }
///
/// #[timed_handler]
/// async fn handler() -> u64 {
///     get("k").await;
///     get("k").await;
///     query_legacy(1);
///     let snap = selftime::current().unwrap();
///     let deps: Vec<_> = snap.dependencies().map(|d| (d.name(), d.calls())).collect();
///     assert_eq!(deps, [("redis", 2), ("query_legacy", 1)]);
///     snap.calls()
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert_eq!(handler().await, 3);
/// assert_eq!(get("outside any handler").await.as_deref(), Some("OUTSIDE ANY HANDLER"));
/// # }
/// ```
pub use selftime_macros::external_call;
pub use snapshot::{Snapshot, current};
