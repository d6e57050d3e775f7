//! The component that attaches a script to an entity.

use bevy::asset::Handle;
use bevy::ecs::component::Component;
use bevy::ecs::lifecycle::HookContext;
use bevy::ecs::resource::Resource;
use bevy::ecs::world::DeferredWorld;

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
#[component(on_insert = attachments_changed, on_remove = attachments_changed)]
pub struct LuaScript(pub Handle<LuaScriptAsset>);

/// Counts insertions and removals of [`LuaScript`] (despawns included): the runtime compares
/// the scripts with its instances only in frames after it changed, not every frame.
#[derive(Resource, Default)]
pub(crate) struct ScriptAttachments(pub u64);

fn attachments_changed(mut world: DeferredWorld, _: HookContext) {
    if let Some(mut attachments) = world.get_resource_mut::<ScriptAttachments>() {
        attachments.0 += 1;
    }
}
