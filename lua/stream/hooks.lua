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
-- `req` and `info` are lent for the hook's run: the client fills the same
-- tables again for later attempts and calls (a hook copies what it keeps).
--
-- A hook that raises does not break the call: its error (scrubbed) is
-- written to stderr, or to nginx's error log inside nginx, once per
-- distinct message, and the call goes on. A header the hook sets that
-- HTTP cannot carry is left out and reported the same way.
--
-- Without hooks nothing here runs: request.new puts its hooked send on the
-- pipeline only when a hook is set, and that send calls hooks.before and
-- hooks.finish (below).

local hooks = {}

-- (upvalues: read on every hooked call)
local pcall, next, type = pcall, next, type

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

-- Paths whose area is remembered per client (the table starts again when
-- full): a table lookup instead of a pattern match per call, which cost a
-- trivial hook's call about 1% of a get.
local AREA_PATHS = 256

-- hooks.area(desc), remembered by path for the API's own descriptions.
function hooks.area_of(h, desc)
  local area = desc.area
  if area then return area end
  local service = desc.service
  if service and service ~= "api" then return service end
  local path = desc.path
  area = h.areas[path]
  if area then return area end
  area = hooks.area(desc)
  if h.nareas >= AREA_PATHS then h.areas, h.nareas = {}, 0 end
  h.areas[path], h.nareas = area, h.nareas + 1
  return area
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

---------------------------------------------------------------- one call
-- The pipeline's hooked send (request.lua) keeps a call's counts in its own
-- locals, calls hooks.before ahead of each attempt when on_request is set,
-- and hooks.finish once at the end. The tables the hooks get are lent for
-- their run, so a hooked call allocates nothing of its own (a view's
-- headers table is made again only after a hook put something in it).

-- on_request for attempt n of a call: the request to send (a copy with the
-- headers the hook added, or req itself). One view (with its headers table,
-- kept empty) is lent again as soon as the hook returns; an attempt that
-- starts while it is lent (a hook that waits, inside a task) gets its own.
function hooks.before(h, desc, area, req, n)
  local view = h.view
  if view then h.view = false else view = { headers = {} } end
  local own = view.headers
  view.method, view.path, view.area, view.attempt = desc.method, desc.path, area, n
  local ok, msg = pcall(h.on_request, view)
  if not ok then report(h, "on_request hook failed: " .. tostring(msg)) end
  local added = view.headers
  -- (a table the hook put in place of its own is taken too)
  if added ~= own or next(own) ~= nil then
    if type(added) == "table" then req = with_headers(req, merged(h, req.headers, added)) end
    view.headers = {}
  end
  h.view = view
  return req
end

-- The call ends: on_response with its figures. start: the clock's reading
-- when it began; n: attempts sent; last: the last attempt's answer from the
-- transport (nil when that attempt failed, or none was sent); err: the
-- call's error (nil on success); size: the body bytes of one attempt;
-- received: the body bytes of every answer.
function hooks.finish(h, desc, area, start, n, last, err, size, received)
  local on_response = h.on_response
  if not on_response then return end
  -- one table, lent again as soon as the hook returns; a call that ends
  -- while it is lent (its hook waits, inside a task) gets a table of its own
  local info = h.info
  if info then h.info = false else info = {} end
  info.method, info.path, info.area, info.attempts = desc.method, desc.path, area, n
  info.duration = h.now() - start
  info.bytes_sent, info.bytes_received = n * size, received
  if err then
    info.status, info.kind, info.reused = err.status, err.kind, last and last.reused
  else
    info.status, info.kind, info.reused = last.status, nil, last.reused
  end
  local ok, msg = pcall(on_response, info)
  if not ok then report(h, "on_response hook failed: " .. tostring(msg)) end
  h.info = info
end

-- The hooks of a pipeline, or nil when no hook is set: settings'
-- on_request / on_response, the transport (its clock, `now`), the
-- scrubber, the core's monotonic clock (monotime). Durations are read from
-- monotime, the clock both transports read, called directly (through the
-- transport's now, the two readings cost a trivial hook's call about 0.5%
-- of a get); from the transport's clock when there is none.
function hooks.new(settings, clock, scrub, monotime)
  if not (settings.on_request or settings.on_response) then return nil end
  return {
    on_request = settings.on_request, on_response = settings.on_response,
    now = monotime or function() return clock:now() end,
    scrub = scrub or tostring, seen = {}, nseen = 0, quiet = false,
    view = { headers = {} }, info = {}, -- false while lent
    areas = {}, nareas = 0,
  }
end

return hooks
