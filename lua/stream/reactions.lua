-- stream.reactions: `client.reactions`, the reactions endpoints (likes,
-- comments, ... by a user on an activity or on another reaction).
--
-- Each method checks its arguments and describes one request for the
-- client's pipeline. Retry safety: get, filter, get_many, update, delete and
-- restore may be repeated. An add without an id is never sent twice once it
-- may have reached the server. An add with a caller-given id may be: the id
-- is an idempotency key, so a 409 on a repeat means an earlier attempt
-- landed, and the answer is then the stored reaction (read back and checked
-- to be the same kind, activity and user), not the 409.
--
-- Local checks, nothing sent when they fail (`invalid`): kind and ids
-- 1-255 characters of A-Z a-z 0-9 _ -, data a JSON object, the request at
-- most 10 kB, a server-side client naming `user_id`. A user-token client
-- leaves `user_id` out (Stream takes the token's user).

local errors = require "stream.errors"
local check = require "stream.check"
local rules = require "stream.rules"
local paging = require "stream.paging"
local handles = require "stream.handles"
local request = require "stream.request"

local reactions = {}

local unpack = table.unpack or unpack -- luacheck: ignore 143

local MAX_TARGET_FEEDS = 20

local Reactions = {}
Reactions.__index = Reactions
Reactions.__name = "stream.reactions"

function Reactions.__tostring()
  return "stream.reactions"
end

function reactions.collection(client)
  return setmetatable({ client = client }, Reactions)
end

local function self_check(self, fname)
  check.self(self, Reactions, fname, 3)
end

-- An id argument (a string, or a table with an `id`, e.g. an activity or a
-- reaction as returned) as text; raises otherwise.
local function ref_arg(v, what, fname)
  if type(v) == "table" then v = v.id end
  if type(v) ~= "string" then
    check.raise(fname .. ": " .. what .. " must be an id string or a table with an id, got "
      .. type(v), 4)
  end
  return v
end

local function kind_problem(kind, info)
  return check.id(kind, "kind", info)
end

-- target_feeds -> a list of "slug:id" as JSON strings, or nil, err.
local function target_feeds_json(pipe, list, fname, info, level)
  if type(list) ~= "table" then
    check.raise(fname .. ": option 'target_feeds' must be a list of feed handles or \"slug:id\"", level)
  end
  if #list > MAX_TARGET_FEEDS then
    return nil, errors.invalid(string.format("at most %d target_feeds, got %d", MAX_TARGET_FEEDS,
      #list), "target_feeds", info)
  end
  local out = {}
  for i = 1, #list do
    local t, err = handles.target_id(list[i], fname, info, level + 1, "target_feeds[" .. i .. "]")
    if not t then return nil, err end
    out[i] = pipe:encode(t)
  end
  return out
end

-- Appends the member `name` with JSON text `value` to a body's members
-- (name, value, name, value, ...: request.object's arguments, in order).
local function member(members, name, value)
  members[#members + 1] = name
  members[#members + 1] = value
end

-- The body fields shared by add and update: data, target_feeds,
-- target_feeds_extra_data, appended to `members`. `level` as check.raise
-- counts it from here.
local function common_fields(pipe, members, data, opts, fname, info, level)
  local text, err = check.object(pipe, data, "data", info)
  if not text then return nil, err end
  member(members, "data", text)
  if opts.target_feeds ~= nil then
    local list
    list, err = target_feeds_json(pipe, opts.target_feeds, fname, info, level + 1)
    if not list then return nil, err end
    member(members, "target_feeds", list)
  end
  if opts.target_feeds_extra_data ~= nil then
    check.data_arg(opts.target_feeds_extra_data, fname, level, "target_feeds_extra_data")
    text, err = check.object(pipe, opts.target_feeds_extra_data, "target_feeds_extra_data", info)
    if not text then return nil, err end
    member(members, "target_feeds_extra_data", text)
  end
  return true
end

-- The body of its members, checked against the reaction size limit.
local function body_of(members, info)
  local body = request.object(unpack(members, 1, #members))
  local err = rules.fits(body, "the reaction", "data", info)
  if err then return nil, err end
  return body
end

local ADD_OPTS = { user_id = true, target_feeds = true, target_feeds_extra_data = true, id = true }

-- The reaction stored under a caller-given id, when it is the one this add
-- meant (same kind, activity or parent, user): the answer after a repeat.
local function stored_twin(pipe, id, want)
  local got = pipe:send({ method = "GET", path = "reaction/" .. id .. "/", idempotent = true })
  if type(got) ~= "table" or got.kind ~= want.kind then return nil end
  if want.parent and got.parent ~= want.parent then return nil end
  if want.activity_id and got.activity_id ~= want.activity_id then return nil end
  if want.user_id and got.user_id ~= want.user_id then return nil end
  return got
end

local function add(self, fname, kind, link_key, link, data, opts)
  local client = self.client
  if type(kind) ~= "string" then
    check.raise(fname .. ": kind must be a string, got " .. type(kind), 3)
  end
  link = ref_arg(link, link_key == "parent" and "parent" or "activity", fname)
  check.data_arg(data, fname, 3)
  opts = check.opts(opts, ADD_OPTS, fname, 3)
  local info = { method = "POST", path = "reaction/" }
  local link_rule = link_key == "activity_id" and rules.activity_id or check.id
  local err = kind_problem(kind, info) or link_rule(link, link_key, info)
  if err then return nil, err end
  local pipe = client.pipeline
  local members = { "kind", pipe:encode(kind), link_key, pipe:encode(link) }
  local user_id
  if opts.user_id ~= nil then
    user_id, err = rules.user_option(opts.user_id, "user_id", fname, info, 3)
    if err then return nil, err end
    member(members, "user_id", pipe:encode(user_id))
  elseif client.auth_mode ~= "user_token" then
    return nil, errors.invalid("user_id is required: a server-side client must say which user "
      .. "reacts (option user_id)", "user_id", info)
  else
    user_id = client.user_id
  end
  if opts.id ~= nil then
    local id = check.id_arg(opts.id, fname, 3, "option 'id'")
    err = check.id(id, "id", info)
    if err then return nil, err end
    member(members, "id", pipe:encode(id))
  end
  local ok
  ok, err = common_fields(pipe, members, data, opts, fname, info, 4)
  if not ok then return nil, err end
  local body
  body, err = body_of(members, info)
  if not body then return nil, err end
  local res
  res, err = pipe:send({ method = "POST", path = "reaction/", body = body,
    idempotent = opts.id ~= nil })
  if res == nil and opts.id ~= nil and err.kind == "api" and err.status == 409
      and (err.attempts or 1) > 1 then
    local twin = stored_twin(pipe, opts.id, {
      kind = kind, [link_key] = link, user_id = user_id,
    })
    if twin then return twin end
  end
  return res, err
end

-- reactions:add(kind, activity [, data] [, opts])
function Reactions:add(kind, activity, data, opts)
  self_check(self, "reactions:add")
  local res, err = add(self, "reactions:add", kind, "activity_id", activity, data, opts)
  return res, err
end

-- reactions:add_child(kind, parent [, data] [, opts])
function Reactions:add_child(kind, parent, data, opts)
  self_check(self, "reactions:add_child")
  local res, err = add(self, "reactions:add_child", kind, "parent", parent, data, opts)
  return res, err
end

local function one(self, fname, id, method, suffix, query, body)
  id = ref_arg(id, "id", fname)
  local path = "reaction/" .. id .. "/" .. (suffix or "")
  local err = check.id(id, "id", rules.info(method, "reaction", id))
  if err then return nil, err end
  return self.client.pipeline:send({ method = method, path = path, query = query, body = body,
    idempotent = true })
end

function Reactions:get(id)
  self_check(self, "reactions:get")
  local res, err = one(self, "reactions:get", id, "GET")
  return res, err
end

local UPDATE_OPTS = { target_feeds = true, target_feeds_extra_data = true }

-- reactions:update(id, data [, {target_feeds =, target_feeds_extra_data =}])
function Reactions:update(id, data, opts)
  self_check(self, "reactions:update")
  if data == nil then
    check.raise("reactions:update: data is required (it replaces the reaction's data)", 2)
  end
  check.data_arg(data, "reactions:update", 2)
  opts = check.opts(opts, UPDATE_OPTS, "reactions:update", 2)
  local info = { method = "PUT", path = "reaction/" }
  local members = {}
  local ok, err = common_fields(self.client.pipeline, members, data, opts, "reactions:update", info, 3)
  if not ok then return nil, err end
  local body
  body, err = body_of(members, info)
  if not body then return nil, err end
  local res
  res, err = one(self, "reactions:update", id, "PUT", nil, nil, body)
  return res, err
end

local DELETE_OPTS = { soft = true }

-- reactions:delete(id [, {soft = true}])
function Reactions:delete(id, opts)
  self_check(self, "reactions:delete")
  opts = check.opts(opts, DELETE_OPTS, "reactions:delete", 2)
  if opts.soft ~= nil and type(opts.soft) ~= "boolean" then
    check.raise("reactions:delete: option 'soft' must be a boolean", 2)
  end
  local res, err = one(self, "reactions:delete", id, "DELETE", nil,
    opts.soft and { soft = true } or nil)
  return res, err
end

-- reactions:restore(id): undoes a soft delete.
function Reactions:restore(id)
  self_check(self, "reactions:restore")
  local res, err = one(self, "reactions:restore", id, "PUT", "restore/")
  return res, err
end

local LOOKUPS = { "activity_id", "user_id", "reaction_id" }
local FILTER_KEYS = { activity_id = true, user_id = true, reaction_id = true, kind = true,
  limit = true, id_lt = true, id_lte = true, id_gt = true, id_gte = true,
  with_activity_data = true, filter_user_id = true }

local function filter_desc(conditions, fname)
  if type(conditions) ~= "table" then
    check.raise(fname .. ": conditions must be a table, got " .. type(conditions), 3)
  end
  local c = check.opts(conditions, FILTER_KEYS, fname, 3)
  local lookup, value
  for _, k in ipairs(LOOKUPS) do
    if c[k] ~= nil then
      if lookup then
        check.raise(fname .. ": give exactly one of activity_id, user_id, reaction_id (got "
          .. lookup .. " and " .. k .. ")", 3)
      end
      lookup, value = k, c[k]
    end
  end
  if not lookup then
    check.raise(fname .. ": give exactly one of activity_id, user_id, reaction_id", 3)
  end
  value = handles.user_of(value) or value
  value = ref_arg(value, lookup, fname)
  local rule = lookup == "activity_id" and rules.activity_id or check.id
  local err = rule(value, lookup, rules.info("GET", "reaction", lookup, value))
  if err then return nil, err end
  local info = { method = "GET", path = "reaction/" .. lookup .. "/" .. value .. "/" }
  local path = "reaction/" .. lookup .. "/" .. value .. "/"
  if c.kind ~= nil then
    if type(c.kind) ~= "string" then check.raise(fname .. ": kind must be a string", 3) end
    err = kind_problem(c.kind, info)
    if err then return nil, err end
    path = path .. c.kind .. "/"
  end
  local q = {}
  -- limit and the id_* cursors (reaction ids follow the activity id rule)
  local ok
  ok, err = rules.paging(c, q, "reaction_limit", fname, info, 3)
  if not ok then return nil, err end
  if c.with_activity_data ~= nil then
    if type(c.with_activity_data) ~= "boolean" then
      check.raise(fname .. ": with_activity_data must be a boolean", 3)
    end
    if c.with_activity_data then q.with_activity_data = true end
  end
  q.filter_user_id, err = rules.user_option(c.filter_user_id, "filter_user_id", fname, info, 3)
  if err then return nil, err end
  return { method = "GET", path = path, query = q, idempotent = true }
end

-- reactions:filter(conditions) -> {results =, next =, duration = [, activity =]}
function Reactions:filter(conditions)
  self_check(self, "reactions:filter")
  local desc, err = filter_desc(conditions, "reactions:filter")
  if not desc then return nil, err end
  local res
  res, err = self.client.pipeline:send(desc)
  return res, err
end

-- for page, err in reactions:pages(conditions) do ... end
function Reactions:pages(conditions)
  self_check(self, "reactions:pages")
  local desc, err = filter_desc(conditions, "reactions:pages")
  local client = self.client
  local pipe = client.pipeline
  return paging.pages(client, function()
    if not desc then return nil, err end
    return pipe:send(desc)
  end, function(path, raw)
    return pipe:send({ method = "GET", path = path, raw_query = raw, idempotent = true })
  end, { method = "GET", path = desc and desc.path or "reaction/" })
end

local GET_MANY_OPTS = { include_deleted = true }

-- reactions:get_many(ids [, {include_deleted = true}]) -> {reactions = {...}}
function Reactions:get_many(ids, opts)
  self_check(self, "reactions:get_many")
  local list = check.ids_arg(ids, "reactions:get_many", 2)
  opts = check.opts(opts, GET_MANY_OPTS, "reactions:get_many", 2)
  local info = { method = "GET", path = "reaction/get_many/" }
  local err = check.ids(list, "ids", info)
  if err then return nil, err end
  local q = { ids = table.concat(list, ",") }
  if opts.include_deleted then q.include_deleted = true end
  local res
  res, err = self.client.pipeline:send({ method = "GET", path = "reaction/get_many/", query = q,
    idempotent = true })
  return res, err
end

reactions.Reactions = Reactions
return reactions
