//! What the ledger is built from: `std`'s atomics and `OnceLock` in a normal
//! build, `loom`'s under `--cfg loom`, so that the model checker can explore
//! every interleaving of the ledger's unions and of the naming of its
//! dependencies.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::AtomicU64;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::AtomicU64;

#[cfg(loom)]
pub(crate) use self::model::OnceLock;
#[cfg(not(loom))]
pub(crate) use std::sync::OnceLock;

/// A `OnceLock` loom can see into: a slot behind loom's `Mutex`, so that
/// every read and every fill of a ledger's name is a point where loom
/// switches threads. Written values are leaked (the checks are short), which
/// is what lets a reference to them outlive the lock.
#[cfg(loom)]
mod model {
    #[derive(Debug)]
    pub(crate) struct OnceLock<T: Copy + 'static> {
        slot: loom::sync::Mutex<Option<&'static T>>,
    }

    impl<T: Copy + 'static> OnceLock<T> {
        pub(crate) fn new() -> Self {
            Self {
                slot: loom::sync::Mutex::new(None),
            }
        }

        pub(crate) fn get(&self) -> Option<&T> {
            *self.slot.lock().unwrap()
        }

        pub(crate) fn get_or_init(&self, f: impl FnOnce() -> T) -> &T {
            let mut slot = self.slot.lock().unwrap();
            *slot.get_or_insert_with(|| Box::leak(Box::new(f())))
        }

        pub(crate) fn take(&mut self) -> Option<T> {
            self.slot.lock().unwrap().take().copied()
        }
    }
}
