//! What scripts hold of the world: entity handles, live component and resource references, and
//! the `world` table.

use std::cell::Cell;

use bevy::ecs::entity::{Entity, EntityGeneration, EntityIndex};
use bevy::ecs::world::World;
use std::borrow::Cow;

use mlua::{
    AnyUserData, AppDataRef, FromLua, Function, IntoLua, Lua, LuaString, Table, Value, Variadic,
    ffi,
};

use crate::userdata::collection::LuaKey;
use crate::userdata::{ConvertError, LuaConvert, script_error};
use crate::vm::budget::{charge, cost};
use crate::world::place::stale_despawned;
use crate::world::query::LuaQuery;
use crate::world::registry::{
    ComponentEntry, component_entries, component_entry, event_triggers, message_entries,
    resource_entry,
};
use crate::world::{with_world, with_world_ref};

/// A script's handle to an entity (`entity`, `world.spawn()`, `world.query(...)`).
///
/// In Lua a handle is a small table, one per entity (so `==` is identity), with a shared
/// read-only metatable: its array slots hold the entity and the live references `entity:get`
/// handed out, so that a script's `entity:get("Player")` every frame finds its reference in
/// the handle itself, with no lookup elsewhere and no call into Rust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntityHandle {
    entity: Entity,
}

impl EntityHandle {
    pub fn new(entity: Entity) -> Self {
        EntityHandle { entity }
    }

    pub fn entity(&self) -> Entity {
        self.entity
    }
}

/// Slots of a handle table: the removal generation its references belong to, the entity, then
/// one slot per component name (numbered by [`Handles::slots`]).
pub(crate) const GENERATION_SLOT: i64 = 1;
const ENTITY_SLOT: i64 = 2;
const FIRST_REFERENCE_SLOT: i64 = 3;

/// The Lua side of entity handles, kept in the Lua state's app data.
pub(crate) struct Handles {
    metatable: Table,
    /// Handles by entity bits: one handle per entity, kept (with the references cached in it)
    /// while the entity lives, so that a script walking a query every frame finds its handles
    /// and references again; [`sweep_handles`] drops those of despawned entities.
    interned: Table,
    /// How many handles `interned` holds.
    count: Cell<usize>,
    /// The sweep over `interned` (see [`SWEEP`]).
    sweep: Function,
    /// `[1]`: the removal generation, bumped whenever a registered component is removed; cached
    /// references of an older generation are checked again. A table: `entity:get` reads it.
    generation: Table,
    /// Component name -> reference slot.
    slots: Table,
    /// `entity:get` ([`GET`]).
    get: Function,
    /// The slot the next component name gets.
    next_slot: Cell<i64>,
}

impl Handles {
    /// The reference slot of the component `name`, given on first use.
    fn slot(&self, name: &'static str) -> mlua::Result<i64> {
        if let Some(slot) = self.slots.raw_get::<Option<i64>>(name)? {
            return Ok(slot);
        }
        let slot = self.next_slot.get();
        self.slots.raw_set(name, slot)?;
        self.next_slot.set(slot + 1);
        Ok(slot)
    }
}

/// A component was removed somewhere: `entity:get` checks its cached references again (a
/// cached reference would make it return the reference instead of nil).
pub(crate) fn forget_references(lua: &Lua) -> mlua::Result<()> {
    match lua.app_data_ref::<Handles>() {
        Some(handles) => {
            let generation: i64 = handles.generation.raw_get(1)?;
            handles.generation.raw_set(1, generation + 1)
        }
        None => Ok(()),
    }
}

/// The Lua side of entity handles, or the error of a Lua state without it.
fn handles(lua: &Lua) -> mlua::Result<AppDataRef<'_, Handles>> {
    lua.app_data_ref::<Handles>()
        .ok_or_else(|| script_error("entity handles exist only in bevy_lunar's Lua state"))
}

impl IntoLua for EntityHandle {
    fn into_lua(self, lua: &Lua) -> mlua::Result<Value> {
        let handles = handles(lua)?;
        let bits = self.entity.to_bits() as i64;
        if let Some(handle) = handles.interned.raw_get::<Option<Table>>(bits)? {
            return Ok(Value::Table(handle));
        }
        let handle = lua.create_table_with_capacity(4, 0)?;
        handle.raw_set(GENERATION_SLOT, -1)?;
        handle.raw_set(ENTITY_SLOT, bits)?;
        handle.set_metatable(Some(handles.metatable.clone()))?;
        handles.interned.raw_set(bits, &handle)?;
        handles.count.set(handles.count.get() + 1);
        Ok(Value::Table(handle))
    }
}

impl FromLua for EntityHandle {
    fn from_lua(value: Value, lua: &Lua) -> mlua::Result<Self> {
        if let Value::Table(table) = &value
            && let Some(handle) = EntityHandle::of(lua, table)?
        {
            return Ok(handle);
        }
        Err(mlua::Error::FromLuaConversionError {
            from: value.type_name(),
            to: "Entity".into(),
            message: Some("expected an entity handle".into()),
        })
    }
}

/// `Entity` in a derived type's field, a method's parameter or result: the script's entity
/// handle.
impl LuaConvert for Entity {
    fn lua_type() -> Cow<'static, str> {
        Cow::Borrowed("Entity")
    }

    type Out = EntityHandle;

    fn to_lua(&self, _lua: &Lua) -> mlua::Result<EntityHandle> {
        Ok(EntityHandle::new(*self))
    }

    fn from_lua(value: Value, lua: &Lua) -> Result<Self, ConvertError> {
        match &value {
            Value::Table(table) => match EntityHandle::of(lua, table) {
                Ok(Some(handle)) => Ok(handle.entity),
                _ => Err(ConvertError::new("Entity", &value)),
            },
            _ => Err(ConvertError::new("Entity", &value)),
        }
    }
}

impl LuaKey for Entity {
    fn segment(&self) -> String {
        format!("[{self}]")
    }
}

/// The entity `id` names: Bevy's display form (`51v0`, what `entity:id()` returns) or the
/// entity's bits as an integer.
fn parse_entity(id: &Value) -> Option<Entity> {
    match id {
        Value::Integer(bits) => Entity::try_from_bits(*bits as u64),
        Value::String(text) => {
            let text = text.to_str().ok()?;
            let (index, generation) = text.split_once('v')?;
            let index: u32 = index.parse().ok()?;
            let generation: u32 = generation.parse().ok()?;
            let entity = Entity::from_index_and_generation(
                EntityIndex::from_raw_u32(index)?,
                EntityGeneration::from_bits(generation),
            );
            // Only what Bevy would display (no leading zeros, no signs).
            (entity.to_string() == *text).then_some(entity)
        }
        _ => None,
    }
}

impl EntityHandle {
    /// The handle `table` is, if it is one.
    pub(crate) fn of(lua: &Lua, table: &Table) -> mlua::Result<Option<Self>> {
        let is_handle = match (lua.app_data_ref::<Handles>(), table.metatable()) {
            (Some(handles), Some(metatable)) => metatable == handles.metatable,
            _ => false,
        };
        if !is_handle {
            return Ok(None);
        }
        let bits: i64 = table.raw_get(ENTITY_SLOT)?;
        Ok(Entity::try_from_bits(bits as u64).map(EntityHandle::new))
    }
}

/// `entity:get(name)` in Lua: the reference cached in the handle when the generation is
/// current, the Rust `slow_get` otherwise. Scripts call it every frame, so it stays out of Rust
/// when it can.
const GET: &str = r#"
local slots, generation, slow_get = ...
return function(self, name)
    local slot = slots[name]
    if slot then
        local reference = self[slot]
        if reference and self[1] == generation[1] then return reference end
    end
    return slow_get(self, name)
end
"#;

/// Drops the handles of despawned entities, a few each call, resuming where the last call
/// stopped: `sweep(n)` looks at `n` handles and returns how many it dropped. (Clearing the
/// entry `next` stands on is allowed during a traversal.)
const SWEEP: &str = r#"
local interned, next, alive = ...
local cursor
return function(n)
    local dropped = 0
    for _ = 1, n do
        local bits = next(interned, cursor)
        if bits == nil then
            cursor = nil
            return dropped
        end
        if not alive(bits) then
            interned[bits] = nil
            dropped = dropped + 1
        end
        cursor = bits
    end
    return dropped
end
"#;

/// Once a frame, with the world at hand: drops some handles of despawned entities, enough
/// that a game despawning many entities keeps up (32 plus 1/256 of
/// the handles each frame).
pub(crate) fn sweep_handles(lua: &Lua) -> mlua::Result<()> {
    let Some(handles) = lua.app_data_ref::<Handles>() else {
        return Ok(());
    };
    let budget = 32 + handles.count.get() / 256;
    let dropped: usize = handles.sweep.call(budget)?;
    handles
        .count
        .set(handles.count.get().saturating_sub(dropped));
    Ok(())
}

/// The handles of `entities` in a new list (`[1]` to `[n]`), made in one pass over the
/// interned handles without a call through mlua per entity (a query walking 10,000 entities
/// every frame spent about 2,000 instructions per entity here); handles not made yet are made
/// as [`EntityHandle::into_lua`] makes them.
pub(crate) fn handle_list(lua: &Lua, entities: &[Entity]) -> mlua::Result<Table> {
    let handles = handles(lua)?;
    let count = &handles.count;
    let length = i32::try_from(entities.len()).unwrap_or(i32::MAX);
    // SAFETY: `exec_raw` runs the closure as a C function whose stack holds the two arguments
    // (1: the interned handles, 2: their metatable); the closure pushes at most four values
    // beyond the list (a C function may use `LUA_MINSTACK`, 20), and leaves the list alone on
    // the stack as its one result. A memory error leaves it through Lua's `longjmp`: nothing
    // alive in it needs dropping (a slice iterator, a `&Cell`), and `count` is kept exact as
    // it goes.
    unsafe {
        lua.exec_raw::<Table>((&handles.interned, &handles.metatable), |state| {
            ffi::lua_createtable(state, length, 0);
            for (index, entity) in entities.iter().enumerate() {
                let bits = entity.to_bits() as i64;
                ffi::lua_pushinteger(state, bits);
                if ffi::lua_rawget(state, 1) != ffi::LUA_TTABLE {
                    ffi::lua_pop(state, 1);
                    ffi::lua_createtable(state, 4, 0);
                    ffi::lua_pushinteger(state, -1);
                    ffi::lua_rawseti(state, -2, GENERATION_SLOT);
                    ffi::lua_pushinteger(state, bits);
                    ffi::lua_rawseti(state, -2, ENTITY_SLOT);
                    ffi::lua_pushvalue(state, 2);
                    ffi::lua_setmetatable(state, -2);
                    ffi::lua_pushinteger(state, bits);
                    ffi::lua_pushvalue(state, -2);
                    ffi::lua_rawset(state, 1);
                    count.set(count.get() + 1);
                }
                ffi::lua_rawseti(state, 3, index as i64 + 1);
            }
            ffi::lua_replace(state, 1);
            ffi::lua_settop(state, 1);
        })
    }
}

/// The reference slots of the component names `names` in handles (see [`GET`]), given on
/// first use.
pub(crate) fn reference_slots(lua: &Lua, names: &[&'static str]) -> mlua::Result<Vec<i64>> {
    let handles = handles(lua)?;
    names.iter().map(|name| handles.slot(name)).collect()
}

/// The table whose `[1]` is the removal generation of cached references (see [`GET`]), and the
/// `entity:get` function.
pub(crate) fn reference_cache(lua: &Lua) -> mlua::Result<(Table, Function)> {
    let handles = handles(lua)?;
    Ok((handles.generation.clone(), handles.get.clone()))
}

/// How many entity handles the Lua state holds.
pub(crate) fn handle_count(lua: &Lua) -> usize {
    lua.app_data_ref::<Handles>()
        .map_or(0, |handles| handles.count.get())
}

/// The Lua side of handles: their metatable and methods, in the app data as [`Handles`].
pub(crate) fn install_handles(lua: &Lua) -> mlua::Result<()> {
    let generation = lua.create_table()?;
    generation.raw_set(1, 0)?;
    let slots = lua.create_table()?;
    let interned = lua.create_table()?;
    let sweep: Function = lua.load(SWEEP).set_name("=[bevy_lunar handles]").call((
        &interned,
        lua.globals().get::<Function>("next")?,
        lua.create_function(|_, bits: i64| {
            // Without a world (outside a frame) every entity counts as alive.
            Ok(with_world_ref(|world| {
                Entity::try_from_bits(bits as u64).is_some_and(|e| world.get_entity(e).is_ok())
            })
            .unwrap_or(true))
        })?,
    ))?;

    let methods = lua.create_table()?;
    let get: Function = lua.load(GET).set_name("=[bevy_lunar entity:get]").call((
        &slots,
        &generation,
        lua.create_function(slow_get)?,
    ))?;
    methods.raw_set("get", &get)?;
    methods.raw_set(
        "has",
        lua.create_function(|lua, (this, name): (EntityHandle, LuaString)| {
            charge(cost::LOOKUP)?;
            let (name, entry) = component_entry(lua, &name.to_str()?)?;
            with_world_ref(|world| entry.has(world, this.entity))?
                .ok_or_else(|| stale_despawned(this.entity, name))
        })?,
    )?;
    methods.raw_set(
        "insert",
        lua.create_function(|lua, (this, value): (EntityHandle, AnyUserData)| {
            charge(cost::STRUCTURAL)?;
            insert_value(lua, this.entity, &value)
        })?,
    )?;
    methods.raw_set(
        "attach",
        lua.create_function(|_, (this, path): (EntityHandle, LuaString)| {
            charge(cost::STRUCTURAL)?;
            attach(this.entity, &path.to_str()?)
        })?,
    )?;
    methods.raw_set(
        "detach",
        lua.create_function(|lua, (this, path): (EntityHandle, LuaString)| {
            charge(cost::STRUCTURAL)?;
            let detached = detach(this.entity, &path.to_str()?)?;
            forget_references(lua)?;
            Ok(detached)
        })?,
    )?;
    methods.raw_set(
        "remove",
        lua.create_function(|lua, (this, name): (EntityHandle, LuaString)| {
            charge(cost::STRUCTURAL)?;
            let (_, entry) = component_entry(lua, &name.to_str()?)?;
            let removed = with_world(|world| entry.remove(world, this.entity))?;
            forget_references(lua)?;
            Ok(removed)
        })?,
    )?;
    methods.raw_set(
        "despawn",
        lua.create_function(|lua, this: EntityHandle| {
            charge(cost::STRUCTURAL)?;
            let despawned = with_world(|world| world.despawn(this.entity))?;
            forget_references(lua)?;
            Ok(despawned)
        })?,
    )?;
    methods.raw_set(
        "id",
        lua.create_function(|_, this: EntityHandle| Ok(this.entity.to_string()))?,
    )?;
    methods.raw_set(
        "trigger",
        lua.create_function(|lua, (this, value): (EntityHandle, Value)| {
            charge(cost::STRUCTURAL)?;
            trigger_event(lua, &value, Some(this.entity))
        })?,
    )?;
    // `entity:on(name, fn)`: `world.on` for the entity events that target this entity.
    methods.raw_set(
        "on",
        lua.create_function(
            |lua, (this, name, handler): (EntityHandle, LuaString, Value)| {
                let on: Function = lua.globals().get::<Table>("world")?.get("on")?;
                let key = format!("{}@{}", name.to_str()?, this.entity);
                on.call::<Value>((key, handler))
            },
        )?,
    )?;

    let metatable = lua.create_table()?;
    metatable.raw_set("__index", methods)?;
    metatable.raw_set(
        "__newindex",
        lua.create_function(|_, _: Variadic<Value>| -> mlua::Result<()> {
            Err(script_error("entity handles are read-only"))
        })?,
    )?;
    metatable.raw_set(
        "__tostring",
        lua.create_function(|_, this: EntityHandle| Ok(this.entity.to_string()))?,
    )?;
    metatable.raw_set("__metatable", "Entity")?;
    lua.set_app_data(Handles {
        metatable,
        interned,
        count: Cell::new(0),
        sweep,
        generation,
        slots,
        get,
        next_slot: Cell::new(FIRST_REFERENCE_SLOT),
    });
    Ok(())
}

/// `entity:insert(value)`: adds (or replaces) the component `value`.
fn insert_value(lua: &Lua, entity: Entity, value: &AnyUserData) -> mlua::Result<()> {
    if crate::world::reflect::insert(entity, value)? {
        return Ok(());
    }
    for entry in component_entries(lua) {
        if let ComponentEntry::Typed(typed) = entry
            && with_world(|world| (typed.insert)(world, entity, value))??
        {
            return Ok(());
        }
    }
    let name = value
        .type_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    Err(script_error(format!(
        "'{name}' is not a component registered for scripts"
    )))
}

/// The asset path of a script named in `entity:attach` and the like: `scripts/monster.lua`
/// (or `scripts/monster`, as `require` takes it).
fn script_path(caller: &str, name: &str) -> mlua::Result<String> {
    crate::script::module::module_path(name).map_err(|why| script_error(format!("{caller}: {why}")))
}

/// `entity:attach(path)`: a script entity running `path` for `entity` (see [`ScriptOf`]); its
/// instance starts in the plugin's next run.
///
/// [`ScriptOf`]: crate::ScriptOf
fn attach(entity: Entity, name: &str) -> mlua::Result<()> {
    let path = script_path("entity:attach", name)?;
    with_world(|world| {
        if world.get_entity(entity).is_err() {
            return Err(stale_despawned(entity, "entity:attach"));
        }
        let Some(server) = world.get_resource::<bevy::asset::AssetServer>() else {
            return Err(script_error("entity:attach: the app has no asset server"));
        };
        let script = crate::LuaScript(server.load(path));
        world.spawn((script, crate::ScriptOf(entity)));
        Ok(())
    })?
}

/// `entity:detach(path)`: stops the script `path` on `entity` (its own `LuaScript` is removed,
/// a script entity is despawned); whether it ran one.
fn detach(entity: Entity, name: &str) -> mlua::Result<bool> {
    let path = script_path("entity:detach", name)?;
    let runs = |world: &World, carrier: Entity| {
        world
            .get::<crate::LuaScript>(carrier)
            .and_then(|script| script.0.path())
            .is_some_and(|p| p.to_string().replace('\\', "/") == path)
    };
    with_world(|world| {
        if runs(world, entity) {
            world.entity_mut(entity).remove::<crate::LuaScript>();
            return true;
        }
        let carriers: Vec<Entity> = world
            .get::<crate::LuaScripts>(entity)
            .map(|scripts| scripts.entities().to_vec())
            .unwrap_or_default();
        match carriers.into_iter().find(|carrier| runs(world, *carrier)) {
            Some(carrier) => world.despawn(carrier),
            None => false,
        }
    })
}

/// `world.spawn()` or `world.spawn { Position.new(1, 2), Health.new(10), script = "scripts/a.lua" }`:
/// a new entity with the components given (values made in Lua) and the scripts named
/// (`script`, one path or a list), which start in the plugin's next run.
fn spawn(lua: &Lua, spec: Option<Table>) -> mlua::Result<EntityHandle> {
    charge(cost::STRUCTURAL)?;
    let entity = with_world(|world| world.spawn_empty().id())?;
    let Some(spec) = spec else {
        return Ok(EntityHandle::new(entity));
    };
    let built = (|| {
        for value in spec.sequence_values::<Value>() {
            match value? {
                Value::UserData(value) => insert_value(lua, entity, &value)?,
                other => {
                    return Err(script_error(format!(
                        "world.spawn: expected component values (such as Position.new(1, 2)), got {}",
                        crate::userdata::describe(&other)
                    )));
                }
            }
        }
        match spec.raw_get::<Value>("script")? {
            Value::Nil => {}
            Value::String(path) => attach(entity, &path.to_str()?)?,
            Value::Table(paths) => {
                for path in paths.sequence_values::<LuaString>() {
                    attach(entity, &path?.to_str()?)?;
                }
            }
            other => {
                return Err(script_error(format!(
                    "world.spawn: script must be a script path or a list of them, got {}",
                    crate::userdata::describe(&other)
                )));
            }
        }
        Ok(())
    })();
    if let Err(err) = built {
        // Nothing half-made stays behind.
        with_world(|world| world.despawn(entity))?;
        return Err(err);
    }
    forget_references(lua)?;
    Ok(EntityHandle::new(entity))
}

/// `entity:get` when the handle has no current reference for `name`: asks the world, and
/// caches the reference in the handle (the same one again after a removal elsewhere).
fn slow_get(lua: &Lua, (handle, name): (Table, LuaString)) -> mlua::Result<Option<AnyUserData>> {
    let entity = EntityHandle::from_lua(Value::Table(handle.clone()), lua)?.entity;
    let (name, entry) = component_entry(lua, &name.to_str()?)?;
    match with_world_ref(|world| entry.has(world, entity))? {
        None => Err(stale_despawned(entity, name)),
        Some(false) => Ok(None),
        Some(true) => {
            let (slot, generation, end) = {
                let handles = lua
                    .app_data_ref::<Handles>()
                    .ok_or_else(|| script_error("internal error: no entity handles"))?;
                let slot = handles.slot(name)?;
                let generation: i64 = handles.generation.raw_get(1)?;
                (slot, generation, handles.next_slot.get())
            };
            if handle.raw_get::<i64>(GENERATION_SLOT)? != generation {
                // Other cached references may be of removed components: dropped, to be
                // checked again when asked for.
                for other in (FIRST_REFERENCE_SLOT..end).filter(|s| *s != slot) {
                    handle.raw_set(other, Value::Nil)?;
                }
                handle.raw_set(GENERATION_SLOT, generation)?;
            }
            let reference = match handle.raw_get::<Option<AnyUserData>>(slot)? {
                Some(reference) => reference,
                None => entry.new_ref(lua, entity)?,
            };
            handle.raw_set(slot, &reference)?;
            Ok(Some(reference))
        }
    }
}

/// The global `world` table.
pub(crate) fn world_table(lua: &Lua) -> mlua::Result<Table> {
    let world = lua.create_table()?;
    world.set("spawn", lua.create_function(spawn)?)?;
    world.set(
        "entity",
        lua.create_function(|lua, id: Value| {
            charge(cost::LOOKUP)?;
            let entity = match &id {
                Value::Table(table) => EntityHandle::of(lua, table)?.map(|h| h.entity),
                other => parse_entity(other),
            };
            let entity = entity.ok_or_else(|| {
                script_error(format!(
                    "world.entity: {} is not an entity id (ids look like \"51v0\", as entity:id() returns)",
                    crate::userdata::describe(&id)
                ))
            })?;
            let alive = with_world_ref(|world| world.get_entity(entity).is_ok())?;
            Ok(alive.then(|| EntityHandle::new(entity)))
        })?,
    )?;
    world.set(
        "resource",
        lua.create_function(|lua, name: LuaString| {
            charge(cost::LOOKUP)?;
            resource_entry(lua, &name.to_str()?)?.get(lua)
        })?,
    )?;
    world.set(
        "query",
        lua.create_function(|lua, names: Variadic<LuaString>| LuaQuery::new(lua, names))?,
    )?;
    world.set(
        "construct",
        lua.create_function(|lua, (name, value): (LuaString, Value)| {
            charge(cost::LOOKUP)?;
            crate::world::reflect::construct(lua, &name.to_str()?, value)
        })?,
    )?;
    world.set(
        "trigger",
        lua.create_function(|lua, value: Value| {
            charge(cost::STRUCTURAL)?;
            trigger_event(lua, &value, None)
        })?,
    )?;
    world.set(
        "write",
        lua.create_function(|lua, value: Value| {
            charge(cost::LOOKUP)?;
            let writers = message_entries(lua)
                .into_iter()
                .map(|entry| move |world: &mut World, value: &AnyUserData| (entry.write)(world, value));
            if hand_to_world(&value, writers)? {
                return Ok(());
            }
            Err(script_error(format!(
                "world.write: {} is not a message registered for scripts (register its type with app.register_lua_message)",
                crate::userdata::describe(&value)
            )))
        })?,
    )?;
    Ok(world)
}

/// `world.trigger(value)` and `entity:trigger(value)`: triggers a registered entity event.
fn trigger_event(lua: &Lua, value: &Value, on: Option<Entity>) -> mlua::Result<()> {
    let triggers = event_triggers(lua)
        .into_iter()
        .map(|trigger| move |world: &mut World, value: &AnyUserData| trigger(world, value, on));
    if hand_to_world(value, triggers)? {
        // Observers may have changed the world.
        return forget_references(lua);
    }
    Err(script_error(format!(
        "{}: {} is not an entity event registered for scripts (register its type with app.register_lua_event)",
        if on.is_some() {
            "entity:trigger"
        } else {
            "world.trigger"
        },
        crate::userdata::describe(value)
    )))
}

/// Hands `value` to the first of `takers` (one per registered type: `Ok(false)` for a value of
/// another type) that takes it, with the world; whether one did.
fn hand_to_world<F>(value: &Value, takers: impl IntoIterator<Item = F>) -> mlua::Result<bool>
where
    F: FnOnce(&mut World, &AnyUserData) -> mlua::Result<bool>,
{
    let Value::UserData(value) = value else {
        return Ok(false);
    };
    for take in takers {
        if with_world(|world| take(world, value))?? {
            return Ok(true);
        }
    }
    Ok(false)
}
