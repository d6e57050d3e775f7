//! `Sprite` (feature `sprite`): scripts can spawn visible things and recolor them.

#![allow(dead_code)] // the stand-in struct is a description, never built

use bevy::color::Color;
use bevy::math::Vec2;
use bevy::sprite::Sprite;

use crate::prelude::*;

#[derive(LuaUserData)]
#[lua(remote = Sprite)]
struct SpriteDef {
    pub color: Color,
    pub flip_x: bool,
    pub flip_y: bool,
    /// The size in world units; `nil` for the image's own size.
    pub custom_size: Option<Vec2>,
}

#[lua_methods(remote = Sprite)]
impl SpriteDef {
    /// A plain rectangle of `color`, `size` world units wide and high.
    pub fn from_color(color: Color, size: Vec2) -> Sprite;
}
