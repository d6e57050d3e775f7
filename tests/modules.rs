//! Modules: `require` from assets, shared by the instances, reloaded with the scripts that
//! use them.

#[path = "common/app.rs"]
mod app;

use std::time::Duration;

use app::TestApp;
use bevy::prelude::*;
use bevy_lunar::prelude::*;

#[derive(Component, LuaUserData, Clone, Debug, Default, PartialEq)]
pub struct Probe {
    pub a: i64,
    pub b: i64,
    pub note: String,
}

fn game(files: &[(&str, &str)], watch: bool) -> TestApp {
    let mut test = TestApp::with_plugin(files, LuaScriptingPlugin::default(), watch);
    test.app.register_lua_component::<Probe>();
    test
}

fn probe(test: &TestApp, e: Entity) -> Probe {
    test.app.world().get::<Probe>(e).unwrap().clone()
}

const UTIL: &str = "local util = {}
local calls = 0
function util.double(x)
    calls = calls + 1
    return x * 2
end
function util.calls() return calls end
function util.fail() error('util failed') end
util.seen_entity = entity
function util.bad_call()
    local found = world.entity(true)
    return found
end
return util
";

#[test]
fn a_module_runs_once_and_every_instance_shares_its_result() {
    let mut test = game(
        &[
            ("scripts/util.lua", UTIL),
            (
                "scripts/math2.lua",
                "local util = require('scripts.util')\nreturn { quad = function(x) return util.double(util.double(x)) end }\n",
            ),
            (
                "scripts/user.lua",
                "local util = require('scripts/util')
local math2 = require 'scripts.math2'
function on_start()
    local p = entity:get('Probe')
    p.a = math2.quad(p.a)
    p.b = util.calls()
    p.note = tostring(util.seen_entity) .. ',' .. tostring(require('scripts/util') == util)
end",
            ),
        ],
        false,
    );
    let first = test.spawn_script("scripts/user.lua", Probe { a: 3, ..default() });
    let second = test.spawn_script("scripts/user.lua", Probe { a: 5, ..default() });
    test.settle(2);
    assert_eq!(test.errors(), Vec::<String>::new());
    let (p, q) = (probe(&test, first), probe(&test, second));
    assert_eq!((p.a, q.a), (12, 20), "through a module requiring another");
    let mut calls = [p.b, q.b];
    calls.sort();
    assert_eq!(
        calls,
        [2, 4],
        "one module state, shared: its calls count across instances"
    );
    assert_eq!(
        p.note, "nil,true",
        "a module has no entity; require is cached"
    );
}

#[test]
fn module_errors_name_the_module_and_the_caller() {
    let mut test = game(
        &[
            ("scripts/util.lua", UTIL),
            ("scripts/broken.lua", "local x = \nreturn {}"),
            (
                "scripts/caller.lua",
                "local util = require('scripts/util')
function on_start()
    util.fail()
end",
            ),
            (
                "scripts/missing.lua",
                "local gone = require('scripts/nowhere')",
            ),
            (
                "scripts/uses_broken.lua",
                "local b = require('scripts/broken')",
            ),
            (
                "scripts/dynamic.lua",
                "function on_start()
    local name = 'scripts/' .. 'late'
    local ok, err = pcall(require, name)
    entity:get('Probe').note = tostring(err)
end",
            ),
            ("scripts/late.lua", "return 1"),
            (
                "scripts/rust_error.lua",
                "local util = require('scripts/util')\nfunction on_start()\n    util.bad_call()\nend",
            ),
            ("scripts/bad_name.lua", "require('../secret')"),
        ],
        false,
    );
    test.spawn_script("scripts/caller.lua", Probe::default());
    test.spawn_script("scripts/missing.lua", Probe::default());
    test.spawn_script("scripts/uses_broken.lua", Probe::default());
    let dynamic = test.spawn_script("scripts/dynamic.lua", Probe::default());
    test.spawn_script("scripts/bad_name.lua", Probe::default());
    test.spawn_script("scripts/rust_error.lua", Probe::default());
    test.settle(2);
    let errors = test.errors();
    let find = |start: &str| {
        errors
            .iter()
            .find(|e| e.starts_with(start))
            .unwrap_or_else(|| panic!("no error starting {start:?} in {errors:#?}"))
    };
    let fail = find("scripts/util.lua:8: util failed");
    assert!(fail.contains("scripts/caller.lua:3"), "{fail}");
    let missing = find("scripts/missing.lua:1: require: module 'scripts/nowhere'");
    assert!(missing.contains("could not be loaded"), "{missing}");
    let broken = find("scripts/broken.lua:2:");
    assert!(
        broken.contains("(called from scripts/uses_broken.lua:1)"),
        "{broken}"
    );
    // Raised in Rust, called from the module: the module's line, and the script's.
    let rust = find("scripts/util.lua:11: world.entity:");
    assert!(
        rust.contains("(called from scripts/rust_error.lua:3)"),
        "{rust}"
    );
    find("scripts/bad_name.lua:1: require: '../secret' is not a module name");
    let note = probe(&test, dynamic).note;
    assert!(
        note.contains("module 'scripts/late' (scripts/late.lua) is not loaded yet")
            && note.contains("literal name"),
        "{note}"
    );
}

#[test]
fn a_require_cycle_is_an_error_naming_it() {
    let mut test = game(
        &[
            ("scripts/a.lua", "return { b = require('scripts/b') }"),
            ("scripts/b.lua", "return { a = require('scripts/a') }"),
            ("scripts/main.lua", "local a = require('scripts/a')"),
        ],
        false,
    );
    test.spawn_script("scripts/main.lua", Probe::default());
    test.settle(2);
    let errors = test.errors();
    assert!(
        errors.iter().any(|e| e.contains(
            "require: a cycle of modules requiring each other: scripts/a -> scripts/b -> scripts/a"
        )),
        "{errors:#?}"
    );
}

#[test]
fn editing_a_module_reloads_the_scripts_that_use_it_and_a_broken_version_keeps_the_old() {
    let mut test = game(
        &[
            ("scripts/rate.lua", "return { value = 1 }"),
            (
                "scripts/mid.lua",
                "local rate = require('scripts/rate')\nreturn { get = function() return rate.value end }",
            ),
            (
                "scripts/counter.lua",
                "local mid = require('scripts/mid')
function on_update()
    local p = entity:get('Probe')
    p.a = mid.get()
end
function on_unload() return entity:get('Probe').b + 1 end
function on_reload(saved) entity:get('Probe').b = saved end",
            ),
            ("scripts/other.lua", "function on_update() end"),
        ],
        true,
    );
    let e = test.spawn_script("scripts/counter.lua", Probe::default());
    test.spawn_script("scripts/other.lua", Probe::default());
    test.settle(2);
    assert_eq!(probe(&test, e).a, 1);
    // The file watcher sees the edit; through `mid`, the script reloads with state handed over.
    std::thread::sleep(Duration::from_millis(50));
    test.write("scripts/rate.lua", "return { value = 2 }");
    let reloaded = test.run_until(Duration::from_secs(10), |world| {
        world.get::<Probe>(e).is_some_and(|p| p.a == 2)
    });
    assert!(reloaded, "{:?}", test.errors());
    assert_eq!(probe(&test, e).b, 1, "on_unload -> on_reload hand-over");
    // A version that does not compile: reported at its line, the old one goes on.
    test.write("scripts/rate.lua", "return { value = }");
    wait_for_error(&mut test, "scripts/rate.lua:1:");
    test.settle(2);
    assert_eq!(probe(&test, e).a, 2);
    assert_eq!(probe(&test, e).b, 1, "not reloaded for a broken module");
    // One that fails to run: the same.
    test.write(
        "scripts/rate.lua",
        "error('rate is broken')\nreturn { value = 3 }",
    );
    wait_for_error(&mut test, "scripts/rate.lua:1: rate is broken");
    test.settle(2);
    assert_eq!(probe(&test, e).a, 2, "the old version stays");
}

/// Runs frames until an error starting with `start` was reported.
fn wait_for_error(test: &mut TestApp, start: &str) {
    let found = test.run_until(Duration::from_secs(10), |world| {
        world
            .resource::<app::ScriptErrors>()
            .0
            .iter()
            .any(|e| e.to_string().starts_with(start))
    });
    assert!(found, "no error starting {start:?}: {:#?}", test.errors());
}

#[test]
fn a_script_edited_to_require_a_new_module_reloads_once_the_module_is_loaded() {
    let mut test = game(
        &[
            ("scripts/extra.lua", "return { value = 42 }"),
            (
                "scripts/grows.lua",
                "function on_update() entity:get('Probe').a = 1 end",
            ),
        ],
        true,
    );
    let e = test.spawn_script("scripts/grows.lua", Probe::default());
    test.settle(2);
    assert_eq!(probe(&test, e).a, 1);
    std::thread::sleep(Duration::from_millis(50));
    test.write(
        "scripts/grows.lua",
        "local extra = require('scripts/extra')\nfunction on_update() entity:get('Probe').a = extra.value end",
    );
    let reloaded = test.run_until(Duration::from_secs(10), |world| {
        world.get::<Probe>(e).is_some_and(|p| p.a == 42)
    });
    assert!(reloaded, "{:?}", test.errors());
    assert_eq!(
        test.errors(),
        Vec::<String>::new(),
        "no 'not loaded yet' on the way"
    );
}
