-- spec/openresty/areas_cases.lua: runs inside the nginx that areas_spec.lua starts.
--
--   location /area  run()  ?case=NAME&base=URL&key=K&secret=S: one scenario of an API
--                          area (feeds, reactions, collections, updates, notifications,
--                          parallel) against the local server, through the ngx transport,
--                          answered as a JSON summary that the spec checks
--
-- Nothing here asserts: the spec does, on the summaries. A failed call is recorded as
-- its error text, so the summary says what went wrong.
local ngx = ngx -- luacheck: ignore 113 (the nginx API, a global inside nginx)
local stream = require "stream"

local M = {}

local function uid(prefix)
  return string.format("%s-%d-%d", prefix, ngx.now() * 1000, math.random(1, 1e9))
end

-- res, or raises the error text (caught by run()).
local function ok(res, err)
  if res == nil then error(tostring(err), 0) end
  return res
end

local cases = {}

function cases.feeds(c)
  local alice, bob = c:user(uid("alice")), c:user(uid("bob"))
  ok(alice:create({ name = "Alice" }))
  ok(bob:create({ name = "Bob" }))
  ok(bob:feed("timeline"):follow(alice:feed("user")))
  for i = 1, 5 do
    ok(alice:feed("user"):add_activity({ actor = alice, verb = "post", object = "p:" .. i }))
  end
  ok(alice:update({ name = "Alice 2" }))
  local names, pages = {}, 0
  for page, err in bob:feed("timeline"):pages({ limit = 2, enrich = true }) do
    ok(page, err)
    pages = pages + 1
    for _, a in ipairs(page.results) do names[#names + 1] = a.actor.data.name end
  end
  ok(alice:delete())
  local after = ok(bob:feed("timeline"):get({ enrich = true, limit = 1 }))
  return { transport = c._transport.name, pages = pages, names = names,
    missing = stream.is_missing(after.results[1].actor),
    followers = ok(alice:feed("user"):followers()).results[1].feed_id == "timeline:" .. bob.id }
end

function cases.reactions(c)
  local u = c:user(uid("r"))
  ok(u:create({ name = "Rea" }))
  local act = ok(u:feed("user"):add_activity({ actor = u, verb = "post", object = "x" }))
  local ids = {}
  for i = 1, 4 do ids[i] = ok(c.reactions:add("like", act, { n = i }, { user_id = u })).id end
  local child = ok(c.reactions:add_child("reply", ids[1], { text = "hi" }, { user_id = u }))
  local seen = {}
  for page, err in c.reactions:pages({ activity_id = act.id, limit = 3 }) do
    ok(page, err)
    for _, r in ipairs(page.results) do seen[#seen + 1] = r.id end
  end
  local read = ok(u:feed("user"):get({ reactions = { counts = true, recent = true } })).results[1]
  ok(c.reactions:delete(ids[2]))
  local after_delete = #ok(c.reactions:filter({ activity_id = act.id })).results
  local id = uid("mine")
  local mine = ok(c.reactions:add("like", act, nil, { user_id = u, id = id }))
  return { seen = #seen, newest_first = seen[1] == ids[4], child_parent = child.parent == ids[1],
    likes = read.reaction_counts.like, user_name = read.latest_reactions.like[1].user.data.name,
    after_delete = after_delete, own_id = mine.id == id }
end

function cases.collections(c)
  local id = uid("lvl")
  ok(c.collections:add("level", { name = "Lava" }, { id = id }))
  local feed = c:feed("user", uid("p"))
  ok(feed:add_activity({ actor = "SU:p", verb = "cleared", object = c.collections:entry("level", id) }))
  local name = ok(feed:get({ enrich = true })).results[1].object.data.name
  ok(c.collections:upsert("level", { { id = id, name = "Lava 2" } }))
  local sel = ok(c.collections:select("level", { id }))
  ok(c.collections:delete("level", id))
  local gone = ok(feed:get({ enrich = true })).results[1].object
  return { name = name, selected = sel.response.data[1].data.name, missing = stream.is_missing(gone) }
end

function cases.updates(c)
  local src, tl = c:feed("user", uid("s")), c:feed("timeline", uid("t"))
  ok(tl:follow(src))
  local a = ok(src:add_activity({ actor = "SU:s", verb = "score", object = "run", points = 1,
    foreign_id = "run:1", time = 1795860000 }))
  local u = ok(c:activity_partial_update({ id = a.id, set = { points = 2 } }))
  ok(c:activities_partial_update({ { foreign_id = "run:1", time = 1795860000, set = { extra = "x" } } }))
  local copy = ok(tl:get()).results[1]
  return { answered = u.points, seen_by_follower = copy.points, extra = copy.extra }
end

function cases.notifications(c)
  local owner, fan = c:user(uid("o")), c:user(uid("f"))
  ok(owner:create({ name = "Owner" }))
  ok(fan:create({ name = "Fan" }))
  local post = ok(owner:feed("user"):add_activity({ actor = owner, verb = "post", object = "x" }))
  local bell = owner:feed("notification")
  ok(c.reactions:add("like", post, nil, { user_id = fan, target_feeds = { bell } }))
  local first = ok(bell:get({ enrich = true, mark_seen = true }))
  local second = ok(bell:get())
  local groups = 0
  for g, err in bell:each() do
    ok(g, err)
    groups = groups + 1
  end
  return { unseen_before = first.unseen, unseen_after = second.unseen, groups = groups,
    actor = first.results[1].activities[1].actor.data.name }
end

-- The same reads at once in light threads, through client:parallel.
function cases.parallel(c)
  local feed = c:feed("user", uid("par"))
  for i = 1, 8 do ok(feed:add_activity({ actor = "SU:p", verb = "v", object = tostring(i) })) end
  local fns = {}
  for i = 1, 8 do
    fns[i] = function() return feed:get({ limit = 1, offset = i - 1 }) end
  end
  local out = {}
  for i, r in ipairs(c:parallel(fns)) do out[i] = ok(r[1], r[2]).results[1].object end
  return { objects = out }
end

function M.run()
  local args = ngx.req.get_uri_args()
  local c = stream.connect(args.key, args.secret, "1", { base_url = args.base, retries = 0 })
  local fn = cases[args.case]
  local okay, res = pcall(fn, c)
  c:close()
  ngx.header["Content-Type"] = "application/json"
  ngx.say(stream.json.encode(okay and res or { error = tostring(res) }))
end

return M
