-- Helpers the showcase's scripts share: a module, loaded once by the first script that requires
-- it and shared by all (see the README, "Modules"). Edit it while the game runs: both scripts
-- reload with it.

local arena = {}

--- Half the arena's size: the player stays inside.
arena.HALF = Vec2.new(440, 280)

--- The enemies: entities with a `GameEntity`, a `Transform` and a `Velocity`.
function arena.enemies()
    return world.query("GameEntity", "Transform", "Velocity")
end

--- `pos` kept inside the arena.
---@param pos Vec3
---@return Vec3
function arena.clamp(pos)
    pos.x = math.max(-arena.HALF.x, math.min(arena.HALF.x, pos.x))
    pos.y = math.max(-arena.HALF.y, math.min(arena.HALF.y, pos.y))
    return pos
end

return arena
