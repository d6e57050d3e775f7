//! Metamethods for `#[lua_impl(...)]`: Rust's std traits behind Lua's operators.
//!
//! Operators are registered as metamethods that take their operands as plain values, so they
//! work with the userdata on either side (`v * 2` and `2 * v`) and with live references as well
//! as owned values. Operands are cloned before the Rust operator consumes them: scripts never
//! see an operand change. An operand of a type the operator does not accept gives an error that
//! names both types; `==` against another type is simply `false`.

use std::cmp::Ordering;
use std::fmt::Display;

use super::error::script_error;
use mlua::{Either, IntoLua, Lua, MetaMethod, UserDataRef, Value};

use super::convert::{LuaConvert, describe};
use super::reference::with_value;
use super::{LuaUserData, Registrar};

/// An operand as mlua hands it over: an owned `T`, borrowed straight off the Lua stack (the
/// common case, and as cheap as hand-written `UserDataRef<T>` arguments), or any other value,
/// which may still be a live reference to a `T`.
pub type Operand<T> = Either<UserDataRef<T>, Value>;

/// One way of applying a binary operator; `Ok(None)` when the operands are not its types.
pub type BinaryHandler<T> = fn(&Lua, &Operand<T>, &Operand<T>) -> mlua::Result<Option<Value>>;

/// Runs `f` on the `T` in `operand`; `Ok(None)` if it holds none.
fn with_operand<T: LuaUserData, R>(
    operand: &Operand<T>,
    f: impl FnOnce(&T) -> R,
) -> mlua::Result<Option<R>> {
    match operand {
        Either::Left(value) => Ok(Some(f(value))),
        Either::Right(other) => with_value(other, f),
    }
}

/// How an operand appears in an error.
fn describe_operand<T: LuaUserData>(operand: &Operand<T>) -> String {
    match operand {
        Either::Left(_) => T::TYPE_NAME.to_owned(),
        Either::Right(other) => describe(other),
    }
}

/// A Lua operator backed by a std::ops trait. Implemented by the marker types of this module.
pub trait Operator {
    /// `None` where the Lua version lacks the metamethod (bitwise operators before Lua 5.3).
    const META: Option<MetaMethod>;
    const SYMBOL: &'static str;
    /// Whether `scalar op value` may be computed as `value op scalar`.
    const COMMUTATIVE: bool;
}

/// The Rust operation behind an [`Operator`] for `T op Rhs`.
pub trait Apply<T, Rhs>: Operator {
    type Output: LuaConvert;
    fn apply(lhs: T, rhs: Rhs) -> Self::Output;
}

/// The bitwise metamethods exist from Lua 5.3 on; LuaJIT and Luau have none.
#[cfg(feature = "lua54")]
macro_rules! bitwise {
    ($meta:ident) => {
        Some(MetaMethod::$meta)
    };
}
#[cfg(not(feature = "lua54"))]
macro_rules! bitwise {
    ($meta:ident) => {
        None
    };
}

macro_rules! binary_operators {
    ($($marker:ident = $trait:ident::$method:ident, $meta:expr, $symbol:literal, $commutative:literal;)*) => {$(
        #[doc = concat!("`", $symbol, "`: `std::ops::", stringify!($trait), "`.")]
        pub struct $marker;

        impl Operator for $marker {
            const META: Option<MetaMethod> = $meta;
            const SYMBOL: &'static str = $symbol;
            const COMMUTATIVE: bool = $commutative;
        }

        impl<T: std::ops::$trait<Rhs>, Rhs> Apply<T, Rhs> for $marker
        where
            T::Output: LuaConvert,
        {
            type Output = T::Output;
            fn apply(lhs: T, rhs: Rhs) -> Self::Output {
                lhs.$method(rhs)
            }
        }
    )*};
}

binary_operators! {
    AddOp = Add::add, Some(MetaMethod::Add), "+", true;
    SubOp = Sub::sub, Some(MetaMethod::Sub), "-", false;
    MulOp = Mul::mul, Some(MetaMethod::Mul), "*", true;
    DivOp = Div::div, Some(MetaMethod::Div), "/", false;
    RemOp = Rem::rem, Some(MetaMethod::Mod), "%", false;
    BitAndOp = BitAnd::bitand, bitwise!(BAnd), "&", true;
    BitOrOp = BitOr::bitor, bitwise!(BOr), "|", true;
    BitXorOp = BitXor::bitxor, bitwise!(BXor), "~", true;
    ShlOp = Shl::shl, bitwise!(Shl), "<<", false;
    ShrOp = Shr::shr, bitwise!(Shr), ">>", false;
}

/// Registers `Op` as one metamethod trying each handler in turn (`Mul` and `Mul<f64>` share
/// `__mul`). Does nothing where the Lua version has no such metamethod.
pub fn binary<T: LuaUserData, Op: Operator>(
    r: &mut impl Registrar<T>,
    handlers: Vec<BinaryHandler<T>>,
) {
    let Some(meta) = Op::META else {
        return;
    };
    r.meta_function(meta, move |lua, (lhs, rhs): (Operand<T>, Operand<T>)| {
        for handler in &handlers {
            if let Some(result) = handler(lua, &lhs, &rhs)? {
                return Ok(result);
            }
        }
        Err(unsupported::<T, Op>(&lhs, &rhs))
    });
}

/// Registers `Op` for `T op T` only: the common case, without `binary`'s handler list, so the
/// result is pushed to Lua directly.
pub fn binary_same<T, Op>(r: &mut impl Registrar<T>)
where
    T: LuaUserData + Clone,
    Op: Apply<T, T>,
    Op::Output: 'static,
{
    let Some(meta) = Op::META else {
        return;
    };
    r.meta_function(meta, |lua, (lhs, rhs): (Operand<T>, Operand<T>)| {
        match (with_operand(&lhs, T::clone)?, with_operand(&rhs, T::clone)?) {
            (Some(l), Some(r)) => Op::apply(l, r).into_lua_owned(lua),
            _ => Err(unsupported::<T, Op>(&lhs, &rhs)),
        }
    });
}

fn unsupported<T: LuaUserData, Op: Operator>(lhs: &Operand<T>, rhs: &Operand<T>) -> mlua::Error {
    script_error(format!(
        "{}: unsupported operands for '{}': {} and {}",
        T::TYPE_NAME,
        Op::SYMBOL,
        describe_operand(lhs),
        describe_operand(rhs)
    ))
}

/// `T op T`.
pub fn same<T, Op>(lua: &Lua, lhs: &Operand<T>, rhs: &Operand<T>) -> mlua::Result<Option<Value>>
where
    T: LuaUserData + Clone,
    Op: Apply<T, T>,
{
    let Some(l) = with_operand(lhs, T::clone)? else {
        return Ok(None);
    };
    let Some(r) = with_operand(rhs, T::clone)? else {
        return Ok(None);
    };
    output(lua, Op::apply(l, r))
}

fn output<O: LuaConvert>(lua: &Lua, value: O) -> mlua::Result<Option<Value>> {
    value.into_lua_owned(lua)?.into_lua(lua).map(Some)
}

/// `T op S` for a plain Lua value `S` (a number, say), and `S op T` for commutative operators.
/// See [`scalar_both`] for `S op T` computed as such.
pub fn scalar<T, S, Op>(
    lua: &Lua,
    lhs: &Operand<T>,
    rhs: &Operand<T>,
) -> mlua::Result<Option<Value>>
where
    T: LuaUserData + Clone,
    S: LuaConvert,
    Op: Apply<T, S>,
{
    let (value, other) = match with_operand(lhs, T::clone)? {
        Some(value) => (value, rhs),
        None if Op::COMMUTATIVE => match with_operand(rhs, T::clone)? {
            Some(value) => (value, lhs),
            None => return Ok(None),
        },
        None => return Ok(None),
    };
    match scalar_of::<T, S>(lua, other) {
        Some(scalar) => output(lua, Op::apply(value, scalar)),
        None => Ok(None),
    }
}

/// The scalar `S` in `operand`; `None` for a `T` (not a scalar) or a value that is not an `S`.
fn scalar_of<T, S: LuaConvert>(lua: &Lua, operand: &Operand<T>) -> Option<S> {
    match operand {
        Either::Right(other) => S::from_lua(other.clone(), lua).ok(),
        Either::Left(_) => None,
    }
}

/// `T op S` and `S op T`, each through its own Rust impl (`v / 2` and `2 / v`).
pub fn scalar_both<T, S, Op>(
    lua: &Lua,
    lhs: &Operand<T>,
    rhs: &Operand<T>,
) -> mlua::Result<Option<Value>>
where
    T: LuaUserData + Clone,
    S: LuaConvert,
    Op: Apply<T, S> + Apply<S, T>,
{
    if let Some(value) = with_operand(lhs, T::clone)? {
        return match scalar_of::<T, S>(lua, rhs) {
            Some(scalar) => output(lua, <Op as Apply<T, S>>::apply(value, scalar)),
            None => Ok(None),
        };
    }
    let Some(value) = with_operand(rhs, T::clone)? else {
        return Ok(None);
    };
    match scalar_of::<T, S>(lua, lhs) {
        Some(scalar) => output(lua, <Op as Apply<S, T>>::apply(scalar, value)),
        None => Ok(None),
    }
}

/// Chooses, for an operator entry `Op<S>` of `T`, [`scalar_both`] where Rust defines `S op T`
/// too, else [`scalar`]. Used by generated code as `(&&ScalarProbe::<T, S, Op>::new()).handler()`.
pub struct ScalarProbe<T, S, Op>(std::marker::PhantomData<(T, S, Op)>);

impl<T, S, Op> ScalarProbe<T, S, Op> {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        ScalarProbe(std::marker::PhantomData)
    }
}

pub trait ScalarBothWays<T> {
    fn handler(self) -> BinaryHandler<T>;
}

impl<T, S, Op> ScalarBothWays<T> for &&ScalarProbe<T, S, Op>
where
    T: LuaUserData + Clone,
    S: LuaConvert,
    Op: Apply<T, S> + Apply<S, T>,
{
    fn handler(self) -> BinaryHandler<T> {
        scalar_both::<T, S, Op>
    }
}

pub trait ScalarOneWay<T> {
    fn handler(self) -> BinaryHandler<T>;
}

impl<T, S, Op> ScalarOneWay<T> for &ScalarProbe<T, S, Op>
where
    T: LuaUserData + Clone,
    S: LuaConvert,
    Op: Apply<T, S>,
{
    fn handler(self) -> BinaryHandler<T> {
        scalar::<T, S, Op>
    }
}

/// `-v` (`__unm`).
pub fn neg<T, R>(r: &mut R)
where
    T: LuaUserData + Clone + std::ops::Neg,
    T::Output: LuaConvert + 'static,
    R: Registrar<T>,
{
    unary::<T, R, _>(r, MetaMethod::Unm, |v: T| -v);
}

/// `~v` (`__bnot`), where the Lua version has bitwise operators.
pub fn not<T, R>(r: &mut R)
where
    T: LuaUserData + Clone + std::ops::Not,
    T::Output: LuaConvert + 'static,
    R: Registrar<T>,
{
    #[cfg(feature = "lua54")]
    unary::<T, R, _>(r, MetaMethod::BNot, |v: T| !v);
    #[cfg(not(feature = "lua54"))]
    let _ = r;
}

fn unary<T, R, O>(r: &mut R, meta: MetaMethod, op: fn(T) -> O)
where
    T: LuaUserData + Clone,
    O: LuaConvert + 'static,
    R: Registrar<T>,
{
    // Lua passes the operand twice to unary metamethods.
    r.meta_function(
        meta,
        move |lua, (operand, _): (Operand<T>, Value)| match with_operand(&operand, T::clone)? {
            Some(value) => op(value).into_lua_owned(lua)?.into_lua(lua),
            None => Err(script_error(format!(
                "{}: unsupported operand {}",
                T::TYPE_NAME,
                describe_operand(&operand)
            ))),
        },
    );
}

/// `tostring(v)` and `print(v)` through `Display`.
pub fn display<T, R>(r: &mut R)
where
    T: LuaUserData + Display,
    R: Registrar<T>,
{
    r.meta_function(MetaMethod::ToString, |_, value: Operand<T>| {
        with_operand(&value, T::to_string)?.ok_or_else(|| {
            script_error(format!(
                "{}: __tostring on {}",
                T::TYPE_NAME,
                describe_operand(&value)
            ))
        })
    });
}

/// `tostring(v)` of an enum without `Display`: its type and variant, `State.Chasing`.
pub fn variant_display<T, R>(r: &mut R)
where
    T: LuaUserData,
    R: Registrar<T>,
{
    r.meta_function(MetaMethod::ToString, |_, value: Operand<T>| {
        let name_of = T::ENUM.map(|info| info.name_of);
        with_operand(&value, |v| match name_of {
            Some(name_of) => format!("{}.{}", T::TYPE_NAME, name_of(v)),
            None => T::TYPE_NAME.to_owned(),
        })?
        .ok_or_else(|| {
            script_error(format!(
                "{}: __tostring on {}",
                T::TYPE_NAME,
                describe_operand(&value)
            ))
        })
    });
}

/// `==` through `PartialEq`; a value of any other type is simply not equal.
pub fn eq<T, R>(r: &mut R)
where
    T: LuaUserData + PartialEq,
    R: Registrar<T>,
{
    r.meta_function(MetaMethod::Eq, |_, (lhs, rhs): (Operand<T>, Operand<T>)| {
        let equal = with_operand(&lhs, |l| with_operand(&rhs, |r| l == r))?.transpose()?;
        Ok(equal.flatten().unwrap_or(false))
    });
}

/// `<` and `<=` through `PartialOrd`. `__le` is defined explicitly rather than left to Lua's
/// `not (b < a)` fallback, which is wrong for partial orders (NaN) and gone in Lua 5.4.
pub fn ord<T, R>(r: &mut R)
where
    T: LuaUserData + PartialOrd,
    R: Registrar<T>,
{
    r.meta_function(MetaMethod::Lt, |_, (lhs, rhs): (Operand<T>, Operand<T>)| {
        compare(&lhs, &rhs, "<").map(|o| o == Some(Ordering::Less))
    });
    r.meta_function(MetaMethod::Le, |_, (lhs, rhs): (Operand<T>, Operand<T>)| {
        compare(&lhs, &rhs, "<=").map(|o| matches!(o, Some(Ordering::Less | Ordering::Equal)))
    });
}

fn compare<T: LuaUserData + PartialOrd>(
    lhs: &Operand<T>,
    rhs: &Operand<T>,
    symbol: &str,
) -> mlua::Result<Option<Ordering>> {
    let both = with_operand(lhs, |l| with_operand(rhs, |r| l.partial_cmp(r)))?.transpose()?;
    both.flatten().ok_or_else(|| {
        script_error(format!(
            "attempt to compare {} {symbol} {}",
            describe_operand(lhs),
            describe_operand(rhs)
        ))
    })
}
