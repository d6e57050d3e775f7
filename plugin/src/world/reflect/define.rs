//! Editor definitions of the exposed reflected types, from their `TypeInfo`: a struct's fields
//! with Lua types, a unit-only enum as an alias of its variant names, a data enum as a class
//! with `kind`, and the reflected types their fields name. Doc comments come along when the
//! type registry has them (the `reflect_documentation` feature).

use std::any::TypeId;

use bevy::reflect::enums::VariantInfo;
use bevy::reflect::{TypeInfo, TypeRegistry};

use super::Leaves;
use super::reference::is_option;
use crate::userdata::describe::{
    ClassDef, Definitions, FieldDef, FunctionDef, VariantDef, VariantStyle,
};

/// Field names of tuple-like values: positions, as scripts index them.
const POSITIONS: [&str; 12] = [
    "[1]", "[2]", "[3]", "[4]", "[5]", "[6]", "[7]", "[8]", "[9]", "[10]", "[11]", "[12]",
];

/// What the definitions need besides the classes they fill.
pub(crate) struct Reflected<'a> {
    pub leaves: &'a Leaves,
    pub registry: &'a TypeRegistry,
}

#[cfg(feature = "reflect_documentation")]
fn type_docs(info: &'static TypeInfo) -> &'static str {
    info.docs().unwrap_or("")
}

#[cfg(not(feature = "reflect_documentation"))]
fn type_docs(_: &'static TypeInfo) -> &'static str {
    ""
}

macro_rules! field_docs {
    ($field:expr) => {{
        #[cfg(feature = "reflect_documentation")]
        let docs = $field.docs().unwrap_or("");
        #[cfg(not(feature = "reflect_documentation"))]
        let docs = "";
        docs
    }};
}

impl Reflected<'_> {
    /// Adds the class of the reflected type `info` (and of those it names); its Lua type name.
    pub(crate) fn class(&self, defs: &mut Definitions, info: &'static TypeInfo) -> String {
        let name = info.type_path_table().short_path();
        if !defs.claim(name) {
            return name.to_owned();
        }
        let mut class = ClassDef::new(name, type_docs(info));
        match info {
            TypeInfo::Struct(s) => {
                for field in s.iter() {
                    class.fields.push(FieldDef {
                        name: field.name(),
                        ty: self.lua_type(defs, field.ty().id(), field.type_info()),
                        readonly: false,
                        doc: field_docs!(field),
                    });
                }
            }
            TypeInfo::TupleStruct(s) => {
                for (index, field) in s.iter().enumerate().take(POSITIONS.len()) {
                    class.fields.push(FieldDef {
                        name: POSITIONS[index],
                        ty: self.lua_type(defs, field.ty().id(), field.type_info()),
                        readonly: false,
                        doc: field_docs!(field),
                    });
                }
            }
            TypeInfo::Enum(e) => {
                let mut variants = Vec::new();
                for variant in e.iter() {
                    let (style, fields) = match variant {
                        VariantInfo::Unit(_) => (VariantStyle::Unit, Vec::new()),
                        VariantInfo::Struct(v) => (
                            VariantStyle::Named,
                            v.iter()
                                .map(|f| FieldDef {
                                    name: f.name(),
                                    ty: self.lua_type(defs, f.ty().id(), f.type_info()),
                                    readonly: false,
                                    doc: field_docs!(f),
                                })
                                .collect(),
                        ),
                        VariantInfo::Tuple(v) => (
                            VariantStyle::Tuple,
                            v.iter()
                                .enumerate()
                                .take(POSITIONS.len())
                                .map(|(i, f)| FieldDef {
                                    name: POSITIONS[i],
                                    ty: self.lua_type(defs, f.ty().id(), f.type_info()),
                                    readonly: false,
                                    doc: field_docs!(f),
                                })
                                .collect(),
                        ),
                    };
                    variants.push(VariantDef {
                        name: variant.name(),
                        doc: "",
                        style,
                        fields,
                    });
                }
                class.variants = Some(variants);
            }
            _ => {}
        }
        // Values without fields of their own are read and replaced whole.
        let has_fields = !class.fields.is_empty() || class.variants.is_some();
        if !has_fields || self.leaves.contains_key(&info.type_id()) {
            let value = self.value_type(defs, info);
            class
                .methods
                .push(FunctionDef::new("get", "The value.").returns(value.clone()));
            class
                .methods
                .push(FunctionDef::new("set", "Replaces the value.").param("value", value));
        }
        defs.insert(class);
        name.to_owned()
    }

    /// What `ref:get()` returns for a value of `info`.
    fn value_type(&self, defs: &mut Definitions, info: &'static TypeInfo) -> String {
        match self.leaves.get(&info.type_id()) {
            Some(leaf) => (leaf.lua_type)().into_owned(),
            None if matches!(info, TypeInfo::Opaque(_)) => "any".to_owned(),
            None => self.class(defs, info),
        }
    }

    /// The Lua type of a field of type `id`.
    fn lua_type(
        &self,
        defs: &mut Definitions,
        id: TypeId,
        info: Option<&'static TypeInfo>,
    ) -> String {
        if let Some(leaf) = self.leaves.get(&id) {
            return (leaf.lua_type)().into_owned();
        }
        let info = info.or_else(|| self.registry.get(id).map(|r| r.type_info()));
        let Some(info) = info else {
            return "any".to_owned();
        };
        match info {
            TypeInfo::List(l) => {
                format!("{}[]", self.lua_type(defs, l.item_ty().id(), l.item_info()))
            }
            TypeInfo::Array(a) => {
                format!("{}[]", self.lua_type(defs, a.item_ty().id(), a.item_info()))
            }
            TypeInfo::Map(m) => format!(
                "table<{}, {}>",
                self.lua_type(defs, m.key_ty().id(), m.key_info()),
                self.lua_type(defs, m.value_ty().id(), m.value_info())
            ),
            TypeInfo::Enum(e) if is_option(Some(info)) => match e.variant("Some") {
                Some(VariantInfo::Tuple(t)) => match t.field_at(0) {
                    Some(f) => format!("{}?", self.lua_type(defs, f.ty().id(), f.type_info())),
                    None => "any".to_owned(),
                },
                _ => "any".to_owned(),
            },
            TypeInfo::Struct(_) | TypeInfo::TupleStruct(_) | TypeInfo::Enum(_) => {
                self.class(defs, info)
            }
            _ => "any".to_owned(),
        }
    }
}
