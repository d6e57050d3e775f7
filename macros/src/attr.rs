//! The `#[lua(...)]` and `#[lua_impl(...)]` attributes, parsed in one place.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Attribute, GenericArgument, LitStr, Path, PathArguments, Token, Type};

/// `#[lua(...)]` on the struct itself.
#[derive(Default)]
pub struct ContainerAttr {
    /// `remote = path::To::Type`: the derive describes that foreign type, whose fields this
    /// struct mirrors (as serde's `#[serde(remote = "...")]`).
    pub remote: Option<Path>,
    /// `name = "..."`: the type's Lua name, instead of the struct's (or the remote type's).
    pub name: Option<LitStr>,
}

pub fn container_attr(attrs: &[Attribute]) -> syn::Result<ContainerAttr> {
    let mut parsed = ContainerAttr::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("lua")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("remote") {
                if parsed.remote.is_some() {
                    return Err(meta.error("duplicate `remote` in #[lua(...)]"));
                }
                parsed.remote = Some(meta.value()?.parse()?);
                Ok(())
            } else if meta.path.is_ident("name") {
                if parsed.name.is_some() {
                    return Err(meta.error("duplicate `name` in #[lua(...)]"));
                }
                parsed.name = Some(meta.value()?.parse()?);
                Ok(())
            } else {
                let found = meta.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
                Err(meta.error(format!(
                    "unknown lua attribute `{found}` on a struct; expected `remote = path::To::Type` or `name = \"...\"`"
                )))
            }
        })?;
    }
    Ok(parsed)
}

/// The arguments of `#[lua_methods(...)]`: nothing, or `remote = path::To::Type` for the methods
/// of a remote derive.
pub fn methods_args(args: proc_macro2::TokenStream) -> syn::Result<Option<Path>> {
    let mut remote = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("remote") && remote.is_none() {
            remote = Some(meta.value()?.parse()?);
            Ok(())
        } else {
            Err(meta.error("#[lua_methods] takes no arguments, or `remote = path::To::Type`"))
        }
    });
    syn::parse::Parser::parse2(parser, args)?;
    Ok(remote)
}

/// `#[lua(...)]` on a field or method. Each flag keeps its span for error messages.
#[derive(Default)]
pub struct LuaAttr {
    /// The whole attribute, for errors about the attribute as such.
    pub span: Option<Span>,
    pub skip: Option<Span>,
    pub readonly: Option<Span>,
    pub name: Option<LitStr>,
}

/// Parses every `#[lua(...)]` among `attrs`; repeated attributes accumulate.
pub fn lua_attr(attrs: &[Attribute]) -> syn::Result<LuaAttr> {
    let mut parsed = LuaAttr::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("lua")) {
        parsed.span.get_or_insert(attr.span());
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("skip") {
                set_once(&mut parsed.skip, meta.path.span(), "skip")
            } else if meta.path.is_ident("readonly") {
                set_once(&mut parsed.readonly, meta.path.span(), "readonly")
            } else if meta.path.is_ident("name") {
                let name: LitStr = meta.value()?.parse()?;
                if parsed.name.is_some() {
                    return Err(meta.error("duplicate `name` in #[lua(...)]"));
                }
                parsed.name = Some(name);
                Ok(())
            } else {
                let found = meta.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
                Err(meta.error(format!(
                    "unknown lua attribute `{found}`; expected `skip`, `readonly` or `name = \"...\"`"
                )))
            }
        })?;
    }
    Ok(parsed)
}

fn set_once(slot: &mut Option<Span>, span: Span, what: &str) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            span,
            format!("duplicate `{what}` in #[lua(...)]"),
        ));
    }
    *slot = Some(span);
    Ok(())
}

/// The doc comment among `attrs` (`///` lines are `#[doc = "..."]`), one line per line, without
/// the space after `///`.
pub fn doc(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(syn::MetaNameValue {
                value:
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(text),
                        ..
                    }),
                ..
            }) => Some(text.value()),
            _ => None,
        })
        .map(|line| {
            line.strip_prefix(' ')
                .unwrap_or(&line)
                .trim_end()
                .to_owned()
        })
        .collect();
    lines.join("\n").trim().to_owned()
}

/// Removes the `#[lua(...)]` attributes, which mean nothing to the compiler, from a method that
/// `#[lua_methods]` passes through.
pub fn strip_lua_attrs(attrs: &mut Vec<Attribute>) {
    attrs.retain(|a| !a.path().is_ident("lua"));
}

/// One entry of `#[lua_impl(...)]`: a std trait, with the right-hand operand type for
/// operators that take one (`Mul<f64>`).
pub struct ImplEntry {
    pub path: Path,
    pub name: String,
    pub rhs: Option<Type>,
}

/// Parses every `#[lua_impl(...)]` among `attrs`.
pub fn lua_impl_entries(attrs: &[Attribute]) -> syn::Result<Vec<ImplEntry>> {
    let mut entries = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("lua_impl")) {
        attr.parse_args_with(|input: ParseStream| {
            let paths = input.parse_terminated(Path::parse, Token![,])?;
            for path in paths {
                entries.push(impl_entry(path)?);
            }
            Ok(())
        })?;
    }
    Ok(entries)
}

fn impl_entry(path: Path) -> syn::Result<ImplEntry> {
    let last = path
        .segments
        .last()
        .ok_or_else(|| syn::Error::new(path.span(), "expected a trait name"))?;
    let name = last.ident.to_string();
    let rhs = match &last.arguments {
        PathArguments::None => None,
        PathArguments::AngleBracketed(args) => {
            match args.args.iter().collect::<Vec<_>>().as_slice() {
                [GenericArgument::Type(ty)] => Some(ty.clone()),
                _ => {
                    return Err(syn::Error::new(
                        args.span(),
                        "expected one operand type, as in `Mul<f64>`",
                    ));
                }
            }
        }
        PathArguments::Parenthesized(args) => {
            return Err(syn::Error::new(
                args.span(),
                "expected a trait name such as `Add` or `Mul<f64>`",
            ));
        }
    };
    Ok(ImplEntry { path, name, rhs })
}
