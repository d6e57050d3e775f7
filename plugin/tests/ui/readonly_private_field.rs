use bevy_lunar::prelude::*;

#[derive(LuaUserData)]
pub struct Config {
    pub name: String,
    #[lua(readonly)]
    version: i64,
}

fn main() {
    let _ = Config { name: String::new(), version: 0 }.version;
}
