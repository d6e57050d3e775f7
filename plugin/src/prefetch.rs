//! Fetching the next instance's Lua objects into the cache while the current one runs.
//!
//! At 10,000 instances the objects one `on_update` touches no longer fit in the CPU's L2 cache:
//! its closure, the closure's `_ENV` upvalue, the environment table and its hash part, the
//! entity handle and its array part, the component reference. Each is found through the one
//! before, so their cache misses add up one after the other. The runtime knows where they are
//! (collected here every few hundred frames) and, while one instance runs, asks the CPU to
//! fetch the next one's. A prefetch is only a hint: an address that went stale (the script
//! rebound `entity`, a table grew) costs a wasted fetch, never a wrong result, and nothing
//! here reads through an address after collecting it.

use mlua::{Function, Table, Value};

/// How many frames the collected addresses are used before they are collected again.
const REFRESH_FRAMES: u8 = 255;

/// Addresses of the objects an instance's `on_update` touches.
#[derive(Default)]
pub(crate) struct HotObjects {
    addresses: [usize; 10],
    len: u8,
    /// Frames until the next collection; 0: collect after this frame's update.
    age: u8,
}

impl HotObjects {
    /// Asks the CPU to fetch the objects into its caches.
    #[inline]
    pub(crate) fn prefetch(&self) {
        for &address in &self.addresses[..usize::from(self.len)] {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: a prefetch is a hint: it never faults, whatever the address.
            unsafe {
                use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
                _mm_prefetch::<_MM_HINT_T0>(address as *const i8);
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = address;
        }
    }

    /// Whether the addresses are due to be collected again (counts the frame).
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
        if let Some(on_update) = on_update {
            hot.push(on_update.to_pointer() as usize);
            if let Some(upvalue) = layout::first_upvalue(on_update) {
                hot.push(upvalue);
            }
        }
        hot.push_table(env);
        if let Ok(Value::Table(handle)) = env.raw_get::<Value>("entity") {
            hot.push_table(&handle);
            // The references `entity:get` cached in the handle (see `handle.rs`); their slots
            // need not be consecutive.
            for (_, value) in handle.pairs::<Value, Value>().flatten() {
                if let Value::UserData(reference) = value {
                    hot.push(layout::userdata_header(reference.to_pointer() as usize));
                }
            }
        }
        hot
    }

    fn push_table(&mut self, table: &Table) {
        self.push(table.to_pointer() as usize);
        for part in layout::table_parts(table) {
            self.push(part);
        }
    }

    fn push(&mut self, address: usize) {
        if let Some(slot) = self.addresses.get_mut(usize::from(self.len)) {
            *slot = address;
            self.len += 1;
        }
    }
}

/// Where Lua 5.4 keeps the parts of its objects (`lobject.h`), read once at collection while
/// the object is alive and held. Other Lua versions: the objects themselves only.
#[cfg(feature = "lua54")]
mod layout {
    use std::ffi::c_void;

    use mlua::{Function, Table};

    /// `Table`: `array` at 16, `node` at 24, in a 56-byte object.
    const TABLE_ARRAY: usize = 16;
    const TABLE_NODE: usize = 24;
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

    /// SAFETY: `object` is a live Lua object at least `offset + 8` bytes long.
    unsafe fn word(object: *const c_void, offset: usize) -> usize {
        // SAFETY: per the caller.
        unsafe {
            object
                .cast::<u8>()
                .add(offset)
                .cast::<usize>()
                .read_unaligned()
        }
    }

    /// The table's array part and hash part.
    pub(super) fn table_parts(table: &Table) -> [usize; 2] {
        let object = table.to_pointer();
        // SAFETY: `to_pointer` of a table held by `table` is its live `Table` object.
        unsafe { [word(object, TABLE_ARRAY), word(object, TABLE_NODE)] }
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

    #[cfg(test)]
    mod tests {
        use mlua::{Function, Lua, Table};

        use super::*;

        /// The offsets above match the vendored Lua: each address leads to the value it
        /// should hold.
        #[test]
        fn the_layout_matches_the_vendored_lua() {
            let lua = Lua::new();
            let array: Table = lua.load("return {42}").eval().unwrap();
            let [values, _] = table_parts(&array);
            // SAFETY: the array part of a live table; a TValue starts with its value.
            assert_eq!(unsafe { (values as *const i64).read() }, 42);

            let hash: Table = lua.load("return {answer = 42}").eval().unwrap();
            let [_, nodes] = table_parts(&hash);
            // SAFETY: the one-node hash part of a live table; a Node starts with its value.
            assert_eq!(unsafe { (nodes as *const i64).read() }, 42);

            let env = lua.create_table().unwrap();
            let f: Function = lua
                .load("return function() return answer end")
                .set_environment(env.clone())
                .eval()
                .unwrap();
            let upvalue = first_upvalue(&f).expect("_ENV");
            // SAFETY: a closed `UpVal` holds its value at 24 (`u.value`), here the table.
            let held = unsafe { ((upvalue + 24) as *const usize).read() };
            assert_eq!(held, env.to_pointer() as usize);

            let no_upvalues: Function = lua.load("return function() return 1 end").eval().unwrap();
            assert_eq!(first_upvalue(&no_upvalues), None);
            let c_function = lua.create_function(|_, ()| Ok(())).unwrap();
            assert_eq!(first_upvalue(&c_function), None);

            let userdata = lua.create_any_userdata(7u64).unwrap();
            let header = userdata_header(userdata.to_pointer() as usize);
            // SAFETY: a live `Udata` header: `nuvalue` at 10, the metatable at 24.
            let (user_values, metatable) = unsafe {
                (
                    ((header + 10) as *const u16).read(),
                    ((header + 24) as *const usize).read(),
                )
            };
            assert_eq!(user_values, 1);
            assert_ne!(metatable, 0, "mlua gives every userdata a metatable");
        }
    }
}

#[cfg(not(feature = "lua54"))]
mod layout {
    use mlua::{Function, Table};

    pub(super) fn table_parts(_table: &Table) -> [usize; 0] {
        []
    }

    pub(super) fn first_upvalue(_function: &Function) -> Option<usize> {
        None
    }

    pub(super) fn userdata_header(block: usize) -> usize {
        block
    }
}
