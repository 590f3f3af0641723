//! Expansion snapshots on stable, and the macros' robustness.
//!
//! Each `tests/expand/<case>.rs` holds one function with `#[timed_handler]`
//! or `#[external_call]` written on it. The test runs the macros' own logic
//! (included below from `macros/src/imp`, so no proc-macro server and no
//! nightly are needed) on that function, pretty-prints the result with
//! `prettyplease`, and compares it with `tests/expand/<case>.expanded.rs`.
//!
//! After a deliberate change to the expansion, regenerate every snapshot
//! with
//!
//! ```text
//! SELFTIME_BLESS=1 cargo test -q --test expand
//! ```
//!
//! and read the diff before committing it.

// The macros' package lints this code as its own; here it is only run, and
// not every item is reached from a test.
#[allow(dead_code, unreachable_pub, clippy::pedantic)]
#[path = "../macros/src/imp/mod.rs"]
mod imp;

use proc_macro2::TokenStream;
use quote::ToTokens as _;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use syn::visit::Visit;

const BLESS: &str = "SELFTIME_BLESS";

/// One input file: the attribute's name and arguments, and the function
/// without that attribute (as the compiler hands it to the macro).
struct Case {
    name: String,
    input: PathBuf,
    expanded: PathBuf,
    attr: String,
    args: TokenStream,
    item: TokenStream,
}

fn cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expand");
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
        .position(|a| attr_name(a).is_some())
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
        attr: attr_name(&attr).expect("found above").to_owned(),
        args,
        item: func.into_token_stream(),
    }
}

/// `timed_handler` or `external_call`, however the attribute's path is
/// written (`#[timed_handler]`, `#[selftime::timed_handler]`).
fn attr_name(attr: &syn::Attribute) -> Option<&'static str> {
    let last = attr.path().segments.last()?;
    ["timed_handler", "external_call"]
        .into_iter()
        .find(|name| last.ident == name)
}

fn expand(attr: &str, args: TokenStream, item: TokenStream) -> TokenStream {
    match attr {
        "timed_handler" => imp::timed_handler(args, item),
        "external_call" => imp::external_call(args, item),
        other => unreachable!("attr_name returned {other}"),
    }
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
        let output = expand(&case.attr, case.args.clone(), case.item.clone());
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expand");
    for entry in std::fs::read_dir(&dir).expect("tests/expand") {
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
         `{BLESS}=1 cargo test -q --test expand` and review them."
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
        let output: syn::File = syn::parse2(expand(&case.attr, case.args.clone(), case.item))
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

/// Malformed and odd input never makes the macros panic; a rejected input
/// comes back as the item exactly as written followed by compile errors
/// (so there are no follow-on errors about a vanished function), and the
/// result is always syntactically valid Rust.
#[test]
fn no_input_makes_the_macros_panic() {
    let mut tried = 0;
    let mut rejected = 0;
    for (attr, args, item) in inputs() {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            expand(attr, args.clone(), item.clone())
        }));
        let Ok(output) = outcome else {
            panic!("#[{attr}({args})] on `{item}` panicked");
        };
        tried += 1;
        let text = output.to_string();
        if text.contains("compile_error") {
            rejected += 1;
            assert!(
                text.starts_with(&item.to_string()),
                "#[{attr}({args})] on `{item}`: the rejected item was not emitted as written: {text}"
            );
        }
        // The compiler hands an attribute macro only items; for those the
        // output must be items too.
        if syn::parse2::<syn::Item>(item.clone()).is_ok() {
            if let Err(e) = syn::parse2::<syn::File>(output) {
                panic!("#[{attr}({args})] on `{item}`: the output does not parse ({e}): {text}");
            }
        }
    }
    // The mutations must reach both paths, or the test proves little.
    assert!(
        rejected > 100 && tried - rejected > 10,
        "{tried} inputs, {rejected} rejected"
    );
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
    let handler = expand("timed_handler", args, item.clone()).to_string();
    assert!(!handler.contains("compile_error"), "{handler}");
    assert!(
        handler.contains("Handler :: new (\"from a macro\""),
        "{handler}"
    );

    let external = expand("external_call", invisible("\"queue\""), item).to_string();
    assert!(!external.contains("compile_error"), "{external}");
    assert!(external.contains("external (\"queue\""), "{external}");
}

/// Argument lists, valid and not, written by hand.
const ODD_ARGS: &[&str] = &[
    "",
    "name = \"checkout\", level = \"debug\", span = \"current\", crate = \"::selftime\"",
    "\"redis\", crate = \"crate::facade\"",
    "name = \"\", level = \"\", span = \"\", crate = \"\"",
    "crate = \"\", \"\"",
    "crate = \"::\"",
    "crate = \"crate\"",
    "crate = \"a::<b>\"",
    "crate = \"1\"",
    "crate = \"/* */\"",
    "crate = \"selftime // x\"",
    "crate = \"é\"",
    "level = \"\\u{0130}nfo\"",
    "name = \"a\" \"b\"",
    "name = \"a\"x",
    "\"redis\"suffix",
    "b\"redis\", c\"redis\", 'r', 1.5, true, r#\"raw\"#",
    "r#type = \"::selftime\"",
    "r#name = \"x\"",
    "_ = \"x\"",
    "_",
    "'a",
    ",",
    ",,",
    "name = \"a\",,",
    "= \"x\"",
    "name == \"x\"",
    "name => \"x\"",
    "name = = \"x\"",
    "name = |a, b| a",
    "name = (\"a\", \"b\")",
    "name = [\"a\"]",
    "name = { \"a\" }",
    "crate = a::<B, C>",
    "level = tracing::Level::DEBUG",
    "span",
    "crate",
    "level(\"debug\")",
    "name = concat!(\"a\", \"b\")",
    "#[doc] name = \"x\"",
    "async move {}",
    "::",
    "; ; ;",
];

/// Items, functions and not, and token soup no compiler would hand a macro.
const ODD_ITEMS: &[&str] = &[
    "fn f() {}",
    "async fn f() -> u32 { 1 }",
    "pub fn r#type(&self) -> Result<(), E> { Ok(()) }",
    "fn f() -> impl Future<Output = ()> { async {} }",
    "fn f() -> Pin<Box<dyn Future<Output = u8> + Send>> { Box::pin(async move { 1 }) }",
    "fn f() -> impl Future { Box::pin(async move {}) }",
    "fn f() -> Box<dyn Future<Output = ()>> { Box::pin(async move {}, extra) }",
    "fn f() -> impl Sized { Box::pin() }",
    "fn f() -> _ { 1 }",
    "fn f() -> impl Fn() -> impl Future { || async {} }",
    "const fn f() {}",
    "const async unsafe extern \"C\" fn f() {}",
    "fn f();",
    "fn f(&self) -> u8;",
    "struct S;",
    "struct S { a: u8 }",
    "enum E { A }",
    "union U { a: u8 }",
    "const C: u8 = 1;",
    "static S: u8 = 1;",
    "mod m {}",
    "mod m;",
    "trait T { fn f(); }",
    "impl T for S {}",
    "type A = u8;",
    "use a::b;",
    "extern crate a;",
    "extern \"C\" { fn f(); }",
    "m!();",
    "macro_rules! m { () => {} }",
    "",
    "fn",
    "1 + 1",
];

/// Argument lists and items, valid and not, for both attributes: a set of
/// hand-written oddities, and every truncation, deletion and doubling of a
/// token in some valid argument lists.
fn inputs() -> Vec<(&'static str, TokenStream, TokenStream)> {
    let mut inputs = Vec::new();
    for attr in ["timed_handler", "external_call"] {
        for a in ODD_ARGS {
            for i in ODD_ITEMS {
                inputs.push((attr, tokens(a), tokens(i)));
            }
        }
        for valid in [
            "name = \"checkout\", level = \"debug\", span = \"current\", crate = \"::selftime\",",
            "\"redis\", crate = \"crate::facade\",",
        ] {
            let trees: Vec<_> = tokens(valid).into_iter().collect();
            for k in 0..=trees.len() {
                let truncated = trees[..k].iter().cloned().collect();
                let without = trees[..k].iter().chain(trees.get(k + 1..).unwrap_or(&[]));
                let doubled = trees[..k]
                    .iter()
                    .chain(trees.get(k.saturating_sub(1)..).unwrap_or(&[]));
                for args in [
                    truncated,
                    without.cloned().collect(),
                    doubled.cloned().collect(),
                ] {
                    inputs.push((attr, args, tokens("async fn f() -> u8 { 1 }")));
                }
            }
        }
    }
    inputs
}

fn tokens(source: &str) -> TokenStream {
    source
        .parse()
        .unwrap_or_else(|e| panic!("`{source}` does not lex: {e}"))
}
