-- stream_local.reactionflags: the reaction keys that enriched reads add to activities
-- (stream-feeds-api.md sections 5 and 6).
--
-- What it does:
--   * parse(ctx) reads the flags of an enrich/ request: withOwnReactions,
--     withRecentReactions, withReactionCounts (true, True or 1), recentReactionsLimit,
--     reactionKindsFilter (comma list), withOwnChildren, and whose reactions are "own":
--     `user_id` or `withUserId` in the query, else a user token's user, else nobody (a
--     server-side read without a user: "own" then lists everyone's reactions, as the
--     service does). Returns nil when no flag is on.
--   * decorate(text, activity_id, flags, renderer) appends to an activity's JSON text, in
--     this order, own_reactions {kind: [...]}, latest_reactions {kind: [...]} and
--     latest_reactions_extra {kind: {"next": url or ""}}, reaction_counts {kind: n}.
--     Lists are the live top-level reactions of the activity, newest first, at most
--     recentReactionsLimit per kind; counts keep a kind at 0 once it had a reaction.
--
-- own_children (withOwnChildren) is rendered by stream_local.reactionstore; activities
-- nested through SA: references get the same keys through stream_local.enrich.
--
-- What it deliberately does not do: no 400 for malformed flag values (a limit that is
-- not a whole number is the default 5, one above 25 is 25; an empty kinds filter is no
-- filter).

local request = require "stream_local.request"
local rules = require "stream_local.rules"
local json = require "stream_local.json"
local reactionstore = require "stream_local.reactionstore"
local db = require "stream_local.db"

-- luacheck: globals ngx
local ngx = ngx
local ipairs, type, concat = ipairs, type, table.concat
local quote = json.quote

local M = {}

M.DEFAULT_LIMIT, M.MAX_LIMIT = 5, 25

-- recentReactionsLimit only tunes a read: a value out of range reads as the default
-- (or, above the most, as the most), never an error
local RECENT_LIMIT = { { name = "recentReactionsLimit", default = M.DEFAULT_LIMIT, min = 1, max = M.MAX_LIMIT,
  lenient = true } }

local function kinds_filter(args)
  local v = args.reactionKindsFilter
  if type(v) == "table" then v = concat(v, ",") end
  if type(v) ~= "string" or v == "" then return nil end
  local set, any = {}, false
  for k in v:gmatch("[^,]+") do
    set[k] = true
    any = true
  end
  return any and set or nil
end

-- parse(ctx) -> flags | nil
function M.parse(ctx)
  local args = ctx.args
  local flags = {
    own = request.flag(args, "withOwnReactions"),
    recent = request.flag(args, "withRecentReactions"),
    counts = request.flag(args, "withReactionCounts"),
  }
  if not (flags.own or flags.recent or flags.counts) then return nil end
  flags.limit = rules.query(args, RECENT_LIMIT, {}).recentReactionsLimit
  flags.kinds = kinds_filter(args)
  flags.own_children = request.flag(args, "withOwnChildren")
  local uid = request.arg(args, "user_id") or request.arg(args, "withUserId")
  if uid == "" then uid = nil end
  flags.user = uid or ctx.principal.user_id
  local host = ngx.var.http_host or (ngx.var.server_addr .. ":" .. ngx.var.server_port)
  flags.base = ngx.var.scheme .. "://" .. host .. "/api/v1.0/"
  return flags
end

-- all flags on, as with_activity_data of reaction filters asks for
function M.all(ctx)
  local f = M.parse({ args = { withOwnReactions = "true" }, principal = ctx.principal })
  f.recent, f.counts = true, true
  return f
end

local function shown_kinds(activity_id, flags)
  local out = {}
  for _, kind in ipairs(reactionstore.kinds("a:" .. activity_id)) do
    if not flags.kinds or flags.kinds[kind] then out[#out + 1] = kind end
  end
  return out
end

-- per kind, the newest `limit` (+1 to know about more) live top-level reactions
local function lists(activity_id, kinds, flags, user)
  local groups, more = {}, {}
  for _, kind in ipairs(kinds) do
    local rows = reactionstore.list({ column = "activity_id", value = activity_id, top_level = true, kind = kind,
      user_id = user, limit = flags.limit + 1 })
    if rows[1] then
      if rows[flags.limit + 1] then
        more[kind] = rows[flags.limit].id
        rows[flags.limit + 1] = nil
      end
      groups[#groups + 1] = { kind, rows }
    end
  end
  return groups, more
end

local function groups_json(groups, renderer, flags)
  local parts = {}
  local oc = flags.own_children and { user = flags.user } or nil
  for i, g in ipairs(groups) do
    local items = {}
    for j, r in ipairs(g[2]) do items[j] = renderer:reaction(r, oc) end
    parts[i] = quote(g[1]) .. ":[" .. concat(items, ",") .. "]"
  end
  return "{" .. concat(parts, ",") .. "}"
end

local function reaction_keys(activity_id, flags, renderer)
  local kinds = shown_kinds(activity_id, flags)
  local add = {}
  if flags.own then
    add[#add + 1] = ',"own_reactions":' .. groups_json((lists(activity_id, kinds, flags, flags.user)), renderer, flags)
  end
  if flags.recent then
    local groups, more = lists(activity_id, kinds, flags, nil)
    add[#add + 1] = ',"latest_reactions":' .. groups_json(groups, renderer, flags)
    local extra = {}
    for i, g in ipairs(groups) do
      local url = ""
      if more[g[1]] then
        url = flags.base .. "reaction/activity_id/" .. activity_id .. "/" .. g[1] .. "/?id_lt=" .. more[g[1]]
          .. "&limit=" .. flags.limit .. "&withOwnChildren=" .. (flags.own_children and "true" or "false")
      end
      extra[i] = quote(g[1]) .. ':{"next":' .. quote(url) .. "}"
    end
    add[#add + 1] = ',"latest_reactions_extra":{' .. concat(extra, ",") .. "}"
  end
  if flags.counts then
    local list = {}
    for _, c in ipairs(reactionstore.counts("a:" .. activity_id)) do
      if not flags.kinds or flags.kinds[c[1]] then list[#list + 1] = c end
    end
    add[#add + 1] = ',"reaction_counts":' .. reactionstore.counts_json(list)
  end
  return concat(add)
end

-- decorate(text, activity_id, flags, renderer) -> the activity text with the reaction
-- keys, all read from one snapshot so lists and counts agree
function M.decorate(text, activity_id, flags, renderer)
  if type(activity_id) ~= "string" then return text end
  return text:sub(1, -2) .. db.read(reaction_keys, activity_id, flags, renderer) .. "}"
end

return M
