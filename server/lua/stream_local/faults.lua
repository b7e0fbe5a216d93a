-- stream_local.faults: test-only fault injection, per request (headers) or programmed
-- for the next N requests (control endpoint).
--
-- Active only when the server was started with STREAM_LOCAL_FAULTS=1; otherwise every
-- header below is ignored, /_local/faults is an unknown route (404), and requests are
-- answered normally.
--
-- The protocol (every header, every programmed fault, their order and limits) is
-- documented once, in server/README.md ("Test headers"). A new fault is a header (and a
-- "fault" name) in this file plus a row there.
--
-- How it works: header_plan() reads the X-Stream-Local-* headers of a request,
-- plan_from_body() a POST to /_local/faults; both give a plan { fault, delay, ... }.
-- Programmed plans wait in a queue (JSON text in the stream_local_meta dict) changed
-- under one lock, so across workers each queued use is consumed exactly once. run()
-- carries a plan out.
--
-- What it deliberately does not do: no random faults, no faults on nginx's own error
-- pages, no slow reading of the request, no matching of programmed faults to paths.

local config = require "stream_local.config"
local reply = require "stream_local.reply"
local ratelimit = require "stream_local.ratelimit"
local json = require "stream_local.json"
local userstore = require "stream_local.userstore"
local request = require "stream_local.request"
local lock = require "stream_local.lock"

-- luacheck: globals ngx
local ngx = ngx
local tonumber, tostring, type, error, ipairs = tonumber, tostring, type, error, ipairs
local floor, ceil, min = math.floor, math.ceil, math.min
local concat, format, rep = table.concat, string.format, string.rep

local M = {}

local MAX_RESET_AFTER = 86400
local MAX_OVERSIZE = 1024 * 1024 * 1024
local MAX_DRIP_BYTES = 65536
local MAX_COUNT = 1000000
local OVERSIZE_CHUNK = 65536
local QUEUE_KEY = "faults:queue" -- stream_local_meta: JSON array of queued faults
local LOCK_KEY = "faults:queue" -- stream_local_locks (user ids cannot contain ':')
local REDIRECTS = { [300] = true, [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }

-- the answering faults, in the order they are tried
local KINDS = { "drop", "raise", "status", "redirect", "garbage", "truncate", "drip", "oversize" }
local KNOWN = { delay = true }
for _, k in ipairs(KINDS) do KNOWN[k] = true end

-- value checks -------------------------------------------------------------

-- int(v, lo, hi) -> integer in [lo, hi] or nil; v is a string or a number
local function int(v, lo, hi)
  local n = tonumber(v)
  if not n or n ~= floor(n) or n < lo or n > hi then return nil end
  return n
end

local function printable(s)
  return type(s) == "string" and s ~= "" and #s <= 4096 and not s:find("[%z\1-\31\127]")
end

-- plans --------------------------------------------------------------------
-- A plan is { fault = kind or nil, delay = ms or nil, ...fields of that kind }.

local function header(headers, name)
  return request.first(headers[name])
end

-- plan from the request headers, or nil when it carries no (valid) fault header
local function header_plan()
  local h = ngx.req.get_headers(100)
  local plan = {}
  local delay = tonumber(header(h, "x-stream-local-delay") or "")
  if delay and delay > 0 then plan.delay = min(delay, config.max_delay_ms) end

  if header(h, "x-stream-local-drop") == "1" then
    plan.fault = "drop"
  elseif header(h, "x-stream-local-raise") == "1" then
    plan.fault = "raise"
  elseif int(header(h, "x-stream-local-status"), 400, 599) then
    plan.fault = "status"
    plan.status = int(header(h, "x-stream-local-status"), 400, 599)
    plan.reset_after = int(header(h, "x-stream-local-reset-after"), 0, MAX_RESET_AFTER)
  elseif REDIRECTS[int(header(h, "x-stream-local-redirect"), 300, 399) or 0] then
    plan.fault = "redirect"
    plan.status = int(header(h, "x-stream-local-redirect"), 300, 399)
    local loc = header(h, "x-stream-local-location")
    if printable(loc) then plan.location = loc end
  elseif header(h, "x-stream-local-garbage") == "1" then
    plan.fault = "garbage"
  elseif int(header(h, "x-stream-local-truncate"), 0, MAX_OVERSIZE) then
    plan.fault = "truncate"
    plan.bytes = int(header(h, "x-stream-local-truncate"), 0, MAX_OVERSIZE)
  elseif int(header(h, "x-stream-local-drip"), 0, config.max_delay_ms) then
    plan.fault = "drip"
    plan.ms = int(header(h, "x-stream-local-drip"), 0, config.max_delay_ms)
    plan.bytes = int(header(h, "x-stream-local-drip-bytes"), 1, MAX_DRIP_BYTES)
  elseif int(header(h, "x-stream-local-oversize"), 1, MAX_OVERSIZE) then
    plan.fault = "oversize"
    plan.bytes = int(header(h, "x-stream-local-oversize"), 1, MAX_OVERSIZE)
  end
  if plan.fault == nil and plan.delay == nil then return nil end
  return plan
end

-- field(tree, name) -> Lua value of a top-level field of a parsed body (numbers as
-- numbers, strings as strings), nil when absent or null
local function field(tree, name)
  local v = tree:get(name)
  local k = json.kind(v)
  if k == "number" then return tonumber(v.text) end
  if k == "null" then return nil end
  return v
end

-- plan_from_body(tree) -> plan | nil, { {field, message} }
local function plan_from_body(tree)
  local plan, bad = {}, {}
  local function check(name, value, ok, what)
    if value == nil then return nil end
    if not ok then
      bad[#bad + 1] = { name, what }
      return nil
    end
    return value
  end
  local fault = field(tree, "fault")
  if type(fault) ~= "string" or not KNOWN[fault] then
    return nil, { { "fault", "must be one of delay, " .. concat(KINDS, ", ") } }
  end
  local function num(name, lo, hi)
    local v = field(tree, name)
    return check(name, v, int(v, lo, hi) ~= nil and type(v) == "number",
      format("must be an integer in [%d, %d]", lo, hi))
  end
  plan.count = num("count", 1, MAX_COUNT) or 1
  plan.delay = num("delay", 0, config.max_delay_ms)
  if fault == "delay" then
    plan.delay = num("ms", 0, config.max_delay_ms) or plan.delay
    if plan.delay == nil then bad[#bad + 1] = { "ms", "is required for a delay" } end
  else
    plan.fault = fault
  end
  if fault == "status" then
    plan.status = num("status", 400, 599)
    plan.reset_after = num("reset_after", 0, MAX_RESET_AFTER)
    if plan.status == nil and not bad[1] then bad[#bad + 1] = { "status", "is required (400..599)" } end
  elseif fault == "redirect" then
    local s = field(tree, "status")
    plan.status = check("status", s, REDIRECTS[s] == true, "must be 300, 301, 302, 303, 307 or 308") or 302
    local loc = field(tree, "location")
    plan.location = check("location", loc, printable(loc), "must be a non-empty string without control characters")
  elseif fault == "truncate" then
    plan.bytes = num("bytes", 0, MAX_OVERSIZE) or 0
  elseif fault == "drip" then
    plan.ms = num("ms", 0, config.max_delay_ms) or 1000
    plan.bytes = num("bytes", 1, MAX_DRIP_BYTES)
  elseif fault == "oversize" then
    plan.bytes = num("bytes", 1, MAX_OVERSIZE)
    if plan.bytes == nil and not bad[1] then bad[#bad + 1] = { "bytes", "is required" } end
  end
  if bad[1] then return nil, bad end
  return plan
end

-- the queue ----------------------------------------------------------------

local FIELDS = { "fault", "status", "reset_after", "location", "ms", "bytes", "delay", "left" }

local function entry_json(plan)
  local parts = { plan.fault == nil and '"fault":"delay"' or nil }
  for _, k in ipairs(FIELDS) do
    local v = plan[k]
    if type(v) == "string" then
      parts[#parts + 1] = json.quote(k) .. ":" .. json.quote(v)
    elseif type(v) == "number" then
      parts[#parts + 1] = json.quote(k) .. ":" .. format("%d", v)
    end
  end
  return "{" .. concat(parts, ",") .. "}"
end

local function queue_read()
  local text = ngx.shared.stream_local_meta:get(QUEUE_KEY)
  if not text then return {} end
  local tree = assert(json.parse(text))
  local list = {}
  for i = 1, tree.n do
    local e = {}
    for _, k in ipairs(FIELDS) do e[k] = field(tree[i], k) end
    if e.fault == "delay" then e.fault = nil end
    list[i] = e
  end
  return list
end

local function queue_text(list)
  local parts = {}
  for i, e in ipairs(list) do parts[i] = entry_json(e) end
  return "[" .. concat(parts, ",") .. "]"
end

local function queue_write(list)
  local dict = ngx.shared.stream_local_meta
  if not list[1] then
    dict:delete(QUEUE_KEY)
    return
  end
  local ok, err = dict:safe_set(QUEUE_KEY, queue_text(list))
  if not ok then error("fault queue: " .. tostring(err), 0) end
end

local function with_lock(fn, ...)
  return lock.with_lock(LOCK_KEY, fn, ...)
end

local function take_locked()
  local list = queue_read()
  local e = list[1]
  if not e then return nil end
  e.left = (e.left or 1) - 1
  if e.left <= 0 then table.remove(list, 1) end
  queue_write(list)
  return e
end

-- take() -> the next programmed plan (consumed) | nil
local function take()
  if ngx.shared.stream_local_meta:get(QUEUE_KEY) == nil then return nil end -- fast path
  return with_lock(take_locked)
end

local function push_locked(plan)
  local list = queue_read()
  plan.left, plan.count = plan.count, nil
  list[#list + 1] = plan
  queue_write(list)
  return list
end

local read_body = request.read_body

-- /_local/faults
local function control()
  local method = ngx.req.get_method()
  if method == "GET" then
    return reply.send(200, '{"faults":' .. queue_text(with_lock(queue_read)) .. "}")
  elseif method == "DELETE" then
    with_lock(queue_write, {})
    return reply.send(200, '{"faults":[]}')
  elseif method ~= "POST" then
    ngx.header["Allow"] = "GET, POST, DELETE"
    return reply.error(405, "method " .. method .. " is not allowed on /_local/faults (allowed: GET, POST, DELETE)")
  end
  local tree, msg, pos = json.parse(read_body())
  if tree == nil then
    return reply.error(400, format("invalid JSON in the request body: %s at byte %d", msg, pos))
  end
  if json.kind(tree) ~= "object" then
    return reply.error(400, "the request body must be a JSON object such as {\"fault\":\"status\",\"status\":503}")
  end
  local plan, bad = plan_from_body(tree)
  if not plan then
    return reply.error(400, "bad fault: " .. bad[1][1] .. " " .. bad[1][2], bad)
  end
  return reply.send(201, '{"faults":' .. queue_text(with_lock(push_locked, plan)) .. "}")
end

-- answers ------------------------------------------------------------------

local function user_parts(kind)
  local id = (ngx.var.uri or ""):match("^/api/v1%.0/user/([^/]+)/?$")
  id = id and ngx.unescape_uri(id) or "local-fault"
  local ts = userstore.timestamp(userstore.now_us())
  local head = '{"id":' .. json.quote(id) .. ',"created_at":"' .. ts .. '","updated_at":"' .. ts
    .. '","data":{"local_fault":"' .. kind .. '"'
  return head, '},"duration":"0.00ms"}'
end

local function user_body(kind)
  local head, tail = user_parts(kind)
  return head .. tail
end

-- sends status 200 headers for a body of `length` bytes
local function start_200(length)
  reply.common_headers()
  ngx.status = 200
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = length
  local ok, err = ngx.send_headers()
  if not ok then return nil, err end
  return ngx.flush(true)
end

-- writes s and waits until it has left; false when the client is gone
local function write_now(s)
  if not ngx.print(s) then return false end
  return ngx.flush(true) and true or false
end

local function redirect_location()
  local host = ngx.var.http_host or (ngx.var.server_addr .. ":" .. ngx.var.server_port)
  return ngx.var.scheme .. "://" .. host .. (ngx.var.request_uri or "/")
end

local ANSWER = {}

function ANSWER.drop()
  return ngx.exit(444)
end

function ANSWER.raise(plan)
  error("error raised on purpose by " .. (plan.programmed and "a programmed raise fault" or "X-Stream-Local-Raise"))
end

function ANSWER.status(plan)
  if plan.status == 429 then
    ratelimit.exhausted()
    if plan.reset_after then
      ngx.header["X-RateLimit-Reset"] = ngx.time() + plan.reset_after
    end
  end
  return reply.error(plan.status, "status " .. plan.status .. " forced by " ..
    (plan.programmed and "a programmed fault" or "X-Stream-Local-Status"))
end

function ANSWER.redirect(plan)
  ngx.header["Location"] = plan.location or redirect_location()
  return reply.error(plan.status, "redirect " .. plan.status .. " forced by " ..
    (plan.programmed and "a programmed fault" or "X-Stream-Local-Redirect"))
end

local GARBAGE = "<html><head><title>502 Bad Gateway</title></head>\n"
  .. "<body><h1>502 Bad Gateway</h1><p>stream-local: a non-JSON body on purpose "
  .. "(garbage fault)</p></body></html>\n"

function ANSWER.garbage()
  reply.common_headers()
  ngx.status = 200
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = #GARBAGE
  ngx.print(GARBAGE)
  return true
end

function ANSWER.truncate(plan)
  local body = user_body("truncate")
  local n = min(plan.bytes or 0, #body - 1)
  if start_200(#body) and n > 0 then write_now(body:sub(1, n)) end
  return ngx.exit(444)
end

function ANSWER.drip(plan)
  local body = user_body("drip")
  local size = plan.bytes or 4
  local pieces = ceil(#body / size)
  local pause = (plan.ms or 1000) / 1000 / pieces
  if not start_200(#body) then return ngx.exit(444) end
  for i = 1, pieces do
    ngx.sleep(pause)
    if not write_now(body:sub((i - 1) * size + 1, i * size)) then return ngx.exit(444) end
  end
  return true
end

local filler -- one OVERSIZE_CHUNK-byte string, made on first use

function ANSWER.oversize(plan)
  local head, tail = user_parts("oversize")
  head = head .. ',"pad":"'
  tail = '"' .. tail
  local total = plan.bytes
  local pad = total - #head - #tail
  if pad < 0 then
    pad, total = 0, #head + #tail
  end
  filler = filler or rep("x", OVERSIZE_CHUNK)
  if not start_200(total) or not write_now(head) then return ngx.exit(444) end
  while pad > 0 do
    local n = min(pad, OVERSIZE_CHUNK)
    if not write_now(n == OVERSIZE_CHUNK and filler or filler:sub(1, n)) then return ngx.exit(444) end
    pad = pad - n
  end
  if not write_now(tail) then return ngx.exit(444) end
  return true
end

local function run(plan)
  if plan.delay and plan.delay > 0 then ngx.sleep(plan.delay / 1000) end
  if plan.fault == nil then return false end
  ANSWER[plan.fault](plan)
  return true
end

-- apply() -> true when the request has been answered (or dropped) here
function M.apply()
  if not config.faults then return false end
  local path = ngx.var.uri or ""
  if path == "/_local/faults" or path == "/_local/faults/" then
    control()
    return true
  end
  local plan = header_plan()
  if not plan then
    plan = take()
    if not plan then return false end
    plan.programmed = true
  end
  return run(plan)
end

return M
