//! Whatever they are given, the macros never panic, and always answer
//! with code or with a compile error.
//!
//! Inputs come from three sources:
//!
//! - a corpus of real-world function items (handlers, axum extractors,
//!   `async_trait` output, `impl Future`, generics, raw identifiers, trait
//!   declarations, things that are not functions at all, token soup no
//!   compiler would hand a macro) and of attribute arguments, good and bad,
//!   each paired with each; and every truncation, deletion and doubling of
//!   a token in some valid argument lists;
//! - the same, mutated: tokens dropped, duplicated, swapped, punctuation and
//!   delimiters exchanged, random identifiers and literals put in;
//! - token soups: random token trees, brackets nested at random.
//!
//! For each input, both macros are run under `catch_unwind`, and the output
//! must be one of:
//!
//! - an expansion: it parses as a `syn::File`, and when the input was a
//!   function, as that function with the same signature;
//! - the input item unchanged, followed by `::core::compile_error!` items
//!   only (the item is kept so that one mistake does not bury the user in
//!   follow-on errors).
//!
//! `PROPTEST_CASES` scales the number of cases of each property.

use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::str::FromStr as _;

use super::{Which, tokens};

// --- the corpus ------------------------------------------------------------------------

/// Items as users write them, or as other attributes hand them on, and
/// odd ones.
const ITEMS: &[&str] = &[
    "async fn checkout(cart: Cart) -> Result<Receipt, Error> { let r = charge(&cart).await?; Ok(r) }",
    "pub async fn get_user(State(db): State<Db>, Path(id): Path<u32>) -> impl IntoResponse { db.get(id).await }",
    "fn render(items: &[&str]) -> String { items.join(\",\") }",
    "async fn handle<'a, T: Send + 'a>(&'a self, req: Request<T>) -> Response where T: Debug { self.inner(req).await }",
    "fn call(&self) -> impl Future<Output = u32> + Send + '_ { async move { 1 } }",
    "fn boxed<'life0, 'async_trait>(&'life0 self) -> Pin<Box<dyn Future<Output = u32> + Send + 'async_trait>> \
     where 'life0: 'async_trait, Self: 'async_trait { Box::pin(async move { let __ret: u32 = { 1 }; __ret }) }",
    "fn recurse(n: u32) -> BoxFuture<'static, u32> { let m = n; Box::pin(async move { m }) }",
    "const fn constant() -> u32 { 1 }",
    "unsafe extern \"C\" fn ffi(x: i32) -> i32 { x }",
    "#[inline] #[doc = \"docs\"] pub(crate) async fn documented(#[allow(unused)] x: u8) {}",
    "async fn r#type(r#in: u8) -> u8 { r#in }",
    "fn no_body(&self) -> u32;",
    "async fn trait_decl(&self);",
    "async fn by_value(self: Box<Self>) -> Self { *self }",
    "fn generic<const N: usize>(a: [u8; N]) -> [u8; N] { a }",
    "async fn nested() { async fn inner() {} inner().await }",
    "fn closure() -> impl Fn() -> u8 { || 1 }",
    "fn never() -> ! { loop {} }",
    "async unsafe fn both() {}",
    "fn inner_attr() { #![allow(unused)] let x = 1; }",
    "fn from_macro() -> m!() { 1 }",
    "fn inferred(_: u8) -> _ { 1 }",
    "#[tokio::main] async fn main() { serve().await }",
    "pub async fn io() -> std::io::Result<()> { Ok(()) }",
    "async fn aliased() -> anyhow::Result<u8> { Ok(1) }",
    "fn impl_in_result() -> Result<impl Display, Error> { Ok(1) }",
    "async fn tuple() -> (u8, Result<(), ()>) { (1, Ok(())) }",
    "fn returns_async_block() -> impl std::future::Future { async {} }",
    "extern \"Rust\" fn abi() {}",
    "default fn specialised() {}",
    "struct Session(String);",
    "impl Handler { async fn handle(&self) {} }",
    "mod handlers {}",
    "trait Store { async fn get(&self) -> u8; }",
    "macro_rules! m { () => {} }",
    "enum Outcome { Ok, Err }",
    "type Alias = u8;",
    "use std::future::Future;",
    "static COUNT: u8 = 1;",
    "extern \"C\" { fn puts(s: *const u8); }",
    "m! { fn hidden() {} }",
    "",
    // Odd ones: short, malformed, or not a function with a body.
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
    "fn named() -> Pin<Box<dyn Future<Output = u8> + Send>> { let fut = g(); Box::pin(fut) }",
    "fn aliased(&self) -> BoxFuture<'_, Result<u8, E>> { self.g().boxed() }",
    "fn local() -> futures::future::LocalBoxFuture<'static, u8> { g().boxed_local() }",
    "fn own_alias() -> Pending { Box::pin(g()) }",
    "fn unpin() -> impl Future<Output = u8> + Unpin { ready(1) }",
    "fn early(x: bool) -> Pin<Box<dyn Future<Output = u8>>> { if x { return Box::pin(ready(1)); } Box::pin(g()) }",
    "fn optional() -> Option<impl Future<Output = u8>> { None }",
    "fn unpinned() -> Box<dyn Future<Output = u8> + Unpin> { Box::new(ready(1)) }",
    "fn pinned_unpin() -> Pin<Box<dyn Future<Output = u8> + Unpin>> { Box::pin(ready(1)) }",
    "fn borrowed<'a>(f: &'a mut (dyn Future<Output = u8> + Unpin)) -> &'a mut (dyn Future<Output = u8> + Unpin) { f }",
    "fn maker() -> fn() -> BoxFuture<'static, u8> { make }",
    "const fn f() {}",
    "const async unsafe extern \"C\" fn f() {}",
    "fn f();",
    "fn f(&self) -> u8;",
    "struct S;",
    "struct S { a: u8 }",
    "enum E { A }",
    "union U { a: u8 }",
    "const C: u8 = 1;",
    "mod m;",
    "trait T { fn f(); }",
    "impl T for S {}",
    "extern crate a;",
    "m!();",
    "fn",
    "1 + 1",
];

/// Attribute arguments, good and bad, for either macro.
const ARGS: &[&str] = &[
    "",
    "name = \"checkout\"",
    "level = \"debug\"",
    "level = \"DEBUG\"",
    "level = \"verbose\"",
    "span = \"current\"",
    "span = \"new\"",
    "span = \"parent\"",
    "crate = \"::selftime\"",
    "crate = \"my::re::export\"",
    "crate = \"not a path\"",
    "split",
    "split = true",
    "name = \"a\", level = \"info\", crate = \"::selftime\", split",
    "name = \"a\", span = \"current\", crate = \"::selftime\"",
    "level = \"info\", span = \"current\"",
    "name = \"a\", name = \"b\"",
    "name",
    "name =",
    "= \"x\"",
    "name = checkout",
    "name = \"x\"suffix",
    "\"redis\"",
    "\"redis\", until_wake",
    "\"redis\", \"legacy\"",
    "redis",
    "r#redis",
    "1",
    "1.5e3",
    "b\"bytes\"",
    "'c'",
    "name = \"redis\"",
    "\"\"",
    "\"redis\", crate = \"::selftime\"",
    "\"redis\",",
    ",",
    ",,",
    "\"a\" \"b\"",
    "name == \"x\"",
    "name => \"x\"",
    "crate::path",
    "(nested, group)",
    "{ block }",
    "-",
    "#",
    "level = \"debug\"; name = \"x\"",
    "until_wake, until_wake",
    "future",
    "future, future",
    "\"redis\", future, until_wake",
    "future = true",
    "name = \"a\", future, split",
    "bogus = 1, also_bogus",
    // Odd ones.
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
    "crate = \"\u{e9}\"",
    "level = \"\\u{0130}nfo\"",
    "name = \"a\" \"b\"",
    "\"redis\"suffix",
    "b\"redis\", c\"redis\", 'r', 1.5, true, r#\"raw\"#",
    "r#type = \"::selftime\"",
    "r#name = \"x\"",
    "_ = \"x\"",
    "_",
    "'a",
    "name = \"a\",,",
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

/// Every pairing of the corpus, and every truncation, deletion and doubling
/// of a token in some valid argument lists (on a valid item).
fn written_inputs() -> Vec<(TokenStream, TokenStream)> {
    let mut inputs = Vec::new();
    for item in ITEMS {
        for args in ARGS {
            inputs.push((tokens(args), tokens(item)));
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
                inputs.push((args, tokens("async fn f() -> u8 { 1 }")));
            }
        }
    }
    inputs
}

// --- running the macros ---------------------------------------------------------------

/// How a macro answered an input it handled well.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Expanded,
    Rejected,
}

/// Runs one macro on (args, item) and checks its answer; `Err` says why not.
fn check(which: Which, args: &TokenStream, item: &TokenStream) -> Result<Answer, String> {
    let run = || which.expand(args.clone(), item.clone());
    let out = catch_unwind(AssertUnwindSafe(run))
        .map_err(|_| format!("{which:?} panicked on args `{args}` item `{item}`"))?;

    // The error path: the item as given, then compile errors and nothing else.
    let given: Vec<TokenTree> = item.clone().into_iter().collect();
    let answered: Vec<TokenTree> = out.clone().into_iter().collect();
    if answered.len() > given.len() {
        let (head, tail) = answered.split_at(given.len());
        let same_item =
            head.iter().cloned().collect::<TokenStream>().to_string() == item.to_string();
        if same_item && only_compile_errors(tail.iter().cloned().collect()) {
            return Ok(Answer::Rejected);
        }
    }

    // The expansion: a file of items and, for a function, the same function.
    let file = syn::parse2::<syn::File>(out.clone()).map_err(|e| {
        format!("{which:?} on args `{args}` item `{item}` gave neither an expansion nor compile errors ({e}): `{out}`")
    })?;
    if compile_errors(&out) > compile_errors(item) {
        return Err(format!(
            "{which:?} on args `{args}` item `{item}`: compile errors mixed into the output: `{out}`"
        ));
    }
    match syn::parse2::<syn::ItemFn>(item.clone()) {
        Ok(func) => {
            let [syn::Item::Fn(expanded)] = &file.items[..] else {
                return Err(format!(
                    "{which:?} on `{item}` gave items other than the function: `{out}`"
                ));
            };
            // As syn prints it (lifetimes before type parameters, say), which
            // is how the expansion prints it too.
            let printed = &func.sig;
            let written: syn::Signature = syn::parse2(quote::quote!(#printed))
                .map_err(|e| format!("`{item}`'s signature does not print back: {e}"))?;
            if expanded.sig != written {
                return Err(format!(
                    "{which:?} on `{item}` changed the signature: `{}`",
                    quote::quote!(#expanded)
                ));
            }
            Ok(Answer::Expanded)
        }
        Err(_) => Err(format!(
            "{which:?} accepted `{item}`, which is not a function with a body: `{out}`"
        )),
    }
}

/// Whether `tail` is one or more `::core::compile_error! { "…" }` (or with
/// parentheses), and nothing else.
fn only_compile_errors(tail: TokenStream) -> bool {
    let Ok(file) = syn::parse2::<syn::File>(tail) else {
        return false;
    };
    !file.items.is_empty()
        && file.items.iter().all(|item| {
            matches!(item, syn::Item::Macro(m)
                if m.mac.path.segments.last().is_some_and(|s| s.ident == "compile_error"))
        })
}

/// How many times `compile_error!` is invoked in `tokens`, groups included.
fn compile_errors(tokens: &TokenStream) -> usize {
    let trees: Vec<TokenTree> = tokens.clone().into_iter().collect();
    let calls = trees
        .windows(2)
        .filter(|pair| {
            matches!(&pair[0], TokenTree::Ident(ident) if ident == "compile_error")
                && matches!(&pair[1], TokenTree::Punct(bang) if bang.as_char() == '!')
        })
        .count();
    let nested: usize = trees
        .iter()
        .map(|tree| match tree {
            TokenTree::Group(group) => compile_errors(&group.stream()),
            _ => 0,
        })
        .sum();
    calls + nested
}

fn check_both(args: &TokenStream, item: &TokenStream) -> Result<(), TestCaseError> {
    for which in Which::BOTH {
        check(which, args, item).map_err(TestCaseError::fail)?;
    }
    Ok(())
}

// --- random tokens ----------------------------------------------------------------------

const WORDS: &[&str] = &[
    "fn",
    "async",
    "await",
    "move",
    "self",
    "Self",
    "crate",
    "super",
    "pub",
    "const",
    "unsafe",
    "extern",
    "impl",
    "dyn",
    "where",
    "for",
    "mut",
    "ref",
    "return",
    "let",
    "if",
    "loop",
    "Box",
    "pin",
    "Pin",
    "Future",
    "Output",
    "Result",
    "Ok",
    "Err",
    "Option",
    "name",
    "level",
    "span",
    "current",
    "new",
    "split",
    "until_wake",
    "future",
    "BoxFuture",
    "Unpin",
    "debug",
    "info",
    "x",
    "_",
    "core",
    "selftime",
    "__private",
    "compile_error",
    "static",
    "struct",
    "trait",
    "mod",
    "type",
    "async_trait",
];

const PUNCTS: &[char] = &[
    '+', '-', '*', '/', '%', '^', '!', '&', '|', '=', '<', '>', '@', '.', ',', ';', ':', '#', '$',
    '?', '~',
];

const STRINGS: &[&str] = &[
    "",
    "redis",
    "::selftime",
    "no such path",
    "debug",
    "TRACE",
    "current",
    "new",
    "a b",
    "::",
    "1",
    "checkout",
    "\u{e9}t\u{e9}",
    "\"",
    "\\",
];

fn ident() -> impl Strategy<Value = TokenTree> {
    prop_oneof![
        4 => prop::sample::select(WORDS).prop_map(|w| Ident::new(w, Span::call_site())),
        1 => prop::sample::select(&["r#type", "r#fn", "r#redis", "r#async"][..])
            .prop_map(|w| Ident::new_raw(&w[2..], Span::call_site())),
        1 => "[a-z_][a-z0-9_]{0,6}".prop_map(|w| Ident::new(&w, Span::call_site())),
    ]
    .prop_map(TokenTree::Ident)
}

fn literal() -> impl Strategy<Value = TokenTree> {
    prop_oneof![
        prop::sample::select(STRINGS).prop_map(Literal::string),
        any::<u32>().prop_map(Literal::u32_unsuffixed),
        any::<i64>().prop_map(Literal::i64_suffixed),
        (-1e6f64..1e6).prop_map(Literal::f64_unsuffixed),
        any::<char>().prop_map(Literal::character),
        prop::collection::vec(any::<u8>(), 0..4).prop_map(|b| Literal::byte_string(&b)),
        prop::sample::select(
            &[
                "\"x\"suffix",
                "r#\"raw\"#",
                "1u8",
                "0x1f",
                "1e3f32",
                "b'a'",
                "c\"c\""
            ][..]
        )
        .prop_map(|s| Literal::from_str(s).expect("a literal")),
    ]
    .prop_map(TokenTree::Literal)
}

fn punct() -> impl Strategy<Value = TokenTree> {
    (prop::sample::select(PUNCTS), any::<bool>()).prop_map(|(c, joint)| {
        let spacing = if joint {
            Spacing::Joint
        } else {
            Spacing::Alone
        };
        TokenTree::Punct(Punct::new(c, spacing))
    })
}

fn delimiter() -> impl Strategy<Value = Delimiter> {
    prop::sample::select(
        &[
            Delimiter::Parenthesis,
            Delimiter::Brace,
            Delimiter::Bracket,
            Delimiter::None,
        ][..],
    )
}

fn leaf() -> impl Strategy<Value = TokenTree> {
    prop_oneof![3 => ident(), 2 => punct(), 2 => literal()]
}

/// Random token trees, brackets nested up to three deep.
fn soup() -> impl Strategy<Value = TokenStream> {
    let tree = leaf().prop_recursive(3, 32, 5, |inner| {
        (delimiter(), prop::collection::vec(inner, 0..6)).prop_map(|(delimiter, trees)| {
            TokenTree::Group(Group::new(delimiter, trees.into_iter().collect()))
        })
    });
    prop::collection::vec(tree, 0..12).prop_map(TokenStream::from_iter)
}

// --- mutations --------------------------------------------------------------------------

/// One edit at one position of the tokens, counted depth-first through groups.
#[derive(Clone, Debug)]
enum Edit {
    Drop,
    Duplicate,
    SwapWithNext,
    Replace(TokenTree),
    InsertBefore(TokenTree),
    Redelimit(Delimiter),
    /// Replaces a group with its contents.
    Unwrap,
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        2 => Just(Edit::Drop),
        1 => Just(Edit::Duplicate),
        1 => Just(Edit::SwapWithNext),
        3 => leaf().prop_map(Edit::Replace),
        2 => leaf().prop_map(Edit::InsertBefore),
        1 => delimiter().prop_map(Edit::Redelimit),
        1 => Just(Edit::Unwrap),
    ]
}

fn count_trees(tokens: &TokenStream) -> usize {
    tokens
        .clone()
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Group(g) => 1 + count_trees(&g.stream()),
            _ => 1,
        })
        .sum()
}

/// Applies `edit` at the `target`-th tree (depth-first); `seen` counts trees
/// passed so far.
fn apply(tokens: TokenStream, target: usize, edit: &Edit, seen: &mut usize) -> TokenStream {
    let mut trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < trees.len() {
        if *seen == target {
            *seen += 1;
            match edit {
                Edit::Drop => {
                    trees.remove(i);
                }
                Edit::Duplicate => trees.insert(i, trees[i].clone()),
                Edit::SwapWithNext if i + 1 < trees.len() => trees.swap(i, i + 1),
                Edit::SwapWithNext => {}
                Edit::Replace(tree) => trees[i] = tree.clone(),
                Edit::InsertBefore(tree) => trees.insert(i, tree.clone()),
                Edit::Redelimit(delimiter) => {
                    if let TokenTree::Group(g) = &trees[i] {
                        trees[i] = TokenTree::Group(Group::new(*delimiter, g.stream()));
                    }
                }
                Edit::Unwrap => {
                    if let TokenTree::Group(g) = trees[i].clone() {
                        trees.splice(i..=i, g.stream());
                    }
                }
            }
            return TokenStream::from_iter(trees);
        }
        *seen += 1;
        if let TokenTree::Group(g) = &trees[i] {
            let inner = apply(g.stream(), target, edit, seen);
            if *seen > target {
                let mut group = Group::new(g.delimiter(), inner);
                group.set_span(g.span());
                trees[i] = TokenTree::Group(group);
                return TokenStream::from_iter(trees);
            }
        }
        i += 1;
    }
    TokenStream::from_iter(trees)
}

/// `tokens` with each of `edits` applied at a position drawn from `at`.
fn mutate(mut tokens: TokenStream, edits: &[(prop::sample::Index, Edit)]) -> TokenStream {
    for (at, edit) in edits {
        let count = count_trees(&tokens);
        if count == 0 {
            if let Edit::Replace(tree) | Edit::InsertBefore(tree) = edit {
                tokens = TokenStream::from(tree.clone());
            }
            continue;
        }
        tokens = apply(tokens, at.index(count), edit, &mut 0);
    }
    tokens
}

fn edits() -> impl Strategy<Value = Vec<(prop::sample::Index, Edit)>> {
    prop::collection::vec((any::<prop::sample::Index>(), edit()), 1..=4)
}

// --- the properties ---------------------------------------------------------------------

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Every pairing of the corpus, and the arguments cut and doubled, as
/// written.
#[test]
fn the_corpus_as_written() {
    let (mut expanded, mut rejected) = (0, 0);
    for (args, item) in written_inputs() {
        for which in Which::BOTH {
            match check(which, &args, &item) {
                Ok(Answer::Expanded) => expanded += 1,
                Ok(Answer::Rejected) => rejected += 1,
                Err(e) => panic!("{e}"),
            }
        }
    }
    // The inputs must reach both answers, or the test proves little.
    assert!(
        rejected > 100 && expanded > 10,
        "{expanded} expanded, {rejected} rejected"
    );
}

/// The corpus's good inputs do expand (the property above would also pass
/// if every input were rejected).
#[test]
fn the_corpus_has_inputs_that_expand() {
    let expands = |out: TokenStream| compile_errors(&out) == 0;
    let handler = tokens(ITEMS[0]);
    for args in [
        "",
        "name = \"a\", level = \"info\", crate = \"::selftime\", split",
        "name = \"a\", span = \"current\", crate = \"::selftime\"",
    ] {
        let out = Which::TimedHandler.expand(tokens(args), handler.clone());
        assert!(expands(out.clone()), "`{args}`: {out}");
    }
    for args in [
        "",
        "\"redis\"",
        "\"redis\", until_wake",
        "crate = \"::selftime\"",
    ] {
        let out = Which::ExternalCall.expand(tokens(args), handler.clone());
        assert!(expands(out.clone()), "`{args}`: {out}");
    }
    let aliased = tokens("fn own_alias() -> Pending { Box::pin(g()) }");
    for (which, args) in [
        (Which::TimedHandler, "future"),
        (Which::ExternalCall, "\"redis\", future, until_wake"),
    ] {
        let out = which.expand(tokens(args), aliased.clone());
        assert!(expands(out.clone()), "`{args}`: {out}");
    }
    let accepted = ITEMS
        .iter()
        .filter(|item| expands(Which::TimedHandler.expand(TokenStream::new(), tokens(item))))
        .count();
    assert!(accepted >= 20, "only {accepted} corpus items expand");
}

#[test]
fn mutated_items() {
    let strategy = (
        prop::sample::select(ITEMS),
        prop::sample::select(ARGS),
        edits(),
    );
    runner(cases(4_000))
        .run(&strategy, |(item, args, edits)| {
            check_both(&tokens(args), &mutate(tokens(item), &edits))
        })
        .unwrap();
}

#[test]
fn mutated_arguments() {
    let strategy = (
        prop::sample::select(ITEMS),
        prop::sample::select(ARGS),
        edits(),
    );
    runner(cases(4_000))
        .run(&strategy, |(item, args, edits)| {
            check_both(&mutate(tokens(args), &edits), &tokens(item))
        })
        .unwrap();
}

#[test]
fn token_soups() {
    let strategy = (soup(), soup(), prop::sample::select(ITEMS));
    runner(cases(1_500))
        .run(&strategy, |(args, soup, item)| {
            // Soup for both, then soup arguments on a real item, then a real
            // function's signature with a soup for a body.
            check_both(&args, &soup)?;
            check_both(&args, &tokens(item))?;
            let body = TokenTree::Group(Group::new(Delimiter::Brace, soup));
            let func: TokenStream = tokens("async fn f(x: u8) -> Result<u8, E>")
                .into_iter()
                .chain([body])
                .collect();
            check_both(&TokenStream::new(), &func)
        })
        .unwrap();
}
