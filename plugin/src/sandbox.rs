//! The Lua state scripts run in: libraries, sandbox, memory limit and instruction budget.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;

use bevy::log::{error, info};
#[cfg(not(feature = "luau"))]
use mlua::HookTriggers;
use mlua::{Function, Lua, LuaOptions, StdLib, Value, VmState};

/// The error of a callback stopped by the instruction budget.
#[derive(Debug)]
pub struct BudgetExceeded {
    pub budget: u64,
}

impl BudgetExceeded {
    pub(crate) const MESSAGE: &'static str = "instruction budget exceeded";
}

impl fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} instructions): the callback was stopped",
            Self::MESSAGE,
            self.budget
        )
    }
}

impl std::error::Error for BudgetExceeded {}

/// Limits and libraries of the Lua state (see [`LuaScriptingPlugin`](crate::LuaScriptingPlugin)).
#[derive(Clone, Debug)]
pub(crate) struct VmSettings {
    pub instruction_budget: u64,
    pub memory_limit: usize,
    pub extra_std_libs: StdLib,
}

/// How often the budget hook runs, in VM instructions.
const HOOK_PERIOD: u32 = 1000;

/// The Lua state, with the instruction budget of the callback running now.
pub(crate) struct Vm {
    pub lua: Lua,
    /// The metatable of every instance environment: reads fall back to the shared globals.
    pub env_metatable: mlua::Table,
    budget: Rc<Budget>,
}

struct Budget {
    limit: u64,
    /// Instructions left; `i64::MAX` while no callback runs.
    remaining: Cell<i64>,
    exceeded: Cell<bool>,
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
        let budget = Rc::new(Budget {
            limit: settings.instruction_budget,
            remaining: Cell::new(i64::MAX),
            exceeded: Cell::new(false),
        });
        install_budget_hook(&lua, &budget, HOOK_PERIOD)?;
        let env_metatable = lua.create_table()?;
        env_metatable.raw_set("__index", lua.globals())?;
        Ok(Vm {
            lua,
            env_metatable,
            budget,
        })
    }

    /// Runs `f` with the instruction budget armed.
    pub(crate) fn budgeted<R>(&self, f: impl FnOnce() -> mlua::Result<R>) -> mlua::Result<R> {
        let budget = &self.budget;
        budget
            .remaining
            .set(budget.limit.min(i64::MAX as u64) as i64);
        let result = f();
        budget.remaining.set(i64::MAX);
        if budget.exceeded.replace(false) {
            // Back from firing on every instruction (see `install_budget_hook`).
            if let Err(err) = install_budget_hook(&self.lua, budget, HOOK_PERIOD) {
                error!("bevy_lunar: cannot reset the instruction budget hook: {err}");
            }
        }
        result
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

impl Budget {
    /// Counts `cost` instructions: an error once past the budget, and at every check after it.
    fn spend(&self, cost: u32) -> Result<(), BudgetExceeded> {
        if !self.exceeded.get() {
            let remaining = self.remaining.get().saturating_sub(i64::from(cost));
            self.remaining.set(remaining);
            if remaining >= 0 {
                return Ok(());
            }
            self.exceeded.set(true);
        }
        Err(BudgetExceeded { budget: self.limit })
    }
}

/// Counts instructions every `period`; past the budget, raises an error on every instruction
/// until the callback returns, so that a `pcall` in the script cannot swallow it.
#[cfg(not(feature = "luau"))]
fn install_budget_hook(lua: &Lua, budget: &Rc<Budget>, period: u32) -> mlua::Result<()> {
    let budget = Rc::clone(budget);
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(period),
        move |lua, _debug| {
            budget
                .spend(period)
                .map(|()| VmState::Continue)
                .or_else(|exceeded| {
                    if period != 1 {
                        install_budget_hook(lua, &budget, 1)?;
                    }
                    Err(mlua::Error::external(exceeded))
                })
        },
    )
}

/// Luau has no instruction hook; its interrupt runs at calls and loop back-edges, and each one
/// counts as one instruction against the budget.
#[cfg(feature = "luau")]
fn install_budget_hook(lua: &Lua, budget: &Rc<Budget>, _period: u32) -> mlua::Result<()> {
    let budget = Rc::clone(budget);
    lua.set_interrupt(move |_| {
        budget
            .spend(1)
            .map(|()| VmState::Continue)
            .map_err(mlua::Error::external)
    });
    Ok(())
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
        local keep_os = ...
        if not keep_os then
            local os = os
            _G.os = { clock = os.clock, time = os.time, date = os.date }
        end
        "#,
    )
    .set_name("=[bevy_lunar sandbox]")
    .call::<()>(keep_os)?;
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
