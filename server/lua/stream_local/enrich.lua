-- stream_local.enrich: replaces references in activities at read time
-- (stream-feeds-api.md section 5).
--
-- What it does: activity(text) takes an activity as JSON text and returns it with every
-- top-level string value that is a reference replaced, whatever its key (`origin` is a
-- feed id and is skipped): `SU:<id>` by the user as GET user/<id>/ shows it (minus
-- duration), `SA:<id>` by that activity, itself enriched one level more (then never
-- deeper, so cycles end), `SO:<collection>:<id>` by the collection entry (minus
-- duration). A reference that names nothing becomes the ReferenceNotFound object; `SR:`
-- always does until reactions are stored (their resolver goes into RESOLVERS). Values
-- nested in objects or arrays stay as they are. Lookups are cached for one request (new() per request).
--
-- What it deliberately does not do: no reaction flags (own/latest/counts), no partial
-- enrichment options, no caching across requests (a user updated later shows its new data).

local json = require "stream_local.json"
local store = require "stream_local.store"
local feedstore = require "stream_local.feedstore"
local collections = require "stream_local.collections"

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

local Enricher = {}
Enricher.__index = Enricher

function M.new()
  return setmetatable({ users = {}, activities = {} }, Enricher)
end

local MAX_DEPTH = 2 -- the activity read, and one more level inside SA: references

-- resolvers: prefix -> function(self, reference, rest, depth) -> node
local RESOLVERS = {
  SU = function(self, ref, id)
    local cached = self.users[id]
    if cached == nil then
      local rec = store.get(id)
      cached = rec and json.parse(store.user_json(id, rec)) or false
      self.users[id] = cached
    end
    return cached or not_found(ref, "user", id)
  end,
  SA = function(self, ref, id, depth)
    local a = feedstore.get(id)
    if not a then return not_found(ref, "activity", id) end
    local text = feedstore.activity_json(a.head, a.body, "null")
    if depth < MAX_DEPTH then return self:tree(text, depth + 1) end
    return json.parse(text)
  end,
  SR = function(_, ref, id)
    return not_found(ref, "reaction", id)
  end,
  SO = function(self, ref, rest)
    local collection, id = rest:match("^([^:]+):(.+)$")
    if not collection then return nil end
    self.objects = self.objects or {}
    local cached = self.objects[rest]
    if cached == nil then
      local text = collections.entry(collection, id)
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

-- activity(text) -> enriched activity as JSON text
function Enricher:activity(text)
  return json.encode(self:tree(text, 1))
end

return M
