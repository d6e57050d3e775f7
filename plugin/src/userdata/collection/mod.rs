//! Collections as live values: `Vec`, `VecDeque` and arrays are lists, `HashMap` and `BTreeMap`
//! are maps, `HashSet` and `BTreeSet` are sets.
//!
//! A collection field reads, like a nested derived field, as a live view of the collection
//! where it lives ([`ListRef`], [`MapRef`], [`SetRef`]): `inv.items[2] = "axe"`,
//! `inv.items:push("sword")` and `inv.stash.potion = nil` change the component, not a copy.
//! Each view holds its collection's place erased behind a trait object, so one metatable per
//! element type serves every container kind (a `Vec<String>` and a `[String; 4]` field are both
//! `string[]`), and a view of one kind converts into a field of another.
//!
//! Elements are read as Lua values read fields: numbers, strings and entities by value, derived
//! types and nested collections as live views of the element (`party.members[1].health = 5`
//! writes through). A view of an element is a path (list, index), found again on each access.
//!
//! Nothing converts loosely and nothing is lost: every written element is converted strictly
//! before anything is changed, and a refusal names the owner, the path and both types
//! (`Inventory: bad value for items[2]: expected string, got number`).

/// Implements `LuaConvert` for collection containers: by copy to and from Lua tables (each
/// module's `to_table` and `from_lua`), read where they live as the module's live view. Defined
/// before the modules, which use it.
macro_rules! convert_collection {
    ($view:ident, $lua_type:expr, $define:expr; $({$($generics:tt)*} $ty:ty;)*) => {$(
        impl<$($generics)*> LuaConvert for $ty {
            const BORROWS: bool = true;
            const LIVE: bool = true;

            fn lua_type() -> Cow<'static, str> {
                $lua_type
            }

            type Out = Value;

            fn to_lua(&self, lua: &Lua) -> mlua::Result<Value> {
                to_table(self, lua)
            }

            fn from_lua(value: Value, lua: &Lua) -> Result<Self, ConvertError> {
                from_lua::<Self>(value, lua)
            }

            fn read_at(place: LuaRef<Self>, origin: Origin, lua: &Lua) -> mlua::Result<Value> {
                lua.create_userdata($view::new(place, origin)).map(Value::UserData)
            }

            fn define(defs: &mut crate::userdata::describe::Definitions) -> String {
                let define: fn(&mut crate::userdata::describe::Definitions) -> String = $define;
                define(defs)
            }
        }
    )*};
}

mod list;
mod map;
mod set;

/// Runs `f` on what a callback-style access (`access(&mut |value| ...)`) hands over, and returns
/// its result: the views reach their collection this way, through a place.
pub(crate) fn visit<A: ?Sized, R>(
    access: impl FnOnce(&mut dyn FnMut(&A)) -> mlua::Result<()>,
    f: impl FnOnce(&A) -> R,
    origin: &Origin,
) -> mlua::Result<R> {
    let mut f = Some(f);
    let mut result = None;
    access(&mut |value| result = f.take().map(|f| f(value)))?;
    result.ok_or_else(|| origin.error("internal error: a collection was not reached"))
}

/// [`visit`] with exclusive access.
pub(crate) fn visit_mut<A: ?Sized, R>(
    access: impl FnOnce(&mut dyn FnMut(&mut A)) -> mlua::Result<()>,
    f: impl FnOnce(&mut A) -> R,
    origin: &Origin,
) -> mlua::Result<R> {
    let mut f = Some(f);
    let mut result = None;
    access(&mut |value| result = f.take().map(|f| f(value)))?;
    result.ok_or_else(|| origin.error("internal error: a collection was not reached"))
}

use std::borrow::Cow;
use std::rc::Rc;

use std::any::TypeId;
use std::collections::HashMap;

use mlua::{Function, Lua, Table, Value};

pub use list::{ListRef, LuaList};
pub use map::{LuaMap, MapRef};
pub use set::{LuaSet, SetRef};

use super::convert::{ConvertError, LuaConvert};
use super::error::script_error;
use super::reference::StaleReference;

/// `pairs(value)`'s metamethod. Named by its string: mlua names it only for the Lua versions
/// that have it, and LuaJIT has it with its Lua 5.2 extensions (the `luajit` feature turns them
/// on).
pub(crate) const PAIRS: &str = "__pairs";
/// `ipairs(value)`'s metamethod on LuaJIT (Lua 5.4 reads the elements through `__index`).
pub(crate) const IPAIRS: &str = "__ipairs";

/// The metatable field of a collection view holding its `table.insert`/`table.remove`: called
/// as `handler(op, view, ...)` by the wrappers the plugin installs over Lua's table library, so
/// that those functions work on lists on every Lua version (LuaJIT's table library takes real
/// tables only), and name the method to use on maps and sets.
pub const TABLE_FUNCTIONS: &str = "__lunar_table";

/// The `table.insert`/`table.remove` handler of a collection view, or nil for any other value.
pub fn table_functions(_lua: &Lua, value: Value) -> mlua::Result<Option<Function>> {
    match value {
        Value::UserData(ud) => match ud.metatable() {
            Ok(metatable) => metatable.get::<Option<Function>>(TABLE_FUNCTIONS),
            Err(_) => Ok(None),
        },
        _ => Ok(None),
    }
}

/// The methods of the views, by view type, in the Lua state's app data: a view's `__index` is
/// its Rust function itself (elements are the hot path; a Lua closure or mlua's method dispatch in
/// front of it cost about as much as the element read), and it finds methods here.
#[derive(Default)]
struct ViewMethods(HashMap<TypeId, Table>);

/// Keeps the methods of the view type `V` (each taking the view first); returns their table,
/// to be kept in the metatable too (`__lunar_methods`).
pub(crate) fn register_view_methods<V: 'static>(
    lua: &Lua,
    methods: Vec<(&'static str, Function)>,
) -> mlua::Result<Table> {
    let table = lua.create_table_with_capacity(0, methods.len())?;
    for (name, method) in methods {
        table.raw_set(name, method)?;
    }
    if lua.app_data_ref::<ViewMethods>().is_none() {
        lua.set_app_data(ViewMethods::default());
    }
    if let Some(mut all) = lua.app_data_mut::<ViewMethods>() {
        all.0.insert(TypeId::of::<V>(), table.clone());
    }
    Ok(table)
}

/// The method `name` of the view type `V`, if it has one.
pub(crate) fn view_method<V: 'static>(lua: &Lua, name: &Value) -> mlua::Result<Option<Function>> {
    let table = lua
        .app_data_ref::<ViewMethods>()
        .and_then(|all| all.0.get(&TypeId::of::<V>()).cloned());
    match table {
        Some(table) => table.raw_get(name),
        None => Ok(None),
    }
}

/// The metatable field holding a view type's methods (see [`register_view_methods`]).
pub(crate) const METHODS: &str = "__lunar_methods";

/// The table function a view's handler serves: `op`, or for `"copy"` the function named after it
/// (`table.sort` asks for a copy).
fn function_name(op: String, args: &[Value]) -> String {
    match (op.as_str(), args.last()) {
        ("copy", Some(Value::String(name))) => name.to_string_lossy(),
        _ => op,
    }
}

/// The `table.*` handler of a map or set view: each function is refused, naming the methods to
/// use instead (`{path}` in `methods` stands for the view's path).
pub(crate) fn refusing_table_functions<V: 'static>(
    lua: &Lua,
    kind: &'static str,
    methods: &'static str,
    origin: fn(&V) -> &Origin,
) -> mlua::Result<Function> {
    lua.create_function(
        move |_, (op, view, args): (String, mlua::UserDataRef<V>, mlua::Variadic<Value>)| {
            let op = function_name(op, &args);
            let origin = origin(&view);
            let methods = methods.replace("{path}", origin.path());
            Err::<(), _>(origin.refuse_table_function(&op, kind, &methods))
        },
    )
}

/// Where a live value is, as errors name it: the type owning it and the path from there
/// (`items`, `items[2]`, `stash.potion`).
#[derive(Clone, Debug)]
pub struct Origin {
    owner: &'static str,
    path: Rc<str>,
    /// The path is a field's name alone (errors then say `field 'items'`).
    field: bool,
}

impl Origin {
    /// The field `name` of a `owner`.
    pub fn field(owner: &'static str, name: &str) -> Self {
        Origin {
            owner,
            path: Rc::from(name),
            field: true,
        }
    }

    /// A value that is not inside another (a method's argument or result).
    pub fn value(type_name: &str) -> Self {
        Origin {
            owner: "",
            path: Rc::from(type_name),
            field: false,
        }
    }

    /// The element `segment` of this value (`[2]`, `.potion`).
    pub(crate) fn child(&self, segment: &str) -> Self {
        Origin {
            owner: self.owner,
            path: Rc::from(format!("{}{segment}", self.path)),
            field: false,
        }
    }

    /// `table.insert`/`table.remove` on a map or set: the error naming what to use instead.
    pub(crate) fn refuse_table_function(&self, op: &str, kind: &str, methods: &str) -> mlua::Error {
        self.error(format_args!(
            "table.{op} does not work on {} (a {kind}): use {methods}",
            self.path
        ))
    }

    /// The path as scripts wrote it.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// `Owner: message`, or the message alone for a value with no owner.
    pub(crate) fn error(&self, message: impl std::fmt::Display) -> mlua::Error {
        if self.owner.is_empty() {
            script_error(message.to_string())
        } else {
            script_error(format!("{}: {message}", self.owner))
        }
    }

    /// `Inventory: bad value for items[2]: expected string, got number`.
    pub(crate) fn bad_value(&self, err: ConvertError) -> mlua::Error {
        let place = if self.field && err.path.is_empty() {
            format!("field '{}'", self.path)
        } else {
            format!("{}{}", self.path, err.path)
        };
        self.error(format_args!(
            "bad value for {place}: expected {}, got {}",
            err.expected, err.got
        ))
    }

    /// The error of a view whose element is gone.
    pub(crate) fn gone(&self, why: impl std::fmt::Display) -> mlua::Error {
        let message = if self.owner.is_empty() {
            format!("{}: {why}", self.path)
        } else {
            format!("{}: {}: {why}", self.owner, self.path)
        };
        mlua::Error::external(StaleReference(message))
    }
}

/// A type that can key a map or be in a set: strings, integers, booleans and entities.
pub trait LuaKey: LuaConvert + Clone + Eq + std::hash::Hash + Ord + 'static {
    /// The key as a path segment: `.potion`, `["two words"]`, `[3]`.
    fn segment(&self) -> String;
}

impl LuaKey for String {
    fn segment(&self) -> String {
        let identifier = self
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && self.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if identifier {
            format!(".{self}")
        } else {
            format!("[{self:?}]")
        }
    }
}

macro_rules! plain_keys {
    ($($ty:ty),*) => {$(
        impl LuaKey for $ty {
            fn segment(&self) -> String {
                format!("[{self}]")
            }
        }
    )*};
}

plain_keys!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, bool);

/// The element or key a Lua index names, 1-based: Lua integers and integral floats.
pub(crate) fn lua_index(key: &Value) -> Option<i64> {
    match *key {
        Value::Integer(i) => Some(i),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Some(n as i64),
        _ => None,
    }
}

/// `string[]` for a list of `T`.
pub(crate) fn list_type<T: LuaConvert>() -> Cow<'static, str> {
    Cow::Owned(format!("{}[]", T::lua_type()))
}

/// `table<string, integer>` for a map.
pub(crate) fn map_type<K: LuaConvert, V: LuaConvert>() -> Cow<'static, str> {
    Cow::Owned(format!("table<{}, {}>", K::lua_type(), V::lua_type()))
}

/// `table<string, true>` for a set.
pub(crate) fn set_type<T: LuaConvert>() -> Cow<'static, str> {
    Cow::Owned(format!("table<{}, true>", T::lua_type()))
}

/// An mlua failure while reading a table that should convert, as a conversion error.
pub(crate) fn table_error(expected: Cow<'static, str>, err: mlua::Error) -> ConvertError {
    ConvertError {
        expected,
        got: format!("a table that cannot be read ({err})"),
        path: String::new(),
    }
}
