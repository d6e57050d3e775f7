//! Fields of derived types are live references: writes through them reach the owner.

mod common;

use bevy_lunar::mlua::{AnyUserData, Lua};
use bevy_lunar::prelude::*;
use common::{error_of, eval, run};

#[derive(LuaUserData, Clone, Debug, PartialEq)]
#[lua_impl(Display, PartialEq, Add)]
pub struct Vec2 {
    pub x: f64,
    pub y: f64,
}

impl std::fmt::Display for Vec2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}, {})", self.x, self.y)
    }
}

impl std::ops::Add for Vec2 {
    type Output = Vec2;
    fn add(self, rhs: Vec2) -> Vec2 {
        Vec2 {
            x: self.x + rhs.x,
            y: self.y + rhs.y,
        }
    }
}

#[lua_methods]
impl Vec2 {
    pub fn new(x: f64, y: f64) -> Self {
        Vec2 { x, y }
    }

    pub fn scale(&mut self, k: f64) {
        self.x *= k;
        self.y *= k;
    }

    pub fn length(&self) -> f64 {
        self.x.hypot(self.y)
    }
}

#[derive(LuaUserData, Clone, Debug, PartialEq)]
pub struct Body {
    pub pos: Vec2,
    pub vel: Vec2,
    #[lua(readonly)]
    pub anchor: Vec2,
}

#[derive(LuaUserData, Debug)]
pub struct Ship {
    pub name: String,
    pub body: Body,
}

fn ship() -> Ship {
    let v = |x, y| Vec2 { x, y };
    Ship {
        name: "Rocinante".into(),
        body: Body {
            pos: v(1.0, 2.0),
            vel: v(0.0, 0.0),
            anchor: v(9.0, 9.0),
        },
    }
}

fn setup() -> Lua {
    let lua = Lua::new();
    bevy_lunar::register_type::<Vec2>(&lua).unwrap();
    lua.globals().set("ship", ship()).unwrap();
    lua
}

fn with_ship<R>(lua: &Lua, f: impl FnOnce(&Ship) -> R) -> R {
    let ship: AnyUserData = lua.globals().get("ship").unwrap();
    f(&ship.borrow::<Ship>().unwrap())
}

#[test]
fn nested_field_writes_reach_the_owner() {
    let lua = setup();
    run(&lua, "ship.body.pos.x = 5; ship.body.vel.y = -1");
    with_ship(&lua, |s| {
        assert_eq!(s.body.pos, Vec2 { x: 5.0, y: 2.0 });
        assert_eq!(s.body.vel.y, -1.0);
    });
}

#[test]
fn references_kept_in_locals_stay_live_both_ways() {
    let lua = setup();
    run(&lua, "pos = ship.body.pos; pos.y = 7");
    with_ship(&lua, |s| assert_eq!(s.body.pos.y, 7.0));
    {
        let ship: AnyUserData = lua.globals().get("ship").unwrap();
        ship.borrow_mut::<Ship>().unwrap().body.pos.x = 42.0;
    }
    assert_eq!(
        eval::<f64>(&lua, "return pos.x"),
        42.0,
        "Rust-side change visible through the reference"
    );
}

#[test]
fn methods_operators_and_tostring_work_on_references() {
    let lua = setup();
    run(
        &lua,
        r#"
        local pos = ship.body.pos
        pos:scale(2)
        assert(tostring(pos) == "(2, 4)", tostring(pos))
        assert(pos:length() == math.sqrt(20))
        assert(pos == ship.body.pos)
        local sum = pos + ship.body.vel
        assert(sum.x == 2)
        sum.x = 100 -- a new value, not a reference
        assert(ship.body.pos.x == 2)
        "#,
    );
    with_ship(&lua, |s| assert_eq!(s.body.pos, Vec2 { x: 2.0, y: 4.0 }));
}

// Lua 5.1 and LuaJIT only call __eq when both operands share the same metamethod, which an
// owned value and a reference do not.
#[cfg(feature = "lua54")]
#[test]
fn references_compare_equal_to_owned_values() {
    let lua = setup();
    run(
        &lua,
        "assert(ship.body.pos == Vec2.new(1, 2) and Vec2.new(1, 2) == ship.body.pos)",
    );
}

#[test]
fn assigning_a_nested_field_copies_the_value() {
    let lua = setup();
    run(
        &lua,
        r#"
        ship.body.vel = Vec2.new(3, 4)
        ship.body.vel = ship.body.pos -- from a reference into the same owner
        ship.body.pos.x = 10          -- vel is a copy, unaffected
        "#,
    );
    with_ship(&lua, |s| {
        assert_eq!(s.body.vel, Vec2 { x: 1.0, y: 2.0 });
        assert_eq!(s.body.pos.x, 10.0);
    });
    let other = Ship {
        name: "Canterbury".into(),
        ..ship()
    };
    lua.globals().set("other", other).unwrap();
    run(&lua, "other.body = ship.body; other.body.pos.x = -1");
    with_ship(&lua, |s| assert_eq!(s.body.pos.x, 10.0));
}

#[test]
fn refused_nested_writes_change_nothing() {
    let lua = setup();
    assert_eq!(
        error_of(&lua, "ship.body.pos.x = 'far'"),
        "Vec2: bad value for field 'x': expected number, got string"
    );
    assert_eq!(
        error_of(&lua, "ship.body.pos = 5"),
        "Body: bad value for field 'pos': expected Vec2, got number"
    );
    assert_eq!(
        error_of(&lua, "ship.body.anchor = Vec2.new(0, 0)"),
        "Body: field 'anchor' is read-only"
    );
    assert_eq!(
        error_of(&lua, "return ship.body.pos.z"),
        "Vec2 has no field or method 'z'"
    );
    assert_eq!(
        error_of(&lua, "ship.body.pos.z = 1"),
        "Vec2 has no field 'z'"
    );
    with_ship(&lua, |s| assert_eq!(s.body.pos, Vec2 { x: 1.0, y: 2.0 }));
    // A readonly nested field can still be read (and mutated in place: readonly guards the
    // field's assignment, as for any other field).
    assert_eq!(eval::<f64>(&lua, "return ship.body.anchor.x"), 9.0);
}

#[test]
fn a_reference_outliving_its_owner_value_errors_instead_of_dangling() {
    let lua = setup();
    run(&lua, "pos = ship.body.pos");
    let ship: AnyUserData = lua.globals().get("ship").unwrap();
    let taken = ship.take::<Ship>().unwrap();
    assert_eq!(taken.name, "Rocinante");
    let err = error_of(&lua, "return pos.x");
    assert!(err.contains("destructed"), "{err}");
}

#[test]
fn derived_values_passed_by_value_are_copied_out_of_references() {
    let lua = setup();
    lua.globals().set("body", ship().body).unwrap();
    run(&lua, "local p = body.pos; body.vel = p; p.x = 50");
    let body: AnyUserData = lua.globals().get("body").unwrap();
    let body = body.borrow::<Body>().unwrap();
    assert_eq!(body.vel, Vec2 { x: 1.0, y: 2.0 });
    assert_eq!(body.pos.x, 50.0);
}
