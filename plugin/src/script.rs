//! The component that attaches a script to an entity.

use bevy::asset::Handle;
use bevy::ecs::component::Component;

use crate::asset::LuaScriptAsset;

/// Runs a Lua script on this entity: the script gets its own instance (global environment) in
/// which `entity` is this entity.
///
/// ```no_run
/// use bevy::prelude::*;
/// use bevy_lunar::LuaScript;
///
/// fn spawn_player(mut commands: Commands, assets: Res<AssetServer>) {
///     commands.spawn(LuaScript(assets.load("scripts/player.lua")));
/// }
/// # bevy::ecs::system::assert_is_system(spawn_player);
/// ```
#[derive(Component, Clone, Debug)]
pub struct LuaScript(pub Handle<LuaScriptAsset>);
