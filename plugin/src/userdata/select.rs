//! Compile-time choice of how a field or argument type crosses into Lua.
//!
//! A macro sees only tokens, not traits, so the generated code asks the compiler instead, with
//! autoref-based specialization: `(&&&FieldProbe::<F>::new()).field_kind()` resolves to the first
//! trait below whose impl applies, trying receivers `&&&P`, `&&P`, `&P`, `P` in that order:
//!
//! 1. a derived type (`LuaUserData + Clone`): read as a live reference;
//! 2. a [`LuaConvert`] type: strict conversion;
//! 3. any mlua `IntoLua + FromLua + Clone` type: mlua's conversion;
//! 4. anything else: a compile error, worded by `#[diagnostic::on_unimplemented]`, at the field.

use std::any::type_name;
use std::marker::PhantomData;

use mlua::{BorrowedStr, FromLua, IntoLua, Lua, Value};

use super::LuaUserData;
use super::convert::{ConvertError, LuaConvert};
use super::fast::FastConvert;
use super::registry::{FieldKind, Registrar};

/// The probe for a field of type `F`.
pub struct FieldProbe<F>(PhantomData<F>);

impl<F> FieldProbe<F> {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        FieldProbe(PhantomData)
    }
}

pub trait FieldViaConvert<F: LuaConvert> {
    fn field_kind(self) -> FieldKind<F, F::Out>;
}

impl<F: LuaConvert + 'static> FieldViaConvert<F> for &&FieldProbe<F> {
    fn field_kind(self) -> FieldKind<F, F::Out> {
        if F::LIVE {
            FieldKind::Live {
                read: F::read_at,
                from_lua: F::from_lua,
                stable: F::STABLE_VIEW,
            }
        } else {
            FieldKind::Value {
                to_lua: F::to_lua,
                from_lua: F::from_lua,
                borrows: F::BORROWS,
                fast: FastConvert::of(F::SCALAR, F::TEXT),
            }
        }
    }
}

pub trait FieldViaMlua<F> {
    fn field_kind(self) -> FieldKind<F, F>;
}

impl<F: IntoLua + FromLua + Clone + 'static> FieldViaMlua<F> for &FieldProbe<F> {
    fn field_kind(self) -> FieldKind<F, F> {
        FieldKind::Value {
            to_lua: |value, _lua| Ok(value.clone()),
            from_lua: mlua_from_lua,
            borrows: true,
            fast: None,
        }
    }
}

fn mlua_from_lua<T: FromLua>(value: Value, lua: &Lua) -> Result<T, ConvertError> {
    let got = super::convert::describe(&value);
    T::from_lua(value, lua).map_err(|err| ConvertError {
        expected: short_type_name::<T>().into(),
        got: format!("{got} ({err})"),
        path: String::new(),
    })
}

/// `alloc::vec::Vec<alloc::string::String>` as `Vec<String>`: Rust types as scripts' errors
/// name them.
fn short_type_name<T>() -> String {
    let mut short = String::new();
    let mut segment = String::new();
    for c in type_name::<T>().chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            segment.push(c);
        } else {
            short.push_str(segment.rsplit("::").next().unwrap_or_default());
            segment.clear();
            short.push(c);
        }
    }
    short.push_str(segment.rsplit("::").next().unwrap_or_default());
    short
}

/// Implemented by no type: its only use is the error message for a field that fits none of the
/// ways above.
#[diagnostic::on_unimplemented(
    message = "field type `{Self}` cannot be exposed to Lua",
    label = "this field's type is neither a Lua value nor a derived type",
    note = "mark the field `#[lua(skip)]` or make it private to keep it out of Lua",
    note = "or derive `LuaUserData` and `Clone` on its type, or implement `mlua::IntoLua`, `mlua::FromLua` and `Clone` for it"
)]
pub trait LuaFieldType {}

pub trait FieldViaUnsupported<F> {
    fn field_kind(self) -> FieldKind<F, Value>
    where
        F: LuaFieldType;
}

impl<F> FieldViaUnsupported<F> for FieldProbe<F> {
    fn field_kind(self) -> FieldKind<F, Value>
    where
        F: LuaFieldType,
    {
        unreachable!("no type implements LuaFieldType")
    }
}

/// The probe for a method parameter of type `P` (taken by value).
pub struct ArgProbe<P>(PhantomData<P>);

impl<P> ArgProbe<P> {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        ArgProbe(PhantomData)
    }
}

pub trait ArgViaConvert<P> {
    fn convert(self, value: Value, lua: &Lua) -> Result<P, ConvertError>;
}

impl<P: LuaConvert> ArgViaConvert<P> for &&ArgProbe<P> {
    #[inline]
    fn convert(self, value: Value, lua: &Lua) -> Result<P, ConvertError> {
        P::from_lua(value, lua)
    }
}

pub trait ArgViaMlua<P> {
    fn convert(self, value: Value, lua: &Lua) -> Result<P, ConvertError>;
}

impl<P: FromLua> ArgViaMlua<P> for &ArgProbe<P> {
    fn convert(self, value: Value, lua: &Lua) -> Result<P, ConvertError> {
        mlua_from_lua(value, lua)
    }
}

/// Implemented by no type: the error message for a parameter type that has no conversion.
#[diagnostic::on_unimplemented(
    message = "parameter type `{Self}` cannot be passed from Lua",
    label = "no conversion from a Lua value",
    note = "use a number, bool, String, &str, Option, a derived type (by value, & or &mut), an mlua handle type, or a type implementing `mlua::FromLua`"
)]
pub trait LuaArgType {}

pub trait ArgViaUnsupported<P> {
    fn convert(self, value: Value, lua: &Lua) -> Result<P, ConvertError>
    where
        P: LuaArgType;
}

impl<P> ArgViaUnsupported<P> for ArgProbe<P> {
    fn convert(self, _value: Value, _lua: &Lua) -> Result<P, ConvertError>
    where
        P: LuaArgType,
    {
        unreachable!("no type implements LuaArgType")
    }
}

/// A `&str` parameter: borrowed from the Lua string, not copied.
pub struct StrArg;

impl StrArg {
    pub fn from_lua(value: Value) -> Result<BorrowedStr, ConvertError> {
        match &value {
            Value::String(s) => s
                .to_str()
                .map_err(|_| ConvertError::new("a UTF-8 string", &value)),
            _ => Err(ConvertError::new("string", &value)),
        }
    }

    pub fn optional_from_lua(value: Value) -> Result<Option<BorrowedStr>, ConvertError> {
        match value {
            Value::Nil => Ok(None),
            other => Self::from_lua(other)
                .map(Some)
                .map_err(ConvertError::or_nil),
        }
    }
}

/// The methods of a type without a `#[lua_methods]` block: none.
///
/// `#[lua_methods]` generates an inherent `__lua_register_methods`, which takes precedence over
/// this trait's in path resolution; a type without such a block falls back to this one. Generic
/// in the described type, because a remote derive's methods are those of its stand-in type.
pub trait NoLuaMethods {
    fn __lua_register_methods<T: LuaUserData, R: Registrar<T>>(_registrar: &mut R) {}

    fn __lua_define_methods(
        _class: &mut crate::userdata::describe::ClassDef,
        _defs: &mut crate::userdata::describe::Definitions,
    ) {
    }
}

impl<T> NoLuaMethods for T {}

/// The probe for a value a method or constant hands to Lua, of type `V`: a derived type becomes
/// a new userdata (no `Clone` needed), a [`LuaConvert`] type converts strictly (`Option<Vec3>`),
/// anything else goes through mlua's `IntoLua`.
pub struct ReturnProbe<V>(PhantomData<V>);

impl<V> ReturnProbe<V> {
    /// A probe for the type of `value`, so generated code need not name it.
    pub fn of(_value: &V) -> Self {
        ReturnProbe(PhantomData)
    }
}

pub trait ReturnViaUserData<V> {
    fn into_lua(self, value: V, lua: &Lua) -> mlua::Result<Value>;
}

impl<V: LuaUserData> ReturnViaUserData<V> for &&&ReturnProbe<V> {
    #[inline]
    fn into_lua(self, value: V, lua: &Lua) -> mlua::Result<Value> {
        super::NewUserData(value).into_lua(lua)
    }
}

pub trait ReturnViaConvert<V> {
    fn into_lua(self, value: V, lua: &Lua) -> mlua::Result<Value>;
}

impl<V: LuaConvert> ReturnViaConvert<V> for &&ReturnProbe<V> {
    #[inline]
    fn into_lua(self, value: V, lua: &Lua) -> mlua::Result<Value> {
        value.into_lua_owned(lua)?.into_lua(lua)
    }
}

pub trait ReturnViaMlua<V> {
    fn into_lua(self, value: V, lua: &Lua) -> mlua::Result<Value>;
}

impl<V: IntoLua> ReturnViaMlua<V> for &ReturnProbe<V> {
    #[inline]
    fn into_lua(self, value: V, lua: &Lua) -> mlua::Result<Value> {
        value.into_lua(lua)
    }
}
