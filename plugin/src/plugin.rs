//! The Bevy plugin: wires the asset, the runtime and the systems.

use std::path::PathBuf;

use bevy::app::{App, Plugin, Startup, Update};
use bevy::asset::AssetApp;
use bevy::ecs::component::{Component, Mutable};
use bevy::ecs::event::{EntityEvent, Event};
use bevy::ecs::lifecycle::Remove;
use bevy::ecs::message::Message;
use bevy::ecs::observer::On;
use bevy::ecs::resource::Resource;
use bevy::ecs::schedule::{IntoScheduleConfigs, SystemSet};
use bevy::ecs::system::ResMut;
use bevy::ecs::world::World;
use bevy::log::{error, info, warn};
use bevy::reflect::{GetTypeRegistration, Reflect, TypePath};
use mlua::StdLib;

use crate::definitions;
use crate::error::LuaScriptError;
use crate::script::asset::{LuaScriptAsset, LuaScriptLoader};
use crate::script::component::ScriptAttachments;
use crate::script::runtime::{LuaRuntime, LuaScriptStats};
use crate::userdata::LuaUserData;
use crate::vm::VmSettings;
use crate::vm::budget::BudgetWatchdog;
use crate::world::message::{LuaCall, LuaMessage};
use crate::world::registry::{ComponentRemovals, LuaTypeRegistry};

/// Lua scripting for a Bevy app.
///
/// ```no_run
/// use bevy::prelude::*;
/// use bevy_lunar::prelude::*;
///
/// #[derive(Component, LuaUserData)]
/// struct Player {
///     pub health: f64,
/// }
///
/// App::new()
///     .add_plugins((MinimalPlugins, AssetPlugin::default(), LuaScriptingPlugin::default()))
///     .register_lua_component::<Player>()
///     .run();
/// ```
#[derive(Clone, Debug)]
pub struct LuaScriptingPlugin {
    /// VM instructions one callback (or a script's top-level code) may run before it is stopped.
    /// On Linux they are counted from when the callback has run for 5 to 10 ms: until then no
    /// instruction hook slows behaving scripts down.
    pub instruction_budget: u64,
    /// Bytes the Lua state may allocate; past it allocations fail with a script error.
    pub memory_limit: usize,
    /// Standard libraries to open beyond the sandbox's: `StdLib::IO`, `StdLib::OS` for all of
    /// `os`, `StdLib::PACKAGE`. `StdLib::DEBUG` (and LuaJIT's `StdLib::FFI`) cannot be offered:
    /// with them a script could remove the instruction budget's hook or reach other scripts'
    /// state, so the plugin refuses them when it is added to the `App`.
    pub extra_std_libs: StdLib,
    /// How the instruction budget starts counting a long callback: by default (Linux) a
    /// watchdog thread signals it after 5 to 10 ms. See [`BudgetWatchdog`].
    pub watchdog: BudgetWatchdog,
    /// Exposes every component and resource type of the app's type registry that has
    /// `#[reflect(Component)]` or `#[reflect(Resource)]` (several hundred with Bevy's default
    /// plugins), as [`LuaAppExt::register_lua_reflect`] does one by one. Off by default: it
    /// costs a scan of the registry when scripts first run, and one class per type in the
    /// editor definitions. Names that two types share go to the first found.
    pub reflect_all: bool,
}

impl Default for LuaScriptingPlugin {
    fn default() -> Self {
        LuaScriptingPlugin {
            instruction_budget: 10_000_000,
            memory_limit: 256 * 1024 * 1024,
            extra_std_libs: StdLib::NONE,
            watchdog: BudgetWatchdog::Auto,
            reflect_all: false,
        }
    }
}

/// The systems that run scripts; order your systems `.before(LuaScriptSet)` or `.after(...)`.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LuaScriptSet;

impl LuaScriptingPlugin {
    /// The libraries of `extra_std_libs` that scripts cannot be given, with why.
    fn refused_std_libs(&self) -> Option<String> {
        let mut refused = Vec::new();
        if self.extra_std_libs.contains(StdLib::DEBUG) {
            refused.push("StdLib::DEBUG (debug.sethook would remove the instruction budget, debug.getupvalue and debug.setmetatable reach other scripts' state)");
        }
        #[cfg(feature = "luajit")]
        if self.extra_std_libs.contains(StdLib::FFI) {
            refused.push("StdLib::FFI (scripts could call any C function and read any memory)");
        }
        (!refused.is_empty()).then(|| refused.join("; "))
    }
}

impl Plugin for LuaScriptingPlugin {
    fn build(&self, app: &mut App) {
        if let Some(refused) = self.refused_std_libs() {
            panic!(
                "bevy_lunar: LuaScriptingPlugin.extra_std_libs asks for what the sandbox cannot offer: {refused}. Remove it from extra_std_libs."
            );
        }
        let settings = VmSettings {
            instruction_budget: self.instruction_budget,
            memory_limit: self.memory_limit,
            extra_std_libs: self.extra_std_libs,
            watchdog: self.watchdog,
        };
        let runtime = LuaRuntime::new(&settings).expect("bevy_lunar: cannot create the Lua state");
        app.init_asset::<LuaScriptAsset>()
            .register_asset_loader(LuaScriptLoader)
            .add_message::<LuaScriptError>()
            .add_message::<LuaMessage>()
            .add_message::<LuaCall>()
            .init_resource::<LuaTypeRegistry>()
            .init_resource::<LuaScriptStats>()
            .init_resource::<ScriptAttachments>()
            .insert_non_send(runtime)
            .add_systems(Update, run_scripts.in_set(LuaScriptSet));
        app.world_mut()
            .resource_mut::<LuaTypeRegistry>()
            .reflect_requests
            .all = self.reflect_all;
        crate::world::event::observe_despawns::<crate::script::component::LuaScript>(app);
        crate::bevy_types::register(app);
    }
}

/// Runs every script instance for this frame.
fn run_scripts(world: &mut World) {
    crate::world::reflect::resolve(world);
    // Taken out while scripts run, so that nothing holds a borrow into the world they reach.
    let Some(mut runtime) = world.remove_non_send::<LuaRuntime>() else {
        return;
    };
    let errors = runtime.run_frame(world);
    let mut stats = world
        .remove_resource::<LuaScriptStats>()
        .unwrap_or_default();
    runtime.stats(&mut stats);
    world.insert_resource(stats);
    world.insert_non_send(runtime);
    for err in errors {
        error!("{err}");
        world.write_message(err);
    }
}

/// Registers Rust types with the scripts of an [`App`].
pub trait LuaAppExt {
    /// Makes a component reachable as `entity:get("T")` (live), `entity:has`, `entity:insert`,
    /// `entity:remove` and `world.query("T")`, and installs the type table `T`.
    fn register_lua_component<T: Component<Mutability = Mutable> + LuaUserData>(
        &mut self,
    ) -> &mut Self;

    /// Installs the type table `T` (its static functions, such as constructors).
    fn register_lua_type<T: LuaUserData>(&mut self) -> &mut Self;

    /// Makes a resource reachable as `world.resource("T")` (live), and installs the type table.
    fn register_lua_resource<T: Resource<Mutability = Mutable> + LuaUserData>(
        &mut self,
    ) -> &mut Self;

    /// Makes a Bevy [`Message`] reachable from scripts, and installs its type table: a script
    /// writes one with `world.write(T.new(...))` (Rust reads it with a `MessageReader<T>`), and
    /// receives those written by Rust or by scripts with `world.on("T", function(m) ... end)`
    /// or `wait_for("T")`. Adds the message to the app if it is not yet.
    ///
    /// ```
    /// use bevy::prelude::*;
    /// use bevy_lunar::prelude::*;
    ///
    /// #[derive(Message, LuaUserData, Clone)]
    /// pub struct Hit {
    ///     pub target: Entity,
    ///     pub damage: i64,
    /// }
    ///
    /// App::new()
    ///     .add_plugins((MinimalPlugins, AssetPlugin::default(), LuaScriptingPlugin::default()))
    ///     .register_lua_message::<Hit>();
    /// ```
    fn register_lua_message<T: Message + LuaUserData + Clone>(&mut self) -> &mut Self;

    /// Makes a Bevy [`EntityEvent`] reachable from scripts, and installs its type table: a
    /// script triggers one with `world.trigger(T.new(...))` (Rust observers run at once), and
    /// the scripts of its target entity receive every one triggered (by Rust or by scripts) with
    /// `entity:on("T", function(event) ... end)` or `wait_for("T@" .. entity:id())`, in the
    /// plugin's next run.
    ///
    /// ```
    /// use bevy::prelude::*;
    /// use bevy_lunar::prelude::*;
    ///
    /// #[derive(EntityEvent, LuaUserData, Clone)]
    /// pub struct Damaged {
    ///     pub entity: Entity,
    ///     pub amount: f64,
    /// }
    ///
    /// App::new()
    ///     .add_plugins((MinimalPlugins, AssetPlugin::default(), LuaScriptingPlugin::default()))
    ///     .register_lua_event::<Damaged>();
    /// ```
    fn register_lua_event<T>(&mut self) -> &mut Self
    where
        T: EntityEvent + LuaUserData + Clone,
        for<'a> <T as Event>::Trigger<'a>: Default;

    /// Exposes the reflected component or resource `T` to scripts without a derive: any type
    /// with `#[derive(Reflect)]` and `#[reflect(Component)]` or `#[reflect(Resource)]`, such as
    /// Bevy's `Name`, `Visibility` or `ClearColor`. Scripts reach it as they reach derived
    /// types (`entity:get("Name")`, `world.resource("ClearColor")`, `world.query`), its fields
    /// through reflection; `world.construct("T", { ... })` makes a value of it. A type that
    /// only derives `Reflect` (no component, no resource) can still be constructed and used as
    /// a field value. A derived registration of the same type wins. See the README's
    /// "Reflected types".
    ///
    /// ```no_run
    /// # use bevy::prelude::*;
    /// # use bevy_lunar::prelude::*;
    /// App::new()
    ///     .add_plugins((MinimalPlugins, AssetPlugin::default(), LuaScriptingPlugin::default()))
    ///     .register_lua_reflect::<Name>();
    /// ```
    fn register_lua_reflect<T: Reflect + TypePath + GetTypeRegistration>(&mut self) -> &mut Self;

    /// The LuaLS / EmmyLua definition file of the types registered so far and of the script
    /// API (see [`definitions`](crate::definitions)).
    fn lua_definitions(&self) -> String;

    /// Keeps the editor definitions at `path` up to date: in debug builds, on start, the file is
    /// rewritten when the registered types changed. A relative path is taken from the project
    /// folder, as Bevy takes `assets/`. Also writes a `.luarc.json` that points VS Code's Lua
    /// extension, EmmyLua and lua_ls at it, one folder above the file's folder
    /// (`assets/.luarc.json` for `assets/types/lunar.lua`), unless one is there.
    ///
    /// ```no_run
    /// # use bevy::prelude::*;
    /// # use bevy_lunar::prelude::*;
    /// App::new()
    ///     .add_plugins((DefaultPlugins, LuaScriptingPlugin::default()))
    ///     .write_lua_definitions("assets/types/lunar.lua");
    /// ```
    fn write_lua_definitions(&mut self, path: impl Into<PathBuf>) -> &mut Self;
}

impl LuaAppExt for App {
    fn register_lua_component<T: Component<Mutability = Mutable> + LuaUserData>(
        &mut self,
    ) -> &mut Self {
        self.init_resource::<LuaTypeRegistry>()
            .init_resource::<ComponentRemovals>()
            .add_observer(
                |_: On<Remove, T>, mut removals: ResMut<ComponentRemovals>| {
                    removals.0 += 1;
                },
            );
        crate::world::event::observe_component::<T>(self, T::TYPE_NAME);
        self.world_mut()
            .resource_mut::<LuaTypeRegistry>()
            .add_component::<T>();
        self
    }

    fn register_lua_type<T: LuaUserData>(&mut self) -> &mut Self {
        self.init_resource::<LuaTypeRegistry>();
        self.world_mut()
            .resource_mut::<LuaTypeRegistry>()
            .add_type::<T>();
        self
    }

    fn register_lua_resource<T: Resource<Mutability = Mutable> + LuaUserData>(
        &mut self,
    ) -> &mut Self {
        self.init_resource::<LuaTypeRegistry>();
        self.world_mut()
            .resource_mut::<LuaTypeRegistry>()
            .add_resource::<T>();
        self
    }

    fn register_lua_message<T: Message + LuaUserData + Clone>(&mut self) -> &mut Self {
        self.add_message::<T>().init_resource::<LuaTypeRegistry>();
        self.world_mut()
            .resource_mut::<LuaTypeRegistry>()
            .add_message::<T>();
        self
    }

    fn register_lua_event<T>(&mut self) -> &mut Self
    where
        T: EntityEvent + LuaUserData + Clone,
        for<'a> <T as Event>::Trigger<'a>: Default,
    {
        crate::world::event::observe_entity_event::<T>(self);
        self.init_resource::<LuaTypeRegistry>();
        self.world_mut()
            .resource_mut::<LuaTypeRegistry>()
            .add_event::<T>(crate::world::event::trigger::<T>);
        self
    }

    fn register_lua_reflect<T: Reflect + TypePath + GetTypeRegistration>(&mut self) -> &mut Self {
        self.register_type::<T>().init_resource::<LuaTypeRegistry>();
        self.world_mut()
            .resource_mut::<LuaTypeRegistry>()
            .reflect_requests
            .types
            .push(std::any::TypeId::of::<T>());
        crate::world::reflect::resolve(self.world_mut());
        self
    }

    fn lua_definitions(&self) -> String {
        self.world()
            .get_resource::<LuaTypeRegistry>()
            .map(LuaTypeRegistry::lua_definitions)
            .unwrap_or_else(|| LuaTypeRegistry::default().lua_definitions())
    }

    fn write_lua_definitions(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        let path = definitions::project_path(path.into());
        self.init_resource::<LuaTypeRegistry>();
        // At start, when every type is registered. Only debug builds write: a shipped game
        // does not rewrite its own files.
        if cfg!(debug_assertions) {
            self.add_systems(Startup, move |world: &mut World| {
                match definitions::write(&path, &{
                    // Every reflected type exposed by then (`reflect_all`) is in the file.
                    crate::world::reflect::resolve(world);
                    world.resource::<LuaTypeRegistry>().lua_definitions()
                }) {
                    Ok(true) => info!("bevy_lunar: wrote Lua definitions to {}", path.display()),
                    Ok(false) => {}
                    Err(err) => warn!(
                        "bevy_lunar: cannot write Lua definitions to {}: {err}",
                        path.display()
                    ),
                }
            });
        }
        self
    }
}
