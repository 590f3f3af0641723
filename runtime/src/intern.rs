//! Bounded interning: names that arrive as run-time strings (a route
//! template, a URL's host) turned into the `&'static str` that the ledger and
//! the metrics' labels need.
//!
//! A table holds at most [`CAPACITY`] names of at most [`MAX_LEN`] bytes
//! each; a name that does not fit gets `None` and the caller counts it under
//! a catch-all name. The leak is therefore bounded: at most
//! `CAPACITY * MAX_LEN` bytes a table for the life of the process, which is
//! what makes interning safe to run on every request.
//!
//! The table is an append-only [`Table`], hashed: once the names in use are
//! in it, a lookup is a hash, a load and a comparison, and concurrent
//! requests share read-only cache lines.

use crate::table::{Table, fnv1a};

/// How many names one table holds.
pub(crate) const CAPACITY: usize = 256;

/// The longest name a table accepts, in bytes.
pub(crate) const MAX_LEN: usize = 200;

#[derive(Debug)]
struct Entry<V> {
    hash: u64,
    name: &'static str,
    /// What the table's owner keeps beside the name, made once, with it.
    value: V,
}

/// A table of leaked names, found by hash, each with a value of type `V`
/// made when the name is interned (a dependency's number for a host).
pub(crate) struct Interner<V = ()> {
    names: Table<Entry<V>, CAPACITY>,
}

impl Interner {
    /// The interned concatenation of `parts`: see [`Interner::intern_with`].
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn intern(&self, parts: &[&str]) -> Option<&'static str> {
        self.intern_with(parts, |_| ()).map(|(name, ())| name)
    }
}

impl Interner {
    /// The interned concatenation of `parts` if it is already in the table;
    /// never adds it.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn get(&self, parts: &[&str]) -> Option<&'static str> {
        if parts.iter().map(|p| p.len()).sum::<usize>() > MAX_LEN {
            return None;
        }
        let hash = fnv1a(parts);
        self.names
            .find(slot(hash), |entry| {
                entry.hash == hash && equals(entry.name, parts)
            })
            .map(|(_, entry)| entry.name)
    }
}

impl<V: Copy> Interner<V> {
    pub(crate) const fn new() -> Self {
        Self {
            names: Table::new(),
        }
    }

    /// The interned concatenation of `parts` and its value, which `value`
    /// makes from the name when it is first interned; `None` when the name
    /// is longer than [`MAX_LEN`] or the table is full.
    ///
    /// Taking the name in parts lets callers intern `GET /users/{id}` or
    /// `host:8080` without building the string first: a name already in the
    /// table costs a hash and a comparison, never an allocation. Two threads
    /// interning the same new name meet at the same slot, and only one of
    /// them leaks it.
    pub(crate) fn intern_with(
        &self,
        parts: &[&str],
        value: impl Fn(&'static str) -> V,
    ) -> Option<(&'static str, V)> {
        let len = parts.iter().map(|p| p.len()).sum::<usize>();
        if len > MAX_LEN {
            return None;
        }
        let hash = fnv1a(parts);
        self.names
            .find_or_insert(
                slot(hash),
                |entry| entry.hash == hash && equals(entry.name, parts),
                || {
                    let name = leak(parts, len);
                    Entry {
                        hash,
                        name,
                        value: value(name),
                    }
                },
            )
            .map(|(_, entry)| (entry.name, entry.value))
    }
}

/// The slot a name's walk starts at.
fn slot(hash: u64) -> usize {
    // Cannot truncate anything that matters: only the low bits pick the slot.
    hash as usize % CAPACITY
}

/// Whether `name` is the concatenation of `parts`.
fn equals(name: &str, parts: &[&str]) -> bool {
    let mut rest = name;
    for part in parts {
        match rest.strip_prefix(part) {
            Some(tail) => rest = tail,
            None => return false,
        }
    }
    rest.is_empty()
}

fn leak(parts: &[&str], len: usize) -> &'static str {
    let mut name = String::with_capacity(len);
    for part in parts {
        name.push_str(part);
    }
    Box::leak(name.into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_same_pointer_however_split() {
        let table: Interner = Interner::new();
        let a = table.intern(&["GET", " ", "/users/{id}"]).unwrap();
        let b = table.intern(&["GET /users/{id}"]).unwrap();
        let c = table.intern(&["GET /u", "sers/{id}"]).unwrap();
        assert_eq!(a, "GET /users/{id}");
        assert!(std::ptr::eq(a, b) && std::ptr::eq(b, c));
        let other = table.intern(&["POST /users/{id}"]).unwrap();
        assert_eq!(other, "POST /users/{id}");
        assert!(!std::ptr::eq(a, other));
    }

    #[test]
    fn bounded_in_count_and_length() {
        let table: Interner = Interner::new();
        let names: Vec<String> = (0..CAPACITY).map(|i| format!("host-{i}")).collect();
        for name in &names {
            assert_eq!(table.intern(&[name]), Some(name.as_str()));
        }
        // Full: a new name is refused, known names still resolve.
        assert_eq!(table.intern(&["one-too-many"]), None);
        for name in &names {
            assert_eq!(table.intern(&[name]), Some(name.as_str()));
        }
        let long = "x".repeat(MAX_LEN + 1);
        assert_eq!(Interner::<()>::new().intern(&[&long]), None);
        let longest = "x".repeat(MAX_LEN);
        assert_eq!(
            Interner::<()>::new().intern(&[&longest]),
            Some(longest.as_str())
        );
    }

    #[test]
    fn looking_up_adds_nothing() {
        let table: Interner = Interner::new();
        assert_eq!(table.get(&["/shop.Cart/Checkout"]), None);
        assert_eq!(table.names.filled(), 0);
        let name = table.intern(&["/shop.Cart/", "Checkout"]).unwrap();
        let found = table.get(&["/shop.Cart/Checkout"]).unwrap();
        assert!(std::ptr::eq(name, found));
        assert_eq!(table.get(&["/shop.Cart/Track"]), None);
        assert_eq!(table.get(&[&"x".repeat(MAX_LEN + 1)]), None);
        assert_eq!(table.names.filled(), 1);
    }

    #[test]
    fn a_value_is_made_once_with_its_name_and_kept_beside_it() {
        let table: Interner<usize> = Interner::new();
        let made = std::sync::atomic::AtomicUsize::new(0);
        let value = |name: &'static str| {
            made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            name.len()
        };
        assert_eq!(
            table.intern_with(&["billing", ":8080"], value),
            Some(("billing:8080", 12))
        );
        assert_eq!(
            table.intern_with(&["billing:8080"], value),
            Some(("billing:8080", 12))
        );
        assert_eq!(made.into_inner(), 1);
    }

    #[test]
    fn concurrent_interning_of_one_new_name_leaks_it_once() {
        let table: Interner = Interner::new();
        let found: Vec<&'static str> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| table.intern(&["billing", ".internal"]).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(found.iter().all(|name| std::ptr::eq(*name, found[0])));
        assert_eq!(table.names.filled(), 1);
    }
}
