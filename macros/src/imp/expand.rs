//! Stage three: emit the function again with its body handed to
//! `::selftime::__private`. Only called on input `validate` accepted.
//!
//! Every expansion keeps the signature as written (name, generics, where
//! clause, `async`, visibility, attributes, docs), so the function is still
//! what callers and trait impls expect; only the body changes.

use super::shape::{Kind, Shape};
use super::validate::{Config, SpanMode, Valid};
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{AttrStyle, Ident, ItemFn, Path, Stmt, Type};

pub(crate) fn expand(valid: Valid) -> TokenStream {
    let Valid {
        func,
        shape,
        krate,
        config,
    } = valid;
    let body = match &config {
        Config::Handler {
            name,
            level,
            span,
            split,
        } => expand_handler(&krate, name, level, span, *split, &func, &shape),
        Config::External { dep, until_wake } => {
            expand_external(&krate, dep, *until_wake, &func, &shape)
        }
    };
    let ItemFn {
        attrs, vis, sig, ..
    } = &func;
    let outer = attrs.iter().filter(|a| matches!(a.style, AttrStyle::Outer));
    let inner = attrs
        .iter()
        .filter(|a| matches!(a.style, AttrStyle::Inner(_)));
    quote! {
        #(#outer)*
        #vis #sig {
            #(#inner)*
            #body
        }
    }
}

// Input:
//     #[timed_handler]
//     async fn checkout(cart: Cart) -> Result<Receipt, Error> { body }
//
// Output:
//     async fn checkout(cart: Cart) -> Result<Receipt, Error> {
//         ::selftime::__private::Spec::new(
//             "checkout",
//             ::selftime::__private::span!(INFO, "checkout"),
//         )
//         .run_async(async move { <fake return> body }, <classifier>)
//         .await
//     }
//
// A plain fn runs `.run_sync(move || { body }, …)`. A fn returning a future
// runs `.run_returned(move || -> <return type> { body }, …)`: the body
// builds the future, then the future runs, all in the handler; for a boxed
// future (or an `impl Future + Unpin`) that is wrapped in
// `::selftime::__private::boxed(…)` to fit the return type. A body ending in
// `Box::pin(async move { … })` keeps its prefix and boxes
// `….run_async(async move { … }, …)` instead. With `split`, the span macro
// declares the three split fields and the handler is built
// `Spec::new(…).with_split()`.
fn expand_handler(
    krate: &Path,
    name: &str,
    level: &Ident,
    span: &SpanMode,
    split: bool,
    func: &ItemFn,
    shape: &Shape,
) -> TokenStream {
    let value = shape.value.as_ref();
    let split_arm = split.then(|| quote!(split,));
    let span = match span {
        SpanMode::New => quote!(#krate::__private::span!(#split_arm #level, #name)),
        SpanMode::Current => quote!(#krate::__private::tracing::Span::current()),
    };
    let with_split = split.then(|| quote!(.with_split()));
    let handler = quote!(#krate::__private::Spec::new(#name, #span) #with_split);
    let classifier = classifier(krate, value);
    let stmts = &func.block.stmts;
    match &shape.kind {
        Kind::Async => {
            let fake = fake_return(value, &TokenStream::new());
            quote! {
                #handler.run_async(async move { #fake #(#stmts)* }, #classifier).await
            }
        }
        Kind::Sync => {
            let fake = fake_return(value, &not_a_future(krate, value));
            quote! {
                #handler.run_sync(move || { #fake #(#stmts)* }, #classifier)
            }
        }
        Kind::Returns { boxed, ret, span } => {
            let body = builder(ret.as_ref(), stmts);
            let run = quote!(#handler.run_returned(#body, #classifier));
            fitted(krate, *boxed, *span, run)
        }
        Kind::BoxedBlock { boxer, block } => quote! {
            #boxer(#handler.run_async(#block, #classifier))
        },
    }
}

// Input:
//     #[external_call("redis")]
//     async fn get_session(id: &str) -> Option<Session> { body }
//
// Output:
//     async fn get_session(id: &str) -> Option<Session> {
//         let __selftime_call = ::selftime::__private::begin_call({
//             static __SELFTIME_SITE: ::selftime::__private::Site =
//                 ::selftime::__private::Site::new("get_session", ::core::module_path!(), "redis");
//             &__SELFTIME_SITE
//         });
//         body
//     }
//
// The call begins when the body starts (the future's first poll) and ends
// when the guard is dropped with the body's other locals: however the body
// ends, or when the future is dropped mid-call. The guard is the first
// local, so it is dropped last. The body is not wrapped in a future of its
// own: that future would hold the arguments a second time and add a poll
// layer to every call. With `until_wake` it is, since the call must see the
// wakes:
//     ::selftime::__private::external({ static …; &… }, async move { <fake return> body })
//         .until_wake()
//         .await
//
// A plain fn runs its body as the call, in a closure (so that the call
// ends however the body does, and nothing the expansion makes can outlive
// it):
//     fn get_session(id: &str) -> Option<Session> {
//         ::selftime::__private::external_sync(
//             { static …; &… },
//             move || { <fake return> body },
//         )
//     }
// A fn returning a future measures the future its body returns:
//     ::selftime::__private::external(
//         { static …; &… },
//         ::selftime::__private::returned(move || -> <return type> { body }),
//     )
// in `::selftime::__private::boxed(…)` for a boxed future; a body ending in
// `Box::pin(async move { … })` measures the boxed block; `until_wake` adds
// `.until_wake()` to the future. The site holds the dependency (every call
// through it is billed there, its number looked up once) and names the
// function in the warning about calls made outside any handler; it is a
// `static` in a block of its own, so its name cannot meet the user's items.
fn expand_external(
    krate: &Path,
    dep: &str,
    until_wake: bool,
    func: &ItemFn,
    shape: &Shape,
) -> TokenStream {
    let value = shape.value.as_ref();
    let site_name = Ident::new("__SELFTIME_SITE", Span::mixed_site());
    let function = func.sig.ident.to_string();
    let function = function.strip_prefix("r#").unwrap_or(&function);
    let site = quote! {{
        static #site_name: #krate::__private::Site =
            #krate::__private::Site::new(#function, ::core::module_path!(), #dep);
        &#site_name
    }};
    let wake_mode = until_wake.then(|| quote!(.until_wake()));
    let stmts = &func.block.stmts;
    match &shape.kind {
        Kind::Async if !until_wake => {
            let call = Ident::new("__selftime_call", Span::mixed_site());
            quote! {
                let #call = #krate::__private::begin_call(#site);
                #(#stmts)*
            }
        }
        Kind::Async => {
            let fake = fake_return(value, &TokenStream::new());
            quote! {
                #krate::__private::external(#site, async move { #fake #(#stmts)* })
                    #wake_mode
                    .await
            }
        }
        Kind::Sync => {
            let fake = fake_return(value, &not_a_future(krate, value));
            quote! {
                #krate::__private::external_sync(#site, move || { #fake #(#stmts)* })
            }
        }
        Kind::Returns { boxed, ret, span } => {
            let body = builder(ret.as_ref(), stmts);
            let call = quote! {
                #krate::__private::external(#site, #krate::__private::returned(#body))
                    #wake_mode
            };
            fitted(krate, *boxed, *span, call)
        }
        Kind::BoxedBlock { boxer, block } => quote! {
            #boxer(#krate::__private::external(#site, #block) #wake_mode)
        },
    }
}

/// The closure that runs the body of a fn returning a future, and returns
/// it: `move || -> <return type> { body }`, so that the declared type still
/// drives inference (and a `return` in the body returns the future to be
/// measured, not from the function).
fn builder(ret: Option<&Type>, stmts: &[Stmt]) -> TokenStream {
    if let Some(ret) = ret {
        quote!(move || -> #ret { #(#stmts)* })
    } else {
        quote!(move || { #(#stmts)* })
    }
}

/// The measured future, boxed when the return type is a boxed future. The
/// call is located at the return type, so that a type that cannot hold it
/// (`future` on a future that is not boxed) is the error's place.
fn fitted(krate: &Path, boxed: bool, span: Span, measured: TokenStream) -> TokenStream {
    if !boxed {
        return measured;
    }
    let krate: TokenStream = krate
        .to_token_stream()
        .into_iter()
        .map(|mut token| {
            token.set_span(token.span().located_at(span));
            token
        })
        .collect();
    quote_spanned!(span=> #krate::__private::boxed(#measured))
}

/// The function telling an `error` outcome from an `ok` one, chosen by type.
fn classifier(krate: &Path, value: Option<&Type>) -> TokenStream {
    let Some(ty) = value else {
        return quote!(#krate::__private::never_error);
    };
    let span = ty.span();
    quote_spanned! {span=>
        {
            #[allow(unused_imports)]
            use #krate::__private::{IsResult as _, NotResult as _};
            (&#krate::__private::Probe::<#ty>::new()).__selftime_classifier()
        }
    }
}

/// For a fn measured as a plain fn: a check, at compile time only, that
/// its return type is not a future after all (one the macro cannot tell by
/// its name: `Self::Future`, `std::future::Ready<T>`), which would be timed
/// only while it is built. Method resolution picks, for a future, the method
/// whose bound no type meets, so the user gets an error at the return type
/// that no `allow` can silence.
fn not_a_future(krate: &Path, value: Option<&Type>) -> TokenStream {
    let Some(ty) = value else {
        return TokenStream::new();
    };
    let span = ty.span();
    quote_spanned! {span=>
        {
            #[allow(unused_imports)]
            use #krate::__private::{ReturnsAFuture as _, ReturnsAValue as _};
            (&#krate::__private::Probe::<#ty>::new()).__selftime_returns_a_value();
        }
    }
}

/// A return statement that is never taken but fixes the type of the block
/// it stands in, so that `?` and `.into()` in the body infer from the
/// declared return type as they did before the body was moved; `check`
/// goes in the same untaken branch.
fn fake_return(value: Option<&Type>, check: &TokenStream) -> TokenStream {
    let Some(ty) = value else {
        return TokenStream::new();
    };
    let span = ty.span();
    let ret = Ident::new("__selftime_fake_return", Span::mixed_site());
    let ty = ty.to_token_stream();
    quote_spanned! {span=>
        #[allow(
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::let_unit_value,
            clippy::unreachable,
            clippy::needless_return
        )]
        if false {
            #check
            let #ret: #ty = ::core::unreachable!();
            return #ret;
        }
    }
}
