-- stream_local.request: readers of the request being handled.
--
-- What it does:
--   * first(v): the first value of a query argument or header that may be repeated
--     (ngx gives a table for a repeated one), as a string, or nil.
--   * arg(args, name), flag(args, name): a query argument; a flag is on for `true`,
--     `True` or `1` and off for anything else. joined(args, name): a comma list whose
--     parameter may also be repeated; list(args, name): its non-empty items.
--   * next_query(query, lead, drop): the query of a read's next page.
--   * header(headers, name) -> value, repeated: for headers where a repetition is an
--     error of its own (the caller decides what to answer).
--   * read_body(): the request body as text ("" when there is none), also when nginx
--     buffered a large one to a file.
--
--   * json_body(): the body parsed as any JSON value (stream_local.json; batch bodies are
--     lists), or nil and the detail of the 400 to answer.
--   * json_object(): the same for a body that must be a JSON object.
--
-- What it deliberately does not do: no validation of what the values mean, no
-- percent-decoding beyond what ngx already did, no answering (callers reply).

-- luacheck: globals ngx
local ngx = ngx
local json = require "stream_local.json"
local type, io, ipairs, format, concat = type, io, ipairs, string.format, table.concat

local M = {}

function M.first(v)
  if type(v) == "table" then v = v[1] end
  if type(v) ~= "string" then return nil end
  return v
end
local first = M.first

function M.arg(args, name)
  return first(args[name])
end

-- joined(args, name): every value of a query argument that may be repeated, joined with
-- commas (a=x&a=y is "x,y"), or nil when there is none or it is empty
-- list(args, name) -> the non-empty items of a comma list (repeats joined), or nil when
-- the argument is absent or empty
function M.list(args, name)
  local v = M.joined(args, name)
  if not v then return nil end
  local list = {}
  for item in (v .. ","):gmatch("([^,]*),") do
    if item ~= "" then list[#list + 1] = item end
  end
  return list
end

function M.joined(args, name)
  local v = args[name]
  if type(v) == "table" then
    local strs = {}
    for _, s in ipairs(v) do
      if type(s) == "string" then strs[#strs + 1] = s end
    end
    v = concat(strs, ",")
  end
  if type(v) ~= "string" or v == "" then return nil end
  return v
end

function M.flag(args, name)
  local v = first(args[name])
  return v == "true" or v == "True" or v == "1"
end

-- next_query(query, lead, drop) -> the query of a next page: the `lead` pairs
-- ("id_lt=X", "limit=N"), then every pair of the raw query whose name is not in `drop`
-- (api_key, offset and the cursors, and what the caller adds), as sent
function M.next_query(query, lead, drop)
  local parts = {}
  for i, p in ipairs(lead) do parts[i] = p end
  for pair in (query or ""):gmatch("[^&]+") do
    local name = ngx.unescape_uri(pair:match("^[^=]*"))
    if not drop[name] then parts[#parts + 1] = pair end
  end
  return concat(parts, "&")
end

function M.header(headers, name)
  local v = headers[name]
  if type(v) == "table" then return v[1], true end
  return v, false
end

function M.read_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then return body end
  local file = ngx.req.get_body_file()
  if file then
    local f = io.open(file, "rb")
    if f then
      body = f:read("*a")
      f:close()
      return body
    end
  end
  return ""
end

local function parsed(text)
  local tree, msg, pos = json.parse(text)
  if tree == nil then
    return nil, format("invalid JSON in the request body: %s at byte %d", msg, pos)
  end
  return tree
end

function M.json_body()
  return parsed(M.read_body())
end

function M.json_object()
  local text = M.read_body()
  if text == "" then
    return nil, "the request body is empty, a JSON object is expected"
  end
  local tree, detail = parsed(text)
  if tree == nil then return nil, detail end
  if json.kind(tree) ~= "object" then
    return nil, "the request body must be a JSON object"
  end
  return tree
end

return M
