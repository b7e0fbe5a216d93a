-- bench/common.lua: what the Lua benchmarks share (not a benchmark itself): module
-- paths (lua/ and build/5.4/, or build/jit/ under LuaJIT, of this checkout), a wall clock, the bench data (the
-- profile of the fixed server's canned user, and ~1 kB / ~10 kB data tables built
-- deterministically), a client from the environment, VmRSS, and the result line
-- format `key=value ...` that bench/report.lua reads.
-- BENCH_LPATH / BENCH_CPATH (e.g. "/tmp/other/lua/?.lua" / "/tmp/other/?.so") put another
-- lua-stream first, to compare builds in the same way.
package.path = (os.getenv("BENCH_LPATH") and (os.getenv("BENCH_LPATH") .. ";") or "")
  .. "lua/?.lua;lua/?/init.lua;bench/?.lua;" .. package.path
package.cpath = (os.getenv("BENCH_CPATH") and (os.getenv("BENCH_CPATH") .. ";") or "")
  .. (jit and "build/jit/?.so;" or "build/5.4/?.so;") .. package.cpath

local M = {}

local ok, socket = pcall(require, "socket")
if ok and socket.gettime then
  M.now = socket.gettime
else
  local sys = require "system" -- luasystem, a busted dependency
  M.now = sys.monotime or sys.gettime
end

M.stream = require "stream"
local core = M.stream.core

-- The data of the fixed server's canned user (bench/nginx-fixed.conf.in).
function M.profile()
  return {
    name = "Jane Bench", occupation = "Software Engineer", gender = "female",
    profile_image = "https://example.com/avatars/jane-bench.png",
    bio = "Writes Lua and C. Likes fast clients and slow coffee.",
    location = { city = "Amsterdam", country = "NL" },
    followers = 1342, score = 97.5, verified = true,
    tags = { "lua", "c", "benchmarks" },
  }
end

local EVENTS = { "login", "purchase", "follow", "comment", "upload" }

-- The profile plus a `history` list of mixed-type entries, grown while the
-- encoded data stays at most `bytes` long (1000 -> ~1 kB, 10000 -> ~10 kB).
function M.data(bytes)
  local d = M.profile()
  d.history = M.stream.array({})
  local i = 0
  while true do
    i = i + 1
    d.history[i] = {
      at = 1764177736 + i * 37, event = EVENTS[i % #EVENTS + 1], amount = i * 1.25,
      note = "entry " .. i .. " of the bench history, plain ASCII text",
      ok = i % 3 ~= 0,
    }
    if #assert(core.json_encode(d)) > bytes then
      d.history[i] = nil
      return d
    end
  end
end

-- A server-side client for BENCH_BASE_URL (or STREAM_BASE_URL).
function M.client()
  local base = os.getenv("BENCH_BASE_URL")
  if base == nil or base == "" then base = os.getenv("STREAM_BASE_URL") end
  if base == "" then base = nil end
  return M.stream.connect(os.getenv("STREAM_API_KEY") or "local-api-key",
    os.getenv("STREAM_API_SECRET") or "local-api-secret-change-me-0123456789",
    { base_url = assert(base, "set BENCH_BASE_URL") })
end

-- VmRSS of this process in KiB.
function M.rss_kib()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

-- Prints one result line: fields in the given order, then the rest sorted.
function M.emit(order, t)
  local parts, seen = { "bench" }, {}
  for _, k in ipairs(order) do
    if t[k] ~= nil then parts[#parts + 1] = k .. "=" .. tostring(t[k]); seen[k] = true end
  end
  local rest = {}
  for k in pairs(t) do if not seen[k] then rest[#rest + 1] = k end end
  table.sort(rest)
  for _, k in ipairs(rest) do parts[#parts + 1] = k .. "=" .. tostring(t[k]) end
  io.write(table.concat(parts, " "), "\n")
  io.flush()
end

return M
