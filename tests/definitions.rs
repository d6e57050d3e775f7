//! Editor definitions: generated from the registered types, kept current in the repository, and
//! read by a real checker: `emmylua_check`, which `.ci/run` installs (without it, the checker
//! test says so and passes without running).

#[path = "../examples/shared/game.rs"]
#[allow(dead_code)]
mod game;

use std::path::{Path, PathBuf};
use std::process::Command;

use bevy::prelude::*;
use bevy_lunar::prelude::*;

/// The hero.
#[derive(Component, LuaUserData, Clone, Debug)]
#[lua_impl(Display, Add, Neg)]
pub struct Hero {
    /// Shown above the sprite.
    pub name: String,
    pub health: f64,
    #[lua(readonly)]
    pub level: u8,
    #[lua(name = "hp")]
    pub hit_points: i32,
    pub pet: Option<Pet>,
    #[lua(skip)]
    pub cache: Vec<u8>,
    secret: u32,
}

impl std::fmt::Display for Hero {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl std::ops::Add for Hero {
    type Output = Hero;
    fn add(self, _: Hero) -> Hero {
        self
    }
}

impl std::ops::Neg for Hero {
    type Output = Hero;
    fn neg(self) -> Hero {
        self
    }
}

/// Follows the hero; reached only through `Hero.pet`, so it has no type table.
#[derive(LuaUserData, Clone, Debug)]
pub struct Pet {
    pub kind: String,
}

#[lua_methods]
impl Hero {
    /// A new hero at full health.
    pub fn new(name: String) -> Self {
        Hero {
            name,
            health: 100.0,
            level: 1,
            hit_points: 10,
            pet: None,
            cache: Vec::new(),
            secret: 0,
        }
    }

    /// Heals by `amount`;
    /// returns the new health.
    pub fn heal(&mut self, amount: f64) -> f64 {
        self.health += amount;
        self.health
    }

    pub fn greet(&self, other: &Hero, words: &str, times: Option<u32>) -> (String, bool) {
        let _ = times;
        (format!("{words}, {}", other.name), true)
    }

    #[lua(skip)]
    pub fn internal(&self) -> u32 {
        self.secret
    }
}

#[derive(Resource, LuaUserData, Default)]
pub struct Score {
    pub points: i64,
}

fn hero_app() -> App {
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        AssetPlugin::default(),
        LuaScriptingPlugin::default(),
    ))
    .register_lua_component::<Hero>()
    .init_resource::<Score>()
    .register_lua_resource::<Score>();
    app
}

/// The lines of `text` from the one starting with `start` up to the next blank line.
fn block<'a>(text: &'a str, start: &str) -> &'a str {
    let at = text
        .find(start)
        .unwrap_or_else(|| panic!("no `{start}` in:\n{text}"));
    let rest = &text[at..];
    &rest[..rest.find("\n\n").unwrap_or(rest.len())]
}

#[test]
fn derived_types_become_classes_with_docs_types_and_visibility() {
    let text = hero_app().lua_definitions();
    assert!(text.starts_with("---@meta\n"));
    assert_eq!(
        block(&text, "---The hero."),
        "---The hero.\n\
         ---@class Hero: Component\n\
         ---@field name string Shown above the sprite.\n\
         ---@field health number\n\
         ---@field hp integer\n\
         ---@field pet Pet?\n\
         ---@operator add(Hero): Hero\n\
         ---@operator unm: Hero\n\
         local Hero__value = {}\n\
         ---@readonly\n\
         ---@type integer\n\
         Hero__value.level = nil",
        "renamed under the Lua name, readonly as an assigned member, skipped and private absent"
    );
    assert!(text.contains(
        "---Heals by `amount`;\n---returns the new health.\n---@param amount number\n---@return number\nfunction Hero__value:heal(amount) end\n"
    ));
    assert!(text.contains(
        "---@param other Hero\n---@param words string\n---@param times integer?\n---@return string\n---@return boolean\nfunction Hero__value:greet(other, words, times) end\n"
    ));
    assert!(!text.contains("internal"), "skipped methods are absent");
    assert!(!text.contains("secret") && !text.contains("cache"));
    assert!(text.contains(
        "Hero = {}\n\n---A new hero at full health.\n---@param name string\n---@return Hero\nfunction Hero.new(name) end\n"
    ));
    // Nested types get a class but no type table.
    assert!(text.contains("---@class Pet\n---@field kind string\n"));
    assert!(!text.contains("\nPet = {}"));
    // Registered names for the script API.
    assert!(text.contains("---@class Score: Resource\n"));
    assert!(text.contains("---@alias ComponentName \"Hero\"|"));
    assert!(text.contains("\"KeyW\"") && text.contains("\"ArrowLeft\""));
    // Bevy's types, with constants and remote functions.
    assert!(text.contains("---@type Vec3\nVec3.ZERO = nil\n"));
    assert!(text.contains("---@operator mul(number): Vec2\n"));
}

/// The showcase app, as both examples build it, without running it.
fn showcase_definitions() -> String {
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        AssetPlugin::default(),
        LuaScriptingPlugin::default(),
        game::GamePlugin,
    ));
    app.lua_definitions()
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn committed_definitions_match_the_code() {
    let committed = std::fs::read_to_string(repo("assets/types/lunar.lua"))
        .expect("assets/types/lunar.lua is committed");
    assert!(
        committed == showcase_definitions(),
        "assets/types/lunar.lua is stale: run `cargo run --example headless -- --frames 1` to \
         regenerate it, and commit it"
    );
    assert!(repo("assets/.luarc.json").exists());
}

#[test]
fn write_lua_definitions_rewrites_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("assets/types/lunar.lua");
    let config = dir.path().join("assets/.luarc.json");
    let start = |path: &Path| {
        let mut app = hero_app();
        app.write_lua_definitions(path.to_path_buf());
        app.update();
        app
    };
    let app = start(&path);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        app.lua_definitions()
    );
    let luarc = std::fs::read_to_string(&config).unwrap();
    assert!(luarc.contains("\"library\": [\"types\"]"), "{luarc}");

    // A stale file is rewritten; a .luarc.json of the user's is left alone.
    std::fs::write(&path, "---@meta\n-- old\n").unwrap();
    std::fs::write(&config, "{}").unwrap();
    let app = start(&path);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        app.lua_definitions()
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "{}");
}

/// A folder for `emmylua_check`: the definitions `defs` in `types/lunar.lua`, and the
/// showcase's `.luarc.json`; scripts are written into it.
fn checked_workspace(defs: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("types")).unwrap();
    std::fs::write(dir.path().join("types/lunar.lua"), defs).unwrap();
    std::fs::copy(repo("assets/.luarc.json"), dir.path().join(".luarc.json")).unwrap();
    dir
}

/// One diagnostic of `emmylua_check`: its code, file and line (1-based).
#[derive(Debug, PartialEq)]
struct Diagnostic {
    code: String,
    file: String,
    line: usize,
}

fn has_emmylua_check() -> bool {
    Command::new("emmylua_check")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Runs `emmylua_check` over `workspace`; its text output is `<severity>: <message> [code]`
/// followed by `--> file:line:column`.
fn emmylua_check(workspace: &Path) -> Vec<Diagnostic> {
    let output = Command::new("emmylua_check")
        .arg(workspace)
        .output()
        .expect("run emmylua_check");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut diagnostics = Vec::new();
    let mut code = None;
    for line in text.lines() {
        let line = line.trim();
        let severity = ["error:", "warning:", "info:", "hint:"];
        if severity.iter().any(|s| line.starts_with(s)) {
            code = line
                .rsplit_once('[')
                .map(|(_, c)| c.trim_end_matches(']').to_owned());
        } else if let (Some(place), Some(code)) = (line.strip_prefix("--> "), code.take()) {
            let mut parts = place.rsplitn(3, ':');
            let (_column, line, file) = (parts.next(), parts.next(), parts.next());
            diagnostics.push(Diagnostic {
                code,
                file: file.unwrap_or_default().replace('\\', "/"),
                line: line.and_then(|l| l.parse().ok()).unwrap_or(0),
            });
        }
    }
    assert!(
        diagnostics.is_empty() == text.contains("No issues found"),
        "cannot read emmylua_check's output:\n{text}"
    );
    diagnostics
}

#[test]
fn emmylua_check_passes_the_showcase_scripts_and_finds_each_mistake() {
    if !has_emmylua_check() {
        eprintln!(
            "SKIPPED: emmylua_check is not installed (`cargo install --locked emmylua_check \
             --version 0.25.1`; .ci/run installs it)"
        );
        return;
    }
    let diagnostics = emmylua_check(&repo("assets"));
    assert_eq!(diagnostics, [], "the showcase scripts check clean");

    // The same definitions and the showcase's module, and a script with seven mistakes.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("types")).unwrap();
    std::fs::copy(
        repo("assets/types/lunar.lua"),
        dir.path().join("types/lunar.lua"),
    )
    .unwrap();
    std::fs::copy(repo("assets/.luarc.json"), dir.path().join(".luarc.json")).unwrap();
    std::fs::copy(
        repo("tests/lua/mistakes.lua"),
        dir.path().join("mistakes.lua"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("scripts/lib")).unwrap();
    std::fs::copy(
        repo("assets/scripts/lib/arena.lua"),
        dir.path().join("scripts/lib/arena.lua"),
    )
    .unwrap();
    let found: Vec<(String, usize)> = emmylua_check(dir.path())
        .into_iter()
        .map(|d| (d.code, d.line))
        .collect();
    let expected = [
        ("inject-field", 5),                // player.helth = ...: misspelled field
        ("read-only", 6),                   // entity_type is #[lua(readonly)]
        ("param-type-mismatch", 7),         // Vec3:distance takes a Vec3
        ("undefined-field", 8),             // Player::deaths is #[lua(skip)]
        ("generic-constraint-mismatch", 9), // no component is called Plyer
        ("param-type-mismatch", 10),        // no KeyCode is called Spacebar
        ("undefined-field", 11),            // require resolves the module: no `clampp` in it
    ];
    let mut found_sorted = found.clone();
    found_sorted.sort_by_key(|(_, line)| *line);
    assert_eq!(
        found_sorted,
        expected.map(|(code, line)| (code.to_owned(), line)),
        "one diagnostic per mistake"
    );
}

/// A unit-only enum: a string alias in editors.
#[derive(LuaUserData, Clone, Copy, Debug, Default)]
pub enum Team {
    #[default]
    Red,
    Blue,
}

/// What a guard does.
#[derive(Component, LuaUserData, Clone, Debug, Default)]
pub enum Order {
    #[default]
    Idle,
    /// Walks to a point.
    Walk {
        x: f64,
        y: f64,
    },
    Hold(u32),
}

#[derive(Component, LuaUserData, Clone, Debug, Default)]
pub struct Squad {
    pub names: Vec<String>,
    pub scores: std::collections::HashMap<String, i64>,
    pub tags: std::collections::BTreeSet<String>,
    pub members: Vec<Pet>,
    pub team: Team,
    pub order: Order,
    pub leader: Option<Entity>,
}

fn squad_app() -> App {
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        AssetPlugin::default(),
        LuaScriptingPlugin::default(),
    ))
    .register_lua_component::<Squad>()
    .register_lua_component::<Order>()
    .register_lua_type::<Team>();
    app
}

#[test]
fn collections_and_enums_are_typed_for_editors() {
    let text = squad_app().lua_definitions();
    assert!(
        text.contains(
            "---@class Squad: Component\n\
             ---@field names string[]\n\
             ---@field scores table<string, integer>\n\
             ---@field tags table<string, true>\n\
             ---@field members Pet[]\n\
             ---@field team Team\n\
             ---@field order Order\n\
             ---@field leader Entity?\n"
        ),
        "{text}"
    );
    assert!(text.contains("---@alias Team \"Red\"|\"Blue\"\n"), "{text}");
    assert!(
        text.contains("---@type \"Red\"\nTeam.Red = nil\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "---What a guard does.\n\
             ---@class Order: Component\n\
             ---@field kind \"Idle\"|\"Walk\"|\"Hold\"\n\
             ---@field x number\n\
             ---@field y number\n\
             ---@field [1] integer\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "---Walks to a point.\n---@class Order.Walk: Order\n---@field kind \"Walk\"\n---@field x number\n---@field y number\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("---@type Order\nOrder.Idle = nil\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "---@param fields {x: number, y: number}\n---@return Order.Walk\nfunction Order.Walk(fields) end\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "---@param arg1 integer\n---@return Order.Hold\nfunction Order.Hold(arg1) end\n"
        ),
        "{text}"
    );
}

#[test]
fn emmylua_check_reads_collections_and_enums() {
    if !has_emmylua_check() {
        eprintln!("SKIPPED: emmylua_check is not installed (see the test above)");
        return;
    }
    let dir = checked_workspace(&squad_app().lua_definitions());
    std::fs::write(
        dir.path().join("squad.lua"),
        r#"
function on_update(dt)
    local squad = entity:get("Squad")
    squad.names[1] = "Ann"
    squad.scores.ann = 3
    squad.tags.brave = true
    local first = squad.members[1]
    if first then first.kind = "cat" end
    squad.team = "Blue"
    squad.order = Order.Walk({ x = 1, y = 2 })
    local order = entity:get("Order")
    if order.kind == "Walk" then order.x = order.x + dt end
    squad.order = Order.Idle
    squad.leader = entity
end
"#,
    )
    .unwrap();
    let diagnostics = emmylua_check(dir.path());
    assert_eq!(
        diagnostics,
        [],
        "correct use of collections and enums checks clean"
    );
    std::fs::write(
        dir.path().join("squad.lua"),
        "local squad = entity:get(\"Squad\")\nsquad.team = \"Purple\"\n",
    )
    .unwrap();
    let found: Vec<String> = emmylua_check(dir.path())
        .into_iter()
        .map(|d| d.code)
        .collect();
    assert_eq!(
        found,
        ["assign-type-mismatch"],
        "a variant that does not exist is flagged"
    );
}

#[derive(bevy::ecs::message::Message, LuaUserData, Clone, Debug)]
pub struct Hit {
    pub damage: i64,
}

#[derive(bevy::ecs::event::EntityEvent, LuaUserData, Clone, Debug)]
pub struct Struck {
    pub entity: bevy::ecs::entity::Entity,
    pub force: f64,
}

#[test]
fn emmylua_check_types_world_on_wait_for_and_entity_on_by_registered_type() {
    if !has_emmylua_check() {
        eprintln!("SKIPPED: emmylua_check is not installed (see the test above)");
        return;
    }
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        bevy::asset::AssetPlugin::default(),
        LuaScriptingPlugin::default(),
    ))
    .register_lua_message::<Hit>()
    .register_lua_event::<Struck>();
    let dir = checked_workspace(&app.lua_definitions());
    let script = dir.path().join("hits.lua");
    std::fs::write(
        &script,
        "function on_start()
    world.on(\"Hit\", function(hit) print(hit.damage + 1) end)
    local hit = wait_for(\"Hit\")
    print(hit.damage)
    entity:on(\"Struck\", function(s) print(s.force * 2) end)
end
",
    )
    .unwrap();
    assert_eq!(emmylua_check(dir.path()), [], "typed use checks clean");
    std::fs::write(
        &script,
        "world.on(\"Hit\", function(hit) print(hit.damag) end)\nprint(wait_for(\"Hit\").amount)\n\
         entity:on(\"Struck\", function(s) print(s.forse) end)\n",
    )
    .unwrap();
    let found: Vec<(String, usize)> = emmylua_check(dir.path())
        .into_iter()
        .map(|d| (d.code, d.line))
        .collect();
    assert_eq!(
        found,
        [
            ("undefined-field".to_owned(), 1),
            ("undefined-field".to_owned(), 2),
            ("undefined-field".to_owned(), 3)
        ],
        "a misspelled field of a registered message or event is flagged"
    );
}

/// A component that only derives `Reflect`, exposed with `register_lua_reflect`.
#[derive(Component, Reflect, Default)]
#[reflect(Component, Default)]
struct Crate {
    /// How much it holds.
    weight: f32,
    labels: Vec<String>,
    tint: Option<Color>,
}

#[test]
fn emmylua_check_types_reflected_components_and_queries() {
    if !has_emmylua_check() {
        eprintln!("SKIPPED: emmylua_check is not installed (see the test above)");
        return;
    }
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        bevy::asset::AssetPlugin::default(),
        LuaScriptingPlugin::default(),
    ))
    .register_lua_reflect::<Crate>()
    .register_lua_reflect::<Name>();
    let defs = app.lua_definitions();
    assert!(
        defs.contains("---@class Crate: Component")
            && defs.contains("---@field tint Color?")
            // The doc comment, through bevy_reflect's documentation (the feature
            // `reflect_documentation`, on in this workspace).
            && defs.contains("---@field weight number How much it holds."),
        "{defs}"
    );
    let dir = checked_workspace(&defs);
    let script = dir.path().join("crates.lua");
    std::fs::write(
        &script,
        "function on_update()
    local c = entity:get(\"Crate\")
    c.weight = c.weight + 1
    print(#c.labels, entity:get(\"Name\"):get())
    for e, other in world.query(\"Crate\"):without(\"Name\"):each() do print(e:id(), other) end
end
",
    )
    .unwrap();
    assert_eq!(emmylua_check(dir.path()), [], "typed use checks clean");
    std::fs::write(
        &script,
        "print(entity:get(\"Crate\").wieght)\nprint(world.query(\"Crate\"):whitout(\"Name\"))\n",
    )
    .unwrap();
    let found: Vec<(String, usize)> = emmylua_check(dir.path())
        .into_iter()
        .map(|d| (d.code, d.line))
        .collect();
    assert_eq!(
        found,
        [
            ("undefined-field".to_owned(), 1),
            ("undefined-field".to_owned(), 2)
        ],
        "a misspelled field of a reflected component, or query method, is flagged"
    );
}
