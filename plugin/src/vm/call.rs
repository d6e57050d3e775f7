//! The per-frame call of an instance's `on_update`, without mlua's per-call wrapping.
//!
//! Every instance's `on_update(dt)` is called every frame. Through mlua's `Function::call` each
//! call also guards the stack, moves the function over from mlua's reference thread and converts
//! the argument and the results (this path costs about 140 instructions less per instance and
//! frame: 5,100 -> 4,958 in the benchmark's workload). Here the function is registered once
//! (a [`RegistryKey`]) and each call is `lua_rawgeti` of it, `lua_pushnumber` of `dt` and
//! `lua_pcall` with a message handler that does what mlua's does (a traceback appended to an
//! error raised in Lua, mlua's own error values passed through as they are), so a failing call
//! gives the `mlua::Error` that `Function::call` gives.
//!
//! The handler tells mlua's error values from a script's by their metatable, which mlua does not
//! name: it is learned when the state is made, from the error a Rust function raises, and then
//! checked by calling a Rust function and a Lua function that fail. If anything there is not as
//! expected, no [`RegisteredCall`] is made and the runtime calls through mlua. Lua 5.4 only:
//! elsewhere there is none.

use mlua::RegistryKey;

/// Calls of registered functions on the main state (see the module docs).
pub(crate) struct RegisteredCall {
    /// The message handler: a C closure whose upvalue is the metatable of mlua's error values.
    #[cfg(feature = "lua54")]
    handler: RegistryKey,
    /// A registry slot (holding `false` between calls) that a failed call's error object is
    /// moved to, for mlua to convert: overwriting a slot that exists allocates nothing.
    #[cfg(feature = "lua54")]
    error: RegistryKey,
    #[cfg(not(feature = "lua54"))]
    never: std::convert::Infallible,
}

#[cfg(feature = "lua54")]
mod lua54 {
    use std::ffi::c_int;
    use std::ptr;

    use mlua::{Function, Lua, RegistryKey, Value, ffi};

    use super::RegisteredCall;

    /// mlua's `error_traceback`, with mlua's error values told by the metatable in upvalue 1.
    ///
    /// SAFETY: called by Lua as a message handler (the error object on top), as a closure with
    /// one upvalue.
    unsafe extern "C-unwind" fn traceback(state: *mut ffi::lua_State) -> c_int {
        // SAFETY: per the caller. `luaL_tolstring` may raise an error (a failing `__tostring`),
        // which Lua reports as an error in the handler, as it does for mlua's.
        unsafe {
            if ffi::lua_checkstack(state, 2) == 0 {
                return 1;
            }
            if ffi::lua_getmetatable(state, -1) != 0 {
                let wrapped = ffi::lua_rawequal(state, -1, ffi::lua_upvalueindex(1)) != 0;
                ffi::lua_pop(state, 1);
                if wrapped {
                    return 1;
                }
            }
            let message = ffi::luaL_tolstring(state, -1, ptr::null_mut());
            if ffi::lua_checkstack(state, ffi::LUA_TRACEBACK_STACK) != 0 {
                ffi::luaL_traceback(state, state, message, 0);
                ffi::lua_remove(state, -2);
            }
            1
        }
    }

    impl RegisteredCall {
        /// For `lua` (a new state, no callback running): `None` if mlua's error values are not
        /// what this module expects.
        pub(crate) fn new(lua: &Lua) -> Option<Self> {
            // The Rust function whose error shows mlua's error metatable, then a probe.
            let rust = lua
                .create_function(|_, ()| -> mlua::Result<()> {
                    Err(mlua::Error::runtime("registered call probe"))
                })
                .ok()?;
            let handler = handler(lua, &rust).ok().flatten()?;
            let call = RegisteredCall {
                handler: lua.create_registry_value(handler).ok()?,
                error: lua.create_registry_value(false).ok()?,
            };
            call.check(lua, rust).then_some(call)
        }

        /// Whether failing calls (of `rust`, failing, and of a failing Lua function) give the
        /// errors `Function::call` gives.
        fn check(&self, lua: &Lua, rust: Function) -> bool {
            let probe = |f: Function| -> Option<(String, String)> {
                let key = lua.create_registry_value(f.clone()).ok()?;
                let ours = self.call(lua, &key, 0.0).err()?;
                let theirs = f.call::<()>(0.0).err()?;
                Some((ours.to_string(), theirs.to_string()))
            };
            let Ok(script) = lua
                .load("local x = ... error('registered call probe ' .. x)")
                .set_name("=probe")
                .into_function()
            else {
                return false;
            };
            [probe(rust), probe(script)].into_iter().all(|pair| {
                pair.is_some_and(|(ours, theirs)| {
                    ours == theirs && ours.contains("registered call probe")
                })
            })
        }

        /// Calls the function registered under `key` (of `lua`, on its main state, with no
        /// callback running) with `arg`, and no results: `Function::call::<()>(arg)`.
        pub(crate) fn call(&self, lua: &Lua, key: &RegistryKey, arg: f64) -> mlua::Result<()> {
            let state = lua.exec_raw_lua(|raw| raw.state());
            // SAFETY: `state` is the running state of `lua`, its main state between callbacks,
            // which nothing else uses meanwhile (Lua runs on this thread only). The stack is
            // left as found: three slots are pushed and `lua_pcall` catches every error raised
            // in the call (Rust panics included, which mlua turns into errors), so nothing
            // unwinds through here.
            let (status, base) = unsafe {
                if ffi::lua_checkstack(state, 3) == 0 {
                    return Err(mlua::Error::StackError);
                }
                let base = ffi::lua_gettop(state);
                ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, self.handler.id().into());
                ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, key.id().into());
                ffi::lua_pushnumber(state, arg);
                (ffi::lua_pcall(state, 1, 0, base + 1), base)
            };
            if status == ffi::LUA_OK {
                // SAFETY: as above; the handler is left.
                unsafe { ffi::lua_settop(state, base) };
                return Ok(());
            }
            // The error object, on top, as mlua sees it: its own error values come back as
            // `Value::Error` (a Rust panic resumes unwinding, as `Function::call` does).
            let slot = ffi::lua_Integer::from(self.error.id());
            // SAFETY: as above; `slot` exists in the registry, so setting it allocates nothing.
            unsafe {
                ffi::lua_rawseti(state, ffi::LUA_REGISTRYINDEX, slot);
                ffi::lua_settop(state, base);
            }
            let error = lua.registry_value::<Value>(&self.error);
            // SAFETY: as above; the slot lets go of the error object.
            unsafe {
                ffi::lua_pushboolean(state, 0);
                ffi::lua_rawseti(state, ffi::LUA_REGISTRYINDEX, slot);
            }
            Err(match error? {
                Value::Error(error) => *error,
                Value::String(message) if status == ffi::LUA_ERRMEM => {
                    mlua::Error::MemoryError(message.to_string_lossy())
                }
                Value::String(message) => mlua::Error::RuntimeError(message.to_string_lossy()),
                other => mlua::Error::RuntimeError(format!(
                    "an error object of type {} with no message",
                    other.type_name()
                )),
            })
        }
    }

    /// The handler, its upvalue the metatable of the error `fails` (a Rust function) raises.
    fn handler(lua: &Lua, fails: &Function) -> mlua::Result<Option<Function>> {
        // SAFETY: `exec_raw` runs this as a C function whose stack holds `fails`; it leaves one
        // value (the handler, or nil). Nothing to drop is alive if making the closure fails.
        unsafe {
            lua.exec_raw::<Option<Function>>(fails, |state| {
                let failed = ffi::lua_pcall(state, 0, 0, 0) == ffi::LUA_ERRRUN
                    && ffi::lua_type(state, -1) == ffi::LUA_TUSERDATA
                    && ffi::lua_getmetatable(state, -1) != 0;
                if failed {
                    ffi::lua_pushcclosure(state, traceback, 1);
                    ffi::lua_replace(state, 1);
                    ffi::lua_settop(state, 1);
                } else {
                    ffi::lua_settop(state, 0);
                    ffi::lua_pushnil(state);
                }
            })
        }
    }
}

#[cfg(not(feature = "lua54"))]
impl RegisteredCall {
    /// None on this backend (see the module docs).
    pub(crate) fn new(_: &mlua::Lua) -> Option<Self> {
        None
    }

    pub(crate) fn call(&self, _: &mlua::Lua, _: &RegistryKey, _: f64) -> mlua::Result<()> {
        match self.never {}
    }
}

#[cfg(all(test, feature = "lua54"))]
mod tests {
    use mlua::{Function, Lua};

    use super::RegisteredCall;

    /// Each failing function gives the same error through the registered call as through
    /// `Function::call`, and the stack is left as it was.
    #[test]
    fn failing_calls_give_the_errors_of_function_call() {
        let lua = Lua::new();
        let call = RegisteredCall::new(&lua).expect("available on Lua 5.4");
        lua.globals()
            .set(
                "rust_fails",
                lua.create_function(|_, ()| -> mlua::Result<()> {
                    Err(mlua::Error::runtime("from Rust"))
                })
                .unwrap(),
            )
            .unwrap();
        lua.globals()
            .set("a_table", lua.create_table().unwrap())
            .unwrap();
        let bodies = [
            "error('a message')",
            "error('no position', 0)",
            "error(a_table)",
            "error(setmetatable({}, {__tostring = function() return 'shown' end}))",
            "error(setmetatable({}, {__tostring = function() error('worse') end}))",
            "error()",
            "local t = nil; return t.field",
            "rust_fails()",
            "local function deep(n) if n == 0 then error('deep') end deep(n - 1) end deep(50)",
            "string.rep('x', 1 << 40)",
        ];
        let top = || lua.exec_raw_lua(|raw| unsafe { mlua::ffi::lua_gettop(raw.state()) });
        for body in bodies {
            let f: Function = lua
                .load(format!("return function(dt) {body} end"))
                .set_name("@scripts/probe.lua")
                .eval()
                .unwrap();
            let key = lua.create_registry_value(&f).unwrap();
            let before = top();
            let ours = call.call(&lua, &key, 0.5).expect_err(body);
            assert_eq!(top(), before, "{body}: the stack is left as found");
            let theirs = f.call::<()>(0.5).expect_err(body);
            assert_eq!(ours.to_string(), theirs.to_string(), "{body}");
            assert_eq!(
                std::mem::discriminant(&ours),
                std::mem::discriminant(&theirs),
                "{body}"
            );
        }
        // Out of memory (`LUA_ERRMEM`: no message handler runs).
        let f: Function = lua
            .load("return function(dt) local t = {} for i = 1, 1e7 do t[i] = i end end")
            .eval()
            .unwrap();
        let key = lua.create_registry_value(&f).unwrap();
        lua.set_memory_limit(lua.used_memory() + (1 << 20)).unwrap();
        let ours = call.call(&lua, &key, 0.5).unwrap_err();
        let theirs = f.call::<()>(0.5).unwrap_err();
        lua.set_memory_limit(0).unwrap();
        assert!(matches!(ours, mlua::Error::MemoryError(_)), "{ours}");
        assert_eq!(ours.to_string(), theirs.to_string());
        let f: Function = lua
            .load("return function(dt) seen = dt end")
            .eval()
            .unwrap();
        let key = lua.create_registry_value(&f).unwrap();
        call.call(&lua, &key, 0.25).unwrap();
        assert_eq!(lua.globals().get::<f64>("seen").unwrap(), 0.25);
    }
}
