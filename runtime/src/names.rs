//! Dependency names, numbered process-wide: each distinct name (by content)
//! gets a small number, its [`DepId`], on first use, in an append-only
//! [`Table`] found by the name's hash. A ledger then keeps two-byte ids
//! instead of names. Whoever makes calls to a name looks its id up once and
//! keeps it: an `#[external_call]` site at its first call, a tower client
//! layer when it wraps its service, and the `reqwest` middleware beside
//! each host it interns; the functions (`external`, `external_sync`) and a
//! `reqwest` middleware given a name look the name up on every call.

use crate::table::{Table, fnv1a};

/// How many distinct dependency names a process numbers; calls to further
/// names count as [`OTHER_DEPENDENCY`](crate::OTHER_DEPENDENCY).
pub(crate) const CAPACITY: usize = 1024;

/// The name every dependency past the 1,024 names a process numbers (and
/// past a ledger's 16 named slots) is counted under, and a dependency
/// named `other` too.
pub const OTHER_DEPENDENCY: &str = "other";

/// The `dependency` label (`selftime.dependency` attribute) of the external
/// series that holds the union of all of a handler's dependencies: its
/// `external.duration_us`, beside one series per dependency.
pub const ALL_DEPENDENCIES: &str = "all";

static NAMES: Table<&'static str, CAPACITY> = Table::new();

/// A dependency, by number: a name's index in the table plus one (so that 0
/// can mean "none" in a ledger's slots), or [`DepId::OTHER`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct DepId(u16);

impl std::fmt::Debug for DepId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DepId").field(&self.name()).finish()
    }
}

impl DepId {
    /// Every dependency past the table's capacity.
    pub(crate) const OTHER: Self = Self(u16::MAX);

    /// The id of `name`, numbering it on its first use. The name
    /// [`OTHER_DEPENDENCY`] is [`DepId::OTHER`] itself, never a number of
    /// its own: calls named `other` and calls that overflow are one entry.
    pub(crate) fn of(name: &'static str) -> Self {
        if name == OTHER_DEPENDENCY {
            return Self::OTHER;
        }
        let start = fnv1a(&[name]) as usize % CAPACITY;
        NAMES
            .find_or_insert(
                start,
                |&held| std::ptr::eq(held, name) || held == name,
                || name,
            )
            .and_then(|(index, _)| u16::try_from(index + 1).ok())
            .map_or(Self::OTHER, Self)
    }

    /// The name this id numbers.
    pub(crate) fn name(self) -> &'static str {
        usize::from(self.0)
            .checked_sub(1)
            .and_then(|index| NAMES.get(index))
            .copied()
            .unwrap_or(OTHER_DEPENDENCY)
    }

    /// The id as a non-zero number.
    pub(crate) fn raw(self) -> u16 {
        self.0
    }

    /// The id a non-zero number stands for; `None` for 0.
    pub(crate) fn from_raw(raw: u16) -> Option<Self> {
        (raw != 0).then_some(Self(raw))
    }
}

impl From<&'static str> for DepId {
    fn from(name: &'static str) -> Self {
        Self::of(name)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn one_id_per_name_whatever_its_address() {
        let owned: &'static str = String::from("names-test-redis").leak();
        let a = DepId::of("names-test-redis");
        assert_eq!(DepId::of(owned), a);
        assert_ne!(DepId::of("names-test-legacy"), a);
        assert_eq!(a.name(), "names-test-redis");
        assert_eq!(DepId::OTHER.name(), OTHER_DEPENDENCY);
        assert_eq!(DepId::from_raw(a.raw()), Some(a));
        assert_eq!(DepId::from_raw(0), None);
    }

    #[test]
    fn the_name_other_is_the_overflow_id() {
        let owned: &'static str = String::from(OTHER_DEPENDENCY).leak();
        assert_eq!(DepId::of(OTHER_DEPENDENCY), DepId::OTHER);
        assert_eq!(DepId::of(owned), DepId::OTHER);
    }
}
