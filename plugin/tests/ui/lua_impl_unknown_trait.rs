use bevy_lunar::prelude::*;

#[derive(LuaUserData, Hash)]
#[lua_impl(Display, Hash)]
pub struct Id {
    pub value: u32,
}

fn main() {}
