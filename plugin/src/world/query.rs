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
//! handles are listed in one C pass (`handle_list`).

use bevy::ecs::component::ComponentId;
use bevy::ecs::entity::Entity;
use bevy::ecs::query::QueryBuilder;
use mlua::{
    AnyUserData, Function, Lua, LuaString, MetaMethod, UserData, UserDataMethods, Value, Variadic,
};

use crate::vm::budget::{charge, cost};
use crate::world::handle::{EntityHandle, handle_list, reference_cache, reference_slots};
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
            let (last_run, this_run) = (world.last_change_tick(), world.read_change_tick());
            let found: Vec<Entity> = state.iter(world).collect();
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

/// `:each()` in Lua: the entities as handles, each with its references as `entity:get` gives
/// them. The references cached in a handle are looked at here directly (as `entity:get` does:
/// the component's slot, and the removal generation), so that a script walking the same
/// entities every frame makes no call per entity but the loop's own.
const EACH: &str = r#"
local find, generation, get = ...
local unpack = table.unpack or unpack
return function(query)
    local list, names, slots = find(query)
    local n, i = #names, 0
    local first, second = names[1], names[2]
    local s1, s2 = slots[1], slots[2]
    return function()
        i = i + 1
        local e = list[i]
        if e == nil then return nil end
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
            each_function(lua)?.call::<Function>(query)
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

/// The `:each()` function, made once per Lua state.
fn each_function(lua: &Lua) -> mlua::Result<Function> {
    const KEY: &str = "bevy_lunar.query_each";
    if let Some(each) = lua.named_registry_value::<Option<Function>>(KEY)? {
        return Ok(each);
    }
    let find = lua.create_function(|lua, query: AnyUserData| {
        let (entities, names) = {
            let this = query.borrow::<LuaQuery>()?;
            (this.find()?, this.names.clone())
        };
        let slots = reference_slots(lua, &names)?;
        Ok((handle_list(lua, &entities)?, names, slots))
    })?;
    let (generation, get) = reference_cache(lua)?;
    let each: Function = lua
        .load(EACH)
        .set_name("=[bevy_lunar query:each]")
        .call((find, generation, get))?;
    lua.set_named_registry_value(KEY, &each)?;
    Ok(each)
}
