//! selftime's Prometheus rules as code.
//!
//! - [`shipped`] builds the rules file selftime ships
//!   (`runtime/alerts/selftime.rules.yml` is `shipped(&Settings::default())`
//!   rendered), from one expression tree per rule ([`promql`]);
//! - [`eval`] runs those same trees, PromQL's way, over recorded samples:
//!   the built-in evaluator, for machines without `promtool`;
//! - [`promtool`] hands the same samples and the rendered files to
//!   `promtool test rules` and reads back which alerts fired;
//! - [`exposition`] reads the Prometheus text format, to record samples
//!   from `/metrics` pages.

pub mod duration;
pub mod eval;
pub mod exposition;
pub mod promql;
pub mod promtool;
pub mod rules;
pub mod shipped;
