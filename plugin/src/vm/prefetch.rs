//! Fetching instances' Lua objects into the cache shortly before they run.
//!
//! At 10,000 instances the objects one `on_update` touches no longer fit in the CPU's L2 cache:
//! its closure, the closure's `_ENV` upvalue, the environment table and its hash part, the
//! entity handle and its array part, the component reference and its key (`userdata/fast.rs`:
//! where the component was last found). Each is found through the one
//! before, so their cache misses add up one after the other (turned off, a frame at 10,000
//! instances takes about 1.8x as long). The runtime knows where they are (collected here every
//! few hundred frames, as the cache lines they lie on: an object or a table's part that
//! straddles two lines needs both) and, while one instance runs, asks the CPU to fetch those of
//! the one two on, and the `Instance` itself of one further on ([`prefetch_object`]). A prefetch
//! is only a hint: an address that went stale (the script rebound `entity`, a table grew) costs
//! a wasted fetch, never a wrong result, and nothing here reads through an address after
//! collecting it.
//!
//! The parts of objects are found by reading Lua 5.4's private struct layout, on 64-bit x86
//! only (elsewhere only the objects themselves are fetched, and off x86 nothing). A new Lua
//! state checks the layout once ([`check_layout`]: the Lua version, and that each offset leads
//! where it should on objects made for the purpose); on any mismatch prefetching stays off.

use std::sync::atomic::{AtomicBool, Ordering};

use mlua::{Function, Lua, Table, Value};

/// Whether the layout check passed (set by [`check_layout`]).
static LAYOUT_CHECKED: AtomicBool = AtomicBool::new(false);

/// Checks the struct layout against `lua` (a fresh state of the backend in use) and turns
/// prefetching on or off for the process accordingly; true when on.
pub(crate) fn check_layout(lua: &Lua) -> bool {
    let ok = layout::verified(lua);
    LAYOUT_CHECKED.store(ok, Ordering::Relaxed);
    ok
}

/// Asks the CPU to fetch `object` (its first four cache lines at most).
#[inline]
pub(crate) fn prefetch_object<T>(object: &T) {
    let start = std::ptr::from_ref(object) as usize;
    let mut line = start & !(LINE - 1);
    while line < start + size_of::<T>().min(4 * LINE) {
        prefetch_line(line);
        line += LINE;
    }
}

/// Asks the CPU to fetch the cache line at `address`.
#[inline]
fn prefetch_line(address: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults, whatever the address.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(address as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

/// How many frames the collected lines are used before they are collected again.
const REFRESH_FRAMES: u8 = 255;

/// The cache lines of the objects an instance's `on_update` touches.
#[derive(Default)]
pub(crate) struct HotObjects {
    lines: [usize; 16],
    len: u8,
    /// Frames until the next collection; 0: collect after this frame's update.
    age: u8,
}

impl HotObjects {
    /// Asks the CPU to fetch the objects into its caches.
    #[inline]
    pub(crate) fn prefetch(&self) {
        for &line in &self.lines[..usize::from(self.len)] {
            prefetch_line(line);
        }
    }

    /// Whether the lines are due to be collected again (counts the frame).
    pub(crate) fn due(&mut self) -> bool {
        let due = self.age == 0;
        self.age = if due { REFRESH_FRAMES } else { self.age - 1 };
        due
    }

    /// Collects the objects of an instance with this `on_update` and environment.
    pub(crate) fn collect(on_update: Option<&Function>, env: &Table) -> Self {
        let mut hot = HotObjects {
            age: REFRESH_FRAMES,
            ..HotObjects::default()
        };
        if !LAYOUT_CHECKED.load(Ordering::Relaxed) {
            return hot;
        }
        if let Some(on_update) = on_update {
            hot.push(on_update.to_pointer() as usize, layout::CLOSURE_SIZE);
            if let Some(upvalue) = layout::first_upvalue(on_update) {
                hot.push(upvalue, layout::UPVALUE_SIZE);
            }
        }
        hot.push_table(env);
        if let Ok(Value::Table(handle)) = env.raw_get::<Value>("entity") {
            hot.push_table(&handle);
            // The references `entity:get` cached in the handle (see `world/handle.rs`); their slots
            // need not be consecutive.
            for (_, value) in handle.pairs::<Value, Value>().flatten() {
                if let Value::UserData(reference) = value {
                    let header = layout::userdata_header(reference.to_pointer() as usize);
                    hot.push(header, layout::USERDATA_HEADER_SIZE);
                    if let Some(key) = layout::user_value_userdata(header) {
                        hot.push(key, layout::KEY_OBJECT_SIZE);
                    }
                }
            }
        }
        hot
    }

    fn push_table(&mut self, table: &Table) {
        self.push(table.to_pointer() as usize, layout::TABLE_SIZE);
        for (part, size) in layout::table_parts(table) {
            self.push(part, size.min(2 * LINE));
        }
    }

    /// The cache lines of the `size` bytes at `address` (none for a null address), each once.
    fn push(&mut self, address: usize, size: usize) {
        if address == 0 {
            return;
        }
        let mut line = address & !(LINE - 1);
        while line < address + size.max(1) {
            let len = usize::from(self.len);
            if !self.lines[..len].contains(&line) {
                let Some(slot) = self.lines.get_mut(len) else {
                    return;
                };
                *slot = line;
                self.len += 1;
            }
            line += LINE;
        }
    }
}

/// A cache line's size.
const LINE: usize = 64;

/// Where Lua 5.4 keeps the parts of its objects (`lobject.h`), read once at collection while
/// the object is alive and held. Other Lua versions and targets: the objects themselves only.
#[cfg(all(feature = "lua54", target_arch = "x86_64"))]
mod layout {
    use mlua::{Function, Lua, Table};

    use crate::userdata::Key;

    /// `Table`: `array` at 16, `node` at 24, in a 56-byte object.
    const TABLE_ARRAY: usize = 16;
    const TABLE_NODE: usize = 24;
    /// `Table`: `lsizenode` (log2 of the node count) at 11, `alimit` (u32) at 12, `lastfree` at 32.
    const TABLE_NODE_LOG_SIZE: usize = 11;
    const TABLE_ARRAY_LIMIT: usize = 12;
    const TABLE_LAST_FREE: usize = 32;
    /// A `TValue` and a `Node`.
    const VALUE_SIZE: usize = 16;
    const NODE_SIZE: usize = 24;
    /// Objects' sizes: a `Table`, an `LClosure` with one upvalue, an `UpVal`, and a `Udata`'s
    /// header with its one user value.
    pub(super) const TABLE_SIZE: usize = 56;
    pub(super) const CLOSURE_SIZE: usize = 40;
    pub(super) const UPVALUE_SIZE: usize = 40;
    pub(super) const USERDATA_HEADER_SIZE: usize = 56;
    /// `LClosure`: `nupvalues` at 10, `upvals[0]` at 32.
    const CLOSURE_UPVALUES: usize = 10;
    const CLOSURE_FIRST_UPVALUE: usize = 32;
    /// `Udata` with one user value (as mlua makes them): the block starts 56 bytes in.
    const USERDATA_BLOCK: usize = 56;

    /// The header of a userdata (with its metatable and user value), from the block
    /// `to_pointer` gives.
    pub(super) fn userdata_header(block: usize) -> usize {
        block.saturating_sub(USERDATA_BLOCK)
    }

    /// `Udata`: its first user value, a `TValue` (the value at 40, its tag at 48).
    const USERDATA_USER_VALUE: usize = 40;
    const USERDATA_USER_VALUE_TAG: usize = 48;
    /// The tag of a full userdata value (`ctb(LUA_VUSERDATA)`).
    const FULL_USERDATA_TAG: u8 = 0x47;
    /// `Udata0` (a userdata without user values, as a reference's [`Key`] is): the block
    /// starts 32 bytes in.
    const USERDATA0_BLOCK: usize = 32;
    /// A reference's key object: its header and the `Key`.
    pub(super) const KEY_OBJECT_SIZE: usize = USERDATA0_BLOCK + size_of::<Key>();

    /// The object in the first user value of the userdata whose header is at `header`, if it
    /// is a full userdata (a component reference's [`Key`]).
    pub(super) fn user_value_userdata(header: usize) -> Option<usize> {
        // SAFETY: `header` is the `Udata` of a live userdata with one user value (as mlua makes
        // them), which the caller holds.
        unsafe {
            let tag = ((header + USERDATA_USER_VALUE_TAG) as *const u8).read();
            (tag == FULL_USERDATA_TAG)
                .then(|| ((header + USERDATA_USER_VALUE) as *const usize).read())
        }
    }

    use crate::vm::layout::word;

    /// The table's array part and hash part.
    pub(super) fn table_parts(table: &Table) -> [(usize, usize); 2] {
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
                (array, array_size as usize * VALUE_SIZE),
                (node, node_size * NODE_SIZE),
            ]
        }
    }

    /// The first upvalue object of a Lua function (`_ENV` for script functions).
    pub(super) fn first_upvalue(function: &Function) -> Option<usize> {
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
    pub(super) fn verified(lua: &Lua) -> bool {
        let check = || -> mlua::Result<bool> {
            if lua.load("return _VERSION").eval::<String>()? != "Lua 5.4" {
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
            if !holds_answer(values, VALUE_SIZE) || no_nodes != 0 {
                return Ok(false);
            }
            let hash: Table = lua.load("return {answer = 42}").eval()?;
            let [(no_values, _), nodes] = table_parts(&hash);
            if !holds_answer(nodes, NODE_SIZE) || no_values != 0 {
                return Ok(false);
            }
            let four: Table = lua.load("return {a = 1, b = 2, c = 3, 4, 5}").eval()?;
            if table_parts(&four).map(|(_, size)| size) != [2 * VALUE_SIZE, 4 * NODE_SIZE] {
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
                    ((header + 10) as *const u16).read(),
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
            Ok(unsafe { ((key + USERDATA0_BLOCK) as *const u64).read() } == 4242)
        };
        check().unwrap_or(false)
    }

    #[cfg(test)]
    mod tests {
        use mlua::Lua;

        /// The offsets above match the vendored Lua.
        #[test]
        fn the_layout_matches_the_vendored_lua() {
            assert!(super::verified(&Lua::new()));
            assert!(super::super::check_layout(&Lua::new()), "prefetching on");
        }

        /// An instance's objects are collected as the cache lines they lie on, each once: the
        /// closure's, its `_ENV` upvalue's, the environment's (object and hash part), the
        /// handle's (object and array part), the cached reference's header and its key.
        #[test]
        fn the_lines_of_an_instances_objects_are_collected() {
            use mlua::{Function, Table};

            use super::super::{HotObjects, LINE};
            let lua = Lua::new();
            assert!(super::super::check_layout(&lua));
            let env = lua.create_table().unwrap();
            let handle: Table = lua.load("return {0, false, false}").eval().unwrap();
            let reference = lua.create_any_userdata(7u64).unwrap();
            crate::userdata::set_key(&lua, &reference, 9).unwrap();
            handle.raw_set(3, &reference).unwrap();
            env.raw_set("entity", &handle).unwrap();
            env.raw_set("speed", 2).unwrap();
            let on_update: Function = lua
                .load("return function(dt) return entity, speed end")
                .set_environment(env.clone())
                .eval()
                .unwrap();
            let hot = HotObjects::collect(Some(&on_update), &env);
            let lines = &hot.lines[..usize::from(hot.len)];
            for (i, line) in lines.iter().enumerate() {
                assert_eq!(line % LINE, 0, "{line:#x} is a line's start");
                assert!(!lines[..i].contains(line), "{line:#x} once");
            }
            let header = super::userdata_header(reference.to_pointer() as usize);
            let key = super::user_value_userdata(header).expect("the reference's key");
            let [(_, _), (env_nodes, _)] = super::table_parts(&env);
            let [(handle_values, _), (_, _)] = super::table_parts(&handle);
            let objects = [
                on_update.to_pointer() as usize,
                super::first_upvalue(&on_update).unwrap(),
                env.to_pointer() as usize,
                env_nodes,
                handle.to_pointer() as usize,
                handle_values,
                handle_values + 2 * super::VALUE_SIZE,
                header,
                header + super::USERDATA_USER_VALUE,
                key,
                key + super::KEY_OBJECT_SIZE - 1,
            ];
            for object in objects {
                assert!(
                    lines.contains(&(object & !(LINE - 1))),
                    "the line of {object:#x} is among {lines:x?}"
                );
            }
        }
    }
}

#[cfg(not(all(feature = "lua54", target_arch = "x86_64")))]
mod layout {
    use mlua::{Function, Lua, Table};

    /// No layout to check: only the objects themselves are fetched.
    pub(super) fn verified(_lua: &Lua) -> bool {
        true
    }

    pub(super) fn table_parts(_table: &Table) -> [(usize, usize); 0] {
        []
    }

    pub(super) const TABLE_SIZE: usize = 1;
    pub(super) const CLOSURE_SIZE: usize = 1;
    pub(super) const UPVALUE_SIZE: usize = 1;
    pub(super) const USERDATA_HEADER_SIZE: usize = 1;

    pub(super) fn first_upvalue(_function: &Function) -> Option<usize> {
        None
    }

    pub(super) fn userdata_header(block: usize) -> usize {
        block
    }

    pub(super) const KEY_OBJECT_SIZE: usize = 1;

    pub(super) fn user_value_userdata(_header: usize) -> Option<usize> {
        None
    }
}
