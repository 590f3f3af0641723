//! The system under incident: four Rust services, each timed with selftime
//! the way its team would, each its own axum server on a loopback port with
//! its own `/metrics`, talking real HTTP.
//!
//! ```text
//! load ──▶ gateway ──▶ auth ──▶ session store                    (Redis: nobody's selftime)
//!                        │
//!                        └──▶ load balancer ──▶ reverse proxy ──▶ legacy member system
//!                             (a TCP forwarder: nobody's selftime)
//! ```
//!
//! - **gateway** (the gateway team): `HandlerLayer::matched_path()` on its
//!   router, and the reqwest middleware on its client (dependency `auth`);
//! - **auth** (us): the `login` handler is a `#[selftime::timed_handler]`;
//!   its session-store call an `#[selftime::external_call(…, until_wake)]`,
//!   and its client for the proxy has the reqwest middleware (dependency
//!   `legacy_proxy`): each call ends when its answer arrives, so that a
//!   wait for a busy auth worker is auth's backlog;
//! - **the load balancer** (the platform team's, instrumented by nobody): a
//!   plain TCP forwarder between auth and the proxy;
//! - **proxy** (the platform team): like the gateway (dependency `legacy`);
//! - **legacy** (the legacy team): `HandlerLayer::matched_path()`.
//!
//! The proxy and the legacy system tell their callers on the loopback
//! network their own time in `Server-Timing`: auth splits each call to the
//! proxy into the proxy's own time and the time between, the load
//! balancer's.
//!
//! Every service is served through selftime's `ArrivalListener`, so that
//! behind `HandlerLayer` a request's wait for a worker is in its total.
//! Each service runs on a tokio runtime of its own, whose threads record
//! into that service's own Prometheus recorder: four processes' worth of
//! metrics in one process. Every service has a latency knob (an atomic the
//! phases turn) on top of its base latency.

use super::plan::Fault;
use super::sessions::Sessions;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use selftime::reqwest::ExternalCallMiddleware;
use selftime::tower::{Arrival, ArrivalListener, HandlerLayer, ServerTiming};
use std::cell::RefCell;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::time::{Instant, sleep, sleep_until};

/// The session store's own latency on a healthy day.
pub const SESSION_STORE_BASE: Duration = Duration::from_millis(1);
/// The reverse proxy's own latency on a healthy day.
const PROXY_BASE: Duration = Duration::from_millis(1);
/// The legacy member system's own latency on a healthy day.
const LEGACY_BASE: Duration = Duration::from_millis(5);
/// The CPU time the auth service spends sealing a session on a healthy day.
const SEAL_BASE: Duration = Duration::from_millis(1);
/// The auth service's worker threads.
const AUTH_WORKERS: usize = 2;
/// How long any hop waits for the next one before giving up.
pub const HOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The handler names, as each service's metrics label them.
pub const GATEWAY_HANDLER: &str = "GET /login/{token}";
pub const AUTH_HANDLER: &str = "login";
pub const PROXY_HANDLER: &str = "GET /legacy/members/{user}";
pub const LEGACY_HANDLER: &str = "GET /members/{user}";

/// Extra latency of one service, on top of its base latency.
#[derive(Debug, Default)]
pub struct Knob(AtomicU64);

impl Knob {
    pub fn get(&self) -> Duration {
        Duration::from_micros(self.0.load(Ordering::Relaxed))
    }

    fn set(&self, extra: Duration) {
        self.0.store(
            u64::try_from(extra.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// The latency knobs of the system's parts.
#[derive(Debug, Default)]
pub struct Knobs {
    pub gateway: Knob,
    pub auth: Knob,
    pub session_store: Knob,
    pub proxy: Knob,
    pub legacy: Knob,
    /// The slice of a worker the job that saturates auth blocks at a time.
    pub auth_hog: Knob,
    /// The delay the load balancer adds to each answer it passes on.
    pub network: Knob,
}

impl Knobs {
    /// Heals everything, then breaks what `fault` breaks.
    pub fn apply(&self, fault: Fault) {
        for knob in [
            &self.gateway,
            &self.auth,
            &self.session_store,
            &self.proxy,
            &self.legacy,
            &self.auth_hog,
            &self.network,
        ] {
            knob.set(Duration::ZERO);
        }
        match fault {
            Fault::None => {}
            Fault::Gateway(extra) => self.gateway.set(extra),
            Fault::Legacy(extra) => self.legacy.set(extra),
            Fault::Proxy(extra) => self.proxy.set(extra),
            Fault::SessionStore(extra) => self.session_store.set(extra),
            Fault::Own(extra) => self.auth.set(extra),
            Fault::OwnSaturation(slice) => self.auth_hog.set(slice),
            Fault::Network(extra) => self.network.set(extra),
        }
    }
}

/// One running service: its Prometheus job name, where it listens, and
/// the runtime it runs on.
#[derive(Debug)]
pub struct Service {
    pub job: &'static str,
    pub addr: SocketAddr,
    runtime: Runtime,
}

impl Service {
    /// `http://<addr>/metrics`.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }
}

/// The running system: where to send logins, the services, their knobs.
#[derive(Debug)]
pub struct System {
    /// Base URL of the gateway, `http://127.0.0.1:<port>`.
    pub gateway: String,
    /// gateway, auth, proxy, legacy.
    pub services: Vec<Service>,
    pub knobs: Arc<Knobs>,
}

impl System {
    /// Stops every service's runtime without waiting for its tasks.
    pub fn shutdown(self) {
        for service in self.services {
            service.runtime.shutdown_background();
        }
    }
}

thread_local! {
    /// Each service thread's hold on its service's recorder.
    static RECORDER: RefCell<Option<metrics::LocalRecorderGuard<'static>>> = const { RefCell::new(None) };
}

/// A runtime of `workers` threads whose every thread records into a new
/// recorder of selftime's series, with selftime's buckets; and the handle
/// that renders its page.
fn service_runtime(job: &'static str, workers: usize) -> io::Result<(Runtime, PrometheusHandle)> {
    let recorder: PrometheusRecorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Prefix("selftime_".into()),
            &selftime::metrics::BUCKETS,
        )
        .map_err(io::Error::other)?
        .build_recorder();
    let handle = recorder.handle();
    // One recorder per service for the life of the process (a test may run
    // the demo more than once: a few kilobytes each time).
    let recorder: &'static PrometheusRecorder = Box::leak(Box::new(recorder));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .thread_name(job)
        .on_thread_start(move || {
            let guard = metrics::set_default_local_recorder(recorder);
            RECORDER.with(|slot| *slot.borrow_mut() = Some(guard));
        })
        .on_thread_stop(|| RECORDER.with(|slot| drop(slot.borrow_mut().take())))
        .build()?;
    metrics::with_local_recorder(recorder, selftime::metrics::describe);
    Ok((runtime, handle))
}

/// Starts `router` (plus its `/metrics`) on a runtime of its own.
fn start_service(job: &'static str, workers: usize, router: Router) -> io::Result<Service> {
    let (runtime, page) = service_runtime(job, workers)?;
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    // Routes added after the handler layer are not handlers: scrapes are
    // not requests of the service.
    let app = router.route(
        "/metrics",
        get(move || {
            let page = page.clone();
            async move { page.render() }
        }),
    );
    runtime.spawn(async move {
        // A listener that notes when each request arrived: behind
        // `HandlerLayer`, the wait for a worker is in the handler's total.
        let Ok(listener) = TcpListener::from_std(listener).and_then(ArrivalListener::from_tokio)
        else {
            return;
        };
        let app = app.into_make_service_with_connect_info::<Arrival>();
        // The listener retries failed accepts; this ends with the runtime.
        let _ = axum::serve(listener, app).await;
    });
    Ok(Service { job, addr, runtime })
}

/// The policy of the services that tell their callers their own time:
/// callers on the loopback network, which here is the service network.
fn server_timing() -> io::Result<ServerTiming> {
    ServerTiming::for_peers(["127.0.0.0/8"]).map_err(io::Error::other)
}

/// Starts the four services and the load balancer; they run until
/// [`System::shutdown`].
pub fn start(sessions: Sessions, knobs: Arc<Knobs>) -> io::Result<System> {
    let legacy = start_service(
        "legacy",
        1,
        Router::new()
            .route("/members/{user}", get(legacy_member))
            .layer(HandlerLayer::matched_path().server_timing(server_timing()?))
            .with_state(Arc::clone(&knobs)),
    )?;
    let proxy_hop = Hop {
        http: instrumented_client("legacy")?,
        next: format!("http://{}", legacy.addr),
        knobs: Arc::clone(&knobs),
    };
    let proxy = start_service(
        "proxy",
        1,
        Router::new()
            .route("/legacy/members/{user}", get(proxy_member))
            .layer(HandlerLayer::matched_path().server_timing(server_timing()?))
            .with_state(Arc::new(proxy_hop)),
    )?;
    // The load balancer runs on the proxy's runtime: the platform team's.
    let balancer = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    balancer.set_nonblocking(true)?;
    let balancer_addr = balancer.local_addr()?;
    proxy
        .runtime
        .spawn(load_balancer(balancer, proxy.addr, Arc::clone(&knobs)));
    let auth_state = Auth {
        http: ClientBuilder::new(client()?)
            .with(ExternalCallMiddleware::named("legacy_proxy").through_body())
            .build(),
        sessions,
        proxy: format!("http://{balancer_addr}"),
        knobs: Arc::clone(&knobs),
    };
    // Two workers: sealing blocks one of them (`block_in_place`).
    let auth = start_service(
        "auth",
        AUTH_WORKERS,
        Router::new()
            .route("/login/{token}", get(login))
            .with_state(Arc::new(auth_state)),
    )?;
    let origin = Instant::now();
    for _ in 0..AUTH_WORKERS {
        auth.runtime.spawn(blocking_job(Arc::clone(&knobs), origin));
    }
    let gateway_hop = Hop {
        http: instrumented_client("auth")?,
        next: format!("http://{}", auth.addr),
        knobs: Arc::clone(&knobs),
    };
    let gateway = start_service(
        "gateway",
        1,
        Router::new()
            .route("/login/{token}", get(gateway_login))
            .layer(HandlerLayer::matched_path())
            .with_state(Arc::new(gateway_hop)),
    )?;
    Ok(System {
        gateway: format!("http://{}", gateway.addr),
        services: vec![gateway, auth, proxy, legacy],
        knobs,
    })
}

/// An HTTP client for one hop: pooled keep-alive connections, a timeout.
pub fn client() -> io::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(HOP_TIMEOUT)
        .build()
        .map_err(io::Error::other)
}

/// A client whose every request is an external call to `dependency`, kept
/// open until the response body is read.
fn instrumented_client(dependency: &'static str) -> io::Result<ClientWithMiddleware> {
    Ok(ClientBuilder::new(client()?)
        .with(ExternalCallMiddleware::named(dependency).through_body())
        .build())
}

/// Serves `router` on a fresh loopback port of the current runtime (the
/// session store stand-in: not a service of the chain).
pub async fn serve(router: Router) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(addr)
}

/// The auth service's state.
struct Auth {
    /// Every request through it an external call to `legacy_proxy`.
    http: ClientWithMiddleware,
    sessions: Sessions,
    proxy: String,
    knobs: Arc<Knobs>,
}

/// The auth service's login: the handler selftime measures.
///
/// Total time is this function's wall time; external time is the union of
/// the two calls below; whatever else it spends, sealing the session
/// included, is internal.
#[selftime::timed_handler]
async fn login(
    State(auth): State<Arc<Auth>>,
    Path(token): Path<String>,
) -> Result<String, StatusCode> {
    let user = load_session(&auth, &token)
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?
        .ok_or(StatusCode::UNAUTHORIZED)?;
    let tier = fetch_member(&auth, &user)
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?;
    let cost = SEAL_BASE + auth.knobs.auth.get();
    // CPU-bound work, run where it is: `block_in_place` hands this worker's
    // other tasks to another thread for the duration. No external call is
    // open, so the time is internal, as it should be: it is auth's own.
    let seal = tokio::task::block_in_place(|| seal(format!("{user}/{tier}").as_bytes(), cost));
    Ok(format!("{user} {tier} {seal:016x}"))
}

/// Reads the session behind `token`: `None` when there is none.
///
/// In wake mode: the call ends when the store's answer wakes the login, not
/// when a busy auth runtime gets round to polling it, so that auth's own
/// saturation (its CPU regression) is not billed to the session store and
/// does not notify the session-store team.
#[selftime::external_call("session_store", until_wake)]
async fn load_session(auth: &Auth, token: &str) -> io::Result<Option<String>> {
    auth.sessions.get(token).await
}

/// Asks the legacy member system, through the load balancer and the
/// reverse proxy, for the member's tier.
///
/// The client's middleware makes the request an external call to
/// `legacy_proxy`, read on selftime's I/O thread as it arrives (a wait for
/// a busy auth worker is auth's backlog, not the proxy's time), and reads
/// the proxy's `Server-Timing`: what is not the proxy's own time is the
/// time between, the load balancer's.
async fn fetch_member(auth: &Auth, user: &str) -> reqwest_middleware::Result<String> {
    Ok(auth
        .http
        .get(format!("{}/legacy/members/{user}", auth.proxy))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

/// The load balancer in front of the proxy: a plain TCP forwarder that
/// nobody instruments, passing each answer on after the network knob's
/// delay.
async fn load_balancer(listener: std::net::TcpListener, upstream: SocketAddr, knobs: Arc<Knobs>) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    while let Ok((client, _)) = listener.accept().await {
        let knobs = Arc::clone(&knobs);
        tokio::spawn(super::relay::relay(
            client,
            upstream,
            move || knobs.network.get(),
            |_| {},
        ));
    }
}

/// A job on an auth worker that blocks it (a synchronous client, a file
/// read, a lock held across I/O): while the saturation knob is set it takes
/// its worker for a slice at a time, and lets it go for a third of one.
/// Logins wait for a free worker, before their handler starts and between
/// its steps: that wait is auth's own backlog, and nobody else's. (It
/// blocks rather than spins, so the rest of the system keeps the
/// machine's cores.)
///
/// Every job blocks in the same windows of time, counted from `origin`:
/// while they block, no worker is free. (Jobs left to drift apart would
/// leave one worker free most of the time, and how saturated auth is
/// would depend on how they happened to fall.) A job that starts its
/// window late blocks only for what is left of it.
async fn blocking_job(knobs: Arc<Knobs>, origin: Instant) {
    loop {
        let slice = knobs.auth_hog.get();
        if slice.is_zero() {
            sleep(Duration::from_millis(5)).await;
            continue;
        }
        let period = slice + slice / 3;
        let elapsed = origin.elapsed().as_nanos();
        let next = (elapsed / period.as_nanos().max(1) + 1) * period.as_nanos();
        let start = origin + Duration::from_nanos(u64::try_from(next).unwrap_or(u64::MAX));
        sleep_until(start).await;
        std::thread::sleep((start + slice).saturating_duration_since(Instant::now()));
    }
}

/// Seals a session: a key-stretching hash that runs for `cost` of wall
/// time, the way such hashes are tuned ("make it take 1 ms here"). The
/// auth regression is a deploy that raises the cost.
fn seal(seed: &[u8], cost: Duration) -> u64 {
    let start = std::time::Instant::now();
    let mut state = seed.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    loop {
        for _ in 0..1_024 {
            // splitmix64: cheap, and its result depends on every round.
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            state ^= z ^ (z >> 31);
        }
        if start.elapsed() >= cost {
            return state;
        }
    }
}

/// A forwarding service's state: the gateway and the reverse proxy.
struct Hop {
    http: ClientWithMiddleware,
    next: String,
    knobs: Arc<Knobs>,
}

impl Hop {
    /// Forwards a GET of `path` to the next hop, relaying status and body.
    async fn forward(&self, path: &str) -> (StatusCode, String) {
        let response = match self.http.get(format!("{}{path}", self.next)).send().await {
            Ok(response) => response,
            Err(error) => return (StatusCode::BAD_GATEWAY, error.to_string()),
        };
        let status = response.status();
        match response.text().await {
            Ok(body) => (status, body),
            Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()),
        }
    }
}

async fn gateway_login(
    State(hop): State<Arc<Hop>>,
    Path(token): Path<String>,
) -> (StatusCode, String) {
    // The gateway's own work (authentication of the client, rate limits):
    // none to speak of on a healthy day.
    let own = hop.knobs.gateway.get();
    if !own.is_zero() {
        sleep(own).await;
    }
    hop.forward(&format!("/login/{token}")).await
}

async fn proxy_member(
    State(hop): State<Arc<Hop>>,
    Path(user): Path<String>,
) -> (StatusCode, String) {
    sleep(PROXY_BASE + hop.knobs.proxy.get()).await;
    hop.forward(&format!("/members/{user}")).await
}

async fn legacy_member(State(knobs): State<Arc<Knobs>>, Path(user): Path<String>) -> String {
    sleep(LEGACY_BASE + knobs.legacy.get()).await;
    // A stable, made-up tier per member.
    let tier = ["bronze", "silver", "gold"][user.len() % 3];
    tier.to_owned()
}
