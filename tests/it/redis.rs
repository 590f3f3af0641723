//! A real Redis: handlers read sessions from a `redis-server` the test starts
//! itself (a child process on a free loopback port, no persistence, killed
//! when the test ends), through the `redis` crate, each read wrapped with
//! `#[external_call("redis")]`.
//!
//! The clock is real here, so figures are checked for their relations
//! (external within total, internal the rest, one dependency's busy time
//! equal to the union) and generous bounds, not exact values; the exact
//! arithmetic is the `behaviour` module's job, on the paused clock.
//!
//! Ignored by default (it needs the binary); CI runs it with
//! `--include-ignored`, and then a missing `redis-server` is a failure that
//! says what to install, never a silent pass.

use crate::common::redis_server::RedisServer;
use crate::common::{Capture, Closed};
use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands as _, RedisResult};
use selftime::{external_call, timed_handler};

#[external_call("redis")]
async fn read_session(conn: &mut MultiplexedConnection, key: &str) -> RedisResult<Option<String>> {
    conn.get(key).await
}

#[external_call("redis")]
async fn touch_session(conn: &mut MultiplexedConnection, key: &str) -> RedisResult<bool> {
    conn.expire(key, 1_800).await
}

/// Reads a session and, when there is one, extends its lifetime: one call to
/// Redis, or two.
#[timed_handler]
async fn load_session(mut conn: MultiplexedConnection, id: &str) -> RedisResult<Option<String>> {
    let key = format!("session:{id}");
    let session = read_session(&mut conn, &key).await?;
    if session.is_some() {
        touch_session(&mut conn, &key).await?;
    }
    Ok(session)
}

/// Checks what holds on any clock and returns the span's external µs.
fn check_figures(span: &Closed, calls: u64) -> u64 {
    let (total, external, internal) = span.figures();
    assert!(external <= total, "external {external} > total {total}");
    assert_eq!(internal, total - external);
    assert!(
        total < 10_000_000,
        "a loopback Redis took {total} µs: something is wrong"
    );
    // A round trip to another process takes more than a microsecond.
    assert!(external > 0, "no external time counted: {span:?}");
    assert_eq!(span.u64("external.calls"), calls);
    // One dependency only: its busy time is the union itself.
    assert_eq!(span.breakdown(), format!("redis={external}us/{calls}"));
    external
}

#[tokio::test]
#[ignore = "needs redis-server on PATH (apt-get install redis-server)"]
async fn a_session_read_counts_as_redis_time() {
    let server = RedisServer::start();
    let mut conn = server.connect().await;
    let _: () = conn
        .set_ex("session:alice", "user=alice;cart=3", 60)
        .await
        .expect("seeding the session");
    let (capture, _g) = Capture::install();

    let session = load_session(conn.clone(), "alice").await.unwrap();
    assert_eq!(session.as_deref(), Some("user=alice;cart=3"));
    let span = capture.only("load_session");
    check_figures(&span, 2);
    assert_eq!(span.outcome(), "ok");

    // The handler's EXPIRE went through: the session now lives 30 minutes.
    let ttl: i64 = conn.ttl("session:alice").await.unwrap();
    assert!(ttl > 60 && ttl <= 1_800, "ttl {ttl}");
}

#[tokio::test]
#[ignore = "needs redis-server on PATH (apt-get install redis-server)"]
async fn a_missing_session_is_one_call() {
    let server = RedisServer::start();
    let conn = server.connect().await;
    let (capture, _g) = Capture::install();

    assert_eq!(load_session(conn, "nobody").await.unwrap(), None);
    let span = capture.only("load_session");
    check_figures(&span, 1);
    assert_eq!(span.outcome(), "ok");
}

#[tokio::test]
#[ignore = "needs redis-server on PATH (apt-get install redis-server)"]
async fn a_redis_error_is_an_error_outcome_and_still_counts() {
    let server = RedisServer::start();
    let mut conn = server.connect().await;
    // GET on a list: Redis answers WRONGTYPE.
    let _: () = conn.rpush("session:mallory", "x").await.unwrap();
    let (capture, _g) = Capture::install();

    let err = load_session(conn, "mallory").await.unwrap_err();
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
    let span = capture.only("load_session");
    check_figures(&span, 1);
    assert_eq!(span.outcome(), "error");
}

#[tokio::test]
#[ignore = "needs redis-server on PATH (apt-get install redis-server)"]
async fn concurrent_requests_each_count_only_their_own_calls() {
    let server = RedisServer::start();
    let mut conn = server.connect().await;
    for id in 0..8 {
        let _: () = conn
            .set_ex(format!("session:{id}"), format!("user={id}"), 60)
            .await
            .unwrap();
    }
    let (capture, _g) = Capture::install();

    // Eight handlers at once on one multiplexed connection.
    let ids: Vec<String> = (0..8).map(|id| id.to_string()).collect();
    let sessions =
        futures::future::join_all(ids.iter().map(|id| load_session(conn.clone(), id))).await;
    for (id, session) in sessions.into_iter().enumerate() {
        assert_eq!(session.unwrap(), Some(format!("user={id}")));
    }
    let spans = capture.named("load_session");
    assert_eq!(spans.len(), 8);
    for span in &spans {
        check_figures(span, 2);
        assert_eq!(span.outcome(), "ok");
    }
}
