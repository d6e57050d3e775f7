//! Maps: `HashMap<K, V>` (std's or Bevy's) and `BTreeMap<K, V>` (keys: strings, integers, booleans, entities) as
//! live Lua tables.
//!
//! `stash.potion` and `stash["two words"]` read an entry (nil when absent), `stash.potion = 1`
//! writes one, `stash.potion = nil` removes it, `#stash` counts the entries and `pairs(stash)`
//! visits them in key order. The methods `get`, `contains`, `insert`, `remove` and `clear` are
//! looked up first, so an entry whose key is one of those names is read with `stash:get(key)`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::ops::{Deref, DerefMut};

use bevy::platform::collections::HashMap as BevyHashMap;
use std::rc::Rc;

use mlua::{
    AnyUserData, IntoLua, Lua, MetaMethod, UserData, UserDataFields, UserDataMethods, UserDataRef,
    Value,
};

use super::{
    LuaKey, METHODS, Origin, PAIRS, TABLE_FUNCTIONS, map_type, refusing_table_functions,
    register_view_methods, table_error, view_method, visit, visit_mut,
};
use crate::userdata::convert::{ConvertError, LuaConvert, describe};
use crate::userdata::reference::LuaRef;

/// A Rust container scripts see as a table from `Key` to `Value`.
pub trait LuaMap: Sized + 'static {
    type Key: LuaKey;
    type Value: LuaConvert + Clone + 'static;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn entry(&self, key: &Self::Key) -> Option<&Self::Value>;
    fn entry_mut(&mut self, key: &Self::Key) -> Option<&mut Self::Value>;
    fn insert(&mut self, key: Self::Key, value: Self::Value);
    fn remove(&mut self, key: &Self::Key) -> Option<Self::Value>;
    fn clear(&mut self);
    /// The keys in order, so that `pairs` visits a map the same way on every run.
    fn keys(&self) -> Vec<Self::Key>;
    fn from_entries(entries: Vec<(Self::Key, Self::Value)>) -> Self;
}

impl<K: LuaKey, V: LuaConvert + Clone + 'static, S: BuildHasher + Default + 'static> LuaMap
    for HashMap<K, V, S>
{
    type Key = K;
    type Value = V;

    fn len(&self) -> usize {
        HashMap::len(self)
    }

    fn entry(&self, key: &K) -> Option<&V> {
        self.get(key)
    }

    fn entry_mut(&mut self, key: &K) -> Option<&mut V> {
        self.get_mut(key)
    }

    fn insert(&mut self, key: K, value: V) {
        HashMap::insert(self, key, value);
    }

    fn remove(&mut self, key: &K) -> Option<V> {
        HashMap::remove(self, key)
    }

    fn clear(&mut self) {
        HashMap::clear(self);
    }

    fn keys(&self) -> Vec<K> {
        let mut keys: Vec<K> = HashMap::keys(self).cloned().collect();
        keys.sort();
        keys
    }

    fn from_entries(entries: Vec<(K, V)>) -> Self {
        entries.into_iter().collect()
    }
}

impl<K: LuaKey, V: LuaConvert + Clone + 'static> LuaMap for BTreeMap<K, V> {
    type Key = K;
    type Value = V;

    fn len(&self) -> usize {
        BTreeMap::len(self)
    }

    fn entry(&self, key: &K) -> Option<&V> {
        self.get(key)
    }

    fn entry_mut(&mut self, key: &K) -> Option<&mut V> {
        self.get_mut(key)
    }

    fn insert(&mut self, key: K, value: V) {
        BTreeMap::insert(self, key, value);
    }

    fn remove(&mut self, key: &K) -> Option<V> {
        BTreeMap::remove(self, key)
    }

    fn clear(&mut self) {
        BTreeMap::clear(self);
    }

    fn keys(&self) -> Vec<K> {
        BTreeMap::keys(self).cloned().collect()
    }

    fn from_entries(entries: Vec<(K, V)>) -> Self {
        entries.into_iter().collect()
    }
}

/// Bevy's own `HashMap` (`bevy::platform::collections`), a wrapper of hashbrown's.
impl<K: LuaKey, V: LuaConvert + Clone + 'static, S: BuildHasher + Default + 'static> LuaMap
    for BevyHashMap<K, V, S>
{
    type Key = K;
    type Value = V;

    // Through the wrapped map: called on the wrapper, a method it lacks would be this trait's.
    fn len(&self) -> usize {
        Deref::deref(self).len()
    }

    fn entry(&self, key: &K) -> Option<&V> {
        Deref::deref(self).get(key)
    }

    fn entry_mut(&mut self, key: &K) -> Option<&mut V> {
        DerefMut::deref_mut(self).get_mut(key)
    }

    fn insert(&mut self, key: K, value: V) {
        DerefMut::deref_mut(self).insert(key, value);
    }

    fn remove(&mut self, key: &K) -> Option<V> {
        DerefMut::deref_mut(self).remove(key)
    }

    fn clear(&mut self) {
        DerefMut::deref_mut(self).clear();
    }

    fn keys(&self) -> Vec<K> {
        let mut keys: Vec<K> = Deref::deref(self).keys().cloned().collect();
        keys.sort();
        keys
    }

    fn from_entries(entries: Vec<(K, V)>) -> Self {
        entries.into_iter().collect()
    }
}

/// A map from `K` to `V` whatever its container (what a [`MapRef`] works on).
trait DynMap<K, V> {
    fn len(&self) -> usize;
    fn entry(&self, key: &K) -> Option<&V>;
    fn insert(&mut self, key: K, value: V);
    fn remove(&mut self, key: &K) -> Option<V>;
    fn clear(&mut self);
    fn keys(&self) -> Vec<K>;
}

impl<M: LuaMap> DynMap<M::Key, M::Value> for M {
    fn len(&self) -> usize {
        LuaMap::len(self)
    }

    fn entry(&self, key: &M::Key) -> Option<&M::Value> {
        LuaMap::entry(self, key)
    }

    fn insert(&mut self, key: M::Key, value: M::Value) {
        LuaMap::insert(self, key, value);
    }

    fn remove(&mut self, key: &M::Key) -> Option<M::Value> {
        LuaMap::remove(self, key)
    }

    fn clear(&mut self) {
        LuaMap::clear(self);
    }

    fn keys(&self) -> Vec<M::Key> {
        LuaMap::keys(self)
    }
}

/// Where a map is, its container type erased.
trait MapPlace<K, V>: 'static {
    fn read(&self, f: &mut dyn FnMut(&(dyn DynMap<K, V> + 'static))) -> mlua::Result<()>;
    fn write(&self, f: &mut dyn FnMut(&mut (dyn DynMap<K, V> + 'static))) -> mlua::Result<()>;
    /// A live reference to the entry of `key`.
    fn entry(&self, key: K, origin: Origin) -> LuaRef<V>;
}

impl<M: LuaMap> MapPlace<M::Key, M::Value> for LuaRef<M> {
    fn read(
        &self,
        f: &mut dyn FnMut(&(dyn DynMap<M::Key, M::Value> + 'static)),
    ) -> mlua::Result<()> {
        self.with(|map| f(map))
    }

    fn write(
        &self,
        f: &mut dyn FnMut(&mut (dyn DynMap<M::Key, M::Value> + 'static)),
    ) -> mlua::Result<()> {
        self.with_mut(|map| f(map))
    }

    fn entry(&self, key: M::Key, origin: Origin) -> LuaRef<M::Value> {
        self.part(
            key,
            |map: &M, key| map.entry(key),
            |map: &mut M, key| map.entry_mut(key),
            origin,
            "no longer in the map",
        )
    }
}

/// A live view of a map where it lives (see the module docs).
pub struct MapRef<K: 'static, V: 'static> {
    map: Rc<dyn MapPlace<K, V>>,
    origin: Origin,
}

impl<K: LuaKey, V: LuaConvert + Clone + 'static> MapRef<K, V> {
    pub(crate) fn new<M: LuaMap<Key = K, Value = V>>(place: LuaRef<M>, origin: Origin) -> Self {
        MapRef {
            map: Rc::new(place),
            origin,
        }
    }

    fn read<R>(&self, f: impl FnOnce(&(dyn DynMap<K, V> + 'static)) -> R) -> mlua::Result<R> {
        visit(|access| self.map.read(access), f, &self.origin)
    }

    fn write<R>(&self, f: impl FnOnce(&mut (dyn DynMap<K, V> + 'static)) -> R) -> mlua::Result<R> {
        visit_mut(|access| self.map.write(access), f, &self.origin)
    }

    fn len(&self) -> mlua::Result<usize> {
        self.read(|map| map.len())
    }

    /// Copies of the entries, in key order.
    pub(crate) fn entries(&self) -> mlua::Result<Vec<(K, V)>> {
        self.read(|map| {
            map.keys()
                .into_iter()
                .filter_map(|key| map.entry(&key).cloned().map(|value| (key, value)))
                .collect()
        })
    }

    /// The entry of `key` for Lua: a copy or a live view, nil when absent.
    fn get(&self, lua: &Lua, key: K) -> mlua::Result<Value> {
        if V::LIVE {
            if !self.read(|map| map.entry(&key).is_some())? {
                return Ok(Value::Nil);
            }
            let origin = self.origin.child(&key.segment());
            return V::read_at(self.map.entry(key, origin.clone()), origin, lua);
        }
        match self.read(|map| map.entry(&key).map(|value| value.to_lua(lua)))? {
            Some(value) => value?.into_lua(lua),
            None => Ok(Value::Nil),
        }
    }

    /// The key `key` names, if it is one (a read of any other key finds nothing).
    fn key(lua: &Lua, key: Value) -> Option<K> {
        K::from_lua(key, lua).ok()
    }

    fn key_or_error(&self, lua: &Lua, key: Value) -> mlua::Result<K> {
        K::from_lua(key, lua).map_err(|err| {
            self.origin.error(format_args!(
                "bad key for {}: expected {}, got {}",
                self.origin.path(),
                err.expected,
                err.got
            ))
        })
    }

    /// `map[key] = value`: nil removes the entry.
    fn set(&self, lua: &Lua, key: Value, value: Value) -> mlua::Result<()> {
        let key = self.key_or_error(lua, key)?;
        if value.is_nil() {
            self.write(|map| map.remove(&key))?;
            return Ok(());
        }
        let value = V::from_lua(value, lua)
            .map_err(|err| self.origin.child(&key.segment()).bad_value(err))?;
        self.write(|map| map.insert(key, value))
    }

    fn remove(&self, lua: &Lua, key: Value) -> mlua::Result<Value> {
        let key = self.key_or_error(lua, key)?;
        match self.write(|map| map.remove(&key))? {
            Some(value) => value.into_lua_owned(lua)?.into_lua(lua),
            None => Ok(Value::Nil),
        }
    }
}

impl<K: LuaKey, V: LuaConvert + Clone + 'static> UserData for MapRef<K, V> {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field(MetaMethod::Type, map_type::<K, V>().into_owned());
        fields.add_meta_field_with(METHODS, |lua| {
            type View<K, V> = UserDataRef<MapRef<K, V>>;
            let methods = vec![
                (
                    "get",
                    lua.create_function(|lua, (this, key): (View<K, V>, Value)| {
                        match Self::key(lua, key) {
                            Some(key) => this.get(lua, key),
                            None => Ok(Value::Nil),
                        }
                    })?,
                ),
                (
                    "contains",
                    lua.create_function(|lua, (this, key): (View<K, V>, Value)| {
                        match Self::key(lua, key) {
                            Some(key) => this.read(|map| map.entry(&key).is_some()),
                            None => Ok(false),
                        }
                    })?,
                ),
                (
                    "insert",
                    lua.create_function(|lua, (this, key, value): (View<K, V>, Value, Value)| {
                        this.set(lua, key, value)
                    })?,
                ),
                (
                    "remove",
                    lua.create_function(|lua, (this, key): (View<K, V>, Value)| {
                        this.remove(lua, key)
                    })?,
                ),
                (
                    "clear",
                    lua.create_function(|_, this: View<K, V>| this.write(|map| map.clear()))?,
                ),
            ];
            register_view_methods::<Self>(lua, methods)
        });
        fields.add_meta_field_with(TABLE_FUNCTIONS, |lua| {
            refusing_table_functions::<Self>(
                lua,
                "map",
                "{path}:insert(key, value) or {path}:remove(key)",
                |view| &view.origin,
            )
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // Methods first (`register_view_methods`), then entries.
        methods.add_meta_method(MetaMethod::Index, |lua, this, key: Value| {
            if let Some(method) = view_method::<Self>(lua, &key)? {
                return Ok(Value::Function(method));
            }
            match Self::key(lua, key) {
                Some(key) => this.get(lua, key),
                None => Ok(Value::Nil),
            }
        });
        methods.add_meta_method(
            MetaMethod::NewIndex,
            |lua, this, (key, value): (Value, Value)| this.set(lua, key, value),
        );
        methods.add_meta_method(MetaMethod::Len, |_, this, ()| this.len());
        methods.add_meta_function(PAIRS, |lua, map: AnyUserData| {
            // The keys as of the call: entries removed meanwhile are skipped.
            let keys = map.borrow_scoped::<Self, _>(|this| this.read(|map| map.keys()))??;
            let mut keys = keys.into_iter();
            let next = lua.create_function_mut(move |lua, _: mlua::MultiValue| {
                for key in keys.by_ref() {
                    let value =
                        map.borrow_scoped::<Self, _>(|this| this.get(lua, key.clone()))??;
                    if !value.is_nil() {
                        return Ok((key.to_lua(lua)?.into_lua(lua)?, value));
                    }
                }
                Ok((Value::Nil, Value::Nil))
            })?;
            Ok((next, Value::Nil, Value::Nil))
        });
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("{} ({} entries)", map_type::<K, V>(), this.len()?))
        });
    }
}

/// A map converted from Lua: a table, each key and value converted strictly, or a copy of a
/// live map of the same types.
fn from_lua<M: LuaMap>(value: Value, lua: &Lua) -> Result<M, ConvertError> {
    let entries = match &value {
        Value::Table(table) => {
            let mut entries = Vec::new();
            for pair in table.pairs::<Value, Value>() {
                let (key, value) =
                    pair.map_err(|err| table_error(map_type::<M::Key, M::Value>(), err))?;
                let key = M::Key::from_lua(key, lua).map_err(|err| ConvertError {
                    expected: Cow::Owned(format!("{} keys", err.expected)),
                    got: format!("the key {}", err.got),
                    path: String::new(),
                })?;
                let value =
                    M::Value::from_lua(value, lua).map_err(|err| err.within(&key.segment()))?;
                entries.push((key, value));
            }
            entries
        }
        Value::UserData(ud) if ud.is::<MapRef<M::Key, M::Value>>() => ud
            .borrow_scoped::<MapRef<M::Key, M::Value>, _>(MapRef::entries)
            .and_then(|entries| entries)
            .map_err(|err| ConvertError {
                expected: map_type::<M::Key, M::Value>(),
                got: format!("{} that cannot be read ({err})", describe(&value)),
                path: String::new(),
            })?,
        _ => return Err(ConvertError::new(map_type::<M::Key, M::Value>(), &value)),
    };
    Ok(M::from_entries(entries))
}

fn to_table<M: LuaMap>(map: &M, lua: &Lua) -> mlua::Result<Value> {
    let table = lua.create_table()?;
    for key in map.keys() {
        if let Some(value) = map.entry(&key) {
            table.raw_set(key.to_lua(lua)?, value.to_lua(lua)?)?;
        }
    }
    Ok(Value::Table(table))
}

convert_collection! {
    MapRef, map_type::<K, V>(), |defs| format!("table<{}, {}>", K::define(defs), V::define(defs));
    {K: LuaKey, V: LuaConvert + Clone + 'static, S: BuildHasher + Default + 'static} HashMap<K, V, S>;
    {K: LuaKey, V: LuaConvert + Clone + 'static} BTreeMap<K, V>;
    {K: LuaKey, V: LuaConvert + Clone + 'static, S: BuildHasher + Default + 'static} BevyHashMap<K, V, S>;
}
