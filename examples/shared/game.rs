//! The game shared by the `showcase` (windowed) and `headless` examples: the components scripts
//! work on, and the entities that carry the scripts. All gameplay is in `assets/scripts/`.

use std::fmt;
use std::ops::{Add, Mul, Neg, Sub};

use bevy::prelude::*;
use bevy_lunar::prelude::*;

/// The one the keyboard moves.
#[derive(Component, LuaUserData, Clone, Debug)]
pub struct Player {
    pub name: String,
    pub health: f64,
    pub level: i64,
    /// Private: scripts cannot see it.
    deaths_seen: u32,
}

#[lua_methods]
impl Player {
    pub fn is_alive(&self) -> bool {
        self.health > 0.0
    }

    /// Back to full health, one level further.
    pub fn revive(&mut self) {
        self.health = 100.0;
        self.deaths_seen += 1;
    }

    /// For the game's Rust side only.
    #[lua(skip)]
    pub fn deaths(&self) -> u32 {
        self.deaths_seen
    }
}

/// Anything else in the arena: scripts spawn enemies with `GameEntity.new(...)`.
#[derive(Component, LuaUserData, Clone, Debug)]
pub struct GameEntity {
    pub name: String,
    #[lua(readonly)]
    pub entity_type: String,
    #[lua(name = "hp")]
    pub hit_points: f64,
    /// Rust-only data (in a real game, say, a path-finding cache): hidden from Lua.
    #[lua(skip)]
    #[allow(dead_code)]
    pub cache: Vec<u8>,
    _internal: u32,
}

#[lua_methods]
impl GameEntity {
    pub fn new(name: String, entity_type: String, hp: f64) -> Self {
        GameEntity {
            name,
            entity_type,
            hit_points: hp,
            cache: Vec::new(),
            _internal: 0,
        }
    }
}

/// A velocity in world units per second, with operators for scripts.
#[derive(Component, LuaUserData, Clone, Copy, Debug, Default, PartialEq)]
#[lua_impl(Display, PartialEq, Add, Sub, Neg, Mul<f64>)]
pub struct Velocity {
    pub x: f64,
    pub y: f64,
}

#[lua_methods]
impl Velocity {
    pub fn new(x: f64, y: f64) -> Self {
        Velocity { x, y }
    }

    pub fn length(&self) -> f64 {
        self.x.hypot(self.y)
    }
}

impl fmt::Display for Velocity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Velocity({:.1}, {:.1})", self.x, self.y)
    }
}

impl Add for Velocity {
    type Output = Velocity;
    fn add(self, rhs: Velocity) -> Velocity {
        Velocity::new(self.x + rhs.x, self.y + rhs.y)
    }
}

impl Sub for Velocity {
    type Output = Velocity;
    fn sub(self, rhs: Velocity) -> Velocity {
        Velocity::new(self.x - rhs.x, self.y - rhs.y)
    }
}

impl Mul<f64> for Velocity {
    type Output = Velocity;
    fn mul(self, k: f64) -> Velocity {
        Velocity::new(self.x * k, self.y * k)
    }
}

impl Neg for Velocity {
    type Output = Velocity;
    fn neg(self) -> Velocity {
        Velocity::new(-self.x, -self.y)
    }
}

/// The arena's scripts and Rust-side rules: add to an app that has the scripting plugin.
pub struct GamePlugin;

impl Plugin for GamePlugin {
    fn build(&self, app: &mut App) {
        app.register_lua_component::<Player>()
            .register_lua_component::<GameEntity>()
            .register_lua_component::<Velocity>()
            // Editor support: keeps assets/types/lunar.lua (and assets/.luarc.json) current.
            .write_lua_definitions("assets/types/lunar.lua")
            .add_systems(Startup, spawn_arena)
            .add_systems(Update, log_messages.after(LuaScriptSet));
    }
}

fn spawn_arena(mut commands: Commands, assets: Res<AssetServer>) {
    commands.spawn((
        Name::new("player"),
        Player {
            name: "Alice".into(),
            health: 100.0,
            level: 1,
            deaths_seen: 0,
        },
        Transform::default(),
        Sprite::from_color(Color::srgb(0.35, 0.9, 0.45), Vec2::splat(32.0)),
        LuaScript(assets.load("scripts/player.lua")),
    ));
    commands.spawn((
        Name::new("director"),
        LuaScript(assets.load("scripts/director.lua")),
    ));
}

/// Scripts talk to Rust: `world.send("player_down", {...})`.
fn log_messages(mut messages: MessageReader<LuaMessage>) {
    for message in messages.read() {
        if message.name == "player_down" {
            let level = message.payload.get("level").and_then(ScriptValue::as_i64);
            info!("the player went down at level {level:?}");
        }
    }
}

/// What the game looks like right now, in one line.
pub fn summary(world: &mut World) -> String {
    let mut players = world.query::<(&Player, &Transform)>();
    let player = players
        .iter(world)
        .next()
        .map(|(p, t)| {
            format!(
                "{} health {:.0} level {} deaths {} at ({:.0}, {:.0})",
                p.name,
                p.health,
                p.level,
                p.deaths(),
                t.translation.x,
                t.translation.y
            )
        })
        .unwrap_or_else(|| "no player".into());
    let enemies = world
        .query::<&GameEntity>()
        .iter(world)
        .filter(|e| e.entity_type == "enemy")
        .count();
    format!("{player}; {enemies} enemies")
}

/// `--frames N` and `--screenshot PATH` from the command line.
#[derive(Resource, Clone, Debug, Default)]
pub struct RunOptions {
    pub frames: Option<u32>,
    pub screenshot: Option<std::path::PathBuf>,
}

impl RunOptions {
    pub fn from_args() -> Self {
        let mut options = RunOptions::default();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--frames" => {
                    options.frames = args.next().and_then(|n| n.parse().ok());
                    if options.frames.is_none() {
                        eprintln!("--frames needs a number");
                        std::process::exit(2);
                    }
                }
                "--screenshot" => options.screenshot = args.next().map(Into::into),
                other => {
                    eprintln!("unknown argument {other}; expected --frames N, --screenshot PATH");
                    std::process::exit(2);
                }
            }
        }
        options
    }
}
