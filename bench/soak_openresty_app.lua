-- bench/soak_openresty_app.lua: the handlers of the nginx soak (bench/soak_openresty.lua
-- starts the nginx that loads this file). OpenResty's idiom: one client per worker, made in
-- init_worker_by_lua and used by every request, plain calls, client:parallel and
-- client:go alike, with ngx.sleep inside the tasks.
--
--   GET /soak/pid                        {"pid":...}
--   GET /soak/setup?users=N              sc-1 .. sc-N, data {i = i} (get-or-create)
--   GET /soak/<op>?n=&users=&nonce=&seed=  one operation; answers {"pid":..,"values":[...]}:
--       plain      one get:                       values = {i}
--       parallel   n tasks of ngx.sleep + get:    values = {i1, ..., in}
--       write      n tasks, each writes its own user {nonce, j} and reads it back:
--                  values = {nonce .. ":" .. j, ...}
--       go         n go tasks + step(0.02) until none is left: values as parallel
--       close      a client of this request closed by a task while the others' calls
--                  are in flight: values = {"ok" | "closed" | "late", ...}
-- The driver computes the expected values from the same arguments and checks them; a
-- handler that raises answers 500 with the error.
local ngx = ngx -- luacheck: ignore 113 (the nginx API, a global inside nginx)
local stream = require "stream"

local M = {}

local client, settings

function M.init_worker(base_url, key, secret)
  settings = { base_url = base_url, key = key, secret = secret }
  client = stream.connect(key, secret, "1", { base_url = base_url, timeout = 10, retries = 0 })
end

-- The k-th user each task reads, from the request's seed (the driver does the same).
local function pick(seed, j, users)
  return (seed * 7 + j * 13) % users + 1
end

local function pause(seed, j)
  return ((seed + j * 5) % 4) * 0.01 -- 0 to 30 ms
end

local function reader(c, seed, j, users)
  return function()
    local p = pause(seed, j)
    if p > 0 then ngx.sleep(p) end
    local k = pick(seed, j, users)
    local res, err = c:user("sc-" .. k):get()
    if not res then return nil, err end
    if p > 0 then ngx.sleep(p) end
    return res.data.i
  end
end

-- The values of a parallel result, or raises with the first failure.
local function values_of(results)
  local out = {}
  for j, r in ipairs(results) do
    if r[1] == nil then error("task " .. j .. ": " .. tostring(r[2]), 0) end
    out[j] = r[1]
  end
  return out
end

local OPS = {}

function OPS.pid()
  return {}
end

function OPS.setup(a)
  for i = 1, a.users do
    assert(client:user("sc-" .. i):get_or_create({ i = i }))
  end
  return {}
end

function OPS.plain(a)
  return { reader(client, a.seed, 1, a.users)() }
end

function OPS.parallel(a)
  local fns = {}
  for j = 1, a.n do fns[j] = reader(client, a.seed, j, a.users) end
  return values_of(client:parallel(fns, { max_in_flight = a.seed % 2 == 0 and 3 or nil }))
end

function OPS.write(a)
  local fns = {}
  for j = 1, a.n do
    fns[j] = function()
      local u = client:user("sw-" .. a.nonce .. "-" .. j)
      local ok, err = u:create({ nonce = a.nonce, j = j })
      if not ok then return nil, err end
      ngx.sleep(pause(a.seed, j))
      local res
      res, err = u:get()
      if not res then return nil, err end
      return res.data.nonce .. ":" .. res.data.j
    end
  end
  return values_of(client:parallel(fns))
end

function OPS.go(a)
  local tasks = {}
  for j = 1, a.n do tasks[j] = client:go(reader(client, a.seed, j, a.users)) end
  local steps = 0
  while client:step(0.02) > 0 do
    steps = steps + 1
    if steps > 2000 then error("go: tasks still pending after 2000 steps", 0) end
  end
  local results = {}
  for j = 1, a.n do results[j] = { tasks[j]:result() } end
  return values_of(results)
end

-- Every entry is "ok" (answered before the close), "closed" (in flight at the close: nil,
-- err with reason "closed") or "late" (started after it: the call raised, as documented);
-- anything else raises.
function OPS.close(a)
  local c = stream.connect(settings.key, settings.secret, "1", { base_url = settings.base_url })
  local fns = { function()
    ngx.sleep(0.005)
    c:close()
    return "closer"
  end }
  for j = 1, a.n do fns[j + 1] = reader(c, a.seed, j, a.users) end
  local out = {}
  for j, r in ipairs(c:parallel(fns)) do
    local late = r.raised and tostring(r[2]):find("on a closed client", 1, true)
    if r.raised and not late then error("task " .. j .. " raised: " .. tostring(r[2]), 0) end
    if late then
      out[j - 1] = "late"
    elseif j > 1 then
      local e = r[2]
      if r[1] == nil and not (type(e) == "table" and e.reason == "closed") then
        error("task " .. j .. ": " .. tostring(e), 0)
      end
      if r[1] ~= nil and r[1] ~= pick(a.seed, j - 1, a.users) then
        error("task " .. j .. " read user " .. tostring(r[1]), 0)
      end
      out[j - 1] = r[1] ~= nil and "ok" or "closed"
    end
  end
  return out
end

function M.run()
  local op = OPS[ngx.var.uri:match("^/soak/(%w+)$") or ""]
  if not op then return ngx.exit(404) end
  local q = ngx.req.get_uri_args()
  local a = { n = tonumber(q.n) or 1, users = tonumber(q.users) or 1, seed = tonumber(q.seed) or 0,
    nonce = q.nonce or "" }
  local ok, values = pcall(op, a)
  ngx.header["Content-Type"] = "application/json"
  if not ok then
    ngx.status = 500
    ngx.say(stream.json.encode({ pid = ngx.worker.pid(), error = tostring(values) }))
    return
  end
  ngx.say(stream.json.encode({ pid = ngx.worker.pid(), values = stream.array(values) }))
end

return M
