//! The system under incident: five services, each its own axum server on
//! `127.0.0.1:0`, talking real HTTP over loopback.
//!
//! ```text
//! load ──▶ gateway ──▶ auth ──▶ session store     (external call `session_store`)
//!                        │
//!                        └────▶ reverse proxy ──▶ legacy member system
//!                                                 (external call `legacy_proxy`)
//! ```
//!
//! Only the auth service is instrumented: its `login` handler is a
//! `#[selftime::timed_handler]`, and the two functions that call out are
//! `#[selftime::external_call]`s. Every service has a latency knob (an
//! atomic the load phases turn) on top of its base latency.

use super::plan::Fault;
use super::sessions::Sessions;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::sleep;

/// The session store's own latency on a healthy day.
pub(crate) const SESSION_STORE_BASE: Duration = Duration::from_millis(2);
/// The reverse proxy's own latency on a healthy day.
const PROXY_BASE: Duration = Duration::from_millis(1);
/// The legacy member system's latency on a healthy day.
const LEGACY_BASE: Duration = Duration::from_millis(20);
/// The CPU time the auth service spends sealing a session on a healthy day.
const SEAL_BASE: Duration = Duration::from_millis(1);
/// How long any hop waits for the next one before giving up.
pub(crate) const HOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Extra latency of one service, on top of its base latency.
#[derive(Debug, Default)]
pub(crate) struct Knob(AtomicU64);

impl Knob {
    pub(crate) fn get(&self) -> Duration {
        Duration::from_micros(self.0.load(Ordering::Relaxed))
    }

    fn set(&self, extra: Duration) {
        self.0.store(
            u64::try_from(extra.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// The latency knobs of the five services.
#[derive(Debug, Default)]
pub(crate) struct Knobs {
    pub(crate) gateway: Knob,
    pub(crate) auth: Knob,
    pub(crate) session_store: Knob,
    pub(crate) proxy: Knob,
    pub(crate) legacy: Knob,
}

impl Knobs {
    /// Heals everything, then breaks what `fault` breaks.
    pub(crate) fn apply(&self, fault: Fault) {
        for knob in [
            &self.gateway,
            &self.auth,
            &self.session_store,
            &self.proxy,
            &self.legacy,
        ] {
            knob.set(Duration::ZERO);
        }
        match fault {
            Fault::None => {}
            Fault::Legacy(extra) => self.legacy.set(extra),
            Fault::Proxy(extra) => self.proxy.set(extra),
            Fault::SessionStore(extra) => self.session_store.set(extra),
            Fault::Auth(extra) => self.auth.set(extra),
        }
    }
}

/// The running system: where to send logins, and its knobs.
#[derive(Debug)]
pub(crate) struct System {
    /// Base URL of the gateway, `http://127.0.0.1:<port>`.
    pub(crate) gateway: String,
    pub(crate) knobs: Arc<Knobs>,
}

/// Starts the five services on the current tokio runtime; they run until
/// the runtime shuts down.
pub(crate) async fn start(sessions: Sessions, knobs: Arc<Knobs>) -> io::Result<System> {
    let http = client()?;

    let legacy = serve(
        Router::new()
            .route("/members/{user}", get(legacy_member))
            .with_state(Arc::clone(&knobs)),
    )
    .await?;
    let proxy = serve(
        Router::new()
            .route("/legacy/members/{user}", get(proxy_member))
            .with_state(Arc::new(Hop {
                http: http.clone(),
                next: format!("http://{legacy}"),
                knobs: Arc::clone(&knobs),
            })),
    )
    .await?;
    let auth = serve(
        Router::new()
            .route("/login/{token}", get(login))
            .with_state(Arc::new(Auth {
                http: http.clone(),
                sessions,
                proxy: format!("http://{proxy}"),
                knobs: Arc::clone(&knobs),
            })),
    )
    .await?;
    let gateway = serve(
        Router::new()
            .route("/login/{token}", get(gateway_login))
            .with_state(Arc::new(Hop {
                http,
                next: format!("http://{auth}"),
                knobs: Arc::clone(&knobs),
            })),
    )
    .await?;
    Ok(System {
        gateway: format!("http://{gateway}"),
        knobs,
    })
}

/// An HTTP client for one hop: pooled keep-alive connections, a timeout.
pub(crate) fn client() -> io::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(HOP_TIMEOUT)
        .build()
        .map_err(io::Error::other)
}

/// Serves `router` on a fresh loopback port.
pub(crate) async fn serve(router: Router) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        // axum retries failed accepts itself; the future ends only with the runtime.
        let _ = axum::serve(listener, router).await;
    });
    Ok(addr)
}

/// The auth service's state.
struct Auth {
    http: reqwest::Client,
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
    // other tasks to another thread for the duration, so the runtime keeps
    // serving. No external call is open, so the time lands in `internal`,
    // as it should: it is the auth service's own. (On the blocking pool
    // with `spawn_blocking(..).await` it would land there too, plus two
    // thread hand-offs' worth of scheduling delay.)
    let seal = tokio::task::block_in_place(|| seal(format!("{user}/{tier}").as_bytes(), cost));
    Ok(format!("{user} {tier} {seal:016x}"))
}

/// Reads the session behind `token`: `None` when there is none.
#[selftime::external_call("session_store")]
async fn load_session(auth: &Auth, token: &str) -> io::Result<Option<String>> {
    auth.sessions.get(token).await
}

/// Asks the legacy member system, through the reverse proxy, for the
/// member's tier.
#[selftime::external_call("legacy_proxy")]
async fn fetch_member(auth: &Auth, user: &str) -> reqwest::Result<String> {
    auth.http
        .get(format!("{}/legacy/members/{user}", auth.proxy))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await
}

/// Seals a session: a key-stretching hash that runs for `cost` of wall
/// time, the way such hashes are tuned ("make it take 1 ms here"). The
/// phase-5 regression is a deploy that raises the cost by 15 ms.
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
    http: reqwest::Client,
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
    sleep(hop.knobs.gateway.get()).await;
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
