//! Field access on live references without mlua's callback machinery (Lua 5.4).
//!
//! `p.health = p.health - dt` on a component reference runs four field accesses, and through
//! mlua each costs about 900 instructions: the callback trampoline, the userdata type check,
//! the borrow of the reference, the place's lookup. For numbers, booleans and strings of
//! references whose place is *keyed* (a component of an entity: the key is the entity), a plain
//! C function does the same in a fraction: it reads the [`Key`] from the userdata's own user
//! value, asks the place's [`KeyedAccess`] for the value, and pushes it (a string is copied out
//! of the component first, up to [`SHORT_TEXT`] bytes, and made a Lua string once the world is
//! given back). The `Key` also keeps where the place last found the target ([`Kept`]): while
//! the world's structure generation says it has not moved, the fast function reads and writes
//! it there without asking the place (`kept.rs`), which finds it again otherwise
//! (`world/kept.rs`).
//!
//! The fast functions handle only the plain case. Anything else (a stale reference, a value of
//! the wrong type, a float for an integer field, the world busy) goes to the ordinary mlua
//! function, called with the same arguments, so errors and conversions are exactly the same.
//!
//! Such references also get a C `__index` and `__newindex` ([`fast_dispatch`]): the Lua
//! dispatch closures of `metatable.rs` cost a Lua call and a tail call per access (about 300
//! instructions), so the C functions look the field up themselves and run its fast access
//! in place, return methods, keep the views of derived fields (`t.translation`) to hand them
//! out again, and hand anything else (other fields, errors) to the Lua closures. They first
//! try the lean access (`lean.rs`), which does the common cases reading Lua's structs instead
//! of the C API; the API path (`lua54.rs`) does the rest.
//!
//! The views of derived fields of component references (`t.translation`) are keyed too: their
//! key names the component's entity and the field's path (`view.rs`), so `t.translation.x`
//! takes the same fast access at an address inside the component.
//!
//! Files: this one holds what every Lua version shares (the conversions, [`Key`], the keyed
//! places); `kept.rs` the kept addresses and their check; `view.rs` the paths of keyed views;
//! `lua54.rs` the field functions and the dispatch; `lean.rs` the lean access.

use std::any::{Any, TypeId};
use std::collections::HashMap;

use mlua::Lua;

use super::LuaConvert;

/// A field value on its way between Lua and a fast field function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    Integer(i64),
    Number(f64),
    Boolean(bool),
}

/// How a field type converts to and from a [`Scalar`]; `from` returns `None` for anything the
/// strict conversion would not accept as it is (the ordinary path then decides).
pub struct ScalarConvert<F> {
    pub to: fn(&F) -> Scalar,
    pub from: fn(Scalar) -> Option<F>,
}

/// Calls `$apply!(ty)` for each primitive whose conversions the fast access inlines (see
/// [`ScalarConvert::is_primitive`]).
macro_rules! for_primitives {
    ($apply:ident) => {
        $apply!(f64);
        $apply!(f32);
        $apply!(bool);
        $apply!(i8);
        $apply!(i16);
        $apply!(i32);
        $apply!(i64);
        $apply!(isize);
        $apply!(u8);
        $apply!(u16);
        $apply!(u32);
        $apply!(u64);
        $apply!(usize);
    };
}

impl<F: 'static> ScalarConvert<F> {
    /// Whether `F` is a primitive (`f64`, `i32`, `bool`...): the fast access then converts
    /// with the primitive's own [`LuaConvert::SCALAR`] called by name
    /// ([`ScalarConvert::primitive_to`], [`ScalarConvert::primitive_from`]), which the
    /// compiler inlines, instead of through the pointers of its [`ScalarConvert`] (a call,
    /// and the [`Scalar`] through memory: about 15 instructions an access). A primitive
    /// field's fast conversion is its type's (`FastConvert::of`): the same functions.
    #[cfg_attr(not(feature = "lua54"), allow(dead_code))] // the Lua 5.4 fast path's
    pub(crate) fn is_primitive() -> bool {
        let mut primitive = false;
        macro_rules! compare {
            ($ty:ty) => {
                primitive |= TypeId::of::<F>() == TypeId::of::<$ty>();
            };
        }
        for_primitives!(compare);
        primitive
    }

    /// `value` converted by the primitive `F`'s own `to`, if `F` is a primitive (see
    /// [`ScalarConvert::is_primitive`]).
    #[inline(always)]
    #[cfg_attr(not(feature = "lua54"), allow(dead_code))]
    pub(crate) fn primitive_to(value: &F) -> Option<Scalar> {
        macro_rules! convert {
            ($ty:ty) => {
                if let (Some(own), Some(value)) = (
                    <$ty as LuaConvert>::SCALAR,
                    (value as &dyn Any).downcast_ref::<$ty>(),
                ) {
                    return Some((own.to)(value));
                }
            };
        }
        for_primitives!(convert);
        None
    }

    /// `scalar` converted by the primitive `F`'s own `from`, if `F` is a primitive (the outer
    /// `None` otherwise; see [`ScalarConvert::is_primitive`]).
    #[inline(always)]
    #[cfg_attr(not(feature = "lua54"), allow(dead_code))]
    pub(crate) fn primitive_from(scalar: Scalar) -> Option<Option<F>> {
        let mut converted: Option<F> = None;
        macro_rules! convert {
            ($ty:ty) => {
                if let (Some(own), Some(slot)) = (
                    <$ty as LuaConvert>::SCALAR,
                    (&mut converted as &mut dyn Any).downcast_mut::<Option<$ty>>(),
                ) {
                    *slot = (own.from)(scalar);
                    return Some(converted);
                }
            };
        }
        for_primitives!(convert);
        None
    }
}

impl<F> Clone for ScalarConvert<F> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<F> Copy for ScalarConvert<F> {}

/// How a string field type reads as text and is made from it, for the fast field functions (a
/// read copies the text out of the component before it makes the Lua string; texts longer
/// than [`SHORT_TEXT`] bytes, and writes of anything but a UTF-8 string, take the ordinary
/// path).
pub struct TextConvert<F> {
    pub to: fn(&F) -> &str,
    pub from: fn(&str) -> F,
}

impl<F> Clone for TextConvert<F> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<F> Copy for TextConvert<F> {}

/// The longest text the fast functions read (a stack buffer: no allocation while the world is
/// lent).
pub const SHORT_TEXT: usize = 64;

/// What a field's fast functions convert through: numbers and booleans, or text.
pub enum FastConvert<F> {
    Scalar(ScalarConvert<F>),
    Text(TextConvert<F>),
}

impl<F> Clone for FastConvert<F> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<F> Copy for FastConvert<F> {}

impl<F> FastConvert<F> {
    /// The fast conversion of a type with these (`LuaConvert::SCALAR`, `LuaConvert::TEXT`).
    pub fn of(scalar: Option<ScalarConvert<F>>, text: Option<TextConvert<F>>) -> Option<Self> {
        match (scalar, text) {
            (Some(scalar), _) => Some(FastConvert::Scalar(scalar)),
            (None, Some(text)) => Some(FastConvert::Text(text)),
            (None, None) => None,
        }
    }
}

/// How a fast field function reaches the `T` of a keyed place when the address kept in the key
/// is not current ([`Kept::for_reading`], [`Kept::for_writing`]): the place finds it anew and
/// keeps it in the key, and gives it to read or to write at once (a write's target is marked
/// changed); `None` when it cannot (the key names nothing, the world is not at hand), for the
/// ordinary path to explain. The caller uses the address before it runs Lua or reaches the
/// world again, which is as long as the place promises it holds the `T`, shared (`read`) or
/// exclusively (`write`).
#[cfg_attr(not(feature = "lua54"), allow(dead_code))] // read by the Lua 5.4 fast path only
pub(crate) struct KeyedAccess<T> {
    pub read: Locate<T>,
    pub write: Locate<T>,
}

/// The address of the `T` the key names now, found anew, if it can be reached.
pub(crate) type Locate<T> = fn(&mut Key) -> Option<std::ptr::NonNull<T>>;

/// The key of a keyed reference (a Lua userdata of its own, kept in the reference: see
/// [`set_key`]), where its place last found the target; for the key of a view, the view's
/// path (`view.rs`; null otherwise); and the reference's array of kept views (`kept_view`; null
/// until the first is made): a Lua table, which the dispatch's table of views made holds for
/// as long as the reference lives, so it may be read while the reference is at hand.
#[repr(C)]
pub(crate) struct Key {
    pub key: u64,
    pub kept: Kept,
    pub view: *const ViewPath,
    pub views: *const std::ffi::c_void,
}

impl Key {
    #[cfg_attr(not(feature = "lua54"), allow(dead_code))]
    pub(crate) fn new(key: u64) -> Self {
        Key {
            key,
            kept: Kept::NONE,
            view: std::ptr::null(),
            views: std::ptr::null(),
        }
    }
}

impl<T> Clone for KeyedAccess<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for KeyedAccess<T> {}

/// The keyed places of a Lua state, by target type: in its app data.
#[derive(Default)]
struct KeyedPlaces(HashMap<TypeId, Box<dyn Any>>);

/// Declares that references to `T` may be keyed, reached through `access` (a component's:
/// replaces a declaration for views only, [`register_view_access`]). Call it before the first
/// reference to `T` is made: the reference metatable is built then.
pub(crate) fn register_keyed_access<T: 'static>(lua: &Lua, access: KeyedAccess<T>) {
    with_keyed_places(lua, |places| {
        places.insert(TypeId::of::<T>(), Box::new(access));
    });
}

/// Declares that references to `T` may be keyed as views of a component's field
/// (`view.rs`), unless they are keyed already: a view's key finds its target through its
/// path, so the place itself reaches nothing.
pub(crate) fn register_view_access<T: 'static>(lua: &Lua) {
    let views_only: KeyedAccess<T> = KeyedAccess {
        read: |_| None,
        write: |_| None,
    };
    with_keyed_places(lua, |places| {
        places
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(views_only));
    });
}

fn with_keyed_places(lua: &Lua, f: impl FnOnce(&mut HashMap<TypeId, Box<dyn Any>>)) {
    if lua.app_data_ref::<KeyedPlaces>().is_none() {
        lua.set_app_data(KeyedPlaces::default());
    }
    if let Some(mut places) = lua.app_data_mut::<KeyedPlaces>() {
        f(&mut places.0);
    }
}

/// Whether references to `T` may be keyed (see [`register_keyed_access`]).
pub(crate) fn is_keyed<T: 'static>(lua: &Lua) -> bool {
    keyed_access::<T>(lua).is_some()
}

#[cfg_attr(not(feature = "lua54"), allow(dead_code))]
fn keyed_access<T: 'static>(lua: &Lua) -> Option<KeyedAccess<T>> {
    let places = lua.app_data_ref::<KeyedPlaces>()?;
    places.0.get(&TypeId::of::<T>())?.downcast_ref().copied()
}

/// A field function made by [`fast_getter`] or [`fast_setter`], and the block describing its
/// fast access (for [`fast_dispatch`]), if it has one.
pub(crate) struct FastField {
    pub function: mlua::Function,
    pub block: Option<mlua::AnyUserData>,
}

impl FastField {
    /// The ordinary function alone: no fast access.
    fn ordinary(function: mlua::Function) -> Self {
        FastField {
            function,
            block: None,
        }
    }
}

pub(crate) use kept::Kept;
#[cfg(feature = "lua54")]
pub(crate) use lean::key_of;
#[cfg(feature = "lua54")]
pub(crate) use lua54::{fast_dispatch, fast_getter, fast_setter, set_key, view_entry};
pub(crate) use view::{ViewPath, register_view_types};

#[cfg(not(feature = "lua54"))]
pub(crate) use fallback::{fast_dispatch, fast_getter, fast_setter, set_key, view_entry};

/// Other Lua versions: the ordinary functions only.
#[cfg(not(feature = "lua54"))]
mod fallback {
    use mlua::{AnyUserData, Function, Lua, Table};

    use super::{FastConvert, FastField};

    pub(crate) fn set_key(_lua: &Lua, _reference: &AnyUserData, _key: u64) -> mlua::Result<()> {
        Ok(())
    }

    pub(crate) fn fast_getter<T: 'static, F: 'static>(
        _lua: &Lua,
        _get: fn(&T) -> &F,
        _convert: &FastConvert<F>,
        ordinary: Function,
    ) -> mlua::Result<FastField> {
        Ok(FastField::ordinary(ordinary))
    }

    pub(crate) fn fast_setter<T: 'static, F: 'static>(
        _lua: &Lua,
        _get_mut: fn(&mut T) -> &mut F,
        _convert: &FastConvert<F>,
        ordinary: Function,
    ) -> mlua::Result<FastField> {
        Ok(FastField::ordinary(ordinary))
    }

    pub(crate) fn view_entry<P: 'static, F: 'static>(
        _lua: &Lua,
        _get: fn(&P) -> &F,
        _get_mut: fn(&mut P) -> &mut F,
    ) -> mlua::Result<mlua::Value> {
        Ok(mlua::Value::Boolean(true))
    }

    pub(crate) fn fast_dispatch(
        _lua: &Lua,
        (index, newindex): (Function, Function),
        _fast: (Table, Table),
        _lookups: (Table, Table, Table),
    ) -> mlua::Result<(Function, Function)> {
        Ok((index, newindex))
    }
}

mod kept;
#[cfg(feature = "lua54")]
mod lean;
#[cfg(feature = "lua54")]
mod lua54;
mod view;
