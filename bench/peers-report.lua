-- bench/peers-report.lua: the tables of a bench/peers run. Throughput and CPU per call
-- are medians over the repetitions; a ratio is the median of the ratios within each
-- repetition (the two clients ran one right after the other).
--
--   lua5.4 bench/peers-report.lua bench/out/peers.txt
local file = assert(arg[1], "usage: peers-report.lua FILE")
local rows, order, head = {}, {}, {}
for l in io.lines(file) do
  if l:match("^#") then
    head[#head + 1] = l
  else
    local t = {}
    for k, v in l:gmatch("(%S+)=(%S+)") do t[k] = tonumber(v) or v end
    if t.case and t.client and t.rps then
      local key = t.case
      if not rows[key] then rows[key] = {}; order[#order + 1] = key end
      rows[key][t.rep] = rows[key][t.rep] or {}
      rows[key][t.rep][t.client] = t
    end
  end
end

local function median(list)
  if #list == 0 then return nil end
  table.sort(list)
  local m = (#list + 1) / 2
  return (list[math.floor(m)] + list[math.ceil(m)]) / 2
end
local function per_client(case, client, field)
  local list = {}
  for _, r in pairs(rows[case]) do
    if r[client] and r[client][field] then list[#list + 1] = r[client][field] end
  end
  return median(list)
end
local function ratio(case, a, b)
  local list = {}
  for _, r in pairs(rows[case]) do
    if r[a] and r[b] then list[#list + 1] = r[a].rps / r[b].rps end
  end
  return median(list)
end
local function fmt(v, f) return v and string.format(f or "%.0f", v) or "–" end

for _, l in ipairs(head) do print(l) end
print()
local clients = { "raw", "lua", "jit", "luacurl", "before", "before-jit" }
print("| case | " .. table.concat(clients, " | ") .. " |")
print("|---|" .. string.rep("--:|", #clients))
for _, case in ipairs(order) do
  local cells = {}
  for i, c in ipairs(clients) do
    local rps, cpu = per_client(case, c, "rps"), per_client(case, c, "cpu_us")
    cells[i] = rps and (fmt(rps) .. " (" .. fmt(cpu, "%.1f") .. " µs)") or "–"
  end
  print("| " .. case .. " | " .. table.concat(cells, " | ") .. " |")
end
print()
print("requests/s, median of the repetitions (CPU µs per call of the client process)")
print()
local pairs_wanted = {
  { "lua", "raw" }, { "jit", "luacurl" }, { "lua", "luacurl" }, { "lua", "before" },
  { "jit", "before-jit" }, { "before", "raw" }, { "before-jit", "luacurl" },
}
print("| case | " .. (function()
  local t = {}
  for i, p in ipairs(pairs_wanted) do t[i] = p[1] .. " / " .. p[2] end
  return table.concat(t, " | ")
end)() .. " |")
print("|---|" .. string.rep("--:|", #pairs_wanted))
for _, case in ipairs(order) do
  local cells = {}
  for i, p in ipairs(pairs_wanted) do cells[i] = fmt(ratio(case, p[1], p[2]), "%.2f") end
  print("| " .. case .. " | " .. table.concat(cells, " | ") .. " |")
end
print()
print("paired ratios of requests/s: the median over the repetitions of the ratio within each")
local conn = {}
for _, case in ipairs(order) do
  local c = per_client(case, "lua", "connects")
  if c then conn[#conn + 1] = case .. " " .. fmt(c) end
end
print()
print("new connections during lua-stream's timed calls (median): " .. table.concat(conn, ", "))
