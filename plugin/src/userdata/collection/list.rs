//! Lists: `Vec<T>`, `VecDeque<T>` and `[T; N]` as live, 1-based Lua sequences.
//!
//! `#items`, `items[i]` (nil past the end), `items[i] = v` (`#items + 1` appends),
//! `items:push(v)`, `:insert(i, v)`, `:remove(i)`, `:pop()`, `:clear()`, `:contains(v)`,
//! `ipairs` and `pairs`. Lua 5.4's `table.insert`/`table.remove`/`table.sort` work on a list too,
//! through the same metamethods. `items[#items] = nil` removes the last element, as in Lua; a nil
//! anywhere else would leave a hole, and is refused unless the element type takes nil.
//! Arrays have a fixed length: they are read and written in place but never grow or shrink.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::rc::Rc;

use mlua::{
    AnyUserData, IntoLua, Lua, MetaMethod, Table, UserData, UserDataFields, UserDataMethods,
    UserDataRef, Value, Variadic,
};

use super::{
    IPAIRS, METHODS, Origin, PAIRS, TABLE_FUNCTIONS, list_type, lua_index, register_view_methods,
    table_error, view_method, visit, visit_mut,
};
use crate::userdata::convert::{ConvertError, LuaConvert, describe};
use crate::userdata::reference::{LuaRef, plan_then_apply};

/// A Rust container scripts see as a list of `Item`.
pub trait LuaList: Sized + 'static {
    type Item: LuaConvert + Clone + 'static;
    /// A fixed length (arrays): `insert`, `remove` and `clear` are never called.
    const FIXED: bool = false;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn item(&self, index: usize) -> Option<&Self::Item>;
    fn item_mut(&mut self, index: usize) -> Option<&mut Self::Item>;
    fn insert(&mut self, index: usize, item: Self::Item);
    fn remove(&mut self, index: usize) -> Option<Self::Item>;
    fn clear(&mut self);
    /// The container holding `items`, or why it cannot (an array of another length).
    fn from_items(items: Vec<Self::Item>) -> Result<Self, ConvertError>;
}

impl<T: LuaConvert + Clone + 'static> LuaList for Vec<T> {
    type Item = T;

    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn item(&self, index: usize) -> Option<&T> {
        self.get(index)
    }

    fn item_mut(&mut self, index: usize) -> Option<&mut T> {
        self.get_mut(index)
    }

    fn insert(&mut self, index: usize, item: T) {
        Vec::insert(self, index, item);
    }

    fn remove(&mut self, index: usize) -> Option<T> {
        (index < Vec::len(self)).then(|| Vec::remove(self, index))
    }

    fn clear(&mut self) {
        Vec::clear(self);
    }

    fn from_items(items: Vec<T>) -> Result<Self, ConvertError> {
        Ok(items)
    }
}

impl<T: LuaConvert + Clone + 'static> LuaList for VecDeque<T> {
    type Item = T;

    fn len(&self) -> usize {
        VecDeque::len(self)
    }

    fn item(&self, index: usize) -> Option<&T> {
        self.get(index)
    }

    fn item_mut(&mut self, index: usize) -> Option<&mut T> {
        self.get_mut(index)
    }

    fn insert(&mut self, index: usize, item: T) {
        VecDeque::insert(self, index, item);
    }

    fn remove(&mut self, index: usize) -> Option<T> {
        VecDeque::remove(self, index)
    }

    fn clear(&mut self) {
        VecDeque::clear(self);
    }

    fn from_items(items: Vec<T>) -> Result<Self, ConvertError> {
        Ok(items.into())
    }
}

impl<T: LuaConvert + Clone + 'static, const N: usize> LuaList for [T; N] {
    type Item = T;
    const FIXED: bool = true;

    fn len(&self) -> usize {
        N
    }

    fn item(&self, index: usize) -> Option<&T> {
        self.get(index)
    }

    fn item_mut(&mut self, index: usize) -> Option<&mut T> {
        self.get_mut(index)
    }

    fn insert(&mut self, _index: usize, _item: T) {}

    fn remove(&mut self, _index: usize) -> Option<T> {
        None
    }

    fn clear(&mut self) {}

    fn from_items(items: Vec<T>) -> Result<Self, ConvertError> {
        let len = items.len();
        <[T; N]>::try_from(items).map_err(|_| ConvertError {
            expected: Cow::Owned(format!("a list of {N} elements")),
            got: format!("{len} elements"),
            path: String::new(),
        })
    }
}

/// A list of `T` whatever its container (what a [`ListRef`] works on).
trait DynList<T> {
    fn len(&self) -> usize;
    fn item(&self, index: usize) -> Option<&T>;
    fn item_mut(&mut self, index: usize) -> Option<&mut T>;
    fn insert(&mut self, index: usize, item: T);
    fn remove(&mut self, index: usize) -> Option<T>;
    fn clear(&mut self);
}

impl<C: LuaList> DynList<C::Item> for C {
    fn len(&self) -> usize {
        LuaList::len(self)
    }

    fn item(&self, index: usize) -> Option<&C::Item> {
        LuaList::item(self, index)
    }

    fn item_mut(&mut self, index: usize) -> Option<&mut C::Item> {
        LuaList::item_mut(self, index)
    }

    fn insert(&mut self, index: usize, item: C::Item) {
        LuaList::insert(self, index, item);
    }

    fn remove(&mut self, index: usize) -> Option<C::Item> {
        LuaList::remove(self, index)
    }

    fn clear(&mut self) {
        LuaList::clear(self);
    }
}

/// Where a list of `T` is, its container type erased.
trait ListPlace<T>: 'static {
    fn read(&self, f: &mut dyn FnMut(&(dyn DynList<T> + 'static))) -> mlua::Result<()>;
    fn write(&self, f: &mut dyn FnMut(&mut (dyn DynList<T> + 'static))) -> mlua::Result<()>;
    /// A write that may be refused after looking (see `Place::with_mut_checked`).
    fn write_checked(
        &self,
        check: &mut dyn FnMut(&(dyn DynList<T> + 'static)) -> bool,
        f: &mut dyn FnMut(&mut (dyn DynList<T> + 'static)),
    ) -> mlua::Result<bool>;
    /// A live reference to the element at `index` (0-based).
    fn element(&self, index: usize, origin: Origin) -> LuaRef<T>;
    fn fixed(&self) -> bool;
}

impl<C: LuaList> ListPlace<C::Item> for LuaRef<C> {
    fn read(&self, f: &mut dyn FnMut(&(dyn DynList<C::Item> + 'static))) -> mlua::Result<()> {
        self.with(|list| f(list))
    }

    fn write(&self, f: &mut dyn FnMut(&mut (dyn DynList<C::Item> + 'static))) -> mlua::Result<()> {
        self.with_mut(|list| f(list))
    }

    fn write_checked(
        &self,
        check: &mut dyn FnMut(&(dyn DynList<C::Item> + 'static)) -> bool,
        f: &mut dyn FnMut(&mut (dyn DynList<C::Item> + 'static)),
    ) -> mlua::Result<bool> {
        self.with_mut_checked(&mut |list| check(list), &mut |list| f(list))
    }

    fn element(&self, index: usize, origin: Origin) -> LuaRef<C::Item> {
        self.part(
            index,
            |list: &C, index| list.item(*index),
            |list: &mut C, index| list.item_mut(*index),
            origin,
            "no longer in the list",
        )
    }

    fn fixed(&self) -> bool {
        C::FIXED
    }
}

/// A live view of a list of `T` where it lives (see the module docs).
pub struct ListRef<T: 'static> {
    list: Rc<dyn ListPlace<T>>,
    origin: Origin,
}

impl<T: LuaConvert + Clone + 'static> ListRef<T> {
    pub(crate) fn new<C: LuaList<Item = T>>(place: LuaRef<C>, origin: Origin) -> Self {
        ListRef {
            list: Rc::new(place),
            origin,
        }
    }

    fn read<R>(&self, f: impl FnOnce(&(dyn DynList<T> + 'static)) -> R) -> mlua::Result<R> {
        visit(|access| self.list.read(access), f, &self.origin)
    }

    fn write<R>(&self, f: impl FnOnce(&mut (dyn DynList<T> + 'static)) -> R) -> mlua::Result<R> {
        visit_mut(|access| self.list.write(access), f, &self.origin)
    }

    fn len(&self) -> mlua::Result<usize> {
        self.read(|list| list.len())
    }

    /// Copies of the elements.
    pub(crate) fn items(&self) -> mlua::Result<Vec<T>> {
        self.read(|list| {
            (0..list.len())
                .filter_map(|i| list.item(i).cloned())
                .collect()
        })
    }

    fn segment(position: i64) -> String {
        format!("[{position}]")
    }

    /// The element at `index` (0-based) for Lua: a copy or a live view, nil past the end.
    fn get(&self, lua: &Lua, index: usize) -> mlua::Result<Value> {
        if T::LIVE {
            if index >= self.len()? {
                return Ok(Value::Nil);
            }
            let origin = self.origin.child(&Self::segment(index as i64 + 1));
            return T::read_at(self.list.element(index, origin.clone()), origin, lua);
        }
        match self.read(|list| list.item(index).map(|item| item.to_lua(lua)))? {
            Some(item) => item?.into_lua(lua),
            None => Ok(Value::Nil),
        }
    }

    fn convert(&self, lua: &Lua, position: i64, value: Value) -> mlua::Result<T> {
        T::from_lua(value, lua)
            .map_err(|err| self.origin.child(&Self::segment(position)).bad_value(err))
    }

    fn refuse_resize(&self) -> mlua::Result<()> {
        if self.list.fixed() {
            let len = self.len()?;
            return Err(self.origin.error(format_args!(
                "{} has a fixed length of {len}: it cannot grow or shrink",
                self.origin.path()
            )));
        }
        Ok(())
    }

    fn out_of_range(&self, what: &str, position: i64, len: usize) -> mlua::Error {
        self.origin.error(format_args!(
            "{what}: index {position} is out of range for {} (length {len})",
            self.origin.path()
        ))
    }

    /// `list[key]`.
    fn index(&self, lua: &Lua, key: Value) -> mlua::Result<Value> {
        match lua_index(&key) {
            Some(position) if position >= 1 => self.get(lua, (position - 1) as usize),
            Some(_) => Ok(Value::Nil),
            None => match key {
                Value::String(name) => {
                    match view_method::<Self>(lua, &Value::String(name.clone()))? {
                        Some(method) => Ok(Value::Function(method)),
                        None => Err(self.origin.error(format_args!(
                            "{} is a list: it has no field or method '{}'",
                            self.origin.path(),
                            name.to_string_lossy()
                        ))),
                    }
                }
                _ => Ok(Value::Nil),
            },
        }
    }

    /// `list[key] = value`: converted first, then checked against the length and written in
    /// one access to the list (a refused write marks nothing changed).
    fn set(&self, lua: &Lua, key: Value, value: Value) -> mlua::Result<()> {
        let Some(position) = lua_index(&key) else {
            return Err(self.origin.error(format_args!(
                "{} is a list: its keys are 1 to #{0}, not {}",
                self.origin.path(),
                describe(&key)
            )));
        };
        let is_nil = value.is_nil();
        // A nil the elements do not take may still remove the last one, as `t[#t] = nil` does.
        let (item, refused_nil) = match self.convert(lua, position, value) {
            Ok(item) => (Some(item), None),
            Err(err) if is_nil => (None, Some(err)),
            Err(err) => return Err(err),
        };
        let fixed = self.list.fixed();
        enum Write {
            At(usize),
            Append,
            PopLast,
        }
        enum Refusal {
            OutOfRange(usize),
            Hole,
            Nil,
        }
        let has_item = item.is_some();
        let mut item = item;
        let outcome = plan_then_apply(
            |check, write| self.list.write_checked(check, write),
            |list: &(dyn DynList<T> + 'static)| {
                let len = list.len() as i64;
                match (has_item, position) {
                    (true, p) if p >= 1 && p <= len => Ok(Write::At((p - 1) as usize)),
                    (true, p) if p == len + 1 && !fixed => Ok(Write::Append),
                    (true, _) => Err(Refusal::OutOfRange(len as usize)),
                    (false, p) if p == len && len > 0 && !fixed => Ok(Write::PopLast),
                    (false, p) if p >= 1 && p < len => Err(Refusal::Hole),
                    (false, _) => Err(Refusal::Nil),
                }
            },
            |list, write| match (write, item.take()) {
                (Write::At(index), Some(item)) => {
                    if let Some(slot) = list.item_mut(index) {
                        *slot = item;
                    }
                }
                (Write::Append, Some(item)) => {
                    let end = list.len();
                    list.insert(end, item);
                }
                (Write::PopLast, _) => {
                    let last = list.len().saturating_sub(1);
                    list.remove(last);
                }
                _ => {}
            },
        )?;
        match outcome {
            Ok(()) => Ok(()),
            Err(Refusal::OutOfRange(len)) => {
                Err(self.out_of_range("cannot set an element", position, len))
            }
            Err(Refusal::Hole) => Err(self.origin.error(format_args!(
                "cannot set {0}[{position}] to nil: that would leave a hole (use {0}:remove({position}))",
                self.origin.path()
            ))),
            Err(Refusal::Nil) => Err(refused_nil
                .unwrap_or_else(|| self.origin.error("internal error: a nil was not refused"))),
        }
    }

    fn push(&self, lua: &Lua, value: Value) -> mlua::Result<()> {
        self.refuse_resize()?;
        let len = self.len()?;
        let item = self.convert(lua, len as i64 + 1, value)?;
        self.write(|list| {
            let end = list.len();
            list.insert(end, item);
        })
    }

    fn insert(&self, lua: &Lua, position: Value, value: Value) -> mlua::Result<()> {
        self.refuse_resize()?;
        let len = self.len()?;
        let position = match lua_index(&position) {
            Some(p) if p >= 1 && p <= len as i64 + 1 => p,
            Some(p) => return Err(self.out_of_range("insert", p, len)),
            None => {
                return Err(self.origin.error(format_args!(
                    "insert: expected an index, got {}",
                    describe(&position)
                )));
            }
        };
        let item = self.convert(lua, position, value)?;
        self.write(|list| {
            let index = ((position - 1) as usize).min(list.len());
            list.insert(index, item);
        })
    }

    /// Removes the element at `position` (the last without one) and returns it.
    fn remove(&self, lua: &Lua, position: Option<Value>) -> mlua::Result<Value> {
        self.refuse_resize()?;
        let len = self.len()?;
        let position = match position.as_ref().map(lua_index) {
            None if len == 0 => return Ok(Value::Nil),
            None => len as i64,
            Some(Some(p)) if p >= 1 && p <= len as i64 => p,
            Some(Some(p)) => return Err(self.out_of_range("remove", p, len)),
            Some(None) => {
                return Err(self.origin.error(format_args!(
                    "remove: expected an index, got {}",
                    describe(position.as_ref().unwrap_or(&Value::Nil))
                )));
            }
        };
        match self.write(|list| list.remove((position - 1) as usize))? {
            Some(item) => item.into_lua_owned(lua)?.into_lua(lua),
            None => Ok(Value::Nil),
        }
    }

    fn clear(&self) -> mlua::Result<()> {
        self.refuse_resize()?;
        self.write(|list| list.clear())
    }

    /// Whether an element equals `value` as Lua compares them (`==`).
    fn contains(&self, lua: &Lua, value: Value) -> mlua::Result<bool> {
        for index in 0..self.len()? {
            if self.get(lua, index)?.equals(&value)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The `next` of `pairs(list)`: (index, element) from 1 to `#list`.
fn next<T: LuaConvert + Clone + 'static>(
    lua: &Lua,
    (list, position): (AnyUserData, i64),
) -> mlua::Result<(Value, Value)> {
    list.borrow_scoped::<ListRef<T>, _>(|list| {
        let index = position.max(0) as usize;
        if index >= list.len()? {
            return Ok((Value::Nil, Value::Nil));
        }
        Ok((Value::Integer(position + 1), list.get(lua, index)?))
    })?
}

impl<T: LuaConvert + Clone + 'static> UserData for ListRef<T> {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field(MetaMethod::Type, list_type::<T>().into_owned());
        fields.add_meta_field_with(METHODS, |lua| {
            type View<T> = UserDataRef<ListRef<T>>;
            let methods = vec![
                (
                    "push",
                    lua.create_function(|lua, (this, value): (View<T>, Value)| {
                        this.push(lua, value)
                    })?,
                ),
                (
                    "insert",
                    lua.create_function(
                        |lua, (this, position, value): (View<T>, Value, Value)| {
                            this.insert(lua, position, value)
                        },
                    )?,
                ),
                (
                    "remove",
                    lua.create_function(|lua, (this, position): (View<T>, Option<Value>)| {
                        this.remove(lua, position)
                    })?,
                ),
                (
                    "pop",
                    lua.create_function(|lua, this: View<T>| this.remove(lua, None))?,
                ),
                (
                    "clear",
                    lua.create_function(|_, this: View<T>| this.clear())?,
                ),
                (
                    "contains",
                    lua.create_function(|lua, (this, value): (View<T>, Value)| {
                        this.contains(lua, value)
                    })?,
                ),
            ];
            register_view_methods::<Self>(lua, methods)
        });
        fields.add_meta_field_with(TABLE_FUNCTIONS, |lua| {
            lua.create_function(
                |lua, (op, this, args): (String, UserDataRef<Self>, Variadic<Value>)| {
                    let mut args = args.into_iter();
                    match (op.as_str(), args.next(), args.next()) {
                        ("insert", Some(value), None) => this.push(lua, value).map(|_| Value::Nil),
                        ("insert", Some(position), Some(value)) => {
                            this.insert(lua, position, value).map(|_| Value::Nil)
                        }
                        ("remove", position, None) => this.remove(lua, position),
                        // For `table.sort`, `table.concat` and `table.unpack`: a plain table of
                        // copies, worked on by Lua's own function, and (sort) written back.
                        ("copy", _, None) => to_table(&this.items()?, lua),
                        ("assign", Some(Value::Table(sorted)), None) => {
                            let items = table_items::<T>(&sorted, lua)
                                .map_err(|err| this.origin.bad_value(err))?;
                            this.write(|list| {
                                for (index, item) in items.into_iter().enumerate() {
                                    if let Some(slot) = list.item_mut(index) {
                                        *slot = item;
                                    }
                                }
                            })?;
                            Ok(Value::Nil)
                        }
                        _ => Err(this.origin.error(format_args!(
                            "wrong number of arguments to table.{op} on {}",
                            this.origin.path()
                        ))),
                    }
                },
            )
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Index, |lua, this, key: Value| {
            this.index(lua, key)
        });
        methods.add_meta_method(
            MetaMethod::NewIndex,
            |lua, this, (key, value): (Value, Value)| this.set(lua, key, value),
        );
        methods.add_meta_method(MetaMethod::Len, |_, this, ()| this.len());
        methods.add_meta_function(PAIRS, |lua, list: AnyUserData| {
            Ok((lua.create_function(next::<T>)?, list, 0))
        });
        // LuaJIT's `ipairs` (Lua 5.4's reads through `__index`, stopping at the first nil).
        methods.add_meta_function(IPAIRS, |lua, list: AnyUserData| {
            let next = lua.create_function(|lua, args: (AnyUserData, i64)| {
                let (position, value) = next::<T>(lua, args)?;
                Ok(if value.is_nil() {
                    (Value::Nil, Value::Nil)
                } else {
                    (position, value)
                })
            })?;
            Ok((next, list, 0))
        });
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("{} ({} elements)", list_type::<T>(), this.len()?))
        });
    }
}

/// A list as a new Lua table of copies.
fn to_table<C: LuaList>(list: &C, lua: &Lua) -> mlua::Result<Value> {
    let table = lua.create_table()?;
    let items = (0..list.len()).filter_map(|index| list.item(index));
    for (index, item) in items.enumerate() {
        table.raw_set(index + 1, item.to_lua(lua)?)?;
    }
    Ok(Value::Table(table))
}

/// The elements of a Lua sequence, each converted strictly; any key but 1..n is refused.
fn table_items<T: LuaConvert>(table: &Table, lua: &Lua) -> Result<Vec<T>, ConvertError> {
    let len = table.raw_len();
    let mut items = Vec::with_capacity(len);
    for position in 1..=len {
        let value: Value = table
            .raw_get(position)
            .map_err(|err| table_error(list_type::<T>(), err))?;
        items.push(T::from_lua(value, lua).map_err(|err| err.within(&format!("[{position}]")))?);
    }
    for pair in table.pairs::<Value, Value>() {
        let (key, _) = pair.map_err(|err| table_error(list_type::<T>(), err))?;
        if !matches!(lua_index(&key), Some(i) if i >= 1 && i <= len as i64) {
            return Err(ConvertError {
                expected: list_type::<T>(),
                got: format!("a table with the key {}", key_text(&key)),
                path: String::new(),
            });
        }
    }
    Ok(items)
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => format!("'{}'", s.to_string_lossy()),
        other => describe(other),
    }
}

/// A list converted from Lua: a sequence table, or a copy of a live list of the same elements.
pub(crate) fn from_lua<C: LuaList>(value: Value, lua: &Lua) -> Result<C, ConvertError> {
    let items = match &value {
        Value::Table(table) => table_items::<C::Item>(table, lua)?,
        Value::UserData(ud) if ud.is::<ListRef<C::Item>>() => ud
            .borrow_scoped::<ListRef<C::Item>, _>(ListRef::items)
            .and_then(|items| items)
            .map_err(|err| ConvertError {
                expected: list_type::<C::Item>(),
                got: format!("{} that cannot be read ({err})", describe(&value)),
                path: String::new(),
            })?,
        _ => return Err(ConvertError::new(list_type::<C::Item>(), &value)),
    };
    C::from_items(items)
}

convert_collection! {
    ListRef, list_type::<T>(), |defs| format!("{}[]", T::define(defs));
    {T: LuaConvert + Clone + 'static} Vec<T>;
    {T: LuaConvert + Clone + 'static} VecDeque<T>;
    {T: LuaConvert + Clone + 'static, const N: usize} [T; N];
}
