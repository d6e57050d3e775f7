use bevy_lunar::prelude::*;

#[derive(LuaUserData)]
pub struct Timer {
    pub label: String,
    pub started: std::time::Instant,
}

fn main() {}
