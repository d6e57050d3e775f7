//! Messages between scripts and Rust: scripts send [`LuaMessage`]s with `world.send`, Rust
//! calls functions of script instances with [`LuaCall`].

use bevy::asset::{AssetId, Handle};
use bevy::ecs::entity::Entity;
use bevy::ecs::message::Message;
use mlua::{Lua, Table, Value};

use crate::script::asset::LuaScriptAsset;
use crate::userdata::{describe, script_error};
use crate::world::handle::EntityHandle;
use crate::world::with_world;

/// A plain value carried between scripts and Rust: what a Lua table of numbers, strings,
/// booleans, entities and other such tables becomes.
///
/// ```
/// use bevy_lunar::ScriptValue;
///
/// let payload = ScriptValue::table([("damage", ScriptValue::from(5)), ("kind", "fire".into())]);
/// assert_eq!(payload.get("damage").and_then(ScriptValue::as_f64), Some(5.0));
/// assert_eq!(payload.get("kind").and_then(ScriptValue::as_str), Some("fire"));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ScriptValue {
    #[default]
    Nil,
    Bool(bool),
    Integer(i64),
    Number(f64),
    String(String),
    /// A script's entity handle (`entity`, `world.spawn()`...).
    Entity(Entity),
    /// A table's entries, in Lua's `pairs` order (array part first, in order).
    Table(Vec<(ScriptValue, ScriptValue)>),
}

/// How deep tables may nest in a payload; deeper is taken for a table containing itself.
const MAX_DEPTH: usize = 32;
/// The most values (keys, values, tables) one payload from a script may hold.
pub(crate) const MAX_PAYLOAD_VALUES: usize = 100_000;
/// The most bytes of strings one payload from a script may hold.
pub(crate) const MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;

/// What a payload copied so far holds.
#[derive(Default)]
struct PayloadSize {
    values: usize,
    bytes: usize,
}

impl ScriptValue {
    /// A table with string keys.
    pub fn table<'a>(entries: impl IntoIterator<Item = (&'a str, ScriptValue)>) -> Self {
        ScriptValue::Table(
            entries
                .into_iter()
                .map(|(key, value)| (ScriptValue::String(key.to_owned()), value))
                .collect(),
        )
    }

    /// The value at string key `key` of a table.
    pub fn get(&self, key: &str) -> Option<&ScriptValue> {
        match self {
            ScriptValue::Table(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, ScriptValue::String(s) if s == key))
                .map(|(_, value)| value),
            _ => None,
        }
    }

    /// A number, integer or not.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            ScriptValue::Integer(i) => Some(i as f64),
            ScriptValue::Number(n) => Some(n),
            _ => None,
        }
    }

    /// An integer, or a float with an integral value.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            ScriptValue::Integer(i) => Some(i),
            ScriptValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Some(n as i64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            ScriptValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            ScriptValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_entity(&self) -> Option<Entity> {
        match *self {
            ScriptValue::Entity(e) => Some(e),
            _ => None,
        }
    }

    /// Copies a Lua value; `what` names it in errors (`payload.pos`). A payload holds at most
    /// [`MAX_PAYLOAD_VALUES`] values and [`MAX_PAYLOAD_BYTES`] bytes of strings: a table
    /// appearing twice is copied twice, so `t = {t, t}` nested 30 deep would otherwise be a
    /// billion values. The copy is charged to the running callback's budget.
    pub(crate) fn from_lua(lua: &Lua, value: &Value, what: &str) -> mlua::Result<Self> {
        let mut size = PayloadSize::default();
        let copy = Self::from_lua_at(lua, value, what, 0, &mut size)?;
        crate::vm::budget::charge(size.values as u64 * 4 + size.bytes as u64 / 16)?;
        Ok(copy)
    }

    fn from_lua_at(
        lua: &Lua,
        value: &Value,
        what: &str,
        depth: usize,
        size: &mut PayloadSize,
    ) -> mlua::Result<Self> {
        size.values += 1;
        if size.values > MAX_PAYLOAD_VALUES {
            return Err(script_error(format!(
                "{what}: the payload has more than {MAX_PAYLOAD_VALUES} values (a table that appears several times is counted each time)"
            )));
        }
        Ok(match value {
            Value::Nil => ScriptValue::Nil,
            Value::Boolean(b) => ScriptValue::Bool(*b),
            #[allow(clippy::unnecessary_cast)] // mlua::Integer is not i64 on every backend
            Value::Integer(i) => ScriptValue::Integer(*i as i64),
            Value::Number(n) => ScriptValue::Number(*n),
            Value::String(s) => {
                size.bytes += s.as_bytes().len();
                if size.bytes > MAX_PAYLOAD_BYTES {
                    return Err(script_error(format!(
                        "{what}: the payload's strings are longer than {MAX_PAYLOAD_BYTES} bytes in all"
                    )));
                }
                ScriptValue::String(s.to_str()?.to_owned())
            }
            Value::Table(table) => {
                if let Some(handle) = EntityHandle::of(lua, table)? {
                    return Ok(ScriptValue::Entity(handle.entity()));
                }
                if depth >= MAX_DEPTH {
                    return Err(script_error(format!(
                        "{what} nests tables more than {MAX_DEPTH} deep (a table containing itself?)"
                    )));
                }
                let mut entries = Vec::new();
                for pair in table.pairs::<Value, Value>() {
                    let (key, value) = pair?;
                    let inner = format!("{what}.{}", key_name(&key));
                    entries.push((
                        Self::from_lua_at(lua, &key, &inner, depth + 1, size)?,
                        Self::from_lua_at(lua, &value, &inner, depth + 1, size)?,
                    ));
                }
                ScriptValue::Table(entries)
            }
            other => {
                return Err(script_error(format!(
                    "{what} is a {}: messages carry nil, booleans, numbers, strings, entities and tables of those",
                    describe(other)
                )));
            }
        })
    }

    pub(crate) fn to_lua(&self, lua: &Lua) -> mlua::Result<Value> {
        Ok(match self {
            ScriptValue::Nil => Value::Nil,
            ScriptValue::Bool(b) => Value::Boolean(*b),
            ScriptValue::Integer(i) => Value::Integer(*i as _),
            ScriptValue::Number(n) => Value::Number(*n),
            ScriptValue::String(s) => Value::String(lua.create_string(s)?),
            ScriptValue::Entity(e) => mlua::IntoLua::into_lua(EntityHandle::new(*e), lua)?,
            ScriptValue::Table(entries) => {
                let table = lua.create_table_with_capacity(0, entries.len())?;
                for (key, value) in entries {
                    table.raw_set(key.to_lua(lua)?, value.to_lua(lua)?)?;
                }
                Value::Table(table)
            }
        })
    }
}

fn key_name(key: &Value) -> String {
    match key {
        Value::String(s) => s.to_string_lossy(),
        other => format!("[{}]", describe(other)),
    }
}

macro_rules! script_value_from {
    ($($ty:ty => $variant:ident $(as $cast:ty)?),* $(,)?) => {$(
        impl From<$ty> for ScriptValue {
            fn from(value: $ty) -> Self {
                ScriptValue::$variant(value $(as $cast)?)
            }
        }
    )*};
}

script_value_from! {
    bool => Bool,
    i32 => Integer as i64,
    i64 => Integer,
    u32 => Integer as i64,
    f32 => Number as f64,
    f64 => Number,
    String => String,
    Entity => Entity,
}

impl From<&str> for ScriptValue {
    fn from(value: &str) -> Self {
        ScriptValue::String(value.to_owned())
    }
}

/// A message a script sent with `world.send(name, payload)`. Read it in Rust with a
/// `MessageReader<LuaMessage>`.
///
/// ```
/// use bevy::prelude::*;
/// use bevy_lunar::LuaMessage;
///
/// // In Lua: world.send("hit", { damage = 5 })
/// fn on_hits(mut messages: MessageReader<LuaMessage>) {
///     for message in messages.read().filter(|m| m.name == "hit") {
///         let damage = message.payload.get("damage").and_then(|d| d.as_f64());
///         info!("hit for {damage:?}");
///     }
/// }
/// ```
#[derive(Message, Debug, Clone, PartialEq)]
pub struct LuaMessage {
    pub name: String,
    pub payload: ScriptValue,
}

/// Calls the function `function` of script instances with `payload` as its argument, when the
/// scripts next run (this frame for a system ordered before [`LuaScriptSet`](crate::LuaScriptSet),
/// else the next), before their `on_update`. An instance without that function is skipped.
///
/// ```
/// use bevy::prelude::*;
/// use bevy_lunar::{LuaCall, ScriptValue};
///
/// fn hit(mut calls: MessageWriter<LuaCall>, target: Single<Entity, With<Name>>) {
///     // In the entity's script: function on_hit(payload) ... end
///     calls.write(LuaCall::entity(*target, "on_hit", ScriptValue::table([("damage", 5.into())])));
/// }
/// ```
#[derive(Message, Debug, Clone, PartialEq)]
pub struct LuaCall {
    pub target: LuaCallTarget,
    pub function: String,
    pub payload: ScriptValue,
}

/// Which instances a [`LuaCall`] reaches.
#[derive(Debug, Clone, PartialEq)]
pub enum LuaCallTarget {
    /// The instance of this entity.
    Entity(Entity),
    /// Every instance of this script.
    Script(AssetId<LuaScriptAsset>),
    /// Every instance.
    All,
}

impl LuaCall {
    /// Calls `function` on `entity`'s instance.
    pub fn entity(entity: Entity, function: impl Into<String>, payload: ScriptValue) -> Self {
        LuaCall {
            target: LuaCallTarget::Entity(entity),
            function: function.into(),
            payload,
        }
    }

    /// Calls `function` on every instance of `script`.
    pub fn script(
        script: &Handle<LuaScriptAsset>,
        function: impl Into<String>,
        payload: ScriptValue,
    ) -> Self {
        LuaCall {
            target: LuaCallTarget::Script(script.id()),
            function: function.into(),
            payload,
        }
    }

    /// Calls `function` on every instance that has it.
    pub fn all(function: impl Into<String>, payload: ScriptValue) -> Self {
        LuaCall {
            target: LuaCallTarget::All,
            function: function.into(),
            payload,
        }
    }
}

/// `world.send(name, payload)`.
pub(crate) fn install_send(lua: &Lua, world: &Table) -> mlua::Result<()> {
    world.set(
        "send",
        lua.create_function(|lua, (name, payload): (mlua::LuaString, Value)| {
            let message = LuaMessage {
                name: name.to_str()?.to_owned(),
                payload: ScriptValue::from_lua(lua, &payload, "world.send: the payload")?,
            };
            with_world(|world| {
                world.write_message(message);
            })
        })?,
    )
}
