-- stream.transport.http1: HTTP/1.1 on one connected socket, in small
-- readers: the request text, the status line (1xx answers skipped), a
-- header block, and the three body framings (Content-Length, chunked,
-- read-until-close), each capped at max_response_bytes; the status lines
-- and headers of an answer together at max_header_bytes.
--
-- The socket is anything with send, receiveany (a byte count) and
-- settimeout in milliseconds: an nginx cosocket here. Reads go through a
-- reader that holds the attempt's deadline: before each read it checks the
-- clock, fails once the deadline has passed, and lowers the socket's
-- timeout to what is left when that is below the timeout already set (the
-- caller sets it once per attempt, so a read never waits past the
-- deadline). Reads are receiveany, never receive("*l"), receive(n) or
-- receiveuntil: those restart the socket's timeout whenever a byte arrives,
-- so a server dripping one byte a second would hold them forever;
-- receiveany comes back with whatever arrived, and the deadline is checked
-- before the next. A status line and header block that arrived whole (the
-- common answer: one read brings head and body) is split in one pass over
-- the buffer, with the same rules and the same byte accounting as the line
-- by line reading it stands in for.
--
-- Failures are nil, {kind =, message =, sent =, reason =} as in the
-- transport contract (transport/curl.lua); an answer that breaks HTTP (a
-- status that is not three digits, a bad Content-Length or chunk size) is
-- reason "malformed", one over a cap reason "limit". What it deliberately
-- does not do: connections, pools, TLS, phases (the nginx adapter,
-- ngx.lua), gzip, redirects, HTTP/2.

local check = require "stream.check"
local http1 = {}

local find, sub, byte, match, lower = string.find, string.sub, string.byte, string.match, string.lower
local concat = table.concat

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
  if body == nil and not NO_BODY_METHOD[method] then body = "" end
  if body then
    return method .. " " .. target .. " HTTP/1.1\r\nHost: " .. host_header .. "\r\n" .. (extra or "")
      .. head_body .. "Content-Length: " .. (length or #body) .. "\r\n\r\n" .. body
  end
  return method .. " " .. target .. " HTTP/1.1\r\nHost: " .. host_header .. "\r\n" .. (extra or "")
    .. head .. "\r\n"
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

-- A buffered reader over the socket: buf[pos..] is what arrived and was
-- not read yet; head_left is what is left of the header budget (status
-- lines, headers and trailers of one answer). Readers are kept for reuse
-- (http1.release): one exchange takes one and gives it back at its end.
local Reader = {}
Reader.__index = Reader

local spare, nspare = {}, 0
local MAX_SPARE = 64

local function ms(seconds)
  local v = math.floor(seconds * 1000 + 0.5)
  if v < 1 then v = 1 end
  return v
end
http1.ms = ms

-- lim: {now = clock in seconds, max_head = max_header_bytes, max = max_response_bytes};
-- deadline: on lim.now's clock; timeout_ms: the socket's timeout as set now.
function http1.reader(sock, lim, deadline, timeout_ms)
  local rd
  if nspare > 0 then
    rd, spare[nspare], nspare = spare[nspare], nil, nspare - 1
  else
    rd = setmetatable({}, Reader)
  end
  rd.sock, rd.now, rd.deadline, rd.set_ms = sock, lim.now, deadline, timeout_ms
  rd.buf, rd.pos, rd.head_left, rd.max_head = "", 1, lim.max_head, lim.max_head
  return rd
end

-- Gives a reader back for reuse; it must not be used after.
function http1.release(rd)
  rd.sock, rd.buf = nil, ""
  if nspare < MAX_SPARE then
    nspare = nspare + 1
    spare[nspare] = rd
  end
end

-- Seconds left before the deadline, the socket's timeout lowered to them
-- when it was set higher | nil once the deadline has passed.
function Reader:left()
  local l = self.deadline - self.now()
  if l <= 0 then return nil end
  local v = ms(l)
  if v < self.set_ms then
    self.sock:settimeout(v)
    self.set_ms = v
  end
  return l
end

-- Reads what the socket has (at most `want` bytes) within the deadline.
-- true | nil, err ("timeout", "closed", ...)
function Reader:fill(want)
  if not self:left() then return nil, "timeout" end
  local data, err = self.sock:receiveany(want or READ_BYTES)
  if not data then return nil, err end
  if self.pos > #self.buf then
    self.buf, self.pos = data, 1
  else
    self.buf, self.pos = sub(self.buf, self.pos) .. data, 1
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
    if not self:left() then return nil, "timeout", got end
    local data, err = self.sock:receiveany(math.min(n - got, READ_BYTES))
    if not data then return nil, err, got end
    parts[#parts + 1] = data
    got = got + #data
  end
  return concat(parts)
end

-- Everything until the server closes, at most max bytes:
-- data | nil, "limit" | nil, err
function Reader:rest(max)
  local parts, total = { self.buf:sub(self.pos) }, #self.buf - self.pos + 1
  self.buf, self.pos = "", 1
  while true do
    if total > max then return nil, "limit" end
    if not self:left() then return nil, "timeout" end
    local data, err = self.sock:receiveany(READ_BYTES)
    if not data then
      if err == "closed" then return concat(parts) end
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

-- Header names as they come -> lower-cased, for the names seen first
-- (a server sends the same few on every answer).
local lower_of, nlower = {}, 0
local MAX_NAMES = 256

local function lower_name(name)
  local l = lower_of[name]
  if l then return l end
  l = lower(name)
  if nlower < MAX_NAMES then
    lower_of[name], nlower = l, nlower + 1
  end
  return l
end

local function too_many_lines()
  return fail("transport", "more than " .. MAX_HEADER_LINES .. " header lines in the answer", "limit")
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
    if count > MAX_HEADER_LINES then return too_many_lines() end
    local name, value = match(line, "^([^:%s]+)%s*:%s*(.-)%s*$")
    if name then h[lower_name(name)] = value end
  end
end

-- Whether byte b is whitespace as Lua's %s has it (space, \t \n \v \f \r).
local function space(b)
  return b == 32 or (b >= 9 and b <= 13)
end

-- A field of the line buf[p..ce] (ce: its last byte, a CR before its LF
-- dropped) into h, as read_headers reads it from the line alone:
-- "name: value", the name without ':' or whitespace, the value without
-- the whitespace around it; a line of any other shape is ignored. No
-- backtracking pattern: the name is one greedy run, the value is cut by
-- hand.
local function field_at(buf, p, ce, h)
  local name, colon, v = match(buf, "^([^:%s]+)%s*():%s*()", p)
  if not name or colon > ce then return end
  while ce >= v and space(byte(buf, ce)) do ce = ce - 1 end
  h[lower_name(name)] = sub(buf, v, ce)
end

-- read_headers without line strings when the block is whole in the
-- buffer: lines split where Reader:line splits them, counted against the
-- header budget as head_line counts them, the same line cap. true |
-- false when the block is not whole (nothing read) | nil, failure.
-- rd.pos is at the start of a line (after a status line).
local function headers_in_buffer(rd, h)
  local buf, p = rd.buf, rd.pos
  if not find(buf, "\r\n\r\n", p > 2 and p - 2 or 1, true) then return false end
  local left, count = rd.head_left, 0
  while true do
    local e = find(buf, "\n", p, true) -- found: the block ends with an empty line
    if e - p + 1 > left then return header_failure(rd, "limit", "headers") end
    local ce = e - 1
    if ce >= p and byte(buf, ce) == 13 then ce = ce - 1 end
    left = left - (ce - p + 1) - 2 -- a bare LF counts as two, as in head_line
    if ce < p then
      rd.head_left, rd.pos = left, e + 1
      return true
    end
    count = count + 1
    if count > MAX_HEADER_LINES then return too_many_lines() end
    field_at(buf, p, ce, h)
    p = e + 1
  end
end

-- "HTTP/1.1 200 OK": version, status | nil. Exactly three digits, then a
-- space or the end (a 20-digit status is not status 999).
local function status_line(line)
  local version, status, after = match(line, "^HTTP/(%d%.%d) (%d%d%d)()")
  if not version or not (after > #line or byte(line, after) == 32) then return nil end
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
    local ok, f = headers_in_buffer(rd, headers)
    if ok == false then ok, f = http1.read_headers(rd, headers) end
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
      return concat(parts)
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
-- checked before each, by the exchange's reader rd), then stream.suffix.
-- true | nil, failure.
function http1.send_stream(sock, stream, rd)
  local f, rest = stream.file, stream.size
  if not f:seek("set", 0) then return fail("transport", "cannot read the file to upload") end
  while rest > 0 do
    local piece = f:read(rest < FILE_CHUNK and rest or FILE_CHUNK)
    if not piece then
      return fail("transport", "the file to upload ended before its size (changed while sent?)")
    end
    if not rd:left() then return fail("timeout", "timed out sending the request") end
    local ok, err = sock:send(piece)
    if not ok then
      return fail(err == "timeout" and "timeout" or "transport", "sending the request failed: " .. tostring(err))
    end
    rest = rest - #piece
  end
  if not rd:left() then return fail("timeout", "timed out sending the request") end
  local ok, err = sock:send(stream.suffix)
  if not ok then
    return fail(err == "timeout" and "timeout" or "transport", "sending the request failed: " .. tostring(err))
  end
  return true
end

local function exchange(rd, sock, method, request, max, stream)
  if not rd:left() then
    return nil, { kind = "timeout", message = "timed out before sending", sent = false, reason = "connect" }
  end
  local ok, err = sock:send(request)
  if not ok then
    local _, f = fail(err == "timeout" and "timeout" or "transport",
      "sending the request failed: " .. tostring(err))
    return nil, f, err ~= "timeout" and "unsent" or nil
  end
  if stream then
    local sent, f = http1.send_stream(sock, stream, rd)
    if not sent then return nil, f end
  end
  local status, version, headers = http1.read_head(rd)
  if not status then return nil, version, headers and "silent" or nil end
  local keepalive = http1.keepalive(version, headers)
  local body, by_close = http1.read_body(rd, method, status, headers, max)
  if not body then return nil, by_close end
  if by_close then keepalive = false end
  return { status = status, body = body, headers = headers }, keepalive
end

-- One exchange on an open connection. lim: see http1.reader (max: the
-- body cap); deadline: the attempt's, on lim.now's clock; timeout_ms: the
-- socket's timeout as the caller set it for this attempt.
--   {status =, body =, headers =}, keepalive
--   | nil, failure, stale: "unsent" when the request could not be written
--     (so it never arrived), "silent" when not a byte came back after it
--     was; whether that means a stale pooled connection, and whether to
--     send again, is the caller's to decide.
-- stream: a body streamed from a file after `request` (send_stream), or nil.
function http1.exchange(sock, method, request, lim, deadline, timeout_ms, stream)
  local rd = http1.reader(sock, lim, deadline, timeout_ms)
  local res, extra, how = exchange(rd, sock, method, request, lim.max, stream)
  http1.release(rd)
  return res, extra, how
end

return http1
