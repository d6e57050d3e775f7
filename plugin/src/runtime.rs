//! The Lua state and the script instances: creation, callbacks, hot reload, limits.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use bevy::asset::{AssetEvent, AssetId, AssetLoadFailedEvent, Assets};
use bevy::ecs::entity::Entity;
use bevy::ecs::message::{MessageCursor, Messages};
use bevy::ecs::world::World;
use bevy::log::{error, info};
use bevy::time::Time;
use mlua::{Function, HookTriggers, IntoLuaMulti, Lua, LuaOptions, StdLib, Table, Value, VmState};

use crate::asset::LuaScriptAsset;
use crate::error::{LuaScriptError, LuaScriptErrorKind};
use crate::handle::{EntityHandle, world_table};
use crate::script::LuaScript;
use crate::types::{LuaTypeRegistry, ScriptTypes};
use crate::world::WorldScope;

/// Figures of the scripting runtime, updated every frame: a resource of the app.
#[derive(bevy::ecs::resource::Resource, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LuaScriptStats {
    /// Script instances alive.
    pub instances: usize,
    /// Bytes the Lua state has allocated.
    pub lua_memory: usize,
}

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
pub(crate) struct RuntimeSettings {
    pub instruction_budget: u64,
    pub memory_limit: usize,
    pub extra_std_libs: StdLib,
}

/// How often the budget hook runs, in VM instructions.
const HOOK_PERIOD: u32 = 1000;

/// The instruction budget of the callback running now.
struct Budget {
    limit: u64,
    /// Instructions left; `i64::MAX` while no callback runs.
    remaining: Cell<i64>,
    exceeded: Cell<bool>,
}

/// One (entity, script) attachment.
struct Instance {
    asset: AssetId<LuaScriptAsset>,
    path: Arc<str>,
    env: Table,
    /// `on_update`, looked up once per (re)load: it runs every frame.
    on_update: Option<Function>,
    started: bool,
    /// The last error, held back while it repeats.
    repeated: Option<LuaScriptError>,
}

/// The scripting runtime: a non-send resource of the app, taken out of the world while scripts
/// run (see `world.rs`).
pub(crate) struct LuaRuntime {
    lua: Lua,
    budget: Rc<Budget>,
    instances: BTreeMap<Entity, Instance>,
    installed_type_tables: HashSet<&'static str>,
    asset_events: MessageCursor<AssetEvent<LuaScriptAsset>>,
    failed_loads: MessageCursor<AssetLoadFailedEvent<LuaScriptAsset>>,
}

impl LuaRuntime {
    pub(crate) fn new(settings: &RuntimeSettings) -> mlua::Result<Self> {
        let libs = StdLib::TABLE
            | StdLib::STRING
            | StdLib::MATH
            | StdLib::UTF8
            | StdLib::COROUTINE
            | StdLib::OS;
        let lua = Lua::new_with(libs | settings.extra_std_libs, LuaOptions::default())?;
        sandbox(&lua, settings.extra_std_libs.contains(StdLib::OS))?;
        lua.globals().set("world", world_table(&lua)?)?;
        lua.set_memory_limit(settings.memory_limit)?;
        let budget = Rc::new(Budget {
            limit: settings.instruction_budget,
            remaining: Cell::new(i64::MAX),
            exceeded: Cell::new(false),
        });
        install_budget_hook(&lua, &budget, HOOK_PERIOD)?;
        Ok(LuaRuntime {
            lua,
            budget,
            instances: BTreeMap::new(),
            installed_type_tables: HashSet::new(),
            asset_events: MessageCursor::default(),
            failed_loads: MessageCursor::default(),
        })
    }

    /// One frame of scripts: errors are returned for the caller to log and send.
    pub(crate) fn run_frame(&mut self, world: &mut World) -> Vec<LuaScriptError> {
        let mut errors = Vec::new();
        self.install_type_tables(world, &mut errors);
        let modified = self.read_asset_events(world, &mut errors);
        let attached = attached_scripts(world);
        let sources = script_sources(world, &attached);
        let dt = world
            .get_resource::<Time>()
            .map_or(0.0, |time| time.delta_secs_f64());

        let _scope = WorldScope::enter(world);
        // From here on the world is reached through the scope only.
        self.drop_detached(&attached, &mut errors);
        for (entity, asset) in &attached {
            let Some(script) = sources.get(asset) else {
                continue; // not loaded yet
            };
            match self.instances.get(entity) {
                Some(instance) if modified.contains(asset) && instance.asset == *asset => {
                    self.reload(*entity, script, &mut errors);
                }
                Some(_) => {}
                None => self.create(*entity, *asset, script, &mut errors),
            }
        }
        let entities: Vec<Entity> = self.instances.keys().copied().collect();
        for entity in entities {
            self.update(entity, dt, &mut errors);
        }
        errors
    }

    /// What the diagnostics resource reports.
    pub(crate) fn stats(&self) -> LuaScriptStats {
        LuaScriptStats {
            instances: self.instances.len(),
            lua_memory: self.lua.used_memory(),
        }
    }

    fn install_type_tables(&mut self, world: &World, errors: &mut Vec<LuaScriptError>) {
        let Some(registry) = world.get_resource::<LuaTypeRegistry>() else {
            return;
        };
        let current = self
            .lua
            .app_data_ref::<ScriptTypes>()
            .is_some_and(|types| types.is_current(registry));
        if !current {
            self.lua.set_app_data(ScriptTypes::of(registry));
        }
        for (name, install) in &registry.type_tables {
            if self.installed_type_tables.insert(name)
                && let Err(err) = install(&self.lua)
            {
                errors.push(LuaScriptError::new(
                    LuaScriptErrorKind::Runtime,
                    name,
                    err.to_string(),
                ));
            }
        }
    }

    /// The scripts changed on disk since the last frame; failed (re)loads become errors.
    fn read_asset_events(
        &mut self,
        world: &World,
        errors: &mut Vec<LuaScriptError>,
    ) -> HashSet<AssetId<LuaScriptAsset>> {
        let mut modified = HashSet::new();
        if let Some(events) = world.get_resource::<Messages<AssetEvent<LuaScriptAsset>>>() {
            for event in self.asset_events.read(events) {
                if let AssetEvent::Modified { id } = event {
                    modified.insert(*id);
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

    /// Calls `on_unload` of instances whose entity lost its script (or was despawned), and drops
    /// them.
    fn drop_detached(
        &mut self,
        attached: &[(Entity, AssetId<LuaScriptAsset>)],
        errors: &mut Vec<LuaScriptError>,
    ) {
        let attached: HashMap<Entity, AssetId<LuaScriptAsset>> = attached.iter().copied().collect();
        let gone: Vec<Entity> = self
            .instances
            .iter()
            .filter(|(entity, instance)| attached.get(entity) != Some(&instance.asset))
            .map(|(entity, _)| *entity)
            .collect();
        for entity in gone {
            if let Some(instance) = self.instances.remove(&entity) {
                let result = self.call::<Value>(&instance.env, "on_unload", ());
                if let Err(err) = result {
                    errors.push(LuaScriptError::from_lua(&instance.path, Some(entity), &err));
                }
            }
        }
    }

    fn create(
        &mut self,
        entity: Entity,
        asset: AssetId<LuaScriptAsset>,
        script: &LuaScriptAsset,
        errors: &mut Vec<LuaScriptError>,
    ) {
        match self.new_environment(entity, script) {
            Ok(env) => {
                self.instances.insert(
                    entity,
                    Instance {
                        asset,
                        path: script.path.clone(),
                        on_update: function(&env, "on_update"),
                        env,
                        started: false,
                        repeated: None,
                    },
                );
            }
            Err(err) => errors.push(LuaScriptError::from_lua(&script.path, Some(entity), &err)),
        }
    }

    /// A fresh environment for `entity`, with the script's top-level code run in it.
    fn new_environment(&self, entity: Entity, script: &LuaScriptAsset) -> mlua::Result<Table> {
        let lua = &self.lua;
        let env = lua.create_table()?;
        let fallback = lua.create_table()?;
        fallback.raw_set("__index", lua.globals())?;
        env.set_metatable(Some(fallback))?;
        env.raw_set("entity", EntityHandle::new(entity))?;
        env.raw_set("print", print_function(lua, script.path.clone())?)?;
        let chunk = lua
            .load(&*script.source)
            .set_name(format!("@{}", script.path))
            .set_mode(mlua::chunk::ChunkMode::Text)
            .set_environment(env.clone())
            .into_function()?;
        self.budgeted(|| chunk.call::<()>(()))?;
        Ok(env)
    }

    /// Hot reload: `on_unload` in the old environment, the new code in a fresh one, then
    /// `on_reload(saved)` (or `on_start` when the script has no `on_reload`). If the new code
    /// fails to run, the old environment stays.
    fn reload(
        &mut self,
        entity: Entity,
        script: &LuaScriptAsset,
        errors: &mut Vec<LuaScriptError>,
    ) {
        let Some(instance) = self.instances.get(&entity) else {
            return;
        };
        let saved = match self.call::<Value>(&instance.env, "on_unload", ()) {
            Ok(saved) => saved.unwrap_or(Value::Nil),
            Err(err) => {
                errors.push(LuaScriptError::from_lua(&script.path, Some(entity), &err));
                Value::Nil
            }
        };
        let env = match self.new_environment(entity, script) {
            Ok(env) => env,
            Err(err) => {
                errors.push(LuaScriptError::from_lua(&script.path, Some(entity), &err));
                return;
            }
        };
        let has_on_reload = matches!(env.raw_get::<Value>("on_reload"), Ok(Value::Function(_)));
        let result = if has_on_reload {
            self.call::<()>(&env, "on_reload", saved).map(drop)
        } else {
            self.call::<()>(&env, "on_start", ()).map(drop)
        };
        if let Some(instance) = self.instances.get_mut(&entity) {
            instance.on_update = function(&env, "on_update");
            instance.env = env;
            instance.started = true;
            instance.path = script.path.clone();
        }
        if let Err(err) = result {
            errors.push(LuaScriptError::from_lua(&script.path, Some(entity), &err));
        }
        info!("reloaded {} for entity {entity}", script.path);
    }

    fn update(&mut self, entity: Entity, dt: f64, errors: &mut Vec<LuaScriptError>) {
        let Some(instance) = self.instances.get(&entity) else {
            return;
        };
        let mut result = Ok(());
        if !instance.started {
            let env = instance.env.clone();
            result = self.call::<()>(&env, "on_start", ()).map(drop);
        }
        if result.is_ok()
            && let Some(on_update) = &instance.on_update
        {
            result = self.budgeted(|| on_update.call::<()>(dt));
        }
        let Some(instance) = self.instances.get_mut(&entity) else {
            return;
        };
        instance.started = true;
        match result {
            Ok(()) => {
                if let Some(repeated) = instance.repeated.take().filter(|e| e.count > 1) {
                    errors.push(repeated);
                }
            }
            Err(err) => {
                let error = LuaScriptError::from_lua(&instance.path, Some(entity), &err);
                match &mut instance.repeated {
                    Some(previous)
                        if previous.message == error.message && previous.line == error.line =>
                    {
                        previous.count += 1;
                    }
                    previous => {
                        if let Some(old) = previous.take().filter(|e| e.count > 1) {
                            errors.push(old);
                        }
                        errors.push(error.clone());
                        *previous = Some(error);
                    }
                }
            }
        }
    }

    /// Calls the global `name` of `env` if it is a function, within the budget. `Ok(None)` when
    /// the script does not define it.
    fn call<R: mlua::FromLuaMulti>(
        &self,
        env: &Table,
        name: &str,
        args: impl IntoLuaMulti,
    ) -> mlua::Result<Option<R>> {
        match env.raw_get::<Value>(name)? {
            Value::Function(function) => self.budgeted(|| function.call::<R>(args)).map(Some),
            _ => Ok(None),
        }
    }

    /// Runs `f` with the instruction budget armed.
    fn budgeted<R>(&self, f: impl FnOnce() -> mlua::Result<R>) -> mlua::Result<R> {
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

/// The function `name` of `env`, if the script defines one.
fn function(env: &Table, name: &str) -> Option<Function> {
    env.raw_get::<Option<Function>>(name).ok().flatten()
}

/// Counts instructions every `period`; past the budget, raises an error on every instruction
/// until the callback returns, so that a `pcall` in the script cannot swallow it.
fn install_budget_hook(lua: &Lua, budget: &Rc<Budget>, period: u32) -> mlua::Result<()> {
    let budget = Rc::clone(budget);
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(period),
        move |lua, _debug| {
            if budget.exceeded.get() {
                return Err(mlua::Error::external(BudgetExceeded {
                    budget: budget.limit,
                }));
            }
            let remaining = budget.remaining.get().saturating_sub(i64::from(period));
            budget.remaining.set(remaining);
            if remaining >= 0 {
                return Ok(VmState::Continue);
            }
            budget.exceeded.set(true);
            install_budget_hook(lua, &budget, 1)?;
            Err(mlua::Error::external(BudgetExceeded {
                budget: budget.limit,
            }))
        },
    )
}

/// Removes what a game script must not reach: files, the debug library, binary chunks, and all
/// of `os` but `clock`, `time` and `date` (unless the game opted into the full `os`).
fn sandbox(lua: &Lua, keep_os: bool) -> mlua::Result<()> {
    lua.load(
        r#"
        local load = load
        _G.load = function(chunk, name, mode, env) return load(chunk, name, "t", env) end
        dofile, loadfile = nil, nil
        local keep_os = ...
        if not keep_os then
            local os = os
            _G.os = { clock = os.clock, time = os.time, date = os.date }
        end
        "#,
    )
    .set_name("=[bevy_lunar sandbox]")
    .call::<()>(keep_os)?;
    lua.globals()
        .set("print", print_function(lua, Arc::from("lua"))?)
}

/// `print` to Bevy's log, naming the script.
fn print_function(lua: &Lua, path: Arc<str>) -> mlua::Result<Function> {
    lua.create_function(move |lua, values: mlua::Variadic<Value>| {
        let tostring: Function = lua.globals().get("tostring")?;
        let parts = values
            .into_iter()
            .map(|v| tostring.call::<String>(v))
            .collect::<mlua::Result<Vec<_>>>()?;
        info!(target: "lua", "[{path}] {}", parts.join("\t"));
        Ok(())
    })
}

/// (entity, script) for every entity with a `LuaScript`.
fn attached_scripts(world: &mut World) -> Vec<(Entity, AssetId<LuaScriptAsset>)> {
    let mut query = world.query::<(Entity, &LuaScript)>();
    query
        .iter(world)
        .map(|(entity, script)| (entity, script.0.id()))
        .collect()
}

/// The loaded sources of the given scripts.
fn script_sources(
    world: &World,
    attached: &[(Entity, AssetId<LuaScriptAsset>)],
) -> HashMap<AssetId<LuaScriptAsset>, LuaScriptAsset> {
    let Some(assets) = world.get_resource::<Assets<LuaScriptAsset>>() else {
        return Default::default();
    };
    attached
        .iter()
        .filter_map(|(_, id)| assets.get(*id).map(|asset| (*id, asset.clone())))
        .collect()
}

/// The kind and message of a failed load: our loader's own error when it is one.
fn load_failure(error: &bevy::asset::AssetLoadError) -> (LuaScriptErrorKind, String) {
    use crate::asset::LuaScriptLoadError;
    if let bevy::asset::AssetLoadError::AssetLoaderError(loader_error) = error
        && let Some(ours) = loader_error.error().downcast_ref::<LuaScriptLoadError>()
    {
        let kind = match ours {
            LuaScriptLoadError::Syntax { .. } => LuaScriptErrorKind::Syntax,
            _ => LuaScriptErrorKind::Load,
        };
        return (kind, ours.to_string());
    }
    (LuaScriptErrorKind::Load, error.to_string())
}
