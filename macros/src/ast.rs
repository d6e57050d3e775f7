//! The typed model the macros work on, parsed from syn's syntax tree.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{
    Attribute, DeriveInput, FnArg, Ident, ImplItem, ItemImpl, Path, ReturnType, Signature, Token,
    Type, Visibility,
};

use crate::attr::{self, ContainerAttr, ImplEntry, LuaAttr};

/// A struct or enum with `#[derive(LuaUserData)]`.
pub struct Struct<'a> {
    pub ident: &'a Ident,
    pub input: &'a DeriveInput,
    pub attr: ContainerAttr,
    /// A struct's fields (none for an enum).
    pub fields: Vec<Field<'a>>,
    /// An enum's variants; `None` for a struct.
    pub variants: Option<Vec<Variant<'a>>>,
    pub impls: Vec<ImplEntry>,
    /// The doc comment, for editor definitions.
    pub doc: String,
}

/// A variant of a derived enum.
pub struct Variant<'a> {
    pub ident: &'a Ident,
    pub attr: LuaAttr,
    pub style: VariantStyle,
    pub fields: Vec<VariantField<'a>>,
    pub doc: String,
}

#[derive(Clone, Copy, PartialEq)]
pub enum VariantStyle {
    Unit,
    /// `Chasing { target: Entity }`: built from a table of fields.
    Named,
    /// `Hit(f64)`: built from positional arguments; its fields are `value[1]`, ...
    Tuple,
}

pub struct VariantField<'a> {
    /// The field's name, or its position in a tuple variant.
    pub member: syn::Member,
    pub ty: &'a Type,
    pub attr: LuaAttr,
    pub doc: String,
}

impl Variant<'_> {
    /// Whether scripts can see the variant.
    pub fn exposed(&self) -> bool {
        self.attr.skip.is_none()
    }

    pub fn lua_name(&self) -> String {
        match &self.attr.name {
            Some(name) => name.value(),
            None => self.ident.to_string(),
        }
    }
}

impl VariantField<'_> {
    pub fn exposed(&self) -> bool {
        self.attr.skip.is_none()
    }

    /// The name scripts use: the field's, or its position from 1 in a tuple variant.
    pub fn lua_name(&self) -> String {
        if let Some(name) = &self.attr.name {
            return name.value();
        }
        match &self.member {
            syn::Member::Named(ident) => ident.to_string(),
            syn::Member::Unnamed(index) => (index.index + 1).to_string(),
        }
    }
}

impl Struct<'_> {
    /// The type scripts see: the remote type for a remote derive, else the struct.
    pub fn target(&self) -> proc_macro2::TokenStream {
        match &self.attr.remote {
            Some(remote) => quote::quote!(#remote),
            None => {
                let ident = self.ident;
                quote::quote!(#ident)
            }
        }
    }

    /// The type's Lua name: `name = "..."`, else the last segment of the remote path or the
    /// struct's name.
    pub fn lua_name(&self) -> String {
        if let Some(name) = &self.attr.name {
            return name.value();
        }
        match self.attr.remote.as_ref().and_then(|r| r.segments.last()) {
            Some(last) => last.ident.to_string(),
            None => self.ident.to_string(),
        }
    }
}

pub struct Field<'a> {
    pub ident: &'a Ident,
    pub ty: &'a Type,
    /// Declared `pub`: only such fields can be exposed.
    pub public: bool,
    pub attr: LuaAttr,
    pub doc: String,
}

impl Field<'_> {
    /// Whether scripts can see the field.
    pub fn exposed(&self) -> bool {
        self.public && self.attr.skip.is_none()
    }

    /// The name scripts use.
    pub fn lua_name(&self) -> String {
        match &self.attr.name {
            Some(name) => name.value(),
            None => self.ident.to_string(),
        }
    }
}

impl<'a> Struct<'a> {
    pub fn from_syn(input: &'a DeriveInput) -> syn::Result<Self> {
        let data = match &input.data {
            syn::Data::Struct(data) => data,
            syn::Data::Enum(data) => return Self::from_enum(input, data),
            syn::Data::Union(_) => {
                return Err(syn::Error::new(
                    input.ident.span(),
                    "LuaUserData can only be derived for structs with named fields and for enums",
                ));
            }
        };
        let named = match &data.fields {
            syn::Fields::Named(named) => named,
            syn::Fields::Unit => {
                return Ok(Struct {
                    ident: &input.ident,
                    input,
                    attr: attr::container_attr(&input.attrs)?,
                    fields: Vec::new(),
                    variants: None,
                    impls: attr::lua_impl_entries(&input.attrs)?,
                    doc: attr::doc(&input.attrs),
                });
            }
            syn::Fields::Unnamed(fields) => {
                return Err(syn::Error::new(
                    fields.span(),
                    "LuaUserData can only be derived for structs with named fields",
                ));
            }
        };
        let mut errors = Errors::default();
        let fields = named
            .named
            .iter()
            .filter_map(|field| {
                let attr = errors.ok(attr::lua_attr(&field.attrs))?;
                Some(Field {
                    ident: field.ident.as_ref().expect("named field"),
                    ty: &field.ty,
                    public: matches!(field.vis, Visibility::Public(_)),
                    attr,
                    doc: attr::doc(&field.attrs),
                })
            })
            .collect();
        let impls = errors
            .ok(attr::lua_impl_entries(&input.attrs))
            .unwrap_or_default();
        let container = errors
            .ok(attr::container_attr(&input.attrs))
            .unwrap_or_default();
        errors.finish()?;
        Ok(Struct {
            ident: &input.ident,
            input,
            attr: container,
            fields,
            variants: None,
            impls,
            doc: attr::doc(&input.attrs),
        })
    }

    fn from_enum(input: &'a DeriveInput, data: &'a syn::DataEnum) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let mut variants = Vec::new();
        for variant in &data.variants {
            let Some(attr) = errors.ok(attr::lua_attr(&variant.attrs)) else {
                continue;
            };
            let style = match &variant.fields {
                syn::Fields::Unit => VariantStyle::Unit,
                syn::Fields::Named(_) => VariantStyle::Named,
                syn::Fields::Unnamed(_) => VariantStyle::Tuple,
            };
            let fields = variant
                .fields
                .iter()
                .enumerate()
                .filter_map(|(index, field)| {
                    let attr = errors.ok(attr::lua_attr(&field.attrs))?;
                    let member = match &field.ident {
                        Some(ident) => syn::Member::Named(ident.clone()),
                        None => syn::Member::Unnamed(syn::Index {
                            index: index as u32,
                            span: field.ty.span(),
                        }),
                    };
                    Some(VariantField {
                        member,
                        ty: &field.ty,
                        attr,
                        doc: attr::doc(&field.attrs),
                    })
                })
                .collect();
            variants.push(Variant {
                ident: &variant.ident,
                attr,
                style,
                fields,
                doc: attr::doc(&variant.attrs),
            });
        }
        let impls = errors
            .ok(attr::lua_impl_entries(&input.attrs))
            .unwrap_or_default();
        let container = errors
            .ok(attr::container_attr(&input.attrs))
            .unwrap_or_default();
        errors.finish()?;
        Ok(Struct {
            ident: &input.ident,
            input,
            attr: container,
            fields: Vec::new(),
            variants: Some(variants),
            impls,
            doc: attr::doc(&input.attrs),
        })
    }
}

/// An impl block with `#[lua_methods]`.
pub struct Methods<'a> {
    pub item: &'a ItemImpl,
    /// `#[lua_methods(remote = ...)]`: the remote type the functions belong to.
    pub remote: Option<&'a Path>,
    pub functions: Vec<Function<'a>>,
    pub constants: Vec<Constant<'a>>,
}

pub struct Function<'a> {
    pub sig: &'a Signature,
    pub lua_name: String,
    pub receiver: Receiver,
    /// Declared without a body: forwards to the remote type's function of the same name.
    pub forward: bool,
    pub params: Vec<Param<'a>>,
    pub output: Output<'a>,
    pub doc: String,
}

/// A `pub const` of the impl block: a constant of the type table.
pub struct Constant<'a> {
    pub ident: &'a Ident,
    pub lua_name: String,
    /// Declared without a value: the remote type's constant of the same name.
    pub forward: bool,
    pub ty: &'a Type,
    pub doc: String,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Receiver {
    /// No `self`: a static function in the type table.
    None,
    Ref,
    Mut,
    /// `self` by value: only forwarded functions, called on a copy.
    Value,
}

pub struct Param<'a> {
    /// The parameter's pattern (its name), where errors about it point.
    pub pat: &'a syn::Pat,
    pub ty: &'a Type,
    pub kind: ParamKind<'a>,
}

pub enum ParamKind<'a> {
    /// Converted by value.
    Value,
    /// `&str`, borrowed from the Lua string.
    Str,
    /// `Option<&str>`: nil (or missing) is `None`.
    OptionalStr,
    /// `&T` / `&mut T` of a derived type, borrowed in place.
    UserData { target: &'a Type, mutable: bool },
    /// `Variadic<T>`: the remaining arguments.
    Variadic { item: &'a Type },
    /// A reference of another kind: refused by validation.
    OtherRef,
}

/// The shape of a return type, which decides how it reaches Lua.
pub enum Output<'a> {
    Unit,
    /// One value.
    Single(&'a Type),
    /// A tuple: multiple returns.
    Tuple(Vec<&'a Type>),
    /// `Result<T, E>` with the shape of `T`.
    Result(Box<Output<'a>>, &'a Type),
}

/// An item without a body in a remote `#[lua_methods]` block: `pub fn f(self) -> T;` or
/// `pub const C: T;`. Not valid Rust on its own; syn hands such items over as tokens.
pub enum Bodiless {
    Fn {
        attrs: Vec<Attribute>,
        vis: Visibility,
        sig: Box<Signature>,
    },
    Const {
        attrs: Vec<Attribute>,
        vis: Visibility,
        ident: Ident,
        ty: Box<Type>,
    },
}

impl Parse for Bodiless {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        if input.peek(Token![const]) {
            input.parse::<Token![const]>()?;
            let ident: Ident = input.parse()?;
            input.parse::<Token![:]>()?;
            let ty: Box<Type> = input.parse()?;
            input.parse::<Token![;]>()?;
            return Ok(Bodiless::Const {
                attrs,
                vis,
                ident,
                ty,
            });
        }
        let sig: Signature = input.parse()?;
        input.parse::<Token![;]>()?;
        Ok(Bodiless::Fn {
            attrs,
            vis,
            sig: Box::new(sig),
        })
    }
}

impl<'a> Methods<'a> {
    /// `bodiless` holds the block's items without a body, parsed by the caller.
    pub fn from_syn(
        item: &'a ItemImpl,
        remote: Option<&'a Path>,
        bodiless: &'a [Bodiless],
    ) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let mut functions = Vec::new();
        let mut constants = Vec::new();
        let declared = item.items.iter().filter_map(|impl_item| match impl_item {
            ImplItem::Fn(f) => Some(Declared::Fn(&f.attrs, &f.vis, &f.sig, false)),
            ImplItem::Const(c) => Some(Declared::Const(&c.attrs, &c.vis, &c.ident, &c.ty, false)),
            _ => None,
        });
        let forwarded = bodiless.iter().map(|b| match b {
            Bodiless::Fn { attrs, vis, sig } => Declared::Fn(attrs, vis, sig, true),
            Bodiless::Const {
                attrs,
                vis,
                ident,
                ty,
            } => Declared::Const(attrs, vis, ident, ty, true),
        });
        for declared in declared.chain(forwarded) {
            let (attrs, vis) = match declared {
                Declared::Fn(attrs, vis, ..) | Declared::Const(attrs, vis, ..) => (attrs, vis),
            };
            let Some(attr) = errors.ok(attr::lua_attr(attrs)) else {
                continue;
            };
            let public = matches!(vis, Visibility::Public(_));
            if !public || attr.skip.is_some() {
                if let (false, Some(span)) = (public, attr.span) {
                    errors.push(syn::Error::new(
                        span,
                        "#[lua(...)] on a private item has no effect: only `pub` items are exposed to Lua",
                    ));
                }
                continue;
            }
            if let Some(span) = attr.readonly {
                errors.push(syn::Error::new(
                    span,
                    "`readonly` applies to fields, not methods",
                ));
            }
            match declared {
                Declared::Fn(attrs, _, sig, forward) => {
                    let doc = attr::doc(attrs);
                    if let Some(function) = errors.ok(Function::from_syn(sig, attr, forward, doc)) {
                        functions.push(function);
                    }
                }
                Declared::Const(attrs, _, ident, ty, forward) => constants.push(Constant {
                    ident,
                    lua_name: attr
                        .name
                        .map(|n| n.value())
                        .unwrap_or_else(|| ident.to_string()),
                    forward,
                    ty,
                    doc: attr::doc(attrs),
                }),
            }
        }
        errors.finish()?;
        Ok(Methods {
            item,
            remote,
            functions,
            constants,
        })
    }
}

/// A function or constant of the block, with or without a body.
enum Declared<'a> {
    Fn(&'a [Attribute], &'a Visibility, &'a Signature, bool),
    Const(&'a [Attribute], &'a Visibility, &'a Ident, &'a Type, bool),
}

impl<'a> Function<'a> {
    fn from_syn(
        sig: &'a Signature,
        attr: LuaAttr,
        forward: bool,
        doc: String,
    ) -> syn::Result<Self> {
        let mut receiver = Receiver::None;
        let mut params = Vec::new();
        for input in &sig.inputs {
            match input {
                FnArg::Receiver(r) => {
                    receiver = match (&r.reference, &r.mutability) {
                        (Some(_), None) => Receiver::Ref,
                        (Some(_), Some(_)) => Receiver::Mut,
                        (None, _) if forward => Receiver::Value,
                        (None, _) => {
                            return Err(syn::Error::new(
                                r.span(),
                                "methods taking `self` by value cannot be called from Lua: take `&self` or `&mut self`, or mark the method #[lua(skip)]",
                            ));
                        }
                    }
                }
                FnArg::Typed(pat) => params.push(Param {
                    pat: &pat.pat,
                    ty: &pat.ty,
                    kind: ParamKind::of(&pat.ty),
                }),
            }
        }
        let output = match &sig.output {
            ReturnType::Default => Output::Unit,
            ReturnType::Type(_, ty) => Output::of(ty),
        };
        Ok(Function {
            sig,
            lua_name: attr
                .name
                .map(|n| n.value())
                .unwrap_or_else(|| sig.ident.to_string()),
            receiver,
            forward,
            params,
            output,
            doc,
        })
    }
}

impl<'a> ParamKind<'a> {
    fn of(ty: &'a Type) -> Self {
        match ty {
            Type::Reference(reference) => match &*reference.elem {
                Type::Path(path) if path.path.is_ident("str") && reference.mutability.is_none() => {
                    ParamKind::Str
                }
                target @ Type::Path(_) => ParamKind::UserData {
                    target,
                    mutable: reference.mutability.is_some(),
                },
                _ => ParamKind::OtherRef,
            },
            Type::Path(path) => {
                if let Some(item) = last_segment_args(path, "Variadic") {
                    ParamKind::Variadic { item }
                } else if last_segment_args(path, "Option").is_some_and(is_str_ref) {
                    ParamKind::OptionalStr
                } else {
                    ParamKind::Value
                }
            }
            _ => ParamKind::Value,
        }
    }
}

impl<'a> Output<'a> {
    fn of(ty: &'a Type) -> Self {
        match ty {
            Type::Tuple(tuple) if tuple.elems.is_empty() => Output::Unit,
            Type::Tuple(tuple) => Output::Tuple(tuple.elems.iter().collect()),
            Type::Path(path) => match last_segment_args(path, "Result") {
                Some(ok) => Output::Result(Box::new(Output::of(ok)), ty),
                None => Output::Single(ty),
            },
            _ => Output::Single(ty),
        }
    }

    /// The types Lua receives, in order: none for `()`, the elements of a tuple, what a
    /// `Result` holds.
    pub fn lua_types(&self) -> Vec<&'a Type> {
        match self {
            Output::Unit => Vec::new(),
            Output::Single(ty) => vec![*ty],
            Output::Tuple(types) => types.clone(),
            Output::Result(ok, _) => ok.lua_types(),
        }
    }
}

fn is_str_ref(ty: &Type) -> bool {
    matches!(ty, Type::Reference(r) if r.mutability.is_none() && matches!(&*r.elem, Type::Path(p) if p.path.is_ident("str")))
}

/// The first generic type argument when the path's last segment is `name` (`Result<T, E>` gives
/// `T`).
fn last_segment_args<'a>(path: &'a syn::TypePath, name: &str) -> Option<&'a Type> {
    let segment = path.path.segments.last()?;
    if segment.ident != name {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        syn::GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })
}

/// Collects several errors so the user sees all of them at once.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, err: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(err),
            None => self.0 = Some(err),
        }
    }

    pub fn ok<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }

    pub fn error(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    pub fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}
