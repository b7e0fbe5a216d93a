-- stream_local.reactionstore: reactions in the SQLite database (tables `reactions` and
-- `reaction_kinds` in stream_local.schema), their JSON shape, and the activities that
-- reactions with `target_feeds` put into feeds.
--
-- What it does:
--   * add/update/delete/restore: one BEGIN IMMEDIATE transaction each (stream_local.db),
--     so concurrent writes from several nginx workers serialize: the parent lookup and
--     depth check, the id check (409), the creation order `seq`, the row, its kind and
--     its target-feed activity are written together or not at all.
--   * Counts are never stored: reaction_counts and children_counts are count(*) over
--     the live rows at read time, so they are exact whatever ran concurrently; a rendered
--     reaction reads one snapshot (db.read), so its children and counts agree. Kinds
--     once used are remembered (reaction_kinds) so a kind stays in the counts at 0.
--   * Render: the reaction object of stream-feeds-api.md section 6 as JSON text, keys
--     exactly id, kind, activity_id, user_id, user, data, created_at, updated_at, parent,
--     latest_children, children_counts, then target_feeds when not empty and deleted_at
--     while soft-deleted. `user` is read now (a user updated later shows its new data; a
--     missing one is the user ReferenceNotFound object). Children are nested to the
--     depth that exists (at most grandchildren).
--   * Target feeds: the derived activity has the id of (foreign_id "reaction:<id>",
--     time = created_at), so re-targeting and removal find it without a lookup table; it
--     is stored once and delivered to every listed feed (and their followers) through
--     stream_local.feedstore inside the reaction's own transaction.
--
-- Invariants: a live reaction's parent exists (hard deletes take children and
-- grandchildren with them); depth is 1 + the parent's depth and at most 3; seq grows with
-- creation; a row with deleted_us set is left out of every list and count, but is
-- still returned by get and by SR: references.
--
-- What it deliberately does not do: no validation or permission policy (the handlers in
-- stream_local.reactions do it; this module only checks ownership when asked to), no
-- request parsing, no caching across requests.

local db = require "stream_local.db"
local json = require "stream_local.json"
local ids = require "stream_local.ids"
local clock = require "stream_local.clock"
local userstore = require "stream_local.userstore"
local feedstore = require "stream_local.feedstore"

local ipairs, setmetatable, concat, random, format = ipairs, setmetatable, table.concat, math.random, string.format
local quote = json.quote

local M = {}

M.MAX_DEPTH = 3
M.LATEST_CHILDREN = 10 -- across kinds
M.OWN_CHILDREN = 5 -- per kind

local COLS = "id, seq, activity_id, parent, depth, user_id, kind, created_us, updated_us, deleted_us, data, "
  .. "target_feeds, extra"

local function row_of(r)
  if not r then return nil end
  return { id = r[1], seq = r[2], activity_id = r[3], parent = r[4], depth = r[5], user_id = r[6], kind = r[7],
    created = r[8], updated = r[9], deleted = r[10], data = r[11], target_feeds = r[12], extra = r[13] }
end

local function rows_of(list)
  local out = {}
  for i, r in ipairs(list) do out[i] = row_of(r) end
  return out
end

-- get(id) -> row | nil (soft-deleted rows included)
function M.get(id)
  return row_of(db.one("SELECT " .. COLS .. " FROM reactions WHERE id = ?", id))
end

-- new_id() -> a random (version 4) UUID
function M.new_id()
  return format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x", random(0, 0xffff), random(0, 0xffff),
    random(0, 0xffff), random(0, 0xfff), 0x8000 + random(0, 0x3fff), random(0, 0xffff), random(0, 0xffff),
    random(0, 0xffff))
end

-- target-feed activities ------------------------------------------------------------

local function derived_id(row)
  return (ids.activity_id(row.created, "reaction:" .. row.id))
end
M.derived_id = derived_id

local function remove_derived(row)
  feedstore.remove_all(derived_id(row))
end

local function add_derived(row)
  if not row.target_feeds then return end
  local feeds = json.parse(row.target_feeds)
  if feeds.n == 0 then return end
  local id, sk = ids.activity_id(row.created, "reaction:" .. row.id)
  local head = '{"id":"' .. id .. '","foreign_id":' .. quote("reaction:" .. row.id)
    .. ',"time":"' .. ids.format_time(row.created) .. '","actor":' .. quote("SU:" .. row.user_id)
    .. ',"verb":' .. quote(row.kind) .. ',"target":"","object":' .. quote("SA:" .. row.activity_id)
  local tail = ',"reaction":' .. quote("SR:" .. row.id)
  if row.extra and row.extra ~= "{}" then tail = tail .. "," .. row.extra:sub(2, -2) end
  local to = {}
  for i = 2, feeds.n do to[#to + 1] = feeds[i] end
  feedstore.add(feeds[1], { { id = id, sk = sk, foreign_id = "reaction:" .. row.id, time_us = row.created,
    head = #head, body = head .. tail .. "}", to = to } })
end

-- writes ------------------------------------------------------------------------------

local function remember_kind(owner, kind)
  db.exec([[INSERT OR IGNORE INTO reaction_kinds (owner, kind, seq)
    SELECT ?, ?, coalesce(max(seq), 0) + 1 FROM reaction_kinds]], owner, kind)
end

local function owner_of(row)
  if row.parent ~= "" then return "r:" .. row.parent end
  return "a:" .. row.activity_id
end

-- add(r) -> row | nil, why ("conflict" | "unknown_parent" | "too_deep")
-- r: { id, kind, activity_id, parent, user_id, data (JSON text), target_feeds (JSON text
-- or nil), extra (JSON text or nil) }; parent "" for a top-level reaction
local function add_tx(r)
  if db.one("SELECT 1 FROM reactions WHERE id = ?", r.id) then return nil, "conflict" end
  local depth, activity_id = 1, r.activity_id
  if r.parent ~= "" then
    local p = db.one("SELECT activity_id, depth FROM reactions WHERE id = ?", r.parent)
    if not p then return nil, "unknown_parent" end
    if p[2] >= M.MAX_DEPTH then return nil, "too_deep" end
    activity_id, depth = p[1], p[2] + 1
  end
  local seq = db.one("SELECT coalesce(max(seq), 0) + 1 FROM reactions")[1]
  local now = clock.realtime_us()
  db.exec("INSERT INTO reactions (" .. COLS .. ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)",
    r.id, seq, activity_id, r.parent, depth, r.user_id, r.kind, now, now, r.data, r.target_feeds, r.extra)
  local row = M.get(r.id)
  remember_kind(owner_of(row), row.kind)
  add_derived(row)
  return row
end

function M.add(r)
  return db.write(add_tx, r)
end

-- owned(row, owner): owner nil means anyone (server tokens)
local function owned(row, owner)
  return owner == nil or row.user_id == owner
end

-- update(id, owner, changes) -> row | nil, "not_found" | "forbidden"
-- changes: { data = JSON text or nil (keep), target_feeds = JSON text, "" (none) or nil
-- (keep), extra = JSON text or nil (keep) }
function M.update(id, owner, changes)
  return db.write(function()
    local row = M.get(id)
    if not row then return nil, "not_found" end
    if not owned(row, owner) then return nil, "forbidden" end
    local now = clock.realtime_us()
    if now <= row.updated then now = row.updated + 1 end
    local targets, extra = row.target_feeds, row.extra
    local retarget = changes.target_feeds ~= nil or changes.extra ~= nil
    if changes.target_feeds == "" then targets = nil elseif changes.target_feeds then targets = changes.target_feeds end
    if changes.extra then extra = changes.extra end
    db.exec("UPDATE reactions SET data = ?, updated_us = ?, target_feeds = ?, extra = ? WHERE id = ?",
      changes.data or row.data, now, targets, extra, id)
    if retarget then
      remove_derived(row)
      add_derived(M.get(id))
    end
    return M.get(id)
  end)
end

-- the reaction and its descendants (children, grandchildren), deepest last
local function family(id)
  local out, frontier = { id }, { id }
  for _ = 2, M.MAX_DEPTH do
    local next_frontier = {}
    for _, pid in ipairs(frontier) do
      for _, r in ipairs(db.rows("SELECT id FROM reactions WHERE parent = ?", pid)) do
        out[#out + 1] = r[1]
        next_frontier[#next_frontier + 1] = r[1]
      end
    end
    frontier = next_frontier
  end
  return out
end

-- delete(id, owner, soft) -> true | nil, "not_found" | "forbidden"
function M.delete(id, owner, soft)
  return db.write(function()
    local row = M.get(id)
    if not row then return nil, "not_found" end
    if not owned(row, owner) then return nil, "forbidden" end
    if soft then
      if not row.deleted then
        db.exec("UPDATE reactions SET deleted_us = ? WHERE id = ?", clock.realtime_us(), id)
      end
      return true
    end
    for _, rid in ipairs(family(id)) do
      local r = M.get(rid)
      remove_derived(r)
      db.exec("DELETE FROM reaction_kinds WHERE owner = ?", "r:" .. rid)
      db.exec("DELETE FROM reactions WHERE id = ?", rid)
    end
    return true
  end)
end

-- restore(id, owner) -> true | nil, "not_found" (also when not soft-deleted) | "forbidden"
function M.restore(id, owner)
  return db.write(function()
    local row = M.get(id)
    if not row or not row.deleted then return nil, "not_found" end
    if not owned(row, owner) then return nil, "forbidden" end
    db.exec("UPDATE reactions SET deleted_us = NULL WHERE id = ?", id)
    return true
  end)
end

-- reads ------------------------------------------------------------------------------

-- list(q) -> rows, live only. q: { column = "activity_id" | "user_id" | "parent", value,
-- kind?, user_id? (narrowing), top_level? (parent = ''), bound = { column ("seq" or
-- "created_us"), op, value }?,
-- ascending?, limit }
function M.list(q)
  local where, args = { q.column .. " = ?", "deleted_us IS NULL" }, { q.value }
  if q.top_level then where[#where + 1] = "parent = ''" end
  if q.kind then
    where[#where + 1] = "kind = ?"
    args[#args + 1] = q.kind
  end
  if q.user_id and q.column ~= "user_id" then
    where[#where + 1] = "user_id = ?"
    args[#args + 1] = q.user_id
  end
  if q.bound then
    where[#where + 1] = q.bound[1] .. " " .. q.bound[2] .. " ?"
    args[#args + 1] = q.bound[3]
  end
  args[#args + 1] = q.limit
  return rows_of(db.rows("SELECT " .. COLS .. " FROM reactions WHERE " .. concat(where, " AND ")
    .. " ORDER BY seq " .. (q.ascending and "ASC" or "DESC") .. " LIMIT ?", unpack(args)))
end

-- kinds(owner) -> list of kinds ever used under an owner ('a:<activity>' / 'r:<reaction>')
function M.kinds(owner)
  local out = {}
  for i, r in ipairs(db.rows("SELECT kind FROM reaction_kinds WHERE owner = ? ORDER BY seq", owner)) do
    out[i] = r[1]
  end
  return out
end

-- counts(owner) -> list of { kind, n } over the live direct reactions, every kind ever
-- used included (0 when none is left)
function M.counts(owner)
  local n = {}
  local sql
  if owner:sub(1, 2) == "r:" then
    sql = "SELECT kind, count(*) FROM reactions WHERE parent = ? AND deleted_us IS NULL GROUP BY kind"
  else
    sql = "SELECT kind, count(*) FROM reactions WHERE activity_id = ? AND parent = '' AND deleted_us IS NULL"
      .. " GROUP BY kind"
  end
  for _, r in ipairs(db.rows(sql, owner:sub(3))) do n[r[1]] = r[2] end
  local out = {}
  for i, kind in ipairs(M.kinds(owner)) do out[i] = { kind, n[kind] or 0 } end
  return out
end

-- rendering ---------------------------------------------------------------------------

local Renderer = {}
Renderer.__index = Renderer

-- renderer() -> an object that renders reactions, caching users for one request
function M.renderer()
  return setmetatable({ users = {} }, Renderer)
end

function Renderer:user(id)
  local text = self.users[id]
  if not text then
    local rec = userstore.get(id)
    if rec then
      text = userstore.user_json(id, rec)
    else
      text = '{"error":"ReferenceNotFound","reference":' .. quote("SU:" .. id)
        .. ',"reference_type":"user","id":' .. quote(id) .. "}"
    end
    self.users[id] = text
  end
  return text
end

-- grouped(rows, render) -> '{"kind":[...],...}' in the order kinds first appear
function M.grouped(rows, render)
  local order, groups = {}, {}
  for _, r in ipairs(rows) do
    if not groups[r.kind] then
      groups[r.kind] = {}
      order[#order + 1] = r.kind
    end
    local g = groups[r.kind]
    g[#g + 1] = render(r)
  end
  local parts = {}
  for i, kind in ipairs(order) do parts[i] = quote(kind) .. ":[" .. concat(groups[kind], ",") .. "]" end
  return "{" .. concat(parts, ",") .. "}"
end

function M.counts_json(list)
  local parts = {}
  for i, c in ipairs(list) do parts[i] = quote(c[1]) .. ":" .. c[2] end
  return "{" .. concat(parts, ",") .. "}"
end

-- own_children(row, user) -> '{"kind":[...]}': the user's (everyone's when nil) live
-- direct children of the reaction, newest first, at most OWN_CHILDREN per kind; kinds in
-- the order they were first used under the reaction
function Renderer:own_children(row, user)
  if row.depth >= M.MAX_DEPTH then return "{}" end
  local parts = {}
  for _, kind in ipairs(M.kinds("r:" .. row.id)) do
    local rows = M.list({ column = "parent", value = row.id, kind = kind, user_id = user, limit = M.OWN_CHILDREN })
    if rows[1] then
      local items = {}
      for i, c in ipairs(rows) do items[i] = self:reaction(c) end
      parts[#parts + 1] = quote(kind) .. ":[" .. concat(items, ",") .. "]"
    end
  end
  return "{" .. concat(parts, ",") .. "}"
end

-- reaction(row [, own_children]) -> JSON text. own_children: { user = id or nil } adds
-- `own_children` ({kind: [children]}: the user's direct children, or everyone's when
-- user is nil), as enriched reads do with withOwnChildren.
local render

function Renderer:reaction(row, own_children)
  return db.read(render, self, row, own_children)
end

render = function(self, row, own_children)
  local latest, counts = "{}", "{}"
  if row.depth < M.MAX_DEPTH then
    local children = M.list({ column = "parent", value = row.id, limit = M.LATEST_CHILDREN })
    latest = M.grouped(children, function(c) return self:reaction(c) end)
    counts = M.counts_json(M.counts("r:" .. row.id))
  end
  local parts = {
    '{"id":', quote(row.id), ',"kind":', quote(row.kind), ',"activity_id":', quote(row.activity_id),
    ',"user_id":', quote(row.user_id), ',"user":', self:user(row.user_id), ',"data":', row.data,
    ',"created_at":"', userstore.timestamp(row.created), '","updated_at":"', userstore.timestamp(row.updated),
    '","parent":', quote(row.parent), ',"latest_children":', latest, ',"children_counts":', counts,
  }
  if own_children then parts[#parts + 1] = ',"own_children":' .. self:own_children(row, own_children.user) end
  if row.target_feeds and row.target_feeds ~= "[]" then
    parts[#parts + 1] = ',"target_feeds":' .. row.target_feeds
  end
  if row.deleted then
    parts[#parts + 1] = ',"deleted_at":"' .. userstore.timestamp(row.deleted) .. '"'
  end
  parts[#parts + 1] = "}"
  return concat(parts)
end

return M
