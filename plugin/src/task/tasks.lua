-- Waiting and tasks, the script side (see `mod.rs`): run once on a new Lua state.
--
-- A wait yields the callback's thread to the scheduler with `WAIT, kind, argument`; the
-- scheduler resumes it when the condition holds. Callbacks that cannot wait (`on_unload`,
-- top-level code, conditions, scripts that name no wait) run on the main state: there a wait
-- raises, at the caller's line, the reason the scheduler gives (`refusal`).
local WAIT, callback_threads, start_task, defer_task, cancel_task, task_running, coroutine, refusal = ...

local yield, running = coroutine.yield, coroutine.running
local type, error, setmetatable, tostring, floor = type, error, setmetatable, tostring, math.floor

-- Called by the wait functions, never as a tail call: level 3 is their caller's line.
local function suspend(name, kind, argument)
    local co, is_main = running()
    if not callback_threads[co] then
        if is_main or co == nil then
            -- A callback that runs as a plain call: the scheduler says why it cannot wait.
            error(name .. ": " .. refusal(), 3)
        end
        error(name .. ": cannot wait inside a coroutine made with coroutine.create or wrap (start one with task(fn), which can)", 3)
    end
    return (yield(WAIT, kind, argument))
end

local function seconds_of(name, seconds, default)
    if seconds == nil and default ~= nil then return default end
    if type(seconds) ~= "number" or seconds ~= seconds then
        error(name .. ": expected a number of seconds, got " .. (seconds ~= seconds and "nan" or type(seconds)), 3)
    end
    return seconds
end

local function function_of(name, fn)
    if type(fn) ~= "function" then
        error(name .. ": expected a function, got " .. type(fn), 3)
    end
    return fn
end

--- Waits `seconds` of game time (Bevy's virtual time: pausing the game pauses the wait), at
--- least until the next frame; returns the seconds actually waited.
function wait(seconds)
    local waited = suspend("wait", "time", seconds_of("wait", seconds, 0))
    return waited
end

--- Waits `n` frames (default 1).
function wait_frames(n)
    if n == nil then n = 1 end
    if type(n) ~= "number" or n ~= floor(n) then
        error("wait_frames: expected a whole number of frames, got " .. tostring(n), 2)
    end
    suspend("wait_frames", "frames", n)
end

--- Waits until `condition()` returns a true value, checked once a frame.
function wait_until(condition)
    suspend("wait_until", "until", function_of("wait_until", condition))
end

--- Waits for the next message named `name` (a registered message type's name, or a
--- `world.send` name) sent after the wait started; returns it (a `world.send` payload).
-- `name`, or `name:component` for the lifecycle events (`Added`, `Removed`).
local function event_name(caller, name, component)
    if type(name) ~= "string" then
        error(caller .. ": expected a message name, got " .. type(name), 3)
    end
    if component ~= nil then
        if type(component) ~= "string" then
            error(caller .. ": expected a component name, got " .. type(component), 3)
        end
        return name .. ":" .. component
    end
    return name
end

function wait_for(name, component)
    local message = suspend("wait_for", "event", event_name("wait_for", name, component))
    return message
end

---------------------------------------------------------------------------------------------
-- Task handles: `cancel()`, `running()`. The handle's id is kept here (weak keys), out of the
-- script's reach: no script can forge a handle to another instance's task.
---------------------------------------------------------------------------------------------
local ids = setmetatable({}, { __mode = "k" })

local function id_of(handle, method)
    local id = ids[handle]
    if id == nil then
        error("Task:" .. method .. ": expected a task handle (call it with ':')", 3)
    end
    return id
end

local Task = {
    __index = {
        cancel = function(self)
            local id = id_of(self, "cancel")
            if id then cancel_task(id) end
        end,
        running = function(self)
            local id = id_of(self, "running")
            return id and task_running(id) or false
        end,
    },
    __metatable = "Task",
}
Task.__tostring = function(self)
    return "Task (" .. (self:running() and "running" or "done") .. ")"
end

local function handle(id)
    local h = setmetatable({}, Task)
    ids[h] = id or false
    return h
end

--- Runs `fn(...)` now, until it first waits, then on; returns its handle.
function task(fn, ...)
    return handle(start_task(function_of("task", fn), ...))
end

--- Runs `fn()` once, `seconds` from now; returns its handle.
function after(seconds, fn)
    seconds = seconds_of("after", seconds)
    return handle(defer_task(function_of("after", fn), seconds))
end

--- Calls `fn(message)` for every message named `name` from now on (each call may wait, as a
--- task of its own), in message order, until cancelled; returns its handle (a task waiting for
--- messages).
world.on = function(name, component, fn)
    if fn == nil then component, fn = nil, component end
    name = event_name("world.on", name, component)
    function_of("world.on", fn)
    return handle(start_task(function()
        while true do
            local message = suspend("world.on", "event", name)
            start_task(fn, message)
        end
    end))
end

--- Runs `fn()` every `seconds` (at most once a frame) until cancelled; returns its handle. The
--- times do not drift: each is `seconds` after the previous one was due. Each call runs as a
--- task of its own: it may wait, and an error in it is reported while the timer goes on.
function every(seconds, fn)
    seconds = seconds_of("every", seconds)
    if seconds <= 0 then error("every: the interval must be positive, got " .. seconds, 2) end
    return handle(defer_task(function_of("every", fn), seconds, seconds))
end
