//! Stage two: judge the syntax. Every problem is reported, all at once, each
//! at the tokens that caused it and in source order (arguments first, then
//! the item); nothing is expanded from a bad input.
//!
//! Messages name the attribute, are lowercase without a final period, and
//! quote what the user can write instead.

use super::parse::{Arg, Input, Macro, Target};
use super::shape::{self, Shape};
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt as _;
use syn::spanned::Spanned as _;
use syn::{Expr, ExprLit, Ident, Item, ItemFn, Lit, LitStr, Path};

/// Input known to be good, with every argument and the function's shape
/// decided.
pub(crate) struct Valid {
    pub(crate) func: ItemFn,
    pub(crate) shape: Shape,
    pub(crate) krate: Path,
    pub(crate) config: Config,
}

pub(crate) enum Config {
    Handler {
        name: String,
        /// `TRACE`, `DEBUG`, `INFO`, `WARN` or `ERROR`: a `tracing::Level` constant.
        level: Ident,
        span: SpanMode,
        /// `split`: split internal time into busy, scheduled and waiting.
        split: bool,
    },
    External {
        dep: String,
        /// `until_wake`: end the call when its dependency wakes the task.
        until_wake: bool,
    },
}

/// Where `#[timed_handler]` records its figures.
pub(crate) enum SpanMode {
    /// On a new span named after the function (the default).
    New,
    /// On the span already current when the handler starts.
    Current,
}

/// The keys `#[timed_handler]` takes, each with the example its messages
/// quote.
const HANDLER_KEYS: [(&str, &str); 4] = [
    ("name", "name = \"checkout\""),
    ("level", "level = \"debug\""),
    ("span", "span = \"current\""),
    ("crate", "crate = \"::selftime\""),
];

/// The example quoted for `key`, if it is one of `which`'s keys.
fn example(which: Macro, key: &Ident) -> Option<&'static str> {
    let keys: &[(&str, &str)] = match which {
        Macro::TimedHandler => &HANDLER_KEYS,
        Macro::ExternalCall => &HANDLER_KEYS[3..],
    };
    keys.iter().find(|(k, _)| key == k).map(|&(_, e)| e)
}

/// Collects errors so that all of them are reported together.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn at(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }
}

/// The arguments as decided so far.
#[derive(Default)]
struct Args {
    seen: Vec<Ident>,
    krate: Option<Path>,
    name: Option<String>,
    level: Option<Ident>,
    /// The `level` key as written, to point at when it cannot apply.
    level_key: Option<Ident>,
    span: Option<SpanMode>,
    dep: Option<LitStr>,
    split: bool,
    until_wake: Option<Ident>,
    /// `future`: the return type is a future under a name of the user's own.
    future: Option<Ident>,
}

pub(crate) fn validate(input: Input) -> syn::Result<Valid> {
    let Input {
        which,
        args,
        target,
    } = input;
    let mut errors = Errors::default();
    let mut decided = Args::default();
    for arg in args {
        match arg {
            Ok(arg) => decided.take(which, arg, &mut errors),
            Err(error) => errors.push(error),
        }
    }
    decided.check(&mut errors);
    let func = check_target(which, target, &mut errors);
    if let (Some(SpanMode::Current), Some(func)) = (&decided.span, &func) {
        if let Some(instrument) = super::parse::instrument(&func.attrs) {
            check_instrument(&instrument, decided.split, &mut errors);
        }
    }
    let shape = func.as_ref().and_then(|func| {
        shape::decide(which, func, decided.future.as_ref())
            .map_err(|error| errors.push(error))
            .ok()
    });
    if let (Some(wake), Some(shape)) = (&decided.until_wake, &shape) {
        if !shape.is_future() {
            errors.at(
                wake,
                format!(
                    "`until_wake` in {} needs a call that is a future: a plain fn is not polled, \
                     so no wake can end it; remove `until_wake`, or, if the fn returns a boxed \
                     future under a name of your own, add `future`",
                    which.attr(),
                ),
            );
        }
    }
    match (func, shape, errors.0) {
        (Some(func), Some(shape), None) => Ok(decided.finish(which, func, shape)),
        (_, _, Some(error)) => Err(error),
        // `check_target` and `shape::decide` report every `None` they give.
        (_, _, None) => Err(syn::Error::new(
            Span::call_site(),
            format!("{} can only be applied to a function", which.attr()),
        )),
    }
}

/// The function, or `None` with the reason reported.
fn check_target(which: Macro, target: Target, errors: &mut Errors) -> Option<ItemFn> {
    let attr = which.attr();
    match target {
        Target::Fn(func) => {
            if let Some(constness) = &func.sig.constness {
                errors.at(
                    constness,
                    format!(
                        "{attr} cannot be applied to a `const fn`: a const fn cannot read a \
                         clock, remove `const`"
                    ),
                );
            }
            Some(*func)
        }
        Target::Bodyless(method) => {
            errors.at(
                &method.sig,
                format!(
                    "{attr} needs a function body: put it on the method in each `impl` block, \
                     not on the trait's declaration"
                ),
            );
            None
        }
        Target::Other(item) => {
            let (tokens, what) = describe(&item);
            errors.at(
                tokens,
                format!("{attr} can only be applied to a function, not {what}"),
            );
            None
        }
    }
}

impl Args {
    fn take(&mut self, which: Macro, arg: Arg, errors: &mut Errors) {
        let attr = which.attr();
        let expected = which.expected();
        match (which, arg) {
            (_, Arg::KeyValue { key, value }) => self.key_value(which, &key, &value, errors),
            (Macro::TimedHandler, Arg::Flag(word)) if word == "split" => {
                if self.once(which, &word, errors) {
                    self.split = true;
                }
            }
            (Macro::ExternalCall, Arg::Flag(word)) if word == "until_wake" => {
                if self.once(which, &word, errors) {
                    self.until_wake = Some(word);
                }
            }
            (_, Arg::Flag(word)) if word == "future" => {
                if self.once(which, &word, errors) {
                    self.future = Some(word);
                }
            }
            (_, Arg::Flag(word)) => match (which, example(which, &word)) {
                (_, Some(example)) => errors.at(
                    &word,
                    format!("`{word}` in {attr} takes a value, such as `{example}`"),
                ),
                (Macro::TimedHandler, None) => errors.at(
                    &word,
                    format!("unknown argument `{word}` to {attr}, expected {expected}"),
                ),
                (Macro::ExternalCall, None) => errors.at(
                    &word,
                    format!(
                        "{attr} takes the dependency name as a string literal: write \
                         `#[external_call(\"{}\")]`",
                        word.unraw(),
                    ),
                ),
            },
            (Macro::TimedHandler, Arg::Positional(expr)) => match string(&expr) {
                Some(lit) => errors.at(
                    &expr,
                    format!(
                        "{attr} takes named arguments: write `name = {}` to name the span",
                        lit.token(),
                    ),
                ),
                None => errors.at(&expr, format!("{attr} takes named arguments: {expected}")),
            },
            (Macro::ExternalCall, Arg::Positional(expr)) => match string(&expr) {
                Some(lit) => self.dependency(lit, errors),
                None => errors.at(
                    &expr,
                    format!(
                        "{attr} takes the dependency name as a string literal, such as \
                         `#[external_call(\"redis\")]`"
                    ),
                ),
            },
        }
    }

    /// `key = value`.
    fn key_value(&mut self, which: Macro, key: &Ident, value: &Expr, errors: &mut Errors) {
        let attr = which.attr();
        let known = example(which, key).is_some();
        if known {
            if let Some(lit) = self.first_string(which, key, value, errors) {
                if key == "crate" {
                    self.crate_path(which, &lit, errors);
                } else if key == "name" {
                    self.span_name(&lit, errors);
                } else if key == "level" {
                    self.level_key = Some(key.clone());
                    self.level(&lit, errors);
                } else {
                    self.span_mode(&lit, errors);
                }
            }
        } else if which == Macro::ExternalCall && key == "name" && string(value).is_some() {
            errors.at(
                key,
                format!(
                    "{attr} takes the dependency name without a key: write \
                     `#[external_call({})]`",
                    value.to_token_stream(),
                ),
            );
        } else {
            let expected = which.expected();
            errors.at(
                key,
                format!("unknown argument `{key}` to {attr}, expected {expected}"),
            );
        }
    }

    /// `crate = "::selftime"`.
    fn crate_path(&mut self, which: Macro, lit: &LitStr, errors: &mut Errors) {
        match lit.parse_with(Path::parse_mod_style) {
            Ok(path) => self.krate = Some(path),
            Err(_) => errors.at(
                lit,
                format!(
                    "`crate` in {} takes the path to the selftime crate, such as \
                     `crate = \"::selftime\"`, and `{}` is not one",
                    which.attr(),
                    lit.token(),
                ),
            ),
        }
    }

    /// `name = "checkout"`.
    fn span_name(&mut self, lit: &LitStr, errors: &mut Errors) {
        if lit.value().is_empty() {
            errors.at(
                lit,
                format!(
                    "the span name in {} cannot be empty: leave `name` out to name the span \
                     after the function",
                    Macro::TimedHandler.attr(),
                ),
            );
        } else {
            self.name = Some(lit.value());
        }
    }

    /// `level = "debug"`, in any case.
    fn level(&mut self, lit: &LitStr, errors: &mut Errors) {
        match lit.value().to_ascii_lowercase().as_str() {
            l @ ("trace" | "debug" | "info" | "warn" | "error") => {
                self.level = Some(Ident::new(&l.to_ascii_uppercase(), lit.span()));
            }
            _ => errors.at(
                lit,
                format!(
                    "unknown level `{}` in {}, expected `\"trace\"`, `\"debug\"`, `\"info\"`, \
                     `\"warn\"` or `\"error\"`",
                    lit.token(),
                    Macro::TimedHandler.attr(),
                ),
            ),
        }
    }

    /// `span = "new"` or `span = "current"`.
    fn span_mode(&mut self, lit: &LitStr, errors: &mut Errors) {
        match lit.value().as_str() {
            "new" => self.span = Some(SpanMode::New),
            "current" => self.span = Some(SpanMode::Current),
            _ => errors.at(
                lit,
                format!(
                    "unknown span mode `{}` in {}, expected `span = \"new\"` (a span named \
                     after the function, the default) or `span = \"current\"` (the span \
                     already entered)",
                    lit.token(),
                    Macro::TimedHandler.attr(),
                ),
            ),
        }
    }

    /// `#[external_call("redis")]`'s name.
    fn dependency(&mut self, lit: &LitStr, errors: &mut Errors) {
        let attr = Macro::ExternalCall.attr();
        if self.dep.is_some() {
            errors.at(
                lit,
                format!(
                    "duplicate dependency name `{}` in {attr}: give one name",
                    lit.token(),
                ),
            );
            return;
        }
        self.dep = Some(lit.clone());
        if let Some(suffix) = suffixed(lit) {
            errors.at(
                lit,
                format!("{attr} takes a string literal without a suffix, not `{suffix}`"),
            );
        } else if lit.value().is_empty() {
            errors.at(
                lit,
                format!(
                    "the dependency name in {attr} cannot be empty: give one, such as \
                     `\"redis\"`, or leave it out to use the function's name"
                ),
            );
        }
    }

    /// Whether `word` is given for the first time; an error if not.
    fn once(&mut self, which: Macro, word: &Ident, errors: &mut Errors) -> bool {
        if self.seen.iter().any(|k| k == word) {
            errors.at(
                word,
                format!("duplicate argument `{word}` to {}", which.attr()),
            );
            false
        } else {
            self.seen.push(word.clone());
            true
        }
    }

    /// Arguments that are each fine but do not go together.
    fn check(&self, errors: &mut Errors) {
        if let (Some(SpanMode::Current), Some(level)) = (&self.span, &self.level_key) {
            errors.at(
                level,
                format!(
                    "`level` in {} has no effect with `span = \"current\"`: the span already \
                     entered keeps its own level; remove `level`",
                    Macro::TimedHandler.attr(),
                ),
            );
        }
    }

    /// The string value of `key = "…"` the first time `key` is given; an
    /// error, and `None`, for a second time or a value that is not a
    /// string literal.
    fn first_string(
        &mut self,
        which: Macro,
        key: &Ident,
        value: &Expr,
        errors: &mut Errors,
    ) -> Option<LitStr> {
        let attr = which.attr();
        if self.seen.iter().any(|k| k == key) {
            errors.at(key, format!("duplicate argument `{key}` to {attr}"));
            return None;
        }
        self.seen.push(key.clone());
        let example = example(which, key).unwrap_or_default();
        let Some(lit) = string(value) else {
            errors.at(
                value,
                format!("`{key}` in {attr} takes a string literal, such as `{example}`"),
            );
            return None;
        };
        if let Some(suffix) = suffixed(lit) {
            errors.at(
                lit,
                format!(
                    "`{key}` in {attr} takes a string literal without a suffix, not `{suffix}`"
                ),
            );
            return None;
        }
        Some(lit.clone())
    }

    fn finish(self, which: Macro, func: ItemFn, shape: Shape) -> Valid {
        let fn_name = func.sig.ident.unraw().to_string();
        let config = match which {
            Macro::TimedHandler => Config::Handler {
                name: self.name.unwrap_or(fn_name),
                level: self
                    .level
                    .unwrap_or_else(|| Ident::new("INFO", Span::call_site())),
                span: self.span.unwrap_or(SpanMode::New),
                split: self.split,
            },
            Macro::ExternalCall => Config::External {
                dep: self.dep.map_or(fn_name, |lit| lit.value()),
                until_wake: self.until_wake.is_some(),
            },
        };
        Valid {
            func,
            shape,
            krate: self.krate.unwrap_or_else(|| syn::parse_quote!(::selftime)),
            config,
        }
    }
}

/// The string literal `expr` is, if it is one. A `macro_rules!` fragment
/// (`name = $name` with `$name:expr`) arrives in an invisible group, which
/// is looked through.
fn string(expr: &Expr) -> Option<&LitStr> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Some(lit),
        Expr::Group(group) => string(&group.expr),
        _ => None,
    }
}

/// The literal as written, when it has a suffix (`"redis"x`).
fn suffixed(lit: &LitStr) -> Option<String> {
    (!lit.suffix().is_empty()).then(|| lit.token().to_string())
}

/// The tokens to point an error at (the keyword that says what kind of item
/// this is) and the item's kind, with advice where there is some.
fn describe(item: &Item) -> (TokenStream, &'static str) {
    fn at(tokens: impl ToTokens, what: &'static str) -> (TokenStream, &'static str) {
        (tokens.into_token_stream(), what)
    }
    match item {
        Item::Struct(i) => at(i.struct_token, "a struct"),
        Item::Enum(i) => at(i.enum_token, "an enum"),
        Item::Union(i) => at(i.union_token, "a union"),
        Item::Const(i) => at(i.const_token, "a `const` item"),
        Item::Static(i) => at(i.static_token, "a `static` item"),
        Item::Mod(i) => at(i.mod_token, "a module"),
        Item::Trait(i) => at(
            i.trait_token,
            "a trait: put it on the methods of the trait's `impl` blocks",
        ),
        Item::Impl(i) => at(i.impl_token, "an `impl` block: put it on each method"),
        Item::Type(i) => at(i.type_token, "a type alias"),
        Item::Use(i) => at(i.use_token, "a `use` item"),
        Item::ExternCrate(i) => at(i.extern_token, "an `extern crate` item"),
        Item::ForeignMod(i) => at(
            &i.abi,
            "an `extern` block: functions declared there have no body to measure",
        ),
        Item::Macro(i) => at(&i.mac.path, "a macro invocation"),
        other => {
            let span = other.span();
            (quote::quote_spanned!(span=> item), "this item")
        }
    }
}

/// The span fields `#[timed_handler]` records, in the order it declares
/// them: `selftime::FIELDS`. This crate cannot depend on the runtime, so the
/// list is written twice; tests/expansion checks that the two agree.
pub(crate) const FIELDS: [&str; 8] = [
    "total.duration_us",
    "external.duration_us",
    "internal.duration_us",
    "external.calls",
    "external.breakdown",
    "outcome",
    "internal.backlog_us",
    "external.between_us",
];

/// The fields `split` adds: `selftime::SPLIT_FIELDS`, checked as [`FIELDS`].
pub(crate) const SPLIT_FIELDS: [&str; 3] = [
    "internal.busy_us",
    "internal.scheduled_us",
    "internal.waiting_us",
];

/// `span = "current"` under a visible `#[instrument]`: the figures go to
/// that attribute's span, and tracing silently drops a value recorded on a
/// field the span did not declare, so every field must be declared there.
fn check_instrument(instrument: &super::parse::Instrument, split: bool, errors: &mut Errors) {
    let Some(declared) = &instrument.fields else {
        return;
    };
    let split: &[&str] = if split { &SPLIT_FIELDS } else { &[] };
    let missing: Vec<&str> = FIELDS
        .iter()
        .chain(split)
        .copied()
        .filter(|field| !declared.iter().any(|d| d == field))
        .collect();
    if missing.is_empty() {
        return;
    }
    let quoted = missing
        .iter()
        .map(|field| format!("`{field}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let list = missing.join(", ");
    // A bare name in `#[instrument(fields(…))]` declares an empty field.
    let add = if instrument.has_fields {
        format!("add `{list}` to its `fields(…)`")
    } else {
        format!("add `fields({list})` to it")
    };
    errors.at(
        &instrument.attr,
        format!(
            "{} with `span = \"current\"` records onto the span of this `#[instrument]`, \
             which does not declare {quoted}: tracing drops a value recorded on a field its \
             span did not declare; declare them, empty: {add}",
            Macro::TimedHandler.attr(),
        ),
    );
}
