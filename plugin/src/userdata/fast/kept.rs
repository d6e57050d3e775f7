//! Kept addresses: where a keyed place last found a reference's target, and whether it is
//! still there.
//!
//! A place (`world/kept.rs`, for components) finds a reference's target once and keeps its
//! address in the reference's [`Key`](super::Key) ([`Kept`]), with the world's structure
//! generation it was found under (`published.rs`). The fast field access checks a kept address
//! against the generation itself, reading the thread's slot and comparing the generation and
//! the target's type ([`Kept::for_reading`], [`Kept::for_writing`]), and calls the place only
//! when it is not current: through the place's function (a call through a pointer, inside a
//! call that then reached the target) the check cost about 25 instructions per access more.
//!
//! A write through a kept address marks the target changed as `Mut<T>` does, with the change
//! tick kept with the address ([`Kept::for_writing`]).

use std::any::TypeId;
use std::cell::UnsafeCell;
use std::panic::Location;
use std::ptr::NonNull;

use bevy::ecs::change_detection::{MaybeLocation, Tick};

use crate::published::{Access, structure_generation};

/// Where a place last found a reference's target, and under which generation (see the module
/// docs).
#[derive(Clone, Copy)]
pub(crate) struct Kept {
    /// When it was found (0: nothing kept).
    pub generation: u64,
    /// The type of the target (a reference's key can reach a field function of another type).
    pub target_type: TypeId,
    pub target: *mut (),
    /// What a write marks (the target's change tick, and where it was changed from, if Bevy
    /// tracks it: null otherwise), and the mark.
    pub changed: *const UnsafeCell<Tick>,
    pub changed_by: *const UnsafeCell<&'static Location<'static>>,
    pub tick: u32,
}

impl Kept {
    /// Nothing kept.
    pub(crate) const NONE: Kept = Kept {
        generation: 0,
        target_type: TypeId::of::<()>(),
        target: std::ptr::null_mut(),
        changed: std::ptr::null(),
        changed_by: std::ptr::null(),
        tick: 0,
    };

    /// The kept address of the `T`, to read now, if it is current: the place promises that it
    /// holds the `T` and that nothing holds it exclusively until the place is next reached (see
    /// `KeyedAccess`).
    #[inline(always)]
    pub(crate) fn for_reading<T: 'static>(&self) -> Option<NonNull<T>> {
        self.current::<T>(Access::Read)
    }

    /// The kept address of the `T`, to write now, if it is current; the `T` is marked changed.
    /// As [`Kept::for_reading`], and nothing else holds the `T` at all.
    #[inline(always)]
    #[cfg_attr(not(feature = "lua54"), allow(dead_code))] // the Lua 5.4 fast path's
    pub(crate) fn for_writing<T: 'static>(&self) -> Option<NonNull<T>> {
        let target = self.current::<T>(Access::Write)?;
        // SAFETY: current for writing.
        unsafe { self.mark_changed() };
        Some(target)
    }

    /// Marks the target changed, as `Mut<T>` does.
    ///
    /// SAFETY: the address is current for writing: the marks were found with it, under the
    /// generation running now, while nothing else may read or write them; and the tick is the
    /// world's change tick when they were found, which has not moved since (the same
    /// generation).
    #[inline(always)]
    pub(crate) unsafe fn mark_changed(&self) {
        // SAFETY: per the caller.
        unsafe {
            *(*self.changed).get() = Tick::new(self.tick);
            if let Some(location) = MaybeLocation::caller().into_option()
                && !self.changed_by.is_null()
            {
                *(*self.changed_by).get() = location;
            }
        }
    }

    #[inline(always)]
    fn current<T: 'static>(&self, access: Access) -> Option<NonNull<T>> {
        let now = structure_generation(access)?;
        if self.found_under::<T>(now) {
            NonNull::new(self.target.cast())
        } else {
            None
        }
    }

    /// Whether this is the address of a `T` found under `generation`.
    #[inline(always)]
    pub(crate) fn found_under<T: 'static>(&self, generation: u64) -> bool {
        self.generation == generation && self.target_type == TypeId::of::<T>()
    }
}
