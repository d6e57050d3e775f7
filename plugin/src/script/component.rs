//! The component that attaches a script to an entity.

use bevy::asset::Handle;
use bevy::ecs::component::Component;
use bevy::ecs::entity::Entity;
use bevy::ecs::lifecycle::HookContext;
use bevy::ecs::resource::Resource;
use bevy::ecs::world::DeferredWorld;

use crate::script::asset::LuaScriptAsset;

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

/// Runs the script on this entity's `LuaScript` for another entity, its target: an entity can
/// carry several scripts this way, each an instance with its own environment, whose `entity`
/// is the target. The script entity belongs to its target: despawning the target despawns it,
/// and despawning it (or removing its `LuaScript`) stops that script alone.
///
/// ```no_run
/// use bevy::prelude::*;
/// use bevy_lunar::{LuaScript, LuaScripts, ScriptOf};
///
/// fn spawn_guard(mut commands: Commands, assets: Res<AssetServer>) {
///     commands.spawn((
///         Transform::default(),
///         LuaScript(assets.load("scripts/guard.lua")),
///         related!(LuaScripts[
///             LuaScript(assets.load("scripts/patrol.lua")),
///             LuaScript(assets.load("scripts/health_bar.lua")),
///         ]),
///     ));
/// }
/// # bevy::ecs::system::assert_is_system(spawn_guard);
/// ```
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
#[relationship(relationship_target = LuaScripts)]
pub struct ScriptOf(pub Entity);

/// The script entities ([`ScriptOf`]) running scripts for this entity, in the order they were
/// attached.
#[derive(Component, Debug, Default)]
#[relationship_target(relationship = ScriptOf, linked_spawn)]
pub struct LuaScripts(Vec<Entity>);

impl LuaScripts {
    /// The script entities, in the order they were attached.
    pub fn entities(&self) -> &[Entity] {
        &self.0
    }
}

/// Counts insertions and removals of [`LuaScript`] (despawns included): the runtime compares
/// the scripts with its instances only in frames after it changed, not every frame.
#[derive(Resource, Default)]
pub(crate) struct ScriptAttachments(pub u64);

fn attachments_changed(mut world: DeferredWorld, _: HookContext) {
    if let Some(mut attachments) = world.get_resource_mut::<ScriptAttachments>() {
        attachments.0 += 1;
    }
}
