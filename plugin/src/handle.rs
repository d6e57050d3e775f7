//! What scripts hold of the world: entity handles, live component and resource references, and
//! the `world` table.

use std::fmt;
use std::marker::PhantomData;

use bevy::ecs::component::{Component, Mutable};
use bevy::ecs::entity::Entity;
use bevy::ecs::query::QueryBuilder;
use bevy::ecs::resource::Resource;
use mlua::{
    AnyUserData, Function, Lua, LuaString, MetaMethod, Table, UserData, UserDataFields,
    UserDataMethods, UserDataRef, Variadic,
};

use crate::types::{component_entries, component_entry, resource_entry};
use crate::userdata::{Place, script_error};
use crate::world::with_world;

/// The error of a reference whose entity or component is gone.
#[derive(Debug)]
pub struct StaleReference(pub String);

impl fmt::Display for StaleReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StaleReference {}

pub(crate) fn stale_despawned(entity: Entity, component: &str) -> mlua::Error {
    mlua::Error::external(StaleReference(format!(
        "{component} of entity {entity}: the entity was despawned"
    )))
}

fn stale_removed(entity: Entity, component: &str) -> mlua::Error {
    mlua::Error::external(StaleReference(format!(
        "{component} of entity {entity}: the component was removed"
    )))
}

/// A component of an entity, found again on every access.
pub(crate) struct ComponentPlace<T> {
    entity: Entity,
    _type: PhantomData<fn() -> T>,
}

impl<T> ComponentPlace<T> {
    pub(crate) fn new(entity: Entity) -> Self {
        ComponentPlace {
            entity,
            _type: PhantomData,
        }
    }
}

impl<T: Component<Mutability = Mutable> + crate::userdata::LuaUserData> Place<T>
    for ComponentPlace<T>
{
    fn with_ref(&self, f: &mut dyn FnMut(&T)) -> mlua::Result<()> {
        let entity = self.entity;
        with_world(|world| match world.get::<T>(entity) {
            Some(component) => {
                f(component);
                Ok(())
            }
            None => Err(gone::<T>(world, entity)),
        })?
    }

    fn with_mut(&self, f: &mut dyn FnMut(&mut T)) -> mlua::Result<()> {
        let entity = self.entity;
        with_world(|world| match world.get_mut::<T>(entity) {
            // `get_mut` marks the component changed for `Changed<T>`; reads above do not.
            Some(mut component) => {
                f(&mut component);
                Ok(())
            }
            None => Err(gone::<T>(world, entity)),
        })?
    }
}

/// Why the component `T` of `entity` cannot be reached.
fn gone<T: crate::userdata::LuaUserData>(
    world: &bevy::ecs::world::World,
    entity: Entity,
) -> mlua::Error {
    if world.get_entity(entity).is_ok() {
        stale_removed(entity, T::TYPE_NAME)
    } else {
        stale_despawned(entity, T::TYPE_NAME)
    }
}

/// A resource of the world, found again on every access.
pub(crate) struct ResourcePlace<T>(PhantomData<fn() -> T>);

impl<T> Default for ResourcePlace<T> {
    fn default() -> Self {
        ResourcePlace(PhantomData)
    }
}

impl<T: Resource<Mutability = Mutable> + crate::userdata::LuaUserData> Place<T>
    for ResourcePlace<T>
{
    fn with_ref(&self, f: &mut dyn FnMut(&T)) -> mlua::Result<()> {
        with_world(|world| match world.get_resource::<T>() {
            Some(resource) => {
                f(resource);
                Ok(())
            }
            None => Err(mlua::Error::external(StaleReference(format!(
                "resource {} was removed",
                T::TYPE_NAME
            )))),
        })?
    }

    fn with_mut(&self, f: &mut dyn FnMut(&mut T)) -> mlua::Result<()> {
        with_world(|world| match world.get_resource_mut::<T>() {
            Some(mut resource) => {
                f(&mut resource);
                Ok(())
            }
            None => Err(mlua::Error::external(StaleReference(format!(
                "resource {} was removed",
                T::TYPE_NAME
            )))),
        })?
    }
}

/// A script's handle to an entity (`entity`, `world.spawn()`, `world.query(...)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntityHandle {
    entity: Entity,
}

impl EntityHandle {
    pub fn new(entity: Entity) -> Self {
        EntityHandle { entity }
    }

    pub fn entity(&self) -> Entity {
        self.entity
    }
}

impl UserData for EntityHandle {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with(MetaMethod::Index, entity_methods);
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("Entity({})", this.entity))
        });
        methods.add_meta_function(MetaMethod::Eq, |_, (a, b): (AnyUserData, AnyUserData)| {
            Ok(
                match (a.borrow::<EntityHandle>(), b.borrow::<EntityHandle>()) {
                    (Ok(a), Ok(b)) => *a == *b,
                    _ => false,
                },
            )
        });
    }
}

/// The live references `entity:get` handed out, by handle then component name: a Lua table
/// with weak keys, kept in the Lua state's app data so that the runtime can clear it.
pub(crate) struct ReferenceCache(pub Table);

/// Forgets every cached reference: after a component was removed anywhere (a cached reference
/// would make `entity:get` return it instead of nil).
pub(crate) fn clear_reference_cache(lua: &Lua) -> mlua::Result<()> {
    match lua.app_data_ref::<ReferenceCache>() {
        Some(cache) => cache.0.clear(),
        None => Ok(()),
    }
}

/// `entity:get(name)` in Lua: two table reads when the reference is cached, the Rust
/// `slow_get` otherwise. Scripts call it every frame, so it stays out of Rust when it can.
const GET: &str = r#"
local cache, slow_get = ...
return function(self, name)
    local references = cache[self]
    if references then
        local reference = references[name]
        if reference then return reference end
    end
    return slow_get(self, name)
end
"#;

/// The methods table of entity handles (their `__index`).
fn entity_methods(lua: &Lua) -> mlua::Result<Table> {
    let cache = lua.create_table()?;
    let weak_keys = lua.create_table()?;
    weak_keys.raw_set("__mode", "k")?;
    cache.set_metatable(Some(weak_keys))?;
    lua.set_app_data(ReferenceCache(cache.clone()));

    let slow_get = lua.create_function(move |lua, (handle, name): (AnyUserData, LuaString)| {
        let entity = handle.borrow::<EntityHandle>()?.entity;
        let (name, entry) = component_entry(lua, &name.to_str()?)?;
        match with_world(|world| (entry.has)(world, entity))? {
            None => Err(stale_despawned(entity, name)),
            Some(false) => Ok(None),
            Some(true) => {
                let reference = (entry.new_ref)(lua, entity)?;
                let cache = lua
                    .app_data_ref::<ReferenceCache>()
                    .map(|cache| cache.0.clone())
                    .ok_or_else(|| script_error("internal error: no reference cache"))?;
                let references = match cache.raw_get::<Option<Table>>(&handle)? {
                    Some(references) => references,
                    None => {
                        let references = lua.create_table()?;
                        cache.raw_set(&handle, &references)?;
                        references
                    }
                };
                references.raw_set(name, &reference)?;
                Ok(Some(reference))
            }
        }
    })?;
    let methods = lua.create_table()?;
    let get: Function = lua
        .load(GET)
        .set_name("=[bevy_lunar entity:get]")
        .call((cache, slow_get))?;
    methods.raw_set("get", get)?;
    methods.raw_set(
        "has",
        lua.create_function(
            |lua, (this, name): (UserDataRef<EntityHandle>, LuaString)| {
                let (name, entry) = component_entry(lua, &name.to_str()?)?;
                with_world(|world| (entry.has)(world, this.entity))?
                    .ok_or_else(|| stale_despawned(this.entity, name))
            },
        )?,
    )?;
    methods.raw_set(
        "insert",
        lua.create_function(
            |lua, (this, value): (UserDataRef<EntityHandle>, AnyUserData)| {
                for entry in component_entries(lua) {
                    if with_world(|world| (entry.insert)(world, this.entity, &value))?? {
                        return Ok(());
                    }
                }
                let name = value
                    .type_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default();
                Err(script_error(format!(
                    "'{name}' is not a component registered for scripts"
                )))
            },
        )?,
    )?;
    methods.raw_set(
        "remove",
        lua.create_function(
            |lua, (this, name): (UserDataRef<EntityHandle>, LuaString)| {
                let (_, entry) = component_entry(lua, &name.to_str()?)?;
                let removed = with_world(|world| (entry.remove)(world, this.entity))?;
                clear_reference_cache(lua)?;
                Ok(removed)
            },
        )?,
    )?;
    methods.raw_set(
        "despawn",
        lua.create_function(|lua, this: UserDataRef<EntityHandle>| {
            let despawned = with_world(|world| world.despawn(this.entity))?;
            clear_reference_cache(lua)?;
            Ok(despawned)
        })?,
    )?;
    methods.raw_set(
        "id",
        lua.create_function(|_, this: UserDataRef<EntityHandle>| Ok(this.entity.to_bits() as i64))?,
    )?;
    Ok(methods)
}

/// The global `world` table.
pub(crate) fn world_table(lua: &Lua) -> mlua::Result<Table> {
    let world = lua.create_table()?;
    world.set(
        "spawn",
        lua.create_function(|_, ()| {
            with_world(|world| EntityHandle::new(world.spawn_empty().id()))
        })?,
    )?;
    world.set(
        "entity",
        lua.create_function(|_, id: i64| {
            let entity = Entity::try_from_bits(id as u64)
                .ok_or_else(|| script_error(format!("{id} is not an entity id")))?;
            let alive = with_world(|world| world.get_entity(entity).is_ok())?;
            Ok(alive.then(|| EntityHandle::new(entity)))
        })?,
    )?;
    world.set(
        "resource",
        lua.create_function(|lua, name: LuaString| {
            (resource_entry(lua, &name.to_str()?)?.get)(lua)
        })?,
    )?;
    world.set("query", lua.create_function(query)?)?;
    Ok(world)
}

/// `for e in world.query("A", "B") do ... end`: the entities having all the named components,
/// as of the call.
fn query(lua: &Lua, names: Variadic<String>) -> mlua::Result<Function> {
    let entries = names
        .iter()
        .map(|name| component_entry(lua, name).map(|(_, entry)| entry))
        .collect::<mlua::Result<Vec<_>>>()?;
    let entities: Vec<Entity> = with_world(|world| {
        let ids: Vec<_> = entries
            .iter()
            .map(|entry| (entry.component_id)(world))
            .collect();
        let mut builder = QueryBuilder::<Entity>::new(world);
        for id in ids {
            builder.with_id(id);
        }
        let mut state = builder.build();
        state.iter(world).collect()
    })?;
    let mut next = 0;
    lua.create_function_mut(move |_, ()| {
        let entity = entities.get(next).copied();
        next += 1;
        Ok(entity.map(EntityHandle::new))
    })
}
