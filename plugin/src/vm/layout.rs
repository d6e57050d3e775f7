//! Reading Lua 5.4's private structs, for the code that must (prefetching the next instance's
//! objects, telling a reallocating stack in the allocator watch): one word at an offset. Each
//! user checks its offsets against a new state at start-up and turns itself off on a mismatch.

use std::ffi::c_void;

/// The word at `offset` bytes into `object`.
///
/// SAFETY: `object` is a live Lua object at least `offset + 8` bytes long.
pub(crate) unsafe fn word(object: *const c_void, offset: usize) -> usize {
    // SAFETY: per the caller.
    unsafe {
        object
            .cast::<u8>()
            .add(offset)
            .cast::<usize>()
            .read_unaligned()
    }
}
