//! `Color`, built in scripts as in Rust: `Color.srgb(1, 0.2, 0.2)`, `Color.hex("#ff3333")`.

#![allow(dead_code)] // the stand-in struct is a description, never built

use bevy::color::{Alpha, Color, Luminance, Mix, Srgba};

use crate::prelude::*;

#[derive(LuaUserData)]
#[lua(remote = Color)]
#[lua_impl(PartialEq)]
struct ColorDef;

#[lua_methods(remote = Color)]
impl ColorDef {
    pub const WHITE: Color;
    pub const BLACK: Color;
    /// Fully transparent.
    pub const NONE: Color;

    /// sRGB components from 0 to 1.
    pub fn srgb(red: f32, green: f32, blue: f32) -> Color;
    pub fn srgba(red: f32, green: f32, blue: f32, alpha: f32) -> Color;
    pub fn srgb_u8(red: u8, green: u8, blue: u8) -> Color;
    pub fn linear_rgb(red: f32, green: f32, blue: f32) -> Color;
    /// Hue in degrees, saturation and lightness from 0 to 1.
    pub fn hsl(hue: f32, saturation: f32, lightness: f32) -> Color;
    pub fn hsla(hue: f32, saturation: f32, lightness: f32, alpha: f32) -> Color;

    /// `"#rrggbb"`, `"rrggbb"`, `"#rgb"` or with alpha (`"#rrggbbaa"`).
    pub fn hex(hex: &str) -> Result<Color, String> {
        Srgba::hex(hex)
            .map(Color::from)
            .map_err(|err| format!("Color.hex(\"{hex}\"): {err}"))
    }

    pub fn with_alpha(&self, alpha: f32) -> Color;
    pub fn alpha(&self) -> f32;
    pub fn mix(&self, other: &Color, factor: f32) -> Color;
    pub fn lighter(&self, amount: f32) -> Color;
    pub fn darker(&self, amount: f32) -> Color;
}
