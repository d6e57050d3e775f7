use bevy_lunar::prelude::*;

#[derive(LuaUserData)]
#[lua_impl(Add)]
pub struct Vec2 {
    pub x: f64,
    pub y: f64,
}

impl std::ops::Add for Vec2 {
    type Output = Vec2;
    fn add(self, rhs: Vec2) -> Vec2 {
        Vec2 { x: self.x + rhs.x, y: self.y + rhs.y }
    }
}

fn main() {}
