-- stream.hooks: the request hooks, options `on_request` and `on_response`
-- of stream.connect, around the pipeline (request.lua).
--
--   on_request(req)   before each attempt (a retry is a request of its
--                     own): req = {method, path, area, attempt, headers};
--                     `headers` is an empty table the hook may fill (a
--                     trace id): what it holds when the hook returns is
--                     sent with that attempt, a name the request carries
--                     already (any case) replaced.
--   on_response(info) once per call, when it has its answer or its error:
--                     info = {method, path, area, status, kind, attempts,
--                     duration, bytes_sent, bytes_received, reused}.
--
-- `path` is the description's (relative to the base URL, no query, no
-- api_key); `area` names the API area (users, feeds, activities, batch,
-- reactions, collections, files, images, og, moderation, personalization,
-- analytics). No hook is given a token, the secret or a body.
--
-- A hook that raises does not break the call: its error (scrubbed) is
-- written to stderr, or to nginx's error log inside nginx, once per
-- distinct message, and the call goes on. A header the hook sets that
-- HTTP cannot carry is left out and reported the same way.
--
-- Without hooks nothing here runs: request.new installs hooks.send as the
-- pipeline's `send` only when a hook is set.

local hooks = {}

-- The area of each first path segment (after an "enrich/").
local AREAS = {
  user = "users", users = "users", feed = "feeds", stats = "feeds",
  activity = "activities", activities = "activities",
  follow_many = "batch", unfollow_many = "batch", feed_targets = "batch",
  reaction = "reactions", collections = "collections",
  files = "files", images = "images", og = "og", moderation = "moderation",
  personalization = "personalization",
}

-- The area a description belongs to: its own `area`, the service's name
-- for another service, else from its path.
function hooks.area(desc)
  if desc.area then return desc.area end
  local service = desc.service
  if service and service ~= "api" then return service end
  local path = desc.path
  if path == "feed/add_to_many/" then return "batch" end
  local first = path:match("^[^/]*")
  if first == "enrich" then first = path:match("^enrich/([^/]*)") end
  return AREAS[first] or (first ~= "" and first) or "api"
end

---------------------------------------------------------------- reporting

-- Distinct messages remembered per client; past this, one last line says
-- that no more are reported.
local MAX_REPORTS = 100

local function write(line)
  local n = rawget(_G, "ngx")
  if type(n) == "table" and n.log and n.ERR then
    n.log(n.ERR, line)
  else
    io.stderr:write(line, "\n")
  end
end

local function report(self, text)
  text = self.scrub(tostring(text))
  if self.seen[text] or self.quiet then return end
  if self.nseen >= MAX_REPORTS then
    self.quiet = true
    return write("stream: " .. MAX_REPORTS .. " distinct hook errors reported; no more are")
  end
  self.seen[text], self.nseen = true, self.nseen + 1
  write("stream: " .. text)
end

-- fn(arg) in protected mode; a raise is reported, never passed on.
local function run(self, name, fn, arg)
  local ok, msg = pcall(fn, arg)
  if not ok then report(self, name .. " hook failed: " .. tostring(msg)) end
end

---------------------------------------------------------------- headers

local TOKEN = "^[!#$%%&'*+%-.^_`|~%w]+$"
local WRITTEN = { host = true, ["content-length"] = true, ["transfer-encoding"] = true }

-- req's headers with the hook's added (a same-name one replaced): a new
-- map, so the description's table is never changed.
local function merged(self, own, added)
  local out, lower = {}, {}
  for k, v in pairs(own or {}) do
    out[k], lower[k:lower()] = v, k
  end
  for k, v in pairs(added) do
    if type(v) == "number" then v = tostring(v) end
    if type(k) ~= "string" or not k:find(TOKEN) or WRITTEN[k:lower()]
      or type(v) ~= "string" or v:find("[%z\1-\8\10-\31\127]") then
      report(self, "on_request hook: header " .. tostring(k) .. " left out (not a name and text HTTP can carry)")
    else
      local old = lower[k:lower()]
      if old then out[old] = nil end
      out[k], lower[k:lower()] = v, k
    end
  end
  return out
end

-- A copy of the transport request with other headers.
local function with_headers(req, headers)
  return {
    method = req.method, url = req.url, body = req.body, idempotent = req.idempotent,
    timeout = req.timeout, body_parts = req.body_parts, headers = headers,
  }
end

local function body_size(req)
  local p = req.body_parts
  if p then return #p[1] + p[2].size + #p[3] end
  return req.body and #req.body or 0
end

---------------------------------------------------------------- one call

-- What a hooked call gives the pipeline as its scheduler: each attempt
-- goes through Call:send (on_request, byte counts, status, reuse).
local Call = {}
Call.__index = Call

function Call:send(req)
  local h = self.hooks
  self.attempts = self.attempts + 1
  if h.on_request then
    local view = { method = self.method, path = self.path, area = self.area,
      attempt = self.attempts, headers = {} }
    run(h, "on_request", h.on_request, view)
    local added = view.headers
    if type(added) == "table" and next(added) ~= nil then
      req = with_headers(req, merged(h, req.headers, added))
    end
  end
  self.bytes_sent = self.bytes_sent + body_size(req)
  local res, fail = self.sched:send(req)
  if res then
    self.status, self.reused = res.status, res.reused
    self.bytes_received = self.bytes_received + #res.body
  else
    self.status, self.reused = nil, nil
  end
  return res, fail
end

function Call:sleep(seconds)
  return self.sched:sleep(seconds)
end

-- Calls kept for reuse (each with its proxy: the pipeline seen through a
-- scheduler of the call's own), so a hooked call allocates only what it
-- hands the hooks.
local POOL = 32

local function take(h, pipe)
  local pool = h.pool
  local n = #pool
  if n > 0 then
    local proxy = pool[n]
    pool[n] = nil
    return proxy
  end
  return setmetatable({ _sched = setmetatable({ sched = pipe._sched, hooks = h }, Call) }, h.proxy_mt)
end

-- hooks.call(h, pipeline, desc, send): send(proxy, desc) (the pipeline's
-- own send) with the attempts counted, then on_response.
function hooks.call(h, pipe, desc, send)
  local clock = h.clock
  local proxy = take(h, pipe)
  local call = proxy._sched
  call.method, call.path, call.area = desc.method, desc.path, hooks.area(desc)
  call.attempts, call.bytes_sent, call.bytes_received = 0, 0, 0
  call.status, call.reused, call.start = nil, nil, clock:now()
  local res, err = send(proxy, desc)
  if #h.pool < POOL then h.pool[#h.pool + 1] = proxy end
  if h.on_response then
    -- the table is lent for the hook's run and then filled again by the next
    -- call (a fresh one per call cost ~10% of a get in garbage collection);
    -- a call made from inside the hook takes another from the free list
    local info = table.remove(h.infos) or {}
    info.method, info.path, info.area = call.method, call.path, call.area
    info.status = err and err.status or (res ~= nil and call.status or nil)
    info.kind, info.attempts = err and err.kind or nil, call.attempts
    info.duration = clock:now() - call.start
    info.bytes_sent, info.bytes_received, info.reused = call.bytes_sent, call.bytes_received, call.reused
    run(h, "on_response", h.on_response, info)
    -- every field is set again by the next call: no clearing
    if #h.infos < POOL then h.infos[#h.infos + 1] = info end
  end
  return res, err
end

-- The hooks of a pipeline, or nil when no hook is set: settings'
-- on_request / on_response, the clock (now), the scrubber.
function hooks.new(pipe, settings, clock, scrub)
  if not (settings.on_request or settings.on_response) then return nil end
  return {
    on_request = settings.on_request, on_response = settings.on_response,
    clock = clock, scrub = scrub or tostring, seen = {}, nseen = 0, quiet = false,
    proxy_mt = { __index = pipe }, pool = {}, infos = {},
  }
end

return hooks
