-- Groups of notification and aggregated feeds kept at write time (stream_local.groupstore):
-- counts, marks and unread/unseen after removals, unfollows, target updates and updates
-- that change what the format reads; a kept file from before groups were kept, and a
-- restart under another format, regroup on their first read.

local server = require "helpers.server"
local http = require "helpers.http"
local cjson = require "cjson"

local function sorted_groups(b)
  local out = {}
  for _, g in ipairs(b.results) do out[#out + 1] = string.format("%s=%d", g.group, g.activity_count) end
  table.sort(out)
  return table.concat(out, " ")
end

describe("local server groups kept at write time", function()
  local s, api

  setup(function()
    s = server.start({ feed_groups = { "user", "timeline", "notification:notification", "digest:aggregated",
      "kinds:notification" }, aggregation_formats = '{"kinds":"{{ kind }}"}' })
    api = http.api(s)
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local function call(method, path, opts)
    local st, b, raw = api:call(method, path, opts)
    assert.is_true(st == 200 or st == 201, raw)
    return b, raw
  end

  local function add(feed, body)
    return call("POST", "feed/" .. feed .. "/", { body = cjson.encode(body) })
  end

  local function read(feed, query)
    return call("GET", "feed/" .. feed .. "/", { query = query })
  end

  local function act(actor, verb, object, extra)
    local a = { actor = actor, verb = verb, object = object, time = "2026-11-20T10:00:00" }
    for k, v in pairs(extra or {}) do a[k] = v end
    return a
  end

  it("a removal takes its activity out of its group, its count and its unread mark", function()
    add("notification/r1", act("SU:a", "like", "o1"))
    add("notification/r1", act("SU:b", "like", "o2"))
    add("notification/r1", act("SU:a", "comment", "o3"))
    local b = read("notification/r1", "mark_read=true")
    assert.are.equal(2, b.unread)
    local late = add("notification/r1", act("SU:c", "like", "o4"))
    b = read("notification/r1")
    assert.are.equal(1, b.unread)
    assert.are.equal("like_2026-11-20", b.results[1].group)
    assert.are.equal(3, b.results[1].activity_count)
    assert.are.equal(3, b.results[1].actor_count)
    assert.is_false(b.results[1].is_read)
    call("DELETE", "feed/notification/r1/" .. late.id .. "/")
    b = read("notification/r1")
    assert.are.equal(0, b.unread)
    assert.are.equal(2, b.unseen)
    assert.are.equal("comment_2026-11-20=1 like_2026-11-20=2", sorted_groups(b))
    for _, g in ipairs(b.results) do assert.is_true(g.is_read, g.group) end
    local like = b.results[1].group == "like_2026-11-20" and b.results[1] or b.results[2]
    assert.are.equal(2, like.actor_count)
    assert.are.equal(like.activities[1].id, like.id:match("^([^.]+)"))
    -- the last activity of a group takes the group with it
    call("DELETE", "feed/notification/r1/" .. b.results[1].activities[1].id .. "/")
    b = read("notification/r1")
    assert.are.equal(b.unseen, #b.results)
  end)

  it("an unfollow takes the copies out of their groups and the counts", function()
    call("POST", "feed/notification/u1/follows/", { body = '{"target":"user:u1src"}' })
    add("notification/u1", act("SU:a", "like", "own"))
    add("user/u1src", act("SU:b", "share", "copied"))
    add("user/u1src", act("SU:c", "like", "copied2"))
    local b = read("notification/u1")
    assert.are.equal("like_2026-11-20=2 share_2026-11-20=1", sorted_groups(b))
    assert.are.equal(2, b.unread)
    call("DELETE", "feed/notification/u1/following/user:u1src/")
    b = read("notification/u1")
    assert.are.equal("like_2026-11-20=1", sorted_groups(b))
    assert.are.equal(1, b.unread)
    assert.are.equal(1, b.results[1].actor_count)
    assert.are.equal(b.results[1].activities[1].id .. ".like_2026-11-20", b.results[1].id)
  end)

  it("a target update moves the activity out of and into notification groups", function()
    local a = add("user/t1", act("SU:a", "like", "o", { foreign_id = "t1:1", to = { "notification:t1n" } }))
    local b = read("notification/t1n")
    assert.are.equal(1, #b.results)
    assert.are.equal(1, b.unread)
    call("POST", "feed_targets/user/t1/activity_to_targets/",
      { body = cjson.encode({ foreign_id = "t1:1", time = "2026-11-20T10:00:00",
        removed_targets = { "notification:t1n" },
        added_targets = { "notification:t1m" } }) })
    b = read("notification/t1n")
    assert.are.same({}, b.results)
    assert.are.equal(0, b.unread)
    b = read("notification/t1m")
    assert.are.equal(1, #b.results)
    assert.are.equal(a.id, b.results[1].activities[1].id)
  end)

  it("an update of a field the format reads moves the activity to its new group", function()
    local a = add("kinds/k1", act("SU:a", "like", "o1", { kind = "red" }))
    add("kinds/k1", act("SU:b", "like", "o2", { kind = "red" }))
    add("kinds/k1", act("SU:b", "like", "o3", { kind = "blue" }))
    local b = read("kinds/k1", "mark_seen=true")
    assert.are.equal("blue=1 red=2", sorted_groups(b))
    call("POST", "activity/", { body = cjson.encode({ changes = { { id = a.id, set = { kind = "blue" } } } }) })
    b = read("kinds/k1")
    assert.are.equal("blue=2 red=1", sorted_groups(b))
    assert.are.equal(0, b.unseen)
    for _, g in ipairs(b.results) do assert.are.equal(g.activity_count, g.actor_count, g.group) end
    call("POST", "activity/", { body = cjson.encode({ changes = { { id = a.id, unset = { "kind" } } } }) })
    b = read("kinds/k1")
    assert.are.equal("=1 blue=1 red=1", sorted_groups(b))
  end)

  it("an add that replaces an activity (same foreign id and time) regroups every copy", function()
    add("digest/p1", act("SU:a", "like", "o1", { foreign_id = "p1:1" }))
    add("digest/p1", act("SU:a", "like", "o2"))
    local b = read("digest/p1")
    assert.are.equal("like_2026-11-20=2", sorted_groups(b))
    add("digest/p1", act("SU:z", "share", "o1", { foreign_id = "p1:1" }))
    b = read("digest/p1")
    assert.are.equal("like_2026-11-20=1 share_2026-11-20=1", sorted_groups(b))
  end)

  it("logged no Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
  end)
end)

describe("local server groups of a kept file", function()
  local function tmpdir()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. http.shell_quote(dir)))
    return dir
  end

  local function fill(api, feed, n, from)
    for i = from or 1, (from or 1) + n - 1 do
      local body = string.format('{"actor":"SU:u%d","verb":"v%d","object":"o:%d","time":"2026-10-%02dT10:00:00"}',
        i % 3, i % 4, i, 1 + i % 2)
      assert.are.equal(201, (api:call("POST", "feed/" .. feed .. "/", { body = body })))
    end
  end

  -- answer(api, path, query) -> the answer without its duration
  local function answer(api, path, query)
    local st, b, raw = api:call("GET", path, { query = query })
    assert.are.equal(200, st, raw)
    b.duration = nil
    return b
  end

  it("regroups a file from before groups were kept on its first read, with the same answers", function()
    local dir = tmpdir()
    local path = dir .. "/stream.db"
    local s = server.start({ db = path })
    local api = http.api(s)
    fill(api, "notification/old", 30)
    answer(api, "feed/notification/old/", "limit=2&mark_read=true")
    fill(api, "notification/old", 3, 31)
    local before = answer(api, "feed/notification/old/", "limit=5")
    local later = answer(api, "feed/notification/old/", "limit=3&offset=1")
    s:stop()
    -- the file as a server that grouped at read time left it (made with LuaJIT's FFI)
    local f = assert(io.open(dir .. "/old.lua", "wb"))
    f:write([[
local ffi = require "ffi"
ffi.cdef("typedef struct sqlite3 sqlite3; int sqlite3_open(const char *, sqlite3 **);"
  .. "int sqlite3_exec(sqlite3 *, const char *, void *, void *, char **); int sqlite3_close(sqlite3 *);")
local lib = ffi.load("libsqlite3.so.0")
local db = ffi.new("sqlite3 *[1]")
assert(lib.sqlite3_open(arg[1], db) == 0)
for _, sql in ipairs({ "DROP TRIGGER feed_items_arrive", "DROP TRIGGER feed_items_move",
  "DROP TRIGGER feed_items_leave",
  "DROP TRIGGER activities_stored", "DROP TRIGGER activities_changed", "DROP INDEX feed_items_in_group",
  "DROP TABLE grouped_slugs",
  "DROP TABLE feed_groups", "DROP TABLE grouped_feeds", "DROP TABLE group_pending", "DROP TABLE group_dirty",
  "ALTER TABLE feed_items DROP COLUMN grp", "ALTER TABLE feed_items DROP COLUMN actor" }) do
  assert(lib.sqlite3_exec(db[0], sql, nil, nil, nil) == 0, sql)
end
lib.sqlite3_close(db[0])
]])
    f:close()
    assert(os.execute("luajit " .. http.shell_quote(dir .. "/old.lua") .. " " .. http.shell_quote(path)))
    s = server.start({ db = path })
    api = http.api(s)
    assert.are.same(before, answer(api, "feed/notification/old/", "limit=5"))
    assert.are.same(later, answer(api, "feed/notification/old/", "limit=3&offset=1"))
    fill(api, "notification/old", 1, 42)
    local after = answer(api, "feed/notification/old/", "limit=1")
    assert.are.equal("v2_2026-10-01", after.results[1].group)
    assert.are.equal(before.unread + 1, after.unread)
    local log = s:error_log()
    s:stop()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    os.execute("rm -rf " .. http.shell_quote(dir))
  end)

  it("regroups a kept feed when the server starts with another format", function()
    local dir = tmpdir()
    local path = dir .. "/stream.db"
    local s = server.start({ db = path })
    local api = http.api(s)
    fill(api, "notification/fmt", 12)
    assert.are.equal(4, #answer(api, "feed/notification/fmt/", "").results)
    s:stop()
    s = server.start({ db = path, aggregation_formats = '{"notification":"{{ actor }}"}' })
    api = http.api(s)
    local b = answer(api, "feed/notification/fmt/", "")
    assert.are.equal("SU:u0=4 SU:u1=4 SU:u2=4", sorted_groups(b))
    assert.are.equal(3, b.unseen)
    s:stop()
    s = server.start({ db = path, aggregation_formats = '{"notification":"{{test[]}}"}' })
    api = http.api(s)
    fill(api, "notification/fmt", 1, 13)
    local st, err = api:call("GET", "feed/notification/fmt/")
    assert.are.equal(400, st)
    assert.are.equal(14, err.code)
    s:stop()
    s = server.start({ db = path })
    api = http.api(s)
    b = answer(api, "feed/notification/fmt/", "")
    assert.are.equal(4, #b.results)
    local total = 0
    for _, g in ipairs(b.results) do total = total + g.activity_count end
    assert.are.equal(13, total)
    local log = s:error_log()
    s:stop()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    os.execute("rm -rf " .. http.shell_quote(dir))
  end)
end)
