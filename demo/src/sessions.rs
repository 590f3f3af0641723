//! The session store: an in-process Redis stand-in (an HTTP server) by
//! default, or a real Redis through the `redis` crate when `REDIS_URL` is set.
//!
//! Either way the store's latency knob sits outside the auth service: the
//! stand-in sleeps before it answers, and a real Redis is reached through a
//! loopback relay that delivers each of its replies `knob` late. The wait
//! happens inside the auth service's `session_store` external call, where a
//! slow store's time belongs.

use super::services::{self, Knobs, SESSION_STORE_BASE};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use std::io;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until, timeout};

/// How many sessions exist: tokens `t0` to `t999`.
pub const SESSIONS: u64 = 1_000;
/// Where the sessions live in a real Redis (with a one-hour expiry).
const KEY_PREFIX: &str = "selftime-demo:session:";

/// The session token of the `n`th login.
pub fn token(n: u64) -> String {
    format!("t{}", n % SESSIONS)
}

/// The member a token's session belongs to, as the store holds it.
fn member_of(token: &str) -> Option<String> {
    let n: u64 = token.strip_prefix('t')?.parse().ok()?;
    (n < SESSIONS).then(|| format!("member-{n}"))
}

/// A connected session store.
#[derive(Debug)]
pub enum Sessions {
    /// The in-process stand-in, over HTTP.
    StandIn { http: reqwest::Client, url: String },
    /// A real Redis, reached through the delay relay.
    Redis {
        connection: redis::aio::MultiplexedConnection,
    },
}

impl Sessions {
    /// Starts the stand-in on a loopback port.
    pub async fn stand_in(knobs: Arc<Knobs>) -> io::Result<Self> {
        let addr = services::serve(
            Router::new()
                .route("/sessions/{token}", get(stand_in_get))
                .with_state(knobs),
        )
        .await?;
        Ok(Self::StandIn {
            http: services::client()?,
            url: format!("http://{addr}/sessions/"),
        })
    }

    /// Connects to the Redis at `url` through a delay relay, and writes the
    /// demo's sessions there.
    pub async fn redis(url: &str, knobs: Arc<Knobs>) -> io::Result<Self> {
        let target = RedisUrl::parse(url)?;
        // Through the relay, an unreachable Redis would only show as a
        // closed connection: try it directly first, for a clear error.
        match timeout(services::HOP_TIMEOUT, TcpStream::connect(&target.host_port)).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                let why = format!("{}: {error}", target.host_port);
                return Err(io::Error::new(error.kind(), why));
            }
            Err(_) => {
                let why = format!("{}: connecting timed out", target.host_port);
                return Err(io::Error::new(io::ErrorKind::TimedOut, why));
            }
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let relay = listener.local_addr()?;
        tokio::spawn(relay_accept(listener, target.host_port.clone(), knobs));
        let client = redis::Client::open(target.with_host_port(&relay.to_string()))
            .map_err(io::Error::other)?;
        // Opened on selftime's I/O thread (its socket and the task that
        // reads it live there), so that an answer is noticed as it arrives
        // whatever auth's workers are doing.
        let mut connection = timeout(
            services::HOP_TIMEOUT,
            selftime::io::run(client.get_multiplexed_async_connection()),
        )
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connecting to REDIS_URL timed out"))?
        .map_err(io::Error::other)?;
        let mut seed = redis::pipe();
        for n in 0..SESSIONS {
            seed.cmd("SET")
                .arg(format!("{KEY_PREFIX}{}", token(n)))
                .arg(format!("member-{n}"))
                .arg("EX")
                .arg(3_600)
                .ignore();
        }
        seed.query_async::<()>(&mut connection)
            .await
            .map_err(io::Error::other)?;
        Ok(Self::Redis { connection })
    }

    /// The member whose session `token` is, `None` if there is no such session.
    pub async fn get(&self, token: &str) -> io::Result<Option<String>> {
        match self {
            Self::StandIn { http, url } => {
                // Polled in the auth service's wake-mode call: the client's
                // connections are opened on selftime's I/O thread, which
                // reads the answer as it arrives, as a Redis client's
                // connection task would.
                let response = http
                    .get(format!("{url}{token}"))
                    .send()
                    .await
                    .map_err(io::Error::other)?;
                if response.status() == StatusCode::NOT_FOUND {
                    return Ok(None);
                }
                let body = response
                    .error_for_status()
                    .map_err(io::Error::other)?
                    .text()
                    .await
                    .map_err(io::Error::other)?;
                Ok(Some(body))
            }
            Self::Redis { connection } => redis::cmd("GET")
                .arg(format!("{KEY_PREFIX}{token}"))
                .query_async(&mut connection.clone())
                .await
                .map_err(io::Error::other),
        }
    }

    /// One line for the run's header.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::StandIn { .. } => "in-process Redis stand-in (set REDIS_URL to use a real Redis)",
            Self::Redis { .. } => "Redis at REDIS_URL, through a loopback delay relay",
        }
    }
}

async fn stand_in_get(
    State(knobs): State<Arc<Knobs>>,
    Path(token): Path<String>,
) -> Result<String, StatusCode> {
    sleep(SESSION_STORE_BASE + knobs.session_store.get()).await;
    member_of(&token).ok_or(StatusCode::NOT_FOUND)
}

/// A `redis://` URL split around its host and port, which the demo points
/// at its relay.
#[derive(Debug, PartialEq, Eq)]
pub struct RedisUrl {
    /// `redis://` and the user info, if any, up to and including `@`.
    before: String,
    /// `host:port`, the port defaulted to 6379.
    pub host_port: String,
    /// The database path and query, if any.
    after: String,
}

impl RedisUrl {
    /// Reads a `redis://host[:port][/db][?query]` URL.
    pub fn parse(url: &str) -> io::Result<Self> {
        let invalid =
            |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("REDIS_URL: {why}"));
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| invalid("only plain `redis://host[:port][/db]` URLs are supported"))?;
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, after) = rest.split_at(end);
        let at = authority.rfind('@').map_or(0, |i| i + 1);
        let (user, host_port) = authority.split_at(at);
        if host_port.is_empty() {
            return Err(invalid("no host"));
        }
        // A port follows the last `:` unless that colon is inside an IPv6 `[…]`.
        let has_port = host_port
            .rfind(':')
            .is_some_and(|i| !host_port[i..].contains(']'));
        let host_port = if has_port {
            host_port.to_owned()
        } else {
            format!("{host_port}:6379")
        };
        Ok(Self {
            before: format!("redis://{user}"),
            host_port,
            after: after.to_owned(),
        })
    }

    /// The same URL, to `host_port`.
    pub fn with_host_port(&self, host_port: &str) -> String {
        format!("{}{host_port}{}", self.before, self.after)
    }
}

/// Accepts the auth service's connections and relays each to Redis.
async fn relay_accept(listener: TcpListener, upstream: String, knobs: Arc<Knobs>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of file descriptors or the like: try again shortly.
            sleep(Duration::from_millis(10)).await;
            continue;
        };
        tokio::spawn(relay_one(client, upstream.clone(), Arc::clone(&knobs)));
    }
}

/// Requests pass straight through; each chunk of reply is delivered `knob`
/// after it arrived, in order: a constant extra latency, not a bottleneck.
async fn relay_one(client: TcpStream, upstream: String, knobs: Arc<Knobs>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let (due_tx, mut due_rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let requests = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    };
    let replies_in = async {
        let mut buf = vec![0; 16 * 1024];
        while let Ok(n @ 1..) = server_read.read(&mut buf).await {
            let due = Instant::now() + knobs.session_store.get();
            if due_tx.send((due, buf[..n].to_vec())).is_err() {
                break;
            }
        }
        drop(due_tx);
    };
    let replies_out = async {
        while let Some((due, bytes)) = due_rx.recv().await {
            sleep_until(due).await;
            if client_write.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(requests, replies_in, replies_out);
}
