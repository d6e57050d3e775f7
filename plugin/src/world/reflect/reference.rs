//! [`ReflectedRef`]: a live reference into a reflected value, and what scripts can do with it.
//!
//! `ref.field` walks the path from the root on every access. Struct fields are read by name,
//! tuple-struct and tuple fields and list elements by 1-based index (`clear_color[1]`, as in a
//! Lua array), map entries by key. A data enum shows its variant as `kind` and the variant's
//! fields; a unit-only enum is its variant's name. Values with no fields (a unit-only enum,
//! `Name`, an opaque value) are read and replaced with `ref:get()` and `ref:set(value)`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use bevy::ecs::change_detection::DetectChangesMut;
use bevy::ecs::entity::Entity;
use bevy::ecs::world::World;
use bevy::reflect::enums::VariantInfo;
use bevy::reflect::{PartialReflect, Reflect, ReflectMut, ReflectRef, TypeInfo};
use mlua::{
    AnyUserData, Function, IntoLua, Lua, MetaMethod, UserData, UserDataFields, UserDataMethods,
    Value, Variadic,
};

use super::ReflectedType;
use super::assign::{assign, key_of, leaf_of, new_from};
use crate::userdata::collection::{IPAIRS, PAIRS};
use crate::userdata::{ConvertError, StaleReference, describe, script_error};
use crate::world::place::{stale_despawned, stale_removed, stale_resource};
use crate::world::registry::ScriptTypes;
use crate::world::{with_world, with_world_ref};

/// One step of a path into a reflected value.
#[derive(Clone)]
pub(crate) enum Segment {
    /// A struct's (or a struct variant's) field.
    Field(Rc<str>),
    /// A tuple-struct, tuple or tuple-variant field, a list or array element (0-based).
    Index(usize),
    /// A map entry.
    Key(Rc<dyn PartialReflect>),
    /// The value inside an `Option` that is `Some`.
    Some,
}

enum Root {
    Component {
        entity: Entity,
        ty: Arc<ReflectedType>,
    },
    Resource {
        ty: Arc<ReflectedType>,
    },
    /// A value made in Lua (`world.construct`), owned by the reference.
    Value {
        value: RefCell<Box<dyn Reflect>>,
        ty: Arc<ReflectedType>,
    },
}

/// A live reference to a reflected value: a root and a path into it (see the module docs).
#[derive(Clone)]
pub struct ReflectedRef {
    root: Rc<Root>,
    path: Rc<[Segment]>,
}

/// The entity holding the resource `ty`, if the world has it.
pub(super) fn resource_entity(world: &World, ty: &ReflectedType) -> Option<Entity> {
    let id = ty.component_id?;
    let entity = world.resource_entities().get(id)?;
    world
        .get_entity(entity)
        .ok()
        .filter(|e| e.contains_id(id))
        .map(|e| e.id())
}

fn stale(message: String) -> mlua::Error {
    mlua::Error::external(StaleReference(message))
}

fn step<'a>(value: &'a dyn PartialReflect, segment: &Segment) -> Option<&'a dyn PartialReflect> {
    match (value.reflect_ref(), segment) {
        (ReflectRef::Struct(s), Segment::Field(name)) => s.field(name),
        (ReflectRef::TupleStruct(s), Segment::Index(i)) => s.field(*i),
        (ReflectRef::Tuple(s), Segment::Index(i)) => s.field(*i),
        (ReflectRef::List(s), Segment::Index(i)) => s.get(*i),
        (ReflectRef::Array(s), Segment::Index(i)) => s.get(*i),
        (ReflectRef::Map(s), Segment::Key(key)) => s.get(&**key),
        (ReflectRef::Enum(e), Segment::Some) if e.variant_name() == "Some" => e.field_at(0),
        (ReflectRef::Enum(e), Segment::Field(name)) => e.field(name),
        (ReflectRef::Enum(e), Segment::Index(i)) => e.field_at(*i),
        _ => None,
    }
}

fn step_mut<'a>(
    value: &'a mut dyn PartialReflect,
    segment: &Segment,
) -> Option<&'a mut dyn PartialReflect> {
    match (value.reflect_mut(), segment) {
        (ReflectMut::Struct(s), Segment::Field(name)) => s.field_mut(name),
        (ReflectMut::TupleStruct(s), Segment::Index(i)) => s.field_mut(*i),
        (ReflectMut::Tuple(s), Segment::Index(i)) => s.field_mut(*i),
        (ReflectMut::List(s), Segment::Index(i)) => s.get_mut(*i),
        (ReflectMut::Array(s), Segment::Index(i)) => s.get_mut(*i),
        (ReflectMut::Map(s), Segment::Key(key)) => s.get_mut(&**key),
        (ReflectMut::Enum(e), Segment::Some) if e.variant_name() == "Some" => e.field_at_mut(0),
        (ReflectMut::Enum(e), Segment::Field(name)) => e.field_mut(name),
        (ReflectMut::Enum(e), Segment::Index(i)) => e.field_at_mut(*i),
        _ => None,
    }
}

/// Whether `value` is an `Option`.
pub(super) fn is_option(info: Option<&TypeInfo>) -> bool {
    info.is_some_and(|info| info.type_path().starts_with("core::option::Option<"))
}

/// Whether every variant of the enum `info` describes has no fields.
pub(super) fn unit_only(info: Option<&TypeInfo>) -> bool {
    match info {
        Some(TypeInfo::Enum(info)) => info.iter().all(|v| matches!(v, VariantInfo::Unit(_))),
        _ => false,
    }
}

/// A reflected value's type name, for errors.
pub(super) fn type_name(value: &dyn PartialReflect) -> String {
    value
        .get_represented_type_info()
        .map(|info| info.type_path_table().short_path().to_owned())
        .unwrap_or_else(|| value.reflect_type_ident().unwrap_or("value").to_owned())
}

/// A key as an error shows it: a string as itself, anything else by `describe`.
fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.to_string_lossy(),
        other => describe(other),
    }
}

/// What a key of `value` (a struct, list, map...) names.
enum Key {
    Segment(Segment),
    /// A data enum's `kind`.
    Kind,
    /// A method of the reference (`push`, `get`...).
    Method(&'static str),
}

const LIST_METHODS: &[&str] = &["push", "insert", "remove", "pop", "clear"];
const VALUE_METHODS: &[&str] = &["get", "set"];

impl ReflectedRef {
    pub(super) fn component(entity: Entity, ty: Arc<ReflectedType>) -> Self {
        ReflectedRef {
            root: Rc::new(Root::Component { entity, ty }),
            path: Rc::from([]),
        }
    }

    pub(super) fn resource(ty: Arc<ReflectedType>) -> Self {
        ReflectedRef {
            root: Rc::new(Root::Resource { ty }),
            path: Rc::from([]),
        }
    }

    pub(super) fn value(value: Box<dyn Reflect>, ty: Arc<ReflectedType>) -> Self {
        ReflectedRef {
            root: Rc::new(Root::Value {
                value: RefCell::new(value),
                ty,
            }),
            path: Rc::from([]),
        }
    }

    pub(super) fn root_type(&self) -> &Arc<ReflectedType> {
        match &*self.root {
            Root::Component { ty, .. } | Root::Resource { ty } | Root::Value { ty, .. } => ty,
        }
    }

    pub(super) fn is_root(&self) -> bool {
        self.path.is_empty()
    }

    fn join(&self, segment: Segment) -> Self {
        let mut path = self.path.to_vec();
        path.push(segment);
        ReflectedRef {
            root: Rc::clone(&self.root),
            path: path.into(),
        }
    }

    /// `Sprite.custom_size`, `Inventory.items[2]`: where the reference points, for errors.
    pub(crate) fn describe(&self) -> String {
        let mut text = self.root_type().name.to_owned();
        text.push_str(&self.field_path());
        text
    }

    /// The path after the root's name: `.custom_size.x`, `[2]`.
    fn field_path(&self) -> String {
        let mut text = String::new();
        for segment in self.path.iter() {
            match segment {
                Segment::Field(name) => {
                    text.push('.');
                    text.push_str(name);
                }
                Segment::Index(i) => text.push_str(&format!("[{}]", i + 1)),
                Segment::Key(key) => text.push_str(&format!("[{key:?}]")),
                Segment::Some => {}
            }
        }
        text
    }

    fn gone(&self) -> mlua::Error {
        stale(format!(
            "{}: the value is no longer there (an element removed, an option now nil or an enum now another variant)",
            self.describe()
        ))
    }

    /// Calls `f` with the value, reached from the root now.
    pub(crate) fn with_value<R>(
        &self,
        f: impl FnOnce(&dyn PartialReflect) -> R,
    ) -> mlua::Result<R> {
        let walk = |root: &dyn PartialReflect| {
            let mut value = root;
            for segment in self.path.iter() {
                value = step(value, segment).ok_or_else(|| self.gone())?;
            }
            Ok(f(value))
        };
        match &*self.root {
            Root::Component { entity, ty } => with_world_ref(|world| {
                let e = world
                    .get_entity(*entity)
                    .map_err(|_| stale_despawned(*entity, ty.name))?;
                let component = ty.component.as_ref().and_then(|c| c.reflect(e));
                let component = component.ok_or_else(|| stale_removed(*entity, ty.name))?;
                walk(component.as_partial_reflect())
            })?,
            Root::Resource { ty } => with_world_ref(|world| {
                let resource = resource_entity(world, ty)
                    .and_then(|e| ty.component.as_ref()?.reflect(world.entity(e)));
                let resource = resource.ok_or_else(|| stale_resource(ty.name))?;
                walk(resource.as_partial_reflect())
            })?,
            Root::Value { value, ty } => {
                let value = value
                    .try_borrow()
                    .map_err(|_| script_error(format!("this {} is in use", ty.name)))?;
                walk(value.as_partial_reflect())
            }
        }
    }

    /// Calls `f` with exclusive access to the value; the component or resource is marked
    /// changed only when `f` succeeds.
    pub(crate) fn with_value_mut<R>(
        &self,
        f: impl FnOnce(&mut dyn PartialReflect) -> mlua::Result<R>,
    ) -> mlua::Result<R> {
        self.with_value_mut_if(|value| f(value).map(Some))
            .map(|result| result.unwrap_or_else(|| unreachable!()))
    }

    /// As [`with_value_mut`](Self::with_value_mut), where `f` may decline (`None`): then
    /// nothing is marked changed.
    fn with_value_mut_if<R>(
        &self,
        f: impl FnOnce(&mut dyn PartialReflect) -> mlua::Result<Option<R>>,
    ) -> mlua::Result<Option<R>> {
        let walk = |root: &mut dyn PartialReflect| {
            let mut value = root;
            for segment in self.path.iter() {
                value = step_mut(value, segment).ok_or_else(|| self.gone())?;
            }
            f(value)
        };
        match &*self.root {
            Root::Component { entity, ty } => {
                with_world(|world| component_mut(world, *entity, ty, walk))?
            }
            Root::Resource { ty } => with_world(|world| {
                let entity = resource_entity(world, ty).ok_or_else(|| stale_resource(ty.name))?;
                component_mut(world, entity, ty, walk)
            })?,
            Root::Value { value, ty } => {
                let mut value = value
                    .try_borrow_mut()
                    .map_err(|_| script_error(format!("this {} is in use", ty.name)))?;
                walk(value.as_partial_reflect_mut())
            }
        }
    }

    /// A copy of the value, for `entity:insert` and writes of one reflected value into another.
    pub(crate) fn copy(&self) -> mlua::Result<Box<dyn Reflect>> {
        self.with_value(|value| value.reflect_clone())?
            .map_err(|err| script_error(format!("{} cannot be copied: {err}", self.describe())))
    }

    /// What `key` names in `value`.
    fn key(&self, lua: &Lua, value: &dyn PartialReflect, key: &Value) -> mlua::Result<Key> {
        let no_field = || {
            script_error(format!(
                "{} has no field '{}'",
                self.describe(),
                key_text(key)
            ))
        };
        let index = |len: usize| match key {
            Value::Integer(i) if *i >= 1 && (*i as usize) <= len => {
                Ok(Key::Segment(Segment::Index(*i as usize - 1)))
            }
            _ => Err(no_field()),
        };
        let method = |names: &[&'static str]| match key {
            Value::String(s) => names.iter().find(|n| s == **n).map(|n| Key::Method(n)),
            _ => None,
        };
        // A leaf at the root (`Name`) is one value: read and replaced whole.
        if leaf_of(lua, value).is_some() {
            return method(VALUE_METHODS).ok_or_else(no_field);
        }
        match value.reflect_ref() {
            ReflectRef::Struct(s) => match key {
                Value::String(name) if s.field(&name.to_str()?).is_some() => {
                    Ok(Key::Segment(Segment::Field(Rc::from(&*name.to_str()?))))
                }
                _ => Err(no_field()),
            },
            ReflectRef::TupleStruct(s) => index(s.field_len()),
            ReflectRef::Tuple(s) => index(s.field_len()),
            ReflectRef::List(_) | ReflectRef::Array(_) => match key {
                // Past the end: nil, as in a Lua array.
                Value::Integer(i) if *i >= 1 => Ok(Key::Segment(Segment::Index(*i as usize - 1))),
                _ => method(LIST_METHODS).ok_or_else(no_field),
            },
            ReflectRef::Map(m) => {
                let key_type = m.get_represented_map_info().map(|info| info.key_ty().id());
                let key = key_of(lua, key_type, key)
                    .map_err(|err| script_error(format!("{}: bad key: {err}", self.describe())))?;
                Ok(Key::Segment(Segment::Key(Rc::from(key))))
            }
            ReflectRef::Enum(e) if !unit_only(value.get_represented_type_info()) => match key {
                Value::String(s) if s == "kind" => Ok(Key::Kind),
                Value::String(name) if e.field(&name.to_str()?).is_some() => {
                    Ok(Key::Segment(Segment::Field(Rc::from(&*name.to_str()?))))
                }
                Value::Integer(i) if *i >= 1 && (*i as usize) <= e.field_len() => {
                    Ok(Key::Segment(Segment::Index(*i as usize - 1)))
                }
                _ => method(VALUE_METHODS).ok_or_else(|| {
                    script_error(format!(
                        "{} (variant {}) has no field '{}'",
                        self.describe(),
                        e.variant_name(),
                        key_text(key)
                    ))
                }),
            },
            _ => method(VALUE_METHODS).ok_or_else(no_field),
        }
    }

    /// `ref[key]`.
    fn index(&self, lua: &Lua, key: Value) -> mlua::Result<Value> {
        self.with_value(|value| {
            // The common case first: a struct's field of a by-value type (a number, a string).
            if let (ReflectRef::Struct(s), Value::String(name)) = (value.reflect_ref(), &key)
                && let Some(field) = s.field(&name.to_str()?)
            {
                return match leaf_of(lua, field) {
                    Some(leaf) if leaf.by_value => (leaf.read)(field, lua, self),
                    _ => read(
                        lua,
                        field,
                        &self.join(Segment::Field(Rc::from(&*name.to_str()?))),
                    ),
                };
            }
            self.index_slow(lua, value, key)
        })?
    }

    fn index_slow(&self, lua: &Lua, value: &dyn PartialReflect, key: Value) -> mlua::Result<Value> {
        match self.key(lua, value, &key)? {
            Key::Segment(segment) => match step(value, &segment) {
                Some(child) => read(lua, child, &self.join(segment)),
                None => Ok(Value::Nil),
            },
            Key::Kind => match value.reflect_ref() {
                ReflectRef::Enum(e) => lua.create_string(e.variant_name()).map(Value::String),
                _ => Ok(Value::Nil),
            },
            Key::Method(name) => method(lua, name).map(Value::Function),
        }
    }

    /// `ref[key] = value`.
    fn new_index(&self, lua: &Lua, key: Value, new: Value) -> mlua::Result<()> {
        // The common case first, reaching the value once: a plain value (it cannot reach the
        // world) into a struct's field.
        if let Value::String(name) = &key
            && !matches!(new, Value::Table(_) | Value::UserData(_))
        {
            let name = name.to_str()?;
            let written = self.with_value_mut_if(|value| match value.reflect_mut() {
                ReflectMut::Struct(s) => match s.field_mut(&name) {
                    Some(field) => assign(lua, field, &new)
                        .map(Some)
                        .map_err(|err| self.bad_value(err.within(&format!(".{}", &*name)))),
                    None => Ok(None),
                },
                _ => Ok(None),
            })?;
            if written.is_some() {
                return Ok(());
            }
        }
        enum Target {
            Write(Segment),
            Push,
            Pop,
            MapInsert(Rc<dyn PartialReflect>),
            MapRemove(Rc<dyn PartialReflect>),
            Nothing,
        }
        let target = self.with_value(|value| -> mlua::Result<Target> {
            let len = match value.reflect_ref() {
                ReflectRef::List(l) => Some(l.len()),
                _ => None,
            };
            Ok(match (self.key(lua, value, &key)?, len) {
                (Key::Segment(Segment::Index(i)), Some(len)) if i == len => Target::Push,
                (Key::Segment(Segment::Index(i)), Some(len)) if new.is_nil() && i + 1 == len => {
                    Target::Pop
                }
                (Key::Segment(Segment::Index(i)), Some(len)) if i > len => {
                    return Err(script_error(format!(
                        "{}: index {} is past the end (length {len}); append at #list + 1",
                        self.describe(),
                        i + 1
                    )));
                }
                (Key::Segment(Segment::Key(k)), _) => {
                    match (step(value, &Segment::Key(Rc::clone(&k))), new.is_nil()) {
                        (Some(_), true) => Target::MapRemove(k),
                        (None, true) => Target::Nothing,
                        (Some(_), false) => Target::Write(Segment::Key(k)),
                        (None, false) => Target::MapInsert(k),
                    }
                }
                (Key::Segment(segment), _) => Target::Write(segment),
                (Key::Kind, _) => {
                    return Err(script_error(format!(
                        "{}.kind is read-only: assign the whole value to change the variant",
                        self.describe()
                    )));
                }
                (Key::Method(name), _) => {
                    return Err(script_error(format!(
                        "{}.{name} is a method, not a field",
                        self.describe()
                    )));
                }
            })
        })??;
        match target {
            Target::Write(segment) => self.join(segment).set(lua, new),
            Target::Push => self.push(lua, None, new),
            Target::Pop => self.remove(lua, None).map(drop),
            Target::MapInsert(key) => {
                let element = self.new_element(lua, Element::MapValue, &new)?;
                self.with_value_mut(|value| match value.reflect_mut() {
                    ReflectMut::Map(m) => {
                        m.insert_boxed(key.to_dynamic(), element);
                        Ok(())
                    }
                    _ => Err(self.gone()),
                })
            }
            Target::MapRemove(key) => self.with_value_mut(|value| match value.reflect_mut() {
                ReflectMut::Map(m) => {
                    m.remove(&*key);
                    Ok(())
                }
                _ => Err(self.gone()),
            }),
            Target::Nothing => Ok(()),
        }
    }

    /// Replaces the value with the Lua value `new` (`ref:set(new)`, and every field write).
    pub(crate) fn set(&self, lua: &Lua, new: Value) -> mlua::Result<()> {
        let refused = |err: ConvertError| self.bad_value(err);
        match &new {
            // A table or userdata may hold references into the world: converted into a copy
            // first, with the world free, then the copy replaces the value.
            Value::Table(_) | Value::UserData(_) => {
                let mut copy = self.copy()?;
                assign(lua, copy.as_partial_reflect_mut(), &new).map_err(refused)?;
                // Replaced whole (a shorter list stays shorter), not merged.
                self.with_value_mut(|value| match value.try_as_reflect_mut() {
                    Some(value) => value.set(copy).map_err(|_| {
                        script_error(format!("{}: the value changed type", self.describe()))
                    }),
                    None => Err(script_error(format!("{} cannot be set", self.describe()))),
                })
            }
            // Nothing else reaches the world: converted in place, storing only on success.
            _ => self.with_value_mut(|value| assign(lua, value, &new).map_err(refused)),
        }
    }

    fn bad_value(&self, err: ConvertError) -> mlua::Error {
        let field = format!("{}{}", self.field_path(), err.path);
        let field = field.trim_start_matches('.');
        let name = self.root_type().name;
        let why = format!("expected {}, got {}", err.expected, err.got);
        if field.is_empty() {
            script_error(format!("{name}: bad value: {why}"))
        } else {
            script_error(format!("{name}: bad value for field '{field}': {why}"))
        }
    }

    /// A new element for the list or map this reference is, converted from `value`.
    fn new_element(
        &self,
        lua: &Lua,
        kind: Element,
        value: &Value,
    ) -> mlua::Result<Box<dyn PartialReflect>> {
        let ty = self.with_value(|v| match (v.reflect_ref(), kind) {
            (ReflectRef::List(l), _) => l.get_represented_list_info().map(|i| i.item_ty().id()),
            (ReflectRef::Map(m), _) => m.get_represented_map_info().map(|i| i.value_ty().id()),
            _ => None,
        })?;
        let Some(ty) = ty else {
            return Err(script_error(format!(
                "{} has no element type scripts can build",
                self.describe()
            )));
        };
        new_from(lua, ty, value).map_err(|err| self.bad_value(err))
    }

    /// `list:push(value)` and `list:insert(position, value)` (1-based).
    fn push(&self, lua: &Lua, position: Option<i64>, value: Value) -> mlua::Result<()> {
        let element = self.new_element(lua, Element::ListItem, &value)?;
        self.with_value_mut(|list| match list.reflect_mut() {
            ReflectMut::List(l) => match position {
                None => {
                    l.push(element);
                    Ok(())
                }
                Some(p) if p >= 1 && p as usize <= l.len() + 1 => {
                    l.insert(p as usize - 1, element);
                    Ok(())
                }
                Some(p) => Err(script_error(format!(
                    "{}:insert: position {p} is out of range (1 to {})",
                    self.describe(),
                    l.len() + 1
                ))),
            },
            _ => Err(script_error(format!("{} is not a list", self.describe()))),
        })
    }

    /// `list:remove(position)` (the last when nil) and `list:pop()`: the removed element.
    fn remove(&self, lua: &Lua, position: Option<i64>) -> mlua::Result<Value> {
        let removed = self.with_value_mut(|list| match list.reflect_mut() {
            ReflectMut::List(l) => {
                let len = l.len() as i64;
                match position.unwrap_or(len) {
                    _ if len == 0 => Ok(None),
                    p if p >= 1 && p <= len => Ok(Some(l.remove(p as usize - 1))),
                    p => Err(script_error(format!(
                        "{}:remove: position {p} is out of range (1 to {len})",
                        self.describe()
                    ))),
                }
            }
            _ => Err(script_error(format!("{} is not a list", self.describe()))),
        })?;
        match removed {
            None => Ok(Value::Nil),
            Some(element) => detached(lua, element),
        }
    }

    fn clear(&self) -> mlua::Result<()> {
        self.with_value_mut(|list| match list.reflect_mut() {
            ReflectMut::List(l) => {
                l.drain();
                Ok(())
            }
            _ => Err(script_error(format!("{} is not a list", self.describe()))),
        })
    }

    fn len(&self) -> mlua::Result<usize> {
        self.with_value(|value| match value.reflect_ref() {
            ReflectRef::List(l) => Ok(l.len()),
            ReflectRef::Array(a) => Ok(a.len()),
            ReflectRef::Map(m) => Ok(m.len()),
            ReflectRef::Tuple(t) => Ok(t.field_len()),
            ReflectRef::TupleStruct(t) => Ok(t.field_len()),
            _ => Err(script_error(format!("{} has no length", self.describe()))),
        })?
    }

    /// The keys `pairs` visits, in order.
    fn keys(&self, lua: &Lua) -> mlua::Result<Vec<Value>> {
        self.with_value(|value| -> mlua::Result<Vec<Value>> {
            let indices = |n: usize| (1..=n as i64).map(Value::Integer).collect();
            Ok(match value.reflect_ref() {
                ReflectRef::Struct(s) => (0..s.field_len())
                    .filter_map(|i| s.name_at(i))
                    .map(|n| lua.create_string(n).map(Value::String))
                    .collect::<mlua::Result<_>>()?,
                ReflectRef::TupleStruct(t) => indices(t.field_len()),
                ReflectRef::Tuple(t) => indices(t.field_len()),
                ReflectRef::List(l) => indices(l.len()),
                ReflectRef::Array(a) => indices(a.len()),
                ReflectRef::Map(m) => m
                    .iter()
                    .map(|(k, _)| read(lua, k, self))
                    .collect::<mlua::Result<_>>()?,
                _ => Vec::new(),
            })
        })?
    }

    fn to_lua_string(&self, lua: &Lua) -> mlua::Result<String> {
        let value = self.get(lua)?;
        if let Value::UserData(ud) = &value
            && ud.is::<ReflectedRef>()
        {
            return self.with_value(|v| format!("{v:?}"));
        }
        Ok(match value {
            Value::String(s) => s.to_string_lossy(),
            Value::Nil => "nil".to_owned(),
            other => lua
                .globals()
                .get::<Function>("tostring")?
                .call::<String>(other)?,
        })
    }

    /// `ref:get()`: the value as Lua reads it (a string for `Name` or a unit-only enum).
    fn get(&self, lua: &Lua) -> mlua::Result<Value> {
        self.with_value(|value| read(lua, value, self))?
    }
}

#[derive(Clone, Copy)]
enum Element {
    ListItem,
    MapValue,
}

/// `value`, taken out of a reflected value, for Lua: a plain value, or a reference owning it.
fn detached(lua: &Lua, value: Box<dyn PartialReflect>) -> mlua::Result<Value> {
    let Ok(value) = value.try_into_reflect() else {
        return Ok(Value::Nil);
    };
    let info = value.get_represented_type_info();
    let Some(info) = info else {
        return Ok(Value::Nil);
    };
    let ty = {
        let types = lua.app_data_ref::<ScriptTypes>();
        let registry = types.as_ref().and_then(|t| t.type_registry.clone());
        match registry {
            Some(registry) => ReflectedType::value(info, &registry.read()),
            None => return Ok(Value::Nil),
        }
    };
    let owner = ReflectedRef::value(value, Arc::new(ty));
    owner.get(lua)
}

/// A reflected value as Lua reads it at `at`: a leaf's value, nil or the content of an
/// `Option`, a unit-only enum's variant name, or a reference for everything else.
pub(super) fn read(
    lua: &Lua,
    value: &dyn PartialReflect,
    at: &ReflectedRef,
) -> mlua::Result<Value> {
    if let Some(leaf) = leaf_of(lua, value) {
        return (leaf.read)(value, lua, at);
    }
    let info = value.get_represented_type_info();
    if let ReflectRef::Enum(e) = value.reflect_ref() {
        if is_option(info) {
            return match e.field_at(0) {
                Some(inner) if e.variant_name() == "Some" => {
                    read(lua, inner, &at.join(Segment::Some))
                }
                _ => Ok(Value::Nil),
            };
        }
        if unit_only(info) {
            return lua.create_string(e.variant_name()).map(Value::String);
        }
    }
    lua.create_userdata(at.clone()).map(Value::UserData)
}

/// Runs `walk` on the component `ty` of `entity`, marking it changed when `walk` succeeds.
fn component_mut<R>(
    world: &mut World,
    entity: Entity,
    ty: &ReflectedType,
    walk: impl FnOnce(&mut dyn PartialReflect) -> mlua::Result<Option<R>>,
) -> mlua::Result<Option<R>> {
    if !ty.mutable {
        return Err(script_error(format!(
            "{} is an immutable component: scripts can read it, not change it",
            ty.name
        )));
    }
    let mut e = world
        .get_entity_mut(entity)
        .map_err(|_| stale_despawned(entity, ty.name))?;
    let component = ty.component.as_ref().and_then(|c| c.reflect_mut(&mut e));
    let mut component = component.ok_or_else(|| stale_removed(entity, ty.name))?;
    // Marked changed below, once the write went through.
    let result = walk(component.bypass_change_detection().as_partial_reflect_mut())?;
    if result.is_some() {
        component.set_changed();
    }
    Ok(result)
}

/// The shared function of the method `name`.
fn method(lua: &Lua, name: &'static str) -> mlua::Result<Function> {
    const KEY: &str = "bevy_lunar.reflected_methods";
    let table: mlua::Table = match lua.named_registry_value::<Option<mlua::Table>>(KEY)? {
        Some(table) => table,
        None => {
            let table = lua.create_table()?;
            type This = mlua::UserDataRef<ReflectedRef>;
            table.raw_set(
                "push",
                lua.create_function(|lua, (this, value): (This, Value)| {
                    this.push(lua, None, value)
                })?,
            )?;
            table.raw_set(
                "insert",
                lua.create_function(|lua, (this, position, value): (This, i64, Value)| {
                    this.push(lua, Some(position), value)
                })?,
            )?;
            table.raw_set(
                "remove",
                lua.create_function(|lua, (this, position): (This, Option<i64>)| {
                    this.remove(lua, position)
                })?,
            )?;
            table.raw_set(
                "pop",
                lua.create_function(|lua, this: This| this.remove(lua, None))?,
            )?;
            table.raw_set("clear", lua.create_function(|_, this: This| this.clear())?)?;
            table.raw_set("get", lua.create_function(|lua, this: This| this.get(lua))?)?;
            table.raw_set(
                "set",
                lua.create_function(|lua, (this, value): (This, Value)| this.set(lua, value))?,
            )?;
            lua.set_named_registry_value(KEY, &table)?;
            table
        }
    };
    table.raw_get(name)
}

impl UserData for ReflectedRef {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field(MetaMethod::Type, "Reflected");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Index, |lua, this, key: Value| {
            this.index(lua, key)
        });
        methods.add_meta_method(
            MetaMethod::NewIndex,
            |lua, this, (key, value): (Value, Value)| this.new_index(lua, key, value),
        );
        methods.add_meta_method(MetaMethod::Len, |_, this, ()| this.len());
        methods.add_meta_method(MetaMethod::ToString, |lua, this, ()| {
            this.to_lua_string(lua)
        });
        methods.add_meta_function(PAIRS, |lua, this: AnyUserData| {
            let keys = this.borrow::<ReflectedRef>()?.keys(lua)?;
            let mut next = 0;
            let iterate =
                lua.create_function_mut(move |lua, (this, _): (AnyUserData, Value)| {
                    let Some(key) = keys.get(next).cloned() else {
                        return Ok(Variadic::new());
                    };
                    next += 1;
                    let value = this.borrow::<ReflectedRef>()?.index(lua, key.clone())?;
                    Ok(Variadic::from_iter([key, value]))
                })?;
            Ok((iterate, this, Value::Nil))
        });
        // LuaJIT's `ipairs` reads a userdata only through `__ipairs` (Lua 5.4's through `__index`).
        methods.add_meta_function(IPAIRS, |lua, this: AnyUserData| {
            let iterate = lua.create_function(|lua, (this, i): (AnyUserData, i64)| {
                let value = this
                    .borrow::<ReflectedRef>()?
                    .index(lua, Value::Integer(i + 1))?;
                Ok(if value.is_nil() {
                    Variadic::new()
                } else {
                    Variadic::from_iter([Value::Integer(i + 1), value])
                })
            })?;
            Ok((iterate, this, 0))
        });
        methods.add_meta_function(
            MetaMethod::Eq,
            |_, (a, b): (AnyUserData, AnyUserData)| -> mlua::Result<bool> {
                let (a, b) = (a.borrow::<ReflectedRef>()?, b.borrow::<ReflectedRef>()?);
                let copy = b.copy()?;
                a.with_value(|value| {
                    value.reflect_partial_eq(copy.as_partial_reflect()) == Some(true)
                })
            },
        );
    }
}

impl IntoLua for &ReflectedRef {
    fn into_lua(self, lua: &Lua) -> mlua::Result<Value> {
        lua.create_userdata(self.clone()).map(Value::UserData)
    }
}
