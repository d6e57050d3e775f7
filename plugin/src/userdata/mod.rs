//! The runtime half of `#[derive(LuaUserData)]`, `#[lua_methods]` and `#[lua_impl]`.
//!
//! Generated code only describes a type (its fields, methods and operators; an enum's variants)
//! to a [`Registrar`]; everything else lives here: strict conversions ([`LuaConvert`]), live
//! references for nested fields ([`LuaRef`]) and live views of collections ([`collection`]),
//! method receivers and borrowed arguments (`receiver.rs`), error messages, operator
//! metamethods ([`ops`]), and the global type tables ([`register_type`]).

pub mod collection;
mod convert;
pub mod describe;
mod error;
mod fast;
mod metatable;
pub mod ops;
mod receiver;
mod reference;
mod registry;
mod select;
mod variant;

use mlua::{AnyUserData, IntoLua, Lua, Table, Value};

pub(crate) use convert::copy_from_lua;
pub use convert::{ConvertError, LuaConvert, describe, describe_type};
pub use error::{bad_argument, bad_argument_cause, method_error, script_error};
#[cfg(feature = "lua54")]
pub(crate) use fast::key_of;
pub use fast::{FastConvert, SHORT_TEXT, Scalar, ScalarConvert, TextConvert};
pub(crate) use fast::{
    Kept, Key, KeyedAccess, register_keyed_access, register_view_types, set_key,
};
pub use metatable::register_userdata;
pub use receiver::{Span, This, ThisMut, UserDataArg, current_call};
pub use reference::{LuaRef, Place, StaleReference, with_value, with_value_mut};
pub use registry::{Field, FieldKind, Registrar, VariantField};

#[doc(hidden)]
pub mod __private {
    pub use super::describe::{
        NegOp, NotOp, OperatorProbe, OperatorViaAny, OperatorViaApply, TypeProbe, TypeViaAny,
        TypeViaClass, TypeViaConvert,
    };
    pub use super::ops::{ScalarBothWays, ScalarOneWay};
    pub use super::receiver::{CloneProbe, CloneViaClone, CloneViaNone, Span, UserDataArg};
    pub use super::select::{
        ArgProbe, ArgViaConvert, ArgViaMlua, ArgViaUnsupported, FieldProbe, FieldViaConvert,
        FieldViaMlua, FieldViaUnsupported, NoLuaMethods, ReturnProbe, ReturnViaConvert,
        ReturnViaMlua, ReturnViaUserData, StrArg,
    };
    pub use super::variant::VariantArgs;
    pub use super::{EnumInfo, NewUserData};
    pub use mlua::Value;
}

/// A Rust type exposed to Lua as userdata. Implement it with `#[derive(LuaUserData)]`.
///
/// ```
/// use bevy_lunar::prelude::*;
///
/// #[derive(LuaUserData)]
/// struct Player {
///     pub name: String,
///     pub health: f64,
///     internal_id: u64, // private: invisible to Lua
/// }
///
/// assert_eq!(Player::TYPE_NAME, "Player");
/// assert_eq!(Player::field_names(), ["name", "health"]);
/// # let _ = Player { name: String::new(), health: 0.0, internal_id: 0 }.internal_id;
/// ```
pub trait LuaUserData: Sized + 'static {
    /// The name scripts know the type by: in errors, `tostring` and the type table.
    const TYPE_NAME: &'static str;

    /// The Lua names of the exposed fields, in declaration order.
    fn field_names() -> &'static [&'static str];

    /// For enums: their variants, and whether the type is a string in Lua (see [`EnumInfo`]).
    #[doc(hidden)]
    const ENUM: Option<EnumInfo<Self>> = None;

    /// Describes fields, methods and operators to `registrar`. Generated; not for calling.
    #[doc(hidden)]
    fn describe<R: Registrar<Self>>(registrar: &mut R);

    /// The type as editors see it (see [`definitions`](crate::definitions)). Generated; the
    /// classes of derived types it names are added to `defs`.
    #[doc(hidden)]
    fn define(defs: &mut describe::Definitions) -> describe::ClassDef;

    /// How the type is copied, if it is `Clone` (reflected fields of the type come out as live
    /// references to it, and go back in as copies). Generated.
    #[doc(hidden)]
    fn cloner() -> Option<fn(&Self) -> Self> {
        None
    }

    /// Moves the value into a new Lua userdata. Generated: through `mlua::UserData` for a type
    /// of the deriving crate, through [`create_remote`] for a remote (foreign) type.
    #[doc(hidden)]
    fn into_userdata(self, lua: &Lua) -> mlua::Result<AnyUserData>;
}

/// What a derived enum tells the runtime about its variants. Generated.
///
/// An enum whose variants all have no fields (`unit_only`) is a string in Lua: its values cross
/// as their variant names (`"Red"`), checked against the list on the way in. Other enums are
/// userdata with a `kind` naming the variant and the variant's fields.
pub struct EnumInfo<T: 'static> {
    /// The Lua names of the variants scripts may name, in declaration order.
    pub variants: &'static [&'static str],
    /// No variant has fields: values are strings in Lua.
    pub unit_only: bool,
    /// The Lua name of a value's variant.
    pub name_of: fn(&T) -> &'static str,
    /// The value of the unit variant called `name`, if there is one.
    pub unit: fn(&str) -> Option<T>,
    /// The Lua names of a value's fields (`kind` first), for `pairs`.
    pub fields_of: fn(&T) -> &'static [&'static str],
}

impl<T: 'static> Clone for EnumInfo<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: 'static> Copy for EnumInfo<T> {}

/// Whether `T` is an enum whose values are strings in Lua.
pub(crate) const fn is_string_enum<T: LuaUserData>() -> bool {
    match T::ENUM {
        Some(info) => info.unit_only,
        None => false,
    }
}

/// A derived value on its way into Lua as a new userdata (a string for a unit-only enum).
pub struct NewUserData<T>(pub T);

impl<T: LuaUserData> IntoLua for NewUserData<T> {
    #[inline]
    fn into_lua(self, lua: &Lua) -> mlua::Result<Value> {
        if let Some(info) = T::ENUM
            && info.unit_only
        {
            return (info.name_of)(&self.0).into_lua(lua);
        }
        self.0.into_userdata(lua).map(Value::UserData)
    }
}

/// Creates the userdata of a remote type (one derived with `#[lua(remote = ...)]`), which cannot
/// implement `mlua::UserData`: its metatable is registered with mlua on first use.
#[doc(hidden)]
pub fn create_remote<T: LuaUserData>(lua: &Lua, value: T) -> mlua::Result<AnyUserData> {
    // A `TypeId` is already a hash: hashing it again with the default SipHash cost about 140
    // instructions per value made (a `Vec3` result of `a + b`: 4,216 -> about 4,080).
    struct RegisteredRemotes(
        bevy::platform::collections::HashSet<std::any::TypeId, bevy::platform::hash::NoOpHash>,
    );

    let id = std::any::TypeId::of::<T>();
    let registered = lua
        .app_data_ref::<RegisteredRemotes>()
        .is_some_and(|set| set.0.contains(&id));
    if !registered {
        lua.register_userdata_type::<T>(register_userdata)?;
        match lua.app_data_mut::<RegisteredRemotes>() {
            Some(mut set) => {
                set.0.insert(id);
            }
            None => {
                let mut set = bevy::platform::collections::HashSet::default();
                set.insert(id);
                lua.set_app_data(RegisteredRemotes(set));
            }
        }
    }
    lua.create_any_userdata(value)
}

/// Installs the global table `T` (named like the struct) holding `T`'s static functions, such as
/// constructors, and returns it.
///
/// ```
/// use bevy_lunar::prelude::*;
/// use bevy_lunar::mlua::Lua;
///
/// #[derive(LuaUserData)]
/// struct Score {
///     pub value: i64,
/// }
///
/// #[lua_methods]
/// impl Score {
///     pub fn new(value: i64) -> Self {
///         Score { value }
///     }
/// }
///
/// let lua = Lua::new();
/// bevy_lunar::register_type::<Score>(&lua).unwrap();
/// let value: i64 = lua.load("return Score.new(42).value").eval().unwrap();
/// assert_eq!(value, 42);
/// ```
pub fn register_type<T: LuaUserData>(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    let mut registrar = registry::TypeTableRegistrar {
        lua,
        table: table.clone(),
        fresh: None,
        error: None,
    };
    T::describe(&mut registrar);
    if let Some(err) = registrar.error {
        return Err(err);
    }
    registrar.finish()?;
    lua.globals().set(T::TYPE_NAME, &table)?;
    Ok(table)
}
