//! `.lua` files as Bevy assets.

use std::sync::Arc;

use bevy::asset::io::Reader;
use bevy::asset::{Asset, AssetLoader, LoadContext};
use bevy::reflect::TypePath;

/// The source of a Lua script, loaded from a `.lua` file in the assets folder.
///
/// The loader only reads and syntax-checks the file; each entity that runs the script gets its
/// own instance (see [`LuaScript`](crate::LuaScript)).
#[derive(Asset, TypePath, Debug, Clone)]
pub struct LuaScriptAsset {
    /// The asset path, as scripts' errors name it (`scripts/player.lua`).
    pub path: Arc<str>,
    pub source: Arc<str>,
}

/// Loads `.lua` files: reads the bytes and checks the syntax, so a broken script fails to load
/// with `path:line: message` and the previous version, if any, keeps running.
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
    /// `message` starts with `path:line:`, as Lua reports it.
    #[error("{message}")]
    Syntax { message: String },
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
        check_syntax(&path, &source).map_err(|message| LuaScriptLoadError::Syntax { message })?;
        Ok(LuaScriptAsset {
            path: path.into(),
            source: source.into(),
        })
    }

    fn extensions(&self) -> &[&str] {
        &["lua"]
    }
}

/// Compiles `source` without running it; the error reads `path:line: message`.
pub(crate) fn check_syntax(path: &str, source: &str) -> Result<(), String> {
    // A bare state: compiling needs no libraries.
    let lua = mlua::Lua::new_with(mlua::StdLib::NONE, mlua::LuaOptions::default())
        .map_err(|e| e.to_string())?;
    lua.load(source)
        .set_name(format!("@{path}"))
        .set_mode(mlua::chunk::ChunkMode::Text)
        .into_function()
        .map(drop)
        .map_err(|err| match err {
            mlua::Error::SyntaxError { message, .. } => message,
            other => format!("{path}: {other}"),
        })
}
