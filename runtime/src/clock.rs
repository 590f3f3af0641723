//! The clock every figure is read from.
//!
//! In a normal build it is the cheapest monotonic clock the machine has: the
//! CPU's time-stamp counter where it is invariant (constant rate, running in
//! every power state: the counter most servers and VMs have), read through
//! `quanta`, which falls back to the OS's monotonic clock elsewhere. A
//! handler keeps the raw reading of its chain's start, and every later
//! reading is converted to nanoseconds from it: one counter read and one
//! multiplication.
//!
//! With the `test-util` feature it is tokio's clock instead, which follows
//! tokio's paused time (`#[tokio::test(start_paused = true)]`), so that
//! figures in such tests are exact and deterministic. In a debug build
//! without it, a handler that sees tokio's clock run apart from the real one
//! (paused, or advanced by hand) says so once, on stderr and as a `WARN`
//! event: its figures are real time, not the test's.

/// Where a chain of nested handlers starts: every reading is taken from it.
#[cfg(not(feature = "test-util"))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Origin(u64);

/// Where a chain of nested handlers starts: every reading is taken from it.
#[cfg(feature = "test-util")]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Origin(tokio::time::Instant);

#[cfg(not(feature = "test-util"))]
fn counter() -> &'static quanta::Clock {
    static CLOCK: std::sync::OnceLock<quanta::Clock> = std::sync::OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// Readies the clock now rather than at the first handler's start: where it
/// is the CPU's counter, `quanta` calibrates it on its first use, a busy
/// spin against the OS's clock (usually milliseconds, at most 200 ms).
/// Tokio's clock (`test-util`) needs nothing.
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) fn warm() {
    #[cfg(not(feature = "test-util"))]
    counter();
}

impl Origin {
    /// Now, as an origin.
    #[inline]
    pub(crate) fn now() -> Self {
        #[cfg(not(feature = "test-util"))]
        return Self(counter().raw());
        #[cfg(feature = "test-util")]
        return Self(tokio::time::Instant::now());
    }

    /// Nanoseconds from this origin to now; a clock that looks backwards
    /// reads as no time passing, and the figure saturates rather than wraps.
    #[inline]
    pub(crate) fn elapsed(self) -> u64 {
        #[cfg(not(feature = "test-util"))]
        {
            let clock = counter();
            clock.delta_as_nanos(self.0, clock.raw())
        }
        #[cfg(feature = "test-util")]
        {
            let d = tokio::time::Instant::now().saturating_duration_since(self.0);
            d.as_secs()
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::from(d.subsec_nanos()))
        }
    }
}

/// With `test-util`: whether tokio's clock in this context is paused. A
/// paused clock stands still between two readings with no `.await` between
/// them, while a running one follows the real clock, which is made to move
/// in between.
#[cfg(feature = "test-util")]
pub(crate) fn tokio_paused() -> bool {
    let before = tokio::time::Instant::now();
    let real = std::time::Instant::now();
    // Bounded: the real clock moves 200 ns in a few readings.
    for _ in 0..10_000 {
        if real.elapsed() >= std::time::Duration::from_nanos(200) {
            break;
        }
        std::hint::spin_loop();
    }
    tokio::time::Instant::now() == before
}

/// In debug builds without `test-util`: tokio's clock at a handler's start,
/// to compare with the real clock at its end.
#[cfg(all(debug_assertions, not(feature = "test-util")))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct PausedCheck {
    tokio: tokio::time::Instant,
    real: std::time::Instant,
}

#[cfg(all(debug_assertions, not(feature = "test-util")))]
impl PausedCheck {
    pub(crate) fn start() -> Self {
        Self {
            tokio: tokio::time::Instant::now(),
            real: std::time::Instant::now(),
        }
    }

    /// Warns once if tokio's clock moved apart from the real one since
    /// `start` by more than a millisecond: tokio's time is paused or was
    /// advanced by hand, and this handler's figures are real time.
    pub(crate) fn finish(self) {
        use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
        static WARNED: AtomicBool = AtomicBool::new(false);
        let tokio = tokio::time::Instant::now().saturating_duration_since(self.tokio);
        if apart(tokio, self.real.elapsed()) && !WARNED.swap(true, Relaxed) {
            let message = "selftime: tokio's clock is paused or advanced by hand (a \
                 `#[tokio::test(start_paused = true)]`?) but selftime reads the machine's clock, \
                 so these figures are real time, not the test's. Enable selftime's `test-util` \
                 feature in [dev-dependencies] for exact figures under tokio's paused time. \
                 (Said once, in debug builds.)";
            eprintln!("{message}");
            tracing::warn!(target: "selftime", "{message}");
        }
    }
}

/// Whether tokio's clock and the real one disagree on a handler's length:
/// by more than a millisecond, which a running clock's two readings never
/// do, and which a paused one (frozen, or jumping ahead) does at its first
/// sleep.
#[cfg(all(debug_assertions, not(feature = "test-util")))]
fn apart(tokio: std::time::Duration, real: std::time::Duration) -> bool {
    tokio.abs_diff(real) > std::time::Duration::from_millis(1)
}

#[cfg(all(test, not(feature = "test-util")))]
mod tests {
    use super::Origin;
    #[cfg(debug_assertions)]
    use std::time::Duration;

    #[cfg(debug_assertions)]
    #[test]
    fn a_paused_tokio_clock_is_told_from_a_running_one() {
        let ms = Duration::from_millis;
        // Paused: tokio's clock jumped 10 ms ahead, or stood still.
        assert!(super::apart(ms(10), Duration::from_micros(40)));
        assert!(super::apart(Duration::ZERO, ms(5)));
        // Running: the two clocks read a few microseconds apart.
        assert!(!super::apart(ms(20) + Duration::from_micros(3), ms(20)));
        // A real run, start to finish, raises nothing.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let check = super::PausedCheck::start();
            tokio::time::sleep(ms(3)).await;
            assert!(!super::apart(
                tokio::time::Instant::now().saturating_duration_since(check.tokio),
                check.real.elapsed()
            ));
        });
    }

    #[test]
    fn readings_grow_from_their_origin() {
        let origin = Origin::now();
        let first = origin.elapsed();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = origin.elapsed();
        assert!(second >= first + 1_000_000, "{first} then {second}");
        // An origin after now (a counter that looks backwards) reads as no
        // time passing.
        let ahead = Origin(super::counter().raw() + 1_000_000_000);
        assert_eq!(ahead.elapsed(), 0);
    }
}
