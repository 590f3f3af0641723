//! Expansion snapshots on stable: each `cases/<case>.rs` holds one function
//! with `#[timed_handler]` or `#[external_call]` written on it; the macro's
//! logic runs on that function, `prettyplease` prints the result, and it is
//! compared with `cases/<case>.expanded.rs` (regenerate with
//! `SELFTIME_BLESS=1`, see the binary's docs).

use proc_macro2::TokenStream;
use quote::ToTokens as _;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use syn::visit::Visit;

use super::{Which, tokens};

const BLESS: &str = "SELFTIME_BLESS";
const CASES: &str = "tests/expansion/cases";

/// One input file: the attribute's name and arguments, and the function
/// without that attribute (as the compiler hands it to the macro).
struct Case {
    name: String,
    input: PathBuf,
    expanded: PathBuf,
    which: Which,
    args: TokenStream,
    item: TokenStream,
}

fn cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(CASES);
    let mut cases: Vec<Case> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| {
            let name = path.to_string_lossy();
            name.ends_with(".rs") && !name.ends_with(".expanded.rs")
        })
        .map(|input| read_case(&input))
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        !cases.is_empty(),
        "no cases found in {}: the snapshot test would prove nothing",
        dir.display()
    );
    cases
}

fn read_case(input: &Path) -> Case {
    let source = std::fs::read_to_string(input)
        .unwrap_or_else(|e| panic!("reading {}: {e}", input.display()));
    let file = syn::parse_file(&source)
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", input.display()));
    let mut items = file.items.into_iter();
    let (Some(syn::Item::Fn(mut func)), None) = (items.next(), items.next()) else {
        panic!("{} must hold exactly one function", input.display());
    };
    let position = func
        .attrs
        .iter()
        .position(|a| which(a).is_some())
        .unwrap_or_else(|| {
            panic!(
                "{} has no #[timed_handler] or #[external_call]",
                input.display()
            )
        });
    let attr = func.attrs.remove(position);
    let args = match &attr.meta {
        syn::Meta::Path(_) => TokenStream::new(),
        syn::Meta::List(list) => list.tokens.clone(),
        syn::Meta::NameValue(_) => panic!("{}: the attribute takes (…)", input.display()),
    };
    let name = input
        .file_stem()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    Case {
        expanded: input.with_file_name(format!("{name}.expanded.rs")),
        input: input.to_owned(),
        name,
        which: which(&attr).expect("found above"),
        args,
        item: func.into_token_stream(),
    }
}

/// The attribute `attr` is, however its path is written
/// (`#[timed_handler]`, `#[selftime::timed_handler]`).
fn which(attr: &syn::Attribute) -> Option<Which> {
    Which::named(&attr.path().segments.last()?.ident.to_string())
}

fn pretty(case: &Case, tokens: TokenStream) -> String {
    let file: syn::File = syn::parse2(tokens)
        .unwrap_or_else(|e| panic!("{}: the expansion does not parse: {e}", case.name));
    prettyplease::unparse(&file)
}

#[test]
fn expansions_match_their_snapshots() {
    let bless = std::env::var_os(BLESS).is_some();
    let mut failures = String::new();
    let cases = cases();
    for case in &cases {
        let output = case.which.expand(case.args.clone(), case.item.clone());
        let actual = pretty(case, output);
        if bless {
            std::fs::write(&case.expanded, &actual)
                .unwrap_or_else(|e| panic!("writing {}: {e}", case.expanded.display()));
            continue;
        }
        match std::fs::read_to_string(&case.expanded) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => {
                let _ = writeln!(
                    failures,
                    "\n{} differs from the expansion of {} (- snapshot, + now):\n{}",
                    case.expanded.display(),
                    case.input.display(),
                    diff(&expected, &actual),
                );
            }
            Err(e) => {
                let _ = writeln!(
                    failures,
                    "\n{}: {e}; the expansion of {} is:\n{actual}",
                    case.expanded.display(),
                    case.input.display(),
                );
            }
        }
    }
    // A snapshot whose input was renamed or removed would rot unnoticed.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(CASES);
    for entry in std::fs::read_dir(&dir).expect(CASES) {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().expect("a file name").to_string_lossy();
        if let Some(stem) = name.strip_suffix(".expanded.rs") {
            if !cases.iter().any(|c| c.name == stem) {
                let _ = writeln!(
                    failures,
                    "\n{} has no input {stem}.rs: delete it",
                    path.display()
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{failures}\nIf the change is intended, regenerate the snapshots with \
         `{BLESS}=1 cargo test -q --test expansion` and review them."
    );
}

/// A line diff (longest common subsequence), each changed line with up to
/// two unchanged lines of context around it.
fn diff(expected: &str, actual: &str) -> String {
    let old: Vec<&str> = expected.lines().collect();
    let new: Vec<&str> = actual.lines().collect();
    // lcs[i][j]: the longest common subsequence of old[i..] and new[j..].
    let mut lcs = vec![vec![0_usize; new.len() + 1]; old.len() + 1];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            lcs[i][j] = if old[i] == new[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut lines: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            lines.push((' ', old[i]));
            i += 1;
            j += 1;
        } else if i < old.len() && (j == new.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            lines.push(('-', old[i]));
            i += 1;
        } else {
            lines.push(('+', new[j]));
            j += 1;
        }
    }
    let near_change = |k: usize| {
        let lo = k.saturating_sub(2);
        let hi = (k + 2).min(lines.len() - 1);
        lines[lo..=hi].iter().any(|(sign, _)| *sign != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (sign, line)) in lines.iter().enumerate() {
        if near_change(k) {
            if skipped {
                out.push_str("  …\n");
                skipped = false;
            }
            let _ = writeln!(out, "{sign} {line}");
        } else {
            skipped = true;
        }
    }
    out
}

/// Every path the expansion adds that is written from the root (`::x::…`)
/// starts at `::core` or at the crate path in use, and every path into
/// `__private` starts at the crate path: nothing a user's own names could
/// shadow, and nothing that needs `std`.
#[test]
fn expansions_reach_the_runtime_only_through_the_crate_path() {
    let mut checked = 0;
    for case in cases() {
        let input: syn::File = syn::parse2(case.item.clone()).expect("the input parses");
        let output: syn::File = syn::parse2(case.which.expand(case.args.clone(), case.item))
            .expect("the expansion parses");
        let krate = crate_path(&case.args);
        let mut added = escapes(&krate, &output);
        // What the user wrote is theirs; only what the macro added counts.
        for written in escapes(&krate, &input) {
            if let Some(k) = added.iter().position(|p| *p == written) {
                added.remove(k);
            }
        }
        assert!(
            added.is_empty(),
            "{}: the expansion reaches outside `{}` and `::core`: {added:?}",
            case.name,
            krate.to_token_stream(),
        );
        assert!(
            prettyplease::unparse(&output).contains("__private"),
            "{}: the expansion does not call the runtime at all",
            case.name
        );
        checked += 1;
    }
    assert!(checked > 0);
}

/// The check above catches what it is meant to.
#[test]
fn the_path_check_catches_paths_outside_the_crate_and_core() {
    let krate: syn::Path = syn::parse_quote!(::selftime);
    let file: syn::File = syn::parse_quote! {
        fn f() {
            ::selftime::__private::call("a");
            ::core::unreachable!();
            use ::selftime::__private::{IsResult as _};
            local::helper();
            ::std::thread::sleep(d);
            selftime::__private::call("b");
            ::other::__private::call("c");
            use ::std::sync::{Arc};
        }
    };
    let found: Vec<String> = escapes(&krate, &file)
        .iter()
        .map(|p| p.replace(' ', ""))
        .collect();
    assert_eq!(
        found,
        [
            "::std::thread::sleep",
            "selftime::__private::call",
            "::other::__private::call",
            "::std::sync",
        ]
    );
    let facade: syn::Path = syn::parse_quote!(crate::facade);
    let file: syn::File = syn::parse_quote! {
        fn f() { crate::facade::__private::call("a"); ::selftime::__private::call("b"); }
    };
    assert_eq!(
        escapes(&facade, &file)
            .iter()
            .map(|p| p.replace(' ', ""))
            .collect::<Vec<_>>(),
        ["::selftime::__private::call"]
    );
}

/// The paths in `file` that reach past `krate` and `::core`, as written.
fn escapes(krate: &syn::Path, file: &syn::File) -> Vec<String> {
    struct Paths<'a> {
        krate: &'a syn::Path,
        found: Vec<String>,
    }
    impl Visit<'_> for Paths<'_> {
        fn visit_path(&mut self, path: &syn::Path) {
            let from_krate = path.leading_colon == self.krate.leading_colon
                && path.segments.len() > self.krate.segments.len()
                && path
                    .segments
                    .iter()
                    .zip(&self.krate.segments)
                    .all(|(a, b)| a.ident == b.ident);
            let private = path.segments.iter().any(|s| s.ident == "__private");
            let absolute = path.leading_colon.is_some();
            let from_core = absolute && path.segments[0].ident == "core";
            if (private && !from_krate) || (absolute && !from_core && !from_krate) {
                self.found.push(path.to_token_stream().to_string());
            }
            syn::visit::visit_path(self, path);
        }

        fn visit_item_use(&mut self, item: &syn::ItemUse) {
            // `use ::a::b::{c, d}` is a tree, not a path: check its stem.
            let mut stem = syn::Path {
                leading_colon: item.leading_colon,
                segments: syn::punctuated::Punctuated::new(),
            };
            let mut tree = &item.tree;
            while let syn::UseTree::Path(p) = tree {
                stem.segments.push(p.ident.clone().into());
                tree = &p.tree;
            }
            if !stem.segments.is_empty() {
                self.visit_path(&stem);
            }
        }
    }
    let mut paths = Paths {
        krate,
        found: Vec::new(),
    };
    paths.visit_file(file);
    paths.found
}

/// The snapshot diff shows what changed, with context, and elides the rest.
#[test]
fn the_diff_shows_changed_lines_with_context() {
    let old = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n";
    let new = "a\nb\nc\nD\ne\nf\ng\nh\ni\nj\nk\n";
    assert_eq!(
        diff(old, new),
        "  …\n  b\n  c\n- d\n+ D\n  e\n  f\n  …\n  i\n  j\n+ k\n"
    );
}

/// The `crate = "…"` a case gives, or `::selftime`.
fn crate_path(args: &TokenStream) -> syn::Path {
    let mut pieces = vec![TokenStream::new()];
    for tree in args.clone() {
        match &tree {
            proc_macro2::TokenTree::Punct(p) if p.as_char() == ',' => {
                pieces.push(TokenStream::new());
            }
            _ => pieces.last_mut().expect("never empty").extend([tree]),
        }
    }
    pieces
        .into_iter()
        .filter_map(|piece| syn::parse2::<syn::MetaNameValue>(piece).ok())
        .find(|nv| nv.path.is_ident("crate"))
        .map_or_else(
            || syn::parse_quote!(::selftime),
            |nv| match nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => s.parse().expect("a valid crate path"),
                other => panic!("crate = {}", other.to_token_stream()),
            },
        )
}

/// A `macro_rules!` fragment (`#[timed_handler(name = $name)]` with
/// `$name:expr`) reaches the attribute wrapped in an invisible group; the
/// string inside is taken as if written directly.
#[test]
fn strings_from_macro_rules_fragments_are_accepted() {
    let invisible = |text: &str| {
        let group = proc_macro2::Group::new(proc_macro2::Delimiter::None, tokens(text));
        TokenStream::from(proc_macro2::TokenTree::Group(group))
    };
    let item = tokens("async fn f() {}");
    let mut args = tokens("name =");
    args.extend(invisible("\"from a macro\""));
    let handler = Which::TimedHandler.expand(args, item.clone()).to_string();
    assert!(!handler.contains("compile_error"), "{handler}");
    assert!(
        handler.contains("Spec :: new (\"from a macro\""),
        "{handler}"
    );

    let external = Which::ExternalCall
        .expand(invisible("\"queue\""), item)
        .to_string();
    assert!(!external.contains("compile_error"), "{external}");
    assert!(
        external.contains("module_path ! () , \"queue\")"),
        "{external}"
    );
}
