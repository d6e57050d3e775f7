//! The script environment in the definition file: `entity`, `world`, `time`, `input`, the
//! callbacks, and the names scripts pass as strings (components, resources, keys).

use std::fmt::Write;

/// What the script API's definitions depend on: the names registered with the app.
#[derive(Clone, Debug, Default)]
pub struct ScriptApi {
    /// Components by Lua name: the classes `entity:get` accepts, as `ComponentName`.
    pub components: Vec<&'static str>,
    pub resources: Vec<&'static str>,
    /// Types with a global type table (registered ones; nested types have none).
    pub type_tables: Vec<&'static str>,
    /// `KeyCode` variant names, for `input.pressed`.
    pub keys: Vec<&'static str>,
    /// Message types registered for scripts: `world.on` and `wait_for` are typed for each.
    pub messages: Vec<&'static str>,
    /// Entity event types registered for scripts: `entity:on` is typed for each.
    pub events: Vec<&'static str>,
}

pub(super) fn render(out: &mut String, api: &ScriptApi) {
    let _ = writeln!(
        out,
        "---A component registered for scripts.\n---@alias ComponentName {}",
        literal_union(&api.components)
    );
    let _ = writeln!(
        out,
        "---A key, named as Bevy's `KeyCode` variant.\n---@alias KeyName {}",
        literal_union(&api.keys)
    );
    out.push_str(
        "---A mouse button.\n---@alias MouseButtonName \"Left\"|\"Right\"|\"Middle\"|\"Back\"|\"Forward\"\n",
    );

    // `world.on("Hit", fn)` and `wait_for("Hit")` know what a registered message is.
    let mut on = String::new();
    let mut wait_for = String::new();
    for message in &api.messages {
        let _ = writeln!(
            on,
            "---@overload fun(name: \"{message}\", fn: fun(message: {message})): Task"
        );
        let _ = writeln!(wait_for, "---@overload fun(name: \"{message}\"): {message}");
    }
    let mut entity_on = String::new();
    for event in &api.events {
        let _ = writeln!(
            entity_on,
            "---@overload fun(name: \"{event}\", fn: fun(event: {event})): Task"
        );
    }
    out.push_str(
        &API.replace("---@@world.on\n", &on)
            .replace("---@@wait_for\n", &wait_for)
            .replace("---@@Entity:on\n", &entity_on),
    );
}

/// `"A"|"B"`, or `string` for an empty list (so that the alias still means something).
fn literal_union(names: &[&str]) -> String {
    if names.is_empty() {
        return "string".to_owned();
    }
    names
        .iter()
        .map(|name| format!("\"{name}\""))
        .collect::<Vec<_>>()
        .join("|")
}

const API: &str = r#"
---The parent class of the components registered for scripts.
---@class Component

---The parent class of the resources registered for scripts.
---@class Resource

---An entity of the world, as scripts hold it. Handles stay valid across frames; using one whose
---entity was despawned is an error.
---@class Entity
local Entity__value = {}

---The component `name` of this entity as a live reference: reads and writes go straight to the
---component in the World. nil if the entity has no such component (typed `T`, not `T?`: a
---script usually knows what its entity has; check with `has` when it does not).
---@generic T: Component
---@param name `T`
---@return T
function Entity__value:get(name) end

---Whether the entity has the component `name`.
---@param name ComponentName
---@return boolean
function Entity__value:has(name) end

---Adds (or replaces) a component: a new value made in Lua, such as `Position.new(1, 2)`.
---@param value Component
function Entity__value:insert(value) end

---Removes the component `name`; whether the entity had it.
---@param name ComponentName
---@return boolean
function Entity__value:remove(name) end

---Despawns the entity; whether it existed.
---@return boolean
function Entity__value:despawn() end

---Runs the script at `path` (an asset path: `"scripts/monster.lua"`) on this entity too, as an
---instance of its own; it starts in the plugin's next run.
---@param path string
function Entity__value:attach(path) end

---Stops the script at `path` on this entity; whether it ran one.
---@param path string
---@return boolean
function Entity__value:detach(path) end

---Calls `fn(event)` for every entity event named `name` (registered with
---`app.register_lua_event`) that targets this entity, from now on. Returns a task to cancel.
---@param name string
---@param fn fun(event: any)
---@return Task
---@@Entity:on
function Entity__value:on(name, fn) end

---Triggers an entity event that targets this entity (an event for another entity is an error):
---`world.trigger` with a check.
---@param event any
function Entity__value:trigger(event) end

---The entity's id as Bevy displays it (`"51v0"`), for `world.entity(id)`.
---@return string
function Entity__value:id() end

---A query of `world.query`: filters chain, iteration finds the entities.
---@class Query
---@overload fun(): Entity?
local Query__value = {}

---Only entities that also have these components.
---@param ... ComponentName
---@return Query
function Query__value:with(...) end

---Only entities that have none of these components.
---@param ... ComponentName
---@return Query
function Query__value:without(...) end

---Only entities whose components named here changed (or were added) since the scripts'
---previous run; a change by a script earlier in this run counts.
---@param ... ComponentName
---@return Query
function Query__value:changed(...) end

---Only entities that got these components since the scripts' previous run.
---@param ... ComponentName
---@return Query
function Query__value:added(...) end

---Iterates the entities with a live reference to each component the query named:
---`for e, p in world.query("Player"):each() do p.health = p.health - 1 end`.
---@return fun(): Entity, any, any, any
function Query__value:each() end

---The Bevy world.
world = {}

---A new entity: empty, or with the components given (values made in Lua) and the scripts
---named (`script`, one path or a list), which start in the plugin's next run:
---`world.spawn { Position.new(1, 2), script = "scripts/monster.lua" }`.
---@param spec? { [integer]: Component, script?: string|string[] }
---@return Entity
function world.spawn(spec) end

---The entity with this id (what `entity:id()` returns), or nil if it is gone.
---@param id string|integer|Entity
---@return Entity?
function world.entity(id) end

---The entities that have all the named components, found when iteration starts:
---`for e in world.query("Position", "Velocity") do ... end`, or with their components:
---`for e, p, v in world.query("Position", "Velocity"):each() do ... end`. Filters chain:
---`world.query("Enemy"):without("Dead"):changed("Health")`.
---@param ... ComponentName
---@return Query
function world.query(...) end

---A new value of a reflected type (registered with `app.register_lua_reflect`): its `Default`
---with the fields of `value` written over it (`world.construct("Hero", { health = 5 })`), or
---for a value without fields (`Name`) the value itself (`world.construct("Name", "Boss")`).
---@param name string
---@param value? any
---@return any
function world.construct(name, value) end

---Sends a `LuaMessage { name, payload }` to the game's Rust systems. The payload holds
---nil, booleans, numbers, strings and tables of them.
---@param name string
---@param payload? any
function world.send(name, payload) end

---Writes a message of a type registered with `app.register_lua_message` (Rust reads it with a
---`MessageReader`; scripts with `world.on` and `wait_for`). The script keeps its value.
---@param message any
function world.write(message) end

---Calls `fn(message)` for every message named `name` from now on: a registered message type's
---name (`"Hit"`), a `world.send` name (the payload), `"Despawned"` (the entity), or
---`"Added"`/`"Removed"` with a component name (the entity): `world.on("Added", "Player", fn)`.
---Each call may wait. Returns a task to cancel.
---@param name string
---@param component_or_fn string|fun(message: any)
---@param fn? fun(message: any)
---@return Task
---@@world.on
function world.on(name, component_or_fn, fn) end

---Triggers an entity event of a type registered with `app.register_lua_event`: Rust observers
---run now, the scripts of its target get it (`entity:on`) in the plugin's next run.
---@param event any
function world.trigger(event) end

---The resource `name` as a live reference, or nil if the world has none (typed `T`, as
---`entity:get`).
---@generic T: Resource
---@param name `T`
---@return T
function world.resource(name) end

---The entity this script instance runs on.
---@type Entity
entity = nil

---Frame time.
time = {
    ---Seconds since the last frame.
    ---@type number
    delta = 0,
    ---Seconds since the game started.
    ---@type number
    elapsed = 0,
}

---Keyboard and mouse. In an app without input (headless) nothing is pressed.
input = {}

---Whether the key is held down.
---@param key KeyName
---@return boolean
function input.pressed(key) end

---Whether the key went down this frame.
---@param key KeyName
---@return boolean
function input.just_pressed(key) end

---Whether the key went up this frame.
---@param key KeyName
---@return boolean
function input.just_released(key) end

---Whether the mouse button is held down.
---@param button MouseButtonName
---@return boolean
function input.mouse_pressed(button) end

---Whether the mouse button went down this frame.
---@param button MouseButtonName
---@return boolean
function input.mouse_just_pressed(button) end

---The cursor in window pixels, or nil outside the window (or without one).
---@return Vec2?
function input.mouse_position() end

---Waits `seconds` of game time (Bevy's virtual time: pausing the game pauses the wait), at
---least until the next frame; returns the seconds actually waited. In callbacks (but
---`on_unload`) and tasks; not in top-level code.
---@param seconds? number default 0
---@return number
function wait(seconds) end

---Waits `n` frames (default 1).
---@param n? integer
function wait_frames(n) end

---Waits until `condition()` returns a true value, checked once a frame.
---@param condition fun(): any
function wait_until(condition) end

---Waits for the next message named `name` (as `world.on` names them) sent after the wait
---started; returns it.
---@param name string
---@param component? string for `"Added"` and `"Removed"`
---@return any
---@@wait_for
function wait_for(name, component) end

---A function running over time, started with `task`, `after` or `every`. It belongs to the
---instance: despawning the entity, removing the script or a hot reload cancels it.
---@class Task
local Task__value = {}

---Stops the task (a task cancelling itself stops at its next wait).
function Task__value:cancel() end

---Whether the task still runs or waits.
---@return boolean
function Task__value:running() end

---Runs `fn(...)` now, until it first waits, then on; returns its handle.
---@param fn fun(...)
---@param ... any
---@return Task
function task(fn, ...) end

---Runs `fn()` once, `seconds` of game time from now.
---@param seconds number
---@param fn fun()
---@return Task
function after(seconds, fn) end

---Runs `fn()` every `seconds` of game time (at most once a frame) until cancelled, without
---drift; each call is a task of its own (an error in one is reported, the timer goes on).
---@param seconds number
---@param fn fun()
---@return Task
function every(seconds, fn) end

---Callbacks a script may define; each is optional. Any of them but `on_unload` may wait.

---Once, before the instance's first `on_update`.
---@type fun()?
on_start = nil

---Every frame; `dt` is the frame time in seconds. One that waits is not started again until
---it finishes.
---@type fun(dt: number)?
on_update = nil

---Before the instance goes away or is hot-reloaded; the value returned is handed to `on_reload`.
---@type fun(): any?
on_unload = nil

---After a hot reload (instead of `on_start`), with what `on_unload` returned.
---@type fun(saved: any)?
on_reload = nil
"#;
