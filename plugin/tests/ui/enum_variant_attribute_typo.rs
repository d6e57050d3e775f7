use bevy_lunar::prelude::*;

#[derive(LuaUserData, Clone)]
pub enum Mood {
    Calm,
    #[lua(skp)]
    Angry,
}

fn main() {}
