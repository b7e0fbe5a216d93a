-- stream.transport.http1: HTTP/1.1 on one connected socket, in small
-- readers: the request text, the status line (1xx answers skipped), a
-- header block, and the three body framings (Content-Length, chunked,
-- read-until-close), each capped at max_response_bytes.
--
-- The socket is anything with send, receive ("*l", a byte count) and
-- settimeout in milliseconds: an nginx cosocket here. Every reader takes
-- `left`, a function that sets the socket's timeout to what is left of the
-- deadline and returns nil once it has passed.
--
-- Failures are nil, {kind =, message =, sent =, reason =} as in the
-- transport contract (transport/curl.lua). What it deliberately does not
-- do: connections, pools, TLS, phases (the nginx adapter, ngx.lua), gzip,
-- redirects, HTTP/2.

local check = require "stream.check"
local http1 = {}

local MAX_HEADER_LINES = 200
local MAX_CHUNK_HEX = 8        -- chunk sizes up to 4 GiB - 1
local CLOSE_READ_BYTES = 16384 -- read size of an answer delimited by close
local NO_BODY_METHOD = { GET = true, HEAD = true, DELETE = true, OPTIONS = true }

-- A failure after the request was (at least partly) written.
local function fail(kind, message, reason)
  return nil, { kind = kind, message = message, sent = true, reason = reason or "transfer" }
end
http1.fail = fail

local function broken(err, what)
  if err == "timeout" then return fail("timeout", "timed out reading the answer's body") end
  return fail("transport", what .. ": " .. tostring(err))
end

local function too_large(max)
  return fail("transport", "response larger than max_response_bytes (" .. max .. ")", "limit")
end

-- The request as text. head: the header lines of every request; head_body:
-- those for requests with a body; extra: lines for this one (proxy auth).
function http1.request_text(method, target, host_header, head, head_body, body, extra)
  local lines = { method, " ", target, " HTTP/1.1\r\nHost: ", host_header, "\r\n", extra or "" }
  if body then
    lines[#lines + 1] = head_body
    lines[#lines + 1] = "Content-Length: " .. #body .. "\r\n\r\n"
    lines[#lines + 1] = body
  else
    lines[#lines + 1] = head
    if not NO_BODY_METHOD[method] then lines[#lines + 1] = "Content-Length: 0\r\n" end
    lines[#lines + 1] = "\r\n"
  end
  return table.concat(lines)
end

-- Header lines "Name: value\r\n" of a name -> value map, in name order.
-- Raises for a line break in a name or value (check.lua).
function http1.header_text(map, what)
  return table.concat(check.header_lines(map, "stream.ngx", what, "\r\n"))
end

-- Reads one header block into h (lower-cased names, last one wins).
-- true, or nil, err.
function http1.read_headers(sock, h)
  local count = 0
  while true do
    local line, err = sock:receive("*l")
    if not line then return nil, err end
    if line == "" then return true end
    count = count + 1
    if count > MAX_HEADER_LINES then return nil, "too many header lines" end
    local name, value = line:match("^([^:%s]+)%s*:%s*(.-)%s*$")
    if name then h[name:lower()] = value end
  end
end

-- The final status line and headers, 1xx answers skipped:
-- status, version, headers | nil, failure, nothing_came (no byte at all
-- came back: the connection was closed before answering).
function http1.read_head(sock, left)
  local status, version, headers
  repeat
    if not left() then return fail("timeout", "timed out waiting for the answer") end
    local line, err, partial = sock:receive("*l")
    if not line then
      local nothing = err ~= "timeout" and (partial == nil or partial == "") and not status
      if err == "timeout" then return fail("timeout", "timed out waiting for the answer") end
      local _, f = fail("transport", "connection " .. tostring(err) .. " before the answer's status line")
      return nil, f, nothing
    end
    version, status = line:match("^HTTP/(%d%.%d) (%d%d%d)")
    status = tonumber(status)
    if not status then
      return fail("transport", "malformed status line from the server: " .. line:sub(1, 60))
    end
    headers = {}
    if not left() then return fail("timeout", "timed out reading the answer's headers") end
    local ok
    ok, err = http1.read_headers(sock, headers)
    if not ok then
      return fail(err == "timeout" and "timeout" or "transport",
        "reading the answer's headers failed: " .. tostring(err))
    end
  until status >= 200 or status == 101
  return status, version, headers
end

-- Whether the connection may carry another request after this answer.
function http1.keepalive(version, headers)
  local conn = (headers["connection"] or ""):lower()
  if version == "1.1" then return not conn:find("close", 1, true) end
  return conn:find("keep-alive", 1, true) ~= nil
end

function http1.read_chunked(sock, max, left)
  local parts, total = {}, 0
  while true do
    if not left() then return broken("timeout") end
    local size_line, err = sock:receive("*l")
    if not size_line then return broken(err, "connection lost inside a chunked answer") end
    local hex = size_line:match("^%s*(%x+)")
    if not hex or #hex > MAX_CHUNK_HEX then
      return fail("transport", "malformed chunk size in the answer")
    end
    local size = tonumber(hex, 16)
    if size == 0 then
      local ok
      ok, err = http1.read_headers(sock, {}) -- trailers, thrown away
      if not ok then return broken(err, "connection lost in the answer's trailers") end
      return table.concat(parts)
    end
    total = total + size
    if total > max then return too_large(max) end
    if not left() then return broken("timeout") end
    local data
    data, err = sock:receive(size)
    if not data then return broken(err, "connection lost inside a chunked answer") end
    parts[#parts + 1] = data
    local crlf
    crlf, err = sock:receive(2)
    if crlf ~= "\r\n" then
      return broken(err or "missing CRLF after a chunk", "malformed chunked answer")
    end
  end
end

function http1.read_length(sock, cl, max, left)
  local n = cl:match("^%d+$") and tonumber(cl)
  if not n then return fail("transport", "malformed Content-Length in the answer") end
  if n > max then return too_large(max) end
  if n == 0 then return "" end
  if not left() then return broken("timeout") end
  local body, err, partial = sock:receive(n)
  if body then return body end
  if err == "closed" then
    return fail("transport", string.format("connection closed after %d of %d bytes of the answer",
      #(partial or ""), n))
  end
  return broken(err, "reading the answer failed")
end

function http1.read_until_close(sock, max, left)
  local parts, total = {}, 0
  while true do
    if not left() then return broken("timeout") end
    local data, err, partial = sock:receive(CLOSE_READ_BYTES)
    data = data or partial
    if data and #data > 0 then
      total = total + #data
      if total > max then return too_large(max) end
      parts[#parts + 1] = data
    end
    if err == "closed" then return table.concat(parts) end
    if err then return broken(err, "reading the answer failed") end
  end
end

-- The body by the framing the answer uses; body, delimited_by_close.
function http1.read_body(sock, method, status, headers, max, left)
  if method == "HEAD" or status == 204 or status == 304 or status == 101 then return "" end
  local te = headers["transfer-encoding"]
  if te and te:lower():find("chunked", 1, true) then
    return http1.read_chunked(sock, max, left)
  end
  local cl = headers["content-length"]
  if cl then return http1.read_length(sock, cl, max, left) end
  local body, f = http1.read_until_close(sock, max, left)
  if not body then return nil, f end
  return body, true
end

-- One exchange on an open connection:
--   {status =, body =, headers =}, keepalive
--   | nil, failure, stale: "unsent" when the request could not be written
--     (so it never arrived), "silent" when not a byte came back after it
--     was; whether that means a stale pooled connection, and whether to
--     send again, is the caller's to decide.
function http1.exchange(sock, method, request, max, left)
  if not left() then
    return nil, { kind = "timeout", message = "timed out before sending", sent = false, reason = "connect" }
  end
  local ok, err = sock:send(request)
  if not ok then
    local _, f = fail(err == "timeout" and "timeout" or "transport",
      "sending the request failed: " .. tostring(err))
    return nil, f, err ~= "timeout" and "unsent" or nil
  end
  local status, version, headers = http1.read_head(sock, left)
  if not status then return nil, version, headers and "silent" or nil end
  local keepalive = http1.keepalive(version, headers)
  local body, by_close = http1.read_body(sock, method, status, headers, max, left)
  if not body then return nil, by_close end
  if by_close then keepalive = false end
  return { status = status, body = body, headers = headers }, keepalive
end

return http1
