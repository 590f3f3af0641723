//! The incident, replayed: who gets paged.
//!
//! ```text
//! cargo run --release --example incident            # about 2 minutes
//! cargo run --release --example incident -- --quick # about 20 seconds
//! ```
//!
//! Four services in one process, seven incidents, and whom each one pages,
//! before selftime and with it. The demo's code is the workspace's `demo/`
//! package (the `incident` library), which `tests/demo.rs` replays too.

fn main() -> std::process::ExitCode {
    incident::main()
}
