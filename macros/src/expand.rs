//! Code generation. The output only *describes* the type to the runtime's `Registrar`; all
//! behaviour lives in `bevy_lunar::userdata`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, ItemImpl};

use crate::ast::{Function, Methods, Output, ParamKind, Receiver, Struct};
use crate::attr::{self, ImplEntry};
use crate::valid;

pub fn derive(input: &DeriveInput) -> syn::Result<TokenStream> {
    let input = Struct::from_syn(input)?;
    valid::check_struct(&input)?;

    let ident = input.ident;
    let type_name = ident.to_string();
    let exposed: Vec<_> = input.fields.iter().filter(|f| f.exposed()).collect();
    let field_names = exposed.iter().map(|f| f.lua_name());
    let fields = exposed.iter().map(|field| {
        let member = field.ident;
        let ty = field.ty;
        let name = field.lua_name();
        let readonly = field.attr.readonly.is_some();
        // Spanned at the field's name, so an unsupported type is reported on the field.
        let kind = quote_spanned!(member.span()=> (&&&FieldProbe::<#ty>::new()).field_kind());
        quote! {
            registrar.field(::bevy_lunar::userdata::Field {
                name: #name,
                get: |value| &value.#member,
                get_mut: |value| &mut value.#member,
                readonly: #readonly,
                kind: #kind,
            });
        }
    });
    let operators = operators(&input.impls);

    Ok(quote! {
        impl ::bevy_lunar::userdata::LuaUserData for #ident {
            const TYPE_NAME: &'static str = #type_name;

            fn field_names() -> &'static [&'static str] {
                &[#(#field_names),*]
            }

            fn describe<R: ::bevy_lunar::userdata::Registrar<Self>>(registrar: &mut R) {
                #[allow(unused_imports)]
                use ::bevy_lunar::userdata::__private::*;
                #(#fields)*
                // An inherent fn from #[lua_methods] if there is one, else NoLuaMethods' no-op.
                <Self>::__lua_register_methods(registrar);
                #(#operators)*
            }
        }

        impl ::bevy_lunar::mlua::UserData for #ident {
            fn register(registry: &mut ::bevy_lunar::mlua::UserDataRegistry<Self>) {
                ::bevy_lunar::userdata::register_userdata(registry);
            }
        }
    })
}

/// One registration per metamethod; binary operators listed several times (`Mul`, `Mul<f64>`)
/// share theirs.
fn operators(entries: &[ImplEntry]) -> Vec<TokenStream> {
    let mut out = Vec::new();
    let mut binary_done = Vec::new();
    for entry in entries {
        let span = entry.path.span();
        // Built with the entry's span so that a missing trait impl is reported on the entry.
        let ops = quote_spanned!(span=> ::bevy_lunar::userdata::ops);
        let name = entry.name.as_str();
        let simple = match name {
            "Display" => Some(quote_spanned!(span=> #ops::display::<Self, R>(registrar);)),
            "PartialEq" => Some(quote_spanned!(span=> #ops::eq::<Self, R>(registrar);)),
            "PartialOrd" => Some(quote_spanned!(span=> #ops::ord::<Self, R>(registrar);)),
            "Neg" => Some(quote_spanned!(span=> #ops::neg::<Self, R>(registrar);)),
            "Not" => Some(quote_spanned!(span=> #ops::not::<Self, R>(registrar);)),
            _ => None,
        };
        if let Some(simple) = simple {
            out.push(simple);
            continue;
        }
        if binary_done.contains(&name) {
            continue;
        }
        binary_done.push(name);
        let marker = format_ident!("{}Op", name, span = span);
        let entries_of_op: Vec<_> = entries.iter().filter(|e| e.name == name).collect();
        if let [only] = entries_of_op.as_slice()
            && only.rhs.is_none()
        {
            out.push(quote_spanned! {span=>
                #ops::binary_same::<Self, #ops::#marker>(registrar);
            });
            continue;
        }
        let handlers = entries_of_op.iter().map(|e| {
            let span = e.path.span();
            let ops = quote_spanned!(span=> ::bevy_lunar::userdata::ops);
            match &e.rhs {
                None => quote_spanned!(span=> #ops::same::<Self, #ops::#marker>),
                Some(rhs) => quote_spanned!(span=> #ops::scalar::<Self, #rhs, #ops::#marker>),
            }
        });
        out.push(quote_spanned! {span=>
            #ops::binary::<Self, #ops::#marker>(
                registrar,
                ::std::vec![#(#handlers as #ops::BinaryHandler<Self>),*],
            );
        });
    }
    out
}

pub fn methods(item: &mut ItemImpl) -> syn::Result<TokenStream> {
    let registrations = {
        let methods = Methods::from_syn(item)?;
        valid::check_methods(&methods)?;
        methods
            .functions
            .iter()
            .map(registration)
            .collect::<Vec<_>>()
    };
    for impl_item in &mut item.items {
        if let syn::ImplItem::Fn(function) = impl_item {
            attr::strip_lua_attrs(&mut function.attrs);
        }
    }
    let self_ty = &item.self_ty;
    Ok(quote! {
        #item

        impl #self_ty {
            #[doc(hidden)]
            pub fn __lua_register_methods<R: ::bevy_lunar::userdata::Registrar<Self>>(registrar: &mut R) {
                #[allow(unused_imports)]
                use ::bevy_lunar::userdata::__private::*;
                #(#registrations)*
            }
        }
    })
}

/// `registrar.method("name", |lua, this, args| { convert args; call; convert result })`.
fn registration(function: &Function) -> TokenStream {
    let rt = quote!(::bevy_lunar::userdata);
    let lua_name = &function.lua_name;
    let rust_name = &function.item.sig.ident;
    // mlua counts `self` as argument #1.
    let first_position = if function.receiver == Receiver::None {
        1
    } else {
        2
    };

    let mut arg_values = Vec::new();
    let mut arg_types = Vec::new();
    let mut conversions = Vec::new();
    let mut call_args = Vec::new();
    let mut borrowed = Vec::new();
    for (index, param) in function.params.iter().enumerate() {
        let value = format_ident!("__arg{}", index);
        let position = first_position + index;
        let ty = param.ty;
        let param_span = param.pat.span();
        let refused = quote!(|err| #rt::bad_argument::<Self>(#lua_name, #position, err));
        arg_values.push(value.clone());
        match &param.kind {
            ParamKind::Value | ParamKind::OtherRef => {
                arg_types.push(quote!(#rt::__private::Value));
                conversions.push(quote_spanned! {param_span=>
                    let #value = (&&ArgProbe::<#ty>::new()).convert(#value, lua).map_err(#refused)?;
                });
                call_args.push(quote!(#value));
            }
            ParamKind::Str => {
                arg_types.push(quote!(#rt::__private::Value));
                conversions.push(quote! {
                    let #value = StrArg::from_lua(#value).map_err(#refused)?;
                });
                call_args.push(quote!(&*#value));
            }
            ParamKind::OptionalStr => {
                arg_types.push(quote!(#rt::__private::Value));
                conversions.push(quote! {
                    let #value = StrArg::optional_from_lua(#value).map_err(#refused)?;
                });
                call_args.push(quote!(#value.as_deref()));
            }
            ParamKind::UserData { target, mutable } => {
                arg_types.push(quote!(#rt::__private::Value));
                conversions.push(quote_spanned! {param_span=>
                    let #value = UserDataArg::<#target>::from_lua(#value).map_err(#refused)?;
                });
                call_args.push(quote!(#value));
                borrowed.push((value.clone(), *mutable));
            }
            ParamKind::Variadic { item } => {
                arg_types.push(quote!(::bevy_lunar::mlua::Variadic<#rt::__private::Value>));
                conversions.push(quote_spanned! {param_span=>
                    let #value = #value
                        .into_iter()
                        .enumerate()
                        .map(|(offset, value)| {
                            (&&ArgProbe::<#item>::new())
                                .convert(value, lua)
                                .map_err(|err| #rt::bad_argument::<Self>(#lua_name, #position + offset, err))
                        })
                        .collect::<::bevy_lunar::mlua::Result<::bevy_lunar::mlua::Variadic<#item>>>()?;
                });
                call_args.push(quote!(#value));
            }
        }
    }

    let call = match function.receiver {
        Receiver::None => quote!(<Self>::#rust_name(#(#call_args),*)),
        Receiver::Ref | Receiver::Mut => quote!(this.#rust_name(#(#call_args),*)),
    };
    let mut body = convert_output(&function.output, call);
    // Derived-type references are borrowed around the call, innermost last.
    for (value, mutable) in borrowed.iter().rev() {
        let with = if *mutable {
            quote!(with_mut)
        } else {
            quote!(with)
        };
        body = quote!(#value.#with(|#value| #body)?);
    }

    let args_pattern = quote!((#(#arg_values,)*));
    let args_type = quote!((#(#arg_types,)*));
    let span = function.item.sig.ident.span();
    match function.receiver {
        Receiver::None => quote_spanned! {span=>
            registrar.function(#lua_name, |lua, #args_pattern: #args_type| {
                let _ = lua;
                #(#conversions)*
                #body
            });
        },
        Receiver::Ref => quote_spanned! {span=>
            registrar.method(#lua_name, |lua, this: &Self, #args_pattern: #args_type| {
                let _ = lua;
                #(#conversions)*
                #body
            });
        },
        Receiver::Mut => quote_spanned! {span=>
            registrar.method_mut(#lua_name, |lua, this: &mut Self, #args_pattern: #args_type| {
                let _ = lua;
                #(#conversions)*
                #body
            });
        },
    }
}

/// The expression turning the call's result into what the registered closure returns.
fn convert_output(output: &Output, call: TokenStream) -> TokenStream {
    let mlua = quote!(::bevy_lunar::mlua);
    match output {
        Output::Unit => quote!({ #call; ::std::result::Result::Ok(()) }),
        Output::Single => quote!(#mlua::IntoLua::into_lua(#call, lua)),
        Output::Tuple => quote!(#mlua::IntoLuaMulti::into_lua_multi(#call, lua)),
        Output::Result(ok, ty) => {
            let unwrapped =
                quote_spanned!(ty.span()=> #call.map_err(::bevy_lunar::userdata::method_error)?);
            convert_output(ok, unwrapped)
        }
    }
}
