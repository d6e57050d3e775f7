//! Keyed views: `t.translation`, the view of a derived field of a component reference, reaches
//! its target at a kept address as the component reference does.
//!
//! A component reference's [`Key`] names its entity; the key of a view of one of its fields
//! names the same entity and points to the field's [`ViewPath`]: the component's keyed place
//! and the field's projections. When the view's kept address is not current, the fast field
//! functions of the view's type (`Vec3.x`) find it anew through the path: the component through
//! its place (which keeps the component's address and change marks in the key), then the field
//! inside it, whose address becomes the kept one, with the component's change marks (a write
//! through the view marks the component changed, as the ordinary path's `Mut<T>` does). Before,
//! `t.translation.x` ran two of mlua's callbacks and looked the component up on every access.
//!
//! Only views of component references are keyed (one level: a view of a view takes the
//! ordinary path), and only while the field's projection lands inside the component (the
//! derive's plain fields; a projection returning anything else is found out when the address
//! is found, and the ordinary path runs). A view's type has fast field functions only if it was
//! declared keyed before its reference metatable was built: [`register_view_types`] does that
//! when the component's type is installed. The path lives in a userdata held by the component
//! type's table of views (an upvalue of its dispatch, alive as long as the Lua state), to which
//! the view's key points.

use std::any::TypeId;
use std::ptr::NonNull;

use mlua::{IntoLua, Lua};

use super::{Kept, Key, KeyedAccess, Locate, register_view_access};
use crate::published::Access;
use crate::userdata::{Field, FieldKind, LuaUserData, Registrar};

/// How the key of a view of field `F` of a component `P` finds its target (see the module
/// docs): `P`'s keyed place and the field's projections, erased, with the one function that
/// knows their types.
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "lua54"), allow(dead_code))] // made by the Lua 5.4 dispatch only
pub(crate) struct ViewPath {
    find: unsafe fn(&mut Key, &ViewPath, Access) -> Option<NonNull<()>>,
    target_type: TypeId,
    /// `P`'s place to read and to write (`Locate<P>`), and the field's `get` and `get_mut`.
    parent: [*const (); 2],
    project: [*const (); 2],
    /// Where a reference keeps this field's view in its array of views, and the length of
    /// that array (`P`'s fields with kept views): numbered once the metatable has them all
    /// (`lua54.rs` `number_views`).
    pub(crate) slot: u32,
    pub(crate) slots: u32,
}

#[cfg_attr(not(feature = "lua54"), allow(dead_code))]
impl ViewPath {
    /// The path of field `get`/`get_mut` of a `P` reached through `parent`.
    pub(crate) fn of<P: 'static, F: 'static>(
        parent: KeyedAccess<P>,
        get: fn(&P) -> &F,
        get_mut: fn(&mut P) -> &mut F,
    ) -> Self {
        ViewPath {
            find: find_in::<P, F>,
            target_type: TypeId::of::<F>(),
            parent: [parent.read as *const (), parent.write as *const ()],
            project: [get as *const (), get_mut as *const ()],
            slot: 0,
            slots: 0,
        }
    }

    /// The `F` the view `key` names, found anew through its path and kept in `key` (for
    /// `access`: a write's component is marked changed), if `key` is the key of a view of an `F`
    /// and the component can be reached.
    pub(crate) fn find<F: 'static>(key: &mut Key, access: Access) -> Option<NonNull<F>> {
        // SAFETY: a key's view is null or points to a live path (see the module docs).
        let path = *unsafe { key.view.as_ref() }?;
        if path.target_type != TypeId::of::<F>() {
            return None;
        }
        // SAFETY: `find` is the function `of` paired with these pointers.
        unsafe { (path.find)(key, &path, access) }.map(NonNull::cast)
    }
}

/// [`ViewPath::find`] for a field `F` of a `P`: `P` found through its place, then the field's
/// offset inside it by the projection, the address derived from `P`'s (which may be written
/// through, where a reference's may not).
///
/// SAFETY: `path` was made by `ViewPath::of::<P, F>`.
unsafe fn find_in<P: 'static, F: 'static>(
    key: &mut Key,
    path: &ViewPath,
    access: Access,
) -> Option<NonNull<()>> {
    let write = access == Access::Write;
    // SAFETY: per the caller, the pointers `of` erased, transmuted back to their own types.
    let locate =
        unsafe { std::mem::transmute::<*const (), Locate<P>>(path.parent[usize::from(write)]) };
    let mut parent = locate(key)?;
    let start = parent.as_ptr() as usize;
    // SAFETY: the place gave the address of a `P` to read now (to write, for a write), with
    // nothing else holding it exclusively (at all); the projections run no Lua and reach no
    // world.
    let field = unsafe {
        if write {
            let get_mut = std::mem::transmute::<*const (), fn(&mut P) -> &mut F>(path.project[1]);
            std::ptr::from_mut(get_mut(parent.as_mut())) as usize
        } else {
            let get = std::mem::transmute::<*const (), fn(&P) -> &F>(path.project[0]);
            std::ptr::from_ref(get(parent.as_ref())) as usize
        }
    };
    let offset = field.wrapping_sub(start);
    if field < start || offset + size_of::<F>() > size_of::<P>() {
        key.kept = Kept::NONE;
        return None;
    }
    // SAFETY: `offset` lies inside the `P` (checked).
    let target = unsafe { parent.cast::<u8>().add(offset) }.cast::<()>();
    key.kept.target = target.as_ptr();
    key.kept.target_type = TypeId::of::<F>();
    Some(target)
}

/// Declares the types of `T`'s fields that references keep views of keyed (for their views
/// only, unless they are keyed already), so that their reference metatables get fast field
/// functions. Called when the component `T`'s type is installed, before any view is made.
pub(crate) fn register_view_types<T: LuaUserData>(lua: &Lua) {
    T::describe(&mut ViewTypes(lua));
}

struct ViewTypes<'l>(&'l Lua);

impl<T: LuaUserData> Registrar<T> for ViewTypes<'_> {
    fn field<F: 'static, O: IntoLua + 'static>(&mut self, field: Field<T, F, O>) {
        if let FieldKind::Live { stable: true, .. } = field.kind {
            register_view_access::<F>(self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::UnsafeCell;

    use super::*;

    struct Pair {
        number: f64,
        point: [f32; 2],
    }

    thread_local! {
        static PAIR: UnsafeCell<Pair> = const { UnsafeCell::new(Pair { number: 1.5, point: [2.0, 3.0] }) };
        static ELSEWHERE: UnsafeCell<[f32; 2]> = const { UnsafeCell::new([0.0; 2]) };
    }

    fn pair(_: &mut Key) -> Option<NonNull<Pair>> {
        PAIR.with(|pair| NonNull::new(pair.get()))
    }

    const PLACE: KeyedAccess<Pair> = KeyedAccess {
        read: pair,
        write: pair,
    };

    fn elsewhere_mut(_: &mut Pair) -> &mut [f32; 2] {
        // SAFETY: the test's own cell, not otherwise borrowed while the path uses it.
        ELSEWHERE.with(|cell| unsafe { &mut *cell.get() })
    }

    fn elsewhere(_: &Pair) -> &[f32; 2] {
        // SAFETY: as above.
        ELSEWHERE.with(|cell| unsafe { &*cell.get() })
    }

    #[test]
    fn a_view_key_finds_its_field_inside_its_parent_and_nothing_else() {
        let path = ViewPath::of::<Pair, [f32; 2]>(PLACE, |p| &p.point, |p| &mut p.point);
        let mut key = Key::new(1);
        key.view = &path;
        let parent = PAIR.with(|pair| pair.get() as usize);
        for access in [Access::Read, Access::Write] {
            let found = ViewPath::find::<[f32; 2]>(&mut key, access).expect("the field");
            assert_eq!(
                found.as_ptr() as usize,
                parent + std::mem::offset_of!(Pair, point)
            );
            assert_eq!(key.kept.target, found.as_ptr().cast());
            assert_eq!(key.kept.target_type, TypeId::of::<[f32; 2]>());
            // SAFETY: the address of the test's pair's field, nothing else borrowing it.
            assert_eq!(unsafe { *found.as_ptr() }, [2.0, 3.0]);
        }
        // Asked for another type (another type's field functions given this key): nothing.
        assert!(ViewPath::find::<f64>(&mut key, Access::Read).is_none());
        // A projection landing outside the parent: nothing, and nothing kept.
        let outside = ViewPath::of::<Pair, [f32; 2]>(PLACE, elsewhere, elsewhere_mut);
        key.view = &outside;
        for access in [Access::Read, Access::Write] {
            assert!(ViewPath::find::<[f32; 2]>(&mut key, access).is_none());
            assert!(key.kept.target.is_null());
        }
        // Not a view's key: nothing.
        key.view = std::ptr::null();
        assert!(ViewPath::find::<[f32; 2]>(&mut key, Access::Read).is_none());
        assert_eq!(PAIR.with(|pair| unsafe { (*pair.get()).number }), 1.5);
    }
}
