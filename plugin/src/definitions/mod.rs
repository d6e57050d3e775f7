//! Editor definitions: the Lua API of the registered types and of the script environment, as a
//! LuaLS / EmmyLua definition file, so that editors complete fields and methods and flag
//! `player.helth = 5` before the game runs.
//!
//! The derives describe each type once more, for editors: [`LuaUserData::define`](crate::userdata::LuaUserData::define) fills a
//! [`ClassDef`] from the same model that generates the runtime registration, so the two agree.
//! [`render`] turns the registry's classes and the script API into the file; the plugin writes it
//! with [`LuaAppExt::write_lua_definitions`](crate::LuaAppExt::write_lua_definitions).
//!
//! ```
//! use bevy::prelude::*;
//! use bevy_lunar::prelude::*;
//!
//! /// The hero.
//! #[derive(Component, LuaUserData)]
//! struct Player {
//!     /// Hit points; 0 is down.
//!     pub health: f64,
//! }
//!
//! let mut app = App::new();
//! app.add_plugins((MinimalPlugins, AssetPlugin::default(), LuaScriptingPlugin::default()))
//!     .register_lua_component::<Player>();
//! let text = app.lua_definitions();
//! assert!(text.contains("---The hero.\n---@class Player: Component\n"));
//! assert!(text.contains("---@field health number Hit points; 0 is down."));
//! ```

mod api;
mod emmylua;

pub use api::ScriptApi;
pub use emmylua::render;

use std::io;
use std::path::{Path, PathBuf};

pub use crate::userdata::describe::{
    ClassDef, ConstantDef, Definitions, FieldDef, FunctionDef, OperatorDef, VariantDef,
    VariantStyle,
};

/// `path` from the project folder when relative, as Bevy finds `assets/`.
pub(crate) fn project_path(path: PathBuf) -> PathBuf {
    if path.is_relative() {
        bevy::asset::io::file::FileAssetReader::get_base_path().join(path)
    } else {
        path
    }
}

/// Writes `text` to `path` unless it holds it already, and a `.luarc.json` pointing at the
/// file's folder one level up, unless there is one. Whether the definitions were written.
pub(crate) fn write(path: &Path, text: &str) -> io::Result<bool> {
    let folder = path.parent().unwrap_or(Path::new("."));
    if let Some(root) = folder.parent() {
        let config = root.join(".luarc.json");
        if !config.exists() {
            let library = folder.file_name().unwrap_or_default().to_string_lossy();
            std::fs::create_dir_all(root)?;
            std::fs::write(&config, luarc(&library))?;
        }
    }
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    std::fs::create_dir_all(folder)?;
    std::fs::write(path, text)?;
    Ok(true)
}

/// A `.luarc.json` for this build's Lua, with `library` (a folder beside it) as a definition
/// library. Read by LuaLS and EmmyLua alike (both take `"Lua 5.4"` and `"LuaJIT"`).
fn luarc(library: &str) -> String {
    let version = if cfg!(feature = "luajit") {
        "LuaJIT"
    } else {
        "Lua 5.4"
    };
    format!(
        r#"{{
  "runtime": {{ "version": "{version}" }},
  "workspace": {{ "library": ["{library}"] }}
}}
"#
    )
}
