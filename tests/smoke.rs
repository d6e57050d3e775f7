use bevy_lunar::mlua::{Lua, Variadic};
use bevy_lunar::prelude::*;

#[derive(LuaUserData, Clone, PartialEq, PartialOrd, Debug)]
#[lua_impl(Display, PartialEq, PartialOrd, Add, Sub, Mul<f64>, Neg)]
pub struct Vec2 {
    pub x: f64,
    pub y: f64,
}

impl std::fmt::Display for Vec2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vec2({}, {})", self.x, self.y)
    }
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
impl std::ops::Sub for Vec2 {
    type Output = Vec2;
    fn sub(self, o: Vec2) -> Vec2 {
        Vec2 {
            x: self.x - o.x,
            y: self.y - o.y,
        }
    }
}
impl std::ops::Mul<f64> for Vec2 {
    type Output = Vec2;
    fn mul(self, k: f64) -> Vec2 {
        Vec2 {
            x: self.x * k,
            y: self.y * k,
        }
    }
}
impl std::ops::Neg for Vec2 {
    type Output = Vec2;
    fn neg(self) -> Vec2 {
        Vec2 {
            x: -self.x,
            y: -self.y,
        }
    }
}

#[lua_methods]
impl Vec2 {
    pub fn new(x: f64, y: f64) -> Self {
        Vec2 { x, y }
    }
    pub fn length(&self) -> f64 {
        (self.x * self.x + self.y * self.y).sqrt()
    }
    pub fn scale(&mut self, k: f64) {
        self.x *= k;
        self.y *= k;
    }
    pub fn add_to(&self, other: &mut Vec2) {
        other.x += self.x;
        other.y += self.y;
    }
    pub fn parts(&self) -> (f64, f64) {
        (self.x, self.y)
    }
    pub fn label(&self, prefix: &str) -> String {
        format!("{prefix}{self}")
    }
    pub fn sum(values: Variadic<i64>) -> i64 {
        values.iter().sum()
    }
    pub fn checked(k: f64) -> Result<f64, String> {
        if k < 0.0 {
            Err(format!("negative: {k}"))
        } else {
            Ok(k)
        }
    }
}

#[derive(LuaUserData)]
pub struct Body {
    pub pos: Vec2,
    #[lua(readonly)]
    pub mass: u8,
    secret: u32,
}

#[test]
fn smoke() {
    let lua = Lua::new();
    bevy_lunar::register_type::<Vec2>(&lua).unwrap();
    lua.globals()
        .set(
            "b",
            Body {
                pos: Vec2 { x: 1.0, y: 2.0 },
                mass: 3,
                secret: 0,
            },
        )
        .unwrap();
    lua.load(
        r#"
        local v = Vec2.new(3, 4)
        assert(v:length() == 5, "length")
        v:scale(2)
        assert(v.x == 6)
        assert(tostring(v) == "Vec2(6, 8)", tostring(v))
        local w = v + Vec2.new(1, 1)
        assert(w.x == 7 and v.x == 6)
        assert((2 * v).x == 12 and (v * 2).y == 16)
        assert((-v).x == -6)
        assert(v == Vec2.new(6, 8))
        assert(v ~= b)
        assert(Vec2.new(1,1) < Vec2.new(2,0))
        print(b.pos, b.pos.x, b.mass)
        b.pos.x = 5
        print(b.pos, b.pos.x)
        assert(b.pos.x == 5)
        local p = b.pos
        p:scale(2)
        assert(b.pos.x == 10, b.pos.x)
        v:add_to(b.pos)
        assert(b.pos.x == 16, b.pos.x)
        local a, c = v:parts()
        assert(a == 6 and c == 8)
        assert(v:label("v=") == "v=Vec2(6, 8)")
        assert(Vec2.sum(1, 2, 3) == 6)
        local ok, err = pcall(Vec2.checked, -1)
        assert(not ok and tostring(err):find("negative: %-1"), tostring(err))
        local ok, err = pcall(function() b.mass = 4 end)
        assert(not ok and tostring(err):find("field 'mass' is read%-only"), tostring(err))
        local ok, err = pcall(function() return b.secret end)
        assert(not ok and tostring(err):find("Body has no field or method 'secret'"), tostring(err))
        local ok, err = pcall(function() v.x = "lots" end)
        print(err)
        local ok, err = pcall(function() v:scale("x") end)
        print(err)
        local ok, err = pcall(function() return v < 3 end)
        print(err)
        local ok, err = pcall(function() return v + 3 end)
        print(err)
    "#,
    )
    .set_name("@smoke.lua")
    .exec()
    .unwrap();
    let b = lua
        .globals()
        .get::<bevy_lunar::mlua::AnyUserData>("b")
        .unwrap();
    assert_eq!(b.borrow::<Body>().unwrap().pos.x, 16.0);
}
