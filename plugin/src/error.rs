//! Script failures as Bevy messages and log lines.

use std::fmt;

use bevy::ecs::entity::Entity;
use bevy::ecs::message::Message;

/// What went wrong in a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LuaScriptErrorKind {
    /// The file could not be read or decoded.
    Load,
    /// The file does not compile (the previous version, if any, keeps running).
    Syntax,
    /// An error raised while running the script.
    Runtime,
    /// A callback ran past the instruction budget and was stopped.
    Budget,
    /// The Lua state ran past its memory limit.
    Memory,
    /// A reference to a component or entity that no longer exists was used.
    StaleReference,
}

/// A script failure, sent as a Bevy [`Message`] and logged.
///
/// Its text names the script's asset path and, where there is one, the line:
/// `scripts/player.lua:12: attempt to index a nil value`. The same error repeated frame after
/// frame is reported once, then once more with its count when it stops or changes.
///
/// ```
/// use bevy::prelude::*;
/// use bevy_lunar::LuaScriptError;
///
/// fn show_script_errors(mut errors: MessageReader<LuaScriptError>) {
///     for error in errors.read() {
///         eprintln!("{error}");
///     }
/// }
/// # bevy::ecs::system::assert_is_system(show_script_errors);
/// ```
#[derive(Message, Debug, Clone, PartialEq)]
pub struct LuaScriptError {
    pub kind: LuaScriptErrorKind,
    /// The script's asset path (`scripts/player.lua`).
    pub path: String,
    /// The line in `path`, when the error has one.
    pub line: Option<u32>,
    /// The message, without the `path:line:` prefix.
    pub message: String,
    /// The entity whose script instance failed, if the failure belongs to one.
    pub entity: Option<Entity>,
    /// How many times in a row this error happened (1 for a new error).
    pub count: u32,
}

impl fmt::Display for LuaScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path, self.message)?,
            None => write!(f, "{}: {}", self.path, self.message)?,
        }
        if self.count > 1 {
            write!(f, " (repeated {} times)", self.count)?;
        }
        Ok(())
    }
}

impl std::error::Error for LuaScriptError {}

impl LuaScriptError {
    /// Builds the error for `err`, raised while running the script at `path`. An error raised
    /// in another file (a module the script called, in Lua or in a Rust method it called) is
    /// that file's, at its line, naming the script's line that called into it.
    pub(crate) fn from_lua(path: &str, entity: Option<Entity>, err: &mlua::Error) -> Self {
        let kind = kind_of(err);
        let (message, traceback) = flatten(err);
        let error = |path: &str, line, message| LuaScriptError {
            kind,
            path: path.to_owned(),
            line,
            message,
            entity,
            count: 1,
        };
        if let Some((line, message)) = split_location(path, &message) {
            return error(path, line, message);
        }
        let caller = |message: &str| {
            let line = traceback.as_deref().and_then(|tb| first_location(path, tb));
            match line {
                Some(line) => format!("{message} (called from {path}:{line})"),
                None => format!("{message} (called from {path})"),
            }
        };
        // Raised in Lua code of another file: its message starts with that file's location.
        if let Some(location) = leading_location(&message)
            && let Some((chunk, line)) = script_location(location)
        {
            let text = message[location.len() + 1..].trim_start();
            return error(chunk, Some(line), caller(text));
        }
        // Raised in Rust: the innermost script frame of the traceback called it.
        let frame = traceback.as_deref().and_then(|tb| {
            tb.lines()
                .map(str::trim_start)
                .filter_map(leading_location)
                .find_map(script_location)
        });
        match frame {
            Some((chunk, line)) if chunk == path => error(path, Some(line), message),
            Some((chunk, line)) => error(chunk, Some(line), caller(&message)),
            None => {
                let line = traceback.as_deref().and_then(|tb| first_location(path, tb));
                error(path, line, message)
            }
        }
    }

    pub(crate) fn new(kind: LuaScriptErrorKind, path: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let (line, message) = split_location(path, &message).unwrap_or((None, message));
        LuaScriptError {
            kind,
            path: path.to_owned(),
            line,
            message,
            entity: None,
            count: 1,
        }
    }
}

/// One source of errors' repeats (an instance's callbacks, or its tasks): an error is reported
/// once while it repeats, then with its count when it stops or changes. An error repeats when
/// its kind and line are those of the previous one: its text may change every time
/// (`error({})` names a new table each time) without flooding the log.
#[derive(Default)]
pub(crate) struct Repeats(Option<Box<LuaScriptError>>);

impl Repeats {
    /// `error` happened (`error.count` times in a row).
    pub(crate) fn error(&mut self, error: LuaScriptError, errors: &mut Vec<LuaScriptError>) {
        match &mut self.0 {
            Some(previous) if previous.kind == error.kind && previous.line == error.line => {
                previous.count += error.count;
            }
            previous => {
                if let Some(old) = previous.take().filter(|e| e.count > 1) {
                    errors.push(*old);
                }
                errors.push(error.clone());
                *previous = Some(Box::new(LuaScriptError { count: 1, ..error }));
            }
        }
    }

    /// A run without the error: a repeat held back is reported with its count.
    pub(crate) fn quiet(&mut self, errors: &mut Vec<LuaScriptError>) {
        if let Some(repeated) = self.0.take().filter(|e| e.count > 1) {
            errors.push(*repeated);
        }
    }

    /// The error held while it repeats.
    pub(crate) fn last(&self) -> Option<&LuaScriptError> {
        self.0.as_deref()
    }

    pub(crate) fn is_holding(&self) -> bool {
        self.0.is_some()
    }
}

fn kind_of(err: &mlua::Error) -> LuaScriptErrorKind {
    match err {
        mlua::Error::MemoryError(_) => LuaScriptErrorKind::Memory,
        mlua::Error::SyntaxError { .. } => LuaScriptErrorKind::Syntax,
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => {
            kind_of(cause)
        }
        mlua::Error::ExternalError(inner) => {
            match inner.downcast_ref::<crate::vm::budget::BudgetExceeded>() {
                Some(_) => LuaScriptErrorKind::Budget,
                None if inner
                    .downcast_ref::<crate::userdata::StaleReference>()
                    .is_some() =>
                {
                    LuaScriptErrorKind::StaleReference
                }
                None => LuaScriptErrorKind::Runtime,
            }
        }
        mlua::Error::RuntimeError(message)
            if message.contains(crate::vm::budget::BudgetExceeded::MESSAGE) =>
        {
            LuaScriptErrorKind::Budget
        }
        mlua::Error::RuntimeError(message)
            if message.starts_with(crate::vm::budget::MEMORY_MESSAGE)
                || message.contains(&format!(": {}", crate::vm::budget::MEMORY_MESSAGE)) =>
        {
            LuaScriptErrorKind::Memory
        }
        _ => LuaScriptErrorKind::Runtime,
    }
}

/// The innermost message of `err`, and the traceback of the callback it went through, if any.
fn flatten(err: &mlua::Error) -> (String, Option<String>) {
    match err {
        mlua::Error::CallbackError { traceback, cause } => {
            let (message, inner) = flatten(cause);
            (message, inner.or_else(|| Some(traceback.clone())))
        }
        mlua::Error::WithContext { cause, .. } => flatten(cause),
        mlua::Error::RuntimeError(message) | mlua::Error::MemoryError(message) => {
            // Lua appends its own traceback to runtime errors raised through pcall boundaries.
            let first = message
                .split("\nstack traceback:")
                .next()
                .unwrap_or(message);
            (
                first.to_owned(),
                message
                    .split_once("\nstack traceback:")
                    .map(|(_, tb)| tb.to_owned()),
            )
        }
        mlua::Error::SyntaxError { message, .. } => (message.clone(), None),
        other => (other.to_string(), None),
    }
}

/// The text a script's `pcall` gets for an error raised in Rust: `path:line: message`, as Lua's
/// own errors read, where mlua would hand it an error userdata carrying a traceback. The line
/// is the script's, the first frame of the traceback that is neither Rust, C nor the plugin's
/// own Lua (`[bevy_lunar ...]`).
pub(crate) fn script_text(err: &mlua::Error) -> String {
    let (message, traceback) = flatten(err);
    if leading_location(&message).is_some() {
        return message;
    }
    let caller = traceback.as_deref().and_then(|traceback| {
        traceback
            .lines()
            .map(str::trim_start)
            .filter(|line| !line.starts_with("[C]") && !line.starts_with("[bevy_lunar"))
            .find_map(leading_location)
    });
    match caller {
        Some(location) => format!("{location}: {message}"),
        None => message,
    }
}

/// The `chunk:line` a message or traceback line starts with.
fn leading_location(text: &str) -> Option<&str> {
    let (location, _) = text.split_once(": ")?;
    let (chunk, line) = location.rsplit_once(':')?;
    (!chunk.is_empty() && !chunk.contains('\n') && line.parse::<u32>().is_ok()).then_some(location)
}

/// A location `chunk:line` in a script file (not `[C]`, `[string "..."]` or the plugin's own
/// `[bevy_lunar ...]` code): the chunk and line.
fn script_location(location: &str) -> Option<(&str, u32)> {
    let (chunk, line) = location.rsplit_once(':')?;
    let line = line.parse().ok()?;
    (!chunk.starts_with('[') && !chunk.starts_with('=')).then_some((chunk, line))
}

/// `scripts/x.lua:12: message` as (Some(12), message) and `scripts/x.lua: message` as
/// (None, message), when it starts with `path:`.
fn split_location(path: &str, message: &str) -> Option<(Option<u32>, String)> {
    let rest = message.strip_prefix(path)?.strip_prefix(':')?;
    if let Some((line, text)) = rest.split_once(':')
        && let Ok(line) = line.parse()
    {
        return Some((Some(line), text.trim_start().to_owned()));
    }
    Some((None, rest.trim_start().to_owned()))
}

/// The first `path:line:` in a traceback: the line of the script that called into Rust. Failing
/// that, the first function of `path` it names, `<path:line>`, where that function starts
/// (LuaJIT gives no current line for a frame a hook stopped).
fn first_location(path: &str, traceback: &str) -> Option<u32> {
    let current = traceback.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix(path)?.strip_prefix(':')?;
        rest.split(':').next()?.parse().ok()
    });
    current.or_else(|| {
        let start = format!("<{path}:");
        traceback.lines().find_map(|line| {
            let (_, rest) = line.split_once(&start)?;
            rest.split('>').next()?.parse().ok()
        })
    })
}

/// `chunk:line` of the innermost script frame of `state` (a frame of the plugin's own Lua
/// code, or of a C function, has none): the line of a memory error, which Lua raises without
/// one.
///
/// SAFETY: `state` is a live Lua state whose frames are consistent now (not running, or
/// stopped in an allocation outside a stack reallocation); `lua_getstack` and `lua_getinfo`
/// with `"Sl"` only read them.
#[cfg(not(feature = "luau"))]
pub(crate) unsafe fn frame_location(state: *mut mlua::ffi::lua_State) -> Option<String> {
    for level in 0..64 {
        // SAFETY: per the caller.
        let found = unsafe {
            let mut frame: mlua::ffi::lua_Debug = std::mem::zeroed();
            if mlua::ffi::lua_getstack(state, level, &mut frame) == 0 {
                return None;
            }
            if mlua::ffi::lua_getinfo(state, c"Sl".as_ptr(), &mut frame) == 0 {
                continue;
            }
            let source = std::ffi::CStr::from_ptr(frame.short_src.as_ptr()).to_string_lossy();
            (frame.currentline > 0 && !source.starts_with("[bevy_lunar"))
                .then(|| format!("{source}:{}", frame.currentline))
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_path_line_and_repetitions() {
        let mut error = LuaScriptError::new(
            LuaScriptErrorKind::Runtime,
            "scripts/player.lua",
            "scripts/player.lua:12: attempt to index a nil value",
        );
        assert_eq!(error.line, Some(12));
        assert_eq!(
            error.to_string(),
            "scripts/player.lua:12: attempt to index a nil value"
        );
        error.count = 3;
        assert_eq!(
            error.to_string(),
            "scripts/player.lua:12: attempt to index a nil value (repeated 3 times)"
        );
        let plain = LuaScriptError::new(LuaScriptErrorKind::Load, "scripts/x.lua", "cannot read");
        assert_eq!(plain.to_string(), "scripts/x.lua: cannot read");
        let prefixed = LuaScriptError::new(
            LuaScriptErrorKind::Load,
            "scripts/x.lua",
            "scripts/x.lua: not UTF-8",
        );
        assert_eq!(
            (prefixed.line, prefixed.to_string().as_str()),
            (None, "scripts/x.lua: not UTF-8")
        );
    }
}
