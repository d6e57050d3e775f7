//! Lua scripting for Bevy.
//!
//! `#[derive(LuaUserData)]` turns a plain Rust struct into a complete Lua userdata: fields,
//! methods (`#[lua_methods]`) and operators (`#[lua_impl(...)]`), with strict conversions and
//! exact error messages.

pub mod userdata;

pub use bevy_lunar_macros::{LuaUserData, lua_methods};
pub use mlua;
pub use userdata::{LuaUserData, register_type};

/// `use bevy_lunar::prelude::*;` brings in the derive and trait `LuaUserData` and `lua_methods`.
pub mod prelude {
    pub use crate::userdata::LuaUserData;
    pub use bevy_lunar_macros::{LuaUserData, lua_methods};
}
