-- stream_local.enrich: replaces references in activities at read time
-- (stream-feeds-api.md section 5).
--
-- What it does: activity(text) takes an activity as JSON text and returns it with every
-- top-level string value that is a reference replaced, whatever its key (`origin` is a
-- feed id and is skipped): `SU:<id>` by the user as GET user/<id>/ shows it (minus
-- duration), `SA:<id>` by that activity, itself enriched one level more (then never
-- deeper, so cycles end), `SR:<id>` by the reaction (stream_local.reactionstore's
-- shape, soft-deleted ones with deleted_at), `SO:<collection>:<id>` by the collection
-- entry (minus duration). A reference that names nothing becomes the ReferenceNotFound
-- object. Values nested in objects or arrays stay as they are. Lookups are cached for
-- one request (new(ctx) per request). With the reaction flags of the request
-- (stream_local.reactionflags), each activity read, and each activity an SA:
-- reference brings in at any depth, gets own_reactions, latest_reactions(_extra) and
-- reaction_counts appended for the same reader.
--
-- What it deliberately does not do: no partial enrichment options, no caching across
-- requests (a user updated later shows its new data).

local json = require "stream_local.json"
local rules = require "stream_local.rules"
local userstore = require "stream_local.userstore"
local feedstore = require "stream_local.feedstore"
local reactionstore = require "stream_local.reactionstore"
local reactionflags = require "stream_local.reactionflags"
local collectionstore = require "stream_local.collectionstore"

local ipairs, type, setmetatable = ipairs, type, setmetatable

local M = {}

local function not_found(reference, kind, id, collection)
  local o = json.object()
  o:set("error", "ReferenceNotFound")
  o:set("reference", reference)
  o:set("reference_type", kind)
  if collection then o:set("collection", collection) end
  o:set("id", id)
  return o
end

-- the names ranked reads send the variables under: rankingVars (the JS client),
-- ranking_vars (Go, .NET, Java)
-- is_object_text(text): does text hold a JSON object, or a JSON string holding one?
local function is_object_text(text)
  local tree = json.parse(text)
  if type(tree) == "string" then tree = json.parse(tree) end
  return tree ~= nil and json.kind(tree) == "object"
end

local function ranking_vars(v)
  return is_object_text(v) and v or nil
end

local RANKING_VARS_RULE = "must be a JSON object, or a string holding one"
local RANKING_VARS = { { name = "rankingVars", parse = ranking_vars, message = RANKING_VARS_RULE },
  { name = "ranking_vars", parse = ranking_vars, message = RANKING_VARS_RULE } }

-- check(args, errors): the read options that have a form to check, before anything is
-- read (stream-feeds-api.md section 6). Ranking is not emulated, so a valid rankingVars
-- changes nothing; one that is no JSON object is still the service's 400. An empty
-- value counts as absent.
function M.check(args, errors)
  rules.query(args, RANKING_VARS, errors)
end

local Enricher = {}
Enricher.__index = Enricher

-- new([ctx [, flags]]) -> an enricher for one request; ctx gives the reaction flags
-- (flags, when given, instead of the request's)
function M.new(ctx, flags)
  return setmetatable({ users = {}, activities = {}, reactions = reactionstore.renderer(),
    flags = flags or (ctx and reactionflags.parse(ctx)) or nil }, Enricher)
end

local MAX_DEPTH = 2 -- the activity read, and one more level inside SA: references

-- resolvers: prefix -> function(self, reference, rest, depth) -> node
local RESOLVERS = {
  SU = function(self, ref, id)
    local cached = self.users[id]
    if cached == nil then
      local rec = userstore.get(id)
      cached = rec and json.parse(userstore.user_json(id, rec)) or false
      self.users[id] = cached
    end
    return cached or not_found(ref, "user", id)
  end,
  SA = function(self, ref, id, depth)
    local a = feedstore.get(id)
    if not a then return not_found(ref, "activity", id) end
    local text = feedstore.activity_json(a.head, a.body, "null")
    local tree = depth < MAX_DEPTH and self:tree(text, depth + 1) or json.parse(text)
    -- a nested activity carries the reaction keys a top-level one would, for the same
    -- reader (a reaction's target_feeds activity shows the reactions of its object)
    if self.flags then tree = json.parse(self:decorate(json.encode(tree), tree.values.id)) end
    return tree
  end,
  SR = function(self, ref, id)
    local row = reactionstore.get(id)
    if not row then return not_found(ref, "reaction", id) end
    return json.parse(self.reactions:reaction(row))
  end,
  SO = function(self, ref, rest)
    local collection, id = rest:match("^([^:]+):(.+)$")
    if not collection then return nil end
    self.objects = self.objects or {}
    local cached = self.objects[rest]
    if cached == nil then
      local text = collectionstore.entry(collection, id)
      cached = text and json.parse(text) or false
      self.objects[rest] = cached
    end
    return cached or not_found(ref, "object", id, collection)
  end,
}
M.RESOLVERS = RESOLVERS

-- resolve(value, depth) -> replacement node | nil (not a reference)
function Enricher:resolve(value, depth)
  local prefix, rest = value:match("^(S[UARO]):(.+)$")
  if not prefix then return nil end
  return RESOLVERS[prefix](self, value, rest, depth)
end

function Enricher:tree(text, depth)
  local tree = json.parse(text)
  for _, key in ipairs(tree.keys) do
    local v = tree.values[key]
    if key ~= "origin" and type(v) == "string" then
      local r = self:resolve(v, depth)
      if r ~= nil then tree.values[key] = r end
    end
  end
  return tree
end

-- decorate(text, activity_id) -> the activity text with the requested reaction keys
function Enricher:decorate(text, activity_id)
  if not self.flags then return text end
  return reactionflags.decorate(text, activity_id, self.flags, self.reactions)
end

-- activity(text) -> enriched activity as JSON text, with the requested reaction keys
function Enricher:activity(text)
  local tree = self:tree(text, 1)
  return self:decorate(json.encode(tree), tree.values.id)
end

return M
