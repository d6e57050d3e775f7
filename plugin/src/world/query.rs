//! `world.query(...)`: the entities having components, with filters, as a script walks them.
//!
//! ```lua
//! for e in world.query("Enemy") do ... end                      -- entities
//! for e, t, v in world.query("Transform", "Velocity"):each() do -- entities and references
//!     t.translation.x = t.translation.x + v.x * dt
//! end
//! for e in world.query("Enemy"):without("Dead"):changed("Health") do ... end
//! ```
//!
//! A query is built by chaining filters (`with`, `without`, `changed`, `added`) and finds its
//! entities when iteration starts, as of then. `changed` and `added` are relative to the
//! scripts' previous run: a change made by a Bevy system since then, or by a script earlier in
//! this run, counts. `:each()` hands out the references `entity:get` would (reading those cached
//! in the handles itself, and asking `entity:get` only on a miss), so a script walking the same
//! entities every frame reuses its handles and references and makes no call per entity; the
//! handles are listed in one C pass (`handle_list`), and the list is used again while a walk
//! finds the same entities (`recent_handle_list`). On Lua 5.4 each step also keeps the address
//! of each reference's component as it hands the reference out (`kept::WalkColumn`: the walk
//! goes table by table, so the column found for one entity serves the next ones), which the
//! first access would otherwise look up.

use bevy::ecs::archetype::ArchetypeEntity;
use bevy::ecs::component::ComponentId;
use bevy::ecs::entity::Entity;
use bevy::ecs::query::QueryBuilder;
use mlua::{
    AnyUserData, Lua, LuaString, MetaMethod, Table, UserData, UserDataMethods, Value, Variadic,
};

use crate::vm::budget::{charge, cost};
use crate::world::handle::{EntityHandle, handle_list, reference_slots};
use crate::world::registry::{ComponentEntry, component_entry};
use crate::world::with_world;

/// A query a script built (see the module docs).
pub(crate) struct LuaQuery {
    /// The components `:each()` hands out, in order; every entity has them.
    names: Vec<&'static str>,
    with: Vec<ComponentEntry>,
    without: Vec<ComponentEntry>,
    changed: Vec<ComponentEntry>,
    added: Vec<ComponentEntry>,
    /// `for e in query do`: the entities found when the loop started, and the next one.
    cursor: Option<(Vec<Entity>, usize)>,
}

fn entries(
    lua: &Lua,
    names: &Variadic<LuaString>,
) -> mlua::Result<Vec<(&'static str, ComponentEntry)>> {
    names
        .iter()
        .map(|name| component_entry(lua, &name.to_str()?))
        .collect()
}

impl LuaQuery {
    /// `world.query(names...)`.
    pub(crate) fn new(lua: &Lua, names: Variadic<LuaString>) -> mlua::Result<Self> {
        let found = entries(lua, &names)?;
        Ok(LuaQuery {
            names: found.iter().map(|(name, _)| *name).collect(),
            with: found.into_iter().map(|(_, entry)| entry).collect(),
            without: Vec::new(),
            changed: Vec::new(),
            added: Vec::new(),
            cursor: None,
        })
    }

    /// The entities matching now.
    fn find(&self) -> mlua::Result<Vec<Entity>> {
        charge(cost::QUERY)?;
        let ids = |world: &mut bevy::ecs::world::World, entries: &[ComponentEntry]| {
            entries
                .iter()
                .filter_map(|entry| entry.component_id(world))
                .collect::<Vec<ComponentId>>()
        };
        let entities = with_world(|world| {
            let with = ids(world, &self.with);
            let without = ids(world, &self.without);
            let changed = ids(world, &self.changed);
            let added = ids(world, &self.added);
            let mut builder = QueryBuilder::<Entity>::new(world);
            for id in with.iter().chain(&changed).chain(&added) {
                builder.with_id(*id);
            }
            for id in &without {
                builder.without_id(*id);
            }
            let mut state = builder.build();
            state.update_archetypes(world);
            let (last_run, this_run) = (world.last_change_tick(), world.read_change_tick());
            // Copied archetype by archetype (a few instructions an entity, where the query's
            // own iterator takes about thirty), in the order of their rows.
            let archetypes = world.archetypes();
            let mut found: Vec<Entity> = Vec::new();
            for archetype in state
                .matched_archetypes()
                .filter_map(|id| archetypes.get(id))
            {
                found.extend(archetype.entities().iter().map(ArchetypeEntity::id));
            }
            if changed.is_empty() && added.is_empty() {
                return found;
            }
            found
                .into_iter()
                .filter(|entity| {
                    let e = world.entity(*entity);
                    let ticks = |id: &ComponentId| e.get_change_ticks_by_id(*id);
                    changed
                        .iter()
                        .all(|id| ticks(id).is_some_and(|t| t.is_changed(last_run, this_run)))
                        && added
                            .iter()
                            .all(|id| ticks(id).is_some_and(|t| t.is_added(last_run, this_run)))
                })
                .collect()
        })?;
        charge(cost::QUERY_ENTITY * entities.len() as u64)?;
        Ok(entities)
    }
}

/// Adds the filter `pick` chooses for the components `names` to the query; the query again.
fn filter(
    lua: &Lua,
    query: AnyUserData,
    names: Variadic<LuaString>,
    pick: fn(&mut LuaQuery) -> &mut Vec<ComponentEntry>,
) -> mlua::Result<AnyUserData> {
    let found = entries(lua, &names)?;
    {
        let mut this = query.borrow_mut::<LuaQuery>()?;
        pick(&mut this).extend(found.into_iter().map(|(_, entry)| entry));
    }
    Ok(query)
}

impl UserData for LuaQuery {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_function(
            "with",
            |lua, (q, names): (AnyUserData, Variadic<LuaString>)| {
                filter(lua, q, names, |q| &mut q.with)
            },
        );
        methods.add_function(
            "without",
            |lua, (q, names): (AnyUserData, Variadic<LuaString>)| {
                filter(lua, q, names, |q| &mut q.without)
            },
        );
        methods.add_function(
            "changed",
            |lua, (q, names): (AnyUserData, Variadic<LuaString>)| {
                filter(lua, q, names, |q| &mut q.changed)
            },
        );
        methods.add_function(
            "added",
            |lua, (q, names): (AnyUserData, Variadic<LuaString>)| {
                filter(lua, q, names, |q| &mut q.added)
            },
        );
        methods.add_function("each", |lua, query: AnyUserData| {
            let (entities, names, columns) = {
                let this = query.borrow::<LuaQuery>()?;
                // The first entries of `with` are those of the names (filters come after).
                let columns = this
                    .with
                    .iter()
                    .take(this.names.len())
                    .map(ComponentEntry::walk_column)
                    .collect::<Vec<_>>();
                (this.find()?, this.names.clone(), columns)
            };
            let slots = reference_slots(lua, &names)?;
            let list = recent_handle_list(lua, entities)?;
            each_iterator(lua, list, &names, &slots, &columns)
        });
        // `for e in world.query(...) do`: the query is its own iterator.
        methods.add_meta_method_mut(MetaMethod::Call, |_, this, _: Variadic<Value>| {
            if this.cursor.is_none() {
                this.cursor = Some((this.find()?, 0));
            }
            let Some((entities, next)) = &mut this.cursor else {
                return Ok(None);
            };
            match entities.get(*next) {
                Some(entity) => {
                    *next += 1;
                    charge(cost::QUERY_ENTITY)?;
                    Ok(Some(EntityHandle::new(*entity)))
                }
                None => {
                    this.cursor = None;
                    Ok(None)
                }
            }
        });
    }
}

/// The handle lists of the last few `:each()` walks, with their entities (the latest last).
#[derive(Default)]
struct RecentLists(Vec<(Vec<Entity>, Table)>);

const RECENT_LISTS: usize = 4;

/// The list of the handles of `entities`: the one made for the same entities by one of the
/// last few walks, if any (a script walking the same entities every frame gets last frame's
/// list again: comparing the entities costs a fraction of making the list, about 170
/// instructions per entity), else a new one. Lists are only read (by the iterators).
fn recent_handle_list(lua: &Lua, entities: Vec<Entity>) -> mlua::Result<Table> {
    if let Some(recent) = lua.app_data_ref::<RecentLists>()
        && let Some((_, list)) = recent.0.iter().find(|(seen, _)| *seen == entities)
    {
        return Ok(list.clone());
    }
    let list = handle_list(lua, &entities)?;
    if lua.app_data_ref::<RecentLists>().is_none() {
        lua.set_app_data(RecentLists::default());
    }
    if let Some(mut recent) = lua.app_data_mut::<RecentLists>() {
        if recent.0.len() == RECENT_LISTS {
            recent.0.remove(0);
        }
        recent.0.push((entities, list.clone()));
    }
    Ok(list)
}

#[cfg(not(feature = "lua54"))]
use each_lua::each_iterator;
#[cfg(feature = "lua54")]
use each_lua54::each_iterator;

/// The `:each()` iterator over the handles in `list`: each step returns the next handle and its
/// references to the components `names` as `entity:get` gives them. The references cached in
/// the handle (in `slots`) are returned as they are if the handle's removal generation is
/// current (as `entity:get` checks); otherwise `entity:get` is asked for each.
///
/// Lua 5.4: a C function (a Lua one costs a call frame and about twenty VM instructions per
/// entity, most of a walk's own cost).
#[cfg(feature = "lua54")]
mod each_lua54 {
    use std::ffi::c_int;

    use mlua::{Function, Lua, Table, ffi};

    use crate::userdata::key_of;
    use crate::vm::layout::{self, tag};
    use crate::world::handle::{GENERATION_SLOT, reference_cache};
    use crate::world::kept::WalkColumn;

    /// The iterator's upvalues by number (as the layout reads them): the handles, the cursor
    /// (`[next index - 1, n, slot 1..n]`, then a [`WalkColumn`] per component, in a
    /// userdata), the names (a table), the removal
    /// generation's table, `entity:get`; and their pseudo-indices, for the C API.
    const LIST_NUMBER: usize = 1;
    const CURSOR_NUMBER: usize = 2;
    const NAMES_NUMBER: usize = 3;
    const GENERATION_NUMBER: usize = 4;
    const GET_NUMBER: usize = 5;
    const LIST: c_int = ffi::lua_upvalueindex(LIST_NUMBER as c_int);
    const CURSOR: c_int = ffi::lua_upvalueindex(CURSOR_NUMBER as c_int);
    const NAMES: c_int = ffi::lua_upvalueindex(NAMES_NUMBER as c_int);
    const GENERATION: c_int = ffi::lua_upvalueindex(GENERATION_NUMBER as c_int);
    const GET: c_int = ffi::lua_upvalueindex(GET_NUMBER as c_int);

    pub(crate) fn each_iterator(
        lua: &Lua,
        list: Table,
        names: &[&'static str],
        slots: &[i64],
        columns: &[WalkColumn],
    ) -> mlua::Result<Function> {
        let (generation, get) = reference_cache(lua)?;
        let mut cursor = vec![0, slots.len() as i64];
        cursor.extend_from_slice(slots);
        let names = lua.create_sequence_from(names.iter().copied())?;
        let integers = size_of_val(cursor.as_slice());
        // SAFETY: `exec_raw` pushed the list, names, generation table and `get`; the cursor
        // userdata is sized for `cursor` then `columns` (8-byte aligned, as Lua aligns a
        // userdata's block to its maximum alignment, and `integers` is a multiple of 8), holds
        // plain integers and copies of plain structs, and is written before anything can see
        // it; it is moved into second place, and the closure takes the five values as upvalues
        // in the order the constants above name. A memory error leaves through Lua's
        // `longjmp`, with nothing alive here to drop (`cursor` and `columns` are borrowed, and
        // dropped by the caller of `exec_raw`).
        unsafe {
            lua.exec_raw::<Function>((list, names, generation, get), |state| {
                let memory =
                    ffi::lua_newuserdatauv(state, integers + size_of_val(columns), 0).cast::<u8>();
                std::ptr::copy_nonoverlapping(cursor.as_ptr(), memory.cast::<i64>(), cursor.len());
                std::ptr::copy_nonoverlapping(
                    columns.as_ptr(),
                    memory.add(integers).cast::<WalkColumn>(),
                    columns.len(),
                );
                ffi::lua_insert(state, -4);
                ffi::lua_pushcclosure(state, each_step, GET_NUMBER as c_int);
            })
        }
    }

    /// One step of the walk: the next handle and its references, or nil at the end (and at
    /// every call after it).
    unsafe extern "C-unwind" fn each_step(state: *mut ffi::lua_State) -> c_int {
        // SAFETY: made by `each_iterator` with its upvalues, and called by Lua.
        if let Some(results) = unsafe { lean_step(state) } {
            return results;
        }
        // SAFETY: made by `each_iterator` with its upvalues; the cursor holds `2 + n` integers.
        // `entity:get` may raise an error, which leaves through Lua's `longjmp`: nothing alive
        // here needs dropping (integers and raw pointers).
        unsafe {
            let cursor = ffi::lua_touserdata(state, CURSOR).cast::<i64>();
            let count = *cursor.add(1);
            let n = c_int::try_from(count).unwrap_or(c_int::MAX);
            ffi::lua_settop(state, 0);
            if ffi::lua_checkstack(state, n.saturating_add(4)) == 0 {
                ffi::lua_pushstring(state, c"query:each(): too many components".as_ptr());
                ffi::lua_error(state);
            }
            let next = *cursor + 1;
            if ffi::lua_rawgeti(state, LIST, next) == ffi::LUA_TNIL {
                return 1;
            }
            *cursor = next;
            ffi::lua_rawgeti(state, 1, GENERATION_SLOT);
            ffi::lua_rawgeti(state, GENERATION, 1);
            let mut cached = ffi::lua_rawequal(state, 2, 3) != 0;
            ffi::lua_settop(state, 1);
            for k in 0..count {
                if !cached {
                    break;
                }
                cached = ffi::lua_rawgeti(state, 1, *cursor.add(2 + k as usize)) != ffi::LUA_TNIL;
            }
            if !cached {
                ffi::lua_settop(state, 1);
                for k in 1..=count {
                    ffi::lua_pushvalue(state, GET);
                    ffi::lua_pushvalue(state, 1);
                    ffi::lua_rawgeti(state, NAMES, k);
                    ffi::lua_call(state, 2, 1);
                }
            }
            n + 1
        }
    }

    /// The step of [`each_step`] in the common case, with the cursor, the list, the handle and
    /// the removal generations read through Lua's layout (`vm/layout.rs`) instead of a dozen
    /// API calls: the next handle and its cached references, if the handle's generation is
    /// current and it has them all (copied to the stack as they are when all lie in the tables'
    /// array parts, else pushed with `lua_rawgeti`). `None`, with the stack and the cursor as
    /// they were, leaves the step to the full path (the end of the list, a reference to get,
    /// the layout check failed).
    ///
    /// SAFETY: a call of `each_step`'s closure, made by Lua: it may push `LUA_MINSTACK` (20)
    /// values, and its function slot is the closure (`each_iterator`'s upvalues). Nothing here
    /// raises an error.
    unsafe fn lean_step(state: *mut ffi::lua_State) -> Option<c_int> {
        /// At most this many references are pushed here (besides the handle, and the
        /// iterator's two arguments).
        const MOST: i64 = 16;
        if !layout::checked() {
            return None;
        }
        // SAFETY: per the caller: the cursor upvalue is a userdata of `2 + n` integers and the
        // generation upvalue a table; each object is read through only after its tag checked
        // out, and the stack is restored before every `None`.
        unsafe {
            let frame = layout::call_frame(state);
            let closure = frame.first()?.payload;
            // `lua_gettop`: the frame's slots past the function's own.
            let base = frame.len() as c_int - 1;
            let (cursor, _) =
                layout::userdata0_block(layout::c_closure_upvalue(closure, CURSOR_NUMBER).payload)?;
            let cursor = cursor.cast::<i64>();
            let count = *cursor.add(1);
            let generation = layout::c_closure_upvalue(closure, GENERATION_NUMBER);
            let current = layout::array_item(generation.payload, 1)?;
            if !(0..=MOST).contains(&count) || current.tag != tag::INTEGER {
                return None;
            }
            let next = *cursor + 1;
            // All in the tables' array parts (as a handle's references are while few component
            // types are in use): copied to the stack as they are found.
            let list = layout::c_closure_upvalue(closure, LIST_NUMBER);
            if let Some(handle) = layout::array_item(list.payload, next)
                && handle.tag == tag::TABLE
                && layout::array_item(handle.payload, GENERATION_SLOT)
                    .is_some_and(|seen| seen.tag == tag::INTEGER && seen.payload == current.payload)
            {
                layout::push(state, handle);
                let columns = cursor.add(2 + count as usize).cast::<WalkColumn>();
                let mut copied = true;
                for k in 0..count as usize {
                    match layout::array_item(handle.payload, *cursor.add(2 + k)) {
                        Some(reference) if !layout::is_nil(reference.tag) => {
                            layout::push(state, reference);
                            if let Some(key) = key_of(reference) {
                                (*columns.add(k)).keep(key);
                            }
                        }
                        _ => {
                            copied = false;
                            break;
                        }
                    }
                }
                if copied {
                    *cursor = next;
                    return Some(count as c_int + 1);
                }
                ffi::lua_settop(state, base);
            }
            let found = ffi::lua_rawgeti(state, LIST, next) == ffi::LUA_TTABLE
                && layout::call_frame(state).last().is_some_and(|handle| {
                    layout::array_item(handle.payload, GENERATION_SLOT).is_some_and(|seen| {
                        seen.tag == tag::INTEGER && seen.payload == current.payload
                    })
                })
                && (0..count).all(|k| {
                    ffi::lua_rawgeti(state, base + 1, *cursor.add(2 + k as usize)) != ffi::LUA_TNIL
                });
            if !found {
                ffi::lua_settop(state, base);
                return None;
            }
            *cursor = next;
            Some(count as c_int + 1)
        }
    }
}

/// Other Lua versions: the same walk in Lua.
#[cfg(not(feature = "lua54"))]
mod each_lua {
    use mlua::{Function, Lua, Table};

    use crate::world::handle::reference_cache;
    use crate::world::kept::WalkColumn;

    const EACH: &str = r#"
local generation, get = ...
local unpack = table.unpack or unpack
return function(list, names, slots)
    local n, i = #names, 0
    local first, second = names[1], names[2]
    local s1, s2 = slots[1], slots[2]
    return function()
        i = i + 1
        local e = list[i]
        if e == nil then
            i = i - 1
            return nil
        end
        if n == 1 then
            local a = e[s1]
            if a == nil or e[1] ~= generation[1] then a = get(e, first) end
            return e, a
        end
        if n == 2 then
            local a, b = e[s1], e[s2]
            if a == nil or b == nil or e[1] ~= generation[1] then
                a = get(e, first)
                b = get(e, second)
            end
            return e, a, b
        end
        local refs = {}
        for k = 1, n do refs[k] = get(e, names[k]) end
        return e, unpack(refs, 1, n)
    end
end
"#;

    pub(crate) fn each_iterator(
        lua: &Lua,
        list: Table,
        names: &[&'static str],
        slots: &[i64],
        _columns: &[WalkColumn],
    ) -> mlua::Result<Function> {
        const KEY: &str = "bevy_lunar.query_each";
        let each = match lua.named_registry_value::<Option<Function>>(KEY)? {
            Some(each) => each,
            None => {
                let each: Function = lua
                    .load(EACH)
                    .set_name("=[bevy_lunar query:each]")
                    .call(reference_cache(lua)?)?;
                lua.set_named_registry_value(KEY, &each)?;
                each
            }
        };
        each.call((list, names.to_vec(), slots.to_vec()))
    }
}
