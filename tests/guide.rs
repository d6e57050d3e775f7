//! The examples of the luars userdata guide, ported: what each attribute does, seen from Lua
//! and checked on the Rust side.

mod common;

use bevy_lunar::mlua::{AnyUserData, Lua};
use bevy_lunar::prelude::*;
use common::{error_of, eval, run};

#[derive(LuaUserData)]
pub struct Player {
    pub name: String,
    pub health: f64,
    pub level: i64,
    /// Private field — not exposed to Lua
    internal_id: u64,
}

fn alice() -> Player {
    Player {
        name: "Alice".into(),
        health: 100.0,
        level: 1,
        internal_id: 7,
    }
}

#[test]
fn player_pub_fields_read_and_write_private_ones_are_invisible() {
    let lua = Lua::new();
    lua.globals().set("player", alice()).unwrap();

    let (name, health, level): (String, f64, i64) =
        eval(&lua, "return player.name, player.health, player.level");
    assert_eq!((name.as_str(), health, level), ("Alice", 100.0, 1));

    run(
        &lua,
        "player.health = 80.0; player.level = player.level + 1; player.name = 'Bob'",
    );
    let player: AnyUserData = lua.globals().get("player").unwrap();
    let player = player.borrow::<Player>().unwrap();
    assert_eq!(player.health, 80.0);
    assert_eq!(player.level, 2);
    assert_eq!(player.name, "Bob");
    assert_eq!(player.internal_id, 7, "private field untouched");
    drop(player);

    assert_eq!(
        error_of(&lua, "return player.internal_id"),
        "Player has no field or method 'internal_id'"
    );
    assert_eq!(
        error_of(&lua, "player.internal_id = 1"),
        "Player has no field 'internal_id'"
    );
    assert_eq!(Player::field_names(), ["name", "health", "level"]);
    assert_eq!(Player::TYPE_NAME, "Player");
}

#[derive(LuaUserData)]
pub struct Config {
    pub name: String,
    #[lua(skip)]
    pub secret_key: String,
    #[lua(readonly)]
    pub version: i64,
    #[lua(name = "count")]
    pub item_count: u32,
}

fn config() -> Config {
    Config {
        name: "my_app".into(),
        secret_key: "hunter2".into(),
        version: 42,
        item_count: 3,
    }
}

#[test]
fn config_skip_hides_a_pub_field() {
    let lua = Lua::new();
    lua.globals().set("cfg", config()).unwrap();
    assert_eq!(eval::<String>(&lua, "return cfg.name"), "my_app");
    assert_eq!(
        error_of(&lua, "return cfg.secret_key"),
        "Config has no field or method 'secret_key'"
    );
    assert_eq!(
        error_of(&lua, "cfg.secret_key = 'x'"),
        "Config has no field 'secret_key'"
    );
    let cfg: AnyUserData = lua.globals().get("cfg").unwrap();
    assert_eq!(cfg.borrow::<Config>().unwrap().secret_key, "hunter2");
}

#[test]
fn config_readonly_reads_and_refuses_writes() {
    let lua = Lua::new();
    lua.globals().set("cfg", config()).unwrap();
    assert_eq!(eval::<i64>(&lua, "return cfg.version"), 42);
    let err = error_of(&lua, "cfg.version = 99");
    assert!(err.contains("field 'version' is read-only"), "{err}");
    assert_eq!(err, "Config: field 'version' is read-only");
    run(&lua, "cfg.name = 'new'");
    let cfg: AnyUserData = lua.globals().get("cfg").unwrap();
    let cfg = cfg.borrow::<Config>().unwrap();
    assert_eq!(cfg.version, 42, "refused write left the value");
    assert_eq!(cfg.name, "new");
}

#[test]
fn config_name_renames_and_hides_the_rust_name() {
    let lua = Lua::new();
    lua.globals().set("cfg", config()).unwrap();
    assert_eq!(eval::<u32>(&lua, "return cfg.count"), 3);
    run(&lua, "cfg.count = 42");
    assert_eq!(
        error_of(&lua, "return cfg.item_count"),
        "Config has no field or method 'item_count'"
    );
    let cfg: AnyUserData = lua.globals().get("cfg").unwrap();
    assert_eq!(cfg.borrow::<Config>().unwrap().item_count, 42);
    assert_eq!(Config::field_names(), ["name", "version", "count"]);
}

#[derive(LuaUserData)]
pub struct GameEntity {
    pub name: String,
    #[lua(readonly)]
    pub entity_type: String,
    #[lua(name = "hp")]
    pub hit_points: f64,
    #[lua(readonly, name = "uid")]
    pub unique_id: u32,
    #[lua(skip)]
    pub cache: Vec<u8>,
    _internal: u32,
}

#[test]
fn game_entity_combines_attributes() {
    let lua = Lua::new();
    let entity = GameEntity {
        name: "goblin".into(),
        entity_type: "enemy".into(),
        hit_points: 30.0,
        unique_id: 9,
        cache: vec![1, 2, 3],
        _internal: 5,
    };
    lua.globals().set("e", entity).unwrap();
    run(
        &lua,
        r#"
        assert(e.name == "goblin" and e.entity_type == "enemy" and e.hp == 30 and e.uid == 9)
        e.name = "hobgoblin"
        e.hp = e.hp - 12.5
        "#,
    );
    assert_eq!(
        error_of(&lua, "e.entity_type = 'friend'"),
        "GameEntity: field 'entity_type' is read-only"
    );
    assert_eq!(
        error_of(&lua, "e.uid = 1"),
        "GameEntity: field 'uid' is read-only"
    );
    assert_eq!(
        error_of(&lua, "return e.unique_id"),
        "GameEntity has no field or method 'unique_id'"
    );
    assert_eq!(
        error_of(&lua, "return e.hit_points"),
        "GameEntity has no field or method 'hit_points'"
    );
    assert_eq!(
        error_of(&lua, "return e.cache"),
        "GameEntity has no field or method 'cache'"
    );
    assert_eq!(
        error_of(&lua, "return e._internal"),
        "GameEntity has no field or method '_internal'"
    );

    let e: AnyUserData = lua.globals().get("e").unwrap();
    let e = e.borrow::<GameEntity>().unwrap();
    assert_eq!(e.name, "hobgoblin");
    assert_eq!(e.hit_points, 17.5);
    assert_eq!(e.entity_type, "enemy");
    assert_eq!(e.unique_id, 9);
    assert_eq!(e.cache, [1, 2, 3]);
    assert_eq!(
        GameEntity::field_names(),
        ["name", "entity_type", "hp", "uid"]
    );
}

#[derive(LuaUserData, Clone, PartialEq, PartialOrd, Debug)]
#[lua_impl(Display, PartialEq, PartialOrd, Add, Sub, Neg)]
pub struct Vec2 {
    pub x: f64,
    pub y: f64,
}

impl std::fmt::Display for Vec2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vec2({}, {})", self.x, self.y)
    }
}

impl std::ops::Add for Vec2 {
    type Output = Vec2;
    fn add(self, rhs: Vec2) -> Vec2 {
        Vec2 {
            x: self.x + rhs.x,
            y: self.y + rhs.y,
        }
    }
}

impl std::ops::Sub for Vec2 {
    type Output = Vec2;
    fn sub(self, rhs: Vec2) -> Vec2 {
        Vec2 {
            x: self.x - rhs.x,
            y: self.y - rhs.y,
        }
    }
}

impl std::ops::Neg for Vec2 {
    type Output = Vec2;
    fn neg(self) -> Vec2 {
        Vec2 {
            x: -self.x,
            y: -self.y,
        }
    }
}

#[test]
fn vec2_operators_from_lua_impl() {
    let lua = Lua::new();
    lua.globals().set("a", Vec2 { x: 1.0, y: 2.0 }).unwrap();
    lua.globals().set("b", Vec2 { x: 10.0, y: 20.0 }).unwrap();
    run(
        &lua,
        r#"
        local c = a + b
        assert(c.x == 11 and c.y == 22)
        local d = b - a
        assert(d.x == 9 and d.y == 18)
        local n = -a
        assert(n.x == -1 and n.y == -2)
        assert(tostring(c) == "Vec2(11, 22)")
        assert(a == a and a ~= b)
        assert(a < b and a <= b and not (b < a))
        -- operands are not consumed or changed
        assert(a.x == 1 and b.x == 10)
        -- results are full userdata
        c.x = 0
        assert(c.x == 0 and tostring(c + a) == "Vec2(1, 24)")
        "#,
    );
    let a: AnyUserData = lua.globals().get("a").unwrap();
    assert_eq!(*a.borrow::<Vec2>().unwrap(), Vec2 { x: 1.0, y: 2.0 });
}

#[derive(LuaUserData, PartialEq, PartialOrd)]
#[lua_impl(Display, PartialEq, PartialOrd)]
pub struct Score {
    pub value: i64,
    pub player: String,
}

impl std::fmt::Display for Score {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.player, self.value)
    }
}

#[lua_methods]
impl Score {
    pub fn new(value: i64, player: String) -> Self {
        Score { value, player }
    }
}

#[test]
fn score_constructor_and_comparisons() {
    let lua = Lua::new();
    bevy_lunar::register_type::<Score>(&lua).unwrap();
    let (text, equal, less, less_equal): (String, bool, bool, bool) = eval(
        &lua,
        r#"
        local a = Score.new(100, "Alice")
        local b = Score.new(200, "Bob")
        return tostring(a), a == b, a < b, b <= a
        "#,
    );
    assert_eq!(text, "Alice: 100");
    assert!(!equal);
    assert!(less);
    assert!(!less_equal);
    let printed: String = eval(&lua, "return tostring(Score.new(5, 'Eve'))");
    assert_eq!(printed, "Eve: 5");
}

#[derive(LuaUserData, Default)]
pub struct Calculator {
    pub last: f64,
}

#[lua_methods]
impl Calculator {
    pub fn new() -> Self {
        Calculator::default()
    }

    pub fn divide(&mut self, a: f64, b: f64) -> Result<f64, String> {
        if b == 0.0 {
            return Err(format!("cannot divide {a} by zero"));
        }
        self.last = a / b;
        Ok(self.last)
    }
}

#[test]
fn calculator_result_errors_carry_the_display_text() {
    let lua = Lua::new();
    bevy_lunar::register_type::<Calculator>(&lua).unwrap();
    run(&lua, "calc = Calculator.new()");
    assert_eq!(eval::<f64>(&lua, "return calc:divide(10, 4)"), 2.5);
    assert_eq!(
        error_of(&lua, "calc:divide(1, 0)"),
        "cannot divide 1 by zero"
    );
    let calc: AnyUserData = lua.globals().get("calc").unwrap();
    assert_eq!(
        calc.borrow::<Calculator>().unwrap().last,
        2.5,
        "the failed call changed nothing"
    );
}

#[derive(LuaUserData)]
pub struct AppConfig {
    pub name: String,
    #[lua(readonly)]
    pub version: String,
    #[lua(name = "debug")]
    pub debug_mode: bool,
    pub max_players: u16,
    pub motd: Option<String>,
    #[lua(skip)]
    pub api_token: String,
}

#[test]
fn app_config_with_every_kind_of_field() {
    let lua = Lua::new();
    let app = AppConfig {
        name: "arena".into(),
        version: "1.2.0".into(),
        debug_mode: false,
        max_players: 16,
        motd: None,
        api_token: "t0k3n".into(),
    };
    lua.globals().set("app", app).unwrap();
    run(
        &lua,
        r#"
        assert(app.version == "1.2.0")
        assert(app.debug == false)
        assert(app.motd == nil)
        app.debug = true
        app.max_players = 32
        app.motd = "welcome"
        "#,
    );
    assert_eq!(
        error_of(&lua, "app.version = '2'"),
        "AppConfig: field 'version' is read-only"
    );
    assert_eq!(
        error_of(&lua, "app.max_players = 70000"),
        "AppConfig: bad value for field 'max_players': expected an integer between 0 and 65535, got 70000"
    );
    {
        let app: AnyUserData = lua.globals().get("app").unwrap();
        let app = app.borrow::<AppConfig>().unwrap();
        assert!(app.debug_mode);
        assert_eq!(app.max_players, 32);
        assert_eq!(app.motd.as_deref(), Some("welcome"));
        assert_eq!(app.api_token, "t0k3n");
    }
    run(&lua, "assert(app.motd == 'welcome'); app.motd = nil");
    let app: AnyUserData = lua.globals().get("app").unwrap();
    assert_eq!(app.borrow::<AppConfig>().unwrap().motd, None);
}

#[derive(LuaUserData, Clone, Copy, PartialEq, Debug)]
#[lua_impl(Display, PartialEq)]
pub struct Color {
    pub r: u8,
    pub g: u8,
    pub b: u8,
    pub a: u8,
}

impl std::fmt::Display for Color {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "#{:02x}{:02x}{:02x}{:02x}",
            self.r, self.g, self.b, self.a
        )
    }
}

#[lua_methods]
impl Color {
    pub fn rgb(r: u8, g: u8, b: u8) -> Self {
        Color { r, g, b, a: 255 }
    }

    pub fn with_alpha(&self, a: u8) -> Self {
        Color { a, ..*self }
    }

    #[lua(name = "lighten")]
    pub fn lighten_by(&mut self, amount: u8) {
        self.r = self.r.saturating_add(amount);
        self.g = self.g.saturating_add(amount);
        self.b = self.b.saturating_add(amount);
    }

    #[lua(skip)]
    pub fn to_u32(&self) -> u32 {
        u32::from_be_bytes([self.r, self.g, self.b, self.a])
    }
}

#[test]
fn color_constructors_methods_and_byte_ranges() {
    let lua = Lua::new();
    bevy_lunar::register_type::<Color>(&lua).unwrap();
    run(
        &lua,
        r##"
        red = Color.rgb(255, 0, 0)
        assert(tostring(red) == "#ff0000ff")
        local faded = red:with_alpha(128)
        assert(faded.a == 128 and red.a == 255)
        assert(faded ~= red and red == Color.rgb(255, 0, 0))
        red:lighten(10)
        assert(red.g == 10 and red.r == 255)
        "##,
    );
    assert_eq!(
        error_of(&lua, "red.r = 256"),
        "Color: bad value for field 'r': expected an integer between 0 and 255, got 256"
    );
    assert_eq!(
        error_of(&lua, "Color.rgb(0, -1, 0)"),
        "bad argument #2 to `Color.rgb`: expected an integer between 0 and 255, got -1"
    );
    assert_eq!(
        error_of(&lua, "red:to_u32()"),
        "Color has no field or method 'to_u32'"
    );
    assert_eq!(
        error_of(&lua, "red:lighten_by(1)"),
        "Color has no field or method 'lighten_by'"
    );
    let red: AnyUserData = lua.globals().get("red").unwrap();
    assert_eq!(red.borrow::<Color>().unwrap().to_u32(), 0xff0a0aff);
}
