-- stream_local.feeds: the handlers of the feed endpoints (stream-feeds-api.md sections
-- 3-5): activities, feed reads (plain and enriched), removal, activities by id, follows,
-- followers/following and follow stats.
--
-- What it does: checks the feed group (400 code 6 for one that is not configured) and
-- ids, validates bodies and queries (400 code 4 naming the field, nothing written),
-- applies the user-token policies of section 2 (403 code 17), and hands the work to
-- stream_local.feedstore; enriched reads go through stream_local.enrich. Each handler
-- gets ctx = { method, args, principal, params, path, query } from stream_local.app.
--
-- Reads of aggregated and notification feeds go to stream_local.groups once the path,
-- limit, offset and the token's right to read are checked; such feeds take activities
-- like flat ones (added, sent by `to`, copied by following) but cannot be followed.
--
-- What it deliberately does not do: no reactions (stream_local.reactions), no ranking,
-- no realtime notifications, no activity updates (stream_local.updates).

local json = require "stream_local.json"
local reply = require "stream_local.reply"
local request = require "stream_local.request"
local config = require "stream_local.config"
local ids = require "stream_local.ids"
local clock = require "stream_local.clock"
local userstore = require "stream_local.userstore"
local feedstore = require "stream_local.feedstore"
local enrich = require "stream_local.enrich"
local groups = require "stream_local.groups"
local activity = require "stream_local.activity"
local auth = require "stream_local.auth"
local guards = require "stream_local.guards"
local rules = require "stream_local.rules"

-- luacheck: globals ngx
local ngx = ngx
local type, ipairs, tonumber = type, ipairs, tonumber
local concat, format, floor = table.concat, string.format, math.floor

local M = {}

-- on an add every reserved field is refused, id and origin included
local IS_RESERVED = guards.RESERVED
-- keys the stored text spells out itself (section 3's fields) or never keeps (reserved)
local SKIP_CUSTOM = { actor = true, verb = true, object = true, target = true, time = true, foreign_id = true,
  to = true }
for k in pairs(IS_RESERVED) do SKIP_CUSTOM[k] = true end

-- feeds per add_to_many (stream-feeds-api.md section 4)
local MAX_ADD_TO_MANY = 100

-- errors ----------------------------------------------------------------------

local invalid = reply.invalid

local not_configured = guards.not_configured

local function forbidden(detail)
  return reply.error(403, detail)
end

-- names -----------------------------------------------------------------------

local feed_parts = config.feed_parts

-- followable(feed_id) -> nil | why not: only flat feeds can be followed
local function followable(feed_id)
  local kind = config.feed_groups[feed_id:match("^[^:]*")]
  if kind == "flat" then return nil end
  return "cannot follow " .. feed_id .. ": it is " .. (kind == "aggregated" and "an aggregated" or "a notification")
    .. " feed, and only flat feeds can be followed"
end

-- policies for user tokens (section 2) ------------------------------------------

local function owns_feeds_of(principal, uid)
  return principal.server or principal.user_id == uid
end

local function may_read(principal, slug, uid)
  return principal.server or slug == "user" or principal.user_id == uid
end

-- query values ----------------------------------------------------------------

-- int_arg(args, name, default, lo, hi, errors)
-- the query parameters of paged reads and follow_many, as rules (stream_local.rules)
local READ_PAGE = { { name = "limit", default = config.default_limit, min = 1, max = config.max_limit },
  rules.PAGE_OFFSET }
M.READ_PAGE = READ_PAGE
local FOLLOW_PAGE = { { name = "limit", default = config.default_follow_limit, min = 0,
  max = config.max_follow_limit }, rules.PAGE_OFFSET }
local COPY_LIMIT = { { name = "activity_copy_limit", default = config.default_copy_limit, min = 0,
  max = config.max_copy_limit } }

-- the cursors of a flat feed read: an activity id, kept as its lower-case form and its
-- sort key; op is the bound's comparison
local function activity_cursor(v)
  local sk = ids.sort_key(v)
  return sk and { id = v:lower(), sk = sk } or nil
end
local FLAT_CURSORS = {}
for i, c in ipairs({ { "id_lt", "<" }, { "id_lte", "<=" }, { "id_gt", ">" }, { "id_gte", ">=" } }) do
  FLAT_CURSORS[i] = { name = c[1], op = c[2], parse = activity_cursor, message = "must be an activity id (a UUID)" }
end

local list_arg = request.list

-- activities ------------------------------------------------------------------

-- text_or_number(node, field, bad) -> the value: a number is stored as its
-- decimal string (the Python and Ruby suites send "actor": 1 and "object": 1)
local function text_or_number(node, field, bad)
  local v = node:get(field)
  if json.kind(v) == "number" then return v.text end
  if v == nil or v == json.null then
    bad(field, "this field is required")
  elseif type(v) ~= "string" then
    bad(field, "must be a string (or a number, stored as its decimal string)")
  elseif v == "" then
    bad(field, "must not be empty")
  else
    return v
  end
  return nil
end

local function optional_string(node, field, bad)
  local v = node:get(field)
  if v == nil or v == json.null then return nil end
  if type(v) ~= "string" then
    bad(field, "must be a string")
    return nil
  end
  return v
end

-- targets(to_node, feed_id, bad, slug_errors) -> sent, to: the feed ids of the `to`
-- entries as sent (a "user:bob <token>" entry is its feed id), and the ones to deliver
-- to (without the feed itself and repeats); nil, {} when there is no `to`
local function targets(to_node, feed_id, bad, slug_errors)
  local to = {}
  if to_node == nil or to_node == json.null then return nil, to end
  if json.kind(to_node) ~= "array" then
    bad("to", "must be a list of feed ids")
    return nil, to
  end
  if to_node.n > config.max_to then
    bad("to", format("at most %d targets", config.max_to))
    return nil, to
  end
  local sent, seen = {}, { [feed_id] = true }
  for i = 1, to_node.n do
    local f = activity.target_feed(to_node[i])
    local slug, id_or_msg, unconfigured = feed_parts(f)
    if unconfigured then
      slug_errors[#slug_errors + 1] = unconfigured
    elseif not slug then
      bad("to", id_or_msg)
    else
      sent[#sent + 1] = f
      if not seen[f] then
        seen[f] = true
        to[#to + 1] = f
      end
    end
  end
  return sent, to
end

local function check_reserved(node, bad)
  for _, k in ipairs(node.keys) do
    if IS_RESERVED[k] and node.values[k] ~= json.null then
      bad(k, guards.reserved_message(k))
    end
  end
end

local function activity_time(node, bad)
  local time_node = node:get("time")
  if time_node == nil or time_node == json.null then return clock.realtime_us() end
  local us = ids.parse_time(time_node)
  if not us then
    bad("time", ids.TIME_RULE)
  end
  return us
end

-- fields(node, feed_id, bad, slug_errors) -> the checked fields of an activity
local function fields(node, feed_id, bad, slug_errors)
  check_reserved(node, bad)
  local f = { actor = text_or_number(node, "actor", bad), verb = optional_string(node, "verb", bad),
    object = text_or_number(node, "object", bad), target = optional_string(node, "target", bad) or "",
    foreign_id = optional_string(node, "foreign_id", bad), time_us = activity_time(node, bad) }
  if f.verb == nil and (node:get("verb") == nil or node:get("verb") == json.null) then
    bad("verb", "this field is required")
  elseif f.verb == "" then
    bad("verb", "must not be empty")
  elseif f.verb and #f.verb > 255 then
    bad("verb", "must be at most 255 bytes")
  end
  if f.foreign_id == "" then f.foreign_id = nil end
  f.sent_to, f.to = targets(node:get("to"), feed_id, bad, slug_errors)
  return f
end

-- stored_text(node, f) -> the stored body without its id: the key order of section 3
local function stored_text(node, f)
  local core = activity.core_text({ foreign_id = f.foreign_id, time = ids.format_time(f.time_us), actor = f.actor,
    verb = f.verb, target = f.target, object = f.object })
  return core, activity.tail_text(f.sent_to, node, SKIP_CUSTOM)
end

-- prepare(node, feed_id, prefix, errors, slug_errors) -> activity ready for feedstore.add
-- | nil; validation messages go to errors, groups that are not configured to slug_errors
local function prepare(node, feed_id, prefix, errors, slug_errors)
  local errors_before = #errors
  local function bad(field, message) errors[#errors + 1] = { prefix .. field, message } end
  if json.kind(node) ~= "object" then
    bad("activity", "must be a JSON object")
    return nil
  end
  local f = fields(node, feed_id, bad, slug_errors)
  if #errors > errors_before then return nil end
  local core_text, tail_text = stored_text(node, f)
  -- without a foreign id, the id and the digest come from the content (section 3)
  local canonical = not f.foreign_id and activity.canonical("{" .. core_text:sub(2) .. tail_text .. "}")
  local id, sk = ids.activity_id(f.time_us, f.foreign_id or canonical)
  local head_text = '{"id":"' .. id .. '"' .. core_text
  local body = head_text .. tail_text .. "}"
  if #body > config.max_activity_bytes then
    bad("activity", format("the activity is %d bytes, the limit is %d bytes", #body, config.max_activity_bytes))
    return nil
  end
  return {
    id = id, sk = sk, foreign_id = f.foreign_id, time_us = f.time_us, head = #head_text, body = body,
    digest = canonical and ngx.md5(canonical) or nil, to = f.to, actor = f.actor,
  }
end

-- may_send(principal, list) -> true | nil, why: the `to` rule of section 2 for user
-- tokens (their own feeds, and others' notification feeds); adds and target updates
function M.may_send(principal, list)
  if principal.server then return true end
  for _, t in ipairs(list) do
    local slug, id = t:match("^([^:]*):(.*)$")
    if id ~= principal.user_id and not config.receives_from_others(slug) then
      return nil, "a user token may not send activities to " .. t
    end
  end
  return true
end

-- may_add(principal, uid, act) -> true | nil, why
local function may_add(principal, uid, act)
  if principal.server then return true end
  if principal.user_id ~= uid then
    return nil, "user " .. principal.user_id .. " may not add activities to the feeds of " .. uid
  end
  if act.actor ~= "SU:" .. principal.user_id then
    return nil, "a user token may only add activities whose actor is SU:" .. principal.user_id
  end
  return M.may_send(principal, act.to)
end

local function stored_json(a)
  return feedstore.activity_json(a.head, a.body, "null")
end

function M.add(ctx)
  local uid, feed_id = ctx.uid, ctx.feed_id
  local body, detail = request.json_object()
  if not body then return reply.error(400, detail) end
  local list_node = body:get("activities")
  local many = list_node ~= nil and json.kind(list_node) == "array"
  local errors, unconfigured = {}, {}
  local acts = {}
  if many then
    if list_node.n == 0 then
      errors[#errors + 1] = { "activities", "must not be empty" }
    elseif list_node.n > config.max_activities then
      errors[#errors + 1] = { "activities", format("at most %d activities per request", config.max_activities) }
    else
      for i = 1, list_node.n do
        acts[i] = prepare(list_node[i], feed_id, format("activities[%d].", i - 1), errors, unconfigured)
      end
    end
  else
    acts[1] = prepare(body, feed_id, "", errors, unconfigured)
  end
  if unconfigured[1] then return not_configured(unconfigured[1]) end
  if errors[1] then return invalid(errors) end
  for _, a in ipairs(acts) do
    local ok, why = may_add(ctx.principal, uid, a)
    if not ok then return forbidden(why) end
  end
  local stored = feedstore.add(feed_id, acts)
  if many then
    local out = {}
    for i, a in ipairs(stored) do out[i] = stored_json(a) end
    return reply.send(201, '{"activities":[' .. concat(out, ",") .. "]}")
  end
  return reply.send(201, stored_json(stored[1]))
end

-- the query of the next page: id_lt=<last>&limit=N, then the other parameters as sent
local NEXT_DROP = { api_key = true, id_lt = true, id_lte = true, limit = true, offset = true }
local function next_query(ctx, last_id, limit)
  return request.next_query(ctx.query, { "id_lt=" .. last_id, "limit=" .. limit }, NEXT_DROP)
end

-- flat_bounds(ctx, errors) -> the bounds of a flat feed's cursors, in their order
local function flat_bounds(ctx, errors)
  local cursors = rules.query(ctx.args, FLAT_CURSORS, errors)
  local bounds = {}
  for _, rule in ipairs(FLAT_CURSORS) do
    local c = cursors[rule.name]
    if c then
      -- an activity of the feed stands for its place; another id for the time in its
      -- time fields, whatever its version (the sort key carries that time's 100-ns part,
      -- so the floored µs loses nothing); a well-formed cursor is never refused
      bounds[#bounds + 1] = { rule.op, feedstore.place(ctx.feed_id, c.id) or ids.time_of(c.id), c.sk }
    end
  end
  return bounds
end

-- page(ctx, feed_id, bounds, limit, offset, enriched) -> the activity texts of one page
-- of a feed's rows, newest first (enriched with the request's flags when asked), and the
-- id of the page's last activity when another page follows. Plain and enriched reads
-- and the personalized feed (stream_local.personalization) all read through it.
function M.page(ctx, feed_id, bounds, limit, offset, enriched)
  local rows = feedstore.read(feed_id, bounds, limit + 1, offset)
  local enricher = enriched and enrich.new(ctx)
  local out = {}
  for i = 1, math.min(#rows, limit) do
    local r = rows[i]
    local text = feedstore.activity_json(r[2], r[3], r[4] and json.quote(r[4]) or "null")
    out[i] = enricher and enricher:activity(text) or text
  end
  return out, #rows > limit and rows[limit][1] or nil
end

local function read_forbidden(ctx)
  return forbidden("user " .. ctx.principal.user_id .. " may not read the feed " .. ctx.feed_id)
end

function M.read(ctx)
  local slug, uid, feed_id = ctx.slug, ctx.uid, ctx.feed_id
  local errors = {}
  local page = rules.query(ctx.args, READ_PAGE, errors)
  local limit, offset = page.limit, page.offset
  enrich.check(ctx.args, errors) -- rankingVars (stream_local.enrich)
  local kind = config.feed_groups[slug]
  if kind ~= "flat" then
    groups.check(ctx.args, errors)
    if errors[1] then return invalid(errors) end
    if not may_read(ctx.principal, slug, uid) then return read_forbidden(ctx) end
    return groups.read(ctx, { slug = slug, uid = uid, id = feed_id, kind = kind, limit = limit, offset = offset })
  end
  local bounds = flat_bounds(ctx, errors)
  if errors[1] then return invalid(errors) end
  if not may_read(ctx.principal, slug, uid) then return read_forbidden(ctx) end
  local out, last_id = M.page(ctx, feed_id, bounds, limit, offset, ctx.params.enrich)
  local next_url = ""
  if last_id then
    next_url = "/api/v1.0/" .. (ctx.params.enrich and "enrich/" or "") .. "feed/" .. slug .. "/" .. uid .. "/?"
      .. next_query(ctx, last_id, limit)
  end
  return reply.send(200, '{"results":[' .. concat(out, ",") .. '],"next":' .. json.quote(next_url) .. "}")
end

function M.remove(ctx)
  local uid, feed_id = ctx.uid, ctx.feed_id
  local target = ctx.params.activity_id
  if not owns_feeds_of(ctx.principal, uid) then
    return forbidden("user " .. ctx.principal.user_id .. " may not remove activities from the feed " .. feed_id)
  end
  if request.flag(ctx.args, "foreign_id") then
    feedstore.remove_foreign(feed_id, target)
  elseif ids.sort_key(target) then
    feedstore.remove(feed_id, target:lower())
  end
  return reply.send(200, '{"removed":' .. json.quote(target) .. "}")
end

-- activities by id -------------------------------------------------------------

-- scoped_reads_ok(principal, wanted) -> true, or false after answering 403 code 17: a
-- token scoped to one feed reads by id only activities that feed holds (added there, a
-- `to` target or a copy: what reading the feed would show it anyway); an unknown id is
-- in no feed (server choice, stream-feeds-api.md section 2)
local function scoped_reads_ok(principal, wanted)
  local scope = principal.feed_scope
  if not scope then return true end
  for _, w in ipairs(wanted) do
    local a = ids.sort_key(w.id) and feedstore.get(w.id)
    if not a or (w.foreign_id and a.foreign_id ~= w.foreign_id) or not feedstore.held_by(w.id, scope) then
      forbidden("the token's feed_id claim covers one feed; it holds no activity "
        .. (w.foreign_id and ("with foreign_id " .. json.quote(w.foreign_id) .. " and that time") or w.id))
      return false
    end
  end
  return true
end

function M.get_activities(ctx)
  local list = list_arg(ctx.args, "ids")
  local fids = list_arg(ctx.args, "foreign_ids")
  local times = list_arg(ctx.args, "timestamps")
  local wanted = {}
  if list then
    for i, id in ipairs(list) do wanted[i] = { id = id:lower() } end
  elseif fids then
    if not times or #times ~= #fids then
      return invalid({ { "timestamps", "give one timestamp per foreign id (foreign_ids=f1,f2&timestamps=t1,t2)" } })
    end
    for i, fid in ipairs(fids) do
      local us = ids.parse_time(times[i])
      if not us then
        return invalid({ { "timestamps", "invalid time " .. json.quote(times[i]) } })
      end
      wanted[i] = { id = (ids.activity_id(us, fid)), foreign_id = fid }
    end
  else
    return invalid({ { "ids", "give ids, or foreign_ids and timestamps" } })
  end
  if #wanted > config.max_activities then
    return invalid({ { list and "ids" or "foreign_ids", format("at most %d per request", config.max_activities) } })
  end
  if not scoped_reads_ok(ctx.principal, wanted) then return end
  local enricher = ctx.params.enrich and enrich.new(ctx)
  local out, seen = {}, {}
  for _, w in ipairs(wanted) do
    local a = not seen[w.id] and ids.sort_key(w.id) and feedstore.get(w.id)
    if a and (not w.foreign_id or a.foreign_id == w.foreign_id) then
      seen[w.id] = true
      local text = stored_json(a)
      out[#out + 1] = enricher and enricher:activity(text) or text
    end
  end
  return reply.send(200, '{"results":[' .. concat(out, ",") .. "]}")
end

-- follows ----------------------------------------------------------------------

local function follow_row(r)
  return '{"feed_id":' .. json.quote(r[1]) .. ',"target_id":' .. json.quote(r[2])
    .. ',"created_at":"' .. userstore.timestamp(r[3]) .. '","updated_at":"' .. userstore.timestamp(r[4]) .. '"}'
end

local function rows_json(rows)
  local out = {}
  for i, r in ipairs(rows) do out[i] = follow_row(r) end
  return '{"results":[' .. concat(out, ",") .. "]}"
end

local function own_or_403(ctx, uid, feed_id, what)
  if owns_feeds_of(ctx.principal, uid) then return true end
  forbidden("user " .. ctx.principal.user_id .. " may not " .. what .. " of the feed " .. feed_id)
  return false
end

function M.follow(ctx)
  local uid, feed_id = ctx.uid, ctx.feed_id
  local body, detail = request.json_object()
  if not body then return reply.error(400, detail) end
  local target = body:get("target")
  local tslug, msg, unconfigured = feed_parts(target)
  if unconfigured then return not_configured(unconfigured) end
  if not tslug then return invalid({ { "target", msg } }) end
  if target == feed_id then
    return invalid({ { "target", "a feed cannot follow itself" } })
  end
  local why = followable(target)
  if why then return invalid({ { "target", why } }) end
  local limit = config.default_copy_limit
  local v = body:get("activity_copy_limit")
  if v ~= nil and v ~= json.null then
    local n = json.kind(v) == "number" and tonumber(v.text)
    if not n or n ~= floor(n) or n < 0 or n > config.max_copy_limit then
      return invalid({ { "activity_copy_limit",
        "activity_copy_limit must be a non-negative number not greater than " .. config.max_copy_limit } })
    end
    limit = n
  end
  if not own_or_403(ctx, uid, feed_id, "change the follows") then return end
  feedstore.follow(feed_id, target, limit)
  return reply.send(201, "{}")
end

function M.unfollow(ctx)
  local uid, feed_id = ctx.uid, ctx.feed_id
  local target = ctx.params.target
  local tslug, msg, unconfigured = feed_parts(target)
  if unconfigured then return not_configured(unconfigured) end
  if not tslug then return invalid({ { "target", msg } }) end
  if not own_or_403(ctx, uid, feed_id, "change the follows") then return end
  feedstore.unfollow(feed_id, target, request.flag(ctx.args, "keep_history"))
  return reply.send(200, "{}")
end

local function follow_page(ctx)
  local errors = {}
  local page = rules.query(ctx.args, FOLLOW_PAGE, errors)
  if errors[1] then
    invalid(errors)
    return nil
  end
  return page.limit, page.offset
end

function M.followers(ctx)
  local uid, feed_id = ctx.uid, ctx.feed_id
  local limit, offset = follow_page(ctx)
  if not limit then return end
  if not own_or_403(ctx, uid, feed_id, "list the followers") then return end
  return reply.send(200, rows_json(feedstore.followers(feed_id, limit, offset)))
end

function M.following(ctx)
  local uid, feed_id = ctx.uid, ctx.feed_id
  local limit, offset = follow_page(ctx)
  if not limit then return end
  local filter = list_arg(ctx.args, "filter")
  if filter and #filter > config.max_follow_limit then
    return invalid({ { "filter", format("at most %d feed ids", config.max_follow_limit) } })
  end
  if not own_or_403(ctx, uid, feed_id, "list the follows") then return end
  return reply.send(200, rows_json(feedstore.following(feed_id, limit, offset, filter)))
end

-- batch endpoints (server-side tokens only) ------------------------------------

-- feed_list(node, field, max, errors, unconfigured) -> list of valid feed ids
local function feed_list(node, field, max, errors, unconfigured)
  if json.kind(node) ~= "array" or node.n == 0 then
    errors[#errors + 1] = { field, "must be a non-empty list of feed ids" }
    return nil
  end
  if node.n > max then
    errors[#errors + 1] = { field, format("at most %d feed ids", max) }
    return nil
  end
  local list, seen = {}, {}
  for i = 1, node.n do
    local slug, msg, bad_slug = feed_parts(node[i])
    if bad_slug then
      unconfigured[#unconfigured + 1] = bad_slug
    elseif not slug then
      errors[#errors + 1] = { field, msg }
    elseif not seen[node[i]] then
      seen[node[i]] = true
      list[#list + 1] = node[i]
    end
  end
  return list
end

-- scope_403(ctx, feeds, what) -> true when a feed-scoped token covers every feed, else
-- answers 403 code 17 and returns false: such a token may not reach other feeds through
-- a batch call (stream-feeds-api.md section 2)
local function scope_403(ctx, feeds, what)
  for _, f in ipairs(feeds) do
    if not auth.covers_feed(ctx.principal, f) then
      forbidden("the token's feed_id claim covers one feed; it does not cover " .. f .. " (" .. what .. ")")
      return false
    end
  end
  return true
end

-- POST feed/add_to_many/ {"activity":{...},"feeds":["user:a",...]}
function M.add_to_many(ctx)
  local body, detail = request.json_object()
  if not body then return reply.error(400, detail) end
  local errors, unconfigured = {}, {}
  local feeds_list = feed_list(body:get("feeds"), "feeds", MAX_ADD_TO_MANY, errors, unconfigured)
  local act
  if feeds_list and feeds_list[1] then
    act = prepare(body:get("activity"), feeds_list[1], "activity.", errors, unconfigured)
  end
  if unconfigured[1] then return not_configured(unconfigured[1]) end
  if errors[1] then return invalid(errors) end
  if not scope_403(ctx, feeds_list, "add_to_many") then return end
  feedstore.add_to_many(feeds_list, act)
  return reply.send(201, "{}")
end

-- the detail of every malformed unfollow_many payload, as the Ruby suite compares it
local BAD_UNFOLLOW = "invalid request payload"

-- pair_of(e, field, following, errors, unconfigured) -> { source, target [, keep_history] }
local function pair_of(e, field, following, errors, unconfigured)
  if json.kind(e) ~= "object" then
    errors[#errors + 1] = { field, "must be an object with source and target" }
    return nil
  end
  local pair = {}
  for k, name in ipairs({ "source", "target" }) do
    local slug, why, bad_slug = feed_parts(e:get(name))
    if bad_slug then
      unconfigured[#unconfigured + 1] = bad_slug
    elseif not slug then
      errors[#errors + 1] = { field .. "." .. name, why }
    else
      pair[k] = e:get(name)
    end
  end
  if not following then
    local kh = e:get("keep_history")
    if kh ~= nil and kh ~= json.null and type(kh) ~= "boolean" then
      errors[#errors + 1] = { field .. ".keep_history", "must be true or false" }
    end
    pair[3] = kh == true
  elseif pair[1] and pair[1] == pair[2] then
    errors[#errors + 1] = { field .. ".target", "a feed cannot follow itself" }
  elseif pair[2] and followable(pair[2]) then
    errors[#errors + 1] = { field .. ".target", followable(pair[2]) }
  end
  return pair
end

-- pairs_of(following) -> { {source, target [, keep_history]}, ... } | nil after answering
-- (400 code 4; for unfollow_many with the detail BAD_UNFOLLOW)
local function pairs_of(following)
  local tree, detail = request.json_body()
  if tree == nil then
    reply.error(400, detail)
    return nil
  end
  local errors, unconfigured, list = {}, {}, {}
  if json.kind(tree) ~= "array" or tree.n == 0 then
    errors[1] = { "follows", "the body must be a non-empty JSON list of {\"source\",\"target\"} objects" }
  elseif tree.n > config.max_follow_many then
    errors[1] = { "follows", format("at most %d follows per request", config.max_follow_many) }
  else
    for i = 1, tree.n do
      list[#list + 1] = pair_of(tree[i], format("follows[%d]", i - 1), following, errors, unconfigured)
    end
  end
  if unconfigured[1] then
    not_configured(unconfigured[1])
  elseif errors[1] and following then
    invalid(errors)
  elseif errors[1] then
    reply.error(400, BAD_UNFOLLOW, errors)
  else
    return list
  end
  return nil
end

local function sources(list)
  local out = {}
  for i, p in ipairs(list) do out[i] = p[1] end
  return out
end

-- the detail of a copy limit out of range, as the Ruby suite compares it
local BAD_COPY_LIMIT = "activity_copy_limit must be a non-negative number not greater than " .. config.max_copy_limit

-- POST follow_many/?activity_copy_limit=N [{"source":"timeline:a","target":"user:b"}, ...]
function M.follow_many(ctx)
  local errors = {}
  local limit = rules.query(ctx.args, COPY_LIMIT, errors).activity_copy_limit
  if errors[1] then
    return reply.error(400, BAD_COPY_LIMIT, { { "activity_copy_limit", BAD_COPY_LIMIT } })
  end
  local list = pairs_of(true)
  if not list or not scope_403(ctx, sources(list), "follow_many") then return end
  feedstore.follow_many(list, limit)
  return reply.send(201, "{}")
end

-- POST unfollow_many/ [{"source":"timeline:a","target":"user:b","keep_history":true}, ...]
function M.unfollow_many(ctx)
  local list = pairs_of(false)
  if not list or not scope_403(ctx, sources(list), "unfollow_many") then return end
  feedstore.unfollow_many(list)
  return reply.send(201, "{}")
end

function M.follow_stats(ctx)
  local parts, errors = {}, {}
  for _, side in ipairs({ "followers", "following" }) do
    local feed = request.arg(ctx.args, side)
    if feed and feed ~= "" then
      local slug, msg, unconfigured = feed_parts(feed)
      if unconfigured then return not_configured(unconfigured) end
      if not slug then
        errors[#errors + 1] = { side, msg }
      else
        local slugs = list_arg(ctx.args, side .. "_slugs")
        local n = feedstore.follow_count(side, feed, slugs)
        parts[#parts + 1] = format('"%s":{"count":%d,"feed":%s}', side, n, json.quote(feed))
      end
    end
  end
  if errors[1] then return invalid(errors) end
  if not parts[1] then
    return invalid({ { "followers", "give followers=<feed id>, following=<feed id> or both" } })
  end
  return reply.send(200, '{"results":{' .. concat(parts, ",") .. "}}")
end

-- routes (assembled by stream_local.app); follows before activity ids -------------

local FEED = { guards.feed_path }
local BATCH = { guards.server_only("batch feed endpoints need a server token") }
local path_feed, any_feed, named_feeds = guards.path_feed, guards.any_feed, guards.named_feeds

M.ROUTES = {
  { pattern = [[^/api/v1\.0/feed/(?<slug>[^/]+)/(?<user>[^/]+)/(?:follows|following)/$]],
    resource = "follower", feed_id = path_feed, guards = FEED, methods = { GET = M.following, POST = M.follow } },
  { pattern = [[^/api/v1\.0/feed/(?<slug>[^/]+)/(?<user>[^/]+)/(?:follows|following)/(?<target>[^/]+)/$]],
    resource = "follower", feed_id = path_feed, guards = FEED, methods = { DELETE = M.unfollow } },
  { pattern = [[^/api/v1\.0/feed/(?<slug>[^/]+)/(?<user>[^/]+)/followers/$]],
    resource = "follower", feed_id = path_feed, guards = FEED, methods = { GET = M.followers } },
  { pattern = [[^/api/v1\.0/feed/(?<slug>[^/]+)/(?<user>[^/]+)/$]],
    resource = "feed", feed_id = path_feed, guards = FEED, methods = { GET = M.read, POST = M.add } },
  { pattern = [[^/api/v1\.0/(?<enrich>enrich/)feed/(?<slug>[^/]+)/(?<user>[^/]+)/$]],
    resource = "feed", feed_id = path_feed, guards = FEED, methods = { GET = M.read } },
  { pattern = [[^/api/v1\.0/feed/(?<slug>[^/]+)/(?<user>[^/]+)/(?<activity_id>[^/]+)/$]],
    resource = "feed", feed_id = path_feed, guards = FEED, methods = { DELETE = M.remove } },
  -- POST here is stream_local.updates' full update
  { pattern = [[^/api/v1\.0/activities/$]],
    resource = "activities", feed_id = named_feeds, methods = { GET = M.get_activities } },
  { pattern = [[^/api/v1\.0/(?<enrich>enrich/)activities/$]],
    resource = "activities", feed_id = named_feeds, methods = { GET = M.get_activities } },
  { pattern = [[^/api/v1\.0/feed/add_to_many/$]],
    resource = "feed", feed_id = named_feeds, guards = BATCH, methods = { POST = M.add_to_many } },
  { pattern = [[^/api/v1\.0/follow_many/$]],
    resource = "follower", feed_id = named_feeds, guards = BATCH, methods = { POST = M.follow_many } },
  { pattern = [[^/api/v1\.0/unfollow_many/$]],
    resource = "follower", feed_id = named_feeds, guards = BATCH, methods = { POST = M.unfollow_many } },
  -- also without the final slash: the Ruby client calls it so and follows no redirect
  { pattern = [[^/api/v1\.0/stats/follow/?$]],
    resource = { "follower", "feed" }, feed_id = any_feed, methods = { GET = M.follow_stats } },
}

return M
