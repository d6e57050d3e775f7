use bevy_lunar::prelude::*;

#[derive(LuaUserData)]
pub struct Config {
    #[lua(readonyl)]
    pub version: i64,
}

fn main() {}
