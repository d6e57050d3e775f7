//! The script API around the entity: `time`, `input`, and messages between scripts and Rust.

#[path = "common/app.rs"]
mod app;

use app::TestApp;
use bevy::input::ButtonInput;
use bevy::prelude::*;
use bevy_lunar::prelude::*;

#[derive(Component, LuaUserData, Clone, Debug, Default, PartialEq)]
pub struct Probe {
    pub number: f64,
    pub count: i64,
    pub text: String,
}

fn app_with(files: &[(&str, &str)]) -> TestApp {
    let mut test = TestApp::new(files);
    test.app.register_lua_component::<Probe>();
    test
}

#[test]
fn time_gives_delta_and_elapsed_seconds() {
    let mut test = app_with(&[(
        "scripts/clock.lua",
        r#"
        function on_update(dt)
            local p = entity:get("Probe")
            assert(time.delta == dt, "time.delta is on_update's dt")
            assert(time.elapsed >= p.number, "elapsed never goes back")
            p.number = time.elapsed
            p.count = p.count + 1
        end
        "#,
    )]);
    let e = test.spawn_script("scripts/clock.lua", Probe::default());
    test.settle(0);
    std::thread::sleep(std::time::Duration::from_millis(20));
    test.update();
    test.update();
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    let elapsed = test.app.world().resource::<Time>().elapsed_secs_f64();
    let probe = test.app.world().get::<Probe>(e).unwrap();
    assert!(probe.count >= 2);
    assert_eq!(
        probe.number, elapsed,
        "time.elapsed is Bevy's Time::elapsed"
    );
    assert!(probe.number > 0.02);
}

#[test]
fn input_reads_bevy_keyboard_and_mouse_state() {
    let mut test = app_with(&[(
        "scripts/keys.lua",
        r#"
        function on_update()
            local p = entity:get("Probe")
            if input.pressed("KeyW") then p.count = p.count + 1 end
            if input.just_pressed("Space") then p.number = p.number + 1 end
            if input.mouse_pressed("Left") then p.text = "click" end
            assert(input.mouse_position() == nil, "no window, no cursor")
            local ok, err = pcall(input.pressed, "Kyw")
            assert(not ok and tostring(err):find("unknown key 'Kyw'"), tostring(err))
        end
        "#,
    )]);
    let e = test.spawn_script("scripts/keys.lua", Probe::default());
    test.settle(1);
    // Headless: no input resources, nothing is pressed.
    assert_eq!(test.app.world().get::<Probe>(e).unwrap().count, 0);

    test.app
        .insert_resource(ButtonInput::<KeyCode>::default())
        .insert_resource(ButtonInput::<MouseButton>::default());
    {
        let world = test.app.world_mut();
        let mut keys = world.resource_mut::<ButtonInput<KeyCode>>();
        keys.press(KeyCode::KeyW);
        keys.press(KeyCode::Space);
        world
            .resource_mut::<ButtonInput<MouseButton>>()
            .press(MouseButton::Left);
    }
    test.update();
    // Nothing clears `just_pressed` here (no InputPlugin): clear it as Bevy would next frame.
    test.app
        .world_mut()
        .resource_mut::<ButtonInput<KeyCode>>()
        .clear();
    test.update();
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    let probe = test.app.world().get::<Probe>(e).unwrap();
    assert_eq!(probe.count, 2, "KeyW held for two frames");
    assert_eq!(probe.number, 1.0, "Space just pressed in one frame only");
    assert_eq!(probe.text, "click");
}

#[derive(Resource, Default)]
struct Received(Vec<LuaMessage>);

fn receive(mut messages: MessageReader<LuaMessage>, mut received: ResMut<Received>) {
    received.0.extend(messages.read().cloned());
}

#[test]
fn scripts_send_messages_that_rust_reads() {
    let mut test = app_with(&[(
        "scripts/sender.lua",
        r#"
        function on_start()
            world.send("hit", { damage = 5, from = entity, tags = { "fire", "crit" }, ratio = 0.5 })
            local ok, err = pcall(world.send, "bad", { callback = print })
            assert(not ok and tostring(err):find("world.send: the payload.callback is a function"), tostring(err))
        end
        "#,
    )]);
    test.app
        .init_resource::<Received>()
        .add_systems(Update, receive.after(LuaScriptSet));
    let e = test.spawn_script("scripts/sender.lua", Probe::default());
    test.settle(1);
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    let received = &test.app.world().resource::<Received>().0;
    assert_eq!(received.len(), 1, "{received:?}");
    let hit = &received[0];
    assert_eq!(hit.name, "hit");
    assert_eq!(hit.payload.get("damage"), Some(&ScriptValue::Integer(5)));
    assert_eq!(
        hit.payload.get("ratio").and_then(ScriptValue::as_f64),
        Some(0.5)
    );
    assert_eq!(
        hit.payload.get("from").and_then(ScriptValue::as_entity),
        Some(e)
    );
    assert_eq!(
        hit.payload.get("tags"),
        Some(&ScriptValue::Table(vec![
            (1.into(), "fire".into()),
            (2.into(), "crit".into())
        ]))
    );
}

#[derive(Resource)]
struct Pending(Vec<LuaCall>);

fn send_calls(mut pending: ResMut<Pending>, mut calls: MessageWriter<LuaCall>) {
    calls.write_batch(pending.0.drain(..));
}

#[test]
fn rust_calls_functions_of_one_instance_or_of_every_instance_of_a_script() {
    let mut test = app_with(&[
        (
            "scripts/target.lua",
            r#"
            function on_hit(payload)
                local p = entity:get("Probe")
                p.number = p.number + payload.damage
                p.text = payload.from ~= nil and "from an entity" or "anonymous"
            end
            "#,
        ),
        ("scripts/bystander.lua", "function on_update() end"),
    ]);
    test.app
        .insert_resource(Pending(Vec::new()))
        .add_systems(Update, send_calls.before(LuaScriptSet));
    let a = test.spawn_script("scripts/target.lua", Probe::default());
    let b = test.spawn_script("scripts/target.lua", Probe::default());
    let c = test.spawn_script("scripts/bystander.lua", Probe::default());
    test.settle(0);
    let script = test.load("scripts/target.lua");
    test.app.world_mut().resource_mut::<Pending>().0 = vec![
        LuaCall::entity(
            a,
            "on_hit",
            ScriptValue::table([("damage", 5.into()), ("from", b.into())]),
        ),
        LuaCall::script(
            &script,
            "on_hit",
            ScriptValue::table([("damage", 1.into())]),
        ),
        // The bystander has no on_hit: skipped, no error.
        LuaCall::all("on_hit", ScriptValue::table([("damage", 10.into())])),
    ];
    test.update();
    assert!(test.errors().is_empty(), "{:?}", test.errors());
    let probe = |e| test.app.world().get::<Probe>(e).unwrap().clone();
    assert_eq!(probe(a).number, 16.0);
    assert_eq!(probe(b).number, 11.0);
    assert_eq!(probe(a).text, "anonymous", "the last call had no `from`");
    assert_eq!(probe(c), Probe::default());

    // A failing call is reported with the script's path and line, like a callback error.
    test.app.world_mut().resource_mut::<Pending>().0 =
        vec![LuaCall::entity(a, "on_hit", ScriptValue::Nil)];
    test.update();
    let errors = test.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    // Lua 5.4 says "attempt to index a nil value (local 'payload')", LuaJIT "attempt to index
    // local 'payload' (a nil value)".
    assert!(
        errors[0].starts_with("scripts/target.lua:4: attempt to index")
            && errors[0].contains("nil value"),
        "{errors:?}"
    );

    // A call no targeted instance can take (a typo) is reported, once per function name.
    for _ in 0..2 {
        test.app.world_mut().resource_mut::<Pending>().0 = vec![
            LuaCall::entity(a, "on_hti", ScriptValue::Nil),
            LuaCall::script(&script, "on_hti", ScriptValue::Nil),
        ];
        test.update();
    }
    let errors = test.errors();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(
        errors[1],
        "scripts/target.lua: LuaCall: no instance it targets defines a function 'on_hti' (the call was dropped; reported once)"
    );
}
