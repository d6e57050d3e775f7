//! `Transform`, as a component: `entity:get("Transform").translation.x = 5` moves the entity.

#![allow(dead_code)] // the stand-in struct is a description, never built

use bevy::math::{Quat, Vec3};
use bevy::transform::components::Transform;

use crate::prelude::*;

#[derive(LuaUserData)]
#[lua(remote = Transform)]
#[lua_impl(PartialEq, Mul, Mul<Vec3>)]
struct TransformDef {
    pub translation: Vec3,
    pub rotation: Quat,
    pub scale: Vec3,
}

#[lua_methods(remote = Transform)]
impl TransformDef {
    pub const IDENTITY: Transform;

    pub fn from_xyz(x: f32, y: f32, z: f32) -> Transform;
    pub fn from_translation(translation: Vec3) -> Transform;
    pub fn from_rotation(rotation: Quat) -> Transform;
    pub fn from_scale(scale: Vec3) -> Transform;

    pub fn with_translation(self, translation: Vec3) -> Transform;
    pub fn with_rotation(self, rotation: Quat) -> Transform;
    pub fn with_scale(self, scale: Vec3) -> Transform;
    /// Rotates in place about the z axis: the 2D turn.
    pub fn rotate_z(&mut self, angle: f32);
    pub fn rotate_x(&mut self, angle: f32);
    pub fn rotate_y(&mut self, angle: f32);
    pub fn rotate(&mut self, rotation: Quat);
    pub fn translate_around(&mut self, point: Vec3, rotation: Quat);
    /// Where this transform puts a point given in its local space.
    pub fn transform_point(&self, point: Vec3) -> Vec3;
    pub fn mul_transform(&self, transform: Transform) -> Transform;
}
