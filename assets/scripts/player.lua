-- The player: WASD or the arrow keys move, Space pushes nearby enemies away.
-- Edit SPEED or COLOR while the game runs: the change applies on the next frame.

local arena = require("scripts/lib/arena")

local SPEED = 260
local COLOR = Color.srgb(0.35, 0.9, 0.45)

local function direction()
    local d = Vec3.ZERO
    if input.pressed("KeyW") or input.pressed("ArrowUp") then d = d + Vec3.Y end
    if input.pressed("KeyS") or input.pressed("ArrowDown") then d = d - Vec3.Y end
    if input.pressed("KeyA") or input.pressed("ArrowLeft") then d = d - Vec3.X end
    if input.pressed("KeyD") or input.pressed("ArrowRight") then d = d + Vec3.X end
    return d:normalize_or_zero()
end

local function push_enemies(center)
    for e in arena.enemies() do
        local offset = e:get("Transform").translation - center
        if offset:length() < 120 then
            local away = offset:normalize_or_zero() * 400
            local v = e:get("Velocity")
            v.x, v.y = away.x, away.y
            e:get("GameEntity").hp = e:get("GameEntity").hp - 1
        end
    end
end

-- A hit makes the player wince: a task that waits between its steps while the game goes on.
local function wince()
    local t = entity:get("Transform")
    t.scale = Vec3.new(1.4, 0.7, 1)
    wait(0.08)
    t.scale = Vec3.new(0.8, 1.2, 1)
    wait(0.08)
    t.scale = Vec3.ONE
end

local last_health

function on_start()
    local p = entity:get("Player")
    last_health = p.health
    print(p.name .. " enters the arena")
end

function on_update(dt)
    local t = entity:get("Transform")
    local pos = arena.clamp(t.translation + direction() * SPEED * dt)
    t.translation = pos

    if input.just_pressed("Space") then push_enemies(pos) end

    local p = entity:get("Player")
    if p.health < last_health then task(wince) end
    last_health = p.health
    local sprite = entity:get("Sprite")
    -- Redder as health drops.
    sprite.color = COLOR:mix(Color.srgb(0.9, 0.2, 0.2), 1 - p.health / 100)
    if not p:is_alive() then
        world.send("player_down", { level = p.level })
        p:revive()
    end
end
