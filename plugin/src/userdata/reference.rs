//! Live references: Lua handles that read and write a value where it lives.
//!
//! `p.pos.x = 5` must change `p`, not a copy. So reading a field whose type is itself a derived
//! type does not copy the value out: it returns a [`LuaRef`], a userdata that remembers *where*
//! the value lives (a [`Place`]) and reaches it on every access. A place is the owning userdata
//! (`p`), a field of another place (`p.pos`), or, in the Bevy plugin, a component in the World.
//! Chains (`a.b.c.x`) are places of places, resolved from the root on each access, so a
//! reference never dangles: if the root is gone the access fails with an error instead.

use std::fmt;
use std::rc::Rc;

use super::error::script_error;
use mlua::{AnyUserData, Value};

use super::LuaUserData;
use super::collection::Origin;

/// The error of a live reference whose value is gone: a despawned entity, a removed component,
/// an element no longer in its list.
#[derive(Debug)]
pub struct StaleReference(pub String);

impl fmt::Display for StaleReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StaleReference {}

/// Somewhere a `T` lives that Lua code can reach.
///
/// Implementations resolve the location on every call; an access to a place that no longer
/// exists (a despawned entity, a removed component) returns an error, never a dangling value.
pub trait Place<T>: 'static {
    /// Calls `f` with shared access to the value.
    fn with_ref(&self, f: &mut dyn FnMut(&T)) -> mlua::Result<()>;

    /// Calls `f` with exclusive access to the value. Places that track changes (Bevy components)
    /// mark the value changed here, and only here.
    fn with_mut(&self, f: &mut dyn FnMut(&mut T)) -> mlua::Result<()>;

    /// Exclusive access if `check`, looking at the value first, allows it: a write that may be
    /// refused (an index out of range) without marking the value changed, reaching the place
    /// once. Returns whether `f` ran. The default reaches the place twice; places where that
    /// costs override it.
    fn with_mut_checked(
        &self,
        check: &mut dyn FnMut(&T) -> bool,
        f: &mut dyn FnMut(&mut T),
    ) -> mlua::Result<bool> {
        let mut allowed = false;
        self.with_ref(&mut |value| allowed = check(value))?;
        if allowed {
            self.with_mut(f)?;
        }
        Ok(allowed)
    }
}

/// A Lua handle to a `T` that lives elsewhere (see the module docs).
///
/// Scripts cannot tell it from an owned value: it has the same fields, methods and operators,
/// and is copied when passed where a value is expected.
pub struct LuaRef<T: 'static> {
    place: Rc<dyn Place<T>>,
}

impl<T: 'static> Clone for LuaRef<T> {
    fn clone(&self) -> Self {
        LuaRef {
            place: Rc::clone(&self.place),
        }
    }
}

impl<T: 'static> LuaRef<T> {
    /// A reference to the value at `place`.
    pub fn new(place: impl Place<T>) -> Self {
        LuaRef {
            place: Rc::new(place),
        }
    }

    /// Runs `f` with shared access to the referenced value.
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> mlua::Result<R> {
        let mut f = Some(f);
        let mut result = None;
        self.place.with_ref(&mut |value| {
            if let Some(f) = f.take() {
                result = Some(f(value));
            }
        })?;
        result.ok_or_else(place_not_visited)
    }

    /// Runs `f` with exclusive access to the referenced value.
    pub fn with_mut<R>(&self, f: impl FnOnce(&mut T) -> R) -> mlua::Result<R> {
        let mut f = Some(f);
        let mut result = None;
        self.place.with_mut(&mut |value| {
            if let Some(f) = f.take() {
                result = Some(f(value));
            }
        })?;
        result.ok_or_else(place_not_visited)
    }

    /// [`Place::with_mut_checked`] of the referenced place.
    pub(crate) fn with_mut_checked(
        &self,
        check: &mut dyn FnMut(&T) -> bool,
        f: &mut dyn FnMut(&mut T),
    ) -> mlua::Result<bool> {
        self.place.with_mut_checked(check, f)
    }

    /// A reference to a part of the referenced value (a field of it).
    pub fn project<U: 'static>(
        &self,
        get: fn(&T) -> &U,
        get_mut: fn(&mut T) -> &mut U,
    ) -> LuaRef<U> {
        LuaRef::new(FieldPlace {
            parent: Rc::clone(&self.place),
            get,
            get_mut,
        })
    }
}

impl<T: 'static> LuaRef<T> {
    /// A reference to a part of the referenced value found by `key` on each access (a list
    /// element, a map entry, the content of an `Option`); an access finding none fails with
    /// `missing`, naming `origin`.
    pub(crate) fn part<U: 'static, K: 'static>(
        &self,
        key: K,
        get: PartGet<T, K, U>,
        get_mut: PartGetMut<T, K, U>,
        origin: Origin,
        missing: &'static str,
    ) -> LuaRef<U> {
        LuaRef::new(PartPlace {
            parent: self.clone(),
            key,
            get,
            get_mut,
            origin,
            missing,
        })
    }
}

/// How [`LuaRef::part`] finds the part of a `P` that `K` names.
pub(crate) type PartGet<P, K, U> = for<'a> fn(&'a P, &K) -> Option<&'a U>;
pub(crate) type PartGetMut<P, K, U> = for<'a> fn(&'a mut P, &K) -> Option<&'a mut U>;

/// See [`LuaRef::part`].
struct PartPlace<P: 'static, K: 'static, U: 'static> {
    parent: LuaRef<P>,
    key: K,
    get: PartGet<P, K, U>,
    get_mut: PartGetMut<P, K, U>,
    origin: Origin,
    missing: &'static str,
}

impl<P: 'static, K: 'static, U: 'static> Place<U> for PartPlace<P, K, U> {
    fn with_ref(&self, f: &mut dyn FnMut(&U)) -> mlua::Result<()> {
        let found = self
            .parent
            .with(|parent| (self.get)(parent, &self.key).map(f))?;
        found.ok_or_else(|| self.origin.gone(self.missing))
    }

    fn with_mut(&self, f: &mut dyn FnMut(&mut U)) -> mlua::Result<()> {
        let found = self
            .parent
            .with_mut(|parent| (self.get_mut)(parent, &self.key).map(f))?;
        found.ok_or_else(|| self.origin.gone(self.missing))
    }

    fn with_mut_checked(
        &self,
        check: &mut dyn FnMut(&U) -> bool,
        f: &mut dyn FnMut(&mut U),
    ) -> mlua::Result<bool> {
        let mut found = false;
        let allowed = self.parent.place.with_mut_checked(
            &mut |parent| match (self.get)(parent, &self.key) {
                Some(part) => {
                    found = true;
                    check(part)
                }
                None => false,
            },
            &mut |parent| {
                if let Some(part) = (self.get_mut)(parent, &self.key) {
                    f(part);
                }
            },
        )?;
        if !found {
            return Err(self.origin.gone(self.missing));
        }
        Ok(allowed)
    }
}

/// A planned write through a checked access (`access(check, write)`, as
/// [`Place::with_mut_checked`]): `plan` looks at the value and returns the change to make or the
/// refusal; `apply` makes the change.
pub(crate) fn plan_then_apply<A: ?Sized, P, E, R>(
    access: impl FnOnce(&mut dyn FnMut(&A) -> bool, &mut dyn FnMut(&mut A)) -> mlua::Result<bool>,
    plan: impl FnOnce(&A) -> Result<P, E>,
    apply: impl FnOnce(&mut A, P) -> R,
) -> mlua::Result<Result<R, E>> {
    let mut plan = Some(plan);
    // Written by the check, taken by the write: both closures hold it.
    let planned = std::cell::RefCell::new(None);
    let mut apply = Some(apply);
    let mut result = None;
    access(
        &mut |value| match plan.take().map(|plan| plan(value)) {
            Some(outcome) => {
                let allowed = outcome.is_ok();
                *planned.borrow_mut() = Some(outcome);
                allowed
            }
            None => false,
        },
        &mut |value| {
            let p = planned.borrow_mut().take();
            if let (Some(apply), Some(Ok(p))) = (apply.take(), p) {
                result = Some(apply(value, p));
            }
        },
    )?;
    match (result, planned.into_inner()) {
        (Some(result), _) => Ok(Ok(result)),
        (None, Some(Err(refusal))) => Ok(Err(refusal)),
        _ => Err(place_not_visited()),
    }
}

fn place_not_visited() -> mlua::Error {
    script_error("internal error: a place did not call back with its value")
}

/// The value inside an owned userdata.
pub(crate) struct UserDataPlace(pub(crate) AnyUserData);

impl<T: 'static> Place<T> for UserDataPlace {
    fn with_ref(&self, f: &mut dyn FnMut(&T)) -> mlua::Result<()> {
        self.0
            .borrow_scoped::<T, _>(f)
            .map_err(|err| self.in_use(err))
    }

    fn with_mut(&self, f: &mut dyn FnMut(&mut T)) -> mlua::Result<()> {
        self.0
            .borrow_mut_scoped::<T, _>(f)
            .map_err(|err| self.in_use(err))
    }

    fn with_mut_checked(
        &self,
        check: &mut dyn FnMut(&T) -> bool,
        f: &mut dyn FnMut(&mut T),
    ) -> mlua::Result<bool> {
        self.0
            .borrow_mut_scoped::<T, _>(|value| {
                let allowed = check(value);
                if allowed {
                    f(value);
                }
                allowed
            })
            .map_err(|err| self.in_use(err))
    }
}

impl UserDataPlace {
    /// A borrow conflict in words: a `&mut self` method of the owner is running (its part was
    /// passed to it, say).
    fn in_use(&self, err: mlua::Error) -> mlua::Error {
        match err {
            mlua::Error::UserDataBorrowError | mlua::Error::UserDataBorrowMutError => {
                let owner = self
                    .0
                    .type_name()
                    .ok()
                    .map(|name| name.to_string_lossy())
                    .unwrap_or_else(|| "value".to_owned());
                script_error(format!(
                    "the {owner} it is part of is in use by a method call on it"
                ))
            }
            other => other,
        }
    }
}

/// A field of the value at another place.
struct FieldPlace<P: 'static, T: 'static> {
    parent: Rc<dyn Place<P>>,
    get: fn(&P) -> &T,
    get_mut: fn(&mut P) -> &mut T,
}

impl<P: 'static, T: 'static> Place<T> for FieldPlace<P, T> {
    fn with_ref(&self, f: &mut dyn FnMut(&T)) -> mlua::Result<()> {
        let get = self.get;
        self.parent.with_ref(&mut |parent| f(get(parent)))
    }

    fn with_mut(&self, f: &mut dyn FnMut(&mut T)) -> mlua::Result<()> {
        let get_mut = self.get_mut;
        self.parent.with_mut(&mut |parent| f(get_mut(parent)))
    }

    fn with_mut_checked(
        &self,
        check: &mut dyn FnMut(&T) -> bool,
        f: &mut dyn FnMut(&mut T),
    ) -> mlua::Result<bool> {
        let (get, get_mut) = (self.get, self.get_mut);
        self.parent
            .with_mut_checked(&mut |parent| check(get(parent)), &mut |parent| {
                f(get_mut(parent))
            })
    }
}

/// A reference to the field of an owned userdata holding a `P`.
pub(crate) fn project_userdata<P: 'static, T: 'static>(
    owner: AnyUserData,
    get: fn(&P) -> &T,
    get_mut: fn(&mut P) -> &mut T,
) -> LuaRef<T> {
    LuaRef::new(FieldPlace {
        parent: Rc::new(UserDataPlace(owner)) as Rc<dyn Place<P>>,
        get,
        get_mut,
    })
}

/// Runs `f` on the `T` held by `value`, whether an owned `T` userdata or a [`LuaRef<T>`].
///
/// Returns `Ok(None)` when `value` holds no `T`, so callers can try other operand types; errors
/// are real failures (a borrow conflict, a reference whose place is gone).
pub fn with_value<T: LuaUserData, R>(
    value: &Value,
    f: impl FnOnce(&T) -> R,
) -> mlua::Result<Option<R>> {
    let Value::UserData(ud) = value else {
        return Ok(None);
    };
    if ud.is::<T>() {
        ud.borrow_scoped::<T, R>(f).map(Some)
    } else if ud.is::<LuaRef<T>>() {
        ud.borrow_scoped::<LuaRef<T>, _>(|r| r.with(f))?.map(Some)
    } else {
        Ok(None)
    }
}

/// Like [`with_value`], with exclusive access.
pub fn with_value_mut<T: LuaUserData, R>(
    value: &Value,
    f: impl FnOnce(&mut T) -> R,
) -> mlua::Result<Option<R>> {
    let Value::UserData(ud) = value else {
        return Ok(None);
    };
    if ud.is::<T>() {
        ud.borrow_mut_scoped::<T, R>(f).map(Some)
    } else if ud.is::<LuaRef<T>>() {
        ud.borrow_scoped::<LuaRef<T>, _>(|r| r.with_mut(f))?
            .map(Some)
    } else {
        Ok(None)
    }
}
