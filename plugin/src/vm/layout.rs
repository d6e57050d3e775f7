//! Reading Lua 5.4's private structs, for the code that must: prefetching the next instance's
//! objects (`prefetch.rs`), telling a reallocating stack in the allocator watch
//! (`budget/allocator.rs`), the fast field dispatch reading its arguments and the reference's
//! key straight off the stack (`userdata/fast/lean.rs`), and the `query:each()` step reading its
//! cursor and handles and pushing them (`world/query.rs`): there the C API calls that do the
//! same cost as much as the work itself.
//!
//! The offsets are those of Lua 5.4 on 64-bit targets (`lobject.h`, `lstate.h`; on others the
//! check fails). A new Lua state checks them once ([`check`]: the Lua version, and that each
//! offset leads where it should on objects, and in a call, made for the purpose, comparing
//! every read with what the C API gives: an address is read through only once the one before
//! it checked out); on any mismatch [`checked`] stays false and every user of this module stays
//! off. Only the allocator watch, which runs before any state can be checked this way, checks
//! its few `lua_State` offsets itself.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

use mlua::{Function, Lua, Table, ffi};

use crate::userdata::Key;

/// Whether the last [`check`] passed.
static CHECKED: AtomicBool = AtomicBool::new(false);

/// Checks the layout against `lua` (a fresh state of the backend in use) and turns its users
/// on or off for the process accordingly; true when on.
pub(crate) fn check(lua: &Lua) -> bool {
    let ok = verified(lua);
    CHECKED.store(ok, Ordering::Relaxed);
    ok
}

/// Whether the layout was checked and found as expected.
#[inline]
pub(crate) fn checked() -> bool {
    CHECKED.load(Ordering::Relaxed)
}

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

/// `lua_State`: `top` at 16, `ci` (the running call) at 32, `stack_last` at 40, `stack` at 48,
/// `base_ci` at 96. A `CallInfo` starts with `func`, the called function's stack slot.
pub(crate) const STATE_TOP: usize = 16;
pub(crate) const STATE_CI: usize = 32;
pub(crate) const STATE_STACK_LAST: usize = 40;
pub(crate) const STATE_STACK: usize = 48;
pub(crate) const STATE_BASE_CI: usize = 96;

/// A value in a stack slot or in an object (`TValue`, 16 bytes): its payload (a pointer, an
/// integer, a float's bits) and its type tag (see [`tag`]).
#[repr(C)]
pub(crate) struct Value {
    pub payload: u64,
    pub tag: u8,
}

/// A stack slot, and a [`Value`]: 16 bytes.
pub(crate) const SLOT: usize = 16;

/// The type tags of [`Value`]s (`makevariant`, with bit 6 set for collectable objects).
pub(crate) mod tag {
    pub(crate) const FALSE: u8 = 0x01;
    pub(crate) const TRUE: u8 = 0x11;
    pub(crate) const INTEGER: u8 = 0x03;
    pub(crate) const FLOAT: u8 = 0x13;
    pub(crate) const SHORT_STRING: u8 = 0x44;
    pub(crate) const TABLE: u8 = 0x45;
    pub(crate) const C_CLOSURE: u8 = 0x66;
    pub(crate) const FULL_USERDATA: u8 = 0x47;
}

/// The slots of the C function running on `state`: the function's own (a C closure), then its
/// arguments (as many as `lua_gettop` counts).
///
/// SAFETY: `state` is live and inside a C function call; the slice is read before anything
/// changes the stack (a push, a call).
pub(crate) unsafe fn call_frame<'a>(state: *mut ffi::lua_State) -> &'a [Value] {
    // SAFETY: per the caller: `ci->func` is the running function's slot and `top` the first
    // free one above its arguments, in the same live stack of 16-byte slots.
    unsafe {
        let state = state.cast_const().cast::<c_void>();
        let func = word(word(state, STATE_CI) as *const c_void, 0);
        let top = word(state, STATE_TOP);
        std::slice::from_raw_parts(func as *const Value, top.saturating_sub(func) / SLOT)
    }
}

/// Pushes a copy of `value` on the stack of the C function running on `state`.
///
/// SAFETY: `state` is live and inside a C function call with a stack slot free (below the
/// call's `ci->top`: a C function may push `LUA_MINSTACK` values); `value` is a live value
/// (its object, if any, stays reachable from somewhere else until the call returns).
pub(crate) unsafe fn push(state: *mut ffi::lua_State, value: &Value) {
    // SAFETY: per the caller: `top` is the first free slot, and the stack is not collected
    // between the write and the move of `top` (nothing here allocates).
    unsafe {
        let top_field = (state as usize + STATE_TOP) as *mut usize;
        let slot = (*top_field) as *mut Value;
        (*slot).payload = value.payload;
        (*slot).tag = value.tag;
        *top_field += SLOT;
    }
}

/// Whether a value's tag is one of nil's (nil, an empty slot, an absent key).
pub(crate) fn is_nil(tag: u8) -> bool {
    tag & 0x0f == 0
}

/// The upvalue `n` (from 1) of the C closure `closure` (the payload of a [`tag::C_CLOSURE`]).
///
/// SAFETY: `closure` is a live C closure with at least `n` upvalues.
pub(crate) unsafe fn c_closure_upvalue<'a>(closure: u64, n: usize) -> &'a Value {
    // SAFETY: per the caller; `CClosure`: its upvalues from 32, a `TValue` each.
    unsafe { &*((closure as usize + C_CLOSURE_UPVALUES + (n - 1) * SLOT) as *const Value) }
}

/// `CClosure`: `upvalue[0]` at 32.
const C_CLOSURE_UPVALUES: usize = 32;

/// The first user value of the full userdata `udata` (the payload of a
/// [`tag::FULL_USERDATA`]), if it has user values.
///
/// SAFETY: `udata` is a live full userdata.
pub(crate) unsafe fn first_user_value<'a>(udata: u64) -> Option<&'a Value> {
    let udata = udata as usize;
    // SAFETY: per the caller; `Udata`: `nuvalue` (u16) at 10, and when it is not 0, the user
    // values from 40.
    unsafe {
        (((udata + USERDATA_USER_VALUES) as *const u16).read() > 0)
            .then(|| &*((udata + USERDATA_USER_VALUE) as *const Value))
    }
}

/// `Udata`: the count of its user values (u16) at 10.
const USERDATA_USER_VALUES: usize = 10;

/// The memory block of the full userdata `udata0` (the payload of a [`tag::FULL_USERDATA`])
/// and its length in bytes, if it has no user values (as a reference's [`Key`] has): the block
/// of one with user values lies elsewhere.
///
/// SAFETY: `udata0` is a live full userdata.
pub(crate) unsafe fn userdata0_block(udata0: u64) -> Option<(*mut c_void, usize)> {
    let udata0 = udata0 as usize;
    // SAFETY: per the caller; `Udata0`: `nuvalue` (u16) at 10 as in every `Udata`, `len` at
    // 16, the block at 32.
    unsafe {
        (((udata0 + USERDATA_USER_VALUES) as *const u16).read() == 0).then(|| {
            (
                (udata0 + USERDATA0_BLOCK) as *mut c_void,
                ((udata0 + 16) as *const usize).read(),
            )
        })
    }
}

/// Item `i` of the table `table` (the payload of a [`tag::TABLE`]) if it lies in its array
/// part (`None` does not mean nil: the item may be in the hash part, for `lua_rawgeti` to find).
///
/// SAFETY: `table` is a live table; the item is read before anything changes the table.
pub(crate) unsafe fn array_item<'a>(table: u64, i: i64) -> Option<&'a Value> {
    let table = table as usize as *const c_void;
    // SAFETY: per the caller; items 1 to `alimit` are always in the array (the real size may
    // be larger, never smaller).
    unsafe {
        let limit = table
            .cast::<u8>()
            .add(TABLE_ARRAY_LIMIT)
            .cast::<u32>()
            .read();
        // Items 0 and below wrap to indices far above any limit (a `u32`).
        let index = (i as u64).wrapping_sub(1);
        (index < u64::from(limit))
            .then(|| &*((word(table, TABLE_ARRAY) + index as usize * SLOT) as *const Value))
    }
}

/// `Table`: `array` at 16, `node` at 24, in a 56-byte object.
const TABLE_ARRAY: usize = 16;
const TABLE_NODE: usize = 24;
/// `Table`: `lsizenode` (log2 of the node count) at 11, `alimit` (u32) at 12, `lastfree` at 32.
const TABLE_NODE_LOG_SIZE: usize = 11;
const TABLE_ARRAY_LIMIT: usize = 12;
const TABLE_LAST_FREE: usize = 32;
/// A `Node` of a table's hash part.
const NODE_SIZE: usize = 24;
/// Objects' sizes: a `Table`, an `LClosure` with one upvalue, an `UpVal`, and a `Udata`'s
/// header with its one user value.
pub(crate) const TABLE_SIZE: usize = 56;
pub(crate) const CLOSURE_SIZE: usize = 40;
pub(crate) const UPVALUE_SIZE: usize = 40;
pub(crate) const USERDATA_HEADER_SIZE: usize = 56;
/// `LClosure`: `nupvalues` at 10, `upvals[0]` at 32.
const CLOSURE_UPVALUES: usize = 10;
const CLOSURE_FIRST_UPVALUE: usize = 32;
/// `Udata` with one user value (as mlua makes them): the block starts 56 bytes in.
const USERDATA_BLOCK: usize = 56;

/// The header of a userdata (with its metatable and user value), from the block
/// `to_pointer` gives.
pub(crate) fn userdata_header(block: usize) -> usize {
    block.saturating_sub(USERDATA_BLOCK)
}

/// `Udata`: its first user value, a `TValue` (the value at 40, its tag at 48).
pub(crate) const USERDATA_USER_VALUE: usize = 40;
/// `Udata0` (a userdata without user values, as a reference's [`Key`] is): the block
/// starts 32 bytes in.
const USERDATA0_BLOCK: usize = 32;
/// A reference's key object: its header and the `Key`.
pub(crate) const KEY_OBJECT_SIZE: usize = USERDATA0_BLOCK + size_of::<Key>();

/// The object in the first user value of the userdata whose header is at `header`, if it
/// is a full userdata (a component reference's [`Key`]).
pub(crate) fn user_value_userdata(header: usize) -> Option<usize> {
    // SAFETY: `header` is the `Udata` of a live userdata with one user value (as mlua makes
    // them), which the caller holds.
    let value = unsafe { first_user_value(header as u64)? };
    (value.tag == tag::FULL_USERDATA).then_some(value.payload as usize)
}

/// The table's array part and hash part.
pub(crate) fn table_parts(table: &Table) -> [(usize, usize); 2] {
    let object = table.to_pointer();
    // SAFETY: `to_pointer` of a table held by `table` is its live `Table` object.
    unsafe {
        let array = word(object, TABLE_ARRAY);
        let array_size = object
            .cast::<u8>()
            .add(TABLE_ARRAY_LIMIT)
            .cast::<u32>()
            .read();
        // The shared dummy node of a table without a hash part has no `lastfree`.
        let node = match word(object, TABLE_LAST_FREE) {
            0 => 0,
            _ => word(object, TABLE_NODE),
        };
        let node_size = 1usize << object.cast::<u8>().add(TABLE_NODE_LOG_SIZE).read().min(16);
        [
            (array, array_size as usize * SLOT),
            (node, node_size * NODE_SIZE),
        ]
    }
}

/// The first upvalue object of a Lua function (`_ENV` for script functions).
pub(crate) fn first_upvalue(function: &Function) -> Option<usize> {
    if function.info().what != "Lua" {
        return None; // a C function: another layout
    }
    let object = function.to_pointer();
    // SAFETY: a Lua function held by `function`: a live `LClosure`, whose upvalue array
    // is read only when it has at least one entry.
    unsafe {
        let upvalues = object.cast::<u8>().add(CLOSURE_UPVALUES).read();
        (upvalues > 0).then(|| word(object, CLOSURE_FIRST_UPVALUE))
    }
}

/// Whether the offsets above hold for `lua`: its version is 5.4, and each address leads to
/// the value it should hold on objects made for the check. An address is read through
/// only once the one before it checked out, and only if it is a plausible, aligned heap
/// address.
fn verified(lua: &Lua) -> bool {
    let check = || -> mlua::Result<bool> {
        if cfg!(not(target_pointer_width = "64"))
            || lua.load("return _VERSION").eval::<String>()? != "Lua 5.4"
        {
            return Ok(false);
        }
        let plausible = |address: usize| address > 4096 && address.is_multiple_of(8);
        // A table part holding `42` first, of `size` bytes.
        let holds_answer = |(address, size): (usize, usize), expected: usize| {
            // SAFETY: with the 5.4 layout, a part of a live table; a TValue and a Node
            // start with their value. Read only at a plausible address.
            plausible(address)
                && unsafe { (address as *const i64).read() } == 42
                && size == expected
        };
        let array: Table = lua.load("return {42}").eval()?;
        let [values, (no_nodes, _)] = table_parts(&array);
        if !holds_answer(values, SLOT) || no_nodes != 0 {
            return Ok(false);
        }
        let hash: Table = lua.load("return {answer = 42}").eval()?;
        let [(no_values, _), nodes] = table_parts(&hash);
        if !holds_answer(nodes, NODE_SIZE) || no_values != 0 {
            return Ok(false);
        }
        let four: Table = lua.load("return {a = 1, b = 2, c = 3, 4, 5}").eval()?;
        if table_parts(&four).map(|(_, size)| size) != [2 * SLOT, 4 * NODE_SIZE] {
            return Ok(false);
        }
        let env = lua.create_table()?;
        let f: Function = lua
            .load("return function() return answer end")
            .set_environment(env.clone())
            .eval()?;
        let Some(upvalue) = first_upvalue(&f).filter(|u| plausible(*u)) else {
            return Ok(false);
        };
        // SAFETY: a closed `UpVal` holds its value at 24 (`u.value`), here the table.
        if unsafe { ((upvalue + 24) as *const usize).read() } != env.to_pointer() as usize {
            return Ok(false);
        }
        let no_upvalues: Function = lua.load("return function() return 1 end").eval()?;
        let c_function = lua.create_function(|_, ()| Ok(()))?;
        if first_upvalue(&no_upvalues).is_some() || first_upvalue(&c_function).is_some() {
            return Ok(false);
        }
        let userdata = lua.create_any_userdata(7u64)?;
        let header = userdata_header(userdata.to_pointer() as usize);
        // SAFETY: the block of a live userdata is `USERDATA_BLOCK` bytes into its `Udata`;
        // with the 5.4 layout `nuvalue` is at 10 and the metatable at 24.
        let (user_values, metatable) = unsafe {
            (
                ((header + USERDATA_USER_VALUES) as *const u16).read(),
                ((header + 24) as *const usize).read(),
            )
        };
        // mlua gives every userdata one user value and a metatable.
        if user_values != 1 || metatable == 0 || user_value_userdata(header).is_some() {
            return Ok(false);
        }
        // A reference's key: a userdata in the first user value, its `Key` in the block.
        crate::userdata::set_key(lua, &userdata, 4242)?;
        let Some(key) = user_value_userdata(header).filter(|k| plausible(*k)) else {
            return Ok(false);
        };
        // SAFETY: the `Udata0` of the live key, whose block starts with the key.
        if unsafe { ((key + USERDATA0_BLOCK) as *const u64).read() } != 4242 {
            return Ok(false);
        }
        frame_verified(lua, &userdata)
    };
    check().unwrap_or(false)
}

/// Whether a C closure reads its own slot, its arguments and its upvalue where the offsets
/// above say, called with a keyed userdata (checked above), a short string, a float, an
/// integer, `true`, `false` and a table of one item.
fn frame_verified(lua: &Lua, keyed: &mlua::AnyUserData) -> mlua::Result<bool> {
    /// Compares every read of the layout with what the C API gives.
    unsafe extern "C-unwind" fn probe(state: *mut ffi::lua_State) -> c_int {
        // SAFETY: called below as a C closure with one upvalue (a userdata without user
        // values) and the seven arguments; each address is read only after the tag before it
        // checked out. Nothing here raises an error.
        unsafe {
            let frame = call_frame(state);
            let ok = frame.len() == 8
                && ffi::lua_gettop(state) == 7
                && frame[0].tag == tag::C_CLOSURE
                && c_closure_upvalue(frame[0].payload, 1).tag == tag::FULL_USERDATA
                && userdata0_block(c_closure_upvalue(frame[0].payload, 1).payload).is_some_and(
                    |(block, _)| block == ffi::lua_touserdata(state, ffi::lua_upvalueindex(1)),
                )
                && userdata0_block(frame[1].payload).is_none()
                && frame[1].tag == tag::FULL_USERDATA
                && frame[1].payload as usize
                    == userdata_header(ffi::lua_touserdata(state, 1) as usize)
                && first_user_value(frame[1].payload).is_some_and(|key| {
                    key.tag == tag::FULL_USERDATA && {
                        userdata0_block(key.payload).is_some_and(|(block, len)| {
                            len == size_of::<Key>() && block.cast::<u64>().read() == 4242
                        })
                    }
                })
                && frame[2].tag == tag::SHORT_STRING
                && frame[2].payload as usize == ffi::lua_topointer(state, 2) as usize
                && frame[3].tag == tag::FLOAT
                && f64::from_bits(frame[3].payload)
                    == ffi::lua_tonumberx(state, 3, std::ptr::null_mut())
                && frame[4].tag == tag::INTEGER
                && frame[4].payload as i64 == ffi::lua_tointegerx(state, 4, std::ptr::null_mut())
                && frame[5].tag == tag::TRUE
                && frame[6].tag == tag::FALSE
                && frame[7].tag == tag::TABLE
                && frame[7].payload as usize == ffi::lua_topointer(state, 7) as usize
                && array_item(frame[7].payload, 1)
                    .is_some_and(|item| item.tag == tag::INTEGER && item.payload == 42)
                && array_item(frame[7].payload, 0).is_none()
                && array_item(frame[7].payload, -1).is_none()
                && array_item(frame[7].payload, i64::MIN).is_none()
                && array_item(frame[7].payload, 2).is_none()
                && {
                    push(state, &frame[4]);
                    push(state, &frame[7]);
                    let pushed = ffi::lua_gettop(state) == 9
                        && ffi::lua_tointegerx(state, 8, std::ptr::null_mut()) == 7
                        && ffi::lua_topointer(state, 9) == ffi::lua_topointer(state, 7);
                    ffi::lua_settop(state, 7);
                    pushed
                }
                && is_nil(0x00)
                && !is_nil(tag::FALSE);
            ffi::lua_pushboolean(state, c_int::from(ok));
            1
        }
    }
    // SAFETY: the new userdata has no user values and 8 bytes, written before anything sees
    // it; `lua_pushcclosure` takes it as the probe's one upvalue.
    let probe = unsafe {
        lua.exec_raw::<Function>((), |state| {
            let memory = ffi::lua_newuserdatauv(state, 8, 0);
            memory.cast::<u64>().write(7);
            ffi::lua_pushcclosure(state, probe, 1);
        })?
    };
    let table = lua.create_sequence_from([42])?;
    probe.call::<bool>((keyed, "health", 1.5, 7, true, false, table))
}

#[cfg(test)]
mod tests {
    use mlua::Lua;

    /// The offsets above match the vendored Lua.
    #[test]
    fn the_layout_matches_the_vendored_lua() {
        assert!(super::verified(&Lua::new()));
        assert!(super::check(&Lua::new()), "its users on");
    }
}
