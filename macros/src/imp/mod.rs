//! The macros' logic on `proc_macro2` tokens, so that tests can call it
//! directly (expansion snapshots, robustness): parse, validate (which asks
//! `shape` what the function is), expand.

mod expand;
mod parse;
mod shape;
mod validate;

use proc_macro2::TokenStream;

/// `#[timed_handler(args)] item`: the expansion, or the item unchanged
/// followed by the compile errors.
pub(crate) fn timed_handler(args: TokenStream, item: TokenStream) -> TokenStream {
    run(parse::Macro::TimedHandler, args, item)
}

/// `#[external_call(args)] item`: the expansion, or the item unchanged
/// followed by the compile errors.
pub(crate) fn external_call(args: TokenStream, item: TokenStream) -> TokenStream {
    run(parse::Macro::ExternalCall, args, item)
}

fn run(which: parse::Macro, args: TokenStream, item: TokenStream) -> TokenStream {
    match parse::parse(which, args, item.clone()).and_then(validate::validate) {
        Ok(valid) => expand::expand(valid),
        Err(error) => {
            // The item as written, so that one mistake in the attribute does
            // not bury the user in errors about a function that vanished.
            let mut out = item;
            out.extend(error.into_compile_error());
            out
        }
    }
}
