//! The error messages scripts see. Kept in one place so their wording stays consistent.

use std::fmt::{self, Display};
use std::sync::Arc;

use mlua::Value;

use super::LuaUserData;
use super::collection::Origin;
use super::convert::{ConvertError, describe};

/// A message for scripts, raised as an mlua external error so that it reads exactly as written
/// (mlua would prefix `runtime error: ` to a `RuntimeError`).
#[derive(Debug)]
struct Message(String);

impl Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

/// The error `message`, as scripts will see it.
pub fn script_error(message: impl Into<String>) -> mlua::Error {
    mlua::Error::external(Message(message.into()))
}

/// A key as it appears in a message: strings bare, anything else described.
fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.to_string_lossy(),
        other => describe(other),
    }
}

/// `Player has no field or method 'internal_id'`
pub(crate) fn unknown_key<T: LuaUserData>(key: &Value) -> mlua::Error {
    script_error(format!(
        "{} has no field or method '{}'",
        T::TYPE_NAME,
        key_text(key)
    ))
}

/// The refusal of `obj.key = value` for a key with no setter.
pub(crate) fn refused_write<T: LuaUserData>(
    key: &Value,
    readonly: &[&str],
    methods: &[&str],
) -> mlua::Error {
    let key = key_text(key);
    let message = if readonly.contains(&key.as_str()) {
        format!("{}: field '{key}' is read-only", T::TYPE_NAME)
    } else if methods.contains(&key.as_str()) {
        format!("{}: cannot assign to method '{key}'", T::TYPE_NAME)
    } else {
        format!("{} has no field '{key}'", T::TYPE_NAME)
    };
    script_error(message)
}

/// `Player: bad value for field 'health': expected number, got string`, or for a part of a
/// collection written whole, `Inventory: bad value for items[2]: expected string, got number`.
pub(crate) fn bad_field_value<T: LuaUserData>(field: &str, err: ConvertError) -> mlua::Error {
    Origin::field(T::TYPE_NAME, field).bad_value(err)
}

/// mlua's `bad argument #N to 'Type.method': ...` for a refused method argument.
pub fn bad_argument<T: LuaUserData>(
    function: &str,
    position: usize,
    err: ConvertError,
) -> mlua::Error {
    argument_error::<T>(function, position, None, mlua::Error::external(err))
}

/// `bad argument #N to 'Type.method': ...` for an argument that could not be resolved (a live
/// reference whose value is gone, or that is in use).
pub fn bad_argument_cause<T: LuaUserData>(
    function: &str,
    position: usize,
    cause: mlua::Error,
) -> mlua::Error {
    argument_error::<T>(function, position, None, cause)
}

/// The error for a method called on something that is not a `T` (`obj.method(5)`), or on a `T`
/// that cannot be borrowed right now.
pub(crate) fn bad_self<T: LuaUserData>(function: &str, cause: mlua::Error) -> mlua::Error {
    argument_error::<T>(function, 1, Some("self"), cause)
}

// mlua's error type holds its cause in an `Arc` whatever its thread-safety.
#[allow(clippy::arc_with_non_send_sync)]
fn argument_error<T: LuaUserData>(
    function: &str,
    position: usize,
    name: Option<&str>,
    cause: mlua::Error,
) -> mlua::Error {
    mlua::Error::BadArgument {
        to: Some(format!("{}.{function}", T::TYPE_NAME)),
        pos: position,
        name: name.map(str::to_owned),
        cause: Arc::new(cause),
    }
}

/// The Lua error for a method's `Err(e)`: the `Display` text of `e`.
pub fn method_error(err: impl Display) -> mlua::Error {
    script_error(err.to_string())
}

/// `State: field 'target' belongs to Chasing, but this State is Idle`
pub(crate) fn wrong_variant<T: LuaUserData>(field: &str, variants: &str, value: &T) -> mlua::Error {
    let current = T::ENUM.map_or("?", |info| (info.name_of)(value));
    script_error(format!(
        "{0}: field '{field}' belongs to {variants}, but this {0} is {current}",
        T::TYPE_NAME
    ))
}

/// The unit variant a write to `kind` names, or why it cannot be switched to.
pub(crate) fn unit_variant<T: LuaUserData>(
    info: super::EnumInfo<T>,
    value: &Value,
) -> mlua::Result<T> {
    let name = match value {
        Value::String(name) => name.to_string_lossy(),
        other => {
            return Err(script_error(format!(
                "{}: bad value for field 'kind': expected a variant name, got {}",
                T::TYPE_NAME,
                super::convert::describe_type(other)
            )));
        }
    };
    if info.variants.contains(&name.as_str()) {
        if let Some(variant) = (info.unit)(&name) {
            return Ok(variant);
        }
        return Err(script_error(format!(
            "{0}: cannot set kind to {name:?}: that variant has fields; assign {0}.{name} {{ ... }} instead",
            T::TYPE_NAME
        )));
    }
    let names: Vec<String> = info.variants.iter().map(|v| format!("{v:?}")).collect();
    Err(script_error(format!(
        "{}: bad value for field 'kind': expected one of {}, got {name:?}",
        T::TYPE_NAME,
        names.join(", ")
    )))
}
