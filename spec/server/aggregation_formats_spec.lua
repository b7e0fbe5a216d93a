-- Custom aggregation formats of the local server (stream-feeds-api.md section 12):
-- STREAM_LOCAL_AGGREGATION_FORMATS sets the group key of aggregated and notification
-- feeds per group, through a small Jinja-like template; a format that does not parse
-- fails the reads of its feeds (400 code 14), never the adds. Over HTTP with curl.

local server = require "helpers.server"
local http = require "helpers.http"
local cjson = require "cjson"

local FORMATS = {
  by_actor = "{{ actor }}",
  by_verb = "{% if verb == 'follow' %}follows{% elif verb == \"like\" %}likes_{{ object }}"
    .. "{% else %}other_{{ verb }}{% endif %}",
  hourly = '{{ verb }}_{{ time.strftime("%Y-%m-%d %H") }}h',
  by_place = "  {{ details.place.city }}/{{ missing }}{{ details.nope.x }}:{{ feed.group }}:{{ feed.user_id }}  ",
  all_codes = '{{ time.strftime("%Y|%m|%d|%H|%M|%S|%j|%%") }}',
  long = "{{ object }}",
  logic = "{% if not seen and (verb != 'x' or n == 3) %}yes{% else %}no{% endif %}",
  invalid_aggregation_format = "{{test[]}}",
}

describe("local server aggregation formats", function()
  local s, api

  setup(function()
    local groups = { "user", "notification:notification", "plain:aggregated" }
    for name in pairs(FORMATS) do
      groups[#groups + 1] = name .. (name == "by_verb" and ":notification" or ":aggregated")
    end
    s = server.start({ feed_groups = groups, aggregation_formats = cjson.encode(FORMATS) })
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

  local function add(feed, activity)
    return call("POST", "feed/" .. feed .. "/", { body = cjson.encode(activity) })
  end

  local function groups_of(feed)
    local out = {}
    for i, g in ipairs(call("GET", "feed/" .. feed .. "/").results) do
      out[i] = g.group .. "=" .. string.format("%d", g.activity_count)
    end
    table.sort(out)
    return out
  end

  it("groups by the actor with {{ actor }}", function()
    add("by_actor/f1", { actor = "SU:ann", verb = "like", object = "o1", time = "2026-11-20T10:00:00" })
    add("by_actor/f1", { actor = "SU:ann", verb = "post", object = "o2", time = "2026-11-25T10:00:00" })
    add("by_actor/f1", { actor = "SU:bob", verb = "like", object = "o3", time = "2026-11-20T10:00:00" })
    assert.are.same({ "SU:ann=2", "SU:bob=1" }, groups_of("by_actor/f1"))
    -- the group id rule of section 9 stays: the newest activity's id
    local b = call("GET", "feed/by_actor/f1/")
    for _, g in ipairs(b.results) do assert.are.equal(g.activities[1].id, g.id) end
  end)

  it("branches on the verb with if / elif / else, and keeps the notification id rule", function()
    add("by_verb/f2", { actor = "a", verb = "follow", object = "u1" })
    add("by_verb/f2", { actor = "b", verb = "follow", object = "u2" })
    add("by_verb/f2", { actor = "a", verb = "like", object = "p1" })
    add("by_verb/f2", { actor = "c", verb = "like", object = "p1" })
    add("by_verb/f2", { actor = "a", verb = "like", object = "p2" })
    add("by_verb/f2", { actor = "a", verb = "share", object = "p3" })
    assert.are.same({ "follows=2", "likes_p1=2", "likes_p2=1", "other_share=1" }, groups_of("by_verb/f2"))
    local b = call("GET", "feed/by_verb/f2/")
    assert.are.equal(4, b.unread)
    for _, g in ipairs(b.results) do assert.are.equal(g.activities[1].id .. "." .. g.group, g.id) end
    -- marking by group id works with the custom keys
    local follows
    for _, g in ipairs(b.results) do if g.group == "follows" then follows = g.id end end
    call("GET", "feed/by_verb/f2/", { query = "mark_read=" .. follows })
    assert.are.equal(3, call("GET", "feed/by_verb/f2/").unread)
  end)

  it("formats the time with strftime on UTC, %H included", function()
    add("hourly/f3", { actor = "a", verb = "run", object = "1", time = "2026-11-20T10:05:00" })
    add("hourly/f3", { actor = "a", verb = "run", object = "2", time = "2026-11-20T10:59:59.999999" })
    -- 13:30 at +02:00 is 11:30 UTC
    add("hourly/f3", { actor = "a", verb = "run", object = "3", time = "2026-11-20T13:30:00+02:00" })
    add("hourly/f3", { actor = "a", verb = "walk", object = "4", time = "2026-11-20T10:10:00" })
    assert.are.same({ "run_2026-11-20 10h=2", "run_2026-11-20 11h=1", "walk_2026-11-20 10h=1" },
      groups_of("hourly/f3"))
    add("all_codes/f3", { actor = "a", verb = "v", object = "1", time = "2026-02-03T04:05:06" })
    assert.are.same({ "2026|02|03|04|05|06|034|%=1" }, groups_of("all_codes/f3"))
  end)

  it("reads dotted custom keys and the feed; unknown names render empty; the key is stripped", function()
    add("by_place/f4", { actor = "a", verb = "v", object = "1", details = { place = { city = "Oslo" } } })
    add("by_place/f4", { actor = "a", verb = "v", object = "2", details = { place = { city = "Oslo" } } })
    add("by_place/f4", { actor = "a", verb = "v", object = "3", details = { place = { city = "Rome" } } })
    add("by_place/f4", { actor = "a", verb = "v", object = "4" })
    assert.are.same({ "/:by_place:f4=1", "Oslo/:by_place:f4=2", "Rome/:by_place:f4=1" }, groups_of("by_place/f4"))
  end)

  it("evaluates not, and, or, == and != with numbers", function()
    add("logic/f5", { actor = "a", verb = "x", object = "1", n = 3 })
    add("logic/f5", { actor = "a", verb = "x", object = "2", n = 4 })
    add("logic/f5", { actor = "a", verb = "x", object = "3", n = 3, seen = true })
    add("logic/f5", { actor = "a", verb = "y", object = "4" })
    assert.are.same({ "no=2", "yes=2" }, groups_of("logic/f5"))
  end)

  it("cuts a group key at 255 characters", function()
    local object = string.rep("é", 200) .. string.rep("x", 100)
    add("long/f6", { actor = "a", verb = "v", object = object })
    local g = call("GET", "feed/long/f6/").results[1]
    assert.are.equal(string.rep("é", 200) .. string.rep("x", 55), g.group)
  end)

  it("accepts adds to a feed whose format does not parse, and answers its reads 400 code 14", function()
    local a = add("invalid_aggregation_format/f7", { actor = "a", verb = "v", object = "1" })
    assert.is_string(a.id)
    for _, path in ipairs({ "feed/invalid_aggregation_format/f7/", "enrich/feed/invalid_aggregation_format/f7/" }) do
      local st, b, raw = api:call("GET", path)
      assert.are.equal(400, st, raw)
      assert.are.equal(14, b.code)
      assert.are.equal("JinjaRuntimeException", b.exception)
      assert.are.equal("the format contains syntax errors", b.detail)
    end
    -- the activity is stored: other feeds holding it read normally
    local c = add("user/f7", { actor = "a", verb = "v", object = "2", to = { "invalid_aggregation_format:f8" } })
    assert.are.equal(c.id, call("GET", "feed/user/f7/").results[1].id)
    assert.are.equal(400, (api:call("GET", "feed/invalid_aggregation_format/f8/")))
    assert.are.equal(c.id, call("GET", "activities/", { query = "ids=" .. c.id }).results[1].id)
  end)

  it("leaves groups without a format on the default verb and day", function()
    add("plain/f9", { actor = "a", verb = "like", object = "1", time = "2026-11-20T10:00:00" })
    add("notification/f9", { actor = "a", verb = "like", object = "1", time = "2026-11-20T10:00:00" })
    assert.are.same({ "like_2026-11-20=1" }, groups_of("plain/f9"))
    assert.are.same({ "like_2026-11-20=1" }, groups_of("notification/f9"))
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("[error]", 1, true), log)
  end)
end)

describe("server/start with STREAM_LOCAL_AGGREGATION_FORMATS", function()
  local function refused(groups, formats, pattern)
    local ok, err = pcall(server.start, { feed_groups = groups, aggregation_formats = formats, workers = 1 })
    if ok then err:stop() end
    assert.is_false(ok, "started with " .. formats)
    assert.matches(pattern, tostring(err))
  end

  it("refuses a format for a group that is not configured, or is flat, or a value that is no object", function()
    refused("user,agg:aggregated", '{"nope":"{{ verb }}"}', "nope is not a feed group")
    refused("user,agg:aggregated", '{"user":"{{ verb }}"}', "user is flat")
    refused("user,agg:aggregated", '["{{ verb }}"]', "must be a JSON object")
    refused("user,agg:aggregated", '{"agg":3}', "must be a string")
  end)
end)
