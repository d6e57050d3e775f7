use std::ffi::{c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;

use mlua::{AnyUserData, Function, Lua, Table, ffi};

use super::{
    FastConvert, FastField, Key, Locate, SHORT_TEXT, Scalar, ScalarConvert, TextConvert, ViewPath,
    keyed_access, lean,
};
use crate::published::Access;
use crate::vm::layout::{self, Value};

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
    lean: Lean,
    data: D,
}

/// The start every [`Block`] shares: what the dispatch (and `lean.rs`) read of a block.
#[repr(C)]
pub(super) struct BlockHead {
    run: Run,
    pub(super) lean: Lean,
}

/// A field's access for the lean dispatch (`lean.rs`), which finds the key itself: a read
/// pushes the value (a number, a boolean, or a text copied out first) and says whether it did
/// (`false`: not reached, nothing pushed, for the ordinary path), a write takes the value as
/// it lies on the stack and says whether it wrote it. Text writes have none (the API path
/// reads the string).
#[derive(Clone, Copy)]
pub(super) enum Lean {
    None,
    Get(unsafe fn(*mut ffi::lua_State, *const c_void, &mut Key) -> bool),
    Set(unsafe fn(*const c_void, &mut Key, &Value) -> bool),
    /// Not a field: a method, which the dispatch returns from its table of methods.
    Method,
    /// A field whose view a keyed reference keeps (`kept_view`).
    View,
}

/// What the fast getter of one field needs: plain function pointers (no drop).
struct Getter<T, F> {
    get: fn(&T) -> &F,
    to: fn(&F) -> Scalar,
    place: Locate<T>,
}

struct Setter<T, F> {
    get_mut: fn(&mut T) -> &mut F,
    from: fn(Scalar) -> Option<F>,
    place: Locate<T>,
}

/// The text counterparts of [`Getter`] and [`Setter`].
struct TextGetter<T, F> {
    get: fn(&T) -> &F,
    to: fn(&F) -> &str,
    place: Locate<T>,
}

struct TextSetter<T, F> {
    get_mut: fn(&mut T) -> &mut F,
    from: fn(&str) -> F,
    place: Locate<T>,
}

/// Stores `key` in the reference userdata itself, as a [`Key`] userdata in its first user
/// value: the fast functions find it there without a lookup. mlua leaves that slot nil
/// unless `set_user_value` is called (nothing here does), and its user values are tables,
/// so a userdata there is always a `Key` put by this function.
pub(crate) fn set_key(lua: &Lua, reference: &AnyUserData, key: u64) -> mlua::Result<()> {
    // SAFETY: the stack holds the reference as pushed by `exec_raw`; the user value slot 1
    // exists on every userdata mlua makes (`lua_newuserdata` makes one).
    unsafe {
        lua.exec_raw::<()>(reference, |state| {
            attach_key(state, -1, Key::new(key));
            ffi::lua_pop(state, 1);
        })
    }
}

/// Makes a [`Key`] userdata of `key` and puts it in the first user value of the userdata at
/// `index` (a reference, or a view: see [`set_key`], `key_view`).
///
/// SAFETY: a live state with `index` a valid index of a userdata with a user value slot, and a
/// stack slot free. A memory error leaves through Lua's `longjmp`, with nothing alive here to
/// drop.
unsafe fn attach_key(state: *mut ffi::lua_State, index: c_int, key: Key) {
    // SAFETY: per the caller; the new userdata is sized and aligned (8 bytes at least) for a
    // `Key`, which needs no drop, and is written before anything can see it.
    unsafe {
        const { assert!(!std::mem::needs_drop::<Key>()) };
        let index = ffi::lua_absindex(state, index);
        let memory = ffi::lua_newuserdatauv(state, size_of::<Key>(), 0);
        memory.cast::<Key>().write(key);
        ffi::lua_setiuservalue(state, index, 1);
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
    let place = place.read;
    match *convert {
        FastConvert::Scalar(convert) => {
            let block = Block {
                run: run_get::<T, F>,
                lean: Lean::Get(if ScalarConvert::<F>::is_primitive() {
                    lean_get::<T, F, true>
                } else {
                    lean_get::<T, F, false>
                }),
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
                lean: Lean::Get(lean_get_text::<T, F>),
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
    let place = place.write;
    match *convert {
        FastConvert::Scalar(convert) => {
            let block = Block {
                run: run_set::<T, F>,
                lean: Lean::Set(if ScalarConvert::<F>::is_primitive() {
                    lean_set::<T, F, true>
                } else {
                    lean_set::<T, F, false>
                }),
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
                lean: Lean::None,
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

/// What a reference type's table of views holds for field `get`/`get_mut` (of type `F`) of
/// its `P`: the field's [`ViewPath`] in a userdata, which the keys of its views point to
/// (`kept_view`), if `P` is keyed; `true` otherwise.
pub(crate) fn view_entry<P: 'static, F: 'static>(
    lua: &Lua,
    get: fn(&P) -> &F,
    get_mut: fn(&mut P) -> &mut F,
) -> mlua::Result<mlua::Value> {
    let Some(parent) = keyed_access::<P>(lua) else {
        return Ok(mlua::Value::Boolean(true));
    };
    let path = ViewPath::of(parent, get, get_mut);
    // SAFETY: the new userdata is sized and aligned (8 bytes at least) for a `ViewPath`,
    // which needs no drop, and is written before anything can see it. A memory error leaves
    // through Lua's `longjmp`, with nothing alive here to drop.
    unsafe {
        lua.exec_raw::<AnyUserData>((), |state| {
            const { assert!(!std::mem::needs_drop::<ViewPath>()) };
            let memory = ffi::lua_newuserdatauv(state, size_of::<ViewPath>(), 0);
            memory.cast::<ViewPath>().write(path);
        })
    }
    .map(mlua::Value::UserData)
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
/// index 1 valid and two stack slots free.
unsafe fn run_get<T: 'static, F: 'static>(
    state: *mut ffi::lua_State,
    block: *const c_void,
    _value: c_int,
) -> bool {
    // SAFETY: per the caller; the key stays pushed while it is used.
    unsafe {
        let top = ffi::lua_gettop(state);
        match key(state, 1).and_then(|key| read_scalar::<T, F, false>(block, key)) {
            Some(value) => {
                push_scalar(state, value);
                true
            }
            None => {
                ffi::lua_settop(state, top);
                false
            }
        }
    }
}

/// Pushes `value` (no allocation: no error).
///
/// SAFETY: a live state with a stack slot free.
pub(super) unsafe fn push_scalar(state: *mut ffi::lua_State, value: Scalar) {
    // SAFETY: per the caller.
    unsafe {
        match value {
            Scalar::Number(n) => ffi::lua_pushnumber(state, n),
            Scalar::Integer(i) => ffi::lua_pushinteger(state, i),
            Scalar::Boolean(b) => ffi::lua_pushboolean(state, c_int::from(b)),
        }
    }
}

/// What a [`Getter`] reads of the target of `key`; converted by `F`'s own conversion by
/// name if `PRIMITIVE` (the getter's is that one: `ScalarConvert::is_primitive`).
///
/// SAFETY: `block` is a `Block<Getter<T, F>>`.
#[inline(always)]
unsafe fn read_scalar<T: 'static, F: 'static, const PRIMITIVE: bool>(
    block: *const c_void,
    key: &mut Key,
) -> Option<Scalar> {
    // SAFETY: per the caller.
    let field = unsafe { &(*block.cast::<Block<Getter<T, F>>>()).data };
    read_with(key, field.place, |target| {
        let value = (field.get)(target);
        let inlined = if PRIMITIVE {
            ScalarConvert::<F>::primitive_to(value)
        } else {
            None
        };
        Some(inlined.unwrap_or_else(|| (field.to)(value)))
    })
}

/// The [`Lean`] read of a [`Getter`].
///
/// SAFETY: `block` is a `Block<Getter<T, F>>`; a C function call of a live state with the
/// layout checked and a stack slot free.
unsafe fn lean_get<T: 'static, F: 'static, const PRIMITIVE: bool>(
    state: *mut ffi::lua_State,
    block: *const c_void,
    key: &mut Key,
) -> bool {
    // SAFETY: per the caller.
    match unsafe { read_scalar::<T, F, PRIMITIVE>(block, key) } {
        Some(value) => {
            // SAFETY: per the caller.
            unsafe { layout::push(state, &lean::scalar_value(value)) };
            true
        }
        None => false,
    }
}

/// What a [`Setter`] writes into the target of `key`: `true` if it wrote `scalar`; converted
/// as in [`read_scalar`].
///
/// SAFETY: `block` is a `Block<Setter<T, F>>`.
#[inline(always)]
unsafe fn write_scalar<T: 'static, F: 'static, const PRIMITIVE: bool>(
    block: *const c_void,
    key: &mut Key,
    scalar: Scalar,
) -> bool {
    // SAFETY: per the caller.
    let field = unsafe { &(*block.cast::<Block<Setter<T, F>>>()).data };
    write_with(key, field.place, field.get_mut, || {
        let inlined = if PRIMITIVE {
            ScalarConvert::<F>::primitive_from(scalar)
        } else {
            None
        };
        inlined.unwrap_or_else(|| (field.from)(scalar))
    })
}

/// The [`Lean`] write of a [`Setter`]: a number or a boolean, as it lies on the stack.
///
/// SAFETY: `block` is a `Block<Setter<T, F>>`.
unsafe fn lean_set<T: 'static, F: 'static, const PRIMITIVE: bool>(
    block: *const c_void,
    key: &mut Key,
    value: &Value,
) -> bool {
    match lean::scalar_of(value) {
        // SAFETY: per the caller.
        Some(scalar) => unsafe { write_scalar::<T, F, PRIMITIVE>(block, key, scalar) },
        None => false,
    }
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
    unsafe { write_keyed(state, |key| write_scalar::<T, F, false>(block, key, scalar)) }
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
    let mut buffer = [0u8; SHORT_TEXT];
    // SAFETY: per the caller; the key stays pushed while it is used, and `buffer[..length]`
    // holds the text.
    unsafe {
        let top = ffi::lua_gettop(state);
        match key(state, 1).and_then(|key| read_text::<T, F>(block, key, &mut buffer)) {
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

/// What a [`TextGetter`] reads of the target of `key`: the text's length, copied into
/// `buffer`.
///
/// SAFETY: `block` is a `Block<TextGetter<T, F>>`.
#[inline(always)]
unsafe fn read_text<T: 'static, F: 'static>(
    block: *const c_void,
    key: &mut Key,
    buffer: &mut [u8; SHORT_TEXT],
) -> Option<usize> {
    // SAFETY: per the caller.
    let field = unsafe { &(*block.cast::<Block<TextGetter<T, F>>>()).data };
    read_with(key, field.place, |target| {
        let text = (field.to)((field.get)(target)).as_bytes();
        buffer.get_mut(..text.len())?.copy_from_slice(text);
        Some(text.len())
    })
}

/// The [`Lean`] read of a [`TextGetter`].
///
/// SAFETY: `block` is a `Block<TextGetter<T, F>>`; a C function call of a live state with a
/// stack slot free. Making the string may raise a memory error, which leaves through Lua's
/// `longjmp`: by then the world is given back and nothing alive here needs dropping.
unsafe fn lean_get_text<T: 'static, F: 'static>(
    state: *mut ffi::lua_State,
    block: *const c_void,
    key: &mut Key,
) -> bool {
    let mut buffer = [0u8; SHORT_TEXT];
    // SAFETY: per the caller; `buffer[..length]` holds the text.
    unsafe {
        match read_text::<T, F>(block, key, &mut buffer) {
            Some(length) => {
                ffi::lua_pushlstring(state, buffer.as_ptr().cast(), length);
                true
            }
            None => false,
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
        write_keyed(state, |key| {
            write_with(key, field.place, field.get_mut, || Some((field.from)(text)))
        })
    }
}

/// What `read` makes of the `T` `key` names, at the address kept in `key` if it is current,
/// or else reached through `place`; `None` if `place` cannot reach it, or `read` or `place`
/// panics (a panic must not unwind into Lua's C frames: the ordinary path then reports it as
/// an error).
#[inline(always)]
fn read_with<T: 'static, R>(
    key: &mut Key,
    place: Locate<T>,
    read: impl FnOnce(&T) -> Option<R>,
) -> Option<R> {
    catch_unwind(AssertUnwindSafe(|| {
        let target = key
            .kept
            .for_reading::<T>()
            .or_else(|| find_anew(key, place, Access::Read))?;
        // SAFETY: the key's current kept address or `place` gave the address of a `T` to read
        // now (`Kept::for_reading`, `KeyedAccess`); `read` (a field's projection and
        // conversion) runs no Lua and reaches no world.
        read(unsafe { target.as_ref() })
    }))
    .ok()
    .flatten()
}

/// The `T` `key` names, found anew (its kept address was not current): through the view's path
/// for the key of a view (`view.rs`), else through `place`.
fn find_anew<T: 'static>(key: &mut Key, place: Locate<T>, access: Access) -> Option<NonNull<T>> {
    if key.view.is_null() {
        place(key)
    } else {
        ViewPath::find::<T>(key, access)
    }
}

/// Runs `write` (a [`write_with`]) with the key of the reference at index 1. `true` if it
/// wrote; otherwise (not keyed, or `write` did not write) the stack is as it was.
///
/// SAFETY: a C function call of a live state, with index 1 valid and a stack slot free.
unsafe fn write_keyed(state: *mut ffi::lua_State, write: impl FnOnce(&mut Key) -> bool) -> bool {
    // SAFETY: per the caller.
    let top = unsafe { ffi::lua_gettop(state) };
    // SAFETY: per the caller.
    let written = unsafe { key(state, 1) }.is_some_and(write);
    if !written {
        // SAFETY: per the caller; back to the stack as it was.
        unsafe { ffi::lua_settop(state, top) };
    }
    written
}

/// Writes the value `make` makes into the field `get_mut` of the `T` `key` names, at the
/// address kept in `key` if it is current, or else reached through `place`. `true` if it did;
/// `false` (nothing written) if `make` refused, `place` cannot reach the `T`, or either
/// panics.
#[inline(always)]
fn write_with<T: 'static, F>(
    key: &mut Key,
    place: Locate<T>,
    get_mut: fn(&mut T) -> &mut F,
    make: impl FnOnce() -> Option<F>,
) -> bool {
    catch_unwind(AssertUnwindSafe(|| {
        let Some(value) = make() else {
            return false;
        };
        let Some(mut target) = key
            .kept
            .for_writing::<T>()
            .or_else(|| find_anew(key, place, Access::Write))
        else {
            return false;
        };
        // SAFETY: the key's current kept address or `place` gave the address of a `T` to
        // write now, with nothing else holding it (`Kept::for_writing`, `KeyedAccess`); the
        // projection runs no Lua and reaches no world.
        *get_mut(unsafe { target.as_mut() }) = value;
        true
    }))
    .unwrap_or(false)
}

/// Runs the [`Block`] at `block`.
///
/// SAFETY: `block` points to a live `Block<D>` (any `D`); as [`Run`] requires.
unsafe fn run(state: *mut ffi::lua_State, block: *const c_void, value: c_int) -> bool {
    // SAFETY: every `Block` starts with a `BlockHead` (`repr(C)`).
    unsafe { ((*block.cast::<BlockHead>()).run)(state, block, value) }
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
/// blocks of the fast fields by name, and (`__index`) the methods and the getters by name,
/// the fields whose views are kept and the views made; last, the fast fields listed for the
/// lean access (`lean.rs`), by number.
const DISPATCH: c_int = ffi::lua_upvalueindex(1);
const BLOCKS: c_int = ffi::lua_upvalueindex(2);
const METHODS: c_int = ffi::lua_upvalueindex(3);
const GETTERS: c_int = ffi::lua_upvalueindex(4);
const VIEWS: c_int = ffi::lua_upvalueindex(5);
const MADE_VIEWS: c_int = ffi::lua_upvalueindex(6);
/// The lean list is each closure's last upvalue: its number is also the closure's count.
const LEAN_FIELDS_INDEX: usize = 7;
const LEAN_FIELDS_NEWINDEX: usize = 3;

/// C `__index` and `__newindex` in front of the Lua ones (`index`, `newindex`): a field in
/// `fast_getters` / `fast_setters` (name -> block) is run in place, a method (not shadowed
/// by a field of its name, as in the Lua dispatch) is returned from `methods`; anything
/// else goes to the Lua dispatch. A field named in `views` (a derived value inside, whose
/// view is the same whatever the value; name -> the field's path, [`view_entry`]) is read
/// through the Lua dispatch once per keyed reference, its view given a key of its own
/// (`key_view`) and kept (in a table with weak keys, by reference) and handed out again:
/// `t.translation.x` made a new userdata for `t.translation` every time. Only keyed
/// references (components) keep views: their views hold no Lua value, so a reference and
/// its views go to the collector together.
pub(crate) fn fast_dispatch(
    lua: &Lua,
    (index, newindex): (Function, Function),
    (fast_getters, fast_setters): (Table, Table),
    (methods, getters, views): (Table, Table, Table),
) -> mlua::Result<(Function, Function)> {
    // SAFETY: `exec_raw` pushed the values each closure takes as upvalues, in the order
    // the constants above name; the table of views made (with its weak-keys metatable) and
    // the lean lists of the fast fields (of the blocks tables, which the closures keep as
    // upvalues too) are made here before the closures take them.
    unsafe {
        let index =
            lua.exec_raw::<Function>((index, fast_getters, methods, getters, views), |state| {
                let (blocks, methods, getters, views) = (
                    ffi::lua_absindex(state, -4),
                    ffi::lua_absindex(state, -3),
                    ffi::lua_absindex(state, -2),
                    ffi::lua_absindex(state, -1),
                );
                number_views(state, views);
                ffi::lua_createtable(state, 0, 0);
                ffi::lua_createtable(state, 0, 1);
                ffi::lua_pushstring(state, c"k".as_ptr());
                ffi::lua_setfield(state, -2, c"__mode".as_ptr());
                ffi::lua_setmetatable(state, -2);
                lean::push_fields(state, blocks, Some((methods, getters, views)));
                ffi::lua_pushcclosure(state, dispatch_index, LEAN_FIELDS_INDEX as c_int);
            })?;
        let newindex = lua.exec_raw::<Function>((newindex, fast_setters), |state| {
            let blocks = ffi::lua_absindex(state, -1);
            lean::push_fields(state, blocks, None);
            ffi::lua_pushcclosure(state, dispatch_newindex, LEAN_FIELDS_NEWINDEX as c_int);
        })?;
        Ok((index, newindex))
    }
}

/// Numbers the paths in the table of views at `views` (name -> path): the slots of their
/// views in a reference's array of views.
///
/// SAFETY: a live state with `views` an absolute index of such a table (its userdata values
/// are `ViewPath`s, made by [`view_entry`]) and two stack slots free; nothing here raises an
/// error.
unsafe fn number_views(state: *mut ffi::lua_State, views: c_int) {
    // SAFETY: per the caller; both passes visit the same entries (the table does not change).
    unsafe {
        let each_path = |f: &mut dyn FnMut(*mut ViewPath)| {
            ffi::lua_pushnil(state);
            while ffi::lua_next(state, views) != 0 {
                if ffi::lua_type(state, -1) == ffi::LUA_TUSERDATA {
                    f(ffi::lua_touserdata(state, -1).cast::<ViewPath>());
                }
                ffi::lua_pop(state, 1);
            }
        };
        let mut slots = 0u32;
        each_path(&mut |_| slots += 1);
        let mut slot = 0u32;
        each_path(&mut |path| {
            slot += 1;
            (*path).slot = slot;
            (*path).slots = slots;
        });
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
        match lean::index(state, LEAN_FIELDS_INDEX, METHODS) {
            lean::Found::Pushed => return 1,
            lean::Found::View => return kept_view(state),
            lean::Found::No => {}
        }
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
/// it, or a new one from the Lua dispatch, then kept. A reference keeps its views in an array
/// (at their paths' slots), which the table of views made holds for it (weak keys) and its key
/// points to (`Key::views`), so that the lean access finds a view there (`lean.rs`).
///
/// SAFETY: called by `dispatch_index` with its upvalues, two arguments or more and nothing
/// else on the stack; nothing to drop is alive in the callers (the Lua dispatch, or making
/// a table, may raise an error).
unsafe fn kept_view(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: per the caller; a path lives in the table of views (`view_entry`).
    unsafe {
        ffi::lua_settop(state, 2);
        ffi::lua_pushvalue(state, 2);
        let path = match ffi::lua_rawget(state, VIEWS) {
            ffi::LUA_TUSERDATA => ffi::lua_touserdata(state, 3)
                .cast::<ViewPath>()
                .cast_const(),
            _ => return call_instead(state, DISPATCH, 1),
        };
        ffi::lua_settop(state, 2);
        let (slot, slots) = (ffi::lua_Integer::from((*path).slot), (*path).slots);
        ffi::lua_pushvalue(state, 1);
        if ffi::lua_rawget(state, MADE_VIEWS) == ffi::LUA_TTABLE {
            if ffi::lua_rawgeti(state, 3, slot) != ffi::LUA_TNIL {
                return 1;
            }
            ffi::lua_pop(state, 1);
        } else {
            ffi::lua_pop(state, 1);
            ffi::lua_createtable(state, c_int::try_from(slots).unwrap_or(0), 0);
            ffi::lua_pushvalue(state, 1);
            ffi::lua_pushvalue(state, 3);
            ffi::lua_rawset(state, MADE_VIEWS);
            if let Some(key) = key(state, 1) {
                key.views = ffi::lua_topointer(state, 3);
            }
            ffi::lua_settop(state, 3);
        }
        // Stack: reference, key, its views. The view is made as the Lua dispatch makes it.
        ffi::lua_pushvalue(state, DISPATCH);
        ffi::lua_pushvalue(state, 1);
        ffi::lua_pushvalue(state, 2);
        ffi::lua_call(state, 2, 1);
        if ffi::lua_type(state, 4) == ffi::LUA_TUSERDATA {
            ffi::lua_pushvalue(state, 4);
            ffi::lua_rawseti(state, 3, slot);
            key_view(state, path);
            ffi::lua_settop(state, 4);
        }
        1
    }
}

/// Gives the view at index 4, just made for the field whose path is `path` of the keyed
/// reference at index 1, a key of its own (`view.rs`): the reference's, and the path; unless
/// the reference is itself a view, or the view has a user value already (it is not one this
/// dispatch's Lua side just made).
///
/// SAFETY: as [`kept_view`], with the view at index 4, three stack slots free and `path` in
/// the table of views (alive as long as the Lua state, see `view.rs`); the stack may hold more
/// values after.
unsafe fn key_view(state: *mut ffi::lua_State, path: *const ViewPath) {
    // SAFETY: per the caller; the reference's key stays pushed while it is read.
    unsafe {
        let Some(parent) = key(state, 1) else {
            return;
        };
        let (entity, parent_view) = (parent.key, parent.view);
        if !parent_view.is_null() || ffi::lua_getiuservalue(state, 4, 1) != ffi::LUA_TNIL {
            return;
        }
        attach_key(
            state,
            4,
            Key {
                view: path,
                ..Key::new(entity)
            },
        );
    }
}

/// `reference[key] = value`.
unsafe extern "C-unwind" fn dispatch_newindex(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as in `dispatch_index`, called as `__newindex` (reference, key, value).
    unsafe {
        if lean::newindex(state, LEAN_FIELDS_NEWINDEX) {
            return 0;
        }
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

    // A "place" keyed by an index into a thread-local array of two numbers.
    thread_local! {
        static VALUES: std::cell::UnsafeCell<[f64; 2]> =
            const { std::cell::UnsafeCell::new([1.5, 2.5]) };
    }

    fn locate(key: &mut Key) -> Option<std::ptr::NonNull<[f64; 1]>> {
        let index = usize::try_from(key.key).ok().filter(|i| *i < 2)?;
        // SAFETY: an element of the thread's array, which lives as long as the thread.
        VALUES.with(|v| std::ptr::NonNull::new(unsafe { v.get().cast::<[f64; 1]>().add(index) }))
    }

    fn value(i: usize) -> f64 {
        // SAFETY: nothing else refers to the array while the test reads it.
        VALUES.with(|v| unsafe { (*v.get())[i] })
    }

    /// A Lua state where `[f64; 1]` is keyed to the array, its field functions (fast, over
    /// ordinary ones that say so) and the blocks tables of the dispatch.
    fn numbers() -> (Lua, Function, Function, Table, Table) {
        let lua = Lua::new();
        super::super::register_keyed_access::<[f64; 1]>(
            &lua,
            KeyedAccess {
                read: locate,
                write: locate,
            },
        );
        let convert = FastConvert::Scalar(ScalarConvert::<f64> {
            to: |x| Scalar::Number(*x),
            from: |s| match s {
                Scalar::Number(n) => Some(n),
                Scalar::Integer(i) => Some(i as f64),
                Scalar::Boolean(_) => None,
            },
        });
        let ordinary_get = lua
            .create_function(|_, _: mlua::Variadic<mlua::Value>| Ok("ordinary"))
            .unwrap();
        let ordinary_set = lua
            .create_function(|_, args: mlua::Variadic<mlua::Value>| -> mlua::Result<()> {
                let value = args.get(1).map_or("nothing", |v| v.type_name());
                Err(mlua::Error::runtime(format!("ordinary setter got {value}")))
            })
            .unwrap();
        let get = fast_getter::<[f64; 1], f64>(&lua, |a| &a[0], &convert, ordinary_get).unwrap();
        let set =
            fast_setter::<[f64; 1], f64>(&lua, |a| &mut a[0], &convert, ordinary_set).unwrap();
        let (getters, setters) = (lua.create_table().unwrap(), lua.create_table().unwrap());
        getters.raw_set("x", get.block.unwrap()).unwrap();
        setters.raw_set("x", set.block.unwrap()).unwrap();
        (lua, get.function, set.function, getters, setters)
    }

    fn keyed(lua: &Lua, key: u64) -> AnyUserData {
        let ud = lua.create_any_userdata(()).unwrap();
        set_key(lua, &ud, key).unwrap();
        ud
    }

    #[test]
    fn fast_functions_take_keyed_references_and_leave_the_rest_to_the_ordinary_ones() {
        let (lua, get, set, _, _) = numbers();
        let keyed = |key| keyed(&lua, key);
        let (first, second, missing) = (keyed(0), keyed(1), keyed(7));
        let unkeyed = lua.create_any_userdata(()).unwrap();

        assert_eq!(get.call::<f64>(&first).unwrap(), 1.5);
        assert_eq!(get.call::<f64>(&second).unwrap(), 2.5);
        set.call::<()>((&second, 4)).unwrap();
        assert_eq!(value(1), 4.0, "written through the place");
        assert_eq!(
            get.call::<String>(&missing).unwrap(),
            "ordinary",
            "key names nothing"
        );
        assert_eq!(get.call::<String>(&unkeyed).unwrap(), "ordinary", "no key");
        assert_eq!(get.call::<String>(5).unwrap(), "ordinary", "not a userdata");
        let err = set.call::<()>((&first, true)).unwrap_err().to_string();
        assert!(err.contains("ordinary setter got boolean"), "{err}");
        assert_eq!(value(0), 1.5, "a refused write changes nothing");
    }
    /// The dispatch reads and writes fast number fields from its call's slots (`lean.rs`):
    /// it finds them by their names' string objects in the list made with it, so it still
    /// finds them once the blocks table forgets them (the API path would not), and hands
    /// anything it does not take to the ordinary path.
    #[test]
    fn the_dispatch_reads_fast_fields_from_its_call_and_leaves_the_rest_alone() {
        let (lua, _, _, getters, setters) = numbers();
        assert!(crate::vm::layout::check(&lua), "the layout checks out");
        let ordinary_index = lua
            .create_function(|_, _: mlua::Variadic<mlua::Value>| Ok("ordinary"))
            .unwrap();
        let ordinary_newindex = lua
            .create_function(|_, args: mlua::Variadic<mlua::Value>| -> mlua::Result<()> {
                let value = args.get(2).map_or("nothing", |v| v.type_name());
                Err(mlua::Error::runtime(format!(
                    "ordinary newindex got {value}"
                )))
            })
            .unwrap();
        let tables = || lua.create_table().unwrap();
        let (methods, method_getters) = (tables(), tables());
        let method = lua.create_function(|_, ()| Ok("method")).unwrap();
        methods.raw_set("m", &method).unwrap();
        methods.raw_set("shadowed", &method).unwrap();
        method_getters.raw_set("shadowed", &method).unwrap();
        let (index, newindex) = fast_dispatch(
            &lua,
            (ordinary_index, ordinary_newindex),
            (getters.clone(), setters.clone()),
            (methods, method_getters, tables()),
        )
        .unwrap();
        getters.raw_set("x", mlua::Value::Nil).unwrap();
        setters.raw_set("x", mlua::Value::Nil).unwrap();
        let (first, second, missing) = (keyed(&lua, 0), keyed(&lua, 1), keyed(&lua, 7));
        let unkeyed = lua.create_any_userdata(()).unwrap();

        assert_eq!(index.call::<f64>((&first, "x")).unwrap(), 1.5);
        newindex.call::<()>((&second, "x", 4)).unwrap();
        assert_eq!(value(1), 4.0, "an integer written as the field's float");
        newindex.call::<()>((&second, "x", 0.25)).unwrap();
        assert_eq!(index.call::<f64>((&second, "x")).unwrap(), 0.25);

        let ordinary = |args: mlua::MultiValue| index.call::<String>(args).unwrap();
        let args = |values: Vec<mlua::Value>| mlua::MultiValue::from_iter(values);
        let name = |s: &str| mlua::Value::String(lua.create_string(s).unwrap());
        let ud = |u: &AnyUserData| mlua::Value::UserData(u.clone());
        assert_eq!(
            ordinary(args(vec![ud(&missing), name("x")])),
            "ordinary",
            "names nothing"
        );
        assert_eq!(
            ordinary(args(vec![ud(&unkeyed), name("x")])),
            "ordinary",
            "no key"
        );
        assert_eq!(
            ordinary(args(vec![ud(&first), name("y")])),
            "ordinary",
            "no such field"
        );
        assert_eq!(ordinary(args(vec![ud(&first)])), "ordinary", "no name");
        assert_eq!(
            ordinary(args(vec![name("x"), name("x")])),
            "ordinary",
            "not a userdata"
        );
        let m = index.call::<Function>((&first, "m")).unwrap();
        assert_eq!(m.call::<String>(()).unwrap(), "method", "a method");
        let shadowed = ordinary(args(vec![ud(&first), name("shadowed")]));
        assert_eq!(
            shadowed, "ordinary",
            "a method a field shadows: the Lua dispatch decides"
        );
        let long = "x".repeat(60);
        assert_eq!(
            ordinary(args(vec![ud(&first), name(&long)])),
            "ordinary",
            "a long name"
        );

        for (value, kind) in [
            (mlua::Value::Boolean(true), "boolean"),
            (name("3"), "string"),
            (mlua::Value::Nil, "nil"),
        ] {
            let err = newindex
                .call::<()>((&first, "x", value))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("ordinary newindex got {kind}")),
                "{err}"
            );
        }
        let err = newindex.call::<()>((&first, "x")).unwrap_err().to_string();
        assert!(err.contains("ordinary newindex got nothing"), "{err}");
        assert_eq!(value(0), 1.5, "refused writes change nothing");
    }
}
