//! Gameplay over time: `wait`, `wait_frames`, `wait_until`, tasks, `after`, `every`, on game
//! time that advances 100 ms a frame.

#[path = "common/app.rs"]
mod app;

use std::time::Duration;

use app::TestApp;
use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use bevy_lunar::prelude::*;
use bevy_lunar::{LuaCall, LuaMessage, LuaScriptErrorKind, LuaScriptStats, ScriptValue};

#[derive(Component, LuaUserData, Clone, Debug, Default, PartialEq)]
pub struct Probe {
    pub a: i64,
    pub b: i64,
    pub t0: f64,
    pub t1: f64,
    pub note: String,
}

#[derive(Resource, LuaUserData, Clone, Debug, Default)]
pub struct Tally {
    pub closed: i64,
    pub ticks: i64,
}

const FRAME: Duration = Duration::from_millis(100);

fn game(files: &[(&str, &str)]) -> TestApp {
    game_with(files, LuaScriptingPlugin::default(), false)
}

fn game_with(files: &[(&str, &str)], plugin: LuaScriptingPlugin, watch: bool) -> TestApp {
    let mut test = TestApp::with_plugin(files, plugin, watch);
    test.app
        .insert_resource(TimeUpdateStrategy::ManualDuration(FRAME))
        .init_resource::<Tally>()
        .register_lua_component::<Probe>()
        .register_lua_resource::<Tally>();
    test
}

fn probe(test: &TestApp, e: Entity) -> Probe {
    test.app.world().get::<Probe>(e).unwrap().clone()
}

fn tasks_waiting(test: &TestApp) -> usize {
    test.app.world().resource::<LuaScriptStats>().tasks
}

#[test]
fn waits_resume_on_game_time_frames_and_conditions_while_on_update_goes_on() {
    let mut test = game(&[(
        "scripts/waits.lua",
        "function on_start()
            local p = entity:get('Probe')
            p.t0 = time.elapsed
            local waited = wait(0.35)
            p.t1 = time.elapsed
            p.note = string.format('%.2f', waited)
            local before = p.b
            wait_frames(2)
            p.a = p.b - before
            local checks = 0
            wait_until(function() checks = checks + 1 return checks == 3 end)
            p.a = p.a * 100 + checks
        end
        function on_update()
            local p = entity:get('Probe')
            p.b = p.b + 1
        end",
    )]);
    let e = test.spawn_script("scripts/waits.lua", Probe::default());
    test.settle(12);
    assert_eq!(test.errors(), Vec::<String>::new());
    let p = probe(&test, e);
    // 0.35 s at 100 ms a frame: resumed on the fourth frame, at 0.4 s.
    assert!((p.t1 - p.t0 - 0.4).abs() < 1e-9, "{p:?}");
    assert_eq!(p.note, "0.40");
    // Two frames of `on_update` between the wait and the wake; the condition held at its
    // third check.
    assert_eq!(p.a, 203, "{p:?}");
    assert!(
        p.b >= 12,
        "on_update ran every frame while on_start waited: {p:?}"
    );
}

#[test]
fn an_on_update_that_waits_is_not_started_again_until_it_finishes() {
    let mut test = game(&[(
        "scripts/slow.lua",
        "function on_update(dt)
            local p = entity:get('Probe')
            p.a = p.a + 1
            p.t0 = dt
            wait_frames(3)
            p.b = p.b + 1
        end",
    )]);
    let e = test.spawn_script("scripts/slow.lua", Probe::default());
    test.settle(0);
    let start = probe(&test, e);
    for _ in 0..12 {
        test.update();
    }
    let p = probe(&test, e);
    assert_eq!(test.errors(), Vec::<String>::new());
    assert_eq!(
        p.a - start.a,
        4,
        "one on_update every 3 frames: {start:?} {p:?}"
    );
    assert_eq!(p.a - p.b, 1, "one still waiting: {p:?}");
    assert!((p.t0 - 0.1).abs() < 1e-9, "dt is the frame's: {p:?}");
}

#[test]
fn pausing_virtual_time_pauses_waits() {
    let mut test = game(&[(
        "scripts/pause.lua",
        "function on_start()
            after(0.3, function() entity:get('Probe').a = 1 end)
            wait_frames(1)
            entity:get('Probe').b = 1
        end",
    )]);
    let e = test.spawn_script("scripts/pause.lua", Probe::default());
    test.settle(0);
    test.app.world_mut().resource_mut::<Time<Virtual>>().pause();
    for _ in 0..10 {
        test.update();
    }
    let paused = probe(&test, e);
    assert_eq!(paused.a, 0, "no game time passed: {paused:?}");
    assert_eq!(paused.b, 1, "frames still pass: {paused:?}");
    test.app
        .world_mut()
        .resource_mut::<Time<Virtual>>()
        .unpause();
    for _ in 0..4 {
        test.update();
    }
    assert_eq!(probe(&test, e).a, 1);
    assert_eq!(test.errors(), Vec::<String>::new());
}

#[test]
fn every_after_task_handles_cancel_and_running() {
    let mut test = game(&[(
        "scripts/timers.lua",
        "function on_start()
            local p = entity:get('Probe')
            local ticker = every(0.2, function() p.a = p.a + 1 end)
            after(0.5, function()
                ticker:cancel()
                p.b = 1
                p.note = p.note .. ',' .. tostring(ticker:running())
            end)
            local quick = task(function(x) p.t0 = x end, 7)
            local slow = task(function() wait(10) end)
            p.note = tostring(quick:running()) .. ',' .. tostring(ticker:running()) .. ',' .. tostring(slow)
            slow:cancel()
            p.note = p.note .. ',' .. tostring(slow:running())
        end",
    )]);
    let e = test.spawn_script("scripts/timers.lua", Probe::default());
    test.settle(10);
    assert_eq!(test.errors(), Vec::<String>::new());
    let p = probe(&test, e);
    assert_eq!((p.a, p.b, p.t0), (2, 1, 7.0), "{p:?}");
    assert_eq!(p.note, "false,true,Task (running),false,false");
    assert_eq!(tasks_waiting(&test), 0);
}

#[test]
fn timers_cancel_themselves_and_an_after_that_waits_stays_its_handles_task() {
    let mut test = game(&[(
        "scripts/timers.lua",
        "function on_start()
            local p = entity:get('Probe')
            local ticker
            ticker = every(0.1, function()
                p.a = p.a + 1
                if p.a == 2 then ticker:cancel() end
            end)
            local late = after(0.1, function()
                p.b = 1
                wait(10)
                p.b = 2
            end)
            wait(0.35)
            p.note = tostring(late:running())
            late:cancel()
            p.note = p.note .. ',' .. tostring(late:running()) .. ',' .. tostring(ticker:running())
        end",
    )]);
    let e = test.spawn_script("scripts/timers.lua", Probe::default());
    test.settle(10);
    assert_eq!(test.errors(), Vec::<String>::new());
    let p = probe(&test, e);
    assert_eq!(
        (p.a, p.b),
        (2, 1),
        "two ticks; the after ran to its wait: {p:?}"
    );
    assert_eq!(p.note, "true,false,false", "{p:?}");
    assert_eq!(tasks_waiting(&test), 0);
}

/// A task ticking `Tally.ticks` every 0.1 s; closing it counts in `Tally.closed` (Lua 5.4:
/// LuaJIT has no `<close>`, and `CLOSES` is then 0).
fn ticker() -> String {
    let guard = if cfg!(feature = "luajit") {
        ""
    } else {
        "local guard <close> = setmetatable({}, { __close = function()
            local tally = world.resource('Tally')
            tally.closed = tally.closed + 1
        end })"
    };
    format!(
        "function on_start()
    task(function()
        {guard}
        while true do
            wait(0.1)
            local tally = world.resource('Tally')
            tally.ticks = tally.ticks + 1
        end
    end)
end"
    )
}
const CLOSES: i64 = if cfg!(feature = "luajit") { 0 } else { 1 };

#[test]
fn despawning_or_removing_the_script_cancels_its_tasks_and_closes_them() {
    let ticker = ticker();
    let mut test = game(&[("scripts/ticker.lua", &ticker)]);
    let a = test.spawn_script("scripts/ticker.lua", Probe::default());
    let b = test.spawn_script("scripts/ticker.lua", Probe::default());
    test.settle(3);
    assert_eq!(tasks_waiting(&test), 2);
    test.app.world_mut().despawn(a);
    test.update();
    assert_eq!(tasks_waiting(&test), 1);
    assert_eq!(test.app.world().resource::<Tally>().closed, CLOSES);
    let ticks = test.app.world().resource::<Tally>().ticks;
    for _ in 0..5 {
        test.update();
    }
    assert_eq!(
        test.app.world().resource::<Tally>().ticks,
        ticks + 5,
        "one ticker left"
    );
    test.app.world_mut().entity_mut(b).remove::<LuaScript>();
    test.update();
    let tally = test.app.world().resource::<Tally>().clone();
    assert_eq!((tally.closed, tasks_waiting(&test)), (2 * CLOSES, 0));
    test.update();
    assert_eq!(test.app.world().resource::<Tally>().ticks, tally.ticks);
    assert_eq!(test.errors(), Vec::<String>::new());
}

#[test]
fn task_faults_are_reported_with_their_line_and_the_instance_goes_on() {
    let plugin = LuaScriptingPlugin {
        instruction_budget: 200_000,
        ..Default::default()
    };
    let mut test = game_with(
        &[(
            "scripts/faults.lua",
            "function on_start()
                task(function() wait(0.1) while true do end end)
                task(function() wait(0.1) error('boom') end)
                task(function() local missing = nil return missing.field end)
                task(function() wait_until(function() return nil + 1 end) end)
            end
            function on_update()
                local p = entity:get('Probe')
                p.b = p.b + 1
            end",
        )],
        plugin,
        false,
    );
    let e = test.spawn_script("scripts/faults.lua", Probe::default());
    test.settle(0);
    let before = probe(&test, e).b;
    for _ in 0..5 {
        test.update();
    }
    assert_eq!(probe(&test, e).b, before + 5, "on_update ran every frame");
    let mut errors: Vec<(LuaScriptErrorKind, Option<u32>)> = test
        .error_messages()
        .iter()
        .map(|e| (e.kind, e.line))
        .collect();
    errors.sort_by_key(|(_, line)| *line);
    assert_eq!(
        errors,
        [
            (LuaScriptErrorKind::Budget, Some(2)),
            (LuaScriptErrorKind::Runtime, Some(3)),
            (LuaScriptErrorKind::Runtime, Some(4)),
            (LuaScriptErrorKind::Runtime, Some(5)),
        ],
        "{:?}",
        test.errors()
    );
    assert!(
        test.errors()
            .iter()
            .all(|e| e.starts_with("scripts/faults.lua:"))
    );
    assert_eq!(tasks_waiting(&test), 0);
}

#[test]
fn waiting_where_it_cannot_is_a_clear_error() {
    let mut test = game(&[
        ("scripts/top.lua", "local x = 1\nwait(1)\n"),
        (
            "scripts/unload.lua",
            "function on_unload()\n  wait(1)\nend\n",
        ),
        (
            "scripts/computed.lua",
            "function on_start()\n  local w = _G['wa' .. 'it']\n  w(1)\nend\n",
        ),
        (
            "scripts/condition.lua",
            "function on_start()
                wait_until(function()
                    wait(1)
                end)
            end",
        ),
        (
            "scripts/misuse.lua",
            "function on_start()
                local p = entity:get('Probe')
                local ok, err = pcall(coroutine.yield)
                p.note = err
                local _, err2 = pcall(coroutine.wrap(function() wait(1) end))
                p.note = p.note .. '|' .. err2
                p.a = select(2, coroutine.running()) and 1 or 0
                p.b = coroutine.isyieldable() and 1 or 0
            end",
        ),
    ]);
    test.spawn_script("scripts/top.lua", Probe::default());
    test.spawn_script("scripts/condition.lua", Probe::default());
    test.spawn_script("scripts/computed.lua", Probe::default());
    let unload = test.spawn_script("scripts/unload.lua", Probe::default());
    let misuse = test.spawn_script("scripts/misuse.lua", Probe::default());
    test.settle(1);
    test.app.world_mut().despawn(unload);
    test.update();
    let errors = test.errors();
    assert!(
        errors.iter().any(|e| e
            == "scripts/top.lua:2: wait: not available in a script's top-level code (wait in on_start, or in a task started with task(fn))"),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e
            == "scripts/unload.lua:2: wait: not available in on_unload (the instance is going away)"),
        "{errors:?}"
    );
    // (The top-level error comes again when a despawn makes the runtime plan anew: a script
    // whose top-level code failed is tried again then.)
    assert!(
        errors
            .iter()
            .any(|e| e == "scripts/condition.lua:3: wait: not available in a wait_until condition"),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.starts_with(
            "scripts/computed.lua:3: wait: this callback cannot wait: its script's source names no wait function"
        )),
        "{errors:?}"
    );
    let distinct: std::collections::HashSet<_> = errors.iter().collect();
    assert_eq!(distinct.len(), 4, "{errors:?}");
    let p = probe(&test, misuse);
    assert!(
        p.note.contains("attempt to yield from outside a coroutine"),
        "{p:?}"
    );
    assert!(
        p.note.contains("|scripts/misuse.lua:5: wait: cannot wait inside a coroutine made with coroutine.create or wrap"),
        "{p:?}"
    );
    assert_eq!(
        (p.a, p.b),
        (1, 0),
        "a callback is no coroutine to the script"
    );
}

#[test]
fn references_held_across_a_wait_go_stale_with_their_component() {
    let mut test = game(&[(
        "scripts/stale.lua",
        "function on_start()
            local p = entity:get('Probe')
            wait(0.2)
            p.a = 5
        end",
    )]);
    let e = test.spawn_script("scripts/stale.lua", Probe::default());
    test.settle(0);
    test.app.world_mut().entity_mut(e).remove::<Probe>();
    for _ in 0..4 {
        test.update();
    }
    let errors = test.error_messages();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].kind, LuaScriptErrorKind::StaleReference);
    assert_eq!(errors[0].line, Some(4));
}

/// A callback that can wait runs on a thread, whose frames a memory error leaves for the
/// runtime to read the line from. (LuaJIT has no memory limit.)
#[cfg(not(feature = "luajit"))]
#[test]
fn memory_errors_name_the_line_that_allocated() {
    let plugin = LuaScriptingPlugin {
        memory_limit: 16 * 1024 * 1024,
        ..Default::default()
    };
    let mut test = game_with(
        &[(
            "scripts/double.lua",
            "function on_update()
                wait_frames(1)
                local s = string.rep('x', 1000)
                while true do
                    s = s .. s
                end
            end",
        )],
        plugin,
        false,
    );
    test.spawn_script("scripts/double.lua", Probe::default());
    test.settle(1);
    let errors = test.error_messages();
    let memory = errors
        .iter()
        .find(|e| e.kind == LuaScriptErrorKind::Memory)
        .unwrap_or_else(|| panic!("{errors:?}"));
    assert_eq!(memory.line, Some(5), "{errors:?}");
}

#[cfg(feature = "file_watcher")]
#[test]
fn hot_reload_cancels_the_old_versions_tasks_and_on_reload_starts_new_ones() {
    let ticker = ticker();
    let mut test = game_with(
        &[("scripts/hot.lua", &ticker)],
        LuaScriptingPlugin::default(),
        true,
    );
    let e = test.spawn_script("scripts/hot.lua", Probe::default());
    test.settle(3);
    assert_eq!(tasks_waiting(&test), 1);
    // A version whose top-level code fails: the old one keeps running, with its task.
    test.write("scripts/hot.lua", "local broken = nil + 1\n");
    let reported = test.run_until(Duration::from_secs(10), |world| {
        world
            .resource::<app::ScriptErrors>()
            .0
            .iter()
            .any(|e| e.line == Some(1))
    });
    assert!(reported, "{:?}", test.errors());
    let ticks = test.app.world().resource::<Tally>().ticks;
    test.update();
    assert_eq!(
        test.app.world().resource::<Tally>().ticks,
        ticks + 1,
        "the old task ticks on"
    );
    assert_eq!(test.app.world().resource::<Tally>().closed, 0);
    test.write(
        "scripts/hot.lua",
        "function on_reload()
            every(0.1, function()
                local p = entity:get('Probe')
                p.a = p.a + 1
            end)
        end",
    );
    let reloaded = test.run_until(Duration::from_secs(10), |world| {
        world.get::<Probe>(e).is_some_and(|p| p.a > 2)
    });
    assert!(reloaded, "{:?}", test.errors());
    let tally = test.app.world().resource::<Tally>().clone();
    assert_eq!(tally.closed, CLOSES, "the old version's task was closed");
    test.update();
    assert_eq!(
        test.app.world().resource::<Tally>().ticks,
        tally.ticks,
        "and runs no more"
    );
    assert_eq!(tasks_waiting(&test), 1);
    assert_eq!(test.errors().len(), 1, "{:?}", test.errors());
}

/// Game time is a sum of frame times: `wait(0.2)` at 0.1 s a frame takes two frames wherever
/// it starts, though 0.1 added up does not land on multiples of 0.2 exactly.
#[test]
fn waits_take_the_frames_their_seconds_make_whatever_the_rounding() {
    let mut test = game(&[(
        "scripts/steps.lua",
        "local frames = 0
        function on_update() frames = frames + 1 end
        function on_start()
            local p = entity:get('Probe')
            for i = 1, 12 do
                local f0 = frames
                wait(0.2)
                p.note = p.note .. (frames - f0)
            end
        end",
    )]);
    let e = test.spawn_script("scripts/steps.lua", Probe::default());
    test.settle(40);
    assert_eq!(test.errors(), Vec::<String>::new());
    assert_eq!(probe(&test, e).note, "222222222222");
}

#[test]
fn due_tasks_resume_timers_by_due_time_then_frames_then_conditions() {
    let mut test = game(&[(
        "scripts/order.lua",
        "function on_start()
            local p = entity:get('Probe')
            local function mark(name) p.note = p.note .. name end
            task(function() wait_until(function() return true end) mark('U') end)
            task(function() wait_frames(1) mark('F') end)
            task(function() wait(0.05) mark('b') end)
            task(function() wait(0.01) mark('a') end)
            task(function() wait(0.05) mark('c') end)
            local late = task(function() wait(0.3) mark('x') end)
            task(function() wait(0.2) late:cancel() mark('L') end)
            local me
            me = task(function()
                wait(0)
                mark('s')
                me:cancel()
                wait(0)
                mark('never')
            end)
        end
        function on_update() entity:get('Probe').note = entity:get('Probe').note .. '.' end",
    )]);
    let e = test.spawn_script("scripts/order.lua", Probe::default());
    test.settle(6);
    assert_eq!(test.errors(), Vec::<String>::new());
    let note = probe(&test, e).note;
    // The first frame's update ran before anything was due; the next frame woke the timers due
    // (by due time, ties in the order they waited), the frame wait, then the condition.
    assert!(note.starts_with(".sabcFU.L."), "{note}");
    assert!(!note.contains('x') && !note.contains("never"), "{note}");
    assert_eq!(tasks_waiting(&test), 0);
}

#[test]
fn a_function_called_by_a_lua_call_can_wait() {
    let mut test = game(&[(
        "scripts/flash.lua",
        "function on_hit(payload)
            local p = entity:get('Probe')
            p.a = payload.damage
            wait(0.2)
            p.a = 0
            p.b = p.b + 1
        end",
    )]);
    let e = test.spawn_script("scripts/flash.lua", Probe::default());
    test.settle(1);
    test.app.world_mut().write_message(LuaCall::entity(
        e,
        "on_hit",
        ScriptValue::table([("damage", 5.into())]),
    ));
    test.update();
    assert_eq!(probe(&test, e).a, 5);
    for _ in 0..3 {
        test.update();
    }
    let p = probe(&test, e);
    assert_eq!((p.a, p.b), (0, 1), "{p:?}");
    assert_eq!(test.errors(), Vec::<String>::new());
}

#[derive(Message, LuaUserData, Clone, Debug)]
pub struct Hit {
    pub target: Entity,
    pub damage: i64,
}

#[lua_methods]
impl Hit {
    pub fn new(target: Entity, damage: i64) -> Self {
        Hit { target, damage }
    }
}

/// Hits Rust has read.
#[derive(Resource, Default)]
struct HitsRead(Vec<i64>);

fn read_hits(mut hits: MessageReader<Hit>, mut read: ResMut<HitsRead>) {
    read.0.extend(hits.read().map(|hit| hit.damage));
}

#[test]
fn typed_messages_and_sent_ones_reach_listeners_and_waiters_in_order() {
    let mut test = game(&[
        (
            "scripts/shooter.lua",
            "local fired = false
            function on_update()
                if fired then return end
                fired = true
                world.write(Hit.new(entity, 5))
                world.send('score', { points = 3 })
            end",
        ),
        (
            "scripts/victim.lua",
            "function on_start()
                local p = entity:get('Probe')
                world.on('Hit', function(hit)
                    p.a = p.a + hit.damage
                    p.note = p.note .. 'h'
                    hit.damage = 1000 -- its own copy
                end)
                world.on('Hit', function(hit)
                    p.note = p.note .. 'w'
                    wait(0.1)
                    p.note = p.note .. 'W'
                end)
                world.on('Hit', function() error('handler boom') end)
                local off = world.on('Hit', function() p.note = p.note .. 'X' end)
                off:cancel()
                task(function()
                    local hit = wait_for('Hit')
                    p.b = hit.damage * 10
                end)
                world.on('score', function(payload) p.t0 = payload.points end)
                local ok, err = pcall(world.write, { damage = 1 })
                p.t1 = (not ok and err:find('not a message registered for scripts', 1, true)) and 1 or 0
            end",
        ),
    ]);
    test.app
        .register_lua_message::<Hit>()
        .init_resource::<HitsRead>()
        .add_systems(Update, read_hits.after(LuaScriptSet));
    let victim = test.spawn_script("scripts/victim.lua", Probe::default());
    test.settle(1);
    test.spawn_script("scripts/shooter.lua", Probe::default());
    test.settle(2);
    test.app.world_mut().write_message(Hit {
        target: victim,
        damage: 7,
    });
    for _ in 0..3 {
        test.update();
    }
    let p = probe(&test, victim);
    assert_eq!(p.a, 12, "both hits, each once: {p:?}");
    assert_eq!(p.b, 50, "wait_for took the first: {p:?}");
    assert_eq!((p.t0, p.t1), (3.0, 1.0), "{p:?}");
    assert_eq!(
        p.note, "hwWhwW",
        "in registration order, each handler a task: {p:?}"
    );
    let mut read = test.app.world().resource::<HitsRead>().0.clone();
    read.sort();
    assert_eq!(read, [5, 7], "Rust reads the script's hit too");
    // One handler error per hit, on the same line: reported once while it repeats.
    let errors = test.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("scripts/victim.lua:13: handler boom"),
        "{errors:?}"
    );
    // The listeners still wait; sent messages nobody waits for cost nothing.
    test.app.world_mut().write_message(LuaMessage {
        name: "nobody".into(),
        payload: ScriptValue::Nil,
    });
    test.update();
    assert_eq!(tasks_waiting(&test), 4);
}

#[derive(EntityEvent, LuaUserData, Clone, Debug)]
pub struct Damaged {
    pub entity: Entity,
    pub amount: f64,
}

#[lua_methods]
impl Damaged {
    pub fn new(entity: Entity, amount: f64) -> Self {
        Damaged { entity, amount }
    }
}

/// What Rust observers saw.
#[derive(Resource, Default)]
struct Observed(Vec<f64>);

#[test]
fn entity_events_reach_their_targets_scripts_and_lifecycle_events_reach_listeners() {
    let mut test = game(&[(
        "scripts/target.lua",
        "local hit_myself = false
        function on_start()
            local p = entity:get('Probe')
            entity:on('Damaged', function(d) p.a = p.a + math.floor(d.amount) end)
            world.on('Added', 'Probe', function(e) p.b = p.b + 1 end)
            world.on('Removed', 'Probe', function(e) p.note = p.note .. 'r' end)
            world.on('Despawned', function(e) p.t0 = p.t0 + 1 end)
            task(function()
                local e = wait_for('Added', 'Probe')
                p.t1 = e:has('Probe') and 1 or -1
            end)
        end
        function on_update()
            if entity:get('Probe').note == 'first' and not hit_myself then
                hit_myself = true
                entity:trigger(Damaged.new(entity, 2))
                entity:trigger(Damaged.new(world.spawn(), 1))
            end
        end",
    )]);
    test.app
        .register_lua_event::<Damaged>()
        .init_resource::<Observed>()
        .add_observer(|d: On<Damaged>, mut seen: ResMut<Observed>| seen.0.push(d.amount));
    let victim = test.spawn_script(
        "scripts/target.lua",
        Probe {
            note: "first".into(),
            ..default()
        },
    );
    let other = test.spawn_script("scripts/target.lua", Probe::default());
    test.settle(2);
    test.app.world_mut().trigger(Damaged {
        entity: victim,
        amount: 3.0,
    });
    let extra = test.app.world_mut().spawn(Probe::default()).id();
    test.update();
    test.app.world_mut().entity_mut(extra).remove::<Probe>();
    let short_lived = test.app.world_mut().spawn(Probe::default()).id();
    test.app.world_mut().despawn(short_lived);
    test.update();
    test.update();
    let errors = test.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("scripts/target.lua:17: entity:trigger: this Damaged targets entity")
            && errors[0].contains("or with world.trigger"),
        "an event for another entity is refused: {errors:?}"
    );
    let mut seen = test.app.world().resource::<Observed>().0.clone();
    seen.sort_by(f64::total_cmp);
    assert_eq!(
        seen,
        [2.0, 3.0],
        "Rust observers see both, not the refused one"
    );

    let (v, o) = (probe(&test, victim), probe(&test, other));
    assert_eq!(
        (v.a, o.a),
        (5, 0),
        "each event reaches its target's scripts only"
    );
    for p in [&v, &o] {
        assert_eq!(p.b, 2, "two Probes added since: {p:?}");
        assert!(p.note.ends_with("rr"), "removed, then despawned: {p:?}");
        assert_eq!(p.t0, 1.0, "one despawn: {p:?}");
        assert_eq!(p.t1, 1.0, "wait_for gets the entity: {p:?}");
    }
}

#[test]
fn many_failing_tasks_in_one_frame_are_one_error_with_its_count() {
    let mut test = game(&[(
        "scripts/flood.lua",
        "function on_start()
            for i = 1, 50 do task(function() error('x' .. i) end) end
        end",
    )]);
    test.spawn_script("scripts/flood.lua", Probe::default());
    test.settle(1);
    let errors = test.error_messages();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].line, errors[0].count), (Some(2), 50));
}

#[test]
fn a_task_failing_every_frame_is_reported_once_then_with_its_count() {
    let mut test = game(&[(
        "scripts/ticking.lua",
        "local n = 0
        local ticker = every(0.1, function()
            n = n + 1
            if n <= 5 then error({}) end
        end)",
    )]);
    test.spawn_script("scripts/ticking.lua", Probe::default());
    test.settle(10);
    let errors = test.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("scripts/ticking.lua:4:"),
        "{errors:?}"
    );
    // Once the ticks stop failing for a while, the count.
    for _ in 0..60 {
        test.update();
    }
    let errors = test.errors();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[1].ends_with("(repeated 5 times)"), "{errors:?}");
}
