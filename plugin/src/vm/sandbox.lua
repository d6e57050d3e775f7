-- The script side of the sandbox (see `mod.rs`): run once on a new Lua state, before any script.
-- Returns `freeze` (a read-only view of a shared table) and `loader` (a `load` whose chunks
-- default to a given environment).
local charge, table_handler, hook_errors, keep_os, error_text, callback_threads = ...

local type, error, select, tostring, tonumber, next = type, error, select, tostring, tonumber, next
local getmetatable, setmetatable, rawget, rawset = getmetatable, setmetatable, rawget, rawset
local load, pcall, xpcall = load, pcall, xpcall
local floor, log = math.floor, math.log
local sub = string.sub

---------------------------------------------------------------------------------------------
-- Read-only shared tables. Every instance reads the same libraries, type tables and `world`:
-- scripts see them through empty proxy tables whose writes fail (`math is read-only`). A proxy
-- is empty, so `rawset` is the only way to write into one, and the sandbox's `rawset` refuses
-- (as do the `table` functions, which write existing keys raw). `__metatable` hides the real
-- table.
---------------------------------------------------------------------------------------------
local readonly = setmetatable({}, { __mode = "k" }) -- proxy -> its name
local proxies = setmetatable({}, { __mode = "k" }) -- shared table -> its proxy

local freeze

local function refuse(name, key)
    error("cannot set " .. name .. "." .. tostring(key) .. ": " .. name
        .. " is read-only (it is shared by every script; keep your own values in your own tables or globals)", 3)
end

freeze = function(shared, name)
    if readonly[shared] then return shared end
    local proxy = proxies[shared]
    if proxy then return proxy end
    local nested = false
    for _, value in next, shared do
        if type(value) == "table" then
            nested = true
            break
        end
    end
    local index = shared
    if nested then
        index = function(_, key)
            local value = shared[key]
            if type(value) == "table" then return freeze(value, name .. "." .. tostring(key)) end
            return value
        end
    end
    local metatable = {
        __index = index,
        __newindex = function(_, key) refuse(name, key) end,
        __len = function() return #shared end,
        __pairs = function(self)
            return function(_, key)
                local k, value = next(shared, key)
                if type(value) == "table" then value = freeze(value, name .. "." .. tostring(k)) end
                return k, value
            end, self, nil
        end,
        __metatable = false,
    }
    local own = getmetatable(shared)
    if type(own) == "table" and rawget(own, "__call") ~= nil then
        metatable.__call = function(_, ...) return shared(...) end
    end
    proxy = setmetatable({}, metatable)
    readonly[proxy] = name
    proxies[shared] = proxy
    return proxy
end

-- Entity handles keep the entity and cached references in their own slots (`world/handle.rs`): as
-- read-only as the proxies.
local function check_writable(t, caller)
    local name = readonly[t]
    if name then
        error(caller .. ": " .. name .. " is read-only (it is shared by every script)", 3)
    elseif getmetatable(t) == "Entity" then
        error(caller .. ": entity handles are read-only", 3)
    end
end

_G.rawset = function(t, key, value)
    if type(t) == "table" then check_writable(t, "rawset") end
    return rawset(t, key, value)
end

---------------------------------------------------------------------------------------------
-- Finalizers run with hooks off, at any allocation and when the state closes: no budget can
-- stop one. Lua 5.4 marks a table for finalization only if its metatable has `__gc` when
-- `setmetatable` is called, so refusing it there refuses it everywhere. (LuaJIT finalizes only
-- userdata, which scripts cannot make once `newproxy` is gone.)
---------------------------------------------------------------------------------------------
_G.setmetatable = function(t, metatable)
    if type(metatable) == "table" and rawget(metatable, "__gc") ~= nil then
        error("setmetatable: __gc metamethods are not available to scripts (a finalizer would run outside the instruction budget)", 2)
    end
    return setmetatable(t, metatable)
end
newproxy = nil

---------------------------------------------------------------------------------------------
-- A message handler runs with hooks off when the error was raised by a hook: the errors the
-- budget's hook raises (instructions, time, memory, depth) skip the script's handler (it could
-- loop forever), every other error reaches it.
---------------------------------------------------------------------------------------------
_G.xpcall = function(f, handler, ...)
    if type(handler) ~= "function" then return xpcall(f, handler, ...) end
    return xpcall(f, function(err)
        if hook_errors[err] then return err end
        if type(err) == "userdata" then err = error_text(err) end
        return handler(err)
    end, ...)
end

---------------------------------------------------------------------------------------------
-- An error raised in Rust (a method, a conversion, `world`) reaches Lua as mlua's error
-- userdata: `pcall`, `xpcall` and `coroutine.resume` hand scripts its text instead,
-- `path:line: message`, as Lua's own errors read (`error_text` leaves other values alone).
---------------------------------------------------------------------------------------------
local function settled(ok, ...)
    if ok then return ok, ... end
    local err = ...
    if type(err) == "userdata" then return false, error_text(err) end
    return false, err
end
_G.pcall = function(f, ...) return settled(pcall(f, ...)) end
if coroutine then
    local resume = coroutine.resume
    coroutine.resume = function(co, ...) return settled(resume(co, ...)) end
end

---------------------------------------------------------------------------------------------
-- Callbacks run on threads of the plugin's own (`callback_threads`, see `task/mod.rs`), so
-- that they can wait; to a script they are no coroutines. There `coroutine.yield` fails as
-- outside any coroutine, `isyieldable` is false and `running` gives the main thread: no script
-- can reach (resume, close) the thread of another instance's waiting callback.
---------------------------------------------------------------------------------------------
if coroutine then
    local yield, running, isyieldable = coroutine.yield, coroutine.running, coroutine.isyieldable
    local main = running()
    coroutine.yield = function(...)
        if callback_threads[running()] then
            error("attempt to yield from outside a coroutine (to wait, use wait, wait_frames, wait_until or task)", 2)
        end
        return yield(...)
    end
    coroutine.running = function()
        local co, is_main = running()
        if callback_threads[co] then return main, true end
        return co, is_main
    end
    if isyieldable then
        coroutine.isyieldable = function()
            if callback_threads[running()] then return false end
            return isyieldable()
        end
    end
end

---------------------------------------------------------------------------------------------
-- Work done inside C functions is invisible to the count hook: the functions whose work grows
-- with their arguments charge it to the budget first (`charge`, one unit per element or per 16
-- bytes, about a VM instruction's time each). Small calls charge nothing.
---------------------------------------------------------------------------------------------
local SMALL = 256

local function charge_count(count)
    if count > SMALL then charge(count) end
end

local rep = string.rep
string.rep = function(s, n, sep)
    local count = tonumber(n)
    if count and count > SMALL then
        local width = (type(s) == "string" and #s or 0) + (type(sep) == "string" and #sep or 0)
        charge(count + floor(count * width / 16))
    end
    return rep(s, n, sep)
end

local table = table
local insert, remove, sort, concat, move = table.insert, table.remove, table.sort, table.concat, table.move
local unpack = table.unpack or unpack
local function live(t)
    if type(t) == "userdata" then return table_handler(t) end
end
-- The count of elements `i..j`; `j` defaults to `#t`, which runs a lying `__len` once more.
local function span(t, i, j)
    i = tonumber(i) or 1
    j = tonumber(j)
    if j == nil then j = #t end
    return j - i + 1
end

table.insert = function(t, ...)
    local handler = live(t)
    if handler then return handler("insert", t, ...) end
    if type(t) == "table" then
        check_writable(t, "table.insert")
        if select("#", ...) >= 2 then
            local pos = tonumber((...))
            if pos then charge_count(#t - pos) end
        end
    end
    return insert(t, ...)
end
table.remove = function(t, ...)
    local handler = live(t)
    if handler then return handler("remove", t, ...) end
    if type(t) == "table" then
        check_writable(t, "table.remove")
        if select("#", ...) >= 1 then
            local pos = tonumber((...))
            if pos then charge_count(#t - pos) end
        end
    end
    return remove(t, ...)
end
table.sort = function(t, ...)
    local handler = live(t)
    if handler then
        local copy = handler("copy", t, "sort")
        sort(copy, ...)
        return handler("assign", t, copy)
    end
    if type(t) == "table" then
        check_writable(t, "table.sort")
        local n = #t
        if n > SMALL then charge(floor(n * log(n, 2))) end
    end
    return sort(t, ...)
end
table.concat = function(t, sep, i, j)
    local handler = live(t)
    if handler then return concat(handler("copy", t, "concat"), sep, i, j) end
    if type(t) == "table" then charge_count(span(t, i, j)) end
    return concat(t, sep, i, j)
end
local function unpack_any(t, i, j)
    local handler = live(t)
    if handler then return unpack(handler("copy", t, "unpack"), i, j) end
    if type(t) == "table" then charge_count(span(t, i, j)) end
    return unpack(t, i, j)
end
if table.unpack then table.unpack = unpack_any end
if _G.unpack then _G.unpack = unpack_any end
if move then
    table.move = function(a1, f, e, t, a2)
        local dest = a2
        if dest == nil then dest = a1 end
        if type(dest) == "table" then check_writable(dest, "table.move") end
        local from, to = tonumber(f), tonumber(e)
        if from and to then charge_count(to - from + 1) end
        return move(a1, f, e, t, a2)
    end
end

---------------------------------------------------------------------------------------------
-- Loading code: text chunks only, and a chunk without an explicit environment gets the
-- environment of the instance that loaded it, never the shared globals.
---------------------------------------------------------------------------------------------
-- Compiling runs in C too: a chunk charges one unit per byte of source.
local function text_only(chunk)
    if type(chunk) == "string" then
        if sub(chunk, 1, 1) == "\27" then
            return nil, "attempt to load a binary chunk (only text chunks are allowed)"
        end
        charge_count(#chunk)
    elseif type(chunk) == "function" then
        local reader, first = chunk, true
        return function()
            local piece = reader()
            if type(piece) == "string" then
                if first and piece ~= "" then
                    first = false
                    if sub(piece, 1, 1) == "\27" then
                        error("attempt to load a binary chunk (only text chunks are allowed)")
                    end
                end
                charge_count(#piece)
            end
            return piece
        end
    end
    return chunk
end

-- Every instance environment's metatable: reads fall back to the shared globals, and the
-- metatable is hidden (`getmetatable(_ENV)` is false) so no script can redirect it.
local environment = { __index = _G, __metatable = false }

-- `load` for one environment; with none, each chunk gets a fresh environment of its own.
local function loader(default_env)
    return function(chunk, name, mode, env)
        local text, err = text_only(chunk)
        if text == nil then return nil, err end
        if env == nil then env = default_env or setmetatable({}, environment) end
        return load(text, name, "t", env)
    end
end
_G.load = loader(nil)

loadstring, dofile, loadfile = nil, nil, nil
-- LuaJIT: function environments would reach the shared globals (`getfenv(0)`).
getfenv, setfenv = nil, nil
if jit then jit.off(); jit = nil end

-- The collector is shared by every script: one may ask for a collection or the memory in use,
-- not stop the collector or retune it for all.
local collectgarbage, allowed = collectgarbage, { collect = true, count = true, step = true }
_G.collectgarbage = function(option, ...)
    if option == nil or allowed[option] then return collectgarbage(option, ...) end
    error("collectgarbage(\"" .. tostring(option) .. "\") is not available to scripts: the collector is shared by every script (\"collect\", \"count\" and \"step\" are)", 2)
end

if not keep_os then
    local os = os
    _G.os = { clock = os.clock, time = os.time, date = os.date }
end

-- What a script can reach of the shared globals is read-only: `_G` (an instance's own `_G` is
-- its environment; this one is seen only if a script removes that), and the string metatable
-- (`getmetatable("").__index` is the read-only `string`).
_G._G = freeze(_G, "_G")
local strings = getmetatable("")
strings.__metatable = freeze(strings, "the string metatable")

return freeze, loader, environment
