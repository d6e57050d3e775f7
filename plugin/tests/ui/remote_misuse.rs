use bevy_lunar::prelude::*;

pub struct Foreign {
    pub x: f32,
}

impl Foreign {
    pub fn get(&self) -> f32 {
        self.x
    }
}

#[derive(LuaUserData)]
#[lua(remote = Foreign)]
struct ForeignDef {
    pub x: f32,
}

#[lua_methods(remote = Foreign)]
impl ForeignDef {
    // A body would run on the stand-in struct, not on `Foreign`.
    pub fn doubled(&self) -> f32 {
        0.0
    }
}

#[derive(LuaUserData)]
pub struct Local {
    pub x: f32,
}

#[lua_methods]
impl Local {
    // Forwarding needs a remote type.
    pub fn get(&self) -> f32;
}

pub struct Other {
    pub x: f32,
}

#[derive(LuaUserData)]
#[lua(remote = Other)]
struct Mismatched {
    // The remote field is an `f32`.
    pub x: String,
}

fn main() {}
