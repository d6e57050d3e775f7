//! The global `input` table: keyboard and mouse, read from Bevy's input resources.
//!
//! ```lua
//! if input.pressed("KeyW") then speed = speed + 1 end
//! if input.just_pressed("Space") then jump() end
//! local cursor = input.mouse_position() -- Vec2 in window pixels, or nil
//! ```
//!
//! Keys are named as Bevy's `KeyCode` variants (`KeyA`, `Digit1`, `ArrowLeft`, `Space`,
//! `ShiftLeft`...), mouse buttons as `MouseButton`'s (`Left`, `Right`, `Middle`). In an app
//! without input (headless), nothing is ever pressed and the cursor is nil.

use std::collections::HashMap;
use std::sync::OnceLock;

use bevy::ecs::query::With;
use bevy::input::ButtonInput;
use bevy::input::keyboard::KeyCode;
use bevy::input::mouse::MouseButton;
use bevy::reflect::enums::{DynamicEnum, DynamicVariant};
use bevy::reflect::{FromReflect, TypeInfo, Typed};
use bevy::window::{PrimaryWindow, Window};
use mlua::{Function, Lua, LuaString, Table};

use crate::userdata::{NewUserData, script_error};
use crate::world::{with_world, with_world_ref};

pub(crate) fn input_table(lua: &Lua) -> mlua::Result<Table> {
    let input = lua.create_table()?;
    let key_queries: [(&str, ButtonQuery<KeyCode>); 3] = [
        ("pressed", ButtonInput::pressed),
        ("just_pressed", ButtonInput::just_pressed),
        ("just_released", ButtonInput::just_released),
    ];
    for (name, query) in key_queries {
        input.set(name, button_function(lua, key_code, query)?)?;
    }
    let mouse_queries: [(&str, ButtonQuery<MouseButton>); 2] = [
        ("mouse_pressed", ButtonInput::pressed),
        ("mouse_just_pressed", ButtonInput::just_pressed),
    ];
    for (name, query) in mouse_queries {
        input.set(name, button_function(lua, mouse_button, query)?)?;
    }
    input.set(
        "mouse_position",
        lua.create_function(|_, ()| {
            let position = with_world(|world| {
                let mut windows = world.query_filtered::<&Window, With<PrimaryWindow>>();
                windows.iter(world).next().and_then(Window::cursor_position)
            })?;
            Ok(position.map(NewUserData))
        })?,
    )?;
    Ok(input)
}

/// A question about one button: `ButtonInput::pressed` and its siblings.
type ButtonQuery<B> = fn(&ButtonInput<B>, B) -> bool;

/// `input.<query>(name)`: the button named `name` (parsed by `parse`) asked `query`; false when
/// the app has no `ButtonInput<B>` (headless).
fn button_function<B>(
    lua: &Lua,
    parse: fn(&str) -> mlua::Result<B>,
    query: ButtonQuery<B>,
) -> mlua::Result<Function>
where
    B: Copy + Eq + std::hash::Hash + Send + Sync + 'static,
{
    lua.create_function(move |_, name: LuaString| {
        let button = parse(&name.to_str()?)?;
        with_world_ref(|world| {
            world
                .get_resource::<ButtonInput<B>>()
                .is_some_and(|input| query(input, button))
        })
    })
}

/// `KeyCode` by variant name, built once from its reflection data so every key has its name.
fn keys() -> &'static HashMap<&'static str, KeyCode> {
    static KEYS: OnceLock<HashMap<&'static str, KeyCode>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let TypeInfo::Enum(info) = KeyCode::type_info() else {
            return HashMap::new();
        };
        info.iter()
            .filter_map(|variant| {
                let value = DynamicEnum::new(variant.name(), DynamicVariant::Unit);
                Some((variant.name(), KeyCode::from_reflect(&value)?))
            })
            .collect()
    })
}

/// Every key name scripts can use, sorted.
pub(crate) fn key_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = keys().keys().copied().collect();
    names.sort_unstable();
    names
}

fn key_code(name: &str) -> mlua::Result<KeyCode> {
    keys().get(name).copied().ok_or_else(|| {
        script_error(format!(
            "unknown key '{name}': keys are named as Bevy's KeyCode, e.g. KeyW, Digit1, Space, ArrowLeft, ShiftLeft"
        ))
    })
}

fn mouse_button(name: &str) -> mlua::Result<MouseButton> {
    Ok(match name {
        "Left" => MouseButton::Left,
        "Right" => MouseButton::Right,
        "Middle" => MouseButton::Middle,
        "Back" => MouseButton::Back,
        "Forward" => MouseButton::Forward,
        _ => {
            return Err(script_error(format!(
                "unknown mouse button '{name}': expected Left, Right, Middle, Back or Forward"
            )));
        }
    })
}
