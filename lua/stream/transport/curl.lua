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
--   t:request(req)  req = {method =, url =, body =, timeout =, idempotent =}
--       -> {status =, body =, headers = {lower-cased name = value}}
--       |  nil, {kind =, message =, sent =, reason =}
--          kind: "transport", "timeout" or "invalid" (refused before any I/O);
--          sent: false when no byte of the request reached the server;
--          reason: "connect", "limit" (answer over max_response_bytes or
--          its headers over max_header_bytes), "malformed" (an answer
--          that breaks HTTP: status, Content-Length, framing), "closed",
--          "phase" (ngx only), "transfer"
--       `timeout` bounds the attempt from its start to the answer's last
--       byte, however slowly the bytes come; a POST or PUT without a body
--       carries "Content-Length: 0" (as every official client sends it).
--   t:submit(req)                 -> handle with :done() and :result() (as request)
--   t:perform(wait_seconds [, done]) -> number of transfers still running
--       [, n]: given a table, a transport may also put the handles of
--       submitted requests that finished since its last such call in
--       done[1..n] and return n; one that does not (ngx) returns only the
--       count, and the scheduler asks each handle :done()
--   t:timeout()                   -> seconds until perform is due, or nil
--   t:stats()                     -> {requests, connects, in_flight, closed}
--   t:now()                       -> monotonic seconds
--   t:sleep(seconds)              -> waits (the ngx transport does not block)
--   t:close()
-- It knows nothing of Stream: URLs, auth and errors are the client's.
-- libcurl's header idioms stay here: the map becomes "Name: value" lines,
-- and an empty "Expect:" stops libcurl from holding POST bodies back for a
-- "100 Continue" (only in the list of requests with a body: libcurl reads
-- every line of the list on every request, about 100 instructions a byte).

local check = require "stream.check"
local config = require "stream.config"

local M = {}
M.__index = M

-- The map as libcurl's header lines (check.lua: name order, no line breaks).
local function header_lines(map, what)
  return check.header_lines(map, "stream.curl", what)
end

function M.new(core, settings)
  local body_lines = header_lines(settings.body_headers, "body_headers")
  body_lines[#body_lines + 1] = "Expect:"
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
    headers = header_lines(settings.headers, "headers"),
    body_headers = body_lines,
  })
  return setmetatable({ http = http, core = core }, M)
end

-- Methods whose request has a body by definition: without one, libcurl
-- would send no Content-Length at all, which servers may wait on or refuse.
local EMPTY_BODY = { POST = "", PUT = "", PATCH = "" }

-- A body that must not be sent twice (req.idempotent false) goes to
-- libcurl in a way it cannot re-send by itself (see csrc/http.c, `once`).
function M:request(req)
  return self.http:request(req.method, req.url, req.body or EMPTY_BODY[req.method], req.timeout,
    not req.idempotent)
end

function M:submit(req)
  return self.http:submit(req.method, req.url, req.body or EMPTY_BODY[req.method], req.timeout,
    not req.idempotent)
end

function M:now()
  return self.core.monotime()
end

function M:sleep(seconds)
  self.core.sleep(seconds)
end

function M:perform(wait, done)
  return self.http:perform(wait, done)
end

function M:timeout()
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
