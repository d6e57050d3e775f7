-- The director: spawns enemies, steers them at the player, and settles contacts; a wave of
-- enemies every few seconds.

local arena = require("scripts.lib.arena")

local SPEED = 90        -- enemy top speed, world units per second
local TURN = 2.5        -- how fast enemies turn toward the player
local CONTACT = 28      -- distance at which an enemy hits the player
local DAMAGE = 12
local WAVE_EVERY = 6    -- seconds between waves
local CORNERS = { Vec2.new(-420, 260), Vec2.new(420, 260), Vec2.new(420, -260), Vec2.new(-420, -260) }

local spawned = 0

local function spawn_enemy(at)
    spawned = spawned + 1
    local e = world.spawn()
    e:insert(GameEntity.new("Crawler " .. spawned, "enemy", 2))
    e:insert(Transform.from_xyz(at.x, at.y, 1))
    e:insert(Velocity.new(0, 0))
    e:insert(Sprite.from_color(Color.srgb(0.95, 0.3, 0.25), Vec2.splat(24)))
    return e
end

local function first_player()
    for e in world.query("Player", "Transform") do return e end
end

local wave = 0

local function spawn_wave()
    wave = wave + 1
    for i = 1, math.min(wave, 4) do
        spawn_enemy(CORNERS[(wave + i) % #CORNERS + 1])
    end
end

function on_start()
    for _, corner in ipairs(CORNERS) do spawn_enemy(corner) end
    every(WAVE_EVERY, spawn_wave)
end

-- After a hot reload of this file, the waves start again (the old version's tasks are gone).
function on_unload() return { wave = wave } end
function on_reload(saved)
    wave = saved.wave
    every(WAVE_EVERY, spawn_wave)
end

function on_update(dt)
    local player = first_player()
    if player == nil then return end
    local target = player:get("Transform").translation

    for e in arena.enemies() do
        local enemy = e:get("GameEntity")
        local t = e:get("Transform")
        local to_player = target - t.translation
        local dir = to_player:normalize_or_zero()

        -- Steer: velocities are a Rust type with Lua operators.
        local v = e:get("Velocity")
        local wanted = Velocity.new(dir.x, dir.y) * SPEED
        local steered = v + (wanted - v) * math.min(1, TURN * dt)
        v.x, v.y = steered.x, steered.y
        t.translation = t.translation + Vec3.new(v.x, v.y, 0) * dt

        if enemy.hp <= 0 then
            e:despawn()
            player:get("Player").level = player:get("Player").level + 1
        elseif to_player:length() < CONTACT then
            local p = player:get("Player")
            p.health = math.max(0, p.health - DAMAGE)
            e:despawn()
        end
    end
end
