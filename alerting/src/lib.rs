//! selftime's Prometheus rules, read from the YAML users deploy.
//!
//! - [`rules`] reads a rules file (`runtime/alerts/selftime.rules.yml`, a
//!   thresholds file beside it), its expressions parsed by `promql-parser`;
//! - [`shipped`] is that file as the repository holds it, and the names in
//!   it that are a public contract;
//! - [`settings`] reads the windows, `for:` durations and default
//!   thresholds from the file and writes others in where they stand: the
//!   rules generator (`cargo run --example rules`);
//! - [`eval`] runs parsed rules files over recorded samples, as
//!   Prometheus 2.42 does: the built-in evaluator, for machines without
//!   `promtool` (its documentation lists the PromQL it runs and the
//!   engine's semantics it keeps);
//! - [`promtool`] hands the same samples and files to
//!   `promtool test rules` and reads back what its engine found;
//! - [`exposition`] reads the Prometheus text format, to record samples
//!   from `/metrics` pages.

pub mod duration;
pub mod eval;
pub mod exposition;
pub mod promtool;
pub mod rules;
pub mod settings;
pub mod shipped;
mod yaml;
