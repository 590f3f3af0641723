//! The macros' logic, run on `proc_macro2` tokens: no proc-macro server and
//! no nightly needed. `macros/src/imp` is included below as a module, and
//! both attributes are called on token streams directly.
//!
//! These tests belong to the suite rather than to the macros package: a
//! proc-macro package's dev-dependencies are built for the host, a second
//! time beside the suite's.
//!
//! - `snapshots`: each case under `tests/expansion/cases/` expands to its
//!   checked-in `*.expanded.rs`, and reaches the runtime only through the
//!   crate path and `::core`;
//! - `fields`: the span fields `span = "current"` asks of an `#[instrument]`
//!   are `selftime::FIELDS`, of which the macros keep a copy;
//! - `robustness`: whatever the tokens, the macros never panic, and answer
//!   with the function or with the item as written followed by compile
//!   errors.
//!
//! After a deliberate change to the expansion, regenerate every snapshot
//! with
//!
//! ```text
//! SELFTIME_BLESS=1 cargo test -q --test expansion
//! ```
//!
//! and read the diff before committing it.

// The macros' package lints this code as its own; here it is only run, and
// not every item is reached from a test.
#[allow(dead_code, unreachable_pub, clippy::pedantic)]
#[path = "../../macros/src/imp/mod.rs"]
mod imp;

mod fields;
mod robustness;
mod snapshots;

use proc_macro2::TokenStream;

/// One of the two attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    TimedHandler,
    ExternalCall,
}

impl Which {
    const BOTH: [Self; 2] = [Self::TimedHandler, Self::ExternalCall];

    /// The attribute whose name `name` is (`timed_handler`, `external_call`).
    fn named(name: &str) -> Option<Self> {
        match name {
            "timed_handler" => Some(Self::TimedHandler),
            "external_call" => Some(Self::ExternalCall),
            _ => None,
        }
    }

    /// `#[attribute(args)] item`, as the compiler would expand it.
    fn expand(self, args: TokenStream, item: TokenStream) -> TokenStream {
        match self {
            Self::TimedHandler => imp::timed_handler(args, item),
            Self::ExternalCall => imp::external_call(args, item),
        }
    }
}

fn tokens(source: &str) -> TokenStream {
    source
        .parse()
        .unwrap_or_else(|e| panic!("`{source}` does not lex: {e}"))
}
