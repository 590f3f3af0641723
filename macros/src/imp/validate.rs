//! Stage two: judge the syntax. Every problem is reported, all at once, each
//! at the tokens that caused it; nothing is expanded from a bad input.

use super::parse::{Arg, Input, Macro, Target};
use proc_macro2::Span;
use quote::ToTokens;
use syn::spanned::Spanned as _;
use syn::{Expr, ExprLit, Ident, ItemFn, Lit, LitStr, Path};

/// Input known to be good, with every argument decided.
pub(crate) struct Valid {
    pub(crate) func: ItemFn,
    pub(crate) krate: Path,
    pub(crate) config: Config,
}

pub(crate) enum Config {
    Handler {
        name: String,
        /// `TRACE`, `DEBUG`, `INFO`, `WARN` or `ERROR`: a `tracing::Level` constant.
        level: Ident,
        span: SpanMode,
    },
    External {
        dep: String,
    },
}

/// Where `#[timed_handler]` records its figures.
pub(crate) enum SpanMode {
    /// On a new span named after the function (the default).
    New,
    /// On the span already current when the handler starts.
    Current,
}

const HANDLER_KEYS: &str = "`name`, `level`, `span` or `crate`";
const EXTERNAL_KEYS: &str = "a dependency name such as `\"redis\"`, or `crate`";

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

pub(crate) fn validate(input: Input) -> syn::Result<Valid> {
    let Input {
        which,
        args,
        target,
    } = input;
    let attr = which.attr();
    let mut errors = Errors::default();

    let func = match target {
        Target::Fn(func) => {
            if let Some(constness) = &func.sig.constness {
                errors.at(
                    constness,
                    format!("{attr} cannot be applied to a `const fn`: a const fn cannot read a clock"),
                );
            }
            Ok(func)
        }
        Target::Bodyless(method) => Err(syn::Error::new_spanned(
            &method.sig,
            format!("{attr} needs a function body: put it on the method in the `impl` block, not on the trait's declaration"),
        )),
        Target::Other(item) => Err(syn::Error::new_spanned(
            item_keyword(&item),
            format!("{attr} can only be applied to a function"),
        )),
    };

    let mut seen: Vec<Ident> = Vec::new();
    let mut once = |key: &Ident, errors: &mut Errors| {
        if seen.iter().any(|k| k == key) {
            errors.at(key, format!("duplicate argument `{key}` to {attr}"));
            false
        } else {
            seen.push(key.clone());
            true
        }
    };

    let mut krate: Option<Path> = None;
    let mut name: Option<String> = None;
    let mut level: Option<Ident> = None;
    let mut span = SpanMode::New;
    let mut dep: Option<String> = None;
    let mut dep_seen: Option<Span> = None;

    for arg in args {
        match (which, arg) {
            (_, Arg::KeyValue { key, value }) if key == "crate" => {
                if once(&key, &mut errors) {
                    if let Some(lit) = string(&key, &value, "crate = \"::selftime\"", &mut errors) {
                        match lit.parse::<Path>() {
                            Ok(path) => krate = Some(path),
                            Err(_) => errors.at(&lit, format!("`crate` takes the path to the selftime crate, e.g. `crate = \"::selftime\"`, not `{}`", lit.value())),
                        }
                    }
                }
            }
            (Macro::TimedHandler, Arg::KeyValue { key, value }) if key == "name" => {
                if once(&key, &mut errors) {
                    if let Some(lit) = string(&key, &value, "name = \"checkout\"", &mut errors) {
                        if lit.value().is_empty() {
                            errors.at(&lit, "the span name cannot be empty");
                        } else {
                            name = Some(lit.value());
                        }
                    }
                }
            }
            (Macro::TimedHandler, Arg::KeyValue { key, value }) if key == "level" => {
                if once(&key, &mut errors) {
                    if let Some(lit) = string(&key, &value, "level = \"debug\"", &mut errors) {
                        match lit.value().to_ascii_lowercase().as_str() {
                            l @ ("trace" | "debug" | "info" | "warn" | "error") => {
                                level = Some(Ident::new(&l.to_ascii_uppercase(), lit.span()));
                            }
                            _ => errors.at(&lit, format!("unknown level `{}`, expected `trace`, `debug`, `info`, `warn` or `error`", lit.value())),
                        }
                    }
                }
            }
            (Macro::TimedHandler, Arg::KeyValue { key, value }) if key == "span" => {
                if once(&key, &mut errors) {
                    if let Some(lit) = string(&key, &value, "span = \"current\"", &mut errors) {
                        match lit.value().as_str() {
                            "new" => span = SpanMode::New,
                            "current" => span = SpanMode::Current,
                            other => errors.at(&lit, format!("unknown span mode `{other}`, expected `new` (a span named after the function) or `current` (the span already entered)")),
                        }
                    }
                }
            }
            (Macro::TimedHandler, Arg::KeyValue { key, .. } | Arg::Flag(key)) => {
                errors.at(&key, format!("unknown argument `{key}` to {attr}, expected {HANDLER_KEYS}"));
            }
            (Macro::TimedHandler, Arg::Positional(expr)) => {
                errors.at(&expr, format!("{attr} takes `key = \"value\"` arguments: {HANDLER_KEYS}"));
            }
            (Macro::ExternalCall, Arg::Positional(Expr::Lit(ExprLit { lit: Lit::Str(lit), .. }))) => {
                if dep_seen.is_some() {
                    errors.at(&lit, format!("duplicate dependency name in {attr}: give one name"));
                } else if lit.value().is_empty() {
                    dep_seen = Some(lit.span());
                    errors.at(&lit, "the dependency name cannot be empty");
                } else {
                    dep_seen = Some(lit.span());
                    dep = Some(lit.value());
                }
            }
            (Macro::ExternalCall, Arg::Positional(expr)) => {
                errors.at(&expr, format!("{attr} takes the dependency name as a string literal, e.g. `#[external_call(\"redis\")]`"));
            }
            (Macro::ExternalCall, Arg::Flag(word)) => {
                errors.at(&word, format!("{attr} takes the dependency name as a string literal: write `#[external_call(\"{word}\")]`"));
            }
            (Macro::ExternalCall, Arg::KeyValue { key, .. }) => {
                errors.at(&key, format!("unknown argument `{key}` to {attr}, expected {EXTERNAL_KEYS}"));
            }
        }
    }

    let func = match (func, errors.0) {
        (Ok(func), None) => func,
        (Ok(_), Some(error)) => return Err(error),
        (Err(mut error), more) => {
            if let Some(more) = more {
                error.combine(more);
            }
            return Err(error);
        }
    };
    let fn_name = unraw(&func.sig.ident);
    let config = match which {
        Macro::TimedHandler => Config::Handler {
            name: name.unwrap_or(fn_name),
            level: level.unwrap_or_else(|| Ident::new("INFO", Span::call_site())),
            span,
        },
        Macro::ExternalCall => Config::External {
            dep: dep.unwrap_or(fn_name),
        },
    };
    Ok(Valid {
        func,
        krate: krate.unwrap_or_else(|| syn::parse_quote!(::selftime)),
        config,
    })
}

/// The value of `key = "…"`, or an error at the value.
fn string(key: &Ident, value: &Expr, example: &str, errors: &mut Errors) -> Option<LitStr> {
    if let Expr::Lit(ExprLit {
        lit: Lit::Str(lit), ..
    }) = value
    {
        Some(lit.clone())
    } else {
        errors.at(value, format!("`{key}` takes a string literal, e.g. `{example}`"));
        None
    }
}

/// `r#type` is named `type`.
fn unraw(ident: &Ident) -> String {
    let name = ident.to_string();
    name.strip_prefix("r#").map_or_else(|| name.clone(), str::to_owned)
}

/// The keyword that says what kind of item this is, to point an error at.
fn item_keyword(item: &syn::Item) -> proc_macro2::TokenStream {
    use syn::Item;
    match item {
        Item::Struct(i) => i.struct_token.to_token_stream(),
        Item::Enum(i) => i.enum_token.to_token_stream(),
        Item::Union(i) => i.union_token.to_token_stream(),
        Item::Const(i) => i.const_token.to_token_stream(),
        Item::Static(i) => i.static_token.to_token_stream(),
        Item::Mod(i) => i.mod_token.to_token_stream(),
        Item::Trait(i) => i.trait_token.to_token_stream(),
        Item::Impl(i) => i.impl_token.to_token_stream(),
        Item::Type(i) => i.type_token.to_token_stream(),
        Item::Use(i) => i.use_token.to_token_stream(),
        other => {
            let span = other.span();
            quote::quote_spanned!(span=> item)
        }
    }
}
