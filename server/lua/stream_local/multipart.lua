-- stream_local.multipart: a streaming multipart/form-data reader (RFC 7578 over RFC 2046)
-- for the uploads of stream_local.files.
--
-- What it does:
--   * boundary(content_type) -> the boundary of a multipart/form-data Content-Type (quoted
--     or not, 1..70 characters), or nil and why.
--   * params(text) -> { lower-case name = value } of the `; name=value` parameters after a
--     header value (quoted strings with backslash escapes), e.g. Content-Disposition's.
--   * parse(read, boundary, on_part) -> true | nil, why: reads the body through `read()`
--     (the next chunk, or nil at its end), finds every part between CRLF-framed
--     delimiters, parses its headers (lower-case names, at most 16 KiB of them) and calls
--     on_part(headers), which returns a sink(bytes) for the part's content or nil to
--     skip it. The content goes to the sink as it arrives: only a delimiter's length is
--     held back between chunks, so a large body is never one string. A body without
--     its first delimiter, cut before the closing `--boundary--`, or with a malformed
--     delimiter line or header block is refused with why.
--
-- What it deliberately does not do: no Content-Transfer-Encoding (RFC 7578 forbids it),
-- no nested multipart/mixed parts, no RFC 5987 `filename*` decoding, no charset handling.

local find, sub, lower, concat = string.find, string.sub, string.lower, table.concat
local type = type

local M = {}

M.MAX_HEADERS = 16384

function M.params(text)
  local out, i = {}, 1
  while true do
    local _, e, name = find(text, "^%s*;%s*([^%s=;]+)%s*=%s*", i)
    if not e then return out end
    i = e + 1
    local value
    if sub(text, i, i) == '"' then
      local parts, j = {}, i + 1
      while true do
        local c = sub(text, j, j)
        if c == "" then return out end
        if c == '"' then break end
        if c == "\\" then j = j + 1; c = sub(text, j, j) end
        parts[#parts + 1] = c
        j = j + 1
      end
      value, i = concat(parts), j + 1
    else
      value = text:match("^[^;%s]*", i)
      i = i + #value
    end
    out[lower(name)] = value
  end
end

function M.boundary(content_type)
  local why = "the Content-Type must be multipart/form-data with a boundary"
  if type(content_type) ~= "string" then return nil, why end
  local media, rest = content_type:match("^%s*([^;%s]+)%s*(.*)$")
  if not media or lower(media) ~= "multipart/form-data" then return nil, why end
  local b = M.params(rest).boundary
  if not b or b == "" or #b > 70 then return nil, "the multipart boundary is missing or longer than 70 characters" end
  return b
end

local function header_block(text)
  local headers = {}
  for line in (text .. "\r\n"):gmatch("(.-)\r\n") do
    local name, value = line:match("^([^:%s]+)%s*:%s*(.-)%s*$")
    if not name then return nil end
    headers[lower(name)] = value
  end
  return headers
end

-- the parser's state, one table per body: buf holds what was read and not yet consumed
-- (a "\r\n" is put before the body, so the first delimiter is framed like the others)
local function state(read, boundary)
  local st = { buf = "\r\n", delim = "\r\n--" .. boundary, read = read }
  function st.more()
    local chunk = st.read()
    if chunk == nil then return false end
    st.buf = st.buf .. chunk
    return true
  end
  return st
end

-- content(st, sink): pass bytes to sink until the next delimiter, consumed
local function content(st, sink)
  local delim, keep = st.delim, #st.delim - 1
  while true do
    local s, e = find(st.buf, delim, 1, true)
    if s then
      if sink and s > 1 then sink(sub(st.buf, 1, s - 1)) end
      st.buf = sub(st.buf, e + 1)
      return true
    end
    local n = #st.buf
    if n > keep then
      if sink then sink(sub(st.buf, 1, n - keep)) end
      st.buf = sub(st.buf, n - keep + 1)
    end
    if not st.more() then return nil end
  end
end

-- after_delimiter(st) -> "end" | "part" | nil, why: what follows a delimiter
local function after_delimiter(st)
  while true do
    if sub(st.buf, 1, 2) == "--" then return "end" end
    local s, e = find(st.buf, "\r\n", 1, true)
    if s then
      if not sub(st.buf, 1, s - 1):find("^[ \t]*$") then return nil, "a multipart delimiter line is malformed" end
      st.buf = sub(st.buf, e + 1)
      return "part"
    end
    if #st.buf > 1024 then return nil, "a multipart delimiter line is malformed" end
    if not st.more() then return nil, "the multipart body ends before its closing boundary" end
  end
end

local function headers(st)
  while true do
    if sub(st.buf, 1, 2) == "\r\n" then
      st.buf = sub(st.buf, 3)
      return {}
    end
    local s, e = find(st.buf, "\r\n\r\n", 1, true)
    if s then
      local h = header_block(sub(st.buf, 1, s - 1))
      if not h then return nil, "a multipart part's headers are malformed" end
      st.buf = sub(st.buf, e + 1)
      return h
    end
    if #st.buf > M.MAX_HEADERS then return nil, "a multipart part's headers are longer than 16 KiB" end
    if not st.more() then return nil, "the multipart body ends before its closing boundary" end
  end
end

function M.parse(read, boundary, on_part)
  local st = state(read, boundary)
  if not content(st, nil) then return nil, "the multipart body has no boundary line" end
  while true do
    local what, why = after_delimiter(st)
    if what == "end" then return true end
    if not what then return nil, why end
    local h
    h, why = headers(st)
    if not h then return nil, why end
    if not content(st, on_part(h)) then return nil, "the multipart body ends before its closing boundary" end
  end
end

return M
