-- stream_local.store: the user records, kept in the `stream_local_users` shared dict so
-- every nginx worker sees the same users.
--
-- What it does:
--   * One dict entry per user, key = the id, value = one string
--     "<created_at µs, 16 digits><updated_at µs, 16 digits><data as compact JSON>",
--     so a reader sees either the old or the new record, never half of one.
--   * add() uses dict:safe_add, so of two concurrent creates of one id exactly one wins,
--     whichever worker runs it.
--   * Changes to an existing record (update, override, delete) run under a per-id lock
--     (stream_local.lock), so an
--     update cannot resurrect a user deleted meanwhile or mix two records.
--   * Timestamps: wall clock at millisecond resolution (ngx.now), written with
--     microseconds; an update's updated_at is at least 1 µs after the previous one.
--   * safe_* calls never evict users when the dict is full; that is an error instead.
--
-- What it deliberately does not do: no persistence (a restart wipes everything), no
-- follows or feeds, no multi-user transactions (a batch is atomic per user only).

-- luacheck: globals ngx
local ngx = ngx
local floor = math.floor
local format, sub = string.format, string.sub
local tonumber, tostring, error = tonumber, tostring, error
local json = require "stream_local.json"
local lock = require "stream_local.lock"

local M = {}

local function users() return ngx.shared.stream_local_users end

function M.now_us()
  ngx.update_time()
  return floor(ngx.now() * 1000 + 0.5) * 1000
end

-- timestamp(µs) -> "2026-11-26T17:02:16.131000Z"
function M.timestamp(us)
  local sec = floor(us / 1000000)
  return os.date("!%Y-%m-%dT%H:%M:%S", sec) .. format(".%06dZ", us - sec * 1000000)
end

local function pack(created, updated, data_json)
  return format("%016.0f%016.0f", created, updated) .. data_json
end

local function unpack(v)
  return tonumber(sub(v, 1, 16)), tonumber(sub(v, 17, 32)), sub(v, 33)
end

-- user_json(id, record [, extra]) -> the user object as JSON text
-- extra: a JSON fragment (`"k":v,...`) appended after data.
function M.user_json(id, record, extra)
  local created, updated, data = unpack(record)
  return '{"id":' .. json.quote(id)
    .. ',"created_at":"' .. M.timestamp(created)
    .. '","updated_at":"' .. M.timestamp(updated)
    .. '","data":' .. data
    .. (extra and ("," .. extra) or "") .. "}"
end

local function with_lock(id, fn, ...)
  return lock.with_lock("user:" .. id, fn, ...)
end

local function store_error(err)
  error("user store: " .. tostring(err), 0)
end

-- get(id) -> record | nil
function M.get(id)
  return (users():get(id))
end

-- add(id, data_json) -> record, true (created) | existing_record, false
function M.add(id, data_json)
  local dict = users()
  local now = M.now_us()
  local record = pack(now, now, data_json)
  local ok, err = dict:safe_add(id, record)
  if ok then return record, true end
  if err ~= "exists" then store_error(err) end
  local existing = dict:get(id)
  if existing then return existing, false end
  -- deleted between the two calls: try once more
  return M.add(id, data_json)
end

local function replace_locked(id, data_json, create)
  local dict = users()
  local old = dict:get(id)
  local record
  if old then
    local created, updated = unpack(old)
    local now = M.now_us()
    if now <= updated then now = updated + 1 end
    record = pack(created, now, data_json)
  elseif create then
    local now = M.now_us()
    record = pack(now, now, data_json)
  else
    return nil
  end
  local ok, err = dict:safe_set(id, record)
  if not ok then store_error(err) end
  return record
end

-- update(id, data_json) -> new record | nil (unknown id)
function M.update(id, data_json)
  return with_lock(id, replace_locked, id, data_json, false)
end

-- upsert(id, data_json) -> record (created or replaced; created_at kept)
function M.upsert(id, data_json)
  return with_lock(id, replace_locked, id, data_json, true)
end

local function delete_locked(id)
  local dict = users()
  if dict:get(id) == nil then return false end
  dict:delete(id)
  return true
end

-- delete(id) -> true | false (unknown id)
function M.delete(id)
  return with_lock(id, delete_locked, id)
end

return M
