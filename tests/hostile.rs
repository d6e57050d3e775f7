//! Hostile and broken scripts: none may freeze the game, crash it, or change what another script
//! sees. Each case runs in a child process of this test binary (a hang or a crash then fails
//! only its case), next to a well-behaved script that must run every frame untouched, with a
//! wall-clock limit on every frame and on the app's exit.

#[path = "common/app.rs"]
mod app;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use app::TestApp;
use bevy::prelude::*;
use bevy_lunar::prelude::*;
use bevy_lunar::{LuaScriptErrorKind, LuaScriptStats};

#[derive(Component, LuaUserData, Clone, Debug, Default)]
pub struct Counter {
    pub ticks: i64,
}

#[derive(Component, LuaUserData, Clone, Debug, Default)]
pub struct Fuse {
    pub armed: bool,
}

#[lua_methods]
impl Fuse {
    /// A user's method with a bug: it panics.
    pub fn divide(&self, by: i64) -> i64 {
        if by == 0 {
            panic!("attempt to divide by zero");
        }
        100 / by
    }
}

/// The environment variable that tells a child which case to run.
const CASE: &str = "BEVY_LUNAR_HOSTILE_CASE";
/// Longest a frame (or the app's exit) may take.
const FRAME_LIMIT: Duration = Duration::from_secs(3);
/// Frames each case runs once its scripts are loaded.
const FRAMES: i64 = 4;

/// The well-behaved script: it counts its frames and uses what a hostile script would break.
const FINE: &str = r#"
local start = Vec2.new(1, 2)
function on_update(dt)
    local c = entity:get("Counter")
    assert(math.floor(1.5) == 1 and math.pi > 3, "math")
    assert(string.upper("a") == "A" and ("b"):upper() == "B" and ("x"):rep(3) == "xxx", "string")
    assert(("key=value"):match("(%w+)=(%w+)") == "key", "patterns")
    assert(type(world.spawn) == "function" and type(world.query) == "function", "world")
    assert(type(time.delta) == "number" and time.delta < 1000, "time")
    assert(Vec2.new(3, 4):length() == 5 and start.x == 1, "type tables")
    assert(type(print) == "function" and type(pairs) == "function", "globals")
    assert(entity:get("Counter") == c and entity:id() ~= nil, "entity")
    local t = {}
    table.insert(t, 1)
    assert(#t == 1 and t[1] == 1, "table")
    c.ticks = c.ticks + 1
end
"#;

/// Runs `body` in a child process of this test binary, named `name` (the test's own name).
fn isolated(name: &str, body: impl FnOnce()) {
    if std::env::var(CASE).as_deref() == Ok(name) {
        body();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.txt");
    let file = std::fs::File::create(&out).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CASE, name)
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = std::fs::read_to_string(&out).unwrap_or_default();
    match status {
        None => panic!("{name}: the case hung (killed after 120 s)\n{output}"),
        Some(status) => assert!(
            status.success() && output.contains("1 passed"),
            "{name}: the case failed ({status})\n{output}"
        ),
    }
}

/// What a case saw: the hostile script's errors, the app and its entities.
struct Outcome {
    test: TestApp,
    hostile: Entity,
}

impl Outcome {
    /// The hostile script's `Counter.ticks` (what a case's script reports there).
    fn hostile_ticks(&self) -> i64 {
        self.test
            .app
            .world()
            .get::<Counter>(self.hostile)
            .unwrap()
            .ticks
    }

    fn errors(&self) -> Vec<bevy_lunar::LuaScriptError> {
        self.test
            .error_messages()
            .into_iter()
            .filter(|e| e.path == "scripts/hostile.lua")
            .collect()
    }

    /// The hostile script's first error, which must be of `kind` and contain `text`.
    fn first_error(&self, kind: LuaScriptErrorKind, text: &str) -> bevy_lunar::LuaScriptError {
        let errors = self.errors();
        let first = errors
            .first()
            .unwrap_or_else(|| panic!("the hostile script reported nothing"))
            .clone();
        assert_eq!(first.kind, kind, "{first}");
        assert!(first.to_string().contains(text), "{first}");
        first
    }
}

/// Runs `hostile` beside the well-behaved script: loads both, runs [`FRAMES`] frames, each under
/// [`FRAME_LIMIT`], and checks that the well-behaved one ran every frame without an error.
fn run(hostile: &str, plugin: LuaScriptingPlugin, setup: impl FnOnce(&mut App)) -> Outcome {
    let mut test = TestApp::with_plugin(
        &[("scripts/hostile.lua", hostile), ("scripts/fine.lua", FINE)],
        plugin,
        false,
    );
    test.app
        .register_lua_component::<Counter>()
        .register_lua_component::<Fuse>();
    setup(&mut test.app);
    let hostile = test.spawn_script("scripts/hostile.lua", (Counter::default(), Fuse::default()));
    let fine = test.spawn_script("scripts/fine.lua", Counter::default());
    let frame = |test: &mut TestApp, what: &str| {
        let start = Instant::now();
        test.update();
        let took = start.elapsed();
        assert!(took < FRAME_LIMIT, "{what} took {took:?}");
    };
    let loading = Instant::now();
    while test.app.world().get::<Counter>(fine).unwrap().ticks == 0 {
        assert!(
            loading.elapsed() < Duration::from_secs(20),
            "scripts did not load"
        );
        frame(&mut test, "a frame while loading");
        std::thread::sleep(Duration::from_millis(2));
    }
    for n in 0..FRAMES {
        frame(&mut test, &format!("frame {n}"));
    }
    let ticks = test.app.world().get::<Counter>(fine).unwrap().ticks;
    assert_eq!(ticks, FRAMES + 1, "the well-behaved script ran every frame");
    let fine_errors: Vec<_> = test
        .errors()
        .into_iter()
        .filter(|e| e.starts_with("scripts/fine.lua"))
        .collect();
    assert_eq!(fine_errors, Vec::<String>::new(), "the well-behaved script");
    Outcome { test, hostile }
}

fn default_plugin() -> LuaScriptingPlugin {
    LuaScriptingPlugin::default()
}

/// Runs `hostile` and checks its first error.
fn stopped(hostile: &str, kind: LuaScriptErrorKind, text: &str) -> Outcome {
    let outcome = run(hostile, default_plugin(), |_| {});
    outcome.first_error(kind, text);
    outcome
}

/// The app's exit (closing the Lua state) is bounded too.
fn exit_in_time(outcome: Outcome) {
    let start = Instant::now();
    drop(outcome);
    assert!(
        start.elapsed() < FRAME_LIMIT,
        "exit took {:?}",
        start.elapsed()
    );
}

const BUDGET: &str = "instruction budget exceeded";

// --- Hangs inside C and Rust functions --------------------------------------------------------

#[test]
fn pattern_backtracking_is_stopped_by_the_budget() {
    isolated("pattern_backtracking_is_stopped_by_the_budget", || {
        let outcome = stopped(
            r#"
            local subject = string.rep("a", 200000)
            function on_update()
                pcall(string.find, subject, ".-.-.-.-b")
                pcall(string.match, subject, ".-.-.-.-b")
                pcall(string.gsub, subject, ".-.-.-.-b", "")
                pcall(function() for _ in string.gmatch(subject, ".-.-.-.-b") do end end)
                string.find(subject, "(.-)(.-)(.-)b")
            end
            "#,
            LuaScriptErrorKind::Budget,
            BUDGET,
        );
        exit_in_time(outcome);
    });
}

#[test]
fn long_plain_find_empty_rep_and_huge_loads_are_stopped_by_the_budget() {
    isolated(
        "long_plain_find_empty_rep_and_huge_loads_are_stopped_by_the_budget",
        || {
            let outcome = stopped(
                r#"
                local subject = string.rep("a", 1000000)
                local needle = string.rep("a", 100000) .. "b"
                function on_update()
                    for i = 1, 1000 do subject:find(needle, 1, true) end
                end
                "#,
                LuaScriptErrorKind::Budget,
                BUDGET,
            );
            exit_in_time(outcome);
            let outcome = stopped(
                "function on_update() local s = string.rep('', 1e15) end",
                LuaScriptErrorKind::Budget,
                BUDGET,
            );
            exit_in_time(outcome);
            // Compiling is C work too.
            let outcome = stopped(
                "function on_update() load(string.rep('x = 1 ', 3000000)) end",
                LuaScriptErrorKind::Budget,
                BUDGET,
            );
            exit_in_time(outcome);
        },
    );
}

#[test]
fn slow_instructions_are_stopped_by_the_time_backstop() {
    isolated("slow_instructions_are_stopped_by_the_time_backstop", || {
        // Each comparison of two 32 MB strings is one VM instruction and milliseconds; each
        // `upper` one C call of as long. (LuaJIT may run out of memory first: also an
        // error, in time.)
        for step in ["local c = a < b", "local c = a:upper()"] {
            let source = format!(
                "local a = 'x' for i = 1, 25 do a = a .. a end\n\
                     local b = a .. 'b'\n\
                     function on_update() while true do {step} end end\n"
            );
            let outcome = run(&source, default_plugin(), |_| {});
            let error = outcome.errors().first().cloned().expect("stopped");
            assert!(
                (error.kind == LuaScriptErrorKind::Budget
                    && error.message.contains("the time a budget"))
                    || (cfg!(feature = "luajit") && error.kind == LuaScriptErrorKind::Memory),
                "{error}"
            );
            exit_in_time(outcome);
        }
    });
}

#[test]
fn table_functions_over_huge_ranges_are_stopped_by_the_budget() {
    isolated(
        "table_functions_over_huge_ranges_are_stopped_by_the_budget",
        || {
            for call in [
                "table.insert(liar, 1, 0)",
                "table.remove(liar, 1)",
                "table.move({1}, 1, 1e14, 2)",
                "table.concat(liar)",
                "table.sort(liar)",
                "pcall(table.unpack, {}, 1, 1e7) table.move(liar, 1, #liar, 2)",
            ] {
                let source = format!(
                    "local liar = setmetatable({{}}, {{ __len = function() return 1e15 end, __index = function() return 1 end }})\n\
                     function on_update() while true do pcall(function() {call} end) {call} end end\n"
                );
                let outcome = stopped(&source, LuaScriptErrorKind::Budget, BUDGET);
                exit_in_time(outcome);
            }
        },
    );
}

#[test]
fn loops_over_world_query_and_spawn_are_stopped_by_the_budget() {
    isolated(
        "loops_over_world_query_and_spawn_are_stopped_by_the_budget",
        || {
            let many = |app: &mut App| {
                app.world_mut()
                    .spawn_batch((0..50_000).map(|_| Counter::default()));
            };
            let outcome = run(
                "function on_update() while true do world.query('Counter') end end",
                default_plugin(),
                many,
            );
            outcome.first_error(LuaScriptErrorKind::Budget, BUDGET);
            exit_in_time(outcome);
            let outcome = run(
                "function on_update() while true do world.spawn() end end",
                default_plugin(),
                |_| {},
            );
            outcome.first_error(LuaScriptErrorKind::Budget, BUDGET);
            exit_in_time(outcome);
        },
    );
}

// --- Hangs in handlers, finalizers and deep stacks ---------------------------------------------

#[test]
fn a_runaway_xpcall_handler_is_stopped() {
    isolated("a_runaway_xpcall_handler_is_stopped", || {
        let outcome = stopped(
            r#"
            local function forever() while true do end end
            function on_update()
                xpcall(forever, forever)
                xpcall(error, forever, "an ordinary error reaches the handler, which runs hooked")
                while true do xpcall(forever, function(e) return e end) end
            end
            "#,
            LuaScriptErrorKind::Budget,
            BUDGET,
        );
        exit_in_time(outcome);
    });
}

#[test]
fn finalizers_are_refused() {
    isolated("finalizers_are_refused", || {
        let outcome = stopped(
            r#"
            function on_update()
                local mt = { __gc = function() while true do end end }
                setmetatable({}, mt)
            end
            "#,
            LuaScriptErrorKind::Runtime,
            "__gc metamethods are not available to scripts",
        );
        let error = outcome.first_error(LuaScriptErrorKind::Runtime, "__gc");
        assert_eq!(error.line, Some(4), "{error}");
        exit_in_time(outcome);
        // Set after `setmetatable`, `__gc` marks nothing for finalization (Lua 5.4), so a
        // collection and the exit run no script code.
        let outcome = run(
            r#"
            local kept = {}
            function on_update()
                local mt = {}
                kept[#kept + 1] = setmetatable({}, mt)
                mt.__gc = function() while true do end end
                collectgarbage()
            end
            "#,
            default_plugin(),
            |_| {},
        );
        assert_eq!(outcome.errors(), Vec::new());
        exit_in_time(outcome);
    });
}

#[test]
fn deep_recursion_costs_milliseconds() {
    isolated("deep_recursion_costs_milliseconds", || {
        let outcome = stopped(
            "local function f(n) return 1 + f(n + 1) end\nfunction on_update() f(1) end\n",
            LuaScriptErrorKind::Runtime,
            "stack overflow",
        );
        assert_eq!(outcome.errors()[0].line, Some(1));
        exit_in_time(outcome);
    });
}

#[test]
fn payloads_with_shared_subtables_are_refused() {
    isolated("payloads_with_shared_subtables_are_refused", || {
        let outcome = stopped(
            r#"
            function on_update()
                local t = {}
                for i = 1, 30 do t = { t, t } end
                world.send("bomb", t)
            end
            "#,
            LuaScriptErrorKind::Runtime,
            "more than 100000 values",
        );
        exit_in_time(outcome);
    });
}

// --- Crashes ------------------------------------------------------------------------------------

#[test]
fn a_panicking_rust_method_is_a_script_error() {
    isolated("a_panicking_rust_method_is_a_script_error", || {
        let outcome = stopped(
            "function on_update()\n  local fuse = entity:get('Fuse')\n  fuse:divide(0)\nend\n",
            LuaScriptErrorKind::Runtime,
            "attempt to divide by zero",
        );
        let error = outcome.first_error(LuaScriptErrorKind::Runtime, "Fuse.divide");
        assert_eq!(error.line, Some(3), "{error}");
        exit_in_time(outcome);
    });
}

// --- Isolation ----------------------------------------------------------------------------------

#[test]
fn shared_state_is_read_only() {
    isolated("shared_state_is_read_only", || {
        // Every attempt runs first each frame (the hostile entity comes first); each must fail
        // or stay local, and the well-behaved script's checks must hold.
        let outcome = run(
            r#"
            local attempts = {
                function() math.floor = nil end,
                function() rawset(math, "floor", nil) end,
                function() string.upper = nil end,
                function() getmetatable("").__index.upper = nil end,
                function() getmetatable("").__index = {} end,
                function() setmetatable(_ENV, {}) end,
                function() getmetatable(_ENV).__index = {} end,
                function() world.spawn = nil end,
                function() rawset(world, "query", nil) end,
                function() time.delta = 1e9 end,
                function() Vec2.new = nil end,
                function() rawset(Vec2, "new", nil) end,
                function() setmetatable(Vec2, nil) end,
                function() table.insert(math, 1) end,
                function() table.remove(world, 1) end,
                function() for e in world.query("Counter") do rawset(e, 2, 0) end end,
                function() for e in world.query("Counter") do table.remove(e) end end,
                function() for e in world.query("Counter") do rawset(e, 3, {}) end end,
                function() for e in world.query("Counter") do e.get = nil end end,
                function() getmetatable(entity).__index = nil end,
                function() load("world = nil math = nil print = nil")() end,
                function() _G.print = nil; _G.pairs = nil end,
                function() rawset(_G, "world", nil) end,
                function() _G.string.rep = nil end,
                function() _G._G.math.floor = nil end,
                function() collectgarbage("stop") end,
            }
            function on_update()
                local c = entity:get("Counter")
                local refused = 0
                for i, attempt in ipairs(attempts) do
                    if not pcall(attempt) then refused = refused + 1 end
                end
                -- Global writes stay in this instance.
                print = 5
                assert(print == 5 and _G.print == 5)
                c.ticks = refused
            end
            "#,
            default_plugin(),
            |_| {},
        );
        assert_eq!(outcome.errors(), Vec::new());
        let refused = outcome.hostile_ticks();
        // All but the two that stay local (`load`'s chunk and `_G.print`, `rawset(_G, ...)`
        // write this instance's own globals).
        assert_eq!(refused, 23, "attempts refused");
        exit_in_time(outcome);
    });
}

#[test]
fn read_only_errors_name_the_table_and_line() {
    isolated("read_only_errors_name_the_table_and_line", || {
        let outcome = stopped(
            "function on_update()\n  math.floor = nil\nend\n",
            LuaScriptErrorKind::Runtime,
            "math is read-only",
        );
        assert_eq!(outcome.errors()[0].line, Some(2));
        exit_in_time(outcome);
        // A script that never names `_G` or `load` reaches the shared ones by computed names:
        // `_G` read-only, `load` giving its chunk a fresh environment. (Lua 5.4: LuaJIT has no
        // `_ENV`, and its `getfenv` is gone from the sandbox.)
        if !cfg!(feature = "lua54") {
            return;
        }
        let outcome = run(
            r#"
            function on_update()
                local g, l = _ENV["_" .. "G"], _ENV["lo" .. "ad"]
                local refused = not pcall(function() g.world = nil end)
                l("leaked = 1")()
                assert(refused and leaked == nil and world ~= nil and g.math == math)
                entity:get("Counter").ticks = 7
            end
            "#,
            default_plugin(),
            |_| {},
        );
        assert_eq!(outcome.errors(), Vec::new());
        let ticks = outcome.hostile_ticks();
        assert_eq!(ticks, 7);
        exit_in_time(outcome);
    });
}

// --- Memory -------------------------------------------------------------------------------------

#[cfg(feature = "lua54")]
#[test]
fn a_memory_hog_is_stopped_and_the_others_keep_running() {
    isolated(
        "a_memory_hog_is_stopped_and_the_others_keep_running",
        || {
            let plugin = LuaScriptingPlugin {
                memory_limit: 64 * 1024 * 1024,
                ..default()
            };
            let outcome = run(
                r#"
                local hoard, chunk = {}, string.rep("x", 100000)
                function on_update()
                    for i = 1, 1000 do hoard[#hoard + 1] = chunk .. i end
                end
                "#,
                plugin,
                |_| {},
            );
            let error = outcome.first_error(LuaScriptErrorKind::Memory, "not enough memory");
            assert_eq!(error.entity, Some(outcome.hostile));
            let stats = outcome.test.app.world().resource::<LuaScriptStats>();
            assert!(
                stats.lua_memory < 16 * 1024 * 1024,
                "the hog's memory was collected: {} bytes in use",
                stats.lua_memory
            );
            exit_in_time(outcome);
            // Hoarding in its top-level code: stopped before the next script starts.
            let outcome = run(
                r#"
                hoard = {}
                local chunk = string.rep("x", 100000)
                for i = 1, 600 do hoard[i] = chunk .. i end
                function on_update() end
                "#,
                LuaScriptingPlugin {
                    memory_limit: 64 * 1024 * 1024,
                    ..default()
                },
                |_| {},
            );
            let error = outcome.first_error(LuaScriptErrorKind::Memory, "not enough memory");
            assert!(error.message.contains("it was stopped"), "{error}");
            let stats = outcome.test.app.world().resource::<LuaScriptStats>();
            assert!(stats.lua_memory < 16 * 1024 * 1024, "{}", stats.lua_memory);
            assert!(
                stats.top_memory.iter().all(|m| m.bytes < 8 * 1024 * 1024),
                "{:?}",
                stats.top_memory
            );
            exit_in_time(outcome);
            // A table growing past the limit in one resize, in a callback too short for the
            // hook: the allocator's refusal names the line.
            let outcome = run(
                "local keep = {}\nfunction on_update()\n  local t = {}\n  for i = 1, 3000000 do t[i] = i end\n  keep[#keep + 1] = t\nend\n",
                LuaScriptingPlugin {
                    memory_limit: 64 * 1024 * 1024,
                    ..default()
                },
                |_| {},
            );
            let error = outcome.first_error(LuaScriptErrorKind::Memory, "not enough memory");
            assert!(
                error
                    .to_string()
                    .starts_with("scripts/hostile.lua:4: not enough memory"),
                "{error}"
            );
            exit_in_time(outcome);
        },
    );
}

#[test]
fn a_table_bomb_stopped_by_the_budget_is_collected() {
    isolated("a_table_bomb_stopped_by_the_budget_is_collected", || {
        let outcome = stopped(
            "function on_update()\n  local t = {}\n  while true do t[#t + 1] = { #t } end\nend\n",
            LuaScriptErrorKind::Budget,
            BUDGET,
        );
        let stats = outcome.test.app.world().resource::<LuaScriptStats>();
        assert!(
            stats.lua_memory < 16 * 1024 * 1024,
            "the bomb's garbage was collected: {} bytes in use",
            stats.lua_memory
        );
        exit_in_time(outcome);
    });
}

// --- Tasks ------------------------------------------------------------------------------------

#[test]
fn task_bombs_are_bounded() {
    isolated("task_bombs_are_bounded", || {
        // A task starting a task before it waits nests on the Rust stack: refused past a depth.
        // Starting tasks without end is charged to the budget; those left waiting cost no frame.
        let outcome = run(
            "local function bomb() task(bomb) end
            function on_start() bomb() end
            function on_update()
                while true do task(function() wait(1e9) end) end
            end",
            default_plugin(),
            |_| {},
        );
        let (nested, others): (Vec<_>, Vec<_>) = outcome
            .errors()
            .into_iter()
            .partition(|e| e.message.contains("tasks nest too deep"));
        assert!(nested.len() == 1 && nested[0].line == Some(1), "{nested:?}");
        // Stopped by the budget, or past the cap on waiting tasks (LuaJIT's is lower).
        assert!(
            !others.is_empty()
                && others.iter().all(|e| e.line == Some(4)
                    && (e.kind == LuaScriptErrorKind::Budget
                        || e.message.contains("too many tasks waiting"))),
            "{others:?}"
        );
        let stats = outcome.test.app.world().resource::<LuaScriptStats>();
        assert!(stats.tasks >= 5_000, "{stats:?}");
        exit_in_time(outcome);
    });
}

/// (Lua 5.4: LuaJIT has no `<close>`.)
#[cfg(not(feature = "luajit"))]
#[test]
fn a_runaway_close_in_a_cancelled_task_is_stopped() {
    isolated("a_runaway_close_in_a_cancelled_task_is_stopped", || {
        let mut outcome = run(
            "function on_start()
                task(function()
                    local guard <close> = setmetatable({}, { __close = function() while true do end end })
                    wait(1e9)
                end)
            end",
            default_plugin(),
            |_| {},
        );
        let hostile = outcome.hostile;
        outcome.test.app.world_mut().despawn(hostile);
        let start = Instant::now();
        outcome.test.update();
        assert!(start.elapsed() < FRAME_LIMIT, "{:?}", start.elapsed());
        outcome.first_error(LuaScriptErrorKind::Budget, BUDGET);
        exit_in_time(outcome);
    });
}

// --- Reporting ----------------------------------------------------------------------------------

#[test]
fn errors_with_changing_text_are_reported_once() {
    isolated("errors_with_changing_text_are_reported_once", || {
        let outcome = stopped(
            "function on_update()\n  error({})\nend\n",
            LuaScriptErrorKind::Runtime,
            "table",
        );
        assert_eq!(outcome.errors().len(), 1, "{:?}", outcome.errors());
        exit_in_time(outcome);
    });
}

#[test]
fn a_syntax_error_is_one_error_without_a_backtrace() {
    isolated("a_syntax_error_is_one_error_without_a_backtrace", || {
        // SAFETY: the child process runs this one test, on this thread, before starting Bevy.
        unsafe { std::env::set_var("RUST_BACKTRACE", "1") };
        let mut test =
            TestApp::new(&[("scripts/broken.lua", "function on_update(\n  x = \nend\n")]);
        test.spawn_script("scripts/broken.lua", Counter::default());
        test.settle(3);
        let errors = test.error_messages();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].kind, LuaScriptErrorKind::Syntax);
        assert!(
            !errors[0].message.contains("backtrace") && !errors[0].message.contains("stack"),
            "{}",
            errors[0]
        );
    });
}
