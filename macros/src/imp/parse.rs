//! Stage one: tokens to syntax. Nothing is judged here beyond what syn needs
//! to read the input; `validate` decides what the syntax means.

use proc_macro2::TokenStream;
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream, Parser as _};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Item, ItemFn, Token, TraitItemFn};

/// Which attribute is being expanded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Macro {
    TimedHandler,
    ExternalCall,
}

impl Macro {
    /// The attribute as the user writes it, for error messages.
    pub(crate) fn attr(self) -> &'static str {
        match self {
            Self::TimedHandler => "#[timed_handler]",
            Self::ExternalCall => "#[external_call]",
        }
    }
}

/// One argument inside the attribute's parentheses.
pub(crate) enum Arg {
    /// `key = value`.
    KeyValue { key: Ident, value: Expr },
    /// A bare word: `polls`, or a dependency name written without quotes.
    Flag(Ident),
    /// Anything else: a literal such as `"redis"`, or a stray expression.
    Positional(Expr),
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        // `crate` is a keyword, so words are read with `parse_any`.
        if input.peek(Ident::peek_any) && !input.peek(syn::Lit) {
            let fork = input.fork();
            let _ = fork.call(Ident::parse_any)?;
            if fork.peek(Token![=]) && !fork.peek(Token![==]) {
                let key = input.call(Ident::parse_any)?;
                input.parse::<Token![=]>()?;
                let value = input.parse()?;
                return Ok(Self::KeyValue { key, value });
            }
            if fork.is_empty() || fork.peek(Token![,]) {
                return Ok(Self::Flag(input.call(Ident::parse_any)?));
            }
        }
        Ok(Self::Positional(input.parse()?))
    }
}

/// The annotated item.
pub(crate) enum Target {
    /// A function with a body: the only thing either attribute accepts.
    Fn(ItemFn),
    /// A trait method declared without a body.
    Bodyless(Box<TraitItemFn>),
    /// Any other item (a struct, a `const`, a `mod`, …).
    Other(Box<Item>),
}

/// What the user wrote, read but not yet judged.
pub(crate) struct Input {
    pub(crate) which: Macro,
    pub(crate) args: Vec<Arg>,
    pub(crate) target: Target,
}

pub(crate) fn parse(which: Macro, args: TokenStream, item: TokenStream) -> syn::Result<Input> {
    let args = Punctuated::<Arg, Token![,]>::parse_terminated
        .parse2(args)?
        .into_iter()
        .collect();
    Ok(Input {
        which,
        args,
        target: parse_target(item)?,
    })
}

fn parse_target(item: TokenStream) -> syn::Result<Target> {
    match syn::parse2::<ItemFn>(item.clone()) {
        Ok(func) => Ok(Target::Fn(func)),
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
