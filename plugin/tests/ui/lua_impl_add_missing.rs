use bevy_lunar::prelude::*;

#[derive(LuaUserData, Clone)]
#[lua_impl(Add)]
pub struct Vec2 {
    pub x: f64,
    pub y: f64,
}

fn main() {}
