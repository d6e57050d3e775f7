//! Several scripts on one entity (`ScriptOf` script entities), and scripts attached, detached
//! and spawned from Lua.

#[path = "common/app.rs"]
mod app;

use app::TestApp;
use bevy::prelude::*;
use bevy_lunar::prelude::*;
use bevy_lunar::{LuaCall, ScriptValue};

#[derive(Component, LuaUserData, Clone, Debug, Default, PartialEq)]
pub struct Probe {
    pub a: i64,
    pub b: i64,
    pub note: String,
}

#[lua_methods]
impl Probe {
    pub fn new(a: i64) -> Self {
        Probe { a, ..default() }
    }
}

/// What scripts report through `world.send("log", text)`... kept simple: a resource.
#[derive(Resource, LuaUserData, Clone, Debug, Default)]
pub struct Log {
    pub text: String,
}

fn game(files: &[(&str, &str)]) -> TestApp {
    let mut test = TestApp::new(files);
    test.app
        .init_resource::<Log>()
        .register_lua_component::<Probe>()
        .register_lua_resource::<Log>();
    test
}

fn log(test: &TestApp) -> String {
    test.app.world().resource::<Log>().text.clone()
}

/// Each script counts its own frames in a global of the same name, and writes them to its own
/// field of the shared entity.
const COUNT_A: &str = "local frames = 0
function on_update()
    frames = frames + 1
    entity:get('Probe').a = frames
end
function ping() world.resource('Log').text = world.resource('Log').text .. 'a' end
function on_unload() world.resource('Log').text = world.resource('Log').text .. '-a' end";

const COUNT_B: &str = "local frames = 100
function on_update()
    frames = frames + 1
    entity:get('Probe').b = frames
end
function ping() world.resource('Log').text = world.resource('Log').text .. 'b' end
function on_unload() world.resource('Log').text = world.resource('Log').text .. '-b' end";

#[test]
fn an_entity_runs_several_scripts_each_with_its_own_state() {
    let mut test = game(&[
        ("scripts/a.lua", COUNT_A),
        ("scripts/b.lua", COUNT_B),
        (
            "scripts/watch.lua",
            "world.on('Despawned', function(e) world.resource('Log').text = world.resource('Log').text .. 'D' end)",
        ),
    ]);
    test.spawn_script("scripts/watch.lua", ());
    let a = test.load("scripts/a.lua");
    let b = test.load("scripts/b.lua");
    let e = test
        .app
        .world_mut()
        .spawn((
            Probe::default(),
            LuaScript(a),
            related!(LuaScripts[LuaScript(b)]),
        ))
        .id();
    test.settle(3);
    assert_eq!(test.errors(), Vec::<String>::new());
    let p = test.app.world().get::<Probe>(e).unwrap().clone();
    assert!(
        p.a >= 3 && p.b >= 103,
        "both run, each its own frames: {p:?}"
    );
    // A call to the entity reaches its scripts in order: its own, then its script entities'.
    test.app
        .world_mut()
        .write_message(LuaCall::entity(e, "ping", ScriptValue::Nil));
    test.update();
    assert_eq!(log(&test), "ab");
    // Removing one leaves the other running.
    let b_entity = test.app.world().get::<LuaScripts>(e).unwrap().entities()[0];
    test.app.world_mut().despawn(b_entity);
    let before = test.app.world().get::<Probe>(e).unwrap().clone();
    test.update();
    test.update();
    let after = test.app.world().get::<Probe>(e).unwrap().clone();
    assert_eq!(log(&test), "ab-b", "no Despawned for a script entity");
    assert_eq!(after.b, before.b, "b stopped");
    assert_eq!(after.a, before.a + 2, "a goes on");
    // Despawning the entity stops the rest.
    test.app.world_mut().despawn(e);
    test.update();
    assert_eq!(log(&test), "ab-b-aD");
    assert_eq!(test.errors(), Vec::<String>::new());
}

#[test]
fn scripts_attach_detach_and_spawn_scripts() {
    let mut test = game(&[
        ("scripts/a.lua", COUNT_A),
        ("scripts/b.lua", COUNT_B),
        (
            "scripts/spawner.lua",
            "local spawned
function on_start()
    entity:attach('scripts/b.lua')
    spawned = world.spawn { Probe.new(7), script = 'scripts/a.lua' }
    entity:get('Probe').note = spawned:id()
end
local frames = 0
function on_update()
    frames = frames + 1
    if frames == 4 then
        entity:get('Probe').a = entity:detach('scripts/b') and 1 or -1
    end
end",
        ),
        (
            "scripts/typo.lua",
            "function on_start() entity:attach('scripts/nope.lua') end",
        ),
        (
            "scripts/bad_spawn.lua",
            "function on_start() world.spawn { Probe.new(1), 'not a component' } end",
        ),
    ]);
    let e = test.spawn_script("scripts/spawner.lua", Probe::default());
    test.spawn_script("scripts/typo.lua", Probe::default());
    test.spawn_script("scripts/bad_spawn.lua", Probe::default());
    test.settle(8);
    let p = test.app.world().get::<Probe>(e).unwrap().clone();
    assert_eq!(p.a, 1, "detach found the attached script: {p:?}");
    let b_frames = p.b;
    assert!(
        b_frames > 100,
        "the attached script ran on the spawner: {p:?}"
    );
    test.update();
    assert_eq!(
        test.app.world().get::<Probe>(e).unwrap().b,
        b_frames,
        "and stops once detached"
    );
    assert!(log(&test).contains("-b"), "{}", log(&test));
    // The spawned entity: its component, and its script running on it.
    let spawned = test
        .app
        .world_mut()
        .query::<(Entity, &Probe)>()
        .iter(test.app.world())
        .find(|(_, p)| p.b == 0 && p.a != 1 && p.note.is_empty() && p.a > 0)
        .map(|(entity, p)| (entity, p.clone()));
    let (spawned, probe) = spawned.expect("the spawned entity");
    assert_eq!(p.note, spawned.to_string());
    assert!(probe.a > 0, "its script counts its frames: {probe:?}");
    let errors = test.errors();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("scripts/nope.lua:") || e.starts_with("scripts/nope.lua: ")),
        "an unknown script is the usual load error naming it: {errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e
                .starts_with("scripts/bad_spawn.lua:1: world.spawn: expected component values")),
        "{errors:#?}"
    );
}

/// An attached script that is not there yet (a typo, a file still to be written) is reported,
/// costs nothing while missing, and starts once the file appears.
#[test]
fn a_missing_script_starts_once_its_file_appears() {
    let mut test = TestApp::with_plugin(
        &[(
            "scripts/host.lua",
            "function on_start() entity:attach('scripts/later.lua') end",
        )],
        LuaScriptingPlugin::default(),
        true,
    );
    test.app
        .init_resource::<Log>()
        .register_lua_component::<Probe>()
        .register_lua_resource::<Log>();
    let e = test.spawn_script("scripts/host.lua", Probe::default());
    test.settle(3);
    let errors = test.errors();
    assert!(
        errors.iter().any(|e| e.starts_with("scripts/later.lua")),
        "{errors:#?}"
    );
    std::thread::sleep(std::time::Duration::from_millis(50));
    test.write(
        "scripts/later.lua",
        "function on_update() entity:get('Probe').a = 5 end",
    );
    let started = test.run_until(std::time::Duration::from_secs(10), |world| {
        world.get::<Probe>(e).is_some_and(|p| p.a == 5)
    });
    assert!(started, "{:?}", test.errors());
}

/// Errors of a script on a script entity name its target and the script's path.
#[test]
fn errors_of_an_attached_script_name_its_target() {
    let mut test = game(&[(
        "scripts/fails.lua",
        "function on_start() error('attached and failing') end",
    )]);
    let fails = test.load("scripts/fails.lua");
    let target = test
        .app
        .world_mut()
        .spawn((Probe::default(), related!(LuaScripts[LuaScript(fails)])))
        .id();
    test.settle(2);
    let errors = test.error_messages();
    let error = errors
        .iter()
        .find(|e| e.message.contains("attached and failing"))
        .unwrap_or_else(|| panic!("{errors:?}"));
    assert_eq!(error.entity, Some(target));
    assert_eq!(error.path, "scripts/fails.lua");
    assert_eq!(error.line, Some(1));
}
