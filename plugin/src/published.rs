//! The world published to scripts on this thread: where it is, how it is lent out, and its
//! structure generation.
//!
//! `world/` publishes the world while scripts run and lends it out (`WorldScope`, `with_world`,
//! `with_world_ref`: the soundness argument is in its module docs); the fast field access of
//! `userdata/fast/` checks the component addresses it kept against the structure generation
//! here, without a call into `world/` (each access would pay for one). This module depends on
//! neither, so both can read it.
//!
//! The *structure generation* ([`structure_generation`]) tells whether an address where a
//! component was found still holds it: a component moves or goes only through `&mut World` (a
//! spawn, despawn, insert or remove, a table growing), so the generation changes with every
//! exclusive lend, and when the world is published or withdrawn (between frames anything may
//! happen). Generations come from one counter for the whole process: a value is never seen
//! twice, on any thread.

use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use bevy::ecs::world::World;

/// The published world, and how it is lent out right now: `0` not at all, `n > 0` to `n`
/// readers (`&World`), [`EXCLUSIVE`] to one writer (`&mut World`); and its structure
/// generation (see the module docs).
pub(crate) struct Slot {
    pub(crate) world: Cell<Option<NonNull<World>>>,
    pub(crate) lent: Cell<i32>,
    generation: Cell<u64>,
}

pub(crate) const EXCLUSIVE: i32 = -1;

thread_local! {
    pub(crate) static SLOT: Slot = const {
        Slot {
            world: Cell::new(None),
            lent: Cell::new(0),
            generation: Cell::new(0),
        }
    };
}

/// The next structure generation (0 is never one: it means "none").
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

impl Slot {
    /// From now on the structure may differ from what was seen before.
    pub(crate) fn new_generation(&self) {
        self.generation
            .set(GENERATIONS.fetch_add(1, Ordering::Relaxed));
    }
}

/// What is about to be done with the world: read or written (through a lend, or at an address
/// kept in it, see [`structure_generation`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Access {
    /// Read a component: allowed unless the world is lent exclusively (which also started a
    /// new generation: a second guard).
    Read,
    /// Write a component: allowed only while the world is not lent at all.
    Write,
}

/// The world's structure generation, if the world is published and could be lent for `access`
/// now; `None` otherwise. An address into the world's storage found under generation `g` is
/// still the same component's while this returns `Some(g)`: nothing moved or dropped it since.
#[inline]
pub(crate) fn structure_generation(access: Access) -> Option<u64> {
    published(access).map(|(_, generation)| generation)
}

/// The published world and its structure generation, if it could be lent for `access` now:
/// to peek at for a read that calls nothing able to lend the world (no Lua, no script API) and
/// keeps no reference into it (addresses kept under the generation, as `world/kept.rs` keeps
/// them, are no references), so it takes no lend of its own; `with_world_ref` is the way
/// otherwise.
#[inline]
pub(crate) fn published(access: Access) -> Option<(NonNull<World>, u64)> {
    SLOT.with(|slot| {
        let lent = slot.lent.get();
        let allowed = match access {
            Access::Read => lent != EXCLUSIVE,
            Access::Write => lent == 0,
        };
        let world = slot.world.get()?;
        allowed.then(|| (world, slot.generation.get()))
    })
}
