//! Code generation. The output only *describes* the type to the runtime's `Registrar`; all
//! behaviour lives in `bevy_lunar::userdata`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, ItemImpl, Path};

use crate::ast::{
    Bodiless, Constant, Errors, Function, Methods, Output, ParamKind, Receiver, Struct, Variant,
    VariantField, VariantStyle,
};
use crate::attr::{self, ImplEntry};
use crate::valid;

pub fn derive(input: &DeriveInput) -> syn::Result<TokenStream> {
    let input = Struct::from_syn(input)?;
    valid::check_struct(&input)?;
    if let Some(variants) = &input.variants {
        return Ok(derive_enum(&input, variants));
    }

    let ident = input.ident;
    let target = input.target();
    let type_name = input.lua_name();
    let exposed: Vec<_> = input.fields.iter().filter(|f| f.exposed()).collect();
    let field_names = exposed.iter().map(|f| f.lua_name());
    let fields = exposed.iter().map(|field| {
        let member = field.ident;
        let ty = field.ty;
        let name = field.lua_name();
        let readonly = field.attr.readonly.is_some();
        // Spanned at the field's name, so an unsupported type is reported on the field.
        let kind = quote_spanned!(member.span()=> (&&&FieldProbe::<#ty>::new()).field_kind());
        // Typed at the field's type, so that a remote derive's field of the wrong type is
        // reported as such, at that type.
        let get = quote_spanned!(ty.span()=> { let get: fn(&Self) -> &#ty = |value| &value.#member; get });
        let get_mut = quote_spanned!(ty.span()=> { let get_mut: fn(&mut Self) -> &mut #ty = |value| &mut value.#member; get_mut });
        quote! {
            registrar.field(::bevy_lunar::userdata::Field {
                name: #name,
                get: #get,
                get_mut: #get_mut,
                readonly: #readonly,
                kind: #kind,
            });
        }
    });
    let operators = operators(&input.impls);
    let definition = class_definition(&input);

    // A type of this crate is an mlua `UserData` as well; a remote one cannot be (orphan rule),
    // so its metatable is registered with mlua when its first value is created.
    let (into_userdata, user_data_impl) = match &input.attr.remote {
        None => (
            quote!(::bevy_lunar::mlua::Lua::create_userdata(lua, self)),
            quote! {
                impl ::bevy_lunar::mlua::UserData for #ident {
                    fn register(registry: &mut ::bevy_lunar::mlua::UserDataRegistry<Self>) {
                        ::bevy_lunar::userdata::register_userdata(registry);
                    }
                }
            },
        ),
        Some(_) => (
            quote!(::bevy_lunar::userdata::create_remote(lua, self)),
            quote!(),
        ),
    };

    let description = quote! {
        #(#fields)*
        // An inherent fn from #[lua_methods] if there is one, else NoLuaMethods' no-op.
        <#ident>::__lua_register_methods(registrar);
        #(#operators)*
    };
    let field_names: Vec<String> = field_names.collect();
    Ok(lua_user_data_impl(&LuaUserDataImpl {
        target,
        type_name,
        enum_info: None,
        field_names: &field_names,
        description,
        definition,
        into_userdata,
        user_data_impl,
    }))
}

/// The parts of one `impl LuaUserData`, as the struct and enum derives make them.
struct LuaUserDataImpl<'a> {
    /// The type described: the struct or enum, or a remote derive's foreign type.
    target: TokenStream,
    type_name: String,
    /// The `ENUM` constant of an enum.
    enum_info: Option<TokenStream>,
    field_names: &'a [String],
    /// The body of `describe`, calling `registrar`.
    description: TokenStream,
    /// The body of `define`.
    definition: TokenStream,
    /// The body of `into_userdata`.
    into_userdata: TokenStream,
    /// The `impl mlua::UserData` that goes with it, if the type may have one.
    user_data_impl: TokenStream,
}

fn lua_user_data_impl(parts: &LuaUserDataImpl) -> TokenStream {
    let LuaUserDataImpl {
        target,
        type_name,
        enum_info,
        field_names,
        description,
        definition,
        into_userdata,
        user_data_impl,
    } = parts;
    let enum_info = enum_info.as_ref().map(|info| {
        quote! {
            const ENUM: ::std::option::Option<::bevy_lunar::userdata::__private::EnumInfo<Self>> =
                ::std::option::Option::Some(#info);
        }
    });
    quote! {
        impl ::bevy_lunar::userdata::LuaUserData for #target {
            const TYPE_NAME: &'static str = #type_name;

            #enum_info

            fn field_names() -> &'static [&'static str] {
                &[#(#field_names),*]
            }

            fn describe<R: ::bevy_lunar::userdata::Registrar<Self>>(registrar: &mut R) {
                #[allow(unused_imports)]
                use ::bevy_lunar::userdata::__private::*;
                #description
            }

            fn define(
                defs: &mut ::bevy_lunar::definitions::Definitions,
            ) -> ::bevy_lunar::definitions::ClassDef {
                #definition
            }

            fn cloner() -> ::std::option::Option<fn(&Self) -> Self> {
                #[allow(unused_imports)]
                use ::bevy_lunar::userdata::__private::{CloneProbe, CloneViaClone, CloneViaNone};
                (&&CloneProbe::<Self>::new()).cloner()
            }

            fn into_userdata(
                self,
                lua: &::bevy_lunar::mlua::Lua,
            ) -> ::bevy_lunar::mlua::Result<::bevy_lunar::mlua::AnyUserData> {
                #into_userdata
            }
        }

        #user_data_impl
    }
}

/// The body of `LuaUserData::define`: the class editors see, built from the same model as the
/// registration.
fn class_definition(input: &Struct) -> TokenStream {
    let defs = quote!(::bevy_lunar::definitions);
    let type_name = input.lua_name();
    let doc = &input.doc;
    let fields = input.fields.iter().filter(|f| f.exposed()).map(|field| {
        let name = field.lua_name();
        let ty = field.ty;
        let readonly = field.attr.readonly.is_some();
        let doc = &field.doc;
        quote! {
            class.fields.push(#defs::FieldDef {
                name: #name,
                ty: (&&TypeProbe::<#ty>::new()).lua_type(defs),
                readonly: #readonly,
                doc: #doc,
            });
        }
    });
    let operators = input.impls.iter().filter_map(|entry| {
        let ops = quote!(::bevy_lunar::userdata::ops);
        // Event and result type come from the runtime's operator table, through a probe: a
        // missing `impl Add` is reported by the registration.
        let (operand, probe) = match entry.name.as_str() {
            "Neg" => (None, quote!(OperatorProbe::<Self, (), NegOp>)),
            "Not" => (None, quote!(OperatorProbe::<Self, (), NotOp>)),
            "Display" | "PartialEq" | "PartialOrd" => return None,
            binary => {
                let marker = format_ident!("{}Op", binary);
                let rhs = entry.rhs.as_ref().map_or(quote!(Self), |rhs| quote!(#rhs));
                let probe = quote!(OperatorProbe::<Self, #rhs, #ops::#marker>);
                (Some(rhs), probe)
            }
        };
        let operand = match operand {
            Some(rhs) => {
                quote!(::std::option::Option::Some((&&TypeProbe::<#rhs>::new()).lua_type(defs)))
            }
            None => quote!(::std::option::Option::None),
        };
        Some(quote! {
            if let ::std::option::Option::Some((event, result)) = (&&#probe::new()).define(defs) {
                class.operators.push(#defs::OperatorDef {
                    event,
                    operand: #operand,
                    result,
                });
            }
        })
    });
    let ident = input.ident;
    quote! {
        #[allow(unused_imports)]
        use ::bevy_lunar::userdata::__private::*;
        let mut class = #defs::ClassDef::new(#type_name, #doc);
        #(#fields)*
        <#ident>::__lua_define_methods(&mut class, defs);
        #(#operators)*
        class
    }
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
                // `S op T` too where Rust defines it (`2 / v`).
                Some(rhs) => quote_spanned!(span=>
                    (&&#ops::ScalarProbe::<Self, #rhs, #ops::#marker>::new()).handler()
                ),
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

pub fn methods(item: &mut ItemImpl, remote: Option<&Path>) -> syn::Result<TokenStream> {
    // Items without a body (forwarded to a remote type) are not Rust: parse them here and drop
    // them from the output.
    let mut bodiless = Vec::new();
    let mut errors = Errors::default();
    item.items.retain(|impl_item| match impl_item {
        syn::ImplItem::Verbatim(tokens) => match syn::parse2::<Bodiless>(tokens.clone()) {
            Ok(parsed) => {
                bodiless.push(parsed);
                false
            }
            Err(err) => {
                errors.push(err);
                true
            }
        },
        _ => true,
    });
    errors.finish()?;

    let target = match remote {
        Some(remote) => quote!(#remote),
        None => quote!(Self),
    };
    let (registrations, definitions) = {
        let methods = Methods::from_syn(item, remote, &bodiless)?;
        valid::check_methods(&methods)?;
        let functions = methods.functions.iter().map(|f| registration(f, &target));
        let constants = methods.constants.iter().map(|c| constant(c, &target));
        let function_defs = methods
            .functions
            .iter()
            .map(|f| function_definition(f, &target));
        let constant_defs = methods.constants.iter().map(constant_definition);
        (
            functions.chain(constants).collect::<Vec<_>>(),
            function_defs.chain(constant_defs).collect::<Vec<_>>(),
        )
    };
    for impl_item in &mut item.items {
        match impl_item {
            syn::ImplItem::Fn(function) => attr::strip_lua_attrs(&mut function.attrs),
            syn::ImplItem::Const(constant) => attr::strip_lua_attrs(&mut constant.attrs),
            _ => {}
        }
    }
    let self_ty = &item.self_ty;
    Ok(quote! {
        #item

        impl #self_ty {
            #[doc(hidden)]
            pub fn __lua_register_methods<R: ::bevy_lunar::userdata::Registrar<#target>>(registrar: &mut R) {
                #[allow(unused_imports)]
                use ::bevy_lunar::userdata::__private::*;
                #(#registrations)*
            }

            #[doc(hidden)]
            pub fn __lua_define_methods(
                class: &mut ::bevy_lunar::definitions::ClassDef,
                defs: &mut ::bevy_lunar::definitions::Definitions,
            ) {
                #[allow(unused_imports)]
                use ::bevy_lunar::userdata::__private::*;
                let _ = (&class, &defs);
                #(#definitions)*
            }
        }
    })
}

/// The editor definition of one function: parameter and result types by the type probe.
fn function_definition(function: &Function, target: &TokenStream) -> TokenStream {
    let defs = quote!(::bevy_lunar::definitions);
    let lua_name = &function.lua_name;
    let doc = &function.doc;
    // `Self` in a remote block is the stand-in struct: editors know the remote type.
    let lua_type = |ty: &syn::Type| match ty {
        syn::Type::Path(path) if path.qself.is_none() && path.path.is_ident("Self") => {
            quote!((&&TypeProbe::<#target>::new()).lua_type(defs))
        }
        ty => quote!((&&TypeProbe::<#ty>::new()).lua_type(defs)),
    };
    let params = function.params.iter().enumerate().map(|(index, param)| {
        let name = match param.pat {
            syn::Pat::Ident(ident) => ident.ident.to_string(),
            _ => format!("arg{}", index + 1),
        };
        let name = name.trim_start_matches('_').to_owned();
        match &param.kind {
            ParamKind::Value | ParamKind::OtherRef => {
                let ty = lua_type(param.ty);
                quote!(.param(#name, #ty))
            }
            ParamKind::Str => quote!(.param(#name, ::std::string::String::from("string"))),
            ParamKind::OptionalStr => {
                quote!(.param(#name, ::std::string::String::from("string?")))
            }
            ParamKind::UserData { target, .. } => {
                let ty = lua_type(target);
                quote!(.param(#name, #ty))
            }
            ParamKind::Variadic { item } => {
                let ty = lua_type(item);
                quote!(.variadic(#ty))
            }
        }
    });
    let returns = function.output.lua_types().into_iter().map(|ty| {
        let ty = lua_type(ty);
        quote!(.returns(#ty))
    });
    let list = if function.receiver == Receiver::None {
        quote!(functions)
    } else {
        quote!(methods)
    };
    quote! {
        class.#list.push(#defs::FunctionDef::new(#lua_name, #doc) #(#params)* #(#returns)*);
    }
}

fn constant_definition(constant: &Constant) -> TokenStream {
    let lua_name = &constant.lua_name;
    let ty = constant.ty;
    let doc = &constant.doc;
    quote! {
        class.constants.push(::bevy_lunar::definitions::ConstantDef {
            name: #lua_name,
            ty: (&&TypeProbe::<#ty>::new()).lua_type(defs),
            doc: #doc,
        });
    }
}

/// `registrar.constant("NAME", |lua| convert(Type::NAME))`.
fn constant(constant: &Constant, target: &TokenStream) -> TokenStream {
    let ident = constant.ident;
    let lua_name = &constant.lua_name;
    let owner = if constant.forward {
        target.clone()
    } else {
        quote!(Self)
    };
    quote_spanned! {ident.span()=>
        registrar.constant(#lua_name, |lua| {
            let __value = <#owner>::#ident;
            (&&&ReturnProbe::of(&__value)).into_lua(__value, lua)
        });
    }
}

/// `registrar.method("name", |lua, this, args| { convert args; call; convert result })`.
/// `target` is the described type: `Self`, or the remote type.
fn registration(function: &Function, target: &TokenStream) -> TokenStream {
    let rt = quote!(::bevy_lunar::userdata);
    let lua_name = &function.lua_name;
    let rust_name = &function.sig.ident;
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
        let refused = quote!(|err| #rt::bad_argument::<#target>(#lua_name, #position, err));
        let described = target;
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
                // Resolved before `self` is lent: a live reference is copied out here when
                // its type is `Clone` (see the runtime's `receiver.rs`).
                let binding = if *mutable {
                    quote!(let mut)
                } else {
                    quote!(let)
                };
                conversions.push(quote_spanned! {param_span=>
                    #binding #value = UserDataArg::<#target>::from_lua(
                        #value,
                        (&&CloneProbe::<#target>::new()).cloner(),
                    )
                    .map_err(|err| #rt::bad_argument_cause::<#described>(#lua_name, #position, err))?;
                });
                call_args.push(quote!(#value));
                borrowed.push((value.clone(), *mutable, position));
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
                                .map_err(|err| #rt::bad_argument::<#target>(#lua_name, #position + offset, err))
                        })
                        .collect::<::bevy_lunar::mlua::Result<::bevy_lunar::mlua::Variadic<#item>>>()?;
                });
                call_args.push(quote!(#value));
            }
        }
    }

    let call = match (function.forward, function.receiver) {
        (false, Receiver::None) => quote!(<Self>::#rust_name(#(#call_args),*)),
        (false, _) => quote!(this.#rust_name(#(#call_args),*)),
        (true, Receiver::None) => quote!(<#target>::#rust_name(#(#call_args),*)),
        (true, Receiver::Ref | Receiver::Mut) => {
            quote!(<#target>::#rust_name(this, #(#call_args),*))
        }
        (true, Receiver::Value) => {
            quote!(<#target>::#rust_name(::core::clone::Clone::clone(this), #(#call_args),*))
        }
    };
    let mut body = convert_output(&function.output, call);
    // Derived-type arguments are borrowed around the call, innermost last; a failure names the
    // argument.
    for (value, mutable, position) in borrowed.iter().rev() {
        let refused = quote!(|err| #rt::bad_argument_cause::<#target>(#lua_name, #position, err));
        body = if *mutable {
            quote!(#value.with_mut(__self_span, |#value| #body).map_err(#refused)?)
        } else {
            quote!(#value.with(|#value| #body).map_err(#refused)?)
        };
    }
    // `&mut T` arguments copied out of live references go back once `self` is released.
    let write_backs =
        borrowed
            .iter()
            .filter(|(_, mutable, _)| *mutable)
            .map(|(value, _, position)| {
                quote! {
                    #value.write_back().map_err(|err| {
                        #rt::bad_argument_cause::<#target>(#lua_name, #position, err)
                    })?;
                }
            });
    let mlua = quote!(::bevy_lunar::mlua);
    let span_type = quote!(::std::option::Option<#rt::__private::Span>);
    let call = match function.receiver {
        Receiver::None => quote! {
            let __self_span: #span_type = ::std::option::Option::None;
            let _ = __self_span;
            let __result = { #body }?;
        },
        Receiver::Ref | Receiver::Value | Receiver::Mut => {
            let with = if function.receiver == Receiver::Mut {
                quote!(with_mut)
            } else {
                quote!(with)
            };
            quote! {
                let __result = this.#with(|this| -> #mlua::Result<_> {
                    let __self_span: #span_type =
                        ::std::option::Option::Some(#rt::__private::Span::of(&*this));
                    let _ = __self_span;
                    #body
                })??;
            }
        }
    };
    let body = quote! {
        #call
        #(#write_backs)*
        ::std::result::Result::Ok(__result)
    };

    let args_pattern = quote!((#(#arg_values,)*));
    let args_type = quote!((#(#arg_types,)*));
    let span = function.sig.ident.span();
    match function.receiver {
        Receiver::None => quote_spanned! {span=>
            registrar.function(#lua_name, |lua, #args_pattern: #args_type| {
                let _ = lua;
                #(#conversions)*
                #body
            });
        },
        Receiver::Ref | Receiver::Value => quote_spanned! {span=>
            registrar.method(#lua_name, |lua, this: #rt::This<'_, #target>, #args_pattern: #args_type| {
                let _ = lua;
                #(#conversions)*
                #body
            });
        },
        Receiver::Mut => quote_spanned! {span=>
            registrar.method_mut(#lua_name, |lua, this: #rt::ThisMut<'_, #target>, #args_pattern: #args_type| {
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
        Output::Single(_) => quote!({
            let __value = #call;
            (&&&ReturnProbe::of(&__value)).into_lua(__value, lua)
        }),
        Output::Tuple(_) => quote!(#mlua::IntoLuaMulti::into_lua_multi(#call, lua)),
        Output::Result(ok, ty) => {
            let unwrapped =
                quote_spanned!(ty.span()=> #call.map_err(::bevy_lunar::userdata::method_error)?);
            convert_output(ok, unwrapped)
        }
    }
}

/// `#[derive(LuaUserData)]` on an enum: the variants to the runtime ([`EnumInfo`]), `kind`, the
/// fields of the variants, a constructor per variant in the type table, then methods and
/// operators as for a struct.
fn derive_enum(input: &Struct, variants: &[Variant]) -> TokenStream {
    let rt = quote!(::bevy_lunar::userdata);
    let mlua = quote!(::bevy_lunar::mlua);
    let ident = input.ident;
    let type_name = input.lua_name();
    let unit_only = variants.iter().all(|v| v.style == VariantStyle::Unit);
    let exposed: Vec<&Variant> = variants.iter().filter(|v| v.exposed()).collect();
    let variant_names: Vec<String> = exposed.iter().map(|v| v.lua_name()).collect();

    // `name_of`, `unit` and `fields_of` of the EnumInfo.
    let name_arms = variants.iter().map(|variant| {
        let v = variant.ident;
        let name = variant.lua_name();
        quote!(Self::#v { .. } => #name,)
    });
    let unit_arms = exposed
        .iter()
        .filter(|variant| variant.style == VariantStyle::Unit)
        .map(|variant| {
            let v = variant.ident;
            let name = variant.lua_name();
            quote!(#name => ::std::option::Option::Some(Self::#v),)
        });
    let fields_of_arms = variants.iter().map(|variant| {
        let v = variant.ident;
        let names: Vec<String> = if variant.exposed() {
            variant
                .fields
                .iter()
                .filter(|f| f.exposed())
                .map(|f| f.lua_name())
                .collect()
        } else {
            Vec::new()
        };
        quote!(Self::#v { .. } => &["kind", #(#names),*],)
    });

    // One Lua field per distinct name, reached through the variants that have it.
    let mut field_names: Vec<String> = Vec::new();
    for variant in &exposed {
        for field in variant.fields.iter().filter(|f| f.exposed()) {
            if !field_names.contains(&field.lua_name()) {
                field_names.push(field.lua_name());
            }
        }
    }
    let fields = field_names.iter().map(|name| {
        let holders: Vec<(&Variant, &VariantField)> = exposed
            .iter()
            .flat_map(|variant| {
                variant
                    .fields
                    .iter()
                    .filter(|f| f.exposed() && f.lua_name() == *name)
                    .map(move |f| (*variant, f))
            })
            .collect();
        let (_, first) = holders[0];
        let ty = first.ty;
        let member_span = first.ty.span();
        let readonly = holders.iter().any(|(_, f)| f.attr.readonly.is_some());
        let arms = holders.iter().map(|(variant, field)| {
            let v = variant.ident;
            let member = &field.member;
            quote!(Self::#v { #member: __field, .. } => ::std::option::Option::Some(__field),)
        });
        let arms_mut = arms.clone();
        let described: Vec<String> = holders.iter().map(|(v, _)| v.lua_name()).collect();
        let described = described.join(" or ");
        let kind = quote_spanned!(member_span=> (&&&FieldProbe::<#ty>::new()).field_kind());
        quote! {
            registrar.variant_field(#rt::VariantField {
                name: #name,
                get: {
                    #[allow(unreachable_patterns)]
                    let get: for<'a> fn(&'a Self) -> ::std::option::Option<&'a #ty> = |value| match value {
                        #(#arms)*
                        _ => ::std::option::Option::None,
                    };
                    get
                },
                get_mut: {
                    #[allow(unreachable_patterns)]
                    let get_mut: for<'a> fn(&'a mut Self) -> ::std::option::Option<&'a mut #ty> = |value| match value {
                        #(#arms_mut)*
                        _ => ::std::option::Option::None,
                    };
                    get_mut
                },
                readonly: #readonly,
                kind: #kind,
                variants: #described,
            });
        }
    });

    // The type table: a value per unit variant, a constructor per variant with fields.
    let constructors = exposed.iter().map(|variant| {
        let v = variant.ident;
        let name = variant.lua_name();
        match variant.style {
            VariantStyle::Unit if unit_only => quote! {
                registrar.constant(#name, |lua| #mlua::IntoLua::into_lua(#name, lua));
            },
            VariantStyle::Unit => quote! {
                registrar.fresh_constant(#name, |lua| {
                    #mlua::IntoLua::into_lua(#rt::__private::NewUserData(Self::#v), lua)
                });
            },
            VariantStyle::Named => {
                let names: Vec<String> = variant
                    .fields
                    .iter()
                    .filter(|f| f.exposed())
                    .map(|f| f.lua_name())
                    .collect();
                let inits = variant.fields.iter().map(|field| {
                    let member = &field.member;
                    let ty = field.ty;
                    if field.exposed() {
                        let lua_name = field.lua_name();
                        quote_spanned! {ty.span()=>
                            #member: __fields.field(lua, #lua_name, |value, lua| {
                                (&&ArgProbe::<#ty>::new()).convert(value, lua)
                            })?,
                        }
                    } else {
                        quote!(#member: ::std::default::Default::default(),)
                    }
                });
                quote! {
                    registrar.function(#name, |lua, (__fields,): (#rt::__private::Value,)| {
                        let __fields = VariantArgs::new(#type_name, #name, __fields, &[#(#names),*])?;
                        ::std::result::Result::Ok(#rt::__private::NewUserData(Self::#v { #(#inits)* }))
                    });
                }
            }
            VariantStyle::Tuple => {
                let mut params = Vec::new();
                let mut types = Vec::new();
                let mut values = Vec::new();
                let mut position = 0usize;
                for field in &variant.fields {
                    let ty = field.ty;
                    if field.exposed() {
                        position += 1;
                        let arg = format_ident!("__arg{}", position);
                        params.push(arg.clone());
                        types.push(quote!(#rt::__private::Value));
                        let function = name.clone();
                        values.push(quote_spanned! {ty.span()=>
                            (&&ArgProbe::<#ty>::new())
                                .convert(#arg, lua)
                                .map_err(|err| #rt::bad_argument::<Self>(#function, #position, err))?
                        });
                    } else {
                        values.push(quote!(::std::default::Default::default()));
                    }
                }
                quote! {
                    registrar.function(#name, |lua, (#(#params,)*): (#(#types,)*)| {
                        let _ = lua;
                        ::std::result::Result::Ok(#rt::__private::NewUserData(Self::#v(#(#values),*)))
                    });
                }
            }
        }
    });

    let operators = operators(&input.impls);
    let definition = enum_definition(input, variants, &field_names);
    let all_names = std::iter::once("kind".to_owned()).chain(field_names.iter().cloned());

    let enum_info = quote! {
        #rt::__private::EnumInfo {
            variants: &[#(#variant_names),*],
            unit_only: #unit_only,
            name_of: |value| match value {
                #(#name_arms)*
            },
            unit: |name| match name {
                #(#unit_arms)*
                _ => ::std::option::Option::None,
            },
            fields_of: |value| match value {
                #(#fields_of_arms)*
            },
        }
    };
    // Without `Display`, `tostring` names the variant.
    let display = if input.impls.iter().any(|entry| entry.name == "Display") {
        quote!()
    } else {
        quote!(::bevy_lunar::userdata::ops::variant_display::<Self, R>(registrar);)
    };
    let description = quote! {
        registrar.enum_kind();
        #(#fields)*
        #(#constructors)*
        <#ident>::__lua_register_methods(registrar);
        #(#operators)*
        #display
    };
    let all_names: Vec<String> = all_names.collect();
    lua_user_data_impl(&LuaUserDataImpl {
        target: quote!(#ident),
        type_name,
        enum_info: Some(enum_info),
        field_names: &all_names,
        description,
        definition,
        into_userdata: quote!(#mlua::Lua::create_userdata(lua, self)),
        user_data_impl: quote! {
            impl #mlua::UserData for #ident {
                fn register(registry: &mut #mlua::UserDataRegistry<Self>) {
                    ::bevy_lunar::userdata::register_userdata(registry);
                }
            }
        },
    })
}

/// The editor definition of an enum: an alias of strings for a unit-only enum, else a class
/// with `kind` and the variants' fields (see `ClassDef::variants`).
fn enum_definition(input: &Struct, variants: &[Variant], field_names: &[String]) -> TokenStream {
    let defs = quote!(::bevy_lunar::definitions);
    let type_name = input.lua_name();
    let doc = &input.doc;
    let ident = input.ident;
    let variant_defs = variants.iter().filter(|v| v.exposed()).map(|variant| {
        let name = variant.lua_name();
        let doc = &variant.doc;
        let fields = variant.fields.iter().filter(|f| f.exposed()).map(|field| {
            let name = field.lua_name();
            let ty = field.ty;
            let readonly = field.attr.readonly.is_some();
            let doc = &field.doc;
            quote! {
                #defs::FieldDef {
                    name: #name,
                    ty: (&&TypeProbe::<#ty>::new()).lua_type(defs),
                    readonly: #readonly,
                    doc: #doc,
                }
            }
        });
        let style = match variant.style {
            VariantStyle::Unit => quote!(#defs::VariantStyle::Unit),
            VariantStyle::Named => quote!(#defs::VariantStyle::Named),
            VariantStyle::Tuple => quote!(#defs::VariantStyle::Tuple),
        };
        quote! {
            #defs::VariantDef {
                name: #name,
                doc: #doc,
                style: #style,
                fields: ::std::vec![#(#fields),*],
            }
        }
    });
    let _ = field_names;
    quote! {
        #[allow(unused_imports)]
        use ::bevy_lunar::userdata::__private::*;
        let mut class = #defs::ClassDef::new(#type_name, #doc);
        class.variants = ::std::option::Option::Some(::std::vec![#(#variant_defs),*]);
        <#ident>::__lua_define_methods(&mut class, defs);
        class
    }
}
