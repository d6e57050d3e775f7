//! Where a derived value inside a reflected one lives: `sprite.custom_size` of a reflected
//! component is a `LuaRef<Vec2>` whose place is the reflected path, so the derived type's
//! fields, methods and operators work on it and write through.

use std::marker::PhantomData;

use super::leaf::as_type_mut;
use super::reference::ReflectedRef;
use crate::userdata::{Place, script_error};

/// A `T` at a reflected path.
pub(crate) struct ReflectedPlace<T> {
    at: ReflectedRef,
    _type: PhantomData<fn() -> T>,
}

impl<T> ReflectedPlace<T> {
    pub(crate) fn new(at: ReflectedRef) -> Self {
        ReflectedPlace {
            at,
            _type: PhantomData,
        }
    }
}

fn changed_type(at: &ReflectedRef) -> mlua::Error {
    script_error(format!(
        "{}: the value there has another type now",
        at.describe()
    ))
}

impl<T: 'static> Place<T> for ReflectedPlace<T> {
    fn with_ref(&self, f: &mut dyn FnMut(&T)) -> mlua::Result<()> {
        self.at.with_value(|value| {
            match value
                .try_as_reflect()
                .and_then(|v| v.as_any().downcast_ref::<T>())
            {
                Some(value) => {
                    f(value);
                    Ok(())
                }
                None => Err(changed_type(&self.at)),
            }
        })?
    }

    fn with_mut(&self, f: &mut dyn FnMut(&mut T)) -> mlua::Result<()> {
        self.at
            .with_value_mut(|value| match as_type_mut::<T>(value) {
                Some(value) => {
                    f(value);
                    Ok(())
                }
                None => Err(changed_type(&self.at)),
            })
    }
}
