//! How scripts reach the Bevy `World`.
//!
//! Scripts run only inside the plugin's exclusive system, which holds `&mut World`. For the
//! duration of that system a pointer to the world is published here ([`WorldScope`]); every
//! script access to the world goes through [`with_world`] (exclusive, `&mut World`) or
//! [`with_world_ref`] (shared, `&World`), which lend it out like a `RefCell` would.
//!
//! Why this is sound:
//! - the pointer exists only while the exclusive system runs ([`WorldScope`] clears it on drop,
//!   panics included), so no access can outlive the `&mut World` it came from;
//! - while the scope is open the system itself does not touch the world: the script runtime is
//!   taken out of the world first, so nothing else holds a borrow into it;
//! - Lua runs on this one thread, and the lending counts its borrows: any number of shared
//!   `&World` at once (a method reading one component while its argument reads another), or
//!   one `&mut World` and nothing else. A lend that would break this is refused with an error,
//!   so `&World` and `&mut World` never exist at the same time.
//!
//! Arguments are resolved before their method's `self` is lent (`userdata/receiver.rs`): a live
//! reference passed where a value, `&T` or `&mut T` is expected is copied out first (and a
//! `&mut T` copy written back after the call), so a method on one component can take another
//! component, or another field of the same one, without two borrows of the world overlapping.
//! The only lend still refused is a real conflict: a Rust method that calls back into Lua while
//! it holds a component, and Lua then reaching for the world; the error names that method.
//!
//! The world's *structure generation* (`structure_generation`, in `published.rs` with the
//! slot the world is published in) tells the fast field access (`kept.rs`) whether the
//! address where it last found a component still holds it: it changes with every exclusive
//! lend, and when the scope opens or closes.

pub(crate) mod event;
pub(crate) mod handle;
pub(crate) mod input;
pub(crate) mod kept;
pub(crate) mod message;
pub(crate) mod place;
pub(crate) mod query;
pub(crate) mod reflect;
pub(crate) mod registry;

use std::ptr::NonNull;

use bevy::ecs::world::World;

use crate::published::{Access, EXCLUSIVE, SLOT};
use crate::userdata::{current_call, script_error};

/// Publishes `world` to scripts until dropped.
pub(crate) struct WorldScope {
    previous: Option<NonNull<World>>,
}

impl WorldScope {
    /// The caller must not use `world` until the scope is dropped.
    pub(crate) fn enter(world: &mut World) -> Self {
        let previous = SLOT.with(|slot| {
            slot.new_generation();
            slot.world.replace(Some(NonNull::from(world)))
        });
        WorldScope { previous }
    }
}

impl Drop for WorldScope {
    fn drop(&mut self) {
        SLOT.with(|slot| {
            slot.new_generation();
            slot.world.set(self.previous);
        });
    }
}

/// A lend of the world, given back when dropped (also on unwinding). Taking and giving back
/// touch only the slot, apart from the lender's `f`: small enough to be inlined into each
/// lender whatever `f` is (inside `SLOT.with`'s closure, a large `f` kept the thread-local
/// access out of line, behind a function pointer).
struct Lend {
    world: NonNull<World>,
    /// What was lent before.
    previous: i32,
}

impl Lend {
    /// The world lent for `access` (exclusively for writes: a new structure generation), or why
    /// it cannot be.
    #[inline]
    fn take(access: Access) -> mlua::Result<Lend> {
        SLOT.with(|slot| {
            let Some(world) = slot.world.get() else {
                return Err(unreachable_world());
            };
            let previous = slot.lent.get();
            let lent = match access {
                Access::Write if previous == 0 => {
                    slot.new_generation();
                    EXCLUSIVE
                }
                Access::Read if previous != EXCLUSIVE => previous + 1,
                _ => return Err(busy()),
            };
            slot.lent.set(lent);
            Ok(Lend { world, previous })
        })
    }
}

impl Drop for Lend {
    #[inline]
    fn drop(&mut self) {
        SLOT.with(|slot| slot.lent.set(self.previous));
    }
}

#[cold]
fn unreachable_world() -> mlua::Error {
    script_error("the world is only reachable while scripts run (inside a callback)")
}

/// The refusal of a lend that conflicts with the one out. A lend is out while Lua runs only when
/// a Rust method called back into Lua, so the outermost Rust call running is the one holding it.
#[cold]
fn busy() -> mlua::Error {
    match current_call() {
        Some((type_name, method)) => script_error(format!(
            "the world is in use by the Rust method `{type_name}.{method}`, which called back \
             into Lua: components and resources cannot be reached until it returns"
        )),
        None => script_error(
            "the world is busy: a Rust method that calls back into Lua cannot reach the world",
        ),
    }
}

/// Lends the world exclusively to `f`, or explains why it cannot. `f` may change the world's
/// structure: addresses kept before are not used again (a new structure generation).
#[inline]
pub(crate) fn with_world<R>(f: impl FnOnce(&mut World) -> R) -> mlua::Result<R> {
    let mut lend = Lend::take(Access::Write)?;
    // SAFETY: the pointer was published by a live `WorldScope` (see the module docs): it points
    // to the world the running exclusive system holds mutably and does not use meanwhile, and
    // nothing was lent, so this is the only reference made from it until `f` returns (the lend
    // is given back after).
    Ok(f(unsafe { lend.world.as_mut() }))
}

/// Lends the world to `f` for reading; any number of such lends may be out at once.
#[inline]
pub(crate) fn with_world_ref<R>(f: impl FnOnce(&World) -> R) -> mlua::Result<R> {
    let lend = Lend::take(Access::Read)?;
    // SAFETY: as in `with_world`, the pointer is live for the scope; it was not lent
    // exclusively, so only shared references are made from it until every reader returns.
    Ok(f(unsafe { lend.world.as_ref() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::published::structure_generation;

    #[test]
    fn the_world_is_lent_only_inside_a_scope_and_never_aliased() {
        let mut world = World::new();
        assert!(with_world(|_| ()).is_err(), "no scope: no world");
        let entity;
        {
            let _scope = WorldScope::enter(&mut world);
            entity = with_world(|w| w.spawn_empty().id()).unwrap();
            let nested = with_world(|_| with_world(|_| ()).map_err(|e| e.to_string())).unwrap();
            assert_eq!(
                nested.unwrap_err(),
                "the world is busy: a Rust method that calls back into Lua cannot reach the world"
            );
            let read_in_write = with_world(|_| with_world_ref(|_| ()).is_err()).unwrap();
            assert!(read_in_write, "no &World while a &mut World is out");
            let write_in_read = with_world_ref(|_| with_world(|_| ()).is_err()).unwrap();
            assert!(write_in_read, "no &mut World while a &World is out");
            let reads = with_world_ref(|a| {
                with_world_ref(|b| a.get_entity(entity).is_ok() && b.get_entity(entity).is_ok())
            });
            assert!(reads.unwrap().unwrap(), "shared lends nest");
            assert!(
                with_world(|w| w.get_entity(entity).is_ok()).unwrap(),
                "lent again after return"
            );
        }
        assert!(with_world(|_| ()).is_err(), "scope closed: no world");
        assert_eq!(structure_generation(Access::Read), None, "scope closed");
        assert!(with_world_ref(|_| ()).is_err(), "scope closed: no world");
        assert!(
            world.get_entity(entity).is_ok(),
            "spawned through the scope"
        );
    }

    #[test]
    fn the_structure_generation_changes_with_every_exclusive_lend_and_scope() {
        let mut world = World::new();
        let outside = structure_generation(Access::Read);
        assert_eq!(outside, None, "no scope: nothing is current");
        let first = {
            let _scope = WorldScope::enter(&mut world);
            let first = structure_generation(Access::Write).unwrap();
            assert_eq!(structure_generation(Access::Read), Some(first));
            with_world_ref(|_| {
                assert_eq!(
                    structure_generation(Access::Read),
                    Some(first),
                    "reads nest"
                );
                assert_eq!(
                    structure_generation(Access::Write),
                    None,
                    "no write under a read"
                );
            })
            .unwrap();
            assert_eq!(
                structure_generation(Access::Write),
                Some(first),
                "a read moves nothing"
            );
            with_world(|_| {
                assert_eq!(structure_generation(Access::Read), None, "lent exclusively");
            })
            .unwrap();
            let second = structure_generation(Access::Write).unwrap();
            assert_ne!(second, first, "an exclusive lend may have moved anything");
            first
        };
        let _scope = WorldScope::enter(&mut world);
        let next_frame = structure_generation(Access::Read).unwrap();
        assert!(
            next_frame > first,
            "a new scope: a new generation, never one seen before"
        );
    }
}
