//! The house's own rules that a build cannot check.

use std::path::Path;

fn manifest(dir: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(dir)
        .join("Cargo.toml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The lines of `header`'s table, up to the next table, less comments.
fn table<'a>(text: &'a str, header: &str) -> Vec<&'a str> {
    let mut lines = text.lines().skip_while(|l| *l != header);
    let first = lines.next().unwrap_or_else(|| panic!("no {header}"));
    std::iter::once(first)
        .chain(lines.take_while(|l| !l.starts_with('[')))
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// The paused-clock package compiles the runtime's source a second time:
/// its features and dependencies must be the runtime's, or the paused-clock
/// tests would test another crate. Only `default` (every feature on) may
/// differ.
#[test]
fn the_paused_clock_package_builds_the_runtime_as_it_is() {
    let runtime = manifest("runtime");
    let paused = manifest("paused-clock");
    for header in [
        "[features]",
        "[dependencies]",
        "[target.'cfg(any(target_os = \"linux\", target_os = \"android\"))'.dependencies]",
    ] {
        let not_default = |l: &&str| !l.starts_with("default = ");
        let ours: Vec<_> = table(&runtime, header)
            .into_iter()
            .filter(not_default)
            .collect();
        let theirs: Vec<_> = table(&paused, header)
            .into_iter()
            .filter(not_default)
            .collect();
        assert_eq!(
            ours, theirs,
            "{header} of paused-clock/Cargo.toml differs from the runtime's"
        );
    }
    let default = table(&paused, "[features]")
        .into_iter()
        .find(|l| l.starts_with("default = "))
        .expect("paused-clock turns its features on by default");
    for line in table(&runtime, "[features]") {
        if let Some((feature, _)) = line.split_once(" = [") {
            if feature != "default" && !feature.starts_with('#') {
                assert!(
                    default.contains(&format!("\"{feature}\"")),
                    "{feature} is not on in {default}"
                );
            }
        }
    }
}
