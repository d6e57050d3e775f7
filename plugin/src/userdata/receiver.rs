//! `self` and borrowed arguments of Rust methods called from Lua.
//!
//! A method's `self` may be an owned value or a live reference ([`LuaRef`]), and so may each of
//! its arguments. A reference reaches its value through its place (for components, through the
//! world, see `world/mod.rs`), so the order matters: generated code converts every argument first
//! and only then lends `self` ([`This`], [`ThisMut`]) for the call itself.
//!
//! Derived-type arguments taken as `&T` or `&mut T` ([`UserDataArg`]) are resolved then too:
//! - an owned userdata is borrowed in place during the call;
//! - a live reference to a `Clone` type is copied out before `self` is lent, and for `&mut T`
//!   the copy is written back after the call, once `self` is released; a `&mut T` copy of a
//!   value that overlaps `self` (`p:absorb(p)`, `p:absorb(p.child)`) is refused, since the
//!   write-back would undo the method's own changes;
//! - a live reference to a type without `Clone` is borrowed in place, which works unless the
//!   method's `self` holds the world exclusively.
//!
//! The Rust method running at any moment is recorded ([`current_call`]), so that a refusal to
//! lend the world can name the call that holds it.

use std::cell::Cell;

use mlua::{AnyUserData, Value};

use super::LuaUserData;
use super::convert::ConvertError;
use super::error::script_error;
use super::reference::LuaRef;

thread_local! {
    static CURRENT_CALL: Cell<Option<(&'static str, &'static str)>> = const { Cell::new(None) };
}

/// The outermost Rust method or function running now, as (type name, Lua name): while Lua runs
/// inside one, it is the one that called back into Lua.
pub fn current_call() -> Option<(&'static str, &'static str)> {
    CURRENT_CALL.with(Cell::get)
}

/// Marks a Rust method as running until dropped, unless one already is (the outermost counts).
pub(crate) struct CallScope(bool);

impl CallScope {
    #[inline]
    pub(crate) fn enter(type_name: &'static str, name: &'static str) -> Self {
        CallScope(CURRENT_CALL.with(|call| {
            let outermost = call.get().is_none();
            if outermost {
                call.set(Some((type_name, name)));
            }
            outermost
        }))
    }
}

impl Drop for CallScope {
    #[inline]
    fn drop(&mut self) {
        if self.0 {
            CURRENT_CALL.with(|call| call.set(None));
        }
    }
}

/// Runs a Rust method (`type_name.name`) called from Lua, turning a panic in it (a division by
/// zero, an `expect`) into a Lua error that names it, so that no panic crosses into Lua or out
/// of the app's update. Whatever the method held is released by unwinding as usual.
#[inline]
pub(crate) fn catch_panics<R>(
    type_name: &'static str,
    name: &'static str,
    f: impl FnOnce() -> mlua::Result<R>,
) -> mlua::Result<R> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let text = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".to_owned());
            Err(script_error(format!(
                "the Rust method `{type_name}.{name}` panicked: {text}"
            )))
        }
    }
}

/// The memory a value occupies, to tell whether two borrows would overlap.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    start: usize,
    len: usize,
}

impl Span {
    pub fn of<T>(value: &T) -> Self {
        Span {
            start: value as *const T as usize,
            len: std::mem::size_of::<T>(),
        }
    }

    fn overlaps(self, other: Span) -> bool {
        self.len > 0
            && other.len > 0
            && self.start < other.start + other.len
            && other.start < self.start + self.len
    }
}

/// A method's `&self`: an owned value, or a live reference whose value is reached by [`with`].
///
/// [`with`]: This::with
pub struct This<'a, T: 'static>(ThisKind<'a, T>);

enum ThisKind<'a, T: 'static> {
    Value(&'a T),
    Ref(&'a LuaRef<T>),
}

impl<'a, T: 'static> This<'a, T> {
    #[inline]
    pub(crate) fn value(value: &'a T) -> Self {
        This(ThisKind::Value(value))
    }

    #[inline]
    pub(crate) fn reference(reference: &'a LuaRef<T>) -> Self {
        This(ThisKind::Ref(reference))
    }

    /// Runs `f` on the value; for a reference, the place is reached now.
    #[inline]
    pub fn with<R>(self, f: impl FnOnce(&T) -> R) -> mlua::Result<R> {
        match self.0 {
            ThisKind::Value(value) => Ok(f(value)),
            ThisKind::Ref(reference) => reference.with(f),
        }
    }
}

/// A method's `&mut self` (see [`This`]).
pub struct ThisMut<'a, T: 'static>(ThisMutKind<'a, T>);

enum ThisMutKind<'a, T: 'static> {
    Value(&'a mut T),
    Ref(&'a LuaRef<T>),
}

impl<'a, T: 'static> ThisMut<'a, T> {
    #[inline]
    pub(crate) fn value(value: &'a mut T) -> Self {
        ThisMut(ThisMutKind::Value(value))
    }

    #[inline]
    pub(crate) fn reference(reference: &'a LuaRef<T>) -> Self {
        ThisMut(ThisMutKind::Ref(reference))
    }

    /// Runs `f` on the value; for a reference, the place is reached (and marked changed) now.
    #[inline]
    pub fn with_mut<R>(self, f: impl FnOnce(&mut T) -> R) -> mlua::Result<R> {
        match self.0 {
            ThisMutKind::Value(value) => Ok(f(value)),
            ThisMutKind::Ref(reference) => reference.with_mut(f),
        }
    }
}

/// A `&T` or `&mut T` argument of a derived type, resolved before `self` is lent (see the
/// module docs).
pub struct UserDataArg<T: 'static> {
    source: Source<T>,
}

enum Source<T: 'static> {
    /// An owned userdata, borrowed in place for the call.
    Owned(AnyUserData),
    /// A copy of what a live reference pointed to, where it was, and where to write it back.
    Copy {
        value: T,
        span: Span,
        from: LuaRef<T>,
    },
    /// A live reference to a type that cannot be copied.
    Ref(LuaRef<T>),
}

impl<T: LuaUserData> UserDataArg<T> {
    /// Resolves the argument `value`; `clone` is how `T` is copied, if it can be.
    pub fn from_lua(value: Value, clone: Option<fn(&T) -> T>) -> mlua::Result<Self> {
        let source = match &value {
            Value::UserData(ud) if ud.is::<T>() => Source::Owned(ud.clone()),
            Value::UserData(ud) if ud.is::<LuaRef<T>>() => {
                let reference = ud.borrow_scoped::<LuaRef<T>, _>(LuaRef::clone)?;
                match clone {
                    Some(clone) => {
                        let (value, span) = reference.with(|v| (clone(v), Span::of(v)))?;
                        Source::Copy {
                            value,
                            span,
                            from: reference,
                        }
                    }
                    None => Source::Ref(reference),
                }
            }
            _ => {
                return Err(mlua::Error::external(ConvertError::new(
                    T::TYPE_NAME,
                    &value,
                )));
            }
        };
        Ok(UserDataArg { source })
    }

    /// Runs `f` with the argument as `&T`.
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> mlua::Result<R> {
        match &self.source {
            Source::Owned(ud) => ud.borrow_scoped::<T, R>(f).map_err(|_| in_use::<T>()),
            Source::Copy { value, .. } => Ok(f(value)),
            Source::Ref(reference) => reference.with(f),
        }
    }

    /// Runs `f` with the argument as `&mut T`; `this` is where the method's `self` is, which a
    /// copy must not overlap.
    pub fn with_mut<R>(
        &mut self,
        this: Option<Span>,
        f: impl FnOnce(&mut T) -> R,
    ) -> mlua::Result<R> {
        match &mut self.source {
            Source::Owned(ud) => ud.borrow_mut_scoped::<T, R>(f).map_err(|_| in_use::<T>()),
            Source::Copy { value, span, .. } => {
                if this.is_some_and(|this| this.overlaps(*span)) {
                    return Err(script_error(format!(
                        "this {} is self, or a part of self: it cannot also be passed as &mut",
                        T::TYPE_NAME
                    )));
                }
                Ok(f(value))
            }
            Source::Ref(reference) => reference.with_mut(f),
        }
    }

    /// After a `&mut T` call, with `self` released: writes a copy back to where it came from.
    pub fn write_back(self) -> mlua::Result<()> {
        match self.source {
            Source::Copy { value, from, .. } => {
                let mut value = Some(value);
                from.with_mut(|target| {
                    if let Some(value) = value.take() {
                        *target = value;
                    }
                })
            }
            Source::Owned(_) | Source::Ref(_) => Ok(()),
        }
    }
}

fn in_use<T: LuaUserData>() -> mlua::Error {
    script_error(format!(
        "this {} is already in use by the call (it is self or another argument)",
        T::TYPE_NAME
    ))
}

/// How generated code learns whether `T` can be copied: `(&&CloneProbe::<T>::new()).cloner()`.
pub struct CloneProbe<T>(std::marker::PhantomData<T>);

impl<T> CloneProbe<T> {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        CloneProbe(std::marker::PhantomData)
    }
}

pub trait CloneViaClone<T> {
    fn cloner(self) -> Option<fn(&T) -> T>;
}

impl<T: Clone> CloneViaClone<T> for &&CloneProbe<T> {
    fn cloner(self) -> Option<fn(&T) -> T> {
        Some(T::clone)
    }
}

pub trait CloneViaNone<T> {
    fn cloner(self) -> Option<fn(&T) -> T>;
}

impl<T> CloneViaNone<T> for &CloneProbe<T> {
    fn cloner(self) -> Option<fn(&T) -> T> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::Span;

    #[test]
    fn spans_overlap_only_when_they_share_bytes() {
        let pair = (1u64, 2u64);
        let whole = Span::of(&pair);
        assert!(whole.overlaps(Span::of(&pair.0)));
        assert!(Span::of(&pair.1).overlaps(whole));
        assert!(!Span::of(&pair.0).overlaps(Span::of(&pair.1)));
        assert!(
            !Span::of(&()).overlaps(whole),
            "zero-sized values overlap nothing"
        );
    }
}
