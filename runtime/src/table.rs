//! Append-only tables: the one shape of every table this crate fills as it
//! runs: the process's dependency names, the names interned from routes and
//! hosts, the metrics' label sets.
//!
//! A table is a fixed array of slots, each a `OnceLock` written once and then
//! only read. An entry is found by walking the slots from a starting index
//! (the entry's hash, or 0 for a table kept in order of first use): a
//! filled slot is compared, and the first empty one met is filled with the
//! new entry. Slots only go from empty to full, and every walk for an entry
//! takes the same path, so two threads adding the same entry at once meet at
//! the same slot and only one of them builds it; a table kept in order of
//! first use has no gaps. Reading a filled slot is one atomic load, so once
//! the entries in use are in, threads share read-only cache lines and never
//! contend. Filling a slot that another thread is filling at that very
//! moment waits for it (the `OnceLock`), which only the first use of an
//! entry can meet.

use std::sync::OnceLock;

/// A table of at most `N` entries.
#[derive(Debug)]
pub(crate) struct Table<T, const N: usize> {
    slots: [OnceLock<T>; N],
}

impl<T, const N: usize> Table<T, N> {
    /// An empty table (for a `static`, too).
    pub(crate) const fn new() -> Self {
        Self {
            slots: [const { OnceLock::new() }; N],
        }
    }

    /// The entry `is` accepts, walking the slots from `start`: a filled slot
    /// is offered to `is`, the first empty one is filled with `make()`. Its
    /// index and the entry, or `None` when the table is full of others.
    #[inline]
    pub(crate) fn find_or_insert(
        &self,
        start: usize,
        is: impl Fn(&T) -> bool,
        make: impl Fn() -> T,
    ) -> Option<(usize, &T)> {
        self.find_or_insert_near(start, N, is, make)
    }

    /// [`Table::find_or_insert`], walking at most `probes` slots from
    /// `start`: an entry is always found where it was put, within `probes`
    /// of its start, and a new one that finds those slots full of others
    /// gets `None` however empty the rest of the table is.
    #[inline]
    pub(crate) fn find_or_insert_near(
        &self,
        start: usize,
        probes: usize,
        is: impl Fn(&T) -> bool,
        make: impl Fn() -> T,
    ) -> Option<(usize, &T)> {
        (0..probes.min(N))
            .map(|probe| (start + probe) % N)
            .find_map(|index| {
                let entry = self.slots[index].get_or_init(&make);
                is(entry).then_some((index, entry))
            })
    }

    /// The entry `is` accepts, walking the slots from `start` to the first
    /// empty one (where [`Table::find_or_insert`] would have put it), and
    /// adding nothing; `None` if no slot on the way holds it.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn find(&self, start: usize, is: impl Fn(&T) -> bool) -> Option<(usize, &T)> {
        for probe in 0..N {
            let index = (start + probe) % N;
            let entry = self.slots[index].get()?;
            if is(entry) {
                return Some((index, entry));
            }
        }
        None
    }

    /// The entry in slot `index`, if it is filled.
    pub(crate) fn get(&self, index: usize) -> Option<&T> {
        self.slots.get(index)?.get()
    }

    /// How many slots are filled, wherever they are.
    #[cfg(test)]
    pub(crate) fn filled(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| slot.get().is_some())
            .count()
    }
}

/// FNV-1a over the bytes of `parts`, as if they were one string: how the
/// tables of names find a name's first slot, so that two copies of a name
/// (or one name in pieces) meet.
pub(crate) fn fnv1a(parts: &[&str]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut hash = OFFSET;
    for part in parts {
        for &byte in part.as_bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Table;

    #[test]
    fn entries_fill_in_order_of_first_use_and_are_found_again() {
        let table: Table<&'static str, 3> = Table::new();
        let find = |name: &'static str| {
            table
                .find_or_insert(0, |held| *held == name, || name)
                .map(|(i, _)| i)
        };
        assert_eq!(find("redis"), Some(0));
        assert_eq!(find("legacy"), Some(1));
        assert_eq!(find("redis"), Some(0));
        assert_eq!(find("billing"), Some(2));
        assert_eq!(find("search"), None);
        let names: Vec<_> = (0..3).filter_map(|i| table.get(i).copied()).collect();
        assert_eq!(names, ["redis", "legacy", "billing"]);
    }

    #[test]
    fn a_hashed_walk_wraps_around() {
        let table: Table<u32, 4> = Table::new();
        let add = |x: u32| {
            table
                .find_or_insert(x as usize % 4, |held| *held == x, || x)
                .map(|(i, _)| i)
        };
        assert_eq!(add(3), Some(3));
        assert_eq!(add(7), Some(0));
        assert_eq!(add(11), Some(1));
        assert_eq!(add(7), Some(0));
        assert_eq!(table.filled(), 3);
    }

    #[test]
    fn finding_adds_nothing_and_stops_at_the_first_empty_slot() {
        let table: Table<u32, 4> = Table::new();
        let find = |x: u32| {
            table
                .find(x as usize % 4, |held| *held == x)
                .map(|(i, _)| i)
        };
        assert_eq!(find(3), None);
        assert_eq!(table.filled(), 0);
        table.find_or_insert(3, |held| *held == 3, || 3);
        table.find_or_insert(3, |held| *held == 7, || 7);
        assert_eq!(find(3), Some(3));
        assert_eq!(find(7), Some(0));
        assert_eq!(find(11), None);
        assert_eq!(table.filled(), 2);
    }

    #[test]
    fn a_bounded_walk_stops_after_its_probes() {
        let table: Table<u32, 8> = Table::new();
        let add = |x: u32| {
            table
                .find_or_insert_near(6, 3, |held| *held == x, || x)
                .map(|(i, _)| i)
        };
        assert_eq!(add(1), Some(6));
        assert_eq!(add(2), Some(7));
        assert_eq!(add(3), Some(0));
        // Slots 6, 7 and 0 hold others: refused, though five are empty.
        assert_eq!(add(4), None);
        assert_eq!(add(3), Some(0));
        assert_eq!(table.filled(), 3);
    }

    #[test]
    fn threads_adding_one_new_entry_build_it_once() {
        let table: Table<Box<u64>, 8> = Table::new();
        let built = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let (index, entry) = table
                        .find_or_insert(
                            0,
                            |held| **held == 42,
                            || {
                                built.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                Box::new(42)
                            },
                        )
                        .unwrap();
                    assert_eq!((index, **entry), (0, 42));
                });
            }
        });
        assert_eq!(built.into_inner(), 1);
    }
}
