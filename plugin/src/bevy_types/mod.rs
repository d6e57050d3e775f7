//! Bevy's own types for scripts: the math types, `Transform`, `Color` and (with the `sprite`
//! feature) `Sprite`. Each is described with a remote derive, exactly as a user would expose a
//! type from another crate (see the README's "Foreign types").

mod color;
mod math;
#[cfg(feature = "sprite")]
mod sprite;
mod transform;

use bevy::app::App;

use crate::LuaAppExt;

/// Registers every type of this module; called by the plugin.
pub(crate) fn register(app: &mut App) {
    app.register_lua_type::<bevy::math::Vec2>()
        .register_lua_type::<bevy::math::Vec3>()
        .register_lua_type::<bevy::math::Quat>()
        .register_lua_type::<bevy::color::Color>()
        .register_lua_component::<bevy::transform::components::Transform>();
    #[cfg(feature = "sprite")]
    app.register_lua_component::<bevy::sprite::Sprite>();
}
