//! Bevy's math types, `Transform` and `Color` in scripts: described with the remote derive,
//! registered by the plugin.

#[path = "common/app.rs"]
mod app;
mod common;

use app::TestApp;
use bevy::prelude::*;
use bevy_lunar::mlua::Lua;
use common::{error_of, eval, run};

fn lua() -> Lua {
    let lua = Lua::new();
    bevy_lunar::register_type::<Vec2>(&lua).unwrap();
    bevy_lunar::register_type::<Vec3>(&lua).unwrap();
    bevy_lunar::register_type::<Quat>(&lua).unwrap();
    bevy_lunar::register_type::<Transform>(&lua).unwrap();
    bevy_lunar::register_type::<Color>(&lua).unwrap();
    lua
}

#[test]
fn vectors_have_constructors_constants_fields_and_methods() {
    let lua = lua();
    run(
        &lua,
        r#"
        local v = Vec3.new(1, 2, 3)
        assert(v.x == 1 and v.y == 2 and v.z == 3)
        v.y = 5
        assert(v.y == 5)
        assert(Vec3.ZERO == Vec3.new(0, 0, 0) and Vec3.ONE == Vec3.splat(1))
        assert(Vec3.X:cross(Vec3.Y) == Vec3.Z)
        assert(Vec3.new(3, 4, 0):length() == 5)
        assert(Vec3.new(0, 0, 9):normalize() == Vec3.Z)
        assert(Vec3.ZERO:distance(Vec3.new(0, 3, 4)) == 5)
        assert(Vec3.X:dot(Vec3.Y) == 0)
        assert(Vec3.ZERO:lerp(Vec3.new(2, 4, 6), 0.5) == Vec3.new(1, 2, 3))
        assert(Vec3.new(1, 2, 3):truncate() == Vec2.new(1, 2))
        assert(Vec2.new(1, 2):extend(3) == Vec3.new(1, 2, 3))
        local r = Vec2.X:rotate(Vec2.from_angle(math.pi / 2))
        assert(math.abs(r.x) < 1e-6 and math.abs(r.y - 1) < 1e-6)
        assert(math.abs(Vec2.Y:to_angle() - math.pi / 2) < 1e-6)
        "#,
    );
}

#[test]
fn vector_operators_work_with_scalars_on_either_side() {
    let lua = lua();
    run(
        &lua,
        r#"
        local a, b = Vec2.new(1, 2), Vec2.new(3, 5)
        assert(a + b == Vec2.new(4, 7))
        assert(b - a == Vec2.new(2, 3))
        assert(-a == Vec2.new(-1, -2))
        assert(a * 2 == Vec2.new(2, 4) and 2 * a == Vec2.new(2, 4))
        assert(a * b == Vec2.new(3, 10), "component-wise")
        assert(b / 2 == Vec2.new(1.5, 2.5))
        assert(10 / Vec2.new(2, 5) == Vec2.new(5, 2), "scalar / vector is component-wise")
        assert(Vec3.new(1, 2, 3) * 2 == 2 * Vec3.new(1, 2, 3))
        assert(6 / Vec3.new(1, 2, 3) == Vec3.new(6, 3, 2))
        assert(tostring(Vec3.new(1, 2, 3)) == "[1, 2, 3]")
        assert(tostring(Vec2.new(0.5, -1)) == "[0.5, -1]")
        assert(Vec2.new(1, 2) ~= Vec2.new(2, 1))
        assert(Vec2.new(1, 2) ~= "not a vector")
        "#,
    );
    assert_eq!(
        error_of(&lua, "return Vec2.new(1, 2) + 1"),
        "Vec2: unsupported operands for '+': Vec2 and 1"
    );
    assert_eq!(
        error_of(&lua, "return Vec3.new(1, 2, 3) * Vec2.new(1, 2)"),
        "Vec3: unsupported operands for '*': Vec3 and Vec2"
    );
    assert_eq!(
        error_of(&lua, "return Vec3.new(1, 'two', 3)"),
        "bad argument #2 to `Vec3.new`: expected number, got string"
    );
}

#[test]
fn quaternions_rotate_vectors() {
    let lua = lua();
    let (x, y): (f32, f32) = eval(
        &lua,
        r#"
        local q = Quat.from_rotation_z(math.pi / 2)
        local v = q * Vec3.X
        assert(q:mul_vec3(Vec3.X) == v)
        assert(q:inverse() * v ~= v)
        assert(Quat.IDENTITY * Vec3.Y == Vec3.Y)
        return v.x, v.y
        "#,
    );
    assert!(x.abs() < 1e-6 && (y - 1.0).abs() < 1e-6, "({x}, {y})");
    assert_eq!(
        error_of(&lua, "local q = Quat.IDENTITY; q.w = 2"),
        "Quat: field 'w' is read-only"
    );
}

#[test]
fn transforms_and_colors_are_built_as_in_rust() {
    let lua = lua();
    let transform: Transform = {
        let value: bevy_lunar::mlua::AnyUserData = eval(
            &lua,
            r#"
            local t = Transform.from_xyz(1, 2, 3):with_scale(Vec3.splat(2))
            t.translation.x = 10 -- nested fields write through
            t:rotate_z(math.pi)
            assert((t * Vec3.ZERO):distance(t.translation) == 0)
            return t
            "#,
        );
        *value.borrow::<Transform>().unwrap()
    };
    assert_eq!(transform.translation, Vec3::new(10.0, 2.0, 3.0));
    assert_eq!(transform.scale, Vec3::splat(2.0));
    assert!((transform.rotation.z.abs() - 1.0).abs() < 1e-6);

    let color: bevy_lunar::mlua::AnyUserData =
        eval(&lua, "return Color.hex('#ff0000'):with_alpha(0.5)");
    assert_eq!(
        *color.borrow::<Color>().unwrap(),
        Color::srgba(1.0, 0.0, 0.0, 0.5)
    );
    run(
        &lua,
        "assert(Color.srgb(1, 0, 0) == Color.srgb_u8(255, 0, 0) and Color.WHITE ~= Color.BLACK)",
    );
    assert_eq!(
        error_of(&lua, "return Color.hex('nope')"),
        "Color.hex(\"nope\"): Invalid hex string"
    );
}

#[test]
fn scripts_move_entities_through_their_transform() {
    let mut test = TestApp::new(&[(
        "scripts/mover.lua",
        r#"
        function on_update(dt)
            local t = entity:get("Transform")
            t.translation.x = t.translation.x + 1
            t.translation = t.translation + Vec3.new(0, 2, 0)
            t:rotate_z(0.5)
        end
        "#,
    )]);
    let e = test.spawn_script("scripts/mover.lua", Transform::from_xyz(5.0, 0.0, 0.0));
    test.settle(0);
    let before = *test.app.world().get::<Transform>(e).unwrap();
    test.app.update();
    test.app.update();
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    let after = test.app.world().get::<Transform>(e).unwrap();
    assert_eq!(
        after.translation,
        before.translation + Vec3::new(2.0, 4.0, 0.0)
    );
    let turned = Quat::from_rotation_z(1.0) * before.rotation;
    assert!(after.rotation.abs_diff_eq(turned, 1e-5));
}
