-- stream.transport.http1: HTTP/1.1 on one connected socket, in small
-- readers: the request text, the status line (1xx answers skipped), a
-- header block, and the three body framings (Content-Length, chunked,
-- read-until-close), each capped at max_response_bytes; the status lines
-- and headers of an answer together at max_header_bytes.
--
-- The socket is anything with send, receiveany (a byte count) and
-- settimeout in milliseconds: an nginx cosocket here. Every read goes
-- through a reader that first calls `left`, a function that sets the
-- socket's timeout to what is left of the deadline and returns nil once it
-- has passed. Reads are receiveany, never receive("*l") or receive(n):
-- those restart the socket's timeout whenever a byte arrives, so a server
-- dripping one byte a second would hold them forever; receiveany comes
-- back with whatever arrived, and the deadline is checked before the next.
--
-- Failures are nil, {kind =, message =, sent =, reason =} as in the
-- transport contract (transport/curl.lua); an answer that breaks HTTP (a
-- status that is not three digits, a bad Content-Length or chunk size) is
-- reason "malformed", one over a cap reason "limit". What it deliberately
-- does not do: connections, pools, TLS, phases (the nginx adapter,
-- ngx.lua), gzip, redirects, HTTP/2.

local check = require "stream.check"
local http1 = {}

local MAX_HEADER_LINES = 200
local MAX_CHUNK_HEX = 8        -- chunk sizes up to 4 GiB - 1
local MAX_CHUNK_LINE = 1024    -- a chunk-size line with its extensions
local READ_BYTES = 65536       -- the most one receiveany asks for
local FILE_CHUNK = 65536       -- a streamed file is read and sent this much at a time
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

-- Whether the request is sent with a body (and so with the body headers):
-- a POST or PUT without one is sent as one with an empty body
-- ("Content-Length: 0"), as the curl transport and the official clients do.
function http1.has_body(method, body)
  return body ~= nil or not NO_BODY_METHOD[method]
end

-- The request as text. head: the header lines of every request; head_body:
-- those for requests with a body; extra: lines for this one (proxy auth);
-- length: the Content-Length when more follows the text than `body` (a
-- streamed file and its suffix, see send_stream), else #body.
function http1.request_text(method, target, host_header, head, head_body, body, extra, length)
  local lines = { method, " ", target, " HTTP/1.1\r\nHost: ", host_header, "\r\n", extra or "" }
  if body == nil and http1.has_body(method, body) then body = "" end
  if body then
    lines[#lines + 1] = head_body
    lines[#lines + 1] = "Content-Length: " .. (length or #body) .. "\r\n\r\n"
    lines[#lines + 1] = body
  else
    lines[#lines + 1] = head
    lines[#lines + 1] = "\r\n"
  end
  return table.concat(lines)
end

-- Header lines "Name: value\r\n" of a name -> value map, in name order:
-- text, the list of its lines. Raises for a line break in a name or value
-- (check.lua).
function http1.header_text(map, what)
  local lines = check.header_lines(map, "stream.ngx", what, "\r\n")
  return table.concat(lines), lines
end

---------------------------------------------------------------- header fields
-- The header rules both transports share (the curl one requires this file
-- for them alone): a request's own headers, checked and merged over the
-- transport's fixed ones.

-- Names the transport writes itself: the request's framing and target.
local OWN_FIELDS = { host = true, ["content-length"] = true, ["transfer-encoding"] = true }
-- Bytes a value may not hold: control characters but tab (NUL, CR, LF, DEL).
local BAD_VALUE = "[%z\1-\8\10-\31\127]"
-- A name is a token (RFC 9110, 5.1 and 5.6.2).
local TOKEN = "^[A-Za-z0-9!#$%%&'*+%-.^_`|~]+$"

local function by_name(a, b)
  return a[1] < b[1]
end

-- A request's own headers (a map name -> value) against HTTP's field
-- syntax, in name order: fields, a list of {name, value} whose `names` is
-- the set of their lower-case names | nil, problem. Never raises: a value
-- may come from outside, and the caller refuses the request before any I/O.
-- Problems never quote a value (it may be a credential).
function http1.header_fields(map)
  if type(map) ~= "table" then return nil, "headers must be a table of names to values" end
  local list, names = {}, {}
  for name, value in pairs(map) do
    if type(name) ~= "string" or not name:find(TOKEN) then
      return nil, "a header name must be a token (letters, digits and !#$%&'*+-.^_`|~)"
    end
    local lname = name:lower()
    if type(value) ~= "string" or value:find(BAD_VALUE) then
      return nil, "header " .. name .. ": its value must be a string without line breaks"
        .. " or other control characters"
    end
    if OWN_FIELDS[lname] then return nil, "header " .. name .. " is the transport's to write" end
    if names[lname] then return nil, "header " .. name .. " is given twice (names ignore case)" end
    names[lname] = true
    list[#list + 1] = { name, value }
  end
  table.sort(list, by_name)
  list.names = names
  return list
end

-- Lines "Name: value..." as {lower-case name, line}, for merge_lines.
function http1.named_lines(lines)
  local out = {}
  for i, line in ipairs(lines) do
    out[i] = { (line:match("^[^:;]*")):lower(), line }
  end
  return out
end

-- The lines of one request: the fixed ones (named_lines) whose names its
-- own fields do not carry, then its fields as line(name, value) makes them.
-- A field replaces a fixed header of the same name (in any case), never
-- doubles it.
function http1.merge_lines(fixed, fields, line)
  local out, names = {}, fields.names
  for _, f in ipairs(fixed) do
    if not names[f[1]] then out[#out + 1] = f[2] end
  end
  for _, f in ipairs(fields) do
    out[#out + 1] = line(f[1], f[2])
  end
  return out
end

---------------------------------------------------------------- reader

-- A buffered reader over the socket, made per exchange: buf[pos..] is what
-- arrived and was not read yet; head_left is what is left of the header
-- budget (status lines, headers and trailers of one answer).
local Reader = {}
Reader.__index = Reader

function http1.reader(sock, left, max_head)
  return setmetatable({ sock = sock, left = left, buf = "", pos = 1, head_left = max_head,
    max_head = max_head }, Reader)
end

-- Reads what the socket has (at most `want` bytes) within the deadline.
-- true | nil, err ("timeout", "closed", ...)
function Reader:fill(want)
  if not self.left() then return nil, "timeout" end
  local data, err = self.sock:receiveany(want or READ_BYTES)
  if not data then return nil, err end
  if self.pos > #self.buf then
    self.buf, self.pos = data, 1
  else
    self.buf, self.pos = self.buf:sub(self.pos) .. data, 1
  end
  return true
end

-- Whether no byte has arrived yet on this reader.
function Reader:empty()
  return self.buf == "" and self.pos == 1
end

-- One line without its CRLF (or LF), at most `limit` bytes with it:
-- line | nil, err ("limit" when longer)
function Reader:line(limit)
  while true do
    local e = self.buf:find("\n", self.pos, true)
    if e then
      if e - self.pos + 1 > limit then return nil, "limit" end
      local last = e - 1
      if last >= self.pos and self.buf:byte(last) == 13 then last = last - 1 end
      local line = self.buf:sub(self.pos, last)
      self.pos = e + 1
      return line
    end
    if #self.buf - self.pos + 1 > limit then return nil, "limit" end
    local ok, err = self:fill()
    if not ok then return nil, err end
  end
end

-- A line of the header section, counted against max_header_bytes.
function Reader:head_line()
  local line, err = self:line(self.head_left)
  if not line then return nil, err end
  self.head_left = self.head_left - #line - 2 -- CRLF (a bare LF counts as two)
  return line
end

-- Exactly n bytes: data | nil, err, got (bytes that did arrive)
function Reader:bytes(n)
  local have = #self.buf - self.pos + 1
  if have >= n then
    local data = self.buf:sub(self.pos, self.pos + n - 1)
    self.pos = self.pos + n
    return data
  end
  local parts, got = { self.buf:sub(self.pos) }, have
  self.buf, self.pos = "", 1
  while got < n do
    if not self.left() then return nil, "timeout", got end
    local data, err = self.sock:receiveany(math.min(n - got, READ_BYTES))
    if not data then return nil, err, got end
    parts[#parts + 1] = data
    got = got + #data
  end
  return table.concat(parts)
end

-- Everything until the server closes, at most max bytes:
-- data | nil, "limit" | nil, err
function Reader:rest(max)
  local parts, total = { self.buf:sub(self.pos) }, #self.buf - self.pos + 1
  self.buf, self.pos = "", 1
  while true do
    if total > max then return nil, "limit" end
    if not self.left() then return nil, "timeout" end
    local data, err = self.sock:receiveany(READ_BYTES)
    if not data then
      if err == "closed" then return table.concat(parts) end
      return nil, err
    end
    parts[#parts + 1] = data
    total = total + #data
  end
end

---------------------------------------------------------------- answer

local function header_failure(rd, err, what)
  if err == "timeout" then return fail("timeout", "timed out reading the answer's " .. what) end
  if err == "limit" then
    return fail("transport", "answer's headers larger than max_header_bytes (" .. rd.max_head .. ")", "limit")
  end
  return fail("transport", "reading the answer's " .. what .. " failed: " .. tostring(err))
end

-- Reads one header block into h (lower-cased names, last one wins).
-- true | nil, failure
function http1.read_headers(rd, h)
  local count = 0
  while true do
    local line, err = rd:head_line()
    if not line then return header_failure(rd, err, "headers") end
    if line == "" then return true end
    count = count + 1
    if count > MAX_HEADER_LINES then
      return fail("transport", "more than " .. MAX_HEADER_LINES .. " header lines in the answer", "limit")
    end
    local name, value = line:match("^([^:%s]+)%s*:%s*(.-)%s*$")
    if name then h[name:lower()] = value end
  end
end

-- "HTTP/1.1 200 OK": version, status | nil. Exactly three digits, then a
-- space or the end (a 20-digit status is not status 999).
local function status_line(line)
  local version, status, after = line:match("^HTTP/(%d%.%d) (%d%d%d)()")
  if not version or not (after > #line or line:byte(after) == 32) then return nil end
  return version, tonumber(status)
end

-- The final status line and headers, 1xx answers skipped:
-- status, version, headers | nil, failure, nothing_came (no byte at all
-- came back: the connection was closed before answering).
function http1.read_head(rd)
  local status, version, headers
  repeat
    local line, err = rd:head_line()
    if not line then
      local nothing = err ~= "timeout" and err ~= "limit" and rd:empty() and not status
      if err == "timeout" or err == "limit" then return header_failure(rd, err, "status line") end
      local _, f = fail("transport", "connection " .. tostring(err) .. " before the answer's status line")
      return nil, f, nothing
    end
    version, status = status_line(line)
    if not version then
      return fail("transport", "malformed status line from the server: " .. line, "malformed")
    end
    headers = {}
    local ok, f = http1.read_headers(rd, headers)
    if not ok then return nil, f end
  until status >= 200 or status == 101
  return status, version, headers
end

-- Whether the connection may carry another request after this answer.
function http1.keepalive(version, headers)
  local conn = (headers["connection"] or ""):lower()
  if version == "1.1" then return not conn:find("close", 1, true) end
  return conn:find("keep-alive", 1, true) ~= nil
end

function http1.read_chunked(rd, max)
  local parts, total = {}, 0
  while true do
    local size_line, err = rd:line(MAX_CHUNK_LINE)
    if not size_line then
      if err == "limit" then return fail("transport", "malformed chunk size in the answer", "malformed") end
      return broken(err, "connection lost inside a chunked answer")
    end
    local hex = size_line:match("^%s*(%x+)")
    if not hex then return fail("transport", "malformed chunk size in the answer", "malformed") end
    if #hex > MAX_CHUNK_HEX then return too_large(max) end
    local size = tonumber(hex, 16)
    if size == 0 then
      local ok, f = http1.read_headers(rd, {}) -- trailers, thrown away
      if not ok then return nil, f end
      return table.concat(parts)
    end
    total = total + size
    if total > max then return too_large(max) end
    local data
    data, err = rd:bytes(size + 2)
    if not data then return broken(err, "connection lost inside a chunked answer") end
    if data:sub(-2) ~= "\r\n" then
      return fail("transport", "malformed chunked answer: no CRLF after a chunk", "malformed")
    end
    parts[#parts + 1] = data:sub(1, -3)
  end
end

function http1.read_length(rd, cl, max)
  local digits = cl:match("^%d+$")
  if not digits then return fail("transport", "malformed Content-Length in the answer", "malformed") end
  local n = #digits > 15 and math.huge or tonumber(digits)
  if n > max then return too_large(max) end
  if n == 0 then return "" end
  local body, err, got = rd:bytes(n)
  if body then return body end
  if err == "closed" then
    return fail("transport", string.format("connection closed after %d of %d bytes of the answer", got, n))
  end
  return broken(err, "reading the answer failed")
end

function http1.read_until_close(rd, max)
  local body, err = rd:rest(max)
  if body then return body end
  if err == "limit" then return too_large(max) end
  return broken(err, "reading the answer failed")
end

-- The body by the framing the answer uses; body, delimited_by_close.
function http1.read_body(rd, method, status, headers, max)
  if method == "HEAD" or status == 204 or status == 304 or status == 101 then return "" end
  local te = headers["transfer-encoding"]
  if te and te:lower():find("chunked", 1, true) then
    return http1.read_chunked(rd, max)
  end
  local cl = headers["content-length"]
  if cl then return http1.read_length(rd, cl, max) end
  local body, f = http1.read_until_close(rd, max)
  if not body then return nil, f end
  return body, true
end

-- Sends the rest of a streamed body after the request text: stream.size
-- bytes of stream.file from its start, FILE_CHUNK at a time (the deadline
-- checked before each), then stream.suffix. true | nil, failure.
function http1.send_stream(sock, stream, left)
  local f, rest = stream.file, stream.size
  if not f:seek("set", 0) then return fail("transport", "cannot read the file to upload") end
  while rest > 0 do
    local piece = f:read(rest < FILE_CHUNK and rest or FILE_CHUNK)
    if not piece then
      return fail("transport", "the file to upload ended before its size (changed while sent?)")
    end
    if not left() then return fail("timeout", "timed out sending the request") end
    local ok, err = sock:send(piece)
    if not ok then
      return fail(err == "timeout" and "timeout" or "transport", "sending the request failed: " .. tostring(err))
    end
    rest = rest - #piece
  end
  if not left() then return fail("timeout", "timed out sending the request") end
  local ok, err = sock:send(stream.suffix)
  if not ok then
    return fail(err == "timeout" and "timeout" or "transport", "sending the request failed: " .. tostring(err))
  end
  return true
end

-- One exchange on an open connection. limits: max_response_bytes and
-- max_header_bytes; left: see the top of this file.
--   {status =, body =, headers =}, keepalive
--   | nil, failure, stale: "unsent" when the request could not be written
--     (so it never arrived), "silent" when not a byte came back after it
--     was; whether that means a stale pooled connection, and whether to
--     send again, is the caller's to decide.
-- stream: a body streamed from a file after `request` (send_stream), or nil.
function http1.exchange(sock, method, request, max, left, max_head, stream)
  if not left() then
    return nil, { kind = "timeout", message = "timed out before sending", sent = false, reason = "connect" }
  end
  local ok, err = sock:send(request)
  if not ok then
    local _, f = fail(err == "timeout" and "timeout" or "transport",
      "sending the request failed: " .. tostring(err))
    return nil, f, err ~= "timeout" and "unsent" or nil
  end
  if stream then
    local sent, f = http1.send_stream(sock, stream, left)
    if not sent then return nil, f end
  end
  local rd = http1.reader(sock, left, max_head)
  local status, version, headers = http1.read_head(rd)
  if not status then return nil, version, headers and "silent" or nil end
  local keepalive = http1.keepalive(version, headers)
  local body, by_close = http1.read_body(rd, method, status, headers, max)
  if not body then return nil, by_close end
  if by_close then keepalive = false end
  return { status = status, body = body, headers = headers }, keepalive
end

return http1
