//! The load generator: logins at a steady pace through the gateway, from
//! the warm-up to the last scrape; and a probe of how long the machine kept
//! this process from running.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, interval, timeout};

/// At most this many logins in flight: a bound, never reached when healthy.
const MAX_IN_FLIGHT: u32 = 512;
/// How often the stall probe wakes up.
const PROBE: Duration = Duration::from_millis(5);
/// How long the last logins may take to finish.
const DRAIN: Duration = Duration::from_secs(6);

/// Logins on their way, counted.
#[derive(Debug)]
pub struct Load {
    counts: Arc<Counts>,
    slots: Arc<Semaphore>,
    sender: JoinHandle<()>,
    probe: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Counts {
    stop: AtomicBool,
    sent: AtomicU64,
    failed: AtomicU64,
    /// The probe's longest stall (µs) since the last `take_stall`.
    stall: AtomicU64,
}

/// What the load generator saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    pub sent: u64,
    /// Logins that got no successful answer from the gateway.
    pub failed: u64,
}

impl Load {
    /// Starts sending `rate` logins a second to `gateway`.
    pub fn start(gateway: String, rate: u32) -> io::Result<Self> {
        let client = super::services::client()?;
        let counts = Arc::new(Counts::default());
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT as usize));
        let sender = tokio::spawn(send(
            gateway,
            client,
            rate,
            Arc::clone(&counts),
            Arc::clone(&slots),
        ));
        let probe = tokio::spawn(probe(Arc::clone(&counts)));
        Ok(Self {
            counts,
            slots,
            sender,
            probe,
        })
    }

    /// Logins sent so far.
    pub fn sent(&self) -> u64 {
        self.counts.sent.load(Ordering::Relaxed)
    }

    /// The longest this process was kept from running since the last call:
    /// how busy the rest of the machine was.
    pub fn take_stall(&self) -> Duration {
        Duration::from_micros(self.counts.stall.swap(0, Ordering::Relaxed))
    }

    /// Stops sending, and waits for the logins in flight to finish.
    pub async fn stop(self) -> Sent {
        self.counts.stop.store(true, Ordering::Relaxed);
        let _ = self.sender.await;
        let _ = timeout(DRAIN, self.slots.acquire_many(MAX_IN_FLIGHT)).await;
        self.probe.abort();
        Sent {
            sent: self.counts.sent.load(Ordering::Relaxed),
            failed: self.counts.failed.load(Ordering::Relaxed),
        }
    }
}

async fn send(
    gateway: String,
    client: reqwest::Client,
    rate: u32,
    counts: Arc<Counts>,
    slots: Arc<Semaphore>,
) {
    let mut ticks = interval(Duration::from_secs(1) / rate);
    // A stalled generator skips the logins it missed rather than sending
    // them in a burst: the pace stays steady.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    while !counts.stop.load(Ordering::Relaxed) {
        ticks.tick().await;
        let n = counts.sent.fetch_add(1, Ordering::Relaxed);
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            // Over the in-flight bound: count it as failed, do not queue.
            counts.failed.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let request = client.get(format!("{gateway}/login/{}", super::sessions::token(n)));
        let counts = Arc::clone(&counts);
        tokio::spawn(async move {
            let ok = match request.send().await {
                Ok(response) => response.status().is_success() && response.text().await.is_ok(),
                Err(_) => false,
            };
            if !ok {
                counts.failed.fetch_add(1, Ordering::Relaxed);
            }
            drop(slot);
        });
    }
}

/// Sleeps `PROBE` again and again, keeping the longest it woke up late.
/// Tokio's timer wheel ticks every millisecond, so about 1 ms of lateness
/// is the floor; anything well above it is time this process spent waiting
/// for a CPU.
async fn probe(counts: Arc<Counts>) {
    loop {
        let before = Instant::now();
        tokio::time::sleep(PROBE).await;
        let late = before.elapsed().saturating_sub(PROBE);
        counts.stall.fetch_max(
            u64::try_from(late.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}
