//! Stage one: tokens to syntax. Nothing is judged here beyond what syn needs
//! to read the input; `validate` decides what the syntax means.
//!
//! The argument list is read one comma-separated argument at a time, so that
//! a syntax error in one argument is reported next to the errors in the
//! others instead of hiding them.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use syn::ext::IdentExt as _;
use syn::parse::{ParseStream, Parser as _};
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, Ident, Item, ItemFn, Meta, Token, TraitItemFn};

/// Which attribute is being expanded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Macro {
    TimedHandler,
    ExternalCall,
}

impl Macro {
    /// The attribute as the user writes it, quoted for error messages.
    pub(crate) fn attr(self) -> &'static str {
        match self {
            Self::TimedHandler => "`#[timed_handler]`",
            Self::ExternalCall => "`#[external_call]`",
        }
    }

    /// The arguments the attribute takes, for error messages.
    pub(crate) fn expected(self) -> &'static str {
        match self {
            Self::TimedHandler => {
                "`name = \"…\"`, `level = \"…\"`, `span = \"…\"`, `split`, `future` or \
                 `crate = \"…\"`"
            }
            Self::ExternalCall => {
                "a dependency name such as `\"redis\"`, `until_wake`, `future` or `crate = \"…\"`"
            }
        }
    }
}

/// One argument inside the attribute's parentheses.
pub(crate) enum Arg {
    /// `key = value`.
    KeyValue { key: Ident, value: Expr },
    /// A bare word: a key written without its value, or a dependency name
    /// written without quotes.
    Flag(Ident),
    /// Anything else: a literal such as `"redis"`, or a stray expression.
    Positional(Expr),
}

/// The annotated item.
pub(crate) enum Target {
    /// A function with a body: the only thing either attribute accepts.
    Fn(Box<ItemFn>),
    /// A trait method declared without a body.
    Bodyless(Box<TraitItemFn>),
    /// Any other item (a struct, a `const`, a `mod`, …).
    Other(Box<Item>),
}

/// What the user wrote, read but not yet judged.
pub(crate) struct Input {
    pub(crate) which: Macro,
    /// In source order; an argument that is not even syntax is its error.
    pub(crate) args: Vec<syn::Result<Arg>>,
    pub(crate) target: Target,
}

pub(crate) fn parse(which: Macro, args: TokenStream, item: TokenStream) -> syn::Result<Input> {
    let args = split(args)
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Arg(tokens) => Some(parse_arg(which, tokens)),
            Piece::Trailing => None,
            Piece::Empty(comma) => Some(Err(syn::Error::new(
                comma.span(),
                format!("expected an argument to {} before this `,`", which.attr()),
            ))),
        })
        .collect();
    Ok(Input {
        which,
        args,
        target: parse_target(item)?,
    })
}

/// One comma-separated piece of the argument list.
enum Piece {
    /// The tokens of one argument.
    Arg(TokenStream),
    /// Nothing after the last comma: a trailing comma, which is fine.
    Trailing,
    /// Nothing before this comma: `(,)` or `(a,, b)`.
    Empty(TokenTree),
}

/// Splits the argument list at its top-level commas. Brackets are single
/// token trees, so a comma inside `(…)`, `[…]` or `{…}` does not split;
/// nothing an argument may legitimately hold has a comma outside brackets.
fn split(args: TokenStream) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut current = Vec::new();
    let mut any = false;
    for tree in args {
        any = true;
        match &tree {
            TokenTree::Punct(p) if p.as_char() == ',' => {
                if current.is_empty() {
                    pieces.push(Piece::Empty(tree));
                } else {
                    pieces.push(Piece::Arg(current.drain(..).collect()));
                }
            }
            _ => current.push(tree),
        }
    }
    if !current.is_empty() {
        pieces.push(Piece::Arg(current.into_iter().collect()));
    } else if any {
        pieces.push(Piece::Trailing);
    }
    pieces
}

/// One argument: `key = value`, a bare word, or an expression, followed by
/// nothing.
fn parse_arg(which: Macro, tokens: TokenStream) -> syn::Result<Arg> {
    let attr = which.attr();
    let parser = |input: ParseStream<'_>| -> syn::Result<Arg> {
        let fork = input.fork();
        // `crate` is a keyword, so words are read with `parse_any`; `true`
        // and `false` are literals, not words.
        let word = !input.peek(syn::Lit) && fork.call(Ident::parse_any).is_ok();
        let arg =
            if word && fork.peek(Token![=]) && !fork.peek(Token![==]) && !fork.peek(Token![=>]) {
                let key = input.call(Ident::parse_any)?;
                let eq = input.parse::<Token![=]>()?;
                if input.is_empty() {
                    return Err(syn::Error::new(
                        eq.span,
                        format!("expected a value after `{key} =` in {attr}"),
                    ));
                }
                let value = input.parse::<Expr>().map_err(|error| {
                    syn::Error::new(
                        error.span(),
                        format!("expected a string literal after `{key} =` in {attr}"),
                    )
                })?;
                Arg::KeyValue { key, value }
            } else if word && fork.is_empty() {
                Arg::Flag(input.call(Ident::parse_any)?)
            } else {
                let expr = input.parse::<Expr>().map_err(|error| {
                    syn::Error::new(
                        error.span(),
                        format!("expected an argument to {attr}: {}", which.expected()),
                    )
                })?;
                Arg::Positional(expr)
            };
        if !input.is_empty() {
            return Err(input.error(format!("expected `,` between the arguments to {attr}")));
        }
        Ok(arg)
    };
    parser.parse2(tokens)
}

fn parse_target(item: TokenStream) -> syn::Result<Target> {
    match syn::parse2::<ItemFn>(item.clone()) {
        Ok(func) => Ok(Target::Fn(Box::new(func))),
        Err(fn_error) => {
            if let Ok(method) = syn::parse2::<TraitItemFn>(item.clone()) {
                if method.default.is_none() {
                    return Ok(Target::Bodyless(Box::new(method)));
                }
            }
            match syn::parse2::<Item>(item) {
                Ok(Item::Fn(_)) | Err(_) => Err(fn_error),
                Ok(other) => Ok(Target::Other(Box::new(other))),
            }
        }
    }
}

/// `#[tracing::instrument]` on the function, as far as its span's fields
/// go: the span `span = "current"` records onto when that attribute is below
/// this one (one above has already expanded, out of sight).
pub(crate) struct Instrument {
    /// The attribute as written, to point at.
    pub(crate) attr: Attribute,
    /// Whether it has a `fields(…)` argument.
    pub(crate) has_fields: bool,
    /// The field names its `fields(…)` declares, dotted as written
    /// (`total.duration_us`); `None` when one cannot be read (a `{ expr }`
    /// name, or tokens `#[instrument]` refuses anyway), so that nothing
    /// certain can be said.
    pub(crate) fields: Option<Vec<String>>,
}

/// The first `#[instrument]` or `#[tracing::instrument]` among `attrs`.
pub(crate) fn instrument(attrs: &[Attribute]) -> Option<Instrument> {
    let attr = attrs.iter().find(|attr| is_instrument(attr.path()))?;
    let args = match &attr.meta {
        Meta::Path(_) => TokenStream::new(),
        Meta::List(list) => list.tokens.clone(),
        Meta::NameValue(_) => return None,
    };
    let mut has_fields = false;
    let mut fields = Some(Vec::new());
    for piece in split(args) {
        let Piece::Arg(tokens) = piece else {
            continue;
        };
        let mut trees = tokens.into_iter();
        if let (Some(TokenTree::Ident(key)), Some(TokenTree::Group(group)), None) =
            (trees.next(), trees.next(), trees.next())
        {
            if key == "fields" && group.delimiter() == Delimiter::Parenthesis {
                has_fields = true;
                let names = field_names(group.stream());
                fields = fields.zip(names).map(|(mut all, names)| {
                    all.extend(names);
                    all
                });
            }
        }
    }
    Some(Instrument {
        attr: attr.clone(),
        has_fields,
        fields,
    })
}

/// `instrument`, `tracing::instrument` or `tracing_attributes::instrument`,
/// with or without a leading `::`.
fn is_instrument(path: &syn::Path) -> bool {
    let mut segments = path.segments.iter().rev();
    let last = segments.next().is_some_and(|s| s.ident == "instrument");
    let crate_ok = match (segments.next(), segments.next()) {
        (None, None) => path.leading_colon.is_none(),
        (Some(krate), None) => krate.ident == "tracing" || krate.ident == "tracing_attributes",
        _ => false,
    };
    last && crate_ok
}

/// The names in the parentheses of `#[instrument(fields(…))]`: each field is
/// `name`, `name = value`, `%name` or `?name`, its name dotted identifiers,
/// as `#[instrument]` reads them. `None` if a name cannot be read.
fn field_names(tokens: TokenStream) -> Option<Vec<String>> {
    let name = |input: ParseStream<'_>| -> syn::Result<String> {
        if input.peek(Token![%]) {
            input.parse::<Token![%]>()?;
        } else if input.peek(Token![?]) {
            input.parse::<Token![?]>()?;
        }
        let dotted =
            Punctuated::<Ident, Token![.]>::parse_separated_nonempty_with(input, Ident::parse_any)?;
        // The value, if any, is not ours to read.
        input.parse::<TokenStream>()?;
        let names: Vec<String> = dotted.iter().map(ToString::to_string).collect();
        Ok(names.join("."))
    };
    split(tokens)
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Arg(field) => Some(name.parse2(field).ok()),
            Piece::Trailing | Piece::Empty(_) => None,
        })
        .collect()
}
