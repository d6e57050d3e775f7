//! Derive and attribute macros of `bevy_lunar`. Use them through `bevy_lunar::prelude`.
//!
//! Layout follows serde_derive and thiserror-impl: `attr` parses attributes, `ast` builds a typed
//! model, `valid` checks it with spanned errors, `expand` generates code that calls into the
//! runtime in `bevy_lunar::userdata`.

mod ast;
mod attr;
mod expand;
mod valid;

use proc_macro::TokenStream;
use syn::{DeriveInput, ItemImpl, parse_macro_input};

/// Exposes a struct's `pub` fields to Lua and makes it an `mlua::UserData`.
///
/// Field attributes: `#[lua(skip)]`, `#[lua(readonly)]`, `#[lua(name = "...")]`.
/// Struct attributes: `#[lua(remote = path::To::Type)]` describes a foreign type whose fields
/// the struct mirrors (see `#[lua_methods]` for its methods); `#[lua(name = "...")]` renames the
/// type in Lua; `#[lua_impl(Display, PartialEq, PartialOrd, Add, Mul<f64>, Neg, ...)]` maps
/// std traits to Lua metamethods. See `bevy_lunar::userdata` for the full reference.
#[proc_macro_derive(LuaUserData, attributes(lua, lua_impl))]
pub fn derive_lua_user_data(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Exposes the `pub fn`s of an inherent impl block to Lua: `&self`/`&mut self` methods as
/// `obj:method(...)`, the others as static functions of the type table (`Type.new(...)`).
///
/// `pub const`s become constants of the type table (`Type.MAX`).
///
/// Method attributes: `#[lua(skip)]`, `#[lua(name = "...")]`.
///
/// `#[lua_methods(remote = path::To::Type)]` on the impl block of a remote derive's stand-in
/// struct: signatures without a body (`pub fn length(self) -> f32;`, `pub const ZERO: Vec3;`)
/// forward to the remote type's own functions and constants.
#[proc_macro_attribute]
pub fn lua_methods(args: TokenStream, input: TokenStream) -> TokenStream {
    let remote = match attr::methods_args(args.into()) {
        Ok(remote) => remote,
        Err(err) => return err.into_compile_error().into(),
    };
    let mut item = parse_macro_input!(input as ItemImpl);
    expand::methods(&mut item, remote.as_ref())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
