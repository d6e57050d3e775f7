//! Field access on live references without mlua's callback machinery (Lua 5.4).
//!
//! `p.health = p.health - dt` on a component reference runs four field accesses, and through
//! mlua each costs about 900 instructions: the callback trampoline, the userdata type check,
//! the borrow of the reference, the place's lookup. For numbers, booleans and strings of
//! references whose place is *keyed* (a component of an entity: the key is the entity), a plain
//! C function does the same in a fraction: it reads the [`Key`] from the userdata's own user
//! value, asks the place's [`KeyedAccess`] for the value, and pushes it (a string is copied out
//! of the component first, up to [`SHORT_TEXT`] bytes, and made a Lua string once the world is
//! given back). The `Key` also keeps where the place last found the target ([`Kept`]), so that
//! the place can skip its lookup while it knows the target has not moved (`world/kept.rs`).
//!
//! The fast functions handle only the plain case. Anything else (a stale reference, a value of
//! the wrong type, a float for an integer field, the world busy) goes to the ordinary mlua
//! function, called with the same arguments, so errors and conversions are exactly the same.
//!
//! Such references also get a C `__index` and `__newindex` ([`fast_dispatch`]): the Lua
//! dispatch closures of `metatable.rs` cost a Lua call and a tail call per access (about 300
//! instructions), so the C functions look the field up themselves and run its fast access
//! in place, return methods, keep the views of derived fields (`t.translation`) to hand them
//! out again, and hand anything else (other fields, errors) to the Lua closures.

use std::any::{Any, TypeId};
use std::collections::HashMap;

use mlua::Lua;

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

/// How a fast field function reaches the `T` of a keyed place; `false` when it cannot (the key
/// names nothing, the world is not at hand), for the ordinary path to explain.
#[cfg_attr(not(feature = "lua54"), allow(dead_code))] // read by the Lua 5.4 fast path only
pub(crate) struct KeyedAccess<T> {
    pub with_ref: WithRef<T>,
    pub with_mut: WithMut<T>,
}

/// Calls the function with the `T` the key names; `false` if it cannot.
pub(crate) type WithRef<T> = fn(&mut Key, &mut dyn FnMut(&T)) -> bool;
pub(crate) type WithMut<T> = fn(&mut Key, &mut dyn FnMut(&mut T)) -> bool;

/// The key of a keyed reference (a Lua userdata of its own, kept in the reference: see
/// [`set_key`]), and where its place last found the target.
#[repr(C)]
pub(crate) struct Key {
    pub key: u64,
    pub kept: Kept,
}

/// Where a place last found a reference's target, for the place to use again while it knows
/// the target has not moved (`world/kept.rs`). The fast functions only pass it on.
#[derive(Clone, Copy)]
pub(crate) struct Kept {
    /// When it was found (what "when" means is the place's; 0: nothing kept).
    pub generation: u64,
    /// The type of the target (a reference's key can reach a field function of another type).
    pub target_type: std::any::TypeId,
    pub target: *mut (),
    /// What a write marks, and the mark.
    pub changed: *const (),
    pub changed_by: *const (),
    pub tick: u32,
}

impl Key {
    #[cfg_attr(not(feature = "lua54"), allow(dead_code))]
    fn new(key: u64) -> Self {
        Key {
            key,
            kept: Kept {
                generation: 0,
                target_type: TypeId::of::<()>(),
                target: std::ptr::null_mut(),
                changed: std::ptr::null(),
                changed_by: std::ptr::null(),
                tick: 0,
            },
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

/// Declares that references to `T` may be keyed, reached through `access`. Call it before the
/// first reference to `T` is made: the reference metatable is built then.
pub(crate) fn register_keyed_access<T: 'static>(lua: &Lua, access: KeyedAccess<T>) {
    if lua.app_data_ref::<KeyedPlaces>().is_none() {
        lua.set_app_data(KeyedPlaces::default());
    }
    if let Some(mut places) = lua.app_data_mut::<KeyedPlaces>() {
        places
            .0
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(access));
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

#[cfg(feature = "lua54")]
pub(crate) use lua54::{fast_dispatch, fast_getter, fast_setter, set_key};

#[cfg(not(feature = "lua54"))]
pub(crate) use fallback::{fast_dispatch, fast_getter, fast_setter, set_key};

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

    pub(crate) fn fast_dispatch(
        _lua: &Lua,
        (index, newindex): (Function, Function),
        _fast: (Table, Table),
        _lookups: (Table, Table, Table),
    ) -> mlua::Result<(Function, Function)> {
        Ok((index, newindex))
    }
}

#[cfg(feature = "lua54")]
mod lua54 {
    use std::ffi::{c_int, c_void};
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use mlua::{AnyUserData, Function, Lua, Table, ffi};

    use super::{
        FastConvert, FastField, Key, SHORT_TEXT, Scalar, TextConvert, WithMut, WithRef,
        keyed_access,
    };

    /// The upvalues of a fast field function: the ordinary function, and the [`Block`] of its
    /// [`Getter`] or [`Setter`].
    const ORDINARY: c_int = ffi::lua_upvalueindex(1);
    const FIELD: c_int = ffi::lua_upvalueindex(2);

    /// Runs a fast access in place: `block` is the [`Block`] itself, `value` the stack index
    /// of the value to write (setters). `true` if it did the access (a getter pushed the
    /// value); `false` for the ordinary path, with the stack as it was.
    type Run = unsafe fn(*mut ffi::lua_State, *const c_void, c_int) -> bool;

    /// A fast access in a userdata: how to run it first, so that a C function holding only
    /// the block (the dispatch) can run it without knowing its types.
    #[repr(C)]
    struct Block<D> {
        run: Run,
        data: D,
    }

    /// What the fast getter of one field needs: plain function pointers (no drop).
    struct Getter<T, F> {
        get: fn(&T) -> &F,
        to: fn(&F) -> Scalar,
        place: WithRef<T>,
    }

    struct Setter<T, F> {
        get_mut: fn(&mut T) -> &mut F,
        from: fn(Scalar) -> Option<F>,
        place: WithMut<T>,
    }

    /// The text counterparts of [`Getter`] and [`Setter`].
    struct TextGetter<T, F> {
        get: fn(&T) -> &F,
        to: fn(&F) -> &str,
        place: WithRef<T>,
    }

    struct TextSetter<T, F> {
        get_mut: fn(&mut T) -> &mut F,
        from: fn(&str) -> F,
        place: WithMut<T>,
    }

    /// Stores `key` in the reference userdata itself, as a [`Key`] userdata in its first user
    /// value: the fast functions find it there without a lookup. mlua leaves that slot nil
    /// unless `set_user_value` is called (nothing here does), and its user values are tables,
    /// so a userdata there is always a `Key` put by this function.
    pub(crate) fn set_key(lua: &Lua, reference: &AnyUserData, key: u64) -> mlua::Result<()> {
        // SAFETY: the stack holds the reference as pushed by `exec_raw`; the new userdata is
        // sized and aligned (8 bytes at least) for a `Key`, which needs no drop, and is written
        // before anything can see it; the user value slot 1 exists on every userdata mlua makes
        // (`lua_newuserdata` makes one). A memory error leaves through Lua's `longjmp`, with
        // nothing alive here to drop.
        unsafe {
            lua.exec_raw::<()>(reference, |state| {
                const { assert!(!std::mem::needs_drop::<Key>()) };
                let memory = ffi::lua_newuserdatauv(state, size_of::<Key>(), 0);
                memory.cast::<Key>().write(Key::new(key));
                ffi::lua_setiuservalue(state, -2, 1);
                ffi::lua_pop(state, 1);
            })
        }
    }

    /// The getter of field `get` of `T` references: fast for keyed references, `ordinary`
    /// otherwise. Without a [`KeyedAccess`](super::KeyedAccess) for `T`, `ordinary` itself.
    pub(crate) fn fast_getter<T: 'static, F: 'static>(
        lua: &Lua,
        get: fn(&T) -> &F,
        convert: &FastConvert<F>,
        ordinary: Function,
    ) -> mlua::Result<FastField> {
        let Some(place) = keyed_access::<T>(lua) else {
            return Ok(FastField::ordinary(ordinary));
        };
        let place = place.with_ref;
        match *convert {
            FastConvert::Scalar(convert) => {
                let block = Block {
                    run: run_get::<T, F>,
                    data: Getter {
                        get,
                        to: convert.to,
                        place,
                    },
                };
                closure(lua, ordinary, block, fast_get)
            }
            FastConvert::Text(TextConvert { to, .. }) => {
                let block = Block {
                    run: run_get_text::<T, F>,
                    data: TextGetter { get, to, place },
                };
                closure(lua, ordinary, block, fast_get)
            }
        }
    }

    /// The setter counterpart of [`fast_getter`].
    pub(crate) fn fast_setter<T: 'static, F: 'static>(
        lua: &Lua,
        get_mut: fn(&mut T) -> &mut F,
        convert: &FastConvert<F>,
        ordinary: Function,
    ) -> mlua::Result<FastField> {
        let Some(place) = keyed_access::<T>(lua) else {
            return Ok(FastField::ordinary(ordinary));
        };
        let place = place.with_mut;
        match *convert {
            FastConvert::Scalar(convert) => {
                let block = Block {
                    run: run_set::<T, F>,
                    data: Setter {
                        get_mut,
                        from: convert.from,
                        place,
                    },
                };
                closure(lua, ordinary, block, fast_set)
            }
            FastConvert::Text(TextConvert { from, .. }) => {
                let block = Block {
                    run: run_set_text::<T, F>,
                    data: TextSetter {
                        get_mut,
                        from,
                        place,
                    },
                };
                closure(lua, ordinary, block, fast_set)
            }
        }
    }

    /// A C closure of `function` over `ordinary` and `block` (moved into a userdata), and the
    /// block's userdata.
    fn closure<D: 'static>(
        lua: &Lua,
        ordinary: Function,
        block: Block<D>,
        function: ffi::lua_CFunction,
    ) -> mlua::Result<FastField> {
        const { assert!(!std::mem::needs_drop::<D>()) };
        // SAFETY: `exec_raw` pushed `ordinary`. The userdata block is fresh, sized for a
        // `Block<D>` and aligned for any Lua value (at least 8 bytes, enough for function
        // pointers); `D` needs no drop, so Lua may free the block without running anything.
        // The block is copied below `ordinary`, and `lua_pushcclosure` takes `ordinary` and the
        // block as upvalues, in the order the constants above name: the results are the block
        // and the closure.
        let (block, function) = unsafe {
            lua.exec_raw::<(AnyUserData, Function)>(ordinary, |state| {
                let memory = ffi::lua_newuserdatauv(state, size_of::<Block<D>>(), 0);
                memory.cast::<Block<D>>().write(block);
                ffi::lua_pushvalue(state, -1);
                ffi::lua_insert(state, -3);
                ffi::lua_pushcclosure(state, function, 2);
            })
        }?;
        Ok(FastField {
            function,
            block: Some(block),
        })
    }

    /// The [`Key`] stored by [`set_key`] in the userdata at `index`, if it is one. It leaves
    /// the key's Lua value pushed, which keeps the `Key` alive while the caller uses it (a
    /// fast function returning its result from the top does not need it popped; the ordinary
    /// path restores the stack).
    ///
    /// SAFETY: `state` is a live Lua state in a C function call with `index` valid and a stack
    /// slot free. The `Key` may be used until the pushed value is popped, and not while
    /// another `&mut Key` to it is alive.
    unsafe fn key<'a>(state: *mut ffi::lua_State, index: c_int) -> Option<&'a mut Key> {
        // SAFETY: per the caller; a full userdata has user value slots to read. A userdata in
        // the first one was made by `set_key` (see there): its memory is a `Key`.
        unsafe {
            if ffi::lua_type(state, index) != ffi::LUA_TUSERDATA
                || ffi::lua_getiuservalue(state, index, 1) != ffi::LUA_TUSERDATA
            {
                return None;
            }
            ffi::lua_touserdata(state, -1).cast::<Key>().as_mut()
        }
    }

    /// Hands the call to the ordinary function: same arguments, its results (or its error).
    ///
    /// SAFETY: called from a C function, with no Rust value that needs dropping alive in the
    /// caller (an error raised by the ordinary function leaves through Lua's `longjmp`), and
    /// `function` a valid index (an upvalue) holding a function.
    unsafe fn call_instead(state: *mut ffi::lua_State, function: c_int, results: c_int) -> c_int {
        // SAFETY: per the caller.
        unsafe {
            let args = ffi::lua_gettop(state);
            ffi::lua_pushvalue(state, function);
            ffi::lua_insert(state, 1);
            ffi::lua_call(state, args, results);
        }
        results
    }

    /// The [`Run`] of a [`Getter`]: reads the field of the reference at index 1 and pushes it.
    ///
    /// SAFETY: `block` is a `Block<Getter<T, F>>`; a C function call of a live state, with
    /// index 1 valid and a stack slot free.
    unsafe fn run_get<T: 'static, F: 'static>(
        state: *mut ffi::lua_State,
        block: *const c_void,
        _value: c_int,
    ) -> bool {
        // SAFETY: per the caller.
        let top = unsafe { ffi::lua_gettop(state) };
        // SAFETY: per the caller.
        let field = unsafe { &(*block.cast::<Block<Getter<T, F>>>()).data };
        // SAFETY: per the caller.
        let value = unsafe {
            read_keyed(state, field.place, |target| {
                Some((field.to)((field.get)(target)))
            })
        };
        // SAFETY: per the caller; pushing a scalar needs no allocation.
        unsafe {
            match value {
                Some(Scalar::Number(n)) => ffi::lua_pushnumber(state, n),
                Some(Scalar::Integer(i)) => ffi::lua_pushinteger(state, i),
                Some(Scalar::Boolean(b)) => ffi::lua_pushboolean(state, c_int::from(b)),
                None => {
                    ffi::lua_settop(state, top);
                    return false;
                }
            }
        }
        true
    }

    /// The [`Run`] of a [`Setter`]: writes the value at index `value` into the field of the
    /// reference at index 1.
    ///
    /// SAFETY: `block` is a `Block<Setter<T, F>>`; a C function call of a live state, with
    /// indices 1 and `value` valid.
    unsafe fn run_set<T: 'static, F: 'static>(
        state: *mut ffi::lua_State,
        block: *const c_void,
        value: c_int,
    ) -> bool {
        // SAFETY: per the caller.
        let scalar = unsafe {
            match ffi::lua_type(state, value) {
                ffi::LUA_TNUMBER if ffi::lua_isinteger(state, value) != 0 => {
                    Scalar::Integer(ffi::lua_tointegerx(state, value, std::ptr::null_mut()))
                }
                ffi::LUA_TNUMBER => {
                    Scalar::Number(ffi::lua_tonumberx(state, value, std::ptr::null_mut()))
                }
                ffi::LUA_TBOOLEAN => Scalar::Boolean(ffi::lua_toboolean(state, value) != 0),
                _ => return false,
            }
        };
        // SAFETY: per the caller.
        let field = unsafe { &(*block.cast::<Block<Setter<T, F>>>()).data };
        // SAFETY: per the caller.
        unsafe { write_keyed(state, field.place, field.get_mut, || (field.from)(scalar)) }
    }

    /// The [`Run`] of a [`TextGetter`]: copies the field's text (up to [`SHORT_TEXT`] bytes)
    /// out of the component, then pushes it as a Lua string.
    ///
    /// SAFETY: `block` is a `Block<TextGetter<T, F>>`; a C function call of a live state, with
    /// index 1 valid and two stack slots free. Making the string may raise a memory error,
    /// which leaves through Lua's `longjmp`: by then the world is given back and nothing alive
    /// here needs dropping.
    unsafe fn run_get_text<T: 'static, F: 'static>(
        state: *mut ffi::lua_State,
        block: *const c_void,
        _value: c_int,
    ) -> bool {
        // SAFETY: per the caller.
        let top = unsafe { ffi::lua_gettop(state) };
        let mut buffer = [0u8; SHORT_TEXT];
        // SAFETY: per the caller.
        let field = unsafe { &(*block.cast::<Block<TextGetter<T, F>>>()).data };
        // SAFETY: per the caller.
        let length = unsafe {
            read_keyed(state, field.place, |target| {
                let text = (field.to)((field.get)(target)).as_bytes();
                let copy = buffer.get_mut(..text.len())?;
                copy.copy_from_slice(text);
                Some(text.len())
            })
        };
        // SAFETY: per the caller; `buffer[..length]` holds the text.
        unsafe {
            match length {
                Some(length) => {
                    ffi::lua_pushlstring(state, buffer.as_ptr().cast(), length);
                    true
                }
                None => {
                    ffi::lua_settop(state, top);
                    false
                }
            }
        }
    }

    /// The [`Run`] of a [`TextSetter`]: writes the UTF-8 string at index `value` into the field
    /// of the reference at index 1.
    ///
    /// SAFETY: `block` is a `Block<TextSetter<T, F>>`; a C function call of a live state, with
    /// indices 1 and `value` valid and a stack slot free.
    unsafe fn run_set_text<T: 'static, F: 'static>(
        state: *mut ffi::lua_State,
        block: *const c_void,
        value: c_int,
    ) -> bool {
        // SAFETY: per the caller. The bytes of a string on the stack stay where they are while
        // it is there (nothing here runs Lua code or its collector); `lua_tolstring` of a
        // string converts nothing.
        let text = unsafe {
            if ffi::lua_type(state, value) != ffi::LUA_TSTRING {
                return false;
            }
            let mut length = 0;
            let bytes = ffi::lua_tolstring(state, value, &mut length);
            std::slice::from_raw_parts(bytes.cast::<u8>(), length)
        };
        let Ok(text) = std::str::from_utf8(text) else {
            return false;
        };
        // SAFETY: per the caller.
        let field = unsafe { &(*block.cast::<Block<TextSetter<T, F>>>()).data };
        // SAFETY: per the caller.
        unsafe {
            write_keyed(state, field.place, field.get_mut, || {
                Some((field.from)(text))
            })
        }
    }

    /// What `read` makes of the `T` the reference at index 1 is keyed to, reached through
    /// `place`; `None` if it is not keyed, `place` cannot reach it, or `read` panics (a panic
    /// must not unwind into Lua's C frames: the ordinary path then reports it as an error).
    /// The key's Lua value stays pushed.
    ///
    /// SAFETY: a C function call of a live state, with index 1 valid and a stack slot free.
    unsafe fn read_keyed<T, R>(
        state: *mut ffi::lua_State,
        place: WithRef<T>,
        mut read: impl FnMut(&T) -> Option<R>,
    ) -> Option<R> {
        catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: per the caller.
            let key = unsafe { key(state, 1)? };
            let mut value = None;
            place(key, &mut |target| value = read(target));
            value
        }))
        .ok()
        .flatten()
    }

    /// Writes the value `make` makes into the field `get_mut` of the `T` the reference at
    /// index 1 is keyed to, reached through `place`. `true` if it did; otherwise (not keyed,
    /// `make` refused, the place not reached, a panic) the stack is as it was.
    ///
    /// SAFETY: a C function call of a live state, with index 1 valid and a stack slot free.
    unsafe fn write_keyed<T, F>(
        state: *mut ffi::lua_State,
        place: WithMut<T>,
        get_mut: fn(&mut T) -> &mut F,
        make: impl FnOnce() -> Option<F>,
    ) -> bool {
        // SAFETY: per the caller.
        let top = unsafe { ffi::lua_gettop(state) };
        let written = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: per the caller.
            let Some(key) = (unsafe { key(state, 1) }) else {
                return false;
            };
            let mut value = make();
            value.is_some()
                && place(key, &mut |target| {
                    if let Some(value) = value.take() {
                        *get_mut(target) = value;
                    }
                })
        }))
        .unwrap_or(false);
        if !written {
            // SAFETY: per the caller; back to the stack as it was.
            unsafe { ffi::lua_settop(state, top) };
        }
        written
    }

    /// Runs the [`Block`] at `block`.
    ///
    /// SAFETY: `block` points to a live `Block<D>` (any `D`); as [`Run`] requires.
    unsafe fn run(state: *mut ffi::lua_State, block: *const c_void, value: c_int) -> bool {
        // SAFETY: `run` is the first field of every `Block` (`repr(C)`).
        unsafe { (*block.cast::<Run>())(state, block, value) }
    }

    /// `reference.field`, as a field function.
    unsafe extern "C-unwind" fn fast_get(state: *mut ffi::lua_State) -> c_int {
        // SAFETY: this function is only made by `closure`, with the block as `FIELD`, and
        // called with the reference at index 1; nothing to drop is alive here.
        unsafe {
            if run(state, ffi::lua_touserdata(state, FIELD), 0) {
                return 1;
            }
            call_instead(state, ORDINARY, 1)
        }
    }

    /// `reference.field = value`, as a field function.
    unsafe extern "C-unwind" fn fast_set(state: *mut ffi::lua_State) -> c_int {
        // SAFETY: as in `fast_get`, called with the reference and the value.
        unsafe {
            if run(state, ffi::lua_touserdata(state, FIELD), 2) {
                return 0;
            }
            call_instead(state, ORDINARY, 0)
        }
    }

    /// The upvalues of the dispatch functions: the Lua dispatch they stand in front of, the
    /// blocks of the fast fields by name, and (`__index`) the methods and the getters by name.
    const DISPATCH: c_int = ffi::lua_upvalueindex(1);
    const BLOCKS: c_int = ffi::lua_upvalueindex(2);
    const METHODS: c_int = ffi::lua_upvalueindex(3);
    const GETTERS: c_int = ffi::lua_upvalueindex(4);
    const VIEWS: c_int = ffi::lua_upvalueindex(5);
    const MADE_VIEWS: c_int = ffi::lua_upvalueindex(6);

    /// C `__index` and `__newindex` in front of the Lua ones (`index`, `newindex`): a field in
    /// `fast_getters` / `fast_setters` (name -> block) is run in place, a method (not shadowed
    /// by a field of its name, as in the Lua dispatch) is returned from `methods`; anything
    /// else goes to the Lua dispatch. A field named in `views` (name -> true: a derived value
    /// inside, whose view is the same whatever the value) is read through the Lua dispatch
    /// once per keyed reference, and its view kept (in a table with weak keys, by reference)
    /// and handed out again: `t.translation.x` made a new userdata for `t.translation` every
    /// time. Only keyed references (components) keep views: their views hold no Lua value, so
    /// a reference and its views go to the collector together.
    pub(crate) fn fast_dispatch(
        lua: &Lua,
        (index, newindex): (Function, Function),
        (fast_getters, fast_setters): (Table, Table),
        (methods, getters, views): (Table, Table, Table),
    ) -> mlua::Result<(Function, Function)> {
        // SAFETY: `exec_raw` pushed the values each closure takes as upvalues, in the order
        // the constants above name; the sixth, the table of views made, is made here (with its
        // weak-keys metatable) before the closure takes all six.
        unsafe {
            let index = lua.exec_raw::<Function>(
                (index, fast_getters, methods, getters, views),
                |state| {
                    ffi::lua_createtable(state, 0, 0);
                    ffi::lua_createtable(state, 0, 1);
                    ffi::lua_pushstring(state, c"k".as_ptr());
                    ffi::lua_setfield(state, -2, c"__mode".as_ptr());
                    ffi::lua_setmetatable(state, -2);
                    ffi::lua_pushcclosure(state, dispatch_index, 6);
                },
            )?;
            let newindex = lua.exec_raw::<Function>((newindex, fast_setters), |state| {
                ffi::lua_pushcclosure(state, dispatch_newindex, 2);
            })?;
            Ok((index, newindex))
        }
    }

    /// Runs the fast access whose block the table at `table` holds for the key at index 2, if
    /// any; `true` if it did it (a getter's value on top). Otherwise the stack may hold more
    /// values than before: the caller restores it.
    ///
    /// SAFETY: a C function call with `table` a table of blocks and two stack slots free;
    /// `value` as [`Run`] requires.
    unsafe fn run_field(state: *mut ffi::lua_State, table: c_int, value: c_int) -> bool {
        // SAFETY: per the caller; the block stays alive in the table.
        unsafe {
            ffi::lua_pushvalue(state, 2);
            ffi::lua_rawget(state, table) == ffi::LUA_TUSERDATA
                && run(state, ffi::lua_touserdata(state, -1), value)
        }
    }

    /// `reference[key]`.
    unsafe extern "C-unwind" fn dispatch_index(state: *mut ffi::lua_State) -> c_int {
        // SAFETY: made by `fast_dispatch` with its upvalues, and called by Lua as `__index`
        // (the reference and the key; called directly with fewer, the missing ones read as
        // nil); nothing to drop is alive here.
        unsafe {
            let top = ffi::lua_gettop(state);
            if run_field(state, BLOCKS, 0) {
                return 1;
            }
            ffi::lua_settop(state, top);
            ffi::lua_pushvalue(state, 2);
            if ffi::lua_rawget(state, METHODS) != ffi::LUA_TNIL {
                ffi::lua_pushvalue(state, 2);
                if ffi::lua_rawget(state, GETTERS) == ffi::LUA_TNIL {
                    ffi::lua_pop(state, 1);
                    return 1;
                }
            }
            ffi::lua_settop(state, top);
            ffi::lua_pushvalue(state, 2);
            let view = ffi::lua_rawget(state, VIEWS) != ffi::LUA_TNIL;
            ffi::lua_settop(state, top);
            if view && top >= 2 && key(state, 1).is_some() {
                return kept_view(state);
            }
            ffi::lua_settop(state, top);
            call_instead(state, DISPATCH, 1)
        }
    }

    /// The view of field `key` (index 2) of the keyed reference at index 1: the one kept for
    /// it, or a new one from the Lua dispatch, then kept.
    ///
    /// SAFETY: called by `dispatch_index` with its upvalues, exactly two arguments and nothing
    /// else on the stack; nothing to drop is alive in the callers (the Lua dispatch, or making
    /// a table, may raise an error).
    unsafe fn kept_view(state: *mut ffi::lua_State) -> c_int {
        // SAFETY: per the caller.
        unsafe {
            ffi::lua_settop(state, 2);
            ffi::lua_pushvalue(state, 1);
            if ffi::lua_rawget(state, MADE_VIEWS) == ffi::LUA_TTABLE {
                ffi::lua_pushvalue(state, 2);
                if ffi::lua_rawget(state, 3) != ffi::LUA_TNIL {
                    return 1;
                }
                ffi::lua_pop(state, 1);
            } else {
                ffi::lua_pop(state, 1);
                ffi::lua_createtable(state, 0, 2);
                ffi::lua_pushvalue(state, 1);
                ffi::lua_pushvalue(state, 3);
                ffi::lua_rawset(state, MADE_VIEWS);
            }
            // Stack: reference, key, its views. The view is made as the Lua dispatch makes it.
            ffi::lua_pushvalue(state, DISPATCH);
            ffi::lua_pushvalue(state, 1);
            ffi::lua_pushvalue(state, 2);
            ffi::lua_call(state, 2, 1);
            if ffi::lua_type(state, 4) == ffi::LUA_TUSERDATA {
                ffi::lua_pushvalue(state, 2);
                ffi::lua_pushvalue(state, 4);
                ffi::lua_rawset(state, 3);
            }
            1
        }
    }

    /// `reference[key] = value`.
    unsafe extern "C-unwind" fn dispatch_newindex(state: *mut ffi::lua_State) -> c_int {
        // SAFETY: as in `dispatch_index`, called as `__newindex` (reference, key, value).
        unsafe {
            let top = ffi::lua_gettop(state);
            if top >= 3 && run_field(state, BLOCKS, 3) {
                return 0;
            }
            ffi::lua_settop(state, top);
            call_instead(state, DISPATCH, 0)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::super::{KeyedAccess, ScalarConvert};
        use super::*;

        #[test]
        fn fast_functions_take_keyed_references_and_leave_the_rest_to_the_ordinary_ones() {
            // A "place" keyed by an index into a thread-local array of two numbers.
            thread_local! {
                static VALUES: std::cell::RefCell<[f64; 2]> = const { std::cell::RefCell::new([1.5, 2.5]) };
            }
            let lua = Lua::new();
            super::super::register_keyed_access::<[f64; 1]>(
                &lua,
                KeyedAccess {
                    with_ref: |key, f| {
                        VALUES.with(|v| {
                            let values = v.borrow();
                            let Some(x) = values.get(key.key as usize) else {
                                return false;
                            };
                            f(&[*x]);
                            true
                        })
                    },
                    with_mut: |key, f| {
                        VALUES.with(|v| {
                            let mut values = v.borrow_mut();
                            let Some(x) = values.get_mut(key.key as usize) else {
                                return false;
                            };
                            let mut cell = [*x];
                            f(&mut cell);
                            *x = cell[0];
                            true
                        })
                    },
                },
            );
            let convert = ScalarConvert::<f64> {
                to: |x| Scalar::Number(*x),
                from: |s| match s {
                    Scalar::Number(n) => Some(n),
                    Scalar::Integer(i) => Some(i as f64),
                    Scalar::Boolean(_) => None,
                },
            };
            let ordinary_get = lua
                .create_function(|_, _: mlua::Value| Ok("ordinary"))
                .unwrap();
            let ordinary_set = lua
                .create_function(
                    |_, (_, v): (mlua::Value, mlua::Value)| -> mlua::Result<()> {
                        Err(mlua::Error::runtime(format!(
                            "ordinary setter got {}",
                            v.type_name()
                        )))
                    },
                )
                .unwrap();
            let convert = FastConvert::Scalar(convert);
            let get = fast_getter::<[f64; 1], f64>(&lua, |a| &a[0], &convert, ordinary_get)
                .unwrap()
                .function;
            let set = fast_setter::<[f64; 1], f64>(&lua, |a| &mut a[0], &convert, ordinary_set)
                .unwrap()
                .function;
            let keyed = |key: u64| {
                let ud = lua.create_any_userdata(()).unwrap();
                set_key(&lua, &ud, key).unwrap();
                ud
            };
            let (first, second, missing) = (keyed(0), keyed(1), keyed(7));
            let unkeyed = lua.create_any_userdata(()).unwrap();

            assert_eq!(get.call::<f64>(&first).unwrap(), 1.5);
            assert_eq!(get.call::<f64>(&second).unwrap(), 2.5);
            set.call::<()>((&second, 4)).unwrap();
            assert_eq!(
                VALUES.with(|v| v.borrow()[1]),
                4.0,
                "written through the place"
            );
            assert_eq!(
                get.call::<String>(&missing).unwrap(),
                "ordinary",
                "key names nothing"
            );
            assert_eq!(get.call::<String>(&unkeyed).unwrap(), "ordinary", "no key");
            assert_eq!(get.call::<String>(5).unwrap(), "ordinary", "not a userdata");
            let err = set.call::<()>((&first, true)).unwrap_err().to_string();
            assert!(err.contains("ordinary setter got boolean"), "{err}");
            assert_eq!(
                VALUES.with(|v| v.borrow()[0]),
                1.5,
                "a refused write changes nothing"
            );
        }
    }
}
