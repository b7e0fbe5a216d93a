-- stream_local.request: readers of the request being handled.
--
-- What it does:
--   * first(v): the first value of a query argument or header that may be repeated
--     (ngx gives a table for a repeated one), as a string, or nil.
--   * arg(args, name), flag(args, name): a query argument; a flag is on for `true`,
--     `True` or `1` and off for anything else.
--   * header(headers, name) -> value, repeated: for headers where a repetition is an
--     error of its own (the caller decides what to answer).
--   * read_body(): the request body as text ("" when there is none), also when nginx
--     buffered a large one to a file.
--
-- What it deliberately does not do: no JSON (stream_local.json), no validation of what
-- the values mean, no percent-decoding beyond what ngx already did.

-- luacheck: globals ngx
local ngx = ngx
local type, io = type, io

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

function M.flag(args, name)
  local v = first(args[name])
  return v == "true" or v == "True" or v == "1"
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

return M
