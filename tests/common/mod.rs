//! What more than one test binary needs, written once: a layer that keeps
//! the fields of closed spans, a layer that does nothing, and a counting
//! global allocator (installed only by the binaries that count).
//!
//! Each binary includes this module and uses part of it.

#![allow(dead_code, unreachable_pub, unused_imports)]

pub mod capture;
pub mod counting;
pub mod noop;

pub use capture::{Capture, Closed};
