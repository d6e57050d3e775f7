//! A headless Bevy app with the scripting plugin, its assets in a temporary directory.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use bevy::asset::AssetPlugin;
use bevy::prelude::*;
use bevy_lunar::prelude::*;

pub struct TestApp {
    pub app: App,
    pub dir: tempfile::TempDir,
}

/// Every `LuaScriptError` sent since the app started. (Bevy keeps a message only for a couple of
/// frames, so a test reading them at the end could miss early ones.)
#[derive(Resource, Default)]
pub struct ScriptErrors(pub Vec<LuaScriptError>);

fn collect_errors(mut errors: MessageReader<LuaScriptError>, mut all: ResMut<ScriptErrors>) {
    all.0.extend(errors.read().cloned());
}

impl TestApp {
    /// An app whose asset folder holds `files` (path, contents).
    pub fn new(files: &[(&str, &str)]) -> Self {
        Self::with_plugin(files, LuaScriptingPlugin::default(), false)
    }

    pub fn with_plugin(files: &[(&str, &str)], plugin: LuaScriptingPlugin, watch: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, contents) in files {
            write(dir.path(), path, contents);
        }
        let mut app = App::new();
        app.add_plugins((
            MinimalPlugins,
            AssetPlugin {
                file_path: dir.path().to_string_lossy().into_owned(),
                watch_for_changes_override: Some(watch),
                ..default()
            },
            plugin,
        ))
        .init_resource::<ScriptErrors>()
        .add_systems(Last, collect_errors);
        TestApp { app, dir }
    }

    pub fn write(&self, path: &str, contents: &str) {
        write(self.dir.path(), path, contents);
    }

    pub fn load(&self, path: &str) -> Handle<LuaScriptAsset> {
        self.app
            .world()
            .resource::<AssetServer>()
            .load(path.to_owned())
    }

    /// Spawns an entity running the script at `path`, with `bundle`.
    pub fn spawn_script(&mut self, path: &str, bundle: impl Bundle) -> Entity {
        let handle = self.load(path);
        self.app.world_mut().spawn((LuaScript(handle), bundle)).id()
    }

    /// Runs frames until `done` holds, for at most `timeout`; returns whether it did.
    pub fn run_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&mut World) -> bool,
    ) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            self.app.update();
            if done(self.app.world_mut()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }

    /// Runs frames until every script asset is loaded (or failed), then `frames` more.
    pub fn settle(&mut self, frames: usize) {
        let ready = self.run_until(Duration::from_secs(10), |world| {
            let mut scripts = world.query::<&LuaScript>();
            let ids: Vec<_> = scripts.iter(world).map(|s| s.0.id()).collect();
            let server = world.resource::<AssetServer>();
            let assets = world.resource::<Assets<LuaScriptAsset>>();
            // Loaded with the modules they require by name (or failed).
            let loaded = |id: AssetId<LuaScriptAsset>| {
                matches!(
                    server.load_state(id),
                    bevy::asset::LoadState::Loaded | bevy::asset::LoadState::Failed(_)
                )
            };
            let mut next = ids;
            let mut seen = Vec::new();
            while let Some(id) = next.pop() {
                if seen.contains(&id) {
                    continue;
                }
                seen.push(id);
                if !loaded(id) {
                    return false;
                }
                if let Some(script) = assets.get(id) {
                    next.extend(script.requires.iter().map(|m| m.id()));
                }
            }
            true
        });
        assert!(ready, "scripts did not load in time");
        for _ in 0..frames {
            self.app.update();
        }
    }

    pub fn update(&mut self) {
        self.app.update();
    }

    /// Every `LuaScriptError` sent so far, as text.
    pub fn errors(&self) -> Vec<String> {
        self.error_messages()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Every `LuaScriptError` sent so far.
    pub fn error_messages(&self) -> Vec<LuaScriptError> {
        self.app.world().resource::<ScriptErrors>().0.clone()
    }
}

fn write(dir: &Path, path: &str, contents: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}
