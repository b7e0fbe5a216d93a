-- stream_local.activity: the stored text of an activity, the parts that more than one
-- handler (adds, updates, target updates) must agree on.
--
-- What it does:
--   * canonical(body) -> the canonical JSON of a stored activity body: every key except
--     `id`, `origin` and `to`, object keys sorted (byte order, at every depth), compact.
--     An activity without a foreign id takes its id from this text (stream-feeds-api.md
--     section 3, server choice), and its digest, so an identical add is stored once in
--     every feed, whatever `to` each add carried.
--   * digest(body) -> the md5 of that text (the activities.digest column).
--   * target_feed(entry) -> the feed id of a `to` entry: the text before its first space
--     ("user:bob <token>" is the legacy signed form; the token is neither checked nor
--     kept), or the entry itself when it is no string (the caller's checks refuse it).
--   * with_to(head, body, list) -> body: the stored body with its `to` replaced by the
--     list of feed ids, or without a `to` key when the list is empty; the key order of
--     section 3 (to right after object, then the custom keys) is kept.
--
-- What it deliberately does not do: no validation (stream_local.feeds and
-- stream_local.updates check fields), no database access.

local json = require "stream_local.json"

-- luacheck: globals ngx
local ngx = ngx
local ipairs, type, sort, concat = ipairs, type, table.sort, table.concat

local M = {}

local SKIP = { id = true, origin = true, to = true }
-- the keys a stored body spells out before its custom keys
local CORE = { id = true, foreign_id = true, time = true, actor = true, verb = true, target = true,
  object = true, to = true, origin = true }

local function sorted_into(v, buf, skip)
  local kind = json.kind(v)
  if kind == "object" then
    local keys = {}
    for _, k in ipairs(v.keys) do
      if not (skip and skip[k]) then keys[#keys + 1] = k end
    end
    sort(keys)
    buf[#buf + 1] = "{"
    for i, k in ipairs(keys) do
      if i > 1 then buf[#buf + 1] = "," end
      buf[#buf + 1] = json.quote(k) .. ":"
      sorted_into(v.values[k], buf)
    end
    buf[#buf + 1] = "}"
  elseif kind == "array" then
    buf[#buf + 1] = "["
    for i = 1, v.n do
      if i > 1 then buf[#buf + 1] = "," end
      sorted_into(v[i], buf)
    end
    buf[#buf + 1] = "]"
  else
    buf[#buf + 1] = json.encode(v)
  end
end

-- canonical(body) -> text; body: a stored activity body (with or without its id)
function M.canonical(body)
  local buf = {}
  sorted_into(json.parse(body), buf, SKIP)
  return concat(buf)
end

function M.digest(body)
  return ngx.md5(M.canonical(body))
end

function M.target_feed(entry)
  if type(entry) ~= "string" then return entry end
  return entry:match("^([^ ]*) ") or entry
end

-- with_to(head, body, list) -> the new body; head: the byte length of the body up to
-- the object value (where reads splice in origin), unchanged by the new `to`
function M.with_to(head, body, list)
  local tree = json.parse(body)
  local parts = { body:sub(1, head) }
  if list[1] then
    local quoted = {}
    for i, f in ipairs(list) do quoted[i] = json.quote(f) end
    parts[2] = ',"to":[' .. concat(quoted, ",") .. "]"
  end
  for _, k in ipairs(tree.keys) do
    if not CORE[k] then
      parts[#parts + 1] = "," .. json.quote(k) .. ":" .. json.encode(tree.values[k])
    end
  end
  return concat(parts) .. "}"
end

return M
