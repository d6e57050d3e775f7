use bevy_lunar::prelude::*;

#[derive(LuaUserData, Clone)]
pub enum Order {
    #[lua(readonly)]
    Stop,
    Move { kind: u8 },
    Attack { target: u32 },
    Guard { target: f64 },
    #[lua(name = "Stop")]
    Halt,
}

fn main() {}
