//! Sets: `HashSet<T>` (std's or Bevy's) and `BTreeSet<T>` (of strings, integers, booleans, entities) as live Lua
//! sets, the Lua idiom `{[v] = true}`.
//!
//! `tags.boss` / `tags[v]` is `true` for a member and nil otherwise, `tags[v] = true` adds,
//! `tags[v] = nil` (or `false`) removes, `#tags` counts, `pairs(tags)` visits `v, true` in order.
//! The methods `contains`, `insert`, `remove` and `clear` are looked up first.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};
use std::hash::BuildHasher;
use std::ops::{Deref, DerefMut};

use bevy::platform::collections::HashSet as BevyHashSet;
use std::rc::Rc;

use mlua::{
    AnyUserData, IntoLua, Lua, MetaMethod, UserData, UserDataFields, UserDataMethods, UserDataRef,
    Value,
};

use super::{
    LuaKey, METHODS, Origin, PAIRS, TABLE_FUNCTIONS, lua_index, refusing_table_functions,
    register_view_methods, set_type, table_error, view_method, visit, visit_mut,
};
use crate::userdata::convert::{ConvertError, LuaConvert, describe};
use crate::userdata::reference::LuaRef;

/// A Rust container scripts see as a set of `Item`.
pub trait LuaSet: Sized + 'static {
    type Item: LuaKey;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn contains(&self, item: &Self::Item) -> bool;
    fn insert(&mut self, item: Self::Item) -> bool;
    fn remove(&mut self, item: &Self::Item) -> bool;
    fn clear(&mut self);
    /// The members in order, so that `pairs` visits a set the same way on every run.
    fn items(&self) -> Vec<Self::Item>;
    fn from_items(items: Vec<Self::Item>) -> Self;
}

impl<T: LuaKey, S: BuildHasher + Default + 'static> LuaSet for HashSet<T, S> {
    type Item = T;

    fn len(&self) -> usize {
        HashSet::len(self)
    }

    fn contains(&self, item: &T) -> bool {
        HashSet::contains(self, item)
    }

    fn insert(&mut self, item: T) -> bool {
        HashSet::insert(self, item)
    }

    fn remove(&mut self, item: &T) -> bool {
        HashSet::remove(self, item)
    }

    fn clear(&mut self) {
        HashSet::clear(self);
    }

    fn items(&self) -> Vec<T> {
        let mut items: Vec<T> = self.iter().cloned().collect();
        items.sort();
        items
    }

    fn from_items(items: Vec<T>) -> Self {
        items.into_iter().collect()
    }
}

impl<T: LuaKey> LuaSet for BTreeSet<T> {
    type Item = T;

    fn len(&self) -> usize {
        BTreeSet::len(self)
    }

    fn contains(&self, item: &T) -> bool {
        BTreeSet::contains(self, item)
    }

    fn insert(&mut self, item: T) -> bool {
        BTreeSet::insert(self, item)
    }

    fn remove(&mut self, item: &T) -> bool {
        BTreeSet::remove(self, item)
    }

    fn clear(&mut self) {
        BTreeSet::clear(self);
    }

    fn items(&self) -> Vec<T> {
        self.iter().cloned().collect()
    }

    fn from_items(items: Vec<T>) -> Self {
        items.into_iter().collect()
    }
}

/// Bevy's own `HashSet` (`bevy::platform::collections`), a wrapper of hashbrown's.
impl<T: LuaKey, S: BuildHasher + Default + 'static> LuaSet for BevyHashSet<T, S> {
    type Item = T;

    // Through the wrapped set: called on the wrapper, a method it lacks would be this trait's.
    fn len(&self) -> usize {
        Deref::deref(self).len()
    }

    fn contains(&self, item: &T) -> bool {
        Deref::deref(self).contains(item)
    }

    fn insert(&mut self, item: T) -> bool {
        DerefMut::deref_mut(self).insert(item)
    }

    fn remove(&mut self, item: &T) -> bool {
        DerefMut::deref_mut(self).remove(item)
    }

    fn clear(&mut self) {
        DerefMut::deref_mut(self).clear();
    }

    fn items(&self) -> Vec<T> {
        let mut items: Vec<T> = Deref::deref(self).iter().cloned().collect();
        items.sort();
        items
    }

    fn from_items(items: Vec<T>) -> Self {
        items.into_iter().collect()
    }
}

/// A set of `T` whatever its container (what a [`SetRef`] works on).
trait DynSet<T> {
    fn len(&self) -> usize;
    fn contains(&self, item: &T) -> bool;
    fn insert(&mut self, item: T) -> bool;
    fn remove(&mut self, item: &T) -> bool;
    fn clear(&mut self);
    fn items(&self) -> Vec<T>;
}

impl<S: LuaSet> DynSet<S::Item> for S {
    fn len(&self) -> usize {
        LuaSet::len(self)
    }

    fn contains(&self, item: &S::Item) -> bool {
        LuaSet::contains(self, item)
    }

    fn insert(&mut self, item: S::Item) -> bool {
        LuaSet::insert(self, item)
    }

    fn remove(&mut self, item: &S::Item) -> bool {
        LuaSet::remove(self, item)
    }

    fn clear(&mut self) {
        LuaSet::clear(self);
    }

    fn items(&self) -> Vec<S::Item> {
        LuaSet::items(self)
    }
}

/// Where a set is, its container type erased.
trait SetPlace<T>: 'static {
    fn read(&self, f: &mut dyn FnMut(&(dyn DynSet<T> + 'static))) -> mlua::Result<()>;
    fn write(&self, f: &mut dyn FnMut(&mut (dyn DynSet<T> + 'static))) -> mlua::Result<()>;
}

impl<S: LuaSet> SetPlace<S::Item> for LuaRef<S> {
    fn read(&self, f: &mut dyn FnMut(&(dyn DynSet<S::Item> + 'static))) -> mlua::Result<()> {
        self.with(|set| f(set))
    }

    fn write(&self, f: &mut dyn FnMut(&mut (dyn DynSet<S::Item> + 'static))) -> mlua::Result<()> {
        self.with_mut(|set| f(set))
    }
}

/// A live view of a set where it lives (see the module docs).
pub struct SetRef<T: 'static> {
    set: Rc<dyn SetPlace<T>>,
    origin: Origin,
}

impl<T: LuaKey> SetRef<T> {
    pub(crate) fn new<S: LuaSet<Item = T>>(place: LuaRef<S>, origin: Origin) -> Self {
        SetRef {
            set: Rc::new(place),
            origin,
        }
    }

    fn read<R>(&self, f: impl FnOnce(&(dyn DynSet<T> + 'static)) -> R) -> mlua::Result<R> {
        visit(|access| self.set.read(access), f, &self.origin)
    }

    fn write<R>(&self, f: impl FnOnce(&mut (dyn DynSet<T> + 'static)) -> R) -> mlua::Result<R> {
        visit_mut(|access| self.set.write(access), f, &self.origin)
    }

    pub(crate) fn items(&self) -> mlua::Result<Vec<T>> {
        self.read(|set| set.items())
    }

    fn contains(&self, lua: &Lua, item: Value) -> mlua::Result<bool> {
        match T::from_lua(item, lua) {
            Ok(item) => self.read(|set| set.contains(&item)),
            Err(_) => Ok(false),
        }
    }

    fn item(&self, lua: &Lua, item: Value) -> mlua::Result<T> {
        T::from_lua(item, lua).map_err(|err| {
            self.origin.error(format_args!(
                "bad value for a member of {}: expected {}, got {}",
                self.origin.path(),
                err.expected,
                err.got
            ))
        })
    }

    /// `set[item] = flag`: true adds, nil or false removes.
    fn set(&self, lua: &Lua, item: Value, flag: Value) -> mlua::Result<()> {
        let member = self.item(lua, item)?;
        match flag {
            Value::Boolean(true) => self.write(|set| set.insert(member)).map(drop),
            Value::Nil | Value::Boolean(false) => self.write(|set| set.remove(&member)).map(drop),
            other => Err(self.origin.error(format_args!(
                "{}{} can only be set to true (a member) or nil, got {}",
                self.origin.path(),
                member.segment(),
                describe(&other)
            ))),
        }
    }
}

impl<T: LuaKey> UserData for SetRef<T> {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field(MetaMethod::Type, set_type::<T>().into_owned());
        fields.add_meta_field_with(METHODS, |lua| {
            type View<T> = UserDataRef<SetRef<T>>;
            let methods = vec![
                (
                    "contains",
                    lua.create_function(|lua, (this, item): (View<T>, Value)| {
                        this.contains(lua, item)
                    })?,
                ),
                (
                    "insert",
                    lua.create_function(|lua, (this, item): (View<T>, Value)| {
                        let item = this.item(lua, item)?;
                        this.write(|set| set.insert(item))
                    })?,
                ),
                (
                    "remove",
                    lua.create_function(|lua, (this, item): (View<T>, Value)| {
                        let item = this.item(lua, item)?;
                        this.write(|set| set.remove(&item))
                    })?,
                ),
                (
                    "clear",
                    lua.create_function(|_, this: View<T>| this.write(|set| set.clear()))?,
                ),
            ];
            register_view_methods::<Self>(lua, methods)
        });
        fields.add_meta_field_with(TABLE_FUNCTIONS, |lua| {
            refusing_table_functions::<Self>(
                lua,
                "set",
                "{path}:insert(value) or {path}:remove(value)",
                |view| &view.origin,
            )
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // Methods first (`register_view_methods`), then membership.
        methods.add_meta_method(MetaMethod::Index, |lua, this, item: Value| {
            if let Some(method) = view_method::<Self>(lua, &item)? {
                return Ok(Value::Function(method));
            }
            Ok(if this.contains(lua, item)? {
                Value::Boolean(true)
            } else {
                Value::Nil
            })
        });
        methods.add_meta_method(
            MetaMethod::NewIndex,
            |lua, this, (item, flag): (Value, Value)| this.set(lua, item, flag),
        );
        methods.add_meta_method(MetaMethod::Len, |_, this, ()| this.read(|set| set.len()));
        methods.add_meta_function(PAIRS, |lua, set: AnyUserData| {
            let items = set.borrow_scoped::<Self, _>(SetRef::items)??;
            let mut items = items.into_iter();
            let next = lua.create_function_mut(move |lua, _: mlua::MultiValue| {
                for item in items.by_ref() {
                    let member =
                        set.borrow_scoped::<Self, _>(|this| this.read(|s| s.contains(&item)))??;
                    if member {
                        return Ok((item.to_lua(lua)?.into_lua(lua)?, Value::Boolean(true)));
                    }
                }
                Ok((Value::Nil, Value::Nil))
            })?;
            Ok((next, Value::Nil, Value::Nil))
        });
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!(
                "{} ({} members)",
                set_type::<T>(),
                this.read(|set| set.len())?
            ))
        });
    }
}

/// A set converted from Lua: `{[v] = true, ...}`, a list `{v, ...}`, or a copy of a live set.
fn from_lua<S: LuaSet>(value: Value, lua: &Lua) -> Result<S, ConvertError> {
    let items = match &value {
        Value::Table(table) => {
            let pairs: Vec<(Value, Value)> = table
                .pairs::<Value, Value>()
                .collect::<mlua::Result<_>>()
                .map_err(|err| table_error(set_type::<S::Item>(), err))?;
            let flags = pairs.iter().all(|(_, v)| *v == Value::Boolean(true));
            let list = pairs
                .iter()
                .all(|(k, _)| matches!(lua_index(k), Some(i) if i >= 1 && i <= pairs.len() as i64));
            let mut items = Vec::with_capacity(pairs.len());
            for (key, value) in pairs {
                let (item, segment) = if flags {
                    (key, String::new())
                } else if list {
                    let segment = format!("[{}]", describe(&key));
                    (value, segment)
                } else {
                    return Err(ConvertError {
                        expected: set_type::<S::Item>(),
                        got: "a table that is neither {[v] = true} nor a list".into(),
                        path: String::new(),
                    });
                };
                items.push(S::Item::from_lua(item, lua).map_err(|err| err.within(&segment))?);
            }
            items
        }
        Value::UserData(ud) if ud.is::<SetRef<S::Item>>() => ud
            .borrow_scoped::<SetRef<S::Item>, _>(SetRef::items)
            .and_then(|items| items)
            .map_err(|err| ConvertError {
                expected: set_type::<S::Item>(),
                got: format!("{} that cannot be read ({err})", describe(&value)),
                path: String::new(),
            })?,
        _ => return Err(ConvertError::new(set_type::<S::Item>(), &value)),
    };
    Ok(S::from_items(items))
}

fn to_table<S: LuaSet>(set: &S, lua: &Lua) -> mlua::Result<Value> {
    let table = lua.create_table()?;
    for item in set.items() {
        table.raw_set(item.to_lua(lua)?, true)?;
    }
    Ok(Value::Table(table))
}

convert_collection! {
    SetRef, set_type::<T>(), |defs| format!("table<{}, true>", T::define(defs));
    {T: LuaKey, S: BuildHasher + Default + 'static} HashSet<T, S>;
    {T: LuaKey} BTreeSet<T>;
    {T: LuaKey, S: BuildHasher + Default + 'static} BevyHashSet<T, S>;
}
