//! Lua scripting for Bevy.
//!
//! - [`LuaScriptingPlugin`]: `.lua` files in `assets/` are [`LuaScriptAsset`]s; a
//!   [`LuaScript`] component runs one on an entity, with live access to the components
//!   registered through [`LuaAppExt`], hot reload, and faults reported as [`LuaScriptError`].
//! - `#[derive(LuaUserData)]` turns a plain Rust struct or enum into a complete Lua value: fields
//!   (collections and nested types as live views), methods (`#[lua_methods]`) and operators
//!   (`#[lua_impl(...)]`), with strict conversions and exact error messages. The attribute
//!   reference and "Values in Lua" are in the README.
//!
//! ```
//! use bevy_lunar::mlua::Lua;
//! use bevy_lunar::prelude::*;
//!
//! #[derive(LuaUserData)]
//! pub struct Player {
//!     pub name: String,
//!     pub health: f64,
//!     #[lua(readonly)]
//!     pub level: u8,
//!     internal_id: u64, // private: invisible to Lua
//! }
//!
//! #[lua_methods]
//! impl Player {
//!     pub fn new(name: String) -> Self {
//!         Player { name, health: 100.0, level: 1, internal_id: 0 }
//!     }
//!
//!     pub fn heal(&mut self, amount: f64) {
//!         self.health += amount;
//!     }
//! }
//!
//! let lua = Lua::new();
//! bevy_lunar::register_type::<Player>(&lua)?; // the global table `Player`
//! let health: f64 = lua
//!     .load(
//!         r#"
//!         local p = Player.new("Alice")
//!         p.health = p.health - 30
//!         p:heal(5)
//!         return p.health
//!         "#,
//!     )
//!     .eval()?;
//! assert_eq!(health, 75.0);
//! # Ok::<(), bevy_lunar::mlua::Error>(())
//! ```

// The derives expand to `::bevy_lunar::...` paths, also inside this crate.
extern crate self as bevy_lunar;

mod bevy_types;
pub mod definitions;
mod error;
mod plugin;
mod published;
mod script;
mod task;
pub mod userdata;
mod vm;
mod world;

pub use bevy_lunar_macros::{LuaUserData, lua_methods};
pub use error::{LuaScriptError, LuaScriptErrorKind};
pub use mlua;
pub use plugin::{LuaAppExt, LuaScriptSet, LuaScriptingPlugin};
pub use script::asset::{LuaScriptAsset, LuaScriptLoadError, LuaScriptLoader};
pub use script::component::{LuaScript, LuaScripts, ScriptOf};
pub use script::runtime::{InstanceMemory, LuaScriptStats};
pub use userdata::{LuaUserData, StaleReference, register_type};
pub use vm::budget::{BudgetExceeded, BudgetWatchdog};
pub use world::handle::EntityHandle;
pub use world::message::{LuaCall, LuaCallTarget, LuaMessage, ScriptValue};
pub use world::registry::LuaTypeRegistry;

/// `use bevy_lunar::prelude::*;` brings in the derive and trait `LuaUserData`, `lua_methods`,
/// the plugin and its component, messages, statistics and `App` extension.
pub mod prelude {
    pub use crate::userdata::LuaUserData;
    pub use crate::{
        LuaAppExt, LuaCall, LuaMessage, LuaScript, LuaScriptAsset, LuaScriptError, LuaScriptSet,
        LuaScriptStats, LuaScriptingPlugin, LuaScripts, ScriptOf, ScriptValue,
    };
    pub use bevy_lunar_macros::{LuaUserData, lua_methods};
}
