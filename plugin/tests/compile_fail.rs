//! Misuse of the macros fails to compile with an error at the offending span.

// trybuild builds the cases with the default features only; the expected messages are those of
// the default (Lua 5.4) build.
#[cfg(feature = "lua54")]
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
