//! Kept component addresses: the fast field access (`userdata/fast.rs`) of a component
//! reference finds its component once per structure generation, and reads and writes it at the
//! kept address after that.
//!
//! `p.health = p.health - dt` reads and writes the same component: looking it up each time
//! (`World::get`: the component's id by type, the entity's location, its table and column) is
//! most of a fast field access. A component stays where it is until a structural change
//! (spawn, despawn, insert, remove, its table growing), and every one goes through an exclusive
//! lend of the world, which starts a new structure generation (`world/mod.rs`); so an address
//! found under the generation running now is still the component's. A write through it does
//! what `Mut<T>` does: it marks the component changed, with the change tick the world had when
//! the address was found (the tick, too, moves only through `&mut World`).

use std::any::TypeId;
use std::cell::UnsafeCell;
use std::panic::Location;
use std::ptr::{self, NonNull};

use bevy::ecs::change_detection::{MaybeLocation, Tick};
use bevy::ecs::component::{Component, StorageType};
use bevy::ecs::entity::Entity;
use bevy::ecs::world::World;

use crate::userdata::{Kept, Key};
use crate::world::{Access, structure_generation, with_world_ref};

/// The address of the component `T` of the entity `key` names, to read now, if the world can
/// be read. The caller reads it at once: the address holds the component until the world is
/// next lent or its scope closes (see the module docs), and until then nothing holds `&mut` to
/// it (the world is not lent exclusively).
pub(crate) fn read<T: Component>(key: &mut Key) -> Option<NonNull<T>> {
    let kept = current::<T>(key, Access::Read)?;
    NonNull::new(kept.target.cast::<T>())
}

/// The address of the component `T` of the entity `key` names, to write now, if the world can
/// be written; the component is marked changed as `Mut<T>` marks it. The caller writes it at
/// once: as in [`read`], and the world is not lent at all, so no other reference into it exists.
pub(crate) fn write<T: Component>(key: &mut Key) -> Option<NonNull<T>> {
    let kept = current::<T>(key, Access::Write)?;
    // SAFETY: `current` found the change marks with the address, under the generation running
    // now, and the world is not lent at all: nothing else reads or writes them now. The tick is
    // the world's change tick when they were found, which has not moved since (the same
    // generation).
    unsafe {
        let changed = &*kept.changed.cast::<UnsafeCell<Tick>>();
        *changed.get() = Tick::new(kept.tick);
        if let Some(location) = MaybeLocation::caller().into_option()
            && !kept.changed_by.is_null()
        {
            let changed_by = &*kept
                .changed_by
                .cast::<UnsafeCell<&'static Location<'static>>>();
            *changed_by.get() = location;
        }
    }
    NonNull::new(kept.target.cast::<T>())
}

/// The addresses kept in `key` if they are current for `access`, after finding them again if
/// they were not.
fn current<T: Component>(key: &mut Key, access: Access) -> Option<Kept> {
    let generation = structure_generation(access)?;
    let kept = &key.kept;
    if kept.generation != generation || kept.target_type != TypeId::of::<T>() {
        let entity = Entity::try_from_bits(key.key)?;
        key.kept = with_world_ref(|world| locate::<T>(world, entity, generation)).ok()??;
    }
    Some(key.kept)
}

/// Where the component `T` of `entity` and its change marks are now, under `generation`.
fn locate<T: Component>(world: &World, entity: Entity, generation: u64) -> Option<Kept> {
    let id = world.component_id::<T>()?;
    let location = world.entities().get_spawned(entity).ok()?;
    let (target, changed, changed_by) = match T::STORAGE_TYPE {
        StorageType::Table => {
            let table = world.storages().tables.get(location.table_id)?;
            let row = location.table_row;
            let changed = table.get_changed_tick(id, row)?;
            // SAFETY: the row is within the table (`get_changed_tick` checked it).
            let target = unsafe { table.get_component(id, row)? };
            let changed_by = table.get_changed_by(id, row).into_option().flatten();
            (target, changed, changed_by)
        }
        StorageType::SparseSet => {
            let set = world.storages().sparse_sets.get(id)?;
            let (target, ticks) = set.get_with_ticks(entity)?;
            (target, ticks.changed, ticks.changed_by.into_option())
        }
    };
    Some(Kept {
        generation,
        target_type: TypeId::of::<T>(),
        target: target.as_ptr().cast(),
        changed: ptr::from_ref(changed).cast(),
        changed_by: changed_by.map_or(ptr::null(), |cell| ptr::from_ref(cell).cast()),
        tick: world.read_change_tick().get(),
    })
}
