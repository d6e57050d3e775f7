//! Cost of userdata access from Lua: a plain Lua table (the floor), hand-written mlua `UserData`
//! (what users write today) and `#[derive(LuaUserData)]`.
//!
//! Every case is one Lua function, compiled once, whose loop body is exactly one operation; the
//! loop count is criterion's iteration count, so criterion reports ns per *operation* (the empty
//! `for` loop itself is measured as `baseline/empty_loop`, nothing is subtracted).
//!
//! After criterion, in benchmark mode only, a second timing pass over the very same functions
//! prints `ratio <op> derived/hand-written` and `ratio <op> hand-written/lua_table` lines.
//!
//! Run: `cargo bench --bench userdata`.

use std::time::{Duration, Instant};

use bevy_lunar::mlua::{self, Function, Lua, MetaMethod, UserData, UserDataRef, Value};
use bevy_lunar::prelude::*;
use criterion::Criterion;

// ---------------------------------------------------------------------------------------------
// Hand-written mlua UserData: what users write today.

struct HandPlayer {
    name: String,
    health: f64,
    level: i64,
}

impl UserData for HandPlayer {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("name", |_, this| Ok(this.name.clone()));
        fields.add_field_method_set("name", |_, this, v: String| {
            this.name = v;
            Ok(())
        });
        fields.add_field_method_get("health", |_, this| Ok(this.health));
        fields.add_field_method_set("health", |_, this, v: f64| {
            this.health = v;
            Ok(())
        });
        fields.add_field_method_get("level", |_, this| Ok(this.level));
        fields.add_field_method_set("level", |_, this, v: i64| {
            this.level = v;
            Ok(())
        });
    }

    fn add_methods<M: mlua::UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut("heal", |_, this, amount: f64| {
            this.health += amount;
            Ok(())
        });
        methods.add_method("get_health", |_, this, ()| Ok(this.health));
    }
}

struct HandVec2 {
    x: f64,
    y: f64,
}

impl UserData for HandVec2 {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("x", |_, this| Ok(this.x));
        fields.add_field_method_get("y", |_, this| Ok(this.y));
    }

    fn add_methods<M: mlua::UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_function(
            MetaMethod::Add,
            |_, (a, b): (UserDataRef<HandVec2>, UserDataRef<HandVec2>)| {
                Ok(HandVec2 {
                    x: a.x + b.x,
                    y: a.y + b.y,
                })
            },
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The same types through the derive.

#[derive(LuaUserData)]
pub struct Player {
    pub name: String,
    pub health: f64,
    pub level: i64,
}

#[lua_methods]
impl Player {
    pub fn heal(&mut self, amount: f64) {
        self.health += amount;
    }

    pub fn get_health(&self) -> f64 {
        self.health
    }
}

#[derive(LuaUserData, Clone)]
#[lua_impl(Add)]
pub struct Vec2 {
    pub x: f64,
    pub y: f64,
}

impl std::ops::Add for Vec2 {
    type Output = Vec2;

    fn add(self, o: Vec2) -> Vec2 {
        Vec2 {
            x: self.x + o.x,
            y: self.y + o.y,
        }
    }
}

/// Collections and enums as live values: the `Vec<f64>` field is a live list.
#[derive(LuaUserData)]
pub struct Stock {
    pub health: f64,
    pub items: Vec<f64>,
    pub team: Team,
}

#[derive(LuaUserData, Clone, Copy)]
pub enum Team {
    Red,
    Blue,
}

// ---------------------------------------------------------------------------------------------
// Cases.

const LUA_TABLE: &str = "lua_table";
const HAND: &str = "mlua_hand_written";
const DERIVED: &str = "derived";

/// The operations compared, each a loop body of exactly one operation. Scripts get
/// `n, a, b` as arguments: the loop count and up to two operands, kept in locals.
const OPS: &[(&str, &str)] = &[
    (
        "field_get",
        "local n, p = ... for i = 1, n do local x = p.health end",
    ),
    (
        "field_set",
        "local n, p = ... local v = 0.5 for i = 1, n do p.health = v end",
    ),
    (
        "method_mut_heal",
        "local n, p = ... for i = 1, n do p:heal(1.0) end",
    ),
    (
        "method_get_health",
        "local n, p = ... for i = 1, n do local h = p:get_health() end",
    ),
    (
        "meta_add",
        "local n, a, b = ... for i = 1, n do local c = a + b end",
    ),
];

/// Live values, on the derived type only, each compared with the scalar field read `p.health` of
/// the same value in the same run (`scalar_get`). The list view is taken once, outside the loop,
/// as a script keeping `local items = p.items` does.
const LIVE_OPS: &[(&str, &str)] = &[
    (
        "scalar_get",
        "local n, p = ... for i = 1, n do local x = p.health end",
    ),
    (
        "element_get",
        "local n, p = ... local items = p.items for i = 1, n do local x = items[2] end",
    ),
    (
        "element_set",
        "local n, p = ... local items = p.items local v = 0.5 for i = 1, n do items[2] = v end",
    ),
    (
        "list_len",
        "local n, p = ... local items = p.items for i = 1, n do local x = #items end",
    ),
    (
        "enum_field_get",
        "local n, p = ... for i = 1, n do local x = p.team end",
    ),
];

const LIVE: &str = "live";

/// Plain-Lua stand-ins for the floor: a table with the fields, Lua functions as methods and a
/// Lua `__add` that builds a new table.
const LUA_TABLE_SETUP: &str = r#"
    local player = { name = "bench", health = 100.0, level = 1 }
    function player.heal(self, amount) self.health = self.health + amount end
    function player.get_health(self) return self.health end
    local vec_mt = {}
    vec_mt.__add = function(a, b) return setmetatable({ x = a.x + b.x, y = a.y + b.y }, vec_mt) end
    local a = setmetatable({ x = 1.0, y = 2.0 }, vec_mt)
    local b = setmetatable({ x = 3.0, y = 4.0 }, vec_mt)
    return player, a, b
"#;

/// One compiled benchmark: its own Lua state, so garbage of one case never burdens another.
struct Case {
    group: &'static str,
    variant: &'static str,
    // Keeps the state alive next to the function and operands.
    _lua: Lua,
    func: Function,
    a: Value,
    b: Value,
}

impl Case {
    /// Runs the loop `n` times and returns the elapsed wall time.
    fn run(&self, n: u64) -> Duration {
        let n = i64::try_from(n).expect("iteration count fits in i64");
        let start = Instant::now();
        self.func
            .call::<()>((n, self.a.clone(), self.b.clone()))
            .expect("benchmark script failed");
        start.elapsed()
    }
}

/// Creates a fresh Lua state and returns (state, player, vec a, vec b) for `variant`.
fn operands(variant: &str) -> mlua::Result<(Lua, Value, Value, Value)> {
    let lua = Lua::new();
    let (p, a, b) = match variant {
        LUA_TABLE => lua.load(LUA_TABLE_SETUP).eval::<(Value, Value, Value)>()?,
        HAND => (
            Value::UserData(lua.create_userdata(HandPlayer {
                name: "bench".into(),
                health: 100.0,
                level: 1,
            })?),
            Value::UserData(lua.create_userdata(HandVec2 { x: 1.0, y: 2.0 })?),
            Value::UserData(lua.create_userdata(HandVec2 { x: 3.0, y: 4.0 })?),
        ),
        DERIVED => (
            Value::UserData(lua.create_userdata(Player {
                name: "bench".into(),
                health: 100.0,
                level: 1,
            })?),
            Value::UserData(lua.create_userdata(Vec2 { x: 1.0, y: 2.0 })?),
            Value::UserData(lua.create_userdata(Vec2 { x: 3.0, y: 4.0 })?),
        ),
        other => unreachable!("unknown variant {other}"),
    };
    Ok((lua, p, a, b))
}

fn build_cases() -> mlua::Result<Vec<Case>> {
    let mut cases = Vec::new();

    let lua = Lua::new();
    let func = lua
        .load("local n = ... for i = 1, n do end")
        .set_name("baseline/empty_loop")
        .into_function()?;
    cases.push(Case {
        group: "baseline",
        variant: "empty_loop",
        _lua: lua,
        func,
        a: Value::Nil,
        b: Value::Nil,
    });

    for &(group, source) in OPS {
        for variant in [LUA_TABLE, HAND, DERIVED] {
            let (lua, p, a, b) = operands(variant)?;
            let func = lua
                .load(source)
                .set_name(format!("{group}/{variant}"))
                .into_function()?;
            let (a, b) = if group == "meta_add" {
                (a, b)
            } else {
                (p, Value::Nil)
            };
            let case = Case {
                group,
                variant,
                _lua: lua,
                func,
                a,
                b,
            };
            // Fail fast (and check every script really runs) before timing anything.
            case.run(10);
            cases.push(case);
        }
    }
    for &(group, source) in LIVE_OPS {
        let lua = Lua::new();
        let stock = Value::UserData(lua.create_userdata(Stock {
            health: 100.0,
            items: vec![1.0, 2.0, 3.0],
            team: Team::Red,
        })?);
        let func = lua
            .load(source)
            .set_name(format!("{group}/{LIVE}"))
            .into_function()?;
        let case = Case {
            group,
            variant: LIVE,
            _lua: lua,
            func,
            a: stock,
            b: Value::Nil,
        };
        case.run(10);
        cases.push(case);
    }
    Ok(cases)
}

// ---------------------------------------------------------------------------------------------
// Criterion, then the ratio pass.

fn criterion_pass(c: &mut Criterion, cases: &[Case]) {
    let mut groups: Vec<&'static str> = cases.iter().map(|c| c.group).collect();
    groups.dedup();
    for group_name in groups {
        let mut group = c.benchmark_group(group_name);
        for case in cases.iter().filter(|c| c.group == group_name) {
            group.bench_function(case.variant, |b| b.iter_custom(|iters| case.run(iters)));
        }
        group.finish();
    }
}

const RATIO_ITERS: u64 = 200_000;
const RATIO_REPEATS: usize = 40;

/// Times every case `RATIO_REPEATS` times over `RATIO_ITERS` iterations (cases interleaved within
/// each repeat, so slow phases of a noisy machine hit all of them) and keeps each case's minimum.
fn ratio_pass(cases: &[Case]) {
    let mut best = vec![f64::INFINITY; cases.len()];
    for _ in 0..RATIO_REPEATS {
        for (case, best) in cases.iter().zip(&mut best) {
            let ns = case.run(RATIO_ITERS).as_nanos() as f64 / RATIO_ITERS as f64;
            *best = best.min(ns);
        }
    }
    let ns = |group: &str, variant: &str| {
        cases
            .iter()
            .zip(&best)
            .find(|(c, _)| c.group == group && c.variant == variant)
            .map(|(_, &ns)| ns)
            .expect("case exists")
    };

    println!();
    println!(
        "ratio pass: min of {RATIO_REPEATS} runs x {RATIO_ITERS} iterations, ns/op (loop overhead included)"
    );
    println!(
        "  {:<20} {:>10} {:>18} {:>10}",
        "operation", LUA_TABLE, HAND, DERIVED
    );
    println!(
        "  {:<20} {:>10.2}",
        "empty_loop",
        ns("baseline", "empty_loop")
    );
    for &(group, _) in OPS {
        println!(
            "  {:<20} {:>10.2} {:>18.2} {:>10.2}",
            group,
            ns(group, LUA_TABLE),
            ns(group, HAND),
            ns(group, DERIVED)
        );
    }
    println!();
    for &(group, _) in OPS {
        println!(
            "ratio {group} derived/hand-written = {:.2}",
            ns(group, DERIVED) / ns(group, HAND)
        );
    }
    for &(group, _) in OPS {
        println!(
            "ratio {group} hand-written/lua_table = {:.2}",
            ns(group, HAND) / ns(group, LUA_TABLE)
        );
    }
    println!();
    let scalar = ns("scalar_get", LIVE);
    for &(group, _) in LIVE_OPS {
        println!(
            "ratio {group} / scalar_get = {:.2} ({:.2} ns/op)",
            ns(group, LIVE) / scalar,
            ns(group, LIVE)
        );
    }
    let _ = (Team::Red, Team::Blue);
}

/// `LUNAR_BENCH_CASE=group/variant LUNAR_BENCH_ITERS=n`: runs that one case `n` times and
/// nothing else, for instruction counting under callgrind (`benches/instructions.sh`).
fn run_single_case(cases: &[Case], name: &str) {
    let iters = std::env::var("LUNAR_BENCH_ITERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let case = cases
        .iter()
        .find(|c| format!("{}/{}", c.group, c.variant) == name)
        .unwrap_or_else(|| panic!("no benchmark case {name}"));
    case.run(iters);
}

fn main() {
    let cases = build_cases().expect("building benchmark cases");
    if let Ok(name) = std::env::var("LUNAR_BENCH_CASE") {
        run_single_case(&cases, &name);
        return;
    }

    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    criterion_pass(&mut c, &cases);
    c.final_summary();

    // Same rule as criterion: `cargo bench` passes `--bench`; `cargo test --benches` does not,
    // and then only the quick criterion test run happens.
    let args: Vec<String> = std::env::args().collect();
    let benchmarking =
        args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test" || a == "--list");
    if benchmarking {
        ratio_pass(&cases);
    }
}
