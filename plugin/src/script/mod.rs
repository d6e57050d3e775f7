//! Scripts and what runs them: `.lua` assets and their loader, the components that attach them
//! to entities, chunks compiled once per script, modules (`require`), instances (one per
//! attached script, with its own environment) and the runtime that plans and runs a frame of
//! them.

pub(crate) mod asset;
pub(crate) mod chunk;
pub(crate) mod component;
pub(crate) mod instance;
pub(crate) mod module;
pub(crate) mod runtime;
