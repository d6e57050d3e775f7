//! The Rust types scripts can name: components, resources and plain derived types.

use std::collections::BTreeMap;

use bevy::ecs::component::{Component, Mutable};
use bevy::ecs::entity::Entity;
use bevy::ecs::resource::Resource;
use bevy::ecs::world::World;
use mlua::{AnyUserData, Lua, Value};

use crate::handle::{ComponentPlace, ResourcePlace, stale_despawned};
use crate::userdata::{LuaRef, LuaUserData, register_type};
use crate::world::with_world;

/// Installs one type table on a Lua state.
pub(crate) type InstallTypeTable = fn(&Lua) -> mlua::Result<()>;

/// What the runtime needs to know of one registered component type, as plain functions.
#[derive(Clone, Copy)]
pub(crate) struct ComponentEntry {
    /// `entity:get(name)`: a live reference, or nil when the entity has no such component.
    pub get: fn(&Lua, Entity) -> mlua::Result<Value>,
    pub has: fn(&World, Entity) -> Option<bool>,
    /// `entity:insert(value)`: `Ok(false)` when `value` is not this type.
    pub insert: fn(&mut World, Entity, &AnyUserData) -> mlua::Result<bool>,
    pub remove: fn(&mut World, Entity) -> bool,
    pub component_id: fn(&mut World) -> bevy::ecs::component::ComponentId,
}

#[derive(Clone, Copy)]
pub(crate) struct ResourceEntry {
    pub get: fn(&Lua) -> mlua::Result<Value>,
}

/// Every type registered through [`LuaAppExt`](crate::LuaAppExt). A resource of the app.
#[derive(Resource, Default)]
pub struct LuaTypeRegistry {
    pub(crate) components: BTreeMap<&'static str, ComponentEntry>,
    pub(crate) resources: BTreeMap<&'static str, ResourceEntry>,
    /// Installs the global type tables; run on the Lua state once each.
    pub(crate) type_tables: Vec<(&'static str, InstallTypeTable)>,
}

impl LuaTypeRegistry {
    pub(crate) fn add_component<T: Component<Mutability = Mutable> + LuaUserData>(&mut self) {
        self.components.insert(
            T::TYPE_NAME,
            ComponentEntry {
                get: get_component::<T>,
                has: |world, entity| world.get_entity(entity).ok().map(|e| e.contains::<T>()),
                insert: insert_component::<T>,
                remove: |world, entity| {
                    world
                        .get_entity_mut(entity)
                        .ok()
                        .and_then(|mut e| e.take::<T>())
                        .is_some()
                },
                component_id: |world| world.register_component::<T>(),
            },
        );
        self.add_type::<T>();
    }

    pub(crate) fn add_resource<T: Resource<Mutability = Mutable> + LuaUserData>(&mut self) {
        self.resources.insert(
            T::TYPE_NAME,
            ResourceEntry {
                get: get_resource::<T>,
            },
        );
        self.add_type::<T>();
    }

    pub(crate) fn add_type<T: LuaUserData>(&mut self) {
        if !self
            .type_tables
            .iter()
            .any(|(name, _)| *name == T::TYPE_NAME)
        {
            self.type_tables
                .push((T::TYPE_NAME, |lua| register_type::<T>(lua).map(drop)));
        }
    }
}

fn get_component<T: Component<Mutability = Mutable> + LuaUserData>(
    lua: &Lua,
    entity: Entity,
) -> mlua::Result<Value> {
    let present = with_world(|world| world.get_entity(entity).ok().map(|e| e.contains::<T>()))?;
    match present {
        None => Err(stale_despawned(entity, T::TYPE_NAME)),
        Some(false) => Ok(Value::Nil),
        Some(true) => lua
            .create_userdata(LuaRef::new(ComponentPlace::<T>::new(entity)))
            .map(Value::UserData),
    }
}

fn insert_component<T: Component<Mutability = Mutable> + LuaUserData>(
    world: &mut World,
    entity: Entity,
    value: &AnyUserData,
) -> mlua::Result<bool> {
    if !value.is::<T>() {
        return Ok(false);
    }
    // The value moves into the entity: scripts reach it through `entity:get` from now on.
    let component = value.take::<T>()?;
    match world.get_entity_mut(entity) {
        Ok(mut e) => {
            e.insert(component);
            Ok(true)
        }
        Err(_) => Err(stale_despawned(entity, T::TYPE_NAME)),
    }
}

fn get_resource<T: Resource<Mutability = Mutable> + LuaUserData>(lua: &Lua) -> mlua::Result<Value> {
    if !with_world(|world| world.contains_resource::<T>())? {
        return Ok(Value::Nil);
    }
    lua.create_userdata(LuaRef::new(ResourcePlace::<T>::default()))
        .map(Value::UserData)
}
