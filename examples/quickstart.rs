//! Derive `LuaUserData` on plain Rust structs and drive them from a Lua script.
//!
//! `cargo run --example quickstart`

use bevy_lunar::mlua::{AnyUserData, Lua};
use bevy_lunar::prelude::*;

/// A 2D vector with operators for scripts.
#[derive(LuaUserData, Clone, Copy, PartialEq, Debug)]
#[lua_impl(Display, PartialEq, Add, Sub, Mul<f64>, Neg)]
pub struct Vec2 {
    pub x: f64,
    pub y: f64,
}

#[lua_methods]
impl Vec2 {
    pub fn new(x: f64, y: f64) -> Self {
        Vec2 { x, y }
    }

    pub fn length(&self) -> f64 {
        self.x.hypot(self.y)
    }
}

impl std::fmt::Display for Vec2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}, {})", self.x, self.y)
    }
}

impl std::ops::Add for Vec2 {
    type Output = Vec2;
    fn add(self, rhs: Vec2) -> Vec2 {
        Vec2::new(self.x + rhs.x, self.y + rhs.y)
    }
}

impl std::ops::Sub for Vec2 {
    type Output = Vec2;
    fn sub(self, rhs: Vec2) -> Vec2 {
        Vec2::new(self.x - rhs.x, self.y - rhs.y)
    }
}

impl std::ops::Mul<f64> for Vec2 {
    type Output = Vec2;
    fn mul(self, k: f64) -> Vec2 {
        Vec2::new(self.x * k, self.y * k)
    }
}

impl std::ops::Neg for Vec2 {
    type Output = Vec2;
    fn neg(self) -> Vec2 {
        Vec2::new(-self.x, -self.y)
    }
}

#[derive(LuaUserData, Debug)]
#[lua_impl(Display)]
pub struct Player {
    pub name: String,
    pub health: f64,
    #[lua(readonly)]
    pub level: u8,
    pub pos: Vec2,
    internal_id: u64,
}

#[lua_methods]
impl Player {
    pub fn new(name: String) -> Self {
        Player {
            name,
            health: 100.0,
            level: 1,
            pos: Vec2::new(0.0, 0.0),
            internal_id: 42,
        }
    }

    pub fn level_up(&mut self) -> u8 {
        self.level = self.level.saturating_add(1);
        self.level
    }
}

impl std::fmt::Display for Player {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (level {}, {} hp)",
            self.name, self.level, self.health
        )
    }
}

fn main() -> bevy_lunar::mlua::Result<()> {
    let lua = Lua::new();
    bevy_lunar::register_type::<Vec2>(&lua)?;
    bevy_lunar::register_type::<Player>(&lua)?;

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/quickstart.lua");
    let source = std::fs::read_to_string(path).map_err(bevy_lunar::mlua::Error::external)?;
    lua.load(source)
        .set_name("@examples/quickstart.lua")
        .exec()?;

    // The script's hero is an ordinary Rust value.
    let hero: AnyUserData = lua.globals().get("hero")?;
    let hero = hero.borrow::<Player>()?;
    println!("Rust sees: {hero:?} (internal id {})", hero.internal_id);
    Ok(())
}
