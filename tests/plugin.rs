//! The Bevy plugin in a real headless app: scripts as assets, instances, callbacks, live
//! component access, errors, limits and the sandbox.

#[path = "common/app.rs"]
mod app;

use app::TestApp;
use bevy::prelude::*;
use bevy_lunar::prelude::*;

#[derive(Component, LuaUserData, Clone, Debug, PartialEq)]
pub struct Player {
    pub name: String,
    pub health: f64,
    pub level: i64,
}

#[derive(Component, LuaUserData, Clone, Debug, PartialEq)]
#[lua_impl(Display)]
pub struct Position {
    pub x: f64,
    pub y: f64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}, {})", self.x, self.y)
    }
}

#[lua_methods]
impl Position {
    pub fn new(x: f64, y: f64) -> Self {
        Position { x, y }
    }
}

fn player(name: &str) -> Player {
    Player {
        name: name.into(),
        health: 100.0,
        level: 1,
    }
}

fn game(files: &[(&str, &str)]) -> TestApp {
    let mut test = TestApp::new(files);
    test.app
        .register_lua_component::<Player>()
        .register_lua_component::<Position>();
    test
}

#[test]
fn callbacks_run_in_order_with_live_component_access() {
    let mut test = game(&[(
        "scripts/player.lua",
        r#"
        local frames = 0
        function on_start()
            local p = entity:get("Player")
            p.name = p.name .. " (scripted)"
        end
        function on_update(dt)
            frames = frames + 1
            local p = entity:get("Player")
            p.health = p.health - 1
            p.level = frames
        end
        "#,
    )]);
    let e = test.spawn_script("scripts/player.lua", player("Alice"));
    test.settle(0);
    for _ in 0..5 {
        test.update();
    }
    let p = test.app.world().get::<Player>(e).unwrap().clone();
    assert_eq!(p.name, "Alice (scripted)");
    assert!(p.level >= 5, "{p:?}");
    assert_eq!(p.health, 100.0 - p.level as f64, "one update per frame");
    assert!(test.errors().is_empty(), "{:?}", test.errors());
}

#[test]
fn instances_of_one_script_keep_their_own_state() {
    // One compiled script, many environments: globals, top-level locals and `entity` belong to
    // the instance, also for instances created frames apart.
    let mut test = game(&[(
        "scripts/counter.lua",
        r#"
        local frames = 0
        count = 0
        local me = entity
        function on_update(dt)
            frames = frames + 1
            count = count + 1
            local p = me:get("Player")
            p.level = frames
            p.health = count
        end
        "#,
    )]);
    let first = test.spawn_script("scripts/counter.lua", player("First"));
    test.settle(0);
    for _ in 0..3 {
        test.update();
    }
    let second = test.spawn_script("scripts/counter.lua", player("Second"));
    test.settle(0);
    for _ in 0..2 {
        test.update();
    }
    let world = test.app.world();
    let (a, b) = (
        world.get::<Player>(first).unwrap(),
        world.get::<Player>(second).unwrap(),
    );
    assert!(a.level > b.level, "{a:?} {b:?}");
    assert_eq!(a.health, a.level as f64, "{a:?}");
    assert_eq!(b.health, b.level as f64, "{b:?}");
    assert!(b.level >= 2, "{b:?}");
    assert!(test.errors().is_empty(), "{:?}", test.errors());
}

#[derive(Resource, LuaUserData, Default, Debug)]
pub struct Stats {
    pub unloads: i64,
    pub score: i64,
}

fn game_with_stats(files: &[(&str, &str)]) -> TestApp {
    let mut test = game(files);
    test.app
        .init_resource::<Stats>()
        .register_lua_resource::<Stats>();
    test
}

#[test]
fn runtime_errors_name_file_and_line_and_the_game_goes_on() {
    let mut test = game(&[
        (
            "scripts/broken.lua",
            "function on_update(dt)\n  local p = entity:get('Player')\n  p.level = p.level + 1\n  local missing = nil\n  missing.field = 1\nend\n",
        ),
        (
            "scripts/fine.lua",
            "function on_update(dt) local p = entity:get('Player') p.level = p.level + 1 end",
        ),
    ]);
    let broken = test.spawn_script("scripts/broken.lua", player("Bob"));
    let fine = test.spawn_script("scripts/fine.lua", player("Eve"));
    test.settle(0);
    for _ in 0..10 {
        test.update();
    }
    let errors = test.error_messages();
    assert_eq!(
        errors.len(),
        1,
        "a repeated error is reported once: {errors:?}"
    );
    assert_eq!(
        (errors[0].path.as_str(), errors[0].line),
        ("scripts/broken.lua", Some(5))
    );
    // Lua 5.4 and LuaJIT word it differently.
    assert!(
        errors[0]
            .to_string()
            .starts_with("scripts/broken.lua:5: attempt to index")
            && errors[0].message.contains("nil value")
            && errors[0].message.contains("'missing'"),
        "{}",
        errors[0]
    );
    assert_eq!(errors[0].kind, bevy_lunar::LuaScriptErrorKind::Runtime);
    assert_eq!(errors[0].entity, Some(broken));
    let world = test.app.world();
    let (b, f) = (
        world.get::<Player>(broken).unwrap().level,
        world.get::<Player>(fine).unwrap().level,
    );
    assert!(
        b >= 11 && f >= 11,
        "both instances keep being called: {b} {f}"
    );
}

#[test]
fn errors_from_rust_callbacks_name_the_script_line() {
    let mut test = game(&[(
        "scripts/typo.lua",
        "function on_start()\n  local p = entity:get('Player')\n\n  p.health = 'lots'\nend\n",
    )]);
    let e = test.spawn_script("scripts/typo.lua", player("Bob"));
    test.settle(1);
    assert_eq!(
        test.errors(),
        ["scripts/typo.lua:4: Player: bad value for field 'health': expected number, got string"]
    );
    assert_eq!(
        test.app.world().get::<Player>(e).unwrap().health,
        100.0,
        "refused write changed nothing"
    );
}

#[test]
fn repeated_errors_are_counted_when_they_stop() {
    let mut test = game(&[(
        "scripts/flaky.lua",
        "local n = 0\nfunction on_update()\n  n = n + 1\n  if n <= 5 then error('not yet') end\nend\n",
    )]);
    test.spawn_script("scripts/flaky.lua", player("Bob"));
    test.settle(8);
    assert_eq!(
        test.errors(),
        [
            "scripts/flaky.lua:4: not yet",
            "scripts/flaky.lua:4: not yet (repeated 5 times)"
        ]
    );
}

#[test]
fn errors_repeat_by_kind_and_line_whatever_their_text() {
    // `error({})` names a new table every frame, and a counter changes the text: still one
    // error, counted, until the line changes.
    let mut test = game(&[(
        "scripts/noisy.lua",
        "local n = 0\nfunction on_update()\n  n = n + 1\n  if n <= 3 then error({}) end\n  if n <= 6 then error('try ' .. n) end\nend\n",
    )]);
    test.spawn_script("scripts/noisy.lua", player("Bob"));
    test.settle(9);
    let errors = test.errors();
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(errors[0].starts_with("scripts/noisy.lua"), "{errors:?}");
    assert!(errors[1].ends_with("(repeated 3 times)"), "{errors:?}");
    assert_eq!(errors[2], "scripts/noisy.lua:5: try 4");
    assert_eq!(errors[3], "scripts/noisy.lua:5: try 4 (repeated 3 times)");
}

#[test]
fn syntax_errors_are_one_error_with_path_and_line() {
    let mut test = game(&[(
        "scripts/bad.lua",
        "function on_update(dt)\n  local x = = 1\nend\n",
    )]);
    test.spawn_script("scripts/bad.lua", player("Bob"));
    test.settle(1);
    let errors = test.error_messages();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].kind, bevy_lunar::LuaScriptErrorKind::Syntax);
    assert_eq!(errors[0].path, "scripts/bad.lua");
    assert_eq!(errors[0].line, Some(2));
    assert!(
        errors[0].message.contains("unexpected symbol near '='"),
        "{}",
        errors[0]
    );
}

/// The scripts stopped by the instruction budget, sorted.
fn budget_error_paths(errors: &[bevy_lunar::LuaScriptError]) -> Vec<&str> {
    let mut paths: Vec<_> = errors
        .iter()
        .filter(|e| e.kind == bevy_lunar::LuaScriptErrorKind::Budget)
        .map(|e| e.path.as_str())
        .collect();
    paths.sort();
    paths
}

#[test]
fn runaway_scripts_are_stopped_by_the_budget_even_through_pcall() {
    let plugin = LuaScriptingPlugin {
        instruction_budget: 200_000,
        ..default()
    };
    let mut test = TestApp::with_plugin(
        &[
            (
                "scripts/spin.lua",
                "function on_update() while true do end end",
            ),
            (
                "scripts/sneaky.lua",
                "function on_update() while true do pcall(function() while true do end end) end end",
            ),
            (
                "scripts/fine.lua",
                "function on_update() local p = entity:get('Player') p.level = p.level + 1 end",
            ),
        ],
        plugin,
        false,
    );
    test.app.register_lua_component::<Player>();
    test.spawn_script("scripts/spin.lua", player("a"));
    test.spawn_script("scripts/sneaky.lua", player("b"));
    let fine = test.spawn_script("scripts/fine.lua", player("c"));
    test.settle(3);
    let errors = test.error_messages();
    assert_eq!(
        budget_error_paths(&errors),
        ["scripts/sneaky.lua", "scripts/spin.lua"],
        "{errors:?}"
    );
    assert!(
        errors[0]
            .message
            .contains("instruction budget exceeded (200000 instructions)"),
        "{}",
        errors[0]
    );
    assert!(
        test.app.world().get::<Player>(fine).unwrap().level >= 4,
        "the frame finished"
    );
}

#[test]
fn runaway_coroutines_are_stopped_and_coroutines_still_work() {
    let plugin = LuaScriptingPlugin {
        instruction_budget: 200_000,
        ..default()
    };
    let mut test = TestApp::with_plugin(
        &[
            (
                "scripts/resume.lua",
                "function on_update()
                    local co = coroutine.create(function() while true do end end)
                    coroutine.resume(co)
                end",
            ),
            (
                "scripts/wrap.lua",
                "function on_update() coroutine.wrap(function() while true do end end)() end",
            ),
            (
                "scripts/counter.lua",
                "function on_update()
                    local p = entity:get('Player')
                    local gen = coroutine.wrap(function(a)
                        local b = coroutine.yield(a + 1)
                        coroutine.yield(b * 10)
                    end)
                    p.level = gen(1) + gen(5)
                    local co = coroutine.create(function() error('boom', 0) end)
                    local ok, err = coroutine.resume(co)
                    assert(not ok and err == 'boom' and coroutine.status(co) == 'dead')
                    local ok2, err2 = pcall(coroutine.wrap(function() error({code = 7}) end))
                    assert(not ok2 and err2.code == 7)
                end",
            ),
        ],
        plugin,
        false,
    );
    test.app.register_lua_component::<Player>();
    test.spawn_script("scripts/resume.lua", player("a"));
    test.spawn_script("scripts/wrap.lua", player("b"));
    let counter = test.spawn_script("scripts/counter.lua", player("c"));
    test.settle(3);
    let errors = test.error_messages();
    assert_eq!(
        budget_error_paths(&errors),
        ["scripts/resume.lua", "scripts/wrap.lua"],
        "{errors:?}"
    );
    assert!(errors.iter().all(|e| e.line.is_some()), "{errors:?}");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(test.app.world().get::<Player>(counter).unwrap().level, 52);
}

#[test]
fn long_callbacks_within_the_budget_finish() {
    // Far longer than the watchdog's wait before it counts, far within the default budget.
    let mut test = game(&[(
        "scripts/long.lua",
        "function on_update()
            local p = entity:get('Player')
            local sum = 0
            for i = 1, 300000 do sum = sum + i % 7 end
            p.level = sum
            if p.health > 99 then
                local t = os.clock()
                while os.clock() - t < 0.03 do end
                p.health = 0
            end
        end",
    )]);
    let long = test.spawn_script("scripts/long.lua", player("a"));
    test.settle(3);
    assert_eq!(test.errors(), Vec::<String>::new());
    let p = test.app.world().get::<Player>(long).unwrap();
    assert_eq!(
        (p.level, p.health),
        ((1..=300_000i64).map(|i| i % 7).sum(), 0.0)
    );
}
// LuaJIT on 64-bit systems allocates by itself: no memory limit can be set there.
#[cfg(feature = "lua54")]
#[test]
fn memory_limit_and_deep_recursion_are_errors_not_crashes() {
    // Each fault in its own app: a deep stack needs tens of MB, which a hog next to it may have
    // taken (how much is left then depends on when the collector last ran).
    let fine = "function on_update() local p = entity:get('Player') p.level = p.level + 1 end";
    let run = |path: &str, source: &str| {
        let plugin = LuaScriptingPlugin {
            memory_limit: 64 * 1024 * 1024,
            ..default()
        };
        let mut test =
            TestApp::with_plugin(&[(path, source), ("scripts/fine.lua", fine)], plugin, false);
        test.app.register_lua_component::<Player>();
        test.spawn_script(path, player("a"));
        let fine = test.spawn_script("scripts/fine.lua", player("c"));
        test.settle(2);
        assert!(
            test.app.world().get::<Player>(fine).unwrap().level >= 3,
            "the other script runs every frame"
        );
        let errors = test.error_messages();
        errors
            .into_iter()
            .find(|e| e.path == path)
            .unwrap_or_else(|| panic!("{path} reported"))
    };
    let memory = run(
        "scripts/hog.lua",
        "local t, big = {}, string.rep('x', 1000000)\nfunction on_update()\n  while true do t[#t + 1] = big .. #t end\nend\n",
    );
    assert_eq!(
        memory.kind,
        bevy_lunar::LuaScriptErrorKind::Memory,
        "{memory}"
    );
    let deep = run(
        "scripts/deep.lua",
        "local function f(n) return f(n + 1) + 1 end\nfunction on_update() f(1) end\n",
    );
    assert!(deep.message.contains("stack overflow"), "{deep}");
}

#[test]
fn the_sandbox_has_no_files_debug_or_binary_chunks() {
    let mut test = game(&[(
        "scripts/probe.lua",
        r#"
        function on_start()
            local p = entity:get("Player")
            local checks = {
                io == nil, debug == nil, dofile == nil, loadfile == nil, package == nil,
                type(require) == "function" and not pcall(require, "debug") and require("math") == math,
                os.execute == nil, os.remove == nil, os.getenv == nil,
                type(os.clock()) == "number", type(os.time()) == "number", type(os.date()) == "string",
                load("return 1 + 1")() == 2,
                select(2, load(string.dump(function() end))):find("binary") ~= nil,
                loadstring == nil,
                type(collectgarbage("count")) == "number",
                collectgarbage() == 0 and collectgarbage("step") ~= nil,
                not pcall(collectgarbage, "stop"),
                select(2, pcall(collectgarbage, "generational")):find("not available to scripts", 1, true) ~= nil,
                not pcall(collectgarbage, "incremental", 100),
                not pcall(collectgarbage, "setpause", 100),
                (function()
                    local reader = coroutine.wrap(function() coroutine.yield(string.dump(function() end)) end)
                    local ok, loaded = pcall(load, reader)
                    return not (ok and loaded)
                end)(),
            }
            local failed = {}
            for i, ok in ipairs(checks) do if not ok then failed[#failed + 1] = i end end
            p.name = table.concat(failed, ",")
        end
        "#,
    )]);
    let e = test.spawn_script("scripts/probe.lua", player("?"));
    test.settle(1);
    assert_eq!(
        test.app.world().get::<Player>(e).unwrap().name,
        "",
        "failed checks: {:?}",
        test.errors()
    );
    assert!(test.errors().is_empty(), "{:?}", test.errors());
}

#[test]
fn entity_and_world_api() {
    let mut test = game_with_stats(&[(
        "scripts/api.lua",
        r#"
        function on_start()
            assert(entity:has("Player") and not entity:has("Position"))
            assert(entity:get("Position") == nil)
            entity:insert(Position.new(1, 2))
            assert(entity:get("Position").x == 1)
            assert(tostring(entity:get("Position")) == "(1, 2)", "Display works on live references")
            assert(entity:get("Position") == entity:get("Position"), "the same reference each time")
            print("api check at", entity:get("Position"))
            local other = world.spawn()
            other:insert(Position.new(5, 5))
            other:insert(Position.new(6, 6)) -- replaces
            local seen = 0
            for e in world.query("Position") do seen = seen + 1 end
            local both = 0
            for e in world.query("Position", "Player") do both = both + 1; assert(e == entity) end
            local stats = world.resource("Stats")
            stats.score = seen * 10 + both
            assert(rawequal(world.entity(other:id()), other), "one handle per entity")
            assert(tostring(other) == other:id() and other:id():find("^%d+v%d+$"), other:id())
            local ok, err = pcall(function() other.health = 1 end)
            assert(not ok and tostring(err):find("entity handles are read%-only"), tostring(err))
            local player = entity:get("Player")
            assert(entity:remove("Player"))
            assert(not entity:has("Player") and entity:get("Player") == nil)
            assert(entity:get("Position").x == 1, "other references still found")
            local ok, err = pcall(function() return player.health end)
            assert(not ok and tostring(err):find("the component was removed"), tostring(err))
            local gone = world.spawn()
            gone:despawn()
            assert(world.entity(gone:id()) == nil)
            local ok, err = pcall(function() other:insert(entity:get("Position")) end)
            assert(not ok and tostring(err):find("entity:insert needs a new Position value"), tostring(err))
            local ok, err = pcall(function() return entity:get("Enemy") end)
            assert(not ok and tostring(err):find("no component named 'Enemy' is registered for scripts"), tostring(err))
        end
        "#,
    )]);
    let e = test.spawn_script("scripts/api.lua", player("Alice"));
    test.settle(1);
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    let world = test.app.world_mut();
    assert_eq!(world.resource::<Stats>().score, 21);
    assert_eq!(world.get::<Position>(e), Some(&Position { x: 1.0, y: 2.0 }));
    assert!(world.get::<Player>(e).is_none());
    let positions: Vec<Position> = world.query::<&Position>().iter(world).cloned().collect();
    assert!(positions.contains(&Position { x: 6.0, y: 6.0 }));
}

#[test]
fn removing_the_script_or_despawning_calls_on_unload() {
    let mut test = game_with_stats(&[(
        "scripts/unload.lua",
        "function on_unload() local s = world.resource('Stats') s.unloads = s.unloads + 1 end",
    )]);
    let a = test.spawn_script("scripts/unload.lua", player("a"));
    let b = test.spawn_script("scripts/unload.lua", player("b"));
    test.settle(1);
    test.app.world_mut().entity_mut(a).remove::<LuaScript>();
    test.update();
    assert_eq!(test.app.world().resource::<Stats>().unloads, 1);
    test.app.world_mut().despawn(b);
    test.update();
    test.update();
    assert_eq!(
        test.app.world().resource::<Stats>().unloads,
        2,
        "{:?}",
        test.errors()
    );
}

#[test]
fn replacing_the_script_swaps_the_instance() {
    let mut test = game_with_stats(&[
        (
            "scripts/first.lua",
            "function on_unload() local s = world.resource('Stats') s.unloads = s.unloads + 1 end",
        ),
        (
            "scripts/second.lua",
            "function on_update() local s = world.resource('Stats') s.score = s.score + 1 end",
        ),
    ]);
    let e = test.spawn_script("scripts/first.lua", player("a"));
    test.settle(1);
    let second = test.load("scripts/second.lua");
    test.app.world_mut().entity_mut(e).insert(LuaScript(second));
    test.settle(2);
    let stats = test.app.world().resource::<Stats>();
    assert_eq!(stats.unloads, 1, "the first script's instance was unloaded");
    assert!(stats.score >= 2, "the second script runs: {}", stats.score);
    assert!(test.errors().is_empty(), "{:?}", test.errors());
}

#[test]
fn stale_references_are_errors_naming_entity_and_component() {
    let mut test = game(&[(
        "scripts/keep.lua",
        "local kept\nfunction on_start() kept = entity:get('Position') end\nfunction on_update() kept.x = kept.x + 1 end\n",
    )]);
    let e = test.spawn_script(
        "scripts/keep.lua",
        (player("a"), Position { x: 0.0, y: 0.0 }),
    );
    test.settle(3);
    assert!(
        test.app.world().get::<Position>(e).unwrap().x >= 3.0,
        "the reference stays live across frames"
    );
    test.app.world_mut().entity_mut(e).remove::<Position>();
    test.update();
    let errors = test.error_messages();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        errors[0].kind,
        bevy_lunar::LuaScriptErrorKind::StaleReference
    );
    assert_eq!(
        errors[0].to_string(),
        format!("scripts/keep.lua:3: Position of entity {e}: the component was removed")
    );
}

#[test]
fn a_reference_kept_in_a_callback_goes_stale_when_its_row_is_taken() {
    // Read and written through its kept address, then despawned in the same callback; the
    // entity spawned next takes the table row it left (the same address): the old reference
    // must be refused, not read or write the newcomer's component.
    let mut test = game(&[(
        "scripts/reuse.lua",
        r#"
        function on_start()
            local a = world.spawn { Slot.new(1, "a") }
            local s = a:get("Slot")
            s.value = s.value + 1
            assert(s.value == 2)
            a:despawn()
            local b = world.spawn { Slot.new(5, "b") }
            local read, err = pcall(function() return s.value end)
            assert(not read and string.find(tostring(err), "the entity was despawned", 1, true),
                tostring(err))
            local wrote = pcall(function() s.value = 9 end)
            assert(not wrote, "a write through the stale reference")
            assert(b:get("Slot").value == 5 and b:get("Slot").tag == "b")
        end
        "#,
    )]);
    test.app.register_lua_component::<Slot>();
    test.spawn_script("scripts/reuse.lua", ());
    test.settle(2);
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    let mut slots = test.app.world_mut().query::<&Slot>();
    let values: Vec<(f64, String)> = slots
        .iter(test.app.world())
        .map(|slot| (slot.value, slot.tag.clone()))
        .collect();
    assert_eq!(values, vec![(5.0, "b".to_owned())]);
}

#[derive(Resource, Default)]
struct ChangedTransforms(usize);

/// Counts the transforms changed since the system last ran, leaving out those just added.
fn count_changed_transforms(mut changed: ResMut<ChangedTransforms>, query: Query<Ref<Transform>>) {
    changed.0 += query
        .iter()
        .filter(|t| t.is_changed() && !t.is_added())
        .count();
}

#[test]
fn views_of_component_fields_reach_their_component_as_its_references_do() {
    // `t.translation` and `t.scale` (views of the component's fields, keyed on Lua 5.4) are read
    // and written where the component is, follow it when its table grows between frames, mark
    // it changed on writes only, and go stale with their entity even when a newcomer takes its
    // row.
    let mut test = game(&[
        (
            "scripts/writer.lua",
            r#"
            local kept
            function on_update()
                local t = entity:get("Transform")
                kept = kept or t.translation
                kept.x = kept.x + 1
                t.scale.y = t.scale.y * 2
                -- Each field's own view, kept (Lua 5.4) and handed out again.
                assert(t.rotation.w == 1 and t.scale.x == 1 and t.translation.z == 0)
                assert(t.rotation.x == 0 and t.scale.z == 1 and t.translation.y == 0)
                assert(_VERSION ~= "Lua 5.4" or rawequal(t.scale, t.scale))
            end
            "#,
        ),
        (
            "scripts/reader.lua",
            "function on_update() local t = entity:get('Transform') local x = t.translation.x + t.scale.y end",
        ),
        (
            "scripts/stale.lua",
            r#"
            function on_start()
                local a = world.spawn { Transform.from_xyz(1, 2, 3) }
                local v = a:get("Transform").translation
                v.x = v.x + 1
                assert(v.x == 2)
                a:despawn()
                local b = world.spawn { Transform.from_xyz(7, 8, 9) }
                local read, err = pcall(function() return v.x end)
                assert(not read and string.find(tostring(err), "despawned", 1, true), tostring(err))
                assert(not pcall(function() v.y = 0 end), "a write through the stale view")
                local t = b:get("Transform")
                assert(t.translation.x == 7 and t.translation.y == 8, tostring(t.translation))
            end
            "#,
        ),
    ]);
    test.app
        .init_resource::<ChangedTransforms>()
        .add_systems(Update, count_changed_transforms.after(LuaScriptSet));
    let writer = test.spawn_script("scripts/writer.lua", Transform::from_xyz(0.0, 0.0, 0.0));
    test.spawn_script("scripts/reader.lua", Transform::from_xyz(5.0, 0.0, 0.0));
    test.spawn_script("scripts/stale.lua", ());
    test.settle(1);
    test.app.world_mut().resource_mut::<ChangedTransforms>().0 = 0;
    let start = *test.app.world().get::<Transform>(writer).unwrap();
    for _ in 0..4 {
        // The table grows: its columns move, and the kept addresses with them.
        test.app
            .world_mut()
            .spawn_batch((0..2_000).map(|_| Transform::default()));
        test.update();
    }
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    let now = *test.app.world().get::<Transform>(writer).unwrap();
    assert_eq!(now.translation.x, start.translation.x + 4.0);
    assert_eq!(now.scale.y, start.scale.y * 16.0);
    assert_eq!(now.translation.y, 0.0);
    assert_eq!(
        test.app.world().resource::<ChangedTransforms>().0,
        4,
        "the writer, once a frame"
    );
}

#[derive(Resource, Default)]
struct ChangedPlayers(usize);

fn count_changed(mut changed: ResMut<ChangedPlayers>, query: Query<(), Changed<Player>>) {
    changed.0 += query.iter().count();
}

#[test]
fn writes_mark_components_changed_and_reads_do_not() {
    let mut test = game(&[
        (
            "scripts/read.lua",
            "function on_update() local h = entity:get('Player').health end",
        ),
        (
            "scripts/write.lua",
            "function on_update() local p = entity:get('Player') p.level = p.level + 1 end",
        ),
    ]);
    test.app
        .init_resource::<ChangedPlayers>()
        .add_systems(Update, count_changed.after(LuaScriptSet));
    test.spawn_script("scripts/read.lua", player("reader"));
    test.spawn_script("scripts/write.lua", player("writer"));
    test.settle(1);
    test.app.world_mut().resource_mut::<ChangedPlayers>().0 = 0;
    for _ in 0..5 {
        test.update();
    }
    assert_eq!(
        test.app.world().resource::<ChangedPlayers>().0,
        5,
        "only the writer, once a frame"
    );
}

#[test]
fn get_sees_components_removed_and_added_by_rust() {
    let mut test = game(&[(
        "scripts/watch.lua",
        r#"
        function on_update()
            local position = entity:get("Position")
            entity:get("Player").name = position and ("at " .. tostring(position)) or "nowhere"
        end
        "#,
    )]);
    let e = test.spawn_script(
        "scripts/watch.lua",
        (player("a"), Position { x: 1.0, y: 2.0 }),
    );
    test.settle(2);
    let name = |test: &TestApp| test.app.world().get::<Player>(e).unwrap().name.clone();
    assert_eq!(name(&test), "at (1, 2)");
    test.app.world_mut().entity_mut(e).remove::<Position>();
    test.update();
    assert_eq!(name(&test), "nowhere");
    test.app
        .world_mut()
        .entity_mut(e)
        .insert(Position { x: 3.0, y: 4.0 });
    test.update();
    assert_eq!(name(&test), "at (3, 4)");
    assert!(test.errors().is_empty(), "{:?}", test.errors());
}

/// Number and boolean fields of every width, and a string, for the reads and writes of live
/// references.
#[derive(Component, LuaUserData, Clone, Debug, PartialEq, Default)]
pub struct Gauges {
    pub label: String,
    pub speed: f32,
    pub score: f64,
    pub armor: i32,
    pub lives: u8,
    pub big: u64,
    pub alive: bool,
    #[lua(readonly)]
    pub serial: i64,
    pub checked: i64,
}

#[lua_methods]
impl Gauges {
    pub fn new() -> Self {
        Gauges::default()
    }
}

#[test]
fn component_references_read_and_write_fields_exactly_as_owned_values() {
    // Each write is tried on a live reference and on an owned value: same result, same
    // error, same value after (a refused write changes nothing).
    let mut test = game(&[(
        "scripts/gauges.lua",
        r#"
        local cases = {
            {"speed", 1.5}, {"speed", 7}, {"speed", 1e300}, {"speed", "fast"},
            {"score", 3}, {"score", -2.25}, {"score", {}}, {"score", true},
            {"armor", 5}, {"armor", 6.0}, {"armor", 6.5}, {"armor", 2^40}, {"armor", false},
            {"lives", 255}, {"lives", 256}, {"lives", -1},
            {"big", 2^62}, {"big", 9007199254740991}, {"big", -1},
            {"alive", true}, {"alive", 1}, {"alive", nil},
            {"serial", 4}, {"nope", 1},
            {"label", "ok"}, {"label", 5}, {"label", "\255"}, {"label", nil}, {"label", ""},
            {"label", "é"}, {"label", string.rep("y", 64)}, {"label", string.rep("x", 65)},
        }
        local function try(target, field, value)
            local ok, err = pcall(function() target[field] = value end)
            local read_ok, read = pcall(function() return target[field] end)
            return string.format("%s|%s|%s|%s", ok, tostring(err):match("^[^\n]*"),
                read_ok, tostring(read):match("^[^\n]*"))
        end
        function on_start()
            local live, owned = entity:get("Gauges"), Gauges.new()
            local mismatches = {}
            for _, case in ipairs(cases) do
                local a, b = try(live, case[1], case[2]), try(owned, case[1], case[2])
                if a ~= b then
                    mismatches[#mismatches + 1] = case[1] .. " = " .. tostring(case[2]) ..
                        ": live " .. a .. ", owned " .. b
                end
            end
            assert(#mismatches == 0, table.concat(mismatches, "\n"))
            -- The dispatch's functions called directly with missing or wrong arguments are
            -- errors, not crashes, and change nothing.
            local mt = getmetatable(live)
            if type(mt) == "table" then
                for _, args in ipairs({ {}, {5}, {live}, {5, "speed"}, {live, "speed"},
                                        {live, "speed", "x"}, {{}, "speed", 1} }) do
                    pcall(mt.__index, table.unpack(args))
                    pcall(mt.__newindex, table.unpack(args))
                end
            end
            assert(live.speed == 7, tostring(live.speed))
            live.checked = #cases
        end
        "#,
    )]);
    test.app.register_lua_component::<Gauges>();
    let e = test.spawn_script("scripts/gauges.lua", Gauges::default());
    test.settle(1);
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    assert_eq!(
        test.app.world().get::<Gauges>(e),
        Some(&Gauges {
            label: "x".repeat(65),
            speed: 7.0,
            score: -2.25,
            armor: 6,
            lives: 255,
            big: 9007199254740991,
            alive: true,
            serial: 0,
            checked: 32,
        })
    );
}

#[test]
fn documented_extra_std_libs_start_and_debug_is_refused_when_the_plugin_is_added() {
    use bevy_lunar::mlua::StdLib;
    // Every library the plugin documents opens, and scripts see it.
    let plugin = LuaScriptingPlugin {
        extra_std_libs: StdLib::IO | StdLib::OS | StdLib::PACKAGE,
        ..default()
    };
    let mut test = TestApp::with_plugin(
        &[(
            "scripts/libs.lua",
            r#"
            function on_start()
                assert(type(io.write) == "function", "io")
                assert(type(os.getenv) == "function", "all of os")
                assert(type(package) == "table" and type(require) == "function", "package")
                -- What `require` returns of the shared libraries is read-only too.
                assert(require("string").upper("a") == "A", "require")
                assert(not pcall(function() require("string").upper = nil end), "string")
                assert(not pcall(function() require("_G").world = nil end), "_G")
                assert(not pcall(function() package.loaded.math = {} end), "package.loaded")
                assert(not pcall(function() io.write = nil end), "io")
                entity:get("Player").name = "libs ok"
            end
            "#,
        )],
        plugin,
        false,
    );
    test.app.register_lua_component::<Player>();
    let e = test.spawn_script("scripts/libs.lua", player("?"));
    test.settle(1);
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    assert_eq!(test.app.world().get::<Player>(e).unwrap().name, "libs ok");

    // The debug library would undo the budget and the isolation: refused at App build time,
    // with a message saying what to change (not a failure inside Lua's state creation).
    let refused = std::panic::catch_unwind(|| {
        App::new().add_plugins((
            MinimalPlugins,
            AssetPlugin::default(),
            LuaScriptingPlugin {
                extra_std_libs: StdLib::DEBUG,
                ..default()
            },
        ));
    })
    .expect_err("StdLib::DEBUG is refused");
    let message = refused
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("extra_std_libs asks for what the sandbox cannot offer: StdLib::DEBUG")
            && message.contains("Remove it from extra_std_libs"),
        "{message}"
    );
}

#[derive(Component, LuaUserData, Clone, Debug, PartialEq)]
pub struct Fragile {
    pub count: i64,
}

#[lua_methods]
impl Fragile {
    /// Divides by `by`: panics on zero, as Rust does.
    pub fn share(&mut self, by: i64) -> i64 {
        self.count += 1;
        100 / by
    }

    pub fn make(valid: bool) -> Fragile {
        assert!(valid, "make needs a valid flag");
        Fragile { count: 0 }
    }
}

#[test]
fn a_panic_in_a_rust_method_is_a_script_error_and_the_game_goes_on() {
    let mut test = TestApp::new(&[(
        "scripts/fragile.lua",
        r#"
        function on_update()
            local f = entity:get("Fragile")
            local ok = pcall(Fragile.make, false)
            assert(not ok)
            f:share(0)
        end
        "#,
    )]);
    test.app.register_lua_component::<Fragile>();
    let e = test.spawn_script("scripts/fragile.lua", Fragile { count: 0 });
    test.settle(0);
    for _ in 0..3 {
        test.update(); // must not panic
    }
    let errors = test.error_messages();
    assert!(!errors.is_empty());
    let error = &errors[0];
    assert_eq!(error.path, "scripts/fragile.lua");
    assert_eq!(error.line, Some(6), "{error}");
    assert!(
        error
            .message
            .contains("the Rust method `Fragile.share` panicked: attempt to divide by zero"),
        "{error}"
    );
    assert!(
        test.app.world().get::<Fragile>(e).unwrap().count >= 3,
        "called every frame"
    );
}

#[test]
fn errors_raised_in_rust_reach_pcall_as_lua_strings_with_the_script_line() {
    let mut test = game(&[(
        "scripts/pcall.lua",
        "function on_update()
            local p = entity:get('Player')
            local ok, err = pcall(function()
                p.level = 'high'
            end)
            assert(not ok and type(err) == 'string', type(err))
            assert(err:find('^scripts/pcall.lua:4: ') and err:find('level'), err)
            assert(not err:find('traceback'), err)
            local _, err2 = xpcall(function() p.level = {} end, function(e) return type(e) .. '|' .. e end)
            assert(err2:find('^string|scripts/pcall.lua:9: '), err2)
            local co = coroutine.create(function() p.level = 'x' end)
            local _, err3 = coroutine.resume(co)
            assert(type(err3) == 'string' and err3:find('^scripts/pcall.lua:11: '), tostring(err3))
            local _, err4 = pcall(string.find, 'abc', '[a')
            assert(type(err4) == 'string' and err4:find('malformed pattern'), tostring(err4))
            local _, err5 = pcall(error, { code = 7 })
            assert(err5.code == 7)
            p.name = err
        end",
    )]);
    let e = test.spawn_script("scripts/pcall.lua", player("a"));
    test.settle(2);
    assert_eq!(test.errors(), Vec::<String>::new());
    let name = &test.app.world().get::<Player>(e).unwrap().name;
    assert!(name.starts_with("scripts/pcall.lua:4: "), "{name}");
}

#[test]
fn views_of_nested_fields_stay_live_and_are_collected_with_their_reference() {
    // `t.translation` is a view into the component: kept across frames, written through after
    // the whole field was replaced, and stale once the component is removed, exactly as a view
    // made afresh would be.
    let script = r#"
        local kept
        local frame = 0
        local log = {}
        function on_update()
            frame = frame + 1
            local t = entity:get("Transform")
            if frame == 1 then
                kept = t.translation
                t.translation.x = t.translation.x + 1
                kept.y = 5
                log[#log + 1] = string.format("%g,%g,%g", t.translation.x, t.translation.y, kept.x)
            elseif frame == 2 then
                t.translation = Vec3.new(10, 20, 0)
                kept.z = kept.x + kept.y       -- through a view kept from frame 1
                log[#log + 1] = string.format("%g", t.translation.z)
            elseif frame == 3 then
                entity:remove("Transform")
                local ok, err = pcall(function() return kept.x end)
                log[#log + 1] = tostring(ok) .. "," .. tostring(tostring(err):match("removed"))
                entity:get("Player").name = table.concat(log, "|")
            end
        end
    "#;
    let mut test = game(&[("scripts/views.lua", script)]);
    let e = test.spawn_script(
        "scripts/views.lua",
        (Transform::from_xyz(1.0, 2.0, 3.0), player("")),
    );
    for _ in 0..5 {
        test.update();
    }
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    assert_eq!(
        test.app.world().get::<Player>(e).unwrap().name,
        "2,5,2|30|false,removed"
    );
}

#[test]
fn views_kept_by_references_do_not_pile_up() {
    // 300 entities a round, each read through `t.translation` by a script walking them, then
    // despawned: after a full collection, the Lua memory stays where it was after the first
    // rounds (a reference's kept views go with it).
    let script = r#"
        function on_update()
            for e, t in world.query("Transform"):each() do
                t.translation.x = t.translation.x + 1
                -- Lua 5.4: the C dispatch keeps the view (other Lua versions make a new one)
                assert(_VERSION ~= "Lua 5.4" or rawequal(t.translation, t.translation),
                    "the view is kept")
            end
            collectgarbage("collect")
        end
    "#;
    let mut test = game(&[("scripts/walk.lua", script)]);
    test.spawn_script("scripts/walk.lua", ());
    test.settle(1);
    let mut after_round = Vec::new();
    for _ in 0..20 {
        let spawned: Vec<Entity> = (0..300)
            .map(|_| test.app.world_mut().spawn(Transform::default()).id())
            .collect();
        test.update();
        test.update();
        for e in spawned {
            test.app.world_mut().despawn(e);
        }
        for _ in 0..12 {
            test.update();
        }
        after_round.push(
            test.app
                .world()
                .resource::<bevy_lunar::LuaScriptStats>()
                .lua_memory,
        );
    }
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    let (early, late) = (after_round[4], after_round[19]);
    assert!(
        late < early + early / 10,
        "Lua memory grew from {early} to {late} bytes: {after_round:?}"
    );
}

#[test]
fn the_memory_of_despawned_instances_is_collected() {
    // 100 instances each holding 200 KB of their own through `on_update`'s upvalue; a
    // collecting script stays. Once they are despawned, their memory is collected: nothing the
    // runtime keeps per instance (its `on_update` included) outlives it.
    let hoarder = r#"
        local mine = string.rep("x", 200000) .. tostring(entity)
        function on_update(dt) local n = #mine end
    "#;
    let collector = r#"function on_update() collectgarbage("collect") end"#;
    let mut test = game(&[
        ("scripts/hoarder.lua", hoarder),
        ("scripts/collector.lua", collector),
    ]);
    test.spawn_script("scripts/collector.lua", ());
    let hoarders: Vec<Entity> = (0..100)
        .map(|_| test.spawn_script("scripts/hoarder.lua", ()))
        .collect();
    test.settle(3);
    let memory = |test: &TestApp| {
        test.app
            .world()
            .resource::<bevy_lunar::LuaScriptStats>()
            .lua_memory
    };
    let held = memory(&test);
    assert!(
        held > 20_000_000,
        "the instances hold their strings: {held}"
    );
    for e in hoarders {
        test.app.world_mut().despawn(e);
    }
    for _ in 0..3 {
        test.update();
    }
    let left = memory(&test);
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    assert!(left < 2_000_000, "{left} bytes left of {held}");
}

/// A component of its own table, for the references-follow-their-components test.
#[derive(Component, LuaUserData, Clone, Debug, PartialEq)]
pub struct Slot {
    pub value: f64,
    pub tag: String,
}

#[lua_methods]
impl Slot {
    pub fn new(value: f64, tag: String) -> Self {
        Slot { value, tag }
    }
}

#[test]
fn references_follow_their_components_when_the_world_changes_around_them() {
    // Fast field access keeps where it last found a component: a despawn moves another entity
    // into the freed row, an insert moves the entity to another table, spawns grow the table,
    // and Rust systems change anything between frames. Every reference must still reach its
    // own entity's component.
    let mut test = game(&[(
        "scripts/mover.lua",
        r#"
        local refs = {}
        local function check()
            for i = 3, #refs do
                local r = refs[i]
                assert(r.s.tag == r.tag, "read " .. r.s.tag .. " through the reference of " .. r.tag)
                r.s.value = r.s.value * 10 + 1
            end
        end
        function on_start()
            for e, s in world.query("Slot"):each() do
                refs[#refs + 1] = { e = e, s = s, tag = s.tag }
            end
            refs[1].e:despawn()
            refs[2].e:insert(Position.new(1, 2))
            for i = 1, 300 do world.spawn { Slot.new(-1, "new") } end
            check()
            refs[2].s.value = 1000
            local ok, err = pcall(function() return refs[1].s.value end)
            assert(not ok and tostring(err):find("despawned"), tostring(err))
        end
        function on_update() check() end
        "#,
    )]);
    test.app.register_lua_component::<Slot>();
    let slots: Vec<Entity> = (0..8)
        .map(|k| {
            test.app
                .world_mut()
                .spawn(Slot {
                    value: k as f64,
                    tag: format!("s{k}"),
                })
                .id()
        })
        .collect();
    test.spawn_script("scripts/mover.lua", ());
    test.settle(1);
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    let value = |test: &TestApp, e: Entity| test.app.world().get::<Slot>(e).map(|s| s.value);
    let moved = slots
        .iter()
        .position(|e| test.app.world().get::<Position>(*e).is_some())
        .expect("one slot was moved to another table");
    let gone = slots
        .iter()
        .position(|e| test.app.world().get_entity(*e).is_err())
        .expect("one slot was despawned");
    assert_eq!(value(&test, slots[moved]), Some(1000.0));
    let written = |k: usize, frames: u32| (0..frames).fold(k as f64, |v, _| v * 10.0 + 1.0);
    let frames_run = |test: &TestApp| {
        (0..8)
            .filter(|k| *k != moved && *k != gone)
            .map(|k| (k, value(test, slots[k]).unwrap()))
            .collect::<Vec<_>>()
    };
    // Each frame rewrites every other slot once; count how many times from the first.
    let first = frames_run(&test);
    let times = (1..10)
        .find(|n| first[0].1 == written(first[0].0, *n))
        .expect("written a whole number of times");
    for (k, v) in &first {
        assert_eq!(*v, written(*k, times), "slot s{k}");
    }
    // Between frames a Rust system moves things: despawn a new slot in the middle of the
    // table and move one of the kept slots to another table.
    let kept = first[1].0;
    let newcomer = {
        let world = test.app.world_mut();
        let mut q = world.query_filtered::<Entity, With<Slot>>();
        q.iter(world).find(|e| !slots.contains(e)).unwrap()
    };
    test.app.world_mut().despawn(newcomer);
    test.app
        .world_mut()
        .entity_mut(slots[kept])
        .insert(Position { x: 0.0, y: 0.0 });
    test.update();
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    for (k, v) in frames_run(&test) {
        assert_eq!(
            v,
            written(k, times + 1),
            "slot s{k} after Rust moved things"
        );
    }
    let newcomers = {
        let world = test.app.world_mut();
        let mut q = world.query::<&Slot>();
        q.iter(world)
            .filter(|s| s.tag == "new")
            .map(|s| s.value)
            .collect::<Vec<_>>()
    };
    assert_eq!(newcomers.len(), 299);
    assert!(newcomers.iter().all(|v| *v == -1.0), "no write went astray");
    // Between frames the table grows (its columns move to a new allocation)...
    for _ in 0..3000 {
        test.app.world_mut().spawn(Slot {
            value: -1.0,
            tag: "new".into(),
        });
    }
    test.update();
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    for (k, v) in frames_run(&test) {
        assert_eq!(v, written(k, times + 2), "slot s{k} after the table grew");
    }
    // ... and, once the newcomers are gone, a kept slot leaving the table moves the last one
    // into its row.
    let newcomers: Vec<Entity> = {
        let world = test.app.world_mut();
        let mut q = world.query::<(Entity, &Slot)>();
        q.iter(world)
            .filter(|(_, s)| s.tag == "new")
            .map(|(e, _)| e)
            .collect()
    };
    for e in newcomers {
        test.app.world_mut().despawn(e);
    }
    let leaving = (0..8)
        .find(|k| ![moved, gone, kept].contains(k))
        .expect("a slot still in the first table");
    test.app
        .world_mut()
        .entity_mut(slots[leaving])
        .insert(Position { x: 0.0, y: 0.0 });
    test.update();
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    for (k, v) in frames_run(&test) {
        assert_eq!(v, written(k, times + 3), "slot s{k} after rows moved");
    }
}

/// Field names past Lua's interned-string length (40 bytes), for the fast field dispatch.
#[derive(Component, LuaUserData, Clone, Debug, PartialEq, Default)]
pub struct LongNames {
    pub the_remaining_hit_points_of_this_character_now: f64,
    pub hp: f64,
}

#[test]
fn fields_with_long_names_read_and_write_like_short_ones() {
    let mut test = game(&[(
        "scripts/long.lua",
        r#"
        function on_update()
            local c = entity:get("LongNames")
            c.the_remaining_hit_points_of_this_character_now = c.the_remaining_hit_points_of_this_character_now + c.hp
            c.hp = c.hp + 1
            local key = "the_remaining_hit_points_" .. "of_this_character_now"
            c[key] = c[key] + 0.5
        end
        "#,
    )]);
    test.app.register_lua_component::<LongNames>();
    let e = test.spawn_script(
        "scripts/long.lua",
        LongNames {
            the_remaining_hit_points_of_this_character_now: 10.0,
            hp: 1.0,
        },
    );
    test.settle(3);
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    let c = test.app.world().get::<LongNames>(e).unwrap();
    let frames = c.hp - 1.0;
    assert!(frames >= 3.0, "{frames} frames");
    // Each frame adds hp (1, 2, 3, ...) and 0.5.
    assert_eq!(
        c.the_remaining_hit_points_of_this_character_now,
        10.0 + frames * (frames + 1.0) / 2.0 + 0.5 * frames
    );
}

/// A sparse-set component, for the query-walk test.
#[derive(Component, LuaUserData, Clone, Debug, PartialEq)]
#[component(storage = "SparseSet")]
pub struct Spark {
    pub value: f64,
}

#[lua_methods]
impl Spark {
    pub fn new(value: f64) -> Self {
        Spark { value }
    }
}

/// The `Slot`s changed in the last frame, by the scripts.
#[derive(Resource, Default)]
struct ChangedSlots(Vec<Entity>);

fn collect_changed_slots(mut changed: ResMut<ChangedSlots>, query: Query<Entity, Changed<Slot>>) {
    changed.0 = query.iter().collect();
}

#[test]
fn query_walks_write_each_entity_across_tables_and_growth() {
    // A walk keeps each reference's address as it hands the reference out, through the column
    // of the table it found last: entities of several tables, a sparse-set component, tables
    // growing (and moving) in the middle of a walk, and writes marking exactly the written
    // components changed.
    let mut test = game(&[(
        "scripts/walk.lua",
        r#"
        local frame = 0
        function on_update()
            frame = frame + 1
            local i = 0
            for e, s, k in world.query("Slot", "Spark"):each() do
                i = i + 1
                if s.tag ~= "skip" then
                    s.value = s.value + k.value
                    k.value = k.value + 1
                end
                if frame == 2 and i == 3 then
                    for j = 1, 200 do world.spawn { Slot.new(0, "late"), Spark.new(0) } end
                end
            end
        end
        "#,
    )]);
    test.app
        .register_lua_component::<Slot>()
        .register_lua_component::<Spark>()
        .init_resource::<ChangedSlots>()
        .add_systems(Update, collect_changed_slots.after(LuaScriptSet));
    let originals: Vec<(f64, bool, Entity)> = (0..30)
        .map(|k| {
            let skip = k % 7 == 0;
            let tag = if skip {
                "skip".to_owned()
            } else {
                format!("s{k}")
            };
            let mut e = test.app.world_mut().spawn((
                Slot {
                    value: k as f64,
                    tag,
                },
                Spark { value: 1.0 },
            ));
            match k % 3 {
                1 => e.insert(Position { x: 0.0, y: 0.0 }),
                2 => e.insert(Name::new("other table")),
                _ => &mut e,
            };
            (k as f64, skip, e.id())
        })
        .collect();
    test.spawn_script("scripts/walk.lua", ());
    test.settle(4);
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    let world = test.app.world_mut();
    let read = |world: &World, e: Entity| {
        (
            world.get::<Slot>(e).unwrap().value,
            world.get::<Spark>(e).unwrap().value,
        )
    };
    // Frames run: each adds the spark (1, 2, 3, ...) to the slot, then one to the spark.
    let frames = read(world, originals[1].2).1 - 1.0;
    assert!(frames >= 4.0, "{frames} frames");
    for (k, skip, e) in &originals {
        let expected = if *skip {
            (*k, 1.0)
        } else {
            (k + frames * (frames + 1.0) / 2.0, 1.0 + frames)
        };
        assert_eq!(read(world, *e), expected, "entity {k}");
    }
    // Spawned in the second frame's walk, walked from the third frame on (sparks 0, 1, ...).
    let mut late = world.query::<(Entity, &Slot)>();
    let late: Vec<Entity> = late
        .iter(world)
        .filter(|(_, s)| s.tag == "late")
        .map(|(e, _)| e)
        .collect();
    assert_eq!(late.len(), 200);
    let walked = frames - 2.0;
    for e in &late {
        assert_eq!(read(world, *e), (walked * (walked - 1.0) / 2.0, walked));
    }
    let mut changed = world.resource::<ChangedSlots>().0.clone();
    let mut written: Vec<Entity> = originals
        .iter()
        .filter(|(_, skip, _)| !skip)
        .map(|(_, _, e)| *e)
        .chain(late)
        .collect();
    changed.sort();
    written.sort();
    assert_eq!(
        changed, written,
        "the written slots of the last frame, and only they"
    );
}

#[test]
fn query_walks_see_the_entities_of_each_frame() {
    // A walk finding the same entities as one of the last few gets their handle list again:
    // it must still hand out exactly this frame's entities, as the same handles
    // `world.entity` gives, with their own components.
    let mut test = game(&[(
        "scripts/walk.lua",
        r#"
        function on_update()
            local seen = {}
            for e, s in world.query("Slot"):each() do
                assert(world.entity(e:id()) == e, "one handle per entity")
                assert(e:get("Slot") == s, "the entity's own reference")
                seen[#seen + 1] = s.tag
            end
            table.sort(seen)
            entity:get("Player").name = table.concat(seen, ",")
        end
        "#,
    )]);
    test.app.register_lua_component::<Slot>();
    let slot = |tag: &str| Slot {
        value: 0.0,
        tag: tag.into(),
    };
    let a = test.app.world_mut().spawn(slot("a")).id();
    let b = test.app.world_mut().spawn(slot("b")).id();
    test.app.world_mut().spawn(slot("c"));
    let me = test.spawn_script("scripts/walk.lua", player(""));
    let walked = |test: &mut TestApp| {
        test.update();
        assert!(test.errors().is_empty(), "{:?}", test.errors());
        test.app.world().get::<Player>(me).unwrap().name.clone()
    };
    test.settle(1);
    assert_eq!(walked(&mut test), "a,b,c");
    assert_eq!(walked(&mut test), "a,b,c");
    test.app.world_mut().despawn(b);
    assert_eq!(walked(&mut test), "a,c");
    let d = test.app.world_mut().spawn(slot("d")).id();
    assert_eq!(walked(&mut test), "a,c,d");
    test.app.world_mut().despawn(d);
    assert_eq!(walked(&mut test), "a,c", "a list seen two frames ago");
    test.app.world_mut().despawn(a);
    test.app.world_mut().spawn(slot("e"));
    for _ in 0..3 {
        assert_eq!(walked(&mut test), "c,e");
    }
}
