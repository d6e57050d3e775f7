use bevy_lunar::prelude::*;

#[derive(LuaUserData)]
pub struct Clock {
    pub ticks: u64,
}

#[lua_methods]
impl Clock {
    pub fn wait(&mut self, duration: std::time::Duration) {
        self.ticks += duration.as_millis() as u64;
    }
}

fn main() {}
