//! Compile-time behaviour of the attributes: every misuse is a compile error
//! that names the macro and points at the offending tokens, with the item
//! still emitted (so the only errors are the intended ones). The forms that
//! must compile and run are `tests/accepted/`: with no passing case here,
//! trybuild checks its cases without building them.
//!
//! Regenerate the `.stderr` snapshots with
//! `TRYBUILD=overwrite cargo test -q -p selftime-compile-check --test ui`, then
//! read each one.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/timed_handler/*.rs");
    cases.compile_fail("tests/ui/external_call/*.rs");
}
