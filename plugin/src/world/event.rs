//! Bevy events scripts react to: a registered component added to or removed from an entity, an
//! entity despawned, and entity events registered with
//! [`register_lua_event`](crate::LuaAppExt::register_lua_event).
//!
//! Observers queue them in [`ScriptEvents`]; scripts cannot run inside an observer (the
//! runtime is out of the world while scripts run, and an observer runs in the middle of a
//! command or another system). The runtime hands them to scripts in its next run, before the
//! frame's timers and `on_update`s, as messages named `Added:Player`, `Removed:Player`,
//! `Despawned` (of an entity with a script or a registered component: Bevy observes despawns
//! per component) and `Damaged@51v0` (an entity event, for the scripts of its target), which
//! `world.on`, `entity:on` and `wait_for` wait for. While no script waits for any message the
//! queue is only cleared.

use bevy::ecs::entity::Entity;
use bevy::ecs::event::{EntityEvent, Event};
use bevy::ecs::lifecycle::{Add, Despawn, Remove};
use bevy::ecs::observer::On;
use bevy::ecs::query::With;
use bevy::ecs::resource::Resource;
use bevy::ecs::system::{Query, ResMut};
use bevy::ecs::world::World;
use mlua::{AnyUserData, IntoLua};

use crate::userdata::LuaUserData;
use crate::world::handle::EntityHandle;
use crate::world::registry::{PendingMessage, pending_userdata};

/// One event on its way to scripts.
pub(crate) enum ScriptEvent {
    Added {
        component: &'static str,
        entity: Entity,
    },
    Removed {
        component: &'static str,
        entity: Entity,
    },
    Despawned(Entity),
    /// An entity event, for the scripts of `target`.
    Targeted {
        name: &'static str,
        target: Entity,
        event: PendingMessage,
    },
}

impl ScriptEvent {
    /// The message name scripts wait for.
    pub(crate) fn name(&self) -> String {
        match self {
            ScriptEvent::Added { component, .. } => format!("Added:{component}"),
            ScriptEvent::Removed { component, .. } => format!("Removed:{component}"),
            ScriptEvent::Despawned(_) => "Despawned".to_owned(),
            ScriptEvent::Targeted { name, target, .. } => format!("{name}@{target}"),
        }
    }

    /// What scripts get: the entity's handle, or the event.
    pub(crate) fn into_message(self) -> PendingMessage {
        match self {
            ScriptEvent::Added { entity, .. }
            | ScriptEvent::Removed { entity, .. }
            | ScriptEvent::Despawned(entity) => {
                Box::new(move |lua: &mlua::Lua| EntityHandle::new(entity).into_lua(lua))
            }
            ScriptEvent::Targeted { event, .. } => event,
        }
    }
}

/// The events observed since the runtime last ran.
#[derive(Resource, Default)]
pub(crate) struct ScriptEvents(pub Vec<ScriptEvent>);

/// Queues additions and removals of component `T` (named `name` in scripts), and the despawns
/// of entities that have one.
pub(crate) fn observe_component<T: bevy::ecs::component::Component>(
    app: &mut bevy::app::App,
    name: &'static str,
) {
    observe_despawns::<T>(app);
    app.init_resource::<ScriptEvents>()
        .add_observer(move |added: On<Add, T>, mut events: ResMut<ScriptEvents>| {
            events.0.push(ScriptEvent::Added {
                component: name,
                entity: added.entity,
            });
        })
        .add_observer(
            move |removed: On<Remove, T>, mut events: ResMut<ScriptEvents>| {
                events.0.push(ScriptEvent::Removed {
                    component: name,
                    entity: removed.entity,
                });
            },
        );
}

/// Queues the despawns of entities that have a `T`. Bevy runs `Despawn` observers only for
/// entities that have a component observed, once per such component: an entity with several
/// is queued once (its despawn observers run one after the other).
pub(crate) fn observe_despawns<T: bevy::ecs::component::Component>(app: &mut bevy::app::App) {
    app.init_resource::<ScriptEvents>().add_observer(
        |despawned: On<Despawn, T>,
         script_entities: Query<(), With<crate::ScriptOf>>,
         mut events: ResMut<ScriptEvents>| {
            let entity = despawned.entity;
            // A script entity is the plugin's bookkeeping, not a game entity.
            if script_entities.contains(entity) {
                return;
            }
            let seen = events
                .0
                .iter()
                .rev()
                .take(4)
                .any(|e| matches!(e, ScriptEvent::Despawned(d) if *d == entity));
            if !seen {
                events.0.push(ScriptEvent::Despawned(entity));
            }
        },
    );
}

/// Queues every `E` for the scripts of its target.
pub(crate) fn observe_entity_event<E>(app: &mut bevy::app::App)
where
    E: EntityEvent + LuaUserData + Clone,
{
    app.init_resource::<ScriptEvents>().add_observer(
        |event: On<E>, mut events: ResMut<ScriptEvents>| {
            let event = event.event().clone();
            events.0.push(ScriptEvent::Targeted {
                name: E::TYPE_NAME,
                target: event.event_target(),
                event: pending_userdata(event),
            });
        },
    );
}

/// `world.trigger(value)` (`on` is `None`) or `entity:trigger(value)` (`on` is the entity) for
/// an entity event type `E`: `Ok(false)` when `value` is not one. An event carries its own
/// target, so `entity:trigger` refuses one that targets another entity rather than pick one of
/// the two. Rust observers run now; scripts get it in the runtime's next run.
pub(crate) fn trigger<E>(
    world: &mut World,
    value: &AnyUserData,
    on: Option<Entity>,
) -> mlua::Result<bool>
where
    E: EntityEvent + LuaUserData + Clone,
    for<'a> <E as Event>::Trigger<'a>: Default,
{
    if !value.is::<E>() {
        return Ok(false);
    }
    let event = value.borrow::<E>()?.clone();
    if let Some(entity) = on
        && event.event_target() != entity
    {
        return Err(crate::userdata::script_error(format!(
            "entity:trigger: this {} targets entity {}, not {entity} (trigger it on its target, or with world.trigger)",
            E::TYPE_NAME,
            event.event_target()
        )));
    }
    world.trigger(event);
    Ok(true)
}
