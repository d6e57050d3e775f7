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
}

fn app(files: &[(&str, &str)]) -> TestApp {
    let mut test = TestApp::new(files);
    test.app.register_lua_component::<Body>();
    test
}

/// Runs `script` on an entity with a `Body` and a `Transform`, next to a second such entity
/// (found by [`FIND_OTHER`]); returns the errors and both bodies.
fn run(script: &str) -> (Vec<String>, Body, Body) {
    let prelude = r#"
        function expect_error(f, text)
            local ok, err = pcall(f)
            assert(not ok, "expected an error containing: " .. text)
            if not string.find(tostring(err), text, 1, true) then
                error("expected an error containing: " .. text .. "\n got: " .. tostring(err), 2)
            end
        end
    "#;
    let source = format!("{prelude}\n{script}");
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
            assert(a ~= b and a == a and b == Body.new(3))
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
        end
        "#
    ));
    assert!(errors.is_empty(), "{errors:?}");
}
