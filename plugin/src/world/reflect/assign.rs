//! Lua values into reflected ones. [`assign`] writes a Lua value over a reflected value of any
//! shape: a leaf through its binding, a struct from a table of fields, a list from a sequence,
//! a map from a table, an enum from a variant name or a table with `kind`, an `Option` from nil
//! or its content, any of them from another reflected value of the same type. It is strict: a
//! value of the wrong type is refused with what was expected, where, and what was given.
//!
//! It works in place and may stop half-way through a table, so callers run it on a copy unless
//! the value is a plain one (a number, a string, a boolean, nil), which stores once or not at all
//! (see `ReflectedRef::set`). New elements and variant fields start from the type's `Default`.

use std::any::{Any, TypeId};
use std::borrow::Cow;

use bevy::reflect::enums::{DynamicEnum, DynamicVariant, VariantInfo};
use bevy::reflect::std_traits::ReflectDefault;
use bevy::reflect::structs::DynamicStruct;
use bevy::reflect::tuple::DynamicTuple;
use bevy::reflect::{PartialReflect, ReflectMut, ReflectRef, TypeInfo};
use mlua::{Lua, Table, Value};

use super::Leaf;
use super::reference::{ReflectedRef, is_option, type_name};
use crate::userdata::{ConvertError, describe, describe_type};
use crate::world::registry::ScriptTypes;

/// The leaf binding of `value`'s type, if it has one.
pub(super) fn leaf_of(lua: &Lua, value: &dyn PartialReflect) -> Option<Leaf> {
    let id = Any::type_id(value.try_as_reflect()?.as_any());
    lua.app_data_ref::<ScriptTypes>()?.leaves.get(&id).copied()
}

fn error(expected: impl Into<Cow<'static, str>>, got: String) -> ConvertError {
    ConvertError {
        expected: expected.into(),
        got,
        path: String::new(),
    }
}

/// A new value of the type `id`: its `Default`.
pub(super) fn new_value(lua: &Lua, id: TypeId) -> Result<Box<dyn PartialReflect>, ConvertError> {
    let types = lua.app_data_ref::<ScriptTypes>();
    let registry = types.as_ref().and_then(|t| t.type_registry.clone());
    drop(types);
    let Some(registry) = registry else {
        return Err(error("a registered type", "no type registry".to_owned()));
    };
    let registry = registry.read();
    match registry.get_type_data::<ReflectDefault>(id) {
        Some(default) => Ok(default.default().into_partial_reflect()),
        None => {
            let name = registry
                .get(id)
                .map(|r| r.type_info().type_path_table().short_path())
                .unwrap_or("a type not in the type registry");
            Err(error(
                format!("{name} (which has no #[reflect(Default)] to build a new one from)"),
                "a value".to_owned(),
            ))
        }
    }
}

/// A new value of the type `id` holding the Lua `value`.
pub(super) fn new_from(
    lua: &Lua,
    id: TypeId,
    value: &Value,
) -> Result<Box<dyn PartialReflect>, ConvertError> {
    let make = lua
        .app_data_ref::<ScriptTypes>()
        .and_then(|types| types.leaves.get(&id).and_then(|leaf| leaf.make));
    if let Some(make) = make {
        return make(value, lua);
    }
    let mut new = new_value(lua, id)?;
    assign(lua, &mut *new, value)?;
    Ok(new)
}

/// The key of a map whose keys are of type `id`, from a Lua key.
pub(super) fn key_of(
    lua: &Lua,
    id: Option<TypeId>,
    key: &Value,
) -> Result<Box<dyn PartialReflect>, ConvertError> {
    let id = id.ok_or_else(|| error("a key of a known type", describe(key)))?;
    new_from(lua, id, key)
}

fn apply(target: &mut dyn PartialReflect, value: &dyn PartialReflect) -> Result<(), ConvertError> {
    target.try_apply(value).map_err(|err| {
        error(
            type_name(target),
            format!("a value that does not fit ({err})"),
        )
    })
}

/// How deep [`assign`] may nest: a table that contains itself, written to a recursive type
/// (`struct Node { children: Vec<Node> }`), would otherwise recurse until the stack overflows.
const MAX_DEPTH: u32 = 64;

thread_local! {
    static DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// One level of [`assign`]'s nesting, left on drop.
struct Nested;

impl Nested {
    fn enter() -> Result<Self, ConvertError> {
        let depth = DEPTH.with(|d| {
            d.set(d.get() + 1);
            d.get()
        });
        let nested = Nested;
        if depth > MAX_DEPTH {
            return Err(error(
                format!("a value nested at most {MAX_DEPTH} deep"),
                "a deeper one (a table that contains itself?)".to_owned(),
            ));
        }
        Ok(nested)
    }
}

impl Drop for Nested {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
    }
}

/// Writes the Lua `value` over `target` (see the module docs).
pub(crate) fn assign(
    lua: &Lua,
    target: &mut dyn PartialReflect,
    value: &Value,
) -> Result<(), ConvertError> {
    let _nested = Nested::enter()?;
    if let Some(leaf) = leaf_of(lua, target) {
        return (leaf.write)(target, value, lua);
    }
    if let Value::UserData(ud) = value
        && let Ok(other) = ud.borrow::<ReflectedRef>()
    {
        let copy = other.copy().map_err(|err| {
            error(
                type_name(target),
                format!("a value that cannot be read ({err})"),
            )
        })?;
        let same = copy.get_represented_type_info().map(TypeInfo::type_id)
            == target.get_represented_type_info().map(TypeInfo::type_id);
        if !same {
            return Err(error(
                type_name(target),
                type_name(copy.as_partial_reflect()),
            ));
        }
        return apply(target, copy.as_partial_reflect());
    }
    if let ReflectRef::Enum(_) = target.reflect_ref() {
        return assign_enum(lua, target, value);
    }
    let expected = type_name(target);
    let table = |value: &Value| match value {
        Value::Table(t) => Ok(t.clone()),
        other => Err(error(expected.clone(), describe_type(other))),
    };
    match target.reflect_mut() {
        ReflectMut::Struct(s) => {
            let table = table(value)?;
            for pair in table.pairs::<Value, Value>() {
                let (key, item) = pair.map_err(|e| error(expected.clone(), e.to_string()))?;
                let name = match &key {
                    Value::String(name) => name.to_string_lossy(),
                    other => {
                        return Err(error(format!("field names of {expected}"), describe(other)));
                    }
                };
                let Some(field) = s.field_mut(&name) else {
                    let names: Vec<&str> =
                        (0..s.field_len()).filter_map(|i| s.name_at(i)).collect();
                    return Err(error(
                        format!("a field of {expected} ({})", names.join(", ")),
                        format!("'{name}'"),
                    ));
                };
                assign(lua, field, &item).map_err(|e| e.within(&format!(".{name}")))?;
            }
            Ok(())
        }
        ReflectMut::TupleStruct(s) => {
            let table = table(value)?;
            for (index, item) in positions(&table, s.field_len(), &expected)? {
                assign_position(lua, s.field_mut(index - 1), &item, index, &expected)?;
            }
            Ok(())
        }
        ReflectMut::Tuple(s) => {
            let table = table(value)?;
            for (index, item) in positions(&table, s.field_len(), &expected)? {
                assign_position(lua, s.field_mut(index - 1), &item, index, &expected)?;
            }
            Ok(())
        }
        ReflectMut::Array(a) => {
            let table = table(value)?;
            let len = a.len();
            if table.raw_len() != len {
                return Err(error(
                    format!("a list of {len} for {expected}"),
                    format!("a list of {}", table.raw_len()),
                ));
            }
            for (index, item) in positions(&table, len, &expected)? {
                assign_position(lua, a.get_mut(index - 1), &item, index, &expected)?;
            }
            Ok(())
        }
        ReflectMut::List(l) => {
            let table = table(value)?;
            let item_type = l.get_represented_list_info().map(|i| i.item_ty().id());
            let items: Vec<Value> = table
                .sequence_values::<Value>()
                .collect::<mlua::Result<_>>()
                .map_err(|e| error(expected.clone(), e.to_string()))?;
            while l.len() > items.len() {
                l.pop();
            }
            for (i, item) in items.iter().enumerate() {
                let within = |e: ConvertError| e.within(&format!("[{}]", i + 1));
                match l.get_mut(i) {
                    Some(slot) => assign(lua, slot, item).map_err(within)?,
                    None => {
                        let id = item_type.ok_or_else(|| error(expected.clone(), "?".into()))?;
                        l.push(new_from(lua, id, item).map_err(within)?);
                    }
                }
            }
            Ok(())
        }
        ReflectMut::Map(m) => {
            let table = table(value)?;
            let info = m.get_represented_map_info();
            let (key_type, value_type) = (
                info.map(|i| i.key_ty().id()),
                info.map(|i| i.value_ty().id()),
            );
            let mut entries = Vec::new();
            for pair in table.pairs::<Value, Value>() {
                let (key, item) = pair.map_err(|e| error(expected.clone(), e.to_string()))?;
                let segment = format!("[{}]", describe(&key));
                let key = key_of(lua, key_type, &key).map_err(|e| e.within(&segment))?;
                let id = value_type.ok_or_else(|| error(expected.clone(), "?".into()))?;
                let element = new_from(lua, id, &item).map_err(|e| e.within(&segment))?;
                entries.push((key, element));
            }
            m.drain();
            for (key, element) in entries {
                m.insert_boxed(key, element);
            }
            Ok(())
        }
        _ => Err(error(
            format!("{expected} (which scripts cannot set)"),
            describe_type(value),
        )),
    }
}

/// Position `index` (1-based) of a tuple-like value, `slot`, from `item`.
fn assign_position(
    lua: &Lua,
    slot: Option<&mut dyn PartialReflect>,
    item: &Value,
    index: usize,
    expected: &str,
) -> Result<(), ConvertError> {
    let slot = slot.ok_or_else(|| error(expected.to_owned(), "?".into()))?;
    assign(lua, slot, item).map_err(|e| e.within(&format!("[{index}]")))
}

/// The positions (1 to `len`) and values of a table given for a tuple-like value.
fn positions(
    table: &Table,
    len: usize,
    expected: &str,
) -> Result<Vec<(usize, Value)>, ConvertError> {
    let mut found = Vec::new();
    for pair in table.pairs::<Value, Value>() {
        let (key, item) = pair.map_err(|e| error(expected.to_owned(), e.to_string()))?;
        match key {
            Value::Integer(i) if i >= 1 && i as usize <= len => found.push((i as usize, item)),
            other => {
                return Err(error(
                    format!("positions 1 to {len} of {expected}"),
                    describe(&other),
                ));
            }
        }
    }
    Ok(found)
}

/// An enum: a unit variant from its name, any variant from `{ kind = "Name", fields... }`,
/// an `Option` from nil or its content.
fn assign_enum(
    lua: &Lua,
    target: &mut dyn PartialReflect,
    value: &Value,
) -> Result<(), ConvertError> {
    let info = target.get_represented_type_info();
    let expected = type_name(target);
    let Some(TypeInfo::Enum(enum_info)) = info else {
        return Err(error(
            format!("{expected} (which scripts cannot set)"),
            describe_type(value),
        ));
    };
    if is_option(info) {
        if value.is_nil() {
            return apply(target, &DynamicEnum::new("None", DynamicVariant::Unit));
        }
        if let ReflectMut::Enum(e) = target.reflect_mut()
            && e.variant_name() == "Some"
            && let Some(inner) = e.field_at_mut(0)
        {
            return assign(lua, inner, value).map_err(ConvertError::or_nil);
        }
        let inner_type = match enum_info.variant("Some") {
            Some(VariantInfo::Tuple(t)) => t.field_at(0).map(|f| f.ty().id()),
            _ => None,
        };
        let inner_type = inner_type.ok_or_else(|| error(expected.clone(), describe_type(value)))?;
        let inner = new_from(lua, inner_type, value).map_err(ConvertError::or_nil)?;
        let mut tuple = DynamicTuple::default();
        tuple.insert_boxed(inner);
        return apply(
            target,
            &DynamicEnum::new("Some", DynamicVariant::Tuple(tuple)),
        );
    }
    let unit_names = || {
        let names: Vec<String> = enum_info
            .iter()
            .filter(|v| matches!(v, VariantInfo::Unit(_)))
            .map(|v| format!("{:?}", v.name()))
            .collect();
        format!("one of {}", names.join(", "))
    };
    match value {
        Value::String(name) => {
            let name = name.to_string_lossy();
            match enum_info.variant(&name) {
                Some(VariantInfo::Unit(_)) => {
                    apply(target, &DynamicEnum::new(name, DynamicVariant::Unit))
                }
                _ => Err(error(unit_names(), format!("{name:?}"))),
            }
        }
        Value::Table(table) => {
            let kind = match table.raw_get::<Value>("kind") {
                Ok(Value::String(kind)) => kind.to_string_lossy(),
                _ => {
                    return Err(error(
                        format!("a table with kind = a variant of {expected}"),
                        "a table without kind".to_owned(),
                    ));
                }
            };
            let Some(variant) = enum_info.variant(&kind) else {
                let names: Vec<String> = enum_info
                    .variant_names()
                    .iter()
                    .map(|n| format!("{n:?}"))
                    .collect();
                return Err(error(
                    format!("kind one of {}", names.join(", ")),
                    format!("{kind:?}"),
                )
                .within(".kind"));
            };
            let current =
                matches!(target.reflect_ref(), ReflectRef::Enum(e) if e.variant_name() == kind);
            let dynamic =
                build_variant(lua, variant, table, &expected, current.then_some(&*target))?;
            apply(target, &DynamicEnum::new(kind, dynamic))
        }
        other => Err(error(
            format!(
                "{} or a table with kind = a variant of {expected}",
                unit_names()
            ),
            describe_type(other),
        )),
    }
}

/// The variant `variant` with the fields `table` gives; the others from `current` (the value's
/// own fields when it already is this variant) or their type's `Default`.
fn build_variant(
    lua: &Lua,
    variant: &VariantInfo,
    table: &Table,
    expected: &str,
    current: Option<&dyn PartialReflect>,
) -> Result<DynamicVariant, ConvertError> {
    let current_field = |name: Option<&str>, index: usize| match current.map(|c| c.reflect_ref()) {
        Some(ReflectRef::Enum(e)) => match name {
            Some(name) => e.field(name),
            None => e.field_at(index),
        }
        .and_then(|f| f.reflect_clone().ok())
        .map(|f| f.into_partial_reflect()),
        _ => None,
    };
    let field_value =
        |id: TypeId, key: Value, segment: String, existing: Option<Box<dyn PartialReflect>>| {
            let item: Value = table.raw_get(key).unwrap_or(Value::Nil);
            let value = match existing {
                Some(mut value) => {
                    if !item.is_nil() {
                        assign(lua, &mut *value, &item).map_err(|e| e.within(&segment))?;
                    }
                    value
                }
                None if item.is_nil() => new_value(lua, id).map_err(|e| e.within(&segment))?,
                None => new_from(lua, id, &item).map_err(|e| e.within(&segment))?,
            };
            Ok::<_, ConvertError>(value)
        };
    let unknown_key = |known: &dyn Fn(&Value) -> bool| -> Result<(), ConvertError> {
        for pair in table.pairs::<Value, Value>() {
            let (key, _) = pair.map_err(|e| error(expected.to_owned(), e.to_string()))?;
            let is_kind = matches!(&key, Value::String(s) if s == "kind");
            if !is_kind && !known(&key) {
                return Err(error(
                    format!("the fields of {expected}.{}", variant.name()),
                    match &key {
                        Value::String(s) => format!("'{}'", s.to_string_lossy()),
                        other => describe(other),
                    },
                ));
            }
        }
        Ok(())
    };
    match variant {
        VariantInfo::Unit(_) => {
            unknown_key(&|_| false)?;
            Ok(DynamicVariant::Unit)
        }
        VariantInfo::Struct(info) => {
            unknown_key(
                &|key| matches!(key, Value::String(s) if info.field(&s.to_string_lossy()).is_some()),
            )?;
            let mut fields = DynamicStruct::default();
            for (index, field) in info.iter().enumerate() {
                let key = Value::String(
                    lua.create_string(field.name())
                        .map_err(|e| error(expected.to_owned(), e.to_string()))?,
                );
                let value = field_value(
                    field.ty().id(),
                    key,
                    format!(".{}", field.name()),
                    current_field(Some(field.name()), index),
                )?;
                fields.insert_boxed(field.name(), value);
            }
            Ok(DynamicVariant::Struct(fields))
        }
        VariantInfo::Tuple(info) => {
            let len = info.field_len();
            unknown_key(&|key| matches!(key, Value::Integer(i) if *i >= 1 && *i as usize <= len))?;
            let mut fields = DynamicTuple::default();
            for (index, field) in info.iter().enumerate() {
                let value = field_value(
                    field.ty().id(),
                    Value::Integer(index as i64 + 1),
                    format!("[{}]", index + 1),
                    current_field(None, index),
                )?;
                fields.insert_boxed(value);
            }
            Ok(DynamicVariant::Tuple(fields))
        }
    }
}
