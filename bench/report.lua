-- bench/report.lua: turns bench/out/results.txt into the tables of bench/README.md
-- (not a benchmark itself).
--
--   lua5.4 bench/report.lua RESULTS OUTDIR
--
-- Throughput: the median over the repetitions of each (client, server, op, mode). Ratios
-- (lua-stream / raw libcurl, / getstream JS, / wrk) are paired: the ratio of the two
-- clients within each repetition (they ran one right after the other on the same
-- requests), then the median of those ratios, so a change of machine load between
-- repetitions moves both sides of a ratio alike. Writes OUTDIR/report.md (markdown
-- tables, also printed) and OUTDIR/throughput.dat (the medians per server for
-- bench/throughput.gp).
local results, outdir = assert(arg[1], "usage: report.lua RESULTS OUTDIR"), arg[2] or "."

local machine, settings = {}, ""
local tput, cpu, byrep, cost, memory, footprint = {}, {}, {}, {}, nil, nil
local failed = {}
for line in io.lines(results) do
  local k, v = line:match("^# machine ([%w_]+)=(.*)$")
  if k then
    machine[#machine + 1] = { k, v }
  elseif line:match("^# settings ") then
    settings = line:sub(12)
  elseif line:match("^bench ") then
    local t = {}
    for key, val in line:gmatch("(%S+)=(%S+)") do t[key] = tonumber(val) or val end
    if (tonumber(t.errors) or 0) > 0 then failed[#failed + 1] = line end
    if t.client and t.rps then
      local key = table.concat({ t.client, t.server, t.op, t.mode }, "/")
      tput[key] = tput[key] or {}
      table.insert(tput[key], t.rps)
      byrep[key] = byrep[key] or {}
      byrep[key][t.rep or 1] = t.rps
      if t.cpu_us then
        cpu[key] = cpu[key] or {}
        table.insert(cpu[key], t.cpu_us)
      end
    elseif t.kind == "cost" then
      cost[t.op] = t
    elseif t.kind == "memory" then
      memory = t
    elseif t.kind == "footprint" then
      footprint = t
    end
  end
end

local function median(list)
  if not list or #list == 0 then return nil end
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  local m = #s // 2
  if #s % 2 == 1 then return s[m + 1] end
  return (s[m] + s[m + 1]) / 2
end

local function key(client, server, op, mode) return table.concat({ client, server, op, mode }, "/") end
local function rps(...) return median(tput[key(...)]) end
local function cpu_us(...) return median(cpu[key(...)]) end

-- Median over the repetitions of a/b, both measured in the same repetition.
local function paired(ca, cb, server, op, mode)
  local a, b = byrep[key(ca, server, op, mode)], byrep[key(cb, server, op, mode)]
  if not a or not b then return nil end
  local list = {}
  for rep, x in pairs(a) do
    if b[rep] and b[rep] > 0 then list[#list + 1] = x / b[rep] end
  end
  return median(list), #list
end

local function spread(client, server, op, mode)
  local l = tput[key(client, server, op, mode)]
  if not l or #l < 2 then return nil end
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(l) do lo = math.min(lo, v); hi = math.max(hi, v) end
  return (hi - lo) / median(l)
end

local function num(x)
  if x == nil then return "–" end
  local s = string.format("%.0f", x)
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""):gsub("^%-,", "-"))
end

local function fmt(x, f) return x and string.format(f, x) or "–" end

local out = {}
local function p(...) out[#out + 1] = table.concat({ ... }) end

p("### Machine and run")
p("")
p("| | |")
p("|---|---|")
for _, kv in ipairs(machine) do p("| ", kv[1], " | ", kv[2], " |") end
p("| settings | ", settings, " |")
p("")

local SERVERS = { { "fixed", "fixed-response nginx" }, { "local", "local server" } }
local OPS = { "get", "create", "update" }
local MODES = { { "seq", "sequential" }, { "par", "32 in flight" } }

p("### Throughput (requests/s, median of the repetitions)")
p("")
p("| server | call | mode | wrk | raw libcurl | lua-stream | getstream JS | lua / raw | lua / JS | lua / wrk "
  .. "| spread lua |")
p("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
local dat = {}
for _, sv in ipairs(SERVERS) do
  local s = sv[1]
  if rps("lua", s, "get", "seq") then
    dat[#dat + 1] = "# " .. sv[2]
    for _, op in ipairs(OPS) do
      for _, md in ipairs(MODES) do
        local m = md[1]
        local w, r, l, j = rps("wrk", s, op, m), rps("raw", s, op, m), rps("lua", s, op, m), rps("js", s, op, m)
        local sp = spread("lua", s, op, m)
        p("| ", sv[2], " | ", op, " | ", md[2], " | ", num(w), " | ", num(r), " | ", num(l), " | ", num(j),
          " | ", fmt(paired("lua", "raw", s, op, m), "%.2f"), " | ", fmt(paired("lua", "js", s, op, m), "%.1f"),
          " | ", fmt(paired("lua", "wrk", s, op, m), "%.2f"), " | ", fmt(sp and sp * 100, "%.0f%%"), " |")
        local function d(x) return x and string.format("%.0f", x) or "0" end -- 0: not measured
        dat[#dat + 1] = string.format('"%s %s" %s %s %s %s', op, m == "seq" and "seq" or "x32",
          d(w), d(r), d(l), d(j))
      end
    end
    dat[#dat + 1] = ""
    dat[#dat + 1] = ""
  end
end
p("")
p("Ratios are paired: the median over the repetitions of the ratio within each repetition. "
  .. "spread lua: (max - min) / median of lua-stream's repetitions.")
p("")

if next(byrep) and (function()
  for k in pairs(byrep) do if k:match("^alt/") then return true end end
end)() then
  p("### Another lua-stream tree (alt: BENCH_ALT_LPATH / BENCH_ALT_CPATH) next to this checkout")
  p("")
  p("| server | call | mode | raw libcurl | lua-stream | alt | alt / lua | lua / raw | alt / raw | CPU µs lua | CPU µs alt |")
  p("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
  for _, sv in ipairs(SERVERS) do
    for _, op in ipairs(OPS) do
      for _, md in ipairs(MODES) do
        local s, m = sv[1], md[1]
        if rps("alt", s, op, m) then
          p("| ", sv[2], " | ", op, " | ", md[2], " | ", num(rps("raw", s, op, m)), " | ", num(rps("lua", s, op, m)),
            " | ", num(rps("alt", s, op, m)), " | ", fmt(paired("alt", "lua", s, op, m), "%.2f"), " | ",
            fmt(paired("lua", "raw", s, op, m), "%.2f"), " | ", fmt(paired("alt", "raw", s, op, m), "%.2f"), " | ",
            fmt(cpu_us("lua", s, op, m), "%.1f"), " | ", fmt(cpu_us("alt", s, op, m), "%.1f"), " |")
        end
      end
    end
  end
  p("")
end

p("### Client CPU per call (µs of user + system CPU time of the client process, median)")
p("")
p("| server | call | mode | raw libcurl | lua-stream | getstream JS | lua / raw | JS / lua |")
p("|---|---|---|--:|--:|--:|--:|--:|")
for _, sv in ipairs(SERVERS) do
  local s = sv[1]
  if cpu_us("lua", s, "get", "seq") then
    for _, op in ipairs(OPS) do
      for _, md in ipairs(MODES) do
        local m = md[1]
        local r, l, j = cpu_us("raw", s, op, m), cpu_us("lua", s, op, m), cpu_us("js", s, op, m)
        p("| ", sv[2], " | ", op, " | ", md[2], " | ", fmt(r, "%.1f"), " | ", fmt(l, "%.1f"), " | ",
          fmt(j, "%.1f"), " | ", fmt(l and r and l / r, "%.2f"), " | ", fmt(j and l and j / l, "%.1f"), " |")
      end
    end
  end
end
p("")

-- targets
local function verdict(ok) return ok == nil and "not measured" or (ok and "**met**" or "**missed**") end
local function pct(x) return fmt(x and x * 100, "%.0f%%") end
p("### Targets")
p("")
p("| target | measured | |")
p("|---|---|---|")
do
  local x = paired("lua", "raw", "fixed", "get", "seq")
  p("| sequential get >= 90% of the raw libcurl loop (fixed server) | ", pct(x),
    x and x < 0.90 and string.format(" (%.0f points short)", (0.90 - x) * 100) or "", " | ",
    verdict(x and x >= 0.90), " |")
  x = paired("lua", "raw", "fixed", "get", "par")
  p("| 32 in flight get >= 85% of raw libcurl multi (fixed server) | ", pct(x),
    x and x < 0.85 and string.format(" (%.0f points short)", (0.85 - x) * 100) or "", " | ",
    verdict(x and x >= 0.85), " |")
  for _, md in ipairs(MODES) do
    local cells, worst = {}, nil
    for _, op in ipairs(OPS) do
      local r = paired("lua", "js", "fixed", op, md[1])
      if r then
        cells[#cells + 1] = string.format("%s %.1fx", op, r)
        worst = worst and math.min(worst, r) or r
      end
    end
    local lcells = {}
    for _, op in ipairs(OPS) do
      local r = paired("lua", "js", "local", op, md[1])
      if r then lcells[#lcells + 1] = string.format("%s %.1fx", op, r) end
    end
    p("| >= 3x getstream JS, ", md[2], " (fixed server) | ", #cells > 0 and table.concat(cells, ", ") or "–",
      #lcells > 0 and ("; local server (server-bound): " .. table.concat(lcells, ", ")) or "",
      " | ", verdict(worst and worst >= 3), " |")
  end
  if memory then
    p(string.format("| RSS after %s gets within 1 MiB of RSS after 10,000 | %+d KiB (%s -> %s KiB) | %s |",
      num(memory.gets), memory.delta_kib, num(memory.rss_10k_kib), num(memory.rss_end_kib),
      verdict(memory.delta_kib <= 1024)))
  end
end
p("")

-- instructions
if next(cost) then
  p("### Client-side instructions per call (callgrind, fixed server)")
  p("")
  p("| call | total | Lua layer | JSON | signing | libcurl (+libc/ssl below it) | total / raw |")
  p("|---|--:|--:|--:|--:|--:|--:|")
  local NAMES = {
    { "get", "user:get()" }, { "get-nogc", "user:get(), GC stopped" },
    { "create1k", "user:create(1 kB)" }, { "create10k", "user:create(10 kB)" },
    { "pget", "user:get(), 32 in flight (client:parallel)" },
    { "rawget", "raw libcurl GET, easy handle" }, { "rawpget", "raw libcurl GET, multi x32" },
  }
  for _, nm in ipairs(NAMES) do
    local c = cost[nm[1]]
    if c then
      local function cell(v)
        if nm[1]:match("^raw") and v == c.lua then return "(" .. num(v) .. " own code)" end
        if c.total == 0 then return num(v) end
        return string.format("%s (%.0f%%)", num(v), 100 * v / c.total)
      end
      local raw = cost[nm[1] == "pget" and "rawpget" or "rawget"]
      p("| ", nm[2], " | ", num(c.total), " | ", cell(c.lua), " | ", cell(c.json), " | ", cell(c.signing),
        " | ", cell(c.curl), " | ", raw and not nm[1]:match("^raw") and fmt(c.total / raw.total, "%.2f") or "", " |")
    end
  end
  p("")
  if cost.sign then
    p("Signing is 0 per call: a server-side client signs its JWT once, in `stream.connect`. That one "
      .. "signature (and each `client:create_user_token`) costs ", num(cost.sign.signing),
      " instructions (`core.hs256`, HMAC-SHA256 in libcrypto).")
    p("")
  end
  p("Exclusive instructions per call by ELF object:")
  p("")
  local objs, seen = {}, {}
  for op, c in pairs(cost) do
    if op ~= "sign" then
      for k in pairs(c) do
        local o = k:match("^obj_(.+)$")
        if o and not seen[o] then seen[o] = true; objs[#objs + 1] = o end
      end
    end
  end
  table.sort(objs)
  p("| call | ", table.concat(objs, " | "), " |")
  p("|---|", string.rep("--:|", #objs))
  for _, nm in ipairs(NAMES) do
    local c = cost[nm[1]]
    if c then
      local cells = {}
      for i, o in ipairs(objs) do cells[i] = num(c["obj_" .. o] or 0) end
      p("| ", nm[1], " | ", table.concat(cells, " | "), " |")
    end
  end
  p("")
end

if memory or footprint then
  p("### Memory")
  p("")
  p("| measure | value |")
  p("|---|--:|")
  if memory then
    p("| gets (one client, sequential, fixed server) | ", num(memory.gets), " (", memory.seconds, " s) |")
    p("| VmRSS after 10,000 gets | ", num(memory.rss_10k_kib), " KiB |")
    p("| VmRSS at the end | ", num(memory.rss_end_kib), " KiB |")
    p("| difference | ", string.format("%+d", memory.delta_kib), " KiB |")
    p("| largest VmRSS at the 10 checkpoints | ", num(memory.rss_max_kib), " KiB |")
    p("| Lua heap after 10,000 / at the end | ", memory.lua_10k_kib, " / ", memory.lua_end_kib, " KiB |")
  end
  if footprint then
    local f = footprint
    p("| one client, created: RSS / Lua heap | ", f.one_created_rss_kib, " / ", f.one_created_lua_kib, " KiB |")
    p("| ... after its first get (connection): RSS / Lua heap | +", f.one_connected_rss_kib, " / +",
      f.one_connected_lua_kib, " KiB |")
    p("| 100 clients, created: RSS / Lua heap | ", f.hundred_created_rss_kib, " / ",
      f.hundred_created_lua_kib, " KiB |")
    p("| 100 clients, one get each (100 connections): RSS / Lua heap | ", f.hundred_connected_rss_kib, " / ",
      f.hundred_connected_lua_kib, " KiB |")
    p("| **per client** (the 100-client figure / 100): RSS / Lua heap | ", f.per_client_rss_kib, " / ",
      f.per_client_lua_kib, " KiB |")
  end
  p("")
end

if #failed > 0 then
  p("### Runs with errors (their figures are not comparable)")
  p("")
  for _, l in ipairs(failed) do p("    ", l) end
  p("")
end

local text = table.concat(out, "\n") .. "\n"
io.write(text)
local f = assert(io.open(outdir .. "/report.md", "w"))
f:write(text)
f:close()
f = assert(io.open(outdir .. "/throughput.dat", "w"))
f:write("# case wrk raw lua js (requests/s, medians, 0: not measured); one block per server\n",
  table.concat(dat, "\n"), "\n")
f:close()
