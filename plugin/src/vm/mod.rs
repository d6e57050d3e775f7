//! The Lua state scripts run in: libraries, sandbox, memory limit and instruction budget.
//!
//! Scripts from modders are untrusted, and every instance shares one Lua state. The sandbox
//! (`sandbox.lua`) keeps one script from changing what another sees: the shared tables
//! (libraries, type tables, `world`, `input`, `time`, `_G`, the string metatable) are read-only
//! views, each instance's globals are its own environment, and `load` runs chunks there. It
//! keeps any script from hanging the frame: C functions whose work grows with their arguments
//! charge it to the instruction budget first, the pattern functions are Rust (`strings.rs`) and
//! charge as they go, `__gc` finalizers (which no budget can stop) are refused, and the budget's
//! error skips `xpcall` handlers (which run unhooked after an error raised by a hook).

use bevy::log::info;
use mlua::{Function, Lua, LuaOptions, RegistryKey, StdLib, Table, Value};

use crate::vm::budget::Budget;
use crate::vm::call::RegisteredCall;

pub(crate) mod budget;
mod call;
#[cfg(feature = "lua54")]
pub(crate) mod layout;
pub(crate) mod prefetch;
mod strings;

/// Limits and libraries of the Lua state (see [`LuaScriptingPlugin`](crate::LuaScriptingPlugin)).
#[derive(Clone, Debug)]
pub(crate) struct VmSettings {
    pub instruction_budget: u64,
    pub memory_limit: usize,
    pub extra_std_libs: StdLib,
    pub watchdog: crate::BudgetWatchdog,
}

/// The Lua state, with the instruction budget of the callback running now.
pub(crate) struct Vm {
    pub lua: Lua,
    /// The metatable of every instance environment: reads fall back to the shared globals.
    env_metatable: Table,
    /// `freeze(table, name)`: the read-only view scripts get of a shared table.
    freeze: Function,
    /// `loader(env)`: a `load` whose chunks run in `env` unless given another.
    loader: Function,
    /// An empty table, never written: the environment a cached chunk is left bound to.
    pub unbound: Table,
    /// The threads callbacks run on (weak keys): to scripts they are no coroutines.
    pub callback_threads: Table,
    /// `yield` and `running` as Lua has them, before the sandbox hides the callback threads
    /// (for `wait`, which yields them).
    pub raw_coroutine: Table,
    budget: Box<Budget>,
    /// Calls of registered functions without mlua's wrapping, where available (`call.rs`).
    registered: Option<RegisteredCall>,
}

impl Drop for Vm {
    fn drop(&mut self) {
        // Before the state can close: its allocator watch goes with the budget.
        self.budget.release_allocator();
    }
}

impl Vm {
    pub(crate) fn new(settings: &VmSettings) -> mlua::Result<Self> {
        let lua = Lua::new_with(base_libs() | settings.extra_std_libs, LuaOptions::default())?;
        match lua.set_memory_limit(settings.memory_limit) {
            // LuaJIT on 64-bit systems uses its own allocator: no limit can be set.
            Err(mlua::Error::MemoryControlNotAvailable) => {
                bevy::log::warn!("bevy_lunar: this Lua backend has no memory limit")
            }
            other => {
                other?;
            }
        }
        // Hooked callbacks are stopped, with their line, when the state is within a sixteenth
        // of its limit; the allocator refuses at the limit itself.
        let budget = Budget::install(
            &lua,
            settings.instruction_budget,
            settings.memory_limit - settings.memory_limit / 16,
            settings.watchdog,
        )?;
        strings::install(&lua)?;
        let charge = lua.create_function(|_, cost: f64| crate::vm::budget::charge(cost as u64))?;
        let table_handler = lua.create_function(crate::userdata::collection::table_functions)?;
        let error_text = lua.create_function(|lua, value: Value| match value {
            Value::Error(err) => lua
                .create_string(crate::error::script_text(&err))
                .map(Value::String),
            other => Ok(other),
        })?;
        let raw_coroutine = lua.create_table()?;
        if let Ok(coroutine) = lua.globals().get::<Table>("coroutine") {
            for name in ["yield", "running"] {
                raw_coroutine.raw_set(name, coroutine.get::<Value>(name)?)?;
            }
        }
        let callback_threads = lua.create_table()?;
        callback_threads.set_metatable(Some(lua.create_table_from([("__mode", "k")])?))?;
        let hook_errors = lua.create_table()?;
        for message in budget.hook_messages() {
            hook_errors.raw_set(message, true)?;
        }
        let (freeze, loader, env_metatable) = lua
            .load(include_str!("sandbox.lua"))
            .set_name("=[bevy_lunar sandbox]")
            .call::<(Function, Function, Table)>((
                charge,
                table_handler,
                hook_errors,
                settings.extra_std_libs.contains(StdLib::OS),
                error_text,
                &callback_threads,
            ))?;
        lua.globals()
            .raw_set("print", lua.create_function(print)?)?;
        #[cfg(feature = "lua54")]
        lua.set_warning_function(warn);
        #[cfg(feature = "lua54")]
        if !crate::vm::layout::check(&lua) {
            bevy::log::warn!(
                "bevy_lunar: this Lua's object layout is not the one expected: prefetching and \
                 the lean field access are off"
            );
        }
        let unbound = lua.create_table()?;
        let registered = RegisteredCall::new(&lua);
        let vm = Vm {
            registered,
            unbound,
            callback_threads,
            raw_coroutine,
            lua,
            env_metatable,
            freeze,
            loader,
            budget,
        };
        vm.seal()?;
        Ok(vm)
    }

    /// Between frames: whether the budget's watchdog can still reach this thread.
    pub(crate) fn check_watchdog(&self) {
        self.budget.check_watchdog();
    }

    /// The metatable of every environment: reads fall back to the shared globals.
    pub(crate) fn env_metatable(&self) -> Table {
        self.env_metatable.clone()
    }

    /// Bytes the Lua state has allocated.
    #[inline]
    pub(crate) fn used_memory(&self) -> usize {
        self.budget.used_memory(&self.lua)
    }

    /// Runs `f` (a call into Lua on the main state) within the instruction budget of one
    /// callback.
    pub(crate) fn budgeted<R>(&self, f: impl FnOnce() -> mlua::Result<R>) -> mlua::Result<R> {
        // A refusal noted before (swallowed by a `pcall`) is not this call's.
        self.budget.take_memory_refusal();
        let result = self.budget.run(f);
        self.locate_memory_error(result)
    }

    /// A memory error out of a call on the main state, with the line the allocator refused at.
    fn locate_memory_error<R>(&self, result: mlua::Result<R>) -> mlua::Result<R> {
        if let Err(mlua::Error::MemoryError(message)) = &result
            && let Some(location) = self.budget.take_memory_refusal()
        {
            // The protected call unwound the frames: the allocator noted where it refused.
            return Err(mlua::Error::MemoryError(format!("{location}: {message}")));
        }
        result
    }

    /// Registers `f` for [`Vm::call_registered`]: `None` where registered calls are not
    /// available (or the registry could not grow), and `f` is called through mlua.
    pub(crate) fn register_call(&self, f: &Function) -> Option<RegistryKey> {
        self.registered.as_ref()?;
        self.lua.create_registry_value(f).ok()
    }

    /// Lets the registry go of the functions whose keys were dropped (instances removed,
    /// reloaded or stopped): until then it keeps them, and all they reach, alive.
    pub(crate) fn release_dropped_calls(&self) {
        self.lua.expire_registry_values();
    }

    /// Calls the function registered under `key` (by [`Vm::register_call`]) with `arg`, as
    /// [`Vm::budgeted`] runs `f.call::<()>(arg)`: within the budget of one callback, with the
    /// same errors, and cheaper.
    pub(crate) fn call_registered(&self, key: &RegistryKey, arg: f64) -> mlua::Result<()> {
        match &self.registered {
            Some(registered) => {
                self.budget.take_memory_refusal();
                let result = self.budget.run(|| registered.call(&self.lua, key, arg));
                self.locate_memory_error(result)
            }
            None => {
                let f: Function = self.lua.registry_value(key)?;
                self.budgeted(|| f.call(arg))
            }
        }
    }

    /// Runs `f`, which resumes `thread`, within the instruction budget of one callback.
    pub(crate) fn budgeted_on<R>(
        &self,
        thread: &mlua::Thread,
        f: impl FnOnce() -> mlua::Result<R>,
    ) -> mlua::Result<R> {
        self.budget.run_on(thread.state(), f)
    }

    /// Makes every table among the shared globals read-only to scripts (libraries, `world`,
    /// type tables): run again after adding globals.
    pub(crate) fn seal(&self) -> mlua::Result<()> {
        let globals = self.lua.globals();
        // With `StdLib::PACKAGE`, `require` returns what `package.loaded` holds: the
        // libraries (and `_G`) as read-only views too.
        if let Ok(Value::Table(package)) = globals.raw_get::<Value>("package")
            && let Ok(Value::Table(loaded)) = package.raw_get::<Value>("loaded")
        {
            self.freeze_entries(&loaded)?;
        }
        // The globals table itself stays writable to Rust (its `_G` is a view already).
        self.freeze_entries(&globals)
    }

    /// Replaces each table under a string key of `table` with its read-only view (a view is
    /// its own view).
    fn freeze_entries(&self, table: &Table) -> mlua::Result<()> {
        let mut shared = Vec::new();
        for pair in table.pairs::<Value, Value>() {
            if let (Value::String(name), Value::Table(entry)) = pair? {
                shared.push((name.to_string_lossy(), entry));
            }
        }
        for (name, entry) in shared {
            let view: Table = self.freeze.call((entry, name.as_str()))?;
            table.raw_set(name, view)?;
        }
        Ok(())
    }

    /// A new instance environment: its own globals, reading the shared ones. With `own_g`,
    /// `_G` is itself (else the shared globals' read-only view); with `own_load`, `load` runs
    /// chunks in it (else each chunk gets a fresh environment).
    pub(crate) fn environment(&self, own_g: bool, own_load: bool) -> mlua::Result<Table> {
        let env = self.lua.create_table()?;
        env.set_metatable(Some(self.env_metatable.clone()))?;
        if own_g {
            env.raw_set("_G", &env)?;
        }
        if own_load {
            env.raw_set("load", self.loader.call::<Function>(&env)?)?;
        }
        Ok(env)
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

/// Lua's warnings (`warn(...)` in a script) go to Bevy's log.
#[cfg(feature = "lua54")]
fn warn(_: &Lua, message: &str, incomplete: bool) -> mlua::Result<()> {
    thread_local! {
        static PIECES: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    PIECES.with_borrow_mut(|pieces| {
        pieces.push_str(message);
        if !incomplete {
            // Control messages (`@on`, `@off`) are Lua's own business.
            if !pieces.starts_with('@') {
                bevy::log::warn!(target: "lua", "{pieces}");
            }
            pieces.clear();
        }
    });
    Ok(())
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
