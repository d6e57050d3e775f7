//! The Rust types scripts can name: components, resources and plain derived types.

use std::collections::BTreeMap;
use std::sync::Arc;

use bevy::ecs::component::{Component, ComponentId, Mutable};
use bevy::ecs::entity::Entity;
use bevy::ecs::message::{Message, MessageCursor, Messages};
use bevy::ecs::resource::Resource;
use bevy::ecs::world::World;
use bevy::reflect::TypeRegistryArc;
use mlua::{AnyUserData, Lua, Value};

use crate::definitions::{ClassDef, Definitions, ScriptApi};
use crate::userdata::{LuaRef, LuaUserData, register_type};
use crate::world::kept::WalkColumn;
use crate::world::place::{ComponentPlace, ResourcePlace, stale_despawned};
use crate::world::reflect::{self, Leaf, Leaves, ReflectRequests, ReflectedType};
use crate::world::with_world_ref;

/// How many registered components were removed (or their entities despawned) so far: when it
/// changes, the runtime forgets the references `entity:get` cached.
#[derive(Resource, Default)]
pub(crate) struct ComponentRemovals(pub u64);

/// A type with a global type table: how to install it, and how editors see it.
#[derive(Clone, Copy)]
pub(crate) struct TypeEntry {
    pub name: &'static str,
    /// Installs the type table on a Lua state.
    pub install: fn(&Lua) -> mlua::Result<()>,
    /// Adds the type's class to editor definitions.
    pub define: fn(&mut Definitions) -> String,
}

/// What the runtime needs to know of one registered component type, as plain functions.
#[derive(Clone, Copy)]
pub(crate) struct TypedComponent {
    /// A new live reference to the component of the entity (which must have it).
    pub new_ref: fn(&Lua, Entity) -> mlua::Result<AnyUserData>,
    pub has: fn(&World, Entity) -> Option<bool>,
    /// `entity:insert(value)`: `Ok(false)` when `value` is not this type.
    pub insert: fn(&mut World, Entity, &AnyUserData) -> mlua::Result<bool>,
    pub remove: fn(&mut World, Entity) -> bool,
    pub component_id: fn(&mut World) -> ComponentId,
    /// Where a walk over many entities (`query:each()`) finds this component.
    pub walk_column: fn() -> WalkColumn,
}

/// A component scripts can name: derived (typed, fast) or reflected (see `world/reflect`).
#[derive(Clone)]
pub(crate) enum ComponentEntry {
    Typed(TypedComponent),
    Reflected(Arc<ReflectedType>),
}

impl ComponentEntry {
    /// A new live reference to the component of `entity` (which must have it).
    pub(crate) fn new_ref(&self, lua: &Lua, entity: Entity) -> mlua::Result<AnyUserData> {
        match self {
            ComponentEntry::Typed(typed) => (typed.new_ref)(lua, entity),
            ComponentEntry::Reflected(ty) => reflect::component_ref(lua, ty, entity),
        }
    }

    /// Whether `entity` has the component; `None` when there is no such entity.
    pub(crate) fn has(&self, world: &World, entity: Entity) -> Option<bool> {
        match self {
            ComponentEntry::Typed(typed) => (typed.has)(world, entity),
            ComponentEntry::Reflected(ty) => reflect::has(ty, world, entity),
        }
    }

    /// Removes the component from `entity`; whether it had one.
    pub(crate) fn remove(&self, world: &mut World, entity: Entity) -> bool {
        match self {
            ComponentEntry::Typed(typed) => (typed.remove)(world, entity),
            ComponentEntry::Reflected(ty) => reflect::remove(ty, world, entity),
        }
    }

    /// Where a walk over many entities (`query:each()`) finds this component.
    pub(crate) fn walk_column(&self) -> WalkColumn {
        match self {
            ComponentEntry::Typed(typed) => (typed.walk_column)(),
            ComponentEntry::Reflected(_) => WalkColumn::none(),
        }
    }

    pub(crate) fn component_id(&self, world: &mut World) -> Option<ComponentId> {
        match self {
            ComponentEntry::Typed(typed) => Some((typed.component_id)(world)),
            ComponentEntry::Reflected(ty) => ty.component_id,
        }
    }
}

/// A resource scripts can name.
#[derive(Clone)]
pub(crate) enum ResourceEntry {
    Typed(fn(&Lua) -> mlua::Result<Value>),
    Reflected(Arc<ReflectedType>),
}

impl ResourceEntry {
    /// `world.resource(name)`: a live reference, nil when the world has none.
    pub(crate) fn get(&self, lua: &Lua) -> mlua::Result<Value> {
        match self {
            ResourceEntry::Typed(get) => get(lua),
            ResourceEntry::Reflected(ty) => reflect::resource_ref(lua, ty),
        }
    }
}

/// A registered message type: scripts write it with `world.write`, and receive it with
/// `world.on(name, fn)` and `wait_for(name)`.
#[derive(Clone, Copy)]
pub(crate) struct MessageEntry {
    pub name: &'static str,
    /// `world.write(value)`: `Ok(false)` when `value` is not this type.
    pub write: fn(&mut World, &AnyUserData) -> mlua::Result<bool>,
    /// A reader of the type's messages, for the runtime.
    pub reader: fn() -> Box<dyn ScriptMessages>,
}

/// A message on its way to scripts: each call makes a Lua value of it (each script gets its
/// own copy).
pub(crate) type PendingMessage = Box<dyn Fn(&Lua) -> mlua::Result<Value> + Send + Sync>;

/// A cursor over one message type's messages.
pub(crate) trait ScriptMessages {
    /// The messages sent since the last read, in order; none (the cursor only moves on) when
    /// they are not `wanted` (no script waits for one).
    fn read(&mut self, world: &World, wanted: bool) -> Vec<PendingMessage>;
}

struct TypedMessages<T: Message>(MessageCursor<T>);

impl<T: Message + LuaUserData + Clone> ScriptMessages for TypedMessages<T> {
    fn read(&mut self, world: &World, wanted: bool) -> Vec<PendingMessage> {
        let Some(messages) = world.get_resource::<Messages<T>>() else {
            return Vec::new();
        };
        if !wanted {
            self.0.clear(messages);
            return Vec::new();
        }
        self.0
            .read(messages)
            .map(|message| pending_userdata(message.clone()))
            .collect()
    }
}

/// `value` on its way to scripts, as a new userdata for each.
pub(crate) fn pending_userdata<T: LuaUserData + Clone + Send + Sync>(value: T) -> PendingMessage {
    Box::new(move |lua: &Lua| {
        mlua::IntoLua::into_lua(crate::userdata::NewUserData(value.clone()), lua)
    })
}

/// Every type registered through [`LuaAppExt`](crate::LuaAppExt). A resource of the app; the
/// runtime keeps a copy of its entries in the Lua state (see `ScriptTypes`).
#[derive(Resource)]
pub struct LuaTypeRegistry {
    pub(crate) components: BTreeMap<&'static str, ComponentEntry>,
    pub(crate) resources: BTreeMap<&'static str, ResourceEntry>,
    /// Every exposed reflected type (components, resources and plain values), by name.
    pub(crate) reflected: BTreeMap<&'static str, Arc<ReflectedType>>,
    /// Reflected types asked for and not resolved yet (see `world/reflect`).
    pub(crate) reflect_requests: ReflectRequests,
    /// The app's type registry, once a reflected type was resolved.
    pub(crate) type_registry: Option<TypeRegistryArc>,
    /// Types that cross reflected values as typed values (see `world/reflect/leaf.rs`).
    pub(crate) leaves: Leaves,
    /// The global type tables, installed on the Lua state once each.
    pub(crate) type_tables: Vec<TypeEntry>,
    pub(crate) messages: Vec<MessageEntry>,
    /// Entity event types: `world.trigger(value)`, `Ok(false)` when `value` is not the type.
    pub(crate) events: Vec<(&'static str, EventTrigger)>,
}

impl Default for LuaTypeRegistry {
    fn default() -> Self {
        LuaTypeRegistry {
            components: BTreeMap::new(),
            resources: BTreeMap::new(),
            reflected: BTreeMap::new(),
            reflect_requests: ReflectRequests::default(),
            type_registry: None,
            leaves: reflect::builtin_leaves(),
            type_tables: Vec::new(),
            messages: Vec::new(),
            events: Vec::new(),
        }
    }
}

/// `world.trigger(value)` (no entity) or `entity:trigger(value)` for one entity event type.
pub(crate) type EventTrigger = fn(&mut World, &AnyUserData, Option<Entity>) -> mlua::Result<bool>;

impl LuaTypeRegistry {
    pub(crate) fn add_component<T: Component<Mutability = Mutable> + LuaUserData>(&mut self) {
        self.components.insert(
            T::TYPE_NAME,
            ComponentEntry::Typed(TypedComponent {
                new_ref: ComponentPlace::<T>::new_ref,
                has: |world, entity| world.get_entity(entity).ok().map(|e| e.contains::<T>()),
                insert: insert_component::<T>,
                remove: |world, entity| {
                    world
                        .get_entity_mut(entity)
                        .ok()
                        .and_then(|mut e| e.take::<T>())
                        .is_some()
                },
                component_id: |world| world.register_component::<T>(),
                walk_column: WalkColumn::of::<T>,
            }),
        );
        // Registered as a plain type first or not, a component's type table also installs
        // the fast field access of its references.
        self.type_entry::<T>().install = |lua| {
            ComponentPlace::<T>::install_fast_access(lua);
            register_type::<T>(lua).map(drop)
        };
    }

    pub(crate) fn add_resource<T: Resource<Mutability = Mutable> + LuaUserData>(&mut self) {
        self.resources
            .insert(T::TYPE_NAME, ResourceEntry::Typed(get_resource::<T>));
        self.add_type::<T>();
    }

    pub(crate) fn add_message<T: Message + LuaUserData + Clone>(&mut self) {
        if self.messages.iter().any(|m| m.name == T::TYPE_NAME) {
            return;
        }
        self.messages.push(MessageEntry {
            name: T::TYPE_NAME,
            write: write_message::<T>,
            reader: || Box::new(TypedMessages::<T>(MessageCursor::default())),
        });
        self.add_type::<T>();
    }

    pub(crate) fn add_event<T: LuaUserData>(&mut self, trigger: EventTrigger) {
        if !self.events.iter().any(|(name, _)| *name == T::TYPE_NAME) {
            self.events.push((T::TYPE_NAME, trigger));
        }
        self.add_type::<T>();
    }

    pub(crate) fn add_type<T: LuaUserData>(&mut self) {
        self.type_entry::<T>();
    }

    /// The type table entry of `T`, added on first use.
    fn type_entry<T: LuaUserData>(&mut self) -> &mut TypeEntry {
        let index = match self.type_tables.iter().position(|t| t.name == T::TYPE_NAME) {
            Some(index) => index,
            None => {
                // Inside reflected values, the type crosses as itself.
                if let Some(leaf) = Leaf::derived::<T>() {
                    self.leaves.insert(std::any::TypeId::of::<T>(), leaf);
                }
                self.type_tables.push(TypeEntry {
                    name: T::TYPE_NAME,
                    install: |lua| register_type::<T>(lua).map(drop),
                    define: Definitions::class::<T>,
                });
                self.type_tables.len() - 1
            }
        };
        &mut self.type_tables[index]
    }

    /// The LuaLS / EmmyLua definition file of every registered type and of the script API
    /// (see [`definitions`](crate::definitions)).
    pub fn lua_definitions(&self) -> String {
        let mut defs = Definitions::default();
        for entry in &self.type_tables {
            (entry.define)(&mut defs);
        }
        if let Some(types) = &self.type_registry {
            let types = types.read();
            let reflected = reflect::define::Reflected {
                leaves: &self.leaves,
                registry: &types,
            };
            for ty in self.reflected.values() {
                reflected.class(&mut defs, ty.info);
            }
        }
        let api = ScriptApi {
            components: self.components.keys().copied().collect(),
            resources: self.resources.keys().copied().collect(),
            type_tables: self.type_tables.iter().map(|t| t.name).collect(),
            keys: crate::world::input::key_names(),
            messages: self.messages.iter().map(|m| m.name).collect(),
            events: self.events.iter().map(|(name, _)| *name).collect(),
        };
        let classes: Vec<&ClassDef> = defs.classes().collect();
        crate::definitions::render(&classes, &api)
    }
}

fn insert_component<T: Component<Mutability = Mutable> + LuaUserData>(
    world: &mut World,
    entity: Entity,
    value: &AnyUserData,
) -> mlua::Result<bool> {
    if value.is::<LuaRef<T>>() {
        return Err(crate::userdata::script_error(format!(
            "entity:insert needs a new {0} value (for example from {0}.new), not a live reference to one",
            T::TYPE_NAME
        )));
    }
    if !value.is::<T>() {
        return Ok(false);
    }
    // The value moves into the entity: scripts reach it through `entity:get` from now on.
    let component = value.take::<T>()?;
    match world.get_entity_mut(entity) {
        Ok(mut e) => {
            e.insert(component);
            Ok(true)
        }
        Err(_) => Err(stale_despawned(entity, T::TYPE_NAME)),
    }
}

fn write_message<T: Message + LuaUserData + Clone>(
    world: &mut World,
    value: &AnyUserData,
) -> mlua::Result<bool> {
    if !value.is::<T>() {
        return Ok(false);
    }
    // A copy: the script keeps its value.
    let message = value.borrow::<T>()?.clone();
    world.write_message(message);
    Ok(true)
}

fn get_resource<T: Resource<Mutability = Mutable> + LuaUserData>(lua: &Lua) -> mlua::Result<Value> {
    if !with_world_ref(|world| world.contains_resource::<T>())? {
        return Ok(Value::Nil);
    }
    lua.create_userdata(LuaRef::new(ResourcePlace::<T>::default()))
        .map(Value::UserData)
}

/// The registry's components and resources as scripts look them up: a copy kept in the Lua
/// state's app data, so that `entity:get` needs no trip through the world.
#[derive(Clone, Default)]
pub(crate) struct ScriptTypes {
    pub components: BTreeMap<&'static str, ComponentEntry>,
    pub resources: BTreeMap<&'static str, ResourceEntry>,
    pub reflected: BTreeMap<&'static str, Arc<ReflectedType>>,
    pub leaves: Arc<Leaves>,
    pub type_registry: Option<TypeRegistryArc>,
    pub messages: Vec<MessageEntry>,
    pub events: Vec<(&'static str, EventTrigger)>,
}

impl ScriptTypes {
    pub(crate) fn of(registry: &LuaTypeRegistry) -> Self {
        ScriptTypes {
            components: registry.components.clone(),
            resources: registry.resources.clone(),
            reflected: registry.reflected.clone(),
            leaves: Arc::new(registry.leaves.clone()),
            type_registry: registry.type_registry.clone(),
            messages: registry.messages.clone(),
            events: registry.events.clone(),
        }
    }

    pub(crate) fn is_current(&self, registry: &LuaTypeRegistry) -> bool {
        self.components.len() == registry.components.len()
            && self.resources.len() == registry.resources.len()
            && self.reflected.len() == registry.reflected.len()
            && self.leaves.len() == registry.leaves.len()
            && self.type_registry.is_some() == registry.type_registry.is_some()
            && self.messages.len() == registry.messages.len()
            && self.events.len() == registry.events.len()
    }
}

/// The entry of the component called `name`, and its name as registered.
pub(crate) fn component_entry(
    lua: &Lua,
    name: &str,
) -> mlua::Result<(&'static str, ComponentEntry)> {
    lua.app_data_ref::<ScriptTypes>()
        .and_then(|types| {
            types
                .components
                .get_key_value(name)
                .map(|(k, v)| (*k, v.clone()))
        })
        .ok_or_else(|| {
            crate::userdata::script_error(format!(
                "no component named '{name}' is registered for scripts"
            ))
        })
}

/// Every registered component entry.
pub(crate) fn component_entries(lua: &Lua) -> Vec<ComponentEntry> {
    lua.app_data_ref::<ScriptTypes>()
        .map(|types| types.components.values().cloned().collect())
        .unwrap_or_default()
}

pub(crate) fn resource_entry(lua: &Lua, name: &str) -> mlua::Result<ResourceEntry> {
    lua.app_data_ref::<ScriptTypes>()
        .and_then(|types| types.resources.get(name).cloned())
        .ok_or_else(|| {
            crate::userdata::script_error(format!(
                "no resource named '{name}' is registered for scripts"
            ))
        })
}

/// Every registered message entry.
pub(crate) fn message_entries(lua: &Lua) -> Vec<MessageEntry> {
    lua.app_data_ref::<ScriptTypes>()
        .map(|types| types.messages.clone())
        .unwrap_or_default()
}

/// Every registered entity event type's trigger.
pub(crate) fn event_triggers(lua: &Lua) -> Vec<EventTrigger> {
    lua.app_data_ref::<ScriptTypes>()
        .map(|types| types.events.iter().map(|(_, trigger)| *trigger).collect())
        .unwrap_or_default()
}
