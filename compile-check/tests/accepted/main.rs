//! The forms the attributes accept compile without a warning and run:
//! every argument of both attributes (`arguments`), and every return shape
//! they still take (`shapes`). The misuses are the UI tests (`tests/ui.rs`);
//! keeping these out of trybuild lets it only check its cases, not build them.

#![deny(warnings)]

/// A facade crate's re-export, the reason `crate = "…"` exists.
mod facade {
    pub(crate) use ::selftime::*;
}

#[rustfmt::skip]
mod arguments;
#[rustfmt::skip]
mod shapes;
