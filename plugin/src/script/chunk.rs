//! Scripts compiled once and shared by their instances.
//!
//! 10,000 entities running `player.lua` run one copy of its bytecode, each instance in its own
//! environment: compiling per instance would cost the time of a compile per entity and a copy
//! of the bytecode each, spread over the heap where every frame reaches it.

use std::sync::Arc;

use bevy::asset::AssetId;
use bevy::platform::collections::HashMap;
use mlua::{Function, Lua, Table};

use crate::script::asset::LuaScriptAsset;

/// The compiled top-level chunk of each script, by asset, with the source it was compiled from.
#[derive(Default)]
pub(crate) struct Chunks {
    compiled: HashMap<AssetId<LuaScriptAsset>, (Arc<str>, Function)>,
    /// The source of each script that failed to compile, last time: its error was reported.
    failed: HashMap<AssetId<LuaScriptAsset>, Arc<str>>,
}

impl Chunks {
    /// The chunk of `script`, compiled now if its source is new (first use, or hot reload).
    /// A source that does not compile fails with its error once (`Err(Some)`), and then quietly
    /// (`Err(None)`) for the other instances of the script, until its source changes.
    pub(crate) fn get(
        &mut self,
        lua: &Lua,
        asset: AssetId<LuaScriptAsset>,
        script: &LuaScriptAsset,
    ) -> Result<Function, Option<mlua::Error>> {
        if let Some((source, chunk)) = self.compiled.get(&asset)
            && Arc::ptr_eq(source, &script.source)
        {
            return Ok(chunk.clone());
        }
        if self
            .failed
            .get(&asset)
            .is_some_and(|source| Arc::ptr_eq(source, &script.source))
        {
            return Err(None);
        }
        match compile(lua, script) {
            Ok(chunk) => {
                self.failed.remove(&asset);
                self.compiled
                    .insert(asset, (script.source.clone(), chunk.clone()));
                Ok(chunk)
            }
            Err(err) => {
                self.failed.insert(asset, script.source.clone());
                Err(Some(err))
            }
        }
    }

    /// Forgets the scripts no instance uses any more.
    pub(crate) fn retain(&mut self, mut used: impl FnMut(AssetId<LuaScriptAsset>) -> bool) {
        self.compiled.retain(|asset, _| used(*asset));
        self.failed.retain(|asset, _| used(*asset));
    }
}

/// Compiles a script's or module's source (text only), named by its asset path as errors
/// and tracebacks show it.
pub(crate) fn compile(lua: &Lua, script: &LuaScriptAsset) -> mlua::Result<Function> {
    lua.load(&*script.source)
        .set_name(format!("@{}", script.path))
        .set_mode(mlua::chunk::ChunkMode::Text)
        .into_function()
}

/// Points `chunk` at `env` for the run of its top-level code that follows: the functions that
/// code defines keep `env` as theirs, and those of earlier runs keep their own.
pub(crate) fn bind(chunk: &Function, env: &Table) -> mlua::Result<()> {
    // Lua 5.2+ gives the chunk a fresh `_ENV` upvalue (joined, not overwritten, so closures made
    // by earlier runs are untouched); Lua 5.1/LuaJIT/Luau set the function environment, which
    // closures copy when they are made.
    chunk.set_environment(env.clone()).map(drop)
}
