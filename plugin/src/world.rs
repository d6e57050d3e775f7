//! How scripts reach the Bevy `World`.
//!
//! Scripts run only inside the plugin's exclusive system, which holds `&mut World`. For the
//! duration of that system a pointer to the world is published here ([`WorldScope`]); every
//! script access to the world goes through [`with_world`], which lends it out as `&mut World`.
//!
//! Why this is sound:
//! - the pointer exists only while the exclusive system runs ([`WorldScope`] clears it on drop,
//!   panics included), so no access can outlive the `&mut World` it came from;
//! - while the scope is open the system itself does not touch the world: the script runtime is
//!   taken out of the world first, so nothing else holds a borrow into it;
//! - Lua runs on this one thread, and [`with_world`] refuses to lend the world while it is
//!   already lent (a Rust method that calls back into Lua while holding a component), so two
//!   `&mut World` never exist at once.

use std::cell::Cell;
use std::ptr::NonNull;

use bevy::ecs::world::World;

use crate::userdata::script_error;

/// The published world, and whether it is lent out right now.
struct Slot {
    world: Cell<Option<NonNull<World>>>,
    lent: Cell<bool>,
}

thread_local! {
    static SLOT: Slot = const {
        Slot {
            world: Cell::new(None),
            lent: Cell::new(false),
        }
    };
}

/// Publishes `world` to scripts until dropped.
pub(crate) struct WorldScope {
    previous: Option<NonNull<World>>,
}

impl WorldScope {
    /// The caller must not use `world` until the scope is dropped.
    pub(crate) fn enter(world: &mut World) -> Self {
        let previous = SLOT.with(|slot| slot.world.replace(Some(NonNull::from(world))));
        WorldScope { previous }
    }
}

impl Drop for WorldScope {
    fn drop(&mut self) {
        SLOT.with(|slot| slot.world.set(self.previous));
    }
}

/// Lends the world to `f`, or explains why it cannot.
pub(crate) fn with_world<R>(f: impl FnOnce(&mut World) -> R) -> mlua::Result<R> {
    SLOT.with(|slot| {
        let Some(mut world) = slot.world.get() else {
            return Err(script_error(
                "the world is only reachable while scripts run (inside a callback)",
            ));
        };
        if slot.lent.replace(true) {
            return Err(script_error(
                "the world is busy: a Rust method that calls back into Lua cannot reach the world",
            ));
        }
        struct Return<'a>(&'a Cell<bool>);
        impl Drop for Return<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        let _return = Return(&slot.lent);
        // SAFETY: the pointer was published by a live `WorldScope` (see the module docs): it
        // points to the world the running exclusive system holds mutably and does not use
        // meanwhile, and `lent` guarantees this is the only `&mut World` made from it until `f`
        // returns.
        let world = unsafe { world.as_mut() };
        Ok(f(world))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_world_is_lent_only_inside_a_scope_and_never_twice() {
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
            assert!(
                with_world(|w| w.get_entity(entity).is_ok()).unwrap(),
                "lent again after return"
            );
        }
        assert!(with_world(|_| ()).is_err(), "scope closed: no world");
        assert!(
            world.get_entity(entity).is_ok(),
            "spawned through the scope"
        );
    }
}
