//! A small 2D arena game whose gameplay is all Lua (`assets/scripts/`): move with WASD or the
//! arrow keys, push enemies away with Space. Edit the scripts while it runs.
//!
//! `cargo run --example showcase`
//!
//! Unattended: `--frames N` plays N frames at a fixed 1/60 s step and exits;
//! `--screenshot PATH` also saves the last frame as a PNG.

#[path = "shared/game.rs"]
mod game;

use std::time::Duration;

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured, save_to_disk};
use bevy::time::TimeUpdateStrategy;
use bevy_lunar::prelude::*;
use game::{GamePlugin, Player, RunOptions};

fn main() -> AppExit {
    let options = RunOptions::from_args();
    let mut app = App::new();
    app.add_plugins(DefaultPlugins.set(WindowPlugin {
        primary_window: Some(Window {
            title: "bevy_lunar showcase".into(),
            resolution: (960, 640).into(),
            ..default()
        }),
        ..default()
    }))
    .add_plugins((LuaScriptingPlugin::default(), GamePlugin))
    .insert_resource(ClearColor(Color::srgb(0.06, 0.07, 0.12)))
    .add_systems(Startup, setup)
    .add_systems(Update, show_status);
    if options.frames.is_some() {
        // The same game at any frame rate: unattended runs are reproducible.
        app.insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_secs_f64(
            1.0 / 60.0,
        )))
        .add_systems(Last, finish_after_frames);
    }
    app.insert_resource(options).run()
}

#[derive(Component)]
struct StatusText;

fn setup(mut commands: Commands) {
    commands.spawn(Camera2d);
    commands.spawn((
        StatusText,
        Text2d::new(""),
        TextFont::from_font_size(20.0),
        Transform::from_xyz(0.0, 295.0, 10.0),
    ));
}

fn show_status(players: Query<&Player>, mut text: Single<&mut Text2d, With<StatusText>>) {
    if let Some(player) = players.iter().next() {
        text.0 = format!(
            "{}   health {:.0}   level {}   (WASD to move, Space to push)",
            player.name, player.health, player.level
        );
    }
}

/// `--frames N`: after N frames, print the game state, take the screenshot (if asked) and exit
/// once it is saved.
fn finish_after_frames(world: &mut World, mut frames: Local<u32>) {
    *frames += 1;
    let Some(limit) = world.resource::<RunOptions>().frames else {
        return;
    };
    if *frames == limit {
        println!("after {limit} frames: {}", game::summary(world));
        match world.resource::<RunOptions>().screenshot.clone() {
            Some(path) => {
                let mut save = save_to_disk(path);
                world.spawn(Screenshot::primary_window()).observe(
                    move |captured: On<ScreenshotCaptured>, mut exit: MessageWriter<AppExit>| {
                        save(captured);
                        exit.write(AppExit::Success);
                    },
                );
            }
            None => {
                world.write_message(AppExit::Success);
            }
        }
    } else if *frames > limit + 300 {
        error!("the screenshot never arrived");
        world.write_message(AppExit::error());
    }
}
