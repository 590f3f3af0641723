//! The atomics the ledger is built from: `std`'s in a normal build, `loom`'s
//! under `--cfg loom` so that the model checker can explore every
//! interleaving of the ledger's operations.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, AtomicU8};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU64, AtomicU8};

/// Waits a moment for another thread to finish a step of a few instructions.
#[inline]
pub(crate) fn pause() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}

/// An `UnsafeCell` with the small API both `std` and `loom` can offer.
#[derive(Debug)]
pub(crate) struct Cell<T>(
    #[cfg(loom)] loom::cell::UnsafeCell<T>,
    #[cfg(not(loom))] std::cell::UnsafeCell<T>,
);

impl<T: Copy> Cell<T> {
    #[cfg(loom)]
    pub(crate) fn new(value: T) -> Self {
        Self(loom::cell::UnsafeCell::new(value))
    }

    #[cfg(not(loom))]
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    /// # Safety
    /// No write may run concurrently with this read.
    pub(crate) unsafe fn get(&self) -> T {
        #[cfg(loom)]
        // SAFETY: forwarded to the caller.
        return self.0.with(|p| unsafe { *p });
        #[cfg(not(loom))]
        // SAFETY: forwarded to the caller.
        unsafe {
            *self.0.get()
        }
    }

    /// # Safety
    /// The caller must be the only one touching the cell while it writes.
    pub(crate) unsafe fn set(&self, value: T) {
        #[cfg(loom)]
        // SAFETY: forwarded to the caller.
        return self.0.with_mut(|p| unsafe { *p = value });
        #[cfg(not(loom))]
        // SAFETY: forwarded to the caller.
        unsafe {
            *self.0.get() = value;
        }
    }
}
