//! Building an enum's variant from Lua: `State.Chasing { target = e, speed = 2 }`.
//!
//! The derive of a data enum puts one constructor per variant in the type table. A variant with
//! named fields takes a table of them ([`VariantArgs`]), each converted as a method argument is,
//! strictly; a key that is no field of the variant is refused, so a misspelt field is an error
//! rather than a silently missing value.

use mlua::{Lua, Table, Value};

use super::convert::{ConvertError, describe_type};
use super::error::script_error;

/// The table of fields a variant is built from.
pub struct VariantArgs {
    table: Table,
    type_name: &'static str,
    variant: &'static str,
}

impl VariantArgs {
    /// Checks that `value` is a table whose keys are all among `names`.
    pub fn new(
        type_name: &'static str,
        variant: &'static str,
        value: Value,
        names: &[&str],
    ) -> mlua::Result<Self> {
        let Value::Table(table) = value else {
            return Err(script_error(format!(
                "{type_name}.{variant}: expected a table of fields ({type_name}.{variant} {{ {} = ... }}), got {}",
                names.first().copied().unwrap_or("field"),
                describe_type(&value)
            )));
        };
        for pair in table.pairs::<Value, Value>() {
            let (key, _) = pair?;
            let known = matches!(&key, Value::String(k) if names.iter().any(|n| k == n));
            if !known {
                let key = match &key {
                    Value::String(k) => k.to_string_lossy(),
                    other => describe_type(other),
                };
                return Err(script_error(format!(
                    "{type_name}.{variant} has no field '{key}' (its fields: {})",
                    names.join(", ")
                )));
            }
        }
        Ok(VariantArgs {
            table,
            type_name,
            variant,
        })
    }

    /// The field `name`, converted by `convert` (nil when absent).
    pub fn field<F>(
        &self,
        lua: &Lua,
        name: &str,
        convert: impl FnOnce(Value, &Lua) -> Result<F, ConvertError>,
    ) -> mlua::Result<F> {
        let value: Value = self.table.raw_get(name)?;
        convert(value, lua).map_err(|err| {
            script_error(format!(
                "{}.{}: bad value for field '{name}': {err}",
                self.type_name, self.variant
            ))
        })
    }
}
