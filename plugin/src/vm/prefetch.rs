//! Fetching instances' Lua objects into the cache shortly before they run.
//!
//! At 10,000 instances the objects one `on_update` touches no longer fit in the CPU's L2 cache:
//! its closure, the closure's `_ENV` upvalue, the environment table and its hash part, the
//! entity handle and its array part, the component reference and its key (`userdata/fast/`:
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
//! The parts of objects are found by reading Lua 5.4's private struct layout (`vm/layout.rs`,
//! which a new Lua state checks once: on any mismatch prefetching stays off). Other Lua versions
//! fetch only the objects themselves, and targets other than x86-64 nothing.

use mlua::{Function, Table, Value};

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
        if !layout::checked() {
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

/// Where Lua 5.4 keeps the parts of its objects (`vm/layout.rs`); other Lua versions and
/// targets: the objects themselves only.
#[cfg(feature = "lua54")]
use crate::vm::layout;

#[cfg(not(feature = "lua54"))]
mod layout {
    use mlua::{Function, Table};

    /// No layout to check: only the objects themselves are fetched.
    pub(super) fn checked() -> bool {
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

#[cfg(all(test, feature = "lua54"))]
mod tests {
    use mlua::Lua;

    /// An instance's objects are collected as the cache lines they lie on, each once: the
    /// closure's, its `_ENV` upvalue's, the environment's (object and hash part), the
    /// handle's (object and array part), the cached reference's header and its key.
    #[test]
    fn the_lines_of_an_instances_objects_are_collected() {
        use mlua::{Function, Table};

        use super::{HotObjects, LINE, layout};
        let lua = Lua::new();
        assert!(layout::check(&lua));
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
        let header = layout::userdata_header(reference.to_pointer() as usize);
        let key = layout::user_value_userdata(header).expect("the reference's key");
        let [(_, _), (env_nodes, _)] = layout::table_parts(&env);
        let [(handle_values, _), (_, _)] = layout::table_parts(&handle);
        let objects = [
            on_update.to_pointer() as usize,
            layout::first_upvalue(&on_update).unwrap(),
            env.to_pointer() as usize,
            env_nodes,
            handle.to_pointer() as usize,
            handle_values,
            handle_values + 2 * layout::SLOT,
            header,
            header + layout::USERDATA_USER_VALUE,
            key,
            key + layout::KEY_OBJECT_SIZE - 1,
        ];
        for object in objects {
            assert!(
                lines.contains(&(object & !(LINE - 1))),
                "the line of {object:#x} is among {lines:x?}"
            );
        }
    }
}
