//! What a type is, described for editors: the model the derives fill
//! ([`LuaUserData::define`] gives a [`ClassDef`]) from the same
//! attributes that generate the runtime registration, so the two agree. The definition file
//! (`crate::definitions`) renders this model; nothing here knows about files or formats.

use std::collections::BTreeMap;

use super::{LuaConvert, LuaUserData};

/// What editors are told of one derived type.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClassDef {
    /// The type's Lua name.
    pub name: &'static str,
    /// The Rust doc comment.
    pub doc: &'static str,
    pub fields: Vec<FieldDef>,
    /// Called on a value: `p:heal(5)`.
    pub methods: Vec<FunctionDef>,
    /// In the type table: `Player.new(...)`.
    pub functions: Vec<FunctionDef>,
    /// In the type table: `Vec3.ZERO`.
    pub constants: Vec<ConstantDef>,
    pub operators: Vec<OperatorDef>,
    /// For an enum: its variants (a unit-only enum is an alias of strings).
    pub variants: Option<Vec<VariantDef>>,
}

/// A variant of an enum, with the fields it has.
#[derive(Clone, Debug, PartialEq)]
pub struct VariantDef {
    /// The Lua name.
    pub name: &'static str,
    pub doc: &'static str,
    pub style: VariantStyle,
    pub fields: Vec<FieldDef>,
}

/// How a variant is built: a value (`State.Idle`), from a table of fields
/// (`State.Chasing { target = e }`) or from positional arguments (`Shape.Circle(2)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VariantStyle {
    Unit,
    Named,
    Tuple,
}

/// An exposed field: `---@field name type doc`, or a `---@readonly` member.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldDef {
    /// The Lua name (a renamed field under its new name).
    pub name: &'static str,
    pub ty: String,
    pub readonly: bool,
    pub doc: &'static str,
}

/// A method or static function, with Lua types for its parameters and results.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FunctionDef {
    pub name: &'static str,
    pub doc: &'static str,
    pub params: Vec<(&'static str, String)>,
    /// The type of the trailing `...` (a `Variadic<T>` parameter).
    pub variadic: Option<String>,
    pub returns: Vec<String>,
}

/// A constant of the type table (`Vec3.ZERO`).
#[derive(Clone, Debug, PartialEq)]
pub struct ConstantDef {
    pub name: &'static str,
    pub ty: String,
    pub doc: &'static str,
}

/// `---@operator add(number): Vec2`: `operand` is `None` for unary operators.
#[derive(Clone, Debug, PartialEq)]
pub struct OperatorDef {
    /// Lua's event name without the underscores: `add`, `unm`...
    pub event: &'static str,
    pub operand: Option<String>,
    pub result: String,
}

impl ClassDef {
    pub fn new(name: &'static str, doc: &'static str) -> Self {
        ClassDef {
            name,
            doc,
            ..ClassDef::default()
        }
    }
}

impl FunctionDef {
    pub fn new(name: &'static str, doc: &'static str) -> Self {
        FunctionDef {
            name,
            doc,
            ..FunctionDef::default()
        }
    }

    pub fn param(mut self, name: &'static str, ty: String) -> Self {
        self.params.push((name, ty));
        self
    }

    pub fn variadic(mut self, ty: String) -> Self {
        self.variadic = Some(ty);
        self
    }

    pub fn returns(mut self, ty: String) -> Self {
        self.returns.push(ty);
        self
    }
}

/// The classes of a definition file, each once: a type's class brings those of the derived
/// types its fields, parameters and results name.
#[derive(Default)]
pub struct Definitions {
    classes: BTreeMap<&'static str, Option<ClassDef>>,
}

impl Definitions {
    /// Adds `T`'s class (and those it names) if it is not there yet; returns its Lua name.
    pub fn class<T: LuaUserData>(&mut self) -> String {
        if !self.classes.contains_key(T::TYPE_NAME) {
            // Claimed before describing, so that a type naming itself stops here.
            self.classes.insert(T::TYPE_NAME, None);
            let class = T::define(self);
            self.classes.insert(T::TYPE_NAME, Some(class));
        }
        T::TYPE_NAME.to_owned()
    }

    /// Claims the class `name` for a caller about to [`insert`](Self::insert) it; false when
    /// it is there (or claimed) already.
    pub fn claim(&mut self, name: &'static str) -> bool {
        if self.classes.contains_key(name) {
            return false;
        }
        self.classes.insert(name, None);
        true
    }

    /// Adds a class described elsewhere than by a derive (a reflected type's).
    pub fn insert(&mut self, class: ClassDef) {
        self.classes.insert(class.name, Some(class));
    }

    /// The classes, by name.
    pub fn classes(&self) -> impl Iterator<Item = &ClassDef> {
        self.classes.values().flatten()
    }
}

/// Lua's type names for a Rust type `T`, picked by autoref specialization in generated code:
/// `(&&TypeProbe::<T>::new()).lua_type(defs)` is the class of a derived type, the
/// [`LuaConvert`] name of a convertible one (`integer`, `string`, `Vec2?`), else `any`.
#[doc(hidden)]
pub struct TypeProbe<T: ?Sized>(std::marker::PhantomData<T>);

// Copy, so that the last level can take the probe by value out of the `&&` it is called on.
impl<T: ?Sized> Clone for TypeProbe<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized> Copy for TypeProbe<T> {}

impl<T: ?Sized> TypeProbe<T> {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        TypeProbe(std::marker::PhantomData)
    }
}

#[doc(hidden)]
pub trait TypeViaClass {
    fn lua_type(self, defs: &mut Definitions) -> String;
}

impl<T: LuaUserData> TypeViaClass for &&TypeProbe<T> {
    fn lua_type(self, defs: &mut Definitions) -> String {
        defs.class::<T>()
    }
}

#[doc(hidden)]
pub trait TypeViaConvert {
    fn lua_type(self, defs: &mut Definitions) -> String;
}

impl<T: LuaConvert> TypeViaConvert for &TypeProbe<T> {
    fn lua_type(self, defs: &mut Definitions) -> String {
        T::define(defs)
    }
}

#[doc(hidden)]
pub trait TypeViaAny {
    fn lua_type(self, defs: &mut Definitions) -> String;
}

impl<T: ?Sized> TypeViaAny for TypeProbe<T> {
    fn lua_type(self, _defs: &mut Definitions) -> String {
        "any".to_owned()
    }
}

/// An operator for editor definitions: `(&&OperatorProbe::<T, Rhs, AddOp>::new()).define(defs)`
/// is its event (`add`) and result type, named by the same `Operator` table that registers the
/// metamethod, and `None` where this Lua has no such metamethod. Where the operator does not
/// apply, the registration has already reported it as a compile error, so this gives `None`
/// instead of repeating it.
#[doc(hidden)]
pub struct OperatorProbe<T, Rhs, Op>(std::marker::PhantomData<(T, Rhs, Op)>);

impl<T, Rhs, Op> OperatorProbe<T, Rhs, Op> {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        OperatorProbe(std::marker::PhantomData)
    }
}

/// The marker of `-v` for [`OperatorProbe`] (`Rhs` is `()`).
#[doc(hidden)]
pub struct NegOp;

/// The marker of `~v` for [`OperatorProbe`] (`Rhs` is `()`).
#[doc(hidden)]
pub struct NotOp;

/// An operator's event and result type, for a metamethod `meta` producing `O`.
fn operator<O: LuaConvert>(
    meta: Option<mlua::MetaMethod>,
    defs: &mut Definitions,
) -> Option<(&'static str, String)> {
    let event = meta?.name().trim_start_matches("__");
    Some((event, O::define(defs)))
}

#[doc(hidden)]
pub trait OperatorViaApply {
    fn define(self, defs: &mut Definitions) -> Option<(&'static str, String)>;
}

impl<T, Rhs, Op: super::ops::Apply<T, Rhs>> OperatorViaApply for &&OperatorProbe<T, Rhs, Op> {
    fn define(self, defs: &mut Definitions) -> Option<(&'static str, String)> {
        operator::<Op::Output>(Op::META, defs)
    }
}

impl<T: std::ops::Neg<Output: LuaConvert>> OperatorViaApply for &&OperatorProbe<T, (), NegOp> {
    fn define(self, defs: &mut Definitions) -> Option<(&'static str, String)> {
        operator::<T::Output>(Some(mlua::MetaMethod::Unm), defs)
    }
}

impl<T: std::ops::Not<Output: LuaConvert>> OperatorViaApply for &&OperatorProbe<T, (), NotOp> {
    fn define(self, defs: &mut Definitions) -> Option<(&'static str, String)> {
        // As `ops::not`: `~` exists from Lua 5.3 on.
        #[cfg(feature = "lua54")]
        let meta = Some(mlua::MetaMethod::BNot);
        #[cfg(not(feature = "lua54"))]
        let meta = None;
        operator::<T::Output>(meta, defs)
    }
}

#[doc(hidden)]
pub trait OperatorViaAny {
    fn define(self, defs: &mut Definitions) -> Option<(&'static str, String)>;
}

impl<T, Rhs, Op> OperatorViaAny for &OperatorProbe<T, Rhs, Op> {
    fn define(self, _defs: &mut Definitions) -> Option<(&'static str, String)> {
        None
    }
}
