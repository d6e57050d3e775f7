//! Modules: `require("scripts/util")` runs `scripts/util.lua`, loaded through Bevy's asset
//! server, once per Lua state, and hands every caller its result.
//!
//! No stall: the loader finds the modules a script requires by a literal name
//! ([`literal_requires`]) and loads them as the script's asset dependencies, so they are loaded
//! before its instances start. A `require` of a name known only at run time finds its module
//! if it is loaded, and otherwise starts loading it and fails with an error saying so (a
//! frame cannot wait for the file system).
//!
//! A module runs in its own environment, which reads the shared globals (it has no `entity`:
//! it gets what it is passed). Each `require` notes who asked (the calling chunk), so that hot
//! reload can follow the requirers: a module edited during play is compiled, then marked
//! stale with every module that requires it, directly or not; the scripts among the requirers
//! are reloaded (`on_unload` -> `on_reload`), and their top-level `require`s run the new
//! versions. A new version that does not compile, or fails to run, is reported with its own
//! `path:line`, and the old one stays.

use std::cell::RefCell;
use std::sync::Arc;

use bevy::asset::{AssetId, AssetServer, Assets, Handle, LoadState};
use bevy::platform::collections::{HashMap, HashSet};
use mlua::{Lua, Table, Value};

use crate::error::LuaScriptError;
use crate::script::asset::LuaScriptAsset;

/// The asset path of a module name: `scripts/util` and `scripts.util` are
/// `scripts/util.lua` (dots are directories when the name has no `/`), `scripts/util.lua` is
/// itself. Paths are from the assets folder (or an asset source: `embedded://ui/menu`).
pub(crate) fn module_path(name: &str) -> Result<String, String> {
    let (source, path) = match name.split_once("://") {
        Some((source, path)) => (Some(source), path),
        None => (None, name),
    };
    let path = path.strip_suffix(".lua").unwrap_or(path);
    let path = if path.contains('/') {
        path.to_owned()
    } else {
        path.replace('.', "/")
    };
    if path.is_empty()
        || path.starts_with('/')
        || path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(format!(
            "'{name}' is not a module name (a path from the assets folder, such as \"scripts/util\")"
        ));
    }
    Ok(match source {
        Some(source) => format!("{source}://{path}.lua"),
        None => format!("{path}.lua"),
    })
}

/// The standard libraries, which `require` returns as Lua's own does (the shared, read-only
/// tables every script sees): `require("string")`.
const LIBRARIES: &[&str] = &[
    "_G",
    "coroutine",
    "debug",
    "io",
    "math",
    "os",
    "package",
    "string",
    "table",
    "utf8",
    "bit",
    "jit",
];

/// The module names a script requires literally (`require("a")`, `require "a"`,
/// `require('a')`), outside comments and strings, in order.
pub(crate) fn literal_requires(source: &str) -> Vec<String> {
    let bytes = source.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i += 2;
                i = match long_bracket(bytes, i) {
                    Some(level) => skip_long(bytes, i, level),
                    None => bytes[i..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(bytes.len(), |n| i + n),
                };
            }
            b'"' | b'\'' => i = skip_string(bytes, i).0,
            b'[' if long_bracket(bytes, i).is_some() => {
                let level = long_bracket(bytes, i).unwrap_or(0);
                i = skip_long(bytes, i, level);
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let after_dot = start > 0 && matches!(bytes[start - 1], b'.' | b':');
                if &bytes[start..i] == b"require"
                    && !after_dot
                    && let Some((name, end)) = required_name(bytes, i)
                {
                    if !LIBRARIES.contains(&name.as_str()) {
                        names.push(name);
                    }
                    i = end;
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// After `require`: `("name")`, `"name"` or `'name'` (a plain string, no escapes); the name and
/// where it ends.
fn required_name(bytes: &[u8], mut i: usize) -> Option<(String, usize)> {
    let skip_space = |i: &mut usize| {
        while *i < bytes.len() && bytes[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    skip_space(&mut i);
    let parenthesized = bytes.get(i) == Some(&b'(');
    if parenthesized {
        i += 1;
        skip_space(&mut i);
    }
    let quote = *bytes.get(i)?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let (end, plain) = skip_string(bytes, i);
    if !plain {
        return None;
    }
    let name = std::str::from_utf8(&bytes[i + 1..end - 1]).ok()?.to_owned();
    let mut after = end;
    if parenthesized {
        skip_space(&mut after);
        if bytes.get(after) != Some(&b')') {
            return None; // `require("a" .. b)`: not a literal
        }
        after += 1;
    }
    Some((name, after))
}

/// The end of the string starting at `i` (its quote), and whether it has no escapes.
fn skip_string(bytes: &[u8], mut i: usize) -> (usize, bool) {
    let quote = bytes[i];
    let mut plain = true;
    i += 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                plain = false;
                i += 2;
            }
            b'\n' => return (i, false),
            b if b == quote => return (i + 1, plain),
            _ => i += 1,
        }
    }
    (bytes.len(), false)
}

/// The level of a long bracket (`[[`, `[==[`) opening at `i`.
fn long_bracket(bytes: &[u8], i: usize) -> Option<usize> {
    if bytes.get(i) != Some(&b'[') {
        return None;
    }
    let level = bytes[i + 1..].iter().take_while(|&&b| b == b'=').count();
    (bytes.get(i + 1 + level) == Some(&b'[')).then_some(level)
}

/// Past the long string or comment of `level` opening at `i`.
fn skip_long(bytes: &[u8], i: usize, level: usize) -> usize {
    let mut close = vec![b']'];
    close.extend(std::iter::repeat_n(b'=', level));
    close.push(b']');
    let body = i + level + 2;
    bytes[body.min(bytes.len())..]
        .windows(close.len())
        .position(|w| w == close.as_slice())
        .map_or(bytes.len(), |n| body + n + close.len())
}

/// One module: its asset, and its result once it ran.
struct Module {
    /// Keeps the module loaded (and its hot reloads coming) while the state lives.
    handle: Handle<LuaScriptAsset>,
    /// What `require` returns (`true` for a module that returns nothing).
    value: Option<Value>,
    /// A new version is to run at the next `require` (the old value stays until it did).
    stale: bool,
    /// The chunks (asset paths) that required it.
    requirers: HashSet<Arc<str>>,
}

/// The modules of a Lua state: app data of the Lua, shared by `require` and the runtime.
pub(crate) struct Modules {
    /// Reads of a module's environment fall back to the shared globals.
    env_metatable: Table,
    modules: RefCell<HashMap<Arc<str>, Module>>,
    /// The modules running their top-level code now, outermost first: a `require` of one of
    /// them is a cycle.
    running: RefCell<Vec<Arc<str>>>,
    /// Errors of new versions that failed to run (the old stayed), for the runtime to report.
    errors: RefCell<Vec<LuaScriptError>>,
}

impl Modules {
    /// Installs `require` among the globals of `lua`.
    pub(crate) fn install(lua: &Lua, env_metatable: Table) -> mlua::Result<()> {
        lua.set_app_data(std::rc::Rc::new(Modules {
            env_metatable,
            modules: RefCell::default(),
            running: RefCell::default(),
            errors: RefCell::default(),
        }));
        lua.globals()
            .raw_set("require", lua.create_function(require)?)
    }

    /// Hot reload, before the frame's plan: the modules among `modified` whose new version
    /// compiles are marked stale with the modules requiring them, directly or not; the asset
    /// paths of the scripts among their requirers, whose instances are to reload. A new
    /// version that does not compile is reported, and the old one stays.
    pub(crate) fn modified(
        lua: &Lua,
        assets: &Assets<LuaScriptAsset>,
        modified: &HashSet<AssetId<LuaScriptAsset>>,
        errors: &mut Vec<LuaScriptError>,
    ) -> HashSet<Arc<str>> {
        let mut scripts = HashSet::default();
        let Some(this) = shared(lua) else {
            return scripts;
        };
        let mut modules = this.modules.borrow_mut();
        let mut stale: Vec<Arc<str>> = Vec::new();
        for (path, module) in modules.iter() {
            let id = module.handle.id();
            if !modified.contains(&id) {
                continue;
            }
            let Some(asset) = assets.get(id) else {
                continue;
            };
            match crate::script::chunk::compile(lua, asset) {
                Ok(_) => stale.push(path.clone()),
                Err(err) => errors.push(LuaScriptError::from_lua(&asset.path, None, &err)),
            }
        }
        while let Some(path) = stale.pop() {
            let Some(module) = modules.get_mut(&path) else {
                continue;
            };
            module.stale = true;
            for requirer in module.requirers.clone() {
                match modules.get(&requirer) {
                    Some(module) if !module.stale => stale.push(requirer),
                    Some(_) => {}
                    None => {
                        scripts.insert(requirer);
                    }
                }
            }
        }
        scripts
    }

    /// The errors of module versions that failed to run since the last call.
    pub(crate) fn take_errors(lua: &Lua) -> Vec<LuaScriptError> {
        shared(lua).map_or_else(Vec::new, |this| {
            std::mem::take(&mut *this.errors.borrow_mut())
        })
    }

    /// `require(name)`, from `caller` (the requiring chunk's asset path, if a script's).
    fn require(
        &self,
        lua: &Lua,
        name: &str,
        path: Arc<str>,
        caller: Option<Arc<str>>,
    ) -> mlua::Result<Value> {
        let fallback = {
            let mut modules = self.modules.borrow_mut();
            match modules.get_mut(&path) {
                Some(module) => {
                    if let Some(caller) = &caller {
                        module.requirers.insert(caller.clone());
                    }
                    match &module.value {
                        Some(value) if !module.stale => return Ok(value.clone()),
                        value => value.clone(),
                    }
                }
                None => None,
            }
        };
        if let Some(at) = self.running.borrow().iter().position(|m| *m == path) {
            let running = self.running.borrow();
            let cycle: Vec<&str> = running[at..]
                .iter()
                .chain([&path])
                .map(|m| m.trim_end_matches(".lua"))
                .collect();
            return Err(mlua::Error::runtime(format!(
                "require: a cycle of modules requiring each other: {}",
                cycle.join(" -> ")
            )));
        }
        let (handle, asset, state) = crate::world::with_world_ref(|world| {
            let Some(server) = world.get_resource::<AssetServer>() else {
                return Err(mlua::Error::runtime("require: the app has no asset server"));
            };
            // A module that failed to load is not loaded again (that would report it again).
            let handle: Handle<LuaScriptAsset> = server
                .get_handle(path.to_string())
                .unwrap_or_else(|| server.load(path.to_string()));
            let state = server.get_load_state(&handle);
            let asset = world
                .get_resource::<Assets<LuaScriptAsset>>()
                .and_then(|assets| assets.get(&handle))
                .cloned();
            Ok((handle, asset, state))
        })??;
        self.modules
            .borrow_mut()
            .entry(path.clone())
            .or_insert_with(|| Module {
                handle,
                value: None,
                stale: false,
                requirers: HashSet::default(),
            })
            .requirers
            .extend(caller);
        let Some(asset) = asset else {
            return Err(mlua::Error::runtime(match state {
                Some(LoadState::Failed(err)) => {
                    format!("require: module '{name}' ({path}) could not be loaded: {err}")
                }
                _ => format!(
                    "require: module '{name}' ({path}) is not loaded yet: require it with a literal name (require(\"{name}\")) in the script, so that it loads with the script before the script starts"
                ),
            }));
        };
        self.running.borrow_mut().push(path.clone());
        let ran = self.run(lua, &asset);
        self.running.borrow_mut().pop();
        let mut modules = self.modules.borrow_mut();
        let Some(module) = modules.get_mut(&path) else {
            return ran;
        };
        match ran {
            Ok(value) => {
                module.value = Some(value.clone());
                module.stale = false;
                Ok(value)
            }
            // A new version failed: the old one stays, and the error is the module's.
            Err(err) if fallback.is_some() => {
                module.stale = false;
                self.errors
                    .borrow_mut()
                    .push(LuaScriptError::from_lua(&asset.path, None, &err));
                Ok(fallback.unwrap_or(Value::Nil))
            }
            Err(err) => Err(err),
        }
    }

    /// Runs a module's top-level code in a fresh environment: its result.
    fn run(&self, lua: &Lua, asset: &LuaScriptAsset) -> mlua::Result<Value> {
        let chunk = crate::script::chunk::compile(lua, asset)?;
        let env = lua.create_table()?;
        env.set_metatable(Some(self.env_metatable.clone()))?;
        crate::script::chunk::bind(&chunk, &env)?;
        match chunk.call::<Value>(())? {
            Value::Nil => Ok(Value::Boolean(true)),
            value => Ok(value),
        }
    }
}

/// Whether `script` and the modules it requires by name, directly or not, are loaded (or
/// failed to: `require` reports it at its line). Cycles included, which Bevy's recursive
/// dependency state never sees through.
pub(crate) fn loaded_with_modules(
    server: &AssetServer,
    assets: &Assets<LuaScriptAsset>,
    script: &LuaScriptAsset,
) -> bool {
    let mut seen: Vec<AssetId<LuaScriptAsset>> = Vec::new();
    let mut next = vec![script];
    while let Some(script) = next.pop() {
        for module in &script.requires {
            if seen.contains(&module.id()) {
                continue;
            }
            seen.push(module.id());
            match assets.get(module) {
                Some(module) => next.push(module),
                None if matches!(server.get_load_state(module), Some(LoadState::Failed(_))) => {}
                None => return false,
            }
        }
    }
    true
}

fn shared(lua: &Lua) -> Option<std::rc::Rc<Modules>> {
    lua.app_data_ref::<std::rc::Rc<Modules>>()
        .map(|m| std::rc::Rc::clone(&m))
}

/// The global `require(name)`.
fn require(lua: &Lua, name: Value) -> mlua::Result<Value> {
    let Value::String(name) = name else {
        return Err(mlua::Error::runtime(format!(
            "require: expected a module name (a string), got {}",
            name.type_name()
        )));
    };
    let name = name.to_str()?.to_owned();
    if LIBRARIES.contains(&name.as_str()) {
        return match lua.globals().raw_get::<Value>(name.as_str())? {
            Value::Nil => Err(mlua::Error::runtime(format!(
                "require: the '{name}' library is not available to scripts"
            ))),
            library => Ok(library),
        };
    }
    let path: Arc<str> = module_path(&name)
        .map_err(|why| mlua::Error::runtime(format!("require: {why}")))?
        .into();
    let Some(modules) = shared(lua) else {
        return Err(mlua::Error::runtime("require: modules are not available"));
    };
    modules.require(lua, &name, path, caller(lua))
}

/// The asset path of the innermost script chunk on the stack (the one calling `require`).
fn caller(lua: &Lua) -> Option<Arc<str>> {
    for level in 1..16 {
        let source =
            lua.inspect_stack(level, |debug| debug.source().source.map(|s| s.into_owned()));
        let source = source?;
        if let Some(path) = source.as_deref().and_then(|s| s.strip_prefix('@')) {
            return Some(path.into());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_are_asset_paths() {
        assert_eq!(module_path("scripts/util").unwrap(), "scripts/util.lua");
        assert_eq!(module_path("scripts.util").unwrap(), "scripts/util.lua");
        assert_eq!(module_path("scripts/util.lua").unwrap(), "scripts/util.lua");
        assert_eq!(module_path("util").unwrap(), "util.lua");
        assert_eq!(
            module_path("embedded://ui/menu").unwrap(),
            "embedded://ui/menu.lua"
        );
        for bad in ["", "../secret", "/etc/passwd", "a//b", "scripts/./x"] {
            assert!(module_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn literal_requires_are_found_outside_comments_and_strings() {
        let source = r#"
            local a = require("scripts/a")
            local b = require 'scripts.b'
            local c = require"c"
            -- require("commented")
            --[[ require("long comment") ]]
            local s = "require('in a string')"
            local t = [==[ require("long string") ]==]
            local d = require("d" .. suffix)
            local e = x.require("method")
            local f = require(name)
            local g = require ( "g" )
            local h = require("string")
        "#;
        assert_eq!(
            literal_requires(source),
            ["scripts/a", "scripts.b", "c", "g"]
        );
    }
}
