//! `Vec2`, `Vec3` and `Quat`, with glam's own functions and operators.
//!
//! ```lua
//! local v = Vec3.new(1, 2, 3) * 2 + Vec3.X
//! print(v:length(), v:normalize(), Vec3.ZERO:distance(v))
//! local turned = Quat.from_rotation_z(math.pi / 2) * Vec3.X -- (0, 1, 0)
//! ```

#![allow(dead_code)] // the stand-in structs are descriptions, never built

use bevy::math::{Quat, Vec2, Vec3};

use crate::prelude::*;

#[derive(LuaUserData)]
#[lua(remote = Vec2)]
#[lua_impl(Display, PartialEq, Add, Sub, Neg, Mul, Mul<f32>, Div, Div<f32>)]
struct Vec2Def {
    pub x: f32,
    pub y: f32,
}

#[lua_methods(remote = Vec2)]
impl Vec2Def {
    pub const ZERO: Vec2;
    pub const ONE: Vec2;
    pub const X: Vec2;
    pub const Y: Vec2;
    pub const NEG_X: Vec2;
    pub const NEG_Y: Vec2;

    pub fn new(x: f32, y: f32) -> Vec2;
    pub fn splat(v: f32) -> Vec2;
    /// The unit vector at `angle` radians from +x.
    pub fn from_angle(angle: f32) -> Vec2;

    pub fn length(self) -> f32;
    pub fn length_squared(self) -> f32;
    pub fn distance(self, rhs: Vec2) -> f32;
    pub fn distance_squared(self, rhs: Vec2) -> f32;
    pub fn dot(self, rhs: Vec2) -> f32;
    /// The length-1 vector in the same direction; NaN for the zero vector.
    pub fn normalize(self) -> Vec2;
    pub fn normalize_or_zero(self) -> Vec2;
    pub fn lerp(self, rhs: Vec2, s: f32) -> Vec2;
    pub fn move_towards(self, rhs: Vec2, d: f32) -> Vec2;
    pub fn clamp_length_max(self, max: f32) -> Vec2;
    pub fn abs(self) -> Vec2;
    pub fn min(self, rhs: Vec2) -> Vec2;
    pub fn max(self, rhs: Vec2) -> Vec2;
    /// Rotated by the angle of `rhs` (complex multiplication).
    pub fn rotate(self, rhs: Vec2) -> Vec2;
    pub fn perp(self) -> Vec2;
    pub fn to_angle(self) -> f32;
    pub fn angle_to(self, rhs: Vec2) -> f32;
    pub fn extend(self, z: f32) -> Vec3;
}

#[derive(LuaUserData)]
#[lua(remote = Vec3)]
#[lua_impl(Display, PartialEq, Add, Sub, Neg, Mul, Mul<f32>, Div, Div<f32>)]
struct Vec3Def {
    pub x: f32,
    pub y: f32,
    pub z: f32,
}

#[lua_methods(remote = Vec3)]
impl Vec3Def {
    pub const ZERO: Vec3;
    pub const ONE: Vec3;
    pub const X: Vec3;
    pub const Y: Vec3;
    pub const Z: Vec3;
    pub const NEG_X: Vec3;
    pub const NEG_Y: Vec3;
    pub const NEG_Z: Vec3;

    pub fn new(x: f32, y: f32, z: f32) -> Vec3;
    pub fn splat(v: f32) -> Vec3;

    pub fn length(self) -> f32;
    pub fn length_squared(self) -> f32;
    pub fn distance(self, rhs: Vec3) -> f32;
    pub fn distance_squared(self, rhs: Vec3) -> f32;
    pub fn dot(self, rhs: Vec3) -> f32;
    pub fn cross(self, rhs: Vec3) -> Vec3;
    /// The length-1 vector in the same direction; NaN for the zero vector.
    pub fn normalize(self) -> Vec3;
    pub fn normalize_or_zero(self) -> Vec3;
    pub fn lerp(self, rhs: Vec3, s: f32) -> Vec3;
    pub fn move_towards(self, rhs: Vec3, d: f32) -> Vec3;
    pub fn clamp_length_max(self, max: f32) -> Vec3;
    pub fn abs(self) -> Vec3;
    pub fn min(self, rhs: Vec3) -> Vec3;
    pub fn max(self, rhs: Vec3) -> Vec3;
    pub fn angle_between(self, rhs: Vec3) -> f32;
    /// `(x, y)`, dropping `z`.
    pub fn truncate(self) -> Vec2;
}

/// A rotation. Its components are read-only: build one from an axis and angle instead.
#[derive(LuaUserData)]
#[lua(remote = Quat)]
#[lua_impl(Display, PartialEq, Mul, Mul<Vec3>)]
struct QuatDef {
    #[lua(readonly)]
    pub x: f32,
    #[lua(readonly)]
    pub y: f32,
    #[lua(readonly)]
    pub z: f32,
    #[lua(readonly)]
    pub w: f32,
}

#[lua_methods(remote = Quat)]
impl QuatDef {
    pub const IDENTITY: Quat;

    /// `angle` in radians, counter-clockwise about `axis` (normalized).
    pub fn from_axis_angle(axis: Vec3, angle: f32) -> Quat;
    pub fn from_rotation_x(angle: f32) -> Quat;
    pub fn from_rotation_y(angle: f32) -> Quat;
    /// The 2D rotation: counter-clockwise by `angle` radians.
    pub fn from_rotation_z(angle: f32) -> Quat;

    pub fn mul_vec3(self, rhs: Vec3) -> Vec3;
    pub fn inverse(self) -> Quat;
    pub fn normalize(self) -> Quat;
    pub fn angle_between(self, rhs: Quat) -> f32;
    pub fn slerp(self, end: Quat, s: f32) -> Quat;
}
