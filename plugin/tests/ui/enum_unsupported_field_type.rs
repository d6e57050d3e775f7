use bevy_lunar::prelude::*;

#[derive(LuaUserData, Clone)]
pub enum Task {
    Idle,
    Waiting { since: std::time::Instant },
}

fn main() {}
