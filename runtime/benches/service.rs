//! What selftime costs a real service: an axum service answering HTTP
//! requests by calling another service over loopback HTTP, under a fixed
//! number of concurrent clients, instrumented six ways and not at all.
//!
//! `cargo bench -p selftime --features tower,axum,reqwest --bench service`
//!
//! The service: one route, `GET /price/{item}`, which asks a second axum
//! service (the dependency, never instrumented) for `GET /price/{item}` and
//! answers with what it said. The dependency answers at once (the worst
//! case for the relative overhead: the request is nothing but HTTP
//! plumbing) and, in the second group, after a fixed delay: a 1 ms
//! `tokio::time::sleep`, which tokio's timer (millisecond ticks, rounded
//! up) makes about 2 ms.
//!
//! The variants, each a service of its own on its own port, all asking the
//! same dependency:
//!
//! - `uninstrumented`: a `reqwest::Client`, nothing else;
//! - `middleware_only`: the same through `reqwest-middleware` with nothing
//!   in the chain (reported only: the part of the next variant's cost that
//!   is reqwest-middleware's, which a service already using it has paid);
//! - `selftime_layer`: `HandlerLayer::matched_path()` on the router and
//!   `ExternalCallMiddleware::named("pricing")` on the client, its default
//!   (a call ends at the response head), the client shared through an `Arc`
//!   in the router's state as in the README's service;
//! - `selftime_layer_through_body`: the same with `.through_body()` on the
//!   middleware (a call ends with the response body), as in the README's
//!   service;
//! - `selftime_attributes`: `#[timed_handler]` on the handler and
//!   `#[external_call("pricing")]` on the fn that calls the dependency;
//! - `layer_server_only` and `middleware_client_only` (reported only): the
//!   `through_body` layer variant's two halves, each beside the other half
//!   done with the attributes: `HandlerLayer` with `#[external_call]`, and
//!   `#[timed_handler]` with the `through_body` middleware. They tell which
//!   half of that variant's cost is the server's and which the client's;
//! - `selftime_layer_plain_call` (reported only): `selftime_layer` with a
//!   middleware of this bench's own that measures each call as
//!   `selftime::external` does, ending when the handler next runs, with no
//!   I/O thread: the call as selftime measured it before its answers were
//!   read on the I/O thread. Beside `selftime_layer`, the I/O thread's cost;
//! - `selftime_layer_arrival`: `selftime_layer_through_body` served through
//!   `ArrivalListener` (the kernel's receive timestamps), exactly the
//!   README's service. Beside `selftime_layer_through_body`, the way in's
//!   cost;
//! - `selftime_attributes_wake` (reported only): `selftime_attributes` with
//!   `#[external_call("pricing", until_wake)]`: the attribute's call ended by its
//!   answer, on the I/O thread;
//! - `selftime_layer_timing_untrusted` and `selftime_layer_timing` (reported
//!   only): `selftime_layer` with a `Server-Timing` policy that trusts no
//!   request (a header nobody sends) and one that trusts every request (so
//!   each response carries the header). Beside `selftime_layer`, the cost of
//!   the header off and on;
//! - `tracing_instrument`: what a team writes without selftime,
//!   `#[tracing::instrument(skip_all)]` on the same two fns: a span per
//!   request and one per call.
//!
//! All of them run under `registry().with(<no-op layer>)`, installed
//! globally (the servers' workers are other threads). Never a bare
//! `registry()`: it never frees closed spans (tokio-rs/tracing#900). With
//! the `metrics` or `opentelemetry` feature also on (`--all-features`),
//! selftime records its figures to the facade's no-op recorder, or the
//! no-op global meter provider: none is installed.
//!
//! Two runtimes. The servers (every variant's service and the dependency)
//! run on a multi-thread runtime with two workers, what `#[tokio::main]`
//! gives a service on a 2-core machine. The clients run on a
//! current-thread runtime of their own, on the bench's main thread, as a
//! load generator in another process would: they compete with the servers
//! for the cores, never for the servers' run queues. (With everything on
//! the one 2-worker runtime, the clients' latencies included the time their
//! tasks waited behind the servers' on a worker the OS had preempted: p99
//! read 3 to 4.5 ms instead of 1.4 ms, and the uninstrumented throughput's
//! interquartile range was 5 to 14 % instead of 2 to 3 %.) Each client is a task with
//! a `reqwest::Client` of its own, so one keep-alive connection to the
//! service per client, kept for the whole run; it sends its next request as
//! soon as it has read the previous answer. The service's own client to
//! the dependency is one `reqwest::Client` (a pool, keep-alive), as a
//! service has. Every server sets `TCP_NODELAY`, as reqwest does.
//!
//! Measurement: criterion first (one `iter_custom` routine per variant: a
//! batch of requests shared among the clients, the time to answer them
//! all), then interleaved rounds. Each round runs every variant for the
//! same number of requests, back to back, in an order rotated each round;
//! each batch gives the throughput (requests over the batch's wall time),
//! the median and 99th percentile of the clients' latencies (request sent
//! to body read), and the process's CPU time per request. Each ratio to
//! the uninstrumented variant is taken within the round; the median over
//! rounds is reported with its quartiles.
//!
//! Targets (printed, never asserted), in both groups: each selftime
//! variant's throughput >= 0.98 x uninstrumented and its p99 <= 1.02 x;
//! and cheaper than the tracing equivalent: throughput >= and p99 <= the
//! tracing variant's.
//!
//! The clients and the dependency run on the same two cores as the service:
//! the CPU they use is the same in every variant, and dilutes the service's
//! own overhead in the throughput ratio. The added CPU per request (a
//! variant's CPU time per request minus the uninstrumented one's, same
//! round) is the overhead undiluted, and is printed beside the ratios.
//!
//! Environment:
//! - `SELFTIME_ROUNDS` (default 31 here): interleaved rounds a group; `0`
//!   skips the pass;
//! - `SELFTIME_SERVICE_REQUESTS` (default 2000): requests in one batch of
//!   one variant;
//! - `SELFTIME_SERVICE_CLIENTS` (default 16): concurrent clients;
//! - `SELFTIME_SERVICE_DELAY_US` (default 1000): the dependency's delay in
//!   the second group.

// Request counts and nanoseconds stay far below 2^52, and are positive.
#![allow(clippy::cast_precision_loss)]

mod common;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::serve::ListenerExt as _;
use common::{Rounds, Target, env_or, noop::Noop};
use criterion::Criterion;
use reqwest_middleware::ClientWithMiddleware;
use selftime::reqwest::ExternalCallMiddleware;
use selftime::tower::{Arrival, ArrivalListener, HandlerLayer, ServerTiming};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tracing_subscriber::layer::SubscriberExt as _;

const ROUTE: &str = "/price/{item}";

// The dependency.

async fn price(State(delay): State<Duration>, Path(item): Path<u32>) -> String {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    format!("{item}.00")
}

// The service, each variant's handler and call.

/// How the plain variants reach the dependency.
#[derive(Clone)]
struct Plain {
    client: reqwest::Client,
    base: Arc<str>,
}

/// How the variants through `reqwest-middleware` reach it.
#[derive(Clone)]
struct Chain {
    client: Arc<ClientWithMiddleware>,
    base: Arc<str>,
}

fn bad_gateway<E>(_: E) -> StatusCode {
    StatusCode::BAD_GATEWAY
}

async fn fetch(dep: &Plain, item: u32) -> Result<String, StatusCode> {
    let url = format!("{}/{item}", dep.base);
    let response = dep.client.get(url).send().await.map_err(bad_gateway)?;
    let response = response.error_for_status().map_err(bad_gateway)?;
    response.text().await.map_err(bad_gateway)
}

async fn uninstrumented(
    State(dep): State<Plain>,
    Path(item): Path<u32>,
) -> Result<String, StatusCode> {
    let price = fetch(&dep, item).await?;
    Ok(format!("item {item}: {price}"))
}

/// `middleware_only`, the layer variants and `middleware_client_only`: the
/// chain decides.
async fn through_chain(
    State(dep): State<Chain>,
    Path(item): Path<u32>,
) -> Result<String, StatusCode> {
    let url = format!("{}/{item}", dep.base);
    let response = dep.client.get(url).send().await.map_err(bad_gateway)?;
    let response = response.error_for_status().map_err(bad_gateway)?;
    let price = response.text().await.map_err(bad_gateway)?;
    Ok(format!("item {item}: {price}"))
}

#[selftime::external_call("pricing")]
async fn fetch_timed(dep: &Plain, item: u32) -> Result<String, StatusCode> {
    fetch(dep, item).await
}

#[selftime::timed_handler]
async fn timed(State(dep): State<Plain>, Path(item): Path<u32>) -> Result<String, StatusCode> {
    let price = fetch_timed(&dep, item).await?;
    Ok(format!("item {item}: {price}"))
}

/// `middleware_client_only`: the attribute's handler, the middleware's call.
#[selftime::timed_handler]
async fn timed_through_chain(dep: State<Chain>, item: Path<u32>) -> Result<String, StatusCode> {
    through_chain(dep, item).await
}

/// `layer_server_only`: the layer's handler, the attribute's call.
async fn layer_then_timed_call(
    State(dep): State<Plain>,
    Path(item): Path<u32>,
) -> Result<String, StatusCode> {
    let price = fetch_timed(&dep, item).await?;
    Ok(format!("item {item}: {price}"))
}

#[selftime::external_call("pricing", until_wake)]
async fn fetch_woken(dep: &Plain, item: u32) -> Result<String, StatusCode> {
    fetch(dep, item).await
}

#[selftime::timed_handler]
async fn timed_woken(
    State(dep): State<Plain>,
    Path(item): Path<u32>,
) -> Result<String, StatusCode> {
    let price = fetch_woken(&dep, item).await?;
    Ok(format!("item {item}: {price}"))
}

/// `selftime_layer_plain_call`: each request an external call measured by
/// `selftime::external`, which ends it when the handler next runs: no I/O
/// thread, no waker of its own.
#[derive(Clone, Copy)]
struct PlainCall;

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for PlainCall {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        selftime::external("pricing", next.run(request, extensions)).await
    }
}

#[tracing::instrument(skip_all)]
async fn fetch_traced(dep: &Plain, item: u32) -> Result<String, StatusCode> {
    fetch(dep, item).await
}

#[tracing::instrument(skip_all)]
async fn traced(State(dep): State<Plain>, Path(item): Path<u32>) -> Result<String, StatusCode> {
    let price = fetch_traced(&dep, item).await?;
    Ok(format!("item {item}: {price}"))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Uninstrumented,
    MiddlewareOnly,
    SelftimeLayer,
    SelftimeLayerThroughBody,
    LayerServerOnly,
    MiddlewareClientOnly,
    SelftimeAttributes,
    TracingInstrument,
    SelftimeLayerPlainCall,
    SelftimeLayerArrival,
    SelftimeAttributesWake,
    SelftimeLayerTimingUntrusted,
    SelftimeLayerTiming,
}

const VARIANTS: [Variant; 13] = [
    Variant::Uninstrumented,
    Variant::MiddlewareOnly,
    Variant::SelftimeLayer,
    Variant::SelftimeLayerThroughBody,
    Variant::LayerServerOnly,
    Variant::MiddlewareClientOnly,
    Variant::SelftimeAttributes,
    Variant::TracingInstrument,
    Variant::SelftimeLayerPlainCall,
    Variant::SelftimeLayerArrival,
    Variant::SelftimeAttributesWake,
    Variant::SelftimeLayerTimingUntrusted,
    Variant::SelftimeLayerTiming,
];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Self::Uninstrumented => "uninstrumented",
            Self::MiddlewareOnly => "middleware_only",
            Self::SelftimeLayer => "selftime_layer",
            Self::SelftimeLayerThroughBody => "selftime_layer_through_body",
            Self::LayerServerOnly => "layer_server_only",
            Self::MiddlewareClientOnly => "middleware_client_only",
            Self::SelftimeAttributes => "selftime_attributes",
            Self::TracingInstrument => "tracing_instrument",
            Self::SelftimeLayerPlainCall => "selftime_layer_plain_call",
            Self::SelftimeLayerArrival => "selftime_layer_arrival",
            Self::SelftimeAttributesWake => "selftime_attributes_wake",
            Self::SelftimeLayerTimingUntrusted => "selftime_layer_timing_untrusted",
            Self::SelftimeLayerTiming => "selftime_layer_timing",
        }
    }

    /// Whether this variant is served through `ArrivalListener`.
    fn arrival(self) -> bool {
        self == Self::SelftimeLayerArrival
    }

    /// The service this variant is, calling the dependency at `dependency`.
    fn service(self, dependency: SocketAddr) -> Router {
        let base: Arc<str> = format!("http://{dependency}/price").into();
        let plain = Plain {
            client: reqwest::Client::new(),
            base: base.clone(),
        };
        let chain_with = |builder: reqwest_middleware::ClientBuilder| Chain {
            client: Arc::new(builder.build()),
            base: base.clone(),
        };
        let chain = |middleware: Option<ExternalCallMiddleware>| {
            let builder = reqwest_middleware::ClientBuilder::new(reqwest::Client::new());
            let client = match middleware {
                Some(middleware) => builder.with(middleware).build(),
                None => builder.build(),
            };
            Chain {
                client: Arc::new(client),
                base: base.clone(),
            }
        };
        match self {
            Self::Uninstrumented => Router::new()
                .route(ROUTE, get(uninstrumented))
                .with_state(plain),
            Self::MiddlewareOnly => Router::new()
                .route(ROUTE, get(through_chain))
                .with_state(chain(None)),
            Self::SelftimeLayer => Router::new()
                .route(ROUTE, get(through_chain))
                .layer(HandlerLayer::matched_path())
                .with_state(chain(Some(ExternalCallMiddleware::named("pricing")))),
            Self::SelftimeLayerThroughBody => Router::new()
                .route(ROUTE, get(through_chain))
                .layer(HandlerLayer::matched_path())
                .with_state(chain(Some(
                    ExternalCallMiddleware::named("pricing").through_body(),
                ))),
            Self::LayerServerOnly => Router::new()
                .route(ROUTE, get(layer_then_timed_call))
                .layer(HandlerLayer::matched_path())
                .with_state(plain),
            Self::MiddlewareClientOnly => Router::new()
                .route(ROUTE, get(timed_through_chain))
                .with_state(chain(Some(
                    ExternalCallMiddleware::named("pricing").through_body(),
                ))),
            Self::SelftimeAttributes => Router::new().route(ROUTE, get(timed)).with_state(plain),
            Self::TracingInstrument => Router::new().route(ROUTE, get(traced)).with_state(plain),
            Self::SelftimeLayerPlainCall => Router::new()
                .route(ROUTE, get(through_chain))
                .layer(HandlerLayer::matched_path())
                .with_state(chain_with(
                    reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(PlainCall),
                )),
            Self::SelftimeLayerArrival => Self::SelftimeLayerThroughBody.service(dependency),
            Self::SelftimeAttributesWake => Router::new()
                .route(ROUTE, get(timed_woken))
                .with_state(plain),
            Self::SelftimeLayerTimingUntrusted | Self::SelftimeLayerTiming => {
                let policy = if self == Self::SelftimeLayerTiming {
                    ServerTiming::when(|_| true)
                } else {
                    ServerTiming::for_header("x-debug-timing", "nobody sends this")
                        .expect("a valid header")
                };
                Router::new()
                    .route(ROUTE, get(through_chain))
                    .layer(HandlerLayer::matched_path().server_timing(policy))
                    .with_state(chain(Some(ExternalCallMiddleware::named("pricing"))))
            }
        }
    }
}

/// Serves `router` on a fresh loopback port, `TCP_NODELAY` on every
/// connection.
async fn serve(router: Router, arrival: bool) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("a bound listener's address");
    if arrival {
        let listener = ArrivalListener::from_tokio(listener)
            .expect("receive timestamps")
            .nodelay(true);
        let app = router.into_make_service_with_connect_info::<Arrival>();
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serving") });
        return addr;
    }
    let listener = listener.tap_io(|tcp| {
        // Only latency would suffer, and equally in every variant.
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serving") });
    addr
}

// The load.

/// One variant's clients: one `reqwest::Client` each (so one keep-alive
/// connection each), and the URL each asks for.
struct Load {
    clients: Vec<(reqwest::Client, Arc<str>)>,
}

/// What one batch measured.
struct Batch {
    wall: Duration,
    cpu: Duration,
    /// Each request's latency in ns, sorted.
    latencies: Vec<u64>,
}

impl Batch {
    /// The `q` quantile of the latencies (nearest rank), in ns.
    fn quantile(&self, q: f64) -> f64 {
        let n = self.latencies.len();
        if n == 0 {
            return f64::NAN;
        }
        #[allow(clippy::cast_sign_loss)] // q is in 0..=1
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.latencies[rank - 1] as f64
    }
}

impl Load {
    fn new(service: SocketAddr, clients: usize) -> Self {
        let clients = (0..clients)
            .map(|i| {
                let url = format!("http://{service}/price/{i}").into();
                (reqwest::Client::new(), url)
            })
            .collect();
        Self { clients }
    }

    /// `requests` requests on the clients' runtime `rt`, taken in turn by
    /// the clients as each finishes its previous one.
    fn run(&self, rt: &Runtime, requests: u64) -> Batch {
        rt.block_on(async {
            let tickets = Arc::new(AtomicI64::new(i64::try_from(requests).unwrap_or(i64::MAX)));
            let cpu = cpu_time();
            let start = Instant::now();
            let tasks: Vec<_> = self
                .clients
                .iter()
                .map(|(client, url)| {
                    tokio::spawn(client_loop(client.clone(), url.clone(), tickets.clone()))
                })
                .collect();
            let mut each = Vec::with_capacity(tasks.len());
            for task in tasks {
                each.push(task.await.expect("clients do not panic"));
            }
            let wall = start.elapsed();
            let cpu = cpu_time().saturating_sub(cpu);
            let mut latencies = each.concat();
            latencies.sort_unstable();
            Batch {
                wall,
                cpu,
                latencies,
            }
        })
    }
}

/// One client: a request, its answer read to the end, the next, while
/// `tickets` lasts.
async fn client_loop(client: reqwest::Client, url: Arc<str>, tickets: Arc<AtomicI64>) -> Vec<u64> {
    let mut latencies = Vec::new();
    while tickets.fetch_sub(1, Relaxed) > 0 {
        let start = Instant::now();
        let response = client.get(&*url).send().await.expect("the service answers");
        assert!(response.status().is_success(), "{}", response.status());
        response.bytes().await.expect("the service's answer");
        latencies.push(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    latencies
}

/// The CPU time of the whole process so far: every thread, the bench's
/// clients and dependency included.
#[cfg(unix)]
fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to write.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &raw mut ts) };
    match (rc, u64::try_from(ts.tv_sec), u32::try_from(ts.tv_nsec)) {
        (0, Ok(secs), Ok(nanos)) => Duration::new(secs, nanos),
        _ => Duration::ZERO,
    }
}

/// Not measured here: the CPU figures read zero.
#[cfg(not(unix))]
fn cpu_time() -> Duration {
    Duration::ZERO
}

// The groups.

/// The figures kept per variant per round, in ns.
const FIGURES: [&str; 4] = ["ns/request", "p50", "p99", "cpu/request"];

fn name(variant: Variant, figure: &str) -> String {
    format!("{} {figure}", variant.name())
}

/// The two runtimes: see the module docs.
struct Runtimes {
    servers: Runtime,
    clients: Runtime,
}

struct Settings {
    rounds: usize,
    requests: u64,
    clients: usize,
}

fn group(
    c: &mut Criterion,
    rts: &Runtimes,
    settings: &Settings,
    group: &'static str,
    delay: Duration,
) {
    let loads: Vec<Load> = rts.servers.block_on(async {
        let dependency = serve(
            Router::new().route(ROUTE, get(price)).with_state(delay),
            false,
        )
        .await;
        let mut loads = Vec::new();
        for variant in VARIANTS {
            let service = serve(variant.service(dependency), variant.arrival()).await;
            loads.push(Load::new(service, settings.clients));
        }
        loads
    });
    let rt = &rts.clients;
    // Connections opened, pools and lazily built state warm.
    for load in &loads {
        load.run(rt, settings.requests);
    }

    {
        let mut g = c.benchmark_group(group);
        for (variant, load) in VARIANTS.iter().zip(&loads) {
            g.bench_function(variant.name(), |b| b.iter_custom(|n| load.run(rt, n).wall));
        }
        g.finish();
    }
    if settings.rounds == 0 || !common::is_bench_run() {
        return;
    }

    let count = VARIANTS.len();
    let per_round: Vec<Vec<f64>> = (0..settings.rounds)
        .map(|round| {
            let mut figures = vec![0.0; count * FIGURES.len()];
            for k in 0..count {
                let i = (round + k) % count;
                let batch = loads[i].run(rt, settings.requests);
                let n = settings.requests as f64;
                figures[i * FIGURES.len()..(i + 1) * FIGURES.len()].copy_from_slice(&[
                    batch.wall.as_secs_f64() * 1e9 / n,
                    batch.quantile(0.50),
                    batch.quantile(0.99),
                    batch.cpu.as_secs_f64() * 1e9 / n,
                ]);
            }
            figures
        })
        .collect();
    let names = VARIANTS
        .iter()
        .flat_map(|v| FIGURES.iter().map(|f| &*name(*v, f).leak()))
        .collect();
    let r = Rounds::new(group, names, per_round);
    print_table(&r, settings, group, delay);
    judge(&r);
}

fn print_table(r: &Rounds, settings: &Settings, group: &str, delay: Duration) {
    let answers = if delay.is_zero() {
        String::from("at once")
    } else {
        format!("after a {delay:?} sleep")
    };
    let mut out = format!(
        "\n== {group}: the dependency answers {answers}; {} interleaved rounds of {} requests a \
         variant, {} clients; median [p25 .. p75]; CPU is the whole process's\n  \
         {:<28} {:>26} {:>24} {:>24} {:>22}\n",
        settings.rounds,
        settings.requests,
        settings.clients,
        "",
        "requests/s",
        "p50 us",
        "p99 us",
        "CPU us/request",
    );
    for variant in VARIANTS {
        let ns = r.ns(&name(variant, "ns/request"));
        let p50 = r.ns(&name(variant, "p50"));
        let p99 = r.ns(&name(variant, "p99"));
        let cpu = r.ns(&name(variant, "cpu/request"));
        // Requests per second from ns per request: the quartiles swap.
        let _ = writeln!(
            out,
            "  {:<28} {:>8.0} [{:>6.0} .. {:>6.0}] {:>7.1} [{:>5.1} .. {:>5.1}] \
             {:>7.1} [{:>5.1} .. {:>5.1}] {:>6.2} [{:>5.2} .. {:>5.2}]",
            variant.name(),
            1e9 / ns.median,
            1e9 / ns.p75,
            1e9 / ns.p25,
            p50.median / 1e3,
            p50.p25 / 1e3,
            p50.p75 / 1e3,
            p99.median / 1e3,
            p99.p25 / 1e3,
            p99.p75 / 1e3,
            cpu.median / 1e3,
            cpu.p25 / 1e3,
            cpu.p75 / 1e3,
        );
    }
    print!("{out}");
}

fn judge(r: &Rounds) {
    let of = |v: Variant, figure: &str| {
        let key = name(v, figure);
        move |round: &common::Round<'_>| round.ns(&key)
    };
    let base = Variant::Uninstrumented;
    for v in &VARIANTS[1..] {
        let selftime = matches!(
            v,
            Variant::SelftimeLayer
                | Variant::SelftimeLayerThroughBody
                | Variant::SelftimeLayerArrival
                | Variant::SelftimeAttributes
        );
        let (throughput, p99) = if selftime {
            (Target::AtLeast(0.98), Target::AtMost(1.02))
        } else {
            (Target::Report, Target::Report)
        };
        let (b, x) = (of(base, "ns/request"), of(*v, "ns/request"));
        r.ratio(
            &format!("throughput {} / {}", v.name(), base.name()),
            throughput,
            |round| b(round) / x(round),
        );
        let (b, x) = (of(base, "p50"), of(*v, "p50"));
        r.ratio(
            &format!("p50 {} / {}", v.name(), base.name()),
            Target::Report,
            |round| x(round) / b(round),
        );
        let (b, x) = (of(base, "p99"), of(*v, "p99"));
        r.ratio(
            &format!("p99 {} / {}", v.name(), base.name()),
            p99,
            |round| x(round) / b(round),
        );
    }
    let tracing = Variant::TracingInstrument;
    for v in [
        Variant::SelftimeLayer,
        Variant::SelftimeLayerThroughBody,
        Variant::SelftimeLayerArrival,
        Variant::SelftimeAttributes,
    ] {
        let (t, x) = (of(tracing, "ns/request"), of(v, "ns/request"));
        r.ratio(
            &format!("throughput {} / {}", v.name(), tracing.name()),
            Target::AtLeast(1.0),
            |round| t(round) / x(round),
        );
        let (t, x) = (of(tracing, "p99"), of(v, "p99"));
        r.ratio(
            &format!("p99 {} / {}", v.name(), tracing.name()),
            Target::AtMost(1.0),
            |round| x(round) / t(round),
        );
    }
    for v in &VARIANTS[1..] {
        let (b, x) = (of(base, "cpu/request"), of(*v, "cpu/request"));
        r.figure(
            &format!("added CPU per request, {}", v.name()),
            "us",
            |round| (x(round) - b(round)) / 1e3,
        );
    }
    // What the backlog's mechanisms cost a request (one call each), in µs
    // of the process's CPU, against the same service without them: on the
    // layer path the I/O thread and the arrival times together are held to
    // 1 µs.
    let cost = |with: Variant, without: Variant| {
        let (a, b) = (of(with, "cpu/request"), of(without, "cpu/request"));
        move |round: &common::Round<'_>| (a(round) - b(round)) / 1e3
    };
    let io = cost(Variant::SelftimeLayer, Variant::SelftimeLayerPlainCall);
    let arrival = cost(
        Variant::SelftimeLayerArrival,
        Variant::SelftimeLayerThroughBody,
    );
    r.figure(
        "backlog CPU per request, the I/O thread (layer path)",
        "us",
        &io,
    );
    r.figure("backlog CPU per request, the arrival times", "us", &arrival);
    r.ratio(
        "backlog CPU per request on the layer path / 1 us",
        Target::AtMost(1.0),
        |round| io(round) + arrival(round),
    );
    r.figure(
        "backlog CPU per request, wake mode (attributes)",
        "us",
        cost(Variant::SelftimeAttributesWake, Variant::SelftimeAttributes),
    );
    judge_server_timing(r);
}

/// The `Server-Timing` header's cost, off and on, beside the same layer
/// without a policy, in µs of the process's CPU per request.
fn judge_server_timing(r: &Rounds) {
    let cost = |with: Variant| {
        let (a, b) = (
            name(with, "cpu/request"),
            name(Variant::SelftimeLayer, "cpu/request"),
        );
        move |round: &common::Round<'_>| (round.ns(&a) - round.ns(&b)) / 1e3
    };
    r.figure(
        "Server-Timing CPU per request, a policy that trusts no request",
        "us",
        cost(Variant::SelftimeLayerTimingUntrusted),
    );
    r.figure(
        "Server-Timing CPU per request, the header on every response",
        "us",
        cost(Variant::SelftimeLayerTiming),
    );
}

fn main() {
    common::print_machine();
    // Before any span exists, so that every callsite sees it; global, since
    // the workers are other threads.
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Noop))
        .expect("no subscriber was installed before");
    let settings = Settings {
        rounds: env_or("SELFTIME_ROUNDS", 31),
        requests: env_or("SELFTIME_SERVICE_REQUESTS", 2000),
        clients: env_or("SELFTIME_SERVICE_CLIENTS", 16),
    };
    let delay = Duration::from_micros(env_or("SELFTIME_SERVICE_DELAY_US", 1000));
    let rts = Runtimes {
        servers: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a 2-worker runtime"),
        clients: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime"),
    };
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    group(&mut c, &rts, &settings, "service_immediate", Duration::ZERO);
    group(&mut c, &rts, &settings, "service_delayed", delay);
    c.final_summary();
}
