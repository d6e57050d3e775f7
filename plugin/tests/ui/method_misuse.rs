use bevy_lunar::prelude::*;

#[derive(LuaUserData)]
pub struct Counter {
    pub count: u32,
}

#[lua_methods]
impl Counter {
    pub fn consume(self) -> u32 {
        self.count
    }

    pub fn sum(&self, values: &[u32]) -> u32 {
        values.iter().sum()
    }

    #[lua(readonly)]
    pub fn get(&self) -> u32 {
        self.count
    }
}

fn main() {}
