-- stream.transport.curl: the default transport, a thin face over the C
-- core's libcurl multi handle (one per client, so connections are reused).
--
-- The transport contract (the ngx transport and the unit specs' fake
-- follow it too):
--   T.new(core, settings)
--       settings: timeout, connect_timeout, max_response_bytes,
--       max_header_bytes (resolved: the defaults are config.lua's),
--       max_connections, ca_file, verify,
--       proxy, headers = {Name = value} (every request), body_headers =
--       {Name = value} (requests with a body)
--   t:request(req)  req = {method =, url =, body =, timeout =, idempotent =,
--                          headers =, body_parts =}
--       -> {status =, body =, headers = {lower-cased name = value},
--           reused = true when the answer came over a connection opened
--           before this request (the request hooks report it; nil when a
--           transport cannot tell)}
--       |  nil, {kind =, message =, sent =, reason =}
--          kind: "transport", "timeout" or "invalid" (refused before any I/O);
--          sent: false when no byte of the request reached the server;
--          reason: "connect", "limit" (answer over max_response_bytes or
--          its headers over max_header_bytes), "malformed" (an answer
--          that breaks HTTP: status, Content-Length, framing), "closed",
--          "header" (req.headers refused: kind "invalid"), "file"
--          (body_parts' file cannot be opened: kind "invalid"), "phase"
--          (ngx only), "transfer"
--       `timeout` bounds the attempt from its start to the answer's last
--       byte, however slowly the bytes come; a POST or PUT without a body
--       carries "Content-Length: 0" (as every official client sends it).
--       `body` is any bytes (NUL included), sent as they are with their
--       Content-Length.
--       `body_parts` (instead of `body`): {prefix, {path =, size =}, suffix},
--       a body streamed from disk: the prefix string, then `size` bytes of
--       the file at `path`, then the suffix string, with Content-Length
--       their sum. The file is read a piece at a time while it is sent
--       (never whole in memory). A file that cannot be opened fails the
--       request before any I/O (kind "invalid", reason "file", sent =
--       false); one that ends before `size` bytes fails it as a
--       "transfer" (sent = true). A request with body_parts and
--       idempotent ~= true is never re-sent by the transport once a byte
--       of its body went out.
--       `headers` (nil, or a map name -> string value): this request's own
--       headers, sent besides settings.headers (and body_headers when it
--       has a body); one whose name one of those carries, in any case,
--       replaces it (a multipart Content-Type replaces application/json),
--       never doubles it. A name that is not an HTTP token, a value with a
--       control character (CR, LF, NUL, ...) other than tab, a name given
--       twice (names ignore case), or Host, Content-Length or
--       Transfer-Encoding (the transport writes those) makes the request
--       fail as kind "invalid", reason "header", sent = false: nothing is
--       sent. An empty value sends the header empty.
--   t:submit(req [, owner])       -> handle with :done() and :result() (as request)
--   t:perform(wait_seconds, done) -> number of transfers still running, n:
--       puts what finished since the last such call in done[1..n]: for
--       each submitted request its owner, or its handle when it has none
--       (what the coroutine scheduler needs; the ngx transport runs the
--       threaded scheduler, which uses neither)
--   t:timeout()                   -> seconds until perform is due, or nil
--   t:watch()                     socket mode, for a foreign event loop
--                                 (stream.loop; the ngx transport has none):
--   t:events(list) -> n, timer, reset   the sockets to watch (csrc/http.c)
--   t:action(fd, what, done)      -> running, n: a socket is ready (fd nil:
--                                 the timer fired), done as for perform
--   t:stats()                     -> {requests, connects, in_flight, closed}
--   t:now()                       -> monotonic seconds
--   t:sleep(seconds)              -> waits (the ngx transport does not block)
--   t:close()
-- It knows nothing of Stream: URLs, auth and errors are the client's.
-- libcurl's header idioms stay here: the map becomes "Name: value" lines,
-- and an empty "Expect:" stops libcurl from holding POST bodies back for a
-- "100 Continue" (only in the list of requests with a body: libcurl reads
-- every line of the list on every request, about 100 instructions a byte).
-- A request without headers of its own goes out with those two lists, made
-- once; one with them gets a list of its own (http1.lua's header rules),
-- which the C core keeps for that transfer only.

local check = require "stream.check"
local config = require "stream.config"
local http1 = require "stream.transport.http1"

local M = {}
M.__index = M

-- The map as libcurl's header lines (check.lua: name order, no line breaks).
local function header_lines(map, what)
  return check.header_lines(map, "stream.curl", what)
end

-- A request's own header as libcurl's line: "Name;" is how libcurl is
-- told to send a header with an empty value ("Name:" would remove it).
local function field_line(name, value)
  if value == "" then return name .. ";" end
  return name .. ": " .. value
end

-- The fixed header lines of each transport, for merging a request's own
-- headers. They carry the Authorization token, so they live here, in a
-- table private to this module, never in a field of the transport (which
-- a caller can reach from the client): as in client.lua, no secret is
-- visible in anything a program can dump.
local fixed_of = setmetatable({}, { __mode = "k" })

function M.new(core, settings)
  local lines = header_lines(settings.headers, "headers")
  local body_lines = header_lines(settings.body_headers, "body_headers")
  body_lines[#body_lines + 1] = "Expect:"
  local fixed = http1.named_lines(lines)
  local fixed_body = http1.named_lines(lines)
  for _, l in ipairs(http1.named_lines(body_lines)) do fixed_body[#fixed_body + 1] = l end
  local http = core.http_new({
    timeout = settings.timeout,
    connect_timeout = settings.connect_timeout,
    max_response_bytes = settings.max_response_bytes,
    -- config.lua's default when not given (the ngx transport does the same)
    max_header_bytes = settings.max_header_bytes or config.DEFAULTS.max_header_bytes,
    max_connections = settings.max_connections,
    ca_file = settings.ca_file,
    verify = settings.verify,
    proxy = settings.proxy,
    headers = lines,
    body_headers = body_lines,
  })
  local self = setmetatable({ http = http, core = core }, M)
  fixed_of[self] = { plain = fixed, body = fixed_body }
  return self
end

-- Methods whose request has a body by definition: without one, libcurl
-- would send no Content-Length at all, which servers may wait on or refuse.
local EMPTY_BODY = { POST = "", PUT = "", PATCH = "" }

-- The whole header list of a request with headers of its own, body the
-- one it is sent with: lines | nil, failure (refused, nothing sent).
local function own_lines(self, headers, body)
  local fields, problem = http1.header_fields(headers)
  if not fields then
    return nil, { kind = "invalid", message = problem, sent = false, reason = "header" }
  end
  local fixed = fixed_of[self]
  return http1.merge_lines(body and fixed.body or fixed.plain, fields, field_line)
end

-- The body as the C core takes it: a string, or a file streamed between
-- two strings as {prefix, path, size, suffix} (csrc/http.c, "Files").
local function body_of(req)
  local parts = req.body_parts
  if parts == nil then return req.body or EMPTY_BODY[req.method] end
  return { parts[1], parts[2].path, parts[2].size, parts[3] }
end

-- A body that must not be sent twice (req.idempotent false) goes to
-- libcurl in a way it cannot re-send by itself (see csrc/http.c, `once`).
function M:request(req)
  local body = body_of(req)
  if req.headers == nil then
    return self.http:request(req.method, req.url, body, req.timeout, not req.idempotent)
  end
  local lines, failure = own_lines(self, req.headers, body)
  if not lines then return nil, failure end
  return self.http:request(req.method, req.url, body, req.timeout, not req.idempotent, lines)
end

-- What submit hands back for a request refused before any I/O: finished
-- at once, and listed by the next perform (so a scheduler waiting for it
-- hears of it as of any other).
local Refused = {}
Refused.__index = Refused

function Refused.done()
  return true
end

function Refused:result()
  return nil, self.failure
end

function M:submit(req, owner)
  local body = body_of(req)
  local h, failure
  if req.headers == nil then
    h, failure = self.http:submit(req.method, req.url, body, req.timeout, not req.idempotent, nil, owner)
  else
    local lines
    lines, failure = own_lines(self, req.headers, body)
    if lines then
      h, failure = self.http:submit(req.method, req.url, body, req.timeout, not req.idempotent, lines,
        owner)
    end
  end
  if h then return h end
  h = setmetatable({ failure = failure, owner = owner }, Refused)
  local refused = self._refused or {}
  refused[#refused + 1] = h
  self._refused = refused
  return h
end

function M:now()
  return self.core.monotime()
end

function M:sleep(seconds)
  self.core.sleep(seconds)
end

-- Refused submissions are listed after the transfers that finished.
local function list_refused(self, running, n, done)
  local refused = self._refused
  self._refused = nil
  if not n then return running end
  for i = 1, #refused do
    local h = refused[i]
    done[n + i] = h.owner or h
  end
  return running, n + #refused
end

function M:perform(wait, done)
  if self._refused then
    -- one of them is finished already: no waiting
    local running, n = self.http:perform(0, done)
    return list_refused(self, running, n, done)
  end
  return self.http:perform(wait, done)
end

function M:watch()
  self.http:watch()
end

function M:events(list)
  return self.http:events(list)
end

function M:action(fd, what, done)
  local running, n = self.http:action(fd, what, done)
  if self._refused then return list_refused(self, running, n, done) end
  return running, n
end

function M:timeout()
  if self._refused then return 0 end
  return self.http:timeout()
end

function M:stats()
  return self.http:stats()
end

function M:close()
  self.http:close()
end

M.name = "curl"
return M
