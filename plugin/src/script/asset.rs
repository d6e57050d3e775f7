//! `.lua` files as Bevy assets.

use std::sync::Arc;

use bevy::asset::io::Reader;
use bevy::asset::{Asset, AssetLoader, Handle, LoadContext};
use bevy::reflect::TypePath;

/// The source of a Lua script, loaded from a `.lua` file in the assets folder.
///
/// The loader only reads the file (the runtime compiles it, once for all its instances); each
/// entity that runs the script gets its own instance (see [`LuaScript`](crate::LuaScript)).
#[derive(Asset, TypePath, Debug, Clone)]
pub struct LuaScriptAsset {
    /// The asset path, as scripts' errors name it (`scripts/player.lua`).
    pub path: Arc<str>,
    pub source: Arc<str>,
    /// The modules its source requires by a literal name (`require("scripts/util")`), loaded
    /// with it: its instances start once they are loaded too.
    #[dependency]
    pub requires: Vec<Handle<LuaScriptAsset>>,
}

/// Loads `.lua` files: reads the bytes. Syntax errors are the runtime's to report (one
/// [`LuaScriptError`](crate::LuaScriptError) of kind `Syntax` naming `path:line`, while the
/// previous version, if any, keeps running): a failed asset load would also be logged by Bevy's
/// asset server, with a Rust backtrace when `RUST_BACKTRACE` is set.
#[derive(Default, TypePath)]
pub struct LuaScriptLoader;

/// Why a script failed to load.
#[derive(Debug, thiserror::Error)]
pub enum LuaScriptLoadError {
    #[error("{path}: cannot read the script: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: the script is not UTF-8")]
    NotUtf8 { path: String },
}

impl AssetLoader for LuaScriptLoader {
    type Asset = LuaScriptAsset;
    type Settings = ();
    type Error = LuaScriptLoadError;

    async fn load(
        &self,
        reader: &mut dyn Reader,
        _settings: &(),
        load_context: &mut LoadContext<'_>,
    ) -> Result<LuaScriptAsset, LuaScriptLoadError> {
        let path = load_context
            .path()
            .path()
            .to_string_lossy()
            .replace('\\', "/");
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .await
            .map_err(|source| LuaScriptLoadError::Io {
                path: path.clone(),
                source,
            })?;
        let source = String::from_utf8(bytes)
            .map_err(|_| LuaScriptLoadError::NotUtf8 { path: path.clone() })?;
        // A name that is no module path is `require`'s error to report, at its line.
        let requires = crate::script::module::literal_requires(&source)
            .iter()
            .filter_map(|name| crate::script::module::module_path(name).ok())
            .map(|module| load_context.load::<LuaScriptAsset>(module))
            .collect();
        Ok(LuaScriptAsset {
            path: path.into(),
            source: source.into(),
            requires,
        })
    }

    fn extensions(&self) -> &[&str] {
        &["lua"]
    }
}
