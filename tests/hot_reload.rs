//! Hot reload through Bevy's real file watcher: a script rewritten on disk while the app runs.

#[path = "common/app.rs"]
mod app;

use std::time::Duration;

use app::TestApp;
use bevy::prelude::*;
use bevy_lunar::prelude::*;

#[derive(Component, LuaUserData, Clone, Debug)]
pub struct Player {
    pub name: String,
    pub level: i64,
}

const V1: &str = r#"
local count = 0
function on_update(dt)
    count = count + 1
    entity:get("Player").level = count
end
function on_unload() return { count = count } end
function on_reload(saved) count = saved.count end
function only_in_v1() end
"#;

const BROKEN: &str = "function on_update(dt)\n  count = = 1\nend\n";

const V2: &str = r#"
local count = 0
function on_update(dt)
    count = count + 1000
    local p = entity:get("Player")
    p.level = count
    p.name = "v2, only_in_v1 is " .. tostring(only_in_v1)
end
function on_unload() return { count = count } end
function on_reload(saved) count = saved.count end
"#;

const V3: &str = r#"
local count = 0
function on_update(dt)
    count = count - 1
    local p = entity:get("Player")
    p.level = count
    p.name = "v3"
end
function on_reload(saved) count = saved.count end
"#;

fn level(test: &mut TestApp, e: Entity) -> i64 {
    test.app.world().get::<Player>(e).unwrap().level
}

#[cfg(feature = "file_watcher")]
#[test]
fn edits_on_disk_reload_with_state_kept_and_broken_versions_rejected() {
    let mut test = TestApp::with_plugin(
        &[("scripts/hot.lua", V1)],
        LuaScriptingPlugin::default(),
        true,
    );
    test.app.register_lua_component::<Player>();
    let e = test.spawn_script(
        "scripts/hot.lua",
        Player {
            name: "v1".into(),
            level: 0,
        },
    );
    // A second instance of the same script: a broken version is still one error.
    test.spawn_script(
        "scripts/hot.lua",
        Player {
            name: "v1 again".into(),
            level: 0,
        },
    );
    test.settle(3);
    let before = level(&mut test, e);
    assert!(before >= 3, "v1 runs: {before}");

    // A broken version fails to compile: reported with its line, and v1 keeps running.
    test.write("scripts/hot.lua", BROKEN);
    let reported = test.run_until(Duration::from_secs(10), |world| {
        let messages = world.resource::<Messages<LuaScriptError>>();
        messages
            .get_cursor()
            .read(messages)
            .any(|e| e.line == Some(2))
    });
    assert!(reported, "syntax error reported: {:?}", test.errors());
    test.update();
    let errors = test.error_messages();
    assert_eq!(errors.len(), 1, "one error for both instances: {errors:?}");
    assert_eq!(errors[0].path, "scripts/hot.lua");
    assert_eq!(errors[0].kind, bevy_lunar::LuaScriptErrorKind::Syntax);
    // The file loads (the runtime compiles it): the asset server logs no failed load, whose
    // line would carry a Rust backtrace under `RUST_BACKTRACE`.
    let handle = test.load("scripts/hot.lua");
    let server = test.app.world().resource::<AssetServer>();
    assert!(
        matches!(server.load_state(&handle), bevy::asset::LoadState::Loaded),
        "{:?}",
        server.load_state(&handle)
    );
    let still = level(&mut test, e);
    test.update();
    assert_eq!(
        level(&mut test, e),
        still + 1,
        "v1 still running after the broken edit"
    );

    // The fixed version takes over with v1's state, and v1's functions are gone.
    test.write("scripts/hot.lua", V2);
    let reloaded = test.run_until(Duration::from_secs(10), |world| {
        world
            .query::<&Player>()
            .iter(world)
            .any(|p| p.name.starts_with("v2"))
    });
    assert!(reloaded, "v2 loaded: {:?}", test.errors());
    let p = test.app.world().get::<Player>(e).unwrap().clone();
    assert_eq!(p.name, "v2, only_in_v1 is nil");
    let handed_over = p.level % 1000;
    assert!(
        handed_over > still,
        "v1's count {handed_over} carried over (was {still})"
    );

    // And once more: v3 takes v2's count, frame to frame.
    test.write("scripts/hot.lua", V3);
    let mut last = level(&mut test, e);
    let mut switched = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while switched.is_none() && std::time::Instant::now() < deadline {
        test.update();
        let p = test.app.world().get::<Player>(e).unwrap().clone();
        if p.name == "v3" {
            switched = Some((last, p.level));
        }
        last = p.level;
        std::thread::sleep(Duration::from_millis(2));
    }
    let (v2_last, v3_first) = switched.expect("v3 loaded");
    assert_eq!(v3_first, v2_last - 1, "v3 continued from v2's count");
    let unexpected: Vec<_> = test
        .error_messages()
        .into_iter()
        .filter(|e| e.kind != bevy_lunar::LuaScriptErrorKind::Syntax)
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");
}
