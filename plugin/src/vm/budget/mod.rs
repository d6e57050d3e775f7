//! The instruction budget: a callback that runs away (`while true do end`) is stopped with an
//! error, and `pcall` in the script cannot swallow it.
//!
//! Lua counts instructions with a count hook, and while one is set (Lua 5.4 and LuaJIT) the VM
//! traps into it on every instruction: about 12 instructions of overhead per VM instruction,
//! a fifth of a typical `on_update`. So on Linux callbacks run with no hook at all, and the
//! watchdog (`watchdog.rs`) sets it, from a signal handler as `lua.c` does for Ctrl-C, on a
//! callback it sees still running after a few milliseconds; from then on the budget is
//! counted. Coroutines are hooked from their creation: the signal can only reach the main
//! state. Elsewhere, or if no signal is free, the hook is set all the time.

use std::cell::Cell;
use std::fmt;

/// How the instruction budget starts counting a long callback (a field of
/// [`LuaScriptingPlugin`](crate::LuaScriptingPlugin)).
///
/// ```
/// use bevy_lunar::{BudgetWatchdog, LuaScriptingPlugin};
///
/// // A game whose own code uses the first free real-time signal picks another one:
/// let plugin = LuaScriptingPlugin {
///     watchdog: BudgetWatchdog::Signal(40),
///     ..Default::default()
/// };
/// # let _ = plugin;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BudgetWatchdog {
    /// Linux: a watchdog thread sets the count hook, with the first real-time signal nobody
    /// handles, on a callback running for 5 to 10 ms; behaving callbacks run without a hook.
    /// Elsewhere, as `Off`.
    #[default]
    Auto,
    /// As `Auto`, with this signal (it must be unhandled when the first Lua state starts; the
    /// first state's choice holds for the process).
    Signal(i32),
    /// No watchdog: the hook is set all the time (every callback pays for it, about 12 native
    /// instructions per VM instruction).
    Off,
}

/// The start of the error a long callback gets when the Lua state nears its memory limit.
pub(crate) const MEMORY_MESSAGE: &str = "not enough memory";

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

/// The budget of the callback running now.
struct Counter {
    limit: u64,
    /// Instructions left; `i64::MAX` while no callback runs.
    remaining: Cell<i64>,
    exceeded: Cell<bool>,
}

impl Counter {
    fn new(limit: u64) -> Self {
        Counter {
            limit,
            remaining: Cell::new(i64::MAX),
            exceeded: Cell::new(false),
        }
    }

    fn start(&self) {
        self.remaining.set(self.limit.min(i64::MAX as u64) as i64);
    }

    fn stop(&self) {
        self.remaining.set(i64::MAX);
        self.exceeded.set(false);
    }

    /// Counts `cost` instructions: false once past the budget, and at every check after it.
    fn spend(&self, cost: u64) -> bool {
        if self.exceeded.get() {
            return false;
        }
        let cost = i64::try_from(cost).unwrap_or(i64::MAX);
        let remaining = self.remaining.get().saturating_sub(cost);
        self.remaining.set(remaining);
        if remaining < 0 {
            self.exceeded.set(true);
        }
        remaining >= 0
    }
}

/// What the plugin's own Rust functions charge to the budget ([`charge`]), in VM instructions of
/// about the same time (a VM instruction takes a few nanoseconds). A loop calling them is
/// stopped about as soon as a loop of plain Lua; cheap calls (field access) charge nothing.
pub(crate) mod cost {
    /// `world.spawn`, `entity:insert/remove/despawn`: a structural change of the world.
    pub(crate) const STRUCTURAL: u64 = 500;
    /// `world.query`: building the query...
    pub(crate) const QUERY: u64 = 1_000;
    /// ...and each entity it found (collected, then one handle per step of the loop).
    pub(crate) const QUERY_ENTITY: u64 = 8;
    /// `world.entity`, `world.resource`, `entity:has`, `world.send`: one lookup.
    pub(crate) const LOOKUP: u64 = 100;
}

#[cfg(not(feature = "luau"))]
pub(crate) use hooked::{Budget, charge, run_nested};
#[cfg(feature = "luau")]
pub(crate) use interrupt::{Budget, charge, run_nested};

/// Lua 5.4 and LuaJIT: a count hook of our own, in C ABI, on the main state (always, or armed by
/// the watchdog) and on every coroutine.
#[cfg(not(feature = "luau"))]
mod hooked {
    use std::cell::Cell;
    use std::ffi::c_int;
    use std::ptr;
    use std::time::Duration;

    use mlua::{Lua, Thread, ffi};

    use super::{BudgetExceeded, BudgetWatchdog, Counter};

    /// How often the hook runs, in VM instructions, at most...
    const HOOK_PERIOD: c_int = 1000;
    /// ...and about how often in time, when instructions are slow.
    const HOOK_INTERVAL: Duration = Duration::from_millis(1);

    /// How deep calls may nest in a callback the hook watches. Lua's own limit is about
    /// 200,000 calls (a million stack slots), and the traceback of an error at that depth takes
    /// seconds to build (each level is found by walking down from the top); the hook stops a
    /// runaway recursion long before.
    const MAX_DEPTH: c_int = 20_000;
    const DEPTH_MESSAGE: &str = "stack overflow (more than 20000 nested calls)";

    thread_local! {
        /// The budget whose callback runs on this thread now: what the hook counts against.
        static RUNNING: Cell<*const Budget> = const { Cell::new(ptr::null()) };
    }

    /// The instruction budget of one Lua state.
    pub(crate) struct Budget {
        counter: Counter,
        /// The main state.
        main: *mut ffi::lua_State,
        /// The state (main, or a thread) the callback running now runs on: what the watchdog
        /// arms. Read by the signal handler on this thread.
        state: Cell<*mut ffi::lua_State>,
        /// The error the hook raises past the budget.
        message: String,
        /// Past this many KiB of Lua memory the hook raises [`MEMORY_MESSAGE`] (0: never): a
        /// callback that runs long enough to be hooked and hoards memory is stopped with its
        /// line, where running into the allocator's hard limit gives none.
        memory_soft_limit_kib: c_int,
        /// The error the hook raises past `memory_soft_limit_kib`.
        memory_message: String,
        /// The time backstop: a hooked callback running longer than this (processor time) is
        /// stopped, however few instructions it ran. One VM instruction or C function can take
        /// milliseconds (`..` or `<` of 100 MB strings, `string.upper` of one), which the
        /// count cannot see; between two hook calls there is at most one such step, as the
        /// hook shortens its period when instructions are slow.
        time_limit: Duration,
        /// The error the hook raises past `time_limit`.
        time_message: String,
        /// When the hook first and last ran in the current callback.
        first_hook: Cell<Option<Duration>>,
        last_hook: Cell<Option<Duration>>,
        /// Hook calls so far (wrapping): when to check the depth.
        hooks: Cell<u32>,
        #[cfg(target_os = "linux")]
        pub(super) watch: Option<super::watchdog::Watch>,
        /// The hook is set all the time: no watchdog, or it could not arm this state.
        hooked_always: Cell<bool>,
        /// Notes the line of an allocation the memory limit refuses (Lua 5.4). Owned by the
        /// Lua state (its app data, dropped after the state closes, which still allocates).
        #[cfg(all(feature = "lua54", target_pointer_width = "64"))]
        allocator: Option<std::ptr::NonNull<super::allocator::AllocatorWatch>>,
    }

    /// The state the callback running on this thread runs on, if one runs.
    #[cfg(all(feature = "lua54", target_pointer_width = "64"))]
    pub(super) fn running_state() -> Option<*mut ffi::lua_State> {
        let budget = RUNNING.get();
        // SAFETY: `RUNNING` points to the budget of the callback running on this thread (set
        // and cleared by `Running`), alive while it runs.
        (!budget.is_null()).then(|| unsafe { &*budget }.state.get())
    }

    impl Budget {
        /// Boxed: the hook and the watchdog's signal handler reach it by address.
        pub(crate) fn install(
            lua: &Lua,
            limit: u64,
            memory_soft_limit: usize,
            watchdog: BudgetWatchdog,
        ) -> mlua::Result<Box<Budget>> {
            let state = lua.exec_raw_lua(|raw| raw.state());
            #[cfg(target_os = "linux")]
            let watch = super::watchdog::Watch::new(watchdog);
            #[cfg(not(target_os = "linux"))]
            let _ = watchdog;
            let budget = Box::new(Budget {
                counter: Counter::new(limit),
                main: state,
                state: Cell::new(state),
                message: BudgetExceeded { budget: limit }.to_string(),
                memory_soft_limit_kib: c_int::try_from(memory_soft_limit / 1024)
                    .unwrap_or(c_int::MAX),
                memory_message: format!(
                    "{} (the scripts' Lua memory passed {} MiB)",
                    super::MEMORY_MESSAGE,
                    memory_soft_limit / (1024 * 1024)
                ),
                time_limit: time_limit(limit),
                time_message: format!(
                    "{} (the callback ran for over {:.1} s, the time a budget of {limit} instructions allows): the callback was stopped",
                    BudgetExceeded::MESSAGE,
                    time_limit(limit).as_secs_f64()
                ),
                first_hook: Cell::new(None),
                last_hook: Cell::new(None),
                hooks: Cell::new(0),
                #[cfg(target_os = "linux")]
                hooked_always: Cell::new(watch.is_none()),
                #[cfg(not(target_os = "linux"))]
                hooked_always: Cell::new(true),
                #[cfg(target_os = "linux")]
                watch,
                // SAFETY: `state` is the main state of `lua`, alive, and no Lua code runs now.
                #[cfg(all(feature = "lua54", target_pointer_width = "64"))]
                allocator: unsafe { super::allocator::AllocatorWatch::install(lua, state) },
            });
            if budget.watched() {
                hook_new_coroutines(lua)?;
            } else {
                // SAFETY: `state` is the main state of `lua`, alive, and no Lua code runs now.
                unsafe { set_hook(state, HOOK_PERIOD) };
            }
            Ok(budget)
        }

        pub(super) fn watched(&self) -> bool {
            !self.hooked_always.get()
        }

        /// From now on the hook is set all the time: the watchdog cannot arm this state.
        fn hook_always(&self) {
            if self.watched() {
                self.hooked_always.set(true);
                bevy::log::warn!(
                    "bevy_lunar: the budget's watchdog signal cannot reach the scripts' thread (blocked, or taken by another library): the instruction hook stays set, which slows scripts down"
                );
                // SAFETY: the main state of this budget, and no Lua code runs now (between
                // callbacks). Callback threads are hooked as each callback starts.
                unsafe { set_hook(self.main, HOOK_PERIOD) };
            }
        }

        /// Between frames: falls back to the hook set all the time if the watchdog's signal
        /// can no longer reach this thread (see `watchdog.rs`).
        pub(crate) fn check_watchdog(&self) {
            #[cfg(target_os = "linux")]
            if let Some(watch) = &self.watch
                && self.watched()
                && (watch.unarmable() || !watch.deliverable())
            {
                self.hook_always();
            }
        }

        /// Runs `f` (which calls into Lua on the main state) with the budget counting. Not
        /// reentrant: a nested call runs within the outer one's budget.
        pub(crate) fn run<R>(&self, f: impl FnOnce() -> R) -> R {
            self.run_on(self.main, f)
        }

        /// As [`Budget::run`], for a callback that runs on `state` (a thread of this budget's
        /// Lua, resumed by `f`). Nested in a running callback, `state` is hooked from now on, as
        /// the coroutines scripts make: the watchdog arms only the outer callback's state.
        pub(crate) fn run_on<R>(&self, state: *mut ffi::lua_State, f: impl FnOnce() -> R) -> R {
            if RUNNING.get() == ptr::from_ref(self) {
                return run_nested(state, f);
            }
            let _running = Running::start(self, state);
            f()
        }

        /// Where the last allocation the memory limit refused was asked for (`chunk:line`),
        /// since the last call: the line of a memory error out of a call on the main state,
        /// whose frames are gone by then.
        pub(crate) fn take_memory_refusal(&self) -> Option<String> {
            #[cfg(all(feature = "lua54", target_pointer_width = "64"))]
            if let Some(allocator) = self.allocator {
                // SAFETY: the watch lives as long as the Lua state, which is alive while its
                // callbacks run and are reported.
                return unsafe { allocator.as_ref() }.take_refusal();
            }
            None
        }

        /// Bytes the Lua state has allocated: the allocator watch's count, else mlua's.
        pub(crate) fn used_memory(&self, lua: &Lua) -> usize {
            #[cfg(all(feature = "lua54", target_pointer_width = "64"))]
            if let Some(allocator) = self.allocator {
                // SAFETY: the watch lives as long as the Lua state, alive here (`lua`).
                return unsafe { allocator.as_ref() }.used_memory();
            }
            lua.used_memory()
        }

        /// Gives the Lua state its own allocator back: before the state is closed (the
        /// allocator watch goes with the budget).
        pub(crate) fn release_allocator(&mut self) {
            #[cfg(all(feature = "lua54", target_pointer_width = "64"))]
            if let Some(allocator) = self.allocator.take() {
                // SAFETY: called while the budget's Lua is alive (the Vm releases before it
                // drops the state), and no Lua code runs between callbacks.
                unsafe { allocator.as_ref().uninstall() };
            }
        }

        /// The errors the hook raises: raised from a hook, they reach `xpcall` message handlers
        /// with hooks off, which the sandbox must skip.
        pub(crate) fn hook_messages(&self) -> Vec<&str> {
            vec![
                &self.message,
                &self.time_message,
                &self.memory_message,
                DEPTH_MESSAGE,
            ]
        }

        /// Armed by the watchdog's signal handler; see `watchdog.rs` for why this is allowed.
        #[cfg(target_os = "linux")]
        pub(super) fn arm(&self) {
            // SAFETY: called on the thread running this budget's callback (checked by the
            // handler), on the state it runs on, alive while it runs. Period 1: the hook finds
            // how slow instructions are and lengthens it.
            unsafe { set_hook(self.state.get(), 1) };
            if let Some(watch) = &self.watch {
                watch.acknowledge();
            }
        }
    }

    /// A callback running: the budget is counted until it is dropped (panics included).
    struct Running<'a> {
        budget: &'a Budget,
        previous: *const Budget,
        /// The state the callback runs on, and the budget's state before it.
        state: *mut ffi::lua_State,
        previous_state: *mut ffi::lua_State,
        /// Registered with the watchdog, and the budget armable on this thread before.
        #[cfg(target_os = "linux")]
        watched: Option<*mut Budget>,
    }

    impl<'a> Running<'a> {
        fn start(budget: &'a Budget, state: *mut ffi::lua_State) -> Self {
            let previous_state = budget.state.replace(state);
            budget.counter.start();
            budget.first_hook.set(None);
            budget.last_hook.set(None);
            budget.hooks.set(0);
            if !budget.watched() {
                // SAFETY: a live state of this budget's Lua, and no Lua code runs on it now.
                // Period 1, as when the watchdog arms it.
                unsafe { set_hook(state, 1) };
            } else {
                // SAFETY: as above. A thread that last ran nested in another callback was hooked
                // then: with the watchdog, callbacks start with no hook.
                #[cfg(target_os = "linux")]
                unsafe {
                    if ffi::lua_gethook(state).is_some() {
                        remove_hook(state);
                    }
                }
            }
            let previous = RUNNING.replace(budget);
            #[cfg(target_os = "linux")]
            let watched = match &budget.watch {
                Some(watch) if budget.watched() => Some(watch.start(budget)),
                _ => None,
            };
            Running {
                budget,
                previous,
                state,
                previous_state,
                #[cfg(target_os = "linux")]
                watched,
            }
        }
    }

    impl Drop for Running<'_> {
        fn drop(&mut self) {
            let budget = self.budget;
            let exceeded = budget.counter.exceeded.get();
            #[cfg(target_os = "linux")]
            if let (Some(watch), Some(outer)) = (&budget.watch, self.watched) {
                // Armed by the watchdog, or firing on every instruction after the budget ran
                // out in a coroutine.
                if watch.stop(outer) || exceeded {
                    // SAFETY: the state the callback ran on, and no Lua code runs on it now.
                    unsafe { remove_hook(self.state) };
                }
            }
            if !budget.watched() && exceeded {
                // Back from firing on every instruction.
                // SAFETY: as above.
                unsafe { set_hook(self.state, HOOK_PERIOD) };
            }
            budget.counter.stop();
            budget.state.set(self.previous_state);
            RUNNING.set(self.previous);
        }
    }

    /// Runs `f`, which resumes `state` (a thread of the Lua whose callback runs now) inside the
    /// running callback, within its budget: `state` is hooked from now on, as the coroutines
    /// scripts make (the watchdog arms only the callback's own state).
    pub(crate) fn run_nested<R>(state: *mut ffi::lua_State, f: impl FnOnce() -> R) -> R {
        let budget = RUNNING.get();
        // SAFETY: `RUNNING` points to the budget of the callback running on this thread (set
        // and cleared by `Running`), alive while it runs.
        if !budget.is_null() && state != unsafe { &*budget }.state.get() {
            // SAFETY: a live thread of the running callback's Lua, on the thread running it; it
            // does not run now (about to be resumed).
            unsafe { set_hook(state, HOOK_PERIOD) };
        }
        f()
    }

    /// SAFETY: `state` must be a live Lua state, and this either on the thread running it or
    /// in a signal handler interrupting that thread (`lua_sethook` allows both).
    unsafe fn set_hook(state: *mut ffi::lua_State, period: c_int) {
        // SAFETY: per the caller.
        unsafe { ffi::lua_sethook(state, Some(budget_hook), ffi::LUA_MASKCOUNT, period) };
    }

    /// SAFETY: as [`set_hook`].
    #[cfg(target_os = "linux")]
    unsafe fn remove_hook(state: *mut ffi::lua_State) {
        // SAFETY: per the caller.
        unsafe { ffi::lua_sethook(state, None, 0, 0) };
    }

    /// Charges `cost` instructions of work done outside the VM (a C or Rust function the script
    /// called, which the count hook cannot see) to the callback running now. Past the budget it
    /// fails with [`BudgetExceeded`], and the hook fires on the next instruction and every one
    /// after, as when the hook itself finds the budget spent: `pcall` cannot swallow it.
    /// Outside any callback it charges nothing.
    pub(crate) fn charge(cost: u64) -> mlua::Result<()> {
        let budget = RUNNING.get();
        if budget.is_null() {
            return Ok(());
        }
        // SAFETY: `RUNNING` points to the budget of the callback running on this thread (set
        // and cleared by `Running`), alive while it runs.
        let budget = unsafe { &*budget };
        if budget.counter.spend(cost) {
            return Ok(());
        }
        // SAFETY: the state the running callback runs on, on the thread running it; no Lua code
        // runs while this Rust function does.
        unsafe { set_hook(budget.state.get(), 1) };
        Err(mlua::Error::external(BudgetExceeded {
            budget: budget.counter.limit,
        }))
    }

    /// The count hook. Past the budget it raises `instruction budget exceeded` (the runtime
    /// finds the script's line in the traceback) and fires again on every instruction, here
    /// and on the main state, until the callback returns: a `pcall` or `coroutine.resume` in
    /// the script cannot swallow the error.
    unsafe extern "C-unwind" fn budget_hook(state: *mut ffi::lua_State, _: *mut ffi::lua_Debug) {
        let budget = RUNNING.get();
        if budget.is_null() {
            return; // a coroutine resumed outside any callback
        }
        // SAFETY: `RUNNING` points to the budget of the callback running on this thread (set
        // and cleared by `Running`), whose main state runs it; Lua passes its own live `state`.
        unsafe {
            let budget = &*budget;
            let period = ffi::lua_gethookcount(state);
            let message = if budget.counter.spend(period as u64) {
                match budget.check(state, period) {
                    Some(message) => message,
                    None => return,
                }
            } else {
                budget.fire_every_instruction(state, period);
                &budget.message
            };
            // Raising from a hook is allowed (`lua.c` does); it leaves this frame through Lua's
            // error handling, and nothing here needs dropping.
            ffi::lua_pushlstring(state, message.as_ptr().cast(), message.len());
            ffi::lua_error(state);
        }
    }

    impl Budget {
        /// The hook's checks within the budget: the error to raise, if any (too deep, past the
        /// memory's soft limit, past the time limit); else the next period is set.
        ///
        /// SAFETY: called by the hook, with the live `state` it runs on and its `period`.
        unsafe fn check(&self, state: *mut ffi::lua_State, period: c_int) -> Option<&str> {
            // `lua_getstack` walks down from the top, at most as deep as the stack is: a few
            // steps for a behaving callback, up to `MAX_DEPTH` for a deep one. At the first call
            // in a callback and every 64th, and at every call of the full period: a recursion
            // gains a few levels between two checks.
            let hooks = self.hooks.get().wrapping_add(1);
            self.hooks.set(hooks);
            // SAFETY (this block): `state` is live and running this hook, per the caller.
            unsafe {
                let mut frame: ffi::lua_Debug = std::mem::zeroed();
                if (period >= 100 || hooks % 64 == 1)
                    && ffi::lua_getstack(state, MAX_DEPTH, &mut frame) != 0
                {
                    return Some(DEPTH_MESSAGE);
                }
                if self.memory_soft_limit_kib > 0
                    && ffi::lua_gc(state, ffi::LUA_GCCOUNT, 0) > self.memory_soft_limit_kib
                {
                    return Some(&self.memory_message);
                }
            }
            let now = cpu_time();
            let next = match (self.first_hook.get(), self.last_hook.get()) {
                (Some(first), Some(last)) => {
                    if now.saturating_sub(first) > self.time_limit {
                        // As past the instruction count: no `pcall` swallows it.
                        self.counter.exceeded.set(true);
                        // SAFETY: as above.
                        unsafe { self.fire_every_instruction(state, period) };
                        return Some(&self.time_message);
                    }
                    next_period(period, now.saturating_sub(last))
                }
                _ => {
                    self.first_hook.set(Some(now));
                    next_period(period, Duration::ZERO)
                }
            };
            self.last_hook.set(Some(now));
            // `lua_sethook` walks the whole call stack: only on a real change.
            if next != period {
                // SAFETY: as above.
                unsafe { set_hook(state, next) };
            }
            None
        }

        /// Past the budget: the hook fires on every instruction, here and on the callback's
        /// state, until the callback returns.
        ///
        /// SAFETY: called by the hook, with the live `state` it runs on and its `period`.
        unsafe fn fire_every_instruction(&self, state: *mut ffi::lua_State, period: c_int) {
            if period != 1 {
                // SAFETY: `state` per the caller; the callback's state is alive while it runs.
                unsafe {
                    set_hook(state, 1);
                    set_hook(self.state.get(), 1);
                }
            }
        }
    }

    /// The next hook period, a power of ten from 1 to [`HOOK_PERIOD`], given that the last
    /// `period` instructions took `took`: ten times longer when they took under a tenth of
    /// [`HOOK_INTERVAL`], ten times shorter when over ten times it (once instructions are
    /// slow, a hook call comes about every interval), else the same.
    fn next_period(period: c_int, took: Duration) -> c_int {
        if took < HOOK_INTERVAL / 10 {
            period.saturating_mul(10).min(HOOK_PERIOD)
        } else if took > HOOK_INTERVAL * 10 {
            (period / 10).max(1)
        } else {
            period
        }
    }

    /// The processor time this thread has run: time the callback spent descheduled (on a
    /// busy machine) does not count against it.
    #[cfg(target_os = "linux")]
    fn cpu_time() -> Duration {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: writes the given timespec; the thread CPU clock exists on Linux.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
        Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
    }

    /// Elsewhere, monotonic wall-clock time.
    #[cfg(not(target_os = "linux"))]
    fn cpu_time() -> Duration {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    }

    /// The processor time a budget of `limit` instructions allows: 100 ns an instruction (a
    /// VM instruction takes a few), at least a second.
    fn time_limit(limit: u64) -> Duration {
        Duration::from_nanos(limit.saturating_mul(100)).max(Duration::from_secs(1))
    }

    /// With the watchdog, the main state has no hook normally, and a coroutine would not
    /// inherit one: `coroutine.create` and `coroutine.wrap` hook the coroutines they make.
    fn hook_new_coroutines(lua: &Lua) -> mlua::Result<()> {
        let hook_thread = lua.create_function(|lua, thread: Thread| {
            // SAFETY: the thread is on the stack while `f` runs; hooking it from this thread,
            // which runs Lua, is what `lua_sethook` is for.
            unsafe {
                lua.exec_raw::<()>(&thread, |state| {
                    set_hook(ffi::lua_tothread(state, -1), HOOK_PERIOD);
                })?;
            }
            Ok(thread)
        })?;
        lua.load(
            r#"
            local hook_thread, lib, error = ..., coroutine, error
            if not lib then return end
            local create, resume, close = lib.create, lib.resume, lib.close
            lib.create = function(f) return hook_thread(create(f)) end
            -- As Lua's own wrap: errors propagate as they are, and close the coroutine.
            local function results(co, ok, ...)
                if ok then return ... end
                if close then close(co) end
                error((...), 0)
            end
            lib.wrap = function(f)
                local co = hook_thread(create(f))
                return function(...) return results(co, resume(co, ...)) end
            end
            "#,
        )
        .set_name("=[bevy_lunar budget]")
        .call::<()>(hook_thread)
    }
}

/// Luau has no instruction hook; its interrupt runs at calls and loop back-edges, and each one
/// counts as one instruction against the budget.
#[cfg(feature = "luau")]
mod interrupt {
    use std::cell::RefCell;
    use std::rc::Rc;

    use mlua::{Lua, VmState};

    use super::{BudgetExceeded, Counter};

    pub(crate) struct Budget(Rc<Counter>);

    thread_local! {
        /// The counter of the callback running on this thread now.
        static RUNNING: RefCell<Option<Rc<Counter>>> = const { RefCell::new(None) };
    }

    /// As the hooked backends' `charge`: the interrupt then stops the callback at its next call
    /// or loop.
    pub(crate) fn charge(cost: u64) -> mlua::Result<()> {
        RUNNING.with_borrow(|running| match running {
            Some(counter) if !counter.spend(cost) => Err(mlua::Error::external(BudgetExceeded {
                budget: counter.limit,
            })),
            _ => Ok(()),
        })
    }

    /// As the hooked backends' `run_nested`: the interrupt counts every thread.
    pub(crate) fn run_nested<R>(_: *mut mlua::ffi::lua_State, f: impl FnOnce() -> R) -> R {
        f()
    }

    impl Budget {
        pub(crate) fn install(
            lua: &Lua,
            limit: u64,
            _: usize,
            _: super::BudgetWatchdog,
        ) -> mlua::Result<Box<Budget>> {
            let counter = Rc::new(Counter::new(limit));
            let counted = Rc::clone(&counter);
            lua.set_interrupt(move |_| {
                if counted.spend(1) {
                    Ok(VmState::Continue)
                } else {
                    Err(mlua::Error::external(BudgetExceeded {
                        budget: counted.limit,
                    }))
                }
            });
            Ok(Box::new(Budget(counter)))
        }

        pub(crate) fn check_watchdog(&self) {}

        /// Luau's memory errors keep no line.
        pub(crate) fn take_memory_refusal(&self) -> Option<String> {
            None
        }

        pub(crate) fn release_allocator(&mut self) {}

        pub(crate) fn used_memory(&self, lua: &Lua) -> usize {
            lua.used_memory()
        }

        pub(crate) fn run_on<R>(&self, _: *mut mlua::ffi::lua_State, f: impl FnOnce() -> R) -> R {
            self.run(f)
        }

        /// Luau's interrupt raises ordinary errors, which handlers see with the interrupt on.
        pub(crate) fn hook_messages(&self) -> Vec<&str> {
            Vec::new()
        }

        pub(crate) fn run<R>(&self, f: impl FnOnce() -> R) -> R {
            self.0.start();
            let previous = RUNNING.replace(Some(Rc::clone(&self.0)));
            let result = f();
            RUNNING.set(previous);
            self.0.stop();
            result
        }
    }
}

#[cfg(all(target_os = "linux", not(feature = "luau")))]
mod watchdog;

#[cfg(all(feature = "lua54", target_pointer_width = "64"))]
mod allocator;

#[cfg(all(test, not(feature = "luau")))]
mod tests {
    use mlua::{Lua, ffi};

    use super::*;

    /// Whether the state running Lua now has a hook.
    fn hooked(lua: &Lua) -> bool {
        // SAFETY: reads the hook of the live state `exec_raw_lua` hands out.
        lua.exec_raw_lua(|raw| unsafe { ffi::lua_gethook(raw.state()).is_some() })
    }

    #[test]
    fn runaways_are_stopped_and_on_linux_behaving_callbacks_run_unhooked() {
        let lua = Lua::new();
        // As the runtime's sandbox does: LuaJIT's compiled loops would never reach the hook.
        lua.load("if jit then jit.off() end").exec().unwrap();
        let budget = Budget::install(&lua, 100_000, 0, BudgetWatchdog::Auto).unwrap();
        let probe = lua.create_function(|lua, ()| Ok(hooked(lua))).unwrap();
        let hooked_while_running = budget.run(|| probe.call::<bool>(())).unwrap();
        assert_eq!(hooked_while_running, !cfg!(target_os = "linux"));

        let err = budget
            .run(|| {
                lua.load("while true do pcall(function() while true do end end) end")
                    .exec()
            })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("instruction budget exceeded (100000 instructions)"),
            "{err}"
        );
        assert_eq!(
            hooked(&lua),
            !cfg!(target_os = "linux"),
            "hook removed after"
        );

        let sum: i64 = budget
            .run(|| {
                lua.load("local s = 0 for i = 1, 1000 do s = s + i end return s")
                    .eval()
            })
            .unwrap();
        assert_eq!(sum, 500_500, "the next callback has its whole budget");
    }

    #[test]
    fn with_the_watchdog_off_the_hook_is_always_set() {
        let lua = Lua::new();
        lua.load("if jit then jit.off() end").exec().unwrap();
        let budget = Budget::install(&lua, 100_000, 0, BudgetWatchdog::Off).unwrap();
        let probe = lua.create_function(|lua, ()| Ok(hooked(lua))).unwrap();
        assert!(budget.run(|| probe.call::<bool>(())).unwrap());
        let err = budget
            .run(|| lua.load("while true do end").exec())
            .unwrap_err();
        assert!(err.to_string().contains(BudgetExceeded::MESSAGE), "{err}");
    }

    /// Blocks (or unblocks) every real-time signal on this thread.
    #[cfg(target_os = "linux")]
    fn block_realtime_signals(block: bool) {
        // SAFETY: `pthread_sigmask` on this thread with a set built here.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for signal in libc::SIGRTMIN()..=libc::SIGRTMAX() {
                libc::sigaddset(&mut set, signal);
            }
            let how = if block {
                libc::SIG_BLOCK
            } else {
                libc::SIG_UNBLOCK
            };
            libc::pthread_sigmask(how, &set, std::ptr::null_mut());
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_blocked_signal_falls_back_to_the_hook_set_always() {
        let lua = Lua::new();
        lua.load("if jit then jit.off() end").exec().unwrap();
        let budget = Budget::install(&lua, 1_000_000_000_000, 0, BudgetWatchdog::Auto).unwrap();
        if !budget.watched() {
            return; // no free signal on this machine: nothing to fall back from
        }
        block_realtime_signals(true);
        // A long callback (1.5 s of wall-clock time, 15 times the 100 ms the watchdog waits for
        // an acknowledgement) the watchdog signals in vain: unacknowledged, the state is marked.
        let start = std::time::Instant::now();
        let elapsed = lua
            .create_function(move |_, ()| Ok(start.elapsed().as_secs_f64()))
            .unwrap();
        lua.globals().set("elapsed", elapsed).unwrap();
        budget
            .run(|| lua.load("while elapsed() < 1.5 do end").exec())
            .unwrap();
        let watch = budget.watch.as_ref().unwrap();
        assert!(watch.unarmable(), "the missing acknowledgement was noticed");
        assert!(!watch.deliverable(), "the blocked signal was noticed");
        // Between frames the runtime asks; from then on the hook is always set, and a runaway
        // is stopped although no signal can arrive.
        budget.check_watchdog();
        assert!(!budget.watched());
        let limited = Budget::install(&lua, 100_000, 0, BudgetWatchdog::Auto).unwrap();
        limited.check_watchdog();
        let err = limited
            .run(|| lua.load("while true do end").exec())
            .unwrap_err();
        block_realtime_signals(false);
        assert!(err.to_string().contains(BudgetExceeded::MESSAGE), "{err}");
    }
}
