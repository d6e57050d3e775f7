//! One script instance: an (entity, script) attachment with its own global environment.
//!
//! Its callbacks run through the scheduler (`task/`), on threads when its script names a wait
//! function, so that they can wait: a callback that waits becomes a task of the instance. An
//! `on_update` still waiting when the next frame comes is not started again until it finishes.
//! Hot reload, removal and a stop for memory cancel the instance's tasks.

use std::cell::Cell;
use std::sync::Arc;

use bevy::asset::{AssetId, Assets};
use bevy::ecs::entity::Entity;
use mlua::{Function, IntoLuaMulti, RegistryKey, Table, Value};

use crate::error::{LuaScriptError, LuaScriptErrorKind, Repeats};
use crate::script::asset::LuaScriptAsset;
use crate::script::chunk;
use crate::task::{Context, Owner, Ran, Scheduler, TaskId, Waiting};
use crate::vm::Vm;
use crate::vm::prefetch::HotObjects;
use crate::world::handle::EntityHandle;

/// In C order, what every frame's update reads first: instances are walked every frame, and at
/// 10,000 of them each cache line an update touches is a miss (Rust's own order spread these
/// over one more line).
#[repr(C)]
pub(crate) struct Instance {
    /// `on_update`, looked up once per (re)load: it runs every frame.
    on_update: Option<Function>,
    /// `on_update` registered for the Vm's cheaper call, unless its callbacks run on threads.
    update_key: Option<RegistryKey>,
    /// What `on_update` touches, for the runtime to prefetch.
    pub hot: HotObjects,
    /// Bytes of Lua memory its callbacks allocated, net of what was freed while they ran: the
    /// runtime's measure of who holds the memory when the state nears its limit.
    pub memory: Cell<i64>,
    /// The `on_update` still waiting, if one is (0: none; task ids start at 1).
    update_task: TaskId,
    /// Which version of the script runs (a hot reload makes the next): whose tasks are its.
    generation: u32,
    started: bool,
    /// Whether its source names a wait function: its callbacks run on threads (see `task/`).
    waits: bool,
    pub env: Table,
    /// The last error of its callbacks, held back while it repeats.
    repeated: Repeats,
    /// The last error of its tasks, held back while it repeats.
    pub task_errors: Repeats,
    pub asset: AssetId<LuaScriptAsset>,
    pub path: Arc<str>,
    /// The entity the script runs for (its `entity`): the one carrying its `LuaScript`, or the
    /// target of that entity's `ScriptOf`. Instances are keyed by the carrying entity.
    pub target: Entity,
}

/// A version of a script to run: its source, its compiled top-level chunk, and whether it (or
/// a module it requires) names a wait function (see [`names_a_wait`]).
pub(crate) struct Version<'a> {
    pub script: &'a LuaScriptAsset,
    pub chunk: &'a Function,
    pub waits: bool,
}

impl Instance {
    /// A new instance of `version`, carried by `entity`, for `target`: its top-level code runs
    /// now.
    pub(crate) fn new(
        vm: &Vm,
        tasks: &Scheduler,
        entity: Entity,
        target: Entity,
        asset: AssetId<LuaScriptAsset>,
        version: Version,
    ) -> mlua::Result<Self> {
        let Version {
            script,
            chunk,
            waits,
        } = version;
        let owner = Owner {
            entity,
            generation: 0,
        };
        let env = match environment(vm, tasks, owner, target, script, chunk) {
            Ok(env) => env,
            Err(err) => {
                // Tasks its top-level code started before it failed.
                tasks.cancel_owned(vm, owner);
                return Err(err);
            }
        };
        let on_update = function(&env, "on_update");
        Ok(Instance {
            target,
            asset,
            path: script.path.clone(),
            update_key: update_key(vm, on_update.as_ref(), waits),
            on_update,
            env,
            started: false,
            repeated: Repeats::default(),
            task_errors: Repeats::default(),
            hot: HotObjects::default(),
            memory: Cell::new(0),
            generation: 0,
            update_task: 0,
            waits,
        })
    }

    fn owner(&self, entity: Entity) -> Owner {
        Owner {
            entity,
            generation: self.generation,
        }
    }

    fn context(&self, entity: Entity, waiting: Waiting) -> Context {
        Context {
            owner: self.owner(entity),
            waiting: match waiting {
                Waiting::Allowed if !self.waits => Waiting::Unused,
                other => other,
            },
        }
    }

    /// Hot reload: `on_unload` in the old environment, the new code in a fresh one, then
    /// `on_reload(saved)` (or `on_start` when the script has no `on_reload`). The old
    /// version's tasks are cancelled once the new code ran. If it fails to run, the old
    /// environment stays, with its tasks.
    pub(crate) fn reload(
        &mut self,
        vm: &Vm,
        tasks: &Scheduler,
        entity: Entity,
        version: Version,
        errors: &mut Vec<LuaScriptError>,
    ) {
        let Version {
            script,
            chunk,
            waits,
        } = version;
        let unload = self.context(entity, Waiting::Unload);
        let saved = match call::<Value>(vm, tasks, unload, &self.env, "on_unload", ()) {
            Ok(Some(Ran::Done(saved))) => saved,
            Ok(_) => Value::Nil,
            Err(err) => {
                errors.push(LuaScriptError::from_lua(
                    &script.path,
                    Some(self.target),
                    &err,
                ));
                Value::Nil
            }
        };
        let next = Owner {
            entity,
            generation: self.generation.wrapping_add(1),
        };
        let env = match environment(vm, tasks, next, self.target, script, chunk) {
            Ok(env) => env,
            Err(err) => {
                tasks.cancel_owned(vm, next);
                errors.push(LuaScriptError::from_lua(
                    &script.path,
                    Some(self.target),
                    &err,
                ));
                return;
            }
        };
        tasks.cancel_owned(vm, self.owner(entity));
        self.generation = next.generation;
        self.update_task = 0;
        self.waits = waits;
        self.on_update = function(&env, "on_update");
        self.update_key = update_key(vm, self.on_update.as_ref(), waits);
        self.env = env;
        self.hot = HotObjects::default();
        self.path = script.path.clone();
        self.started = true;
        let context = self.context(entity, Waiting::Allowed);
        let result = match function(&self.env, "on_reload") {
            Some(on_reload) => tasks.call::<()>(vm, context, &on_reload, saved).map(drop),
            None => call::<()>(vm, tasks, context, &self.env, "on_start", ()).map(drop),
        };
        if let Err(err) = result {
            errors.push(LuaScriptError::from_lua(
                &script.path,
                Some(self.target),
                &err,
            ));
        }
    }

    /// `on_unload`, before the instance goes away; then its tasks are cancelled.
    pub(crate) fn unload(
        &self,
        vm: &Vm,
        tasks: &Scheduler,
        entity: Entity,
        errors: &mut Vec<LuaScriptError>,
    ) {
        let unload = self.context(entity, Waiting::Unload);
        if let Err(err) = call::<Value>(vm, tasks, unload, &self.env, "on_unload", ()) {
            errors.push(LuaScriptError::from_lua(
                &self.path,
                Some(self.target),
                &err,
            ));
        }
        tasks.cancel_owned(vm, self.owner(entity));
    }

    /// `on_start` the first time, then `on_update(dt)`; the kind of error it failed with.
    pub(crate) fn update(
        &mut self,
        vm: &Vm,
        tasks: &Scheduler,
        entity: Entity,
        dt: f64,
        errors: &mut Vec<LuaScriptError>,
    ) -> Option<LuaScriptErrorKind> {
        let mut result = Ok(());
        let context = self.context(entity, Waiting::Allowed);
        if !self.started {
            self.started = true;
            result = call::<()>(vm, tasks, context, &self.env, "on_start", ()).map(drop);
        }
        if self.update_task != 0 {
            if tasks.is_running(self.update_task) {
                return None;
            }
            self.update_task = 0;
        }
        if result.is_ok()
            && let Some(on_update) = &self.on_update
        {
            result = match &self.update_key {
                // No wait can suspend it: the Vm's cheaper call (see `vm/call.rs`).
                Some(key) if context.waiting != Waiting::Allowed => {
                    tasks.call_plain(context, || vm.call_registered(key, dt))
                }
                _ => match tasks.call::<()>(vm, context, on_update, dt) {
                    Ok(Ran::Waiting(task)) => {
                        self.update_task = task;
                        Ok(())
                    }
                    Ok(Ran::Done(())) => Ok(()),
                    Err(err) => Err(err),
                },
            };
        }
        let failed = self.report(result, errors);
        // After the update: the references it got from `entity:get` are in the handle now.
        if self.hot.due() {
            self.hot = HotObjects::collect(self.on_update.as_ref(), &self.env);
        }
        failed
    }

    /// Stops the instance for good (until its script is reloaded or attached again): its
    /// environment, and all it held, goes to the collector; no callback of it runs any more.
    pub(crate) fn stop(&mut self, vm: &Vm, tasks: &Scheduler, entity: Entity) -> mlua::Result<()> {
        tasks.cancel_owned(vm, self.owner(entity));
        self.update_task = 0;
        self.env = vm.lua.create_table()?;
        self.on_update = None;
        self.update_key = None;
        self.started = true;
        self.hot = HotObjects::default();
        self.memory.set(0);
        Ok(())
    }

    /// The last error reported, while it repeats.
    pub(crate) fn last_error(&self) -> Option<&LuaScriptError> {
        self.repeated.last()
    }

    /// Whether the script defines a global function `name`.
    pub(crate) fn defines(&self, name: &str) -> bool {
        function(&self.env, name).is_some()
    }

    /// `function(payload)` for a [`LuaCall`](crate::LuaCall); nothing if the script has no such
    /// function.
    pub(crate) fn call_function(
        &self,
        vm: &Vm,
        tasks: &Scheduler,
        entity: Entity,
        name: &str,
        payload: Value,
        errors: &mut Vec<LuaScriptError>,
    ) {
        let context = self.context(entity, Waiting::Allowed);
        if let Err(err) = call::<()>(vm, tasks, context, &self.env, name, payload) {
            errors.push(LuaScriptError::from_lua(
                &self.path,
                Some(self.target),
                &err,
            ));
        }
    }

    /// Reports the update's error once while it repeats (see [`Repeats`]).
    fn report(
        &mut self,
        result: mlua::Result<()>,
        errors: &mut Vec<LuaScriptError>,
    ) -> Option<LuaScriptErrorKind> {
        match result {
            Ok(()) => {
                self.repeated.quiet(errors);
                None
            }
            Err(err) => {
                let error = LuaScriptError::from_lua(&self.path, Some(self.target), &err);
                let kind = error.kind;
                self.repeated.error(error, errors);
                Some(kind)
            }
        }
    }
}

/// A fresh environment for `owner`'s entity, with the script's top-level `chunk` run in it (it
/// may start tasks, not wait). Reads fall back to the shared globals (libraries, type tables,
/// `world`), which are read-only.
fn environment(
    vm: &Vm,
    tasks: &Scheduler,
    owner: Owner,
    target: Entity,
    script: &LuaScriptAsset,
    chunk: &Function,
) -> mlua::Result<Table> {
    // Its own `_G` and `load` only for a script that names them: each is a key (and `load` a
    // closure) in every instance's environment, whose objects 10,000 instances spread over
    // more cache lines. Without them a script reads the shared, read-only `_G` and `load`.
    let source = &*script.source;
    let env = vm.environment(source.contains("_G"), source.contains("load"))?;
    env.raw_set("entity", EntityHandle::new(target))?;
    chunk::bind(chunk, &env)?;
    let top_level = Context {
        owner,
        waiting: Waiting::TopLevel,
    };
    let ran = tasks.call::<()>(vm, top_level, chunk, ());
    // The compiled chunk is cached for the next instance: it must not keep this environment
    // (and all its instance holds) alive once the instance is gone.
    chunk::bind(chunk, &vm.unbound)?;
    ran?;
    Ok(env)
}

/// Whether the script's source, or that of a module it requires by name (directly or not),
/// names a wait function (`wait`, `wait_frames`, `wait_until`, `wait_for`): only then do its
/// callbacks run on threads, which can wait.
pub(crate) fn names_a_wait(assets: &Assets<LuaScriptAsset>, script: &LuaScriptAsset) -> bool {
    let mut seen = Vec::new();
    let mut next = vec![script];
    while let Some(script) = next.pop() {
        if script.source.contains("wait") {
            return true;
        }
        for module in &script.requires {
            if !seen.contains(&module.id()) {
                seen.push(module.id());
                next.extend(assets.get(module));
            }
        }
    }
    false
}

/// `on_update` registered for [`Vm::call_registered`], for a script whose callbacks do not run
/// on threads (`waits`): those can wait, and are resumed instead.
fn update_key(vm: &Vm, on_update: Option<&Function>, waits: bool) -> Option<RegistryKey> {
    if waits {
        return None;
    }
    vm.register_call(on_update?)
}

/// The function `name` of `env`, if the script defines one.
fn function(env: &Table, name: &str) -> Option<Function> {
    env.raw_get::<Option<Function>>(name).ok().flatten()
}

/// Calls the function `name` of `env` in `context`; `Ok(None)` when the script has none.
fn call<R: mlua::FromLuaMulti>(
    vm: &Vm,
    tasks: &Scheduler,
    context: Context,
    env: &Table,
    name: &str,
    args: impl IntoLuaMulti,
) -> mlua::Result<Option<Ran<R>>> {
    match function(env, name) {
        Some(f) => tasks.call::<R>(vm, context, &f, args).map(Some),
        None => Ok(None),
    }
}
