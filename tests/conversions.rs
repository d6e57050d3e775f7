//! Strict conversions: what a field accepts, what it refuses, and that a refusal changes nothing.

mod common;

use bevy_lunar::mlua::{AnyUserData, Lua};
use bevy_lunar::prelude::*;
use common::{error_of, eval, run};

#[derive(LuaUserData, Default)]
pub struct Numbers {
    pub byte: u8,
    pub small: i8,
    pub word: u32,
    pub signed: i32,
    pub big: i64,
    pub unsigned: u64,
    pub size: usize,
    pub offset: isize,
    pub short: i16,
    pub ushort: u16,
    pub ratio: f32,
    pub precise: f64,
    pub flag: bool,
    pub label: String,
    pub maybe: Option<i32>,
    pub maybe_text: Option<String>,
}

fn lua_with_numbers() -> Lua {
    let lua = Lua::new();
    lua.globals().set("n", Numbers::default()).unwrap();
    lua
}

fn numbers(lua: &Lua) -> bevy_lunar::mlua::UserDataRef<Numbers> {
    let n: AnyUserData = lua.globals().get("n").unwrap();
    n.borrow::<Numbers>().unwrap()
}

// math.maxinteger and math.type are Lua 5.3+.
#[cfg(feature = "lua54")]
#[test]
fn integers_accept_integers_and_integral_floats() {
    let lua = lua_with_numbers();
    run(
        &lua,
        "n.byte = 255; n.small = -128; n.word = 4.0; n.signed = -2147483648; n.big = math.maxinteger; \
         n.unsigned = 2^53; n.size = 12; n.offset = -3; n.short = -32768; n.ushort = 65535",
    );
    let n = numbers(&lua);
    assert_eq!(
        (n.byte, n.small, n.word, n.signed),
        (255, -128, 4, i32::MIN)
    );
    assert_eq!(
        (n.big, n.unsigned, n.size, n.offset),
        (i64::MAX, 1 << 53, 12, -3)
    );
    assert_eq!((n.short, n.ushort), (i16::MIN, u16::MAX));
    drop(n);
    let kinds: (String, String) = eval(&lua, "return math.type(n.byte), math.type(n.precise)");
    assert_eq!(kinds, ("integer".to_owned(), "float".to_owned()));
}

#[test]
fn integers_refuse_fractions_strings_and_out_of_range_values_naming_field_and_range() {
    let lua = lua_with_numbers();
    run(&lua, "n.byte = 7; n.word = 7; n.signed = 7");
    let cases = [
        (
            "n.byte = 300",
            "Numbers: bad value for field 'byte': expected an integer between 0 and 255, got 300",
        ),
        (
            "n.byte = -1",
            "Numbers: bad value for field 'byte': expected an integer between 0 and 255, got -1",
        ),
        (
            "n.byte = 3.5",
            "Numbers: bad value for field 'byte': expected an integer between 0 and 255, got 3.5",
        ),
        (
            "n.byte = '3'",
            "Numbers: bad value for field 'byte': expected an integer between 0 and 255, got string",
        ),
        (
            "n.word = 2^40",
            "Numbers: bad value for field 'word': expected an integer between 0 and 4294967295, got 1099511627776",
        ),
        (
            "n.word = -1",
            "Numbers: bad value for field 'word': expected an integer between 0 and 4294967295, got -1",
        ),
        (
            "n.signed = 0.5",
            "Numbers: bad value for field 'signed': expected an integer between -2147483648 and 2147483647, got 0.5",
        ),
        (
            "n.unsigned = -5",
            "Numbers: bad value for field 'unsigned': expected an integer between 0 and 18446744073709551615, got -5",
        ),
        (
            "n.big = 1e300",
            "Numbers: bad value for field 'big': expected an integer between -9223372036854775808 and 9223372036854775807, got 1e300",
        ),
        (
            "n.big = 0/0",
            "Numbers: bad value for field 'big': expected an integer between -9223372036854775808 and 9223372036854775807, got NaN",
        ),
        (
            "n.signed = true",
            "Numbers: bad value for field 'signed': expected an integer between -2147483648 and 2147483647, got boolean",
        ),
    ];
    for (code, expected) in cases {
        let err = error_of(&lua, code);
        assert_eq!(
            err,
            expected.replace("1e300", &1e300f64.to_string()),
            "for `{code}`"
        );
    }
    let n = numbers(&lua);
    assert_eq!(
        (n.byte, n.word, n.signed, n.unsigned, n.big),
        (7, 7, 7, 0, 0),
        "refused writes changed nothing"
    );
}

#[test]
fn floats_bools_strings_and_options_are_strict() {
    let lua = lua_with_numbers();
    run(
        &lua,
        "n.precise = 2.5; n.ratio = 3; n.flag = true; n.label = 'hi'; n.maybe = 4; n.maybe_text = 'x'",
    );
    assert_eq!(
        error_of(&lua, "n.precise = '1.5'"),
        "Numbers: bad value for field 'precise': expected number, got string"
    );
    assert_eq!(
        error_of(&lua, "n.ratio = 1e300"),
        format!(
            "Numbers: bad value for field 'ratio': expected a number within f32 range, got {}",
            1e300f64
        )
    );
    assert_eq!(
        error_of(&lua, "n.flag = 1"),
        "Numbers: bad value for field 'flag': expected boolean, got number"
    );
    assert_eq!(
        error_of(&lua, "n.flag = nil"),
        "Numbers: bad value for field 'flag': expected boolean, got nil"
    );
    assert_eq!(
        error_of(&lua, "n.label = 5"),
        "Numbers: bad value for field 'label': expected string, got number"
    );
    assert_eq!(
        error_of(&lua, "n.maybe = 'x'"),
        "Numbers: bad value for field 'maybe': expected an integer between -2147483648 and 2147483647 or nil, got string"
    );
    assert_eq!(
        error_of(&lua, "n.label = '\\xff'"),
        "Numbers: bad value for field 'label': expected a UTF-8 string, got string"
    );
    {
        let n = numbers(&lua);
        assert_eq!((n.precise, n.ratio, n.flag), (2.5, 3.0, true));
        assert_eq!(
            (n.label.as_str(), n.maybe, n.maybe_text.as_deref()),
            ("hi", Some(4), Some("x"))
        );
    }
    let (maybe, text): (Option<i32>, Option<String>) = eval(&lua, "return n.maybe, n.maybe_text");
    assert_eq!((maybe, text.as_deref()), (Some(4), Some("x")));
    run(
        &lua,
        "n.maybe = nil; n.maybe_text = nil; assert(n.maybe == nil and n.maybe_text == nil)",
    );
    let n = numbers(&lua);
    assert_eq!((n.maybe, n.maybe_text.as_deref()), (None, None));
}

#[cfg(feature = "lua54")]
#[test]
fn u64_above_i64_max_reads_as_a_float_rather_than_wrapping() {
    let lua = Lua::new();
    lua.globals()
        .set(
            "n",
            Numbers {
                unsigned: u64::MAX,
                ..Numbers::default()
            },
        )
        .unwrap();
    let value: f64 = eval(
        &lua,
        "assert(math.type(n.unsigned) == 'float'); return n.unsigned",
    );
    assert_eq!(value, u64::MAX as f64);
}

#[derive(LuaUserData)]
pub struct Empty {}

#[derive(LuaUserData)]
pub struct Unit;

#[test]
fn types_without_fields_or_methods_work() {
    let lua = Lua::new();
    lua.globals().set("e", Empty {}).unwrap();
    lua.globals().set("u", Unit).unwrap();
    assert_eq!(
        error_of(&lua, "return e.anything"),
        "Empty has no field or method 'anything'"
    );
    assert_eq!(error_of(&lua, "u.x = 1"), "Unit has no field 'x'");
    assert!(Empty::field_names().is_empty());
    // Lua 5.4's default tostring uses the metatable's __name.
    #[cfg(feature = "lua54")]
    {
        let name: String = eval(&lua, "return tostring(u)");
        assert!(name.starts_with("Unit: "), "{name}");
    }
}

#[test]
fn plain_mlua_api_works_on_derived_types() {
    let lua = Lua::new();
    let ud = lua.create_userdata(Numbers::default()).unwrap();
    lua.globals().set("n", &ud).unwrap();
    run(&lua, "n.big = 99");
    assert_eq!(ud.borrow::<Numbers>().unwrap().big, 99);
    ud.borrow_mut::<Numbers>().unwrap().big = 5;
    assert_eq!(eval::<i64>(&lua, "return n.big"), 5);
    let taken = ud.take::<Numbers>().unwrap();
    assert_eq!(taken.big, 5);
    let err = error_of(&lua, "return n.big");
    assert!(err.contains("destructed"), "{err}");
}

/// A type the user converts by hand with mlua's traits (here: a "r,g,b" string).
#[derive(Clone, Debug, PartialEq)]
pub struct Rgb(u8, u8, u8);

impl bevy_lunar::mlua::IntoLua for Rgb {
    fn into_lua(self, lua: &Lua) -> bevy_lunar::mlua::Result<bevy_lunar::mlua::Value> {
        format!("{},{},{}", self.0, self.1, self.2).into_lua(lua)
    }
}

impl bevy_lunar::mlua::FromLua for Rgb {
    fn from_lua(value: bevy_lunar::mlua::Value, lua: &Lua) -> bevy_lunar::mlua::Result<Self> {
        let text = String::from_lua(value, lua)?;
        let parts: Vec<u8> = text
            .split(',')
            .map(|p| p.trim().parse().map_err(bevy_lunar::mlua::Error::external))
            .collect::<Result<_, _>>()?;
        match parts.as_slice() {
            [r, g, b] => Ok(Rgb(*r, *g, *b)),
            _ => Err(bevy_lunar::mlua::Error::runtime("expected r,g,b")),
        }
    }
}

#[derive(LuaUserData)]
pub struct Lamp {
    pub color: Rgb,
    pub tags: Vec<String>,
}

#[lua_methods]
impl Lamp {
    pub fn tint(&mut self, color: Rgb) -> Rgb {
        std::mem::replace(&mut self.color, color)
    }
}

#[test]
fn types_with_mlua_conversions_are_fields_and_parameters_by_copy() {
    let lua = Lua::new();
    lua.globals()
        .set(
            "lamp",
            Lamp {
                color: Rgb(1, 2, 3),
                tags: vec!["hall".into()],
            },
        )
        .unwrap();
    run(
        &lua,
        r#"
        assert(lamp.color == "1,2,3")
        lamp.color = "10,20,30"
        assert(lamp:tint("7,8,9") == "10,20,30")
        local tags = lamp.tags
        assert(#tags == 1 and tags[1] == "hall")
        tags[1] = "changed" -- a collection field is a live view (tests/values.rs)
        assert(lamp.tags[1] == "changed")
        lamp.tags = { "a", "b" }
        "#,
    );
    assert_eq!(
        error_of(&lua, "lamp.color = 'red'"),
        "Lamp: bad value for field 'color': expected Rgb, got string (invalid digit found in string)"
    );
    assert_eq!(
        error_of(&lua, "lamp:tint('1,2')"),
        "bad argument #2 to `Lamp.tint`: expected Rgb, got string (runtime error: expected r,g,b)"
    );
    assert_eq!(
        error_of(&lua, "lamp.tags = 5"),
        "Lamp: bad value for field 'tags': expected string[], got number"
    );
    let lamp: AnyUserData = lua.globals().get("lamp").unwrap();
    let lamp = lamp.borrow::<Lamp>().unwrap();
    assert_eq!(lamp.color, Rgb(7, 8, 9));
    assert_eq!(lamp.tags, ["a", "b"]);
}
