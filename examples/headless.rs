//! The showcase game without a window: the same scripts (`assets/scripts/`) run headless and the
//! game state is printed once a second. Edit a script while it runs to see hot reload.
//!
//! `cargo run --example headless` (Ctrl-C to stop; `--frames N` to stop after N frames)

#[path = "shared/game.rs"]
mod game;

use std::time::Duration;

use bevy::app::ScheduleRunnerPlugin;
use bevy::prelude::*;
use bevy::time::common_conditions::on_timer;
use bevy_lunar::prelude::*;
use game::{GamePlugin, RunOptions};

fn main() -> AppExit {
    let options = RunOptions::from_args();
    App::new()
        .add_plugins((
            MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_secs_f64(
                1.0 / 60.0,
            ))),
            AssetPlugin::default(),
            bevy::log::LogPlugin::default(),
            LuaScriptingPlugin::default(),
            GamePlugin,
        ))
        .add_systems(
            Update,
            (
                print_state.run_if(on_timer(Duration::from_secs(1))),
                stop_after_frames,
            ),
        )
        .insert_resource(options)
        .run()
}

fn print_state(world: &mut World) {
    let elapsed = world.resource::<Time>().elapsed_secs();
    println!("[{elapsed:5.1} s] {}", game::summary(world));
}

fn stop_after_frames(
    options: Res<RunOptions>,
    mut frames: Local<u32>,
    mut exit: MessageWriter<AppExit>,
) {
    *frames += 1;
    if options.frames.is_some_and(|limit| *frames >= limit) {
        exit.write(AppExit::Success);
    }
}
