//! `#[lua_impl(...)]`: std traits as metamethods, with scalars on either side and clear errors
//! for operands of other types.

mod common;

use std::ops::{BitAnd, BitOr, BitXor, Div, Mul, Not, Rem, Shl, Shr};

use bevy_lunar::mlua::Lua;
use bevy_lunar::prelude::*;
use common::{error_of, eval, run};

#[derive(LuaUserData, Clone, Copy, Debug, PartialEq, PartialOrd)]
#[lua_impl(Display, PartialEq, PartialOrd, Mul, Mul<f64>, Div<f64>, Rem<f64>)]
pub struct Meters {
    pub value: f64,
}

impl std::fmt::Display for Meters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}m", self.value)
    }
}

impl Mul for Meters {
    type Output = Meters;
    fn mul(self, rhs: Meters) -> Meters {
        Meters {
            value: self.value * rhs.value,
        }
    }
}

impl Mul<f64> for Meters {
    type Output = Meters;
    fn mul(self, k: f64) -> Meters {
        Meters {
            value: self.value * k,
        }
    }
}

impl Div<f64> for Meters {
    type Output = Meters;
    fn div(self, k: f64) -> Meters {
        Meters {
            value: self.value / k,
        }
    }
}

impl Rem<f64> for Meters {
    type Output = Meters;
    fn rem(self, k: f64) -> Meters {
        Meters {
            value: self.value % k,
        }
    }
}

#[lua_methods]
impl Meters {
    pub fn new(value: f64) -> Self {
        Meters { value }
    }
}

fn setup() -> Lua {
    let lua = Lua::new();
    bevy_lunar::register_type::<Meters>(&lua).unwrap();
    lua
}

#[test]
fn scalar_operands_work_on_either_side_of_commutative_operators() {
    let lua = setup();
    run(
        &lua,
        r#"
        local m = Meters.new(3)
        assert((m * 2).value == 6)
        assert((2 * m).value == 6)
        assert((m * m).value == 9)
        assert((m / 2).value == 1.5)
        assert((m % 2).value == 1)
        assert(tostring(m * 2.5) == "7.5m")
        assert(m.value == 3, "operands unchanged")
        "#,
    );
    assert_eq!(
        error_of(&lua, "return 2 / Meters.new(1)"),
        "Meters: unsupported operands for '/': 2 and Meters"
    );
    assert_eq!(
        error_of(&lua, "return Meters.new(1) * 'x'"),
        "Meters: unsupported operands for '*': Meters and string"
    );
    assert_eq!(
        error_of(&lua, "return Meters.new(1) * {}"),
        "Meters: unsupported operands for '*': Meters and table"
    );
}

#[test]
fn comparisons_with_other_types() {
    let lua = setup();
    lua.globals().set("other", Other { id: 1 }).unwrap();
    let (eq_number, eq_other, ne_other): (bool, bool, bool) = eval(
        &lua,
        "local m = Meters.new(1) return m == 1, m == other, m ~= other",
    );
    assert!(!eq_number && !eq_other && ne_other);
    // Lua 5.1 and LuaJIT raise their own "attempt to compare" error without calling __lt/__le
    // for operands of different types.
    if cfg!(not(feature = "lua54")) {
        return;
    }
    assert_eq!(
        error_of(&lua, "return Meters.new(1) < 2"),
        "attempt to compare Meters < 2"
    );
    assert_eq!(
        error_of(&lua, "return Meters.new(1) <= other"),
        "attempt to compare Meters <= Other"
    );
    assert_eq!(
        error_of(&lua, "return 2 <= Meters.new(1)"),
        "attempt to compare 2 <= Meters"
    );
}

#[test]
fn le_is_defined_explicitly_for_partial_orders() {
    let lua = setup();
    // With NaN, neither a < b nor b < a: Lua's old `not (b < a)` fallback would say a <= b.
    let (lt, le, ge): (bool, bool, bool) = eval(
        &lua,
        "local a, b = Meters.new(0/0), Meters.new(1) return a < b, a <= b, b <= a",
    );
    assert!(!lt && !le && !ge);
    let (le_equal, lt_equal): (bool, bool) = eval(
        &lua,
        "local a = Meters.new(1) return a <= Meters.new(1), a < Meters.new(1)",
    );
    assert!(le_equal && !lt_equal);
}

#[derive(LuaUserData)]
pub struct Other {
    pub id: u32,
}

// Bitwise metamethods exist from Lua 5.3 on: on LuaJIT and Luau the operators are not registered.
#[derive(LuaUserData, Clone, Copy, Debug, PartialEq)]
#[lua_impl(PartialEq, BitAnd, BitOr, BitXor, Shl<u32>, Shr<u32>, Not)]
pub struct Flags {
    pub bits: u8,
}

impl BitAnd for Flags {
    type Output = Flags;
    fn bitand(self, rhs: Flags) -> Flags {
        Flags {
            bits: self.bits & rhs.bits,
        }
    }
}

impl BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags {
            bits: self.bits | rhs.bits,
        }
    }
}

impl BitXor for Flags {
    type Output = Flags;
    fn bitxor(self, rhs: Flags) -> Flags {
        Flags {
            bits: self.bits ^ rhs.bits,
        }
    }
}

impl Shl<u32> for Flags {
    type Output = Flags;
    fn shl(self, n: u32) -> Flags {
        Flags {
            bits: self.bits << n,
        }
    }
}

impl Shr<u32> for Flags {
    type Output = Flags;
    fn shr(self, n: u32) -> Flags {
        Flags {
            bits: self.bits >> n,
        }
    }
}

impl Not for Flags {
    type Output = Flags;
    fn not(self) -> Flags {
        Flags { bits: !self.bits }
    }
}

#[cfg(feature = "lua54")]
#[test]
fn bitwise_operators() {
    let lua = Lua::new();
    lua.globals().set("a", Flags { bits: 0b1100 }).unwrap();
    lua.globals().set("b", Flags { bits: 0b1010 }).unwrap();
    let (and, or, xor, shl, shr, not): (u8, u8, u8, u8, u8, u8) = eval(
        &lua,
        "return (a & b).bits, (a | b).bits, (a ~ b).bits, (a << 2).bits, (a >> 2).bits, (~a).bits",
    );
    assert_eq!(
        (and, or, xor, shl, shr, not),
        (0b1000, 0b1110, 0b0110, 0b110000, 0b11, 0b11110011)
    );
    assert_eq!(
        error_of(&lua, "return a << -1"),
        "Flags: unsupported operands for '<<': Flags and -1"
    );
    let a: bevy_lunar::mlua::AnyUserData = lua.globals().get("a").unwrap();
    assert_eq!(
        a.borrow::<Flags>().unwrap().bits,
        0b1100,
        "operands unchanged"
    );
}

#[derive(LuaUserData, Clone, Debug, PartialEq)]
#[lua_impl(Display)]
pub struct Tag {
    pub name: String,
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}>", self.name)
    }
}

#[test]
fn display_backs_tostring_and_print() {
    let lua = Lua::new();
    lua.globals().set("tag", Tag { name: "b".into() }).unwrap();
    // `print` formats its arguments with luaL_tolstring, as string.format's `%s` does.
    let (tostring, formatted): (String, String) =
        eval(&lua, "return tostring(tag), string.format('%s', tag)");
    assert_eq!((tostring.as_str(), formatted.as_str()), ("<b>", "<b>"));
}
