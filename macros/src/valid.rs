//! Checks on the parsed model, each reported at the span of what is wrong.

use std::collections::{HashMap, HashSet};

use quote::ToTokens;
use syn::spanned::Spanned;

use crate::ast::{Errors, Methods, ParamKind, Receiver, Struct, Variant};

/// Traits `#[lua_impl]` understands; the binary operators also take an operand type.
const UNARY_OR_COMPARISON: &[&str] = &["Display", "PartialEq", "PartialOrd", "Neg", "Not"];
pub const BINARY: &[&str] = &[
    "Add", "Sub", "Mul", "Div", "Rem", "BitAnd", "BitOr", "BitXor", "Shl", "Shr",
];

pub fn check_struct(input: &Struct) -> syn::Result<()> {
    let mut errors = Errors::default();
    if !input.input.generics.params.is_empty() {
        errors.error(
            input.input.generics.span(),
            "LuaUserData cannot be derived for generic structs: Lua needs one concrete type",
        );
    }
    if let Some(variants) = &input.variants {
        check_variants(input, variants, &mut errors);
    }

    let mut names = HashSet::new();
    for field in &input.fields {
        let attr = &field.attr;
        if !field.public {
            let misplaced = [
                (attr.skip, "skip"),
                (attr.readonly, "readonly"),
                (attr.name.as_ref().map(|n| n.span()), "name"),
            ];
            for (span, what) in misplaced {
                if let Some(span) = span {
                    errors.error(
                        span,
                        format!(
                            "`{what}` has no effect on private field `{}`: only `pub` fields are exposed to Lua",
                            field.ident
                        ),
                    );
                }
            }
            continue;
        }
        if let Some(skip) = attr.skip {
            if attr.readonly.is_some() || attr.name.is_some() {
                errors.error(
                    skip,
                    "`skip` hides the field, so it cannot be combined with `readonly` or `name`",
                );
            }
            continue;
        }
        if let Some(name) = &attr.name
            && name.value().is_empty()
        {
            errors.error(name.span(), "the Lua name of a field cannot be empty");
        }
        let lua_name = field.lua_name();
        if !names.insert(lua_name.clone()) {
            let span = attr.name.as_ref().map_or(field.ident.span(), |n| n.span());
            errors.error(
                span,
                format!("two fields are exposed to Lua as `{lua_name}`"),
            );
        }
    }

    let mut seen = HashSet::new();
    for entry in &input.impls {
        let known = UNARY_OR_COMPARISON.contains(&entry.name.as_str())
            || BINARY.contains(&entry.name.as_str());
        if !known {
            errors.error(
                entry.path.span(),
                format!(
                    "#[lua_impl] does not know `{}`; supported: {}, {}",
                    entry.name,
                    UNARY_OR_COMPARISON.join(", "),
                    BINARY.join(", ")
                ),
            );
            continue;
        }
        if entry.rhs.is_some() && !BINARY.contains(&entry.name.as_str()) {
            errors.error(
                entry.path.span(),
                format!("`{}` takes no operand type in #[lua_impl]", entry.name),
            );
        }
        if !seen.insert(entry.path.to_token_stream().to_string()) {
            errors.error(
                entry.path.span(),
                format!("`{}` is listed twice in #[lua_impl]", entry.name),
            );
        }
    }
    errors.finish()
}

/// An enum's variants: attributes that mean something there, distinct Lua names, and one type
/// per field name (a field shared by variants is one field in Lua).
fn check_variants(input: &Struct, variants: &[Variant], errors: &mut Errors) {
    if let Some(remote) = &input.attr.remote {
        errors.error(
            remote.span(),
            "`remote` is not supported on enums: derive on a struct mirroring the foreign type",
        );
    }
    let mut names = HashSet::new();
    let mut fields: HashMap<String, String> = HashMap::new();
    for variant in variants {
        if let Some(span) = variant.attr.readonly {
            errors.error(span, "`readonly` applies to fields, not to variants");
        }
        if let (Some(skip), Some(_)) = (variant.attr.skip, &variant.attr.name) {
            errors.error(
                skip,
                "`skip` hides the variant, so it cannot be combined with `name`",
            );
        }
        if !variant.exposed() {
            continue;
        }
        let lua_name = variant.lua_name();
        if !names.insert(lua_name.clone()) {
            let span = variant
                .attr
                .name
                .as_ref()
                .map_or(variant.ident.span(), |n| n.span());
            errors.error(
                span,
                format!("two variants are exposed to Lua as `{lua_name}`"),
            );
        }
        for field in &variant.fields {
            if let (Some(skip), true) = (
                field.attr.skip,
                field.attr.readonly.is_some() || field.attr.name.is_some(),
            ) {
                errors.error(
                    skip,
                    "`skip` hides the field, so it cannot be combined with `readonly` or `name`",
                );
            }
            if !field.exposed() {
                continue;
            }
            let field_name = field.lua_name();
            let span = field
                .attr
                .name
                .as_ref()
                .map_or(field.member.span(), |n| n.span());
            if field_name == "kind" {
                errors.error(
                    span,
                    "`kind` names an enum's variant in Lua: rename the field with #[lua(name = \"...\")]",
                );
            }
            let ty = field.ty.to_token_stream().to_string();
            match fields.get(&field_name) {
                Some(other) if *other != ty => errors.error(
                    span,
                    format!(
                        "field `{field_name}` has another type in an earlier variant: fields sharing a Lua name must share their type (rename one with #[lua(name = \"...\")])"
                    ),
                ),
                _ => {
                    fields.insert(field_name, ty);
                }
            }
        }
    }
}

pub fn check_methods(methods: &Methods) -> syn::Result<()> {
    let mut errors = Errors::default();
    let item = methods.item;
    if let Some((_, path, _)) = &item.trait_ {
        errors.error(
            path.span(),
            "#[lua_methods] goes on an inherent impl block (`impl Type { ... }`), not a trait impl",
        );
    }
    if !item.generics.params.is_empty() {
        errors.error(
            item.generics.span(),
            "#[lua_methods] cannot be used on a generic impl block",
        );
    }

    let mut names = HashSet::new();
    for function in &methods.functions {
        let sig = function.sig;
        match (methods.remote, function.forward) {
            (None, true) => errors.error(
                sig.ident.span(),
                "a function without a body forwards to a remote type's function: use it in #[lua_methods(remote = path::To::Type)]",
            ),
            (Some(remote), false) if function.receiver != Receiver::None => errors.error(
                sig.ident.span(),
                format!(
                    "in #[lua_methods(remote = ...)], `self` would be the stand-in struct, not `{}`: declare the method without a body to forward it, or write a static function",
                    remote.to_token_stream()
                ),
            ),
            _ => {}
        }
        if !sig.generics.params.is_empty() {
            errors.error(
                sig.generics.span(),
                "generic methods cannot be called from Lua: mark the method #[lua(skip)]",
            );
        }
        if let Some(asyncness) = sig.asyncness {
            errors.error(
                asyncness.span(),
                "async methods are not supported: mark the method #[lua(skip)]",
            );
        }
        let last = function.params.len().saturating_sub(1);
        for (index, param) in function.params.iter().enumerate() {
            match param.kind {
                ParamKind::OtherRef => errors.error(
                    param.ty.span(),
                    "a reference parameter must be `&str`, or `&T`/`&mut T` of a type deriving LuaUserData",
                ),
                ParamKind::Variadic { .. } if index != last => {
                    errors.error(param.ty.span(), "`Variadic<T>` must be the last parameter")
                }
                _ => {}
            }
        }
        if !names.insert(function.lua_name.clone()) {
            errors.error(
                sig.ident.span(),
                format!(
                    "two functions are exposed to Lua as `{}`",
                    function.lua_name
                ),
            );
        }
    }
    for constant in &methods.constants {
        if constant.forward && methods.remote.is_none() {
            errors.error(
                constant.ident.span(),
                "a constant without a value forwards to a remote type's constant: use it in #[lua_methods(remote = path::To::Type)]",
            );
        }
        if !names.insert(constant.lua_name.clone()) {
            errors.error(
                constant.ident.span(),
                format!("two items are exposed to Lua as `{}`", constant.lua_name),
            );
        }
    }
    errors.finish()
}
