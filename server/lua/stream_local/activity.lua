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
--   * core_text(f) and tail_text(to, tree, skip): the stored text in the key order of
--     section 3 (id, foreign_id, time, actor, verb, target, object, then `to`, then the
--     custom keys as sent), one spelling for adds, updates and target updates.
--   * with_to(head, body, list) -> body: the stored body with its `to` replaced by the
--     list of feed ids, or without a `to` key when the list is empty; the key order of
--     section 3 (to right after object, then the custom keys) is kept.
--   * locate(node, where, errors) -> { id, foreign_id? } | nil: the stored activity a
--     change names, by `id` or by `foreign_id` and `time` (the id they give), for
--     partial and full updates and target updates alike; a bad reference adds
--     { where .. field, message } to errors.
--
-- What it deliberately does not do: no validation of activity fields (stream_local.feeds
-- and stream_local.updates check them), no database access.

local json = require "stream_local.json"
local ids = require "stream_local.ids"

-- luacheck: globals ngx
local ngx = ngx
local ipairs, type, concat = ipairs, type, table.concat

local M = {}

local SKIP = { id = true, origin = true, to = true }
-- the keys a stored body spells out before its custom keys
local CORE = { id = true, foreign_id = true, time = true, actor = true, verb = true, target = true,
  object = true, to = true, origin = true }

-- canonical(body) -> text; body: a stored activity body (with or without its id)
function M.canonical(body)
  return json.canonical(json.parse(body), SKIP)
end

function M.digest(body)
  return ngx.md5(M.canonical(body))
end

function M.target_feed(entry)
  if type(entry) ~= "string" then return entry end
  return entry:match("^([^ ]*) ") or entry
end

-- core_text(f) -> the text after the id up to the object value: f = { foreign_id (nil:
-- ""), time (output text), actor, verb, target, object }, strings
function M.core_text(f)
  return concat({
    ',"foreign_id":', json.quote(f.foreign_id or ""),
    ',"time":', json.quote(f.time),
    ',"actor":', json.quote(f.actor),
    ',"verb":', json.quote(f.verb),
    ',"target":', json.quote(f.target),
    ',"object":', json.quote(f.object),
  })
end

-- tail_text(to, tree, skip) -> the text after the object value: `to` (a list, or nil for
-- no key), then every key of tree (stream_local.json object) that skip does not name
function M.tail_text(to, tree, skip)
  local parts = {}
  if to then
    local items = {}
    for i = 1, to.n or #to do items[i] = json.encode(to[i]) end
    parts[1] = ',"to":[' .. concat(items, ",") .. "]"
  end
  for _, k in ipairs(tree.keys) do
    if not skip[k] then parts[#parts + 1] = "," .. json.quote(k) .. ":" .. json.encode(tree.values[k]) end
  end
  return concat(parts)
end

-- with_to(head, body, list) -> the new body; head: the byte length of the body up to
-- the object value (where reads splice in origin), unchanged by the new `to`
function M.with_to(head, body, list)
  return body:sub(1, head) .. M.tail_text(list[1] and list or nil, json.parse(body), CORE) .. "}"
end

function M.locate(node, where, errors)
  local id = node:get("id")
  if id ~= nil and id ~= json.null then
    if type(id) ~= "string" or not ids.sort_key(id) then
      errors[#errors + 1] = { where .. "id", "must be an activity id (a UUID)" }
      return nil
    end
    return { id = id:lower() }
  end
  local fid, time = node:get("foreign_id"), node:get("time")
  if fid == nil or fid == json.null then
    -- with a time the caller took the foreign_id way: name the field it left out
    errors[#errors + 1] = { where .. (time == nil and "id" or "foreign_id"),
      "give the activity's id, or its foreign_id and time" }
    return nil
  end
  if type(fid) ~= "string" or fid == "" then
    errors[#errors + 1] = { where .. "foreign_id", "must be a non-empty string" }
    return nil
  end
  local us = ids.parse_time(time)
  if not us then
    errors[#errors + 1] = { where .. "time", time == nil and "this field is required with foreign_id" or ids.TIME_RULE }
    return nil
  end
  return { id = (ids.activity_id(us, fid)), foreign_id = fid }
end

return M
