-- stream_local.reactions: the handlers of the reaction endpoints (stream-feeds-api.md
-- section 6): add (top-level and child), get, update, delete (hard or soft), restore,
-- filter by activity, user or parent reaction, and get_many.
--
-- What it does: validates bodies and queries (400 code 4 naming the fields, nothing
-- written), applies the token rules (a server-side token must name `user_id`; a user
-- token reacts as itself, 403 for another user_id, changes and deletes only its own
-- reactions, and may send target_feeds only to its own feeds and to others'
-- `notification` feeds), and hands the work to stream_local.reactionstore, whose
-- transactions decide 404, 409, unknown parents and depth. Each handler gets
-- ctx = { method, args, principal, params, path, query } from stream_local.app.
--
-- What it deliberately does not do: no realtime notifications, no reaction ranking or
-- scoring, no `SU:` enrichment inside reaction data (as the service), no merge on update
-- (data is replaced).

local json = require "stream_local.json"
local reply = require "stream_local.reply"
local request = require "stream_local.request"
local config = require "stream_local.config"
local ids = require "stream_local.ids"
local reactionstore = require "stream_local.reactionstore"
local reactionflags = require "stream_local.reactionflags"
local enrich = require "stream_local.enrich"
local feedstore = require "stream_local.feedstore"
local db = require "stream_local.db"
local guards = require "stream_local.guards"
local rules = require "stream_local.rules"

-- luacheck: globals ngx
local ngx = ngx
local type, ipairs, pairs = type, ipairs, pairs
local concat, format = table.concat, string.format
local quote = json.quote

local M = {}

M.MAX_TARGET_FEEDS = 20
M.MAX_BYTES = 10240
M.DEFAULT_LIMIT, M.MAX_LIMIT = 10, 25
M.MAX_GET_MANY = 100

local ID_RULE = ids.USER_ID_RULE
-- keys the derived activity of target_feeds sets itself
-- (the core fields, `reaction`, and every reserved activity field)
local DERIVED_KEYS = { foreign_id = true, time = true, actor = true, verb = true, target = true,
  object = true, reaction = true, to = true }
for k in pairs(guards.RESERVED) do DERIVED_KEYS[k] = true end

local valid_id = ids.valid_user_id

local invalid = reply.invalid

local function not_found(id)
  return reply.error(404, "Reaction " .. id .. " does not exist")
end

local function forbidden(detail)
  return reply.error(403, detail)
end

local not_configured = guards.not_configured

local function present(v)
  return v ~= nil and v ~= json.null
end

-- target_feeds(node, principal, errors) -> JSON text of the de-duplicated list, "" for
-- an empty list, nil when absent | false after answering (403 or 400 code 6)
local function target_feeds(node, principal, errors)
  if not present(node) then return nil end
  if json.kind(node) ~= "array" then
    errors[#errors + 1] = { "target_feeds", "must be a list of feed ids such as user:alice" }
    return nil
  end
  if node.n > M.MAX_TARGET_FEEDS then
    errors[#errors + 1] = { "target_feeds", format("at most %d feeds", M.MAX_TARGET_FEEDS) }
    return nil
  end
  local list, seen, unconfigured, refused = {}, {}, nil, nil
  for i = 1, node.n do
    local f = node[i]
    local slug, uid_or_msg, bad_slug = config.feed_parts(f)
    if bad_slug then
      unconfigured = unconfigured or bad_slug
    elseif not slug then
      errors[#errors + 1] = { "target_feeds", uid_or_msg }
    else
      local uid = uid_or_msg
      if not principal.server and uid ~= principal.user_id and not config.receives_from_others(slug) then
        refused = refused or f
      end
      if not seen[f] then
        seen[f] = true
        list[#list + 1] = quote(f)
      end
    end
  end
  if errors[1] then return nil end
  if unconfigured then
    not_configured(unconfigured)
    return false
  end
  if refused then
    forbidden("user " .. principal.user_id .. " may not send reactions to the feed " .. refused)
    return false
  end
  return "[" .. concat(list, ",") .. "]"
end

-- extra_data(node, errors) -> compact JSON object text | nil
local function extra_data(node, errors)
  if not present(node) then return nil end
  if json.kind(node) ~= "object" then
    errors[#errors + 1] = { "target_feeds_extra_data", "must be a JSON object" }
    return nil
  end
  for _, k in ipairs(node.keys) do
    if DERIVED_KEYS[k] then
      errors[#errors + 1] = { "target_feeds_extra_data", k .. " is set by the reaction and cannot be given" }
      return nil
    end
  end
  return json.encode(node)
end

local DATA_RULE = {}
local function data_json(node, errors)
  return guards.data_json(node, "data", errors, DATA_RULE)
end

-- the size rule: the compact JSON of the stored fields, in this order, at most MAX_BYTES
local function check_size(r, errors)
  local size = #('{"id":' .. quote(r.id) .. ',"kind":' .. quote(r.kind) .. ',"activity_id":' .. quote(r.activity_id)
    .. ',"parent":' .. quote(r.parent) .. ',"user_id":' .. quote(r.user_id) .. ',"data":' .. r.data
    .. (r.target_feeds and (',"target_feeds":' .. r.target_feeds) or "")
    .. (r.extra and (',"target_feeds_extra_data":' .. r.extra) or "") .. "}")
  if size > M.MAX_BYTES then
    errors[#errors + 1] = { "data", format("the reaction is %d bytes, the limit is %d bytes", size, M.MAX_BYTES) }
  end
end

-- the owner a user token must be (nil for server tokens)
local function owner(principal)
  if principal.server then return nil end
  return principal.user_id
end

local function send_reaction(status, row, extra_echo)
  local text = reactionstore.renderer():reaction(row)
  if extra_echo then text = text:sub(1, -2) .. ',"target_feeds_extra_data":' .. extra_echo .. "}" end
  return reply.send(status, text)
end

-- POST reaction/ ------------------------------------------------------------------------

-- the readers of an added reaction's fields: each puts what is valid on r and adds
-- { field, message } to errors for what is not, in the order the answers list them

local function read_id_kind(body, r, errors)
  local id = body:get("id")
  if not present(id) then
    r.id = reactionstore.new_id()
  elseif not valid_id(id) then
    errors[#errors + 1] = { "id", "invalid reaction id: " .. ID_RULE }
  else
    r.id = id
  end
  local kind = body:get("kind")
  if not present(kind) then
    errors[#errors + 1] = { "kind", "kind is a required field" }
  elseif not valid_id(kind) then
    errors[#errors + 1] = { "kind", "kind " .. ID_RULE }
  else
    r.kind = kind
  end
end

-- activity_id and parent: strings, at least one of them not empty
local function read_refs(body, r, errors)
  local activity_id, parent = body:get("activity_id"), body:get("parent")
  if present(activity_id) and type(activity_id) ~= "string" then
    errors[#errors + 1] = { "activity_id", "must be a string" }
  elseif present(activity_id) and #activity_id > 255 then
    errors[#errors + 1] = { "activity_id", "must be at most 255 characters" }
  end
  if present(parent) and type(parent) ~= "string" then
    errors[#errors + 1] = { "parent", "must be a string" }
  end
  if errors[1] then return end
  r.activity_id = present(activity_id) and activity_id or ""
  r.parent = present(parent) and parent or ""
  if r.activity_id == "" and r.parent == "" then
    local msg = "one of activity_id or parent must not be empty"
    errors[#errors + 1] = { "activity_id", msg }
    errors[#errors + 1] = { "parent", msg }
  end
end

-- user_id: required with a server token; a user token's own id when absent
local function read_user(body, principal, r, errors)
  local user_id = body:get("user_id")
  if not present(user_id) or user_id == "" then
    if principal.server then
      errors[#errors + 1] = { "user_id", "user_id is a required field" }
    else
      r.user_id = principal.user_id
    end
  elseif not valid_id(user_id) then
    errors[#errors + 1] = { "user_id", "invalid user id: " .. ID_RULE }
  else
    r.user_id = user_id
  end
end

-- store r and answer: 201 with the reaction, or why the store refused it
local function store_reaction(r)
  local row, why = reactionstore.add(r)
  if not row then
    if why == "conflict" then
      return reply.error(409, "Reaction " .. r.id .. " already exists")
    elseif why == "unknown_parent" then
      return invalid({ { "parent", "parent reaction " .. r.parent .. " does not exist" } })
    end
    return invalid({ { "parent", format("reactions may be nested at most %d levels deep", reactionstore.MAX_DEPTH) } })
  end
  return send_reaction(201, row, r.extra)
end

function M.add(ctx)
  local body, detail = request.json_object()
  if not body then return reply.error(400, detail) end
  local errors, r = {}, {}
  read_id_kind(body, r, errors)
  read_refs(body, r, errors)
  read_user(body, ctx.principal, r, errors)
  r.data = data_json(body:get("data"), errors)
  r.extra = extra_data(body:get("target_feeds_extra_data"), errors)
  local targets = target_feeds(body:get("target_feeds"), ctx.principal, errors)
  if targets == false then return end
  if errors[1] then return invalid(errors) end
  r.target_feeds = targets
  check_size(r, errors)
  if errors[1] then return invalid(errors) end

  if not ctx.principal.server and r.user_id ~= ctx.principal.user_id then
    return forbidden("user " .. ctx.principal.user_id .. " may not add reactions as user " .. r.user_id)
  end
  return store_reaction(r)
end

-- GET/PUT/DELETE reaction/{id}/ ------------------------------------------------------------

function M.get(ctx)
  local text = db.read(function()
    local row = reactionstore.get(ctx.params.id)
    return row and reactionstore.renderer():reaction(row)
  end)
  if not text then return not_found(ctx.params.id) end
  return reply.send(200, text)
end

local function store_failure(id, why, principal, what)
  if why == "forbidden" then
    return forbidden("user " .. principal.user_id .. " may only " .. what .. " its own reactions")
  end
  return not_found(id)
end

function M.update(ctx)
  local id = ctx.params.id
  local body, detail = request.json_object()
  if not body then return reply.error(400, detail) end
  local errors = {}
  local changes = {}
  local data = body:get("data")
  if data ~= nil then changes.data = data_json(data, errors) end
  changes.extra = extra_data(body:get("target_feeds_extra_data"), errors)
  local targets = target_feeds(body:get("target_feeds"), ctx.principal, errors)
  if targets == false then return end
  if errors[1] then return invalid(errors) end
  if targets == "[]" then targets = "" end
  changes.target_feeds = targets
  local row, why = reactionstore.update(id, owner(ctx.principal), changes)
  if not row then return store_failure(id, why, ctx.principal, "change") end
  return send_reaction(201, row)
end

function M.delete(ctx)
  local id = ctx.params.id
  local ok, why = reactionstore.delete(id, owner(ctx.principal), request.flag(ctx.args, "soft"))
  if not ok then return store_failure(id, why, ctx.principal, "delete") end
  return reply.send(200, "{}")
end

function M.restore(ctx)
  local id = ctx.params.id
  local ok, why = reactionstore.restore(id, owner(ctx.principal))
  if not ok then return store_failure(id, why, ctx.principal, "restore") end
  return reply.send(200, "{}")
end

-- GET reaction/{lookup}/{value}/[{kind}/] ----------------------------------------------------

local CURSORS = { { "id_lt", "<" }, { "id_lte", "<=" }, { "id_gt", ">" }, { "id_gte", ">=" } }
local COLUMN = { activity_id = "activity_id", user_id = "user_id", reaction_id = "parent" }

-- the query of the next page: the cursor past the last row, limit, then the rest as sent
local function next_query(ctx, name, last_id, limit)
  local parts = { name .. "=" .. ngx.escape_uri(last_id), "limit=" .. limit }
  local drop = { api_key = true, id_lt = true, id_lte = true, id_gt = true, id_gte = true, limit = true }
  for pair in (ctx.query or ""):gmatch("[^&]+") do
    if not drop[ngx.unescape_uri(pair:match("^[^=]*"))] then parts[#parts + 1] = pair end
  end
  return concat(parts, "&")
end

local filter_page

-- limit: default 10; above 25 reads as 25 (the JS suite asks for 100 and 300 and expects
-- 25); below 1 or not a whole number is 400
-- a filter's page size: above MAX_LIMIT reads as MAX_LIMIT (stream_local.rules)
local FILTER_PAGE = { { name = "limit", default = M.DEFAULT_LIMIT, min = 1, max = M.MAX_LIMIT, cap = true,
  message = "must be a whole number of at least 1 (above 25 reads as 25)" } }

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

-- cursor_bound(op, value) -> bound | nil, message. A cursor naming a reaction
-- stands for its place in creation order (seq); one naming no reaction, for the time
-- inside its id when it is a version-1 UUID (the service's ids are). Ids made here are
-- random (version 4) and carry no time: such a cursor that names no reaction (a
-- reaction deleted since, a made-up id) is well formed, so it is no error, but it
-- cannot be placed: the page is empty (a bound no reaction meets).
local NOTHING = { "seq", "<", -1 }
local function cursor_bound(op, value)
  local row = reactionstore.get(value)
  if row then return { "seq", op, row.seq } end
  if not value:find(UUID) then return nil, "must be the id of a reaction or a UUID" end
  local us, tenths, v1 = ids.time_of(value)
  if not v1 then return NOTHING end
  -- created_us is whole microseconds: round the bound up for < and >= so that a cursor
  -- a fraction after a reaction's time keeps its meaning
  if tenths > 0 and (op == "<" or op == ">=") then us = us + 1 end
  return { "created_us", op, us }
end

function M.filter(ctx)
  local errors = {}
  local limit = rules.query(ctx.args, FILTER_PAGE, errors).limit
  local bound, ascending, cursor_name
  for _, c in ipairs(CURSORS) do
    local v = request.arg(ctx.args, c[1])
    if v and v ~= "" and not bound then
      local why
      bound, why = cursor_bound(c[2], v)
      if not bound then
        errors[#errors + 1] = { c[1], why }
      else
        ascending = c[2]:sub(1, 1) == ">"
        cursor_name = ascending and "id_gt" or "id_lt"
      end
    end
  end
  local user = request.arg(ctx.args, "filter_user_id")
  if user == "" then user = nil end
  if errors[1] then return invalid(errors) end
  return db.read(filter_page, ctx, limit, user, bound, ascending, cursor_name)
end

-- one page of a filter, read from one snapshot
filter_page = function(ctx, limit, user, bound, ascending, cursor_name)
  local p = ctx.params
  local rows = reactionstore.list({ column = COLUMN[p.lookup], value = p.value, kind = p.kind,
    top_level = p.lookup == "activity_id", user_id = user, bound = bound, ascending = ascending,
    limit = limit + 1 })
  local renderer = reactionstore.renderer()
  -- withOwnChildren (the latest_reactions_extra URLs carry it): own_children of the
  -- token's user, everyone's for a server token
  local own_children
  if request.flag(ctx.args, "withOwnChildren") or request.flag(ctx.args, "with_own_children") then
    own_children = { user = ctx.principal.user_id }
  end
  local out = {}
  for i = 1, math.min(#rows, limit) do out[i] = renderer:reaction(rows[i], own_children) end
  local next_url = ""
  if #rows > limit then
    next_url = "/api/v1.0/reaction/" .. p.lookup .. "/" .. ngx.escape_uri(p.value) .. "/"
      .. (p.kind and (ngx.escape_uri(p.kind) .. "/") or "") .. "?"
      .. next_query(ctx, cursor_name or "id_lt", rows[limit].id, limit)
  end
  local text = '{"results":[' .. concat(out, ",") .. '],"next":' .. quote(next_url)
  if p.lookup == "activity_id" and request.flag(ctx.args, "with_activity_data") then
    local a = feedstore.get(p.value)
    local enricher = enrich.new(nil, reactionflags.all(ctx))
    local activity
    if a then
      activity = enricher:activity(feedstore.activity_json(a.head, a.body, "null"))
    else
      activity = '{"error":"ReferenceNotFound","reference":' .. quote("SA:" .. p.value)
        .. ',"reference_type":"activity","id":' .. quote(p.value) .. "}"
    end
    text = text .. ',"activity":' .. activity
  end
  return reply.send(200, text .. "}")
end

-- GET reaction/get_many/?ids= -----------------------------------------------------------------

function M.get_many(ctx)
  local v = ctx.args.ids
  if type(v) == "table" then v = concat(v, ",") end
  local list, seen = {}, {}
  for id in (type(v) == "string" and v or ""):gmatch("[^,]+") do
    if not seen[id] then
      seen[id] = true
      list[#list + 1] = id
    end
  end
  if not list[1] then return invalid({ { "ids", "give ids=a,b" } }) end
  if #list > M.MAX_GET_MANY then
    return invalid({ { "ids", format("at most %d ids", M.MAX_GET_MANY) } })
  end
  local include_deleted = request.flag(ctx.args, "include_deleted")
  local renderer = reactionstore.renderer()
  local out = {}
  db.read(function()
    for _, id in ipairs(list) do
      local row = reactionstore.get(id)
      if row and (include_deleted or not row.deleted) then out[#out + 1] = renderer:reaction(row) end
    end
  end)
  return reply.send(200, '{"reactions":[' .. concat(out, ",") .. "]}")
end

-- routes (assembled by stream_local.app); the lookups and get_many come before
-- reaction ids ------------------------------------------------------------------------

local any_feed = guards.any_feed

M.ROUTES = {
  { pattern = [[^/api/v1\.0/reaction/$]], resource = "reactions", feed_id = any_feed,
    methods = { POST = M.add } },
  { pattern = [[^/api/v1\.0/reaction/get_many/$]], resource = "reactions", feed_id = any_feed,
    methods = { GET = M.get_many } },
  { pattern = [[^/api/v1\.0/reaction/(?<lookup>activity_id|user_id|reaction_id)/(?<value>[^/]+)/(?:(?<kind>[^/]+)/)?$]],
    resource = "reactions", feed_id = any_feed, methods = { GET = M.filter } },
  { pattern = [[^/api/v1\.0/reaction/(?<id>[^/]+)/restore/$]], resource = "reactions", feed_id = any_feed,
    methods = { PUT = M.restore } },
  { pattern = [[^/api/v1\.0/reaction/(?<id>[^/]+)/$]], resource = "reactions", feed_id = any_feed,
    methods = { GET = M.get, PUT = M.update, DELETE = M.delete } },
}

return M
