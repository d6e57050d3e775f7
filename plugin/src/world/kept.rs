//! Kept component addresses: the fast field access (`userdata/fast/`) of a component
//! reference finds its component here once per structure generation ([`read`], [`write`]), and
//! reads and writes it at the kept address after that (`userdata/fast/kept.rs` checks it).
//!
//! `p.health = p.health - dt` reads and writes the same component: looking it up each time
//! (`World::get`: the component's id by type, the entity's location, its table and column) is
//! most of a fast field access. A component stays where it is until a structural change
//! (spawn, despawn, insert, remove, its table growing), and every one goes through an exclusive
//! lend of the world, which starts a new structure generation (`published.rs`); so an address
//! found under the generation running now is still the component's. A write through it does
//! what `Mut<T>` does: it marks the component changed, with the change tick the world had when
//! the address was found (the tick, too, moves only through `&mut World`).
//!
//! A walk over many entities (`query:each()`) finds them table by table: a [`WalkColumn`]
//! remembers the column of `T` in the table it found last, so the walk keeps each reference's
//! address as it hands the reference out, at the cost of the entity's location (no lookup of
//! the component's id or column per entity, as [`locate`] makes).

use std::any::TypeId;
use std::cell::UnsafeCell;
use std::panic::Location;
use std::ptr::{self, NonNull};

use bevy::ecs::change_detection::Tick;
use bevy::ecs::component::{Component, StorageType};
use bevy::ecs::entity::Entity;
use bevy::ecs::storage::TableId;
use bevy::ecs::world::World;

use crate::published::{Access, published};
use crate::userdata::{Kept, Key};

/// The address of the component `T` of the entity `key` names, found anew and kept in `key`,
/// to read now, if the world can be read. Callers try the address already kept first
/// ([`Kept::for_reading`]): this is the way when it is not current. The caller reads it at once:
/// the address holds the component until the world is next lent or its scope closes (see the
/// module docs), and until then nothing holds `&mut` to it (the world is not lent
/// exclusively).
#[inline(never)]
pub(crate) fn read<T: Component>(key: &mut Key) -> Option<NonNull<T>> {
    find::<T>(key, Access::Read)
}

/// The address of the component `T` of the entity `key` names, found anew and kept in `key`,
/// to write now, if the world can be written; the component is marked changed as `Mut<T>`
/// marks it. Callers try the address already kept first ([`Kept::for_writing`]). The caller
/// writes it at once: as in [`read`], and the world is not lent at all, so no other reference
/// into it exists.
#[inline(never)]
pub(crate) fn write<T: Component>(key: &mut Key) -> Option<NonNull<T>> {
    let target = find::<T>(key, Access::Write)?;
    // SAFETY: found under the generation current for writing (`find`).
    unsafe { key.kept.mark_changed() };
    Some(target)
}

/// Finds the component `T` of the entity `key` names and keeps its addresses in `key`, under
/// the generation current for `access`.
#[inline(always)]
fn find<T: Component>(key: &mut Key, access: Access) -> Option<NonNull<T>> {
    let (world, generation) = published(access)?;
    let entity = Entity::try_from_bits(key.key)?;
    // SAFETY: the world is published and could be lent for `access` (`published`), and
    // `locate` only reads its storage and keeps addresses, no references.
    key.kept = locate::<T>(unsafe { world.as_ref() }, entity, generation)?;
    NonNull::new(key.kept.target.cast())
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
        changed: ptr::from_ref(changed),
        changed_by: changed_by.map_or(ptr::null(), ptr::from_ref),
        tick: world.read_change_tick().get(),
    })
}

/// Where a walk last found the component `T` of its entities (see the module docs): the
/// column of `T` in one table, under one generation; and [`WalkColumn::keep`], which keeps a
/// reference's address through it. A walk holds one per component it hands out, in plain
/// memory (it is copied, and never dropped).
#[derive(Clone, Copy)]
pub(crate) struct WalkColumn {
    /// `keep_in_walk::<T>`; `None` for a component without kept addresses (reflected).
    keep: Option<KeepInWalk>,
    /// The generation the column was found under (0: none found yet).
    generation: u64,
    table: TableId,
    /// The table's entity count, and its columns' first elements.
    len: usize,
    target: *mut u8,
    changed: *const u8,
    changed_by: *const u8,
    tick: u32,
}

/// Makes the kept address of the key current, through the walk's column (see
/// [`WalkColumn::keep`]).
type KeepInWalk = fn(&mut Key, &mut WalkColumn);

impl WalkColumn {
    /// The column of a walk handing out references to `T`.
    pub(crate) fn of<T: Component>() -> Self {
        WalkColumn {
            keep: Some(keep_in_walk::<T>),
            ..WalkColumn::none()
        }
    }

    /// The column of a walk handing out references with nothing kept (reflected components).
    pub(crate) fn none() -> Self {
        WalkColumn {
            keep: None,
            generation: 0,
            table: TableId::from_u32(0),
            len: 0,
            target: ptr::null_mut(),
            changed: ptr::null(),
            changed_by: ptr::null(),
            tick: 0,
        }
    }

    /// Makes the address kept in `key` (a reference to this column's component, as the walk
    /// hands it out) current, if the world can be read; the first access through it then finds
    /// it kept. Nothing changes otherwise, and the access finds the address itself. A panic in
    /// it (none is expected: the world's storage is only read) stops inside and keeps nothing:
    /// the caller is a C function.
    #[cfg_attr(not(feature = "lua54"), allow(dead_code))] // called by the Lua 5.4 step only
    #[inline]
    pub(crate) fn keep(&mut self, key: &mut Key) {
        if let Some(keep) = self.keep {
            keep(key, self);
        }
    }
}

/// [`WalkColumn::keep`] for the component `T`.
fn keep_in_walk<T: Component>(key: &mut Key, column: &mut WalkColumn) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        keep_in_column::<T>(key, column);
    }));
}

#[inline(always)]
fn keep_in_column<T: Component>(key: &mut Key, column: &mut WalkColumn) {
    if matches!(T::STORAGE_TYPE, StorageType::SparseSet) {
        if key.kept.for_reading::<T>().is_none() {
            read::<T>(key);
        }
        return;
    }
    let Some((world, generation)) = published(Access::Read) else {
        return;
    };
    if key.kept.found_under::<T>(generation) {
        return;
    }
    let Some(entity) = Entity::try_from_bits(key.key) else {
        return;
    };
    // SAFETY: the world is published and not lent exclusively (`published`), and
    // `walk_kept` only reads its storage and keeps nothing of it.
    if let Some(kept) = walk_kept::<T>(unsafe { world.as_ref() }, entity, generation, column) {
        key.kept = kept;
    }
}

/// The address of the component `T` of `entity` under `generation`, through the walk's
/// `column` (found again if it is of another generation or table).
fn walk_kept<T: Component>(
    world: &World,
    entity: Entity,
    generation: u64,
    column: &mut WalkColumn,
) -> Option<Kept> {
    let location = world.entities().get_spawned(entity).ok()?;
    if column.generation != generation || column.table != location.table_id {
        column.generation = 0;
        let table = world.storages().tables.get(location.table_id)?;
        let id = world.component_id::<T>()?;
        // SAFETY: `id` is `T`'s component id in this world.
        let data = unsafe { table.get_data_slice_for::<T>(id)? };
        let changed = table.get_changed_ticks_slice_for(id)?;
        let changed_by = table.get_changed_by_slice_for(id).into_option().flatten();
        *column = WalkColumn {
            keep: column.keep,
            generation,
            table: location.table_id,
            len: data.len(),
            target: data.as_ptr().cast_mut().cast(),
            changed: changed.as_ptr().cast(),
            changed_by: changed_by.map_or(ptr::null(), |slice| slice.as_ptr().cast()),
            tick: world.read_change_tick().get(),
        };
    }
    let row = location.table_row.index();
    if row >= column.len {
        return None;
    }
    // SAFETY: `row` is within the table's columns (its entity count, checked), found under
    // the generation running now: the columns have not moved since.
    unsafe {
        Some(Kept {
            generation,
            target_type: TypeId::of::<T>(),
            target: column.target.cast::<T>().add(row).cast(),
            changed: column.changed.cast::<UnsafeCell<Tick>>().add(row),
            changed_by: if column.changed_by.is_null() {
                ptr::null()
            } else {
                column
                    .changed_by
                    .cast::<UnsafeCell<&'static Location<'static>>>()
                    .add(row)
            },
            tick: column.tick,
        })
    }
}

#[cfg(test)]
mod tests {
    use bevy::ecs::component::Component;

    use super::*;
    use crate::world::WorldScope;

    #[derive(Component)]
    struct Health(f64);

    #[test]
    fn a_walk_finds_its_column_again_under_each_generation() {
        // Two worlds with the same entity in a table of the same id: a walk's column found in
        // the first must not be used in the second (a new generation), nor after the table
        // grows (a new generation too: its columns may have moved).
        let mut first = World::new();
        let mut second = World::new();
        let entity = first.spawn(Health(1.0)).id();
        assert_eq!(second.spawn(Health(2.0)).id(), entity);
        let mut column = WalkColumn::of::<Health>();
        let mut key = Key::new(entity.to_bits());
        for (world, value) in [(&mut first, 1.0), (&mut second, 2.0)] {
            let _scope = WorldScope::enter(world);
            column.keep(&mut key);
            // SAFETY: kept under the generation running now, and the world is not lent.
            assert_eq!(unsafe { (*key.kept.target.cast::<Health>()).0 }, value);
            let kept = key.kept.target;
            assert_eq!(
                read::<Health>(&mut key).map(|at| at.as_ptr().cast()),
                Some(kept)
            );
        }
        let _scope = WorldScope::enter(&mut second);
        crate::world::with_world(|world| {
            world.spawn_batch((0..10_000).map(|k| Health(f64::from(k))));
        })
        .unwrap();
        column.keep(&mut key);
        // SAFETY: as above.
        assert_eq!(unsafe { (*key.kept.target.cast::<Health>()).0 }, 2.0);
    }
}
