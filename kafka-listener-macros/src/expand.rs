//! The expansion: the user's function unchanged, plus its invoker registered with inventory.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Meta, ReturnType, Token, Type};

use crate::args::{private, Errors, ListenerArgs};

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let function: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let mut out = e.to_compile_error();
            out.extend(item);
            return out;
        }
    };
    let mut errors = Errors::default();
    let args = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr) {
        Ok(metas) => ListenerArgs::parse(metas, &mut errors),
        Err(e) => {
            errors.push(e);
            ListenerArgs::default()
        }
    };
    let params = check_signature(&function, &args, &mut errors);
    match errors.into_result() {
        // On failure the function is still emitted, so that IDEs and other code keep working.
        Err(e) => {
            let mut out = e.to_compile_error();
            out.extend(quote!(#function));
            out
        }
        Ok(()) => generate(&function, &args, &params),
    }
}

/// The last path segment of a parameter type, to recognise `Acknowledgment` and friends.
fn last_segment(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        Type::Group(g) => last_segment(&g.elem),
        Type::Paren(p) => last_segment(&p.elem),
        _ => None,
    }
}

fn check_signature<'f>(function: &'f ItemFn, args: &ListenerArgs, errors: &mut Errors) -> Vec<&'f Type> {
    let sig = &function.sig;
    if !sig.generics.params.is_empty() {
        errors.add(
            sig.generics.span(),
            "a kafka listener cannot be generic: the framework must know the parameter types",
        );
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        errors.add(where_clause.span(), "a kafka listener cannot have a where clause");
    }
    if let Some(variadic) = &sig.variadic {
        errors.add(variadic.span(), "a kafka listener cannot be variadic");
    }
    let mut params = Vec::new();
    let mut acknowledgment: Option<Span> = None;
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.add(
                receiver.span(),
                "a kafka listener cannot be a method: write a free function and reach shared data through State<T>",
            ),
            FnArg::Typed(pat) => {
                let ty = &*pat.ty;
                if let Type::Reference(reference) = ty {
                    errors.add(reference.span(), "listener parameters are owned extractors: take String instead of &str, Vec<u8> or Bytes instead of &[u8]");
                }
                if last_segment(ty).as_deref() == Some("Acknowledgment") {
                    if let Some(first) = acknowledgment {
                        let mut e = syn::Error::new(ty.span(), "a listener takes at most one Acknowledgment");
                        e.combine(syn::Error::new(first, "the first Acknowledgment is here"));
                        errors.push(e);
                    }
                    acknowledgment = Some(ty.span());
                    if let Some(mode) = args.ack_mode {
                        if !mode.is_manual() {
                            errors.add(
                                ty.span(),
                                "an Acknowledgment needs ack_mode \"manual\" or \"manual_immediate\", but this listener declares another ack mode",
                            );
                        }
                    }
                }
                params.push(ty);
            }
        }
    }
    params
}

fn generate(function: &ItemFn, args: &ListenerArgs, params: &[&Type]) -> TokenStream {
    let name = &function.sig.ident;
    let private = private();
    let vars: Vec<_> = (0..params.len()).map(|i| format_ident!("__arg{}", i)).collect();
    let call = quote_spanned!(function.sig.ident.span()=> #name(#(#vars),*));
    let is_async = function.sig.asyncness.is_some();
    // Started as a task (a concurrent processing order): the future, or the call, with its
    // converted arguments moved in; a future that is not `Send` is reported at the function.
    let job = if is_async {
        quote_spanned!(function.sig.ident.span()=> #private::Job::Async(::std::boxed::Box::pin(async move {
            let __result = #call.await;
            (__output.record)(__result)
        })))
    } else {
        quote_spanned!(function.sig.ident.span()=> #private::Job::Blocking(::std::boxed::Box::new(move || {
            let __result = #call;
            (__output.record)(__result)
        })))
    };
    let call = if is_async { quote!(#private::drive(#call)) } else { call };
    let result_span = match &function.sig.output {
        ReturnType::Default => function.sig.ident.span(),
        ReturnType::Type(_, ty) => ty.span(),
    };

    // Record and batch listeners differ only in these names.
    let (param_fn, conversion, outcome_fn, input, input_ty, outcome, variant) = if args.batch {
        (
            quote!(batch_param),
            quote!(batch_conversion),
            quote!(batch),
            quote!(__records),
            quote!(&[#private::Record<'_>]),
            quote!(#private::BatchOutcome),
            quote!(Batch),
        )
    } else {
        (
            quote!(record_param),
            quote!(conversion),
            quote!(record),
            quote!(__record),
            quote!(&#private::Record<'_>),
            quote!(#private::RecordOutcome),
            quote!(Record),
        )
    };
    // Each parameter type is named once, spanned on itself, so that a type that is not an
    // extractor gives one error there.
    let param = |ty: &Type| quote_spanned!(ty.span()=> #private::#param_fn::<#ty>());
    let converts = params.iter().zip(&vars).map(|(ty, var)| {
        let param = param(ty);
        quote!(let #var = (#param.convert)(#input, __cx).map_err(#private::#conversion)?;)
    });
    let requirements = params.iter().map(|ty| {
        let param = param(ty);
        quote!((#param.requirements)(__requirements);)
    });
    // The return type, named once (spanned on itself): how it becomes an outcome, whether it replies.
    let output = match &function.sig.output {
        ReturnType::Default => quote!(#private::output::<()>()),
        ReturnType::Type(_, ty) => quote_spanned!(ty.span()=> #private::output::<#ty>()),
    };
    let requirements = quote!(#(#requirements)* __requirements.replies = #output.replies;);
    // The result is named with the return type's span: an unsupported return type is reported there.
    let result = quote_spanned!(result_span=> __result);

    let (start, invokers) = if args.batch {
        (quote!(), quote!(__invoke))
    } else {
        let converts = params.iter().zip(&vars).map(|(ty, var)| {
            let param = param(ty);
            quote!(let #var = (#param.convert)(__record, __cx).map_err(#private::conversion)?;)
        });
        (
            quote! {
                #[allow(non_snake_case, clippy::needless_question_mark, clippy::unit_arg, clippy::let_unit_value)]
                fn __start(
                    __record: &#private::Record<'_>,
                    __cx: &#private::ListenerContext<'_>,
                ) -> ::core::result::Result<#private::Job, #private::ListenerFailure> {
                    #(#converts)*
                    let __output = #output;
                    ::core::result::Result::Ok(#job)
                }
            },
            quote!(__invoke, __start),
        )
    };
    let function_name = name.to_string();
    let path = quote!(::core::concat!(::core::module_path!(), "::", #function_name));
    let id = match &args.id {
        Some(id) => quote!(#id),
        None => path.clone(),
    };
    let calls = &args.calls;

    quote! {
        #function

        #[doc(hidden)]
        const _: () = {
            #[allow(non_snake_case, clippy::needless_question_mark, clippy::unit_arg)]
            fn __invoke(#input: #input_ty, __cx: &#private::ListenerContext<'_>) -> #outcome {
                #(#converts)*
                let #result = #call;
                (#output.#outcome_fn)(#result)
            }

            #start

            #[allow(non_snake_case, clippy::needless_question_mark, clippy::unit_arg)]
            fn __requirements(__requirements: &mut #private::Requirements) {
                #requirements
            }

            fn __endpoint() -> #private::Endpoint {
                #private::Endpoint::new(#id)
                    #(#calls)*
                    .generated_handler(#private::AnnotatedInvoke::#variant(#invokers), __requirements)
                    .defined_at(::core::concat!(#path, " (", ::core::file!(), ":", ::core::line!(), ")"))
            }

            #private::inventory::submit! {
                #private::AnnotatedListener { build: __endpoint }
            }
        };
    }
}
