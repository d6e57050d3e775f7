//! Reflected types: Bevy's own components and resources, and a user type that only derives
//! `Reflect`, reached from scripts without a derive (`register_lua_reflect`).

#[path = "common/app.rs"]
mod app;

use std::collections::HashMap;

use app::TestApp;
use bevy::camera::ClearColor;
use bevy::camera::visibility::Visibility;
use bevy::prelude::*;
use bevy_lunar::LuaScriptStats;
use bevy_lunar::prelude::*;

#[derive(Reflect, Default, Clone, Debug, PartialEq)]
#[reflect(Default)]
enum Mode {
    #[default]
    Idle,
    Chasing,
}

#[derive(Reflect, Clone, Debug, PartialEq)]
#[reflect(Default)]
enum Shape {
    Circle { radius: f32 },
    Rect(f32, f32),
}

impl Default for Shape {
    fn default() -> Self {
        Shape::Circle { radius: 1.0 }
    }
}

#[derive(Reflect, Default, Clone, Debug, PartialEq)]
#[reflect(Default)]
struct Stats {
    strength: u8,
    luck: f32,
}

/// A component that only derives `Reflect`: no `LuaUserData`.
#[derive(Component, Reflect, Default, Clone, Debug, PartialEq)]
#[reflect(Component, Default)]
struct Hero {
    health: f32,
    level: u32,
    home: Vec2,
    mode: Mode,
    shape: Shape,
    target: Option<Vec2>,
    tags: Vec<String>,
    inventory: HashMap<String, u32>,
    stats: Stats,
    friend: Option<Entity>,
    cooldown: std::time::Duration,
}

#[derive(Component, Reflect, Default)]
#[reflect(Component, Default)]
struct Dead;

/// Whether `Hero` was changed in the frame, as a Bevy system sees it.
#[derive(Resource, Default)]
struct HeroChanged(Vec<bool>);

fn watch_hero(heroes: Query<Ref<Hero>>, mut seen: ResMut<HeroChanged>) {
    for hero in &heroes {
        seen.0.push(hero.is_changed());
    }
}

fn game(files: &[(&str, &str)]) -> TestApp {
    let mut test = TestApp::new(files);
    test.app
        .init_resource::<HeroChanged>()
        .insert_resource(ClearColor(Color::BLACK))
        .register_lua_reflect::<Hero>()
        .register_lua_reflect::<Dead>()
        .register_lua_reflect::<Name>()
        .register_lua_reflect::<Visibility>()
        .register_lua_reflect::<ClearColor>()
        .add_systems(Update, watch_hero.after(LuaScriptSet));
    test
}

fn hero(test: &TestApp, entity: Entity) -> Hero {
    test.app.world().get::<Hero>(entity).unwrap().clone()
}

const ONCE: &str = "local done = false
function on_update()
    if done then return end
    done = true
    run()
end
";

fn once(body: &str) -> String {
    format!("{ONCE}function run()\n{body}\nend\n")
}

#[test]
fn reflected_fields_read_and_write_through() {
    let script = once(
        r#"
    local h = entity:get("Hero")
    assert(h.health == 10, "health " .. tostring(h.health))
    h.health = h.health - 1.5
    h.level = h.level + 1
    h.home.x = 5                                   -- a Vec2 inside, written through
    assert(h.home:length() == 5, "Vec2 keeps its methods")
    h.mode = "Chasing"                             -- a unit enum is a string
    assert(h.mode == "Chasing")
    assert(h.shape.kind == "Circle" and h.shape.radius == 1)
    h.shape.radius = 4                             -- a data enum's field
    h.stats.strength = 7                           -- a nested struct
    h.tags:push("boss")
    h.tags[#h.tags + 1] = "big"
    assert(#h.tags == 3 and h.tags[1] == "old" and h.tags[3] == "big")
    local seen = {}
    for i, tag in ipairs(h.tags) do seen[#seen + 1] = i .. tag end
    assert(table.concat(seen, ",") == "1old,2boss,3big", table.concat(seen, ","))
    local fields = {}
    for name, value in pairs(h.stats) do fields[#fields + 1] = name .. "=" .. math.floor(value) end
    assert(table.concat(fields, ",") == "strength=7,luck=0", table.concat(fields, ","))
    h.inventory.potion = 3
    assert(h.target == nil)
    h.target = Vec2.new(1, 2)
    assert(h.target.y == 2)
    h.friend = entity
    assert(h.friend == entity)
    assert(entity:get("Name"):get() == "Hero" and tostring(entity:get("Name")) == "Hero")
    entity:get("Name"):set("Boss")
    assert(entity:get("Visibility"):get() == "Inherited")
    entity:get("Visibility"):set("Hidden")
"#,
    );
    let mut test = game(&[("scripts/r.lua", &script)]);
    let e = test.spawn_script(
        "scripts/r.lua",
        (
            Hero {
                health: 10.0,
                tags: vec!["old".into()],
                ..default()
            },
            Name::new("Hero"),
            Visibility::Inherited,
        ),
    );
    test.settle(2);
    assert_eq!(test.errors(), Vec::<String>::new());
    let h = hero(&test, e);
    assert_eq!(h.health, 8.5);
    assert_eq!(h.level, 1);
    assert_eq!(h.home, Vec2::new(5.0, 0.0));
    assert_eq!(h.mode, Mode::Chasing);
    assert_eq!(h.shape, Shape::Circle { radius: 4.0 });
    assert_eq!(h.stats.strength, 7);
    assert_eq!(h.tags, ["old", "boss", "big"]);
    assert_eq!(h.inventory.get("potion"), Some(&3));
    assert_eq!(h.target, Some(Vec2::new(1.0, 2.0)));
    assert_eq!(h.friend, Some(e));
    let world = test.app.world();
    assert_eq!(world.get::<Name>(e).unwrap().as_str(), "Boss");
    assert_eq!(world.get::<Visibility>(e), Some(&Visibility::Hidden));
}

#[test]
fn whole_values_are_written_from_tables_and_enum_variants_change() {
    let script = once(
        r#"
    local h = entity:get("Hero")
    h.shape = { kind = "Rect", [1] = 2, [2] = 3 }
    h.stats = { strength = 9 }
    h.tags = { "a", "b" }
    h.inventory = { gold = 5 }
    h.home = Vec2.new(1, 2)
    h.target = nil
"#,
    );
    let mut test = game(&[("scripts/t.lua", &script)]);
    let e = test.spawn_script(
        "scripts/t.lua",
        Hero {
            tags: vec!["x".into(), "y".into(), "z".into()],
            target: Some(Vec2::ONE),
            stats: Stats {
                strength: 1,
                luck: 0.5,
            },
            ..default()
        },
    );
    test.settle(2);
    assert_eq!(test.errors(), Vec::<String>::new());
    let h = hero(&test, e);
    assert_eq!(h.shape, Shape::Rect(2.0, 3.0));
    // Fields a table leaves out keep their value.
    assert_eq!(
        h.stats,
        Stats {
            strength: 9,
            luck: 0.5
        }
    );
    assert_eq!(h.tags, ["a", "b"]);
    assert_eq!(h.inventory, HashMap::from([("gold".to_owned(), 5)]));
    assert_eq!(h.home, Vec2::new(1.0, 2.0));
    assert_eq!(h.target, None);
}

#[test]
fn refused_writes_name_the_field_and_change_nothing() {
    let cases = [
        (
            "h.health = 'lots'",
            "Hero: bad value for field 'health': expected number, got string",
        ),
        ("h.level = -1", "Hero: bad value for field 'level'"),
        (
            "h.mode = 'Sleeping'",
            "expected one of \"Idle\", \"Chasing\", got \"Sleeping\"",
        ),
        ("h.stats = { strength = 1, speed = 2 }", "'speed'"),
        (
            "h.tags = { 'a', 5 }",
            "field 'tags[2]': expected string, got number",
        ),
        (
            "h.home = 5",
            "Hero: bad value for field 'home': expected Vec2, got number",
        ),
        ("h.nothing = 1", "Hero has no field 'nothing'"),
        ("h.shape = { kind = 'Hexagon' }", "Hexagon"),
    ];
    for (line, expected) in cases {
        let script =
            format!("{ONCE}function run()\n    local h = entity:get('Hero')\n    {line}\nend\n");
        let mut test = game(&[("scripts/bad.lua", &script)]);
        let before = Hero {
            health: 3.0,
            level: 2,
            tags: vec!["t".into()],
            ..default()
        };
        let e = test.spawn_script("scripts/bad.lua", before.clone());
        test.settle(1);
        test.app.world_mut().resource_mut::<HeroChanged>().0.clear();
        test.update();
        let errors = test.errors();
        assert_eq!(errors.len(), 1, "{line}: {errors:?}");
        assert!(
            errors[0].contains("scripts/bad.lua:9") && errors[0].contains(expected),
            "{line}: {}",
            errors[0]
        );
        assert_eq!(hero(&test, e), before, "{line} changed the value");
        assert_eq!(
            test.app.world().resource::<HeroChanged>().0,
            [false],
            "{line} marked Hero changed"
        );
    }
}

#[test]
fn only_writes_mark_a_reflected_component_changed() {
    let script = "function on_update()
    local h = entity:get('Hero')
    local _ = h.health + h.home.x + #h.tags
    if h.level == 0 and world.resource('Time') == nil then end
end
function poke() entity:get('Hero').health = 1 end";
    let mut test = game(&[("scripts/read.lua", script)]);
    let e = test.spawn_script("scripts/read.lua", Hero::default());
    test.settle(2);
    test.app.world_mut().resource_mut::<HeroChanged>().0.clear();
    test.update();
    test.update();
    assert_eq!(test.app.world().resource::<HeroChanged>().0, [false, false]);
    test.app
        .world_mut()
        .write_message(bevy_lunar::LuaCall::entity(
            e,
            "poke",
            bevy_lunar::ScriptValue::Nil,
        ));
    test.update();
    assert_eq!(
        test.app.world().resource::<HeroChanged>().0,
        [false, false, true]
    );
    let errors = test.errors();
    assert!(
        errors
            .iter()
            .all(|e| e.contains("no resource named 'Time'")),
        "{errors:?}"
    );
}

#[test]
fn a_reflected_resource_is_live() {
    let script = once(
        r#"
    local clear = world.resource("ClearColor")
    -- (A copy to compare: LuaJIT compares only values of one metatable.)
    assert(clear[1]:with_alpha(1) == Color.BLACK)
    clear[1] = Color.srgb(1, 0, 0)
    assert(world.resource("ClearColor")[1]:with_alpha(1) == Color.srgb(1, 0, 0))
"#,
    );
    let mut test = game(&[("scripts/c.lua", &script)]);
    test.spawn_script("scripts/c.lua", ());
    test.settle(2);
    assert_eq!(test.errors(), Vec::<String>::new());
    assert_eq!(
        test.app.world().resource::<ClearColor>().0,
        Color::srgb(1.0, 0.0, 0.0)
    );
}

#[test]
fn reflected_components_are_constructed_inserted_and_removed() {
    let script = once(
        r#"
    assert(not entity:has("Hero"))
    entity:insert(world.construct("Hero", { health = 50, mode = "Chasing" }))
    assert(entity:has("Hero") and entity:get("Hero").health == 50)
    assert(entity:remove("Visibility") and not entity:has("Visibility"))
    local other = world.spawn { world.construct("Name", "Spawned"), world.construct("Dead") }
    assert(other:get("Name"):get() == "Spawned" and other:has("Dead"))
    local ok, err = pcall(world.construct, "Hero", { health = "x" })
    assert(not ok and tostring(err):find("bad value for field 'health'"), tostring(err))
"#,
    );
    let mut test = game(&[("scripts/i.lua", &script)]);
    let e = test.spawn_script("scripts/i.lua", Visibility::Visible);
    test.settle(2);
    assert_eq!(test.errors(), Vec::<String>::new());
    let h = hero(&test, e);
    assert_eq!((h.health, h.mode), (50.0, Mode::Chasing));
    assert!(test.app.world().get::<Visibility>(e).is_none());
    let mut named = test.app.world_mut().query::<(&Name, &Dead)>();
    let names: Vec<String> = named
        .iter(test.app.world())
        .map(|(n, _)| n.as_str().to_owned())
        .collect();
    assert_eq!(names, ["Spawned"]);
}

#[test]
fn a_reference_to_a_removed_component_is_stale() {
    let script = "local kept
function on_update()
    if kept == nil then kept = entity:get('Hero') return end
    local _ = kept.health
end";
    let mut test = game(&[("scripts/s.lua", script)]);
    let e = test.spawn_script("scripts/s.lua", Hero::default());
    test.settle(2);
    assert_eq!(test.errors(), Vec::<String>::new());
    test.app.world_mut().entity_mut(e).remove::<Hero>();
    test.update();
    let errors = test.errors();
    assert!(
        errors.len() == 1
            && errors[0].contains("scripts/s.lua:4")
            && errors[0].contains("Hero of entity")
            && errors[0].contains("the component was removed"),
        "{errors:?}"
    );
}

#[test]
fn queries_filter_and_hand_out_components() {
    let script = "function on_update()
    local log = {}
    for e, h in world.query('Hero'):without('Dead'):each() do
        h.level = h.level + 1
        log[#log + 1] = e:get('Name'):get()
    end
    table.sort(log)
    local names = table.concat(log, ',')
    local changed = {}
    for e in world.query('Name'):changed('Hero') do changed[#changed + 1] = e:get('Name'):get() end
    table.sort(changed)
    local added = {}
    for e in world.query('Name'):added('Hero') do added[#added + 1] = e:get('Name'):get() end
    table.sort(added)
    local with = 0
    for e in world.query('Name'):with('Dead') do with = with + 1 end
    entity:get('Name'):set(names .. '|' .. table.concat(changed, ',') .. '|' .. table.concat(added, ',') .. '|' .. with)
end";
    let mut test = game(&[("scripts/q.lua", script)]);
    let me = test.spawn_script("scripts/q.lua", Name::new(""));
    test.settle(1);
    let a = test
        .app
        .world_mut()
        .spawn((Hero::default(), Name::new("a")))
        .id();
    test.app
        .world_mut()
        .spawn((Hero::default(), Name::new("b"), Dead));
    test.update();
    let report = |test: &TestApp| {
        test.app
            .world()
            .get::<Name>(me)
            .unwrap()
            .as_str()
            .to_owned()
    };
    // Both were added since the scripts' previous run (added counts as changed, as in Bevy).
    assert_eq!(report(&test), "a|a,b|a,b|1");
    test.update();
    // Only the script's own write, earlier in this run, changed `a`; nothing was added.
    assert_eq!(report(&test), "a|a||1");
    test.app.world_mut().entity_mut(a).insert(Dead);
    test.update();
    assert_eq!(report(&test), "|||2");
    assert_eq!(test.errors(), Vec::<String>::new());
    assert_eq!(hero(&test, a).level, 2);
}

#[test]
fn a_derived_registration_wins_over_a_reflected_one() {
    let script = once(
        r#"
    local t = entity:get("Transform")
    t:rotate_z(0)          -- a method of the derived binding
    t.translation.x = 3
"#,
    );
    let mut test = game(&[("scripts/d.lua", &script)]);
    test.app.register_lua_reflect::<Transform>();
    let e = test.spawn_script("scripts/d.lua", Transform::default());
    test.settle(2);
    assert_eq!(test.errors(), Vec::<String>::new());
    assert_eq!(
        test.app.world().get::<Transform>(e).unwrap().translation.x,
        3.0
    );
}

#[test]
fn definitions_describe_reflected_types() {
    let test = game(&[]);
    let defs = test.app.lua_definitions();
    for expected in [
        "---@class Hero",
        "---@field health number",
        "---@field level integer",
        "---@field home Vec2",
        "---@field mode Mode",
        "---@field target Vec2?",
        "---@field tags string[]",
        "---@alias Mode \"Idle\"|\"Chasing\"",
        "\"Hero\"",
        "\"Visibility\"",
    ] {
        assert!(defs.contains(expected), "missing {expected:?} in:\n{defs}");
    }
}

#[test]
fn lists_and_maps_grow_shrink_and_iterate() {
    let script = once(
        r#"
    local h = entity:get("Hero")
    h.tags:insert(1, "first")
    assert(h.tags:remove(3) == "b")
    assert(h.tags:pop() == "c")
    h.tags[#h.tags] = nil
    assert(#h.tags == 1 and h.tags[1] == "first")
    h.tags:clear()
    assert(#h.tags == 0)
    h.tags:push("x")
    h.inventory.gold = nil                 -- removes
    h.inventory.gems = 2
    local keys = {}
    for k, v in pairs(h.inventory) do keys[#keys + 1] = k .. v end
    assert(table.concat(keys) == "gems2", table.concat(keys))
    local ok, err = pcall(function() h.tags[5] = "far" end)
    assert(not ok and tostring(err):find("past the end"), tostring(err))
"#,
    );
    let mut test = game(&[("scripts/l.lua", &script)]);
    let e = test.spawn_script(
        "scripts/l.lua",
        Hero {
            tags: vec!["a".into(), "b".into(), "c".into()],
            inventory: HashMap::from([("gold".to_owned(), 1)]),
            ..default()
        },
    );
    test.settle(2);
    assert_eq!(test.errors(), Vec::<String>::new());
    let h = hero(&test, e);
    assert_eq!(h.tags, ["x"]);
    assert_eq!(h.inventory, HashMap::from([("gems".to_owned(), 2)]));
}

/// An immutable component: scripts read it, and a write is refused.
#[derive(Component, Reflect, Default)]
#[component(immutable)]
#[reflect(Component, Default)]
struct Badge {
    rank: u32,
}

#[test]
fn an_immutable_component_is_read_only() {
    let script = once(
        r#"
    local b = entity:get("Badge")
    assert(b.rank == 3)
    b.rank = 4
"#,
    );
    let mut test = game(&[("scripts/b.lua", &script)]);
    test.app.register_lua_reflect::<Badge>();
    let e = test.spawn_script("scripts/b.lua", Badge { rank: 3 });
    test.settle(2);
    let errors = test.errors();
    assert!(
        errors.len() == 1
            && errors[0].contains("scripts/b.lua:11")
            && errors[0].contains("Badge is an immutable component"),
        "{errors:?}"
    );
    assert_eq!(test.app.world().get::<Badge>(e).unwrap().rank, 3);
}

#[test]
fn reflect_all_exposes_every_reflected_component_and_resource() {
    let script = once(
        r#"
    assert(entity:get("Name"):get() == "n")
    entity:get("Hero").level = 7
    assert(world.resource("ClearColor") ~= nil)
"#,
    );
    let mut test = TestApp::with_plugin(
        &[("scripts/a.lua", &script)],
        LuaScriptingPlugin {
            reflect_all: true,
            ..default()
        },
        false,
    );
    // Registered with the type registry only (as Bevy's plugins register their types).
    test.app
        .register_type::<Hero>()
        .register_type::<Name>()
        .register_type::<ClearColor>()
        .insert_resource(ClearColor(Color::WHITE));
    let e = test.spawn_script("scripts/a.lua", (Name::new("n"), Hero::default()));
    test.settle(2);
    assert_eq!(test.errors(), Vec::<String>::new());
    assert_eq!(hero(&test, e).level, 7);
}

/// A recursive type: a table that contains itself is refused, not followed forever.
#[derive(Component, Reflect, Default, Debug, PartialEq)]
#[reflect(Component, Default)]
struct Tree {
    children: Vec<Tree>,
}

#[test]
fn a_table_that_contains_itself_is_refused() {
    let script = once(
        r#"
    local t = {}
    t.children = { t }
    entity:get("Tree").children = { t }
"#,
    );
    let mut test = game(&[("scripts/t.lua", &script)]);
    test.app.register_lua_reflect::<Tree>();
    let e = test.spawn_script("scripts/t.lua", Tree::default());
    test.settle(2);
    let errors = test.errors();
    assert!(
        errors.len() == 1 && errors[0].contains("a table that contains itself"),
        "{errors:?}"
    );
    assert_eq!(test.app.world().get::<Tree>(e), Some(&Tree::default()));
}

mod other {
    use bevy::prelude::*;

    /// Shares its short name with `super::Hero`.
    #[derive(Component, Reflect, Default)]
    #[reflect(Component, Default)]
    pub struct Hero {
        pub nickname: String,
    }
}

#[test]
fn of_two_reflected_types_with_one_name_the_first_is_exposed() {
    let script = once(
        r#"
    assert(entity:get("Hero").health == 2)
"#,
    );
    let mut test = game(&[("scripts/n.lua", &script)]);
    test.app.register_lua_reflect::<other::Hero>();
    test.spawn_script(
        "scripts/n.lua",
        (
            Hero {
                health: 2.0,
                ..default()
            },
            other::Hero::default(),
        ),
    );
    test.settle(2);
    assert_eq!(test.errors(), Vec::<String>::new());
}

#[test]
fn an_opaque_value_without_a_binding_only_prints() {
    let script = once(
        r#"
    local h = entity:get("Hero")
    assert(tostring(h.cooldown) == "1.5s", tostring(h.cooldown))
    h.cooldown = 2
"#,
    );
    let mut test = game(&[("scripts/o.lua", &script)]);
    let e = test.spawn_script(
        "scripts/o.lua",
        Hero {
            cooldown: std::time::Duration::from_millis(1500),
            ..default()
        },
    );
    test.settle(2);
    let errors = test.errors();
    assert!(
        errors.len() == 1
            && errors[0].contains("scripts/o.lua:11")
            && errors[0].contains("Hero: bad value for field 'cooldown': expected Duration (which scripts cannot set), got number"),
        "{errors:?}"
    );
    assert_eq!(hero(&test, e).cooldown.as_millis(), 1500);
}

/// A reflected component holding Bevy's `Sprite`, which has a derived binding.
#[derive(Component, Reflect, Default)]
#[reflect(Component, Default)]
struct Decal {
    sprite: Sprite,
    layer: i32,
}

#[test]
fn a_derived_type_inside_a_reflected_one_is_its_live_binding() {
    let script = once(
        r#"
    local d = entity:get("Decal")
    d.sprite.color = Color.srgb(0, 1, 0)   -- the derived Sprite's fields, written through
    d.sprite.flip_x = true
    d.sprite.custom_size = Vec2.new(4, 2)
    assert(d.sprite.custom_size.x == 4)
    d.layer = 3
"#,
    );
    let mut test = game(&[("scripts/s.lua", &script)]);
    test.app.register_lua_reflect::<Decal>();
    let e = test.spawn_script("scripts/s.lua", Decal::default());
    test.settle(2);
    assert_eq!(test.errors(), Vec::<String>::new());
    let decal = test.app.world().get::<Decal>(e).unwrap();
    assert_eq!(decal.sprite.color, Color::srgb(0.0, 1.0, 0.0));
    assert!(decal.sprite.flip_x);
    assert_eq!(decal.sprite.custom_size, Some(Vec2::new(4.0, 2.0)));
    assert_eq!(decal.layer, 3);
}

#[test]
fn a_reflected_component_removed_by_rust_is_gone_for_entity_get() {
    let script = "function on_update()
    local h = entity:get('Hero')
    entity:get('Name'):set(h and 'has' or 'none')
end";
    let mut test = game(&[("scripts/g.lua", script)]);
    let e = test.spawn_script("scripts/g.lua", (Hero::default(), Name::new("")));
    test.settle(2);
    assert_eq!(test.app.world().get::<Name>(e).unwrap().as_str(), "has");
    test.app.world_mut().entity_mut(e).remove::<Hero>();
    test.update();
    assert_eq!(test.app.world().get::<Name>(e).unwrap().as_str(), "none");
    assert_eq!(test.errors(), Vec::<String>::new());
}

#[test]
fn handles_of_queried_entities_are_kept_while_they_live() {
    let script = "function on_update()
    for e, h in world.query('Hero'):each() do h.level = h.level + 1 end
end";
    let mut test = game(&[("scripts/k.lua", script)]);
    test.spawn_script("scripts/k.lua", ());
    test.settle(1);
    let heroes: Vec<Entity> = (0..500)
        .map(|_| test.app.world_mut().spawn(Hero::default()).id())
        .collect();
    test.update();
    test.update();
    let handles = || test.app.world().resource::<LuaScriptStats>().entity_handles;
    // The script's own entity and the 500 heroes, kept from frame to frame.
    assert_eq!(handles(), 501);
    for hero in heroes {
        test.app.world_mut().despawn(hero);
    }
    for _ in 0..30 {
        test.update();
    }
    assert_eq!(
        test.app.world().resource::<LuaScriptStats>().entity_handles,
        1
    );
    assert_eq!(test.errors(), Vec::<String>::new());
}

#[test]
fn a_query_loop_sees_components_removed_while_it_runs() {
    // The first entity reached removes `Hero` from the others: the loop still reaches them
    // (the entities were found when it started) and hands out nil for the removed component,
    // as `entity:get` does, with one, two and three components asked for.
    let script = "function on_update()
    local report = {}
    for _, names in ipairs({ {'Hero'}, {'Hero', 'Name'}, {'Name', 'Hero', 'Name'} }) do
        local seen, first = {}, true
        -- every handle caches its reference first
        for e in world.query('Hero') do e:get('Hero'); e:get('Name') end
        for e, a, b, c in world.query(table.unpack(names)):each() do
            if first then
                first = false
                for other in world.query('Hero') do
                    if other ~= e then other:remove('Hero') end
                end
            end
            local hero = ({ a, b, c })[names[1] == 'Hero' and 1 or 2]
            seen[#seen + 1] = tostring(hero ~= nil)
        end
        report[#report + 1] = table.concat(seen, ',')
        for other in world.query('Name'):without('Hero') do
            if other ~= entity then other:insert(world.construct('Hero', {})) end
        end
    end
    entity:get('Name'):set(table.concat(report, '|'))
end";
    let mut test = game(&[("scripts/r.lua", script)]);
    let me = test.spawn_script("scripts/r.lua", Name::new(""));
    for name in ["a", "b", "c"] {
        test.app
            .world_mut()
            .spawn((Hero::default(), Name::new(name)));
    }
    test.settle(1);
    test.update();
    assert_eq!(test.errors(), Vec::<String>::new());
    assert_eq!(
        test.app.world().get::<Name>(me).unwrap().as_str(),
        "true,false,false|true,false,false|true,false,false"
    );
}
