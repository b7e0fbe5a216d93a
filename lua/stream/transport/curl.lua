-- stream.transport.curl: the default transport, a thin face over the C
-- core's libcurl multi handle (one per client, so connections are reused).
--
-- A transport is any table with these methods; the ngx one (cosockets) or
-- a test double can take its place through the `transport` option:
--   t:request(method, url, body [, timeout])
--       -> status, body, headers | nil, kind, message, stage
--          (stage "connect": the request never reached the server)
--   t:submit(method, url, body [, timeout]) -> handle with :done() and :result()
--   t:perform(wait_seconds)       -> number of transfers still running
--   t:timeout()                   -> seconds until perform is due, or nil
--   t:stats()                     -> {requests, connects, in_flight, closed}
--   t:now()                       -> monotonic seconds
--   t:sleep(seconds)              -> waits (the ngx transport does not block)
--   t:close()
-- It knows nothing of Stream: URLs, auth and errors are the client's.

local M = {}
M.__index = M

-- settings: timeout, connect_timeout, ca_file, verify, proxy, user_agent,
-- max_connections, max_response_bytes, headers, body_headers.
function M.new(core, settings)
  local http = core.http_new(settings)
  return setmetatable({ http = http, core = core }, M)
end

function M:request(method, url, body, timeout)
  return self.http:request(method, url, nil, body, timeout)
end

function M:submit(method, url, body, timeout)
  return self.http:submit(method, url, nil, body, timeout)
end

function M:now()
  return self.core.monotime()
end

function M:sleep(seconds)
  self.core.sleep(seconds)
end

function M:perform(wait)
  return self.http:perform(wait)
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
