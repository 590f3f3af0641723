//! What a function's shape is, decided once, from its signature and body:
//! `validate` reports what cannot be measured, `expand` wraps the function
//! as the shape says. Nothing else looks at a return type to tell whether
//! it is a future.
//!
//! A function whose return type is a future is measured over the future's
//! life, whatever its body: `async fn`; `impl Future<…>`; a boxed future,
//! `Pin<Box<dyn Future<…> + …>>`, or any path ending in `BoxFuture` or
//! `LocalBoxFuture`; and a return type the user declares a future with the
//! `future` argument. A return type that names a future inside another
//! type (`Option<impl Future>`, a closure returning futures), or one the
//! measured future cannot be returned as (an unpinned `Box<dyn Future>`, a
//! `dyn Future + Unpin`), is refused at the return type: measuring it would
//! time the construction of the future, not the wait.
//!
//! A value that does its work only when the caller drives it, after the
//! function has returned, is refused at the return type for the same
//! reason, `async fn` included: an iterator (`impl Iterator`, and the other
//! iterator traits), a stream (`impl Stream`, any trait path ending in
//! `Stream`, `BoxStream`), an `impl IntoFuture`, a closure (`impl Fn…`),
//! as the return type itself, boxed or not. Any other `impl Trait`
//! (`impl Display`, `impl Into<T>`, `impl IntoResponse`) is a value built
//! by the time the function returns, and is measured as one; so is a lazy
//! value inside another type (`Sse<impl Stream<…>>`), which is a response
//! the caller delivers, not the function's work.

use super::parse::Macro;
use proc_macro2::Span;
use syn::spanned::Spanned as _;
use syn::visit::Visit;
use syn::{
    Expr, ExprAsync, GenericArgument, Ident, ItemFn, PathArguments, ReturnType, Stmt, Type,
    TypeParamBound,
};

/// How the function produces its value, and the value's type.
pub(crate) struct Shape {
    pub(crate) kind: Kind,
    /// The type of the value the handler or call produces: the return type,
    /// or the future's output. `None` when it cannot be written in the body.
    pub(crate) value: Option<Type>,
}

pub(crate) enum Kind {
    /// `async fn`: the body becomes an `async move` block.
    Async,
    /// A plain fn whose value is not a future: measured while it runs.
    Sync,
    /// A plain fn returning a future: the body runs to build the future,
    /// which is then measured to its end.
    Returns {
        /// The measured future is boxed to fit the return type: a boxed
        /// future, or an `impl Future + Unpin`.
        boxed: bool,
        /// The declared return type, when it can be written in the body: the
        /// closure that runs the body declares it, so that it still drives
        /// inference.
        ret: Option<Type>,
        /// Where the return type is written, for errors about it.
        span: Span,
    },
    /// A plain fn returning a future whose whole body is
    /// `Box::pin(async move { … })`: the code `#[async_trait]` generates, and
    /// hand-written boxed recursion. The block is measured in place. (With
    /// statements before it, which may `return` another future, the body is
    /// [`Kind::Returns`].)
    BoxedBlock {
        /// `Box::pin` as written.
        boxer: Expr,
        block: ExprAsync,
    },
}

impl Shape {
    /// Whether the function's value is a future, measured to its end, rather
    /// than a value measured while the function runs.
    pub(crate) fn is_future(&self) -> bool {
        !matches!(self.kind, Kind::Sync)
    }
}

/// The shape of `func`, or why it cannot be measured. `future` is the
/// `future` argument, if given.
pub(crate) fn decide(which: Macro, func: &ItemFn, future: Option<&Ident>) -> syn::Result<Shape> {
    let attr = which.attr();
    if func.sig.asyncness.is_some() {
        if let Some(future) = future {
            return Err(syn::Error::new_spanned(
                future,
                format!(
                    "`future` in {attr} is for a plain fn returning a future under a name the \
                     macro cannot see through; an `async fn` is measured to its end already: \
                     remove `future`"
                ),
            ));
        }
        if let ReturnType::Type(_, ty) = &func.sig.output {
            if let Some(lazy) = lazy(ty) {
                return Err(syn::Error::new_spanned(
                    ty,
                    format!("{attr} {}", lazy.message()),
                ));
            }
        }
        return Ok(Shape {
            kind: Kind::Async,
            value: declared(&func.sig.output),
        });
    }
    let ty = match &func.sig.output {
        ReturnType::Type(_, ty) => &**ty,
        ReturnType::Default => {
            if let Some(future) = future {
                return Err(syn::Error::new_spanned(
                    future,
                    format!(
                        "`future` in {attr} says the function returns a future, and `{}` \
                         returns `()`: remove `future`",
                        func.sig.ident,
                    ),
                ));
            }
            return Ok(Shape {
                kind: Kind::Sync,
                value: Some(unit()),
            });
        }
    };
    let returned = match classify(ty) {
        Returns::Refused(message) => {
            return Err(syn::Error::new_spanned(ty, format!("{attr} {message}")));
        }
        Returns::Future(returned) => {
            if let Some(future) = future {
                return Err(syn::Error::new_spanned(
                    future,
                    format!(
                        "`future` in {attr} has no effect: the return type is a future the \
                         macro recognises; remove `future`"
                    ),
                ));
            }
            Some(returned)
        }
        // The user's word: a future under a name of their own, boxed.
        Returns::Value if future.is_some() => Some(FutureType {
            boxed: true,
            output: Output::OfTrait,
        }),
        Returns::Value => None,
    };
    let boxed_block = boxed_block(func);
    let Some(returned) = returned.or_else(|| {
        // A body that ends by boxing an async block returns a future,
        // whatever the return type is called: boxed, so that the measured
        // future fits it however the body ends.
        boxed_block.is_some().then_some(FutureType {
            boxed: true,
            output: Output::OfTrait,
        })
    }) else {
        return Ok(Shape {
            kind: Kind::Sync,
            value: declared(&func.sig.output),
        });
    };
    let value = match returned.output {
        Output::Named(value) => Some(*value),
        Output::Unnamed => None,
        // Never a panic in the macro: a type that does not parse back (none
        // is known to) is simply not written in the body.
        Output::OfTrait => syn::parse2(quote::quote!(<#ty as ::core::future::Future>::Output)).ok(),
    }
    .filter(nameable);
    let kind = match boxed_block {
        Some((prefix, boxer, block)) if prefix.is_empty() => Kind::BoxedBlock { boxer, block },
        _ => Kind::Returns {
            boxed: returned.boxed,
            ret: Some(ty.clone()).filter(nameable),
            span: ty.span(),
        },
    };
    Ok(Shape { kind, value })
}

/// What a return type says about the value.
enum Returns {
    /// A future the macro can wrap.
    Future(FutureType),
    /// Something that is not a future, as far as the macro can see.
    Value,
    /// A type that names a future the macro cannot wrap; the message says
    /// why, after the attribute's name.
    Refused(&'static str),
}

/// A future return type.
struct FutureType {
    /// Whether the measured future must be boxed to fit it.
    boxed: bool,
    output: Output,
}

/// The future's `Output`.
enum Output {
    /// As written: `Future<Output = T>`.
    Named(Box<Type>),
    /// Not written (`impl Future`).
    Unnamed,
    /// Through the `Future` trait: a type alias (`BoxFuture<'a, T>`, or the
    /// user's own) hides it.
    OfTrait,
}

const HOLDS_A_FUTURE: &str = "cannot measure this return type, which names a future inside \
    another type: put it on a function whose return type is the future itself, as \
    `impl Future<Output = T>`, `Pin<Box<dyn Future<Output = T> + Send>>` or `BoxFuture<'_, T>`";

const UNPINNED_BOX: &str = "cannot return the measured future as `Box<dyn Future<…>>`: \
    return `Pin<Box<dyn Future<…>>>` instead";

const UNPIN_DYN: &str = "cannot return the measured future as `dyn Future + Unpin`: it is not \
    `Unpin`; remove `+ Unpin`, or return `impl Future<Output = T> + Unpin`";

/// What `ty`, a return type, says about the function's value.
fn classify(ty: &Type) -> Returns {
    match ty {
        Type::Paren(inner) => return classify(&inner.elem),
        Type::Group(inner) => return classify(&inner.elem),
        Type::ImplTrait(imp) => {
            if let Some(output) = future_bound(&imp.bounds) {
                return Returns::Future(FutureType {
                    boxed: has_unpin(&imp.bounds),
                    output,
                });
            }
        }
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last();
            if let Some(name) = last.map(|s| &s.ident) {
                if name == "BoxFuture" || name == "LocalBoxFuture" {
                    return Returns::Future(FutureType {
                        boxed: true,
                        output: Output::OfTrait,
                    });
                }
            }
            if let Some(pinned) = only_argument(&path.path, "Pin") {
                if let Some(boxed) = boxed(pinned) {
                    if let Some(output) = future_bound(boxed) {
                        if has_unpin(boxed) {
                            return Returns::Refused(UNPIN_DYN);
                        }
                        return Returns::Future(FutureType {
                            boxed: true,
                            output,
                        });
                    }
                }
            }
            if let Some(bounds) = boxed(ty) {
                if future_bound(bounds).is_some() {
                    return Returns::Refused(UNPINNED_BOX);
                }
            }
        }
        _ => {}
    }
    // A closure making futures is refused as one that names a future.
    if let Some(lazy) = lazy(ty).filter(|_| !names_a_future(ty)) {
        return Returns::Refused(lazy.message());
    }
    if names_a_future(ty) {
        Returns::Refused(HOLDS_A_FUTURE)
    } else {
        Returns::Value
    }
}

type Bounds = syn::punctuated::Punctuated<TypeParamBound, syn::token::Plus>;

/// For `Box<dyn …>` or `Box<impl …>`, the bounds.
fn boxed(ty: &Type) -> Option<&Bounds> {
    match ty {
        Type::Path(path) if path.qself.is_none() => bounds(only_argument(&path.path, "Box")?),
        Type::Paren(inner) => boxed(&inner.elem),
        Type::Group(inner) => boxed(&inner.elem),
        _ => None,
    }
}

/// The bounds of `dyn …` or `impl …`, through parentheses.
fn bounds(ty: &Type) -> Option<&Bounds> {
    match ty {
        Type::TraitObject(object) => Some(&object.bounds),
        Type::ImplTrait(imp) => Some(&imp.bounds),
        Type::Paren(inner) => bounds(&inner.elem),
        Type::Group(inner) => bounds(&inner.elem),
        _ => None,
    }
}

/// For a path ending in `name<T>` with one type argument, `T`.
fn only_argument<'a>(path: &'a syn::Path, name: &str) -> Option<&'a Type> {
    let last = path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut args = args.args.iter();
    match (args.next(), args.next()) {
        (Some(GenericArgument::Type(ty)), None) => Some(ty),
        _ => None,
    }
}

/// For bounds that include `Future` (or `Future<Output = T>`), its output.
fn future_bound(bounds: &Bounds) -> Option<Output> {
    bounds.iter().find_map(|bound| {
        let TypeParamBound::Trait(t) = bound else {
            return None;
        };
        let last = t.path.segments.last()?;
        if last.ident != "Future" {
            return None;
        }
        let PathArguments::AngleBracketed(args) = &last.arguments else {
            return Some(Output::Unnamed);
        };
        Some(
            args.args
                .iter()
                .find_map(|arg| match arg {
                    GenericArgument::AssocType(assoc) if assoc.ident == "Output" => {
                        Some(Output::Named(Box::new(assoc.ty.clone())))
                    }
                    _ => None,
                })
                .unwrap_or(Output::Unnamed),
        )
    })
}

fn has_unpin(bounds: &Bounds) -> bool {
    bounds.iter().any(|bound| {
        matches!(bound, TypeParamBound::Trait(t)
            if t.path.segments.last().is_some_and(|s| s.ident == "Unpin"))
    })
}

/// Whether `ty` names a future anywhere: an `impl` or `dyn` bound on
/// `Future`, or a path ending in `BoxFuture` or `LocalBoxFuture`.
fn names_a_future(ty: &Type) -> bool {
    struct Finder(bool);
    impl Visit<'_> for Finder {
        fn visit_type_impl_trait(&mut self, imp: &syn::TypeImplTrait) {
            self.0 |= future_bound(&imp.bounds).is_some();
            syn::visit::visit_type_impl_trait(self, imp);
        }
        fn visit_type_trait_object(&mut self, object: &syn::TypeTraitObject) {
            self.0 |= future_bound(&object.bounds).is_some();
            syn::visit::visit_type_trait_object(self, object);
        }
        fn visit_path_segment(&mut self, segment: &syn::PathSegment) {
            self.0 |= segment.ident == "BoxFuture" || segment.ident == "LocalBoxFuture";
            syn::visit::visit_path_segment(self, segment);
        }
    }
    let mut finder = Finder(false);
    finder.visit_type(ty);
    finder.0
}

/// A body ending in `Box::pin(async …)`: its statements before that, the
/// `Box::pin` as written, and the block.
fn boxed_block(func: &ItemFn) -> Option<(Vec<Stmt>, Expr, ExprAsync)> {
    if matches!(func.sig.output, ReturnType::Default) {
        return None;
    }
    let (Stmt::Expr(Expr::Call(call), None), prefix) = func.block.stmts.split_last()? else {
        return None;
    };
    let (Expr::Path(path), Some(Expr::Async(block))) = (&*call.func, call.args.first()) else {
        return None;
    };
    let mut segments = path.path.segments.iter().rev();
    let pin = segments.next().is_some_and(|s| s.ident == "pin");
    let boxed = segments.next().is_some_and(|s| s.ident == "Box");
    (pin && boxed && call.args.len() == 1)
        .then(|| (prefix.to_vec(), (*call.func).clone(), block.clone()))
}

/// The declared return type (`()` when there is none), if it can be
/// written in the body.
fn declared(output: &ReturnType) -> Option<Type> {
    match output {
        ReturnType::Default => Some(unit()),
        ReturnType::Type(_, ty) => Some((**ty).clone()).filter(nameable),
    }
}

/// `()`, the value of functions without a return type.
fn unit() -> Type {
    Type::Tuple(syn::TypeTuple {
        paren_token: syn::token::Paren::default(),
        elems: syn::punctuated::Punctuated::new(),
    })
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

/// A value that does its work when the caller drives it, after the function
/// has returned: measuring the function would leave that work out.
#[derive(Clone, Copy)]
enum Lazy {
    Iterator,
    Stream,
    IntoFuture,
    Closure,
}

impl Lazy {
    /// Why it is refused and what to write instead, after the attribute's
    /// name.
    fn message(self) -> &'static str {
        match self {
            Self::Iterator => {
                "cannot measure a fn that returns an iterator: an iterator does its work \
                 when it is consumed, after the fn has returned, and the figures would \
                 leave that out; collect it in the body and return the collection \
                 (`Vec<T>`), or put the attribute on the code that consumes it"
            }
            Self::Stream => {
                "cannot measure a fn that returns a stream: a stream does its work when it \
                 is polled, after the fn has returned, and the figures would leave that \
                 out; collect it in an `async fn` and return the collection, or put the \
                 attribute on the code that polls the stream"
            }
            Self::IntoFuture => {
                "cannot measure a fn that returns `impl IntoFuture`: its future is made and \
                 run when the caller awaits it, after the fn has returned, and the figures \
                 would leave that out; return `impl Future<Output = T>` instead (call \
                 `.into_future()` in the body if need be): callers' `.await` is unchanged"
            }
            Self::Closure => {
                "cannot measure a fn that returns a closure: the closure does its work when \
                 it is called, after the fn has returned, and the figures would leave that \
                 out; put the attribute on a fn the closure calls"
            }
        }
    }
}

/// Whether `ty`, a return type, is itself a lazy value: an `impl` of a lazy
/// trait, one boxed as `Box<dyn …>` or `Pin<Box<dyn …>>`, or `BoxStream` /
/// `LocalBoxStream` (any path ending in those names). A lazy value inside
/// another type is not looked for: see the module's docs.
fn lazy(ty: &Type) -> Option<Lazy> {
    match ty {
        Type::Paren(inner) => lazy(&inner.elem),
        Type::Group(inner) => lazy(&inner.elem),
        Type::ImplTrait(imp) => lazy_bound(&imp.bounds),
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            if last.ident == "BoxStream" || last.ident == "LocalBoxStream" {
                return Some(Lazy::Stream);
            }
            let boxed = match only_argument(&path.path, "Pin") {
                Some(pinned) => boxed(pinned),
                None => boxed(ty),
            };
            boxed.and_then(lazy_bound)
        }
        _ => None,
    }
}

/// For bounds that name a lazy trait (and no `Future`, which is measured),
/// which kind it is. Traits are known by the last segment of their path,
/// as `Future` is: `futures::Stream` and `futures_core::Stream` alike.
fn lazy_bound(bounds: &Bounds) -> Option<Lazy> {
    if future_bound(bounds).is_some() {
        return None;
    }
    bounds.iter().find_map(|bound| {
        let TypeParamBound::Trait(t) = bound else {
            return None;
        };
        let name = t.path.segments.last()?.ident.to_string();
        match name.as_str() {
            "Iterator"
            | "DoubleEndedIterator"
            | "ExactSizeIterator"
            | "FusedIterator"
            | "IntoIterator" => Some(Lazy::Iterator),
            "IntoFuture" => Some(Lazy::IntoFuture),
            "Fn" | "FnMut" | "FnOnce" | "AsyncFn" | "AsyncFnMut" | "AsyncFnOnce" => {
                Some(Lazy::Closure)
            }
            _ if name.ends_with("Stream") => Some(Lazy::Stream),
            _ => None,
        }
    })
}
