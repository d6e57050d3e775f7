//! Where generated code registers fields, methods and metamethods.
//!
//! A derive describes its type once, against the [`Registrar`] trait. The same description is
//! replayed into three registrars: the mlua metatable of the owned type, the metatable of
//! [`LuaRef<T>`] (live references, which reach the value through a [`Place`](super::Place)), and
//! the global type table of static functions ([`register_type`](super::register_type)).

use std::rc::Rc;

use mlua::{
    AnyUserData, FromLuaMulti, IntoLuaMulti, Lua, MetaMethod, Table, UserDataFields,
    UserDataMethods, UserDataRegistry, Value,
};

use super::LuaUserData;
use super::convert::ConvertError;
use super::error;
use super::reference::{LuaRef, project_userdata};

/// One exposed field, as the derive describes it.
pub struct Field<T, F: 'static> {
    /// The name scripts use.
    pub name: &'static str,
    pub get: fn(&T) -> &F,
    pub get_mut: fn(&mut T) -> &mut F,
    /// Reads allowed, writes refused with `field '<name>' is read-only`.
    pub readonly: bool,
    pub kind: FieldKind<F>,
}

/// How a field's value crosses into Lua; chosen per field type by [`field_kind!`](crate::field_kind).
pub enum FieldKind<F: 'static> {
    /// Converted to a plain Lua value on read. `borrows` is set when converting a Lua value
    /// back may borrow other userdata, so writes must convert before borrowing the owner.
    Value {
        to_lua: fn(&F, &Lua) -> mlua::Result<Value>,
        from_lua: fn(Value, &Lua) -> Result<F, ConvertError>,
        borrows: bool,
    },
    /// A derived type: read as a live reference into the owner, written by copy.
    Nested {
        new_ref: fn(LuaRef<F>, &Lua) -> mlua::Result<Value>,
        from_lua: fn(Value, &Lua) -> Result<F, ConvertError>,
    },
}

impl<F: 'static> FieldKind<F> {
    fn converter(&self) -> fn(Value, &Lua) -> Result<F, ConvertError> {
        match *self {
            FieldKind::Value { from_lua, .. } | FieldKind::Nested { from_lua, .. } => from_lua,
        }
    }

    fn converts_without_borrowing(&self) -> bool {
        matches!(self, FieldKind::Value { borrows: false, .. })
    }
}

/// The sink of a type's description. Implemented by the three registrars of this module; the
/// generated code only ever calls these methods.
pub trait Registrar<T: LuaUserData> {
    fn field<F: 'static>(&mut self, field: Field<T, F>);

    /// A method taking `&self`.
    fn method<A, R>(
        &mut self,
        name: &'static str,
        method: impl Fn(&Lua, &T, A) -> mlua::Result<R> + 'static,
    ) where
        A: FromLuaMulti,
        R: IntoLuaMulti;

    /// A method taking `&mut self`.
    fn method_mut<A, R>(
        &mut self,
        name: &'static str,
        method: impl Fn(&Lua, &mut T, A) -> mlua::Result<R> + 'static,
    ) where
        A: FromLuaMulti,
        R: IntoLuaMulti;

    /// A function without `self`: lives in the type table (`Score.new`).
    fn function<A, R>(
        &mut self,
        name: &'static str,
        function: impl Fn(&Lua, A) -> mlua::Result<R> + 'static,
    ) where
        A: FromLuaMulti,
        R: IntoLuaMulti;

    /// A metamethod taking its operands as plain values, so it works whichever side of a binary
    /// operator the userdata is on.
    fn meta_function<A, R>(
        &mut self,
        meta: MetaMethod,
        function: impl Fn(&Lua, A) -> mlua::Result<R> + 'static,
    ) where
        A: FromLuaMulti,
        R: IntoLuaMulti;
}

/// Names collected while registering, for the errors of the fallback `__index`/`__newindex`.
#[derive(Default)]
struct Names {
    readonly: Vec<&'static str>,
    methods: Vec<&'static str>,
}

/// Installs the `__index`/`__newindex` fallbacks that mlua calls when a key is neither a field
/// nor a method: they only ever raise the error for that key.
fn install_fallbacks<T: LuaUserData, U>(reg: &mut UserDataRegistry<U>, names: Names) {
    let names = Rc::new(names);
    reg.add_meta_function(MetaMethod::Index, |_, (_this, key): (Value, Value)| {
        Err::<(), _>(error::unknown_key::<T>(&key))
    });
    reg.add_meta_function(
        MetaMethod::NewIndex,
        move |_, (_this, key, _value): (Value, Value, Value)| {
            Err::<(), _>(error::refused_write::<T>(
                &key,
                &names.readonly,
                &names.methods,
            ))
        },
    );
}

/// Registers the metatable of an owned derived type. Called by the generated `UserData` impl.
pub fn register_userdata<T: LuaUserData>(reg: &mut UserDataRegistry<T>) {
    let mut registrar = OwnedRegistrar {
        reg,
        names: Names::default(),
    };
    T::describe(&mut registrar);
    let names = registrar.names;
    install_fallbacks::<T, T>(reg, names);
}

struct OwnedRegistrar<'r, T: 'static> {
    reg: &'r mut UserDataRegistry<T>,
    names: Names,
}

impl<T: LuaUserData> Registrar<T> for OwnedRegistrar<'_, T> {
    fn field<F: 'static>(&mut self, field: Field<T, F>) {
        let Field {
            name,
            get,
            get_mut,
            readonly,
            kind,
        } = field;
        match kind {
            FieldKind::Value { to_lua, .. } => {
                self.reg
                    .add_field_method_get(name, move |lua, this: &T| to_lua(get(this), lua));
            }
            FieldKind::Nested { new_ref, .. } => {
                self.reg
                    .add_field_function_get(name, move |lua, owner: AnyUserData| {
                        new_ref(project_userdata(owner, get, get_mut), lua)
                    });
            }
        }
        if readonly {
            self.names.readonly.push(name);
            return;
        }
        let from_lua = kind.converter();
        if kind.converts_without_borrowing() {
            self.reg
                .add_field_method_set(name, move |lua, this: &mut T, value: Value| {
                    *get_mut(this) =
                        from_lua(value, lua).map_err(|e| error::bad_field_value::<T>(name, e))?;
                    Ok(())
                });
        } else {
            // The new value may be read out of another userdata (even out of this one, as in
            // `a.pos = a.pos`), so convert it before taking the owner's mutable borrow.
            self.reg
                .add_field_function_set(name, move |lua, owner: AnyUserData, value: Value| {
                    let value =
                        from_lua(value, lua).map_err(|e| error::bad_field_value::<T>(name, e))?;
                    owner.borrow_mut_scoped::<T, _>(|this| *get_mut(this) = value)
                });
        }
    }

    fn method<A, R>(
        &mut self,
        name: &'static str,
        method: impl Fn(&Lua, &T, A) -> mlua::Result<R> + 'static,
    ) where
        A: FromLuaMulti,
        R: IntoLuaMulti,
    {
        self.names.methods.push(name);
        self.reg.add_method(name, method);
    }

    fn method_mut<A, R>(
        &mut self,
        name: &'static str,
        method: impl Fn(&Lua, &mut T, A) -> mlua::Result<R> + 'static,
    ) where
        A: FromLuaMulti,
        R: IntoLuaMulti,
    {
        self.names.methods.push(name);
        self.reg.add_method_mut(name, method);
    }

    fn function<A, R>(
        &mut self,
        _name: &'static str,
        _function: impl Fn(&Lua, A) -> mlua::Result<R> + 'static,
    ) where
        A: FromLuaMulti,
        R: IntoLuaMulti,
    {
        // Static functions live in the type table only.
    }

    fn meta_function<A, R>(
        &mut self,
        meta: MetaMethod,
        function: impl Fn(&Lua, A) -> mlua::Result<R> + 'static,
    ) where
        A: FromLuaMulti,
        R: IntoLuaMulti,
    {
        self.reg.add_meta_function(meta, function);
    }
}

/// A live reference has the metatable of its target type, reaching the value through its place.
impl<T: LuaUserData> mlua::UserData for LuaRef<T> {
    fn register(reg: &mut UserDataRegistry<Self>) {
        reg.add_meta_field(MetaMethod::Type, T::TYPE_NAME);
        let mut registrar = RefRegistrar {
            reg,
            names: Names::default(),
        };
        T::describe(&mut registrar);
        let names = registrar.names;
        install_fallbacks::<T, Self>(reg, names);
    }
}

struct RefRegistrar<'r, T: 'static> {
    reg: &'r mut UserDataRegistry<LuaRef<T>>,
    names: Names,
}

impl<T: LuaUserData> Registrar<T> for RefRegistrar<'_, T> {
    fn field<F: 'static>(&mut self, field: Field<T, F>) {
        let Field {
            name,
            get,
            get_mut,
            readonly,
            kind,
        } = field;
        match kind {
            FieldKind::Value { to_lua, .. } => {
                self.reg
                    .add_field_method_get(name, move |lua, this: &LuaRef<T>| {
                        this.with(|value| to_lua(get(value), lua))?
                    });
            }
            FieldKind::Nested { new_ref, .. } => {
                self.reg
                    .add_field_method_get(name, move |lua, this: &LuaRef<T>| {
                        new_ref(this.project(get, get_mut), lua)
                    });
            }
        }
        if readonly {
            self.names.readonly.push(name);
            return;
        }
        let from_lua = kind.converter();
        self.reg
            .add_field_method_set(name, move |lua, this: &mut LuaRef<T>, value: Value| {
                // Converted before the place is borrowed, as for owned values.
                let value =
                    from_lua(value, lua).map_err(|e| error::bad_field_value::<T>(name, e))?;
                this.with_mut(|target| *get_mut(target) = value)
            });
    }

    fn method<A, R>(
        &mut self,
        name: &'static str,
        method: impl Fn(&Lua, &T, A) -> mlua::Result<R> + 'static,
    ) where
        A: FromLuaMulti,
        R: IntoLuaMulti,
    {
        self.names.methods.push(name);
        self.reg
            .add_method(name, move |lua, this: &LuaRef<T>, args: A| {
                this.with(|value| method(lua, value, args))?
            });
    }

    fn method_mut<A, R>(
        &mut self,
        name: &'static str,
        method: impl Fn(&Lua, &mut T, A) -> mlua::Result<R> + 'static,
    ) where
        A: FromLuaMulti,
        R: IntoLuaMulti,
    {
        self.names.methods.push(name);
        self.reg
            .add_method(name, move |lua, this: &LuaRef<T>, args: A| {
                this.with_mut(|value| method(lua, value, args))?
            });
    }

    fn function<A, R>(
        &mut self,
        _name: &'static str,
        _function: impl Fn(&Lua, A) -> mlua::Result<R> + 'static,
    ) where
        A: FromLuaMulti,
        R: IntoLuaMulti,
    {
    }

    fn meta_function<A, R>(
        &mut self,
        meta: MetaMethod,
        function: impl Fn(&Lua, A) -> mlua::Result<R> + 'static,
    ) where
        A: FromLuaMulti,
        R: IntoLuaMulti,
    {
        self.reg.add_meta_function(meta, function);
    }
}

/// Collects the static functions of a type into its global table.
pub(crate) struct TypeTableRegistrar<'l> {
    pub(crate) lua: &'l Lua,
    pub(crate) table: Table,
    /// The first failure; registration goes on so the caller gets one error at the end.
    pub(crate) error: Option<mlua::Error>,
}

impl<T: LuaUserData> Registrar<T> for TypeTableRegistrar<'_> {
    fn field<F: 'static>(&mut self, _field: Field<T, F>) {}

    fn method<A, R>(
        &mut self,
        _name: &'static str,
        _method: impl Fn(&Lua, &T, A) -> mlua::Result<R> + 'static,
    ) where
        A: FromLuaMulti,
        R: IntoLuaMulti,
    {
    }

    fn method_mut<A, R>(
        &mut self,
        _name: &'static str,
        _method: impl Fn(&Lua, &mut T, A) -> mlua::Result<R> + 'static,
    ) where
        A: FromLuaMulti,
        R: IntoLuaMulti,
    {
    }

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
            .create_function(move |lua, args: A| function(lua, args))
            .and_then(|f| self.table.raw_set(name, f));
        if let Err(err) = result {
            self.error.get_or_insert(err);
        }
    }

    fn meta_function<A, R>(
        &mut self,
        _meta: MetaMethod,
        _function: impl Fn(&Lua, A) -> mlua::Result<R> + 'static,
    ) where
        A: FromLuaMulti,
        R: IntoLuaMulti,
    {
    }
}
