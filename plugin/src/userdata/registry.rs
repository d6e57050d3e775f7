//! Where generated code registers fields, methods and metamethods.
//!
//! A derive describes its type once, against the [`Registrar`] trait. The description is
//! replayed into the registrars that need it: the metatables of the owned type and of
//! [`LuaRef<T>`] (see `metatable.rs`), and the global type table of static functions
//! ([`register_type`](super::register_type)).

use mlua::{FromLuaMulti, IntoLua, IntoLuaMulti, Lua, MetaMethod, Table, Value};

use super::LuaUserData;
use super::collection::Origin;
use super::convert::ConvertError;
use super::fast::FastConvert;
use super::receiver::{CallScope, This, ThisMut, catch_panics};
use super::reference::LuaRef;

/// One exposed field, as the derive describes it. `O` is what a read hands to Lua.
pub struct Field<T, F: 'static, O> {
    /// The name scripts use.
    pub name: &'static str,
    pub get: fn(&T) -> &F,
    pub get_mut: fn(&mut T) -> &mut F,
    /// Reads allowed, writes refused with `field '<name>' is read-only`.
    pub readonly: bool,
    pub kind: FieldKind<F, O>,
}

/// How a field's value crosses into Lua; chosen per field type by the derive's probe.
pub enum FieldKind<F: 'static, O> {
    /// Converted to a plain Lua value on read. `borrows` is set when converting a Lua value
    /// back may borrow other userdata, so writes must convert before borrowing the owner.
    Value {
        to_lua: fn(&F, &Lua) -> mlua::Result<O>,
        from_lua: fn(Value, &Lua) -> Result<F, ConvertError>,
        borrows: bool,
        /// Numbers, booleans and strings: what the fast field functions of references use
        /// (`FastConvert::of` the type's; for a primitive type, such as `f64` or `i32`, they
        /// use its own conversion whatever this says).
        fast: Option<FastConvert<F>>,
    },
    /// A derived type or a collection: read as a live view into the owner
    /// ([`LuaConvert::read_at`](super::LuaConvert::read_at)), written by copy.
    Live {
        read: fn(LuaRef<F>, Origin, &Lua) -> mlua::Result<Value>,
        from_lua: fn(Value, &Lua) -> Result<F, ConvertError>,
        /// Whether `read` always hands out a view, the same whatever the value
        /// ([`LuaConvert::STABLE_VIEW`](super::LuaConvert::STABLE_VIEW)).
        stable: bool,
    },
}

impl<F: 'static, O> FieldKind<F, O> {
    pub(crate) fn converter(&self) -> fn(Value, &Lua) -> Result<F, ConvertError> {
        match *self {
            FieldKind::Value { from_lua, .. } | FieldKind::Live { from_lua, .. } => from_lua,
        }
    }

    pub(crate) fn converts_without_borrowing(&self) -> bool {
        matches!(self, FieldKind::Value { borrows: false, .. })
    }
}

/// A field of some variants of an enum: reachable while the value is one of them.
pub struct VariantField<T, F: 'static, O> {
    /// The name scripts use.
    pub name: &'static str,
    pub get: for<'a> fn(&'a T) -> Option<&'a F>,
    pub get_mut: for<'a> fn(&'a mut T) -> Option<&'a mut F>,
    pub readonly: bool,
    pub kind: FieldKind<F, O>,
    /// The variants having the field, as errors name them (`Chasing or Fleeing`).
    pub variants: &'static str,
}

/// The sink of a type's description; the generated code only ever calls these methods. Each
/// registrar keeps what it needs and ignores the rest (the defaults do nothing).
pub trait Registrar<T: LuaUserData> {
    fn field<F: 'static, O: IntoLua + 'static>(&mut self, field: Field<T, F, O>) {
        let _ = field;
    }

    /// A field of an enum's variants (see [`VariantField`]).
    fn variant_field<F: 'static, O: IntoLua + 'static>(&mut self, field: VariantField<T, F, O>) {
        let _ = field;
    }

    /// An enum's `kind`: the name of the value's variant ([`LuaUserData::ENUM`]); writing the
    /// name of a variant without fields switches the value to it.
    fn enum_kind(&mut self) {}

    /// A constant of the type table made anew on each read (`State.Idle`), so that no script
    /// changes what another reads.
    fn fresh_constant(&mut self, name: &'static str, value: fn(&Lua) -> mlua::Result<Value>) {
        let _ = (name, value);
    }

    /// A method taking `&self`. It converts its arguments first, then reaches `self` through
    /// [`This::with`] (see `receiver.rs`).
    fn method<A, R>(
        &mut self,
        name: &'static str,
        method: impl Fn(&Lua, This<'_, T>, A) -> mlua::Result<R> + 'static,
    ) where
        A: FromLuaMulti,
        R: IntoLuaMulti,
    {
        let _ = (name, method);
    }

    /// A method taking `&mut self`, reached through [`ThisMut::with_mut`].
    fn method_mut<A, R>(
        &mut self,
        name: &'static str,
        method: impl Fn(&Lua, ThisMut<'_, T>, A) -> mlua::Result<R> + 'static,
    ) where
        A: FromLuaMulti,
        R: IntoLuaMulti,
    {
        let _ = (name, method);
    }

    /// A function without `self`: lives in the type table (`Score.new`).
    fn function<A, R>(
        &mut self,
        name: &'static str,
        function: impl Fn(&Lua, A) -> mlua::Result<R> + 'static,
    ) where
        A: FromLuaMulti,
        R: IntoLuaMulti,
    {
        let _ = (name, function);
    }

    /// A constant of the type table (`Vec3.ZERO`), converted when the table is built.
    fn constant(&mut self, name: &'static str, value: fn(&Lua) -> mlua::Result<Value>) {
        let _ = (name, value);
    }

    /// A metamethod taking its operands as plain values, so it works whichever side of a binary
    /// operator the userdata is on.
    fn meta_function<A, R>(
        &mut self,
        meta: MetaMethod,
        function: impl Fn(&Lua, A) -> mlua::Result<R> + 'static,
    ) where
        A: FromLuaMulti,
        R: IntoLuaMulti,
    {
        let _ = (meta, function);
    }
}

/// Collects the static functions of a type into its global table.
pub(crate) struct TypeTableRegistrar<'l> {
    pub(crate) lua: &'l Lua,
    pub(crate) table: Table,
    /// Constants made on each read: `name -> function` (see [`Registrar::fresh_constant`]).
    pub(crate) fresh: Option<Table>,
    /// The first failure; registration goes on so the caller gets one error at the end.
    pub(crate) error: Option<mlua::Error>,
}

/// The type table's `__index` for its fresh constants.
const FRESH_CONSTANTS: &str = r#"
local makers = ...
return function(_, key)
    local make = makers[key]
    if make then return make() end
end
"#;

impl TypeTableRegistrar<'_> {
    /// Installs the lookup of the fresh constants, if there are any.
    pub(crate) fn finish(&mut self) -> mlua::Result<()> {
        if let Some(makers) = self.fresh.take() {
            let index: mlua::Function = self
                .lua
                .load(FRESH_CONSTANTS)
                .set_name("=[bevy_lunar type table]")
                .call(makers)?;
            let metatable = self.lua.create_table()?;
            metatable.raw_set("__index", index)?;
            self.table.set_metatable(Some(metatable))?;
        }
        Ok(())
    }
}

impl<T: LuaUserData> Registrar<T> for TypeTableRegistrar<'_> {
    fn function<A, R>(
        &mut self,
        name: &'static str,
        function: impl Fn(&Lua, A) -> mlua::Result<R> + 'static,
    ) where
        A: FromLuaMulti,
        R: IntoLuaMulti,
    {
        let result = self
            .lua
            .create_function(move |lua, args: A| {
                let _call = CallScope::enter(T::TYPE_NAME, name);
                catch_panics(T::TYPE_NAME, name, || function(lua, args))
            })
            .and_then(|f| self.table.raw_set(name, f));
        if let Err(err) = result {
            self.error.get_or_insert(err);
        }
    }

    fn constant(&mut self, name: &'static str, value: fn(&Lua) -> mlua::Result<Value>) {
        if let Err(err) = value(self.lua).and_then(|v| self.table.raw_set(name, v)) {
            self.error.get_or_insert(err);
        }
    }

    fn fresh_constant(&mut self, name: &'static str, value: fn(&Lua) -> mlua::Result<Value>) {
        let result = (|| {
            let makers = match &self.fresh {
                Some(makers) => makers.clone(),
                None => self.fresh.insert(self.lua.create_table()?).clone(),
            };
            let make = self.lua.create_function(move |lua, ()| value(lua))?;
            makers.raw_set(name, make)
        })();
        if let Err(err) = result {
            self.error.get_or_insert(err);
        }
    }
}
