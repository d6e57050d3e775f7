//! The lean field access: the C dispatch's first try, reading its arguments, the reference's
//! [`Key`] and the field's access straight from Lua's stack and objects (`vm/layout.rs`).
//!
//! Through the C API, `p.health` costs a dozen calls before the field is even read
//! (`lua_gettop`, `lua_type`, `lua_getiuservalue`, `lua_touserdata` twice, `lua_pushvalue`,
//! `lua_rawget` on the table of blocks...), each checking and converting its stack index: about
//! 200 instructions of a 600-instruction access. Here the dispatch reads the slots of its own
//! call: the reference (a full userdata whose first user value is its key), the field name (a
//! short string: interned, so the same name is the same object) and, for a write, the value (a
//! number or a boolean; a string is written through the API path). It finds the name by its
//! address among those of the fast fields, the methods and the kept views (a list in a
//! userdata upvalue, [`push_fields`]), and runs the field's access with the key at hand,
//! returns the method, or hands out the view the reference keeps of the field (from the
//! reference's array of views, which its key points to; made by the dispatch the first time,
//! `kept_view`). Anything else (another kind
//! of value, a name it does not list, a text write, the place out of reach) leaves everything
//! as it was, and the dispatch takes its ordinary way, so results and errors are the same
//! either way; so it is when the layout check failed.

use std::ffi::{c_int, c_void};

use mlua::ffi;

use super::lua54::{BlockHead, Lean};
use super::{Key, Scalar, ViewPath};
use crate::vm::layout::{self, Value, tag};

/// A fast field the lean access knows: its name's string object, its block and its access.
#[repr(C)]
#[derive(Clone, Copy)]
struct LeanField {
    name: *const c_void,
    block: *const c_void,
    lean: Lean,
}

/// Pushes a userdata listing the fields of the table of blocks at `blocks` (name -> block, as
/// `fast_dispatch` is given them) that have a [`Lean`] access, and, given `methods` (the
/// methods by name, the getters by name, the fields whose views are kept), the methods no
/// field shadows and the fields whose views are kept: their count, then a [`LeanField`] each.
/// The names and blocks stay alive in those tables, which the dispatch keeps as upvalues
/// beside this one.
///
/// SAFETY: a live state with `blocks` and `methods` absolute indices of such tables and four
/// stack slots free; every userdata value in `blocks` is a `Block`. A memory error leaves
/// through Lua's `longjmp`, with nothing alive here to drop.
pub(super) unsafe fn push_fields(
    state: *mut ffi::lua_State,
    blocks: c_int,
    methods: Option<(c_int, c_int, c_int)>,
) {
    // SAFETY: per the caller; the list is sized for the count of the first pass, and the
    // second visits the same entries (the tables do not change in between).
    unsafe {
        let mut count = 0;
        lean_fields(state, blocks, methods, |_| count += 1);
        let size = size_of::<usize>() + count * size_of::<LeanField>();
        let memory = ffi::lua_newuserdatauv(state, size, 0);
        memory.cast::<usize>().write(count);
        let list = memory.cast::<usize>().add(1).cast::<LeanField>();
        let mut written = 0;
        lean_fields(state, blocks, methods, |field| {
            if written < count {
                list.add(written).write(field);
                written += 1;
            }
        });
    }
}

/// Calls `f` with each field of the table of blocks at `blocks` that has a [`Lean`] access,
/// then with each method of `methods` that no getter shadows and each field whose view is kept.
///
/// SAFETY: as [`push_fields`] requires. Keys are only looked at with `lua_type` and
/// `lua_topointer` (a conversion would confuse `lua_next`); nothing here raises an error.
unsafe fn lean_fields(
    state: *mut ffi::lua_State,
    blocks: c_int,
    methods: Option<(c_int, c_int, c_int)>,
    mut f: impl FnMut(LeanField),
) {
    // SAFETY: per the caller.
    unsafe {
        ffi::lua_pushnil(state);
        while ffi::lua_next(state, blocks) != 0 {
            if ffi::lua_type(state, -2) == ffi::LUA_TSTRING
                && ffi::lua_type(state, -1) == ffi::LUA_TUSERDATA
            {
                let block = ffi::lua_touserdata(state, -1).cast_const();
                let lean = (*block.cast::<BlockHead>()).lean;
                if !matches!(lean, Lean::None) {
                    f(LeanField {
                        name: ffi::lua_topointer(state, -2),
                        block,
                        lean,
                    });
                }
            }
            ffi::lua_pop(state, 1);
        }
        let Some((methods, getters, views)) = methods else {
            return;
        };
        ffi::lua_pushnil(state);
        while ffi::lua_next(state, methods) != 0 {
            ffi::lua_pop(state, 1);
            if ffi::lua_type(state, -1) == ffi::LUA_TSTRING {
                ffi::lua_pushvalue(state, -1);
                let shadowed = ffi::lua_rawget(state, getters) != ffi::LUA_TNIL;
                ffi::lua_pop(state, 1);
                if !shadowed {
                    f(LeanField {
                        name: ffi::lua_topointer(state, -1),
                        block: std::ptr::null(),
                        lean: Lean::Method,
                    });
                }
            }
        }
        ffi::lua_pushnil(state);
        while ffi::lua_next(state, views) != 0 {
            // The field's path (`view_entry`), for the slot of its view.
            let path = ffi::lua_touserdata(state, -1).cast_const();
            ffi::lua_pop(state, 1);
            if ffi::lua_type(state, -1) == ffi::LUA_TSTRING {
                f(LeanField {
                    name: ffi::lua_topointer(state, -1),
                    block: path,
                    lean: Lean::View,
                });
            }
        }
    }
}

/// The call's key, field and slots, if the lean access may take it: the call has at least
/// `arguments` arguments, the first a keyed reference and the second the name of a field the
/// list in upvalue `upvalue` has.
///
/// SAFETY: a C function call made by Lua, of a C closure whose upvalue `upvalue` holds a list
/// made by [`push_fields`] (and the table keeping its names and blocks alive); the layout is
/// checked. The key may be used until the call returns, and not while another `&mut Key` to it
/// is alive.
#[inline(always)]
unsafe fn find<'a>(
    state: *mut ffi::lua_State,
    arguments: usize,
    upvalue: usize,
) -> Option<(&'a mut Key, LeanField, &'a [Value])> {
    // SAFETY: per the caller. Each object is read through only after its tag checked out; the
    // upvalue is the list.
    unsafe {
        let frame = layout::call_frame(state);
        let (function, reference, name) = match frame {
            [function, reference, name, ..] if frame.len() > arguments => {
                (function, reference, name)
            }
            _ => return None,
        };
        if name.tag != tag::SHORT_STRING {
            return None;
        }
        let key = key_of(reference)?;
        let list = layout::c_closure_upvalue(function.payload, upvalue);
        let (list, _) = layout::userdata0_block(list.payload)?;
        let count = list.cast::<usize>().read();
        let fields = std::slice::from_raw_parts(
            list.cast::<u8>()
                .add(size_of::<usize>())
                .cast::<LeanField>(),
            count,
        );
        let name = name.payload as *const c_void;
        let field = *fields.iter().find(|field| field.name == name)?;
        Some((key, field, frame))
    }
}

/// The key of `reference` if it is a keyed reference: a full userdata whose first user value
/// is its key (only `set_key` puts a userdata there: one without user values, of `Key` size,
/// both checked again).
///
/// SAFETY: the layout is checked and `reference` is a live value. The key may be used while
/// its reference is alive, and not while another `&mut Key` to it is.
#[inline(always)]
pub(crate) unsafe fn key_of<'a>(reference: &Value) -> Option<&'a mut Key> {
    if reference.tag != tag::FULL_USERDATA {
        return None;
    }
    // SAFETY: per the caller; each object is read through only after its tag checked out.
    unsafe {
        let key = layout::first_user_value(reference.payload)?;
        if key.tag != tag::FULL_USERDATA {
            return None;
        }
        let (key, length) = layout::userdata0_block(key.payload)?;
        (length == size_of::<Key>()).then(|| &mut *key.cast::<Key>())
    }
}

/// The view the reference of `key` keeps for the field whose path is `path` (null: none), if
/// it was made already (and lies in the array part of the reference's array of views, as
/// `kept_view` sizes it).
///
/// SAFETY: `key` is the key of a reference on the stack (so its array of views is alive, see
/// `Key::views`); `path` is null or a live `ViewPath`.
#[inline(always)]
unsafe fn made_view<'a>(key: &Key, path: *const c_void) -> Option<&'a Value> {
    if key.views.is_null() || path.is_null() {
        return None;
    }
    // SAFETY: per the caller.
    unsafe {
        let slot = (*path.cast::<ViewPath>()).slot;
        let view = layout::array_item(key.views as u64, i64::from(slot))?;
        (view.tag == tag::FULL_USERDATA).then_some(view)
    }
}

/// `value` as a Lua value, to push as it is (without `lua_pushnumber`'s call and checks).
#[inline(always)]
pub(super) fn scalar_value(value: Scalar) -> Value {
    match value {
        Scalar::Number(n) => Value {
            payload: n.to_bits(),
            tag: tag::FLOAT,
        },
        Scalar::Integer(i) => Value {
            payload: i as u64,
            tag: tag::INTEGER,
        },
        Scalar::Boolean(b) => Value {
            payload: 0,
            tag: if b { tag::TRUE } else { tag::FALSE },
        },
    }
}

/// `value` as a number or a boolean, if it is one.
#[inline(always)]
pub(super) fn scalar_of(value: &Value) -> Option<Scalar> {
    match value.tag {
        tag::INTEGER => Some(Scalar::Integer(value.payload as i64)),
        tag::FLOAT => Some(Scalar::Number(f64::from_bits(value.payload))),
        tag::FALSE => Some(Scalar::Boolean(false)),
        tag::TRUE => Some(Scalar::Boolean(true)),
        _ => None,
    }
}

/// What the lean `__index` did.
pub(super) enum Found {
    /// The value is pushed.
    Pushed,
    /// The name is a field whose view the reference keeps: for the dispatch to hand out.
    View,
    /// Nothing changed: the dispatch's ordinary way.
    No,
}

/// `reference[name]` for a fast field, or a method no field shadows (from the table of methods
/// at `methods`), or a field whose view is kept.
///
/// SAFETY: as [`find`] requires, with two stack slots free and `methods` a valid index of the
/// table of methods. Making a string may raise a memory error, which leaves through Lua's
/// `longjmp`: by then the world is given back and nothing alive here needs dropping.
#[inline(always)]
pub(super) unsafe fn index(state: *mut ffi::lua_State, upvalue: usize, methods: c_int) -> Found {
    if !layout::checked() {
        return Found::No;
    }
    // SAFETY: per the caller; the access is the one of the field's block.
    unsafe {
        let Some((key, field, _)) = find(state, 2, upvalue) else {
            return Found::No;
        };
        match field.lean {
            Lean::Get(get) => {
                if !get(state, field.block, key) {
                    return Found::No;
                }
            }
            Lean::Method => {
                ffi::lua_pushvalue(state, 2);
                ffi::lua_rawget(state, methods);
            }
            Lean::View => match made_view(key, field.block) {
                Some(view) => layout::push(state, view),
                None => return Found::View,
            },
            Lean::Set(_) | Lean::None => return Found::No,
        }
        Found::Pushed
    }
}

/// `reference[name] = value` for a fast number or boolean field and a number or a boolean:
/// `true` if written; `false` with nothing changed.
///
/// SAFETY: as [`find`] requires.
#[inline(always)]
pub(super) unsafe fn newindex(state: *mut ffi::lua_State, upvalue: usize) -> bool {
    if !layout::checked() {
        return false;
    }
    // SAFETY: per the caller; `Lean::Set` is the access of the field's block.
    unsafe {
        let Some((key, field, frame)) = find(state, 3, upvalue) else {
            return false;
        };
        let Lean::Set(set) = field.lean else {
            return false;
        };
        let Some(value) = frame.get(3) else {
            return false;
        };
        set(field.block, key, value)
    }
}
