//! The Bevy plugin in a real headless app: scripts as assets, instances, callbacks, live
//! component access, errors, limits and the sandbox.

#[path = "common/app.rs"]
mod app;

use app::TestApp;
use bevy::prelude::*;
use bevy_lunar::prelude::*;

#[derive(Component, LuaUserData, Clone, Debug, PartialEq)]
pub struct Player {
    pub name: String,
    pub health: f64,
    pub level: i64,
}

#[derive(Component, LuaUserData, Clone, Debug, PartialEq)]
#[lua_impl(Display)]
pub struct Position {
    pub x: f64,
    pub y: f64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}, {})", self.x, self.y)
    }
}

#[lua_methods]
impl Position {
    pub fn new(x: f64, y: f64) -> Self {
        Position { x, y }
    }
}

fn player(name: &str) -> Player {
    Player {
        name: name.into(),
        health: 100.0,
        level: 1,
    }
}

fn game(files: &[(&str, &str)]) -> TestApp {
    let mut test = TestApp::new(files);
    test.app
        .register_lua_component::<Player>()
        .register_lua_component::<Position>();
    test
}

#[test]
fn callbacks_run_in_order_with_live_component_access() {
    let mut test = game(&[(
        "scripts/player.lua",
        r#"
        local frames = 0
        function on_start()
            local p = entity:get("Player")
            p.name = p.name .. " (scripted)"
        end
        function on_update(dt)
            frames = frames + 1
            local p = entity:get("Player")
            p.health = p.health - 1
            p.level = frames
        end
        "#,
    )]);
    let e = test.spawn_script("scripts/player.lua", player("Alice"));
    test.settle(0);
    for _ in 0..5 {
        test.update();
    }
    let p = test.app.world().get::<Player>(e).unwrap().clone();
    assert_eq!(p.name, "Alice (scripted)");
    assert!(p.level >= 5, "{p:?}");
    assert_eq!(p.health, 100.0 - p.level as f64, "one update per frame");
    assert!(test.errors().is_empty(), "{:?}", test.errors());
}
