//! Waiting: callbacks on threads, tasks, and the queues that wake them.
//!
//! Every callback runs on a thread of the scheduler's pool, so that it can wait. `wait(2)`
//! (`tasks.lua`) yields the thread back here with what it waits for; the thread becomes a task
//! of its instance, held in a queue until its condition holds, then resumed before the frame's
//! `on_update`s. Timers are a heap by due time and frame waits a heap by frame: a frame costs
//! nothing per waiting task, only per task due. `wait_until` conditions are checked once a frame
//! each. `after` and `every` hold no thread until they are due (a closure and a queue entry):
//! thousands of idle timers add no threads for the collector to walk.
//!
//! Only callbacks that may wait run on threads: those of scripts whose source names a wait
//! function (`wait`, `wait_frames`, `wait_until`, `wait_for`), where waiting is allowed. The
//! others (most scripts; top-level code, `on_unload`, conditions) are plain protected calls on
//! the main state, as cheap as before waiting existed: a thread's reset and resume cost about a
//! tenth more instructions and twice the cache misses of a call (measured with cachegrind at
//! 10,000 instances). A wait reached there anyway (through a computed name) is refused.
//!
//! Tasks belong to their instance ([`Owner`]): despawning the entity, removing its script, a
//! hot reload or a stop for memory cancels them, which closes their threads (`<close>`
//! variables are closed, under the budget). Each resume runs within the instruction budget of
//! one callback.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use bevy::ecs::entity::Entity;
use bevy::platform::collections::HashMap;
use mlua::{FromLuaMulti, Function, IntoLuaMulti, Lua, MultiValue, Table, Thread, Value};

use crate::vm::Vm;

/// A task: a callback or `task(fn)` that waits.
pub(crate) type TaskId = u64;

/// Whose tasks: an instance, as of one version of its script (a hot reload makes the next
/// generation, so the old version's tasks can be cancelled without the new one's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Owner {
    pub entity: Entity,
    pub generation: u32,
}

/// Whether a callback may wait, and start tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// `on_start`, `on_update`, functions called by messages, tasks.
    Allowed,
    /// A script's top-level code: it may start tasks, not wait itself.
    TopLevel,
    /// `on_unload`: the instance is going away.
    Unload,
    /// A `wait_until` condition, checked every frame.
    Condition,
    /// A callback of a script whose source names no wait function: it runs as a plain call.
    Unused,
}

impl Waiting {
    fn refusal(self) -> Option<&'static str> {
        match self {
            Waiting::Allowed => None,
            Waiting::TopLevel => Some(
                "not available in a script's top-level code (wait in on_start, or in a task started with task(fn))",
            ),
            Waiting::Unload => Some("not available in on_unload (the instance is going away)"),
            Waiting::Condition => Some("not available in a wait_until condition"),
            Waiting::Unused => Some(
                "this callback cannot wait: its script's source names no wait function (waiting is set up for scripts that name wait, wait_frames, wait_until or wait_for, not reached through a computed name)",
            ),
        }
    }

    fn may_start_tasks(self) -> bool {
        matches!(self, Waiting::Allowed | Waiting::TopLevel | Waiting::Unused)
    }
}

/// Where a callback runs: its instance, and whether it may wait.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Context {
    pub owner: Owner,
    pub waiting: Waiting,
}

/// What a callback did.
pub(crate) enum Ran<R> {
    /// It returned these values.
    Done(R),
    /// It waits: it is a task now.
    Waiting(TaskId),
}

/// What a task waits for.
enum Wake {
    /// Game time (`Time`'s elapsed seconds) reaching `due`; `since` is when it started.
    Time {
        due: f64,
        since: f64,
    },
    Frame(u64),
    Until(Function),
    /// The next message (or event) of this name.
    Event(String),
}

/// What runs when a task wakes.
#[derive(Clone)]
enum Body {
    /// A thread suspended in a wait (or running).
    Thread(Thread),
    /// `after(s, f)` before it is due: no thread until then (a waiting timer costs a queue
    /// entry and a closure, not a thread the collector walks every cycle).
    After(Function),
    /// `every(s, f)`: each time it is due, `f` runs as a task of its own.
    Every { f: Function, interval: f64 },
}

struct Task {
    body: Body,
    owner: Owner,
    /// `None` while it runs.
    wake: Option<Wake>,
    /// Which of its waits the queues' entries are for (older entries are stale).
    wait: u64,
    cancelled: bool,
}

/// How deep `task` may nest (a task starting a task, in its first run, and so on): each level
/// is a resume nested in the caller's, on the Rust stack.
const MAX_NESTED_STARTS: u32 = 32;

/// How many tasks may wait at once in one Lua state. Each holds a thread, which mlua keeps on
/// its reference stack: with LuaJIT, creating threads fails with "out of Lua stack" past about
/// 8,000 (measured by `tests/hostile.rs`).
#[cfg(feature = "luajit")]
const MAX_TASKS: usize = 5_000;
#[cfg(not(feature = "luajit"))]
const MAX_TASKS: usize = 200_000;

/// How close to its due time a timer counts as due: game time is a sum of frame times, whose
/// rounding would otherwise make `wait(0.2)` after two frames of 0.1 s wait a third frame
/// depending on when it started (0.30000000000000004 + 0.2 > 0.1 + ... + 0.1).
const TIME_TOLERANCE: f64 = 1e-9;

/// Seconds as a heap key: non-negative floats order as their bits.
fn time_key(seconds: f64) -> u64 {
    seconds.max(0.0).to_bits()
}

/// The scheduler: the callback threads' pool, the tasks and their queues. Shared by the
/// runtime and the Lua functions `task`, `Task:cancel`, `Task:running` (app data of the Lua).
pub(crate) struct Scheduler {
    /// What `wait` yields first: how a waiting thread is told from a returning one.
    marker: Table,
    /// The pool's threads, to mark as callback threads (see the sandbox).
    callback_threads: Table,
    /// Closes a cancelled task's thread: resetting it to this runs its `<close>` variables.
    idle: Function,
    pool: RefCell<Vec<Thread>>,
    tasks: RefCell<HashMap<TaskId, Task>>,
    owned: RefCell<HashMap<Owner, Vec<TaskId>>>,
    next_id: Cell<TaskId>,
    next_wait: Cell<u64>,
    timers: RefCell<BinaryHeap<Reverse<(u64, u64, TaskId)>>>,
    frames: RefCell<BinaryHeap<Reverse<(u64, u64, TaskId)>>>,
    /// Tasks waiting on a condition, and the frame from which it is checked.
    untils: RefCell<Vec<(TaskId, u64, u64)>>,
    /// Tasks waiting for a message, by its name, in the order they started waiting.
    events: RefCell<HashMap<String, Vec<(TaskId, u64)>>>,
    /// Queue entries of tasks gone since the queues were last compacted.
    stale: Cell<usize>,
    /// The callback running now, if any.
    context: Cell<Option<Context>>,
    /// Tasks starting now, one inside the other's first run.
    nested_starts: Cell<u32>,
    frame: Cell<u64>,
    now: Cell<f64>,
    /// Errors of tasks (and of closing them), for the runtime to report.
    errors: RefCell<Vec<(Owner, mlua::Error)>>,
}

impl Scheduler {
    /// The scheduler of `vm`, with `wait`, `task` and the rest among its globals.
    pub(crate) fn install(vm: &Vm) -> mlua::Result<std::rc::Rc<Scheduler>> {
        let lua = &vm.lua;
        let marker = lua.create_table()?;
        let scheduler = std::rc::Rc::new(Scheduler {
            marker: marker.clone(),
            callback_threads: vm.callback_threads.clone(),
            idle: lua.create_function(|_, ()| Ok(()))?,
            pool: RefCell::default(),
            tasks: RefCell::default(),
            owned: RefCell::default(),
            next_id: Cell::new(1),
            next_wait: Cell::new(0),
            timers: RefCell::default(),
            frames: RefCell::default(),
            untils: RefCell::default(),
            events: RefCell::default(),
            stale: Cell::new(0),
            context: Cell::new(None),
            nested_starts: Cell::new(0),
            frame: Cell::new(0),
            now: Cell::new(0.0),
            errors: RefCell::default(),
        });
        lua.set_app_data(std::rc::Rc::clone(&scheduler));
        let start = lua.create_function(|lua, (f, args): (Function, MultiValue)| {
            let scheduler = shared(lua)?;
            scheduler.start(lua, f, args)
        })?;
        let defer =
            lua.create_function(|lua, (f, delay, interval): (Function, f64, Option<f64>)| {
                shared(lua)?.defer(f, delay, interval)
            })?;
        let cancel = lua.create_function(|lua, id: TaskId| {
            let scheduler = shared(lua)?;
            scheduler.cancel(id);
            Ok(())
        })?;
        let running = lua.create_function(|lua, id: TaskId| Ok(shared(lua)?.is_running(id)))?;
        let refusal = lua.create_function(|lua, ()| {
            let context = shared(lua)?.context.get();
            Ok(match context {
                Some(context) => context.waiting.refusal().unwrap_or_default(),
                None => "not available outside a script's callbacks",
            })
        })?;
        lua.load(include_str!("tasks.lua"))
            .set_name("=[bevy_lunar tasks]")
            .call::<()>((
                marker,
                vm.callback_threads.clone(),
                start,
                defer,
                cancel,
                running,
                vm.raw_coroutine.clone(),
                refusal,
            ))?;
        Ok(scheduler)
    }

    /// Runs the callback `f(args)` in `context`: to its end, or to its first wait (then it is
    /// a task). Within the budget of one callback.
    pub(crate) fn call<R: FromLuaMulti>(
        &self,
        vm: &Vm,
        context: Context,
        f: &Function,
        args: impl IntoLuaMulti,
    ) -> mlua::Result<Ran<R>> {
        if context.waiting != Waiting::Allowed {
            // No wait can suspend it: a plain call on the main state.
            return self
                .call_plain(context, || vm.budgeted(|| f.call::<R>(args)))
                .map(Ran::Done);
        }
        let thread = self.thread(&vm.lua, f)?;
        let step = vm.budgeted_on(&thread, || self.resume(context, &thread, args));
        match self.settle(context.owner, thread, None, step)? {
            Ran::Done(values) => R::from_lua_multi(values, &vm.lua).map(Ran::Done),
            Ran::Waiting(id) => Ok(Ran::Waiting(id)),
        }
    }

    /// Runs `call`, a call on the main state that no wait can suspend (its context's waiting is
    /// not [`Waiting::Allowed`]), as a callback of `context`.
    pub(crate) fn call_plain<R>(
        &self,
        context: Context,
        call: impl FnOnce() -> mlua::Result<R>,
    ) -> mlua::Result<R> {
        let previous = self.context.replace(Some(context));
        let result = call();
        self.context.set(previous);
        result
    }

    /// `task(f, ...)` from a script: `f` runs now, nested in the calling callback and within
    /// its budget, until it first waits. Its task id, or nothing once it finished.
    fn start(&self, lua: &Lua, f: Function, args: MultiValue) -> mlua::Result<Option<TaskId>> {
        let context = self.may_start("task")?;
        if self.nested_starts.get() >= MAX_NESTED_STARTS {
            return Err(mlua::Error::runtime(format!(
                "task: tasks nest too deep (a task starting a task before it waits, {MAX_NESTED_STARTS} deep)"
            )));
        }
        let thread = self.thread(lua, &f)?;
        let inner = Context {
            owner: context.owner,
            waiting: Waiting::Allowed,
        };
        self.nested_starts.set(self.nested_starts.get() + 1);
        let step =
            crate::vm::budget::run_nested(thread.state(), || self.resume(inner, &thread, args));
        self.nested_starts.set(self.nested_starts.get() - 1);
        match self.settle(context.owner, thread, None, step) {
            Ok(Ran::Done(_)) => Ok(None),
            Ok(Ran::Waiting(id)) => Ok(Some(id)),
            // The task's own error is reported as such; the caller goes on.
            Err(err) => {
                self.errors.borrow_mut().push((context.owner, err));
                Ok(None)
            }
        }
    }

    /// The calling callback's context, if it may start a task (`what`, named in the refusal):
    /// within the limit of tasks, and charged about a structural change of the world (a
    /// thread or a queue entry).
    fn may_start(&self, what: &str) -> mlua::Result<Context> {
        let Some(context) = self.context.get() else {
            return Err(mlua::Error::runtime(format!(
                "{what}: only a script's callbacks can start tasks"
            )));
        };
        if !context.waiting.may_start_tasks() {
            let refusal = context.waiting.refusal().unwrap_or_default();
            return Err(mlua::Error::runtime(format!("{what}: {refusal}")));
        }
        if self.tasks.borrow().len() >= MAX_TASKS {
            return Err(mlua::Error::runtime(format!(
                "{what}: too many tasks waiting ({MAX_TASKS}, in all scripts)"
            )));
        }
        crate::vm::budget::charge(crate::vm::budget::cost::STRUCTURAL)?;
        Ok(context)
    }

    /// `after(delay, f)` (`interval` is `None`) and `every(interval, f)` (`delay` is the
    /// interval): a task that holds no thread until it is due. Its id.
    fn defer(&self, f: Function, delay: f64, interval: Option<f64>) -> mlua::Result<TaskId> {
        let what = if interval.is_some() { "every" } else { "after" };
        let context = self.may_start(what)?;
        let id = self.new_task(context.owner);
        let now = self.now.get();
        let wake = Wake::Time {
            due: now + delay.max(0.0),
            since: now,
        };
        let body = match interval {
            Some(interval) => Body::Every { f, interval },
            None => Body::After(f),
        };
        let wait = self.enqueue(id, &wake);
        self.tasks.borrow_mut().insert(
            id,
            Task {
                body,
                owner: context.owner,
                wake: Some(wake),
                wait,
                cancelled: false,
            },
        );
        Ok(id)
    }

    /// A new task id, in `owner`'s list.
    fn new_task(&self, owner: Owner) -> TaskId {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.owned.borrow_mut().entry(owner).or_default().push(id);
        id
    }

    /// Queues task `id` until `wake` holds; the number of this wait (queue entries of its
    /// older waits are stale).
    fn enqueue(&self, id: TaskId, wake: &Wake) -> u64 {
        let wait = self.next_wait.get();
        self.next_wait.set(wait + 1);
        match wake {
            Wake::Time { due, .. } => {
                self.timers
                    .borrow_mut()
                    .push(Reverse((time_key(*due), wait, id)))
            }
            Wake::Frame(frame) => self.frames.borrow_mut().push(Reverse((*frame, wait, id))),
            Wake::Until(_) => self
                .untils
                .borrow_mut()
                .push((id, wait, self.frame.get() + 1)),
            Wake::Event(name) => self
                .events
                .borrow_mut()
                .entry(name.clone())
                .or_default()
                .push((id, wait)),
        }
        wait
    }

    /// A pool thread (or a new one) set to run `f`.
    fn thread(&self, lua: &Lua, f: &Function) -> mlua::Result<Thread> {
        let pooled = self.pool.borrow_mut().pop();
        match pooled {
            Some(thread) => {
                thread.reset(f.clone())?;
                Ok(thread)
            }
            None => {
                let thread = lua.create_thread(f.clone())?;
                self.callback_threads.raw_set(&thread, true)?;
                Ok(thread)
            }
        }
    }

    /// Resumes `thread` in `context` (one where waiting is allowed: only those run on
    /// threads), until it returns, fails or waits. What it yielded or returned.
    fn resume(
        &self,
        context: Context,
        thread: &Thread,
        args: impl IntoLuaMulti,
    ) -> mlua::Result<MultiValue> {
        let previous = self.context.replace(Some(context));
        let result = thread.resume::<MultiValue>(args);
        self.context.set(previous);
        if let Err(mlua::Error::MemoryError(message)) = &result
            && let Some(location) = error_location(thread)
        {
            return Err(mlua::Error::MemoryError(format!("{location}: {message}")));
        }
        result
    }

    fn is_wait(&self, values: &MultiValue) -> bool {
        values
            .front()
            .is_some_and(|first| first.to_pointer() == self.marker.to_pointer())
    }

    /// After `thread` ran (as task `id`, or as a callback): the values it returned (the
    /// thread goes back to the pool), or the task it is now that it waits.
    fn settle(
        &self,
        owner: Owner,
        thread: Thread,
        id: Option<TaskId>,
        step: mlua::Result<MultiValue>,
    ) -> mlua::Result<Ran<MultiValue>> {
        let values = match step {
            Ok(values) => values,
            Err(err) => {
                if let Some(id) = id {
                    self.forget(id);
                }
                // A failed thread is reset (closed) before reuse; one that cannot be (LuaJIT
                // resets only finished threads) is left to the collector.
                if thread.reset(self.idle.clone()).is_ok() {
                    self.pool.borrow_mut().push(thread);
                }
                return Err(err);
            }
        };
        if !self.is_wait(&values) {
            if let Some(id) = id {
                self.forget(id);
            }
            self.pool.borrow_mut().push(thread);
            return Ok(Ran::Done(values));
        }
        let wake = match self.wake_of(&values) {
            Ok(wake) => wake,
            Err(err) => {
                // A wait with a bad argument: the thread cannot go on.
                if let Some(id) = id {
                    self.forget(id);
                }
                self.close(owner, thread);
                return Err(err);
            }
        };
        // Cancelled while it ran (by itself, or by a task it resumed): closed, not queued.
        if let Some(id) = id
            && self
                .tasks
                .borrow()
                .get(&id)
                .is_some_and(|task| task.cancelled)
        {
            self.forget(id);
            self.close(owner, thread);
            return Ok(Ran::Waiting(id));
        }
        let id = id.unwrap_or_else(|| self.new_task(owner));
        let wait = self.enqueue(id, &wake);
        self.tasks.borrow_mut().insert(
            id,
            Task {
                body: Body::Thread(thread),
                owner,
                wake: Some(wake),
                wait,
                cancelled: false,
            },
        );
        Ok(Ran::Waiting(id))
    }

    /// What the yielded `WAIT, kind, argument` waits for.
    fn wake_of(&self, values: &MultiValue) -> mlua::Result<Wake> {
        let kind = values
            .get(1)
            .and_then(Value::as_string)
            .and_then(|kind| kind.to_str().ok().map(|k| k.to_owned()));
        let argument = values.get(2).cloned().unwrap_or(Value::Nil);
        let now = self.now.get();
        let seconds =
            |value: &Value| match value.as_number().or(value.as_integer().map(|i| i as f64)) {
                Some(s) if !s.is_nan() => Ok(s),
                _ => Err(mlua::Error::runtime("wait: expected a number of seconds")),
            };
        match kind.as_deref() {
            Some("time") => Ok(Wake::Time {
                due: now + seconds(&argument)?.max(0.0),
                since: now,
            }),
            Some("frames") => {
                let frames = argument
                    .as_integer()
                    .or_else(|| argument.as_number().map(|n| n as i64))
                    .unwrap_or(1)
                    .max(1) as u64;
                Ok(Wake::Frame(self.frame.get() + frames))
            }
            Some("until") => match argument {
                Value::Function(condition) => Ok(Wake::Until(condition)),
                _ => Err(mlua::Error::runtime("wait_until: expected a function")),
            },
            Some("event") => match argument.as_string() {
                Some(name) => Ok(Wake::Event(name.to_string_lossy())),
                None => Err(mlua::Error::runtime("wait_for: expected a message name")),
            },
            _ => Err(mlua::Error::runtime("wait: unknown kind of wait")),
        }
    }

    /// Ends a cancelled task: closes its thread if it has one.
    fn end(&self, owner: Owner, body: Body) {
        if let Body::Thread(thread) = body {
            self.close(owner, thread);
        }
    }

    /// Closes a waiting thread (its `<close>` variables run, as a callback of `owner` that
    /// may not wait) and recycles it; their errors are reported.
    fn close(&self, owner: Owner, thread: Thread) {
        let previous = self.context.replace(Some(Context {
            owner,
            waiting: Waiting::Unload,
        }));
        // LuaJIT resets only finished threads (and has no `<close>`): the collector takes it.
        #[cfg(feature = "luajit")]
        let closed: mlua::Result<bool> = Ok(false);
        #[cfg(not(feature = "luajit"))]
        let closed =
            crate::vm::budget::run_nested(thread.state(), || thread.reset(self.idle.clone()))
                .map(|()| true);
        self.context.set(previous);
        match closed {
            Ok(true) => self.pool.borrow_mut().push(thread),
            Ok(false) => {}
            Err(err) => self.errors.borrow_mut().push((owner, err)),
        }
    }

    /// Drops `id` from the tasks, from its owner's list and from the message waits; its timer
    /// or frame entry stays in its queue, skipped when due (the queues are rebuilt when such
    /// entries pile up: a task waiting a year, cancelled every frame).
    fn forget(&self, id: TaskId) -> Option<Task> {
        let task = self.tasks.borrow_mut().remove(&id)?;
        let mut owned = self.owned.borrow_mut();
        if let Some(ids) = owned.get_mut(&task.owner) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                owned.remove(&task.owner);
            }
        }
        match &task.wake {
            Some(Wake::Event(name)) => {
                let mut events = self.events.borrow_mut();
                if let Some(waiting) = events.get_mut(name) {
                    waiting.retain(|(i, _)| *i != id);
                    if waiting.is_empty() {
                        events.remove(name);
                    }
                }
            }
            Some(Wake::Time { .. } | Wake::Frame(_)) => {
                self.stale.set(self.stale.get() + 1);
                self.compact();
            }
            _ => {}
        }
        Some(task)
    }

    /// Rebuilds the timer and frame queues without the entries of tasks gone, once those are
    /// over half of them.
    fn compact(&self) {
        let queued = self.timers.borrow().len() + self.frames.borrow().len();
        if self.stale.get() < 1024 || self.stale.get() * 2 < queued {
            return;
        }
        let tasks = self.tasks.borrow();
        let live = |&Reverse((_, wait, id)): &Reverse<(u64, u64, TaskId)>| {
            tasks.get(&id).is_some_and(|task| task.wait == wait)
        };
        self.timers.borrow_mut().retain(live);
        self.frames.borrow_mut().retain(live);
        self.stale.set(0);
    }

    /// Whether task `id` still runs or waits (and was not cancelled).
    pub(crate) fn is_running(&self, id: TaskId) -> bool {
        self.tasks
            .borrow()
            .get(&id)
            .is_some_and(|task| !task.cancelled)
    }

    /// `Task:cancel()`: a waiting task is closed now; a running one (it cancels itself, or a
    /// task it resumed does) stops at its next wait.
    fn cancel(&self, id: TaskId) {
        let waiting = {
            let mut tasks = self.tasks.borrow_mut();
            match tasks.get_mut(&id) {
                Some(task) if task.wake.is_some() => true,
                Some(task) => {
                    task.cancelled = true;
                    false
                }
                None => false,
            }
        };
        if waiting && let Some(task) = self.forget(id) {
            self.end(task.owner, task.body);
        }
    }

    /// Cancels every task of `owner` (its instance goes, or a reload replaced its version),
    /// each closed within the budget of a callback.
    pub(crate) fn cancel_owned(&self, vm: &Vm, owner: Owner) {
        let ids = self.owned.borrow_mut().remove(&owner).unwrap_or_default();
        for id in ids {
            let Some(task) = self.tasks.borrow_mut().remove(&id) else {
                continue;
            };
            if let Body::Thread(thread) = task.body {
                vm.budgeted_on(&thread.clone(), || {
                    self.close(owner, thread);
                    Ok(())
                })
                .ok();
            }
        }
    }

    /// The frame's wake-up, before the `on_update`s: the tasks whose condition holds at game
    /// time `now` are resumed, timers in the order they fall due (at equal times, in the order
    /// they started waiting), then frame waits, then conditions.
    pub(crate) fn wake(&self, vm: &Vm, now: f64) {
        let frame = self.frame.get() + 1;
        self.frame.set(frame);
        self.now.set(now);
        let mut due: Vec<(TaskId, u64)> = Vec::new();
        {
            let mut timers = self.timers.borrow_mut();
            let now_key = time_key(now + TIME_TOLERANCE);
            while let Some(Reverse((at, wait, id))) = timers.peek().copied() {
                if at > now_key {
                    break;
                }
                timers.pop();
                due.push((id, wait));
            }
            let mut frames = self.frames.borrow_mut();
            while let Some(Reverse((at, wait, id))) = frames.peek().copied() {
                if at > frame {
                    break;
                }
                frames.pop();
                due.push((id, wait));
            }
        }
        let untils: Vec<(TaskId, u64, u64)> = std::mem::take(&mut *self.untils.borrow_mut());
        let mut kept = Vec::new();
        for (id, wait, from) in untils {
            let condition = match self.tasks.borrow().get(&id) {
                Some(Task {
                    wake: Some(Wake::Until(condition)),
                    wait: current,
                    owner,
                    ..
                }) if *current == wait => Some((condition.clone(), *owner)),
                _ => None,
            };
            let Some((condition, owner)) = condition else {
                continue;
            };
            if from > frame {
                kept.push((id, wait, from));
                continue;
            }
            let context = Context {
                owner,
                waiting: Waiting::Condition,
            };
            match self.call::<Value>(vm, context, &condition, ()) {
                Ok(Ran::Done(Value::Nil | Value::Boolean(false))) => kept.push((id, wait, from)),
                Ok(_) => due.push((id, wait)),
                Err(err) => {
                    self.errors.borrow_mut().push((owner, err));
                    if let Some(task) = self.forget(id) {
                        self.end(owner, task.body);
                    }
                }
            }
        }
        self.untils.borrow_mut().extend(kept);
        for (id, wait) in due {
            self.resume_task(vm, id, wait, None);
        }
    }

    /// Whether any task waits for a message.
    pub(crate) fn awaits_any(&self) -> bool {
        !self.events.borrow().is_empty()
    }

    /// Whether a task waits for a message named `name`.
    pub(crate) fn is_awaited(&self, name: &str) -> bool {
        self.events.borrow().contains_key(name)
    }

    /// Hands a message named `name` to the tasks waiting for one (`wait_for`, and `world.on`
    /// listeners, which are tasks), in the order they started waiting; `make` makes each its
    /// own Lua value of it. A task that waits again gets the next message.
    pub(crate) fn deliver(&self, vm: &Vm, name: &str, make: &dyn Fn(&Lua) -> mlua::Result<Value>) {
        let Some(waiting) = self.events.borrow_mut().remove(name) else {
            return;
        };
        for (id, wait) in waiting {
            match make(&vm.lua) {
                Ok(value) => self.resume_task(vm, id, wait, Some(value)),
                Err(err) => {
                    if let Some(task) = self.forget(id) {
                        self.errors.borrow_mut().push((task.owner, err));
                        self.end(task.owner, task.body);
                    }
                }
            }
        }
    }

    /// Resumes task `id` if it still waits for `wait`, with `value` (else, after a timer, the
    /// seconds it waited).
    fn resume_task(&self, vm: &Vm, id: TaskId, wait: u64, value: Option<Value>) {
        let (body, owner, wake) = {
            let mut tasks = self.tasks.borrow_mut();
            let Some(task) = tasks.get_mut(&id) else {
                return;
            };
            if task.wait != wait {
                return;
            }
            (task.body.clone(), task.owner, task.wake.take())
        };
        let context = Context {
            owner,
            waiting: Waiting::Allowed,
        };
        let (thread, waited) = match body {
            Body::Thread(thread) => {
                let waited = match (wake, value) {
                    (_, Some(value)) => value,
                    (Some(Wake::Time { since, .. }), None) => Value::Number(self.now.get() - since),
                    _ => Value::Nil,
                };
                (thread, waited)
            }
            // Due: from now on a task like any, under the same id.
            Body::After(f) => match self.thread(&vm.lua, &f) {
                Ok(thread) => (thread, Value::Nil),
                Err(err) => {
                    self.forget(id);
                    self.errors.borrow_mut().push((owner, err));
                    return;
                }
            },
            Body::Every { f, interval } => {
                // Queued again first (the next time is the previous one plus the interval,
                // so it does not drift; at most once a frame, as this frame's timers were
                // taken), so that `f` may cancel it like a waiting task.
                if let Some(Wake::Time { due, .. }) = wake {
                    let next = Wake::Time {
                        due: due + interval,
                        since: self.now.get(),
                    };
                    let wait = self.enqueue(id, &next);
                    if let Some(task) = self.tasks.borrow_mut().get_mut(&id) {
                        task.wake = Some(next);
                        task.wait = wait;
                    }
                }
                if let Err(err) = self.call::<()>(vm, context, &f, ()) {
                    self.errors.borrow_mut().push((owner, err));
                }
                return;
            }
        };
        let step = vm.budgeted_on(&thread, || self.resume(context, &thread, waited));
        if let Err(err) = self.settle(owner, thread, Some(id), step) {
            self.errors.borrow_mut().push((owner, err));
        }
    }

    /// The errors tasks raised since the last call.
    pub(crate) fn take_errors(&self) -> Vec<(Owner, mlua::Error)> {
        std::mem::take(&mut *self.errors.borrow_mut())
    }

    /// Tasks waiting now.
    pub(crate) fn waiting(&self) -> usize {
        self.tasks.borrow().len()
    }
}

/// The scheduler, from a Lua callback.
fn shared(lua: &Lua) -> mlua::Result<std::rc::Rc<Scheduler>> {
    lua.app_data_ref::<std::rc::Rc<Scheduler>>()
        .map(|s| std::rc::Rc::clone(&s))
        .ok_or_else(|| mlua::Error::runtime("the task scheduler is gone"))
}

/// Luau reads frames through another API; its memory errors keep no line.
#[cfg(feature = "luau")]
fn error_location(_: &Thread) -> Option<String> {
    None
}

/// `chunk:line` of the innermost script frame of a thread an error stopped (its frames stay
/// until it is reset): the line of a memory error, which Lua raises without one.
#[cfg(not(feature = "luau"))]
fn error_location(thread: &Thread) -> Option<String> {
    // SAFETY: the thread's state, alive while `thread` is, and not running (it just failed).
    unsafe { crate::error::frame_location(thread.state()) }
}
