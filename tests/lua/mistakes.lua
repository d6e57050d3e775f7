-- Mistakes the editor definitions let a checker find before the game runs: one diagnostic
-- each, on the lines `definitions.rs` expects.
function on_update(dt)
    local player = entity:get("Player")
    player.helth = player.health - dt
    entity:get("GameEntity").entity_type = "boss"
    print(Vec3.ZERO:distance("far"))
    print(player:deaths())
    print(entity:get("Plyer"))
    print(input.pressed("Spacebar"))
    print(require("scripts.lib.arena").clampp)
end
