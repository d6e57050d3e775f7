//! The scripting runtime: which instances exist, and one frame of them.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use bevy::asset::{AssetEvent, AssetId, AssetLoadFailedEvent, AssetServer, Assets};
use bevy::ecs::entity::Entity;
use bevy::ecs::message::{MessageCursor, Messages};
use bevy::ecs::world::World;
use bevy::log::info;
use bevy::platform::collections::HashSet;
use bevy::time::Time;
use mlua::Table;

use crate::error::{LuaScriptError, LuaScriptErrorKind};
use crate::script::asset::{LuaScriptAsset, LuaScriptLoadError};
use crate::script::chunk::Chunks;
use crate::script::component::{LuaScript, LuaScripts, ScriptAttachments, ScriptOf};
use crate::script::instance::{Instance, Version, names_a_wait};
use crate::script::module::Modules;
use crate::task::{Owner, Scheduler};
use crate::vm::prefetch::prefetch_object;
use crate::vm::{Vm, VmSettings};
use crate::world::WorldScope;
use crate::world::event::ScriptEvents;
use crate::world::handle::{
    forget_references, handle_count, install_handles, sweep_handles, world_table,
};
use crate::world::input::input_table;
use crate::world::message::LuaMessage;
use crate::world::message::{LuaCall, LuaCallTarget, install_send};
use crate::world::registry::{
    ComponentRemovals, LuaTypeRegistry, PendingMessage, ScriptMessages, ScriptTypes,
};

/// Figures of the scripting runtime, updated every frame: a resource of the app.
///
/// Memory is attributed to the instance whose callbacks allocated it (net of what the collector
/// freed while they ran). When the Lua state nears its memory limit (seven eighths of
/// [`LuaScriptingPlugin::memory_limit`](crate::LuaScriptingPlugin)) even after a full
/// collection, the instance holding the most is stopped and reported as a
/// [`Memory`](crate::LuaScriptErrorKind::Memory) error, so the other scripts keep running.
#[derive(bevy::ecs::resource::Resource, Debug, Default, Clone, PartialEq, Eq)]
pub struct LuaScriptStats {
    /// Script instances alive.
    pub instances: usize,
    /// Tasks waiting (callbacks and `task`s that wait).
    pub tasks: usize,
    /// Bytes the Lua state has allocated.
    pub lua_memory: usize,
    /// The instances holding the most Lua memory, largest first (at most
    /// [`LuaScriptStats::TOP`]).
    pub top_memory: Vec<InstanceMemory>,
    /// Entity handles the Lua state holds: one per entity scripts have reached (as `entity`,
    /// through `world.query`, `world.entity`, a message...), kept with their cached references
    /// while the entity lives, and dropped a few frames after it is despawned.
    pub entity_handles: usize,
}

impl LuaScriptStats {
    /// How many instances [`LuaScriptStats::top_memory`] lists.
    pub const TOP: usize = 8;
}

/// The Lua memory attributed to one script instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceMemory {
    pub entity: Entity,
    /// The script's asset path.
    pub path: Arc<str>,
    /// Bytes allocated by its callbacks, net of what was freed while they ran.
    pub bytes: i64,
}

/// The scripting runtime: a non-send resource of the app, taken out of the world while scripts
/// run (see `world/mod.rs`).
pub(crate) struct LuaRuntime {
    vm: Vm,
    /// Callback threads, tasks and their queues (shared with the Lua functions `task` & co).
    tasks: std::rc::Rc<Scheduler>,
    /// By entity: one script per entity, run in entity order.
    instances: BTreeMap<Entity, Instance>,
    chunks: Chunks,
    installed_type_tables: HashSet<&'static str>,
    /// `ComponentRemovals` as of the last frame.
    removals_seen: u64,
    /// `ScriptAttachments` as of the last plan.
    attachments_seen: u64,
    /// Some attached script was not loaded yet at the last plan: plan again.
    waiting_for_assets: bool,
    /// Scripts and modules changed on disk whose new version requires a module not loaded yet:
    /// they reload once it is, not before (`require` would fail).
    pending_changes: HashSet<AssetId<LuaScriptAsset>>,
    asset_events: MessageCursor<AssetEvent<LuaScriptAsset>>,
    failed_loads: MessageCursor<AssetLoadFailedEvent<LuaScriptAsset>>,
    calls: MessageCursor<LuaCall>,
    /// The messages scripts wait for: `world.send`'s, and each registered type's.
    script_messages: MessageCursor<LuaMessage>,
    typed_messages: Vec<(&'static str, Box<dyn ScriptMessages>)>,
    /// The global `time` table, whose fields are set every frame.
    time: Table,
    /// Past this much Lua memory, a callback is followed by a full collection and, if that is not
    /// enough, the instance holding the most memory is stopped.
    memory_pressure: usize,
    /// The memory limit of the state (0: none); [`pressure_mark`] of it is where
    /// `memory_pressure` starts, and where it returns once memory falls below it.
    memory_limit: usize,
    /// Instances holding back a repeating task error, and the frames since their tasks' last
    /// error (see `report_task_errors`).
    task_error_holders: Vec<(Entity, u32)>,
    /// Functions named by `LuaCall`s that no targeted instance defined, reported once each.
    undefined_calls: HashSet<String>,
    /// The instances holding the most memory as of the last frame's updates, largest first:
    /// kept while the updates walk the instances anyway (a pass of its own would fetch every
    /// instance into the cache once more).
    top_memory: Vec<InstanceMemory>,
}

const MIB: usize = 1024 * 1024;

/// Frames without a task error after which a repeating one held back is reported with its count.
const TASK_ERRORS_QUIET: u32 = 60;

/// A callback stopped by the budget after allocating this much is followed by a collection: the
/// table it was building is garbage now.
const GARBAGE_WORTH_COLLECTING: usize = MIB;

/// Keeps `instance` among the [`LuaScriptStats::TOP`] largest holders in `top`, if it is one.
fn offer_top_memory(top: &mut Vec<InstanceMemory>, instance: &Instance) {
    let entity = instance.target;
    let bytes = instance.memory.get();
    if top.len() == LuaScriptStats::TOP && top.last().is_some_and(|m| m.bytes >= bytes) {
        return;
    }
    let at = top.partition_point(|m| m.bytes >= bytes);
    top.insert(
        at,
        InstanceMemory {
            entity,
            path: instance.path.clone(),
            bytes,
        },
    );
    top.truncate(LuaScriptStats::TOP);
}

/// Runs `f` (callbacks of one instance): its result, and the Lua memory it allocated (net of
/// what was freed meanwhile), to attribute to the instance.
fn allocated<R>(vm: &Vm, f: impl FnOnce() -> R) -> (R, i64) {
    let before = vm.used_memory();
    let result = f();
    (result, vm.used_memory() as i64 - before as i64)
}

/// Adds `bytes` to the memory attributed to `instance`.
fn attribute(instance: &Instance, bytes: i64) {
    instance.memory.set(instance.memory.get() + bytes);
}

/// Seven eighths of the memory limit (none without a limit).
fn pressure_mark(memory_limit: usize) -> usize {
    match memory_limit {
        0 => usize::MAX,
        limit => limit / 8 * 7,
    }
}

/// What a frame must change before updating: decided while the world is at hand.
#[derive(Default)]
struct Plan {
    /// Instances to unload and drop (script removed or replaced, entity despawned).
    detached: Vec<Entity>,
    /// Instances to reload: their script, and whether it (or a module it requires) waits.
    reloads: Vec<(Entity, LuaScriptAsset, bool)>,
    /// New instances: the entity carrying the script, its target, the script and whether it
    /// waits.
    creations: Vec<(
        Entity,
        Entity,
        AssetId<LuaScriptAsset>,
        LuaScriptAsset,
        bool,
    )>,
}

impl LuaRuntime {
    pub(crate) fn new(settings: &VmSettings) -> mlua::Result<Self> {
        let vm = Vm::new(settings)?;
        let globals = vm.lua.globals();
        install_handles(&vm.lua)?;
        let world = world_table(&vm.lua)?;
        install_send(&vm.lua, &world)?;
        globals.set("world", world)?;
        globals.set("input", input_table(&vm.lua)?)?;
        let time = vm.lua.create_table()?;
        time.set("delta", 0.0)?;
        time.set("elapsed", 0.0)?;
        globals.set("time", &time)?;
        let tasks = Scheduler::install(&vm)?;
        Modules::install(&vm.lua, vm.env_metatable())?;
        vm.seal()?;
        Ok(LuaRuntime {
            vm,
            tasks,
            instances: BTreeMap::new(),
            chunks: Chunks::default(),
            installed_type_tables: HashSet::default(),
            removals_seen: 0,
            attachments_seen: u64::MAX,
            waiting_for_assets: false,
            pending_changes: HashSet::default(),
            asset_events: MessageCursor::default(),
            failed_loads: MessageCursor::default(),
            calls: MessageCursor::default(),
            script_messages: MessageCursor::default(),
            typed_messages: Vec::new(),
            time,
            memory_pressure: pressure_mark(settings.memory_limit),
            memory_limit: settings.memory_limit,
            top_memory: Vec::new(),
            undefined_calls: HashSet::default(),
            task_error_holders: Vec::new(),
        })
    }

    /// One frame of scripts: errors are returned for the caller to log and send.
    pub(crate) fn run_frame(&mut self, world: &mut World) -> Vec<LuaScriptError> {
        let mut errors = Vec::new();
        self.vm.check_watchdog();
        self.install_type_tables(world, &mut errors);
        self.forget_references_after_removals(world, &mut errors);
        let mut modified = self.read_asset_events(world, &mut errors);
        self.hold_back_unready(world, &mut modified);
        // Scripts requiring a module edited during play reload with it.
        let module_users = match world.get_resource::<Assets<LuaScriptAsset>>() {
            Some(assets) if !modified.is_empty() => {
                Modules::modified(&self.vm.lua, assets, &modified, &mut errors)
            }
            _ => HashSet::default(),
        };
        let attachments = world.get_resource::<ScriptAttachments>().map_or(0, |a| a.0);
        let plan = if attachments != self.attachments_seen
            || self.waiting_for_assets
            || !modified.is_empty()
        {
            self.attachments_seen = attachments;
            self.plan(world, &modified, &module_users)
        } else {
            Plan::default()
        };
        let (dt, elapsed) = world.get_resource::<Time>().map_or((0.0, 0.0), |time| {
            (time.delta_secs_f64(), time.elapsed_secs_f64())
        });
        if let Err(err) = self
            .time
            .raw_set("delta", dt)
            .and_then(|()| self.time.raw_set("elapsed", elapsed))
        {
            errors.push(LuaScriptError::new(
                LuaScriptErrorKind::Runtime,
                "bevy_lunar",
                err.to_string(),
            ));
        }
        let calls: Vec<LuaCall> = match world.get_resource::<Messages<LuaCall>>() {
            Some(messages) => self.calls.read(messages).cloned().collect(),
            None => Vec::new(),
        };
        let messages = self.read_messages(world);

        let _scope = WorldScope::enter(world);
        // From here on the world is reached through the scope only.
        if let Err(err) = sweep_handles(&self.vm.lua) {
            errors.push(LuaScriptError::new(
                LuaScriptErrorKind::Runtime,
                "bevy_lunar",
                err.to_string(),
            ));
        }
        let vm = &self.vm;
        let tasks = &*self.tasks;
        let had_detached = !plan.detached.is_empty();
        for entity in plan.detached {
            if let Some(instance) = self.instances.remove(&entity) {
                instance.unload(vm, tasks, entity, &mut errors);
                // Errors of closing its tasks, while its path is at hand.
                for (_, err) in tasks.take_errors() {
                    errors.push(LuaScriptError::from_lua(
                        &instance.path,
                        Some(instance.target),
                        &err,
                    ));
                }
            }
        }
        for (entity, script, waits) in plan.reloads {
            if let Some(instance) = self.instances.get_mut(&entity) {
                match self.chunks.get(&vm.lua, instance.asset, &script) {
                    Ok(chunk) => {
                        let ((), grown) = allocated(vm, || {
                            let version = Version {
                                script: &script,
                                chunk: &chunk,
                                waits,
                            };
                            instance.reload(vm, tasks, entity, version, &mut errors)
                        });
                        attribute(instance, grown);
                        info!("reloaded {} for entity {entity}", script.path);
                    }
                    // The script's error, once for all its instances; they keep the old version.
                    Err(Some(err)) => {
                        errors.push(LuaScriptError::from_lua(&script.path, None, &err))
                    }
                    Err(None) => {}
                }
            }
        }
        for (entity, target, asset, script, waits) in plan.creations {
            let vm = &self.vm;
            let chunk = match self.chunks.get(&vm.lua, asset, &script) {
                Ok(chunk) => chunk,
                Err(Some(err)) => {
                    errors.push(LuaScriptError::from_lua(&script.path, None, &err));
                    continue;
                }
                Err(None) => continue,
            };
            match allocated(vm, || {
                let version = Version {
                    script: &script,
                    chunk: &chunk,
                    waits,
                };
                Instance::new(vm, &self.tasks, entity, target, asset, version)
            }) {
                (Ok(instance), grown) => {
                    attribute(&instance, grown);
                    self.instances.insert(entity, instance);
                }
                (Err(err), _) => {
                    errors.push(LuaScriptError::from_lua(&script.path, Some(target), &err))
                }
            }
            // A script whose top-level code filled the state is stopped before the next starts.
            self.relieve_memory_if_pressed(&mut errors);
        }
        // Before anything could collect what the dropped instances held.
        self.vm.release_dropped_calls();
        // New versions of modules that failed to run (the old ones stayed).
        errors.extend(Modules::take_errors(&self.vm.lua));
        if had_detached {
            let instances = &self.instances;
            self.chunks
                .retain(|asset| instances.values().any(|i| i.asset == asset));
        }
        for call in calls {
            self.dispatch(&call, &mut errors);
        }
        // Handlers and woken tasks run here; what they allocate is not attributed to their
        // instances (one task each, no per-task measure yet), but the pressure checks see it.
        for (name, message) in &messages {
            self.tasks.deliver(&self.vm, name, message);
        }
        // Top-level code, reloads, calls and handlers may have filled the state too.
        self.relieve_memory_if_pressed(&mut errors);
        self.tasks.wake(&self.vm, elapsed);
        self.relieve_memory_if_pressed(&mut errors);
        self.update_instances(dt, &mut errors);
        self.report_task_errors(&mut errors);
        errors
    }

    /// The messages sent since the last frame that a script waits for, in order within each
    /// type (`world.send`'s first), then the events observed (see `world/event.rs`), in order.
    fn read_messages(
        &mut self,
        world: &mut World,
    ) -> Vec<(std::borrow::Cow<'static, str>, PendingMessage)> {
        let tasks = &self.tasks;
        let mut pending: Vec<(std::borrow::Cow<'static, str>, PendingMessage)> = Vec::new();
        let events = world
            .get_resource_mut::<ScriptEvents>()
            .map(|mut events| std::mem::take(&mut events.0))
            .unwrap_or_default();
        if let Some(messages) = world.get_resource::<Messages<LuaMessage>>() {
            for message in self.script_messages.read(messages) {
                if tasks.is_awaited(&message.name) {
                    let payload = message.payload.clone();
                    pending.push((
                        message.name.clone().into(),
                        Box::new(move |lua: &mlua::Lua| payload.to_lua(lua)),
                    ));
                }
            }
        }
        for (name, reader) in &mut self.typed_messages {
            for message in reader.read(world, tasks.is_awaited(name)) {
                pending.push(((*name).into(), message));
            }
        }
        if tasks.awaits_any() {
            for event in events {
                let name = event.name();
                if tasks.is_awaited(&name) {
                    pending.push((name.into(), event.into_message()));
                }
            }
        }
        pending
    }

    /// The errors of tasks (raised while running, or while closed), named after their
    /// instance's script, reported once while they repeat, as the callbacks' (see `Repeats`):
    /// within a frame one per instance, kind and line, with its count (a loop starting failing
    /// tasks must not flood the log), and across frames (an `every` failing at each tick). A
    /// task fails when its timer comes, not every frame: a repeat held back is reported with its
    /// count once its instance's tasks went [`TASK_ERRORS_QUIET`] frames without an error.
    fn report_task_errors(&mut self, errors: &mut Vec<LuaScriptError>) {
        let mut frame: Vec<(Entity, LuaScriptError)> = Vec::new();
        let mut first: bevy::platform::collections::HashMap<_, usize> = Default::default();
        for (Owner { entity, .. }, err) in self.tasks.take_errors() {
            let (path, target) = self
                .instances
                .get(&entity)
                .map_or(("scripts", entity), |instance| {
                    (&*instance.path, instance.target)
                });
            let error = LuaScriptError::from_lua(path, Some(target), &err);
            match first.entry((entity, error.kind as u8, error.line)) {
                bevy::platform::collections::hash_map::Entry::Occupied(at) => {
                    frame[*at.get()].1.count += 1;
                }
                bevy::platform::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(frame.len());
                    frame.push((entity, error));
                }
            }
        }
        let mut reported = Vec::new();
        for (entity, error) in frame {
            match self.instances.get_mut(&entity) {
                Some(instance) => {
                    reported.push(entity);
                    instance.task_errors.error(error, errors);
                }
                None => errors.push(error),
            }
        }
        for entity in &reported {
            match self
                .task_error_holders
                .iter_mut()
                .find(|(e, _)| e == entity)
            {
                Some((_, quiet)) => *quiet = 0,
                None => self.task_error_holders.push((*entity, 0)),
            }
        }
        self.task_error_holders.retain_mut(|(entity, quiet)| {
            let Some(instance) = self.instances.get_mut(entity) else {
                return false;
            };
            if !reported.contains(entity) {
                *quiet += 1;
                if *quiet >= TASK_ERRORS_QUIET {
                    instance.task_errors.quiet(errors);
                }
            }
            instance.task_errors.is_holding()
        });
    }

    /// `on_update` of every instance, in entity order; between two, the memory the first
    /// allocated is attributed to it, and a callback that leaves the state near its memory limit
    /// or was stopped hoarding is followed by [`LuaRuntime::relieve_memory`].
    fn update_instances(&mut self, dt: f64, errors: &mut Vec<LuaScriptError>) {
        let base = pressure_mark(self.memory_limit);
        if self.vm.used_memory() < base {
            self.memory_pressure = base;
        }
        self.top_memory.clear();
        let mut from = Bound::Unbounded;
        loop {
            let vm = &self.vm;
            let top_memory = &mut self.top_memory;
            let mut before = vm.used_memory();
            let mut relieve = None;
            // Listed first, so that the loop can look ahead: while one instance runs, the CPU
            // fetches the Lua objects of the one two on, and the `Instance` of the one four on
            // (whose list of objects is read two instances later). Measured against one and
            // three on, and three and six on: two and four gave the best frames.
            let mut instances: Vec<(&Entity, &mut Instance)> =
                self.instances.range_mut((from, Bound::Unbounded)).collect();
            for k in 0..instances.len() {
                if let Some((_, next)) = instances.get(k + 2) {
                    next.hot.prefetch();
                }
                if let Some((_, later)) = instances.get(k + 4) {
                    prefetch_object(&**later);
                }
                let entity = *instances[k].0;
                let instance = &mut *instances[k].1;
                let failed = instance.update(vm, &self.tasks, entity, dt, errors);
                // Chained: one measure per instance serves as this one's end and the next one's
                // start.
                let after = vm.used_memory();
                attribute(instance, after as i64 - before as i64);
                offer_top_memory(top_memory, instance);
                let hoarded = matches!(failed, Some(LuaScriptErrorKind::Memory))
                    || (matches!(failed, Some(LuaScriptErrorKind::Budget))
                        && after > before + GARBAGE_WORTH_COLLECTING);
                if hoarded || after > self.memory_pressure {
                    relieve = Some(entity);
                    break;
                }
                before = after;
            }
            let Some(at) = relieve else { break };
            self.relieve_memory(errors);
            from = Bound::Excluded(at);
        }
    }

    /// [`LuaRuntime::relieve_memory`] if the state is past the pressure mark.
    fn relieve_memory_if_pressed(&mut self, errors: &mut Vec<LuaScriptError>) {
        if self.vm.used_memory() > self.memory_pressure {
            self.relieve_memory(errors);
        }
    }

    /// A full collection; then, if the state is still near its memory limit, the instance
    /// holding the most memory is stopped (its environment dropped and collected).
    fn relieve_memory(&mut self, errors: &mut Vec<LuaScriptError>) {
        let collect = |vm: &Vm| {
            vm.release_dropped_calls();
            // Twice: what the first finalizes (closed upvalues, weak entries) goes in the second.
            let _ = vm.lua.gc_collect();
            let _ = vm.lua.gc_collect();
        };
        collect(&self.vm);
        let used = self.vm.used_memory();
        if used <= self.memory_pressure {
            return;
        }
        let largest = self
            .instances
            .iter_mut()
            .max_by_key(|(_, instance)| instance.memory.get());
        if let Some((entity, instance)) = largest
            && instance.memory.get() > 0
        {
            let held = instance.memory.get();
            let line = instance
                .last_error()
                .filter(|e| e.kind == LuaScriptErrorKind::Memory)
                .and_then(|e| e.line);
            let mut error = LuaScriptError::new(
                LuaScriptErrorKind::Memory,
                &instance.path,
                format!(
                    "not enough memory: the Lua state is near its limit ({} of {} MiB) and this script's instance holds the most ({} MiB): it was stopped",
                    used / MIB,
                    self.memory_limit / MIB,
                    held / MIB as i64
                ),
            );
            error.line = line;
            error.entity = Some(instance.target);
            if let Err(err) = instance.stop(&self.vm, &self.tasks, *entity) {
                errors.push(LuaScriptError::from_lua(
                    &instance.path,
                    Some(instance.target),
                    &err,
                ));
            }
            errors.push(error);
            collect(&self.vm);
        }
        let used = self.vm.used_memory();
        if used > self.memory_pressure {
            // Still full (the memory is held outside the instances): no collection after every
            // callback until it grows by another sixteenth.
            self.memory_pressure = used + self.memory_limit / 16;
        }
    }

    /// Runs one [`LuaCall`] on the instances it targets.
    /// A call naming a function none of the instances it targets defines is reported, once per
    /// function name: a typo must not pass silently.
    fn dispatch(&mut self, call: &LuaCall, errors: &mut Vec<LuaScriptError>) {
        let vm = &self.vm;
        // The path of an instance targeted, and whether one defines the function.
        let mut targeted: Option<Arc<str>> = None;
        let mut defined = false;
        let mut run = |entity: Entity, instance: &Instance, errors: &mut Vec<LuaScriptError>| {
            targeted.get_or_insert_with(|| instance.path.clone());
            if !instance.defines(&call.function) {
                return;
            }
            defined = true;
            match call.payload.to_lua(&vm.lua) {
                Ok(payload) => {
                    let ((), grown) = allocated(vm, || {
                        instance.call_function(
                            vm,
                            &self.tasks,
                            entity,
                            &call.function,
                            payload,
                            errors,
                        )
                    });
                    attribute(instance, grown);
                }
                Err(err) => errors.push(LuaScriptError::from_lua(
                    &instance.path,
                    Some(instance.target),
                    &err,
                )),
            }
        };
        match &call.target {
            LuaCallTarget::Entity(target) => {
                // Its own script, then those of its script entities, in order.
                let carriers = crate::world::with_world_ref(|world| {
                    let mut carriers = vec![*target];
                    if let Some(scripts) = world.get::<LuaScripts>(*target) {
                        carriers.extend_from_slice(scripts.entities());
                    }
                    carriers
                })
                .unwrap_or_default();
                for carrier in carriers {
                    if let Some(instance) = self.instances.get(&carrier)
                        && instance.target == *target
                    {
                        run(carrier, instance, errors);
                    }
                }
            }
            LuaCallTarget::Script(asset) => {
                for (entity, instance) in &self.instances {
                    if instance.asset == *asset {
                        run(*entity, instance, errors);
                    }
                }
            }
            LuaCallTarget::All => {
                for (entity, instance) in &self.instances {
                    run(*entity, instance, errors);
                }
            }
        }
        if let Some(path) = targeted
            && !defined
            && self.undefined_calls.insert(call.function.clone())
        {
            errors.push(LuaScriptError::new(
                LuaScriptErrorKind::Runtime,
                &path,
                format!(
                    "LuaCall: no instance it targets defines a function '{}' (the call was dropped; reported once)",
                    call.function
                ),
            ));
        }
    }

    /// What the diagnostics resource reports.
    pub(crate) fn stats(&self, stats: &mut LuaScriptStats) {
        stats.instances = self.instances.len();
        stats.tasks = self.tasks.waiting();
        stats.lua_memory = self.vm.used_memory();
        stats.top_memory.clone_from(&self.top_memory);
        stats.entity_handles = handle_count(&self.vm.lua);
    }

    /// Compares the entities' `LuaScript`s with the instances: both sorted by entity, so one
    /// pass. Run only when scripts were attached, detached or modified, or are still loading.
    fn plan(
        &mut self,
        world: &mut World,
        modified: &HashSet<AssetId<LuaScriptAsset>>,
        module_users: &HashSet<Arc<str>>,
    ) -> Plan {
        let mut attached: Vec<(Entity, AssetId<LuaScriptAsset>, Entity)> = world
            .query::<(Entity, &LuaScript, Option<&ScriptOf>)>()
            .iter(world)
            .map(|(entity, script, of)| (entity, script.0.id(), of.map_or(entity, |of| of.0)))
            .collect();
        attached.sort_unstable_by_key(|(entity, ..)| *entity);
        let Some(assets) = world.get_resource::<Assets<LuaScriptAsset>>() else {
            return Plan::default();
        };
        let server = world.get_resource::<AssetServer>();
        // Loaded, and so are the modules it requires by name.
        let ready = |script: &LuaScriptAsset| {
            server.is_none_or(|server| {
                crate::script::module::loaded_with_modules(server, assets, script)
            })
        };
        let mut plan = Plan::default();
        let mut waiting = false;
        let mut instances = self.instances.iter().peekable();
        for (entity, asset, target) in attached {
            while let Some((gone, _)) = instances.next_if(|(e, _)| **e < entity) {
                plan.detached.push(*gone);
            }
            match instances.next_if(|(e, _)| **e == entity) {
                Some((_, instance)) if instance.asset == asset && instance.target == target => {
                    if (modified.contains(&asset) || module_users.contains(&instance.path))
                        && let Some(script) = assets.get(asset)
                    {
                        let waits = names_a_wait(assets, script);
                        plan.reloads.push((entity, script.clone(), waits));
                    }
                    continue;
                }
                // Another script on the same entity: the old instance goes, the new one comes.
                Some(_) => plan.detached.push(entity),
                None => {}
            }
            match assets.get(asset) {
                Some(script) if ready(script) => {
                    let waits = names_a_wait(assets, script);
                    plan.creations
                        .push((entity, target, asset, script.clone(), waits));
                }
                Some(_) => waiting = true,
                // A script that failed to load (reported) is not waited for every frame; a
                // fixed file loads again and comes as a new asset event.
                None => {
                    waiting |= !server.is_some_and(|server| {
                        matches!(
                            server.get_load_state(asset),
                            Some(bevy::asset::LoadState::Failed(_))
                        )
                    })
                }
            }
        }
        plan.detached.extend(instances.map(|(entity, _)| *entity));
        self.waiting_for_assets = waiting;
        plan
    }

    /// Changed scripts and modules wait (in `pending_changes`) until the modules their new
    /// version requires by name are loaded: a script edited to require a new module reloads
    /// once that module is there.
    fn hold_back_unready(
        &mut self,
        world: &World,
        modified: &mut HashSet<AssetId<LuaScriptAsset>>,
    ) {
        if modified.is_empty() && self.pending_changes.is_empty() {
            return;
        }
        modified.extend(self.pending_changes.drain());
        let (Some(server), Some(assets)) = (
            world.get_resource::<AssetServer>(),
            world.get_resource::<Assets<LuaScriptAsset>>(),
        ) else {
            return;
        };
        modified.retain(|id| {
            let ready = assets.get(*id).is_none_or(|script| {
                crate::script::module::loaded_with_modules(server, assets, script)
            });
            if !ready {
                self.pending_changes.insert(*id);
            }
            ready
        });
    }

    /// `entity:get` caches its references; a component removed since (by Rust or by a
    /// script) must read as nil, so they are checked again.
    fn forget_references_after_removals(
        &mut self,
        world: &World,
        errors: &mut Vec<LuaScriptError>,
    ) {
        let removals = world.get_resource::<ComponentRemovals>().map_or(0, |r| r.0);
        if removals != self.removals_seen {
            self.removals_seen = removals;
            if let Err(err) = forget_references(&self.vm.lua) {
                errors.push(LuaScriptError::new(
                    LuaScriptErrorKind::Runtime,
                    "bevy_lunar",
                    err.to_string(),
                ));
            }
        }
    }

    fn install_type_tables(&mut self, world: &World, errors: &mut Vec<LuaScriptError>) {
        let Some(registry) = world.get_resource::<LuaTypeRegistry>() else {
            return;
        };
        let lua = &self.vm.lua;
        if !lua
            .app_data_ref::<ScriptTypes>()
            .is_some_and(|types| types.is_current(registry))
        {
            lua.set_app_data(ScriptTypes::of(registry));
        }
        for entry in &registry.messages[self.typed_messages.len()..] {
            self.typed_messages.push((entry.name, (entry.reader)()));
        }
        let mut installed = false;
        for entry in &registry.type_tables {
            if self.installed_type_tables.insert(entry.name) {
                installed = true;
                if let Err(err) = (entry.install)(lua) {
                    errors.push(LuaScriptError::new(
                        LuaScriptErrorKind::Runtime,
                        entry.name,
                        err.to_string(),
                    ));
                }
            }
        }
        // Type tables are shared: read-only to scripts, as the libraries.
        if installed && let Err(err) = self.vm.seal() {
            errors.push(LuaScriptError::new(
                LuaScriptErrorKind::Runtime,
                "bevy_lunar",
                err.to_string(),
            ));
        }
    }

    /// The scripts changed on disk since the last frame; failed (re)loads become errors.
    fn read_asset_events(
        &mut self,
        world: &World,
        errors: &mut Vec<LuaScriptError>,
    ) -> HashSet<AssetId<LuaScriptAsset>> {
        let mut modified = HashSet::default();
        if let Some(events) = world.get_resource::<Messages<AssetEvent<LuaScriptAsset>>>() {
            for event in self.asset_events.read(events) {
                match event {
                    AssetEvent::Modified { id } => {
                        modified.insert(*id);
                    }
                    // A script or module loaded (a failed one may load once fixed): plan again.
                    AssetEvent::Added { .. } | AssetEvent::LoadedWithDependencies { .. } => {
                        self.waiting_for_assets = true;
                    }
                    _ => {}
                }
            }
        }
        if let Some(failures) =
            world.get_resource::<Messages<AssetLoadFailedEvent<LuaScriptAsset>>>()
        {
            for failure in self.failed_loads.read(failures) {
                let path = failure.path.path().to_string_lossy().replace('\\', "/");
                let (kind, message) = load_failure(&failure.error);
                errors.push(LuaScriptError::new(kind, &path, message));
            }
        }
        modified
    }
}

/// The kind and message of a failed load: our loader's own error when it is one.
fn load_failure(error: &bevy::asset::AssetLoadError) -> (LuaScriptErrorKind, String) {
    if let bevy::asset::AssetLoadError::AssetLoaderError(loader_error) = error
        && let Some(ours) = loader_error.error().downcast_ref::<LuaScriptLoadError>()
    {
        return (LuaScriptErrorKind::Load, ours.to_string());
    }
    (LuaScriptErrorKind::Load, error.to_string())
}
