//! A counting global allocator, shared by the memory bench and the suite's
//! tests (which include this file by path: a bench of this published
//! package cannot include files from outside it). It forwards every call to `System` unchanged
//! and counts:
//!
//! - per thread, allocations and frees ([`counts`]), so that tests running in
//!   parallel do not count each other's;
//! - for the process, live blocks and bytes, and live blocks by size
//!   ([`live`]), so that a leak of one kind of block shows on its own;
//! - per thread, the size of the first allocation since [`forget_first`]
//!   ([`first`]), which tells the size of a thing allocated first.
//!
//! A binary that counts installs it:
//!
//! ```text
//! #[global_allocator]
//! static ALLOCATOR: common::counting::Counting = common::counting::Counting;
//! ```
//!
//! Without that, nothing is counted and every count reads zero.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

/// The allocator.
pub(crate) struct Counting;

/// Blocks at or above this size share the last slot of the counts by size.
pub(crate) const SIZES: usize = 4096;

static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static BY_SIZE: [AtomicIsize; SIZES + 1] = [const { AtomicIsize::new(0) }; SIZES + 1];

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static FREES: Cell<u64> = const { Cell::new(0) };
    static FIRST: Cell<Option<usize>> = const { Cell::new(None) };
}

#[allow(clippy::cast_possible_wrap)] // allocation sizes are below isize::MAX by contract
fn count(size: usize, sign: isize) {
    LIVE_BLOCKS.fetch_add(sign, Relaxed);
    LIVE_BYTES.fetch_add(size as isize * sign, Relaxed);
    BY_SIZE[size.min(SIZES)].fetch_add(sign, Relaxed);
    // `try_with`: a thread being torn down still allocates, uncounted.
    if sign > 0 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        let _ = FIRST.try_with(|first| {
            if first.get().is_none() {
                first.set(Some(size));
            }
        });
    } else {
        let _ = FREES.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: forwards every call to `System` unchanged; counting touches only
// atomics and const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size(), 1);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size(), 1);
        }
        ptr
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        // A reallocation is a free and an allocation in their own right.
        if !new.is_null() {
            count(layout.size(), -1);
            count(new_size, 1);
        }
        new
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(layout.size(), -1);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations and frees made on one thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) allocs: u64,
    pub(crate) frees: u64,
}

/// What this thread has allocated and freed so far.
pub(crate) fn counts() -> Counts {
    Counts {
        allocs: ALLOCS.with(Cell::get),
        frees: FREES.with(Cell::get),
    }
}

impl std::ops::Sub for Counts {
    type Output = Self;
    fn sub(self, earlier: Self) -> Self {
        Self {
            allocs: self.allocs - earlier.allocs,
            frees: self.frees - earlier.frees,
        }
    }
}

/// The process's live heap: blocks and bytes, and blocks of one size.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Live {
    pub(crate) blocks: isize,
    pub(crate) bytes: isize,
    /// Live blocks of the size asked for.
    pub(crate) of_size: isize,
}

/// The live heap now, with the blocks of `size` (sizes from [`SIZES`] on
/// are counted together).
pub(crate) fn live(size: usize) -> Live {
    Live {
        blocks: LIVE_BLOCKS.load(Relaxed),
        bytes: LIVE_BYTES.load(Relaxed),
        of_size: BY_SIZE[size.min(SIZES)].load(Relaxed),
    }
}

/// Starts watching for this thread's next first allocation.
pub(crate) fn forget_first() {
    FIRST.with(|first| first.set(None));
}

/// The size of this thread's first allocation since [`forget_first`].
pub(crate) fn first() -> Option<usize> {
    FIRST.with(Cell::get)
}
