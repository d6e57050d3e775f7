//! Strict conversions between Rust values and Lua values.
//!
//! Unlike mlua's own `FromLua` impls, these never coerce: a string is not a number, `3.5` is not
//! an integer, and `300` is not a `u8`. Every refusal is a [`ConvertError`] saying what was
//! expected and what was given, which the caller turns into a field or argument error.

use std::borrow::Cow;
use std::fmt;

use mlua::{AnyUserData, Function, IntoLua, Lua, LuaString, Table, Value};

use super::collection::Origin;
use super::fast::{Scalar, ScalarConvert, TextConvert};
use super::reference::{LuaRef, with_value};
use super::{EnumInfo, LuaUserData, NewUserData, is_string_enum};

/// A unit-only enum's value from its variant name, strictly: `expected one of "Red", "Blue",
/// got "Green"`.
fn variant_from_lua<T: LuaUserData>(info: EnumInfo<T>, value: &Value) -> Result<T, ConvertError> {
    let expected = || {
        let names: Vec<String> = info.variants.iter().map(|v| format!("{v:?}")).collect();
        format!("one of {}", names.join(", "))
    };
    match value {
        Value::String(name) => {
            let name = name.to_string_lossy();
            if info.variants.contains(&name.as_str())
                && let Some(variant) = (info.unit)(&name)
            {
                return Ok(variant);
            }
            Err(ConvertError {
                expected: Cow::Owned(expected()),
                got: format!("{name:?}"),
                path: String::new(),
            })
        }
        other => Err(ConvertError::new(expected(), other)),
    }
}

/// Why a Lua value was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertError {
    /// What the Rust side accepts, e.g. `number` or `an integer between 0 and 255`.
    pub expected: Cow<'static, str>,
    /// What the script gave, e.g. `string` or `300`.
    pub got: String,
    /// Where in the given value the refused part is (`[2]`, `.potion`), empty for the value
    /// itself.
    pub path: String,
}

impl ConvertError {
    /// A refusal of `value` because it is not of the `expected` type: the error names the type
    /// it has (`expected string, got number`).
    pub fn new(expected: impl Into<Cow<'static, str>>, value: &Value) -> Self {
        ConvertError {
            expected: expected.into(),
            got: describe_type(value),
            path: String::new(),
        }
    }

    /// A refusal of a number out of the `expected` range: the error shows the number
    /// (`expected an integer between 0 and 255, got 300`); other values by their type.
    pub fn out_of_range(expected: impl Into<Cow<'static, str>>, value: &Value) -> Self {
        ConvertError {
            expected: expected.into(),
            got: describe(value),
            path: String::new(),
        }
    }

    /// The same refusal, of a part of the value: `segment` (`[2]`) is put before the path.
    pub fn within(mut self, segment: &str) -> Self {
        self.path.insert_str(0, segment);
        self
    }

    /// The same refusal for an optional value: `nil` was accepted too.
    pub fn or_nil(mut self) -> Self {
        self.expected = Cow::Owned(format!("{} or nil", self.expected));
        self
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "expected {}, got {}", self.expected, self.got)
    }
}

impl std::error::Error for ConvertError {}

/// A value's type as errors name it: `number`, `string`, a userdata's type name (`Vec2`).
pub fn describe_type(value: &Value) -> String {
    match value {
        Value::Integer(_) | Value::Number(_) => "number".to_owned(),
        other => describe(other),
    }
}

/// How a value appears in an error: numbers by value (so range errors show it), the rest by
/// type name.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => n.to_string(),
        Value::UserData(ud) => match ud.type_name() {
            Ok(name) => name.to_string_lossy(),
            Err(_) => "userdata".to_owned(),
        },
        other => other.type_name().to_owned(),
    }
}

/// A Rust type with a strict two-way conversion to Lua.
///
/// Implemented for the integer types, `f32`, `f64`, `bool`, `String`, `Option<T>` and mlua's
/// handle types (`Value`, `Table`, `Function`, `AnyUserData`, `LuaString`), and for every type
/// that derives `LuaUserData` and `Clone` (the value is copied out of the userdata, or out of a
/// live reference to one).
pub trait LuaConvert: Sized {
    /// Whether converting from Lua may borrow a userdata (to copy a derived value out of it).
    /// Writes of such values convert before they borrow their target.
    const BORROWS: bool = false;

    /// How scripts see the type, as used in error messages (`integer`, `number`, `Vec2`).
    fn lua_type() -> Cow<'static, str>;

    /// For numbers and booleans: the conversion the fast field functions use (`fast.rs`).
    const SCALAR: Option<ScalarConvert<Self>> = None;

    /// For strings: the conversion the fast field functions use (`fast.rs`).
    const TEXT: Option<TextConvert<Self>> = None;

    /// Whether reading the value where it lives hands out a live view of it (derived types,
    /// collections) rather than a copy ([`read_at`](Self::read_at)).
    const LIVE: bool = false;

    /// Whether [`read_at`](Self::read_at) always hands out a view of the place, the same
    /// whatever the value there (derived types, not `Option`s): a component reference may then
    /// keep the view it made and hand it out again (`fast.rs`).
    const STABLE_VIEW: bool = false;

    /// Reads the value at `place` for Lua: a copy of plain values, a live view of derived types
    /// and collections. `origin` names the place in errors.
    fn read_at(place: LuaRef<Self>, origin: Origin, lua: &Lua) -> mlua::Result<Value>
    where
        Self: 'static,
    {
        let _ = origin;
        place.with(|value| value.to_lua(lua))??.into_lua(lua)
    }

    /// What a borrowed value becomes on its way to Lua: the value itself for numbers and
    /// booleans (pushed without going through `mlua::Value`), a Lua value otherwise.
    type Out: IntoLua + 'static;

    /// Converts a borrowed Rust value for Lua.
    fn to_lua(&self, lua: &Lua) -> mlua::Result<Self::Out>;

    /// Converts an owned Rust value for Lua (a method's result, say), without a copy where the
    /// type allows.
    fn into_lua_owned(self, lua: &Lua) -> mlua::Result<Self::Out> {
        self.to_lua(lua)
    }

    /// Converts a Lua value, refusing anything that does not fit exactly.
    fn from_lua(value: Value, lua: &Lua) -> Result<Self, ConvertError>;

    /// The type's name in editor definitions: [`lua_type`](Self::lua_type), adding the classes
    /// of the derived types it names to `defs`.
    #[doc(hidden)]
    fn define(defs: &mut crate::userdata::describe::Definitions) -> String {
        let _ = defs;
        Self::lua_type().into_owned()
    }
}

/// Integers accept Lua integers and floats with an exact integral value, and refuse anything out
/// of the Rust type's range.
macro_rules! convert_int {
    ($($ty:ty),*) => {$(
        impl LuaConvert for $ty {
            fn lua_type() -> Cow<'static, str> {
                Cow::Borrowed("integer")
            }

            const SCALAR: Option<ScalarConvert<Self>> = Some(ScalarConvert {
                to: |x| match i64::try_from(*x) {
                    Ok(i) => Scalar::Integer(i),
                    Err(_) => Scalar::Number(*x as f64),
                },
                // Floats with an integral value are left to `from_lua`.
                from: |s| match s {
                    Scalar::Integer(i) => <$ty>::try_from(i).ok(),
                    _ => None,
                },
            });

            // mlua pushes values above i64::MAX (u64, usize) as floats: a Lua integer cannot
            // hold them.
            type Out = $ty;

            #[inline]
            fn to_lua(&self, _lua: &Lua) -> mlua::Result<$ty> {
                Ok(*self)
            }

            #[inline]
            fn from_lua(value: Value, _lua: &Lua) -> Result<Self, ConvertError> {
                let converted = match value {
                    Value::Integer(i) => <$ty>::try_from(i).ok(),
                    Value::Number(n) => integral_float(n).and_then(|i| <$ty>::try_from(i).ok()),
                    _ => None,
                };
                converted.ok_or_else(|| {
                    let expected = format!(
                        "an integer between {} and {}",
                        <$ty>::MIN,
                        <$ty>::MAX
                    );
                    ConvertError::out_of_range(expected, &value)
                })
            }
        }
    )*};
}

convert_int!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

/// The exact integer a float stands for, if it has one in i128 range.
fn integral_float(n: f64) -> Option<i128> {
    // 2^127 and above do not fit; the comparison also rejects NaN.
    const LIMIT: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;
    (n.fract() == 0.0 && n.abs() < LIMIT).then_some(n as i128)
}

impl LuaConvert for f64 {
    fn lua_type() -> Cow<'static, str> {
        Cow::Borrowed("number")
    }

    const SCALAR: Option<ScalarConvert<Self>> = Some(ScalarConvert {
        to: |x| Scalar::Number(*x),
        from: |s| match s {
            Scalar::Number(n) => Some(n),
            Scalar::Integer(i) => Some(i as f64),
            Scalar::Boolean(_) => None,
        },
    });

    type Out = f64;

    #[inline]
    fn to_lua(&self, _lua: &Lua) -> mlua::Result<f64> {
        Ok(*self)
    }

    #[inline]
    fn from_lua(value: Value, _lua: &Lua) -> Result<Self, ConvertError> {
        match value {
            Value::Number(n) => Ok(n),
            Value::Integer(i) => Ok(i as f64),
            other => Err(ConvertError::new("number", &other)),
        }
    }
}

impl LuaConvert for f32 {
    fn lua_type() -> Cow<'static, str> {
        Cow::Borrowed("number")
    }

    const SCALAR: Option<ScalarConvert<Self>> = Some(ScalarConvert {
        to: |x| Scalar::Number(f64::from(*x)),
        from: |s| {
            let n = match s {
                Scalar::Number(n) => n,
                Scalar::Integer(i) => i as f64,
                Scalar::Boolean(_) => return None,
            };
            // Beyond f32's range: `from_lua` words the error.
            (!n.is_finite() || n.abs() <= f64::from(f32::MAX)).then_some(n as f32)
        },
    });

    type Out = f64;

    #[inline]
    fn to_lua(&self, _lua: &Lua) -> mlua::Result<f64> {
        Ok(f64::from(*self))
    }

    #[inline]
    fn from_lua(value: Value, lua: &Lua) -> Result<Self, ConvertError> {
        let n = f64::from_lua(value, lua)?;
        // A finite number beyond f32's range would silently become infinity.
        if n.is_finite() && n.abs() > f64::from(f32::MAX) {
            return Err(ConvertError::out_of_range(
                "a number within f32 range",
                &Value::Number(n),
            ));
        }
        Ok(n as f32)
    }
}

impl LuaConvert for bool {
    fn lua_type() -> Cow<'static, str> {
        Cow::Borrowed("boolean")
    }

    const SCALAR: Option<ScalarConvert<Self>> = Some(ScalarConvert {
        to: |b| Scalar::Boolean(*b),
        from: |s| match s {
            Scalar::Boolean(b) => Some(b),
            _ => None,
        },
    });

    type Out = bool;

    #[inline]
    fn to_lua(&self, _lua: &Lua) -> mlua::Result<bool> {
        Ok(*self)
    }

    #[inline]
    fn from_lua(value: Value, _lua: &Lua) -> Result<Self, ConvertError> {
        match value {
            Value::Boolean(b) => Ok(b),
            other => Err(ConvertError::new("boolean", &other)),
        }
    }
}

impl LuaConvert for String {
    fn lua_type() -> Cow<'static, str> {
        Cow::Borrowed("string")
    }

    const TEXT: Option<TextConvert<Self>> = Some(TextConvert {
        to: String::as_str,
        from: str::to_owned,
    });

    type Out = LuaString;

    fn to_lua(&self, lua: &Lua) -> mlua::Result<LuaString> {
        lua.create_string(self)
    }

    fn from_lua(value: Value, _lua: &Lua) -> Result<Self, ConvertError> {
        match &value {
            Value::String(s) => s
                .to_str()
                .map(|s| s.to_owned())
                .map_err(|_| ConvertError::new("a UTF-8 string", &value)),
            _ => Err(ConvertError::new("string", &value)),
        }
    }
}

impl<T: LuaConvert> LuaConvert for Option<T> {
    const BORROWS: bool = T::BORROWS;

    const LIVE: bool = T::LIVE;

    /// `nil`, or the content read as `T` reads (a live view of a derived value).
    fn read_at(place: LuaRef<Self>, origin: Origin, lua: &Lua) -> mlua::Result<Value>
    where
        Self: 'static,
    {
        if !T::LIVE {
            return place.with(|value| value.to_lua(lua))??.into_lua(lua);
        }
        if !place.with(Option::is_some)? {
            return Ok(Value::Nil);
        }
        let content = place.part(
            (),
            |option: &Option<T>, _| option.as_ref(),
            |option: &mut Option<T>, _| option.as_mut(),
            origin.clone(),
            "it is nil now",
        );
        T::read_at(content, origin, lua)
    }

    fn lua_type() -> Cow<'static, str> {
        Cow::Owned(format!("{}?", T::lua_type()))
    }

    fn define(defs: &mut crate::userdata::describe::Definitions) -> String {
        format!("{}?", T::define(defs))
    }

    type Out = Option<T::Out>;

    fn to_lua(&self, lua: &Lua) -> mlua::Result<Self::Out> {
        self.as_ref().map(|value| value.to_lua(lua)).transpose()
    }

    fn into_lua_owned(self, lua: &Lua) -> mlua::Result<Self::Out> {
        self.map(|value| value.into_lua_owned(lua)).transpose()
    }

    fn from_lua(value: Value, lua: &Lua) -> Result<Self, ConvertError> {
        match value {
            Value::Nil => Ok(None),
            other => T::from_lua(other, lua)
                .map(Some)
                .map_err(ConvertError::or_nil),
        }
    }
}

impl LuaConvert for Value {
    fn lua_type() -> Cow<'static, str> {
        Cow::Borrowed("any")
    }

    type Out = Value;

    fn to_lua(&self, _lua: &Lua) -> mlua::Result<Value> {
        Ok(self.clone())
    }

    fn from_lua(value: Value, _lua: &Lua) -> Result<Self, ConvertError> {
        Ok(value)
    }
}

/// mlua's reference types accept exactly their own kind of Lua value.
macro_rules! convert_handle {
    ($($ty:ty => $variant:ident, $name:literal;)*) => {$(
        impl LuaConvert for $ty {
            fn lua_type() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }

            type Out = $ty;

            fn to_lua(&self, _lua: &Lua) -> mlua::Result<$ty> {
                Ok(self.clone())
            }

            fn from_lua(value: Value, _lua: &Lua) -> Result<Self, ConvertError> {
                match value {
                    Value::$variant(handle) => Ok(handle),
                    other => Err(ConvertError::new($name, &other)),
                }
            }
        }
    )*};
}

convert_handle! {
    Table => Table, "table";
    Function => Function, "function";
    AnyUserData => UserData, "userdata";
    LuaString => String, "string";
}

/// A derived type converts by copy: out of an owned userdata or a live reference on the way in,
/// into a new userdata on the way out.
impl<T: LuaUserData + Clone> LuaConvert for T {
    const BORROWS: bool = !is_string_enum::<T>();

    /// Unit-only enums are strings, read by value.
    const LIVE: bool = !is_string_enum::<T>();

    const STABLE_VIEW: bool = !is_string_enum::<T>();

    /// A live reference to the value.
    fn read_at(place: LuaRef<Self>, _origin: Origin, lua: &Lua) -> mlua::Result<Value> {
        if is_string_enum::<T>() {
            return place
                .with(|value| NewUserData(value.clone()))?
                .into_lua(lua);
        }
        lua.create_userdata(place).map(Value::UserData)
    }

    fn lua_type() -> Cow<'static, str> {
        Cow::Borrowed(T::TYPE_NAME)
    }

    fn define(defs: &mut crate::userdata::describe::Definitions) -> String {
        defs.class::<T>()
    }

    type Out = NewUserData<T>;

    fn to_lua(&self, _lua: &Lua) -> mlua::Result<NewUserData<T>> {
        Ok(NewUserData(self.clone()))
    }

    fn into_lua_owned(self, _lua: &Lua) -> mlua::Result<NewUserData<T>> {
        Ok(NewUserData(self))
    }

    fn from_lua(value: Value, _lua: &Lua) -> Result<Self, ConvertError> {
        copy_from_lua(&value, T::clone)
    }
}

/// A copy of the derived value `value` holds (an owned userdata or a live reference; a variant
/// name for a unit-only enum), made by `clone`.
pub(crate) fn copy_from_lua<T: LuaUserData>(
    value: &Value,
    clone: fn(&T) -> T,
) -> Result<T, ConvertError> {
    if let Some(info) = T::ENUM
        && info.unit_only
    {
        return variant_from_lua(info, value);
    }
    match with_value::<T, _>(value, clone) {
        Ok(Some(copy)) => Ok(copy),
        Ok(None) => Err(ConvertError::new(T::TYPE_NAME, value)),
        Err(err) => Err(ConvertError {
            expected: Cow::Borrowed(T::TYPE_NAME),
            got: format!("{} that cannot be read ({err})", describe(value)),
            path: String::new(),
        }),
    }
}
