//! Reflected types: Bevy's own components and resources (`Name`, `Visibility`, `ClearColor`...)
//! and any type registered with `#[reflect(Component)]` or `#[reflect(Resource)]`, reachable
//! from scripts without a derive.
//!
//! A derived type describes itself to the runtime at compile time; a reflected one is walked at
//! run time through `bevy_reflect`. A [`ReflectedRef`] is a root (a component of an entity, a
//! resource, or a value made in Lua) and a path of fields into it, found again on every access
//! like the derived types' live references, so it never dangles. Leaves with a typed binding
//! ([`Leaf`]: numbers, strings, `Entity`, `Name`, and every derived type such as `Vec3` or
//! `Color`) cross as those types; derived ones as live references through [`ReflectedPlace`],
//! so `sprite.custom_size.x = 4` writes through and a `Vec3` keeps its methods. Writes convert
//! the script's value before they touch the world, and mark the component changed only when
//! they succeed.
//!
//! Types are exposed by `app.register_lua_reflect::<T>()`, or all at once with the plugin's
//! `reflect_all`; they are resolved from the `AppTypeRegistry` when the plugin next runs
//! ([`resolve`]). A derived registration of a type wins over a reflected one.

mod assign;
pub(crate) mod define;
mod leaf;
mod place;
mod reference;

use std::any::TypeId;
use std::sync::Arc;

use bevy::ecs::component::ComponentId;
use bevy::ecs::entity::Entity;
use bevy::ecs::lifecycle::Remove;
use bevy::ecs::observer::{Observer, On};
use bevy::ecs::reflect::{AppTypeRegistry, ReflectComponent, ReflectResource};
use bevy::ecs::system::ResMut;
use bevy::ecs::world::World;
use bevy::reflect::std_traits::ReflectDefault;
use bevy::reflect::{ReflectFromReflect, TypeInfo, TypeRegistration, TypeRegistry};
use mlua::{AnyUserData, Lua, Value};

pub(crate) use leaf::{Leaf, Leaves};
pub(crate) use reference::ReflectedRef;

use crate::userdata::script_error;
use crate::world::place::stale_despawned;
use crate::world::registry::{ComponentEntry, ComponentRemovals, LuaTypeRegistry, ResourceEntry};
use crate::world::with_world;

/// One exposed reflected type, as the runtime reaches it.
pub(crate) struct ReflectedType {
    /// The name scripts use: the short type path (`Name`, `Visibility`).
    pub name: &'static str,
    pub info: &'static TypeInfo,
    /// Present for components and resources (a resource is a component of its own entity).
    pub component: Option<ReflectComponent>,
    pub component_id: Option<ComponentId>,
    /// Whether the component may be changed (immutable components are read-only to scripts).
    pub mutable: bool,
    pub is_resource: bool,
    pub default: Option<ReflectDefault>,
}

impl ReflectedType {
    fn of(registration: &TypeRegistration, world: &mut World) -> Self {
        let component = registration.data::<ReflectComponent>().cloned();
        let component_id = component.as_ref().map(|c| c.register_component(world));
        let mutable = component_id
            .and_then(|id| world.components().get_info(id))
            .is_some_and(|info| info.mutable());
        ReflectedType {
            name: registration.type_info().type_path_table().short_path(),
            info: registration.type_info(),
            component,
            component_id,
            mutable,
            is_resource: registration.data::<ReflectResource>().is_some(),
            default: registration.data::<ReflectDefault>().cloned(),
        }
    }

    /// A type of a value made in Lua or taken out of a reflected one: no component.
    pub(crate) fn value(info: &'static TypeInfo, registry: &TypeRegistry) -> Self {
        ReflectedType {
            name: info.type_path_table().short_path(),
            info,
            component: None,
            component_id: None,
            mutable: true,
            is_resource: false,
            default: registry
                .get_type_data::<ReflectDefault>(info.type_id())
                .cloned(),
        }
    }
}

/// Types asked for by `register_lua_reflect`, not resolved yet, and whether every reflected
/// component and resource is exposed.
#[derive(Default)]
pub(crate) struct ReflectRequests {
    pub types: Vec<TypeId>,
    pub all: bool,
    /// How many registrations of the type registry `all` has looked at.
    pub seen: usize,
}

/// Exposes the reflected types asked for since the last run. Cheap when there are none.
pub(crate) fn resolve(world: &mut World) {
    let pending = world.get_resource::<LuaTypeRegistry>().is_some_and(|r| {
        !r.reflect_requests.types.is_empty()
            || (r.reflect_requests.all
                && world
                    .get_resource::<AppTypeRegistry>()
                    .is_some_and(|t| t.read().iter().count() != r.reflect_requests.seen))
    });
    if !pending {
        return;
    }
    let Some(types) = world.get_resource::<AppTypeRegistry>().cloned() else {
        return;
    };
    let (requested, all) = {
        let mut registry = world.resource_mut::<LuaTypeRegistry>();
        (
            std::mem::take(&mut registry.reflect_requests.types),
            registry.reflect_requests.all,
        )
    };
    let found: Vec<ReflectedType> = {
        let read = types.read();
        let mut ids: Vec<TypeId> = requested;
        if all {
            ids.extend(
                read.iter()
                    .filter(|r| {
                        r.data::<ReflectComponent>().is_some()
                            || r.data::<ReflectResource>().is_some()
                    })
                    .map(TypeRegistration::type_id),
            );
        }
        let registrations: Vec<TypeRegistration> =
            ids.iter().filter_map(|id| read.get(*id).cloned()).collect();
        drop(read);
        registrations
            .iter()
            .map(|r| ReflectedType::of(r, world))
            .collect()
    };
    let count = types.read().iter().count();
    let mut new_components = Vec::new();
    {
        let mut registry = world.resource_mut::<LuaTypeRegistry>();
        registry.reflect_requests.seen = count;
        registry.type_registry = Some(types.0.clone());
        for ty in found {
            let ty = Arc::new(ty);
            if let Some(id) = ty.component_id
                && registry.expose_reflected(&ty)
                && !ty.is_resource
            {
                new_components.push(id);
            }
        }
    }
    // Removing one forgets the references scripts cached, as for derived components.
    if !new_components.is_empty() {
        world.init_resource::<ComponentRemovals>();
        let mut observer =
            Observer::new(|_: On<Remove>, mut removals: ResMut<ComponentRemovals>| {
                removals.0 += 1;
            });
        for id in new_components {
            observer = observer.with_component(id);
        }
        world.spawn(observer);
    }
}

impl LuaTypeRegistry {
    /// Adds `ty` under its name unless a type (derived or reflected) already has it; whether
    /// it was added as a component.
    fn expose_reflected(&mut self, ty: &Arc<ReflectedType>) -> bool {
        if self.reflected.contains_key(ty.name)
            || self.type_tables.iter().any(|t| t.name == ty.name)
        {
            return false;
        }
        self.reflected.insert(ty.name, Arc::clone(ty));
        if ty.is_resource {
            if !self.resources.contains_key(ty.name) {
                self.resources
                    .insert(ty.name, ResourceEntry::Reflected(Arc::clone(ty)));
            }
            false
        } else if ty.component.is_some() && !self.components.contains_key(ty.name) {
            self.components
                .insert(ty.name, ComponentEntry::Reflected(Arc::clone(ty)));
            true
        } else {
            false
        }
    }
}

/// The root reference `entity:get` hands out for a reflected component.
pub(crate) fn component_ref(
    lua: &Lua,
    ty: &Arc<ReflectedType>,
    entity: Entity,
) -> mlua::Result<AnyUserData> {
    lua.create_userdata(ReflectedRef::component(entity, Arc::clone(ty)))
}

/// `world.resource(name)` of a reflected resource: nil when the world has none.
pub(crate) fn resource_ref(lua: &Lua, ty: &Arc<ReflectedType>) -> mlua::Result<Value> {
    let present =
        crate::world::with_world_ref(|world| reference::resource_entity(world, ty).is_some())?;
    if !present {
        return Ok(Value::Nil);
    }
    lua.create_userdata(ReflectedRef::resource(Arc::clone(ty)))
        .map(Value::UserData)
}

pub(crate) fn has(ty: &ReflectedType, world: &World, entity: Entity) -> Option<bool> {
    let id = ty.component_id?;
    world.get_entity(entity).ok().map(|e| e.contains_id(id))
}

pub(crate) fn remove(ty: &ReflectedType, world: &mut World, entity: Entity) -> bool {
    let (Some(id), Some(component)) = (ty.component_id, &ty.component) else {
        return false;
    };
    match world.get_entity_mut(entity) {
        Ok(mut e) if e.contains_id(id) => {
            component.remove(&mut e);
            true
        }
        _ => false,
    }
}

/// `entity:insert(value)` of a reflected value (one made by `world.construct`, or a reference
/// to one, copied): `Ok(false)` when `value` is not a reflected value.
pub(crate) fn insert(entity: Entity, value: &AnyUserData) -> mlua::Result<bool> {
    let Ok(reference) = value.borrow::<ReflectedRef>() else {
        return Ok(false);
    };
    let ty = Arc::clone(reference.root_type());
    if !reference.is_root() || ty.component.is_none() || ty.is_resource {
        return Err(script_error(format!(
            "entity:insert: {} is not a component",
            reference.describe()
        )));
    }
    // Copied before the world is borrowed: the value may itself live in the world.
    let copy = reference.copy()?;
    drop(reference);
    with_world(|world| {
        let Some(types) = world.get_resource::<AppTypeRegistry>().cloned() else {
            return Err(script_error("entity:insert: the app has no type registry"));
        };
        // Bevy builds the component from the value with `FromReflect` (or its `Default` and
        // then the value), and panics when it has neither.
        let buildable = {
            let types = types.read();
            types
                .get_type_data::<ReflectFromReflect>(ty.info.type_id())
                .is_some()
                || types
                    .get_type_data::<ReflectDefault>(ty.info.type_id())
                    .is_some()
        };
        if !buildable {
            return Err(script_error(format!(
                "entity:insert: {} has neither FromReflect nor #[reflect(Default)] to be built from a script's value",
                ty.name
            )));
        }
        let Ok(mut e) = world.get_entity_mut(entity) else {
            return Err(stale_despawned(entity, ty.name));
        };
        if let Some(component) = &ty.component {
            component.insert(&mut e, copy.as_partial_reflect(), &types.read());
        }
        Ok(true)
    })?
}

/// `world.construct(name, value)`: a new value of the reflected type `name` (its `Default`,
/// with the fields of `value` written over it), for `entity:insert` or a field.
pub(crate) fn construct(lua: &Lua, name: &str, value: Value) -> mlua::Result<ReflectedRef> {
    let types = lua.app_data_ref::<crate::world::registry::ScriptTypes>();
    let ty = types
        .as_ref()
        .and_then(|t| t.reflected.get(name).cloned())
        .ok_or_else(|| {
            script_error(format!(
                "world.construct: no reflected type named '{name}' is exposed to scripts (register it with app.register_lua_reflect)"
            ))
        })?;
    drop(types);
    let Some(default) = &ty.default else {
        return Err(script_error(format!(
            "world.construct: {name} has no Default (#[reflect(Default)]) to build it from"
        )));
    };
    let reference = ReflectedRef::value(default.default(), Arc::clone(&ty));
    if !value.is_nil() {
        reference.set(lua, value)?;
    }
    Ok(reference)
}

pub(crate) use leaf::builtin_leaves;
