//! The Lua state scripts run in: libraries, sandbox, memory limit and instruction budget.

use bevy::log::info;
use mlua::{Function, Lua, LuaOptions, StdLib, Value};

use crate::budget::Budget;

/// Limits and libraries of the Lua state (see [`LuaScriptingPlugin`](crate::LuaScriptingPlugin)).
#[derive(Clone, Debug)]
pub(crate) struct VmSettings {
    pub instruction_budget: u64,
    pub memory_limit: usize,
    pub extra_std_libs: StdLib,
}

/// The Lua state, with the instruction budget of the callback running now.
pub(crate) struct Vm {
    pub lua: Lua,
    /// The metatable of every instance environment: reads fall back to the shared globals.
    pub env_metatable: mlua::Table,
    budget: Box<Budget>,
}

impl Vm {
    pub(crate) fn new(settings: &VmSettings) -> mlua::Result<Self> {
        let lua = Lua::new_with(base_libs() | settings.extra_std_libs, LuaOptions::default())?;
        sandbox(&lua, settings.extra_std_libs.contains(StdLib::OS))?;
        match lua.set_memory_limit(settings.memory_limit) {
            // LuaJIT on 64-bit systems uses its own allocator: no limit can be set.
            Err(mlua::Error::MemoryControlNotAvailable) => {
                bevy::log::warn!("bevy_lunar: this Lua backend has no memory limit")
            }
            other => {
                other?;
            }
        }
        let budget = Budget::install(&lua, settings.instruction_budget)?;
        let env_metatable = lua.create_table()?;
        env_metatable.raw_set("__index", lua.globals())?;
        Ok(Vm {
            lua,
            env_metatable,
            budget,
        })
    }

    /// Runs `f` (a call into Lua) within the instruction budget of one callback.
    pub(crate) fn budgeted<R>(&self, f: impl FnOnce() -> mlua::Result<R>) -> mlua::Result<R> {
        self.budget.run(f)
    }
}

/// The libraries every script has (before the sandbox trims them).
fn base_libs() -> StdLib {
    let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::OS;
    #[cfg(feature = "lua54")]
    let libs = libs | StdLib::COROUTINE | StdLib::UTF8;
    // Opened only to turn the JIT compiler off: compiled loops skip the budget hook.
    #[cfg(feature = "luajit")]
    let libs = libs | StdLib::JIT;
    libs
}

/// Removes what a game script must not reach: files, the debug library, binary chunks, and all
/// of `os` but `clock`, `time` and `date` (unless the game opted into the full `os`).
fn sandbox(lua: &Lua, keep_os: bool) -> mlua::Result<()> {
    lua.load(
        r#"
        local load, type, sub, error = load, type, string.sub, error
        -- Text chunks only: mode "t", and an explicit check for backends that ignore the mode.
        _G.load = function(chunk, name, mode, env)
            if type(chunk) == "string" and sub(chunk, 1, 1) == "\27" then
                return nil, "attempt to load a binary chunk (only text chunks are allowed)"
            elseif type(chunk) == "function" then
                local reader, first = chunk, true
                chunk = function()
                    local piece = reader()
                    if first and type(piece) == "string" and piece ~= "" then
                        first = false
                        if sub(piece, 1, 1) == "\27" then
                            error("attempt to load a binary chunk (only text chunks are allowed)")
                        end
                    end
                    return piece
                end
            end
            return load(chunk, name, "t", env)
        end
        loadstring = nil
        dofile, loadfile = nil, nil
        if jit then jit.off(); jit = nil end
        -- The collector is shared by every script: one may ask for a collection or the memory
        -- in use, not stop the collector or retune it for all.
        local collectgarbage, allowed = collectgarbage, { collect = true, count = true, step = true }
        _G.collectgarbage = function(option, ...)
            if option == nil or allowed[option] then return collectgarbage(option, ...) end
            error("collectgarbage(\"" .. tostring(option) .. "\") is not available to scripts: the collector is shared by every script (\"collect\", \"count\" and \"step\" are)", 2)
        end
        local keep_os = ...
        if not keep_os then
            local os = os
            _G.os = { clock = os.clock, time = os.time, date = os.date }
        end
        "#,
    )
    .set_name("=[bevy_lunar sandbox]")
    .call::<()>(keep_os)?;
    // Lua's table functions on a live list work as on a table, on every Lua version
    // (`userdata/collection`): `insert` and `remove` through the list's methods, the others on a
    // copy (`sort` writes it back). On tables they are Lua's own.
    lua.load(
        r#"
        local table, type, handler_of = table, type, ...
        local insert, remove, sort, concat = table.insert, table.remove, table.sort, table.concat
        local unpack = table.unpack or unpack
        local function live(t)
            if type(t) == "userdata" then return handler_of(t) end
        end
        table.insert = function(t, ...)
            local handler = live(t)
            if handler then return handler("insert", t, ...) end
            return insert(t, ...)
        end
        table.remove = function(t, ...)
            local handler = live(t)
            if handler then return handler("remove", t, ...) end
            return remove(t, ...)
        end
        table.sort = function(t, ...)
            local handler = live(t)
            if handler then
                local copy = handler("copy", t, "sort")
                sort(copy, ...)
                return handler("assign", t, copy)
            end
            return sort(t, ...)
        end
        table.concat = function(t, ...)
            local handler = live(t)
            if handler then return concat(handler("copy", t, "concat"), ...) end
            return concat(t, ...)
        end
        local function unpack_any(t, ...)
            local handler = live(t)
            if handler then return unpack(handler("copy", t, "unpack"), ...) end
            return unpack(t, ...)
        end
        if table.unpack then table.unpack = unpack_any end
        if _G.unpack then _G.unpack = unpack_any end
        "#,
    )
    .set_name("=[bevy_lunar table]")
    .call::<()>(lua.create_function(crate::userdata::collection::table_functions)?)?;
    lua.globals().set("print", lua.create_function(print)?)
}

/// `print` to Bevy's log, naming the script and line that printed.
fn print(lua: &Lua, values: mlua::Variadic<Value>) -> mlua::Result<()> {
    let tostring: Function = lua.globals().get("tostring")?;
    let parts = values
        .into_iter()
        .map(|v| tostring.call::<String>(v))
        .collect::<mlua::Result<Vec<_>>>()?;
    let place = lua
        .inspect_stack(1, |caller| {
            let source = caller
                .source()
                .source
                .map(|s| s.trim_start_matches('@').to_owned());
            match (source, caller.current_line()) {
                (Some(source), Some(line)) => format!("{source}:{line}"),
                (Some(source), None) => source,
                _ => "lua".to_owned(),
            }
        })
        .unwrap_or_else(|| "lua".to_owned());
    info!(target: "lua", "[{place}] {}", parts.join("\t"));
    Ok(())
}
