//! Leaves: the reflected types that cross to Lua as a typed value instead of being walked
//! field by field. Numbers, booleans, strings, `Entity` and `Name` cross by value; every
//! derived type that is `Clone` (`Vec3`, `Color`, the game's own) crosses as a live reference
//! with its methods and operators, and goes back in as a copy.

use std::any::TypeId;
use std::borrow::Cow;
use std::collections::HashMap;

use bevy::ecs::entity::Entity;
use bevy::ecs::name::Name;
use bevy::platform::hash::NoOpHash;
use bevy::reflect::PartialReflect;
use mlua::{IntoLua, Lua, Value};

use super::place::ReflectedPlace;
use super::reference::ReflectedRef;
use crate::userdata::{ConvertError, LuaConvert, LuaRef, LuaUserData, NewUserData};

/// How one leaf type crosses, as plain functions.
#[derive(Clone, Copy)]
pub(crate) struct Leaf {
    /// The type's Lua name, for errors and definitions.
    pub lua_type: fn() -> Cow<'static, str>,
    /// The value for Lua: a copy, or a live reference at `at` (where `value` is).
    pub read: fn(&dyn PartialReflect, &Lua, &ReflectedRef) -> mlua::Result<Value>,
    /// Stores the Lua value in `target` (of this type); a refusal changes nothing.
    pub write: fn(&mut dyn PartialReflect, &Value, &Lua) -> Result<(), ConvertError>,
    /// A new value of this type from the Lua value, for types with no `Default` to start from
    /// (`Entity`); `None` for types built from their `Default`.
    pub make: Option<MakeLeaf>,
    /// Read as a plain Lua value (`read` ignores where it is).
    pub by_value: bool,
}

/// Builds a new leaf value from a Lua value.
pub(crate) type MakeLeaf = fn(&Value, &Lua) -> Result<Box<dyn PartialReflect>, ConvertError>;

/// Leaf types by `TypeId` (which is already a hash: not hashed again).
pub(crate) type Leaves = HashMap<TypeId, Leaf, NoOpHash>;

fn as_type<T: 'static>(value: &dyn PartialReflect) -> Option<&T> {
    value.try_as_reflect()?.as_any().downcast_ref()
}

pub(super) fn as_type_mut<T: 'static>(value: &mut dyn PartialReflect) -> Option<&mut T> {
    value.try_as_reflect_mut()?.as_any_mut().downcast_mut()
}

fn mismatch() -> mlua::Error {
    crate::userdata::script_error("internal error: a reflected leaf of another type")
}

fn not_this_type(expected: Cow<'static, str>) -> ConvertError {
    ConvertError {
        expected,
        got: "a value of another type".to_owned(),
        path: String::new(),
    }
}

impl Leaf {
    /// A type with a strict conversion, crossing by value.
    fn value<T: LuaConvert + PartialReflect>() -> Leaf {
        Leaf {
            lua_type: T::lua_type,
            read: |value, lua, _| match as_type::<T>(value) {
                Some(value) => value.to_lua(lua)?.into_lua(lua),
                None => Err(mismatch()),
            },
            write: |target, value, lua| {
                let converted = T::from_lua(value.clone(), lua)?;
                *as_type_mut::<T>(target).ok_or_else(|| not_this_type(T::lua_type()))? = converted;
                Ok(())
            },
            make: Some(|value, lua| Ok(Box::new(T::from_lua(value.clone(), lua)?))),
            by_value: true,
        }
    }

    /// A derived type: a live reference out (a string for a unit-only enum), a copy in. `None`
    /// when the type cannot be copied.
    pub(crate) fn derived<T: LuaUserData>() -> Option<Leaf> {
        T::cloner()?;
        Some(Leaf {
            lua_type: || Cow::Borrowed(T::TYPE_NAME),
            read: |value, lua, at| {
                if crate::userdata::is_string_enum::<T>() {
                    let value = as_type::<T>(value).ok_or_else(mismatch)?;
                    let clone = T::cloner().ok_or_else(mismatch)?;
                    return NewUserData(clone(value)).into_lua(lua);
                }
                lua.create_userdata(LuaRef::new(ReflectedPlace::<T>::new(at.clone())))
                    .map(Value::UserData)
            },
            write: |target, value, _| {
                let clone = T::cloner().ok_or_else(|| not_this_type(T::TYPE_NAME.into()))?;
                let copy = crate::userdata::copy_from_lua::<T>(value, clone)?;
                *as_type_mut::<T>(target).ok_or_else(|| not_this_type(T::TYPE_NAME.into()))? = copy;
                Ok(())
            },
            make: None,
            by_value: crate::userdata::is_string_enum::<T>(),
        })
    }

    /// `Name`: a string in Lua.
    fn name() -> Leaf {
        Leaf {
            lua_type: || Cow::Borrowed("string"),
            read: |value, lua, _| match as_type::<Name>(value) {
                Some(name) => lua.create_string(name.as_str()).map(Value::String),
                None => Err(mismatch()),
            },
            write: |target, value, lua| {
                let text = <String as LuaConvert>::from_lua(value.clone(), lua)?;
                *as_type_mut::<Name>(target).ok_or_else(|| not_this_type("string".into()))? =
                    Name::new(text);
                Ok(())
            },
            make: Some(|value, lua| {
                let text = <String as LuaConvert>::from_lua(value.clone(), lua)?;
                Ok(Box::new(Name::new(text)))
            }),
            by_value: true,
        }
    }
}

/// The leaves every app has: numbers, booleans, strings, `Entity` and `Name`.
pub(crate) fn builtin_leaves() -> Leaves {
    let mut leaves = Leaves::default();
    macro_rules! by_value {
        ($($ty:ty),*) => {
            $(leaves.insert(TypeId::of::<$ty>(), Leaf::value::<$ty>());)*
        };
    }
    by_value!(
        f32, f64, i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, bool, String, Entity
    );
    leaves.insert(TypeId::of::<Name>(), Leaf::name());
    leaves
}
