-- Users inside activities: what Stream's users are for. Two players; Alice
-- posts with herself as the actor, Bob's timeline follows her, a duel's
-- result lands in both players' feeds with one call, reads show Alice's
-- current profile, Bob reacts and Alice's notification bell rings, a score is
-- corrected in place, Bob's game client reads with a read-only feed token,
-- Alice's avatar is uploaded and resized, a shared link shows its preview,
-- and once Alice is deleted the timeline still reads, with a missing
-- reference where she was. `make demo` runs it against
-- the local server; with STREAM_API_KEY / STREAM_API_SECRET (or STREAM_URL)
-- set it talks to Stream.
--   lua5.4 examples/feeds.lua

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/5.4/?.so;" .. package.cpath

local stream = require "stream"

local client = stream.connect()
local run = string.format("%d-%d", os.time(), math.random(1000, 9999))

local function name_of(user)
  if stream.is_missing(user) then return "(missing: " .. user.reference .. ")" end
  return user.data.name
end

-- Bob's timeline, enriched: every actor and object is resolved when it is read.
local function show_timeline(title)
  print(title)
  for activity, err in client:feed("timeline", "bob-" .. run):each({
    reactions = { recent = true, counts = true } }) do
    assert(activity, err)
    local level = activity.object
    local what = type(level) == "string" and level
      or stream.is_missing(level) and level.reference or level.data.name
    local line = string.format("  %-22s %s %s (%d points)", name_of(activity.actor), activity.verb,
      what, activity.points)
    if activity.link then line = line .. string.format("  [link preview: %s]", activity.link.title) end
    local counts = activity.reaction_counts
    if next(counts) then
      line = line .. string.format("  likes: %d, comments: %d", counts.like or 0, counts.comment or 0)
    end
    print(line)
    for _, c in ipairs(activity.latest_reactions.comment or {}) do
      print(string.format("      %s says %q", name_of(c.user), c.data.text))
    end
  end
end

-- Two players; Bob's timeline follows Alice's user feed.
local alice = client:user("alice-" .. run)
local bob = client:user("bob-" .. run)
assert(alice:create({ name = "Alice", level = 7 }))
assert(bob:create({ name = "Bob", level = 2 }))
assert(bob:feed("timeline"):follow(alice:feed("user")))

-- Alice's avatar: uploaded, resized to a 32x32 thumbnail and kept in her profile.
local avatar
do
  local png = ("89504e470d0a1a0a0000000d494844520000001000000010080200000090916836000000"
    .. "164944415478da63d0a83841126218d530aa61f86a0000c34a6810077e464c0000000049454e44ae426082")
    :gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
  local upload = assert(client.images:upload(png, "alice.png"))
  local thumb = assert(client.images:process(upload.file, { resize = "crop", w = 32, h = 32 }))
  avatar = thumb.file
  assert(alice:update({ name = "Alice", level = 7, profileImage = avatar }))
  print("alice's avatar: " .. avatar:match("^[^?]*"))
end

-- A game level is a collection entry; activities point at it as "SO:level:<id>".
local cave = client.collections:entry("level", "lava-cave-" .. run)
assert(client.collections:add("level", { name = "Lava Cave", par = 90 }, { id = cave.id }))

-- Alice posts with herself as the actor: the user handle is sent as "SU:<id>".
local now = os.time()
local post = assert(alice:feed("user"):add_activity({
  actor = alice, verb = "cleared", object = cave, points = 9100,
  foreign_id = "run:" .. run, time = now,
}))
print("stored: actor " .. post.actor .. ", object " .. post.object)

-- Alice shares her replay page; the post carries the link's preview (Open
-- Graph data read from the page). The page is uploaded first, so the demo
-- fetches nothing outside the service it talks to.
do
  local page = assert(client.files:upload(table.concat({
    "<!doctype html><html><head><title>Replay</title>",
    '<meta property="og:title" content="Lava Cave in 90 seconds">',
    '<meta property="og:description" content="Alice clears the Lava Cave at par.">',
    "</head><body>replay</body></html>" }), "replay.html", { content_type = "text/html" }))
  local og = assert(client:og(page.file))
  assert(alice:feed("user"):add_activity({ actor = alice, verb = "shared", object = "replay:" .. run,
    points = 0, link = { url = page.file, title = og.title, description = og.description } }))
  print(string.format("link preview: %q (%s)", og.title, og.description))
end

-- A minute later Alice wins a duel against Bob: one call puts the result in
-- both players' feeds, as one activity with one id; Bob's timeline gets
-- Alice's copy because it follows her.
assert(client:add_to_many({ actor = alice, verb = "won a duel in", object = cave, points = 500,
  foreign_id = "duel:" .. run, time = now + 60 }, { alice:feed("user"), bob:feed("user") }))
local in_alice = assert(alice:feed("user"):get({ limit = 1 })).results[1]
local in_bob = assert(bob:feed("user"):get({ limit = 1 })).results[1]
print("duel result in alice's and bob's feeds, same id in both: " .. tostring(in_alice.id == in_bob.id))
show_timeline("bob's timeline:")

-- Bob likes and comments; each also lands in Alice's notification feed.
local bell = alice:feed("notification")
assert(client.reactions:add("like", post, nil, { user_id = bob, target_feeds = { bell } }))
local comment = assert(client.reactions:add("comment", post, { text = "gg, how?" },
  { user_id = bob, target_feeds = { bell } }))
show_timeline("after bob reacts:")

local PAST = { like = "liked", comment = "commented on" }
local page = assert(bell:get({ enrich = true, mark_seen = true }))
print(string.format("alice's notifications (%d unseen, %d unread):", page.unseen, page.unread))
for _, group in ipairs(page.results) do
  local a = group.activities[1]
  print(string.format("  %s %s your post  [seen: %s, read: %s]", name_of(a.actor), PAST[a.verb],
    tostring(group.is_seen), tostring(group.is_read)))
end
page = assert(bell:get())
print(string.format("after marking them seen: %d unseen", page.unseen))

-- The score is corrected in place; every feed holding the post shows it.
assert(client:activity_partial_update({ foreign_id = post.foreign_id, time = post.time,
  set = { points = 9150 } }))
assert(client.reactions:delete(comment.id))
assert(alice:update({ name = "Alice the Brave", level = 8, profileImage = avatar }))
show_timeline("score corrected, comment deleted, alice renamed (same activity, new profile):")

-- Bob's game client gets a read-only token for his timeline, never the secret.
do
  local token = assert(bob:feed("timeline"):token({ read_only = true, expires_in = 3600 }))
  local game = stream.connect(client.api_key, token, client.app_id, { base_url = client.base_url })
  local read = assert(game:feed("timeline", bob.id):get())
  local _, refused = game:feed("timeline", bob.id):add_activity({ actor = bob, verb = "cheated",
    object = "x" })
  print(string.format("bob's game client (read-only feed token): reads %d activities; posting is "
    .. "refused (%s)", #read.results, refused and refused.status or "not refused!"))
  game:close()
end

local profile = assert(alice:profile())
print(string.format("alice: %d follower(s), following %d", profile.followers_count,
  profile.following_count))

assert(alice:delete())
assert(client.collections:delete("level", cave.id))
show_timeline("alice and the level deleted (the read still works):")

assert(bob:delete())
client:close()
