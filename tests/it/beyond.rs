//! Beyond total/external/internal: where the internal time goes (`split`),
//! scheduler delay kept off the dependency's bill (wake mode), calls that
//! nobody counts (orphans), and the helpers that carry a handler into
//! spawned work.

// Compiled into both test binaries, each keeping the tests of its clock:
// the helpers and imports of the other clock's tests go unused in each.
#![allow(dead_code, unused_imports)]

use crate::common::{Capture, ms};
use selftime::{external_call, timed_handler};
use std::time::{Duration, Instant};

#[external_call("split_dep")]
async fn split_dep(d: Duration) {
    tokio::time::sleep(d).await;
}

#[cfg(feature = "test-util")]
#[timed_handler(split)]
async fn split() {
    // 3 ms of our own polling: the paused clock moves while we are polled.
    tokio::time::advance(ms(3)).await;
    split_dep(ms(10)).await;
    // 5 ms of waiting on a timer: internal, but not busy.
    tokio::time::sleep(ms(5)).await;
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn split_splits_internal_time_into_busy_and_waiting() {
    let (capture, _g) = Capture::install();
    split().await;
    let span = capture.only("split");
    assert_eq!(span.figures(), (18_000, 10_000, 8_000));
    assert_eq!(span.u64("internal.busy_us"), 3_000);
    assert_eq!(span.u64("internal.scheduled_us"), 0);
    assert_eq!(span.u64("internal.waiting_us"), 5_000);
}

#[cfg(feature = "test-util")]
#[timed_handler(split)]
async fn split_snapshot() -> selftime::Snapshot {
    tokio::time::advance(ms(2)).await;
    tokio::time::sleep(ms(4)).await;
    selftime::current().unwrap()
}

#[timed_handler]
async fn unsplit() -> selftime::Snapshot {
    selftime::current().unwrap()
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn the_split_is_readable_mid_handler_and_absent_without_split() {
    let snap = split_snapshot().await;
    assert_eq!(snap.busy(), Some(ms(2)));
    assert_eq!(snap.scheduled(), Some(ms(0)));
    assert_eq!(snap.waiting(), Some(ms(4)));
    let plain = unsplit().await;
    assert_eq!((plain.busy(), plain.waiting()), (None, None));
}

#[timed_handler(split)]
async fn cpu_bound() {
    // Real work on the CPU, then a real wait.
    let until = Instant::now() + ms(40);
    let mut spins = 0u64;
    while Instant::now() < until {
        spins = std::hint::black_box(spins + 1);
    }
    tokio::time::sleep(ms(40)).await;
}

#[cfg(not(feature = "test-util"))]
#[tokio::test]
async fn a_cpu_bound_handler_is_busy_on_the_real_clock() {
    let (capture, _g) = Capture::install();
    cpu_bound().await;
    let span = capture.only("cpu_bound");
    let busy = span.u64("internal.busy_us");
    let waiting = span.u64("internal.waiting_us");
    assert!((40_000..2_040_000).contains(&busy), "{busy}");
    assert!((40_000..2_040_000).contains(&waiting), "{waiting}");
    let (_, _, internal) = span.figures();
    assert_eq!(busy + waiting + span.u64("internal.scheduled_us"), internal);
}

// ---- wake mode: scheduler delay is not the dependency's fault -------------

/// A dependency that answers from its own OS thread after `d`: its wake
/// reaches the task at the moment it answers, however busy the runtime is.
fn answer_after(d: Duration) -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        std::thread::sleep(d);
        let _ = tx.send(());
    });
    rx
}

#[external_call("fast_dep")]
async fn fast_dep() {
    answer_after(ms(10)).await.unwrap();
}

#[external_call("fast_dep", until_wake)]
async fn fast_dep_wake() {
    answer_after(ms(10)).await.unwrap();
}

#[timed_handler(split)]
async fn behind_a_hog(wake: bool) {
    // Keep the (single-threaded) runtime busy: a task that blocks its thread
    // for 150 ms at a stretch, as a CPU-heavy neighbour would.
    let hog = tokio::spawn(async {
        for _ in 0..2 {
            tokio::task::yield_now().await;
            std::thread::sleep(ms(150));
        }
    });
    tokio::task::yield_now().await;
    if wake {
        fast_dep_wake().await;
    } else {
        fast_dep().await;
    }
    hog.abort();
}

#[cfg(not(feature = "test-util"))]
#[test]
fn wake_mode_charges_the_run_queue_to_the_service_not_the_dependency() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (capture, _g) = Capture::install();
    rt.block_on(behind_a_hog(false));
    rt.block_on(behind_a_hog(true));
    let runs = capture.named("behind_a_hog");
    assert_eq!(runs.len(), 2);

    // Default mode: the call ends when the handler is polled again, after
    // the hog lets go of the thread: the dependency is billed for the wait.
    let (_, plain_external, _) = runs[0].figures();
    assert!(plain_external >= 100_000, "{plain_external}");
    assert_eq!(runs[0].u64("internal.scheduled_us"), 0);

    // Wake mode: the call ends when the dependency answers (10 ms); the wait
    // for the busy runtime is internal, reported as scheduled.
    let (_, external, _) = runs[1].figures();
    assert!((10_000..100_000).contains(&external), "{external}");
    let scheduled = runs[1].u64("internal.scheduled_us");
    assert!(scheduled >= 50_000, "{scheduled}");
    assert_eq!(runs[1].breakdown().split('=').next(), Some("fast_dep"));
    assert!(
        runs[1].breakdown().ends_with("us/1"),
        "{}",
        runs[1].breakdown()
    );
}

#[timed_handler]
async fn wake_mode_exact(d: Duration) -> selftime::Snapshot {
    selftime::external("timer", tokio::time::sleep(d))
        .until_wake()
        .await;
    selftime::current().unwrap()
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn wake_mode_is_exact_on_an_idle_runtime() {
    let snap = wake_mode_exact(ms(7)).await;
    assert_eq!(snap.external(), ms(7));
    assert_eq!(snap.calls(), 1);
    assert_eq!(snap.internal(), ms(0));
}

// ---- orphans and the helpers that prevent them ----------------------------

#[external_call("orphan_dep")]
async fn orphan_dep() {
    tokio::time::sleep(ms(1)).await;
}

#[external_call("carried_dep")]
async fn carried_dep() {
    tokio::time::sleep(ms(3)).await;
}

#[external_call("carried_blocking_dep")]
fn carried_blocking_dep() -> u32 {
    std::thread::sleep(ms(3));
    1
}

#[timed_handler]
async fn forgets_to_carry() {
    // The classic mistake: tokio does not carry task-locals into a spawn.
    tokio::spawn(orphan_dep()).await.unwrap();
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn orphan_calls_are_counted_and_reported_once_per_site() {
    let (capture, _g) = Capture::install();
    let before = selftime::orphan_calls().get("orphan_dep");
    forgets_to_carry().await;
    forgets_to_carry().await;
    orphan_dep().await;
    assert_eq!(selftime::orphan_calls().get("orphan_dep"), before + 3);
    let handlers = capture.named("forgets_to_carry");
    assert_eq!(handlers.len(), 2);
    for span in handlers {
        assert_eq!(span.u64("external.calls"), 0);
    }

    if cfg!(debug_assertions) {
        let warnings: Vec<_> = capture
            .events("selftime")
            .into_iter()
            .filter(|e| e.fields.get("dependency").map(String::as_str) == Some("orphan_dep"))
            .collect();
        // The spawned task runs on this thread (current-thread runtime), so
        // this thread's subscriber sees the one warning of that site.
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let warning = &warnings[0];
        assert_eq!(warning.level, "WARN");
        assert_eq!(warning.fields["function"], "orphan_dep");
        assert_eq!(warning.fields["module"], module_path!());
        assert!(warning.fields["message"].contains("selftime::spawn"));
    }
}

#[external_call("shared_orphan_dep")]
fn shared_site_a() {}

#[external_call("shared_orphan_dep")]
async fn shared_site_b() {}

#[cfg(not(feature = "test-util"))]
#[tokio::test]
async fn orphan_counts_of_one_dependency_add_up_across_sites_and_functions() {
    // Under a subscriber of its own: the first orphan warning of the process
    // registers the warning's callsite, and a thread with no subscriber
    // doing so while another test installs one can leave the callsite
    // cached as wanted by nobody (tracing computes a callsite's interest
    // before listing it), silencing that other test's warning.
    let (_capture, _g) = Capture::install();
    let before = selftime::orphan_calls();
    shared_site_a();
    shared_site_a();
    shared_site_b().await;
    selftime::external_sync("shared_orphan_dep", || ());
    selftime::external("shared_orphan_dep", async {}).await;
    let after = selftime::orphan_calls();
    // Two call sites and the two functions, one dependency: one entry.
    assert_eq!(after.get("shared_orphan_dep"), 5);
    assert_eq!(before.get("shared_orphan_dep"), 0);
    assert_eq!(
        after
            .iter()
            .filter(|(name, _)| *name == "shared_orphan_dep")
            .count(),
        1
    );
}

#[timed_handler]
async fn carries(n: u32) -> u32 {
    selftime::spawn(carried_dep()).await.unwrap();
    let blocking = selftime::spawn_blocking(carried_blocking_dep)
        .await
        .unwrap();
    n + blocking
}

#[cfg(feature = "test-util")]
#[tokio::test(start_paused = true)]
async fn spawn_helpers_carry_the_handler() {
    let (capture, _g) = Capture::install();
    assert_eq!(carries(1).await, 2);
    let span = capture.only("carries");
    assert_eq!(span.u64("external.calls"), 2);
    let breakdown = span.breakdown();
    assert!(
        breakdown.starts_with("carried_dep=3000us/1,carried_blocking_dep="),
        "{breakdown}"
    );
    let orphans = selftime::orphan_calls();
    assert_eq!(orphans.get("carried_dep"), 0);
    assert_eq!(orphans.get("carried_blocking_dep"), 0);
}
