//! Stage three: emit the function again with its body handed to
//! `::selftime::__private`. Only called on input `validate` accepted.
//!
//! Every expansion keeps the signature as written (name, generics, where
//! clause, `async`, visibility, attributes, docs), so the function is still
//! what callers and trait impls expect; only the body changes.

use super::validate::{Config, SpanMode, Valid};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned as _;
use syn::visit::Visit;
use syn::{
    AttrStyle, Expr, ExprAsync, ExprCall, GenericArgument, Ident, ItemFn, Path, PathArguments,
    ReturnType, Stmt, Type, TypeParamBound,
};

/// How the function produces its result, which decides where the handler
/// or the call wraps it.
enum Shape<'a> {
    /// `async fn`.
    Async,
    /// A plain fn whose body ends in `Box::pin(async move { … })`: the code
    /// `#[async_trait]` generates, and hand-written boxed recursion.
    Boxed {
        prefix: &'a [Stmt],
        call: &'a ExprCall,
        block: &'a ExprAsync,
    },
    /// A plain fn returning `impl Future`.
    ReturnsFuture,
    /// A plain fn.
    Sync,
}

pub(crate) fn expand(valid: Valid) -> TokenStream {
    let Valid {
        func,
        krate,
        config,
    } = valid;
    let shape = shape(&func);
    let value = value_type(&func, &shape);
    let value = value.as_ref();
    let body = match &config {
        Config::Handler {
            name,
            level,
            span,
            polls,
        } => expand_handler(&krate, name, level, span, *polls, &func, &shape, value),
        Config::External { dep, wake } => expand_external(&krate, dep, *wake, &func, &shape, value),
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
//         ::selftime::__private::Handler::new(
//             "checkout",
//             ::selftime::__private::handler_span!(INFO, "checkout"),
//         )
//         .run_async(async move { <fake return> body }, <classifier>)
//         .await
//     }
//
// A plain fn runs `.run_sync(move || { body }, …)`; a fn returning
// `impl Future` runs `.run_returned(move || { body }, …)`; a body ending in
// `Box::pin(async move { … })` keeps its prefix and boxes
// `….run_async(async move { … }, …)` instead. With `polls`, the span macro
// declares the three split fields and the handler is built
// `Handler::new(…).with_polls()`.
#[allow(clippy::too_many_arguments)] // One per decided argument, all needed here.
fn expand_handler(
    krate: &Path,
    name: &str,
    level: &Ident,
    span: &SpanMode,
    polls: bool,
    func: &ItemFn,
    shape: &Shape<'_>,
    value: Option<&Type>,
) -> TokenStream {
    let polls_arm = polls.then(|| quote!(polls,));
    let span = match span {
        SpanMode::New => quote!(#krate::__private::handler_span!(#polls_arm #level, #name)),
        SpanMode::Current => quote!(#krate::__private::tracing::Span::current()),
    };
    let with_polls = polls.then(|| quote!(.with_polls()));
    let handler = quote!(#krate::__private::Handler::new(#name, #span) #with_polls);
    let classifier = classifier(krate, value);
    let stmts = &func.block.stmts;
    match shape {
        Shape::Async => {
            let fake = fake_return(value);
            quote! {
                #handler.run_async(async move { #fake #(#stmts)* }, #classifier).await
            }
        }
        Shape::Sync => {
            let fake = fake_return(value);
            quote! {
                #handler.run_sync(move || { #fake #(#stmts)* }, #classifier)
            }
        }
        Shape::ReturnsFuture => quote! {
            #handler.run_returned(move || { #(#stmts)* }, #classifier)
        },
        Shape::Boxed {
            prefix,
            call,
            block,
        } => {
            let boxer = &call.func;
            quote! {
                #(#prefix)*
                #boxer(#handler.run_async(#block, #classifier))
            }
        }
    }
}

// Input:
//     #[external_call("redis")]
//     async fn get_session(id: &str) -> Option<Session> { body }
//
// Output:
//     async fn get_session(id: &str) -> Option<Session> {
//         ::selftime::__private::external("redis", async move { <fake return> body })
//             .at({
//                 static __SELFTIME_SITE: ::selftime::__private::Site =
//                     ::selftime::__private::Site::new("get_session", ::core::module_path!());
//                 &__SELFTIME_SITE
//             })
//             .await
//     }
//
// A plain fn holds a guard for the length of its body instead:
//     fn get_session(id: &str) -> Option<Session> {
//         let __selftime_call = ::selftime::__private::call("redis", { static …; &… });
//         body
//     }
// A fn returning `impl Future` measures the future its body returns; a body
// ending in `Box::pin(async move { … })` measures the boxed block; `wake`
// adds `.until_wake()` to the future. The site names the function in the
// warning about calls made outside any handler; it is a `static` in a block
// of its own, so its name cannot meet the user's items.
fn expand_external(
    krate: &Path,
    dep: &str,
    wake: bool,
    func: &ItemFn,
    shape: &Shape<'_>,
    value: Option<&Type>,
) -> TokenStream {
    let site_name = Ident::new("__SELFTIME_SITE", Span::mixed_site());
    let function = func.sig.ident.to_string();
    let function = function.strip_prefix("r#").unwrap_or(&function);
    let site = quote! {{
        static #site_name: #krate::__private::Site =
            #krate::__private::Site::new(#function, ::core::module_path!());
        &#site_name
    }};
    let until_wake = wake.then(|| quote!(.until_wake()));
    let stmts = &func.block.stmts;
    match shape {
        Shape::Async => {
            let fake = fake_return(value);
            quote! {
                #krate::__private::external(#dep, async move { #fake #(#stmts)* })
                    .at(#site)
                    #until_wake
                    .await
            }
        }
        Shape::Sync => {
            let guard = Ident::new("__selftime_call", Span::mixed_site());
            quote! {
                let #guard = #krate::__private::call(#dep, #site);
                #(#stmts)*
            }
        }
        Shape::ReturnsFuture => quote! {
            #krate::__private::external(#dep, { #(#stmts)* }).at(#site) #until_wake
        },
        Shape::Boxed {
            prefix,
            call,
            block,
        } => {
            let boxer = &call.func;
            quote! {
                #(#prefix)*
                #boxer(#krate::__private::external(#dep, #block).at(#site) #until_wake)
            }
        }
    }
}

fn shape(func: &ItemFn) -> Shape<'_> {
    if func.sig.asyncness.is_some() {
        return Shape::Async;
    }
    if let Some((Stmt::Expr(Expr::Call(call), None), prefix)) = func.block.stmts.split_last() {
        if let (Expr::Path(path), Some(Expr::Async(block))) = (&*call.func, call.args.first()) {
            let mut segments = path.path.segments.iter().rev();
            let pin = segments.next().is_some_and(|s| s.ident == "pin");
            let boxed = segments.next().is_some_and(|s| s.ident == "Box");
            if pin && boxed && call.args.len() == 1 {
                return Shape::Boxed {
                    prefix,
                    call,
                    block,
                };
            }
        }
    }
    if let ReturnType::Type(_, ty) = &func.sig.output {
        if let Type::ImplTrait(imp) = &**ty {
            if imp.bounds.iter().any(|b| is_future_bound(b).is_some()) {
                return Shape::ReturnsFuture;
            }
        }
    }
    Shape::Sync
}

/// The type of the value the handler or call produces: the return type, or
/// the future's `Output` for the shapes that return a future. `None` when it
/// cannot be named.
fn value_type(func: &ItemFn, shape: &Shape<'_>) -> Option<Type> {
    let value = match (&func.sig.output, shape) {
        (ReturnType::Default, Shape::Async | Shape::Sync) => unit(),
        (ReturnType::Type(_, ty), Shape::Async | Shape::Sync) => (**ty).clone(),
        (ReturnType::Default, Shape::Boxed { .. } | Shape::ReturnsFuture) => return None,
        (ReturnType::Type(_, ty), Shape::Boxed { .. } | Shape::ReturnsFuture) => future_output(ty)?,
    };
    Some(value).filter(nameable)
}

/// `()`, the value of functions without a return type.
fn unit() -> Type {
    Type::Tuple(syn::TypeTuple {
        paren_token: syn::token::Paren::default(),
        elems: syn::punctuated::Punctuated::new(),
    })
}

/// `Output = T` of the first `Future` bound found in `ty` (through `Pin`,
/// `Box`, `dyn` and `impl`).
fn future_output(ty: &Type) -> Option<Type> {
    match ty {
        Type::ImplTrait(t) => t.bounds.iter().find_map(is_future_bound),
        Type::TraitObject(t) => t.bounds.iter().find_map(is_future_bound),
        Type::Paren(t) => future_output(&t.elem),
        Type::Group(t) => future_output(&t.elem),
        Type::Path(p) => p.path.segments.iter().find_map(|seg| match &seg.arguments {
            PathArguments::AngleBracketed(args) => args.args.iter().find_map(|arg| match arg {
                GenericArgument::Type(inner) => future_output(inner),
                _ => None,
            }),
            _ => None,
        }),
        _ => None,
    }
}

/// For a `Future<Output = T>` bound, `T`.
fn is_future_bound(bound: &TypeParamBound) -> Option<Type> {
    let TypeParamBound::Trait(t) = bound else {
        return None;
    };
    let last = t.path.segments.last()?;
    if last.ident != "Future" {
        return None;
    }
    match &last.arguments {
        PathArguments::AngleBracketed(args) => args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(assoc.ty.clone()),
            _ => None,
        }),
        _ => Some(unit()),
    }
}

/// Whether `ty` can be written inside a function body: not if it holds an
/// `impl Trait` (or a macro, whose expansion we cannot see).
fn nameable(ty: &Type) -> bool {
    struct Finder(bool);
    impl Visit<'_> for Finder {
        fn visit_type_impl_trait(&mut self, _: &syn::TypeImplTrait) {
            self.0 = true;
        }
        fn visit_type_macro(&mut self, _: &syn::TypeMacro) {
            self.0 = true;
        }
        fn visit_type_infer(&mut self, _: &syn::TypeInfer) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    finder.visit_type(ty);
    !finder.0
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

/// A return statement that is never taken but fixes the type of the block
/// it stands in, so that `?` and `.into()` in the body infer from the
/// declared return type as they did before the body was moved.
fn fake_return(value: Option<&Type>) -> TokenStream {
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
            let #ret: #ty = ::core::unreachable!();
            return #ret;
        }
    }
}
