//! `#[lua_methods]`: receivers, parameters, returns, renames and argument errors.

mod common;

use bevy_lunar::mlua::{AnyUserData, Function, Lua, Table, Value, Variadic};
use bevy_lunar::prelude::*;
use common::{error_of, eval, run};

#[derive(LuaUserData, Clone, Debug, PartialEq)]
pub struct Point {
    pub x: i32,
    pub y: i32,
}

#[lua_methods]
impl Point {
    pub fn new(x: i32, y: i32) -> Self {
        Point { x, y }
    }
}

#[derive(LuaUserData, Debug)]
pub struct Inventory {
    pub owner: String,
    pub gold: u32,
    items: Vec<String>,
}

#[lua_methods]
impl Inventory {
    /// A static constructor.
    pub fn new(owner: &str) -> Self {
        Inventory {
            owner: owner.to_owned(),
            gold: 0,
            items: Vec::new(),
        }
    }

    pub fn add(&mut self, item: String) {
        self.items.push(item);
    }

    pub fn count(&self) -> usize {
        self.items.len()
    }

    pub fn items(&self) -> Vec<String> {
        self.items.clone()
    }

    pub fn first_and_count(&self) -> (Option<String>, usize) {
        (self.items.first().cloned(), self.items.len())
    }

    pub fn describe(&self, prefix: Option<&str>) -> String {
        format!(
            "{}{} has {}",
            prefix.unwrap_or(""),
            self.owner,
            self.items.len()
        )
    }

    pub fn earn(&mut self, amount: u32, bonus: Option<u32>) -> u32 {
        self.gold += amount + bonus.unwrap_or(0);
        self.gold
    }

    pub fn spend(&mut self, amount: u32) -> Result<u32, String> {
        self.gold = self.gold.checked_sub(amount).ok_or_else(|| {
            format!(
                "{} cannot spend {amount} gold, has {}",
                self.owner, self.gold
            )
        })?;
        Ok(self.gold)
    }

    pub fn add_all(&mut self, items: Variadic<String>) -> usize {
        self.items.extend(items);
        self.items.len()
    }

    pub fn each(&self, callback: Function) -> bevy_lunar::mlua::Result<()> {
        for item in &self.items {
            callback.call::<()>(item.as_str())?;
        }
        Ok(())
    }

    pub fn from_table(owner: String, items: Table) -> Result<Self, String> {
        let items = items
            .sequence_values::<String>()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        Ok(Inventory {
            owner,
            gold: 0,
            items,
        })
    }

    pub fn kind_of(value: Value) -> String {
        value.type_name().to_owned()
    }

    pub fn distance(a: &Point, b: &Point) -> i32 {
        (a.x - b.x).abs() + (a.y - b.y).abs()
    }

    pub fn nudge(&self, target: &mut Point, by: i32) {
        target.x += by;
        target.y += by;
    }

    pub fn store(&mut self, point: Point) -> String {
        let entry = format!("point {},{}", point.x, point.y);
        self.items.push(entry.clone());
        entry
    }

    #[lua(name = "size")]
    pub fn len_for_lua(&self) -> usize {
        self.items.len()
    }

    #[lua(skip)]
    pub fn secret(&self) -> u32 {
        self.gold * 2
    }

    fn private_helper(&self) -> usize {
        self.items.len()
    }
}

fn setup() -> Lua {
    let lua = Lua::new();
    bevy_lunar::register_type::<Inventory>(&lua).unwrap();
    bevy_lunar::register_type::<Point>(&lua).unwrap();
    run(&lua, "inv = Inventory.new('Alice')");
    lua
}

fn with_inventory<R>(lua: &Lua, f: impl FnOnce(&Inventory) -> R) -> R {
    let inv: AnyUserData = lua.globals().get("inv").unwrap();
    f(&inv.borrow::<Inventory>().unwrap())
}

#[test]
fn methods_static_functions_and_returns() {
    let lua = setup();
    run(
        &lua,
        r#"
        inv:add("sword")
        inv:add("shield")
        assert(inv:count() == 2)
        local items = inv:items()
        assert(type(items) == "table" and #items == 2 and items[2] == "shield")
        local first, n = inv:first_and_count()
        assert(first == "sword" and n == 2)
        assert(inv:size() == 2)
        -- obj.method is a plain function taking the object first
        local count = inv.count
        assert(type(count) == "function" and count(inv) == 2)
        assert(Inventory.kind_of({}) == "table" and Inventory.kind_of(nil) == "nil")
        "#,
    );
    with_inventory(&lua, |inv| {
        assert_eq!(inv.items, ["sword", "shield"]);
        assert_eq!(inv.private_helper(), 2);
        assert_eq!(inv.secret(), 0);
    });
}

#[test]
fn option_parameters_take_nil_or_missing_as_none() {
    let lua = setup();
    let (plain, prefixed, nil_prefix): (String, String, String) = eval(
        &lua,
        "return inv:describe(), inv:describe('> '), inv:describe(nil)",
    );
    assert_eq!(plain, "Alice has 0");
    assert_eq!(prefixed, "> Alice has 0");
    assert_eq!(nil_prefix, "Alice has 0");
    assert_eq!(eval::<u32>(&lua, "return inv:earn(10)"), 10);
    assert_eq!(eval::<u32>(&lua, "return inv:earn(10, 5)"), 25);
    with_inventory(&lua, |inv| assert_eq!(inv.gold, 25));
}

#[test]
fn result_errors_become_lua_errors_and_change_nothing() {
    let lua = setup();
    run(&lua, "inv:earn(3)");
    assert_eq!(
        error_of(&lua, "inv:spend(5)"),
        "Alice cannot spend 5 gold, has 3"
    );
    assert_eq!(eval::<u32>(&lua, "return inv:spend(2)"), 1);
    let ok: bool = eval(&lua, "return (pcall(inv.spend, inv, 100))");
    assert!(!ok);
    with_inventory(&lua, |inv| assert_eq!(inv.gold, 1));
}

#[test]
fn variadic_function_table_and_value_parameters() {
    let lua = setup();
    assert_eq!(eval::<usize>(&lua, "return inv:add_all('a', 'b', 'c')"), 3);
    let seen: String = eval(
        &lua,
        "local s = '' inv:each(function(item) s = s .. item end) return s",
    );
    assert_eq!(seen, "abc");
    assert_eq!(
        error_of(&lua, "inv:add_all('d', 5)"),
        "bad argument #3 to `Inventory.add_all`: expected string, got number"
    );
    with_inventory(&lua, |inv| {
        assert_eq!(inv.items.len(), 3, "the refused call added nothing")
    });
    let (owner, n): (String, usize) = eval(
        &lua,
        "local i = Inventory.from_table('Bob', {'x', 'y'}) return i.owner, i:count()",
    );
    assert_eq!((owner.as_str(), n), ("Bob", 2));
    assert_eq!(
        error_of(&lua, "Inventory.from_table('Bob', 'x')"),
        "bad argument #2 to `Inventory.from_table`: expected table, got string"
    );
}

#[test]
fn derived_parameters_by_reference_and_by_value() {
    let lua = setup();
    run(
        &lua,
        r#"
        local a, b = Point.new(1, 2), Point.new(4, 6)
        assert(Inventory.distance(a, b) == 7)
        inv:nudge(a, 10)
        assert(a.x == 11 and a.y == 12)
        assert(inv:store(b) == "point 4,6")
        b.x = 0 -- the stored value was a copy
        "#,
    );
    with_inventory(&lua, |inv| assert_eq!(inv.items, ["point 4,6"]));
    assert_eq!(
        error_of(&lua, "Inventory.distance(Point.new(0, 0), inv)"),
        "bad argument #2 to `Inventory.distance`: expected Point, got Inventory"
    );
    assert_eq!(
        error_of(&lua, "inv:nudge({}, 1)"),
        "bad argument #2 to `Inventory.nudge`: expected Point, got table"
    );
}

#[test]
fn argument_errors_name_the_method_position_and_cause() {
    let lua = setup();
    assert_eq!(
        error_of(&lua, "inv:earn('ten')"),
        "bad argument #2 to `Inventory.earn`: expected an integer between 0 and 4294967295, got string"
    );
    assert_eq!(
        error_of(&lua, "inv:earn(1.5)"),
        "bad argument #2 to `Inventory.earn`: expected an integer between 0 and 4294967295, got 1.5"
    );
    assert_eq!(
        error_of(&lua, "inv:earn(-1)"),
        "bad argument #2 to `Inventory.earn`: expected an integer between 0 and 4294967295, got -1"
    );
    assert_eq!(
        error_of(&lua, "inv:earn(1, 'x')"),
        "bad argument #3 to `Inventory.earn`: expected an integer between 0 and 4294967295 or nil, got string"
    );
    assert_eq!(
        error_of(&lua, "Inventory.new(5)"),
        "bad argument #1 to `Inventory.new`: expected string, got number"
    );
    assert_eq!(
        error_of(&lua, "Point.new(1, 2^31)"),
        format!(
            "bad argument #2 to `Point.new`: expected an integer between -2147483648 and 2147483647, got {}",
            2f64.powi(31)
        )
    );
    let err = error_of(&lua, "inv.count(5)");
    assert!(
        err.starts_with("bad argument `self` to `Inventory.count`"),
        "{err}"
    );
    with_inventory(&lua, |inv| assert_eq!(inv.gold, 0));
}

#[test]
fn skipped_renamed_and_private_methods() {
    let lua = setup();
    assert_eq!(
        error_of(&lua, "return inv:secret()"),
        "Inventory has no field or method 'secret'"
    );
    assert_eq!(
        error_of(&lua, "return inv:len_for_lua()"),
        "Inventory has no field or method 'len_for_lua'"
    );
    assert_eq!(
        error_of(&lua, "return inv:private_helper()"),
        "Inventory has no field or method 'private_helper'"
    );
    assert_eq!(
        error_of(&lua, "inv.count = 5"),
        "Inventory: cannot assign to method 'count'"
    );
    assert_eq!(
        error_of(&lua, "return inv.items_field"),
        "Inventory has no field or method 'items_field'"
    );
    // Static functions live on the type table, not on instances.
    assert_eq!(
        error_of(&lua, "return inv.new"),
        "Inventory has no field or method 'new'"
    );
}

#[test]
fn register_type_installs_a_global_table_of_static_functions() {
    let lua = Lua::new();
    let table = bevy_lunar::register_type::<Point>(&lua).unwrap();
    let global: Table = lua.globals().get("Point").unwrap();
    assert_eq!(table, global);
    let p: AnyUserData = eval(&lua, "return Point.new(3, 4)");
    assert_eq!(*p.borrow::<Point>().unwrap(), Point { x: 3, y: 4 });
}
