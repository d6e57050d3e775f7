//! The metatables of derived types and of their live references.
//!
//! mlua's own field and method registration dispatches every access through a general Lua
//! helper (`field_getters`, then `methods`, then the fallback, each tested with `~= nil`). We
//! build a shorter dispatch instead: each field getter, setter and method is a Lua function
//! taking its `self` as `UserDataRef<T>` (borrowed straight off the stack, as cheap as mlua's
//! method path), kept in a table, and `__index`/`__newindex` are small Lua closures over those
//! tables. Measured with callgrind (see README, Performance) this costs fewer instructions per
//! access than a hand-written mlua `UserData`.
//!
//! The same description of `T` builds both metatables; an [`Access`] says how a `self` reaches
//! the `T`: directly for owned values, through the place for [`LuaRef<T>`]. On references to
//! components, number and boolean fields get C functions instead (`fast.rs`), which hand
//! anything but the plain case to the functions built here.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use mlua::{
    AnyUserData, Either, FromLua, FromLuaMulti, Function, IntoLua, IntoLuaMulti, Lua, MetaMethod,
    Table, UserDataFields, UserDataRef, UserDataRefMut, UserDataRegistry, Value,
};

use super::LuaUserData;
use super::collection::{Origin, PAIRS};
use super::convert::ConvertError;
use super::error;
use super::fast::{FastField, fast_dispatch, fast_getter, fast_setter, is_keyed, view_entry};
use super::receiver::{CallScope, This, ThisMut, catch_panics};
use super::reference::{LuaRef, UserDataPlace, project_userdata};
use super::registry::{Field, FieldKind, Registrar, VariantField};

/// How a Lua `self` reaches the `T` it stands for.
trait Access<T: LuaUserData>: 'static {
    /// Whether `self` is a reference, whose number and boolean fields may be reached by the
    /// fast field functions (`fast.rs`).
    const REFERENCE: bool;
    /// `self` for reads and `&self` methods.
    type Shared: FromLua + 'static;
    /// `self` for writes of values that convert without borrowing, and `&mut self` methods.
    type Exclusive: FromLua + 'static;
    /// `self` where the owning userdata itself is needed: nested references, and writes that
    /// must convert their value before borrowing the target.
    type Owner: FromLua + 'static;

    fn with<R>(this: &Self::Shared, f: impl FnOnce(&T) -> R) -> mlua::Result<R>;
    fn with_mut<R>(this: &mut Self::Exclusive, f: impl FnOnce(&mut T) -> R) -> mlua::Result<R>;
    /// `self` for a method, not reached yet (methods convert their arguments first).
    fn this(this: &Self::Shared) -> This<'_, T>;
    fn this_mut(this: &mut Self::Exclusive) -> ThisMut<'_, T>;
    fn with_owner_mut<R>(owner: &Self::Owner, f: impl FnOnce(&mut T) -> R) -> mlua::Result<R>;
    fn project<F>(
        owner: Self::Owner,
        get: fn(&T) -> &F,
        get_mut: fn(&mut T) -> &mut F,
    ) -> LuaRef<F>;
    /// A reference to the value `owner` stands for.
    fn reference(owner: Self::Owner) -> LuaRef<T>;
}

/// `self` is the userdata holding the `T`.
struct Owned;

impl<T: LuaUserData> Access<T> for Owned {
    const REFERENCE: bool = false;
    type Shared = UserDataRef<T>;
    type Exclusive = UserDataRefMut<T>;
    type Owner = AnyUserData;

    #[inline]
    fn with<R>(this: &UserDataRef<T>, f: impl FnOnce(&T) -> R) -> mlua::Result<R> {
        Ok(f(this))
    }

    #[inline]
    fn with_mut<R>(this: &mut UserDataRefMut<T>, f: impl FnOnce(&mut T) -> R) -> mlua::Result<R> {
        Ok(f(this))
    }

    #[inline]
    fn this(this: &UserDataRef<T>) -> This<'_, T> {
        This::value(this)
    }

    #[inline]
    fn this_mut(this: &mut UserDataRefMut<T>) -> ThisMut<'_, T> {
        ThisMut::value(this)
    }

    fn with_owner_mut<R>(owner: &AnyUserData, f: impl FnOnce(&mut T) -> R) -> mlua::Result<R> {
        owner.borrow_mut_scoped::<T, R>(f)
    }

    fn project<F>(
        owner: AnyUserData,
        get: fn(&T) -> &F,
        get_mut: fn(&mut T) -> &mut F,
    ) -> LuaRef<F> {
        project_userdata(owner, get, get_mut)
    }

    fn reference(owner: AnyUserData) -> LuaRef<T> {
        LuaRef::new(UserDataPlace(owner))
    }
}

/// `self` is a [`LuaRef<T>`]: the `T` is reached through its place on every access.
struct ByRef;

impl<T: LuaUserData> Access<T> for ByRef {
    const REFERENCE: bool = true;
    type Shared = UserDataRef<LuaRef<T>>;
    type Exclusive = UserDataRef<LuaRef<T>>;
    type Owner = UserDataRef<LuaRef<T>>;

    #[inline]
    fn with<R>(this: &Self::Shared, f: impl FnOnce(&T) -> R) -> mlua::Result<R> {
        this.with(f)
    }

    #[inline]
    fn with_mut<R>(this: &mut Self::Exclusive, f: impl FnOnce(&mut T) -> R) -> mlua::Result<R> {
        this.with_mut(f)
    }

    #[inline]
    fn this(this: &Self::Shared) -> This<'_, T> {
        This::reference(this)
    }

    #[inline]
    fn this_mut(this: &mut Self::Exclusive) -> ThisMut<'_, T> {
        ThisMut::reference(this)
    }

    fn with_owner_mut<R>(owner: &Self::Owner, f: impl FnOnce(&mut T) -> R) -> mlua::Result<R> {
        owner.with_mut(f)
    }

    fn project<F>(
        owner: Self::Owner,
        get: fn(&T) -> &F,
        get_mut: fn(&mut T) -> &mut F,
    ) -> LuaRef<F> {
        owner.project(get, get_mut)
    }

    fn reference(owner: Self::Owner) -> LuaRef<T> {
        LuaRef::clone(&owner)
    }
}

/// Registers the metatable of an owned derived type. Called by the generated `UserData` impl.
pub fn register_userdata<T: LuaUserData>(reg: &mut UserDataRegistry<T>) {
    reg.add_meta_field(MetaMethod::Type, T::TYPE_NAME);
    install::<T, Owned, T>(reg);
}

/// A live reference has the metatable of its target type, reaching the value through its place.
impl<T: LuaUserData> mlua::UserData for LuaRef<T> {
    fn register(reg: &mut UserDataRegistry<Self>) {
        reg.add_meta_field(MetaMethod::Type, T::TYPE_NAME);
        install::<T, ByRef, Self>(reg);
    }
}

/// The functions of one metatable, built together because they share their tables.
struct Built {
    newindex: Option<Function>,
    pairs: Option<Function>,
    metamethods: HashMap<&'static str, Function>,
}

/// Installs `__index`, `__newindex` and the metamethods of `T` into `reg`.
///
/// mlua only hands out the Lua state inside `add_meta_field_with`, and runs those closures in
/// order while registering; the first builds every function and the others collect theirs.
fn install<T: LuaUserData, A: Access<T>, U>(reg: &mut UserDataRegistry<U>) {
    let mut names = MetamethodNames(Vec::new());
    T::describe(&mut names);

    let built: Rc<RefCell<Option<Built>>> = Rc::default();
    let slot = Rc::clone(&built);
    reg.add_meta_field_with(MetaMethod::Index, move |lua| {
        let (index, rest) = build::<T, A>(lua)?;
        *slot.borrow_mut() = Some(rest);
        Ok(index)
    });
    let slot = Rc::clone(&built);
    reg.add_meta_field_with(MetaMethod::NewIndex, move |_| {
        take(&slot, |built| built.newindex.take())
    });
    let slot = Rc::clone(&built);
    reg.add_meta_field_with(PAIRS, move |_| take(&slot, |built| built.pairs.take()));
    for name in names.0 {
        let slot = Rc::clone(&built);
        reg.add_meta_field_with(name, move |_| {
            take(&slot, |built| built.metamethods.remove(name))
        });
    }
}

fn take(
    slot: &RefCell<Option<Built>>,
    f: impl FnOnce(&mut Built) -> Option<Function>,
) -> mlua::Result<Function> {
    slot.borrow_mut()
        .as_mut()
        .and_then(f)
        .ok_or_else(|| error::script_error("internal error: metatable built out of order"))
}

/// The Lua side of the dispatch. Truthiness tests and tail calls keep it short. `pairs(value)`
/// visits the exposed fields in declaration order, reading each as `value.name` does.
const DISPATCH: &str = r#"
local getters, methods, setters, missing, refused, names, names_of = ...
local function index(self, key)
    local get = getters[key]
    if get then return get(self) end
    local method = methods[key]
    if method then return method end
    return missing(self, key)
end
local function newindex(self, key, value)
    local set = setters[key]
    if set then return set(self, value) end
    return refused(self, key, value)
end
local order = {}
for position, name in ipairs(names) do order[name] = position end
local function next_field(self, key)
    local position = 1
    if key ~= nil then position = (order[key] or #names) + 1 end
    local name = names[position]
    if name ~= nil then return name, index(self, name) end
end
local function fields(self)
    if names_of == nil then return next_field, self, nil end
    -- an enum: the fields of the value's variant
    local list, position = names_of(self), 0
    return function()
        position = position + 1
        local name = list[position]
        if name ~= nil then return name, index(self, name) end
    end, self, nil
end
return index, newindex, fields
"#;

fn build<T: LuaUserData, A: Access<T>>(lua: &Lua) -> mlua::Result<(Function, Built)> {
    let mut builder = MetatableBuilder::<T, A> {
        lua,
        getters: lua.create_table()?,
        setters: lua.create_table()?,
        methods: lua.create_table()?,
        fast_getters: lua.create_table()?,
        fast_setters: lua.create_table()?,
        views: lua.create_table()?,
        has_fast: false,
        metamethods: HashMap::new(),
        readonly: Vec::new(),
        method_names: Vec::new(),
        error: None,
        _types: std::marker::PhantomData,
    };
    T::describe(&mut builder);
    if let Some(err) = builder.error {
        return Err(err);
    }
    let MetatableBuilder {
        getters,
        setters,
        methods,
        fast_getters,
        fast_setters,
        views,
        has_fast,
        metamethods,
        readonly,
        method_names,
        ..
    } = builder;
    let missing = lua.create_function(|_, (_this, key): (Value, Value)| {
        Err::<(), _>(error::unknown_key::<T>(&key))
    })?;
    let refused = lua.create_function(move |_, (_this, key, _value): (Value, Value, Value)| {
        Err::<(), _>(error::refused_write::<T>(&key, &readonly, &method_names))
    })?;
    let names = lua.create_sequence_from(T::field_names().iter().copied())?;
    let names_of = match T::ENUM {
        Some(info) => Some(lua.create_function(move |lua, this: A::Shared| {
            let names = A::with(&this, |value| (info.fields_of)(value))?;
            lua.create_sequence_from(names.iter().copied())
        })?),
        None => None,
    };
    let (index, newindex, fields): (Function, Function, Function) = lua
        .load(DISPATCH)
        .set_name("=[bevy_lunar dispatch]")
        .call((
            &getters, &methods, setters, missing, refused, names, names_of,
        ))?;
    let (index, newindex) = if has_fast {
        fast_dispatch(
            lua,
            (index, newindex),
            (fast_getters, fast_setters),
            (methods, getters, views),
        )?
    } else {
        (index, newindex)
    };
    Ok((
        index,
        Built {
            newindex: Some(newindex),
            pairs: Some(fields),
            metamethods,
        },
    ))
}

/// Collects which metamethods a type has, before the Lua state is at hand.
struct MetamethodNames(Vec<&'static str>);

impl<T: LuaUserData> Registrar<T> for MetamethodNames {
    fn meta_function<A, R>(
        &mut self,
        meta: MetaMethod,
        _function: impl Fn(&Lua, A) -> mlua::Result<R> + 'static,
    ) where
        A: FromLuaMulti,
        R: IntoLuaMulti,
    {
        self.0.push(meta.name());
    }
}

/// Builds the getter, setter and method functions of one metatable.
struct MetatableBuilder<'l, T, A> {
    lua: &'l Lua,
    getters: Table,
    setters: Table,
    methods: Table,
    /// The blocks of fast field functions by name (`fast.rs`), the fields whose views a keyed
    /// reference keeps (name -> the field's path for the views' keys, `fast/view.rs`, or
    /// true), and whether there are any of these.
    fast_getters: Table,
    fast_setters: Table,
    views: Table,
    has_fast: bool,
    metamethods: HashMap<&'static str, Function>,
    readonly: Vec<&'static str>,
    method_names: Vec<&'static str>,
    /// The first failure; building goes on so that the caller gets one error at the end.
    error: Option<mlua::Error>,
    _types: std::marker::PhantomData<(T, A)>,
}

/// `table[name] = value`, with the fields of a tuple variant named by position: `value[1]`.
fn set_by_name(table: &Table, name: &'static str, value: impl IntoLua) -> mlua::Result<()> {
    match name.parse::<i64>() {
        Ok(position) => table.raw_set(position, value),
        Err(_) => table.raw_set(name, value),
    }
}

/// Puts `function` into `table`, or keeps the first error.
fn insert(
    table: &Table,
    name: &'static str,
    function: mlua::Result<Function>,
    error: &mut Option<mlua::Error>,
) {
    if let Err(err) = function.and_then(|f| set_by_name(table, name, f)) {
        error.get_or_insert(err);
    }
}

impl<T: LuaUserData, A: Access<T>> MetatableBuilder<'_, T, A> {
    /// The function of a field function that may be fast; its block is kept in `blocks` for
    /// the C dispatch.
    fn keep_fast(
        &mut self,
        name: &'static str,
        field: mlua::Result<FastField>,
        getter: bool,
    ) -> mlua::Result<Function> {
        let FastField { function, block } = field?;
        if let Some(block) = block {
            let blocks = if getter {
                &self.fast_getters
            } else {
                &self.fast_setters
            };
            set_by_name(blocks, name, block)?;
            self.has_fast = true;
        }
        Ok(function)
    }

    /// Lets keyed references keep the view of field `name` (`fast.rs`); `entry` is what the
    /// table of views holds for it (`view_entry`: the path that keys its views).
    fn keep_view(&mut self, name: &'static str, entry: mlua::Result<Value>) {
        match entry.and_then(|entry| set_by_name(&self.views, name, entry)) {
            Ok(()) => self.has_fast = true,
            Err(err) => {
                self.error.get_or_insert(err);
            }
        }
    }

    fn setter<F: 'static, O>(
        &self,
        name: &'static str,
        get_mut: fn(&mut T) -> &mut F,
        kind: &FieldKind<F, O>,
    ) -> mlua::Result<Function> {
        let from_lua = kind.converter();
        let convert = move |lua: &Lua, value: Value| {
            from_lua(value, lua).map_err(|e: ConvertError| error::bad_field_value::<T>(name, e))
        };
        if kind.converts_without_borrowing() {
            self.lua
                .create_function(move |lua, (mut this, value): (A::Exclusive, Value)| {
                    let value = convert(lua, value)?;
                    A::with_mut(&mut this, |target| *get_mut(target) = value)
                })
        } else {
            // The new value may be read out of another userdata (even out of this one, as in
            // `a.pos = a.pos`), so convert it before taking the target's mutable borrow.
            self.lua
                .create_function(move |lua, (owner, value): (A::Owner, Value)| {
                    let value = convert(lua, value)?;
                    A::with_owner_mut(&owner, |target| *get_mut(target) = value)
                })
        }
    }
}

fn not_a<T: LuaUserData>(value: &Value) -> mlua::Error {
    mlua::Error::external(ConvertError::new(T::TYPE_NAME, value))
}

impl<T: LuaUserData, A: Access<T>> Registrar<T> for MetatableBuilder<'_, T, A> {
    fn field<F: 'static, O: IntoLua + 'static>(&mut self, field: Field<T, F, O>) {
        let Field {
            name,
            get,
            get_mut,
            readonly,
            kind,
        } = field;
        let fast = match kind {
            FieldKind::Value { fast, .. } if A::REFERENCE => fast,
            _ => None,
        };
        let getter = match kind {
            FieldKind::Value { to_lua, .. } => self
                .lua
                .create_function(move |lua, this: A::Shared| {
                    A::with(&this, |value| to_lua(get(value), lua))?
                })
                .and_then(|ordinary| match &fast {
                    Some(convert) => {
                        let fast = fast_getter(self.lua, get, convert, ordinary);
                        self.keep_fast(name, fast, true)
                    }
                    None => Ok(ordinary),
                }),
            FieldKind::Live { read, stable, .. } => {
                if stable && A::REFERENCE && is_keyed::<T>(self.lua) {
                    self.keep_view(name, view_entry(self.lua, get, get_mut));
                }
                self.lua.create_function(move |lua, owner: A::Owner| {
                    read(
                        A::project(owner, get, get_mut),
                        Origin::field(T::TYPE_NAME, name),
                        lua,
                    )
                })
            }
        };
        insert(&self.getters, name, getter, &mut self.error);
        if readonly {
            self.readonly.push(name);
        } else {
            let setter = self
                .setter(name, get_mut, &kind)
                .and_then(|ordinary| match &fast {
                    Some(convert) => {
                        let fast = fast_setter(self.lua, get_mut, convert, ordinary);
                        self.keep_fast(name, fast, false)
                    }
                    None => Ok(ordinary),
                });
            insert(&self.setters, name, setter, &mut self.error);
        }
    }

    fn variant_field<F: 'static, O: IntoLua + 'static>(&mut self, field: VariantField<T, F, O>) {
        let VariantField {
            name,
            get,
            get_mut,
            readonly,
            kind,
            variants,
        } = field;
        let getter = match kind {
            FieldKind::Value { to_lua, .. } => {
                self.lua.create_function(move |lua, this: A::Shared| {
                    A::with(&this, |value| match get(value) {
                        Some(field) => to_lua(field, lua)?.into_lua(lua),
                        None => Err(error::wrong_variant::<T>(name, variants, value)),
                    })?
                })
            }
            FieldKind::Live { read, .. } => {
                self.lua.create_function(move |lua, owner: A::Owner| {
                    let reference = A::reference(owner);
                    reference.with(|value| match get(value) {
                        Some(_) => Ok(()),
                        None => Err(error::wrong_variant::<T>(name, variants, value)),
                    })??;
                    let origin = Origin::field(T::TYPE_NAME, name);
                    // The key carries the accessors (`part` takes plain functions).
                    let part = reference.part(
                        (get, get_mut),
                        |value, (get, _)| get(value),
                        |value, (_, get_mut)| get_mut(value),
                        origin.clone(),
                        "the value is another variant now",
                    );
                    read(part, origin, lua)
                })
            }
        };
        insert(&self.getters, name, getter, &mut self.error);
        if readonly {
            self.readonly.push(name);
            return;
        }
        let from_lua = kind.converter();
        let setter = self
            .lua
            .create_function(move |lua, (owner, value): (A::Owner, Value)| {
                let value = from_lua(value, lua)
                    .map_err(|e: ConvertError| error::bad_field_value::<T>(name, e))?;
                A::with_owner_mut(&owner, |target| match get_mut(target) {
                    Some(slot) => {
                        *slot = value;
                        Ok(())
                    }
                    None => Err(error::wrong_variant::<T>(name, variants, target)),
                })?
            });
        insert(&self.setters, name, setter, &mut self.error);
    }

    fn enum_kind(&mut self) {
        let Some(info) = T::ENUM else {
            return;
        };
        let getter = self.lua.create_function(move |_, this: A::Shared| {
            A::with(&this, |value| (info.name_of)(value))
        });
        insert(&self.getters, "kind", getter, &mut self.error);
        let setter = self
            .lua
            .create_function(move |_, (owner, value): (A::Owner, Value)| {
                let variant = error::unit_variant::<T>(info, &value)?;
                A::with_owner_mut(&owner, |target| *target = variant)
            });
        insert(&self.setters, "kind", setter, &mut self.error);
    }

    fn method<Args, R>(
        &mut self,
        name: &'static str,
        method: impl Fn(&Lua, This<'_, T>, Args) -> mlua::Result<R> + 'static,
    ) where
        Args: FromLuaMulti,
        R: IntoLuaMulti,
    {
        self.method_names.push(name);
        let function =
            self.lua
                .create_function(move |lua, (this, args): (Either<A::Shared, Value>, Args)| {
                    let _call = CallScope::enter(T::TYPE_NAME, name);
                    catch_panics(T::TYPE_NAME, name, || match this {
                        Either::Left(this) => method(lua, A::this(&this), args),
                        // Not this metatable's own kind of `self`: an owned value calling a
                        // reference's method or the other way round works; anything else is an
                        // error.
                        Either::Right(other) => match &other {
                            Value::UserData(ud) if ud.is::<T>() => ud
                                .borrow_scoped::<T, _>(|value| {
                                    method(lua, This::value(value), args)
                                })
                                .map_err(|e| error::bad_self::<T>(name, e))?,
                            Value::UserData(ud) if ud.is::<LuaRef<T>>() => {
                                let reference = ud.borrow_scoped::<LuaRef<T>, _>(LuaRef::clone)?;
                                method(lua, This::reference(&reference), args)
                            }
                            _ => Err(error::bad_self::<T>(name, not_a::<T>(&other))),
                        },
                    })
                });
        insert(&self.methods, name, function, &mut self.error);
    }

    fn method_mut<Args, R>(
        &mut self,
        name: &'static str,
        method: impl Fn(&Lua, ThisMut<'_, T>, Args) -> mlua::Result<R> + 'static,
    ) where
        Args: FromLuaMulti,
        R: IntoLuaMulti,
    {
        self.method_names.push(name);
        let function = self.lua.create_function(
            move |lua, (this, args): (Either<A::Exclusive, Value>, Args)| {
                let _call = CallScope::enter(T::TYPE_NAME, name);
                catch_panics(T::TYPE_NAME, name, || match this {
                    Either::Left(mut this) => method(lua, A::this_mut(&mut this), args),
                    Either::Right(other) => match &other {
                        Value::UserData(ud) if ud.is::<T>() => ud
                            .borrow_mut_scoped::<T, _>(|value| {
                                method(lua, ThisMut::value(value), args)
                            })
                            .map_err(|e| error::bad_self::<T>(name, e))?,
                        Value::UserData(ud) if ud.is::<LuaRef<T>>() => {
                            let reference = ud.borrow_scoped::<LuaRef<T>, _>(LuaRef::clone)?;
                            method(lua, ThisMut::reference(&reference), args)
                        }
                        _ => Err(error::bad_self::<T>(name, not_a::<T>(&other))),
                    },
                })
            },
        );
        insert(&self.methods, name, function, &mut self.error);
    }

    fn meta_function<Args, R>(
        &mut self,
        meta: MetaMethod,
        function: impl Fn(&Lua, Args) -> mlua::Result<R> + 'static,
    ) where
        Args: FromLuaMulti,
        R: IntoLuaMulti,
    {
        match self
            .lua
            .create_function(move |lua, args: Args| function(lua, args))
        {
            Ok(function) => {
                self.metamethods.insert(meta.name(), function);
            }
            Err(err) => {
                self.error.get_or_insert(err);
            }
        }
    }
}
