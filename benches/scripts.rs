//! Cost per entity per frame of scripted gameplay, against the floor (a plain Rust system) and
//! the best hand-written mlua integration (one Lua state, a hand-written `UserData`, one
//! long-lived userdata slot into which each entity's component is `mem::swap`ped for the call).
//!
//! Every entity has a `Player`; its script's `on_update(dt)` gets the component and does two
//! read-modify-writes. Also in the ratio pass: the value-passing floor (the same Lua body with
//! the fields passed in and out as numbers, one mlua call per entity) and one script walking
//! every `Player` with `world.query("Player"):each()`. Also measured: creating 1,000 instances, hot-reloading a script used by
//! 1,000 entities, what 10,000 tasks waiting on a timer add to a frame, and a `wait(0)` round
//! trip against an `on_update` call.
//!
//! Run: `cargo bench --bench scripts` (`-- ratio` for the interleaved ratio pass alone).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bevy::asset::AssetPlugin;
use bevy::prelude::*;
use bevy_lunar::LuaScriptStats;
use bevy_lunar::mlua::{self, AnyUserData, Function, Lua, UserData};
use bevy_lunar::prelude::*;
use criterion::Criterion;

#[derive(Component, LuaUserData, Clone, Default)]
pub struct Player {
    pub health: f64,
    pub level: i64,
}

/// For the hot-path counts (`LUNAR_PROFILE=hot`): a string field, a `Vec3` field and a method.
#[derive(Component, LuaUserData, Clone, Default)]
pub struct Mover {
    pub name: String,
    pub velocity: Vec3,
    pub speed: f64,
}

#[lua_methods]
impl Mover {
    pub fn boosted(&self, factor: f64) -> f64 {
        self.speed * factor
    }
}

const SCRIPT: &str = r#"
function on_update(dt)
    local p = entity:get("Player")
    p.health = p.health - dt * 1.5
    p.level = p.level + 1
end
"#;

const HAND_SCRIPT: &str = r#"
function on_update(p, dt)
    p.health = p.health - dt * 1.5
    p.level = p.level + 1
end
"#;

const SIZES: [usize; 2] = [1_000, 10_000];
/// The entity counts of the interleaved ratio pass.
const RATIO_SIZES: [usize; 3] = [1_000, 10_000, 20_000];

fn spawn_players(world: &mut World, n: usize) {
    world.spawn_batch((0..n).map(|_| Player {
        health: 1e9,
        level: 0,
    }));
}

/// The floor: the same work in a plain Rust system.
fn plain_app(n: usize) -> App {
    fn update(mut players: Query<&mut Player>, time: Res<Time>) {
        let dt = time.delta_secs_f64();
        for mut p in &mut players {
            p.health -= dt * 1.5;
            p.level += 1;
        }
    }
    let mut app = App::new();
    app.add_plugins(MinimalPlugins).add_systems(Update, update);
    spawn_players(app.world_mut(), n);
    app.update();
    app
}

/// The best hand-written mlua integration.
struct HandLua {
    lua: Lua,
    slot: AnyUserData,
    on_update: Function,
}

struct HandPlayer(Player);

impl UserData for HandPlayer {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("health", |_, this| Ok(this.0.health));
        fields.add_field_method_set("health", |_, this, v: f64| {
            this.0.health = v;
            Ok(())
        });
        fields.add_field_method_get("level", |_, this| Ok(this.0.level));
        fields.add_field_method_set("level", |_, this, v: i64| {
            this.0.level = v;
            Ok(())
        });
    }
}

fn hand_app(n: usize) -> App {
    fn update(mut players: Query<&mut Player>, hand: NonSend<HandLua>, time: Res<Time>) {
        let dt = time.delta_secs_f64();
        for mut p in &mut players {
            std::mem::swap(
                &mut hand.slot.borrow_mut::<HandPlayer>().unwrap().0,
                &mut *p,
            );
            hand.on_update.call::<()>((&hand.slot, dt)).unwrap();
            std::mem::swap(
                &mut hand.slot.borrow_mut::<HandPlayer>().unwrap().0,
                &mut *p,
            );
        }
    }
    let lua = Lua::new();
    lua.load(HAND_SCRIPT).exec().unwrap();
    let on_update = lua.globals().get("on_update").unwrap();
    let slot = lua.create_userdata(HandPlayer(Player::default())).unwrap();
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_non_send(HandLua {
            lua,
            slot,
            on_update,
        })
        .add_systems(Update, update);
    spawn_players(app.world_mut(), n);
    app.update();
    app
}

/// The value-passing floor: what Lua itself costs with these numbers. The same body as the
/// scripts' with the fields passed in as numbers and the new values returned: one mlua call
/// per entity, no userdata, no references.
const VALUES_SCRIPT: &str = r#"
function on_update(health, level, dt)
    return health - dt * 1.5, level + 1
end
"#;

struct ValuesLua {
    _lua: Lua,
    on_update: Function,
}

fn values_app(n: usize) -> App {
    fn update(mut players: Query<&mut Player>, values: NonSend<ValuesLua>, time: Res<Time>) {
        let dt = time.delta_secs_f64();
        for mut p in &mut players {
            let (health, level): (f64, i64) =
                values.on_update.call((p.health, p.level, dt)).unwrap();
            p.health = health;
            p.level = level;
        }
    }
    let lua = Lua::new();
    lua.load(VALUES_SCRIPT).exec().unwrap();
    let on_update = lua.globals().get("on_update").unwrap();
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_non_send(ValuesLua {
            _lua: lua,
            on_update,
        })
        .add_systems(Update, update);
    spawn_players(app.world_mut(), n);
    app.update();
    app
}

/// bevy_lunar: each entity runs `SCRIPT` as its own instance.
struct Scripted {
    app: App,
    _dir: tempfile::TempDir,
}

fn scripted_app(n: usize) -> (Scripted, Duration) {
    scripted_app_with(n, SCRIPT)
}

/// As [`scripted_app`], each entity running `source`.
fn scripted_app_with(n: usize, source: &str) -> (Scripted, Duration) {
    built_app(
        source,
        |app| {
            app.register_lua_component::<Player>();
        },
        |world, handle| {
            world.spawn_batch((0..n).map(|_| {
                (
                    Player {
                        health: 1e9,
                        level: 0,
                    },
                    LuaScript(handle.clone()),
                )
            }));
        },
        n,
    )
}

/// `LUNAR_WATCHDOG=off`: the budget's hook set all the time, for instruction counts of one
/// long callback (the query loop): under valgrind the watchdog arms it partway through the
/// loop, at a point that depends on timing, so the counts would not repeat.
fn watchdog() -> bevy_lunar::BudgetWatchdog {
    match std::env::var("LUNAR_WATCHDOG").as_deref() {
        Ok("off") => bevy_lunar::BudgetWatchdog::Off,
        _ => bevy_lunar::BudgetWatchdog::Auto,
    }
}

/// An app whose scripts run `source` (`scripts/player.lua`): `register` registers the types,
/// `spawn` the entities (with the script's handle); `instances` of it are expected.
fn built_app(
    source: &str,
    register: impl FnOnce(&mut App),
    spawn: impl FnOnce(&mut World, Handle<LuaScriptAsset>),
    instances: usize,
) -> (Scripted, Duration) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("scripts")).unwrap();
    std::fs::write(dir.path().join("scripts/player.lua"), source).unwrap();
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        AssetPlugin {
            file_path: dir.path().to_string_lossy().into_owned(),
            ..default()
        },
        LuaScriptingPlugin {
            watchdog: watchdog(),
            ..default()
        },
    ));
    register(&mut app);
    let handle: Handle<LuaScriptAsset> = app
        .world()
        .resource::<AssetServer>()
        .load("scripts/player.lua");
    spawn(app.world_mut(), handle.clone());
    // Wait for the asset; the frame that creates the instances is timed.
    loop {
        app.update();
        let loaded = app
            .world()
            .resource::<Assets<LuaScriptAsset>>()
            .contains(handle.id());
        if loaded {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let stats = app.world().resource::<LuaScriptStats>().clone();
    let created = if stats.instances == instances {
        Duration::ZERO // created in the frame that saw the asset: time it below instead
    } else {
        let start = Instant::now();
        app.update();
        start.elapsed()
    };
    assert_eq!(
        app.world().resource::<LuaScriptStats>().instances,
        instances
    );
    (Scripted { app, _dir: dir }, created)
}

/// Seconds per frame of each app, the minimum over `repeats` rounds of `frames` frames. The
/// apps take turns within each round, so that the machine's load changes hit them alike and
/// their ratios hold even when the absolute figures drift.
fn frame_times<const N: usize>(mut apps: [&mut App; N], frames: u32, repeats: u32) -> [f64; N] {
    let mut best = [f64::INFINITY; N];
    for _ in 0..repeats {
        for (i, app) in apps.iter_mut().enumerate() {
            let start = Instant::now();
            for _ in 0..frames {
                app.update();
            }
            best[i] = best[i].min(start.elapsed().as_secs_f64() / f64::from(frames));
        }
    }
    best
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// `LUNAR_PROFILE=plain|values|hand|lunar|reflected|query` (`LUNAR_ENTITIES`, default 1,000;
/// `LUNAR_FRAMES`, default 50): builds that app and runs its frames, nothing else, for
/// profiling under callgrind. `LUNAR_PROFILE=hot LUNAR_OP=<op>`: one hot-path operation
/// ([`HOT_OPS`]), as `benches/hot_paths.sh` counts them.
fn profile(which: &str) {
    let n: usize = std::env::var("LUNAR_ENTITIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000);
    let mut app = match which {
        "hot" => hot_app(&std::env::var("LUNAR_OP").unwrap_or_default()),
        "plain" => plain_app(n),
        "values" => values_app(n),
        "hand" => hand_app(n),
        "reflected" | "query" => {
            let scripted = if which == "query" {
                query_app(n)
            } else {
                reflected_app(n)
            };
            std::mem::forget(scripted._dir);
            scripted.app
        }
        _ => {
            let (scripted, _) = scripted_app(n);
            std::mem::forget(scripted._dir);
            scripted.app
        }
    };
    let frames: usize = std::env::var("LUNAR_FRAMES")
        .ok()
        .and_then(|f| f.parse().ok())
        .unwrap_or(50);
    for _ in 0..frames {
        app.update();
    }
}

/// The operations of the hot-path counts: a Lua statement run `HOT_REPEATS` times a frame, 100
/// times by each of 100 scripts (short callbacks, so that the instruction budget's hook stays
/// off as it does for behaving scripts), whose entities have a `Player` (`p`) and a `Mover`
/// (`m`), with two `Vec3` values (`a`, `b`) and two plain tables (`ta`, `tb`) at hand. `loop` is the empty loop, subtracted
/// from the others; `query_each` walks
/// `HOT_REPEATS` entities with `world.query("Player"):each()` and an empty body; `glam_add` is
/// `Vec3 + Vec3` in a Rust system, counted against `rust_loop` (the same loop without the `+`).
const HOT_OPS: &[(&str, &str)] = &[
    ("loop", ""),
    ("entity_get", "local r = entity:get('Player')"),
    ("number_get", "local h = p.health"),
    ("number_set", "p.health = 2.5"),
    ("string_get", "local s = m.name"),
    ("method_call", "local s = m:boosted(2)"),
    ("nested_get", "local x = t.translation.x"),
    ("nested_set", "t.translation.x = 2.5"),
    ("vec3_add", "local c = a + b"),
    (
        "table_add",
        "local c = { x = ta.x + tb.x, y = ta.y + tb.y, z = ta.z + tb.z }",
    ),
];
const HOT_REPEATS: usize = 10_000;
const HOT_INSTANCES: usize = 100;

/// The app of one hot-path operation (see [`HOT_OPS`]).
fn hot_app(op: &str) -> App {
    if op == "glam_add" || op == "rust_loop" {
        fn add(mut sum: Local<Vec3>) {
            for i in 0..HOT_REPEATS {
                *sum = black_box(*sum) + black_box(Vec3::splat(i as f32));
            }
        }
        fn empty(mut sum: Local<Vec3>) {
            for i in 0..HOT_REPEATS {
                *sum = black_box(*sum);
                black_box(Vec3::splat(i as f32));
            }
        }
        let mut app = App::new();
        app.add_plugins(MinimalPlugins);
        if op == "glam_add" {
            app.add_systems(Update, add);
        } else {
            app.add_systems(Update, empty);
        }
        return app;
    }
    if op == "query_each" {
        let script =
            "function on_update(dt)\n    for e, p in world.query('Player'):each() do end\nend";
        let scripted = built_app(
            script,
            |app| {
                app.register_lua_component::<Player>();
            },
            |world, handle| {
                spawn_players(world, HOT_REPEATS);
                world.spawn(LuaScript(handle));
            },
            1,
        )
        .0;
        std::mem::forget(scripted._dir);
        return scripted.app;
    }
    let statement = HOT_OPS
        .iter()
        .find(|(name, _)| *name == op)
        .unwrap_or_else(|| panic!("LUNAR_OP: one of {HOT_OPS:?}, glam_add, query_each"))
        .1;
    let script = format!(
        "local a, b = Vec3.new(1, 2, 3), Vec3.new(4, 5, 6)
local ta, tb = {{ x = 1, y = 2, z = 3 }}, {{ x = 4, y = 5, z = 6 }}
function on_update(dt)
    local p, m, t = entity:get('Player'), entity:get('Mover'), entity:get('Transform')
    for i = 1, {} do
        {statement}
    end
end",
        HOT_REPEATS / HOT_INSTANCES
    );
    let scripted = built_app(
        &script,
        |app| {
            app.register_lua_component::<Player>()
                .register_lua_component::<Mover>();
        },
        |world, handle| {
            world.spawn_batch((0..HOT_INSTANCES).map(|_| {
                (
                    Player::default(),
                    Mover {
                        name: "mover".into(),
                        velocity: Vec3::X,
                        speed: 2.0,
                    },
                    Transform::default(),
                    LuaScript(handle.clone()),
                )
            }));
        },
        HOT_INSTANCES,
    )
    .0;
    std::mem::forget(scripted._dir);
    scripted.app
}

fn main() {
    if let Ok(which) = std::env::var("LUNAR_PROFILE") {
        profile(&which);
        return;
    }
    // `LUNAR_REFLECTION=1`: the reflection and query figures alone.
    if std::env::var("LUNAR_REFLECTION").is_ok() {
        reflection_cost();
        return;
    }
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    for n in SIZES {
        let mut group = c.benchmark_group(format!("frame_{n}_entities"));
        let mut plain = plain_app(n);
        group.bench_function("plain_rust_system", |b| b.iter(|| plain.update()));
        let mut hand = hand_app(n);
        group.bench_function("mlua_hand_written_swap", |b| b.iter(|| hand.update()));
        let (mut scripted, _) = scripted_app(n);
        group.bench_function("bevy_lunar", |b| b.iter(|| scripted.app.update()));
        group.finish();
    }
    c.final_summary();

    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--test" || a == "--list") {
        return;
    }

    println!("\nper entity per frame, ns (min of 30 interleaved runs of 20 frames):");
    println!(
        "  {:>8} {:>7} {:>11} {:>10} {:>8} {:>8} {:>10} {:>12}",
        "entities",
        "plain",
        "Lua values",
        "hand mlua",
        "lunar",
        "query",
        "lunar/hand",
        "query/values"
    );
    // `LUNAR_SIZES=500,2000,...` measures other entity counts.
    let sizes: Vec<usize> = std::env::var("LUNAR_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| RATIO_SIZES.to_vec());
    let mut memory = Vec::new();
    for n in sizes {
        let mut plain = plain_app(n);
        let mut values = values_app(n);
        let mut hand = hand_app(n);
        let mut query = query_app(n);
        let rss_before = peak_rss_kib();
        let (mut scripted, _) = scripted_app(n);
        let rss_after = peak_rss_kib();
        let per = |s: f64| s * 1e9 / n as f64;
        let [p, v, h, l, q] = frame_times(
            [
                &mut plain,
                &mut values,
                &mut hand,
                &mut scripted.app,
                &mut query.app,
            ],
            20,
            30,
        )
        .map(per);
        println!(
            "  {n:>8} {p:>7.1} {v:>11.1} {h:>10.1} {l:>8.1} {q:>8.1} {:>10.2} {:>12.2}",
            l / h,
            q / v
        );
        let stats = scripted.app.world().resource::<LuaScriptStats>().clone();
        let hand_memory = hand.world().non_send::<HandLua>().lua.used_memory();
        memory.push(format!(
            "  {n:>8} entities: bevy_lunar Lua state {:.1} MB, {:.0} bytes per instance (process RSS +{:.1} MB); hand-written Lua state {:.2} MB",
            stats.lua_memory as f64 / 1e6,
            stats.lua_memory as f64 / stats.instances as f64,
            rss_after.saturating_sub(rss_before) as f64 / 1024.0,
            hand_memory as f64 / 1e6
        ));
        black_box(&mut plain);
    }
    println!("memory:");
    for line in memory {
        println!("{line}");
    }

    waiting_cost();
    reflection_cost();

    // Creating instances, and a hot reload of a script used by 1,000 entities.
    let n = 1_000;
    let mut created = Vec::new();
    let mut reloaded = Vec::new();
    for _ in 0..5 {
        let (mut scripted, _) = scripted_app(n);
        let world = scripted.app.world_mut();
        let id = world
            .resource::<Assets<LuaScriptAsset>>()
            .ids()
            .next()
            .unwrap();
        // Any mutable access to the asset sends `AssetEvent::Modified`, as the watcher does.
        world
            .resource_mut::<Assets<LuaScriptAsset>>()
            .get_mut(id)
            .unwrap();
        let start = Instant::now();
        scripted.app.update();
        reloaded.push(start.elapsed());
        // Creation: a fresh app's instance-creating frame minus an ordinary frame.
        let (mut fresh, _) = scripted_app(0);
        let handle: Handle<LuaScriptAsset> = fresh
            .app
            .world()
            .resource::<AssetServer>()
            .load("scripts/player.lua");
        fresh.app.update();
        let world = fresh.app.world_mut();
        world.spawn_batch((0..n).map(|_| (Player::default(), LuaScript(handle.clone()))));
        let start = Instant::now();
        fresh.app.update();
        created.push(start.elapsed());
    }
    let min = |v: &[Duration]| v.iter().min().unwrap().as_secs_f64();
    println!(
        "creating {n} instances: {:.1} us each; hot reload of a script used by {n} entities: {:.2} ms ({:.1} us per instance)",
        min(&created) * 1e6 / n as f64,
        min(&reloaded) * 1e3,
        min(&reloaded) * 1e6 / n as f64
    );
}

/// Tasks: a frame with 10,000 instances each holding a task waiting on a timer (`after`),
/// against the same instances without; the same script where it names `wait` (its callbacks
/// then run on threads, which can wait); and per instance, a `wait(0)` round trip against an
/// `on_update` call.
fn waiting_cost() {
    let n = 10_000;
    let waiting_task = format!("{SCRIPT}\nfunction on_start() after(1e9, function() end) end\n");
    let threaded = format!("{SCRIPT}\n-- names wait: callbacks on threads\n");
    let (mut without, _) = scripted_app(n);
    let (mut with, _) = scripted_app_with(n, &waiting_task);
    let (mut on_threads, _) = scripted_app_with(n, &threaded);
    let (mut calls, _) = scripted_app_with(n, "function on_update(dt) end");
    let (mut waits, _) = scripted_app_with(
        n,
        "function on_start() task(function() while true do wait(0) end end) end",
    );
    for app in [&mut with.app, &mut waits.app] {
        app.update();
        assert_eq!(app.world().resource::<LuaScriptStats>().tasks, n);
    }
    let per = |s: f64| s * 1e9 / n as f64;
    let [a, b, t, c, w] = frame_times(
        [
            &mut without.app,
            &mut with.app,
            &mut on_threads.app,
            &mut calls.app,
            &mut waits.app,
        ],
        20,
        15,
    )
    .map(per);
    println!(
        "{n} instances, per instance-frame: {a:.1} ns; with a task waiting on a timer each {b:.1} ns ({:+.1}%); callbacks on threads {t:.1} ns ({:+.1}%)",
        (b / a - 1.0) * 100.0,
        (t / a - 1.0) * 100.0
    );
    println!(
        "per instance-frame: an empty on_update {c:.1} ns, a task's wait(0) round trip {w:.1} ns ({:.2}x)",
        w / c
    );
}

/// `Player` as a type that only derives `Reflect`: the same fields, reached through reflection.
mod reflected {
    use bevy::prelude::*;

    #[derive(Component, Reflect, Default)]
    #[reflect(Component, Default)]
    pub struct Player {
        pub health: f64,
        pub level: i64,
    }
}

/// The scripts workload with `Player` reached through reflection instead of the derive.
fn reflected_app(n: usize) -> Scripted {
    built_app(
        SCRIPT,
        |app| {
            app.register_lua_reflect::<reflected::Player>();
        },
        |world, handle| {
            world.spawn_batch((0..n).map(|_| {
                (
                    reflected::Player {
                        health: 1e9,
                        level: 0,
                    },
                    LuaScript(handle.clone()),
                )
            }));
        },
        n,
    )
    .0
}

/// `n` players without scripts, and one script walking them all with a query.
fn query_app(n: usize) -> Scripted {
    built_app(
        QUERY_SCRIPT,
        |app| {
            app.register_lua_component::<Player>();
        },
        |world, handle| {
            world.spawn_batch((0..n).map(|_| Player {
                health: 1e9,
                level: 0,
            }));
            world.spawn(LuaScript(handle));
        },
        1,
    )
    .0
}

/// The scripts workload with `Player` exposed through reflection instead of the derive, and
/// one script walking every `Player` with `world.query(...):each()` instead of a script each.
fn reflection_cost() {
    let n = 10_000;
    let (mut derived, _) = scripted_app(n);
    let mut reflected = reflected_app(n);
    let mut query = query_app(n);
    let mut hand = hand_app(n);
    let per = |s: f64| s * 1e9 / n as f64;
    let [d, r, q, h] = frame_times(
        [
            &mut derived.app,
            &mut reflected.app,
            &mut query.app,
            &mut hand,
        ],
        20,
        15,
    )
    .map(per);
    println!(
        "{n} entities, per entity-frame: derived Player {d:.1} ns, reflected Player {r:.1} ns (reflected/derived {:.2}, reflected/hand {:.2}); one script's query(\"Player\"):each() loop {q:.1} ns per entity (query/per-entity scripts {:.2}, query/hand {:.2})",
        r / d,
        r / h,
        q / d,
        q / h
    );
}

const QUERY_SCRIPT: &str = r#"
function on_update(dt)
    for e, p in world.query("Player"):each() do
        p.health = p.health - dt * 1.5
        p.level = p.level + 1
    end
end
"#;
