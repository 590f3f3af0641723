//! The attribute macros of [`selftime`](https://docs.rs/selftime). Depend on
//! `selftime`, not on this crate: it re-exports both attributes, and the code
//! they expand to calls into it. The attributes are documented there.

mod imp;

use proc_macro::TokenStream;

/// Times a request handler: total, external and internal time, recorded on
/// its span. See `selftime::timed_handler`.
#[proc_macro_attribute]
pub fn timed_handler(args: TokenStream, item: TokenStream) -> TokenStream {
    imp::timed_handler(args.into(), item.into()).into()
}

/// Marks a function as an outbound call to a dependency. See
/// `selftime::external_call`.
#[proc_macro_attribute]
pub fn external_call(args: TokenStream, item: TokenStream) -> TokenStream {
    imp::external_call(args.into(), item.into()).into()
}
