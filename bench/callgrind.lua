-- bench/callgrind.lua: client-side instructions per call, split into Lua layer, JSON,
-- signing and libcurl, from two callgrind profiles of bench/cost.lua.
--
--   lua5.4 bench/callgrind.lua OP N1 FILE1 N2 FILE2 [TOPFILE]
--
-- Method. bench/run runs `valgrind --tool=callgrind lua5.4 bench/cost.lua OP N` twice
-- against the fixed-response nginx, with N1 and N2 calls after the same start-up and
-- warm-up. Callgrind counts user-space instructions (Ir) only, and repeatably (the
-- kernel side of send/recv/poll is not in it). Every figure below is
-- (figure(N2) - figure(N1)) / (N2 - N1): one call, without start-up. In each profile:
--   total    = the program's total Ir;
--   json     = the inclusive cost of core.so's json_encode + json_decode (their own work
--              plus the Lua API calls they make to build strings and tables);
--   signing  = the inclusive cost of core.so's jwt.c functions (l_hs256, base64url);
--   curl     = the inclusive cost of every call into libcurl from outside it (for
--              lua-stream: the curl_* API calls of csrc/http.c in core.so, with all
--              they run: libcurl, libc, libssl/libcrypto, libz, the write/header
--              callbacks; for bench/rawcurl.c: its own curl_* calls);
--   lua      = total - json - signing - curl: the Lua VM running lua/stream/*.lua and
--              the bench loop, Lua's allocator and GC, and http.c's own glue (request
--              userdata, result and header tables).
-- These are the inclusive costs callgrind_annotate --inclusive=yes shows for those
-- functions, taken from the call edges of the raw profile so that nothing is counted
-- twice (libcurl calls some of its own API functions internally). The exclusive Ir of
-- every ELF object is added as obj_<name>= fields (attribution by object file).
-- With TOPFILE, the 40 functions with the largest exclusive Ir per call are written
-- there (object:function; lua5.4 has no symbols, so its functions are addresses).
-- Prints one line: bench kind=cost op=.. n=.. total=.. lua=.. json=.. signing=.. curl=.. obj_...
package.path = "bench/?.lua;" .. package.path
local B = require "common"

local op, n1, f1, n2, f2, topfile = arg[1], tonumber(arg[2]), arg[3], tonumber(arg[4]), arg[5], arg[6]
assert(op and n1 and f1 and n2 and f2 and n2 > n1, "usage: callgrind.lua OP N1 FILE1 N2 FILE2 [TOPFILE]")

local function short_object(path)
  local base = path:match("([^/]+)$") or path
  if base:match("^lua5%.4") or base:match("^liblua") then return "lua" end
  if base == "core.so" then return "core" end
  base = base:gsub("%.so.*$", ""):gsub("^lib", ""):gsub("[^%w]", "_")
  if base == "ld_linux_x86_64" then return "ld" end
  return base
end

local JSON_FN = { json_encode = true, json_decode = true }
local SIGN_FN = { l_hs256 = true }

-- Reads one callgrind out file; returns totals, per-object and per-function
-- exclusive costs.
local function profile(file)
  local obs, fns = {}, {}
  local cur_ob, cur_fn, call_ob, call_fn, in_call
  local t = { total = 0, json = 0, signing = 0, curl = 0, objects = {}, functions = {} }
  local function name_of(map, spec)
    local id, rest = spec:match("^%((%d+)%)%s*(.*)$")
    if not id then return spec end
    if rest ~= "" then map[id] = rest end
    return map[id]
  end
  for line in io.lines(file) do
    local c = line:byte(1)
    if c and (c >= 48 and c <= 57 or c == 43 or c == 45 or c == 42) then -- cost line
      local ir = tonumber(line:match("^%S+%s+(%d+)")) or 0
      if in_call then
        -- the inclusive cost of one call site: from the current function (in cur_ob) to call_fn
        local callee_ob = call_ob or cur_ob
        if cur_ob ~= callee_ob and short_object(callee_ob) == "core" then
          if JSON_FN[call_fn] then t.json = t.json + ir end
          if SIGN_FN[call_fn] then t.signing = t.signing + ir end
        end
        if short_object(cur_ob) ~= "curl" and callee_ob ~= cur_ob
            and short_object(callee_ob) == "curl" then
          t.curl = t.curl + ir
        end
        in_call, call_ob, call_fn = false, nil, nil
      else
        local k = short_object(cur_ob or "?")
        t.objects[k] = (t.objects[k] or 0) + ir
        local fk = k .. ":" .. (cur_fn or "?")
        t.functions[fk] = (t.functions[fk] or 0) + ir
      end
    else
      local key, val = line:match("^(%a+)=(.*)$")
      if key == "ob" then cur_ob = name_of(obs, val)
      elseif key == "fn" then cur_fn = name_of(fns, val)
      elseif key == "cob" then call_ob = name_of(obs, val)
      elseif key == "cfn" then call_fn = name_of(fns, val)
      elseif key == "calls" then in_call = true
      else
        local total = line:match("^summary:%s*(%d+)") or line:match("^totals:%s*(%d+)")
        if total then t.total = tonumber(total) end
      end
    end
  end
  return t
end

local a, b = profile(f1), profile(f2)
local dn = n2 - n1
local function per(x, y) return math.floor((y - x) / dn + 0.5) end
local out = {
  kind = "cost", op = op, n = dn,
  total = per(a.total, b.total),
  json = per(a.json, b.json),
  signing = per(a.signing, b.signing),
  curl = per(a.curl, b.curl),
}
out.lua = out.total - out.json - out.signing - out.curl
local seen = {}
for k in pairs(a.objects) do seen[k] = true end
for k in pairs(b.objects) do seen[k] = true end
for k in pairs(seen) do
  local v = per(a.objects[k] or 0, b.objects[k] or 0)
  if v ~= 0 and k:match("^[%w_]+$") and not k:match("^_+$") then out["obj_" .. k] = v end
end
B.emit({ "kind", "op", "n", "total", "lua", "json", "signing", "curl" }, out)

if topfile then
  local list = {}
  for k, v in pairs(b.functions) do
    local d = (v - (a.functions[k] or 0)) / dn
    if d >= 1 then list[#list + 1] = { k, d } end
  end
  table.sort(list, function(x, y) return x[2] > y[2] end)
  local f = assert(io.open(topfile, "w"))
  f:write(string.format("# %s: exclusive instructions per call by function (total %d per call)\n",
    op, out.total))
  for i = 1, math.min(40, #list) do
    f:write(string.format("%10.0f  %5.1f%%  %s\n", list[i][2], 100 * list[i][2] / out.total, list[i][1]))
  end
  f:close()
end
