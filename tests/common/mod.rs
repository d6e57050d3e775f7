//! Helpers shared by the integration tests.
#![allow(dead_code)]

use bevy_lunar::mlua::{FromLuaMulti, Lua};

/// Runs `code` as a chunk named `test.lua`, panicking with the Lua error if it fails.
pub fn run(lua: &Lua, code: &str) {
    if let Err(err) = lua.load(code).set_name("@test.lua").exec() {
        panic!("Lua failed:\n{err}");
    }
}

/// Evaluates `code` and returns its values.
pub fn eval<R: FromLuaMulti>(lua: &Lua, code: &str) -> R {
    match lua.load(code).set_name("@test.lua").eval() {
        Ok(value) => value,
        Err(err) => panic!("Lua failed:\n{err}"),
    }
}

/// Runs `code`, which must fail, and returns the error message as a script sees it through
/// `pcall`: the first line of `tostring(err)` (mlua appends a stack traceback).
pub fn error_of(lua: &Lua, code: &str) -> String {
    let wrapped = format!(
        "local ok, err = pcall(function()\n{code}\nend)\nassert(not ok, 'expected an error')\nreturn tostring(err)"
    );
    let message: String = eval(lua, &wrapped);
    message.lines().next().unwrap_or_default().to_owned()
}
