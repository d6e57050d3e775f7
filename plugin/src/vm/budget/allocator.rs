//! The allocator watch: the line of a memory error raised in a plain call.
//!
//! Lua raises "not enough memory" with no position, and a protected call on the main state
//! unwinds the frames that had one before Rust sees the error (a thread keeps them, and the
//! scheduler reads them there). So the state's allocator is wrapped: when the memory limit
//! refuses a block, the watch notes the line the running callback's state is at
//! (`lua_getstack`/`lua_getinfo` only read its frames) and the runtime puts it in front of the
//! error.
//!
//! One moment is not safe to read frames in: while Lua reallocates a thread's stack, its frame
//! pointers are offsets (`luaD_reallocstack`). The watch tells it by the stack top lying
//! outside the stack, which reads Lua 5.4's private `lua_State` layout: [`AllocatorWatch::install`]
//! checks that layout on the new state and leaves the allocator alone on any mismatch (memory
//! errors then keep no line).

use std::cell::Cell;
use std::ffi::c_void;
use std::ptr::NonNull;

use mlua::ffi;

/// `lua_State`'s offsets (`vm/layout.rs`).
use crate::vm::layout::{
    SLOT, STATE_BASE_CI as BASE_CI, STATE_CI as CI, STATE_STACK as STACK,
    STATE_STACK_LAST as STACK_LAST, STATE_TOP as TOP,
};
/// Slots past `stack_last` Lua keeps for itself (`EXTRA_STACK`).
const EXTRA_STACK: usize = 5;

/// The wrapper's state: the allocator it wraps, and where the last refusal happened.
pub(super) struct AllocatorWatch {
    inner: ffi::lua_Alloc,
    inner_data: *mut c_void,
    main: *mut ffi::lua_State,
    /// `chunk:line` of the last allocation the limit refused, if its state could be read.
    refused_at: Cell<Option<String>>,
    /// Bytes allocated: mlua counts them too, but finds its count only through its own
    /// allocator, which Lua no longer calls directly (and the runtime reads it per instance).
    used: Cell<usize>,
}

/// The watch, held by the Lua state's app data.
struct Owned(#[allow(dead_code)] Box<AllocatorWatch>);

/// A word of `state` (see [`layout`](crate::vm::layout)).
///
/// SAFETY: `state` is a live Lua 5.4 state whose layout [`layout_holds`] checked, or is
/// checking (`offset` is inside the `lua_State`).
unsafe fn word(state: *mut ffi::lua_State, offset: usize) -> usize {
    // SAFETY: per the caller.
    unsafe { crate::vm::layout::word(state.cast_const().cast(), offset) }
}

/// Whether the offsets above hold for `state`, the main state of a new Lua, idle: its
/// current call is the base one, whose function slot is the stack's first, and the top moves
/// by one slot per value pushed.
///
/// SAFETY: `state` is a live main state on which no Lua code runs now.
unsafe fn layout_holds(state: *mut ffi::lua_State) -> bool {
    // SAFETY: the `lua_State` is over 96 + 8 bytes long in any Lua 5.x; each pointer read
    // through (the base call's `func`) is checked first to be the state's own `base_ci`.
    unsafe {
        if ffi::lua_version(state) != 504.0 {
            return false;
        }
        let base_ci = state as usize + BASE_CI;
        if word(state, CI) != base_ci {
            return false;
        }
        let stack = word(state, STACK);
        let func = (base_ci as *const usize).read_unaligned();
        let top = word(state, TOP);
        let depth = ffi::lua_gettop(state) as usize;
        if stack == 0 || func != stack || top != stack + (depth + 1) * SLOT {
            return false;
        }
        if ffi::lua_checkstack(state, 1) == 0 {
            return false;
        }
        ffi::lua_pushnil(state);
        let pushed = word(state, TOP);
        ffi::lua_settop(state, -2);
        pushed == top + SLOT && word(state, TOP) == top && word(state, STACK_LAST) >= pushed
    }
}

/// The wrapper Lua calls for every allocation.
///
/// SAFETY: installed by [`AllocatorWatch::install`], with `data` the watch, alive until
/// [`AllocatorWatch::uninstall`].
unsafe extern "C" fn watched_alloc(
    data: *mut c_void,
    block: *mut c_void,
    old_size: usize,
    new_size: usize,
) -> *mut c_void {
    // SAFETY: per the function's contract.
    let watch = unsafe { &*data.cast::<AllocatorWatch>() };
    // SAFETY: the wrapped allocator with its own data, called as Lua would.
    let result = unsafe { (watch.inner)(watch.inner_data, block, old_size, new_size) };
    // `old_size` is a type tag when `block` is null.
    let old = if block.is_null() { 0 } else { old_size };
    if new_size == 0 {
        watch.used.set(watch.used.get().saturating_sub(old));
    } else if result.is_null() {
        watch.note_refusal();
    } else {
        watch
            .used
            .set((watch.used.get() + new_size).saturating_sub(old));
    }
    result
}

impl AllocatorWatch {
    /// Wraps the allocator of `main`, the main state of `lua` (new, idle), if its layout checks
    /// out. The watch is boxed in `lua`'s app data, which outlives the state's closing (it
    /// allocates to the end): the address stays valid as long as the state.
    ///
    /// SAFETY: `main` is the live main state of `lua`, on which no Lua code runs now.
    pub(super) unsafe fn install(
        lua: &mlua::Lua,
        main: *mut ffi::lua_State,
    ) -> Option<NonNull<AllocatorWatch>> {
        // SAFETY: per the caller.
        unsafe {
            let mut inner_data = std::ptr::null_mut();
            let inner = ffi::lua_getallocf(main, &mut inner_data);
            if std::ptr::fn_addr_eq(inner, watched_alloc as ffi::lua_Alloc) {
                // Watched already (a second budget on one state, in tests): the same watch.
                return NonNull::new(inner_data.cast());
            }
            if !layout_holds(main) {
                return None;
            }
            let watch = Box::new(AllocatorWatch {
                inner,
                inner_data,
                main,
                refused_at: Cell::new(None),
                used: Cell::new(lua.used_memory()),
            });
            let address = NonNull::from(&*watch);
            lua.set_app_data(Owned(watch));
            ffi::lua_setallocf(main, watched_alloc, address.as_ptr().cast());
            Some(address)
        }
    }

    /// Gives the state its own allocator back (the blocks are the wrapped allocator's: the
    /// watch only looks on), so that mlua finds its own when the state closes (it frees its
    /// allocator data then).
    ///
    /// SAFETY: the state is alive and no Lua code runs on it now.
    pub(super) unsafe fn uninstall(&self) {
        // SAFETY: per the caller.
        unsafe { ffi::lua_setallocf(self.main, self.inner, self.inner_data) };
    }

    /// Notes where the state the callback runs on is, if its frames can be read now.
    fn note_refusal(&self) {
        let Some(state) = super::hooked::running_state() else {
            return;
        };
        // SAFETY: the running callback's state, alive while it runs, on this thread; the
        // layout was checked at install. While its stack is reallocated `top` is an offset,
        // below the stack's address: then nothing is read through.
        unsafe {
            let stack = word(state, STACK);
            let top = word(state, TOP);
            let last = word(state, STACK_LAST);
            if top < stack || top > last + EXTRA_STACK * SLOT {
                return;
            }
            self.refused_at.set(crate::error::frame_location(state));
        }
    }

    /// Bytes the state has allocated.
    pub(super) fn used_memory(&self) -> usize {
        self.used.get()
    }

    /// Where the last refused allocation was asked for, since the last call.
    pub(super) fn take_refusal(&self) -> Option<String> {
        self.refused_at.take()
    }
}

#[cfg(test)]
mod tests {
    use crate::vm::{Vm, VmSettings};

    fn vm(memory_limit: usize) -> Vm {
        Vm::new(&VmSettings {
            instruction_budget: 100_000_000,
            memory_limit,
            extra_std_libs: mlua::StdLib::NONE,
            watchdog: crate::BudgetWatchdog::Auto,
        })
        .unwrap()
    }

    /// The `lua_State` offsets hold for the vendored Lua, and a memory error out of a call on
    /// the main state names the line that asked for the memory.
    #[test]
    fn a_refused_allocation_names_its_line() {
        let vm = vm(16 * 1024 * 1024);
        let f: mlua::Function = vm
            .lua
            .load("local t = {}\nfor i = 1, 1e8 do\n  t[i] = i\nend")
            .set_name("@scripts/hog.lua")
            .into_function()
            .unwrap();
        let err = vm.budgeted(|| f.call::<()>(())).unwrap_err();
        assert!(
            matches!(&err, mlua::Error::MemoryError(m) if m.starts_with("scripts/hog.lua:3: not enough memory")),
            "{err:?}"
        );
        // The state goes on, and a later error of another kind is not given the old line.
        let ok: mlua::Function = vm.lua.load("return 1 + 1").into_function().unwrap();
        assert_eq!(vm.budgeted(|| ok.call::<i64>(())).unwrap(), 2);
        // The watch's count is Lua's own.
        // (mlua, no longer finding its allocator's count, asks Lua's collector.)
        assert_eq!(vm.used_memory(), vm.lua.used_memory());
    }
}
