//! Values that behave like Lua values: live references passed as arguments, collections,
//! enums and entities, on owned values and on live component references alike.

#[path = "common/app.rs"]
mod app;

use app::TestApp;
use bevy::prelude::*;
use bevy_lunar::mlua;
use bevy_lunar::prelude::*;

#[derive(LuaUserData, Clone, Debug, PartialEq)]
pub struct Part {
    pub hp: f64,
}

#[derive(Component, LuaUserData, Clone, Debug, PartialEq)]
#[lua_impl(PartialEq)]
pub struct Body {
    pub mass: f64,
    pub part: Part,
}

#[lua_methods]
impl Body {
    pub fn new(mass: f64) -> Self {
        Body {
            mass,
            part: Part { hp: 10.0 },
        }
    }

    /// `&T` argument.
    pub fn heavier_than(&self, other: &Body) -> bool {
        self.mass > other.mass
    }

    /// `&mut T` argument: takes the other's mass.
    pub fn absorb(&mut self, other: &mut Body) {
        self.mass += other.mass;
        other.mass = 0.0;
    }

    /// By-value argument.
    pub fn with_mass_of(&mut self, other: Body) -> f64 {
        self.mass = other.mass;
        self.mass
    }

    /// `&mut` argument of a nested type.
    pub fn repair(&mut self, part: &mut Part, amount: f64) {
        part.hp += amount;
        self.mass += 1.0;
    }

    /// Static function with two borrowed arguments.
    pub fn total(a: &Body, b: &Body) -> f64 {
        a.mass + b.mass
    }

    /// Calls back into Lua while `self` is borrowed.
    pub fn visit(&self, f: mlua::Function) -> mlua::Result<f64> {
        f.call::<f64>(self.mass)
    }

    /// Calls back into Lua while `self` is borrowed mutably.
    pub fn visit_mut(&mut self, f: mlua::Function) -> mlua::Result<f64> {
        f.call::<f64>(self.mass)
    }
}

/// `expect_error(f, text)` for the scripts: `f()` must fail with an error containing `text`.
const EXPECT_ERROR: &str = r#"
function expect_error(f, text)
    local ok, err = pcall(f)
    assert(not ok, "expected an error containing: " .. text)
    if not string.find(tostring(err), text, 1, true) then
        error("expected an error containing: " .. text .. "\n got: " .. tostring(err), 2)
    end
end
"#;

fn app(files: &[(&str, &str)]) -> TestApp {
    let mut test = TestApp::new(files);
    test.app.register_lua_component::<Body>();
    test
}

/// Runs `script` on an entity with a `Body` and a `Transform`, next to a second such entity
/// (found by [`FIND_OTHER`]); returns the errors and both bodies.
fn run(script: &str) -> (Vec<String>, Body, Body) {
    let source = format!("{EXPECT_ERROR}\n{script}");
    let mut test = app(&[("scripts/test.lua", &source)]);
    let other = test
        .app
        .world_mut()
        .spawn((Body::new(3.0), Transform::from_xyz(3.0, 4.0, 0.0)))
        .id();
    let me = test.spawn_script(
        "scripts/test.lua",
        (Body::new(5.0), Transform::from_xyz(0.0, 0.0, 0.0)),
    );
    test.settle(1);
    let world = test.app.world();
    // `LuaScriptStats` comes with the prelude.
    let stats: &LuaScriptStats = world.resource();
    assert_eq!(stats.instances, 1);
    assert!(stats.lua_memory > 0);
    (
        test.errors(),
        world.get::<Body>(me).unwrap().clone(),
        world.get::<Body>(other).unwrap().clone(),
    )
}

/// The script's `other` entity: the first entity with a Body that is not `entity`.
const FIND_OTHER: &str = r#"
    local other
    for e in world.query("Body") do
        if e ~= entity then other = e end
    end
"#;

#[test]
fn live_references_are_accepted_as_arguments() {
    let (errors, me, other) = run(&format!(
        r#"{FIND_OTHER}
        function on_start()
            local t, u = entity:get("Transform"), other:get("Transform")
            -- by value, between references of two entities and of one entity
            assert(t.translation:distance(u.translation) == 5)
            assert(u.translation:distance(u.translation) == 0)
            local v = t.translation:move_towards(u.translation, 1)
            assert(v.x == 0.6000000238418579 and v.y == 0.800000011920929, tostring(v))
            assert(Vec3.new(0, 0, 0):distance(u.translation) == 5)
            -- operators and comparisons between two references
            assert(tostring(t.translation + u.translation) == tostring(Vec3.new(3, 4, 0)))
            local a, b = entity:get("Body"), other:get("Body")
            assert(a ~= b and a == a and b == other:get("Body"))
            -- Lua 5.1 (LuaJIT) compares only operands sharing the metamethod
            if math.type then assert(b == Body.new(3)) end
            -- &T and static functions
            assert(a:heavier_than(b) and not b:heavier_than(a))
            assert(Body.total(a, b) == 8)
            assert(Body.total(a, Body.new(1)) == 6)
            -- &mut T: the argument's change reaches its component
            a:absorb(b)
            assert(a.mass == 8 and b.mass == 0)
            -- a nested field of another component, as &mut
            a:repair(b.part, 5)
            assert(b.part.hp == 15 and a.mass == 9)
            -- by value
            assert(b:with_mass_of(a) == 9)
        end
        "#
    ));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(me.mass, 9.0);
    assert_eq!(other.mass, 9.0);
    assert_eq!(other.part.hp, 15.0);
}

#[test]
fn owned_values_take_the_same_arguments() {
    let (errors, ..) = run(r#"
        function on_start()
            local a, b = Body.new(5), Body.new(3)
            assert(a:heavier_than(b) and Body.total(a, b) == 8)
            a:absorb(b)
            assert(a.mass == 8 and b.mass == 0)
            a:repair(b.part, 5)
            assert(b.part.hp == 15 and a.mass == 9)
            -- an owned value's method with a live reference, and the other way round
            local live = entity:get("Body")
            a:absorb(live)
            assert(a.mass == 14 and live.mass == 0)
            live:absorb(a)
            assert(live.mass == 14 and a.mass == 0)
        end
    "#);
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn aliasing_mut_arguments_are_refused_and_change_nothing() {
    let (errors, me, _) = run(r#"
        function on_start()
            local a = entity:get("Body")
            expect_error(function() a:absorb(a) end,
                "bad argument #2 to `Body.absorb`: this Body is self, or a part of self")
            expect_error(function() a:absorb(entity:get("Body")) end, "this Body is self")
            expect_error(function() a:repair(a.part, 1) end,
                "bad argument #2 to `Body.repair`: this Part is self, or a part of self")
            assert(a.mass == 5 and a.part.hp == 10)
            local owned = Body.new(2)
            expect_error(function() owned:absorb(owned) end,
                "bad argument #2 to `Body.absorb`: this Body is already in use by the call")
            expect_error(function() owned:repair(owned.part, 1) end, "Body.repair")
            assert(owned.mass == 2 and owned.part.hp == 10)
        end
    "#);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(me, Body::new(5.0));
}

#[test]
fn a_rust_method_calling_back_into_lua_is_named_when_the_world_is_out_of_reach() {
    let (errors, ..) = run(&format!(
        r#"{FIND_OTHER}
        function on_start()
            local a, b = entity:get("Body"), other:get("Body")
            -- reading is fine while a method reads
            assert(a:visit(function(mass) return mass + b.mass end) == 8)
            expect_error(function()
                a:visit(function(mass) b.mass = 1; return 0 end)
            end, "the Rust method `Body.visit`, which called back into Lua")
            assert(b.mass == 3)
            -- nor reading while a method holds its component mutably
            expect_error(function()
                a:visit_mut(function(mass) return b.mass end)
            end, "the Rust method `Body.visit_mut`, which called back into Lua")
            assert(b.mass == 3 and a.mass == 5)
        end
        "#
    ));
    assert!(errors.is_empty(), "{errors:?}");
}

/// A component with a collection field of every kind.
#[derive(Component, LuaUserData, Clone, Debug, PartialEq, Default)]
pub struct Inventory {
    pub items: Vec<String>,
    pub weights: Vec<f64>,
    pub queue: std::collections::VecDeque<i32>,
    pub slots: [u8; 3],
    pub stash: std::collections::HashMap<String, i64>,
    pub ordered: std::collections::BTreeMap<i64, String>,
    pub tags: std::collections::HashSet<String>,
    pub seen: std::collections::BTreeSet<i64>,
    pub party: Vec<Part>,
    pub grid: Vec<Vec<i32>>,
    pub best: Option<Part>,
    pub holes: Vec<Option<i32>>,
    pub by_name: std::collections::BTreeMap<String, Part>,
}

#[lua_methods]
impl Inventory {
    pub fn new() -> Self {
        Inventory::sample()
    }

    /// Collections as parameters and results convert by copy, strictly.
    pub fn replace_items(&mut self, items: Vec<String>) -> usize {
        self.items = items;
        self.items.len()
    }

    pub fn item_list(&self) -> Vec<String> {
        self.items.clone()
    }
}

impl Inventory {
    fn sample() -> Self {
        Inventory {
            items: vec!["bow".into(), "rope".into()],
            weights: vec![1.5, 2.5],
            queue: [1, 2].into(),
            slots: [0, 0, 7],
            stash: [("potion".to_owned(), 2)].into(),
            ordered: [(1, "one".to_owned()), (3, "three".to_owned())].into(),
            tags: ["boss".to_owned()].into(),
            seen: [5, 1].into(),
            party: vec![Part { hp: 1.0 }, Part { hp: 2.0 }],
            grid: vec![vec![1, 2], vec![3]],
            best: Some(Part { hp: 9.0 }),
            holes: vec![Some(1), None, Some(3)],
            by_name: [("ann".to_owned(), Part { hp: 4.0 })].into(),
        }
    }
}

/// Runs `checks` (Lua defining `check(inv)`) on an owned `Inventory.new()` and on the live
/// component of the script's entity; returns the errors and the component after.
fn run_on_both(checks: &str) -> (Vec<String>, Inventory) {
    let script = format!(
        r#"
        {EXPECT_ERROR}
        {checks}
        function on_start()
            check(Inventory.new(), "owned")
            check(entity:get("Inventory"), "live")
        end
        "#
    );
    let mut test = TestApp::new(&[("scripts/test.lua", &script)]);
    test.app
        .register_lua_component::<Inventory>()
        .register_lua_type::<Part>();
    let e = test.spawn_script("scripts/test.lua", Inventory::sample());
    test.settle(1);
    let inventory = test.app.world().get::<Inventory>(e).unwrap().clone();
    (test.errors(), inventory)
}

#[test]
fn lists_are_live_one_based_sequences() {
    let (errors, after) = run_on_both(
        r#"
        function check(inv)
            local items = inv.items
            assert(#items == 2 and items[1] == "bow" and items[2] == "rope")
            assert(items[0] == nil and items[3] == nil and items[-1] == nil)
            items[2] = "axe"
            assert(inv.items[2] == "axe", "a write through a kept view reaches the owner")
            inv.items[3] = "lamp"                       -- #t + 1 appends
            inv.items:push("sword")
            assert(#inv.items == 4 and inv.items[4] == "sword")
            inv.items:insert(1, "map")
            assert(inv.items:remove(2) == "bow")
            assert(inv.items:pop() == "sword")
            assert(inv.items:contains("lamp") and not inv.items:contains("bow"))
            local seen = {}
            for i, v in ipairs(inv.items) do seen[#seen + 1] = i .. "=" .. v end
            assert(table.concat(seen, ",") == "1=map,2=axe,3=lamp", table.concat(seen, ","))
            seen = {}
            for i, v in pairs(inv.items) do seen[#seen + 1] = i .. "=" .. v end
            assert(table.concat(seen, ",") == "1=map,2=axe,3=lamp")
            inv.items[#inv.items] = nil                 -- removes the last, as in Lua
            assert(#inv.items == 2)
            -- VecDeque, arrays, numbers
            inv.queue:push(3)
            assert(#inv.queue == 3 and inv.queue[3] == 3 and inv.queue:remove(1) == 1)
            inv.slots[1] = 4
            assert(inv.slots[1] == 4 and #inv.slots == 3)
            inv.weights[1] = inv.weights[1] + inv.weights[2]
            assert(inv.weights[1] == 4)
            -- lists of derived values and of lists write through
            inv.party[1].hp = 5
            inv.party:push(inv.party[2])
            assert(inv.party[1].hp == 5 and #inv.party == 3)
            inv.grid[1][2] = 20
            inv.grid[2]:push(4)
            assert(inv.grid[1][2] == 20 and #inv.grid[2] == 2)
            -- Option elements take nil
            assert(inv.holes[2] == nil and inv.holes[3] == 3 and #inv.holes == 3)
            inv.holes[3] = nil
            inv.holes[2] = 2
            assert(inv.holes[2] == 2 and inv.holes[3] == nil and #inv.holes == 3)
            -- whole writes copy, strictly
            inv.weights = { 1, 2.5 }
            assert(#inv.weights == 2 and inv.weights[2] == 2.5)
            inv.queue = inv.items and { 7 } or nil
            assert(inv.queue[1] == 7)
        end
        "#,
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(after.items, ["map", "axe"]);
    assert_eq!(after.slots, [4, 0, 7]);
    assert_eq!(after.party.len(), 3);
    assert_eq!(after.party[0].hp, 5.0);
    assert_eq!(after.grid, [vec![1, 20], vec![3, 4]]);
    assert_eq!(after.holes, [Some(1), Some(2), None]);
    assert_eq!(after.weights, [1.0, 2.5]);
    assert_eq!(after.queue, [7]);
}

#[test]
fn maps_and_sets_are_live_tables() {
    let (errors, after) = run_on_both(
        r#"
        function check(inv)
            assert(inv.stash.potion == 2 and inv.stash.elixir == nil and #inv.stash == 1)
            inv.stash.elixir = 1
            inv.stash["two words"] = 3
            inv.stash.potion = nil                      -- removes the key
            assert(inv.stash.potion == nil and #inv.stash == 2)
            assert(inv.stash:contains("elixir") and inv.stash:get("elixir") == 1)
            local keys = {}
            for k, v in pairs(inv.stash) do keys[#keys + 1] = k .. "=" .. v end
            assert(table.concat(keys, ",") == "elixir=1,two words=3", table.concat(keys, ","))
            assert(inv.ordered[3] == "three" and inv.ordered[2] == nil)
            inv.ordered[2] = "two"
            keys = {}
            for k, v in pairs(inv.ordered) do keys[#keys + 1] = k .. v end
            assert(table.concat(keys, ",") == "1one,2two,3three")
            -- derived values in a map write through
            inv.by_name.ann.hp = 40
            assert(inv.by_name.ann.hp == 40 and inv.by_name.bob == nil)
            -- sets: {[v] = true}
            assert(inv.tags.boss == true and inv.tags.minion == nil)
            inv.tags.flying = true
            inv.tags.boss = nil
            assert(inv.tags:contains("flying") and not inv.tags:contains("boss") and #inv.tags == 1)
            inv.seen[3] = true
            keys = {}
            for v, yes in pairs(inv.seen) do assert(yes == true); keys[#keys + 1] = v end
            assert(table.concat(keys, ",") == "1,3,5")
            -- whole writes
            inv.tags = { "a", "b" }
            assert(inv.tags.a and inv.tags.b and #inv.tags == 2)
            inv.tags = { c = true }
            assert(inv.tags.c and #inv.tags == 1)
            -- Option of a derived value: live when present
            inv.best.hp = 10
            assert(inv.best.hp == 10)
            inv.best = nil
            assert(inv.best == nil)
        end
        "#,
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(after.stash.get("elixir"), Some(&1));
    assert_eq!(after.stash.get("potion"), None);
    assert_eq!(after.by_name["ann"].hp, 40.0);
    assert_eq!(after.tags, ["c".to_owned()].into());
    assert_eq!(after.seen, [1, 3, 5].into());
    assert_eq!(after.best, None);
}

#[test]
fn collection_misuse_is_an_error_naming_the_place_and_changes_nothing() {
    let (errors, after) = run_on_both(
        r#"
        function check(inv)
            expect_error(function() inv.items[2] = 5 end,
                "Inventory: bad value for items[2]: expected string, got number")
            expect_error(function() inv.items:push(true) end,
                "Inventory: bad value for items[3]: expected string, got boolean")
            expect_error(function() inv.items = { "a", 2 } end,
                "Inventory: bad value for items[2]: expected string, got number")
            expect_error(function() inv.items = { "a", x = "b" } end,
                "Inventory: bad value for field 'items': expected string[], got a table with the key 'x'")
            expect_error(function() inv.items = "a" end,
                "Inventory: bad value for field 'items': expected string[], got string")
            expect_error(function() inv.items[5] = "far" end,
                "index 5 is out of range for items (length 2)")
            expect_error(function() inv.items[1] = nil end, "use items:remove(1)")
            expect_error(function() inv.items:insert(9, "x") end, "index 9 is out of range")
            expect_error(function() inv.items:remove(3) end, "index 3 is out of range")
            expect_error(function() return inv.items.size end,
                "items is a list: it has no field or method 'size'")
            expect_error(function() inv.slots:push(1) end,
                "slots has a fixed length of 3: it cannot grow or shrink")
            expect_error(function() inv.slots[1] = 300 end,
                "Inventory: bad value for slots[1]: expected an integer between 0 and 255, got 300")
            expect_error(function() inv.weights[1] = "heavy" end,
                "Inventory: bad value for weights[1]: expected number, got string")
            expect_error(function() inv.stash.potion = "x" end,
                "Inventory: bad value for stash.potion: expected an integer between")
            expect_error(function() inv.stash[1] = 1 end,
                "Inventory: bad key for stash: expected string, got number")
            expect_error(function() inv.stash = { potion = 1.5 } end,
                "Inventory: bad value for stash.potion: expected an integer")
            expect_error(function() inv.tags.x = 1 end, "can only be set to true (a member) or nil")
            expect_error(function() inv.grid[1][1] = "x" end,
                "Inventory: bad value for grid[1][1]: expected an integer")
            expect_error(function() inv.party[1].hp = "x" end,
                "Part: bad value for field 'hp': expected number, got string")
            expect_error(function() inv:replace_items({ 1 }) end,
                "bad argument #2 to `Inventory.replace_items`: [1]: expected string, got number")
            -- a kept element view whose element is gone
            local last = inv.party[2]
            inv.party:pop()
            expect_error(function() return last.hp end, "party[2]: no longer in the list")
            inv.party:push(inv.party[1])
        end
        "#,
    );
    assert!(errors.is_empty(), "{errors:?}");
    let mut expected = Inventory::sample();
    expected.party[1] = expected.party[0].clone();
    assert_eq!(after, expected, "refused writes change nothing");
}

#[test]
fn collections_as_parameters_and_results_are_copies() {
    let (errors, after) = run_on_both(
        r#"
        function check(inv, kind)
            local copy = inv:item_list()
            assert(type(copy) == "table" and #copy == 2)
            copy[1] = "changed"
            assert(inv.items[1] == "bow")
            if kind == "live" then
                assert(inv:replace_items(inv.items) == 2, "a live list converts to a parameter")
            else
                -- an owned value's `&mut self` method holds it: a view into it cannot be read
                expect_error(function() inv:replace_items(inv.items) end,
                    "got string[] that cannot be read (the Inventory it is part of is in use by a method call on it)")
            end
            local other = Inventory.new()
            assert(inv:replace_items(other.items) == 2, "a view of another value converts")
            assert(inv:replace_items({ "x", "y", "z" }) == 3)
            inv:replace_items({ "bow", "rope" })
        end
        "#,
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(after, Inventory::sample());
}

/// Entities as field, parameter and result types.
#[derive(Component, LuaUserData, Clone, Debug, PartialEq, Default)]
pub struct Hunter {
    pub target: Option<Entity>,
    pub pack: Vec<Entity>,
    pub threat: std::collections::HashMap<Entity, f64>,
}

#[lua_methods]
impl Hunter {
    pub fn first_of_pack(&self) -> Option<Entity> {
        self.pack.first().copied()
    }

    pub fn is_target(&self, entity: Entity) -> bool {
        self.target == Some(entity)
    }
}

#[test]
fn entities_are_values_scripts_hold_as_handles() {
    let mut test = TestApp::new(&[(
        "scripts/hunter.lua",
        &format!(
            "{EXPECT_ERROR}{}",
            r#"
        function on_start()
            local h = entity:get("Hunter")
            local prey = h.target
            assert(prey ~= nil and rawequal(prey, world.entity(prey:id())), "the same handle")
            assert(prey:get("Body").mass == 3, "a handle reaches the entity's components")
            assert(tostring(prey) == prey:id() and prey:id():match("^%d+v%d+$"))
            assert(h:is_target(prey) and not h:is_target(entity))
            h.pack:push(prey)
            h.pack:push(entity)
            assert(rawequal(h:first_of_pack(), prey) and rawequal(h.pack[2], entity))
            h.threat[prey] = 2.5
            assert(h.threat[prey] == 2.5 and h.threat[entity] == nil)
            h.target = entity
            expect_error(function() h.target = "nobody" end,
                "Hunter: bad value for field 'target': expected Entity or nil, got string")
            expect_error(function() h.pack:push(5) end,
                "Hunter: bad value for pack[3]: expected Entity, got number")
            local gone = world.spawn()
            h.pack:push(gone)
            gone:despawn()
            expect_error(function() return h.pack[3]:get("Body") end, "the entity was despawned")
            h.pack:pop()
        end
        "#
        ),
    )]);
    test.app
        .register_lua_component::<Hunter>()
        .register_lua_component::<Body>();
    let prey = test.app.world_mut().spawn(Body::new(3.0)).id();
    let hunter = test.spawn_script(
        "scripts/hunter.lua",
        Hunter {
            target: Some(prey),
            ..default()
        },
    );
    test.settle(1);
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    let h = test.app.world().get::<Hunter>(hunter).unwrap();
    assert_eq!(h.target, Some(hunter));
    assert_eq!(h.pack, [prey, hunter]);
    assert_eq!(h.threat.get(&prey), Some(&2.5));
}

#[test]
fn pairs_visits_the_exposed_fields_in_declaration_order() {
    let (errors, _) = run_on_both(
        r#"
        function check(inv)
            local names = {}
            for name, value in pairs(inv) do
                names[#names + 1] = name
                assert(rawequal(value, inv[name]) or type(value) == "userdata" or value == inv[name])
            end
            assert(table.concat(names, ",") ==
                "items,weights,queue,slots,stash,ordered,tags,seen,party,grid,best,holes,by_name",
                table.concat(names, ","))
            local part = inv.party[1]
            for name, value in pairs(part) do assert(name == "hp" and value == part.hp) end
        end
        "#,
    );
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn table_insert_and_remove_work_on_live_lists_and_name_the_method_elsewhere() {
    let (errors, after) = run_on_both(
        r#"
        function check(inv)
            table.insert(inv.items, "sword")
            table.insert(inv.items, 1, "map")
            assert(#inv.items == 4 and inv.items[1] == "map" and inv.items[4] == "sword")
            assert(table.remove(inv.items) == "sword")
            assert(table.remove(inv.items, 1) == "map")
            expect_error(function() table.insert(inv.stash, 1) end,
                "table.insert does not work on stash (a map): use stash:insert(key, value)")
            expect_error(function() table.remove(inv.tags) end,
                "table.remove does not work on tags (a set): use tags:insert(value)")
            expect_error(function() table.insert(inv.items, 9, "x") end, "index 9 is out of range")
            -- sort, concat and unpack work on a copy; sort writes it back
            inv.weights = { 3, 1, 2 }
            table.sort(inv.weights)
            assert(inv.weights[1] == 1 and inv.weights[3] == 3)
            table.sort(inv.weights, function(a, b) return a > b end)
            assert(inv.weights[1] == 3 and inv.weights[3] == 1)
            assert(table.concat(inv.items, ",") == "bow,rope")
            local a, b = (table.unpack or unpack)(inv.items)
            assert(a == "bow" and b == "rope")
            inv.weights = { 1.5, 2.5 }
            expect_error(function() table.sort(inv.stash) end,
                "table.sort does not work on stash (a map)")
            local plain = { 1 }
            table.insert(plain, 2)
            assert(#plain == 2 and table.remove(plain, 1) == 1, "tables are Lua's own")
        end
        "#,
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(after, Inventory::sample());
}

/// A unit-only enum: a string in Lua.
#[derive(LuaUserData, Clone, Copy, Debug, PartialEq, Default)]
pub enum Team {
    #[default]
    Red,
    Blue,
    #[lua(name = "Green")]
    Verdant,
    #[lua(skip)]
    Hidden,
}

/// An enum with data: a userdata with `kind` and the variant's fields.
#[derive(Component, LuaUserData, Clone, Debug, PartialEq, Default)]
pub enum State {
    #[default]
    Idle,
    Chasing {
        target: Entity,
        speed: f64,
    },
    Fleeing {
        target: Entity,
        #[lua(readonly)]
        panic: u8,
    },
    Hit(f64),
    #[lua(skip)]
    Secret {
        code: u32,
    },
}

#[lua_methods]
impl State {
    pub fn is_busy(&self) -> bool {
        !matches!(self, State::Idle)
    }

    pub fn calm_down(&mut self) {
        if let State::Chasing { speed, .. } = self {
            *speed /= 2.0;
        }
    }
}

#[derive(Component, LuaUserData, Clone, Debug, PartialEq, Default)]
pub struct Unit {
    pub team: Team,
    pub state: State,
    pub history: Vec<Team>,
}

#[lua_methods]
impl Unit {
    pub fn new() -> Self {
        Unit::default()
    }

    pub fn join(&mut self, team: Team) -> Team {
        std::mem::replace(&mut self.team, team)
    }
}

#[test]
fn enums_are_strings_or_userdata_with_a_kind() {
    let script = r#"
        function check(u)
            -- unit-only enums are strings
            assert(u.team == "Red" and Team.Red == "Red" and Team.Green == "Green")
            assert(Team.Hidden == nil and Team.Verdant == nil)
            u.team = "Blue"
            assert(u.team == Team.Blue)
            expect_error(function() u.team = "Purple" end,
                [[Unit: bad value for field 'team': expected one of "Red", "Blue", "Green", got "Purple"]])
            expect_error(function() u.team = "Hidden" end, [[got "Hidden"]])
            expect_error(function() u.team = 1 end, [[expected one of "Red", "Blue", "Green", got number]])
            assert(u:join("Green") == "Blue" and u.team == "Green")
            expect_error(function() u:join("Pink") end, "bad argument #2 to `Unit.join`")
            u.history:push("Red")
            expect_error(function() u.history:push("Pink") end, "Unit: bad value for history[2]")
            assert(u.history[1] == "Red" and #u.history == 1)
            -- enums with data
            assert(u.state.kind == "Idle" and not u.state:is_busy())
            u.state = State.Chasing { target = entity, speed = 2 }
            assert(u.state.kind == "Chasing" and u.state.speed == 2 and rawequal(u.state.target, entity))
            u.state.speed = 3
            local state = u.state
            state:calm_down()
            assert(u.state.speed == 1.5 and u.state:is_busy(), "fields and methods write through")
            local names = {}
            for name, value in pairs(u.state) do names[#names + 1] = name end
            assert(table.concat(names, ",") == "kind,target,speed", table.concat(names, ","))
            expect_error(function() return u.state.panic end,
                "State: field 'panic' belongs to Fleeing, but this State is Chasing")
            expect_error(function() u.state.panic = 1 end, "field 'panic' is read-only")
            expect_error(function() return State.Chasing { target = entity, sped = 1 } end,
                "State.Chasing has no field 'sped' (its fields: target, speed)")
            expect_error(function() return State.Chasing { speed = 1 } end,
                "State.Chasing: bad value for field 'target': expected Entity, got nil")
            expect_error(function() return State.Chasing(5) end, "expected a table of fields")
            u.state = State.Fleeing { target = entity, panic = 2 }
            assert(u.state.panic == 2 and u.state.target == entity)
            expect_error(function() return u.state.speed end,
                "State: field 'speed' belongs to Chasing, but this State is Fleeing")
            u.state = State.Hit(5)
            assert(u.state.kind == "Hit" and u.state[1] == 5)
            u.state[1] = 6
            assert(u.state[1] == 6)
            expect_error(function() return State.Hit("x") end, "bad argument #1 to `State.Hit`")
            u.state.kind = "Idle"                       -- a variant without fields
            assert(u.state.kind == "Idle")
            expect_error(function() u.state.kind = "Chasing" end,
                [[State: cannot set kind to "Chasing": that variant has fields]])
            expect_error(function() u.state.kind = "Asleep" end,
                [[State: bad value for field 'kind': expected one of "Idle", "Chasing", "Fleeing", "Hit", got "Asleep"]])
            assert(not rawequal(State.Idle, State.Idle), "each read of State.Idle is a new value")
            expect_error(function() u.state = "Idle" end, "Unit: bad value for field 'state': expected State, got string")
            assert(tostring(State.Idle) == "State.Idle" and tostring(u.state) == "State.Idle")
            u.state = State.Chasing { target = entity, speed = 8 }
        end
        function on_start()
            check(Unit.new())
            check(entity:get("Unit"))
            -- an enum as a component
            local s = entity:get("State")
            assert(s.kind == "Hit" and s[1] == 1)
            s.kind = "Idle"
        end
    "#;
    let script = format!("{EXPECT_ERROR}{script}");
    let mut test = TestApp::new(&[("scripts/test.lua", &script)]);
    test.app
        .register_lua_component::<Unit>()
        .register_lua_component::<State>()
        .register_lua_type::<Team>();
    let e = test.spawn_script("scripts/test.lua", (Unit::default(), State::Hit(1.0)));
    test.settle(1);
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    let world = test.app.world();
    let unit = world.get::<Unit>(e).unwrap();
    assert_eq!(unit.team, Team::Verdant);
    assert_eq!(unit.history, [Team::Red]);
    assert_eq!(
        unit.state,
        State::Chasing {
            target: e,
            speed: 8.0
        }
    );
    assert_eq!(world.get::<State>(e), Some(&State::Idle));
}

/// Bevy's own hash collections, and `Option` of a collection.
#[derive(Component, LuaUserData, Clone, Debug, Default)]
pub struct Ledger {
    pub debts: bevy::platform::collections::HashMap<String, f64>,
    pub seen: bevy::platform::collections::HashSet<Entity>,
    pub pending: Option<Vec<i32>>,
    pub path: Vec<Vec3>,
}

#[test]
fn bevy_collections_and_optional_collections_are_live() {
    let mut test = TestApp::new(&[(
        "scripts/ledger.lua",
        r#"
        function on_start()
            local l = entity:get("Ledger")
            l.debts.ann = 2.5
            l.debts.bob = 1
            assert(#l.debts == 2 and l.debts.ann == 2.5)
            l.seen[entity] = true
            assert(l.seen[entity] == true and #l.seen == 1)
            assert(l.pending == nil)
            l.pending = { 1, 2 }
            l.pending:push(3)
            assert(#l.pending == 3 and l.pending[3] == 3)
            -- elements of Bevy's own types are live too
            l.path:push(Vec3.new(1, 2, 3))
            l.path[1].x = 5
            assert(l.path[1].x == 5 and l.path[1]:length() > 5)
            local ok, err = pcall(function() l.pending[1] = "x" end)
            assert(not ok and tostring(err):find("Ledger: bad value for pending[1]: expected an integer", 1, true), tostring(err))
        end
        "#,
    )]);
    test.app.register_lua_component::<Ledger>();
    let e = test.spawn_script("scripts/ledger.lua", Ledger::default());
    test.settle(1);
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    let ledger = test.app.world().get::<Ledger>(e).unwrap();
    assert_eq!(ledger.debts.get("ann"), Some(&2.5));
    assert!(ledger.seen.contains(&e));
    assert_eq!(ledger.pending, Some(vec![1, 2, 3]));
    assert_eq!(ledger.path, [Vec3::new(5.0, 2.0, 3.0)]);
}

#[derive(Resource, Default)]
struct ChangedInventories(usize);

fn count_changed(mut changed: ResMut<ChangedInventories>, query: Query<(), Changed<Inventory>>) {
    changed.0 += query.iter().count();
}

#[test]
fn collection_reads_and_refused_writes_mark_nothing_changed() {
    let mut test = TestApp::new(&[
        (
            "scripts/read.lua",
            r#"
            function on_update()
                local inv = entity:get("Inventory")
                local n = #inv.items + #inv.stash
                for i, v in ipairs(inv.items) do n = n + #v end
                for k, v in pairs(inv.stash) do n = n + v end
                pcall(function() inv.items[9] = "far" end)       -- refused: out of range
                pcall(function() inv.items[1] = nil end)         -- refused: a hole
                pcall(function() inv.items[1] = 5 end)           -- refused: a number
                pcall(function() inv.slots:push(1) end)          -- refused: fixed length
            end
            "#,
        ),
        (
            "scripts/write.lua",
            "function on_update() entity:get('Inventory').items[1] = 'axe' end",
        ),
    ]);
    test.app
        .register_lua_component::<Inventory>()
        .register_lua_type::<Part>()
        .init_resource::<ChangedInventories>()
        .add_systems(Update, count_changed.after(LuaScriptSet));
    let reader = test.spawn_script("scripts/read.lua", Inventory::sample());
    test.spawn_script("scripts/write.lua", Inventory::sample());
    test.settle(1);
    test.app.world_mut().resource_mut::<ChangedInventories>().0 = 0;
    for _ in 0..5 {
        test.update();
    }
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    assert_eq!(
        test.app.world().resource::<ChangedInventories>().0,
        5,
        "only the writer, once a frame"
    );
    assert_eq!(
        test.app.world().get::<Inventory>(reader),
        Some(&Inventory::sample())
    );
}

/// `#[lua_impl]` on enums: comparisons and `tostring` through Rust's traits.
#[derive(Component, LuaUserData, Clone, Debug, PartialEq)]
#[lua_impl(PartialEq, Display)]
pub enum Shape {
    Dot,
    Circle { radius: f64 },
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shape::Dot => f.write_str("dot"),
            Shape::Circle { radius } => write!(f, "circle of {radius}"),
        }
    }
}

#[derive(LuaUserData, Clone, Copy, Debug, PartialEq)]
#[lua_impl(PartialEq, Display)]
pub enum Light {
    On,
    Off,
}

impl std::fmt::Display for Light {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if *self == Light::On { "on" } else { "off" })
    }
}

#[lua_methods]
impl Light {
    pub fn flipped(light: Light) -> Light {
        match light {
            Light::On => Light::Off,
            Light::Off => Light::On,
        }
    }
}

#[test]
fn lua_impl_and_static_functions_work_on_enums() {
    let mut test = TestApp::new(&[(
        "scripts/shape.lua",
        r#"
        function on_start()
            local s = entity:get("Shape")
            assert(tostring(s) == "circle of 2", tostring(s))
            assert(s == Shape.Circle { radius = 2 } or not math.type, "equal by value")
            assert(Shape.Dot == Shape.Dot and Shape.Dot ~= Shape.Circle { radius = 1 })
            assert(tostring(Shape.Dot) == "dot")
            assert(Light.flipped("On") == "Off" and Light.flipped(Light.Off) == "On")
            s.radius = 3
        end
        "#,
    )]);
    test.app
        .register_lua_component::<Shape>()
        .register_lua_type::<Light>();
    let e = test.spawn_script("scripts/shape.lua", Shape::Circle { radius: 2.0 });
    test.settle(1);
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    assert_eq!(
        test.app.world().get::<Shape>(e),
        Some(&Shape::Circle { radius: 3.0 })
    );
}
