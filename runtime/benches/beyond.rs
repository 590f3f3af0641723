//! The cost of the opt-in modes, each against the default it refines and
//! against the clock pair measured in the same run:
//!
//! - wake mode (`#[external_call("dep", until_wake)]`): a waker of its own, one
//!   allocation per call, a clock read per wake;
//! - `#[timed_handler(split)]`: two clock reads per poll of the handler and
//!   two more intervals kept per call;
//! - the orphan count, paid by calls made outside any handler, alone and
//!   with a second thread making the same calls at the same moment (the
//!   counters are split per thread so that it costs no more).
//!
//! `cargo bench -p selftime --bench beyond`
//!
//! No subscriber is installed: these are ledger costs, not tracing's.

// The trivial async fns are the subject: they await nothing on purpose.
#![allow(clippy::unused_async)]

mod common;

use common::{Suite, Target};
use criterion::Criterion;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

async fn bare(x: u64) -> u64 {
    black_box(x)
}

#[selftime::external_call("dep")]
async fn call(x: u64) -> u64 {
    black_box(x)
}

#[selftime::external_call("dep", until_wake)]
async fn call_wake(x: u64) -> u64 {
    black_box(x)
}

/// A future that is pending once and woken at once: the shape of a call
/// whose answer arrives, so that a wake actually goes through the waker.
struct WokenOnce(bool);

impl std::future::Future for WokenOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            std::task::Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
}

#[selftime::external_call("dep")]
async fn woken(x: u64) -> u64 {
    WokenOnce(false).await;
    black_box(x)
}

#[selftime::external_call("dep", until_wake)]
async fn woken_wake(x: u64) -> u64 {
    WokenOnce(false).await;
    black_box(x)
}

async fn woken_bare(x: u64) -> u64 {
    WokenOnce(false).await;
    black_box(x)
}

#[selftime::timed_handler]
async fn handler(x: u64) -> u64 {
    black_box(x)
}

#[selftime::timed_handler(split)]
async fn handler_split(x: u64) -> u64 {
    black_box(x)
}

#[inline(never)]
fn sync_bare(x: u64) -> u64 {
    black_box(x)
}

#[selftime::external_call("dep")]
#[inline(never)]
fn sync_site(x: u64) -> u64 {
    black_box(x)
}

/// Through the function, which counts per dependency name.
#[inline(never)]
fn sync_by_name(x: u64) -> u64 {
    selftime::external_sync("dep", || black_box(x))
}

/// One batch for the partner: how many calls, the barrier's round, the call.
type Batch = (u64, u64, fn(u64) -> u64);

/// A second thread that runs the same loop as a routine, at the same
/// moment: each batch wakes it, the two meet at a spin barrier, and the
/// batch's time runs until both are done. Between batches it sleeps.
struct Partner {
    work: mpsc::Sender<Batch>,
    done: mpsc::Receiver<()>,
    arrived: Arc<AtomicU64>,
    round: u64,
}

impl Partner {
    fn new() -> Self {
        let (work, inbox) = mpsc::channel::<Batch>();
        let (finished, done) = mpsc::channel();
        let arrived = Arc::new(AtomicU64::new(0));
        let theirs = Arc::clone(&arrived);
        std::thread::spawn(move || {
            while let Ok((iters, round, f)) = inbox.recv() {
                meet(&theirs, round);
                for i in 0..iters {
                    black_box(f(black_box(i)));
                }
                if finished.send(()).is_err() {
                    break;
                }
            }
        });
        Self {
            work,
            done,
            arrived,
            round: 0,
        }
    }

    /// `iters` calls of `f` here and `iters` on the partner, at once.
    fn both(&mut self, iters: u64, f: fn(u64) -> u64) -> Duration {
        self.round += 1;
        self.work
            .send((iters, self.round, f))
            .expect("the partner thread runs");
        meet(&self.arrived, self.round);
        let start = std::time::Instant::now();
        for i in 0..iters {
            black_box(f(black_box(i)));
        }
        self.done.recv().expect("the partner thread finishes");
        start.elapsed()
    }
}

/// Both threads' arrival at `round`'s barrier.
fn meet(arrived: &AtomicU64, round: u64) {
    arrived.fetch_add(1, Ordering::AcqRel);
    while arrived.load(Ordering::Acquire) < 2 * round {
        std::hint::spin_loop();
    }
}

fn alone(iters: u64, f: fn(u64) -> u64) -> Duration {
    common::time(iters, |i| {
        black_box(f(black_box(i)));
    })
}

fn clock_pair(iters: u64) -> Duration {
    common::time(iters, |_| {
        black_box(tokio::time::Instant::now());
        black_box(tokio::time::Instant::now());
    })
}

/// `iters` awaits of `f`.
async fn run<F, Fut>(iters: u64, f: F) -> Duration
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let start = std::time::Instant::now();
    for i in 0..iters {
        black_box(f(black_box(i)).await);
    }
    start.elapsed()
}

// The loops that run inside one handler, one per kind of call.

#[selftime::timed_handler]
async fn in_handler_default(iters: u64) -> Duration {
    run(iters, call).await
}

#[selftime::timed_handler]
async fn in_handler_wake(iters: u64) -> Duration {
    run(iters, call_wake).await
}

#[selftime::timed_handler]
async fn in_handler_woken(iters: u64) -> Duration {
    run(iters, woken).await
}

#[selftime::timed_handler]
async fn in_handler_woken_wake(iters: u64) -> Duration {
    run(iters, woken_wake).await
}

fn modes(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    // Declared before the suite, which borrows it.
    let partner = std::cell::RefCell::new(Partner::new());
    let both = |n, f| partner.borrow_mut().both(n, f);
    let mut suite = Suite::new("beyond");
    suite.add("clock/tokio_instant_pair", clock_pair);
    suite.add("call/bare", |n| rt.block_on(run(n, bare)));
    suite.add("call/default", |n| rt.block_on(in_handler_default(n)));
    suite.add("call/wake", |n| rt.block_on(in_handler_wake(n)));
    suite.add("woken/bare", |n| rt.block_on(run(n, woken_bare)));
    suite.add("woken/default", |n| rt.block_on(in_handler_woken(n)));
    suite.add("woken/wake", |n| rt.block_on(in_handler_woken_wake(n)));
    suite.add("call/outside_handler", |n| rt.block_on(run(n, call)));
    suite.add("handler/bare", |n| rt.block_on(run(n, bare)));
    suite.add("handler/default", |n| rt.block_on(run(n, handler)));
    suite.add("handler/split", |n| rt.block_on(run(n, handler_split)));
    suite.add("orphan/bare_alone", |n| alone(n, sync_bare));
    suite.add("orphan/site_alone", |n| alone(n, sync_site));
    suite.add("orphan/by_name_alone", |n| alone(n, sync_by_name));
    suite.add("orphan/bare_two_threads", |n| both(n, sync_bare));
    suite.add("orphan/site_two_threads", |n| both(n, sync_site));
    suite.add("orphan/by_name_two_threads", |n| both(n, sync_by_name));
    let Some(r) = suite.run(c) else { return };

    let pair = "clock/tokio_instant_pair";
    for (what, bare, default, wake) in [
        (
            "a call ready at once",
            "call/bare",
            "call/default",
            "call/wake",
        ),
        (
            "a call woken once",
            "woken/bare",
            "woken/default",
            "woken/wake",
        ),
    ] {
        r.figure(&format!("{what}: default overhead"), "ns", |r| {
            r.ns(default) - r.ns(bare)
        });
        r.figure(&format!("{what}: wake-mode overhead"), "ns", |r| {
            r.ns(wake) - r.ns(bare)
        });
        r.ratio(
            &format!("{what}: wake-mode overhead / clock pair"),
            Target::Report,
            |r| (r.ns(wake) - r.ns(bare)) / r.ns(pair),
        );
    }
    r.figure("orphan call (outside any handler, counted)", "ns", |r| {
        r.ns("call/outside_handler") - r.ns("call/bare")
    });
    r.ratio(
        "orphan call overhead / clock pair",
        Target::AtMost(0.2),
        |r| (r.ns("call/outside_handler") - r.ns("call/bare")) / r.ns(pair),
    );
    for (what, path) in [("call site", "site"), ("name", "by_name")] {
        let alone = format!("orphan/{path}_alone");
        let two = format!("orphan/{path}_two_threads");
        r.figure(
            &format!("sync orphan call counted by {what}, alone"),
            "ns",
            |r| r.ns(&alone) - r.ns("orphan/bare_alone"),
        );
        r.figure(
            &format!("sync orphan call counted by {what}, a second thread calling too"),
            "ns",
            |r| r.ns(&two) - r.ns("orphan/bare_two_threads"),
        );
        r.ratio(
            &format!("orphan call by {what}: two threads at once / alone"),
            Target::Report,
            |r| {
                (r.ns(&two) - r.ns("orphan/bare_two_threads"))
                    / (r.ns(&alone) - r.ns("orphan/bare_alone"))
            },
        );
    }
    r.figure("handler overhead, default", "ns", |r| {
        r.ns("handler/default") - r.ns("handler/bare")
    });
    r.figure("split: extra cost per handler of one poll", "ns", |r| {
        r.ns("handler/split") - r.ns("handler/default")
    });
    r.ratio("split extra per poll / clock pair", Target::Report, |r| {
        (r.ns("handler/split") - r.ns("handler/default")) / r.ns(pair)
    });
}

fn main() {
    common::print_machine();
    let mut c = Criterion::default().configure_from_args();
    modes(&mut c);
    c.final_summary();
}
