-- bench/timeline.lua: the enriched-timeline benchmark's Lua side (bench/timeline runs it).
--
--   lua5.4 bench/timeline.lua record FILE   against the local server (STREAM_* from the
--                                           environment): 25 players with ~500-byte
--                                           profiles post into one user feed that a
--                                           timeline follows; the enriched read of that
--                                           timeline (limit 25) is written to FILE
--   lua5.4 bench/timeline.lua read N WARM   feed:get{enrich = true, limit = 25} N times in
--                                           a row against STREAM_BASE_URL (the fixed
--                                           server serving the recording)
--   lua5.4 bench/timeline.lua decode FILE N the C codec and lua-cjson decoding FILE N times
--                                           each, alternating in chunks
-- Every result is one `bench key=value ...` line.
package.path = "bench/?.lua;" .. package.path
local common = require "common"
local stream = common.stream

local mode = arg[1]

local function line(fields)
  local keys = {}
  for k in pairs(fields) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = { "bench" }
  for _, k in ipairs(keys) do out[#out + 1] = k .. "=" .. tostring(fields[k]) end
  print(table.concat(out, " "))
end

if mode == "record" then
  local c = stream.connect()
  local run = tostring(os.time())
  local timeline = c:feed("timeline", "bench-reader-" .. run)
  local source = c:feed("user", "bench-board-" .. run)
  assert(timeline:follow(source))
  for i = 1, 25 do
    local player = c:user(string.format("bench-player-%s-%02d", run, i))
    local profile = common.profile()
    profile.name = "Player " .. i
    assert(player:create(profile))
    assert(source:add_activity({ actor = player, verb = "cleared", object = "level:" .. i,
      points = i * 1000, tags = { "speedrun", "bench" } }))
  end
  local page = assert(timeline:get({ enrich = true, limit = 25 }))
  assert(#page.results == 25 and type(page.results[1].actor) == "table")
  local text = assert(stream.json.encode(page))
  local f = assert(io.open(arg[2], "wb"))
  f:write(text)
  f:close()
  line({ what = "recorded", bytes = #text, activities = #page.results })
elseif mode == "read" then
  local n, warm = tonumber(arg[2]), tonumber(arg[3])
  local c = stream.connect()
  local feed = c:feed("timeline", "bench-reader")
  local function once()
    local page = feed:get({ enrich = true, limit = 25 })
    if not page or #page.results ~= 25 then error("bad answer") end
  end
  for _ = 1, warm do once() end
  local t0, c0 = common.now(), os.clock()
  for _ = 1, n do once() end
  local secs, cpu = common.now() - t0, os.clock() - c0
  line({ client = "lua-stream", op = "timeline", n = n, seconds = string.format("%.3f", secs),
    rps = string.format("%.0f", n / secs), cpu_us = string.format("%.1f", cpu / n * 1e6) })
elseif mode == "decode" then
  local cjson = require "cjson"
  local f = assert(io.open(arg[2], "rb"))
  local text = f:read("a")
  f:close()
  local n = tonumber(arg[3])
  local decoders = { ["lua-stream"] = stream.json.decode, ["lua-cjson"] = cjson.decode }
  local spent = { ["lua-stream"] = 0, ["lua-cjson"] = 0 }
  local chunk = math.max(1, n // 20)
  for _ = 1, 20 do
    for name, decode in pairs(decoders) do
      local t0 = os.clock()
      for _ = 1, chunk do decode(text) end
      spent[name] = spent[name] + os.clock() - t0
    end
  end
  for name, s in pairs(spent) do
    line({ client = name, op = "decode", bytes = #text, n = chunk * 20,
      us_per_decode = string.format("%.1f", s / (chunk * 20) * 1e6) })
  end
else
  io.stderr:write("usage: see the header of bench/timeline.lua\n")
  os.exit(2)
end
