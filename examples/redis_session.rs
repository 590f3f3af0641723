//! A handler that reads a session from Redis, with the Redis calls marked as
//! external: each request's span shows how much of its time was Redis's and
//! how much its own.
//!
//! ```text
//! redis-server --port 6379 --save '' --appendonly no &
//! cargo run --example redis_session
//! REDIS_URL=redis://127.0.0.1:6380/ cargo run --example redis_session
//! ```
//!
//! `REDIS_URL` defaults to `redis://127.0.0.1:6379`. Each request logs one
//! line when its span closes, with `total.duration_us`,
//! `external.duration_us`, `internal.duration_us`, `external.calls`,
//! `external.breakdown` (`redis=<µs>us/<calls>`) and `outcome`.

use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands as _, RedisResult};
use selftime::{external_call, timed_handler};
use std::process::ExitCode;
use std::time::Duration;
use tracing_subscriber::fmt::format::FmtSpan;

#[external_call("redis")]
async fn read_session(conn: &mut MultiplexedConnection, key: &str) -> RedisResult<Option<String>> {
    conn.get(key).await
}

#[external_call("redis")]
async fn touch_session(conn: &mut MultiplexedConnection, key: &str) -> RedisResult<bool> {
    conn.expire(key, 1_800).await
}

/// The request's own work: here, a stand-in for rendering the page.
async fn render(session: &str) -> String {
    tokio::time::sleep(Duration::from_millis(2)).await;
    format!("<h1>Welcome back ({session})</h1>")
}

/// Loads the session (one or two Redis calls, counted as external time) and
/// renders the page (internal time).
#[timed_handler]
async fn show_account(mut conn: MultiplexedConnection, id: &str) -> RedisResult<Option<String>> {
    let key = format!("session:{id}");
    let Some(session) = read_session(&mut conn, &key).await? else {
        return Ok(None);
    };
    touch_session(&mut conn, &key).await?;
    Ok(Some(render(&session).await))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_span_events(FmtSpan::CLOSE)
        .with_target(false)
        .init();

    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let conn = match connect(&url).await {
        Ok(conn) => conn,
        Err(e) => {
            eprintln!("cannot reach Redis at {url}: {e}");
            eprintln!("start one (redis-server --save '' --appendonly no) or set REDIS_URL");
            return ExitCode::FAILURE;
        }
    };

    if let Err(e) = seed(conn.clone()).await {
        eprintln!("cannot write the demo session: {e}");
        return ExitCode::FAILURE;
    }
    for id in ["alice", "alice", "nobody"] {
        match show_account(conn.clone(), id).await {
            Ok(Some(page)) => println!("{id}: {page}"),
            Ok(None) => println!("{id}: no session, redirect to the login page"),
            Err(e) => println!("{id}: Redis error: {e}"),
        }
    }
    ExitCode::SUCCESS
}

async fn connect(url: &str) -> RedisResult<MultiplexedConnection> {
    redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await
}

async fn seed(mut conn: MultiplexedConnection) -> RedisResult<()> {
    conn.set_ex("session:alice", "user=alice", 60).await
}
