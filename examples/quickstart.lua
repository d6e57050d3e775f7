-- A script driving two derived Rust types. Run it with `cargo run --example quickstart`.

hero = Player.new("Alice")
print("spawned", hero)

-- Fields read and write straight into the Rust struct.
hero.health = hero.health - 25
hero:level_up()

-- Nested fields are live: this moves the hero itself, not a copy.
hero.pos.x = 3
hero.pos = hero.pos + Vec2.new(1, 2) * 2

print("after a fight", hero, "at", hero.pos, "distance", hero.pos:length())

-- Mistakes are clear errors, and change nothing.
for _, mistake in ipairs({
    function() hero.health = "lots" end,
    function() hero.level = 2.5 end,
    function() hero.name = nil end,
    function() return hero.internal_id end,
    function() hero:level_up(1, 2, "extra args are ignored", Vec2.new(0, 0)); hero.pos = 7 end,
}) do
    local ok, err = pcall(mistake)
    print("refused:", (tostring(err):gsub("\n.*", "")))
end
print("still", hero)
