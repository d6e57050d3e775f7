//! Live references' places: a component of an entity, or a resource, found again in the
//! world on every access (see `userdata/reference.rs`), and the stale-reference errors when it
//! is gone. The type registry (`registry.rs`) makes references to these; entity handles
//! (`handle.rs`) hand them out.

use std::marker::PhantomData;

use bevy::ecs::component::{Component, Mutable};
use bevy::ecs::entity::Entity;
use bevy::ecs::resource::Resource;

use mlua::{AnyUserData, Lua};

use crate::userdata::{
    KeyedAccess, LuaRef, Place, StaleReference, register_keyed_access, register_view_types, set_key,
};
use crate::world::{kept, with_world, with_world_ref};

pub(crate) fn stale_despawned(entity: Entity, component: &str) -> mlua::Error {
    mlua::Error::external(StaleReference(format!(
        "{component} of entity {entity}: the entity was despawned"
    )))
}

/// The error of a reference to the resource `name`, which the world no longer has.
pub(crate) fn stale_resource(name: &str) -> mlua::Error {
    mlua::Error::external(StaleReference(format!("resource {name} was removed")))
}

pub(crate) fn stale_removed(entity: Entity, component: &str) -> mlua::Error {
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
        with_world_ref(|world| match world.get::<T>(entity) {
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

    fn with_mut_checked(
        &self,
        check: &mut dyn FnMut(&T) -> bool,
        f: &mut dyn FnMut(&mut T),
    ) -> mlua::Result<bool> {
        let entity = self.entity;
        with_world(|world| match world.get_mut::<T>(entity) {
            // Looking through `Mut` (`Deref`) marks nothing; only the write below does.
            Some(mut component) => {
                let allowed = check(&component);
                if allowed {
                    f(&mut component);
                }
                Ok(allowed)
            }
            None => Err(gone::<T>(world, entity)),
        })?
    }
}

impl<T: Component<Mutability = Mutable> + crate::userdata::LuaUserData> ComponentPlace<T> {
    /// Lets the number, boolean and string fields of `T` references reach the component
    /// directly (`userdata/fast.rs`), keyed by the entity, at the address kept for it
    /// (`kept.rs`). Installed with the type, before any reference to `T` (whose metatable is
    /// built with the first one).
    pub(crate) fn install_fast_access(lua: &Lua) {
        register_keyed_access::<T>(
            lua,
            KeyedAccess {
                read: kept::read::<T>,
                write: kept::write::<T>,
            },
        );
        register_view_types::<T>(lua);
    }

    /// A new live reference to the component `T` of `entity`, keyed by the entity.
    pub(crate) fn new_ref(lua: &Lua, entity: Entity) -> mlua::Result<AnyUserData> {
        let reference = lua.create_userdata(LuaRef::new(ComponentPlace::<T>::new(entity)))?;
        set_key(lua, &reference, entity.to_bits())?;
        Ok(reference)
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
        with_world_ref(|world| match world.get_resource::<T>() {
            Some(resource) => {
                f(resource);
                Ok(())
            }
            None => Err(stale_resource(T::TYPE_NAME)),
        })?
    }

    fn with_mut(&self, f: &mut dyn FnMut(&mut T)) -> mlua::Result<()> {
        with_world(|world| match world.get_resource_mut::<T>() {
            Some(mut resource) => {
                f(&mut resource);
                Ok(())
            }
            None => Err(stale_resource(T::TYPE_NAME)),
        })?
    }
}
